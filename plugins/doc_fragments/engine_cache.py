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
  key_inputs:
    description: Further inputs that make an engine different (image ID, GPU SKU, TensorRT-LLM version).
    type: dict
    default: {}
  keep:
    description: How many engines of this name to keep in the cache (the current one included).
    type: int
    default: 2
"""
