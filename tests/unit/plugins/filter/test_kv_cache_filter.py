# -*- coding: utf-8 -*-
# Copyright: (c) 2026, tritonfleet maintainers
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The kv_cache_budget filter, and the servers role's preflight that refuses budgets that do not fit.

The preflight test runs ansible-playbook with the servers role's layout and
validate entry points on localhost (process runtime, no Docker), the real
H100's facts given as extra vars and a sparse engine of real size.
"""

from __future__ import annotations

import json
import os
import pathlib
import sys

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.tritonfleet.serving.plugins.filter.kv_cache import FilterModule, kv_cache_budget
from ansible_collections.tritonfleet.serving.plugins.module_utils.nvidia_smi import parse_gpus
from ansible_collections.tritonfleet.serving.tests.unit.utils import playbook_run

REPO = pathlib.Path(__file__).resolve().parents[4]
H100_XML = REPO / "tests" / "fixtures" / "h100-host" / "nvidia-smi-q.xml"

# Llama-2-7B float16 as trtllm-build writes it (trimmed to what sizes the KV cache).
LLAMA2_7B = {
    "version": "0.12.0",
    "pretrained_config": {"architecture": "LlamaForCausalLM", "dtype": "float16", "hidden_size": 4096,
                          "num_hidden_layers": 32, "num_attention_heads": 32, "num_key_value_heads": 32,
                          "mapping": {"world_size": 1, "tp_size": 1, "pp_size": 1}},
    "build_config": {"max_seq_len": 4096, "plugin_config": {"paged_kv_cache": True, "tokens_per_block": 64}},
}
RANK_BYTES = 13476839424


@pytest.fixture(scope="module")
def h100():
    return parse_gpus(H100_XML.read_text())


def test_the_filter_is_registered():
    assert FilterModule().filters()["kv_cache_budget"] is kv_cache_budget


def test_the_facts_list_and_json_text_are_taken_as_the_roles_pass_them(h100):
    budget = kv_cache_budget(json.dumps(LLAMA2_7B), gpus=h100, servers_per_gpu="2", engine_sizes=[RANK_BYTES])
    assert budget["parameters"] == {"max_tokens_in_paged_kv_cache": 47168}
    assert budget["gpu_mib"] == 81079
    assert kv_cache_budget(LLAMA2_7B, gpu_mib=81079, servers_per_gpu=2, engine_sizes=[RANK_BYTES]) == budget


def test_no_engine_yet(h100):
    assert kv_cache_budget(None, gpus=h100, servers_per_gpu=2)["problems"] == []
    assert kv_cache_budget("", gpus=h100, servers_per_gpu=30)["problems"]


@pytest.mark.parametrize("args, kwargs, message", [
    (["{not json"], {}, "not valid JSON"),
    ([["a list"]], {}, "as a mapping"),
    ([LLAMA2_7B], {"gpus": "H100"}, "gpus must be a list"),
    ([LLAMA2_7B], {"engine_sizes": 5}, "engine_sizes must be a list"),
    ([LLAMA2_7B], {"gpu_mib": 81079, "servers_per_gpu": 0}, "servers_instances_per_gpu must be 1 or more"),
])
def test_bad_arguments_are_filter_errors(args, kwargs, message):
    with pytest.raises(AnsibleFilterError, match=message):
        kv_cache_budget(*args, **kwargs)


# ------------------------------------------------------------------ preflight
PLAYBOOK = """
- name: The servers stage's checks
  hosts: all
  connection: local
  gather_facts: false
  roles:
    - role: tritonfleet.serving.common
  tasks:
    - name: Lay out the servers
      ansible.builtin.include_role:
        name: tritonfleet.serving.servers
        tasks_from: layout
    - name: Check the servers
      ansible.builtin.include_role:
        name: tritonfleet.serving.servers
        tasks_from: validate

# What the repository stage renders into tensorrt_llm's parameters, for the hosts whose layout passed.
- name: The repository stage's KV-cache budget
  hosts: all
  connection: local
  gather_facts: false
  vars:
    repository_engine_dir: "{{ servers_engine_dir }}"
    repository_tokenizer_dir: /tokenizer-not-checked
    repository_tokenizer_check: false
  tasks:
    # As in the role's main.yml: the engine checks read the engine's config.json the budget uses.
    - name: Check the engine
      ansible.builtin.include_role:
        name: tritonfleet.serving.repository
        tasks_from: check_earlier_stages
    - name: Compute the budget
      ansible.builtin.include_role:
        name: tritonfleet.serving.repository
        tasks_from: kv_cache_budget
    - name: Show the budget
      ansible.builtin.debug:
        var: __repository_kv_cache_parameters
"""
TASK = "Refuse servers whose weights and KV-cache budgets do not fit the GPU"


# Each case is a host of one run (all of them this machine), so one ansible-playbook run judges them all.
CASES = {
    "five_per_gpu": ({"servers_count": 5, "servers_instances_per_gpu": 5},
                     ["16215 MiB", "servers_instances_per_gpu=5", "lower servers_instances_per_gpu"]),
    "given_budget_too_big": ({"servers_count": 2, "servers_instances_per_gpu": 2,
                              "repository_tensorrt_llm_parameters": {"max_tokens_in_paged_kv_cache": 60000}},
                             ["repository_tensorrt_llm_parameters.max_tokens_in_paged_kv_cache=60000",
                              "lower it to 47168 or less"]),
    "no_engine_yet": ({"servers_engine_dir": "", "servers_count": 24, "servers_instances_per_gpu": 24},
                      ["before the engine exists", "servers_gpu_memory_headroom_mib (4096 MiB) alone"]),
    "four_per_gpu_fits": ({"servers_count": 4, "servers_instances_per_gpu": 4,
                           "servers_gpu_memory_headroom_mib": 3072}, None),
}


@pytest.fixture(scope="module")
def preflight(tmp_path_factory, h100):
    work = tmp_path_factory.mktemp("kv-preflight")
    engine = work / "engine"
    engine.mkdir()
    (engine / "config.json").write_text(json.dumps(LLAMA2_7B))
    with open(engine / "rank0.engine", "wb") as handle:  # sparse: the size without the bytes
        handle.truncate(RANK_BYTES)
    (work / "site.yml").write_text(PLAYBOOK)
    common = {"ansible_connection": "local", "ansible_python_interpreter": sys.executable,
              "tritonfleet_accelerator": "gpu", "tritonfleet_runtime": "process", "tritonfleet_gpus": h100,
              "tritonfleet_trtllm_version": "", "servers_engine_gpu_sku": "", "servers_engine_dir": str(engine)}
    hosts = {}
    for number, (name, (extra, _unused)) in enumerate(sorted(CASES.items())):
        port = 47300 + 300 * number
        hosts[name] = dict({"tritonfleet_root": str(work / name), "servers_http_port_base": port,
                            "servers_grpc_port_base": port + 1, "servers_metrics_port_base": port + 2}, **extra)
    inventory = work / "inventory.json"
    inventory.write_text(json.dumps({"all": {"hosts": hosts, "vars": common}}))
    env = dict(os.environ, ANSIBLE_CONFIG=str(REPO / "ansible.cfg"))
    return playbook_run.run(["ansible-playbook", "-i", str(inventory), str(work / "site.yml")],
                            env=env, cwd=REPO, timeout=600)


@pytest.mark.parametrize("host", sorted(name for name, case in CASES.items() if case[1]))
def test_preflight_refuses_budgets_that_do_not_fit(preflight, host):
    assert preflight.stats[host]["changed"] == 0, preflight
    assert preflight.status(TASK, host) == "failed", preflight
    message = preflight.messages(TASK, host, failed_only=True)
    for needle in CASES[host][1]:
        assert needle in message, (needle, preflight)


def test_preflight_passes_a_layout_that_fits(preflight):
    assert preflight.stats["four_per_gpu_fits"]["failures"] == 0, preflight
    assert preflight.stats["four_per_gpu_fits"]["changed"] == 0, preflight
    assert preflight.status(TASK, "four_per_gpu_fits") == "ok", preflight


def test_the_repository_stage_sets_the_budget_that_fits(preflight):
    # (81079 / 4 - 13476839424 / 2**20 - 3072) MiB at 0.5 MiB per token = 8689 tokens -> whole 64-token blocks.
    shown = preflight.result("Show the budget", "four_per_gpu_fits")
    assert shown["__repository_kv_cache_parameters"] == {"max_tokens_in_paged_kv_cache": 8640}, preflight
    assert preflight.stats["four_per_gpu_fits"]["changed"] == 0, preflight
