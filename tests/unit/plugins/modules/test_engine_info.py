"""engine_info reads both TensorRT-LLM eras' config.json and refuses engines that do not fit."""
import json
import os

import pytest
from ansible_collections.tritonfleet.serving.tests.unit.utils.ansible_module_harness import run_module

from ansible_collections.tritonfleet.serving.plugins.module_utils.engine_cache import MANIFEST
from ansible_collections.tritonfleet.serving.plugins.modules import engine_info

# What v0.7's build.py writes (trimmed): no TensorRT-LLM version, parallelism in builder_config.
V07_CONFIG = {"builder_config": {"name": "baichuan", "precision": "float16", "tensor_parallel": 2,
                                 "pipeline_parallel": 1, "max_batch_size": 64},
              "plugin_config": {"gpt_attention_plugin": "float16", "gemm_plugin": "float16"}}
# What trtllm-build writes (trimmed).
MODERN_CONFIG = {
    "version": "0.12.0",
    "pretrained_config": {"architecture": "LlamaForCausalLM", "dtype": "float16",
                          "mapping": {"world_size": 4, "tp_size": 2, "pp_size": 2}},
    "build_config": {"max_batch_size": 8},
}


def engine(tmp_path, config, manifest=None):
    (tmp_path / "config.json").write_text(json.dumps(config))
    if manifest is not None:
        (tmp_path / MANIFEST).write_text(json.dumps(manifest))
    return str(tmp_path)


def manifest(sku="NVIDIA-H100-80GB-HBM3", version="0.7.1"):
    return {"key": "k" * 64, "built_on": "gpu-a1",
            "inputs": {"key_inputs": {"gpu_sku": sku, "trtllm_version": version}}}


def test_describes_the_v07_era(tmp_path):
    res = run_module(engine_info.main, {"engine_dir": engine(tmp_path, V07_CONFIG, manifest())})
    info = res.result["engine"]
    assert (info["era"], info["tp_size"], info["pp_size"], info["world_size"]) == ("build_py", 2, 1, 2)
    assert (info["gpu_sku"], info["trtllm_version"], info["dtype"]) == ("NVIDIA-H100-80GB-HBM3", "0.7.1", "float16")
    assert not res.failed and not res.result["changed"]


def test_describes_the_trtllm_build_era_without_manifest(tmp_path):
    res = run_module(engine_info.main, {"engine_dir": engine(tmp_path, MODERN_CONFIG),
                                        "expect": {"gpu_sku": "NVIDIA-H100", "tp_size": 2, "pp_size": 2,
                                                   "trtllm_version": "0.12.0"}})
    assert not res.failed
    assert res.result["engine"]["trtllm_version"] == "0.12.0"
    # a foreign engine records no SKU: it cannot be checked, and says so
    assert res.result["unverified"] == ["gpu_sku"]


@pytest.mark.parametrize("expect,needle", [
    ({"gpu_sku": "NVIDIA-L40S"}, "gpu_sku is NVIDIA-H100-80GB-HBM3, but NVIDIA-L40S is needed"),
    ({"tp_size": 1}, "tp_size is 2, but 1 is needed"),
    ({"pp_size": 2}, "pp_size is 1, but 2 is needed"),
    ({"trtllm_version": "0.8.0"}, "trtllm_version is 0.7.1, but 0.8.0 is needed"),
])
def test_refuses_an_engine_that_does_not_fit(tmp_path, expect, needle):
    res = run_module(engine_info.main, {"engine_dir": engine(tmp_path, V07_CONFIG, manifest()), "expect": expect})
    assert res.failed and needle in res.result["msg"]


def test_mismatches_can_be_returned_without_failing(tmp_path):
    res = run_module(engine_info.main, {"engine_dir": engine(tmp_path, V07_CONFIG, manifest()),
                                        "expect": {"tp_size": 4, "gpu_sku": ""}, "fail_on_mismatch": False})
    assert not res.failed and res.result["mismatches"] == ["tp_size is 2, but 4 is needed"]


def test_missing_or_broken_config(tmp_path):
    res = run_module(engine_info.main, {"engine_dir": str(tmp_path / "nowhere")})
    assert res.failed and "build the engine first" in res.result["msg"]
    (tmp_path / "config.json").write_text("{not json")
    res = run_module(engine_info.main, {"engine_dir": str(tmp_path)})
    assert res.failed and "not valid JSON" in res.result["msg"]


def test_the_version_the_builder_recorded_wins_over_the_declared_one(tmp_path):
    # trtllm-build wrote 0.12.0 into config.json; the inventory declared 0.11.0 for the image.
    res = run_module(engine_info.main, {"engine_dir": engine(tmp_path, MODERN_CONFIG, manifest(version="0.11.0")),
                                        "expect": {"trtllm_version": "0.11.0"}})
    assert res.failed
    assert "trtllm_version is 0.12.0, but 0.11.0 is needed" in res.result["msg"]
    assert "the build image is TensorRT-LLM 0.12.0, not the 0.11.0 declared for it" in res.result["msg"]
    info = res.result["engine"]
    assert (info["trtllm_version_source"], info["declared_trtllm_version"]) == ("engine", "0.11.0")


def test_a_v07_engine_falls_back_to_the_declared_version(tmp_path):
    res = run_module(engine_info.main, {"engine_dir": engine(tmp_path, V07_CONFIG, manifest(version="0.7.1"))})
    assert res.result["engine"]["trtllm_version_source"] == "declared"


def test_refuses_an_engine_larger_than_the_gpu_memory_a_server_gets(tmp_path):
    path = engine(tmp_path, MODERN_CONFIG, manifest(version="0.12.0"))
    with open(os.path.join(path, "rank0.engine"), "wb") as handle:
        handle.truncate(50 * 1024 ** 3)  # sparse: 50 GiB on paper, nothing on disk
    # an H100 80GB (81559 MiB) shared by two servers leaves 40779 MiB each
    res = run_module(engine_info.main, {"engine_dir": path, "expect": {"max_rank_mib": 40779}})
    assert res.failed
    assert "a rank's engine is 51200 MiB, more than the 40779 MiB" in res.result["msg"]
    assert res.result["engine"]["largest_rank_mib"] == 51200.0
    alone = run_module(engine_info.main, {"engine_dir": path, "expect": {"max_rank_mib": 81559}})
    assert not alone.failed


# What the project's CPU reference builder writes (trimmed): "version" is the engine FORMAT's version.
CPU_CONFIG = {
    "version": engine_info.FORMAT_VERSION,
    "engine_format": engine_info.ENGINE_FORMAT,
    "pretrained_config": {"architecture": "LlamaForCausalLM", "dtype": "float32",
                          "mapping": {"world_size": 1, "tp_size": 1, "pp_size": 1}},
    "build_config": {"max_batch_size": 8},
}


@pytest.mark.parametrize("release", ["0.7.1", "0.12.0", "0.19.0", "1.0.0"])
def test_a_cpu_engine_serves_every_release(tmp_path, release):
    res = run_module(engine_info.main, {"engine_dir": engine(tmp_path, CPU_CONFIG, manifest(sku=None, version=release)),
                                        "expect": {"trtllm_version": release, "tp_size": 1}})
    assert not res.failed, res.result.get("msg")
    info = res.result["engine"]
    assert (info["era"], info["engine_format"], info["format_version"]) == (
        "cpu_reference", engine_info.ENGINE_FORMAT, engine_info.FORMAT_VERSION)
    # the release is the declared one, never the format version
    assert (info["trtllm_version"], info["trtllm_version_source"]) == (release, "declared")
    assert res.result["mismatches"] == [] and "trtllm_version" not in res.result["unverified"]


def test_a_cpu_engine_without_a_declared_release_still_fits(tmp_path):
    res = run_module(engine_info.main, {"engine_dir": engine(tmp_path, CPU_CONFIG),
                                        "expect": {"trtllm_version": "0.7.1"}})
    assert not res.failed and res.result["engine"]["trtllm_version"] is None


def test_a_cpu_engine_of_another_format_version_is_refused(tmp_path):
    config = dict(CPU_CONFIG, version="0")
    res = run_module(engine_info.main, {"engine_dir": engine(tmp_path, config), "expect": {"trtllm_version": "0.7.1"}})
    assert res.failed
    assert "format version 0, but this collection reads format version %s" % engine_info.FORMAT_VERSION \
        in res.result["msg"]
    assert "trtllm_version" not in res.result["msg"]


def test_a_trtllm_engine_still_checks_its_release(tmp_path):
    res = run_module(engine_info.main, {"engine_dir": engine(tmp_path, MODERN_CONFIG),
                                        "expect": {"trtllm_version": "0.7.1"}})
    assert res.failed and "trtllm_version is 0.12.0, but 0.7.1 is needed" in res.result["msg"]
    assert res.result["engine"]["engine_format"] is None


def test_an_engine_of_the_cpu_format_from_a_tensorrt_llm_image_checks_its_release(tmp_path):
    # A TensorRT-LLM build image writing the CPU format (CI's trtllm-build stand-in) records its
    # release under "version" as trtllm-build does, and the format's under "format_version".
    config = dict(CPU_CONFIG, version="0.7.1", format_version=engine_info.FORMAT_VERSION)
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    res = run_module(engine_info.main, {"engine_dir": engine(tmp_path / "a", config, manifest(sku=None, version="0.7.1")),
                                        "expect": {"trtllm_version": "0.7.1"}})
    assert not res.failed, res.result.get("msg")
    info = res.result["engine"]
    assert (info["format_version"], info["trtllm_version"], info["trtllm_version_source"]) == (
        engine_info.FORMAT_VERSION, "0.7.1", "engine")
    res = run_module(engine_info.main, {"engine_dir": engine(tmp_path / "b", config), "expect": {"trtllm_version": "0.12.0"}})
    assert res.failed and "trtllm_version is 0.7.1, but 0.12.0 is needed" in res.result["msg"]
    assert "format version" not in res.result["msg"]
