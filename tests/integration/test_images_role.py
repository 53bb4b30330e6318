"""The `images` role against a real Docker engine and a real private registry.

A throwaway registry (Debian's `docker-registry`, htpasswd auth with bcrypt)
listens on 127.0.0.1 and serves a tiny image made with `docker import`. The
role pulls `nvcr.io/nvidia/<name>:1`, rewritten to the registry as a mirror,
with ansible-playbook -vvv on localhost:

* the first run logs in and pulls, the second reports changed=0, and the
  published `tritonfleet_images` fact carries the image's ID and digest;
* a wrong password fails with a message naming the registry and the user;
* the password appears in none of the complete -vvv outputs;
* check mode predicts a pull without failing and without pulling;
* `images_pull_policy: always` and a pull by digest work, and stay at changed=0;
* a reference without a tag fails before the host is touched.

Without an answering Docker engine (or without docker-registry, htpasswd, or
the `requests` library community.docker needs on the target's Python) the
Docker tests skip and say why; with TRITONFLEET_REQUIRE_DOCKER=1 they fail
instead. TRITONFLEET_TARGET_PYTHON picks the target's interpreter (default:
this one).
"""

import json
import os
import pathlib
import re
import secrets
import shutil
import socket
import subprocess
import sys
import tarfile
import time
import urllib.error
import urllib.request

import pytest
import yaml

from docker_env import ensure_docker_engine, unavailable

pytestmark = [pytest.mark.integration, pytest.mark.docker]

REPO = pathlib.Path(__file__).resolve().parents[2]
PLAYBOOK_BIN = pathlib.Path(sys.executable).parent / "ansible-playbook"
REGISTRY_BIN = os.environ.get("TRITONFLEET_REGISTRY_BIN", "/usr/bin/docker-registry")
USERNAME = "tfuser"
RECAP = re.compile(r"^localhost\s*:\s*ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)", re.M)


def sh(*args, env=None, input=None, timeout=300):  # pylint: disable=redefined-builtin
    return subprocess.run(list(args), env=env, input=input, capture_output=True, text=True, timeout=timeout,
                          check=False)


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# ------------------------------------------------------------------ fixtures
@pytest.fixture(scope="module")
def docker():
    ensure_docker_engine()
    info = sh("docker", "info", "--format", "{{.ServerVersion}}", timeout=30)
    if info.returncode != 0:
        unavailable("no Docker engine answers (`docker info`: %s); start one with dockerd"
                    % (info.stderr.strip().splitlines() or ["no output"])[-1])
    return info.stdout.strip()


@pytest.fixture(scope="module")
def target_python():
    python = os.environ.get("TRITONFLEET_TARGET_PYTHON", sys.executable)
    probe = sh(python, "-c", "import requests")
    if probe.returncode != 0:
        unavailable("community.docker needs the Python 'requests' library on the target, and %s has none "
                    "(install requests there or point TRITONFLEET_TARGET_PYTHON at a Python that has it)" % python)
    return python


class Registry:
    """docker-registry with htpasswd auth on 127.0.0.1:<free port>, serving one tiny image."""

    def __init__(self, root):
        self.root = root
        self.port = free_port()
        self.host = "127.0.0.1:%d" % self.port
        self.password = "tf-pw-" + secrets.token_hex(12)
        self.name = "tftiny" + secrets.token_hex(4)
        self.requested = "nvcr.io/nvidia/%s:1" % self.name
        self.reference = "%s/nvidia/%s:1" % (self.host, self.name)
        self.digest = None
        self.process = None

    def start(self):
        htpasswd = sh("htpasswd", "-Bbn", USERNAME, self.password)
        assert htpasswd.returncode == 0, htpasswd.stderr
        (self.root / "htpasswd").write_text(htpasswd.stdout)
        (self.root / "config.yml").write_text(yaml.safe_dump({
            "version": 0.1,
            "log": {"level": "warn"},
            "storage": {"filesystem": {"rootdirectory": str(self.root / "data")}},
            "http": {"addr": self.host},
            "auth": {"htpasswd": {"realm": "tritonfleet-test", "path": str(self.root / "htpasswd")}},
        }))
        self.log = open(self.root / "registry.log", "w")  # pylint: disable=consider-using-with
        self.process = subprocess.Popen(  # pylint: disable=consider-using-with
            [REGISTRY_BIN, "serve", str(self.root / "config.yml")], stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 30
        while True:
            try:
                urllib.request.urlopen("http://%s/v2/" % self.host, timeout=2)  # pylint: disable=consider-using-with
            except urllib.error.HTTPError as error:
                assert error.code == 401, "the registry must ask for credentials, got %d" % error.code
                return
            except OSError:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError("docker-registry did not come up:\n"
                                         + (self.root / "registry.log").read_text())
                time.sleep(0.2)

    def push_tiny_image(self):
        """docker import a small directory as the image and push it, with a CLI config of its own."""
        content = self.root / "image"
        (content / "etc").mkdir(parents=True)
        (content / "etc" / "tiny-release").write_text("tritonfleet images role test %s\n" % self.name)
        tar = self.root / "image.tar"
        with tarfile.open(tar, "w") as archive:
            archive.add(content, arcname=".")
        env = dict(os.environ, DOCKER_CONFIG=str(self.root / "cli"))
        steps = [
            ["docker", "import", "-m", "tritonfleet test image", str(tar), self.reference],
            ["docker", "login", "-u", USERNAME, "--password-stdin", self.host],
            ["docker", "push", self.reference],
            ["docker", "logout", self.host],
        ]
        for step in steps:
            result = sh(*step, env=env, input=self.password if "login" in step else None)
            assert result.returncode == 0, "%s: %s%s" % (" ".join(step), result.stdout, result.stderr)
            if "push" in step:
                self.digest = re.search(r"digest: (sha256:[0-9a-f]{64})", result.stdout).group(1)
        remove_local(self.reference)

    def stop(self):
        if self.process is not None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
            self.log.close()


def remove_local(*references):
    for reference in references:
        sh("docker", "rmi", "-f", reference)


def local_image_id(reference):
    result = sh("docker", "image", "inspect", "--format", "{{.Id}}", reference)
    return result.stdout.strip() if result.returncode == 0 else None


@pytest.fixture(scope="module")
def registry(docker, tmp_path_factory):
    if not os.access(REGISTRY_BIN, os.X_OK):
        unavailable("no registry binary at %s (Debian: apt-get install docker-registry, or set "
                    "TRITONFLEET_REGISTRY_BIN)" % REGISTRY_BIN)
    if not shutil.which("htpasswd"):
        unavailable("no htpasswd (Debian: apt-get install apache2-utils)")
    reg = Registry(tmp_path_factory.mktemp("registry"))
    try:
        reg.start()
        reg.push_tiny_image()
        yield reg
    finally:
        reg.stop()
        # every local image of the test repository, whatever tag or digest it was pulled by
        listed = sh("docker", "images", "--format", "{{.ID}}", "--filter", "reference=%s/nvidia/%s" % (reg.host, reg.name))
        remove_local(*set(listed.stdout.split()))


class Play:
    """ansible-playbook -vvv with the images role on localhost; keeps every output for the password grep."""

    def __init__(self, root, target_python=sys.executable):
        self.root = root
        self.target_python = target_python
        self.outputs = []
        self.fact_file = root / "tritonfleet_images.json"
        self.playbook = root / "play.yml"
        self.playbook.write_text(yaml.safe_dump([{
            "name": "Pull images with the images role",
            "hosts": "localhost",
            "gather_facts": False,
            "roles": [{"role": "tritonfleet.serving.images"}],
            "post_tasks": [{
                "name": "Save the hand-over fact for the test",
                "ansible.builtin.copy": {
                    "content": "{{ tritonfleet_images | to_json }}", "dest": str(self.fact_file), "mode": "0644"},
                "check_mode": False,
                "changed_when": False,
            }],
        }], sort_keys=False))

    def run(self, *args, **variables):
        env = dict(os.environ)
        env.update(
            ANSIBLE_CONFIG=str(REPO / "ansible.cfg"),
            ANSIBLE_COLLECTIONS_PATH=str(REPO / ".collections"),
            ANSIBLE_STDOUT_CALLBACK="ansible.builtin.default",
            ANSIBLE_NOCOLOR="1",
            PATH="%s:%s" % (PLAYBOOK_BIN.parent, env.get("PATH", "")),
        )
        varfile = self.root / "vars.json"
        varfile.write_text(json.dumps(variables))
        if self.fact_file.exists():
            self.fact_file.unlink()
        started = time.monotonic()
        proc = subprocess.run(
            [str(PLAYBOOK_BIN), "-vvv", "-i", "localhost,", "-c", "local",
             "-e", "ansible_python_interpreter=%s" % self.target_python,
             "-e", "@%s" % varfile, *args, str(self.playbook)],
            env=env, capture_output=True, text=True, timeout=600, cwd=str(self.root), check=False)
        varfile.unlink()  # it holds the password
        output = proc.stdout + proc.stderr
        self.outputs.append(output)
        recap = RECAP.search(output)
        return Result(proc.returncode, output, recap, self.fact_file, time.monotonic() - started)


class Result:
    def __init__(self, rc, output, recap, fact_file, seconds):
        self.rc = rc
        self.output = output
        self.ok, self.changed, self.unreachable, self.failed = (
            [int(n) for n in recap.groups()] if recap else [None] * 4)
        self.fact = json.loads(fact_file.read_text()) if fact_file.exists() else None
        self.seconds = seconds


def mirror_vars(registry, config_dir, **extra):
    values = {
        "images_triton": registry.requested,
        "images_build": registry.requested,
        "images_registry_mirror": registry.host,
        "images_registry_username": USERNAME,
        "images_registry_password": registry.password,
        "images_docker_config_dir": str(config_dir),
    }
    values.update(extra)
    return values


def assert_password_absent(play, *passwords):
    everything = "\n".join(play.outputs)
    assert everything, "no output was collected"
    for password in passwords:
        assert password not in everything, "the registry password leaked into the ansible-playbook output"


@pytest.fixture
def play(tmp_path, target_python):
    return Play(tmp_path, target_python)


# -------------------------------------------------------------------- tests
def test_login_and_pull_then_changed_0_with_the_password_never_shown(registry, play, tmp_path):
    remove_local(registry.reference)
    config_dir = tmp_path / "docker-config"
    variables = mirror_vars(registry, config_dir)

    first = play.run(**variables)
    assert first.rc == 0, first.output
    assert first.changed == 2, first.output  # the login and the one pull (triton and build share it)
    image_id = local_image_id(registry.reference)
    assert image_id and image_id.startswith("sha256:")
    expected = {
        "reference": registry.reference,
        "requested": registry.requested,
        "id": image_id,
        "digests": ["%s/nvidia/%s@%s" % (registry.host, registry.name, registry.digest)],
    }
    assert first.fact == {"triton": expected, "build": expected, "extra": []}
    # progress line before the pull, without credentials
    assert "Making sure there is %s (triton + build image) from %s" % (registry.reference, registry.host) in (
        " ".join(first.output.split()))
    # the login went to the configured Docker config, not ~/.docker
    auths = json.loads((config_dir / "config.json").read_text())["auths"]
    assert registry.host in auths

    second = play.run(**variables)
    assert second.rc == 0, second.output
    assert second.changed == 0, second.output
    assert second.fact == first.fact
    assert_password_absent(play, registry.password)


def test_wrong_password_fails_naming_registry_and_user_but_not_the_password(registry, play, tmp_path):
    wrong = "tf-wrong-" + secrets.token_hex(10)
    config_dir = tmp_path / "docker-config"
    # a fresh Docker config, and one that already holds the right password (docker_login re-checks)
    for prepare in (False, True):
        if prepare:
            assert play.run(**mirror_vars(registry, config_dir)).rc == 0
        result = play.run(**mirror_vars(registry, config_dir, images_registry_password=wrong))
        assert result.rc != 0
        assert result.failed == 1, result.output
        flat = " ".join(result.output.split())
        assert "Logging in to registry %s as user '%s' failed" % (registry.host, USERNAME) in flat, result.output
        assert "401 Unauthorized" in flat
        assert "Check images_registry_username and images_registry_password" in flat
    assert_password_absent(play, wrong, registry.password)


def test_check_mode_predicts_the_pull_without_failing(registry, play, tmp_path):
    remove_local(registry.reference)
    result = play.run("--check", **mirror_vars(registry, tmp_path / "docker-config"))
    assert result.rc == 0, result.output
    assert result.changed >= 1
    assert result.fact["triton"] == {
        "reference": registry.reference, "requested": registry.requested, "id": "", "digests": []}
    assert local_image_id(registry.reference) is None, "check mode must not pull"
    assert_password_absent(play, registry.password)


def test_policy_always_and_a_pull_by_digest(registry, play, tmp_path):
    remove_local(registry.reference)
    by_digest = "nvcr.io/nvidia/%s@%s" % (registry.name, registry.digest)
    variables = mirror_vars(registry, tmp_path / "docker-config", images_pull_policy="always",
                            images_extra=[by_digest])
    first = play.run(**variables)
    assert first.rc == 0, first.output
    extra = first.fact["extra"][0]
    assert extra["reference"] == "%s/nvidia/%s@%s" % (registry.host, registry.name, registry.digest)
    assert extra["requested"] == by_digest
    assert extra["id"] == first.fact["triton"]["id"] == local_image_id(registry.reference)
    # always asks the registry again, and reports no change when nothing new arrived
    second = play.run(**variables)
    assert second.rc == 0, second.output
    assert second.changed == 0, second.output
    assert "Pulling %s" % registry.reference in " ".join(second.output.split())
    assert_password_absent(play, registry.password)


def test_reference_without_tag_fails_before_the_host_is_touched(tmp_path):
    play = Play(tmp_path)  # no Docker needed: nothing reaches the host
    result = play.run(images_triton="nvcr.io/nvidia/tritonserver", images_extra=["busybox:latest"],
                      images_registry_mirror="https://mirror.example.com")
    assert result.rc != 0
    flat = " ".join(result.output.split())
    assert ("images_triton: 'nvcr.io/nvidia/tritonserver' has no tag or digest" in flat
            and "'nvcr.io/nvidia/tritonserver:24.01-trtllm-python-py3'" in flat), result.output
    assert "images_extra[0]: 'busybox:latest' uses the tag 'latest'" in flat
    assert "images_registry_mirror: registry mirror 'https://mirror.example.com' has a URL scheme" in flat
    assert "Ask the Docker engine" not in result.output
    assert result.ok == 2 and result.failed == 1  # argument specs passed, the checks included, preflight failed
