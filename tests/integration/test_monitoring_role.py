# -*- coding: utf-8 -*-
# Copyright: (c) 2026, tritonfleet maintainers
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The monitoring role on this machine, process runtime: a real Prometheus and node exporter.

Two stand-in Triton servers answer on their metrics ports: triton0 exports
the ensemble's series, triton1 none. Through Prometheus's HTTP API the test
sees every target up, TritonModelNotReady firing for triton1 only, a second
run change nothing, and a changed threshold reach Prometheus by a reload
(same process).

Needs Debian's prometheus and prometheus-node-exporter packages (.ci/run
installs them). Without them the test skips and says why, unless
TRITONFLEET_REQUIRE_TOOLS=1 (CI), where it fails.
"""

import http.server
import json
import os
import pathlib
import subprocess
import sys
import threading
import time
import urllib.request

import pytest

from ansible_collections.tritonfleet.serving.tests.unit.utils import playbook_run
from ansible_collections.tritonfleet.serving.tests.unit.roles.test_monitoring_rules import find_tool, render
from docker_env import ensure_docker_engine
from local_deploy import free_port_base

pytestmark = pytest.mark.integration

REPO_ROOT = pathlib.Path(__file__).resolve().parents[2]
TOOLS = {"prometheus": "/usr/bin/prometheus", "promtool": "/usr/bin/promtool",
         "prometheus-node-exporter": "/usr/bin/prometheus-node-exporter"}


@pytest.fixture(scope="module")
def tools():
    missing = [name for name, path in TOOLS.items() if not os.access(path, os.X_OK)]
    if not missing:
        return TOOLS
    reason = "%s missing (apt-get install prometheus prometheus-node-exporter)" % ", ".join(missing)
    if os.environ.get("TRITONFLEET_REQUIRE_TOOLS") == "1":
        pytest.fail("%s, and TRITONFLEET_REQUIRE_TOOLS=1 requires the tests that need them to run" % reason)
    pytest.skip(reason)


class FakeMetrics(http.server.BaseHTTPRequestHandler):
    """A Triton metrics port: the ensemble's series only where the server serves it."""
    models = ()

    def do_GET(self):  # noqa: N802 (http.server's name)
        body = "".join('nv_inference_request_success{model="%s",version="1"} 3\n' % m for m in self.models)
        body += "nv_cpu_utilization 0.25\n"
        data = body.encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain; version=0.0.4")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


def serve(port, models):
    handler = type("Handler", (FakeMetrics,), {"models": tuple(models)})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", port), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def api(base, path):
    with urllib.request.urlopen(base + path, timeout=10) as answer:
        return json.load(answer)["data"]


def wait_for(what, check, timeout=90):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            last = check()
            if last:
                return last
        except OSError as error:
            last = error
        time.sleep(1)
    raise AssertionError("%s: not within %ss (last: %r)" % (what, timeout, last))


@pytest.fixture
def fleet(tmp_path, tools):
    base = free_port_base(span=20)
    servers = [serve(base + 2, ["ensemble", "tensorrt_llm"]), serve(base + 12, ["tensorrt_llm"])]
    local = dict(ansible_connection="local", ansible_python_interpreter=sys.executable)
    host = dict(local, tritonfleet_root=str(tmp_path / "root"), tritonfleet_log_root=str(tmp_path / "logs"),
                tritonfleet_runtime="process", servers_listen_address="127.0.0.1",
                tritonfleet_servers=[{"name": "triton%d" % i, "http_port": base + 10 * i, "grpc_port": base + 10 * i + 1,
                                      "metrics_port": base + 10 * i + 2} for i in range(2)],
                monitoring_runtime="process", monitoring_listen_address="127.0.0.1", monitoring_port=base + 5,
                monitoring_node_exporter_listen_address="127.0.0.1", monitoring_node_exporter_port=base + 6,
                monitoring_scrape_interval="1s", monitoring_scrape_timeout="1s", monitoring_evaluation_interval="1s",
                monitoring_alert_model_not_ready_for="0s",
                monitoring_promtool_binary=tools["promtool"], monitoring_prometheus_binary=tools["prometheus"],
                monitoring_node_exporter_binary=tools["prometheus-node-exporter"])
    inventory = {"all": {"hosts": {"localhost": host}, "children": {
        "triton_servers": {"hosts": {"localhost": {}}}, "monitoring": {"hosts": {"localhost": {}}}}}}
    (tmp_path / "inventory.json").write_text(json.dumps(inventory))
    plays = {
        "site.yml": [
            {"name": "Node exporters", "hosts": "all", "gather_facts": False, "tasks": [
                {"name": "Run the node exporter", "ansible.builtin.include_role": {
                    "name": "tritonfleet.serving.monitoring", "tasks_from": "node_exporter"}}]},
            {"name": "Prometheus", "hosts": "monitoring", "gather_facts": False,
             "roles": [{"role": "tritonfleet.serving.monitoring"}]}],
        "teardown.yml": [
            {"name": "Teardown", "hosts": "monitoring", "gather_facts": False, "tasks": [
                {"name": "Tear down", "ansible.builtin.include_role": {
                    "name": "tritonfleet.serving.monitoring", "tasks_from": "teardown"}}]}],
    }
    for name, play in plays.items():
        (tmp_path / name).write_text(json.dumps(play))
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=str(REPO_ROOT / ".collections"))

    def run(playbook="site.yml", *extra):
        return playbook_run.run(["ansible-playbook", "-i", str(tmp_path / "inventory.json"), str(tmp_path / playbook),
                                 *extra], env=env, cwd=tmp_path, timeout=300)

    yield run, "http://127.0.0.1:%d" % (base + 5), tmp_path
    run("teardown.yml")
    for server in servers:
        server.shutdown()


def test_prometheus_scrapes_the_fleet_alerts_and_reloads_changed_rules(fleet):
    run, prometheus, tmp_path = fleet
    # Check mode predicts the changes and makes none.
    check = run("site.yml", "--check", "--diff")
    assert check.rc == 0, check
    assert check.status("Render the Prometheus configuration") == "changed", check
    assert check.status("Run Prometheus") == "changed", check
    assert not (tmp_path / "root/monitoring").exists() and not (tmp_path / "root/monitoring/run").exists()

    first = run()
    assert first.rc == 0, first
    published = first.facts()["tritonfleet_monitoring"]
    assert published["available"] and published["url"] == prometheus and published["jobs"] == ["triton", "node"]

    def all_up():
        targets = api(prometheus, "/api/v1/targets")["activeTargets"]
        return len(targets) == 4 and all(t["health"] == "up" for t in targets) and targets
    targets = wait_for("every target up", all_up)
    assert sorted((t["labels"]["job"], t["labels"].get("server", "")) for t in targets) == [
        ("node", ""), ("prometheus", ""), ("triton", "triton0"), ("triton", "triton1")]

    def not_ready():
        alerts = [a for a in api(prometheus, "/api/v1/alerts")["alerts"] if a["labels"]["alertname"] == "TritonModelNotReady"]
        return [a for a in alerts if a["state"] == "firing"]
    firing = wait_for("TritonModelNotReady firing", not_ready)
    assert [(a["labels"]["server"], a["labels"]["model"]) for a in firing] == [("triton1", "ensemble")]

    second = run()
    assert second.rc == 0 and not second.changed, second
    pid = (tmp_path / "root/monitoring/run/tritonfleet-prometheus.pid").read_text().strip()

    third = run("site.yml", "-e", "monitoring_alert_kv_cache_fraction=0.8")
    assert third.rc == 0, third
    assert third.status("Reload the supervised Prometheus") == "changed", third
    assert (tmp_path / "root/monitoring/run/tritonfleet-prometheus.pid").read_text().strip() == pid

    def reloaded():
        rules = [r for g in api(prometheus, "/api/v1/rules")["groups"] for r in g["rules"]]
        kv = [r for r in rules if r["name"] == "TritonKVCacheNearlyFull"]
        return kv and kv[0]["query"].endswith("> 0.8") and rules
    rules = wait_for("the new threshold loaded", reloaded, timeout=30)
    assert len(rules) == 6


@pytest.mark.docker
def test_the_dcgm_exporter_container_is_pinned_to_the_hosts_gpus(tmp_path):
    """Check mode: community.docker reports the container it would create and creates nothing."""
    ensure_docker_engine()
    promtool = find_tool("promtool")
    run, _config_dir = render(tmp_path, promtool, tasks_from=["dcgm_exporter"], hosts="all", extra_args=["--check"],
                              tritonfleet_gpus=[{"index": 0}, {"index": 3}], monitoring_dcgm_exporter_port=9500)
    assert run.rc == 0, run
    assert run.status("Run the DCGM exporter on this host", host="b1") == "skipped"
    result = run.result("Run the DCGM exporter", host="a1")
    assert result["changed"], result
    created = [action["create_parameters"] for action in result["actions"] if "create_parameters" in action][0]
    assert created["Image"] == "nvcr.io/nvidia/k8s/dcgm-exporter:3.3.9-3.6.1-ubuntu22.04"
    host_config = created["HostConfig"]
    assert host_config["DeviceRequests"] == [
        {"Driver": "nvidia", "Count": 0, "DeviceIDs": ["0", "3"], "Capabilities": [["gpu"]], "Options": None}]
    assert host_config["PortBindings"] == {"9400/tcp": [{"HostIp": "0.0.0.0", "HostPort": "9500"}]}
    assert host_config["CapAdd"] == ["SYS_ADMIN"] and host_config["RestartPolicy"]["Name"] == "unless-stopped"
    assert subprocess.run(["docker", "container", "inspect", "tritonfleet-dcgm-exporter"], capture_output=True,
                          check=False).returncode != 0
