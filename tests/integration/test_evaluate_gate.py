# -*- coding: utf-8 -*-
# Copyright: (c) 2026, tritonfleet maintainers
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The ROUGE regression gate in the pipeline on this machine: it passes a faithful engine and stops a degraded one.

One local deployment, two site.yml runs with evaluate_enabled=true:

1. The local default: the CPU engine against transformers on the same tiny
   checkpoint. Greedy decoding gives the same tokens, so the gate passes with
   full agreement, and the report under <root>/evaluate/reports says so.
2. The engine rebuilt from a copy of the checkpoint with every tensor rounded
   to 129 levels (the reference model still runs on the original). The
   rolling update verifies the first server on the new revision, the gate
   fails it, the server goes back to the old revision and the run fails,
   printing the drop and the agreement; the other server is never touched and
   the gateway serves the old engine's answers only.

The reference model runs in the role's own virtual environment (torch,
transformers: ~5 GB). The tests keep it in
~/.cache/tritonfleet/evaluate-reference-venv (TRITONFLEET_EVALUATE_VENV moves
it), so later runs only check it against the pinned requirements.
"""

import json
import os
import pathlib
import shutil
import urllib.request

import numpy as np
import pytest

from local_deploy import Deployment, free_port_base

# Minutes of its own (two site.yml runs, the reference venv and model): it evens out the lanes.
pytestmark = [pytest.mark.integration, pytest.mark.second_lane]

LEVELS = 64  # per-tensor symmetric rounding to 2 * LEVELS + 1 values
MAX_NEW_TOKENS = 40
FIRST_ARTICLE = json.loads((pathlib.Path(__file__).resolve().parents[2] / "roles" / "evaluate" / "files"
                            / "summarize_sample.jsonl").read_text().splitlines()[0])["article"]


def gate_args(*extra):
    args = ["-e", "evaluate_enabled=true", "-e", "evaluate_max_new_tokens=%d" % MAX_NEW_TOKENS]
    # One reference venv (~5 GB) for every run of the tests on this machine.
    venv = os.environ.get("TRITONFLEET_EVALUATE_VENV") or os.path.expanduser("~/.cache/tritonfleet/evaluate-reference-venv")
    args += ["-e", "evaluate_venv=%s" % venv]
    return args + list(extra)


def degrade(checkpoint, copy):
    """A copy of the checkpoint with every tensor rounded coarsely; everything else as it was."""
    from safetensors.numpy import load_file, save_file
    shutil.copytree(checkpoint, copy)
    for path in sorted(copy.glob("*.safetensors")):
        tensors = load_file(str(path))
        rounded = {}
        for name, weight in tensors.items():
            step = float(np.abs(weight).max()) / LEVELS
            rounded[name] = (np.round(weight / step) * step).astype(weight.dtype) if step > 0 else weight
        save_file(rounded, str(path), metadata={"format": "pt"})


def server_pids(dep):
    return {p.stem: int(p.read_text()) for p in (dep.root / "servers" / "run").glob("*.pid")}


def serving_revision(dep, name):
    argv = pathlib.Path("/proc/%d/cmdline" % server_pids(dep)[name]).read_bytes().decode().split("\0")
    return pathlib.Path([a.split("=", 1)[1] for a in argv if a.startswith("--model-repository=")][0]).name


def reports(dep):
    return {p.stem: json.loads(p.read_text()) for p in (dep.root / "evaluate" / "reports").glob("*.json")}


def generate(port, prompt):
    body = json.dumps({"text_input": prompt, "max_tokens": MAX_NEW_TOKENS, "top_k": 1, "min_length": 1}).encode()
    request = urllib.request.Request("http://127.0.0.1:%d/v2/models/ensemble/generate" % port, data=body,
                                     headers={"Content-Type": "application/json"})
    return json.loads(urllib.request.urlopen(request, timeout=60).read())["text_output"]


@pytest.fixture(scope="module")
def gated(tmp_path_factory):
    dep = Deployment(tmp_path_factory.mktemp("evaluate") / "root", free_port_base())
    first = dep.playbook("site.yml", *gate_args(), timeout=1800)
    yield dep, first
    dep.playbook("playbooks/teardown.yml")


def test_a_faithful_engine_passes_and_its_report_says_so(gated):
    dep, first = gated
    assert first.rc == 0, first
    print(first.messages("Show each server's scores"))
    engine = first.facts("localhost")["tritonfleet_engine"]
    found = reports(dep)
    assert list(found) == [pathlib.Path(engine["engine_dir"]).name], found
    report = found[pathlib.Path(engine["engine_dir"]).name]
    assert report["passed"] is True and report["engine_cache_key"] == engine["cache_key"]
    assert sorted(report["servers"]) == ["triton0", "triton1"]
    for name, verdict in report["servers"].items():
        print(name, json.dumps({k: verdict[k] for k in ("scores", "drops", "agreement")}, sort_keys=True))
        assert verdict["passed"] is True and verdict["samples"] == 28
        assert verdict["agreement"]["identical"] == 28, verdict
        assert all(value == pytest.approx(100.0) for value in verdict["agreement"]["scores"].values())
        assert all(abs(drop) < 1e-9 for drop in verdict["drops"].values()), verdict["drops"]
    assert report["settings"]["threshold"] == 2.5 and report["settings"]["min_agreement"] == 99
    assert report["settings"]["max_new_tokens"] == MAX_NEW_TOKENS
    assert report["reference"]["checkpoint_dir"] == engine["checkpoint_dir"]
    # the reference summaries are kept for the next engine of this checkpoint
    references = list((dep.root / "evaluate" / "references").glob("*.jsonl"))
    assert len(references) == 1 and len(references[0].read_text().splitlines()) == 28
    # site.yml's final verify did not summarize the set again
    gated_twice = [r for r in first.results("Summarize the set through each server") if not r.result.get("skipped")]
    assert len(gated_twice) == 1, [r.play for r in gated_twice]


def test_a_degraded_engine_fails_the_gate_and_never_serves(gated, tmp_path):
    dep, first = gated
    assert first.rc == 0, first
    checkpoint = dep.root / "checkpoints" / "tiny-llama"
    degraded = tmp_path / "tiny-llama-rounded"
    degrade(checkpoint, degraded)
    pids = server_pids(dep)
    revision = {name: serving_revision(dep, name) for name in pids}
    faithful_answer = generate(dep.port_base, "Summarize: " + FIRST_ARTICLE)
    old_engine = first.facts("localhost")["tritonfleet_engine"]

    run = dep.playbook("site.yml", *gate_args(
        "-e", "engine_checkpoint_dir=%s" % degraded, "-e", "engine_generate_tiny_checkpoint=false",
        "-e", "evaluate_checkpoint_dir=%s" % checkpoint), timeout=1800)
    print(run.messages("Fail the servers whose engine did not pass the gate"))
    print(run.messages("Stop this host's rollout"))
    assert run.rc != 0, run
    new_engine = run.facts("localhost")["tritonfleet_engine"]
    assert new_engine["cache_key"] != old_engine["cache_key"]
    # transformers did not run again: same checkpoint, set and settings
    assert run.status("Run the reference model on the set", host="localhost") == "skipped"
    gate_failure = run.messages("Fail the servers whose engine did not pass the gate", failed_only=True)
    assert "ROUGE gate failed on localhost for triton0" in gate_failure, run
    assert "agreement with the reference model's outputs is" in gate_failure and "drop rouge1" in gate_failure
    rollout = run.messages("Stop this host's rollout")
    assert "server triton0 failed" in rollout and "ROUGE gate failed" in rollout, rollout
    assert "Rolled back to revision %s, which serves again" % revision["triton0"] in rollout, rollout

    found = reports(dep)
    bad = found[pathlib.Path(new_engine["engine_dir"]).name]
    verdict = bad["servers"]["triton0"]
    print("degraded:", json.dumps({k: verdict[k] for k in ("scores", "drops", "agreement")}, sort_keys=True))
    assert bad["passed"] is False and verdict["passed"] is False and bad["engine_cache_key"] == new_engine["cache_key"]
    assert verdict["agreement"]["scores"]["rougeL"] < 99 and verdict["agreement_failed_metrics"]
    assert "triton1" not in bad["servers"]  # the rollout stopped at the first server
    good = found[pathlib.Path(old_engine["engine_dir"]).name]
    assert good["passed"] is True and good["servers"]["triton0"]["agreement"]["identical"] == 28

    # the old revision keeps serving on both servers; triton1 was never touched
    assert server_pids(dep)["triton1"] == pids["triton1"]
    assert {name: serving_revision(dep, name) for name in pids} == revision
    records = {p.stem: json.loads(p.read_text()) for p in (dep.root / "servers" / "in_service").glob("*.json")}
    assert all(new_engine["engine_dir"] not in r["readonly_mounts"] for r in records.values()), records
    # and so does the gateway, when this machine runs one: only the faithful engine's answer comes back
    if (dep.root / "gateway" / "admin.sock").exists():
        for _attempt in range(4):
            assert generate(dep.port_base + 80, "Summarize: " + FIRST_ARTICLE) == faithful_answer
