"""A Docker engine for the tests that need one (images role, container builds, molecule).

CI (.ci/run) installs Debian's docker.io but nothing starts dockerd there, so
the first test that needs the engine starts it. Without an engine those tests
skip and say why, unless TRITONFLEET_REQUIRE_DOCKER=1 (CI), where they fail.
"""

import os
import pathlib
import shutil
import subprocess
import time

import pytest

REPO_ROOT = pathlib.Path(__file__).resolve().parents[1]
OUTPUT = REPO_ROOT / "tests" / "output"
BUILD_IMAGES = REPO_ROOT / "molecule" / "resources" / "build_images.sh"


def docker_answers():
    if shutil.which("docker") is None:
        return False
    return subprocess.run(["docker", "info"], capture_output=True, check=False).returncode == 0


def start_dockerd():
    if shutil.which("dockerd") is None:
        return False
    OUTPUT.mkdir(parents=True, exist_ok=True)
    with open(OUTPUT / "dockerd.log", "ab") as log:
        subprocess.Popen(["dockerd"], stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    for _attempt in range(60):
        if docker_answers():
            return True
        time.sleep(1)
    return False


def unavailable(reason):
    if os.environ.get("TRITONFLEET_REQUIRE_DOCKER") == "1":
        pytest.fail("%s, and TRITONFLEET_REQUIRE_DOCKER=1 requires the Docker tests to run" % reason)
    pytest.skip(reason)


def ensure_docker_engine():
    """Return when a Docker engine answers (starting dockerd if it can); skip or fail otherwise."""
    if not docker_answers() and not start_dockerd():
        unavailable("no Docker engine answers and dockerd could not be started (Debian: apt-get install docker.io)")


def ensure_test_image(short_name, reference):
    """Build one of molecule/resources' images (and what it is built from) unless present."""
    ensure_docker_engine()
    present = subprocess.run(["docker", "image", "inspect", reference], capture_output=True, check=False)
    if present.returncode != 0:
        subprocess.run([str(BUILD_IMAGES), short_name], check=True)
    return reference
