"""The whole pipeline on this machine: site.yml, idempotence, verify, teardown, bad input."""

import json
import pathlib
import re
import shutil
import socket
import time
import urllib.request

import pytest

from local_deploy import Deployment, assert_refused_in_preflight, free_port_base
from prometheus_api import active_targets, panel_queries, query, wait_for

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def converged(tmp_path_factory):
    dep = Deployment(tmp_path_factory.mktemp("pipeline") / "root", free_port_base())
    first = dep.playbook()
    yield dep, first
    dep.playbook("playbooks/teardown.yml")


def _pids(dep):
    run = dep.root / "servers" / "run"
    return {p.stem: int(p.read_text()) for p in run.glob("*.pid")} if run.exists() else {}


def _cmdline(pid):
    return pathlib.Path("/proc/%d/cmdline" % pid).read_bytes().split(b"\0")


def test_site_converges_and_prints_endpoints_and_answers(converged):
    dep, first = converged
    assert first.rc == 0, first
    assert first.changed > 0
    # verify's summary task loops over (server, gRPC answer, health) per server
    shown = {item["item"][0]["name"]: item["item"]
             for item in first.result("Show each server's endpoints and answer", host="localhost")["results"]}
    assert sorted(shown) == ["triton0", "triton1"], first
    for i in range(2):
        base = dep.port_base + 10 * i
        server, answer, _health = shown["triton%d" % i]
        assert (server["http_port"], server["grpc_port"], server["metrics_port"]) == (base, base + 1, base + 2), server
        assert answer["text"].strip(), (answer, first)


def test_each_server_has_its_own_ports_shm_prefix_and_log(converged):
    dep, _unused = converged
    pids = _pids(dep)
    assert sorted(pids) == ["triton0", "triton1"]
    prefixes = set()
    for name, pid in pids.items():
        argv = [a.decode() for a in _cmdline(pid)]
        prefix = [a for a in argv if "shm-region-prefix-name=" in a]
        assert len(prefix) == 1
        prefixes.add(prefix[0])
        log = dep.root / "logs" / ("%s.log" % name)
        assert "Started GRPCInferenceService" in log.read_text()
    assert len(prefixes) == 2


# Panels that read NVIDIA's DCGM exporter, which runs only on GPU hosts of the docker runtime;
# test_prometheus_reads_the_gpu_panels_from_a_dcgm_exporter covers them.
GPU_PANELS = {"GPU utilization", "GPU memory in use"}


def test_prometheus_scrapes_every_target_and_every_panel_has_data(converged):
    dep, first = converged
    assert first.rc == 0, first
    url = "http://127.0.0.1:%d" % (dep.port_base + 90)
    shown = first.result("Show where Prometheus is and which targets are down", host="localhost")["msg"]
    assert shown == ["Prometheus on localhost: %s (5 of 5 targets up)" % url], shown
    targets = active_targets(url)
    assert sorted(t["labels"]["job"] for t in targets) == ["gateway", "node", "prometheus", "triton", "triton"], targets
    assert all(t["health"] == "up" for t in targets), targets
    servers = {t["labels"]["server"]: t["labels"] for t in targets if t["labels"]["job"] == "triton"}
    assert sorted(servers) == ["triton0", "triton1"], servers
    assert all(labels["host"] == "localhost" and labels["model_group"] == "default" for labels in servers.values())

    # Rates need two scrapes after the verify requests; the local default scrapes every 5 s.
    wanted = [(title, expr) for title, expr in panel_queries() if title not in GPU_PANELS]
    assert len(wanted) >= 10, wanted

    def empty():
        return [title for title, expr in wanted if not query(url, expr)]

    wait_for(lambda: not empty(), 60, lambda: "panels without data: %s" % empty())
    # The deployment is healthy: no alert fires.
    assert query(url, 'ALERTS{alertstate="firing"}') == []


def test_second_run_changes_nothing_and_keeps_the_same_processes(converged):
    dep, _unused = converged
    before = _pids(dep)
    again = dep.playbook()
    assert again.rc == 0, again
    assert again.changed == 0, again
    assert _pids(dep) == before


def test_check_mode_on_a_converged_host_predicts_no_change(converged):
    dep, _unused = converged
    run = dep.playbook("site.yml", "--check", "--diff")
    assert run.rc == 0, run
    assert run.changed == 0, run


def test_changed_repository_restarts_servers(converged):
    dep, _unused = converged
    before = _pids(dep)
    run = dep.playbook("site.yml", "-e", "repository_max_batch_size=4")
    assert run.rc == 0, run
    after = _pids(dep)
    assert set(after) == set(before) and all(after[n] != before[n] for n in after)
    # and back, so the other tests see the default configuration
    assert dep.playbook().rc == 0


def test_model_that_fails_to_load_is_reported_and_other_servers_keep_serving(converged, tmp_path):
    dep, _unused = converged
    broken = tmp_path / "broken_repo"
    shutil.copytree(dep.root / "model_repository", broken, symlinks=True)
    config = broken / "tensorrt_llm" / "config.pbtxt"
    text = config.read_text()
    patched = re.sub(r'(key: "gpt_model_path"\s*value: \{\s*string_value: )"[^"]*"',
                     r'\1"/nonexistent/engine"', text)
    assert patched != text
    config.write_text(patched)

    port = free_port_base(span=3)
    state = dep.root / "servers"
    running = json.loads((state / "run" / "triton0.json").read_text())
    argv = [a for a in running["argv"]
            if not a.startswith(("--model-repository=", "--http-port=", "--grpc-port=", "--metrics-port=",
                                 "--backend-config=python,shm-region-prefix-name=", "--id="))]
    argv += ["--model-repository=%s" % broken, "--http-port=%d" % port, "--grpc-port=%d" % (port + 1),
             "--metrics-port=%d" % (port + 2), "--backend-config=python,shm-region-prefix-name=brokentest_",
             "--id=broken"]
    log = tmp_path / "broken.log"
    run_dir = str(tmp_path / "run")
    # The broken server gets exactly the environment of the real ones.
    args = dict(name="broken", command=argv, run_dir=run_dir, log_file=str(log),
                environment=_server_environment(dep), ports=[port, port + 1, port + 2])
    started = dep.adhoc("tritonfleet.serving.process_service", json.dumps(args))
    assert started.rc == 0, started
    try:
        health = dep.adhoc("tritonfleet.serving.triton_health",
                           "url=127.0.0.1:%d protocol=http models=tensorrt_llm,preprocessing timeout=120 log_file=%s"
                           % (port, log))
        assert health.rc != 0, health
        result = health.result("tritonfleet.serving.triton_health", host="localhost")
        assert result.get("failed"), health
        states = {model["name"]: model for model in result["models"]}
        assert states["tensorrt_llm"]["state"] == "UNAVAILABLE", health
        log_tail = "\n".join(result["log_tail"])
        # the reason or the log tail names the bad path
        assert "nonexistent" in states["tensorrt_llm"]["reason"] + log_tail, health
        assert "tensorrt_llm" in log_tail, health  # the server's own log lines
        # the healthy servers are unaffected
        verify = dep.playbook("playbooks/verify.yml")
        assert verify.rc == 0, verify
    finally:
        dep.adhoc("tritonfleet.serving.process_service",
                  json.dumps(dict(name="broken", run_dir=run_dir, state="stopped")))


def test_site_reports_a_model_that_fails_to_load_with_its_state_and_log(deployment):
    """Through site.yml: the verify stage's failure names the model, its state and the server's log tail."""
    dep = deployment
    run = dep.playbook("site.yml", "-e", "servers_count=1", "-e", "repository_engine_check=false",
                       "-e", "repository_engine_dir=/nonexistent/engine", "-e", "verify_health_timeout=60")
    assert run.rc != 0, run
    assert run.status("tritonfleet.serving.verify : Fail with the servers' model states and logs") == "failed", run
    message = run.messages("Fail with the servers' model states and logs", failed_only=True)
    flat = " ".join(message.split())
    assert re.search(r"tensorrt_llm[^,]*UNAVAILABLE", flat), run
    assert "/nonexistent/engine" in flat, run  # the load error, from the state or the log tail
    assert run.stats and _pids(dep), "the server keeps running for the operator to inspect"


def _server_environment(dep):
    pid = _pids(dep)["triton0"]
    raw = pathlib.Path("/proc/%d/environ" % pid).read_bytes().split(b"\0")
    return dict(item.decode().split("=", 1) for item in raw if b"=" in item)


def test_teardown_stops_everything_and_keeps_engines(deployment, tmp_path):
    dep = deployment
    assert dep.playbook().rc == 0
    pids = _pids(dep)
    # Prometheus and the node exporter go too, where this machine runs them.
    monitoring = {p.stem: int(p.read_text()) for p in (dep.root / "monitoring" / "run").glob("*.pid")}
    down = dep.playbook("playbooks/teardown.yml")
    assert down.rc == 0, down
    for pid in list(pids.values()) + list(monitoring.values()):
        assert not pathlib.Path("/proc/%d" % pid).exists() or b"Z" in pathlib.Path("/proc/%d/stat" % pid).read_bytes()
    assert not (dep.root / "servers").exists()
    assert not (dep.root / "model_repository").exists()
    assert not (dep.root / "monitoring").exists()
    assert list((dep.root / "engines").glob("*/*/tritonfleet-engine.json"))
    assert dep.playbook("playbooks/teardown.yml").changed == 0
    # Asked to, it removes the engines and generated checkpoints too.
    purge = dep.playbook("playbooks/teardown.yml", "-e", "teardown_remove_engines=true")
    assert purge.rc == 0 and purge.changed > 0, purge
    assert not (dep.root / "engines").exists() and not (dep.root / "checkpoints" / "tiny-llama").exists()


def _model_config(dep, model):
    with urllib.request.urlopen("http://127.0.0.1:%d/v2/models/%s/config" % (dep.port_base, model), timeout=5) as r:
        return json.load(r)


def test_explicit_and_poll_model_control_modes(deployment):
    """explicit loads the models at start; poll picks up repository changes without a restart."""
    dep = deployment
    explicit = dep.playbook("site.yml", "-e", "servers_count=1", "-e", "servers_model_control_mode=explicit")
    assert explicit.rc == 0, explicit
    (pid,) = _pids(dep).values()
    argv = _cmdline(pid)
    assert b"--model-control-mode=explicit" in argv and b"--load-model=*" in argv, argv

    poll = ["-e", "servers_count=1", "-e", "servers_model_control_mode=poll", "-e", "servers_repository_poll_secs=1"]
    first = dep.playbook("site.yml", *poll)
    assert first.rc == 0, first
    (pid,) = _pids(dep).values()
    assert b"--model-control-mode=poll" in _cmdline(pid)
    assert int(_model_config(dep, "tensorrt_llm")["dynamic_batching"]["max_queue_delay_microseconds"]) == 0
    changed = dep.playbook("site.yml", *poll, "-e", "repository_max_queue_delay_microseconds=250")
    assert changed.rc == 0 and changed.changed > 0, changed
    assert _pids(dep) == {"triton0": pid}, "poll mode must not restart the server for a repository change"
    deadline = time.monotonic() + 30
    while int(_model_config(dep, "tensorrt_llm")["dynamic_batching"].get("max_queue_delay_microseconds", 0)) != 250:
        assert time.monotonic() < deadline, _model_config(dep, "tensorrt_llm")["dynamic_batching"]
        time.sleep(0.5)


def test_check_mode_on_a_fresh_host_predicts_the_deployment_and_writes_nothing(deployment):
    run = deployment.playbook("site.yml", "--check")
    assert run.rc == 0, run
    # the same tasks a real first run changes (checkpoint, engine, repository, servers)
    assert run.changed >= 8, run
    assert not deployment.root.exists()


# ---- bad input: a clear error, and nothing started -------------------------------------------


def _nothing_started(dep):
    return _pids(dep) == {}


def _refused_before_any_change(run, dep):
    """The preflight play stopped the run: no stage after it ran, no task changed, nothing written."""
    assert_refused_in_preflight(run)
    assert not dep.root.exists(), sorted(str(p) for p in dep.root.rglob("*"))
    assert _nothing_started(dep)


def test_port_in_use_fails_naming_instance_and_port(deployment, tmp_path):
    dep = deployment
    squatter = socket.socket()
    squatter.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    squatter.bind(("127.0.0.1", dep.port_base + 11))  # instance 1's gRPC port
    squatter.listen(1)
    try:
        run = dep.playbook()
    finally:
        squatter.close()
    assert "triton1: port %d already in use" % (dep.port_base + 11) in run.messages(failed_only=True), run
    _refused_before_any_change(run, dep)


@pytest.mark.parametrize("extra, message", [
    (["-e", "servers_port_stride=1"], "triton1: http_port {b1} is already used as grpc_port of triton0"),
    (["-e", '{"servers_instance_overrides": [{"index": 1, "shm_region_prefix": "tritonfleet0_"}]}'],
     "shm_region_prefix 'tritonfleet0_' and 'tritonfleet0_' overlap"),
    (["-e", "servers_model_control_mode=sometimes"], "servers_model_control_mode"),
    # A release without a contract: the message names the variable and the known releases.
    (["-e", "tritonfleet_trtllm_version=0.5.0"],
     "tritonfleet_trtllm_version '0.5.0' has no known ensemble contract; known releases: 0.7 (24.01), 0.12 (24.08)"),
    (["-e", "repository_contract=0.8"], "repository_contract '0.8' is not a known release"),
    # A decoupled value that is not a boolean, as -e gives it.
    (["-e", "repository_decoupled=maybe"], "repository_decoupled"),
    # Streaming verification of a model that cannot stream.
    (["-e", "repository_decoupled=false", "-e", "verify_stream=true"],
     "verify_stream is true but repository_decoupled is false"),
    (["-e", '{"repository_placeholder_values": {"decoupled_mode": "true"}}'],
     "repository_placeholder_values sets decoupled_mode, which the typed variables give"),
])
def test_invalid_layouts_fail_before_anything_starts(deployment, tmp_path, extra, message):
    dep = deployment
    run = dep.playbook("site.yml", *extra)
    assert message.format(b1=dep.port_base + 1) in run.messages(failed_only=True), run
    _refused_before_any_change(run, dep)


def test_checkpoint_without_tokenizer_files_is_refused(deployment, tmp_path):
    dep = deployment
    ckpt = tmp_path / "ckpt"
    ckpt.mkdir()
    (ckpt / "config.json").write_text(json.dumps({"model_type": "llama"}))
    (ckpt / "model.safetensors").write_bytes(b"\0" * 16)
    run = dep.playbook("site.yml", "-e", "engine_generate_tiny_checkpoint=false", "-e", "engine_checkpoint_dir=%s" % ckpt)
    failures = run.messages(failed_only=True)
    assert "tokenizer files" in failures and str(ckpt) in failures, run
    _refused_before_any_change(run, dep)


def test_a_release_not_decoupled_deploys_verifies_without_streaming_and_is_idempotent(deployment):
    """v0.7.1's end_to_end_test.py and benchmark_core_model.py need a deployment that is not decoupled.

    `-e repository_decoupled=false` arrives as a string and must still mean false: the models
    render decoupled: false, verify asks for no stream and the ensemble answers a plain infer.
    """
    from tritonclient.grpc import model_config_pb2
    from google.protobuf import text_format
    dep = deployment
    args = ("-e", "tritonfleet_trtllm_version=0.7.1", "-e", "repository_decoupled=false")
    first = dep.playbook("site.yml", *args)
    assert first.rc == 0, first
    repository = dep.root / "model_repository"
    for model in ("tensorrt_llm",):
        config = text_format.Parse((repository / model / "config.pbtxt").read_text(), model_config_pb2.ModelConfig())
        assert config.model_transaction_policy.decoupled is False, model
    ensemble = text_format.Parse((repository / "ensemble" / "config.pbtxt").read_text(), model_config_pb2.ModelConfig())
    # v0.7's names, not the later ones
    names = {t.name for t in ensemble.input}
    assert {"min_length", "random_seed"} <= names and not {"min_tokens", "seed", "exclude_input_in_output"} & names
    checks = first.result("Check that every server is ready, answers the prompt and counts the requests", host="localhost")
    assert checks["invocation"]["module_args"]["stream"] is False, checks
    grpc = [server["grpc"] for server in checks["servers"]]
    assert len(grpc) == 2, first
    for answer in grpc:
        assert answer["stream"] is False, answer
        assert answer["text"].strip(), answer
    second = dep.playbook("site.yml", *args)
    assert second.rc == 0 and second.changed == 0, second
