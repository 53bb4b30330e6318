# -*- coding: utf-8 -*-
# Copyright: (c) 2026, tritonfleet maintainers
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The bounded load client (benchmarks/load_client.py) against the fake generate endpoints of conftest.py.

The fake fails chosen requests, answers slowly, hangs up or breaks a stream
in the middle, so the counters are shown to count what went wrong.
"""

import json
import pathlib
import socket
import subprocess
import sys
import threading
import time

import pytest

import load_client  # benchmarks/, which conftest.py puts on sys.path
from load_client import percentile, run_load

SCRIPT = pathlib.Path(load_client.__file__)


def http_load(server, **kwargs):
    kwargs.setdefault("deadline", 20)
    return run_load(url=server.url, protocol="http", **kwargs)


def test_every_request_sent_once_and_counted(fake):
    server = fake()
    report = http_load(server, requests=12, concurrency=3, max_tokens=7, prompt="Hello")
    assert report.ok
    assert (report.sent, report.succeeded, report.failed, report.unsent) == (12, 12, 0, 0)
    assert len(server.bodies) == 12
    assert set(server.paths) == {"/v2/models/ensemble/generate"}
    assert server.bodies[0] == {"text_input": "Hello", "max_tokens": 7, "stream": False}
    assert report.tokens == 12 * server.answer_words
    assert report.tokens_per_second == pytest.approx(report.tokens / report.wall_time, rel=1e-3)
    assert 0 < report.latency_ms["p50"] <= report.latency_ms["p90"] <= report.latency_ms["p99"]
    assert sorted(r.index for r in report.records) == list(range(12))
    assert {r.worker for r in report.records} <= {0, 1, 2}


def test_streaming_counts_events_as_tokens(fake):
    server = fake(tokens=6)
    report = http_load(server, requests=4, concurrency=2, stream=True)
    assert report.ok
    assert set(server.paths) == {"/v2/models/ensemble/generate_stream"}
    assert all(body["stream"] is True for body in server.bodies)
    assert report.tokens == 4 * 6
    assert report.time_to_first_token_ms["p50"] is not None


def test_failures_are_counted_and_never_retried(fake):
    server = fake(behaviour=lambda number, body: "fail" if number % 3 == 0 else "ok")
    report = http_load(server, requests=9, concurrency=2)
    assert not report.ok
    assert (report.sent, report.succeeded, report.failed) == (9, 6, 3)
    assert len(server.bodies) == 9  # one POST per request: nothing was sent again
    assert report.errors and "refused by the fake" in report.errors[0]
    assert "HTTP 400" in report.errors[0]
    assert report.tokens == 6 * server.answer_words  # failed requests bring no tokens


def test_error_messages_are_capped(fake):
    server = fake(behaviour=lambda number, body: "fail")
    report = http_load(server, requests=8, concurrency=1)
    assert report.failed == 8
    assert len(report.errors) == load_client.MAX_ERRORS
    assert report.errors[0].startswith("request 0: ")
    assert report.latency_ms == {"p50": None, "p90": None, "p99": None}
    assert report.tokens_per_second == 0


def test_a_stream_broken_midway_fails(fake):
    server = fake(behaviour=lambda number, body: "break" if number == 1 else "ok", tokens=4)
    report = http_load(server, requests=3, concurrency=1, stream=True)
    assert (report.succeeded, report.failed) == (2, 1)
    assert "stream broken by the fake" in report.errors[0]
    assert report.tokens == 2 * 4


def test_expect_text_fails_other_answers(fake):
    server = fake(behaviour=lambda number, body: "wrong" if number in (2, 5) else "ok")
    report = http_load(server, requests=6, concurrency=1, expect_text=r"fleet\s+serves")
    assert (report.succeeded, report.failed) == (4, 2)
    assert "does not match" in report.errors[0] and "something else" in report.errors[0]


def test_bad_expect_text_is_refused_before_sending(fake):
    server = fake()
    with pytest.raises(ValueError, match="regular expression"):
        http_load(server, requests=1, expect_text="(")
    assert server.bodies == []


def test_slow_server_fails_at_the_deadline(fake):
    server = fake(delay=3.0)
    started = time.monotonic()
    report = http_load(server, requests=6, concurrency=2, deadline=0.6)
    elapsed = time.monotonic() - started
    assert elapsed < 2.5, "the client waited for the slow server past its deadline"
    assert not report.ok
    assert report.sent == 2 and report.unsent == 4  # the two workers never got to start another
    assert report.failed == 2 and report.succeeded == 0
    assert report.wall_time == pytest.approx(0.6)
    assert all(r.error for r in report.records)


def test_a_stream_still_flowing_at_the_deadline_fails(fake):
    server = fake(tokens=50, event_delay=0.05)  # 2.5 s a stream, events never far apart
    started = time.monotonic()
    report = http_load(server, requests=2, concurrency=2, stream=True, deadline=0.8)
    assert time.monotonic() - started < 2.5
    assert (report.sent, report.failed) == (2, 2)
    assert "still running at the deadline" in report.errors[0]
    assert report.tokens == 0


def test_a_connection_closed_without_an_answer_fails(fake):
    server = fake(behaviour=lambda number, body: "hang_up" if number == 0 else "ok")
    report = http_load(server, requests=3, concurrency=1)
    assert (report.sent, report.succeeded, report.failed) == (3, 2, 1)
    assert len(server.bodies) == 3
    assert report.errors[0].startswith("request 0: http://%s/v2/models/ensemble/generate: " % server.url)


def test_unsent_requests_alone_fail_the_run(fake):
    server = fake(delay=0.25)
    report = http_load(server, requests=10, concurrency=1, deadline=0.6)
    assert report.failed >= 1  # the one running at the deadline
    assert report.succeeded >= 1
    assert report.unsent >= 1
    assert not report.all_sent and not report.ok


def test_grpc_failures_are_counted_without_a_server():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    # nothing listens on port now
    report = run_load(url="127.0.0.1:%d" % port, protocol="grpc", stream=True, requests=3, concurrency=2,
                      deadline=20)
    assert (report.sent, report.failed, report.succeeded) == (3, 3, 0)
    assert "connect" in report.errors[0].lower()  # the cause, not tritonclient's "stream no longer valid"
    assert not report.ok


def test_percentile_interpolates():
    assert percentile([], 50) is None
    assert percentile([5.0], 99) == 5.0
    assert percentile([1.0, 2.0, 3.0, 4.0], 50) == pytest.approx(2.5)
    assert percentile(list(range(1, 101)), 99) == pytest.approx(99.01)


def test_command_line_report_timeline_and_exit_status(fake, tmp_path):
    server = fake(behaviour=lambda number, body: "fail" if number == 0 else "ok")
    timeline = tmp_path / "timeline.jsonl"
    proc = subprocess.run([sys.executable, str(SCRIPT), "--url", server.url, "--protocol",
                           "http", "--requests", "4", "--concurrency", "2", "--deadline", "20", "--timeline",
                           str(timeline)], capture_output=True, text=True, check=False, timeout=60)
    assert proc.returncode == 1, proc.stderr
    result = json.loads(proc.stdout)
    assert (result["sent"], result["succeeded"], result["failed"]) == (4, 3, 1)
    assert result["all_sent_before_deadline"] is True and result["ok"] is False
    assert set(result["latency_ms"]) == {"p50", "p90", "p99"}
    assert "4/4 sent, 3 succeeded, 1 failed" in proc.stderr
    rows = [json.loads(line) for line in timeline.read_text().splitlines()]
    assert len(rows) == 4
    assert sum(1 for row in rows if not row["ok"]) == 1
    assert all(row["end"] >= row["start"] > time.time() - 300 for row in rows)

    good = fake()
    proc = subprocess.run([sys.executable, str(SCRIPT), "--url", good.url, "--protocol",
                           "http", "--requests", "2"], capture_output=True, text=True, check=False, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["ok"] is True


def test_command_line_refuses_bad_arguments():
    proc = subprocess.run([sys.executable, str(SCRIPT), "--requests", "0"],
                          capture_output=True, text=True, check=False, timeout=60)
    assert proc.returncode == 2
    assert "at least 1" in proc.stderr


def test_rate_spreads_a_fixed_count_over_time(fake):
    report = http_load(fake(), requests=6, concurrency=3, deadline=30, rate=4.0)
    assert report.ok, report.errors
    starts = sorted(row["start"] for row in report.timeline())
    # 6 requests at 4 per second: the last starts 1.25 s after the first, not all at once.
    assert starts[-1] - starts[0] >= 1.2, starts


def test_rate_cannot_outlast_the_deadline(fake):
    report = http_load(fake(), requests=10, concurrency=2, deadline=1.0, rate=2.0)
    assert report.sent < 10 and not report.ok
    assert report.unsent == 10 - report.sent


def test_a_stop_file_ends_the_load_without_failing_it(fake, tmp_path):
    stop = tmp_path / "stop"
    threading.Timer(0.8, stop.touch).start()
    report = http_load(fake(), requests=1000, concurrency=2, deadline=30, rate=10.0, stop_file=str(stop))
    assert report.stopped and report.ok, report.errors
    assert 3 <= report.sent < 30 and report.failed == 0 and report.unsent == 1000 - report.sent
