"""Day two on this machine: the gateway in front of three servers, rolling updates under load, faults.

One local deployment with three servers (so that one can be updated while
another is killed and a third still serves) and the gateway (HAProxy as a
supervised process). Load goes through the gateway with the project's bounded
load client (benchmarks/load_client.py): a fixed number of requests at a fixed
rate, so it spans the run it watches, and a deadline.
"""

import json
import os
import pathlib
import re
import shutil
import signal
import socket
import sys
import threading
import time
import urllib.request

import pytest

from local_deploy import REPO, Deployment, assert_refused_in_preflight, free_port_base

sys.path.insert(0, str(REPO / "benchmarks"))
from load_client import run_load  # noqa: E402  (benchmarks/ is not a package)

# Its own deployment of three servers and many site.yml runs: the Docker lane has room for it.
pytestmark = [pytest.mark.integration, pytest.mark.second_lane]

SERVERS = 3
WITH_THREE = ("-e", "servers_count=%d" % SERVERS)
CHECK_INTERVAL_S = 1.0  # gateway_check_interval_ms's default
CHECK_FALL = 2


class Gateway:
    def __init__(self, dep):
        self.dep = dep
        self.http = "127.0.0.1:%d" % (dep.port_base + 80)
        self.grpc = "127.0.0.1:%d" % (dep.port_base + 81)
        self.stats = "127.0.0.1:%d" % (dep.port_base + 84)
        self.socket = str(dep.root / "gateway" / "admin.sock")
        self.config = dep.root / "gateway" / "haproxy.cfg"

    def command(self, text):
        sock = socket.socket(socket.AF_UNIX)
        sock.settimeout(5)
        sock.connect(self.socket)
        sock.sendall(text.encode() + b"\n")
        data = b""
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
        sock.close()
        return data.decode()

    def servers(self):
        """{(backend, server): status} from HAProxy's runtime API."""
        lines = self.command("show stat").lstrip("# ").splitlines()
        header = lines[0].split(",")
        rows = [dict(zip(header, line.split(","))) for line in lines[1:] if line]
        return {(r["pxname"], r["svname"]): r["status"] for r in rows if r["svname"] not in ("FRONTEND", "BACKEND")}


class Load(threading.Thread):
    """The bounded load client in the background through the gateway: at most `requests` at `rate` per second,
    until result() (its stop file) ends it or the deadline passes."""

    def __init__(self, url, rate=5, requests=3000, protocol="grpc", stream=True, deadline=600):
        super().__init__(daemon=True)
        self.stop_file = "%s/load-stop-%d-%d" % (os.environ.get("TMPDIR", "/tmp"), os.getpid(), id(self))
        self.kwargs = dict(url=url, requests=requests, rate=rate, concurrency=4, deadline=deadline, protocol=protocol,
                           stream=stream, max_tokens=8, stop_file=self.stop_file)
        self.report = None

    def run(self):
        self.report = run_load(**self.kwargs)

    def result(self):
        pathlib.Path(self.stop_file).touch()
        self.join()
        os.unlink(self.stop_file)
        return self.report


def server_pids(dep):
    return {p.stem: int(p.read_text()) for p in (dep.root / "servers" / "run").glob("*.pid")}


def serving_revision(dep, name):
    """The revision the server's process was started on (its --model-repository)."""
    argv = pathlib.Path("/proc/%d/cmdline" % server_pids(dep)[name]).read_bytes().decode().split("\0")
    repo = [a.split("=", 1)[1] for a in argv if a.startswith("--model-repository=")]
    return pathlib.Path(repo[0]).name


def in_service(dep):
    return {p.stem: json.loads(p.read_text()) for p in (dep.root / "servers" / "in_service").glob("*.json")}


@pytest.fixture(scope="module")
def fleet(tmp_path_factory):
    if not shutil.which("haproxy") and os.geteuid() != 0:
        pytest.skip("HAProxy is not installed and only root can install it")
    dep = Deployment(tmp_path_factory.mktemp("gateway") / "root", free_port_base())
    first = dep.playbook("site.yml", *WITH_THREE)
    yield dep, first
    dep.playbook("playbooks/teardown.yml", *WITH_THREE)


def test_site_puts_a_health_checked_gateway_in_front_of_every_server(fleet):
    dep, first = fleet
    assert first.rc == 0, first
    gateway = Gateway(dep)
    # verify sent text through the gateway over both protocols
    for task in ("Send the prompt through each gRPC frontend", "Send the prompt through each HTTP frontend"):
        answers = first.result(task, host="localhost")["results"]
        assert len(answers) == 1 and answers[0]["text"].strip(), first
    names = ["localhost.triton%d" % i for i in range(SERVERS)]
    assert gateway.servers() == {(backend, name): "UP" for backend in ("default_http", "default_grpc") for name in names}
    config = gateway.config.read_text()
    assert config.count("balance leastconn") == 2
    # health checks ask the ensemble's readiness, over HTTP for the gRPC backend too
    assert config.count("http-check send meth GET uri /v2/models/ensemble/ready") == 2
    assert "bind 127.0.0.1:%d proto h2" % (dep.port_base + 81) in config
    assert re.search(r"server localhost\.triton0 127\.0\.0\.1:%d proto h2 check-proto h1 port %d"
                     % (dep.port_base + 1, dep.port_base), config), config
    metrics = urllib.request.urlopen("http://%s/metrics" % gateway.stats, timeout=10).read().decode()
    assert re.search(r'haproxy_backend_active_servers\{proxy="default_grpc"\} %d' % SERVERS, metrics), metrics[:2000]
    # Triton's generate_stream (server-sent events) through the gateway
    body = json.dumps({"text_input": "Triton", "max_tokens": 4, "stream": True}).encode()
    request = urllib.request.Request("http://%s/v2/models/ensemble/generate_stream" % gateway.http, data=body,
                                     headers={"Content-Type": "application/json"})
    events = [line for line in urllib.request.urlopen(request, timeout=30).read().decode().splitlines()
              if line.startswith("data: ")]
    assert len(events) >= 2, events


def test_a_new_gateway_configuration_is_checked_and_reloaded_without_dropping_requests(fleet):
    dep, _first = fleet
    gateway = Gateway(dep)
    master = int((dep.root / "gateway" / "run" / "tritonfleet-gateway.pid").read_text())
    load = Load(gateway.http, rate=6, protocol="http", stream=True)
    load.start()
    time.sleep(2)
    run = dep.playbook("playbooks/gateway.yml", *WITH_THREE, "-e", "gateway_check_interval_ms=700")
    report = load.result()
    assert run.rc == 0, run
    assert run.status("Render the HAProxy configuration", host="localhost") == "changed", run
    assert run.status("Reload the HAProxy master", host="localhost") == "changed", run
    assert "inter 700ms" in gateway.config.read_text()
    assert int((dep.root / "gateway" / "run" / "tritonfleet-gateway.pid").read_text()) == master, "restarted, not reloaded"
    print("reload under load:", report.summary())
    assert report.ok, report.errors
    # back to the default configuration for the next tests
    assert dep.playbook("playbooks/gateway.yml", *WITH_THREE).rc == 0


def test_rolling_update_under_load_survives_a_killed_server(fleet):
    """A new repository version server by server while load flows; a server killed mid-rollout is routed around."""
    dep, _first = fleet
    gateway = Gateway(dep)
    before = {name: serving_revision(dep, name) for name in server_pids(dep)}
    assert len(set(before.values())) == 1
    pids = server_pids(dep)
    load = Load(gateway.grpc, rate=5)
    load.start()
    time.sleep(2)
    runner = {}
    thread = threading.Thread(target=lambda: runner.update(run=dep.playbook(
        "playbooks/rolling_update.yml", *WITH_THREE, "-e", "repository_max_queue_delay_microseconds=100")))
    thread.start()
    # The rollout's first server restarts; then triton2, which still serves the old version, dies.
    deadline = time.monotonic() + 300
    while server_pids(dep).get("triton0") == pids["triton0"]:
        assert time.monotonic() < deadline and thread.is_alive(), "the rollout never restarted triton0"
        time.sleep(0.2)
    os.kill(pids["triton2"], signal.SIGKILL)
    killed_at = time.time()
    while not all(status.startswith("DOWN") for (_b, name), status in gateway.servers().items()
                  if name == "localhost.triton2"):
        assert time.time() - killed_at < 10, gateway.servers()
        time.sleep(0.1)
    routed_around_after = time.time() - killed_at
    thread.join()
    run = runner["run"]
    report = load.result()
    assert run.rc == 0, run

    after = {name: serving_revision(dep, name) for name in server_pids(dep)}
    assert sorted(after) == ["triton0", "triton1", "triton2"]
    assert len(set(after.values())) == 1 and set(after.values()) != set(before.values()), (before, after)
    assert {name: record["repository"].rsplit("/", 1)[1] for name, record in in_service(dep).items()} == after
    # the old revision went once every server had passed on the new one
    assert sorted(p.name for p in (dep.root / "servers" / "revisions").iterdir()) == sorted(set(after.values()))
    assert all(status == "UP" for status in gateway.servers().values()), gateway.servers()

    # one server at a time: each drained before it changed, back once the gateway's checks passed
    drains = [r.result for r in run.results(task="Wait until the server holds no connection, then take it out, triton0")]
    assert drains, run
    back = [item["item"][1]["name"] for found in run.results(task="Put the servers in the gateways once their health checks pass")
            for item in found.result.get("results", []) if not item.get("failed")]
    assert sorted(set(back)) == ["triton0", "triton1", "triton2"], run

    timeline = report.timeline()
    in_flight_at_kill = [r for r in timeline if r["start"] <= killed_at and (r["end"] is None or r["end"] >= killed_at)]
    started_after_kill = [r for r in timeline if r["start"] > killed_at]
    print("rolling update under load: %s; triton2 killed mid-rollout, out of the gateway after %.1f s; "
          "%d request(s) in flight at the kill" % (report.summary(), routed_around_after, len(in_flight_at_kill)))
    assert routed_around_after <= CHECK_INTERVAL_S * (CHECK_FALL + 1) + 1
    # The only requests a SIGKILL can take are the streams it cut; every later one was served.
    assert [r for r in started_after_kill if not r["ok"]] == [], report.errors
    assert report.failed <= len(in_flight_at_kill), report.errors
    assert report.succeeded >= 100, report.summary()


def test_a_version_triton_refuses_is_rolled_back_while_the_others_keep_serving(fleet):
    dep, _first = fleet
    gateway = Gateway(dep)
    pids = server_pids(dep)
    revision = serving_revision(dep, "triton0")
    load = Load(gateway.grpc, rate=5)
    load.start()
    run = dep.playbook("playbooks/rolling_update.yml", *WITH_THREE,
                       "-e", json.dumps({"repository_tensorrt_llm_parameters": {"gpt_model_path": "/nonexistent/engine"}}),
                       "-e", "verify_health_timeout=60")
    report = load.result()
    assert run.rc != 0, run
    message = run.messages("Stop this host's rollout", host="localhost")
    assert "localhost: server triton0 failed" in message, run
    assert "tensorrt_llm" in message and "/nonexistent/engine" in message, message
    assert "Rolled back to revision %s, which serves again" % revision in message, message
    # the rollout stopped at the first server; the others were never touched
    assert server_pids(dep)["triton1"] == pids["triton1"] and server_pids(dep)["triton2"] == pids["triton2"]
    assert {serving_revision(dep, name) for name in pids} == {revision}
    assert all(status == "UP" for status in gateway.servers().values()), gateway.servers()
    print("refused version under load:", report.summary())
    assert report.ok, report.errors
    # nothing the old version needs was deleted: its revision is still there beside the refused one
    assert revision in [p.name for p in (dep.root / "servers" / "revisions").iterdir()]


@pytest.mark.parametrize("extra, names", [
    (lambda base: {"gateway_model_groups": [{"name": "default", "http_port": base + 10, "grpc_port": base + 81}]},
     "are also Triton server ports"),
    (lambda base: {"gateway_model_groups": [{"name": "default", "http_port": base + 80, "grpc_port": base + 81},
                                            {"name": "llama", "http_port": base + 85, "grpc_port": base + 86}]},
     "model group(s) llama of gateway_model_groups"),
    (lambda base: {"tritonfleet_serial": 0}, "tritonfleet_serial"),
    (lambda base: {"tritonfleet_serial": "150%"}, "tritonfleet_serial"),
    (lambda base: {"tritonfleet_max_fail_percentage": 101}, "tritonfleet_max_fail_percentage"),
], ids=["gateway-port-is-a-server-port", "frontend-without-servers", "serial-zero", "serial-over-100%",
        "max-fail-over-100"])
def test_bad_rollout_settings_stop_in_preflight(fleet, extra, names):
    dep, _first = fleet
    run = dep.playbook("playbooks/rolling_update.yml", *WITH_THREE, "-e", json.dumps(extra(dep.port_base)))
    assert_refused_in_preflight(run)
    assert names in run.messages(failed_only=True), run


def test_an_unreachable_host_stops_the_run_unless_max_fail_percentage_allows_it(fleet, tmp_path):
    dep, _first = fleet
    pids = server_pids(dep)
    inventory = tmp_path / "inventory"
    shutil.copytree(REPO / "inventories" / "local", inventory)
    hosts = (inventory / "hosts.yml").read_text().replace("triton_servers:\n  hosts:\n", (
        "triton_servers:\n  hosts:\n    ghost:\n      ansible_host: 192.0.2.10\n      ansible_connection: ssh\n"
        "      ansible_ssh_common_args: -o ConnectTimeout=3 -o BatchMode=yes\n"), 1)
    (inventory / "hosts.yml").write_text(hosts)
    args = ("-i", str(inventory), *WITH_THREE)

    strict = dep.playbook("playbooks/rolling_update.yml", *args)
    assert strict.rc != 0 and strict.stats["ghost"]["unreachable"] == 1, strict
    # Stopped in preflight: nothing ran after it on any host, nothing changed.
    assert strict.stats["localhost"]["failures"] == 1 and strict.changed == 0, strict
    assert not list(strict.results(play="Start or update the Triton servers, a batch of hosts at a time")), strict
    assert "ghost could not be reached" in strict.messages(failed_only=True), strict

    tolerant = dep.playbook("playbooks/rolling_update.yml", *args, "-e", "tritonfleet_max_fail_percentage=50")
    assert tolerant.stats["ghost"]["unreachable"] == 1, tolerant
    assert tolerant.stats["localhost"]["failures"] == 0, tolerant
    assert tolerant.result("Send the prompt through each gRPC frontend", host="localhost")["results"][0]["text"]
    # Every server serves the one revision left: what the inventory renders now (the refused revision of
    # the test before is gone, and so is any other once all servers passed on it).
    revisions = [p.name for p in (dep.root / "servers" / "revisions").iterdir()]
    assert len(revisions) == 1, revisions
    assert {serving_revision(dep, name) for name in server_pids(dep)} == set(revisions)
    assert sorted(server_pids(dep)) == sorted(pids)
