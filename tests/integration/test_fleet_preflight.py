"""Bad fleet input fails before any change, with a message that names the problem and the fix.

The host reports one H100 (the real nvidia-smi output in tests/fixtures) and
runs the docker runtime. Each bad input goes through the whole of site.yml (in
check mode, so that a check that let it through could not install anything
here): the preflight play must stop the run before the first stage that
changes a host.
"""

import json

import pytest

from local_deploy import REPO, Deployment, assert_refused_in_preflight, free_port_base

pytestmark = pytest.mark.integration

H100_XML = REPO / "tests" / "fixtures" / "h100-host" / "nvidia-smi-q.xml"
H100_SKU = "NVIDIA-H100-80GB-HBM3"


@pytest.fixture
def deployment(tmp_path):
    return Deployment(tmp_path / "root", free_port_base())


def gpu_host(**extra):
    base = {"facts_accelerator": "gpu", "facts_nvidia_smi_xml": str(H100_XML), "tritonfleet_runtime": "docker",
            "servers_image": "nvcr.io/nvidia/tritonserver:24.01-trtllm-python-py3", "servers_count": 1}
    base.update(extra)
    return ["-e", json.dumps(base)]


def fake_engine(path, sku, tp=1, version="0.7.1"):
    path.mkdir(parents=True)
    (path / "config.json").write_text(json.dumps({"version": version, "pretrained_config": {
        "mapping": {"world_size": tp, "tp_size": tp, "pp_size": 1}}}))
    (path / "tritonfleet-engine.json").write_text(json.dumps({"key": "0" * 64, "built_on": "gpu-l40s-01", "inputs": {
        "key_inputs": {"gpu_sku": sku, "trtllm_version": version}}}))
    return str(path)


def refused(run, *needles):
    assert_refused_in_preflight(run)
    failures = run.messages(failed_only=True)
    for needle in needles:
        assert needle in failures, (needle, run)


def site(deployment, **extra):
    return deployment.playbook("site.yml", "--check", *gpu_host(**extra))


def test_the_fixture_host_passes_the_gpu_checks(deployment, tmp_path):
    engine = fake_engine(tmp_path / "engine", H100_SKU)
    run = deployment.playbook("playbooks/preflight.yml",
                              *gpu_host(servers_engine_dir=engine, servers_trtllm_version="0.7.1"))
    assert run.rc == 0, run
    assert run.changed == 0, run
    assert "H100" in run.facts()["tritonfleet_gpu_sku"], run
    for task in ("Refuse more GPUs than the host has", "Refuse colliding ports, shm prefixes, names and GPUs",
                 "Refuse a given engine that does not fit this host or the server configuration",
                 "Check that the host has GPUs and an NVIDIA driver (gpu mode)"):
        assert run.status(task) == "ok", (task, run)


def test_more_gpus_than_the_host_has(deployment):
    refused(site(deployment, servers_count=2),
            "has 1 GPU(s) but 2 server(s) x tp 1 x pp 1 need 2", "Lower servers_count")
    refused(site(deployment, tritonfleet_tp_size=2), "need 2")


def test_a_gpu_index_that_does_not_exist(deployment):
    refused(site(deployment, servers_instance_overrides=[{"index": 0, "gpus": [3]}]),
            "triton0: GPU index 3 does not exist on this host (GPUs: 0)")


def test_an_engine_built_for_another_sku(deployment, tmp_path):
    engine = fake_engine(tmp_path / "engine", "NVIDIA-L40S")
    refused(site(deployment, servers_engine_dir=engine),
            "gpu_sku is NVIDIA-L40S, but %s is needed" % H100_SKU, "Rebuild it")


def test_an_engine_too_large_for_the_gpu_memory_of_two_servers(deployment, tmp_path):
    engine = fake_engine(tmp_path / "engine", H100_SKU)
    with open(engine + "/rank0.engine", "wb") as handle:
        handle.truncate(50 * 1024 ** 3)  # sparse: 50 GiB of weights on paper
    refused(site(deployment, servers_engine_dir=engine, servers_trtllm_version="0.7.1", servers_count=2,
                 servers_instances_per_gpu=2),
            "a rank's engine is 51200 MiB, more than the 40779 MiB of GPU memory each server gets here")


def test_an_engine_for_another_layout_or_version(deployment, tmp_path):
    engine = fake_engine(tmp_path / "engine", H100_SKU, tp=2, version="0.8.0")
    refused(site(deployment, servers_engine_dir=engine, servers_trtllm_version="0.7.1"),
            "tp_size is 2, but 1 is needed", "trtllm_version is 0.8.0, but 0.7.1 is needed")


def test_an_image_reference_without_a_tag(deployment):
    refused(site(deployment, images_triton="nvcr.io/nvidia/tritonserver"), "images_triton")


def test_two_servers_may_share_the_gpu_when_asked(deployment, tmp_path):
    run = deployment.playbook("playbooks/preflight.yml", *gpu_host(servers_count=2, servers_instances_per_gpu=2))
    assert run.rc == 0, run
    assert run.status("Refuse more GPUs than the host has") == "ok", run
    assert run.status("Refuse colliding ports, shm prefixes, names and GPUs") == "ok", run
