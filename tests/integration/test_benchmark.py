"""playbooks/benchmark.yml against a real local deployment: a short sweep with aiperf and the gRPC client.

One deployment (site.yml); the sweep targets its first server with concurrency
1 and 2 and a few requests, writes the report and the plot, and then holds a
client-only run to doctored references: one the run cannot meet (it fails,
naming the figure, both values and the tolerance) and one it beats (it passes).
The references are a hundred times off, so the noise of a busy machine cannot flip either verdict.

aiperf lives in a virtual environment of its own, which the role creates once
(several minutes) and then only checks: TRITONFLEET_AIPERF_VENV names it
(default ~/.cache/tritonfleet/aiperf-<version>).
"""

import json
import os
import pathlib
import struct

import pytest

from local_deploy import Deployment, free_port_base

# The aiperf venv and a deployment of its own: the Docker lane has room for it.
pytestmark = [pytest.mark.integration, pytest.mark.second_lane]

AIPERF_VERSION = "0.13.0"
AIPERF_VENV = os.environ.get("TRITONFLEET_AIPERF_VENV") or str(
    pathlib.Path.home() / ".cache" / "tritonfleet" / ("aiperf-" + AIPERF_VERSION))
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
LATENCY_FAMILIES = ("time_to_first_token_ms", "inter_token_latency_ms", "request_latency_ms")


@pytest.fixture(scope="module")
def deployed(tmp_path_factory):
    dep = Deployment(tmp_path_factory.mktemp("benchmark") / "root", free_port_base())
    site = dep.playbook("site.yml")
    assert site.rc == 0, site
    yield dep
    dep.playbook("playbooks/teardown.yml")


def benchmark(dep, out, *extra):
    args = ["-e", json.dumps({
        "benchmark_target": "triton0", "benchmark_concurrency": [1, 2], "benchmark_requests": 6,
        "benchmark_max_tokens": 8, "benchmark_output_dir": str(out), "benchmark_aiperf_venv": AIPERF_VENV,
        "benchmark_aiperf_tokenizer": str(dep.root / "checkpoints" / "tiny-llama"),
        "benchmark_request_timeout": 30, "benchmark_level_timeout": 120})]
    for item in extra:
        args += ["-e", json.dumps(item)]
    return dep.playbook("playbooks/benchmark.yml", *args, timeout=900)


def doctored(report, factor):
    """The report with every latency figure divided by factor and throughput multiplied by it."""
    report = json.loads(json.dumps(report))
    for tool in report["tools"].values():
        for level in tool["levels"]:
            for family in LATENCY_FAMILIES:
                level[family] = {k: (v / factor if v is not None else None) for k, v in level[family].items()}
            level["output_tokens_per_s"] *= factor
    return report


def test_sweep_reports_plots_and_checks_against_a_reference(deployed, tmp_path):
    dep = deployed
    run = benchmark(dep, tmp_path)
    assert run.rc == 0, run

    report = json.loads((tmp_path / "report.json").read_text())
    assert report["schema"] == "tritonfleet.benchmark/1"
    assert report["target"]["name"] == "triton0"
    assert report["target"]["grpc_url"].endswith(":%d" % (dep.port_base + 1))
    assert sorted(report["tools"]) == ["aiperf", "client"]
    assert report["tools"]["aiperf"]["version"] == "0.13.0"
    for name, tool in report["tools"].items():
        assert [lv["concurrency"] for lv in tool["levels"]] == [1, 2], name
        for level in tool["levels"]:
            assert level["errors"] == 0 and level["succeeded"] == 6, (name, level)
            assert level["output_tokens_per_s"] > 0, (name, level)
            lat = level["request_latency_ms"]
            assert 0 < lat["p50"] <= lat["p95"] <= lat["p99"], (name, level)
            assert 0 < level["time_to_first_token_ms"]["p50"] <= lat["p99"], (name, level)
    # the client streams one response per token: eight tokens, seven gaps
    for level in report["tools"]["client"]["levels"]:
        assert level["output_tokens"] == 6 * 8, level
        assert level["inter_token_latency_ms"]["p50"] > 0, level

    png = (tmp_path / "report.png").read_bytes()
    assert png[:8] == PNG_MAGIC and png[12:16] == b"IHDR"
    width, height = struct.unpack(">II", png[16:24])
    assert width >= 800 and height >= 600

    shown = run.messages("Show the figures")
    assert "request_latency_ms.p95" in shown and str(tmp_path / "report.png") in shown
    print(shown)

    # A reference a hundred times faster than this machine: the run fails, naming what and by how much.
    # (A hundred, not ten: two runs of six requests on a busy CPU differ by several times.)
    (tmp_path / "fast.json").write_text(json.dumps(doctored(report, 100.0)))
    worse = benchmark(dep, tmp_path, {"benchmark_tools": ["client"], "benchmark_report_name": "second",
                                      "benchmark_reference": str(tmp_path / "fast.json")})
    assert worse.rc != 0, worse
    failure = worse.messages("Fail on a figure worse than the reference allows", failed_only=True)
    assert "client at concurrency 1: request_latency_ms.p50 rose from" in failure, failure
    assert "output_tokens_per_s fell from" in failure and "against a tolerance of 10.000%" in failure, failure
    # the reference has aiperf levels this client-only run did not measure
    assert "aiperf at concurrency 2: measured in the reference, not in this run" in failure, failure
    assert (tmp_path / "second.json").exists()

    # A reference a hundred times slower, client only: the run passes.
    slow = doctored(report, 0.01)
    del slow["tools"]["aiperf"]
    (tmp_path / "slow.json").write_text(json.dumps(slow))
    better = benchmark(dep, tmp_path, {"benchmark_tools": ["client"], "benchmark_report_name": "third",
                                       "benchmark_reference": str(tmp_path / "slow.json")})
    assert better.rc == 0, better
    assert "figures within 10% (latency) and 10% (throughput)" in better.messages("Say the run passed the reference")


def test_check_mode_sends_nothing_and_writes_no_report(deployed, tmp_path):
    run = deployed.playbook(
        "playbooks/benchmark.yml", "--check", "-e", json.dumps({
            "benchmark_target": "triton0", "benchmark_concurrency": [1, 2], "benchmark_tools": ["client"],
            "benchmark_output_dir": str(tmp_path / "out")}))
    assert run.rc == 0, run
    levels = run.result("Sweep concurrency with the gRPC streaming client")["results"]
    assert [r["skipped"] for r in levels] == [True, True]
    assert "would send 32 requests at concurrency 2" in levels[1]["msg"]
    assert not (tmp_path / "out" / "report.json").exists()
