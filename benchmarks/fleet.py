"""Measure the molecule fleets and print the figures.

For the 1-host (`default`, cpu mode) and 3-host (`fleet`, gpu mode on
stand-ins) scenarios: how many hosts ran in gpu mode, the converge time
of site.yml on freshly created hosts (Docker install, image pulls from the
local registry, engine builds, Triton containers, verification), the no-op
re-run time (changed=0 required), and the number of engine builds the fleet
ran, read from the engines' manifests by the scenario's verify play. The
fleet's verify rolls a new repository version over its hosts while the load
client sends requests through the gateway: the rollout's wall time, the
requests sent, served and failed during it, and each server's time from drain
to back in service. Then, for
larger fleets, the builds the engine stage's planning (engine_distribution)
schedules for N hosts across K GPU SKUs.

Usage: .venv/bin/python benchmarks/fleet.py [--scenarios default fleet]
Needs a Docker engine; sets up images, packages and the registry like the tests.
"""

import argparse
import os
import pathlib
import re
import subprocess
import sys
import time

REPO = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests" / "molecule"))
sys.path.insert(0, str(REPO / "tests"))
sys.path.insert(0, str(REPO / ".collections"))
from docker_env import docker_answers, start_dockerd  # noqa: E402
from fleet_env import HOST_VOLUMES, docker_quiet, set_up, tear_down  # noqa: E402

from ansible_collections.tritonfleet.serving.plugins.filter.engine import engine_distribution  # noqa: E402

RECAP = re.compile(r"^(\S+)\s+:\s+ok=\d+\s+changed=(\d+)\s+unreachable=\d+\s+failed=(\d+)", re.M)
BUILDS = re.compile(r"(\d+) host\(s\), (\d+) SKU\(s\).*?: (\d+) build\(s\)")
# The facts stage's report: "<host>: gpu mode, 2 GPU(s) (...)".
GPU_MODE = re.compile(r"^\s*msg: '?(\S+): gpu mode,", re.M)
# The fleet verify's reports (molecule/fleet/verify.yml).
ROLLOUT_LOAD = re.compile(r"rolling\s+update\s+under\s+load:\s+(\d+)\s+sent,\s+(\d+)\s+succeeded,\s+(\d+)\s+failed"
                          r"\s+in\s+([\d.]+)\s+s")
OUT_OF_SERVICE = re.compile(r"msg: '?(\S+): (\S+)\s+drained\s+to\s+back\s+in\s+service\s+in\s+([\d.]+)\s+s")


def setup_environment():
    if not docker_answers() and not start_dockerd():
        sys.exit("no Docker engine")
    env = set_up(quiet=True)
    env.update(PATH="%s:%s" % (REPO / ".venv" / "bin", os.environ.get("PATH", "")), ANSIBLE_FORCE_COLOR="0")
    return env


def molecule(env, scenario, step):
    started = time.monotonic()
    proc = subprocess.run(["molecule", step, "-s", scenario], cwd=REPO, env=env, capture_output=True, text=True,
                          check=False)
    elapsed = time.monotonic() - started
    if proc.returncode != 0:
        sys.exit("molecule %s -s %s failed:\n%s" % (step, scenario, (proc.stdout + proc.stderr)[-5000:]))
    return proc.stdout + proc.stderr, elapsed


def measure(env, scenario):
    molecule(env, scenario, "destroy")
    for volume in HOST_VOLUMES:
        docker_quiet("volume", "rm", "-f", volume)
    molecule(env, scenario, "create")
    molecule(env, scenario, "prepare")
    out, cold = molecule(env, scenario, "converge")
    hosts = len(RECAP.findall(out))
    again, noop = molecule(env, scenario, "converge")
    changed = sum(int(c) for _h, c, _f in RECAP.findall(again))
    verified, verify_time = molecule(env, scenario, "verify")
    builds = BUILDS.search(verified)
    load = ROLLOUT_LOAD.search(verified)
    molecule(env, scenario, "destroy")
    return dict(scenario=scenario, hosts=hosts, gpu_hosts=len(set(GPU_MODE.findall(out))), cold=cold, noop=noop,
                noop_changed=changed, skus=int(builds.group(2)) if builds else None,
                builds=int(builds.group(3)) if builds else None,
                rollout=dict(sent=int(load.group(1)), succeeded=int(load.group(2)), failed=int(load.group(3)),
                             load_wall_s=float(load.group(4)),
                             out_of_service=[(h, s, float(t)) for h, s, t in OUT_OF_SERVICE.findall(verified)],
                             verify_s=verify_time) if load else None)


def planned_builds(hosts, skus):
    names = ["gpu-%03d" % i for i in range(hosts)]
    plans = {name: {"cache_key": "sku-%d" % (i % skus), "present": False} for i, name in enumerate(names)}
    return sum(1 for r in engine_distribution(names, plans).values() if r["build"])


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--scenarios", nargs="+", default=["default", "fleet"])
    args = parser.parse_args()
    env = setup_environment()
    results = [measure(env, scenario) for scenario in args.scenarios]
    print("\nmolecule fleets (site.yml on systemd hosts with their own Docker engine, 2 cores)")
    print("%-10s %6s %9s %10s %10s %9s %6s %7s"
          % ("scenario", "hosts", "gpu mode", "converge", "no-op", "changed", "SKUs", "builds"))
    for r in results:
        row = (r["scenario"], r["hosts"], r["gpu_hosts"], r["cold"], r["noop"], r["noop_changed"], r["skus"],
               r["builds"])
        print("%-10s %6d %9d %9.1fs %9.1fs %9d %6s %7s" % row)
    for r in results:
        if r["rollout"]:
            ro = r["rollout"]
            print("\n%s: rolling update under load through the gateway (verify step %.0f s, load %.0f s): "
                  "%d requests sent, %d served, %d failed" % (r["scenario"], ro["verify_s"], ro["load_wall_s"],
                                                              ro["sent"], ro["succeeded"], ro["failed"]))
            for host, server, seconds in ro["out_of_service"]:
                print("  %-10s %-8s drained to back in service: %5.1f s" % (host, server, seconds))
    print("\nengine builds the engine stage plans for N hosts across K SKUs (one model)")
    print("%6s %4s %7s" % ("N", "K", "builds"))
    for hosts, skus in ((1, 1), (3, 2), (12, 2), (48, 3), (200, 4)):
        print("%6d %4d %7d" % (hosts, skus, planned_builds(hosts, skus)))
    tear_down(env)


if __name__ == "__main__":
    main()
