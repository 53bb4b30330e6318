"""Session fixture: the Docker engine, images, package repository, network and registry of the scenarios."""

import os
import secrets

import pytest

from docker_env import ensure_docker_engine
from fleet_env import HOST_VOLUMES, NETWORK, REGISTRY_CONTAINER, REGISTRY_IP, RESOURCES, SUBNET, docker_quiet, run


@pytest.fixture(scope="session")
def fleet_env():
    ensure_docker_engine()

    password = secrets.token_urlsafe(24)
    packages = RESOURCES / ".cache" / "packages"
    env = dict(os.environ, TRITONFLEET_REGISTRY_PASSWORD=password, TRITONFLEET_PACKAGES_DIR=str(packages))
    run([RESOURCES / "build_images.sh"], env=env)
    run([RESOURCES / "packages.sh", packages], env=env)
    if docker_quiet("network", "inspect", NETWORK).returncode != 0:
        run(["docker", "network", "create", "--subnet", SUBNET, NETWORK])
    run([RESOURCES / "registry.sh", "stop"], env=env)
    run([RESOURCES / "registry.sh", "start"], env=env)
    run(["docker", "network", "connect", "--ip", REGISTRY_IP, NETWORK, REGISTRY_CONTAINER])
    run([RESOURCES / "registry.sh", "push"], env=env)
    yield env
    run([RESOURCES / "registry.sh", "stop"], env=env)
    for volume in HOST_VOLUMES:
        docker_quiet("volume", "rm", "-f", volume)
