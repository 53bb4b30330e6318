"""Distribute a synthetic engine to fleet hosts three ways and print the times.

Three containers of the molecule fleet's host image (tritonfleet-test/fleet-host,
Debian 12, no Docker inside; reached with the community.docker.docker
connection, as molecule reaches them) on their own Docker network. The first
host gets a synthetic engine of --mib MiB (random bytes in --files files,
with the engine cache's manifest); the other two then receive it:

- through the controller: engine_transfer_method=controller (fetch to the
  controller, copy to each host, file by file over the connection);
- host to host: engine_transfer_method=peer, with fanout 1 (two rounds: the
  first host sends to one, then both send on) and fanout 2 (one round);
- the floor: plain `rsync -a` from an rsync daemon on the first host to both
  receivers at once, the same bytes between the same hosts, no Ansible.

Each Ansible figure is the wall time of the play that distributes
(benchmarks/engine_distribution.yml, which site.yml's engine stage runs the
same tasks of); the play's own overhead (the same play once every host has the
engine) is printed beside them.

Usage: .venv/bin/python benchmarks/engine_distribution.py [--mib 1024] [--files 4]
Needs a Docker engine (started when none answers) and builds the host image when missing.
"""

import argparse
import json
import os
import pathlib
import re
import subprocess
import sys
import tempfile
import time

REPO = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))
from docker_env import docker_answers, start_dockerd  # noqa: E402

IMAGE = "tritonfleet-test/fleet-host:bookworm"
NETWORK = "tritonfleet-bench-distribution"
HOSTS = ["bench-dist-1", "bench-dist-2", "bench-dist-3"]
CACHE_DIR = "/var/cache/tritonfleet/engines"
PLAYBOOK = REPO / "benchmarks" / "engine_distribution.yml"
RECAP = re.compile(r"^(\S+)\s+:\s+ok=\d+\s+changed=(\d+)\s+unreachable=\d+\s+failed=(\d+)", re.M)


def docker(*argv, check=True):
    return subprocess.run(["docker"] + list(argv), capture_output=True, text=True, check=check)


def inventory_text(hosts):
    lines = ["all:", "  vars:", "    ansible_connection: community.docker.docker",
             "    ansible_python_interpreter: /usr/bin/python3",
             "    engine_cache_dir: %s" % CACHE_DIR,
             "    engine_checkpoint_dir: /var/lib/tritonfleet/checkpoint", "  hosts:"]
    lines += ["    %s:" % host for host in hosts]
    return "\n".join(lines) + "\n"


def start_hosts():
    if docker("image", "inspect", IMAGE, check=False).returncode != 0:
        subprocess.run([str(REPO / "molecule" / "resources" / "build_images.sh"), "fleet-host"], check=True)
    stop_hosts()
    docker("network", "create", NETWORK)
    for host in HOSTS:
        docker("run", "-d", "--name", host, "--hostname", host, "--network", NETWORK, "--entrypoint", "sleep",
               IMAGE, "infinity")


def stop_hosts():
    for host in HOSTS:
        docker("rm", "-f", host, check=False)
    docker("network", "rm", NETWORK, check=False)


def play(inventory, mib, files, extra=None, limit=None):
    env = dict(os.environ, ANSIBLE_CONFIG=str(REPO / "ansible.cfg"), ANSIBLE_FORCE_COLOR="0",
               PATH="%s:%s" % (REPO / ".venv" / "bin", os.environ.get("PATH", "")))
    variables = dict(engine_synthetic_mib=mib, engine_synthetic_files=files, engine_transfer_timeout=120,
                     engine_transfer_dir=str(pathlib.Path(inventory).parent / "controller"))
    variables.update(extra or {})
    argv = ["ansible-playbook", "-i", inventory, str(PLAYBOOK), "-e", json.dumps(variables)]
    if limit:
        argv += ["--limit", limit]
    started = time.monotonic()
    proc = subprocess.run(argv, env=env, capture_output=True, text=True, check=False)
    elapsed = time.monotonic() - started
    if proc.returncode != 0:
        sys.exit("the distribution play failed:\n%s" % (proc.stdout + proc.stderr)[-5000:])
    return elapsed, proc.stdout


def engine_dir(host):
    out = docker("exec", host, "sh", "-c", "ls -d %s/synthetic/[0-9a-f]*" % CACHE_DIR).stdout.split()
    return out[0]


def forget_copies():
    """Remove the receivers' engines (and partial copies), as on hosts that never had it."""
    for host in HOSTS[1:]:
        docker("exec", host, "sh", "-c", "rm -rf %s/synthetic /tmp/floor" % CACHE_DIR)


def same_engine(source_dir, dest_dir):
    listing = "cd %s && find . -type f ! -name tritonfleet-engine.json -exec sha256sum {} + | sort -k2"
    want = docker("exec", HOSTS[0], "sh", "-c", listing % source_dir).stdout
    for host in HOSTS[1:]:
        got = docker("exec", host, "sh", "-c", listing % (dest_dir or engine_dir(host))).stdout
        if got != want:
            sys.exit("%s does not hold the same engine as %s" % (host, HOSTS[0]))


def rsync_floor(source_dir):
    config = "[engine]\\n  path = %s\\n  read only = yes\\n  use chroot = no\\n" % source_dir
    docker("exec", HOSTS[0], "sh", "-c", "printf '%s' > /tmp/rsyncd.conf && rsync --daemon --config=/tmp/rsyncd.conf"
           % config)
    time.sleep(1)
    started = time.monotonic()
    receivers = [subprocess.Popen(["docker", "exec", host, "rsync", "-a", "rsync://%s/engine/" % HOSTS[0], "/tmp/floor/"])
                 for host in HOSTS[1:]]
    codes = [proc.wait() for proc in receivers]
    elapsed = time.monotonic() - started
    docker("exec", HOSTS[0], "sh", "-c", "kill $(cat /var/run/rsyncd.pid 2>/dev/null) 2>/dev/null || pkill rsync",
           check=False)
    if any(codes):
        sys.exit("rsync failed: exit codes %s" % codes)
    same_engine(source_dir, "/tmp/floor")
    return elapsed


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--mib", type=int, default=1024, help="size of the synthetic engine (MiB)")
    parser.add_argument("--files", type=int, default=4, help="files the engine is split into")
    args = parser.parse_args()
    if not docker_answers() and not start_dockerd():
        sys.exit("no Docker engine")
    start_hosts()
    try:
        with tempfile.TemporaryDirectory(prefix="tritonfleet-distribution-") as tmp:
            inventory = os.path.join(tmp, "hosts.yml")
            pathlib.Path(inventory).write_text(inventory_text(HOSTS))
            build, _out = play(inventory, args.mib, args.files, limit=HOSTS[0])
            source = engine_dir(HOSTS[0])
            rows = []
            for label, extra in (("through the controller", dict(engine_transfer_method="controller")),
                                 ("host to host, fanout 1 (2 rounds)", dict(engine_transfer_method="peer")),
                                 ("host to host, fanout 2 (1 round)", dict(engine_transfer_method="peer",
                                                                           engine_transfer_fanout=2))):
                forget_copies()
                seconds, out = play(inventory, args.mib, args.files, extra=extra)
                same_engine(source, None)
                rows.append((label, seconds))
            again, out = play(inventory, args.mib, args.files, extra=dict(engine_transfer_method="peer"))
            changed = sum(int(c) for _h, c, _f in RECAP.findall(out))
            forget_copies()
            rows.append(("floor: rsync -a, both receivers at once (no Ansible)", rsync_floor(source)))
    finally:
        stop_hosts()
    total_mib = args.mib * (len(HOSTS) - 1)
    print("\nA synthetic engine of %d MiB in %d files, from %s to %s (containers of %s, %d CPU(s))"
          % (args.mib, args.files, HOSTS[0], " and ".join(HOSTS[1:]), IMAGE, os.cpu_count()))
    print("building it on %s: %.1f s; the same play with nothing left to copy: %.1f s (changed=%d), "
          "the play's own overhead in the times below" % (HOSTS[0], build, again, changed))
    print("%-56s %9s %12s %10s" % ("method", "wall s", "net of play", "MiB/s net"))
    for label, seconds in rows:
        net = seconds - again if "rsync" not in label else seconds
        print("%-56s %9.1f %11.1fs %10.1f" % (label, seconds, net, total_mib / max(net, 0.1)))


if __name__ == "__main__":
    main()
