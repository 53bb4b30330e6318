"""The environment the molecule scenarios need, set up once per session.

A Docker engine (started here when none answers), the images and the package
repository of molecule/resources, the `tritonfleet-fleet` network the fleet
hosts live on, and the htpasswd-protected registry on it, with a password made
up for this session (the scenarios check it is in no output).
"""

import pathlib
import subprocess


REPO_ROOT = pathlib.Path(__file__).resolve().parents[2]
RESOURCES = REPO_ROOT / "molecule" / "resources"
OUTPUT = REPO_ROOT / "tests" / "output"
NETWORK = "tritonfleet-fleet"
SUBNET = "172.30.240.0/24"
REGISTRY_IP = "172.30.240.2"
REGISTRY_CONTAINER = "tritonfleet-registry"
HOST_VOLUMES = ["tritonfleet-fleet-%s-docker" % h for h in ("a1", "a2", "b1", "solo")]


def run(argv, **kwargs):
    print("+", " ".join(str(a) for a in argv), flush=True)
    subprocess.run([str(a) for a in argv], check=True, **kwargs)


def docker_quiet(*argv):
    return subprocess.run(["docker"] + list(argv), capture_output=True, text=True, check=False)
