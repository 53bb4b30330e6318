"""The CPU stand-in of TensorRT-LLM's build tools accepts what the real v0.7.1 tools accept, and nothing else.

The molecule scenarios trust the stand-in to stop a build command the real
image would stop; these tests pin that down for the command lines the engine
role generates.
"""

import json
import os
import subprocess
import sys

import pytest

from ansible_collections.tritonfleet.serving.plugins.filter.engine import trtllm_build_steps
from ansible_collections.tritonfleet.serving.plugins.module_utils.cpu_tiny_checkpoint import generate_tiny_checkpoint

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
STANDIN = os.path.join(ROOT, "molecule", "resources", "standin", "trtllm_standin.py")
BAICHUAN_SEED_FLAGS = {"model_version": "v2_7b", "dtype": "float16", "parallel_build": True,
                       "use_inflight_batching": True, "enable_context_fmha": True,
                       "use_gemm_plugin": "float16", "use_gpt_attention_plugin": "float16"}


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    path = tmp_path_factory.mktemp("ckpt") / "tiny"
    generate_tiny_checkpoint(str(path), seed=0)
    return str(path)


def standin(step):
    """Run one generated step with the stand-in in the tool's place (examples/<family>/build.py -> stand-in)."""
    tool = step[1]
    argv = [sys.executable, STANDIN, tool.replace("/app/tensorrt_llm/examples", "/examples")] + step[2:]
    env = dict(os.environ, TRTLLM_VERSION="0.7.1")
    return subprocess.run(argv, capture_output=True, text=True, env=env, timeout=120, check=False)


def test_baichuan_build_py_rejects_tp_and_pp_flags_as_v071_does(checkpoint, tmp_path):
    result = standin(["python3", "/examples/baichuan/build.py", "--model_dir", checkpoint,
                      "--output_dir", str(tmp_path / "out"), "--world_size", "1", "--tp_size", "1"])
    assert result.returncode == 2
    assert "unrecognized arguments: --tp_size" in result.stderr


def test_seed_flow_command_of_the_role_builds(checkpoint, tmp_path):
    (step,) = trtllm_build_steps("build_py", checkpoint, str(tmp_path / "engine"), str(tmp_path / "work"),
                                 tp_size=2, build_args=BAICHUAN_SEED_FLAGS, model_family="baichuan",
                                 build_py_parallel_flags="world_size")
    result = standin(step)
    assert result.returncode == 0, result.stderr
    with open(tmp_path / "engine" / "config.json", encoding="utf-8") as handle:
        config = json.load(handle)
    assert config["builder_config"]["tensor_parallel"] == 2
    assert sorted(os.listdir(tmp_path / "engine")) == ["config.json", "rank0.engine", "rank1.engine"]


def test_llama_build_py_takes_the_pipeline_layout(checkpoint, tmp_path):
    (step,) = trtllm_build_steps("build_py", checkpoint, str(tmp_path / "engine"), str(tmp_path / "work"),
                                 tp_size=1, pp_size=2, build_args={"dtype": "float32"}, model_family="llama")
    result = standin(step)
    assert result.returncode == 0, result.stderr
    with open(tmp_path / "engine" / "config.json", encoding="utf-8") as handle:
        config = json.load(handle)
    assert config["builder_config"]["pipeline_parallel"] == 2
