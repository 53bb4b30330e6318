# -*- coding: utf-8 -*-
# Copyright: (c) 2026, tritonfleet maintainers
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The ROUGE regression gate: a served engine's summaries against its reference model's.

* :func:`read_jsonl` reads a summarization set (one JSON object per line, the
  article and the reference summary under named fields, as cnn_dailymail has
  ``article`` and ``highlights``) or a file of model outputs.
* :func:`summarize_prompt` turns an article into the prompt that TensorRT-LLM's
  ``examples/summarize.py`` sends, so both models read the same text.
* :func:`score_outputs` computes rouge1, rouge2, rougeL and rougeLsum with the
  ``rouge_score`` package, set up as summarize.py's metric (Hugging Face
  ``evaluate``'s "rouge") sets it up, and returns points (0..100).
* :func:`compare_scores` decides: the gate fails when a metric of the candidate
  is more than ``threshold`` points below the reference's.
* :func:`run_gate` does all of it for two lists of outputs.

The gate never passes on something it could not measure: no samples, outputs
that are missing or all empty, a score that is NaN, a threshold that is not a
number between 0 and 100 all raise :class:`RougeGateError` (or a subclass),
whose message says what to fix.

rouge_score is imported when scores are computed, not when this file is
imported: Ansible loads every module_utils file a module names, and reading a
dataset or checking a threshold must work (and be testable) without it.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import math
import sys

METRICS = ("rouge1", "rouge2", "rougeL", "rougeLsum")
AGGREGATIONS = ("bootstrap", "mean")
# summarize.py appends this to every article; its models were asked for a
# summary this way, and the seed flow's figures were measured with it.
SUMMARIZE_SUFFIX = " TL;DR: "
# summarize.py seeds numpy's global generator with 0 before computing the
# metric, whose aggregate is a bootstrap estimate: the same seed gives the
# same figures as summarize.py for the same outputs.
BOOTSTRAP_SEED = 0
ROUGE_SCORE_PIN = "rouge_score==0.1.2"
DROP_TOLERANCE = 1e-9


class RougeGateError(Exception):
    """The gate cannot measure (or decide); the message says what to fix."""


class DatasetError(RougeGateError):
    """A JSONL file is unreadable, does not parse, or lacks a field."""


class MissingLibraryError(RougeGateError):
    """rouge_score (or numpy) cannot be imported by this Python."""


def _import_rouge_score():
    try:
        from rouge_score import rouge_scorer, scoring
    except ImportError as exc:
        raise MissingLibraryError(
            "scoring needs the Python package rouge_score, which this Python (%s) cannot import (%s); install %s "
            "(it brings nltk, absl-py, numpy and six) into the interpreter that runs the gate"
            % (sys.executable, exc, ROUGE_SCORE_PIN))
    return rouge_scorer, scoring


# --------------------------------------------------------------------------- input


def read_jsonl(path, fields, limit=None):
    """Read ``path``, one JSON object per line, each holding a string under every name in ``fields``.

    Returns a list of dicts holding only ``fields`` (the first ``limit`` samples
    when ``limit`` is given). Blank lines are skipped: a trailing newline, or a
    blank line between samples, is no error. Anything else that is not an
    object with those string fields raises :class:`DatasetError` naming the
    file and the line (counted from 1). A file without a sample is an error
    too: the gate would have nothing to measure.
    """
    fields = list(fields)
    if not fields:
        raise DatasetError("read_jsonl needs at least one field name")
    if limit is not None:
        limit = _positive_int(limit, "max_samples")
    samples = []
    try:
        handle = open(path, "rb")
    except (IOError, OSError) as exc:
        raise DatasetError("cannot read %s: %s" % (path, exc))
    with handle:
        for number, raw in enumerate(handle, start=1):
            if limit is not None and len(samples) >= limit:
                break
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise DatasetError("%s line %d is not UTF-8 text (%s)" % (path, number, exc))
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except ValueError as exc:
                raise DatasetError("%s line %d is not valid JSON (%s); the file must hold one JSON object per line"
                                   % (path, number, exc))
            if not isinstance(record, dict):
                raise DatasetError("%s line %d holds a JSON %s, not an object with the fields %s"
                                   % (path, number, type(record).__name__, ", ".join(fields)))
            sample = {}
            for field in fields:
                if field not in record:
                    raise DatasetError("%s line %d has no field %r (it has: %s)"
                                       % (path, number, field, ", ".join(sorted(record)) or "no fields"))
                value = record[field]
                if not isinstance(value, str):
                    raise DatasetError("%s line %d: field %r must be a string, not %s"
                                       % (path, number, field, "null" if value is None else type(value).__name__))
                sample[field] = value
            samples.append(sample)
    if not samples:
        raise DatasetError("%s holds no samples; the gate needs at least one line with the fields %s"
                           % (path, ", ".join(fields)))
    return samples


def read_outputs(path, field="output", limit=None):
    """The strings under ``field`` of each line of a JSONL file of model outputs, in order."""
    return [sample[field] for sample in read_jsonl(path, [field], limit=limit)]


def summarize_prompt(article, suffix=SUMMARIZE_SUFFIX):
    """The prompt summarize.py builds from ``article``.

    The article, then `` TL;DR: ``, stripped at both ends, and with the
    detached contraction `` n't`` (as the dataset's tokenised text writes it)
    joined to its word.
    """
    if not isinstance(article, str):
        raise RougeGateError("an article must be a string, not %s" % type(article).__name__)
    return (article + suffix).strip().replace(" n't", "n't")


# --------------------------------------------------------------------------- checks


def _positive_int(value, name):
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise RougeGateError("%s must be a positive integer, got %r" % (name, value))
    return value


def check_points(value, name="threshold"):
    """``value`` as a float in 0..100 (points of ROUGE); anything else raises :class:`RougeGateError`.

    Numeric strings count, since templated Ansible arguments may arrive as
    text. NaN and infinities are refused: a comparison with them is always
    false, so the gate could never fail.
    """
    if isinstance(value, bool) or value is None:
        raise RougeGateError("%s must be a number of ROUGE points between 0 and 100, got %r" % (name, value))
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise RougeGateError("%s must be a number of ROUGE points between 0 and 100, got %r" % (name, value))
    if math.isnan(number) or not 0.0 <= number <= 100.0:
        raise RougeGateError("%s must be between 0 and 100 ROUGE points (scores are F-measures times 100), got %r"
                             % (name, value))
    return number


def check_metrics(metrics):
    """The metrics to gate on, in the canonical order; unknown or no metrics raise :class:`RougeGateError`."""
    if metrics is None:
        return list(METRICS)
    if isinstance(metrics, str):
        metrics = [metrics]
    unknown = [m for m in metrics if m not in METRICS]
    if unknown:
        raise RougeGateError("unknown ROUGE metric(s) %s; choose from %s"
                             % (", ".join(map(str, unknown)), ", ".join(METRICS)))
    if not metrics:
        raise RougeGateError("metrics must name at least one of %s" % ", ".join(METRICS))
    return [m for m in METRICS if m in metrics]


def _check_outputs(outputs, what, expected):
    if not isinstance(outputs, (list, tuple)):
        raise RougeGateError("%s must be a list of strings, not %s" % (what, type(outputs).__name__))
    if not outputs:
        raise RougeGateError("%s is empty; the gate cannot measure without samples" % what)
    for index, text in enumerate(outputs):
        if not isinstance(text, str):
            # None is what a failed request leaves behind: that is no measurement.
            raise RougeGateError("%s[%d] is %s, not a string; every sample needs an answer"
                                 % (what, index, "null" if text is None else type(text).__name__))
    if expected is not None and len(outputs) != expected:
        raise RougeGateError("%s has %d entries but there are %d reference summaries; outputs must be given for "
                             "every sample, in the dataset's order" % (what, len(outputs), expected))
    empty = sum(1 for text in outputs if not text.strip())
    if empty == len(outputs):
        raise RougeGateError("every one of the %d %s is empty; an engine that answers nothing cannot be measured"
                             % (len(outputs), what))
    return empty


# --------------------------------------------------------------------------- scoring


def score_outputs(predictions, references, use_stemmer=False, aggregation="bootstrap", what="outputs"):
    """ROUGE of ``predictions`` against ``references`` (same length, same order), in points.

    Set up as summarize.py's metric is: all four metrics, no stemming, the
    default tokenizer, and rougeLsum computed on the newlines already in the
    texts (cnn_dailymail's highlights hold one sentence per line; no sentence
    splitter runs, which also keeps nltk's downloadable data out of it).
    ``aggregation`` "bootstrap" is rouge_score's bootstrap aggregate (its
    "mid") with numpy's global generator seeded as summarize.py seeds it, so
    the figures are summarize.py's; the generator's state is put back after.
    "mean" is the plain mean of the per-sample F-measures.

    Returns ``{"scores": {metric: points}, "samples": n, "empty": k}``.
    """
    if aggregation not in AGGREGATIONS:
        raise RougeGateError("aggregation must be one of %s, got %r" % (", ".join(AGGREGATIONS), aggregation))
    if not isinstance(references, (list, tuple)) or not references:
        raise RougeGateError("there are no reference summaries; the gate cannot measure without samples")
    for index, text in enumerate(references):
        if not isinstance(text, str) or not text.strip():
            raise RougeGateError("reference summary %d is empty or not a string; every sample needs one" % index)
    empty = _check_outputs(predictions, what, len(references))

    rouge_scorer, scoring = _import_rouge_score()
    scorer = rouge_scorer.RougeScorer(list(METRICS), use_stemmer=bool(use_stemmer))
    per_sample = [scorer.score(reference, prediction) for reference, prediction in zip(references, predictions)]

    if aggregation == "bootstrap":
        import numpy as np  # rouge_score depends on numpy: importable when rouge_score is
        aggregator = scoring.BootstrapAggregator()
        for score in per_sample:
            aggregator.add_scores(score)
        state = np.random.get_state()
        try:
            np.random.seed(BOOTSTRAP_SEED)
            aggregated = aggregator.aggregate()
        finally:
            np.random.set_state(state)
        fmeasures = dict((metric, float(aggregated[metric].mid.fmeasure)) for metric in METRICS)
    else:
        fmeasures = dict((metric, math.fsum(s[metric].fmeasure for s in per_sample) / len(per_sample))
                         for metric in METRICS)

    scores = {}
    for metric in METRICS:
        points = fmeasures[metric] * 100.0
        if math.isnan(points) or math.isinf(points):
            raise RougeGateError("%s of the %s is %r; the gate cannot decide on a score it could not measure"
                                 % (metric, what, points))
        scores[metric] = points
    return {"scores": scores, "samples": len(references), "empty": empty}


def compare_scores(candidate, reference, threshold, metrics=None):
    """Decide the gate: a metric fails when the candidate is more than ``threshold`` points below the reference.

    ``candidate`` and ``reference`` map metric names to points. Returns
    ``{"passed", "drops", "failed_metrics", "threshold", "metrics", "msg"}``;
    ``drops`` is reference minus candidate for every metric present (negative
    when the candidate scores higher), ``failed_metrics`` lists the gated
    metrics over the threshold, and ``msg`` names each with its drop and the
    threshold.
    """
    threshold = check_points(threshold)
    metrics = check_metrics(metrics)
    drops = {}
    for metric in METRICS:
        if metric not in candidate and metric not in reference:
            continue
        values = []
        for side, table in (("candidate", candidate), ("reference", reference)):
            if metric not in table:
                raise RougeGateError("the %s has no %s score; both sides need every metric" % (side, metric))
            value = table[metric]
            if isinstance(value, bool) or not isinstance(value, (int, float)) or math.isnan(value) \
                    or math.isinf(value):
                raise RougeGateError("the %s's %s score is %r; the gate cannot decide on a score it could not "
                                     "measure" % (side, metric, value))
            values.append(float(value))
        drops[metric] = values[1] - values[0]
    missing = [m for m in metrics if m not in drops]
    if missing:
        raise RougeGateError("no scores for %s; both sides need every gated metric" % ", ".join(missing))
    # Points are differences of floats: 1.1 - 0.8 is 0.30000000000000004, and a drop equal to the
    # threshold as printed must pass.
    failed = [m for m in metrics if drops[m] > threshold + DROP_TOLERANCE]
    if failed:
        msg = "ROUGE regression gate failed: " + "; ".join(
            "%s dropped %.2f points (candidate %.2f, reference %.2f), more than the threshold of %.2f"
            % (m, drops[m], candidate[m], reference[m], threshold) for m in failed)
    else:
        worst = max(metrics, key=lambda m: drops[m])
        msg = ("ROUGE regression gate passed: no metric dropped more than %.2f points (largest drop: %s %.2f)"
               % (threshold, worst, drops[worst]))
    return {"passed": not failed, "drops": drops, "failed_metrics": failed, "threshold": threshold,
            "metrics": metrics, "msg": msg}


def agreement(candidate_outputs, reference_outputs):
    """How closely the candidate reproduces the reference model's own outputs.

    With greedy decoding, a faithful engine gives the reference model's tokens,
    so its text is identical; this measures that directly, independent of how
    well either model summarises (a random-weight test model scores near zero
    against human summaries, faithful or not). Returns ``{"identical": n,
    "samples": n, "scores": {metric: points}}`` with the candidate scored
    against the reference model's outputs (plain mean).
    """
    if not isinstance(reference_outputs, (list, tuple)) or not reference_outputs:
        raise RougeGateError("reference_outputs is empty; the gate cannot measure without samples")
    _check_outputs(candidate_outputs, "candidate outputs", len(reference_outputs))
    identical = sum(1 for a, b in zip(candidate_outputs, reference_outputs) if a == b)
    rouge_scorer = _import_rouge_score()[0]
    scorer = rouge_scorer.RougeScorer(list(METRICS), use_stemmer=False)
    scores = {}
    for metric in METRICS:
        values = []
        for candidate, reference in zip(candidate_outputs, reference_outputs):
            if candidate == reference:
                # Identical texts agree fully, even when empty (rouge_score gives 0 for empty texts).
                values.append(1.0)
            else:
                values.append(scorer.score(reference, candidate)[metric].fmeasure)
        scores[metric] = math.fsum(values) / len(values) * 100.0
    return {"identical": identical, "samples": len(reference_outputs), "scores": scores}


def check_scores(scores, what="reference_scores"):
    """A stored set of scores as ``{metric: points}`` for all four metrics; anything else raises.

    For a reference measured once and kept (the reference model's scores
    depend on the checkpoint, the set and the generation settings, not on the
    engine), so the gate need not run the reference model for every engine.
    """
    if not isinstance(scores, dict):
        raise RougeGateError("%s must map each of %s to points, not %s"
                             % (what, ", ".join(METRICS), type(scores).__name__))
    unknown = sorted(str(k) for k in scores if k not in METRICS)
    if unknown:
        raise RougeGateError("%s has unknown metric(s) %s; use %s" % (what, ", ".join(unknown), ", ".join(METRICS)))
    missing = [m for m in METRICS if m not in scores]
    if missing:
        raise RougeGateError("%s lacks %s; store all four metrics" % (what, ", ".join(missing)))
    return dict((m, check_points(scores[m], "%s.%s" % (what, m))) for m in METRICS)


def run_gate(references, candidate_outputs, reference_outputs, threshold, metrics=None, use_stemmer=False,
             aggregation="bootstrap", min_agreement=None, reference_scores=None):
    """Score both sides against ``references`` and decide.

    Checks the settings before any scoring, so a bad one fails fast. The
    reference side is either ``reference_outputs`` (scored here) or
    ``reference_scores`` (stored points, see :func:`check_scores`; they must
    come from the same samples, aggregation and stemming). ``min_agreement``
    (points, optional; needs ``reference_outputs``) adds a second condition:
    the candidate's outputs scored against the reference model's outputs must
    reach it on every gated metric. Returns the dict of
    :func:`compare_scores` plus ``samples``, ``scores`` (``candidate`` and
    ``reference``), ``empty_outputs`` and, with ``min_agreement``,
    ``agreement``.
    """
    threshold = check_points(threshold)
    metrics = check_metrics(metrics)
    if (reference_outputs is None) == (reference_scores is None):
        raise RougeGateError("give the reference side either as the reference model's outputs or as its stored "
                             "scores, exactly one of them")
    if reference_scores is not None:
        reference_scores = check_scores(reference_scores)
    if min_agreement is not None:
        min_agreement = check_points(min_agreement, "min_agreement")
        if reference_outputs is None:
            raise RougeGateError("min_agreement compares the candidate's outputs with the reference model's "
                                 "outputs; it cannot be used with stored reference scores")
    candidate = score_outputs(candidate_outputs, references, use_stemmer, aggregation, "candidate outputs")
    if reference_scores is not None:
        reference = {"scores": reference_scores, "empty": None}
    else:
        reference = score_outputs(reference_outputs, references, use_stemmer, aggregation, "reference outputs")
    result = compare_scores(candidate["scores"], reference["scores"], threshold, metrics)
    result.update(samples=candidate["samples"],
                  scores={"candidate": candidate["scores"], "reference": reference["scores"]},
                  empty_outputs={"candidate": candidate["empty"], "reference": reference["empty"]},
                  aggregation=aggregation, use_stemmer=bool(use_stemmer))
    if min_agreement is not None:
        agreed = agreement(candidate_outputs, reference_outputs)
        agreed["min_agreement"] = min_agreement
        result["agreement"] = agreed
        short = [m for m in metrics if agreed["scores"][m] < min_agreement]
        if short:
            result["passed"] = False
            result["agreement_failed_metrics"] = short
            text = "; ".join("%s agreement with the reference model's outputs is %.2f points, below the minimum "
                             "of %.2f" % (m, agreed["scores"][m], min_agreement) for m in short)
            if result["failed_metrics"]:
                result["msg"] += "; " + text
            else:
                result["msg"] = "ROUGE regression gate failed: " + text
        else:
            result["agreement_failed_metrics"] = []
            result["msg"] += "; %d of %d outputs identical to the reference model's" % (
                agreed["identical"], agreed["samples"])
    return result


def format_table(result):
    """A fixed-width table of a :func:`run_gate` result, for logs and reports."""
    lines = ["%-10s %10s %10s %8s" % ("metric", "reference", "candidate", "drop")]
    for metric in METRICS:
        if metric in result["drops"]:
            lines.append("%-10s %10.2f %10.2f %8.2f%s" % (
                metric, result["scores"]["reference"][metric], result["scores"]["candidate"][metric],
                result["drops"][metric], "  FAIL" if metric in result["failed_metrics"] else ""))
    verdict = "passed" if result["passed"] else "FAILED"
    lines.append("threshold %.2f points, %d samples: %s" % (result["threshold"], result["samples"], verdict))
    return "\n".join(lines)
