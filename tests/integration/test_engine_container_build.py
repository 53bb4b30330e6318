"""The engine role's container path on this machine's Docker engine: the CPU stand-in
TensorRT-LLM image runs the real command lines of both eras; a failing build keeps the
previous engine and shows the log's tail."""

import json
import re
import subprocess

import pytest

from docker_env import ensure_test_image
from local_deploy import Deployment, free_port_base

pytestmark = [pytest.mark.integration, pytest.mark.docker]

BUILD_IMAGE = "tritonfleet-test/nvidia/tensorrt-llm/release:0.7.1"


@pytest.fixture(scope="module")
def build_image():
    return ensure_test_image("tensorrt-llm", BUILD_IMAGE)


@pytest.fixture
def deployment(tmp_path, build_image):
    return Deployment(tmp_path / "root", free_port_base())


def engine_vars(**extra):
    base = {
        "engine_builder": "container",
        "engine_image": BUILD_IMAGE,
        "engine_trtllm_version": "0.7.1",
        "engine_build_poll_interval": 1,
        "engine_container_ulimits": ["stack:67108864:67108864"],
        "engine_container_shm_size": "64m",
    }
    base.update(extra)
    return ["-e", json.dumps(base)]


V07 = {"engine_recipe": "build_py", "engine_model_family": "baichuan",
       "engine_build_args": {"model_version": "v2_7b", "dtype": "float32", "parallel_build": True,
                             "use_inflight_batching": True, "enable_context_fmha": True,
                             "use_gemm_plugin": "float32", "use_gpt_attention_plugin": "float32",
                             "max_batch_size": 4, "max_input_len": 128, "max_output_len": 128}}
MODERN = {"engine_recipe": "trtllm_build", "engine_convert_args": {"dtype": "float32"},
          "engine_build_args": {"gemm_plugin": "float32", "max_batch_size": 4, "max_input_len": 128,
                                "max_seq_len": 256}}


def engines(root):
    base = root / "engines" / "tiny-llama"
    return sorted(p for p in base.iterdir() if (p / "tritonfleet-engine.json").exists()) if base.exists() else []


@pytest.mark.parametrize("recipe", [V07, MODERN], ids=["build_py", "trtllm_build"])
def test_container_build_is_cached_and_a_failed_build_keeps_the_engine(deployment, recipe):
    first = deployment.playbook("playbooks/engine.yml", *engine_vars(**recipe))
    assert first.rc == 0, first
    (engine,) = engines(deployment.root)
    config = json.loads((engine / "config.json").read_text())
    assert config["pretrained_config"]["mapping"]["tp_size"] == 1
    manifest = json.loads((engine / "tritonfleet-engine.json").read_text())
    assert manifest["inputs"]["key_inputs"]["trtllm_version"] == "0.7.1"
    assert manifest["inputs"]["builder"] == "container:" + recipe["engine_recipe"]

    again = deployment.playbook("playbooks/engine.yml", *engine_vars(**recipe))
    assert again.rc == 0 and again.changed == 0, again

    # New arguments (a new key) and a builder that exits 3 part-way through.
    broken = dict(recipe, engine_build_args=dict(recipe["engine_build_args"], max_batch_size=2),
                  engine_container_env={"TRITONFLEET_STANDIN_FAIL": "1"})
    failed = deployment.playbook("playbooks/engine.yml", *engine_vars(**broken))
    assert failed.rc != 0
    failure = failed.messages(failed_only=True)
    assert "exited with status 3" in failure, failed
    assert "previous engine" in failure and "was left in place" in failure, failed
    # the tail of the build's own log, not just the header
    assert "simulated build failure: TRITONFLEET_STANDIN_FAIL=1 is set" in failure, failed
    assert engines(deployment.root) == [engine]
    leftovers = [p.name for p in (deployment.root / "engines" / "tiny-llama").iterdir() if p.name.startswith(".")]
    assert [p for p in leftovers if p.startswith((".building-", ".work-"))] == []
    containers = subprocess.run(["docker", "ps", "-aq", "--filter", "name=tritonfleet-build-tiny-llama"],
                                capture_output=True, text=True, check=True).stdout.split()
    assert containers == []


def test_a_build_past_its_timeout_is_stopped_and_the_engine_kept(deployment, tmp_path):
    first = deployment.playbook("playbooks/engine.yml", *engine_vars(**MODERN))
    assert first.rc == 0, first
    (engine,) = engines(deployment.root)
    # A command that never finishes (its own cache key), with a 3 s budget; it
    # also reads a file from an extra read-only mount (engine_container_mounts).
    examples = tmp_path / "examples"
    examples.mkdir()
    (examples / "README").write_text("examples checkout v0.12.0\n")
    hang = ["/bin/sh", "-c", "cat /opt/examples/README >>/tritonfleet/build.log; "
            "touch /opt/examples/x 2>>/tritonfleet/build.log; echo compiling rank 0 >>/tritonfleet/build.log; "
            "exec sleep 600"]
    slow = deployment.playbook("playbooks/engine.yml", *engine_vars(
        **MODERN, engine_build_timeout=3, engine_container_command=hang,
        engine_container_mounts=[{"source": str(examples), "target": "/opt/examples"}]))
    assert slow.rc != 0
    failure = slow.messages(failed_only=True)
    assert "ran past engine_build_timeout (3 s)" in failure, slow
    assert "compiling rank 0" in failure and "examples checkout v0.12.0" in failure, slow
    assert "Read-only file system" in failure, slow
    elapsed = float(re.search(r"after ([0-9.]+) s\.", failure).group(1))
    assert 3 <= elapsed < 30, slow
    assert engines(deployment.root) == [engine]
    containers = subprocess.run(["docker", "ps", "-aq", "--filter", "name=tritonfleet-build-tiny-llama"],
                                capture_output=True, text=True, check=True).stdout.split()
    assert containers == []
