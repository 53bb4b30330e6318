# -*- coding: utf-8 -*-
# Copyright: (c) 2026, tritonfleet maintainers
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""plugins/module_utils/rouge_gate.py: reading sets, scoring with the real rouge_score, deciding.

Reading, threshold and decision tests need nothing beyond the standard
library; scoring tests run the real rouge_score package and are skipped
where it is not installed (the gate itself then fails with what to install).
"""

from __future__ import annotations

import json
import math
import pathlib
import sys

import pytest

from ansible_collections.tritonfleet.serving.plugins.module_utils import rouge_gate as rg

REPO_ROOT = pathlib.Path(__file__).resolve().parents[4]
SAMPLE_SET = REPO_ROOT / "roles" / "evaluate" / "files" / "summarize_sample.jsonl"


def _has_rouge_score():
    try:
        import rouge_score  # noqa: F401 pylint: disable=unused-import
    except ImportError:
        return False
    return True


needs_rouge = pytest.mark.skipif(not _has_rouge_score(), reason="rouge_score is not installed (%s)" % rg.ROUGE_SCORE_PIN)


def write_lines(path, lines):
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return path


# --------------------------------------------------------------------------- reading


def test_read_jsonl_keeps_only_the_named_fields_and_skips_blank_lines(tmp_path):
    path = write_lines(tmp_path / "set.jsonl", [
        json.dumps({"id": "a", "article": "One.", "highlights": "First.\nSecond."}),
        "",
        "   ",
        json.dumps({"article": "Two.", "highlights": "Third.", "extra": 3}),
    ])
    assert rg.read_jsonl(str(path), ["article", "highlights"]) == [
        {"article": "One.", "highlights": "First.\nSecond."},
        {"article": "Two.", "highlights": "Third."},
    ]
    assert rg.read_jsonl(str(path), ["highlights"], limit=1) == [{"highlights": "First.\nSecond."}]
    assert rg.read_jsonl(str(path), ["highlights"], limit="1") == [{"highlights": "First.\nSecond."}]


@pytest.mark.parametrize("bad_line, expected", [
    ('{"article": "x", "highlights": ', "line 2 is not valid JSON"),
    ('["article", "highlights"]', "line 2 holds a JSON list, not an object with the fields article, highlights"),
    ('{"article": "x"}', "line 2 has no field 'highlights' (it has: article)"),
    ('{}', "line 2 has no field 'article' (it has: no fields)"),
    ('{"article": "x", "highlights": null}', "line 2: field 'highlights' must be a string, not null"),
    ('{"article": 7, "highlights": "y"}', "line 2: field 'article' must be a string, not int"),
])
def test_read_jsonl_names_file_and_line_of_a_bad_line(tmp_path, bad_line, expected):
    path = write_lines(tmp_path / "set.jsonl", [json.dumps({"article": "a", "highlights": "b"}), bad_line])
    with pytest.raises(rg.DatasetError) as err:
        rg.read_jsonl(str(path), ["article", "highlights"])
    assert str(err.value).startswith(str(path) + " ")
    assert expected in str(err.value)


def test_read_jsonl_refuses_non_utf8_an_empty_file_and_a_missing_file(tmp_path):
    binary = tmp_path / "binary.jsonl"
    binary.write_bytes(b'{"output": "ok"}\n\xff\xfe\n')
    with pytest.raises(rg.DatasetError, match=r"binary.jsonl line 2 is not UTF-8 text"):
        rg.read_jsonl(str(binary), ["output"])
    empty = write_lines(tmp_path / "empty.jsonl", ["", ""])
    with pytest.raises(rg.DatasetError, match=r"empty.jsonl holds no samples"):
        rg.read_jsonl(str(empty), ["output"])
    with pytest.raises(rg.DatasetError, match=r"cannot read .*absent.jsonl"):
        rg.read_jsonl(str(tmp_path / "absent.jsonl"), ["output"])
    with pytest.raises(rg.RougeGateError, match=r"max_samples must be a positive integer, got 0"):
        rg.read_jsonl(str(binary), ["output"], limit=0)


def test_read_outputs_returns_the_texts_in_order(tmp_path):
    path = write_lines(tmp_path / "out.jsonl", [json.dumps({"output": "b", "id": 1}), json.dumps({"output": "a"})])
    assert rg.read_outputs(str(path)) == ["b", "a"]
    with pytest.raises(rg.DatasetError, match=r"line 1 has no field 'text'"):
        rg.read_outputs(str(path), "text")


def test_shipped_sample_set_is_a_usable_summarization_set():
    samples = rg.read_jsonl(str(SAMPLE_SET), ["id", "article", "highlights"])
    assert 20 <= len(samples) <= 50
    assert len({s["id"] for s in samples}) == len(samples)
    assert len({s["article"] for s in samples}) == len(samples)
    for sample in samples:
        # cnn_dailymail's layout: one highlight sentence per line, which rougeLsum reads.
        sentences = sample["highlights"].split("\n")
        assert len(sentences) >= 2 and all(s.strip() == s and s for s in sentences), sample["id"]
        # Short enough for a small engine's input limit once the prompt suffix is added.
        assert 40 <= len(sample["article"].split()) <= 120, sample["id"]
        assert len(sample["highlights"].split()) < len(sample["article"].split()), sample["id"]


def test_summarize_prompt_follows_summarize_py():
    assert rg.summarize_prompt("  The team did n't lose.") == "The team didn't lose. TL;DR:"
    assert rg.summarize_prompt("Short.", suffix="\nSummary: ") == "Short.\nSummary:"
    with pytest.raises(rg.RougeGateError, match="must be a string"):
        rg.summarize_prompt(None)


# --------------------------------------------------------------------------- checks


@pytest.mark.parametrize("value, expected", [(0, 0.0), (100, 100.0), ("2.5", 2.5), (1.25, 1.25)])
def test_check_points_accepts_0_to_100(value, expected):
    assert rg.check_points(value) == expected


@pytest.mark.parametrize("value", [-0.01, 100.5, float("nan"), float("inf"), True, None, "two", [], {}])
def test_check_points_refuses_anything_else(value):
    with pytest.raises(rg.RougeGateError, match=r"threshold must be"):
        rg.check_points(value)


def test_check_metrics():
    assert rg.check_metrics(None) == list(rg.METRICS)
    assert rg.check_metrics(["rougeLsum", "rouge1"]) == ["rouge1", "rougeLsum"]
    assert rg.check_metrics("rouge2") == ["rouge2"]
    with pytest.raises(rg.RougeGateError, match=r"unknown ROUGE metric\(s\) bleu"):
        rg.check_metrics(["bleu", "rouge1"])
    with pytest.raises(rg.RougeGateError, match=r"at least one"):
        rg.check_metrics([])


# --------------------------------------------------------------------------- deciding

REFERENCE = {"rouge1": 30.0, "rouge2": 10.0, "rougeL": 22.0, "rougeLsum": 22.04}


def test_compare_passes_within_threshold_and_at_it():
    candidate = {"rouge1": 31.0, "rouge2": 8.0, "rougeL": 22.0, "rougeLsum": 24.09}
    result = rg.compare_scores(candidate, REFERENCE, 2.0)
    assert result["passed"] and result["failed_metrics"] == []
    assert result["drops"]["rouge2"] == pytest.approx(2.0)
    assert result["drops"]["rougeLsum"] == pytest.approx(-2.05)
    assert "largest drop: rouge2 2.00" in result["msg"]
    # A drop equal to the threshold passes although float subtraction overshoots it.
    assert 1.1 - 0.8 > 0.3
    assert rg.compare_scores(dict(REFERENCE, rougeLsum=0.8), dict(REFERENCE, rougeLsum=1.1), 0.3)["passed"]
    assert not rg.compare_scores(dict(REFERENCE, rougeLsum=0.79), dict(REFERENCE, rougeLsum=1.1), 0.3)["passed"]


def test_compare_fails_naming_metric_drop_and_threshold():
    candidate = dict(REFERENCE, rougeLsum=19.0, rouge1=26.5)
    result = rg.compare_scores(candidate, REFERENCE, 2.5)
    assert not result["passed"]
    assert result["failed_metrics"] == ["rouge1", "rougeLsum"]
    assert "rouge1 dropped 3.50 points (candidate 26.50, reference 30.00), more than the threshold of 2.50" \
        in result["msg"]
    assert "rougeLsum dropped 3.04 points" in result["msg"]
    # Only the gated metrics decide; the others are still reported.
    only = rg.compare_scores(candidate, REFERENCE, 2.5, metrics=["rouge2"])
    assert only["passed"] and only["drops"]["rouge1"] == pytest.approx(3.5)


@pytest.mark.parametrize("value", [float("nan"), float("inf"), None, "20", True])
def test_compare_never_decides_on_an_unmeasured_score(value):
    with pytest.raises(rg.RougeGateError, match=r"candidate's rouge2 score is .*could not measure"):
        rg.compare_scores(dict(REFERENCE, rouge2=value), REFERENCE, 1.0)


def test_compare_needs_both_sides_for_every_gated_metric():
    partial = {"rouge1": 30.0}
    with pytest.raises(rg.RougeGateError, match=r"no scores for rouge2, rougeL, rougeLsum"):
        rg.compare_scores(partial, partial, 1.0)
    with pytest.raises(rg.RougeGateError, match=r"the reference has no rouge2 score"):
        rg.compare_scores(REFERENCE, partial, 1.0)
    with pytest.raises(rg.RougeGateError, match=r"between 0 and 100"):
        rg.compare_scores(REFERENCE, REFERENCE, 101)


def test_gate_checks_its_settings_before_scoring(monkeypatch):
    def no_scoring(*args, **kwargs):
        raise AssertionError("scored before checking the settings")

    monkeypatch.setattr(rg, "score_outputs", no_scoring)
    with pytest.raises(rg.RougeGateError, match=r"threshold must be between 0 and 100"):
        rg.run_gate(["a b"], ["a b"], ["a b"], -1)
    with pytest.raises(rg.RougeGateError, match=r"min_agreement must be between 0 and 100"):
        rg.run_gate(["a b"], ["a b"], ["a b"], 1, min_agreement=120)
    with pytest.raises(rg.RougeGateError, match=r"unknown ROUGE metric"):
        rg.run_gate(["a b"], ["a b"], ["a b"], 1, metrics=["rouge3x"])


def test_missing_rouge_score_says_what_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "rouge_score", None)
    with pytest.raises(rg.MissingLibraryError, match=r"install rouge_score==0\.1\.2"):
        rg.score_outputs(["a"], ["a"])


# --------------------------------------------------------------------------- scoring (real rouge_score)


@needs_rouge
def test_scores_are_rouge_score_f_measures_in_points():
    # Unigrams: 5 of 6 match; bigrams: 3 of 5 (the cat, on the, the mat); LCS "the cat on the mat": 5 of 6.
    result = rg.score_outputs(["the cat lay on the mat"], ["The cat sat on the mat."], aggregation="mean")
    assert result["samples"] == 1 and result["empty"] == 0
    assert result["scores"]["rouge1"] == pytest.approx(500.0 / 6)
    assert result["scores"]["rouge2"] == pytest.approx(60.0)
    assert result["scores"]["rougeL"] == pytest.approx(500.0 / 6)
    assert rg.score_outputs(["x y"], ["p q"], aggregation="mean")["scores"] == dict.fromkeys(rg.METRICS, 0.0)
    assert rg.score_outputs(["p q"], ["p q"])["scores"] == pytest.approx(dict.fromkeys(rg.METRICS, 100.0))


@needs_rouge
def test_rouge_lsum_reads_the_newlines_in_the_texts():
    reference = "a b c d\ne f g h"
    # Both reference sentences in one predicted line, in the other order.
    prediction = "e f g h a b c d"
    scores = rg.score_outputs([prediction], [reference], aggregation="mean")["scores"]
    assert scores["rougeL"] == pytest.approx(50.0)
    assert scores["rougeLsum"] == pytest.approx(100.0)
    # Without the newline, rougeLsum is rougeL.
    flat = rg.score_outputs([prediction], [reference.replace("\n", " ")], aggregation="mean")["scores"]
    assert flat["rougeLsum"] == pytest.approx(flat["rougeL"])


@needs_rouge
def test_bootstrap_gives_summarize_py_figures_and_leaves_numpy_alone():
    import numpy as np
    from rouge_score import rouge_scorer, scoring

    samples = rg.read_jsonl(str(SAMPLE_SET), ["article", "highlights"])
    references = [s["highlights"] for s in samples]
    predictions = [s["article"].split(". ")[0] for s in samples]

    # What summarize.py does through evaluate's "rouge": the four metrics, no stemmer, a bootstrap
    # aggregator, numpy seeded with 0, the mid F-measure times 100.
    scorer = rouge_scorer.RougeScorer(list(rg.METRICS), use_stemmer=False)
    aggregator = scoring.BootstrapAggregator()
    for reference, prediction in zip(references, predictions):
        aggregator.add_scores(scorer.score(reference, prediction))
    np.random.seed(0)
    expected = dict((k, v.mid.fmeasure * 100) for k, v in aggregator.aggregate().items())

    np.random.seed(1234)
    before = np.random.get_state()[1].copy()
    result = rg.score_outputs(predictions, references)
    assert result["scores"] == pytest.approx(expected, abs=1e-12)
    assert (np.random.get_state()[1] == before).all()
    assert rg.score_outputs(predictions, references) == result

    mean = rg.score_outputs(predictions, references, aggregation="mean")["scores"]
    for metric in rg.METRICS:
        assert abs(mean[metric] - result["scores"][metric]) < 2.0
        assert 0.0 < mean[metric] < 100.0


@needs_rouge
def test_stemming_is_off_unless_asked_for():
    assert rg.score_outputs(["trains ran"], ["train ran"], aggregation="mean")["scores"]["rouge1"] \
        == pytest.approx(50.0)
    assert rg.score_outputs(["trains ran"], ["train ran"], aggregation="mean", use_stemmer=True)["scores"]["rouge1"] \
        == pytest.approx(100.0)


@needs_rouge
def test_scoring_never_measures_nothing():
    with pytest.raises(rg.RougeGateError, match=r"no reference summaries"):
        rg.score_outputs([], [])
    with pytest.raises(rg.RougeGateError, match=r"reference summary 1 is empty"):
        rg.score_outputs(["a", "b"], ["a", "  "])
    with pytest.raises(rg.RougeGateError, match=r"candidate outputs has 1 entries but there are 2 reference"):
        rg.score_outputs(["a"], ["a", "b"], what="candidate outputs")
    with pytest.raises(rg.RougeGateError, match=r"outputs\[1\] is null, not a string"):
        rg.score_outputs(["a", None], ["a", "b"])
    with pytest.raises(rg.RougeGateError, match=r"every one of the 2 outputs is empty"):
        rg.score_outputs(["", " \n"], ["a", "b"])
    with pytest.raises(rg.RougeGateError, match=r"outputs is empty"):
        rg.score_outputs([], ["a"])
    with pytest.raises(rg.RougeGateError, match=r"aggregation must be one of bootstrap, mean"):
        rg.score_outputs(["a"], ["a"], aggregation="median")
    # One empty answer among others is a (bad) measurement, counted and scored 0.
    some = rg.score_outputs(["a b", ""], ["a b", "c d"], aggregation="mean")
    assert some["empty"] == 1 and some["scores"]["rouge1"] == pytest.approx(50.0)


@needs_rouge
def test_gate_on_the_sample_set_passes_a_faithful_and_fails_a_degraded_candidate():
    samples = rg.read_jsonl(str(SAMPLE_SET), ["article", "highlights"])
    references = [s["highlights"] for s in samples]
    # A stand-in "model": the article's first two sentences; the degraded one drops every other word.
    faithful = [". ".join(s["article"].split(". ")[:2]) for s in samples]
    degraded = [" ".join(text.split()[::2]) for text in faithful]

    passed = rg.run_gate(references, list(faithful), faithful, 2.5, min_agreement=99)
    assert passed["passed"] and passed["drops"] == dict.fromkeys(rg.METRICS, 0.0)
    assert passed["agreement"]["identical"] == len(samples) == passed["samples"]
    assert passed["agreement"]["scores"] == dict.fromkeys(rg.METRICS, 100.0)
    assert passed["msg"].endswith("; %d of %d outputs identical to the reference model's"
                                  % (len(samples), len(samples)))

    failed = rg.run_gate(references, degraded, faithful, 2.5)
    assert not failed["passed"] and "rouge2" in failed["failed_metrics"]
    assert failed["drops"]["rouge2"] > 2.5
    assert "rouge2 dropped %.2f points" % failed["drops"]["rouge2"] in failed["msg"]
    assert "threshold of 2.50" in failed["msg"]
    table = rg.format_table(failed)
    assert table.splitlines()[0].split() == ["metric", "reference", "candidate", "drop"]
    assert "FAIL" in table and table.endswith("threshold 2.50 points, %d samples: FAILED" % len(samples))


@needs_rouge
def test_agreement_catches_a_degraded_engine_whose_rouge_barely_moves():
    references = ["the river rose after the storm\nhomes were flooded"] * 4
    reference_outputs = ["zq river xv", "the storm kl", "mm homes pp", "flooded rr ss"]
    # The same words against the human summaries, but not the reference model's text.
    candidate = ["river zq xv", "storm the kl", "homes mm pp", "rr flooded ss"]
    result = rg.run_gate(references, candidate, reference_outputs, 5.0, aggregation="mean", min_agreement=99)
    assert result["drops"]["rouge1"] == pytest.approx(0.0)
    assert not result["passed"] and result["failed_metrics"] == []
    # Same words in another order: unigrams agree fully, word order does not.
    assert result["agreement"]["scores"]["rouge1"] == pytest.approx(100.0)
    assert result["agreement_failed_metrics"] == ["rouge2", "rougeL", "rougeLsum"]
    assert result["agreement"]["identical"] == 0
    assert result["msg"].startswith("ROUGE regression gate failed: rouge2 agreement with the reference model's "
                                    "outputs is 0.00 points, below the minimum of 99.00")
    assert not math.isnan(result["agreement"]["scores"]["rougeL"])


@needs_rouge
def test_identical_empty_answers_agree_but_all_empty_cannot_be_measured():
    agreed = rg.agreement(["", "a b"], ["", "a b"])
    assert agreed["identical"] == 2 and agreed["scores"]["rouge1"] == 100.0
    with pytest.raises(rg.RougeGateError, match=r"every one of the 1 candidate outputs is empty"):
        rg.agreement([""], [""])


def test_stored_reference_scores_are_checked_before_scoring(monkeypatch):
    def no_scoring(*args, **kwargs):
        raise AssertionError("scored before checking the settings")

    monkeypatch.setattr(rg, "score_outputs", no_scoring)
    with pytest.raises(rg.RougeGateError, match=r"exactly one of them"):
        rg.run_gate(["a"], ["a"], ["a"], 1, reference_scores=REFERENCE)
    with pytest.raises(rg.RougeGateError, match=r"exactly one of them"):
        rg.run_gate(["a"], ["a"], None, 1)
    with pytest.raises(rg.RougeGateError, match=r"reference_scores lacks rougeL, rougeLsum; store all four"):
        rg.run_gate(["a"], ["a"], None, 1, reference_scores={"rouge1": 1, "rouge2": 2})
    with pytest.raises(rg.RougeGateError, match=r"unknown metric\(s\) bleu"):
        rg.run_gate(["a"], ["a"], None, 1, reference_scores=dict(REFERENCE, bleu=3))
    with pytest.raises(rg.RougeGateError, match=r"reference_scores.rouge2 must be between 0 and 100"):
        rg.run_gate(["a"], ["a"], None, 1, reference_scores=dict(REFERENCE, rouge2=float("nan")))
    with pytest.raises(rg.RougeGateError, match=r"must map each of rouge1"):
        rg.run_gate(["a"], ["a"], None, 1, reference_scores=[1, 2, 3, 4])
    with pytest.raises(rg.RougeGateError, match=r"cannot be used with stored reference scores"):
        rg.run_gate(["a"], ["a"], None, 1, reference_scores=REFERENCE, min_agreement=99)


@needs_rouge
def test_gate_against_stored_reference_scores_matches_the_full_run():
    samples = rg.read_jsonl(str(SAMPLE_SET), ["article", "highlights"])
    references = [s["highlights"] for s in samples]
    faithful = [". ".join(s["article"].split(". ")[:2]) for s in samples]
    degraded = [" ".join(text.split()[::2]) for text in faithful]
    full = rg.run_gate(references, degraded, faithful, 2.5)
    stored = rg.run_gate(references, degraded, None, 2.5, reference_scores=full["scores"]["reference"])
    assert stored["scores"] == full["scores"] and stored["drops"] == full["drops"]
    assert stored["passed"] is False and stored["failed_metrics"] == full["failed_metrics"]
    assert stored["empty_outputs"] == {"candidate": 0, "reference": None}
    as_text = dict((m, "%.6f" % v) for m, v in full["scores"]["reference"].items())
    assert rg.run_gate(references, faithful, None, 2.5, reference_scores=as_text)["passed"]
