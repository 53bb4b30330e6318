import pytest

from local_deploy import Deployment, free_port_base


@pytest.fixture
def deployment(tmp_path):
    dep = Deployment(tmp_path / "root", free_port_base())
    yield dep
    dep.playbook("playbooks/teardown.yml")
