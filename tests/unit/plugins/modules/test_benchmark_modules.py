# -*- coding: utf-8 -*-
# Copyright: (c) 2026, tritonfleet maintainers
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""benchmark_report, benchmark_compare and benchmark_client (check mode) in-process."""

from __future__ import annotations

import json
import pathlib

import pytest

from ansible_collections.tritonfleet.serving.plugins.modules import benchmark_client, benchmark_compare, benchmark_report
from ansible_collections.tritonfleet.serving.tests.unit.utils.ansible_module_harness import run_module

AIPERF_EXPORT = pathlib.Path(__file__).parents[1] / "module_utils" / "benchmark_aiperf_export.json"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _level(conc, latency):
    stats = {"mean": latency, "p50": latency, "p95": latency, "p99": latency}
    return {"concurrency": conc, "requests": 4, "succeeded": 4, "errors": 0, "error_samples": [],
            "request_latency_ms": stats, "time_to_first_token_ms": dict(stats), "inter_token_latency_ms": dict(stats),
            "output_tokens_per_s": 100.0 / conc}


def _write(tmp_path, check_mode=False, **extra):
    args = dict(path=str(tmp_path / "report.json"), target={"name": "triton0"},
                settings={"concurrency": [1, 2]}, client_levels=[_level(2, 20.0), _level(1, 10.0)])
    args.update(extra)
    return run_module(benchmark_report.main, args, check_mode=check_mode)


def test_report_is_written_with_both_tools_and_a_png(tmp_path):
    pytest.importorskip("matplotlib")
    res = _write(tmp_path, plot=str(tmp_path / "report.png"),
                 aiperf_exports=[{"concurrency": 2, "path": str(AIPERF_EXPORT)}], aiperf_version="0.13.0")
    assert not res.failed, res.result
    assert res.result["changed"]
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["schema"] == "tritonfleet.benchmark/1"
    assert sorted(report["tools"]) == ["aiperf", "client"]
    assert [lv["concurrency"] for lv in report["tools"]["client"]["levels"]] == [1, 2]
    assert report["tools"]["aiperf"]["version"] == "0.13.0"
    png = (tmp_path / "report.png").read_bytes()
    assert png.startswith(PNG_MAGIC) and len(png) > 10000
    assert any(line.startswith("aiperf") for line in res.result["table"])
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".benchmark-")]
    assert (tmp_path / "report.json").stat().st_mode & 0o777 == 0o644
    assert (tmp_path / "report.png").stat().st_mode & 0o777 == 0o644


def test_check_mode_writes_nothing_and_diff_shows_the_report(tmp_path):
    res = run_module(benchmark_report.main, dict(path=str(tmp_path / "r.json"), client_levels=[_level(1, 1.0)],
                                                 _ansible_diff=True), check_mode=True)
    assert res.result["changed"] and not (tmp_path / "r.json").exists()
    assert '"schema": "tritonfleet.benchmark/1"' in res.result["diff"]["after"]


def test_report_errors(tmp_path):
    assert "nothing to report" in run_module(benchmark_report.main, dict(path=str(tmp_path / "r.json"))).result["msg"]
    res = _write(tmp_path, path=str(tmp_path / "nowhere" / "r.json"))
    assert res.failed and "does not exist" in res.result["msg"]
    bad = tmp_path / "bad.json"
    bad.write_text("{}")
    res = _write(tmp_path, aiperf_exports=[{"concurrency": 4, "path": str(bad)}])
    assert res.failed and "concurrency 4" in res.result["msg"] and "request_latency" in res.result["msg"]


def _reports(tmp_path, candidate_latency):
    _write(tmp_path, path=str(tmp_path / "ref.json"))
    _write(tmp_path, path=str(tmp_path / "new.json"), client_levels=[_level(1, candidate_latency), _level(2, 20.0)])
    return str(tmp_path / "ref.json"), str(tmp_path / "new.json")


def test_compare_prints_a_table_and_the_check_passes_within_tolerance(tmp_path):
    ref, new = _reports(tmp_path, 11.0)
    res = run_module(benchmark_compare.main, dict(reference=ref, candidate=new, check=True, latency_tolerance=10))
    assert not res.failed, res.result["msg"]
    assert res.result["changed"] is False and res.result["failures"] == [] and res.result["checked"] > 0
    assert any("request_latency_ms.p50" in line and "+10.0" in line for line in res.result["table"])


def test_check_fails_on_a_worse_figure_naming_it(tmp_path):
    ref, new = _reports(tmp_path, 12.0)
    res = run_module(benchmark_compare.main, dict(reference=ref, candidate=new, check=True, latency_tolerance=10,
                                                  check_figures=["request_latency_ms.p95"]))
    assert res.failed
    assert res.result["msg"] == (
        "1 figure(s) worse than the reference beyond the tolerance: client at concurrency 1: request_latency_ms.p95 "
        "rose from 10.000 (reference) to 12.000, +20.00% against a tolerance of 10.000%")
    assert res.result["table"]


def test_compare_without_check_never_fails_on_figures(tmp_path):
    ref, new = _reports(tmp_path, 50.0)
    assert not run_module(benchmark_compare.main, dict(reference=ref, candidate=new)).failed


def test_compare_refuses_what_is_not_a_report(tmp_path):
    other = tmp_path / "other.json"
    other.write_text('{"schema": "x"}')
    res = run_module(benchmark_compare.main, dict(reference=str(other), candidate=str(other)))
    assert res.failed and "schema" in res.result["msg"]


def test_client_check_mode_sends_nothing():
    res = run_module(benchmark_client.main, dict(url="127.0.0.1:1", prompt="hi", concurrency=2, requests=3),
                     check_mode=True)
    assert not res.failed and res.result["skipped"] and not res.result["changed"]
    assert res.result["plan"]["requests"] == 3 and "would send 3 requests at concurrency 2" in res.result["msg"]


@pytest.mark.parametrize("args, message", [
    (dict(concurrency=0, requests=1), "concurrency must be at least 1"),
    (dict(concurrency=1, requests=1, deadline=0), "deadline must be greater than 0"),
])
def test_client_bad_arguments(args, message):
    res = run_module(benchmark_client.main, dict(url="127.0.0.1:1", prompt="hi", **args))
    assert res.failed and message in res.result["msg"]


def test_client_counts_a_refused_connection_as_errors():
    pytest.importorskip("tritonclient.grpc")
    res = run_module(benchmark_client.main, dict(url="127.0.0.1:1", prompt="hi", concurrency=1, requests=2,
                                                 request_timeout=5, fail_on_errors=True))
    assert res.failed and "2 of 2 requests failed at concurrency 1" in res.result["msg"]
    assert res.result["level"]["errors"] == 2
