"""Session fixture: the Docker engine, images, package repository, network and registry of the scenarios."""

import pytest

from docker_env import ensure_docker_engine
from fleet_env import set_up, tear_down


@pytest.fixture(scope="session")
def fleet_env():
    ensure_docker_engine()
    env = set_up()
    yield env
    tear_down(env)
