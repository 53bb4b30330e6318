# -*- coding: utf-8 -*-
# Copyright: (c) 2026, tritonfleet maintainers
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""KV-cache budgets of servers sharing a GPU, with the real H100's facts and engines of real sizes.

The engine configs below are written for the test in TensorRT-LLM's config.json layouts
(v0.7 build.py's builder_config, trtllm-build's pretrained_config/build_config) with
the dimensions of the models they name; rank file sizes are those models' weights.
"""

from __future__ import annotations

import pathlib

import pytest

from ansible_collections.tritonfleet.serving.plugins.module_utils.kv_cache_budget import (
    DEFAULT_HEADROOM_MIB, MIB, KVCacheBudgetError, kv_bytes_per_token, kv_cache_budget, kv_cache_layout,
    usable_gpu_mib)
from ansible_collections.tritonfleet.serving.plugins.module_utils.nvidia_smi import parse_gpus

H100_XML = pathlib.Path(__file__).resolve().parents[3] / "fixtures" / "h100-host" / "nvidia-smi-q.xml"

# Llama-2-7B, float16, trtllm-build 0.12: 6.74e9 parameters x 2 bytes in rank0.engine.
LLAMA2_7B = {
    "version": "0.12.0",
    "pretrained_config": {
        "architecture": "LlamaForCausalLM", "dtype": "float16", "vocab_size": 32000, "hidden_size": 4096,
        "num_hidden_layers": 32, "num_attention_heads": 32, "num_key_value_heads": 32, "head_size": 128,
        "intermediate_size": 11008, "max_position_embeddings": 4096,
        "quantization": {"quant_algo": None, "kv_cache_quant_algo": None},
        "mapping": {"world_size": 1, "tp_size": 1, "pp_size": 1},
    },
    "build_config": {"max_input_len": 2048, "max_seq_len": 4096, "max_batch_size": 64, "max_beam_width": 1,
                     "max_num_tokens": 8192, "kv_cache_type": "PAGED",
                     "plugin_config": {"gpt_attention_plugin": "float16", "gemm_plugin": "float16",
                                       "paged_kv_cache": True, "tokens_per_block": 64}},
}
LLAMA2_7B_RANK_BYTES = 13476839424

# Baichuan2-7B-Chat, float16, v0.7 examples/baichuan/build.py (the walkthrough's engine).
BAICHUAN2_7B = {
    "builder_config": {"name": "baichuan", "precision": "float16", "tensor_parallel": 1, "pipeline_parallel": 1,
                       "num_layers": 32, "num_heads": 32, "hidden_size": 4096, "vocab_size": 125696,
                       "max_batch_size": 64, "max_input_len": 1024, "max_output_len": 1024, "quant_mode": 0},
    "plugin_config": {"gpt_attention_plugin": "float16", "gemm_plugin": "float16", "paged_kv_cache": True,
                      "tokens_per_block": 64, "remove_input_padding": True},
}
BAICHUAN2_7B_RANK_BYTES = 15011819520

# Llama-3-70B, bfloat16 weights, FP8 KV cache, tp 4: 8 KV heads, 2 per rank.
LLAMA3_70B_TP4 = {
    "version": "0.19.0",
    "pretrained_config": {
        "architecture": "LlamaForCausalLM", "dtype": "bfloat16", "hidden_size": 8192, "num_hidden_layers": 80,
        "num_attention_heads": 64, "num_key_value_heads": 8, "head_size": 128,
        "quantization": {"quant_algo": None, "kv_cache_quant_algo": "FP8"},
        "mapping": {"world_size": 4, "tp_size": 4, "pp_size": 1},
    },
    "build_config": {"max_seq_len": 8192, "kv_cache_type": "PAGED", "plugin_config": {"tokens_per_block": 32}},
}
LLAMA3_70B_RANK_BYTES = 35276000000


@pytest.fixture(scope="module")
def h100():
    return parse_gpus(H100_XML.read_text())


def test_the_h100_facts_give_total_less_reserved(h100):
    # nvidia-smi: 81559 MiB total, 480 MiB reserved by the driver.
    assert usable_gpu_mib(h100) == 81079
    assert usable_gpu_mib([{"memory_total_mib": 81559}, {"memory_total_mib": 46068, "memory_reserved_mib": 500}]) == 45568
    assert usable_gpu_mib([]) is None


@pytest.mark.parametrize("config, per_token", [
    (LLAMA2_7B, 2 * 32 * 32 * 128 * 2),       # 0.5 MiB per token
    (BAICHUAN2_7B, 2 * 32 * 32 * 128 * 2),
    (LLAMA3_70B_TP4, 2 * 80 * 2 * 128 * 1),   # 8 KV heads over 4 ranks, FP8
])
def test_kv_bytes_per_token(config, per_token):
    assert kv_bytes_per_token(kv_cache_layout(config)) == per_token


def test_both_eras_are_read():
    old = kv_cache_layout(BAICHUAN2_7B)
    assert (old["era"], old["head_size"], old["num_kv_heads"], old["max_seq_len"]) == ("build_py", 128, 32, 2048)
    new = kv_cache_layout(LLAMA2_7B)
    assert (new["era"], new["paged"], new["tokens_per_block"], new["max_seq_len"]) == ("trtllm_build", True, 64, 4096)


def test_quantized_kv_cache_of_v07_engines_is_one_byte():
    fp8 = dict(BAICHUAN2_7B, builder_config=dict(BAICHUAN2_7B["builder_config"], quant_mode=1 << 7))
    int8 = dict(BAICHUAN2_7B, builder_config=dict(BAICHUAN2_7B["builder_config"], quant_mode=(1 << 6) | 2))
    assert kv_bytes_per_token(kv_cache_layout(fp8)) == 2 * 32 * 32 * 128
    assert kv_bytes_per_token(kv_cache_layout(int8)) == 2 * 32 * 32 * 128


def test_pipeline_and_tensor_parallel_split_layers_and_heads():
    config = dict(LLAMA2_7B, pretrained_config=dict(LLAMA2_7B["pretrained_config"],
                                                    mapping={"world_size": 6, "tp_size": 2, "pp_size": 3}))
    # 32 layers over 3 stages: the busiest rank holds 11; 32 heads over 2 ranks: 16.
    assert kv_bytes_per_token(kv_cache_layout(config)) == 2 * 11 * 16 * 128 * 2
    gqa = dict(LLAMA3_70B_TP4, pretrained_config=dict(LLAMA3_70B_TP4["pretrained_config"],
                                                      mapping={"world_size": 16, "tp_size": 16, "pp_size": 1}))
    # Fewer KV heads (8) than ranks (16): each rank keeps one.
    assert kv_bytes_per_token(kv_cache_layout(gqa)) == 2 * 80 * 1 * 128 * 1


def test_two_llama2_7b_servers_on_an_h100_add_up(h100):
    gpu = usable_gpu_mib(h100)
    budget = kv_cache_budget(LLAMA2_7B, gpu, servers_per_gpu=2, engine_sizes=[LLAMA2_7B_RANK_BYTES, 1000])
    assert budget["problems"] == []
    assert budget["share_mib"] == 40539
    # (40539 - 13476839424 / 2**20 - 4096) MiB = 23590.5 MiB at 0.5 MiB per token = 47181 -> whole 64-token blocks.
    assert budget["max_tokens"] == 47168
    assert budget["parameters"] == {"max_tokens_in_paged_kv_cache": 47168}
    per_server = LLAMA2_7B_RANK_BYTES + (DEFAULT_HEADROOM_MIB * MIB) + 47168 * budget["kv_bytes_per_token"]
    assert 2 * per_server <= gpu * MIB


@pytest.mark.parametrize("config, rank_bytes, servers", [
    (LLAMA2_7B, LLAMA2_7B_RANK_BYTES, 2), (LLAMA2_7B, LLAMA2_7B_RANK_BYTES, 4),
    (BAICHUAN2_7B, BAICHUAN2_7B_RANK_BYTES, 2), (BAICHUAN2_7B, BAICHUAN2_7B_RANK_BYTES, 3),
    (LLAMA3_70B_TP4, LLAMA3_70B_RANK_BYTES, 2),
])
def test_every_budget_sums_to_the_gpu_whatever_loads_first(h100, config, rank_bytes, servers):
    gpu = usable_gpu_mib(h100)
    budget = kv_cache_budget(config, gpu, servers_per_gpu=servers, engine_sizes=[rank_bytes])
    assert budget["problems"] == [], budget
    tokens = budget["parameters"]["max_tokens_in_paged_kv_cache"]
    assert tokens % kv_cache_layout(config)["tokens_per_block"] == 0
    assert tokens >= kv_cache_layout(config)["max_seq_len"]
    used = servers * (rank_bytes + DEFAULT_HEADROOM_MIB * MIB + tokens * budget["kv_bytes_per_token"])
    assert used <= gpu * MIB


def test_one_server_per_gpu_keeps_the_backends_own_sizing(h100):
    budget = kv_cache_budget(LLAMA2_7B, usable_gpu_mib(h100), servers_per_gpu=1, engine_sizes=[LLAMA2_7B_RANK_BYTES])
    assert budget["parameters"] == {} and budget["problems"] == []
    assert budget["max_tokens"] > 100000
    # Even an estimate that would not fit is no refusal with one server: the fraction measures the real memory.
    tight = kv_cache_budget(LLAMA2_7B, 16000, servers_per_gpu=1, engine_sizes=[LLAMA2_7B_RANK_BYTES])
    assert tight["problems"] == [] and tight["unverified"]


def test_five_servers_leave_no_room_and_say_what_to_change(h100):
    budget = kv_cache_budget(LLAMA2_7B, usable_gpu_mib(h100), servers_per_gpu=5, engine_sizes=[LLAMA2_7B_RANK_BYTES])
    assert budget["parameters"] == {}
    (problem,) = budget["problems"]
    for needle in ("16215 MiB", "servers_instances_per_gpu=5", "12853 MiB", "servers_gpu_memory_headroom_mib",
                   "lower servers_instances_per_gpu", "tritonfleet_tp_size"):
        assert needle in problem, (needle, problem)


def test_a_budget_smaller_than_one_sequence_is_refused(h100):
    # 5 x Baichuan2: 16215 MiB each, 14316 of them weights; 4096 headroom leaves none.
    # With a smaller headroom the cache holds fewer tokens than max_input_len + max_output_len.
    budget = kv_cache_budget(BAICHUAN2_7B, usable_gpu_mib(h100), servers_per_gpu=5,
                             engine_sizes=[BAICHUAN2_7B_RANK_BYTES], headroom_mib=1000)
    (problem,) = budget["problems"]
    assert "fewer than one sequence of the engine's max_seq_len 2048" in problem


def test_a_given_budget_is_checked_not_replaced(h100):
    gpu = usable_gpu_mib(h100)
    fits = kv_cache_budget(LLAMA2_7B, gpu, servers_per_gpu=2, engine_sizes=[LLAMA2_7B_RANK_BYTES], max_tokens=40000)
    assert fits["problems"] == [] and fits["parameters"] == {} and fits["max_tokens"] == 40000
    too_big = kv_cache_budget(LLAMA2_7B, gpu, servers_per_gpu=2, engine_sizes=[LLAMA2_7B_RANK_BYTES],
                              max_tokens=60000)
    (problem,) = too_big["problems"]
    assert "repository_tensorrt_llm_parameters.max_tokens_in_paged_kv_cache=60000" in problem
    assert "lower it to 47168 or less" in problem
    # A given budget is checked with one server per GPU too.
    alone = kv_cache_budget(LLAMA2_7B, gpu, servers_per_gpu=1, engine_sizes=[LLAMA2_7B_RANK_BYTES], max_tokens=300000)
    assert alone["problems"] and "servers_instances_per_gpu" not in alone["problems"][0].split("; ")[-1]


def test_before_the_engine_exists_only_the_headroom_is_checked(h100):
    gpu = usable_gpu_mib(h100)
    fine = kv_cache_budget(None, gpu, servers_per_gpu=8)
    assert fine["problems"] == [] and fine["parameters"] == {} and fine["unverified"]
    crowded = kv_cache_budget(None, gpu, servers_per_gpu=24)
    (problem,) = crowded["problems"]
    assert "3378 MiB" in problem and "alone, before any weights" in problem


def test_an_engine_without_model_dimensions(h100):
    # What the project's fleet tests use as a stand-in engine: a mapping and nothing else.
    stub = {"version": "0.7.1", "pretrained_config": {"mapping": {"world_size": 1, "tp_size": 1, "pp_size": 1}}}
    shared = kv_cache_budget(stub, usable_gpu_mib(h100), servers_per_gpu=2, engine_sizes=[10 * MIB])
    (problem,) = shared["problems"]
    assert "num_layers" in problem and "repository_tensorrt_llm_parameters.max_tokens_in_paged_kv_cache" in problem
    given = kv_cache_budget(stub, usable_gpu_mib(h100), servers_per_gpu=2, engine_sizes=[10 * MIB], max_tokens=1000)
    assert given["problems"] == [] and given["unverified"]
    assert kv_cache_budget(stub, usable_gpu_mib(h100), engine_sizes=[10 * MIB])["problems"] == []


def test_no_gpu_facts_checks_nothing():
    budget = kv_cache_budget(LLAMA2_7B, None, servers_per_gpu=2, engine_sizes=[LLAMA2_7B_RANK_BYTES])
    assert budget["problems"] == [] and budget["parameters"] == {} and budget["unverified"]


def test_a_continuous_kv_cache_has_no_paged_budget(h100):
    config = dict(LLAMA2_7B, build_config=dict(LLAMA2_7B["build_config"], kv_cache_type="CONTINUOUS"))
    budget = kv_cache_budget(config, usable_gpu_mib(h100), servers_per_gpu=2, engine_sizes=[LLAMA2_7B_RANK_BYTES])
    assert budget["parameters"] == {} and budget["problems"] == []


@pytest.mark.parametrize("kwargs", [dict(servers_per_gpu=0), dict(headroom_mib=-1), dict(max_tokens="many"),
                                    dict(engine_sizes=[-5])])
def test_bad_inputs_raise(kwargs):
    with pytest.raises(KVCacheBudgetError):
        kv_cache_budget(LLAMA2_7B, 81079, **kwargs)
    with pytest.raises(KVCacheBudgetError):
        kv_cache_layout(["not", "a", "mapping"])
