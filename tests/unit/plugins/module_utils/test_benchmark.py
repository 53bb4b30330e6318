# -*- coding: utf-8 -*-
# Copyright: (c) 2026, tritonfleet maintainers
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""plugins/module_utils/benchmark.py and benchmark_client.py: statistics, aiperf's export, compare, the check."""

from __future__ import annotations

import copy
import json
import pathlib
import threading

import pytest

from ansible_collections.tritonfleet.serving.plugins.module_utils import benchmark as bm
from ansible_collections.tritonfleet.serving.plugins.module_utils import benchmark_client as bc
from ansible_collections.tritonfleet.serving.plugins.module_utils.triton_client import TritonError

AIPERF_EXPORT = pathlib.Path(__file__).with_name("benchmark_aiperf_export.json")


# ---------------------------------------------------------------- percentiles

@pytest.mark.parametrize("q, expected", [(0, 1.0), (50, 5.5), (95, 9.55), (99, 9.91), (100, 10.0), (25, 3.25)])
def test_percentile_interpolates_between_ranks_as_numpy_does(q, expected):
    assert bm.percentile(list(range(10, 0, -1)), q) == pytest.approx(expected)


def test_percentile_edges():
    assert bm.percentile([], 50) is None
    assert bm.percentile([7.0], 99) == 7.0
    with pytest.raises(ValueError):
        bm.percentile([1.0], 101)


def test_percentile_matches_numpy():
    np = pytest.importorskip("numpy")
    values = [0.3, 12.0, 5.5, 5.5, 9.1, 0.01, 44.0, 3.3, 2.0]
    for q in (50, 95, 99):
        assert bm.percentile(values, q) == pytest.approx(float(np.percentile(values, q)))


def test_summarize_scales_and_skips_none():
    out = bm.summarize([0.010, None, 0.020, 0.030], 1000.0)
    assert out == {"mean": 20.0, "p50": 20.0, "p95": 29.0, "p99": 29.8}
    assert bm.summarize([]) == {"mean": None, "p50": None, "p95": None, "p99": None}


# ---------------------------------------------------------------- levels

def _rec(latency, first, tokens, ok=True, error=None):
    return {"ok": ok, "latency_s": latency, "first_token_s": first, "tokens": tokens, "error": error}


def test_level_from_records_figures():
    records = [_rec(0.100, 0.010, 10), _rec(0.200, 0.020, 19), _rec(None, None, 0, ok=False, error="boom")]
    level = bm.level_from_records(2, records, 0.5)
    assert level["requests"] == 3 and level["succeeded"] == 2 and level["errors"] == 1
    assert level["error_samples"] == ["boom"]
    assert level["output_tokens"] == 29
    assert level["output_tokens_per_s"] == 58.0
    assert level["request_latency_ms"]["p50"] == 150.0
    assert level["time_to_first_token_ms"]["mean"] == 15.0
    # (100 - 10) / 9 = 10 ms and (200 - 20) / 18 = 10 ms
    assert level["inter_token_latency_ms"] == {"mean": 10.0, "p50": 10.0, "p95": 10.0, "p99": 10.0}


def test_level_with_one_token_answers_has_no_inter_token_latency():
    level = bm.level_from_records(1, [_rec(0.05, 0.05, 1)], 0.05)
    assert level["inter_token_latency_ms"]["p50"] is None
    assert level["time_to_first_token_ms"]["p50"] == 50.0


def test_level_from_the_real_aiperf_export():
    data = json.loads(AIPERF_EXPORT.read_text())
    level = bm.level_from_aiperf(2, data)
    assert level["concurrency"] == 2
    assert level["succeeded"] == 8 and level["errors"] == 0 and level["requests"] == 8
    assert level["request_latency_ms"]["p50"] == round(data["request_latency"]["p50"], 3)
    assert level["time_to_first_token_ms"]["p99"] == round(data["time_to_first_token"]["p99"], 3)
    assert level["inter_token_latency_ms"]["mean"] == round(data["inter_token_latency"]["avg"], 3)
    assert level["output_tokens_per_s"] == round(data["output_token_throughput"]["avg"], 3)
    assert level["output_tokens"] == 82
    assert level["duration_s"] == pytest.approx(data["benchmark_duration"]["avg"], abs=1e-6)


def test_aiperf_export_converts_units_and_counts_errors():
    data = {
        "request_latency": {"unit": "us", "avg": 2000.0, "p50": 1500.0, "p95": 4000.0, "p99": 5000.0},
        "time_to_first_token": {"unit": "s", "avg": 0.001, "p50": 0.001},
        "request_count": {"unit": "requests", "avg": 6},
        "error_request_count": {"unit": "requests", "avg": 2},
        "error_summary": [{"error_details": {"code": 400, "message": "too long"}, "count": 2}],
    }
    level = bm.level_from_aiperf(4, data)
    assert level["request_latency_ms"] == {"mean": 2.0, "p50": 1.5, "p95": 4.0, "p99": 5.0}
    assert level["time_to_first_token_ms"]["p50"] == 1.0
    assert level["errors"] == 2 and level["requests"] == 8
    assert level["error_samples"] == ["too long (2 times)"]
    assert level["output_tokens_per_s"] is None


def test_aiperf_export_without_latency_is_an_error():
    with pytest.raises(bm.BenchmarkError, match="no request_latency"):
        bm.level_from_aiperf(1, {"request_count": {"avg": 0}})
    with pytest.raises(bm.BenchmarkError, match="unit"):
        bm.level_from_aiperf(1, {"request_latency": {"unit": "fortnights", "p50": 1}})


# ---------------------------------------------------------------- reports, compare, check

def _stats(v):
    return {"mean": v, "p50": v, "p95": v * 1.5, "p99": v * 2}


def _level(conc, latency=100.0, ttft=10.0, itl=5.0, tps=200.0, errors=0):
    return {"concurrency": conc, "requests": 10, "succeeded": 10 - errors, "errors": errors,
            "request_latency_ms": _stats(latency), "time_to_first_token_ms": _stats(ttft),
            "inter_token_latency_ms": _stats(itl), "output_tokens_per_s": tps}


def _report(*levels, tool="client"):
    return bm.build_report({"name": "gateway"}, {}, {tool: {"levels": list(levels)}}, created="2026-01-01T00:00:00Z")


def test_build_report_sorts_levels_and_validates():
    report = _report(_level(4), _level(1))
    assert [lv["concurrency"] for lv in report["tools"]["client"]["levels"]] == [1, 4]
    assert bm.validate_report(report) is report
    with pytest.raises(bm.BenchmarkError, match="schema"):
        bm.validate_report(dict(report, schema="other/1"))


def test_identical_reports_pass():
    ref = _report(_level(1), _level(2))
    failures, checked = bm.check_against_reference(copy.deepcopy(ref), ref, 10, 10)
    assert failures == [] and checked == 2 * len(bm.DEFAULT_CHECK_FIGURES)


def test_better_figures_pass():
    ref = _report(_level(1))
    cand = _report(_level(1, latency=50.0, ttft=5.0, itl=1.0, tps=900.0))
    assert bm.check_against_reference(cand, ref, 0, 0)[0] == []


def test_worse_latency_fails_naming_figure_values_and_tolerance():
    ref = _report(_level(1))
    cand = _report(_level(1, latency=125.0))
    failures, _checked = bm.check_against_reference(cand, ref, 10, 10)
    text = "\n".join(failures)
    assert "client at concurrency 1: request_latency_ms.p50 rose from 100.000 (reference) to 125.000, +25.00%" in text
    assert "against a tolerance of 10.000%" in text
    assert len(failures) == 3  # p50, p95, p99 all rose by 25 %


def test_lower_throughput_fails():
    failures, _checked = bm.check_against_reference(_report(_level(1, tps=150.0)), _report(_level(1)), 10, 10)
    assert failures == ["client at concurrency 1: output_tokens_per_s fell from 200.000 (reference) to 150.000, "
                        "-25.00% against a tolerance of 10.000%"]


@pytest.mark.parametrize("latency, tps, ok", [
    (110.0, 180.0, True),     # exactly the tolerance both ways passes
    (110.001, 200.0, False),  # just past it on latency
    (100.0, 179.99, False),   # just past it on throughput
])
def test_tolerance_edges(latency, tps, ok):
    cand = _report(_level(1, latency=latency, tps=tps))
    failures, _checked = bm.check_against_reference(cand, _report(_level(1)), 10, 10,
                                                    figures=["request_latency_ms.p50", "output_tokens_per_s"])
    assert (failures == []) is ok, failures


def test_decimal_edge_stays_an_edge():
    # 0.3 -> 0.33 is +10 % exactly, though the float arithmetic says 10.000000000000009
    ref = _report(_level(1, latency=0.3))
    cand = _report(_level(1, latency=0.33))
    assert bm.check_against_reference(cand, ref, 10, 10, figures=["request_latency_ms.p50"])[0] == []


def test_errors_appearing_fail_even_from_zero():
    failures, _checked = bm.check_against_reference(_report(_level(1, errors=1)), _report(_level(1)), 50, 50,
                                                    figures=["errors"])
    assert failures and "errors rose from 0 (reference) to 1" in failures[0]


def test_a_level_or_figure_not_measured_fails():
    ref = _report(_level(1), _level(2))
    cand = _report(_level(1))
    failures, _checked = bm.check_against_reference(cand, ref, 10, 10)
    assert failures == ["client at concurrency 2: measured in the reference, not in this run"]
    cand = _report(_level(1), _level(2))
    cand["tools"]["client"]["levels"][1]["output_tokens_per_s"] = None
    failures, _checked = bm.check_against_reference(cand, ref, 10, 10)
    assert failures == ["client at concurrency 2: output_tokens_per_s is 200.000 in the reference and was not measured"]


def test_a_level_only_the_candidate_has_is_ignored_by_the_check():
    assert bm.check_against_reference(_report(_level(1), _level(8)), _report(_level(1)), 10, 10)[0] == []


@pytest.mark.parametrize("tolerance", [-1, None, 1000])
def test_tolerance_out_of_range_is_an_error(tolerance):
    with pytest.raises(bm.BenchmarkError, match="tolerance"):
        bm.check_against_reference(_report(_level(1)), _report(_level(1)), tolerance, 10)


def test_unknown_or_unjudged_figures_are_errors():
    with pytest.raises(bm.BenchmarkError, match="unknown figure"):
        bm.check_against_reference(_report(_level(1)), _report(_level(1)), 10, 10, figures=["latency"])
    with pytest.raises(bm.BenchmarkError, match="no better direction"):
        bm.check_against_reference(_report(_level(1)), _report(_level(1)), 10, 10, figures=["requests"])


def test_compare_rows_and_table():
    left = _report(_level(1), _level(2))
    right = _report(_level(1, latency=120.0), _level(4))
    rows = bm.compare_reports(left, right, figures=["request_latency_ms.p50", "requests"])
    by = {(r["concurrency"], r["figure"]): r for r in rows}
    assert by[(1, "request_latency_ms.p50")]["change_percent"] == 20.0
    assert by[(2, "requests")]["right"] is None and by[(4, "requests")]["left"] is None
    table = bm.format_table(rows, "old", "new")
    assert table[0].split() == ["tool", "conc", "figure", "old", "new", "change", "%"]
    line = next(t for t in table if t.startswith("client  1") and "request_latency_ms.p50" in t)
    assert line.split()[-3:] == ["100.000", "120.000", "+20.0"]
    assert any(t.split()[-3:] == ["10", "-", "-"] for t in table)


def test_level_lines_show_counts_as_integers():
    lines = bm.level_lines(_report(_level(1)))
    assert lines[2].split()[0:2] == ["client", "1"]
    assert lines[2].split()[-2:] == ["10", "0"]


def test_load_report_errors_name_the_file(tmp_path):
    path = tmp_path / "r.json"
    path.write_text("{not json")
    with pytest.raises(bm.BenchmarkError, match="r.json is not JSON"):
        bm.load_report(str(path))
    with pytest.raises(bm.BenchmarkError, match="cannot read"):
        bm.load_report(str(tmp_path / "missing.json"))


# ---------------------------------------------------------------- the client's level runner

class FakeResult:
    def __init__(self, responses, first):
        self.responses = responses
        self.first = first


class FakeClock:
    """A clock each request advances by its own latency, so figures are exact."""

    def __init__(self):
        self.now = 0.0
        self.lock = threading.Lock()

    def __call__(self):
        with self.lock:
            return self.now

    def advance(self, seconds):
        with self.lock:
            self.now += seconds


def test_run_level_counts_requests_tokens_and_failures():
    clock = FakeClock()
    sent = []

    def factory(endpoint, model, timeout):
        def send(inputs, remaining):
            n = len(sent)
            sent.append(n)
            clock.advance(0.1)
            if n == 2:
                raise TritonError("server said no")
            return FakeResult(5, 0.02)
        return send, lambda: None

    level = bc.run_level(None, "ensemble", [], concurrency=1, requests=4, deadline=60, request_timeout=5,
                         sender_factory=factory, clock=clock)
    assert level["requests"] == 4 and level["succeeded"] == 3 and level["errors"] == 1
    assert level["error_samples"] == ["server said no"]
    assert level["output_tokens"] == 15
    assert level["request_latency_ms"]["p50"] == pytest.approx(100.0)
    assert level["inter_token_latency_ms"]["p50"] == pytest.approx(20.0)  # (100 - 20) / 4
    assert level["unsent"] == 0


def test_run_level_counts_requests_the_deadline_kept_from_starting():
    clock = FakeClock()

    def factory(endpoint, model, timeout):
        def send(inputs, remaining):
            clock.advance(1.0)
            return FakeResult(2, 0.1)
        return send, lambda: None

    level = bc.run_level(None, "ensemble", [], concurrency=1, requests=5, deadline=2.5, request_timeout=5,
                         sender_factory=factory, clock=clock)
    assert level["succeeded"] == 3 and level["unsent"] == 2 and level["errors"] == 2
    assert "2 requests not sent within the deadline" in level["error_samples"][-1]


def test_run_level_rejects_bad_arguments():
    with pytest.raises(ValueError):
        bc.run_level(None, "m", [], 0, 1, 1, 1)
