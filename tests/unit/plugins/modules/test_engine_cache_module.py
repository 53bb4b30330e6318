"""The engine_cache module: the plan / stage / commit / abort steps of a container build,
and the hand-over of an engine from the host that built it to another host."""
import json
import os

import pytest
from ansible_collections.tritonfleet.serving.tests.unit.utils.ansible_module_harness import run_module

from ansible_collections.tritonfleet.serving.plugins.module_utils.engine_cache import MANIFEST
from ansible_collections.tritonfleet.serving.plugins.modules import engine_cache


@pytest.fixture
def checkpoint(tmp_path):
    ckpt = tmp_path / "ckpt"
    ckpt.mkdir()
    (ckpt / "config.json").write_text("{}")
    (ckpt / "model.safetensors").write_text("weights")
    return ckpt


def args(tmp_path, checkpoint, host="a", **extra):
    base = dict(name="tiny", cache_dir=str(tmp_path / host / "engines"), checkpoint_dir=str(checkpoint),
                builder="container:build_py", command=["/bin/sh", "-c", "build"],
                key_inputs={"gpu_sku": "NVIDIA-H100", "image": "sha256:1", "trtllm_version": "0.7.1"})
    base.update(extra)
    return base


def step(tmp_path, checkpoint, name, check_mode=False, **extra):
    return run_module(engine_cache.main, args(tmp_path, checkpoint, step=name, **extra), check_mode=check_mode)


def fake_build(staging, text="engine"):
    with open(os.path.join(staging, "config.json"), "w") as handle:
        json.dump({"version": "0.7.1", "pretrained_config": {"mapping": {"tp_size": 1, "pp_size": 1}}}, handle)
    with open(os.path.join(staging, "rank0.engine"), "w") as handle:
        handle.write(text)


def test_plan_changes_nothing_and_reports_absent(tmp_path, checkpoint):
    plan = step(tmp_path, checkpoint, "plan")
    assert not plan.failed and not plan.result["changed"]
    assert plan.result["present"] is False
    assert not os.path.exists(plan.result["engine_dir"])


def test_key_covers_sku_image_command_and_parallel_sizes(tmp_path, checkpoint):
    key = step(tmp_path, checkpoint, "plan").result["cache_key"]
    for change in ({"key_inputs": {"gpu_sku": "NVIDIA-L40S", "image": "sha256:1", "trtllm_version": "0.7.1"}},
                   {"command": ["/bin/sh", "-c", "other"]}, {"tp_size": 2}, {"pp_size": 2},
                   {"build_args": {"build": {"dtype": "float16"}}}):
        assert step(tmp_path, checkpoint, "plan", **change).result["cache_key"] != key, change
    (checkpoint / "model.safetensors").write_text("other weights")
    assert step(tmp_path, checkpoint, "plan").result["cache_key"] != key


def test_stage_commit_publishes_with_manifest_and_then_plan_finds_it(tmp_path, checkpoint):
    staged = step(tmp_path, checkpoint, "stage")
    assert staged.result["changed"] and os.path.isdir(staged.result["staging_dir"])
    fake_build(staged.result["staging_dir"])
    committed = step(tmp_path, checkpoint, "commit", build_seconds=12.5)
    assert committed.result["changed"] and committed.result["present"]
    manifest = json.load(open(os.path.join(committed.result["engine_dir"], MANIFEST)))
    assert manifest["key"] == staged.result["cache_key"] and manifest["build_seconds"] == 12.5
    assert manifest["built_on"]
    assert not os.path.exists(staged.result["staging_dir"]) and not os.path.exists(staged.result["work_dir"])
    again = step(tmp_path, checkpoint, "plan")
    assert again.result["present"] and not again.result["changed"]
    # committing with nothing staged is a no-op once the engine is there
    assert not step(tmp_path, checkpoint, "commit").result["changed"]


def test_a_build_that_wrote_nothing_is_refused_and_the_old_engine_stays(tmp_path, checkpoint):
    step(tmp_path, checkpoint, "stage")
    fake_build(step(tmp_path, checkpoint, "plan").result["staging_dir"], "good")
    old = step(tmp_path, checkpoint, "commit").result["engine_dir"]
    # a rebuild for the same key (forced: stage again) that produced no engine
    step(tmp_path, checkpoint, "stage")
    failed = step(tmp_path, checkpoint, "commit")
    assert failed.failed and "no config.json" in failed.result["msg"]
    assert open(os.path.join(old, "rank0.engine")).read() == "good"


def test_abort_removes_staging_returns_log_tail_and_keeps_engines(tmp_path, checkpoint):
    staged = step(tmp_path, checkpoint, "stage")
    with open(staged.result["log_file"], "w") as log:
        log.write("step 1\nerror: out of memory\n")
    aborted = step(tmp_path, checkpoint, "abort")
    assert aborted.result["changed"] and aborted.result["log_tail"][-1] == "error: out of memory"
    assert not os.path.exists(staged.result["staging_dir"])
    assert not step(tmp_path, checkpoint, "abort").result["changed"]


def test_check_mode_stages_nothing(tmp_path, checkpoint):
    staged = step(tmp_path, checkpoint, "stage", check_mode=True)
    assert staged.result["changed"] and not os.path.exists(staged.result["staging_dir"])


def test_a_received_engine_keeps_the_builders_manifest(tmp_path, checkpoint):
    step(tmp_path, checkpoint, "stage", host="a")
    fake_build(step(tmp_path, checkpoint, "plan", host="a").result["staging_dir"])
    built = step(tmp_path, checkpoint, "commit", host="a")
    # host b stages, receives a's files (as the copy task does), commits
    received = step(tmp_path, checkpoint, "stage", host="b")
    for name in os.listdir(built.result["engine_dir"]):
        with open(os.path.join(built.result["engine_dir"], name)) as src, \
                open(os.path.join(received.result["staging_dir"], name), "w") as dst:
            dst.write(src.read())
    committed = step(tmp_path, checkpoint, "commit", host="b", received_from="a")
    assert committed.result["manifest"]["built_on"] == built.result["manifest"]["built_on"]
    assert committed.result["manifest"]["received_from"] == "a"
    assert committed.result["manifest"]["built_at"] == built.result["manifest"]["built_at"]


def test_an_engine_with_another_key_is_refused_on_receipt(tmp_path, checkpoint):
    step(tmp_path, checkpoint, "stage", host="a")
    fake_build(step(tmp_path, checkpoint, "plan", host="a").result["staging_dir"])
    built = step(tmp_path, checkpoint, "commit", host="a")
    other_sku = {"gpu_sku": "NVIDIA-L40S", "image": "sha256:1", "trtllm_version": "0.7.1"}
    staged = step(tmp_path, checkpoint, "stage", host="b", key_inputs=other_sku)
    for name in os.listdir(built.result["engine_dir"]):
        with open(os.path.join(built.result["engine_dir"], name)) as src, \
                open(os.path.join(staged.result["staging_dir"], name), "w") as dst:
            dst.write(src.read())
    refused = step(tmp_path, checkpoint, "commit", host="b", key_inputs=other_sku, received_from="a")
    assert refused.failed and "inputs differ" in refused.result["msg"]
    assert not os.path.exists(refused.result["engine_dir"])


def test_check_mode_before_the_checkpoint_exists_predicts_a_build(tmp_path):
    missing = tmp_path / "not-yet"
    plan = run_module(engine_cache.main, args(tmp_path, missing, step="plan"), check_mode=True)
    assert not plan.failed and plan.result["present"] is False and plan.result["cache_key"] == ""
    stage = run_module(engine_cache.main, args(tmp_path, missing, step="stage"), check_mode=True)
    assert not stage.failed and stage.result["changed"]
    real = run_module(engine_cache.main, args(tmp_path, missing, step="plan"))
    assert real.failed and "does not exist" in real.result["msg"]
    assert not (tmp_path / "a").exists()


@pytest.mark.parametrize("builder,command", [("command", ["/bin/sh", "-c", "build {output_dir}"]),
                                             ("cpu_reference", None)])
def test_engine_build_and_engine_cache_give_one_engine_one_key(tmp_path, builder, command):
    from ansible_collections.tritonfleet.serving.plugins.modules import engine_build, tiny_checkpoint

    checkpoint = str(tmp_path / "tiny")
    assert not run_module(tiny_checkpoint.main, dict(path=checkpoint)).failed
    same = dict(name="tiny", cache_dir=str(tmp_path / "engines"), checkpoint_dir=checkpoint, builder=builder,
                tp_size=1, pp_size=1, build_args={"max_input_len": 64}, key_inputs={"gpu_sku": "cpu"})
    if command:
        same["command"] = command
    built = run_module(engine_build.main, dict(same), check_mode=True)
    planned = run_module(engine_cache.main, dict(same, step="plan"))
    assert not built.failed and not planned.failed, (built.result, planned.result)
    assert planned.result["inputs"] == built.result["inputs"]
    assert planned.result["cache_key"] == built.result["cache_key"] and len(built.result["cache_key"]) == 64
    assert planned.result["engine_dir"] == built.result["engine_dir"]


def test_check_mode_commit_predicts_pruning_and_refuses_a_foreign_engine(tmp_path, checkpoint):
    for length in (1, 2, 3):
        step(tmp_path, checkpoint, "stage", build_args={"n": length})
        fake_build(step(tmp_path, checkpoint, "plan", build_args={"n": length}).result["staging_dir"])
        step(tmp_path, checkpoint, "commit", build_args={"n": length}, keep=5)
    staged = step(tmp_path, checkpoint, "stage", build_args={"n": 4})
    fake_build(staged.result["staging_dir"])
    predicted = step(tmp_path, checkpoint, "commit", check_mode=True, build_args={"n": 4}, keep=2)
    assert predicted.result["changed"] and len(predicted.result["pruned"]) == 2
    assert all(os.path.isdir(path) for path in predicted.result["pruned"])
    committed = step(tmp_path, checkpoint, "commit", build_args={"n": 4}, keep=2)
    assert committed.result["pruned"] == predicted.result["pruned"]
    # An engine copied in from a host whose inputs differ: check mode refuses it as a real commit does.
    staged = step(tmp_path, checkpoint, "stage", build_args={"n": 5})
    fake_build(staged.result["staging_dir"])
    with open(os.path.join(staged.result["staging_dir"], MANIFEST), "w") as handle:
        json.dump({"key": "f" * 64}, handle)
    refused = step(tmp_path, checkpoint, "commit", check_mode=True, build_args={"n": 5})
    assert refused.failed and "inputs differ" in refused.result["msg"]
