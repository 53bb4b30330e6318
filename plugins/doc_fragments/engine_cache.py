# -*- coding: utf-8 -*-
# Copyright: (c) 2026, tritonfleet maintainers
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import absolute_import, division, print_function

__metaclass__ = type


class ModuleDocFragment(object):
    # Where engines are cached and what goes into their key, for the modules that build or stage them.
    DOCUMENTATION = r"""
options:
  name:
    description: Engine name; engines live in C(<cache_dir>/<name>/<key prefix>).
    type: str
    required: true
  cache_dir:
    description: Root of the engine cache.
    type: path
    required: true
  checkpoint_dir:
    description: Hugging Face format checkpoint (weights, config.json and tokenizer files); its contents are part of the key.
    type: path
    required: true
  tp_size:
    description: Tensor parallel size; part of the key.
    type: int
    default: 1
  pp_size:
    description: Pipeline parallel size; part of the key.
    type: int
    default: 1
  command:
    description:
      - The build's argument vector; part of the key.
      - M(tritonfleet.serving.engine_build) runs it for O(builder=command), with C({output_dir}) and
        C({checkpoint_dir}) replaced, and needs it there. M(tritonfleet.serving.engine_cache) only hashes it;
        it is the command the build container runs.
    type: list
    elements: str
    default: []
  build_args:
    description:
      - Builder arguments; part of the key.
      - The V(cpu_reference) builder of M(tritonfleet.serving.engine_build) takes the keys C(dtype),
        C(max_batch_size), C(max_input_len) and C(max_seq_len); for other builders the arguments are only
        hashed (their O(command) carries them).
    type: dict
    default: {}
  key_inputs:
    description:
      - Further inputs that make an engine different (image ID, GPU SKU, TensorRT-LLM version).
      - For a builder that runs outside this process, its version belongs here (the image and C(trtllm_version)).
    type: dict
    default: {}
  keep:
    description: How many engines of this name to keep in the cache (the current one included).
    type: int
    default: 2
notes:
  - "The cache key is the sha256 of: the checkpoint's contents, O(builder), the builder's version (the format
    version of the V(cpu_reference) builder; null for any other builder, whose version goes into O(key_inputs)),
    O(command) (none and empty are the same), O(tp_size), O(pp_size), O(build_args) and O(key_inputs).
    M(tritonfleet.serving.engine_build) and M(tritonfleet.serving.engine_cache) compute it with one function,
    so the same inputs give the same key and the same engine directory in both."
  - The key and those inputs are recorded in the engine's manifest, C(tritonfleet-engine.json).
"""
