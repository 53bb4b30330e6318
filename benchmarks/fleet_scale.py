# -*- coding: utf-8 -*-
# Copyright: (c) 2026, tritonfleet maintainers
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Measure site.yml at fleet scale on one machine: converge and no-op for fleets of 1, 3 and 8 hosts.

Host shape: N inventory hosts on this machine (scale01, scale02, ...), each
with ``ansible_connection: local``, the local default's variables
(inventories/local/group_vars/all.yml, copied next to the generated
inventory: cpu mode, process runtime, no Docker) and its own:

  tritonfleet_root            <root>/<host> (engines, repository, server state, logs)
  servers_http_port_base      --port-base + 100 * i (grpc, metrics, gateway and
                              monitoring ports derive from it, as in the local default)
  servers_count               1
  servers_shm_region_prefix   tfscale<NN>_ (no /dev/shm region shared with another host
                              or with the local default's tritonfleet<i>_)
  engine_transfer_port        port base + 70 (the engine stage's peer transfers)

The gateway (HAProxy) and monitoring (Prometheus) groups get the first host
(--front first, the default) or no host (--front none); either way they run
from the first host's root on its own ports, apart from the local default's
(make demo: 8000-8091 from .tritonfleet), which this script leaves alone.

For each size, after tearing down the previous one and removing its roots
(so every converge starts cold): site.yml (the converge; failed=0 and
unreachable=0 required on every host), site.yml again (the no-op; changed=0
required on every host), and ``ansible all -m setup``, each timed, with
--forks at least the size. It prints one table: converge s, no-op s, no-op
per host s, setup s, the no-op/setup ratio (issue 12's target: at most 3)
and converge(N)/converge(1) (target for 8 hosts: at most 1.5).

Unless --skip-local, it first times a no-op site.yml on the local default
(inventories/local, already deployed by make demo) beside ``ansible localhost
-m setup``, median of 3 each: the issue's headline ratio. That run uses the
deployed default as it is, so it must be converged already.

At the end, even on failure, it tears down the last fleet, stops any process
still running from its roots and removes them. Each Ansible run's output goes
to a temporary directory, removed after a clean run and named after a failed one.

Usage: .venv/bin/python benchmarks/fleet_scale.py [--sizes 1 3 8] [--skip-local] [--front first|none]
"""

import argparse
import os
import pathlib
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

import yaml

REPO = pathlib.Path(__file__).resolve().parents[1]
BIN = REPO / ".venv" / "bin"
LOCAL_GROUP_VARS = REPO / "inventories" / "local" / "group_vars"
sys.path.insert(0, str(REPO / ".collections"))
from ansible_collections.tritonfleet.serving.plugins.module_utils.supervisor import port_in_use  # noqa: E402
PORT_SPAN = 100  # ports each pseudo-host owns: servers at +0.., gateway +80.., monitoring +90..

RECAP_HEADER = re.compile(r"^PLAY RECAP \**\s*$", re.M)
RECAP_LINE = re.compile(r"^(\S+)\s+:\s+((?:\w+=\d+\s*)+)$", re.M)
COUNTER = re.compile(r"(\w+)=(\d+)")


def host_names(size):
    return ["scale%02d" % (i + 1) for i in range(size)]


def host_port_base(port_base, index):
    return port_base + PORT_SPAN * index


def inventory(size, root, port_base, front="first"):
    """The generated inventory (as a mapping for hosts.yml) of a fleet of ``size`` pseudo-hosts."""
    hosts = {}
    for index, name in enumerate(host_names(size)):
        base = host_port_base(port_base, index)
        hosts[name] = {
            "ansible_connection": "local",
            "ansible_python_interpreter": "{{ ansible_playbook_python }}",
            "tritonfleet_root": str(pathlib.Path(root) / name),
            "servers_http_port_base": base,
            "servers_count": 1,
            "servers_shm_region_prefix": "tfscale%02d_" % (index + 1),
            "engine_transfer_port": base + 70,
            "engine_transfer_listen_address": "127.0.0.1",
        }
    front_hosts = {host_names(size)[0]: None} if front == "first" and size else {}
    return {
        "triton_servers": {"hosts": hosts},
        "triton_gateways": {"hosts": front_hosts},
        "monitoring": {"hosts": dict(front_hosts)},
    }


def write_inventory(directory, size, root, port_base, front="first"):
    """Write hosts.yml and a copy of the local default's group_vars into ``directory``; return hosts.yml's path."""
    directory = pathlib.Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "hosts.yml"
    path.write_text("---\n" + yaml.safe_dump(inventory(size, root, port_base, front), default_flow_style=False,
                                             sort_keys=False))
    if (directory / "group_vars").exists():
        shutil.rmtree(directory / "group_vars")
    shutil.copytree(LOCAL_GROUP_VARS, directory / "group_vars")
    return path


def parse_recap(text):
    """The last PLAY RECAP of a run's output: {host: {"ok": n, "changed": n, "failed": n, ...}}."""
    headers = list(RECAP_HEADER.finditer(text))
    if not headers:
        return {}
    recap = {}
    for match in RECAP_LINE.finditer(text, headers[-1].end()):
        recap[match.group(1)] = {key: int(value) for key, value in COUNTER.findall(match.group(2))}
    return recap


def recap_problems(recap, hosts, noop=False):
    """Why a run's recap does not pass: hosts missing, failed or unreachable, and (no-op) hosts that changed."""
    problems = []
    for host in hosts:
        counts = recap.get(host)
        if counts is None:
            problems.append("%s: not in the recap" % host)
            continue
        for key in ("failed", "unreachable"):
            if counts.get(key, 0):
                problems.append("%s: %s=%d" % (host, key, counts[key]))
        if noop and counts.get("changed", 0):
            problems.append("%s: changed=%d on the no-op" % (host, counts["changed"]))
    return problems


def ratio(numerator, denominator):
    return numerator / denominator if denominator else None


def rows_for(results):
    """The table's rows from each size's measured times (converge, noop, setup in seconds)."""
    base = next((r["converge"] for r in results if r["size"] == 1), None)
    rows = []
    for r in results:
        rows.append(dict(size=r["size"], converge=r["converge"], noop=r["noop"], noop_per_host=r["noop"] / r["size"],
                         setup=r["setup"], noop_setup=ratio(r["noop"], r["setup"]),
                         scale=ratio(r["converge"], base) if base else None))
    return rows


def table(rows):
    """The printed table, one line per size."""
    lines = ["%5s %11s %9s %14s %9s %12s %10s" % ("hosts", "converge s", "no-op s", "no-op/host s", "setup s",
                                                  "no-op/setup", "conv/conv1")]

    def num(value, fmt):
        return fmt % value if value is not None else "-"

    for row in rows:
        lines.append("%5d %11.1f %9.1f %14.2f %9.1f %12s %10s" % (
            row["size"], row["converge"], row["noop"], row["noop_per_host"], row["setup"],
            num(row["noop_setup"], "%.2f"), num(row["scale"], "%.2f")))
    return lines


def ansible_env():
    env = dict(os.environ)
    # The generated inventories set each host's root and ports; the local default's overrides must not leak in.
    for name in ("TRITONFLEET_ROOT", "TRITONFLEET_PORT_BASE"):
        env.pop(name, None)
    env.update(ANSIBLE_CONFIG=str(REPO / "ansible.cfg"), ANSIBLE_COLLECTIONS_PATH=str(REPO / ".collections"),
               ANSIBLE_STDOUT_CALLBACK="ansible.builtin.default", ANSIBLE_NOCOLOR="1", ANSIBLE_FORCE_COLOR="0",
               PATH="%s:%s" % (BIN, os.environ.get("PATH", "")))
    return env


class Failed(Exception):
    pass


def run(argv, log_dir, label, timeout=3600):
    """Run an Ansible command from the repository root; return (seconds, output). Output is kept in log_dir."""
    started = time.monotonic()
    proc = subprocess.run(argv, cwd=REPO, env=ansible_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          text=True, timeout=timeout, check=False)
    elapsed = time.monotonic() - started
    (pathlib.Path(log_dir) / ("%s.log" % label)).write_text(proc.stdout)
    if proc.returncode != 0:
        raise Failed("%s: %s exited %d after %.0f s; its output ends:\n%s"
                     % (label, " ".join(argv), proc.returncode, elapsed, proc.stdout[-4000:]))
    return elapsed, proc.stdout


def playbook(playbook_path, inventory_path, forks, log_dir, label, extra=()):
    argv = [str(BIN / "ansible-playbook"), playbook_path, "--forks", str(forks)]
    if inventory_path:
        argv += ["-i", str(inventory_path)]
    return run(argv + list(extra), log_dir, label)


def setup(pattern, inventory_path, forks, log_dir, label):
    argv = [str(BIN / "ansible"), pattern, "-m", "ansible.builtin.setup", "--forks", str(forks), "-o"]
    if inventory_path:
        argv += ["-i", str(inventory_path)]
    return run(argv, log_dir, label)[0]


def busy_ports(port_base, size):
    # As servers bind (SO_REUSEADDR): a closed one's TIME_WAIT is no obstacle.
    return [p for p in range(port_base, host_port_base(port_base, size)) if port_in_use(p, "127.0.0.1")]


def ancestors():
    """This process and its parents (never stopped, whatever their command lines say)."""
    pids = set()
    pid = os.getpid()
    while pid > 1 and pid not in pids:
        pids.add(pid)
        try:
            stat = pathlib.Path("/proc/%d/stat" % pid).read_text()
        except OSError:
            break
        pid = int(stat.rsplit(")", 1)[1].split()[1])
    return pids


def leftover_pids(root):
    """Processes whose command line names a host root under root (what the fleet left running)."""
    marker = (str(root).rstrip("/") + "/scale").encode()
    mine = ancestors()
    pids = []
    for entry in pathlib.Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) in mine:
            continue
        try:
            if marker in (entry / "cmdline").read_bytes():
                pids.append(int(entry.name))
        except OSError:
            continue
    return pids


def stop_leftovers(root):
    """Stop what a teardown left running from root (by pid), and the fleet's /dev/shm regions."""
    pids = leftover_pids(root)
    for pid in pids:
        try:
            os.kill(pid, signal.SIGTERM)
        except OSError:
            pass
    deadline = time.monotonic() + 15
    while pids and time.monotonic() < deadline:
        pids = [pid for pid in pids if pathlib.Path("/proc/%d" % pid).exists()]
        time.sleep(0.2)
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass
    shm = pathlib.Path("/dev/shm")
    if shm.is_dir():
        for region in shm.glob("tfscale[0-9][0-9]_*"):
            try:
                region.unlink()
            except OSError:
                pass
    return pids


def clear(root, inventory_path, forks, log_dir, label):
    """Tear down the fleet of inventory_path (if any) and remove every host root under root."""
    problem = None
    if inventory_path and pathlib.Path(inventory_path).exists():
        try:
            playbook("playbooks/teardown.yml", inventory_path, forks, log_dir, label)
        except (Failed, subprocess.TimeoutExpired) as exc:
            problem = str(exc)
    stop_leftovers(root)
    for host_root in pathlib.Path(root).glob("scale[0-9][0-9]"):
        shutil.rmtree(host_root, ignore_errors=True)
    return problem


def measure_size(size, opts, log_dir):
    forks = max(size, opts.forks)
    hosts = host_names(size)
    inv = write_inventory(pathlib.Path(opts.root) / "inventories" / str(size), size, opts.root, opts.port_base,
                          opts.front)
    busy = busy_ports(opts.port_base, size)
    if busy:
        raise Failed("ports in use in the fleet's range %d-%d: %s (choose another --port-base)"
                     % (opts.port_base, host_port_base(opts.port_base, size) - 1, busy[:10]))
    extra = ["-e", "tritonfleet_serial=%s" % opts.serial] if opts.serial else []
    converge, out = playbook("site.yml", inv, forks, log_dir, "converge-%d" % size, extra)
    problems = recap_problems(parse_recap(out), hosts)
    if problems:
        raise Failed("converge of %d host(s): %s" % (size, "; ".join(problems)))
    noop, out = playbook("site.yml", inv, forks, log_dir, "noop-%d" % size, extra)
    problems = recap_problems(parse_recap(out), hosts, noop=True)
    if problems:
        raise Failed("no-op of %d host(s): %s" % (size, "; ".join(problems)))
    facts = setup("all", inv, forks, log_dir, "setup-%d" % size)
    print("  %d host(s): converge %.1f s, no-op %.1f s, setup %.1f s" % (size, converge, noop, facts), flush=True)
    return dict(size=size, converge=converge, noop=noop, setup=facts), inv


def measure_local(log_dir, repeats=3):
    """Median no-op site.yml on the deployed local default and median `ansible localhost -m setup`."""
    noops = []
    for attempt in range(repeats):
        seconds, out = playbook("site.yml", None, 20, log_dir, "local-noop-%d" % attempt)
        changed = {h: c.get("changed", 0) for h, c in parse_recap(out).items() if c.get("changed", 0)}
        if changed:
            raise Failed("the local default's no-op changed something: %s (converge it first: make demo)" % changed)
        noops.append(seconds)
    setups = [setup("localhost", None, 1, log_dir, "local-setup-%d" % attempt) for attempt in range(repeats)]
    return statistics.median(noops), statistics.median(setups)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[1, 3, 8], help="fleet sizes, in hosts")
    parser.add_argument("--root", default="/tmp/tritonfleet-scale", help="where the hosts' roots and inventories go")
    parser.add_argument("--port-base", type=int, default=21000, help="first host's servers_http_port_base")
    parser.add_argument("--front", choices=("first", "none"), default="first",
                        help="the gateway and monitoring groups: the first host, or no host")
    parser.add_argument("--forks", type=int, default=1, help="forks (at least the fleet's size is used)")
    parser.add_argument("--serial", default="", help="tritonfleet_serial for the servers stage (default: the role's)")
    parser.add_argument("--skip-local", action="store_true", help="leave out the local default's no-op vs setup")
    opts = parser.parse_args(argv)
    if any(size < 1 for size in opts.sizes):
        parser.error("sizes must be at least 1")
    if host_port_base(opts.port_base, max(opts.sizes)) > 65000:
        parser.error("--port-base leaves no room for %d hosts" % max(opts.sizes))

    version = subprocess.run([str(BIN / "ansible"), "--version"], capture_output=True, text=True, check=False)
    ansible_version = version.stdout.splitlines()[0] if version.stdout else "ansible ?"
    print("tritonfleet at fleet scale: %s, %d CPU(s), %s"
          % (ansible_version, os.cpu_count() or 0, time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())))
    print("hosts: ansible_connection local, cpu mode, process runtime, 1 server each, own root under %s, "
          "ports %d + 100*i" % (opts.root, opts.port_base))
    print("gateway and monitoring: %s" % ("the first host (scale01)" if opts.front == "first" else "none"))
    print("servers stage serial: %s" % (opts.serial or "the role's default (tritonfleet_serial, 25%)"), flush=True)

    root = pathlib.Path(opts.root)
    log_dir = pathlib.Path(tempfile.mkdtemp(prefix="tritonfleet-scale-logs-"))
    status = 0
    results = []
    local = None
    inv = None
    try:
        stop_leftovers(root)
        if not opts.skip_local:
            local = measure_local(log_dir)
            print("  local default: no-op %.1f s, setup %.1f s (median of 3)" % local, flush=True)
        for size in opts.sizes:
            problem = clear(root, inv, max(size, opts.forks), log_dir, "teardown-before-%d" % size)
            if problem:
                print("teardown before %d host(s) failed (roots removed anyway): %s" % (size, problem), flush=True)
            result, inv = measure_size(size, opts, log_dir)
            results.append(result)
    except (Failed, subprocess.TimeoutExpired) as exc:
        print("FAILED: %s" % exc, file=sys.stderr, flush=True)
        status = 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        status = 130
    finally:
        if inv is not None or root.exists():
            problem = clear(root, inv, max(opts.sizes + [opts.forks]), log_dir, "teardown-end")
            if problem:
                print("final teardown failed (processes stopped and roots removed anyway): %s" % problem, file=sys.stderr)
        shutil.rmtree(root, ignore_errors=True)
        if status == 0:
            shutil.rmtree(log_dir, ignore_errors=True)
        else:
            print("the runs' output is in %s" % log_dir, file=sys.stderr)

    if local:
        print("\nlocal default (inventories/local, 2 servers, gateway, monitoring): no-op site.yml %.1f s, "
              "ansible localhost -m setup %.1f s, ratio %.2f (target <= 3)" % (local[0], local[1], local[0] / local[1]))
    if results:
        print("\nfleets of pseudo-hosts (site.yml converge from empty roots, then the no-op; setup: ansible all -m setup)")
        for line in table(rows_for(results)):
            print(line)
        scaled = [r for r in rows_for(results) if r["size"] >= 8 and r["scale"] is not None]
        for row in scaled:
            print("converge(%d)/converge(1) = %.2f (target <= 1.5)" % (row["size"], row["scale"]))
    return status


if __name__ == "__main__":
    sys.exit(main())
