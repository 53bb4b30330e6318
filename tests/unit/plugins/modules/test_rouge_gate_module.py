# -*- coding: utf-8 -*-
# Copyright: (c) 2026, tritonfleet maintainers
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""plugins/modules/rouge_gate.py, run in-process on the shipped sample set with the real rouge_score."""

from __future__ import annotations

import json
import pathlib

import pytest

from ansible_collections.tritonfleet.serving.tests.unit.utils.ansible_module_harness import run_module

from ansible_collections.tritonfleet.serving.plugins.modules import rouge_gate

REPO_ROOT = pathlib.Path(__file__).resolve().parents[4]
SAMPLE_SET = REPO_ROOT / "roles" / "evaluate" / "files" / "summarize_sample.jsonl"
METRICS = ["rouge1", "rouge2", "rougeL", "rougeLsum"]

pytest.importorskip("rouge_score", reason="the gate scores with rouge_score (rouge_score==0.1.2)")


@pytest.fixture(scope="module")
def samples():
    return [json.loads(line) for line in SAMPLE_SET.read_text(encoding="utf-8").splitlines() if line.strip()]


@pytest.fixture(scope="module")
def faithful(samples):
    # A stand-in summariser: the article's first two sentences.
    return [". ".join(s["article"].split(". ")[:2]) for s in samples]


@pytest.fixture(scope="module")
def degraded(faithful):
    return [" ".join(text.split()[::2]) for text in faithful]


def gate(args, check_mode=False):
    return run_module(rouge_gate.main, args, check_mode=check_mode)


def write_outputs(path, texts, field="output"):
    path.write_text("".join(json.dumps({field: t}) + "\n" for t in texts), encoding="utf-8")
    return str(path)


def test_faithful_candidate_passes_in_check_mode_too(faithful):
    args = dict(dataset=str(SAMPLE_SET), candidate_outputs=list(faithful), reference_outputs=list(faithful),
                threshold=2.5, min_agreement=99)
    normal = gate(args)
    assert not normal.failed and normal.result["changed"] is False
    result = normal.result
    assert result["passed"] and result["failed_metrics"] == [] and result["samples"] == len(faithful)
    assert result["drops"] == dict.fromkeys(METRICS, 0.0)
    assert set(result["scores"]["candidate"]) == set(METRICS)
    assert result["agreement"]["identical"] == len(faithful)
    assert result["msg"].startswith("ROUGE regression gate passed")
    assert result["table"].endswith("samples: passed")
    checked = gate(args, check_mode=True)
    assert not checked.failed and checked.result == result


def test_degraded_candidate_fails_naming_metric_drop_and_threshold(tmp_path, faithful, degraded):
    res = gate(dict(dataset=str(SAMPLE_SET), candidate_file=write_outputs(tmp_path / "engine.jsonl", degraded),
                    reference_file=write_outputs(tmp_path / "hf.jsonl", faithful), threshold=2.5))
    assert res.failed and res.result["changed"] is False
    result = res.result
    assert result["passed"] is False and "rouge2" in result["failed_metrics"]
    drop = result["drops"]["rouge2"]
    assert drop > 2.5
    assert "rouge2 dropped %.2f points" % drop in result["msg"]
    assert "more than the threshold of 2.50" in result["msg"]
    # The same verdict in check mode: the gate only reads.
    assert gate(dict(dataset=str(SAMPLE_SET), candidate_outputs=degraded, reference_outputs=faithful,
                     threshold=2.5), check_mode=True).failed


def test_fail_on_drop_false_returns_the_verdict_for_a_report(faithful, degraded):
    res = gate(dict(dataset=str(SAMPLE_SET), candidate_outputs=degraded, reference_outputs=faithful, threshold=2.5,
                    fail_on_drop=False))
    assert not res.failed
    assert res.result["passed"] is False and res.result["msg"].startswith("ROUGE regression gate failed")
    assert "FAIL" in res.result["table"]


def test_threshold_large_enough_passes_and_metrics_choose_what_decides(faithful, degraded):
    base = dict(dataset=str(SAMPLE_SET), candidate_outputs=degraded, reference_outputs=faithful)
    assert not gate(dict(base, threshold=100)).failed
    # Dropping every other word hurts bigrams most: at 15 points only rouge2 fails.
    res = gate(dict(base, threshold=15))
    assert res.failed and res.result["failed_metrics"] == ["rouge2"]
    res = gate(dict(base, threshold=15, metrics=["rouge1", "rougeL", "rougeLsum"]))
    assert not res.failed and res.result["passed"] and res.result["metrics"] == ["rouge1", "rougeL", "rougeLsum"]
    assert res.result["drops"]["rouge2"] > 15


@pytest.mark.parametrize("threshold", [-1, 100.01, "nan", "inf"])
def test_threshold_out_of_range_is_an_error(faithful, threshold):
    res = gate(dict(dataset=str(SAMPLE_SET), candidate_outputs=faithful, reference_outputs=faithful,
                    threshold=threshold))
    assert res.failed and "threshold must be between 0 and 100" in res.result["msg"]
    assert "passed" not in res.result


def test_a_bad_dataset_line_names_the_file_and_line(tmp_path, faithful):
    lines = SAMPLE_SET.read_text(encoding="utf-8").splitlines()
    lines[3] = lines[3][:-5]
    broken = tmp_path / "broken.jsonl"
    broken.write_text("\n".join(lines) + "\n", encoding="utf-8")
    res = gate(dict(dataset=str(broken), candidate_outputs=faithful, reference_outputs=faithful, threshold=1))
    assert res.failed and res.result["msg"].startswith("%s line 4 is not valid JSON" % broken)

    res = gate(dict(dataset=str(SAMPLE_SET), reference_field="summary", candidate_outputs=faithful,
                    reference_outputs=faithful, threshold=1))
    assert res.failed and "line 1 has no field 'summary' (it has: article, highlights, id)" in res.result["msg"]


def test_an_output_file_missing_a_field_is_an_error(tmp_path, faithful):
    bad = tmp_path / "engine.jsonl"
    bad.write_text(json.dumps({"output": "a"}) + "\n" + json.dumps({"text": "b"}) + "\n", encoding="utf-8")
    res = gate(dict(dataset=str(SAMPLE_SET), candidate_file=str(bad), reference_outputs=faithful, threshold=1))
    assert res.failed and res.result["msg"] == "%s line 2 has no field 'output' (it has: text)" % bad


def test_outputs_that_cannot_be_measured_are_errors(faithful):
    base = dict(dataset=str(SAMPLE_SET), reference_outputs=faithful, threshold=1)
    unanswered = list(faithful)
    unanswered[5] = None
    res = gate(dict(base, candidate_outputs=unanswered))
    assert res.failed and res.result["msg"].startswith("candidate outputs[5] is null, not a string")
    res = gate(dict(base, candidate_outputs=faithful[:-1]))
    assert res.failed and "candidate outputs has %d entries but there are %d" % (len(faithful) - 1, len(faithful)) \
        in res.result["msg"]
    res = gate(dict(base, candidate_outputs=[""] * len(faithful)))
    assert res.failed and "every one of the %d candidate outputs is empty" % len(faithful) in res.result["msg"]
    res = gate(dict(base, candidate_outputs=[]))
    assert res.failed and "candidate outputs is empty" in res.result["msg"]


def test_references_and_max_samples(faithful, samples):
    references = [s["highlights"] for s in samples]
    res = gate(dict(references=references, candidate_outputs=faithful, reference_outputs=faithful, threshold=1,
                    max_samples=5, aggregation="mean", use_stemmer=True))
    assert not res.failed and res.result["samples"] == 5
    assert res.result["aggregation"] == "mean" and res.result["use_stemmer"] is True
    res = gate(dict(dataset=str(SAMPLE_SET), candidate_outputs=faithful[:3], reference_outputs=faithful,
                    threshold=1, max_samples=3))
    assert not res.failed and res.result["samples"] == 3
    res = gate(dict(references=references, candidate_outputs=faithful, reference_outputs=faithful, threshold=1,
                    max_samples=0))
    assert res.failed and "max_samples must be a positive integer" in res.result["msg"]


def test_argument_rules(faithful):
    res = gate(dict(dataset=str(SAMPLE_SET), references=["a"], candidate_outputs=faithful,
                    reference_outputs=faithful, threshold=1))
    assert res.failed and "mutually exclusive" in res.result["msg"]
    res = gate(dict(candidate_outputs=faithful, reference_outputs=faithful, threshold=1))
    assert res.failed and "one of the following is required: dataset, references" in res.result["msg"]
    res = gate(dict(dataset=str(SAMPLE_SET), candidate_outputs=faithful, reference_outputs=faithful, threshold=1,
                    metrics=["bleu"]))
    assert res.failed and "metrics" in res.result["msg"]


def test_agreement_below_minimum_fails_even_when_rouge_holds(faithful):
    shuffled = [" ".join(reversed(t.split())) for t in faithful]
    res = gate(dict(dataset=str(SAMPLE_SET), candidate_outputs=shuffled, reference_outputs=faithful,
                    threshold=100, min_agreement=99, metrics=["rougeL"]))
    assert res.failed
    assert res.result["agreement_failed_metrics"] == ["rougeL"]
    assert "rougeL agreement with the reference model's outputs is" in res.result["msg"]
    assert res.result["agreement"]["scores"]["rouge1"] == pytest.approx(100.0)


def test_stored_reference_scores_replace_the_reference_outputs(faithful, degraded):
    first = gate(dict(dataset=str(SAMPLE_SET), candidate_outputs=faithful, reference_outputs=faithful, threshold=2.5))
    stored = first.result["scores"]["reference"]
    res = gate(dict(dataset=str(SAMPLE_SET), candidate_outputs=degraded, reference_scores=stored, threshold=2.5))
    assert res.failed and res.result["scores"]["reference"] == stored
    assert "rouge2 dropped" in res.result["msg"]
    res = gate(dict(dataset=str(SAMPLE_SET), candidate_outputs=faithful, reference_scores=stored, threshold=2.5),
               check_mode=True)
    assert not res.failed and res.result["passed"] and res.result["empty_outputs"]["reference"] is None
    res = gate(dict(dataset=str(SAMPLE_SET), candidate_outputs=faithful, reference_scores={"rouge1": 20},
                    threshold=2.5))
    assert res.failed and "reference_scores lacks rouge2, rougeL, rougeLsum" in res.result["msg"]
    res = gate(dict(dataset=str(SAMPLE_SET), candidate_outputs=faithful, reference_scores=stored,
                    reference_outputs=faithful, threshold=2.5))
    assert res.failed and "mutually exclusive" in res.result["msg"]
    res = gate(dict(dataset=str(SAMPLE_SET), candidate_outputs=faithful, reference_scores=stored,
                    min_agreement=99, threshold=2.5))
    assert res.failed and "mutually exclusive: reference_scores|min_agreement" in res.result["msg"]
