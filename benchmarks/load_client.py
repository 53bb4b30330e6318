# -*- coding: utf-8 -*-
# Copyright: (c) 2026, tritonfleet maintainers
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""A bounded load client for the ensemble: a fixed number of requests, a deadline, and an honest count.

It sends exactly --requests generation requests to one URL (the gateway or a
server) from --concurrency workers, each starting its next request when the
previous one is done, and stops at --deadline seconds: a request still running
then counts as failed, and a request not sent by then makes the run fail too.
A failed request is never retried (a retry would hide the failure).

  grpc          the bidirectional stream (the ensemble is decoupled): one gRPC
                stream per request on a channel each worker keeps, text_output
                read from every response until the final one; --stream asks the
                model to stream tokens, without it one response carries the text
  http          POST /v2/models/<model>/generate, or generate_stream (server-sent
                events) with --stream

Tokens are the streamed responses of a request, or the words of its answer
without --stream; tokens/s is the tokens of the requests that succeeded over
the run's wall time. Latency percentiles are over the succeeded requests.
--expect-text REGEX fails an answer that does not match.

Prints one JSON object on stdout and a one-line summary on stderr; with
--timeline FILE also one JSON line per request (unix start/end, latency,
tokens, error). Exit status: 0 when every request was sent before the
deadline (or --stop-file ended the load) and none failed, 1 otherwise, 2 for
bad arguments.

Usage: .venv/bin/python benchmarks/load_client.py --url 127.0.0.1:8081 --requests 200 --concurrency 8 \\
           --deadline 120 --stream
As a library (benchmarks/ on sys.path): from load_client import run_load
"""

import argparse
import dataclasses
import http.client
import json
import os
import pathlib
import re
import socket
import sys
import threading
import time

REPO = pathlib.Path(__file__).resolve().parents[1]


def _put_collection_on_path():
    """Make ``ansible_collections.tritonfleet.serving`` importable from this checkout.

    The Makefile links the repository as .collections/ansible_collections/tritonfleet/serving;
    a copy that already sits at .../ansible_collections/tritonfleet/serving (ansible-test's) needs no link.
    """
    candidates = [REPO / ".collections"]
    if REPO.parents[1].name == "ansible_collections":
        candidates.append(REPO.parents[2])
    for root in candidates:
        if (root / "ansible_collections" / "tritonfleet" / "serving").is_dir():
            if str(root) not in sys.path:
                sys.path.insert(0, str(root))
            return


_put_collection_on_path()
from ansible_collections.tritonfleet.serving.plugins.module_utils.triton_client import (  # noqa: E402
    TritonError, error_text, normalize_url, one_line, triton_grpc)
from ansible_collections.tritonfleet.serving.plugins.module_utils.triton_generate import (  # noqa: E402
    TEXT_OUTPUT, GenerationResult, _http_error_text, build_generation_inputs, decode_text,
    generate_request_body, grpc_generate, iter_sse_events)

DEFAULT_PROMPT = "Triton serves large language models"
MAX_ERRORS = 5
# After the deadline, how long to wait for workers to record their own error
# (a clearer message than "still running"); what ends in it still counts failed.
GRACE = 1.0


@dataclasses.dataclass
class RequestRecord:
    """One request; in a LoadReport its times are seconds since the run's start."""

    index: int
    worker: int
    start: float
    end: float = None
    ok: bool = False
    tokens: int = 0
    first_token: float = None  # seconds from start to the first response
    error: str = None

    @property
    def latency(self):
        return None if self.end is None else self.end - self.start


@dataclasses.dataclass
class LoadReport:
    url: str
    protocol: str
    stream: bool
    model: str
    requests: int
    concurrency: int
    deadline: float
    sent: int
    succeeded: int
    failed: int
    errors: list
    wall_time: float
    tokens: int
    latency_ms: dict
    time_to_first_token_ms: dict
    started_at: float  # unix time of the start
    records: list = dataclasses.field(default_factory=list, repr=False)
    stopped: bool = False  # the stop file ended the load before every request was sent

    @property
    def unsent(self):
        return self.requests - self.sent

    @property
    def all_sent(self):
        return self.sent == self.requests

    @property
    def ok(self):
        return (self.all_sent or self.stopped) and self.failed == 0

    @property
    def tokens_per_second(self):
        return round(self.tokens / self.wall_time, 3) if self.wall_time > 0 else None

    def as_dict(self):
        return dict(
            url=self.url, protocol=self.protocol, stream=self.stream, model=self.model,
            requests=self.requests, concurrency=self.concurrency, deadline=self.deadline,
            sent=self.sent, succeeded=self.succeeded, failed=self.failed, unsent=self.unsent,
            all_sent_before_deadline=self.all_sent, stopped=self.stopped, ok=self.ok, errors=list(self.errors),
            wall_time_s=round(self.wall_time, 6), tokens=self.tokens, tokens_per_second=self.tokens_per_second,
            latency_ms=self.latency_ms, time_to_first_token_ms=self.time_to_first_token_ms,
        )

    def timeline(self):
        """One dict per sent request, in the order they were sent, with unix times."""
        offset = self.started_at
        rows = []
        for rec in self.records:
            rows.append(dict(
                index=rec.index, worker=rec.worker, start=round(offset + rec.start, 6),
                end=round(offset + rec.end, 6) if rec.end is not None else None,
                latency_ms=round(rec.latency * 1000, 3) if rec.end is not None else None,
                ok=rec.ok, tokens=rec.tokens, error=rec.error))
        return rows

    def summary(self):
        lat = self.latency_ms
        line = "%s %s%s: %d/%d sent, %d succeeded, %d failed in %.2f s; %d tokens (%s tokens/s)" % (
            self.protocol, self.url, " stream" if self.stream else "", self.sent, self.requests, self.succeeded,
            self.failed, self.wall_time, self.tokens, self.tokens_per_second)
        if lat["p50"] is not None:
            line += "; latency p50 %.1f ms, p90 %.1f ms, p99 %.1f ms" % (lat["p50"], lat["p90"], lat["p99"])
        if self.errors:
            line += "; first error: %s" % self.errors[0]
        return line


def percentile(values, q):
    """The q-th percentile (0..100) with linear interpolation between ranks; None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100.0
    low = int(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def _millis(values, quantiles):
    return {"p%d" % q: (round(percentile(values, q) * 1000, 3) if values else None) for q in quantiles}


# --------------------------------------------------------------------------
# Senders: one per worker, one request at a time
# --------------------------------------------------------------------------

class GrpcSender:
    """A worker's gRPC channel; each request gets a stream of its own on it.

    A stream per request (not one long stream per worker) lets a gateway place
    every request on its own and lets a drained server finish: a long-lived
    stream would pin a worker to one server for the whole run.
    """

    def __init__(self, endpoint, model):
        self.endpoint = endpoint
        self.model = model
        self.client = triton_grpc.InferenceServerClient(url=endpoint.address, ssl=endpoint.ssl)

    def send(self, inputs, deadline_at):
        # The module's own request path (triton_infer), on this worker's channel.
        return grpc_generate(self.endpoint, self.model, inputs, max(deadline_at - time.monotonic(), 0.001),
                             client=self.client)

    def close(self):
        try:
            self.client.close()
        except Exception:
            pass


class HttpSender:
    """Triton's generate / generate_stream endpoints over a new connection per request, as curl does.

    http.client rather than the modules' open_url: open_url spends tens of
    milliseconds of client CPU per request, more than a server's answer takes.
    A fresh connection per request also means no request is ever lost to an
    idle keep-alive connection the peer has just closed, a failure only a
    retry could paper over.
    """

    def __init__(self, endpoint, model, stream):
        self.endpoint = endpoint
        self.stream = stream
        self.path = "%s/v2/models/%s/%s" % (endpoint.path, model, "generate_stream" if stream else "generate")
        self.url = endpoint.base_url + self.path[len(endpoint.path):]
        self.connection_class = http.client.HTTPSConnection if endpoint.ssl else http.client.HTTPConnection

    def send(self, inputs, deadline_at):
        result = GenerationResult()
        remaining = deadline_at - time.monotonic()
        if remaining <= 0:
            raise TritonError("still running at the deadline")
        headers = {"Content-Type": "application/json"}
        if self.stream:
            headers["Accept"] = "text/event-stream"
        connection = self.connection_class(self.endpoint.host.strip("[]"), self.endpoint.port, timeout=remaining)
        try:
            connection.connect()
            # the response takes the socket over when the server closes after it (SSE without chunking)
            sock = connection.sock
            connection.request("POST", self.path, body=json.dumps(generate_request_body(inputs)), headers=headers)
            response = connection.getresponse()
            if response.status != 200:
                raise TritonError("%s: HTTP %d: %s" % (self.url, response.status,
                                                       _http_error_text(response.read(), response.reason)))
            if not self.stream:
                self._add(result, response.read())
            else:
                for event in iter_sse_events(response.readline):
                    self._add(result, event)
                    remaining = deadline_at - time.monotonic()
                    if remaining <= 0:
                        raise TritonError("still running at the deadline (%d responses so far)" % result.responses)
                    sock.settimeout(remaining)
                if not result.responses:
                    raise TritonError("%s: the stream ended without a response" % self.url)
            result.finish(True)
            return result
        except (socket.timeout, TimeoutError):
            raise TritonError("still running at the deadline (%d responses so far)" % result.responses)
        except (OSError, http.client.HTTPException) as exc:  # refused, reset, closed without an answer
            raise TritonError("%s: %s" % (self.url, error_text(exc) or exc.__class__.__name__))
        finally:
            connection.close()

    def _add(self, result, payload):
        try:
            data = json.loads(payload)
        except ValueError:
            raise TritonError("%s: not JSON: %s" % (self.url, one_line(payload, 200)))
        if isinstance(data, dict) and data.get("error"):
            raise TritonError("%s: %s" % (self.url, data["error"]))
        if not isinstance(data, dict) or TEXT_OUTPUT not in data:
            if self.stream:
                return  # an event without text (Triton's final one may carry none)
            raise TritonError("%s: no %s in the answer: %s" % (self.url, TEXT_OUTPUT, one_line(payload, 200)))
        result.add(decode_text(data[TEXT_OUTPUT]))

    def close(self):
        pass


def make_sender(endpoint, model, stream):
    if endpoint.protocol == "grpc":
        return GrpcSender(endpoint, model)
    return HttpSender(endpoint, model, stream)


# --------------------------------------------------------------------------
# The run
# --------------------------------------------------------------------------

def run_load(url=None, requests=1, concurrency=1, deadline=60.0, protocol="grpc", stream=False, model="ensemble",
             prompt=DEFAULT_PROMPT, max_tokens=16, expect_text=None, parameters=None, sender_factory=make_sender,
             rate=None, stop_file=None):
    """Send ``requests`` generation requests from ``concurrency`` workers within ``deadline`` seconds.

    ``url`` is host:port (or a URL) for ``protocol``; a missing one means
    127.0.0.1 and the protocol's default port. ``expect_text`` is a regex an
    answer must contain. ``rate`` (requests per second, all workers together)
    paces the starts: request i starts no earlier than i / rate seconds after
    the first, so a fixed count spans a known time. Once ``stop_file`` exists no
    new request starts (those running finish): the caller ends the load when
    what it watches is over. Returns a LoadReport (``.as_dict()``, ``.ok``,
    ``.timeline()``). Raises ValueError for bad arguments, before anything is sent.
    """
    if requests < 1:
        raise ValueError("requests must be at least 1")
    if concurrency < 1:
        raise ValueError("concurrency must be at least 1")
    if deadline <= 0:
        raise ValueError("deadline must be positive")
    if rate is not None and not rate > 0:
        raise ValueError("rate must be positive")
    endpoint = normalize_url(url, protocol)
    try:
        expect = re.compile(expect_text) if expect_text else None
    except re.error as exc:
        raise ValueError("expect_text is not a regular expression: %s" % exc)
    inputs = build_generation_inputs(prompt, max_tokens, stream=bool(stream), parameters=parameters)

    lock = threading.Lock()
    records = []
    state = {"next": 0, "closed": False, "stopped": False}
    started_at = time.time()
    start = time.monotonic()
    deadline_at = start + deadline

    def take(worker):
        with lock:
            if state["closed"] or state["next"] >= requests:
                return None
            if stop_file is not None and os.path.exists(stop_file):
                state["stopped"] = True
                state["next"] = requests
                return None
            index = state["next"]
            state["next"] += 1
        if rate is not None:
            not_before = start + index / float(rate)
            while time.monotonic() < min(not_before, deadline_at):
                time.sleep(min(0.05, not_before - time.monotonic()))
        with lock:
            if state["closed"] or time.monotonic() >= deadline_at:
                state["next"] = requests  # nothing more starts: the deadline passed
                return None
            rec = RequestRecord(index=index, worker=worker, start=time.monotonic())
            records.append(rec)
            return rec

    def work(worker):
        sender = None
        try:
            while True:
                rec = take(worker)
                if rec is None:
                    return
                ok, error, tokens, first = False, None, 0, None
                try:
                    if sender is None:
                        sender = sender_factory(endpoint, model, bool(stream))
                    result = sender.send(inputs, deadline_at)
                    text = result.text
                    tokens = result.responses if stream else len(text.split())
                    first = result.first
                    if expect is not None and not expect.search(text):
                        error = "answer does not match %r: %r" % (expect_text, one_line(text, 200))
                    else:
                        ok = True
                except TritonError as exc:
                    error = one_line(exc.msg)
                except Exception as exc:  # a failure of any kind is a failed request, never a retry
                    error = one_line(error_text(exc))
                end = time.monotonic()
                with lock:
                    if state["closed"]:
                        return
                    if ok and end > deadline_at:
                        ok, error = False, "finished after the deadline"
                    rec.end, rec.ok, rec.error, rec.first_token = end, ok, error, first
                    rec.tokens = tokens if ok else 0
        finally:
            if sender is not None:
                sender.close()

    threads = []
    for number in range(min(concurrency, requests)):
        thread = threading.Thread(target=work, args=(number,), name="load-%d" % number, daemon=True)
        threads.append(thread)
        thread.start()
    for thread in threads:
        thread.join(max(0.0, deadline_at + GRACE - time.monotonic()))
    with lock:
        state["closed"] = True
        last_end = max([r.end for r in records if r.end is not None] or [start])
        for rec in records:
            if rec.end is None:
                rec.error = "still running at the deadline"
            elif rec.end > deadline_at and rec.ok:
                rec.ok, rec.error, rec.tokens = False, "finished after the deadline", 0
        # times from here on: seconds since the start
        snapshot = [dataclasses.replace(r, start=r.start - start, end=None if r.end is None else r.end - start)
                    for r in records]

    unfinished = any(r.end is None or r.end > deadline for r in snapshot)
    wall = deadline if unfinished else last_end - start
    good = [r for r in snapshot if r.ok]
    errors = ["request %d: %s" % (r.index, r.error) for r in sorted(snapshot, key=lambda r: r.index)
              if not r.ok][:MAX_ERRORS]
    return LoadReport(
        url=endpoint.base_url, protocol=protocol, stream=bool(stream), model=model, requests=requests,
        concurrency=concurrency, deadline=deadline, sent=len(snapshot), succeeded=len(good),
        failed=len(snapshot) - len(good), errors=errors, wall_time=wall, tokens=sum(r.tokens for r in good),
        latency_ms=_millis([r.latency for r in good], (50, 90, 99)),
        time_to_first_token_ms=_millis([r.first_token for r in good if r.first_token is not None], (50, 99)),
        started_at=started_at, records=snapshot, stopped=state["stopped"])


# --------------------------------------------------------------------------
# Command line
# --------------------------------------------------------------------------

def positive_int(text):
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1, got %s" % text)
    return value


def positive_float(text):
    value = float(text)
    if value <= 0:
        raise argparse.ArgumentTypeError("must be positive, got %s" % text)
    return value


def parser():
    cli = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    cli.add_argument("--url", help="host:port of the gateway or server (default 127.0.0.1 and 8001 grpc / 8000 http)")
    cli.add_argument("--protocol", choices=("grpc", "http"), default="grpc")
    cli.add_argument("--stream", action="store_true", help="ask for streamed tokens (generate_stream over http)")
    cli.add_argument("--requests", type=positive_int, required=True, help="how many requests to send, exactly")
    cli.add_argument("--concurrency", type=positive_int, default=1, help="workers sending at the same time")
    cli.add_argument("--deadline", type=positive_float, default=60.0, help="seconds for the whole run")
    cli.add_argument("--model", default="ensemble")
    cli.add_argument("--prompt", default=DEFAULT_PROMPT)
    cli.add_argument("--max-tokens", type=positive_int, default=16)
    cli.add_argument("--expect-text", metavar="REGEX", help="an answer that does not match counts as failed")
    cli.add_argument("--timeline", metavar="FILE", help="write one JSON line per request here")
    cli.add_argument("--stop-file", metavar="PATH",
                     help="start no new request once this file exists (the load ends when what it watches is over)")
    cli.add_argument("--rate", type=positive_float, metavar="PER_SECOND",
                     help="start at most this many requests per second (all workers together), so the count spans a known time")
    return cli


def main(argv=None):
    cli = parser()
    opts = cli.parse_args(argv)
    try:
        report = run_load(url=opts.url, requests=opts.requests, concurrency=opts.concurrency, deadline=opts.deadline,
                          protocol=opts.protocol, stream=opts.stream, model=opts.model, prompt=opts.prompt,
                          max_tokens=opts.max_tokens, expect_text=opts.expect_text, rate=opts.rate,
                          stop_file=opts.stop_file)
    except ValueError as exc:
        cli.error(str(exc))
    if opts.timeline:
        with open(opts.timeline, "w", encoding="utf-8") as handle:
            for row in report.timeline():
                handle.write(json.dumps(row, sort_keys=True) + "\n")
    print(json.dumps(report.as_dict(), sort_keys=True))
    print(report.summary(), file=sys.stderr)
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
