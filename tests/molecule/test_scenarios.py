"""The molecule scenarios, end to end: create, prepare, converge, idempotence, verify, destroy.

Each run's whole output goes to tests/output/molecule-<scenario>.log; the
registry password of the session must appear nowhere in it.
"""

import json
import re
import subprocess
import time

import pytest

from fleet_env import HOST_VOLUMES, OUTPUT, REPO_ROOT, docker_quiet

pytestmark = pytest.mark.molecule


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


def assert_secret_absent(env, text):
    secret = env["TRITONFLEET_REGISTRY_PASSWORD"]
    assert secret not in text, "the registry password appears in molecule's output"


RECAP = re.compile(r"^(\S+)\s+:\s+ok=\d+\s+changed=(\d+)\s+unreachable=\d+\s+failed=(\d+)", re.M)
BUILDS = re.compile(r"(\d+) host\(s\), (\d+) SKU\(s\).*?: (\d+) build\(s\)")


def fresh_hosts(env, scenario):
    """Hosts start from empty Docker state: no engine installed, no image pulled."""
    molecule(env, scenario, "destroy", log_name=scenario + "-destroy")
    for volume in HOST_VOLUMES:
        docker_quiet("volume", "rm", "-f", volume)


def reported_builds(text):
    builds = BUILDS.search(text)
    assert builds, "the verify play did not report the fleet's builds"
    return tuple(int(g) for g in builds.groups())


def test_fleet(fleet_env):
    """Three hosts, two GPU SKUs in gpu mode on stand-ins: molecule's whole sequence, two engine builds,
    each container with its GPUs, the tensor-parallel server with two ranks under mpirun."""
    fresh_hosts(fleet_env, "fleet")
    # molecule's test sequence one step at a time, to time each (tests/output/molecule-fleet-times.json).
    texts, times = [], {}
    try:
        for step in ("syntax", "create", "prepare", "converge", "idempotence", "verify"):
            _rc, step_text, times[step] = molecule(fleet_env, "fleet", step, log_name="fleet-" + step)
            texts.append(step_text)
    finally:
        texts.append(molecule(fleet_env, "fleet", "destroy", log_name="fleet-destroy", check=False)[1])
        (OUTPUT / "molecule-fleet-times.json").write_text(json.dumps({k: round(v, 1) for k, v in times.items()}) + "\n")
    text = "\n".join(texts)
    elapsed = sum(times.values())
    assert_secret_absent(fleet_env, text)
    assert re.search(r"idempotence\] Executed: Successful", text)
    assert reported_builds(text) == (3, 2, 2)
    words = " ".join(text.split())  # the YAML callback may wrap long messages
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
        _rc, text, _t = molecule(fleet_env, "default", "converge", "--", "--check", log_name="default-check-bare")
        texts.append(text)
        assert [int(c) > 0 for _h, c, f in RECAP.findall(text)] == [True], text[-3000:]
        assert "would start triton0, triton1 once Docker is installed" in text

        for step in ("converge", "idempotence"):
            texts.append(molecule(fleet_env, "default", step, log_name="default-" + step)[1])
        assert "fleet-solo: cpu mode, 0 GPU(s)" in texts[-2]  # no nvidia-smi: docker + cpu stays covered

        _rc, text, _t = molecule(fleet_env, "default", "converge", "--", "--check", "--diff",
                                 log_name="default-check")
        texts.append(text)
        assert [int(c) for _h, c, f in RECAP.findall(text)] == [0], text[-3000:]

        # Through the environment, as the right one comes: molecule prints failed commands.
        wrong = "wrong-" + fleet_env["TRITONFLEET_REGISTRY_PASSWORD"][::-1]
        rc, text, _t = molecule(dict(fleet_env, TRITONFLEET_REGISTRY_PASSWORD=wrong), "default", "converge",
                                log_name="default-bad-login", check=False)
        texts.append(text)
        assert rc != 0
        assert re.search(r"Logging in to registry 172\.30\.240\.2:5000 as user '+tritonfleet'+ failed", text), text[-3000:]
        assert wrong not in text, "the wrong password appears in the output"

        broken = {"engine_container_env": {"TRITONFLEET_STANDIN_FAIL": "1"},
                  "engine_build_args": {"max_batch_size": 4, "max_input_len": 256, "max_seq_len": 512,
                                        "gemm_plugin": "float32"}}
        rc, text, _t = molecule(fleet_env, "default", "converge", "--", "-e", json.dumps(broken),
                                log_name="default-bad-build", check=False)
        texts.append(text)
        assert rc != 0
        assert "exited with status 3" in text and "was left in place" in text

        # The servers still run the previous engine and answer.
        _rc, text, _t = molecule(fleet_env, "default", "verify", log_name="default-verify")
        texts.append(text)
        assert reported_builds(text) == (1, 1, 1)

        # A new port for one server recreates that server's container only.
        moved = {"servers_instance_overrides": [{"index": 1, "http_port": 8020}]}
        _rc, text, _t = molecule(fleet_env, "default", "converge", "--", "-e", json.dumps(moved),
                                 log_name="default-move-one")
        texts.append(text)
        containers = text[text.index("Run one Triton container per instance"):]
        assert re.search(r"^ok: \[fleet-solo\] => \(item=triton0: http 8000,", containers, re.M), containers[:2000]
        assert re.search(r"^changed: \[fleet-solo\] => \(item=triton1: http 8020,", containers, re.M), containers[:2000]
    finally:
        molecule(fleet_env, "default", "destroy", log_name="default-destroy", check=False)
    for text in texts:
        assert_secret_absent(fleet_env, text)
