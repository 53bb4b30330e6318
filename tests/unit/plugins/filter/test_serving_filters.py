import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.tritonfleet.serving.plugins.filter.serving import (
    triton_busy_ports, triton_instance_conflicts, triton_instances)


def test_instances_get_ports_and_prefix_from_base_and_index():
    first, second = triton_instances(2)
    assert (first["http_port"], first["grpc_port"], first["metrics_port"]) == (8000, 8001, 8002)
    assert (second["http_port"], second["grpc_port"], second["metrics_port"]) == (8010, 8011, 8012)
    assert first["shm_region_prefix"] == "tritonfleet0_"
    assert second["shm_region_prefix"] == "tritonfleet1_"
    assert [first["name"], second["name"]] == ["triton0", "triton1"]
    assert triton_instance_conflicts([first, second]) == []


def test_gpus_are_split_per_instance():
    instances = triton_instances(2, gpu_ids=[0, 1, 2, 3], gpus_per_instance=2)
    assert [i["gpus"] for i in instances] == [[0, 1], [2, 3]]


def test_stride_smaller_than_port_spread_collides_across_kinds():
    problems = triton_instance_conflicts(triton_instances(2, port_stride=1))
    # instance 1's http port (8001) is instance 0's grpc port
    assert any("triton1: http_port 8001 is already used as grpc_port of triton0" in p for p in problems)


def test_override_can_create_and_report_a_duplicate():
    instances = triton_instances(2, overrides=[{"index": 1, "http_port": 8000}])
    problems = triton_instance_conflicts(instances)
    assert problems == ["triton1: http_port 8000 is already used as http_port of triton0"]


def test_same_or_overlapping_shm_prefix_is_a_conflict():
    instances = triton_instances(2, overrides=[{"index": 1, "shm_region_prefix": "tritonfleet0_"}])
    assert any("overlap" in p for p in triton_instance_conflicts(instances))
    instances = triton_instances(12)
    # "tritonfleet1_" is not a prefix of "tritonfleet10_" thanks to the separator
    assert triton_instance_conflicts(instances) == []


def test_port_out_of_range_and_missing_gpu():
    instances = triton_instances(1, http_port_base=70000, gpu_ids=[5], gpus_per_instance=1)
    problems = triton_instance_conflicts(instances, host_gpu_ids=[0, 1])
    assert any("outside 1-65535" in p for p in problems)
    assert any("GPU index 5 does not exist on this host (GPUs: 0, 1)" in p for p in problems)


@pytest.mark.parametrize("kwargs, message", [
    (dict(count=0), "at least 1"),
    (dict(count="two"), "must be an integer"),
    (dict(count=1, overrides=[{"http_port": 1}]), "'index' key"),
    (dict(count=1, overrides=[{"index": 0, "htp_port": 1}]), "unknown keys"),
])
def test_bad_arguments_raise_clear_errors(kwargs, message):
    with pytest.raises(AnsibleFilterError, match=message):
        triton_instances(**kwargs)


def test_server_command_single_rank():
    from ansible_collections.tritonfleet.serving.plugins.filter.serving import triton_server_command
    (inst,) = triton_instances(1)
    argv = triton_server_command(inst, "/repo", log_file="/logs/triton0.log", model_control_mode="explicit",
                                 load_models=["ensemble"], extra_args=["--strict-readiness=true"])
    assert argv[0] == "tritonserver"
    assert "--backend-config=python,shm-region-prefix-name=tritonfleet0_" in argv
    assert "--http-port=8000" in argv and "--grpc-port=8001" in argv and "--metrics-port=8002" in argv
    assert "--load-model=ensemble" in argv and "--log-file=/logs/triton0.log" in argv
    assert argv[-1] == "--strict-readiness=true"
    assert "mpirun" not in argv


def test_server_command_tensor_parallel_runs_one_rank_per_gpu_under_mpi():
    from ansible_collections.tritonfleet.serving.plugins.filter.serving import triton_server_command
    inst = triton_instances(2, gpu_ids=[0, 1, 2, 3], gpus_per_instance=2)[1]
    argv = triton_server_command(inst, "/repo", accelerator="gpu", world_size=2)
    assert argv[:2] == ["mpirun", "--allow-run-as-root"]
    ranks = " ".join(argv).split(" : ")
    assert len(ranks) == 2
    rank0, rank1 = ranks
    assert "--http-port=8010" in rank0 and "--allow-gpu-metrics=true" in rank0
    # Only rank 0 opens endpoints; the other rank loads the engine model only, with its own shm prefix.
    assert "--allow-http=false" in rank1 and "--http-port" not in rank1
    assert "--load-model=tensorrt_llm" in rank1 and "--model-control-mode=explicit" in rank1
    assert "shm-region-prefix-name=tritonfleet1_rank1_" in rank1


def test_server_command_refuses_unknown_mode():
    from ansible_collections.tritonfleet.serving.plugins.filter.serving import triton_server_command
    with pytest.raises(AnsibleFilterError, match="model_control_mode"):
        triton_server_command(triton_instances(1)[0], "/repo", model_control_mode="lazy")


def test_instances_can_share_gpus():
    instances = triton_instances(4, gpu_ids=[0, 1], gpus_per_instance=1, instances_per_gpu=2)
    assert [i["gpus"] for i in instances] == [[0], [0], [1], [1]]
    with pytest.raises(AnsibleFilterError, match="instances_per_gpu"):
        triton_instances(1, instances_per_gpu=0)


def test_docker_log_lines_unwraps_json_file_entries_and_keeps_plain_lines():
    from ansible_collections.tritonfleet.serving.plugins.filter.serving import docker_log_lines
    lines = ['{"log":"I1125 model \\"tensorrt_llm\\" UNAVAILABLE\\n","stream":"stderr","time":"2026-11-25T15:00:00Z"}',
             "plain line", "{not json"]
    assert docker_log_lines(lines) == ['I1125 model "tensorrt_llm" UNAVAILABLE', "plain line", "{not json"]
    assert docker_log_lines(None) == []


def _listener(port, pid=0, name="", address="0.0.0.0"):
    # one entry of community.general.listen_ports_facts' tcp_listen
    return {"address": address, "port": port, "pid": pid, "name": name, "protocol": "tcp", "stime": "", "user": ""}


def test_busy_ports_name_the_instance_the_port_its_kind_and_the_holder():
    instances = triton_instances(2)
    listeners = [_listener(22, 1, "sshd"), _listener(8011, 4939, "python3", "127.0.0.1"),
                 _listener(8011, 4939, "python3", "::1"), _listener(8002)]
    assert triton_busy_ports(instances, listeners) == [
        "triton0: port 8002 already in use by a process of another user (its metrics_port)",
        "triton1: port 8011 already in use by python3 (pid 4939) (its grpc_port)",
    ]
    assert triton_busy_ports(instances, [_listener(22, 1, "sshd")]) == []
    assert triton_busy_ports(instances, []) == []


def test_ports_of_the_roles_own_containers_are_left_out():
    instances = triton_instances(1)
    listeners = [_listener(8000, 77, "docker-proxy"), _listener(8001, 77, "docker-proxy"), _listener(8002, 78, "nginx")]
    assert triton_busy_ports(instances, listeners, own_ports=[8000, "8001"]) == [
        "triton0: port 8002 already in use by nginx (pid 78) (its metrics_port)"]


def test_ports_an_instances_own_process_holds_are_left_out_for_that_instance_only():
    instances = triton_instances(2)
    listeners = [_listener(8000, 100, "tritonserver"), _listener(8010, 100, "tritonserver"), _listener(8012, 200, "x")]
    # pid files are read as text: "100\n"
    assert triton_busy_ports(instances, listeners, own_pids={"triton0": "100\n", "triton1": 101}) == [
        "triton1: port 8010 already in use by tritonserver (pid 100) (its http_port)",
        "triton1: port 8012 already in use by x (pid 200) (its metrics_port)",
    ]
    # a pid file without a pid protects nothing; an owner ss cannot see is never the instance's own
    assert len(triton_busy_ports(instances[:1], [_listener(8000)], own_pids={"triton0": ""})) == 1
    assert len(triton_busy_ports(instances[:1], [_listener(8000)], own_pids={"triton0": "0"})) == 1


def test_busy_ports_refuse_a_listener_without_a_port_number():
    with pytest.raises(AnsibleFilterError, match="port of a listener"):
        triton_busy_ports(triton_instances(1), [{"port": "x", "pid": 1}])
