"""The engine role's distribution on hosts of this machine (local connections, one engine cache each):
host to host in rounds, checked and resumable; through the controller as the fallback."""

import hashlib
import json
import os
import re
import subprocess
import sys

import pytest

from local_deploy import free_port_base

pytestmark = [pytest.mark.integration, pytest.mark.second_lane]

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PLAYBOOK = os.path.join(REPO, "benchmarks", "engine_distribution.yml")
RECAP = re.compile(r"^(\S+)\s+:\s+ok=\d+\s+changed=(\d+)\s+unreachable=\d+\s+failed=(\d+)", re.M)


def inventory(tmp_path, hosts, port_base):
    lines = ["all:", "  hosts:"]
    for number, host in enumerate(hosts):
        root = tmp_path / host
        lines += ["    %s:" % host,
                  "      ansible_connection: local",
                  "      ansible_python_interpreter: %s" % sys.executable,
                  "      engine_cache_dir: %s" % (root / "engines"),
                  "      engine_checkpoint_dir: %s" % (root / "checkpoint"),
                  "      engine_transfer_port: %d" % (port_base + number)]
    path = tmp_path / "hosts.yml"
    path.write_text("\n".join(lines) + "\n")
    return path


def play(inv, *extra, check=True):
    env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(REPO, "ansible.cfg"), ANSIBLE_FORCE_COLOR="0")
    argv = [os.path.join(os.path.dirname(sys.executable), "ansible-playbook"), "-i", str(inv), PLAYBOOK,
            "-e", json.dumps(dict(engine_synthetic_mib=6, engine_synthetic_files=3))] + list(extra)
    run = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=600, check=False)
    if check:
        assert run.returncode == 0, run.stdout[-6000:] + run.stderr[-2000:]
    return run


def engine_dir(tmp_path, host):
    (found,) = [d for d in (tmp_path / host / "engines" / "synthetic").iterdir() if not d.name.startswith(".")
                and d.name != "logs"]
    return found


def digests(directory):
    return {name: hashlib.sha256((directory / name).read_bytes()).hexdigest()
            for name in sorted(os.listdir(directory)) if name.endswith(".engine") or name == "config.json"}


def manifest(tmp_path, host):
    return json.loads((engine_dir(tmp_path, host) / "tritonfleet-engine.json").read_text())


def test_host_to_host_in_rounds_then_nothing_to_do(tmp_path):
    hosts = ["h1", "h2", "h3", "h4"]
    inv = inventory(tmp_path, hosts, free_port_base(10))
    first = play(inv)
    source = digests(engine_dir(tmp_path, "h1"))
    assert len(source) == 4
    for host in hosts[1:]:
        assert digests(engine_dir(tmp_path, host)) == source
    # One host had it: h2 gets it in round 1, then h1 and h2 send to h3 and h4 in round 2.
    assert {h: manifest(tmp_path, h)["received_from"] for h in hosts[1:]} == {"h2": "h1", "h3": "h1", "h4": "h2"}
    assert manifest(tmp_path, "h4")["files"] == manifest(tmp_path, "h1")["files"]
    assert re.search(r"\(round\s+2\s+of\s+2", first.stdout)
    # Nothing serves after the play.
    for host in ("h1", "h2"):
        assert not list((tmp_path / host / "engines" / ".transfers").glob("*.json"))
    again = play(inv)
    assert {h: int(c) for h, c, _f in RECAP.findall(again.stdout)} == {h: 0 for h in hosts}


def test_an_interrupted_copy_resumes_and_a_corrupt_one_is_refused(tmp_path):
    hosts = ["h1", "h2"]
    inv = inventory(tmp_path, hosts, free_port_base(10))
    play(inv, "--limit", "h1")
    engine = engine_dir(tmp_path, "h1")
    staging = tmp_path / "h2" / "engines" / "synthetic" / (".building-" + engine.name)
    staging.mkdir(parents=True)
    (staging / "rank0.engine.part").write_bytes((engine / "rank0.engine").read_bytes()[:100000])
    resumed = play(inv)
    assert re.search(r"resumed\s+1\s+partial\s+file", resumed.stdout), resumed.stdout[-3000:]
    assert digests(engine_dir(tmp_path, "h2")) == digests(engine)

    # The sender's file no longer matches its manifest: the receiver refuses it and keeps nothing of it.
    hosts.append("h3")
    inv = inventory(tmp_path, hosts, free_port_base(10))
    weights = engine / "rank1.engine"
    data = bytearray(weights.read_bytes())
    data[10] ^= 0xFF
    weights.write_bytes(bytes(data))
    broken = play(inv, "--limit", "h1,h3", check=False)
    assert broken.returncode != 0
    assert re.search(r"does\s+not\s+match\s+the\s+source", broken.stdout), broken.stdout[-3000:]
    assert not (tmp_path / "h3" / "engines" / "synthetic" / engine.name).exists()


def test_through_the_controller_when_hosts_cannot_reach_each_other(tmp_path):
    hosts = ["h1", "h2", "h3"]
    inv = inventory(tmp_path, hosts, free_port_base(10))
    play(inv, "-e", "engine_transfer_method=controller", "-e", "engine_transfer_dir=%s" % (tmp_path / "controller"))
    for host in hosts[1:]:
        assert digests(engine_dir(tmp_path, host)) == digests(engine_dir(tmp_path, "h1"))
        assert manifest(tmp_path, host)["received_from"] == "h1"
    assert not (tmp_path / "h1" / "engines" / ".transfers").exists()


CHECKPOINT_PLAYBOOK = os.path.join(REPO, "tests", "integration", "playbooks", "checkpoint_distribution.yml")


def test_a_checkpoint_reaches_one_host_from_the_controller_and_the_others_host_to_host(tmp_path):
    src = tmp_path / "controller" / "checkpoint"
    (src / "shards").mkdir(parents=True)
    (src / "config.json").write_text('{"layers": 2}')
    (src / "shards" / "model-00001.safetensors").write_bytes(os.urandom(300000))
    hosts = ["h1", "h2", "h3"]
    inv = inventory(tmp_path, hosts, free_port_base(10))
    extra = ["-e", json.dumps(dict(engine_checkpoint_src=str(src), engine_name="synthetic",
                                   engine_transfer_dir=str(tmp_path / "controller" / "transfer")))]
    env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(REPO, "ansible.cfg"), ANSIBLE_FORCE_COLOR="0")
    argv = [os.path.join(os.path.dirname(sys.executable), "ansible-playbook"), "-i", str(inv), CHECKPOINT_PLAYBOOK] + extra

    def run():
        done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=600, check=False)
        assert done.returncode == 0, done.stdout[-6000:] + done.stderr[-2000:]
        return done

    def tree(root):
        return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}

    first = run()
    for host in hosts:
        assert tree(tmp_path / host / "checkpoint") == tree(src)
    # h1 from the controller, h2 from h1 in round 1, h3 from h1 in round 2.
    assert re.search(r"checkpoint-synthetic: [\d.]+ MiB in 2 of 2 file\(s\) from\s+h1", first.stdout)
    assert len(re.findall(r"checkpoint-synthetic: .*?from\s+h1", first.stdout)) == 2
    assert {h: int(c) for h, c, _f in RECAP.findall(run().stdout)} == {h: 0 for h in hosts}

    # A new checkpoint on the controller replaces the hosts' trees whole, stale files included.
    (src / "shards" / "model-00001.safetensors").unlink()
    (src / "shards" / "model-00002.safetensors").write_bytes(os.urandom(1000))
    (tmp_path / "h1" / "checkpoint" / "shards" / "model-00001.safetensors").unlink()
    run()
    for host in hosts:
        assert tree(tmp_path / host / "checkpoint") == tree(src)
