"""The molecule scenarios, end to end: create, prepare, converge, idempotence, verify, destroy.

Each run's whole output goes to tests/output/molecule-<scenario>.log; the
registry password of the session must appear nowhere in it. Steps whose
outcome the tests judge (check mode, a refused login or build, which
containers a change recreated, what verify found) run with the
ansible.posix.json callback and are judged on the tasks' results, not on
printed text; molecule's own idempotence step reads the default output.
"""

import json
import re
import subprocess
import time

import pytest

from fleet_env import HOST_VOLUMES, OUTPUT, REPO_ROOT, docker_quiet

from ansible_collections.tritonfleet.serving.tests.unit.utils.playbook_run import JSON_CALLBACK_ENV, PlaybookRun

pytestmark = [pytest.mark.molecule, pytest.mark.docker]


def molecule(env, scenario, *command, log_name=None, check=True):
    OUTPUT.mkdir(parents=True, exist_ok=True)
    log_path = OUTPUT / ("molecule-%s.log" % (log_name or scenario))
    started = time.monotonic()
    venv_bin = REPO_ROOT / ".venv" / "bin"
    run_env = dict(env, PATH="%s:%s" % (venv_bin, env.get("PATH", "")), ANSIBLE_FORCE_COLOR="0", PY_COLORS="0")
    with open(log_path, "w") as log:
        proc = subprocess.run(["molecule", command[0], "-s", scenario] + list(command[1:]), cwd=REPO_ROOT,
                              env=run_env, stdout=log, stderr=subprocess.STDOUT, check=False)
    elapsed = time.monotonic() - started
    text = log_path.read_text(errors="replace")
    if check and proc.returncode != 0:
        pytest.fail("molecule %s -s %s failed (exit %d) after %.0f s; end of %s:\n%s"
                    % (" ".join(command), scenario, proc.returncode, elapsed, log_path, text[-6000:]))
    return proc.returncode, text, elapsed


def molecule_results(env, scenario, *command, log_name):
    """A molecule step whose playbook results are read as data: a PlaybookRun.

    molecule logs to stderr; with the JSON callback the playbook's stdout is one
    JSON document of every task's per-host result and the recap.
    """
    OUTPUT.mkdir(parents=True, exist_ok=True)
    venv_bin = REPO_ROOT / ".venv" / "bin"
    run_env = dict(env, PATH="%s:%s" % (venv_bin, env.get("PATH", "")), PY_COLORS="0", **JSON_CALLBACK_ENV)
    argv = ["molecule", command[0], "-s", scenario] + list(command[1:])
    proc = subprocess.run(argv, cwd=REPO_ROOT, env=run_env, capture_output=True, text=True, check=False)
    (OUTPUT / ("molecule-%s.log" % log_name)).write_text(proc.stderr + "\n--- stdout (ansible.posix.json)\n" + proc.stdout)
    return PlaybookRun(argv, proc.returncode, proc.stdout, proc.stderr)


def assert_secret_absent(env, text):
    secret = env["TRITONFLEET_REGISTRY_PASSWORD"]
    assert secret not in text, "the registry password appears in molecule's output"


BUILDS = re.compile(r"(\d+) host\(s\), (\d+) SKU\(s\).*?: (\d+) build\(s\)")


def fresh_hosts(env, scenario):
    """Hosts start from empty Docker state: no engine installed, no image pulled."""
    molecule(env, scenario, "destroy", log_name=scenario + "-destroy")
    for volume in HOST_VOLUMES:
        docker_quiet("volume", "rm", "-f", volume)


def reported_builds(text):
    """(hosts, SKUs, builds) from verify's report of the fleet's builds."""
    builds = BUILDS.search(" ".join(text.split()))
    assert builds, "the verify play did not report the fleet's builds"
    return tuple(int(g) for g in builds.groups())


def test_fleet(fleet_env):
    """Three hosts, two GPU SKUs in gpu mode on stand-ins: molecule's whole sequence, two engine builds,
    each container with its GPUs, the tensor-parallel server with two ranks under mpirun."""
    fresh_hosts(fleet_env, "fleet")
    # molecule's test sequence one step at a time, to time each (tests/output/molecule-fleet-times.json).
    texts, times = [], {}
    try:
        for step in ("syntax", "create", "prepare", "converge", "idempotence"):
            _rc, step_text, times[step] = molecule(fleet_env, "fleet", step, log_name="fleet-" + step)
            texts.append(step_text)
        started = time.monotonic()
        verify = molecule_results(fleet_env, "fleet", "verify", log_name="fleet-verify")
        times["verify"] = time.monotonic() - started
        texts.append(verify.stdout + verify.stderr)
        assert verify.rc == 0 and verify.failures == 0, verify
    finally:
        texts.append(molecule(fleet_env, "fleet", "destroy", log_name="fleet-destroy", check=False)[1])
        (OUTPUT / "molecule-fleet-times.json").write_text(json.dumps({k: round(v, 1) for k, v in times.items()}) + "\n")
    text = "\n".join(texts)
    elapsed = sum(times.values())
    assert_secret_absent(fleet_env, text)
    assert re.search(r"idempotence\] Executed: Successful", text)
    # What verify's assertions found, from their results' messages.
    words = " ".join(verify.messages().split())
    assert reported_builds(words) == (3, 2, 2)
    for seen in ("fleet-a1: gpu mode, 1 GPU(s) (NVIDIA-H100-80GB-HBM3",
                 "fleet-b1: gpu mode, 2 GPU(s) (NVIDIA-L40S",
                 "fleet-b1: the probe listed 2 GPU(s)",
                 "fleet-a1/triton0: NVIDIA_VISIBLE_DEVICES=0, 1 tritonserver rank(s)",
                 "fleet-a2/triton0: NVIDIA_VISIBLE_DEVICES=0, 1 tritonserver rank(s)",
                 "fleet-b1/triton0: NVIDIA_VISIBLE_DEVICES=0,1, 2 tritonserver rank(s) under mpirun",
                 "fleet-b1: built in a container with NVIDIA_VISIBLE_DEVICES=0,1",
                 "fleet-b1: nvidia-container-toolkit from http://172.30.240.3/libnvidia-container/stable/deb/amd64"):
        assert seen in words, "verify did not report: %s" % seen
    assert re.search(r"fleet-a[12]: built in a container with NVIDIA_VISIBLE_DEVICES=0(?![,0-9])", words)
    print("molecule -s fleet: %.0f s (%s)" % (elapsed, ", ".join("%s %.0f s" % item for item in times.items())))


def test_default_host_check_mode_and_bad_input(fleet_env):
    """One host: check mode on the bare host, converge, idempotence, check mode that predicts no
    change; bad input on the running host (a wrong registry password, a build that exits non-zero)
    fails with a clear message and leaves the servers serving; a new port for one server recreates
    only its container."""
    fresh_hosts(fleet_env, "default")
    texts = []
    try:
        for step in ("create", "prepare"):
            texts.append(molecule(fleet_env, "default", step, log_name="default-" + step)[1])

        # Check mode on the bare host predicts the whole deployment and changes nothing.
        run = molecule_results(fleet_env, "default", "converge", "--", "--check", log_name="default-check-bare")
        texts.append(run.stdout + run.stderr)
        assert run.rc == 0 and list(run.stats) == ["fleet-solo"] and run.changed > 0, run
        assert "would start triton0, triton1 once Docker is installed" in run.messages(host="fleet-solo"), run

        for step in ("converge", "idempotence"):
            texts.append(molecule(fleet_env, "default", step, log_name="default-" + step)[1])
        assert "fleet-solo: cpu mode, 0 GPU(s)" in texts[-2]  # no nvidia-smi: docker + cpu stays covered

        run = molecule_results(fleet_env, "default", "converge", "--", "--check", "--diff", log_name="default-check")
        texts.append(run.stdout + run.stderr)
        assert run.rc == 0 and list(run.stats) == ["fleet-solo"] and run.changed == 0, run

        # Through the environment, as the right one comes: molecule prints failed commands.
        wrong = "wrong-" + fleet_env["TRITONFLEET_REGISTRY_PASSWORD"][::-1]
        run = molecule_results(dict(fleet_env, TRITONFLEET_REGISTRY_PASSWORD=wrong), "default", "converge",
                               log_name="default-bad-login")
        texts.append(run.stdout + run.stderr)
        assert run.rc != 0
        assert re.search(r"Logging in to registry 172\.30\.240\.2:5000 as user '+tritonfleet'+ failed",
                         run.messages(failed_only=True)), run
        assert wrong not in run.stdout + run.stderr, "the wrong password appears in the output"

        broken = {"engine_container_env": {"TRITONFLEET_STANDIN_FAIL": "1"},
                  "engine_build_args": {"max_batch_size": 4, "max_input_len": 256, "max_seq_len": 512,
                                        "gemm_plugin": "float32"}}
        run = molecule_results(fleet_env, "default", "converge", "--", "-e", json.dumps(broken),
                               log_name="default-bad-build")
        texts.append(run.stdout + run.stderr)
        failure = " ".join(run.messages(failed_only=True).split())
        assert run.rc != 0
        assert "exited with status 3" in failure and "was left in place" in failure, run

        # The servers still run the previous engine and answer.
        run = molecule_results(fleet_env, "default", "verify", log_name="default-verify")
        texts.append(run.stdout + run.stderr)
        assert run.rc == 0 and run.failures == 0, run
        assert reported_builds(run.messages()) == (1, 1, 1)

        # A new port for one server recreates that server's container only.
        moved = {"servers_instance_overrides": [{"index": 1, "http_port": 8020}]}
        run = molecule_results(fleet_env, "default", "converge", "--", "-e", json.dumps(moved),
                               log_name="default-move-one")
        texts.append(run.stdout + run.stderr)
        assert run.rc == 0, run
        # Every run of the task (the check-mode probe reports nothing as changed): only triton1 was recreated.
        changed = {}
        for found in run.results(task="Run one Triton container per server", host="fleet-solo"):
            for item in found.result.get("results", []):
                name = item["item"]["name"]
                changed[name] = changed.get(name, False) or bool(item.get("changed"))
                assert item["item"]["http_port"] == {"triton0": 8000, "triton1": 8020}[name], item
        assert changed == {"triton0": False, "triton1": True}, run

        # A server that left the layout goes, even when its container had stopped already.
        stopped = docker_quiet("exec", "fleet-solo", "docker", "stop", "triton1")
        assert stopped.returncode == 0, stopped.stderr
        run = molecule_results(fleet_env, "default", "converge", "--", "-e", json.dumps({"servers_count": 1}),
                               log_name="default-shrink")
        texts.append(run.stdout + run.stderr)
        assert run.rc == 0, run
        removed = [item["item"] for found in run.results(task="Remove Triton containers that left the layout",
                                                         host="fleet-solo")
                   for item in found.result.get("results", []) if item.get("changed")]
        assert removed == ["triton1"], run
        left = docker_quiet("exec", "fleet-solo", "docker", "ps", "-a", "--format", "{{.Names}}")
        assert "triton1" not in left.stdout.split() and "triton0" in left.stdout.split(), left.stdout
    finally:
        molecule(fleet_env, "default", "destroy", log_name="default-destroy", check=False)
    for text in texts:
        assert_secret_absent(fleet_env, text)
