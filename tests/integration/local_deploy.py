"""Run the project's playbooks against the local inventory, in an isolated state root."""

import os
import pathlib
import re
import socket
import subprocess
import sys

REPO = pathlib.Path(__file__).resolve().parents[2]
BIN = pathlib.Path(sys.executable).parent
RECAP = re.compile(r"^(\S+)\s+:\s+ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)", re.M)


def free_port_base(span=40):
    """A base port with `span` free ports above it (the layout uses base..base+span)."""
    for _unused in range(50):
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        base = sock.getsockname()[1]
        sock.close()
        if base + span > 65000:
            continue
        if all(_port_free(p) for p in range(base, base + span)):
            return base
    raise RuntimeError("no free port range")


def _port_free(port):
    sock = socket.socket()
    try:
        sock.bind(("0.0.0.0", port))
        return True
    except OSError:
        return False
    finally:
        sock.close()


PREFLIGHT_PLAY = "PLAY [Check every stage's inputs before changing any host]"


def assert_refused_in_preflight(run):
    """site.yml stopped in its preflight play: it failed, no later play began and no task changed anything."""
    assert run.rc != 0, run
    assert PREFLIGHT_PLAY in run.out, run
    after = run.out.split(PREFLIGHT_PLAY, 1)[1]
    assert re.findall(r"^PLAY \[", after, re.M) == [], run
    assert run.changed == 0, run


class Run:
    def __init__(self, proc):
        self.rc = proc.returncode
        self.out = proc.stdout
        match = RECAP.findall(self.out)
        self.recap = {host: dict(ok=int(ok), changed=int(ch), unreachable=int(un), failed=int(fa))
                      for host, ok, ch, un, fa in match}

    @property
    def changed(self):
        return sum(r["changed"] for r in self.recap.values())

    def __repr__(self):
        return "rc=%s recap=%s\n%s" % (self.rc, self.recap, self.out[-6000:])


class Deployment:
    """One isolated local deployment: its own state root and port range."""

    def __init__(self, root, port_base):
        self.root = pathlib.Path(root)
        self.port_base = port_base

    def env(self):
        env = dict(os.environ)
        env.update(
            PATH="%s:%s" % (BIN, env.get("PATH", "")),
            ANSIBLE_CONFIG=str(REPO / "ansible.cfg"),
            ANSIBLE_COLLECTIONS_PATH=str(REPO / ".collections"),
            ANSIBLE_FORCE_COLOR="0",
            ANSIBLE_NOCOLOR="1",
            TRITONFLEET_ROOT=str(self.root),
            TRITONFLEET_PORT_BASE=str(self.port_base),
        )
        return env

    def playbook(self, playbook="site.yml", *args, timeout=900):
        proc = subprocess.run([str(BIN / "ansible-playbook"), playbook, *args], cwd=REPO, env=self.env(),
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=timeout, check=False)
        return Run(proc)

    def adhoc(self, module, args, timeout=300):
        proc = subprocess.run([str(BIN / "ansible"), "localhost", "-m", module, "-a", args], cwd=REPO,
                              env=self.env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                              timeout=timeout, check=False)
        return Run(proc)
