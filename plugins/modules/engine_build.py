#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, tritonfleet maintainers
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: engine_build
short_description: Build an LLM engine once per set of inputs, into a content-addressed cache
description:
  - Computes the engine's cache key (see the notes for what goes into it). When an engine with that key
    is already in O(cache_dir) nothing is built and C(changed=false).
  - Otherwise the engine is built into a temporary directory beside the cache entry and renamed into
    place when the build succeeded. A failed build leaves every existing engine untouched and reports
    the tail of the build log.
  - O(builder=cpu_reference) runs the project's CPU reference builder in-process (accelerator mode
    C(cpu)). O(builder=command) runs O(command), in which C({output_dir}) and C({checkpoint_dir}) are
    replaced, for builds in a container or with C(trtllm-build) / C(build.py).
version_added: 0.1.0
author:
  - tritonfleet maintainers (@tritonfleet)
extends_documentation_fragment:
  - tritonfleet.serving.attributes
  - tritonfleet.serving.attributes.actiongroup_engine
  - tritonfleet.serving.engine_cache
options:
  builder:
    description: How to build.
    type: str
    choices: [cpu_reference, command]
    default: cpu_reference
  timeout:
    description: Seconds a O(builder=command) build may take.
    type: int
    default: 7200
  log_file:
    description: Where the build's output goes; defaults to C(<cache_dir>/<name>/build.log).
    type: path
attributes:
  check_mode:
    support: full
    details:
      - Hashes the checkpoint (without saving the per-file hash memo) and checks the arguments as a normal run
        does. When no engine has the key it reports C(changed) and RV(built); RV(pruned) lists the engines a
        normal run would remove. Nothing is built, written or removed.
      - When O(checkpoint_dir) does not exist yet (an earlier task that check mode only predicted creates it),
        it reports a build with an empty RV(cache_key).
  diff_mode:
    support: none
"""

EXAMPLES = r"""
- name: Build the CPU reference engine
  tritonfleet.serving.engine_build:
    name: tiny-llama
    cache_dir: /var/lib/tritonfleet/engines
    checkpoint_dir: /var/lib/tritonfleet/checkpoints/tiny-llama
    build_args:
      max_batch_size: 8
      max_input_len: 256
      max_seq_len: 512
    key_inputs:
      gpu_sku: cpu
  register: engine
"""

RETURN = r"""
engine_dir:
  description: The engine directory for the computed key (exists unless check mode predicted a build).
  returned: always
  type: str
cache_key:
  description: sha256 of the build inputs.
  returned: always
  type: str
built:
  description: Whether a build ran.
  returned: always
  type: bool
build_seconds:
  description: Duration of the build that produced this engine (now or earlier).
  returned: when the engine exists
  type: float
inputs:
  description: The inputs that were hashed into the key.
  returned: always
  type: dict
pruned:
  description: Older engine directories removed from the cache (in check mode, the ones that would be).
  returned: always
  type: list
  elements: str
"""

import os
import subprocess

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.tritonfleet.serving.plugins.module_utils.engine_cache import (
    CACHE_ARGUMENT_SPEC, EngineCache, module_engine_key)
from ansible_collections.tritonfleet.serving.plugins.module_utils.supervisor import tail

try:
    from ansible_collections.tritonfleet.serving.plugins.module_utils import cpu_reference
except ImportError:  # pragma: no cover - only where the module_utils file is broken
    cpu_reference = None

CPU_BUILD_ARGS = ("dtype", "max_batch_size", "max_input_len", "max_seq_len")


class BuildFailed(Exception):
    pass


def run_command_build(argv, log_file, timeout):
    with open(log_file, "ab") as log:
        try:
            proc = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                  timeout=timeout, check=False)
        except subprocess.TimeoutExpired:
            raise BuildFailed("build timed out after %d s" % timeout)
        except OSError as exc:
            raise BuildFailed("cannot run %s: %s" % (argv[0], exc))
    if proc.returncode != 0:
        raise BuildFailed("build command exited with status %d" % proc.returncode)


def pending_result(cache):
    """Check mode before the checkpoint exists: a build is certain, its key is not known yet."""
    return dict(changed=True, built=True, cache_key="", engine_dir=os.path.join(cache.root, "<pending>"),
                inputs={}, pruned=[])


def validate_cpu_reference(module, params):
    """Refuse a checkpoint or build_args the in-process builder cannot build (in check mode too)."""
    if cpu_reference is None:
        module.fail_json(msg="the CPU reference builder could not be imported")
    try:
        cpu_reference.validate_checkpoint(params["checkpoint_dir"])
    except cpu_reference.CheckpointError as exc:
        module.fail_json(msg=str(exc))
    unknown = set(params["build_args"]) - set(CPU_BUILD_ARGS)
    if unknown:
        module.fail_json(msg="build_args %s are not understood by the cpu_reference builder; it takes %s"
                             % (", ".join(sorted(unknown)), ", ".join(CPU_BUILD_ARGS)))


def main():
    module = AnsibleModule(
        argument_spec=dict(
            CACHE_ARGUMENT_SPEC,
            builder=dict(type="str", choices=["cpu_reference", "command"], default="cpu_reference"),
            timeout=dict(type="int", default=7200),
            log_file=dict(type="path"),
        ),
        supports_check_mode=True,
    )
    p = module.params
    if p["builder"] == "command" and not p["command"]:
        module.fail_json(msg="builder is command but command is empty: give the build's argument vector")
    cache = EngineCache(p["cache_dir"], p["name"])
    inputs, key = module_engine_key(module, pending_result(cache))
    if p["builder"] == "cpu_reference":
        validate_cpu_reference(module, p)
    result = dict(changed=False, built=False, cache_key=key, engine_dir=cache.path_for(key), inputs=inputs, pruned=[])

    manifest = cache.lookup(key)
    if manifest is None:
        result.update(changed=True, built=True)
    if manifest is None and not module.check_mode:
        log_file = p["log_file"] or os.path.join(cache.root, "build.log")
        os.makedirs(os.path.dirname(log_file), exist_ok=True)

        def build_into(tmp):
            if p["builder"] == "cpu_reference":
                args = dict(p["build_args"])
                try:
                    cpu_reference.build_engine(p["checkpoint_dir"], tmp, tp_size=p["tp_size"],
                                               pp_size=p["pp_size"], **args)
                except cpu_reference.EngineBuildError as exc:
                    raise BuildFailed(str(exc))
            else:
                argv = [a.replace("{output_dir}", tmp).replace("{checkpoint_dir}", p["checkpoint_dir"])
                        for a in p["command"]]
                run_command_build(argv, log_file, p["timeout"])

        try:
            manifest = cache.build(key, inputs, build_into)
        except BuildFailed as exc:
            module.fail_json(msg="engine %s: %s; existing engines were left in place" % (p["name"], exc),
                             log_tail=tail(log_file), **result)
    if manifest is not None:
        result["build_seconds"] = manifest.get("build_seconds")
    result["pruned"] = cache.prune(key, p["keep"], dry_run=module.check_mode)
    result["changed"] = result["changed"] or bool(result["pruned"])
    module.exit_json(**result)


if __name__ == "__main__":
    main()
