# -*- coding: utf-8 -*-
# Copyright: (c) 2026, tritonfleet maintainers
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""plugins/filter/benchmark.py: the benchmark's target from the gateway facts and the server layout."""

from __future__ import annotations

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.tritonfleet.serving.plugins.filter.benchmark import (
    benchmark_gateway_frontends, benchmark_server_layout)


def test_gateway_frontends_of_the_group_with_the_gateway_address():
    gateways = [{"address": "10.0.0.5", "frontends": [
        {"name": "default", "http_port": 8080, "grpc_port": 8081, "ensemble": "ensemble"},
        {"name": "big", "http_port": 8090, "grpc_port": 8091, "ensemble": "ensemble_big"}]}]
    out = benchmark_gateway_frontends(gateways, "big")
    assert out == [{"name": "big", "http_port": 8090, "grpc_port": 8091, "ensemble": "ensemble_big",
                    "address": "10.0.0.5", "host": "10.0.0.5"}]
    assert benchmark_gateway_frontends(gateways, "none") == []
    with pytest.raises(AnsibleFilterError):
        benchmark_gateway_frontends("x", "default")


def test_server_layout_names_and_addresses():
    hostvars = {
        "a": {"tritonfleet_servers": [{"name": "triton0", "host": "a.example", "grpc_port": 8001}]},
        "b": {"tritonfleet_address": "10.0.0.2",
              "tritonfleet_servers": [{"name": "triton0", "host": "b", "grpc_port": 8001}]},
        "c": {},
    }
    out = benchmark_server_layout(["a", "b", "c"], hostvars)
    assert [(s["qualified_name"], s["host"], s["inventory_host"]) for s in out] == [
        ("a/triton0", "a.example", "a"), ("b/triton0", "10.0.0.2", "b")]
