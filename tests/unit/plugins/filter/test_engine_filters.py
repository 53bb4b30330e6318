import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.tritonfleet.serving.plugins.filter.engine import (
    FilterModule, cli_flags, engine_build_failure, engine_distribution, peer_url, trtllm_build_command, trtllm_build_steps)

# The seed flow: Baichuan2-7B-Chat on TensorRT-LLM v0.7.1.
BAICHUAN_V07_ARGS = {
    "model_version": "v2_7b", "dtype": "float16", "parallel_build": True, "use_inflight_batching": True,
    "enable_context_fmha": True, "use_gemm_plugin": "float16", "use_gpt_attention_plugin": "float16",
}


def test_flags_from_a_dict_leave_out_false_and_null():
    assert cli_flags({"b": True, "a": "x", "c": False, "d": None, "e": 3, "f": [1, 2]}) == [
        "--a", "x", "--b", "--e", "3", "--f", "1", "2"]
    assert cli_flags(None) == []


@pytest.mark.parametrize("bad", [{"bad flag": 1}, {"x": {"nested": 1}}, ["--a"]])
def test_malformed_flags_are_refused(bad):
    with pytest.raises(AnsibleFilterError):
        cli_flags(bad)


def test_build_py_era_is_one_step_with_world_size():
    (step,) = trtllm_build_steps("build_py", "/ckpt", "/out", "/work", tp_size=2, pp_size=1,
                                 build_args=BAICHUAN_V07_ARGS, model_family="baichuan",
                                 build_py_parallel_flags="world_size")
    assert step[:2] == ["python3", "/app/tensorrt_llm/examples/baichuan/build.py"]
    assert step[2:8] == ["--model_dir", "/ckpt", "--output_dir", "/out", "--world_size", "2"]
    # v0.7.1's baichuan/build.py has no such flags: argparse would exit 2.
    assert "--tp_size" not in step and "--pp_size" not in step
    for flag in ("--parallel_build", "--use_inflight_batching", "--enable_context_fmha"):
        assert flag in step
    assert step[step.index("--use_gemm_plugin") + 1] == "float16"
    assert step[step.index("--model_version") + 1] == "v2_7b"


def test_trtllm_build_era_converts_then_builds_from_the_converted_checkpoint():
    convert, build = trtllm_build_steps("trtllm_build", "/ckpt", "/out", "/work", tp_size=2, pp_size=2,
                                        build_args={"gemm_plugin": "auto", "max_batch_size": 8},
                                        convert_args={"dtype": "float16"})
    assert convert[1] == "/app/tensorrt_llm/examples/llama/convert_checkpoint.py"
    assert convert[convert.index("--output_dir") + 1] == "/work/trtllm-checkpoint"
    assert convert[convert.index("--tp_size") + 1] == "2" and convert[convert.index("--pp_size") + 1] == "2"
    assert build[:5] == ["trtllm-build", "--checkpoint_dir", "/work/trtllm-checkpoint", "--output_dir", "/out"]
    assert "--gemm_plugin" in build and "--tp_size" not in build


@pytest.mark.parametrize("recipe,args,conv", [
    ("build_py", {"output_dir": "/elsewhere"}, None),
    ("build_py", {"tp_size": 4}, None),
    ("trtllm_build", {"checkpoint_dir": "/x"}, None),
    ("trtllm_build", None, {"tp_size": 2}),
    ("build_py", None, {"dtype": "float16"}),
])
def test_arguments_the_recipe_owns_are_refused(recipe, args, conv):
    with pytest.raises(AnsibleFilterError):
        trtllm_build_steps(recipe, "/c", "/o", "/w", build_args=args, convert_args=conv)


def test_unknown_recipe_and_bad_sizes_are_refused():
    with pytest.raises(AnsibleFilterError, match="recipe"):
        trtllm_build_steps("make", "/c", "/o", "/w")
    with pytest.raises(AnsibleFilterError, match="at least 1"):
        trtllm_build_steps("build_py", "/c", "/o", "/w", tp_size=0)


def test_build_command_is_one_shell_that_stops_at_the_first_failure_and_logs():
    argv = trtllm_build_command("trtllm_build", "/c", "/o d", "/w", "/log/build.log",
                                build_args={"gemm_plugin": "float16"})
    assert argv[:2] == ["/bin/sh", "-c"]
    script = argv[2].splitlines()
    assert script[0] == "set -e" and script[1] == "exec >>/log/build.log 2>&1"
    # paths with spaces survive quoting
    assert any("'/o d'" in line for line in script)
    assert sum(1 for line in script if line.startswith("trtllm-build")) == 1


def plans(**keys):
    return {host: {"cache_key": key, "present": present} for host, (key, present) in keys.items()}


def test_a_fleet_builds_once_per_key_and_the_others_receive():
    hosts = ["a1", "a2", "b1"]
    result = engine_distribution(hosts, plans(a1=("A", False), a2=("A", False), b1=("B", False)))
    assert [h for h in hosts if result[h]["build"]] == ["a1", "b1"]
    assert result["a1"]["receivers"] == ["a2"]
    assert result["a2"] == {"source": "a1", "build": False, "receive": True, "receivers": [],
                            "sender": "a1", "round": 1, "shares": False, "rounds": 1}
    assert result["b1"]["receivers"] == []
    assert result["a1"]["shares"] and not result["b1"]["shares"]


@pytest.mark.parametrize("receivers,fanout,rounds", [(1, 1, 1), (3, 1, 2), (7, 1, 3), (19, 1, 5), (19, 2, 3), (8, 8, 1)])
def test_host_to_host_copies_fan_out_in_rounds(receivers, fanout, rounds):
    hosts = ["h%02d" % i for i in range(receivers + 1)]
    result = engine_distribution(hosts, plans(**{h: ("A", False) for h in hosts}), fanout)
    assert {r["rounds"] for r in result.values()} == {rounds}
    have_by_round = {0: {"h00"}}
    for number in range(1, rounds + 1):
        got = [h for h in hosts if result[h]["round"] == number]
        senders = [result[h]["sender"] for h in got]
        # Every sender had the engine before the round, and sends to at most `fanout` hosts in it.
        assert set(senders) <= have_by_round[number - 1]
        assert max(senders.count(s) for s in set(senders)) <= fanout
        have_by_round[number] = have_by_round[number - 1] | set(got)
    assert have_by_round[rounds] == set(hosts)
    assert {h for h in hosts if result[h]["shares"]} == {r["sender"] for r in result.values() if r["sender"]}


def test_every_host_that_has_the_engine_sends_in_the_first_round():
    hosts = ["a1", "a2", "a3", "a4"]
    result = engine_distribution(hosts, plans(a1=("A", True), a2=("A", True), a3=("A", False), a4=("A", False)))
    assert (result["a3"]["sender"], result["a4"]["sender"]) == ("a1", "a2")
    assert result["a3"]["rounds"] == 1


def test_fanout_below_one_is_refused():
    with pytest.raises(AnsibleFilterError, match="fanout must be at least 1"):
        engine_distribution(["a1"], plans(a1=("A", False)), 0)


def test_peer_url_uses_the_reachable_address():
    assert peer_url({"ansible_host": "10.0.0.5"}, "a1", 8470) == "http://10.0.0.5:8470"
    assert peer_url({"ansible_connection": "local"}, "a1", "8470") == "http://127.0.0.1:8470"
    assert peer_url({"tritonfleet_address": "fd00::5"}, "a1", 8470) == "http://[fd00::5]:8470"
    assert peer_url({}, "a1", 8470, "10.1.1.1") == "http://10.1.1.1:8470"


def test_a_host_that_has_the_engine_is_the_source_and_nothing_builds():
    hosts = ["a1", "a2", "a3"]
    result = engine_distribution(hosts, plans(a1=("A", False), a2=("A", True), a3=("A", False)))
    assert not any(r["build"] for r in result.values())
    assert result["a2"]["receivers"] == ["a1", "a3"]
    assert result["a1"]["source"] == "a2" and result["a1"]["receive"]


def test_nothing_moves_when_every_host_has_its_engine():
    result = engine_distribution(["a1", "a2"], plans(a1=("A", True), a2=("A", True)))
    assert not any(r["build"] or r["receive"] or r["receivers"] for r in result.values())


def test_hosts_without_a_plan_are_left_out():
    result = engine_distribution(["a1", "gone"], plans(a1=("A", False)))
    assert list(result) == ["a1"]


def test_build_py_with_tp_pp_flags_passes_the_layout():
    (step,) = trtllm_build_steps("build_py", "/ckpt", "/out", "/work", tp_size=2, pp_size=2, model_family="llama")
    assert step[6:12] == ["--world_size", "4", "--tp_size", "2", "--pp_size", "2"]


def test_build_py_world_size_only_refuses_pipeline_parallel():
    with pytest.raises(AnsibleFilterError, match="engine_pp_size must be 1"):
        trtllm_build_steps("build_py", "/c", "/o", "/w", tp_size=1, pp_size=2, model_family="baichuan",
                           build_py_parallel_flags="world_size")
    with pytest.raises(AnsibleFilterError, match="build_py_parallel_flags"):
        trtllm_build_steps("build_py", "/c", "/o", "/w", build_py_parallel_flags="both")


def _info(**state):
    return {"exists": True, "container": {"State": dict({"Running": False, "ExitCode": 0, "OOMKilled": False,
                                                         "Error": "", "Status": "exited"}, **state)}}


@pytest.mark.parametrize("info, message", [
    (_info(), ""),
    (_info(Running=True, Status="running", ExitCode=0), "it ran past engine_build_timeout (600 s) and was stopped"),
    (_info(ExitCode=2), "the build container exited with status 2"),
    (_info(ExitCode=137, OOMKilled=True), "ran out of memory and was killed (exit status 137)"),
    (_info(ExitCode=127, Error="exec: python3: not found"), "Docker could not run the build container: exec: python3"),
    (_info(ExitCode=None, Status="created"), "reported no exit status (state created)"),
    ({"exists": False, "container": None}, "the build container disappeared before it finished"),
])
def test_build_failure_says_what_happened_to_the_container(info, message):
    if message:
        assert message in engine_build_failure(info, 600)
    else:
        assert engine_build_failure(info, 600) == ""


def test_build_failure_needs_a_container_info_result():
    with pytest.raises(AnsibleFilterError, match="docker_container_info result"):
        engine_build_failure(None, 600)


def test_engine_filters_are_registered():
    assert set(FilterModule().filters()) == {
        "trtllm_cli_flags", "engine_peer_url", "trtllm_build_steps", "trtllm_build_command", "engine_distribution",
        "engine_build_failure"}
