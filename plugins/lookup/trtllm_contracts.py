# -*- coding: utf-8 -*-
# Copyright: (c) 2026, tritonfleet maintainers
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
name: trtllm_contracts
author: tritonfleet maintainers (@tritonfleet)
version_added: "0.2.0"
short_description: the ensemble contracts of the TensorRT-LLM releases the collection knows
description:
  - Returns one dict per known release, read from the repository role's C(files/contracts/<release>.yml).
  - Each holds C(release), C(versions) (the version prefixes it covers), C(triton), C(source) and C(models)
    (per model its tensors, parameters, batching, instance group and, for the ensemble, its steps).
  - Pick one with the P(tritonfleet.serving.trtllm_contract#filter) filter.
options:
  _terms:
    description: Release names to return (for example V(0.7)); none returns every known release.
    required: false
    type: list
    elements: str
seealso:
  - plugin: tritonfleet.serving.trtllm_contract
    plugin_type: filter
  - plugin: tritonfleet.serving.model_config_pbtxt
    plugin_type: filter
"""

EXAMPLES = r"""
- name: Show the releases whose contract the repository role can render
  ansible.builtin.debug:
    msg: "{{ query('tritonfleet.serving.trtllm_contracts') | map(attribute='release') | list }}"
"""

RETURN = r"""
_raw:
  description: One contract per release, oldest first.
  type: list
  elements: dict
"""

import os

from ansible.errors import AnsibleLookupError
from ansible.module_utils.common.text.converters import to_native
from ansible.plugins.lookup import LookupBase

try:
    import yaml
except ImportError:  # pragma: no cover - ansible-core requires PyYAML
    yaml = None

from ansible_collections.tritonfleet.serving.plugins.module_utils.model_contract import release_key

CONTRACT_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "roles", "repository", "files",
                            "contracts")
_CACHE = {}


def load_contracts(directory=CONTRACT_DIR):
    """Every contract file of ``directory``, oldest release first (cached per file and mtime)."""
    contracts = []
    for entry in sorted(os.listdir(directory)):
        if not entry.endswith(".yml"):
            continue
        path = os.path.join(directory, entry)
        stamp = (path, os.stat(path).st_mtime_ns)
        if stamp not in _CACHE:
            with open(path) as handle:
                contract = yaml.safe_load(handle)
            if not isinstance(contract, dict) or "release" not in contract or "models" not in contract:
                raise AnsibleLookupError("%s is not a contract file (no release or models)" % path)
            _CACHE[stamp] = contract
        contracts.append(_CACHE[stamp])
    return sorted(contracts, key=lambda c: release_key(c["release"]))


class LookupModule(LookupBase):

    def run(self, terms, variables=None, **kwargs):
        self.set_options(var_options=variables, direct=kwargs)
        try:
            contracts = load_contracts()
        except (OSError, yaml.YAMLError) as exc:
            raise AnsibleLookupError("cannot read the contracts: %s" % to_native(exc))
        if not terms:
            return contracts
        known = dict((str(c["release"]), c) for c in contracts)
        missing = [t for t in terms if str(t) not in known]
        if missing:
            raise AnsibleLookupError("unknown releases %s; known: %s" % (", ".join(missing), ", ".join(known)))
        return [known[str(t)] for t in terms]
