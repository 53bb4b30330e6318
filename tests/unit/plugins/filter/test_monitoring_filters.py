# -*- coding: utf-8 -*-
# Copyright: (c) 2026, tritonfleet maintainers
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.tritonfleet.serving.plugins.filter.gateway import gateway_frontends
from ansible_collections.tritonfleet.serving.plugins.filter.monitoring import (
    MONITORING_JOBS, FilterModule, dcgm_exporter_hosts, monitoring_scrape_configs)


def layout(*ports):
    return [{"name": "triton%d" % i, "http_port": p, "grpc_port": p + 1, "metrics_port": p + 2} for i, p in enumerate(ports)]


HOSTVARS = {
    # GPU host, docker runtime (the collection's default runtime), two servers.
    "a1": {"tritonfleet_servers": layout(8000, 8010), "tritonfleet_address": "10.0.0.1", "tritonfleet_gpu_count": 8},
    # Listens on all addresses: reached at ansible_host.
    "a2": {"tritonfleet_servers": layout(8000), "ansible_host": "10.0.0.2", "servers_listen_address": "0.0.0.0",
           "tritonfleet_gpu_count": "2", "tritonfleet_runtime": "docker"},
    # Servers on one address; a GPU host whose DCGM exporter is turned off.
    "b1": {"tritonfleet_servers": layout(8000), "tritonfleet_model_group": "llama", "servers_listen_address": "10.1.0.5",
           "ansible_host": "10.0.1.5", "tritonfleet_gpu_count": 4, "monitoring_dcgm_exporter": "false"},
    # The local default: process runtime, no Docker, the loopback address.
    "local": {"tritonfleet_servers": layout(7000), "ansible_connection": "local", "tritonfleet_runtime": "process",
              "tritonfleet_gpu_count": 1, "monitoring_node_exporter_port": 7100},
    # Unreachable in this run: no layout, no facts.
    "down": {"ansible_host": "10.0.9.9"},
    # The gateway (and Prometheus) host, without servers of its own.
    "gw": {"ansible_host": "10.0.2.10", "gateway_stats_port": 9404},
}
ALL = ["a1", "a2", "b1", "local", "down", "gw"]
SERVERS = ["a1", "a2", "b1", "local", "down"]


def jobs(view):
    return {job["job_name"]: [(c["targets"], c["labels"]) for c in job["static_configs"]] for job in view["scrape_configs"]}


def test_every_triton_server_is_a_target_labelled_with_host_server_and_model_group():
    view = monitoring_scrape_configs(ALL, HOSTVARS, servers_hosts=SERVERS, gateway_hosts=["gw"])
    assert jobs(view)["triton"] == [
        (["10.0.0.1:8002"], {"host": "a1", "server": "triton0", "model_group": "default"}),
        (["10.0.0.1:8012"], {"host": "a1", "server": "triton1", "model_group": "default"}),
        (["10.0.0.2:8002"], {"host": "a2", "server": "triton0", "model_group": "default"}),
        (["10.1.0.5:8002"], {"host": "b1", "server": "triton0", "model_group": "llama"}),
        (["127.0.0.1:7002"], {"host": "local", "server": "triton0", "model_group": "default"})]
    assert view["unknown_layout"] == ["down"]
    assert [job["job_name"] for job in view["scrape_configs"]] == list(MONITORING_JOBS)
    assert all(job["metrics_path"] == "/metrics" for job in view["scrape_configs"])


def test_prometheus_reaches_a_server_where_the_gateway_does():
    groups = [{"name": "default", "http_port": 8080, "grpc_port": 8081}, {"name": "llama", "http_port": 9080, "grpc_port": 9081}]
    frontends = gateway_frontends(groups, HOSTVARS, SERVERS)["frontends"]
    gateway_view = {(s["host"], s["name"].split(".")[-1]): s["address"] for f in frontends for s in f["servers"]}
    view = monitoring_scrape_configs(ALL, HOSTVARS, servers_hosts=SERVERS)
    scraped = {(labels["host"], labels["server"]): targets[0].rsplit(":", 1)[0] for targets, labels in jobs(view)["triton"]}
    assert scraped == gateway_view


def test_node_exporters_everywhere_and_dcgm_on_gpu_hosts_of_the_docker_runtime():
    view = jobs(monitoring_scrape_configs(ALL, HOSTVARS, servers_hosts=SERVERS, gateway_hosts=["gw"]))
    assert view["node"] == [
        (["10.0.0.1:9100"], {"host": "a1", "model_group": "default"}),
        (["10.0.0.2:9100"], {"host": "a2", "model_group": "default"}),
        (["10.0.1.5:9100"], {"host": "b1", "model_group": "llama"}),
        (["127.0.0.1:7100"], {"host": "local", "model_group": "default"}),
        # A host without a layout still has a node exporter; it serves no model group.
        (["10.0.9.9:9100"], {"host": "down"}),
        (["10.0.2.10:9100"], {"host": "gw"})]
    # b1 turned it off ("false" from -e or an INI inventory is false); local runs processes; down and gw have no GPUs.
    assert view["dcgm"] == [(["10.0.0.1:9400"], {"host": "a1", "model_group": "default"}),
                            (["10.0.0.2:9400"], {"host": "a2", "model_group": "default"})]
    assert dcgm_exporter_hosts(ALL, HOSTVARS) == ["a1", "a2"]
    assert dcgm_exporter_hosts(ALL, HOSTVARS, enabled=False) == []
    assert dcgm_exporter_hosts(["local"], HOSTVARS, default_runtime="process") == []


def test_the_gateway_is_scraped_unless_its_stage_left_it_out():
    view = monitoring_scrape_configs(ALL, HOSTVARS, gateway_hosts=["gw"])
    assert jobs(view)["gateway"] == [(["10.0.2.10:9404"], {"host": "gw"})]
    running = dict(HOSTVARS, gw=dict(HOSTVARS["gw"], tritonfleet_gateway={"available": True, "stats_port": "9504"}))
    assert jobs(monitoring_scrape_configs(ALL, running, gateway_hosts=["gw"]))["gateway"] == [
        (["10.0.2.10:9504"], {"host": "gw"})]
    left_out = dict(HOSTVARS, gw=dict(HOSTVARS["gw"], tritonfleet_gateway={"available": "False", "stats_port": 9404}))
    view = monitoring_scrape_configs(ALL, left_out, gateway_hosts=["gw"])
    assert "gateway" not in jobs(view) and view["gateways_left_out"] == ["gw"]
    # The inventory's port, else the argument (the gateway role's default).
    plain = dict(HOSTVARS, gw={"ansible_host": "10.0.2.10"})
    assert jobs(monitoring_scrape_configs([], plain, gateway_hosts=["gw"]))["gateway"] == [(["10.0.2.10:8404"], {"host": "gw"})]


def test_exporters_can_be_turned_off_and_moved():
    view = jobs(monitoring_scrape_configs(["a1", "gw"], HOSTVARS, node_exporter=False, dcgm_exporter_port=9500))
    assert "node" not in view and view["dcgm"] == [(["10.0.0.1:9500"], {"host": "a1"})]
    per_host = dict(HOSTVARS, gw=dict(HOSTVARS["gw"], monitoring_node_exporter="yes"))
    assert jobs(monitoring_scrape_configs(["a1", "gw"], per_host, node_exporter=False))["node"] == [
        (["10.0.2.10:9100"], {"host": "gw"})]


def test_an_empty_inventory_scrapes_nothing():
    assert monitoring_scrape_configs([], {}) == {"scrape_configs": [], "unknown_layout": [], "gateways_left_out": []}


def test_ipv6_addresses_are_bracketed():
    hostvars = {"v6": {"tritonfleet_servers": layout(8000), "tritonfleet_address": "fd00::5"}}
    view = jobs(monitoring_scrape_configs(["v6"], hostvars, servers_hosts=["v6"]))
    assert view["triton"][0][0] == ["[fd00::5]:8002"] and view["node"][0][0] == ["[fd00::5]:9100"]


@pytest.mark.parametrize("hostvars, text", [
    ({"h": {"tritonfleet_servers": [{"name": "triton0", "http_port": 8000}]}}, "has no name or metrics_port"),
    ({"h": {"tritonfleet_servers": [{"name": "triton0", "metrics_port": "metrics"}]}}, "metrics_port of triton0 on h must be a TCP port"),
    ({"h": {"tritonfleet_servers": [{"name": "triton0", "metrics_port": 70000}]}}, "must be a TCP port"),
    ({"h": {"monitoring_node_exporter_port": "x"}}, "monitoring_node_exporter_port of h must be a TCP port"),
])
def test_malformed_layouts_and_ports_are_refused_naming_them(hostvars, text):
    with pytest.raises(AnsibleFilterError, match=text):
        monitoring_scrape_configs(["h"], hostvars, servers_hosts=["h"])


@pytest.mark.parametrize("bad", ["a1", None, {"a1": 1}])
def test_hosts_must_be_a_list(bad):
    with pytest.raises(AnsibleFilterError, match="expects a list of inventory hosts"):
        monitoring_scrape_configs(bad, HOSTVARS)
    with pytest.raises(AnsibleFilterError, match="expects a list of inventory hosts"):
        dcgm_exporter_hosts(bad, HOSTVARS)


def test_the_filters_are_registered():
    assert set(FilterModule().filters()) == {"monitoring_scrape_configs", "dcgm_exporter_hosts"}
