# -*- coding: utf-8 -*-
# Copyright: (c) 2026, tritonfleet maintainers
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""plugins/modules/evaluate_generate.py with the transport replaced: what it sends, in which order, and how it fails."""

from __future__ import annotations

import json
import pathlib
from unittest import mock

from ansible_collections.tritonfleet.serving.plugins.module_utils.rouge_gate import summarize_prompt
from ansible_collections.tritonfleet.serving.plugins.module_utils.triton_client import TritonError
from ansible_collections.tritonfleet.serving.plugins.modules import evaluate_generate
from ansible_collections.tritonfleet.serving.tests.unit.utils.ansible_module_harness import run_module

REPO_ROOT = pathlib.Path(__file__).resolve().parents[4]
SAMPLE_SET = REPO_ROOT / "roles" / "evaluate" / "files" / "summarize_sample.jsonl"


class Answer(object):
    def __init__(self, text):
        self.text = text


class FakeServer(object):
    """Stands in for grpc_generate: answers each prompt with its length, or fails on one sample."""

    def __init__(self, fail_at=None):
        self.requests = []
        self.fail_at = fail_at

    def __call__(self, endpoint, model, inputs, timeout, request_id="", client=None):
        sent = dict((i.name, i.value) for i in inputs)
        self.requests.append(dict(sent, model=model, timeout=timeout, client=client, request_id=request_id))
        if self.fail_at is not None and len(self.requests) - 1 == self.fail_at:
            raise TritonError("failed to connect to all addresses")
        return Answer("summary of %d characters" % len(sent["text_input"]))


class FakeClient(object):
    instances = []
    inputs = ["text_input", "max_tokens", "top_k", "min_tokens"]
    down = False

    def __init__(self, url, ssl=False):
        self.url = url
        self.closed = False
        FakeClient.instances.append(self)

    def get_model_metadata(self, model_name, as_json=False, client_timeout=None):
        if FakeClient.down:
            raise evaluate_generate.InferenceServerException("failed to connect to all addresses")
        return {"name": model_name, "inputs": [{"name": n} for n in FakeClient.inputs]}

    def close(self):
        self.closed = True


def run(args, server, check_mode=False):
    FakeClient.instances = []
    with mock.patch.object(evaluate_generate, "grpc_generate", server), \
            mock.patch.object(evaluate_generate, "require_tritonclient"), \
            mock.patch.object(evaluate_generate, "triton_grpc", mock.Mock(InferenceServerClient=FakeClient)):
        return run_module(evaluate_generate.main, args, check_mode)


def articles():
    return [json.loads(line)["article"] for line in SAMPLE_SET.read_text(encoding="utf-8").splitlines() if line.strip()]


def test_every_article_goes_through_one_connection_greedy_in_order():
    server = FakeServer()
    result = run(dict(url="127.0.0.1:8001", dataset=str(SAMPLE_SET), max_tokens=40, min_length=1,
                      parameters={"top_k": 1}), server)
    assert not result.failed, result.result
    prompts = [summarize_prompt(a) for a in articles()]
    assert [r["text_input"] for r in server.requests] == prompts
    # min_length goes under the name this ensemble's inputs use (TensorRT-LLM 1.x: min_tokens)
    assert all(r["max_tokens"] == 40 and r["top_k"] == 1 and r["min_tokens"] == 1 and r["model"] == "ensemble" and
               "min_length" not in r for r in server.requests)
    assert result.result["outputs"] == ["summary of %d characters" % len(p) for p in prompts]
    assert result.result["samples"] == len(prompts) == 28 and result.result["changed"] is False
    # one channel, opened once and closed
    assert len(FakeClient.instances) == 1 and FakeClient.instances[0].closed
    assert {id(r["client"]) for r in server.requests} == {id(FakeClient.instances[0])}


def test_max_samples_takes_the_first_ones():
    server = FakeServer()
    result = run(dict(url="127.0.0.1:8001", dataset=str(SAMPLE_SET), max_tokens=8, max_samples=3), server)
    assert len(result.result["outputs"]) == 3 == len(server.requests)


def test_a_request_without_answer_fails_naming_the_sample_and_server():
    server = FakeServer(fail_at=2)
    result = run(dict(url="127.0.0.1:8001", dataset=str(SAMPLE_SET), max_tokens=8), server)
    assert result.failed
    assert "sample 3 of 28 got no answer from grpc://127.0.0.1:8001 (ensemble)" in result.result["msg"]
    assert "failed to connect" in result.result["msg"]
    assert "outputs" not in result.result
    assert FakeClient.instances[0].closed


def test_a_set_that_does_not_parse_fails_before_any_request(tmp_path):
    bad = tmp_path / "set.jsonl"
    bad.write_text('{"article": "a", "highlights": "b"}\n{"article": "no summary"}\n')
    server = FakeServer()
    result = run(dict(url="127.0.0.1:8001", dataset=str(bad), max_tokens=8), server)
    assert result.failed and "line 2 has no field 'highlights'" in result.result["msg"], result.result
    assert server.requests == []
    bad.write_text('{"article": "a", "highlights": "b"}\nnot json\n')
    result = run(dict(url="127.0.0.1:8001", dataset=str(bad), max_tokens=8), server)
    assert result.failed and "line 2 is not valid JSON" in result.result["msg"]
    result = run(dict(url="127.0.0.1:8001", dataset=str(tmp_path / "missing.jsonl"), max_tokens=8), server)
    assert result.failed and "cannot read" in result.result["msg"]
    assert server.requests == []


def test_bad_settings_fail_before_any_request():
    server = FakeServer()
    for args, text in ((dict(max_tokens=0), "max_tokens must be at least 1"),
                       (dict(max_tokens=8, timeout=0), "timeout must be greater than 0"),
                       (dict(max_tokens=8, parameters={"tempreature": 1.0}), "unknown generation parameter")):
        result = run(dict(url="127.0.0.1:8001", dataset=str(SAMPLE_SET), **args), server)
        assert result.failed and text in result.result["msg"], result.result
    assert server.requests == []


def test_check_mode_reads_the_set_and_sends_nothing():
    server = FakeServer()
    result = run(dict(url="127.0.0.1:8001", dataset=str(SAMPLE_SET), max_tokens=8), server, check_mode=True)
    assert not result.failed and result.result["skipped"] and result.result["samples"] == 28
    assert server.requests == [] and FakeClient.instances == []


def test_min_length_follows_the_model_and_fails_where_it_has_no_such_input(monkeypatch):
    server = FakeServer()
    monkeypatch.setattr(FakeClient, "inputs", ["text_input", "max_tokens", "min_length"])
    result = run(dict(url="127.0.0.1:8001", dataset=str(SAMPLE_SET), max_tokens=8, max_samples=1, min_length=2), server)
    assert not result.failed and server.requests[0]["min_length"] == 2
    monkeypatch.setattr(FakeClient, "inputs", ["text_input", "max_tokens"])
    result = run(dict(url="127.0.0.1:8001", dataset=str(SAMPLE_SET), max_tokens=8, min_length=2), server)
    assert result.failed and "takes none of the inputs min_tokens, min_length" in result.result["msg"]
    assert len(server.requests) == 1
    result = run(dict(url="127.0.0.1:8001", dataset=str(SAMPLE_SET), max_tokens=8, min_length=9), server)
    assert result.failed and "min_length must be from 0 to max_tokens (8), got 9" in result.result["msg"]


def test_an_unreachable_server_fails_before_any_request(monkeypatch):
    server = FakeServer()
    monkeypatch.setattr(FakeClient, "down", True)
    result = run(dict(url="127.0.0.1:8001", dataset=str(SAMPLE_SET), max_tokens=8, min_length=1), server)
    assert result.failed and server.requests == []
    assert "cannot read the metadata of model ensemble from grpc://127.0.0.1:8001" in result.result["msg"]
    assert "failed to connect" in result.result["msg"] and FakeClient.instances[0].closed
