"""The gateway role's HAProxy configuration, rendered by Ansible from an inventory and checked by HAProxy itself.

Needs the haproxy binary (Debian's haproxy package; .ci/run installs it).
"""

import json
import os
import pathlib
import re
import shutil
import subprocess
import sys

import pytest

from ansible_collections.tritonfleet.serving.tests.unit.utils import playbook_run

REPO_ROOT = pathlib.Path(__file__).resolve().parents[3]
HAPROXY = shutil.which("haproxy") or "/usr/sbin/haproxy"


def layout(*ports):
    return [{"name": "triton%d" % i, "http_port": p, "grpc_port": p + 1, "metrics_port": p + 2} for i, p in enumerate(ports)]


def render(tmp_path, runtime, groups, **gateway_vars):
    local = dict(ansible_connection="local", ansible_python_interpreter=sys.executable)
    gateway = dict(local, gateway_runtime=runtime, tritonfleet_root=str(tmp_path / "root"),
                   gateway_model_groups=groups, **gateway_vars)
    inventory = {"all": {"children": {
        "triton_servers": {"hosts": {
            "a1": dict(local, tritonfleet_servers=layout(8000, 8010), tritonfleet_address="10.0.0.1"),
            "b1": dict(local, tritonfleet_servers=layout(8000), tritonfleet_address="10.0.0.2",
                       tritonfleet_model_group="llama")}},
        "triton_gateways": {"hosts": {"gw": gateway}}}}}
    (tmp_path / "inventory.json").write_text(json.dumps(inventory))
    out = tmp_path / "haproxy.cfg"
    (tmp_path / "render.yml").write_text(json.dumps([{
        "name": "Render the gateway's configuration", "hosts": "triton_gateways", "gather_facts": False,
        "tasks": [
            {"name": "Check the settings", "ansible.builtin.include_role": {
                "name": "tritonfleet.serving.gateway", "tasks_from": "validate", "public": True}},
            {"name": "Render", "ansible.builtin.template": {
                "src": str(REPO_ROOT / "roles/gateway/templates/haproxy.cfg.j2"), "dest": str(out), "mode": "0644"}},
        ]}]))
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=str(REPO_ROOT / ".collections"))
    run = playbook_run.run(["ansible-playbook", "-i", str(tmp_path / "inventory.json"), str(tmp_path / "render.yml")],
                           env=env, cwd=tmp_path, timeout=300)
    return run, out


TWO_GROUPS = [{"name": "default", "http_port": 8080, "grpc_port": 8081},
              {"name": "llama", "http_port": 9080, "grpc_port": 9081, "ensemble": "tensorrt_llm_bls"}]


@pytest.mark.parametrize("runtime", ["process", "systemd"])
def test_each_model_group_gets_checked_http_and_grpc_frontends_haproxy_accepts(tmp_path, runtime):
    run, out = render(tmp_path, runtime, TWO_GROUPS)
    assert run.rc == 0, run
    config = out.read_text()
    check = subprocess.run([HAPROXY, "-c", "-f", str(out)], capture_output=True, text=True, check=False)
    assert check.returncode == 0, check.stdout + check.stderr + config
    assert config.count("balance leastconn") == 4
    assert "bind 0.0.0.0:8081 proto h2" in config and "bind 0.0.0.0:9081 proto h2" in config
    assert "http-check send meth GET uri /v2/models/ensemble/ready" in config
    assert "http-check send meth GET uri /v2/models/tensorrt_llm_bls/ready" in config
    llama = config[config.index("backend llama_grpc"):]
    assert re.findall(r"server (\S+) (\S+) proto h2 check-proto h1 port (\d+)", llama) == [("b1.triton0", "10.0.0.2:8001", "8000")]
    default_http = config[config.index("backend default_http"):config.index("frontend default_grpc")]
    assert re.findall(r"^    server (\S+) (\S+)", default_http, re.M) == [("a1.triton0", "10.0.0.1:8000"), ("a1.triton1", "10.0.0.1:8010")]
    assert "http-request use-service prometheus-exporter if { path /metrics }" in config
    assert re.search(r"stats socket \S+ mode 660 level admin expose-fd listeners", config)
    assert ("user haproxy" in config) == (runtime == "systemd")


def test_a_group_without_servers_is_refused_before_rendering(tmp_path):
    run, out = render(tmp_path, "process", TWO_GROUPS + [{"name": "mistral", "http_port": 7080, "grpc_port": 7081}])
    assert run.rc != 0 and not out.exists()
    assert "model group(s) mistral of gateway_model_groups on gw have no Triton server behind them" in run.messages(
        failed_only=True), run


@pytest.mark.parametrize("groups, text", [
    ([{"name": "default", "http_port": 8080, "grpc_port": 8080}], "port 8080 is used twice"),
    ([{"name": "default", "http_port": 8080, "grpc_port": 8404}], "port 8404 is used twice"),
    ([{"name": "def ault", "http_port": 8080, "grpc_port": 8081}], "may hold only letters"),
    ([{"name": "default", "http_port": "http", "grpc_port": 8081}], "gateway_model_groups"),
])
def test_frontends_that_cannot_be_told_apart_are_refused(tmp_path, groups, text):
    run, _out = render(tmp_path, "process", groups)
    assert run.rc != 0
    assert text in run.messages(failed_only=True), run
