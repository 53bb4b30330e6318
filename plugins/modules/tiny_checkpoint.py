#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, tritonfleet maintainers
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: tiny_checkpoint
short_description: Generate the project's tiny random Llama-style checkpoint
description:
  - Writes a Hugging Face format checkpoint (Llama-style C(config.json), C(model.safetensors) with random
    weights from a fixed seed, and a real byte-level BPE tokenizer that C(transformers.AutoTokenizer)
    loads offline), in the spirit of the tiny random models that model libraries test with.
  - It is what the local default deployment serves when no real checkpoint is configured. Generation
    is deterministic, so every host of a fleet produces the same bytes and the same engine cache key.
  - An existing checkpoint generated with the same options is left alone.
version_added: 0.1.0
author:
  - tritonfleet maintainers (@tritonfleet)
extends_documentation_fragment:
  - tritonfleet.serving.attributes
options:
  path:
    description: Checkpoint directory.
    type: path
    required: true
  seed:
    description: Seed of the random weights.
    type: int
    default: 0
  hidden_size:
    description: Model width.
    type: int
    default: 64
  num_hidden_layers:
    description: Number of decoder layers.
    type: int
    default: 2
attributes:
  check_mode:
    support: full
    details:
      - Compares the options with the marker file of an existing checkpoint and reports RV(generated) and
        C(changed) when a normal run would generate it; writes nothing.
  diff_mode:
    support: none
"""

EXAMPLES = r"""
- name: Generate the tiny checkpoint
  tritonfleet.serving.tiny_checkpoint:
    path: /var/lib/tritonfleet/checkpoints/tiny-llama
    seed: 0
"""

RETURN = r"""
path:
  description: The checkpoint directory.
  returned: always
  type: str
generated:
  description: Whether files were (or in check mode would be) written.
  returned: always
  type: bool
"""

import json
import os
import shutil

from ansible.module_utils.basic import AnsibleModule

try:
    from ansible_collections.tritonfleet.serving.plugins.module_utils import cpu_tiny_checkpoint
    IMPORT_ERROR = None
except ImportError as exc:  # pragma: no cover
    cpu_tiny_checkpoint = None
    IMPORT_ERROR = exc

MARKER = "tritonfleet-checkpoint.json"


def main():
    module = AnsibleModule(
        argument_spec=dict(
            path=dict(type="path", required=True),
            seed=dict(type="int", default=0),
            hidden_size=dict(type="int", default=64),
            num_hidden_layers=dict(type="int", default=2),
        ),
        supports_check_mode=True,
    )
    p = module.params
    wanted = dict(seed=p["seed"], hidden_size=p["hidden_size"], num_hidden_layers=p["num_hidden_layers"],
                  generator=getattr(cpu_tiny_checkpoint, "FORMAT_VERSION", None))
    try:
        with open(os.path.join(p["path"], MARKER)) as handle:
            current = json.load(handle)
    except (OSError, ValueError):
        current = None
    if current == wanted:
        module.exit_json(changed=False, generated=False, path=p["path"])
    if module.check_mode:
        module.exit_json(changed=True, generated=True, path=p["path"])
    if cpu_tiny_checkpoint is None:
        module.fail_json(msg="cannot import the CPU reference builder: %s" % IMPORT_ERROR)

    staging = p["path"] + ".new"
    shutil.rmtree(staging, ignore_errors=True)
    try:
        cpu_tiny_checkpoint.generate_tiny_checkpoint(staging, seed=p["seed"], hidden_size=p["hidden_size"],
                                                     num_hidden_layers=p["num_hidden_layers"])
    except Exception as exc:  # the generator's errors are all "cannot generate"
        shutil.rmtree(staging, ignore_errors=True)
        module.fail_json(msg="generating the tiny checkpoint failed: %s" % exc)
    with open(os.path.join(staging, MARKER), "w") as handle:
        json.dump(wanted, handle, indent=2, sort_keys=True)
    # Swap in the new directory last, so a reader never sees a half-written checkpoint.
    retired = p["path"] + ".old"
    shutil.rmtree(retired, ignore_errors=True)
    if os.path.exists(p["path"]):
        os.rename(p["path"], retired)
    os.rename(staging, p["path"])
    shutil.rmtree(retired, ignore_errors=True)
    module.exit_json(changed=True, generated=True, path=p["path"])


if __name__ == "__main__":
    main()
