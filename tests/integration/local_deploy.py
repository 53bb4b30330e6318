"""Run the project's playbooks against the local inventory, in an isolated state root.

Runs return a PlaybookRun (tests/unit/utils/playbook_run.py): the per-task,
per-host results and the recap as data, from the ansible.posix.json callback.
Tests assert on those; printing a run shows a transcript rebuilt from them.
"""

import os
import pathlib
import socket

from ansible_collections.tritonfleet.serving.tests.unit.utils import playbook_run

REPO = pathlib.Path(__file__).resolve().parents[2]


def free_port_base(span=100):
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


PREFLIGHT_PLAY = "Check every stage's inputs before changing any host"
GATEWAY_PREFLIGHT_PLAY = "Check the gateways' settings before changing any host"


def assert_refused_in_preflight(run):
    """site.yml stopped in its preflight plays: it failed there, no later play began and no task changed anything."""
    assert run.rc != 0, run
    assert PREFLIGHT_PLAY in run.plays, run
    assert run.plays[-1] in (PREFLIGHT_PLAY, GATEWAY_PREFLIGHT_PLAY), run
    assert run.changed == 0, run


class Deployment:
    """One isolated local deployment: its own state root and port range."""

    def __init__(self, root, port_base):
        self.root = pathlib.Path(root)
        self.port_base = port_base

    def env(self):
        env = dict(os.environ)
        env.update(
            ANSIBLE_CONFIG=str(REPO / "ansible.cfg"),
            ANSIBLE_COLLECTIONS_PATH=str(REPO / ".collections"),
            TRITONFLEET_ROOT=str(self.root),
            TRITONFLEET_PORT_BASE=str(self.port_base),
        )
        return env

    def playbook(self, playbook="site.yml", *args, timeout=900):
        return playbook_run.run(["ansible-playbook", playbook, *args], env=self.env(), cwd=REPO, timeout=timeout)

    def adhoc(self, module, args, timeout=300):
        return playbook_run.run(["ansible", "localhost", "-m", module, "-a", args], env=self.env(), cwd=REPO,
                                timeout=timeout)
