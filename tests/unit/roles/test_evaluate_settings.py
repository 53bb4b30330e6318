# -*- coding: utf-8 -*-
# Copyright: (c) 2026, tritonfleet maintainers
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The evaluate role never passes on what it could not measure: settings out of range, a set that does not
parse and a server that does not answer fail with a message naming the cause, before the reference model runs."""

import json
import os
import pathlib
import socket
import sys

import pytest

from ansible_collections.tritonfleet.serving.tests.unit.utils import playbook_run

REPO_ROOT = pathlib.Path(__file__).resolve().parents[3]


def closed_port():
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    return port


def run_role(tmp_path, **extra):
    local = dict(ansible_connection="local", ansible_python_interpreter=sys.executable,
                 tritonfleet_root=str(tmp_path / "root"), tritonfleet_address="127.0.0.1",
                 evaluate_checkpoint_dir=str(tmp_path / "checkpoint"),
                 tritonfleet_servers=[{"name": "triton0", "grpc_port": closed_port(), "http_port": closed_port()}])
    inventory = {"all": {"children": {"triton_servers": {"hosts": {"localhost": local}}}}}
    (tmp_path / "inventory.json").write_text(json.dumps(inventory))
    (tmp_path / "gate.yml").write_text(json.dumps([{
        "name": "Gate", "hosts": "triton_servers", "gather_facts": False,
        "roles": [{"role": "tritonfleet.serving.evaluate"}]}]))
    (tmp_path / "extra.json").write_text(json.dumps(extra))
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=str(REPO_ROOT / ".collections"))
    return playbook_run.run(["ansible-playbook", "-i", str(tmp_path / "inventory.json"), str(tmp_path / "gate.yml"),
                             "-e", "@%s" % (tmp_path / "extra.json")], env=env, cwd=tmp_path, timeout=300)


@pytest.mark.parametrize("extra, text", [
    (dict(evaluate_threshold=150), "evaluate_threshold must be a number of ROUGE points from 0 to 100, got 150"),
    (dict(evaluate_threshold=-1), "evaluate_threshold must be a number of ROUGE points from 0 to 100, got -1"),
    (dict(evaluate_min_agreement=101), "evaluate_min_agreement must be null or a number of ROUGE points from 0 to 100"),
    (dict(evaluate_max_new_tokens=40, evaluate_min_length=50), "evaluate_min_length must be from 0 to evaluate_max_new_tokens (40)"),
    (dict(evaluate_metrics=[]), "evaluate_metrics must name one or more of rouge1, rouge2, rougeL, rougeLsum"),
], ids=["threshold-over-100", "threshold-negative", "min-agreement-over-100", "min-length-over-max", "no-metric"])
def test_settings_out_of_range_are_refused_naming_the_variable(tmp_path, extra, text):
    run = run_role(tmp_path, evaluate_enabled=True, **extra)
    assert run.rc != 0, run
    assert text in run.messages("Check the gate's settings"), run


def test_a_set_that_does_not_parse_fails_before_anything_runs(tmp_path):
    bad = tmp_path / "set.jsonl"
    bad.write_text('{"article": "a", "highlights": "b"}\n{"article": "c", "highlights": \n')
    run = run_role(tmp_path, evaluate_enabled=True, evaluate_dataset=str(bad))
    assert run.rc != 0, run
    assert "%s line 2 is not valid JSON" % bad in run.messages("Summarize the set through each server"), run
    assert not (tmp_path / "root" / "evaluate").exists()


def test_an_unreachable_server_fails_before_the_reference_model_runs(tmp_path):
    run = run_role(tmp_path, evaluate_enabled=True)
    assert run.rc != 0, run
    message = run.messages("Summarize the set through each server")
    assert "cannot read the metadata of model ensemble from grpc://127.0.0.1:" in message, run
    assert not (tmp_path / "root" / "evaluate").exists()


def test_off_by_default(tmp_path):
    run = run_role(tmp_path)
    assert run.rc == 0, run
    assert run.status("Gate the servers", host="localhost") == "skipped"
