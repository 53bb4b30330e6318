"""The bounded load client (benchmarks/load_client.py) against an in-process fake of Triton's generate endpoints.

The fake answers POST /v2/models/<model>/generate (JSON) and generate_stream
(server-sent events) and can fail chosen requests, answer slowly, or break a
stream in the middle, so the counters are shown to count what went wrong.
"""

import json
import pathlib
import socket
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

BENCHMARKS = pathlib.Path(__file__).resolve().parents[3] / "benchmarks"
sys.path.insert(0, str(BENCHMARKS))

import load_client  # noqa: E402
from load_client import percentile, run_load  # noqa: E402

ANSWER = "the fleet serves four words"  # 5 words


class FakeTriton(ThreadingHTTPServer):
    """Counts the requests it gets; ``behaviour(number, body)`` picks the answer of each (numbered from 0)."""

    daemon_threads = True

    def __init__(self, behaviour=None, delay=0.0, tokens=4, event_delay=0.0):
        super().__init__(("127.0.0.1", 0), Handler)
        self.behaviour = behaviour or (lambda number, body: "ok")
        self.delay = delay
        self.event_delay = event_delay
        self.tokens = tokens
        self.bodies = []
        self.paths = []
        self.lock = threading.Lock()

    @property
    def url(self):
        return "127.0.0.1:%d" % self.server_address[1]


class Handler(BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def _send(self, code, payload, content_type="application/json"):
        data = payload.encode()
        self.send_response(code)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_POST(self):  # noqa: N802 - http.server's name
        server = self.server
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        with server.lock:
            number = len(server.bodies)
            server.bodies.append(body)
            server.paths.append(self.path)
        action = server.behaviour(number, body)
        if server.delay:
            time.sleep(server.delay)
        if action == "hang_up":
            self.close_connection = True  # no answer at all: the client reads an empty status line
            return
        if action == "fail":
            self._send(400, json.dumps({"error": "request %d refused by the fake" % number}))
            return
        text = "something else entirely" if action == "wrong" else ANSWER
        if self.path.endswith("/generate"):
            self._send(200, json.dumps({"model_name": "ensemble", "text_output": text}))
            return
        if not self.path.endswith("/generate_stream"):
            self._send(404, json.dumps({"error": "no such endpoint"}))
            return
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.end_headers()
        for token in range(server.tokens):
            if action == "break" and token == 2:
                self.wfile.write(b'data: {"error": "stream broken by the fake"}\n\n')
                return
            self.wfile.write(('data: %s\n\n' % json.dumps({"text_output": " t%d" % token})).encode())
            self.wfile.flush()
            time.sleep(server.event_delay)


@pytest.fixture
def fake():
    servers = []

    def start(**kwargs):
        server = FakeTriton(**kwargs)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


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
    assert report.tokens == 12 * 5
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
    assert report.tokens == 6 * 5  # failed requests bring no tokens


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
    proc = subprocess.run([sys.executable, str(BENCHMARKS / "load_client.py"), "--url", server.url, "--protocol",
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
    proc = subprocess.run([sys.executable, str(BENCHMARKS / "load_client.py"), "--url", good.url, "--protocol",
                           "http", "--requests", "2"], capture_output=True, text=True, check=False, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["ok"] is True


def test_command_line_refuses_bad_arguments():
    proc = subprocess.run([sys.executable, str(BENCHMARKS / "load_client.py"), "--requests", "0"],
                          capture_output=True, text=True, check=False, timeout=60)
    assert proc.returncode == 2
    assert "at least 1" in proc.stderr
