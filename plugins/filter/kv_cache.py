# -*- coding: utf-8 -*-
# Copyright: (c) 2026, tritonfleet maintainers
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The KV-cache budget filter: each server's max_tokens_in_paged_kv_cache when servers share a GPU.

The arithmetic and its units are in plugins/module_utils/kv_cache_budget.py;
this file turns the roles' values (the facts' GPU list, ``find`` results'
sizes, a slurped config.json) into its arguments and its errors into filter errors.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json

from ansible.errors import AnsibleFilterError

from ansible_collections.tritonfleet.serving.plugins.module_utils.kv_cache_budget import (
    KVCacheBudgetError, kv_cache_budget as _kv_cache_budget, usable_gpu_mib)


def kv_cache_budget(config, gpus=None, servers_per_gpu=1, engine_sizes=None, headroom_mib=None, max_tokens=None,
                    gpu_mib=None):
    """``engine config.json | kv_cache_budget(gpus=tritonfleet_gpus, servers_per_gpu=2, engine_sizes=[...])``."""
    if isinstance(config, str):
        try:
            config = json.loads(config) if config.strip() else None
        except ValueError as exc:
            raise AnsibleFilterError("kv_cache_budget: the engine's config.json is not valid JSON: %s" % exc)
    if config is not None and not isinstance(config, dict):
        raise AnsibleFilterError("kv_cache_budget expects an engine's config.json as a mapping, got %r" % (config,))
    if engine_sizes is not None and not isinstance(engine_sizes, (list, tuple)):
        raise AnsibleFilterError("kv_cache_budget: engine_sizes must be a list of file sizes in bytes, got %r"
                                 % (engine_sizes,))
    try:
        if gpu_mib in (None, ""):
            if gpus is not None and not isinstance(gpus, (list, tuple)):
                raise AnsibleFilterError("kv_cache_budget: gpus must be a list like tritonfleet_gpus, got %r" % (gpus,))
            gpu_mib = usable_gpu_mib(gpus or [])
        return _kv_cache_budget(config or None, gpu_mib, servers_per_gpu=servers_per_gpu, engine_sizes=engine_sizes,
                                headroom_mib=headroom_mib, max_tokens=max_tokens)
    except KVCacheBudgetError as exc:
        raise AnsibleFilterError("kv_cache_budget: %s" % exc)


class FilterModule(object):
    def filters(self):
        return {"kv_cache_budget": kv_cache_budget}
