"""The molecule scenarios, end to end: create, prepare, converge, idempotence, verify, destroy.

Each run's whole output goes to tests/output/molecule-<scenario>.log; the
registry password of the session must appear nowhere in it.
"""

import os
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
        proc = subprocess.run(["molecule", command[0], "-s", scenario] + list(command[1:]), cwd=REPO_ROOT, env=run_env, stdout=log, stderr=subprocess.STDOUT, check=False)
    elapsed = time.monotonic() - started
    text = log_path.read_text(errors="replace")
    if check and proc.returncode != 0:
        pytest.fail("molecule %s -s %s failed (exit %d) after %.0f s; end of %s:\n%s"
                    % (" ".join(command), scenario, proc.returncode, elapsed, log_path, text[-6000:]))
    return proc.returncode, text, elapsed


def assert_secret_absent(env, text):
    secret = env["TRITONFLEET_REGISTRY_PASSWORD"]
    assert secret not in text, "the registry password appears in molecule's output"


@pytest.mark.parametrize("scenario", ["default", "fleet"])
def test_scenario(fleet_env, scenario):
    # Hosts start from empty Docker state: no engine installed, no image pulled.
    molecule(fleet_env, scenario, "destroy", log_name=scenario + "-destroy")
    for volume in HOST_VOLUMES:
        docker_quiet("volume", "rm", "-f", volume)
    rc, text, elapsed = molecule(fleet_env, scenario, "test")
    assert_secret_absent(fleet_env, text)
    # Molecule's idempotence step passed; the verify play reported the build count.
    assert "Idempotence completed successfully" in text
    builds = re.search(r"(\d+) host\(s\), (\d+) SKU\(s\).*?: (\d+) build\(s\)", text)
    assert builds, "the verify play did not report the fleet's builds"
    hosts, skus, count = (int(g) for g in builds.groups())
    assert count == skus
    if scenario == "fleet":
        assert (hosts, skus, count) == (3, 2, 2)
    print("molecule test -s %s: %.0f s" % (scenario, elapsed))
