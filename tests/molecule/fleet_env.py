"""The environment the molecule scenarios need, set up once per session.

A Docker engine (started here when none answers), the images and the package
repository of molecule/resources, the `tritonfleet-fleet` network the fleet
hosts live on, the signed apt repositories served on it (aptrepo.sh), and the
htpasswd-protected registry on it, with a password made
up for this session (the scenarios check it is in no output).
"""

import os
import pathlib
import secrets
import subprocess


REPO_ROOT = pathlib.Path(__file__).resolve().parents[2]
RESOURCES = REPO_ROOT / "molecule" / "resources"
OUTPUT = REPO_ROOT / "tests" / "output"
NETWORK = "tritonfleet-fleet"
SUBNET = "172.30.240.0/24"
REGISTRY_IP = "172.30.240.2"
REGISTRY_CONTAINER = "tritonfleet-registry"
# The signed apt repositories (a Debian mirror, NVIDIA's) of fleet-b1's `apt` path, served over HTTP.
APT_REPO_IP = "172.30.240.3"
HOST_VOLUMES = ["tritonfleet-fleet-%s-docker" % h for h in ("a1", "a2", "b1", "solo")]


def run(argv, **kwargs):
    print("+", " ".join(str(a) for a in argv), flush=True)
    subprocess.run([str(a) for a in argv], check=True, **kwargs)


def docker_quiet(*argv):
    return subprocess.run(["docker"] + list(argv), capture_output=True, text=True, check=False)


def set_up(quiet=False):
    """Images, package repository (also signed and served over HTTP), network and a registry with a fresh
    password; returns the environment the scenarios run with (TRITONFLEET_REGISTRY_PASSWORD, TRITONFLEET_PACKAGES_DIR)."""
    packages = RESOURCES / ".cache" / "packages"
    env = dict(os.environ, TRITONFLEET_REGISTRY_PASSWORD=secrets.token_urlsafe(24),
               TRITONFLEET_PACKAGES_DIR=str(packages))
    output = dict(stdout=subprocess.DEVNULL) if quiet else {}
    run([RESOURCES / "build_images.sh"], env=env, **output)
    run([RESOURCES / "packages.sh", packages], env=env, **output)
    if docker_quiet("network", "inspect", NETWORK).returncode != 0:
        run(["docker", "network", "create", "--subnet", SUBNET, NETWORK])
    run([RESOURCES / "aptrepo.sh", "start", packages, NETWORK, APT_REPO_IP], env=env, **output)
    run([RESOURCES / "registry.sh", "stop"], env=env)
    run([RESOURCES / "registry.sh", "start"], env=env)
    run(["docker", "network", "connect", "--ip", REGISTRY_IP, NETWORK, REGISTRY_CONTAINER])
    run([RESOURCES / "registry.sh", "push"], env=env, **output)
    return env


def tear_down(env):
    run([RESOURCES / "registry.sh", "stop"], env=env)
    run([RESOURCES / "aptrepo.sh", "stop"], env=env)
    for volume in HOST_VOLUMES:
        docker_quiet("volume", "rm", "-f", volume)
