# -*- coding: utf-8 -*-
# Copyright: (c) 2026, tritonfleet maintainers
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""A fake of Triton's generate endpoints for the benchmark scripts' tests, and benchmarks/ on sys.path.

FakeTriton answers POST /v2/models/<model>/generate (JSON) and
generate_stream (server-sent events) in a thread of the test process. Each
request is numbered from 0 and recorded; ``behaviour(number, body)`` picks
its answer: "ok", "fail" (HTTP 400 with a Triton-style error), "wrong" (other
text), "break" (an error event in the middle of a stream) or "hang_up" (the
connection closes with no answer). ``delay`` holds every answer back,
``event_delay`` spaces the events of a stream.
"""

import json
import pathlib
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

BENCHMARKS = pathlib.Path(__file__).resolve().parents[3] / "benchmarks"
if str(BENCHMARKS) not in sys.path:
    sys.path.insert(0, str(BENCHMARKS))

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

    answer_words = len(ANSWER.split())

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
