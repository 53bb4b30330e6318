# -*- coding: utf-8 -*-
# Copyright: (c) 2026, tritonfleet maintainers
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Filters that turn a release's ensemble contract into model configurations.

The repository role renders every config.pbtxt through these, so what a release's
models take and return lives in one place: its contract file.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible.errors import AnsibleFilterError
from ansible.module_utils.common.text.converters import to_native

from ansible_collections.tritonfleet.serving.plugins.module_utils import model_contract


def trtllm_contract(contracts, version="", pinned=""):
    """The contract of TensorRT-LLM ``version`` (``pinned``: a release name that wins)."""
    try:
        return model_contract.contract_for_version(contracts, version, pinned)
    except model_contract.ContractError as exc:
        raise AnsibleFilterError(to_native(exc))


def trtllm_contract_problem(contracts, version="", pinned=""):
    """'' when a contract serves ``version``, else the message naming the variable and the known releases."""
    try:
        model_contract.contract_for_version(contracts, version, pinned)
    except model_contract.ContractError as exc:
        return to_native(exc)
    return ""


def model_config_pbtxt(model, name, values, defaults=None, explicit=None, header=None):
    """config.pbtxt text of model ``name`` from its contract entry ``model``."""
    try:
        return model_contract.render_model_config(name, model, values, defaults or {}, explicit or {}, header)
    except (model_contract.ContractError, KeyError, TypeError, ValueError) as exc:
        raise AnsibleFilterError("cannot render %s's config.pbtxt: %s" % (name, to_native(exc)))


def contract_placeholder_values(contract, structural, defaults_by_model=None, explicit_by_model=None):
    """Placeholder name -> value for every ``${name}`` the release's configs use."""
    return model_contract.placeholder_values_for(contract, structural, defaults_by_model or {}, explicit_by_model or {})


def fill_placeholders(text, values):
    """``{text, unfilled, used}``: ``text`` with its ``${name}`` filled from ``values``."""
    filled, unfilled = model_contract.fill_placeholders(to_native(text), values)
    return {"text": filled, "unfilled": unfilled,
            "used": [name for name in model_contract.placeholders(to_native(text)) if name not in unfilled]}


def fill_model_repository(entries, values, user_keys=None, engine_backend=None):
    """A user's upstream-layout directory (from the upstream_model_repository lookup), filled."""
    return model_contract.fill_repository(entries, values, list(user_keys or []), engine_backend)


class FilterModule(object):

    def filters(self):
        return {
            "trtllm_contract": trtllm_contract,
            "trtllm_contract_problem": trtllm_contract_problem,
            "model_config_pbtxt": model_config_pbtxt,
            "contract_placeholder_values": contract_placeholder_values,
            "fill_placeholders": fill_placeholders,
            "fill_model_repository": fill_model_repository,
        }
