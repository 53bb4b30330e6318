"""engine_build: the host-side builder of the cpu mode (and of engine_builder=command)."""

import json
import os
import sys

import pytest
from ansible_collections.tritonfleet.serving.tests.unit.utils.ansible_module_harness import run_module

from ansible_collections.tritonfleet.serving.plugins.module_utils.cpu_tiny_checkpoint import generate_tiny_checkpoint
from ansible_collections.tritonfleet.serving.plugins.modules import engine_build


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    path = tmp_path_factory.mktemp("ckpt") / "tiny"
    generate_tiny_checkpoint(str(path), seed=0)
    return str(path)


def build(tmp_path, checkpoint, check_mode=False, **extra):
    args = dict(name="tiny", cache_dir=str(tmp_path / "engines"), checkpoint_dir=checkpoint)
    args.update(extra)
    return run_module(engine_build.main, args, check_mode=check_mode)


def test_builds_once_then_reuses_the_key(tmp_path, checkpoint):
    first = build(tmp_path, checkpoint, build_args={"dtype": "float32"})
    assert not first.failed, first.result
    assert first.result["changed"] and first.result["built"]
    engine = first.result["engine_dir"]
    assert os.path.isfile(os.path.join(engine, "config.json")) and os.path.isfile(os.path.join(engine, "rank0.engine"))
    again = build(tmp_path, checkpoint, build_args={"dtype": "float32"})
    assert again.result["changed"] is False and again.result["engine_dir"] == engine
    assert again.result["cache_key"] == first.result["cache_key"]


def test_check_mode_predicts_and_writes_nothing(tmp_path, checkpoint):
    run = build(tmp_path, checkpoint, check_mode=True)
    assert run.result["changed"] and run.result["built"] and len(run.result["cache_key"]) == 64
    assert not os.path.exists(run.result["engine_dir"])
    assert not os.path.exists(tmp_path / "engines")


def test_check_mode_predicts_the_engines_a_build_prunes(tmp_path, checkpoint):
    for length in (32, 48):
        assert not build(tmp_path, checkpoint, build_args={"max_input_len": length}).failed
    predicted = build(tmp_path, checkpoint, check_mode=True, keep=2, build_args={"max_input_len": 64})
    assert predicted.result["built"] and len(predicted.result["pruned"]) == 1
    assert os.path.isdir(predicted.result["pruned"][0])
    real = build(tmp_path, checkpoint, keep=2, build_args={"max_input_len": 64})
    assert real.result["pruned"] == predicted.result["pruned"]
    unchanged = build(tmp_path, checkpoint, check_mode=True, keep=2, build_args={"max_input_len": 64})
    assert unchanged.result["changed"] is False and unchanged.result["pruned"] == []


def test_other_args_change_the_key_and_old_engines_are_pruned(tmp_path, checkpoint):
    keys = []
    for length in (32, 48, 64):
        run = build(tmp_path, checkpoint, keep=2, build_args={"max_input_len": length})
        assert not run.failed, run.result
        keys.append(run.result["cache_key"])
    assert len(set(keys)) == 3
    # Engine directories are named by the key's first 16 hex digits.
    assert [os.path.basename(p) for p in run.result["pruned"]] == [keys[0][:16]]
    left = os.listdir(tmp_path / "engines" / "tiny")
    assert [k for k in keys if k[:16] in left] == keys[1:]


def test_unknown_cpu_build_args_are_refused(tmp_path, checkpoint):
    run = build(tmp_path, checkpoint, build_args={"use_gemm_plugin": "float16"})
    assert run.failed and "use_gemm_plugin" in run.result["msg"] and "dtype" in run.result["msg"]


def test_failed_command_build_keeps_the_previous_engine_and_shows_the_log(tmp_path, checkpoint):
    script = tmp_path / "builder.py"
    script.write_text("import json, os, sys\n"
                      "out = sys.argv[1]\n"
                      "if os.environ.get('FAIL_BUILD'):\n"
                      "    print('CUDA error: out of memory while building rank 0')\n"
                      "    sys.exit(3)\n"
                      "os.makedirs(out, exist_ok=True)\n"
                      "json.dump({'version': '0.7.1'}, open(os.path.join(out, 'config.json'), 'w'))\n")
    good = build(tmp_path, checkpoint, builder="command", command=[sys.executable, str(script), "{output_dir}"])
    assert not good.failed, good.result
    os.environ["FAIL_BUILD"] = "1"
    try:
        bad = build(tmp_path, checkpoint, builder="command",
                    command=[sys.executable, str(script), "{output_dir}", "--other"])
    finally:
        del os.environ["FAIL_BUILD"]
    assert bad.failed
    assert "exited with status 3" in bad.result["msg"] and "left in place" in bad.result["msg"]
    assert any("out of memory" in line for line in bad.result["log_tail"]), bad.result["log_tail"]
    with open(os.path.join(good.result["engine_dir"], "config.json"), encoding="utf-8") as handle:
        assert json.load(handle) == {"version": "0.7.1"}
    assert bad.result["cache_key"][:16] not in os.listdir(tmp_path / "engines" / "tiny")


def test_missing_checkpoint_fails_but_is_pending_in_check_mode(tmp_path):
    missing = str(tmp_path / "nowhere")
    assert build(tmp_path, missing).failed
    pending = build(tmp_path, missing, check_mode=True)
    assert not pending.failed and pending.result["changed"] and pending.result["cache_key"] == ""
