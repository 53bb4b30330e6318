# -*- coding: utf-8 -*-
# Copyright: (c) 2026, tritonfleet maintainers
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Measure what the gateway costs: the same load through it and straight to one server, side by side.

For each protocol and each number of concurrent streams (1 and 8), the
bounded load client (load_client.py) sends --requests requests to the server
directly and the same through the gateway, alternating the two --rounds
times so that neither always runs on a warmer server. Printed per row:
tokens/s and p50/p99 request latency of each path and the ratio
gateway/direct. Issue 10's target is the gateway within 5% of direct:
tokens/s ratio at least 0.95 and p50 ratio at most 1.05 (p99 is shown, not
judged: a few requests decide it).

It deploys nothing: run `make demo` first (the local default: servers on
127.0.0.1:8000 http / 8001 grpc and 8010 / 8011, the gateway on 127.0.0.1:8080
http / 8081 grpc). Straight-to-server figures use one server; through the
gateway the requests spread over every server behind it, so on a host with
spare cores the gateway can even come out ahead.

Exit status: 0 when every request succeeded (and, with --check, every row is
within the target), 1 otherwise, 2 when a path does not answer a first request.

Usage: .venv/bin/python benchmarks/gateway_overhead.py [--protocol grpc|http|both] [--requests N] [--json]
"""

import argparse
import json
import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
from load_client import DEFAULT_PROMPT, percentile, run_load  # noqa: E402

TARGET = 0.05
DEFAULTS = {
    "grpc": {"gateway": "127.0.0.1:8081", "direct": "127.0.0.1:8001"},
    "http": {"gateway": "127.0.0.1:8080", "direct": "127.0.0.1:8000"},
}


def pooled(reports):
    """One path's figures over its rounds: tokens over summed wall time, percentiles over every succeeded request."""
    latencies = [r.latency for report in reports for r in report.records if r.ok]
    wall = sum(report.wall_time for report in reports)
    tokens = sum(report.tokens for report in reports)

    def ms(q):
        value = percentile(latencies, q)
        return None if value is None else round(value * 1000, 3)

    return {
        "sent": sum(report.sent for report in reports),
        "succeeded": sum(report.succeeded for report in reports),
        "failed": sum(report.failed for report in reports),
        "unsent": sum(report.unsent for report in reports),
        "errors": [e for report in reports for e in report.errors][:5],
        "tokens": tokens,
        "wall_time_s": round(wall, 6),
        "tokens_per_second": round(tokens / wall, 3) if wall > 0 else None,
        "p50_ms": ms(50),
        "p99_ms": ms(99),
    }


def ratio(gateway, direct):
    if gateway is None or not direct:
        return None
    return round(gateway / direct, 4)


def compare(protocol, gateway, direct, concurrency, requests, rounds=2, run=run_load, **load):
    """Run the load on both paths (direct first in odd rounds, gateway first in even ones) and compare them."""
    reports = {"direct": [], "gateway": []}
    for number in range(rounds):
        order = ("direct", "gateway") if number % 2 == 0 else ("gateway", "direct")
        for path in order:
            url = gateway if path == "gateway" else direct
            reports[path].append(run(url=url, protocol=protocol, requests=requests, concurrency=concurrency, **load))
    row = {"protocol": protocol, "concurrency": concurrency, "gateway_url": gateway, "direct_url": direct}
    row.update((path, pooled(reports[path])) for path in reports)
    row["ratio"] = {key: ratio(row["gateway"][key], row["direct"][key])
                    for key in ("tokens_per_second", "p50_ms", "p99_ms")}
    complete = all(row[path]["failed"] == 0 and row[path]["unsent"] == 0 for path in reports)
    tps, p50 = row["ratio"]["tokens_per_second"], row["ratio"]["p50_ms"]
    row["complete"] = complete
    row["within_target"] = bool(complete and tps is not None and p50 is not None
                                and tps >= 1 - TARGET and p50 <= 1 + TARGET)
    return row


def first_request(protocol, url, load):
    """One unmeasured request per path: it warms the path up and stops the run early when nothing answers."""
    report = run_load(url=url, protocol=protocol, requests=1, concurrency=1, **load)
    return None if report.ok else (report.errors[0] if report.errors else "no answer")


def _fmt(value, spec):
    return "-" if value is None else format(value, spec)


def table(rows):
    lines = ["%-5s %7s | %10s %9s %9s | %10s %9s %9s | %7s %6s %6s | %s" % (
        "proto", "streams", "direct t/s", "p50 ms", "p99 ms", "gw t/s", "p50 ms", "p99 ms",
        "t/s x", "p50 x", "p99 x", "within 5%")]
    for row in rows:
        d, g, r = row["direct"], row["gateway"], row["ratio"]
        verdict = "yes" if row["within_target"] else ("no" if row["complete"] else "FAILED requests")
        lines.append("%-5s %7d | %10s %9s %9s | %10s %9s %9s | %7s %6s %6s | %s" % (
            row["protocol"], row["concurrency"],
            _fmt(d["tokens_per_second"], ".1f"), _fmt(d["p50_ms"], ".1f"), _fmt(d["p99_ms"], ".1f"),
            _fmt(g["tokens_per_second"], ".1f"), _fmt(g["p50_ms"], ".1f"), _fmt(g["p99_ms"], ".1f"),
            _fmt(r["tokens_per_second"], ".3f"), _fmt(r["p50_ms"], ".3f"), _fmt(r["p99_ms"], ".3f"), verdict))
    return "\n".join(lines)


def parser():
    cli = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    cli.add_argument("--gateway", default=DEFAULTS["grpc"]["gateway"], help="gateway's gRPC host:port")
    cli.add_argument("--direct", default=DEFAULTS["grpc"]["direct"], help="one server's gRPC host:port")
    cli.add_argument("--gateway-http", default=DEFAULTS["http"]["gateway"], help="gateway's HTTP host:port")
    cli.add_argument("--direct-http", default=DEFAULTS["http"]["direct"], help="one server's HTTP host:port")
    cli.add_argument("--protocol", choices=("grpc", "http", "both"), default="both")
    cli.add_argument("--concurrency", type=int, nargs="+", default=[1, 8], help="concurrent streams, one row each")
    cli.add_argument("--requests", type=int, default=32, help="requests per path, concurrency and round")
    cli.add_argument("--rounds", type=int, default=2, help="times each path runs, alternating which goes first")
    cli.add_argument("--max-tokens", type=int, default=32)
    cli.add_argument("--prompt", default=DEFAULT_PROMPT)
    cli.add_argument("--stream", action=argparse.BooleanOptionalAction, default=True,
                     help="streamed tokens (default) or one answer per request")
    cli.add_argument("--deadline", type=float, default=300.0, help="seconds for each load run")
    cli.add_argument("--check", action="store_true", help="exit 1 when a row is outside the 5%% target")
    cli.add_argument("--json", action="store_true", help="print the rows as JSON instead of a table")
    return cli


def main(argv=None):
    cli = parser()
    opts = cli.parse_args(argv)
    if opts.requests < 1 or opts.rounds < 1 or opts.deadline <= 0 or min(opts.concurrency) < 1:
        cli.error("--requests, --rounds, --concurrency and --deadline must be positive")
    protocols = ("grpc", "http") if opts.protocol == "both" else (opts.protocol,)
    urls = {"grpc": (opts.gateway, opts.direct), "http": (opts.gateway_http, opts.direct_http)}
    load = dict(stream=opts.stream, max_tokens=opts.max_tokens, prompt=opts.prompt, deadline=opts.deadline)

    for protocol in protocols:
        for url in urls[protocol]:
            error = first_request(protocol, url, load)
            if error:
                print("%s %s does not answer (is `make demo` running, with its gateway?): %s"
                      % (protocol, url, error), file=sys.stderr)
                return 2

    rows = []
    for protocol in protocols:
        gateway, direct = urls[protocol]
        for concurrency in opts.concurrency:
            rows.append(compare(protocol, gateway, direct, concurrency, opts.requests, rounds=opts.rounds, **load))
            if not opts.json:
                print("%s, %d stream(s): done" % (protocol, concurrency), file=sys.stderr)

    if opts.json:
        print(json.dumps({"target": TARGET, "stream": opts.stream, "max_tokens": opts.max_tokens,
                          "requests": opts.requests, "rounds": opts.rounds, "rows": rows}, indent=2, sort_keys=True))
    else:
        print(table(rows))
        for row in rows:
            for path in ("direct", "gateway"):
                if row[path]["errors"]:
                    print("%s %d streams, %s: %s" % (row["protocol"], row["concurrency"], path,
                                                     row[path]["errors"][0]))
    if not all(row["complete"] for row in rows):
        return 1
    if opts.check and not all(row["within_target"] for row in rows):
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
