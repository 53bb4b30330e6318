# -*- coding: utf-8 -*-
# Copyright: (c) 2026, tritonfleet maintainers
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""benchmarks/gateway_overhead.py against two fakes of Triton's generate endpoints (conftest.py): one plays
the server reached directly, the other the gateway."""

import json
import socket

import pytest

import gateway_overhead


def run(capsys, *argv):
    status = gateway_overhead.main(list(argv))
    out, err = capsys.readouterr()
    return status, out, err


def http_args(gateway, direct, *more):
    return ("--protocol", "http", "--gateway-http", gateway.url, "--direct-http", direct.url, "--requests", "6",
            "--rounds", "2", "--concurrency", "1", "3", "--deadline", "20") + more


def test_slower_gateway_shows_in_the_ratios(fake, capsys):
    direct = fake()
    gateway = fake(delay=0.05)
    status, out, dummy = run(capsys, *http_args(gateway, direct, "--json"))
    assert status == 0  # every request succeeded; the target is only judged with --check
    result = json.loads(out)
    rows = result["rows"]
    assert [(r["protocol"], r["concurrency"]) for r in rows] == [("http", 1), ("http", 3)]
    for row in rows:
        assert row["complete"] and not row["within_target"]
        assert row["direct"]["succeeded"] == row["gateway"]["succeeded"] == 12  # 6 requests x 2 rounds
        assert row["ratio"]["p50_ms"] > 2 and row["ratio"]["tokens_per_second"] < 0.5
        assert row["gateway"]["p50_ms"] >= 50
    # 2 x (warm-up + 2 rows x 2 rounds x 6 requests)
    assert len(direct.bodies) == len(gateway.bodies) == 1 + 2 * 2 * 6
    assert all(body["stream"] is True for body in direct.bodies)
    assert gateway_overhead.main(list(http_args(gateway, direct, "--check"))) == 1
    capsys.readouterr()


def test_table_names_each_row(fake, capsys):
    direct = fake()
    gateway = fake()
    status, out, dummy = run(capsys, *http_args(gateway, direct, "--no-stream"))
    assert status == 0
    lines = out.splitlines()
    assert lines[0].startswith("proto streams")
    assert lines[1].split()[:2] == ["http", "1"] and lines[2].split()[:2] == ["http", "3"]
    assert all(body["stream"] is False for body in direct.bodies)


def test_failed_requests_make_the_figures_invalid(fake, capsys):
    direct = fake()
    gateway = fake(behaviour=lambda number, body: "fail" if number == 4 else "ok")
    status, out, dummy = run(capsys, *http_args(gateway, direct))
    assert status == 1
    assert "FAILED requests" in out
    assert "refused by the fake" in out


def test_a_path_that_does_not_answer_stops_the_run(fake, capsys):
    direct = fake()
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    status, out, err = run(capsys, "--protocol", "http", "--gateway-http", "127.0.0.1:%d" % port,
                           "--direct-http", direct.url)
    assert status == 2
    assert "make demo" in err and str(port) in err
    assert out == ""


def test_rounds_alternate_which_path_goes_first():
    calls = []

    class Report:
        def __init__(self, url):
            calls.append(url)
            self.records, self.errors = [], []
            self.wall_time, self.tokens, self.sent, self.succeeded, self.failed, self.unsent = 1.0, 10, 1, 1, 0, 0

    def fake_run(url, **kwargs):
        return Report(url)

    row = gateway_overhead.compare("grpc", "gw", "direct", 1, 1, rounds=3, run=fake_run)
    assert calls == ["direct", "gw", "gw", "direct", "direct", "gw"]
    assert row["gateway"]["tokens_per_second"] == pytest.approx(10.0)
    assert row["ratio"]["tokens_per_second"] == 1.0
    assert row["ratio"]["p50_ms"] is None and not row["within_target"]
