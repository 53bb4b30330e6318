# -*- coding: utf-8 -*-
# Copyright: (c) 2026, tritonfleet maintainers
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The monitoring role's Prometheus configuration and alert rules, rendered by Ansible and judged by promtool.

The role's own `configure` tasks render both files from a two-host inventory,
with its `validate: promtool check ...` in force; promtool then checks them
again here, and `promtool test rules` runs files/monitoring_rules.test.yml, in
which every alert has a series that fires it and one that stays silent.

Needs promtool (Debian's prometheus package; .ci/run installs it). Without it
the tests skip and say why, unless TRITONFLEET_REQUIRE_TOOLS=1 (CI), where they fail.
"""

import json
import os
import pathlib
import shutil
import subprocess
import sys

import pytest
import yaml

from ansible_collections.tritonfleet.serving.tests.unit.utils import playbook_run

REPO_ROOT = pathlib.Path(__file__).resolve().parents[3]
RULES_TEST = pathlib.Path(__file__).resolve().parent / "files" / "monitoring_rules.test.yml"
ALERTS = ["TritonServerDown", "TritonModelNotReady", "TritonFailedRequests", "TritonQueueTimeGrowing",
          "TritonKVCacheNearlyFull", "GPUMemoryNearlyFull"]


def find_tool(name, package="prometheus"):
    """The tool's path; a missing one skips the test, or fails it where TRITONFLEET_REQUIRE_TOOLS=1."""
    found = shutil.which(name) or ("/usr/bin/" + name if os.access("/usr/bin/" + name, os.X_OK) else None)
    if found:
        return found
    reason = "%s is missing (apt-get install %s)" % (name, package)
    if os.environ.get("TRITONFLEET_REQUIRE_TOOLS") == "1":
        pytest.fail("%s, and TRITONFLEET_REQUIRE_TOOLS=1 requires the tests that need it to run" % reason)
    pytest.skip(reason)


@pytest.fixture(scope="module")
def promtool():
    return find_tool("promtool")


def layout(*ports):
    return [{"name": "triton%d" % i, "http_port": p, "grpc_port": p + 1, "metrics_port": p + 2} for i, p in enumerate(ports)]


def render(tmp_path, promtool, tasks_from=("validate", "configure"), hosts="monitoring", extra_args=(), **monitoring_vars):
    """Run the role's validate and configure tasks on b1 of a two-host fleet; return the run and the config dir."""
    local = dict(ansible_connection="local", ansible_python_interpreter=sys.executable)
    config_dir = tmp_path / "prometheus"
    monitoring = dict(dict(monitoring_runtime="process", tritonfleet_root=str(tmp_path / "root"),
                           monitoring_config_dir=str(config_dir), monitoring_promtool_binary=promtool), **monitoring_vars)
    inventory = {"all": {
        "hosts": {
            # A GPU host of the docker runtime: two servers, its DCGM exporter.
            "a1": dict(local, tritonfleet_servers=layout(8000, 8010), tritonfleet_address="10.0.0.1",
                       tritonfleet_runtime="docker", tritonfleet_gpu_count=8, monitoring_node_exporter_port=9101),
            # A CPU host of the process runtime, also the gateway and Prometheus.
            "b1": dict(local, tritonfleet_servers=layout(8000), ansible_host="10.0.0.2",
                       tritonfleet_model_group="llama", tritonfleet_runtime="process", gateway_stats_port=8484)},
        # Only b1 renders Prometheus's files; the other tasks files run wherever a test sends them.
        "vars": monitoring,
        "children": {
            "triton_servers": {"hosts": {"a1": {}, "b1": {}}},
            "triton_gateways": {"hosts": {"b1": {}}},
            "monitoring": {"hosts": {"b1": {}}}}}}
    (tmp_path / "inventory.json").write_text(json.dumps(inventory))
    (tmp_path / "render.yml").write_text(json.dumps([{
        "name": "Render Prometheus's configuration", "hosts": hosts, "gather_facts": False,
        "tasks": [{"name": "Run %s" % name, "ansible.builtin.include_role": {
            "name": "tritonfleet.serving.monitoring", "tasks_from": name}} for name in tasks_from]}]))
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=str(REPO_ROOT / ".collections"))
    run = playbook_run.run(["ansible-playbook", "-i", str(tmp_path / "inventory.json"), str(tmp_path / "render.yml"),
                            *extra_args], env=env, cwd=tmp_path, timeout=300)
    return run, config_dir


def promtool_run(promtool, *args, cwd=None):
    return subprocess.run([promtool, *args], capture_output=True, text=True, check=False, cwd=cwd, timeout=120)


def by_job(config):
    return {job["job_name"]: job for job in config["scrape_configs"]}


def test_the_fleet_renders_a_configuration_promtool_accepts(tmp_path, promtool):
    run, config_dir = render(tmp_path, promtool)
    assert run.rc == 0, run
    config_file, rules_file = config_dir / "prometheus.yml", config_dir / "tritonfleet.rules.yml"
    check = promtool_run(promtool, "check", "config", str(config_file))
    assert check.returncode == 0, check.stdout + check.stderr + config_file.read_text()
    assert "SUCCESS: 1 rules found" in check.stdout or "SUCCESS: 6 rules found" in check.stdout, check.stdout
    config = yaml.safe_load(config_file.read_text())
    assert config["rule_files"] == [str(rules_file)]
    jobs = by_job(config)
    assert list(jobs) == ["prometheus", "triton", "gateway", "node", "dcgm"]
    assert [(c["targets"], c["labels"]) for c in jobs["triton"]["static_configs"]] == [
        (["10.0.0.1:8002"], {"host": "a1", "server": "triton0", "model_group": "default"}),
        (["10.0.0.1:8012"], {"host": "a1", "server": "triton1", "model_group": "default"}),
        (["10.0.0.2:8002"], {"host": "b1", "server": "triton0", "model_group": "llama"})]
    assert [(c["targets"], c["labels"]) for c in jobs["gateway"]["static_configs"]] == [
        (["10.0.0.2:8484"], {"host": "b1"})]
    assert [(c["targets"], c["labels"]) for c in jobs["node"]["static_configs"]] == [
        (["10.0.0.1:9101"], {"host": "a1", "model_group": "default"}),
        (["10.0.0.2:9100"], {"host": "b1", "model_group": "llama"})]
    # Only the GPU host of the docker runtime runs the DCGM exporter.
    assert [(c["targets"], c["labels"]) for c in jobs["dcgm"]["static_configs"]] == [
        (["10.0.0.1:9400"], {"host": "a1", "model_group": "default"})]
    assert jobs["prometheus"]["static_configs"][0]["targets"] == ["127.0.0.1:9090"]
    assert config["global"]["scrape_interval"] == "15s" and "alerting" not in config


def test_the_rendered_rules_pass_promtool_and_hold_every_alert(tmp_path, promtool):
    run, config_dir = render(tmp_path, promtool)
    assert run.rc == 0, run
    rules_file = config_dir / "tritonfleet.rules.yml"
    check = promtool_run(promtool, "check", "rules", str(rules_file))
    assert check.returncode == 0, check.stdout + check.stderr + rules_file.read_text()
    assert "SUCCESS: 6 rules found" in check.stdout, check.stdout
    rules = yaml.safe_load(rules_file.read_text())["groups"][0]["rules"]
    assert [rule["alert"] for rule in rules] == ALERTS
    assert {rule["alert"]: rule["for"] for rule in rules} == {
        "TritonServerDown": "1m", "TritonModelNotReady": "2m", "TritonFailedRequests": "2m",
        "TritonQueueTimeGrowing": "10m", "TritonKVCacheNearlyFull": "5m", "GPUMemoryNearlyFull": "10m"}


def test_every_alert_fires_on_its_series_and_stays_silent_on_the_others(tmp_path, promtool):
    """files/monitoring_rules.test.yml: thresholds are the defaults; the readiness alert watches two models."""
    run, config_dir = render(tmp_path, promtool, monitoring_alert_ready_models=["ensemble", "tensorrt_llm"])
    assert run.rc == 0, run
    test_file = config_dir / RULES_TEST.name
    shutil.copy(RULES_TEST, test_file)
    tested = yaml.safe_load(RULES_TEST.read_text())
    names = [case["alertname"] for test in tested["tests"] for case in test.get("alert_rule_test", [])]
    assert set(names) == set(ALERTS)
    for name in ALERTS:
        # Each alert has a case where it fires and one where nothing does.
        cases = [case for test in tested["tests"] for case in test.get("alert_rule_test", []) if case["alertname"] == name]
        assert any(case.get("exp_alerts") for case in cases), name
        assert any(not case.get("exp_alerts") for case in cases), name
    result = promtool_run(promtool, "test", "rules", test_file.name, cwd=config_dir)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout + result.stderr


def test_alert_thresholds_come_from_the_variables(tmp_path, promtool):
    run, config_dir = render(tmp_path, promtool, monitoring_alert_kv_cache_fraction=0.75, monitoring_alert_queue_time_ms=250,
                             monitoring_alert_gpu_memory_fraction=0.5, monitoring_alert_server_down_for="30s",
                             monitoring_alert_ready_models=[], monitoring_alertmanagers=["am.example:9093"],
                             monitoring_external_labels={"fleet": "prod"},
                             monitoring_extra_scrape_configs=[{"job_name": "custom", "static_configs": [{"targets": ["db:9187"]}]}])
    assert run.rc == 0, run
    rules = {rule["alert"]: rule for rule in yaml.safe_load((config_dir / "tritonfleet.rules.yml").read_text())["groups"][0]["rules"]}
    assert "TritonModelNotReady" not in rules
    assert rules["TritonKVCacheNearlyFull"]["expr"].rstrip().endswith("> 0.75")
    assert rules["TritonQueueTimeGrowing"]["expr"].rstrip().endswith("> 250.0")
    assert rules["GPUMemoryNearlyFull"]["expr"].rstrip().endswith("> 0.5")
    assert rules["TritonServerDown"]["for"] == "30s"
    config = yaml.safe_load((config_dir / "prometheus.yml").read_text())
    assert config["alerting"]["alertmanagers"][0]["static_configs"][0]["targets"] == ["am.example:9093"]
    assert config["global"]["external_labels"] == {"fleet": "prod"}
    assert config["scrape_configs"][-1] == {"job_name": "custom", "static_configs": [{"targets": ["db:9187"]}]}


@pytest.mark.parametrize("variables, text", [
    ({"monitoring_alert_rate_window": "5 minutes"}, "monitoring_alert_rate_window on b1 is not a Prometheus duration"),
    ({"monitoring_scrape_interval": ""}, "monitoring_scrape_interval on b1 is not a Prometheus duration"),
    ({"monitoring_alert_kv_cache_fraction": 1.5}, "monitoring_alert_kv_cache_fraction must be above 0 and at most 1"),
    ({"monitoring_alert_queue_time_ms": 0}, "monitoring_alert_queue_time_ms must be above 0"),
    ({"monitoring_alert_ready_models": ['ens"emble']}, "monitoring_alert_ready_models on b1 holds"),
    ({"monitoring_port": 8002}, "port(s) 8002 on b1 are used twice"),
    ({"monitoring_prometheus_extra_args": ["--query.timeout 2m"]}, "hold white space"),
    ({"monitoring_dcgm_exporter_image": "nvcr.io/nvidia/k8s/dcgm-exporter"}, "monitoring_dcgm_exporter_image"),
    ({"monitoring_runtime": "docker"}, "monitoring_runtime"),
])
def test_bad_settings_are_refused_naming_the_variable(tmp_path, promtool, variables, text):
    run, config_dir = render(tmp_path, promtool, **variables)
    assert run.rc != 0
    assert not (config_dir / "prometheus.yml").exists()
    assert text in run.messages(failed_only=True), run


def test_a_configuration_promtool_refuses_is_not_installed(tmp_path, promtool):
    # A timeout longer than the interval passes the role's own checks; promtool refuses it.
    run, config_dir = render(tmp_path, promtool, monitoring_scrape_interval="5s", monitoring_scrape_timeout="10s")
    assert run.rc != 0
    assert not (config_dir / "prometheus.yml").exists()
    failed = run.result("Render the Prometheus configuration", host="b1")
    assert failed["failed"] and failed["msg"] == "failed to validate", run
    # promtool's own word reaches the user.
    assert "scrape timeout greater than scrape interval" in failed["stdout"] + failed["stderr"], failed


def test_the_dcgm_exporter_runs_only_on_gpu_hosts_of_the_docker_runtime(tmp_path, promtool):
    # The image check stops a1 (8 GPUs, docker) before any container is asked for; b1 (no GPUs, process) skips.
    run, _config_dir = render(tmp_path, promtool, tasks_from=["dcgm_exporter"], hosts="all",
                              monitoring_dcgm_exporter_image="nvcr.io/nvidia/k8s/dcgm-exporter",
                              # Never this machine's Docker engine, whatever the checks say.
                              tritonfleet_docker_ready=False)
    assert run.rc != 0
    assert run.stats["a1"]["failures"] == 1 and run.stats["b1"]["failures"] == 0, run
    assert run.status("Run the DCGM exporter on this host", host="b1") == "skipped"
    assert "monitoring_dcgm_exporter_image: 'nvcr.io/nvidia/k8s/dcgm-exporter' has no tag or digest" in run.messages(
        host="a1", failed_only=True), run


def test_a_dcgm_exporter_port_a_server_uses_is_refused_on_the_gpu_host_only(tmp_path, promtool):
    run, _config_dir = render(tmp_path, promtool, tasks_from=["validate"], hosts="all", monitoring_dcgm_exporter_port=8012)
    assert run.stats["a1"]["failures"] == 1 and run.stats["b1"]["failures"] == 0, run
    assert "port(s) 8012 on a1 are used twice" in run.messages(host="a1", failed_only=True), run
    assert "monitoring_dcgm_exporter_port (8012)" in run.messages(host="a1", failed_only=True), run


@pytest.mark.parametrize("required, outcome", [("1", pytest.fail.Exception), ("", pytest.skip.Exception)])
def test_a_missing_tool_fails_where_tools_are_required_and_skips_elsewhere(monkeypatch, required, outcome):
    monkeypatch.setenv("TRITONFLEET_REQUIRE_TOOLS", required)
    with pytest.raises(outcome, match="no-such-promtool is missing"):
        find_tool("no-such-promtool")
