"""Templates and Python models of the `repository` role.

Every config.pbtxt template is rendered by Ansible itself, with the role's
defaults, vars and dependencies as the role sees them (one ansible-playbook run
renders every case below), for gpu and cpu, decoupled on and off, BLS on and
off and several version policies, then parsed as Triton's ModelConfig protobuf. The ensemble's wiring is checked against the
composing models' real tensors. The tokenization helpers of the preprocessing,
postprocessing and BLS models are exercised with a tiny byte-level BPE
tokenizer built here.
"""

import fcntl
import functools
import hashlib
import importlib.util
import itertools
import json
import os
import pathlib
import shutil
import sys
import tempfile
import types

import numpy as np
import pytest
import yaml
from ansible import release as ansible_release
from google.protobuf import text_format
from tritonclient.grpc import model_config_pb2

from ansible_collections.tritonfleet.serving.tests.unit.utils import playbook_run

REPO_ROOT = pathlib.Path(__file__).resolve().parents[3]
ROLE = REPO_ROOT / "roles" / "repository"
TEMPLATES = ROLE / "templates"
FILES = ROLE / "files"
MODELS = ("preprocessing", "tensorrt_llm", "postprocessing", "ensemble", "tensorrt_llm_bls")
DT = model_config_pb2.DataType

# ----------------------------------------------------------------- contract
# The ensemble contract users' clients speak (DESIGN.md; upstream v0.7).
ENSEMBLE_INPUTS = {
    "text_input": ("TYPE_STRING", False),
    "max_tokens": ("TYPE_INT32", False),
    "bad_words": ("TYPE_STRING", True),
    "stop_words": ("TYPE_STRING", True),
    "end_id": ("TYPE_INT32", True),
    "pad_id": ("TYPE_INT32", True),
    "top_k": ("TYPE_INT32", True),
    "top_p": ("TYPE_FP32", True),
    "temperature": ("TYPE_FP32", True),
    "length_penalty": ("TYPE_FP32", True),
    "repetition_penalty": ("TYPE_FP32", True),
    "min_length": ("TYPE_INT32", True),
    "presence_penalty": ("TYPE_FP32", True),
    "random_seed": ("TYPE_UINT64", True),
    "return_log_probs": ("TYPE_BOOL", True),
    "beam_width": ("TYPE_INT32", True),
    "stream": ("TYPE_BOOL", True),
    "prompt_embedding_table": ("TYPE_FP16", True),
    "prompt_vocab_size": ("TYPE_INT32", True),
    "embedding_bias_words": ("TYPE_STRING", True),
    "embedding_bias_weights": ("TYPE_FP32", True),
}
ENSEMBLE_EXTENDED_INPUTS = {
    "frequency_penalty", "runtime_top_p_min", "runtime_top_p_decay", "runtime_top_p_reset_ids",
    "early_stopping", "beam_search_diversity_rate", "lora_task_id", "lora_weights", "lora_config",
}
ENSEMBLE_OUTPUTS = {
    "text_output": "TYPE_STRING",
    "cum_log_probs": "TYPE_FP32",
    "output_log_probs": "TYPE_FP32",
}
# name: (type, dims, optional)
ENGINE_INPUTS = {
    "input_ids": ("TYPE_INT32", [-1], False),
    "input_lengths": ("TYPE_INT32", [1], False),
    "request_output_len": ("TYPE_INT32", [1], False),
    "end_id": ("TYPE_INT32", [1], True),
    "pad_id": ("TYPE_INT32", [1], True),
    "stop_words_list": ("TYPE_INT32", [2, -1], True),
    "bad_words_list": ("TYPE_INT32", [2, -1], True),
    "embedding_bias": ("TYPE_FP32", [-1], True),
    "beam_width": ("TYPE_INT32", [1], True),
    "temperature": ("TYPE_FP32", [1], True),
    "runtime_top_k": ("TYPE_INT32", [1], True),
    "runtime_top_p": ("TYPE_FP32", [1], True),
    "len_penalty": ("TYPE_FP32", [1], True),
    "repetition_penalty": ("TYPE_FP32", [1], True),
    "min_length": ("TYPE_INT32", [1], True),
    "presence_penalty": ("TYPE_FP32", [1], True),
    "random_seed": ("TYPE_UINT64", [1], True),
    "return_log_probs": ("TYPE_BOOL", [1], True),
    "stop": ("TYPE_BOOL", [1], True),
    "streaming": ("TYPE_BOOL", [1], True),
    "prompt_embedding_table": ("TYPE_FP16", [-1, -1], True),
    "prompt_vocab_size": ("TYPE_INT32", [1], True),
}
ENGINE_OUTPUTS = {
    "output_ids": ("TYPE_INT32", [-1, -1]),
    "sequence_length": ("TYPE_INT32", [-1]),
    "cum_log_probs": ("TYPE_FP32", [-1]),
    "output_log_probs": ("TYPE_FP32", [-1, -1]),
}
PREPROCESSING_INPUTS = {
    "QUERY": "TYPE_STRING", "REQUEST_OUTPUT_LEN": "TYPE_INT32", "BAD_WORDS_DICT": "TYPE_STRING",
    "STOP_WORDS_DICT": "TYPE_STRING", "EMBEDDING_BIAS_WORDS": "TYPE_STRING",
    "EMBEDDING_BIAS_WEIGHTS": "TYPE_FP32", "END_ID": "TYPE_INT32", "PAD_ID": "TYPE_INT32",
}
PREPROCESSING_OUTPUTS = {
    "INPUT_ID": "TYPE_INT32", "REQUEST_INPUT_LEN": "TYPE_INT32", "BAD_WORDS_IDS": "TYPE_INT32",
    "STOP_WORDS_IDS": "TYPE_INT32", "EMBEDDING_BIAS": "TYPE_FP32", "REQUEST_OUTPUT_LEN": "TYPE_INT32",
    "OUT_END_ID": "TYPE_INT32", "OUT_PAD_ID": "TYPE_INT32",
}
POSTPROCESSING_INPUTS = {
    "TOKENS_BATCH": "TYPE_INT32", "SEQUENCE_LENGTH": "TYPE_INT32",
    "CUM_LOG_PROBS": "TYPE_FP32", "OUTPUT_LOG_PROBS": "TYPE_FP32",
}
POSTPROCESSING_OUTPUTS = {
    "OUTPUT": "TYPE_STRING", "OUT_CUM_LOG_PROBS": "TYPE_FP32", "OUT_OUTPUT_LOG_PROBS": "TYPE_FP32",
}
# Every parameter key of upstream's inflight_batcher_llm templates (all eras).
UPSTREAM_PARAMETERS = {
    "tensorrt_llm": [
        "max_beam_width", "FORCE_CPU_ONLY_INPUT_TENSORS", "gpt_model_type", "gpt_model_path",
        "encoder_model_path", "max_tokens_in_paged_kv_cache", "max_attention_window_size",
        "sink_token_length", "batch_scheduler_policy", "kv_cache_free_gpu_mem_fraction",
        "cross_kv_cache_fraction", "kv_cache_host_memory_bytes", "kv_cache_onboard_blocks",
        "max_num_sequences", "enable_trt_overlap", "exclude_input_in_output",
        "cancellation_check_period_ms", "stats_check_period_ms", "iter_stats_max_iterations",
        "request_stats_max_iterations", "enable_kv_cache_reuse", "normalize_log_probs",
        "enable_chunked_context", "gpu_device_ids", "participant_ids",
        "lora_cache_optimal_adapter_size", "lora_cache_max_adapter_size",
        "lora_cache_gpu_memory_fraction", "lora_cache_host_memory_bytes", "lora_prefetch_dir",
        "decoding_mode", "executor_worker_path", "medusa_choices", "eagle_choices",
        "gpu_weights_percent", "enable_context_fmha_fp32_acc", "multi_block_mode",
        "cuda_graph_mode", "cuda_graph_cache_size", "speculative_decoding_fast_logits",
        "lookahead_window_size", "lookahead_ngram_size", "lookahead_verification_set_size",
        "guided_decoding_backend", "xgrammar_tokenizer_info_path",
    ],
    "preprocessing": [
        "tokenizer_dir", "tokenizer_type", "add_special_tokens", "visual_model_path",
        "gpt_model_path", "max_num_images",
    ],
    "postprocessing": ["tokenizer_dir", "tokenizer_type", "skip_special_tokens"],
    "tensorrt_llm_bls": ["accumulate_tokens", "tensorrt_llm_model_name", "tensorrt_llm_draft_model_name"],
}
PARAMETER_VARIABLE = {
    "tensorrt_llm": "repository_tensorrt_llm_parameters",
    "preprocessing": "repository_preprocessing_parameters",
    "postprocessing": "repository_postprocessing_parameters",
    "tensorrt_llm_bls": "repository_bls_parameters",
}


# ---------------------------------------------------------------- rendering
# The directories a deployment passes; every rendered case gets them.
BASE_VARS = {"repository_engine_dir": "/srv/engines/llama", "repository_tokenizer_dir": "/srv/tokenizers/llama"}
# Shared defaults (roles/common, a dependency of the role) the role's defaults refer to.
COMMON_VARIABLES = ("tritonfleet_accelerator_fallback", "tritonfleet_model_repository")

# A role that is the repository role (its defaults, vars, meta with the
# dependencies, templates) plus one task file, so that Ansible loads the role
# exactly as it does in a deployment and renders its templates in its context.
RENDER_TASKS = """\
---
# The template action renders on the controller with the same templating as the
# template lookup: the lookup leaves out only the copy onto the host. One task
# per case: the models the role renders (its own __repository_models) and, when
# asked, the values of the variables the templates see.
- name: Render the model configurations
  ansible.builtin.debug:
    msg:
      case: "{{ tritonfleet_test_case }}"
      configs: >-
        {{ dict(__repository_models | zip(query('ansible.builtin.template',
                *(__repository_models | map('regex_replace', '$', '/config.pbtxt.j2'))))) }}
      variables: >-
        {{ dict(tritonfleet_test_variables | default([])
                | zip(query('ansible.builtin.vars', *(tritonfleet_test_variables | default([]))))) }}
"""


def case_key(overrides):
    return json.dumps(overrides, sort_keys=True)


def scenario_vars(accelerator, decoupled, bls, policy_index):
    return dict(repository_accelerator=accelerator, repository_decoupled=decoupled, repository_enable_bls=bls,
                repository_version_policy=POLICIES[policy_index][0], repository_max_batch_size=16)


def role_variable_names():
    """The names of the role's defaults (reading names is not resolving values)."""
    return list(yaml.safe_load((ROLE / "defaults" / "main.yml").read_text()))


def declared_cases():
    """Every set of overrides a test below renders with: Ansible renders them all in one run."""
    cases = [{}]
    cases += [scenario_vars(*scenario) for scenario in SCENARIOS]
    cases += list(STRICT_V07.values())
    cases += [INSTANCES_CPU, INSTANCES_GPU, BLS_ON, PARAMETER_STRINGS_ENGINE, PARAMETER_STRINGS_PREPROCESSING]
    cases += list(UPSTREAM_PARAMETER_CASES.values())
    unique = {}
    for overrides in cases:
        unique.setdefault(case_key(overrides), overrides)
    return unique


def _write_render_role(root):
    role = root / "roles" / "repository_under_test"
    (role / "tasks").mkdir(parents=True)
    for part in ("defaults", "vars", "meta", "templates"):
        (role / part).symlink_to(ROLE / part, target_is_directory=True)
    (role / "tasks" / "render.yml").write_text(RENDER_TASKS)


def _inputs_digest():
    """What the rendering depends on: Ansible, the role, the shared defaults, the cases and the task file."""
    digest = hashlib.sha256(RENDER_TASKS.encode())
    digest.update(("%s %s" % (sys.executable, ansible_release.__version__)).encode())
    digest.update(json.dumps(sorted(declared_cases()), sort_keys=True).encode())
    for path in sorted([*ROLE.rglob("*"), *(REPO_ROOT / "roles" / "common").rglob("*")]):
        if path.is_file() and "files" not in path.relative_to(REPO_ROOT).parts[2:3]:
            digest.update(str(path.relative_to(REPO_ROOT)).encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:16]


@functools.lru_cache(maxsize=None)
def rendered_cases():
    """Every declared case rendered: {case key: {"configs": {model: text}, "variables": {...}}}.

    ansible-test runs each test in a forked process (and pytest-xdist in
    several workers), so an in-memory cache would not spare a run per test:
    the first test renders and keeps the result in a file named by the digest
    of its inputs; the others, in any process, read it.
    """
    cache = pathlib.Path(tempfile.gettempdir()) / ("tritonfleet-repository-templates-%s.json" % _inputs_digest())
    with open(str(cache) + ".lock", "w", encoding="utf-8") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not cache.exists():
            rendered = _render_with_ansible()
            cache.with_suffix(".tmp").write_text(json.dumps(rendered))
            cache.with_suffix(".tmp").replace(cache)
    return json.loads(cache.read_text())


def _render_with_ansible():
    """One ansible-playbook run that renders every declared case."""
    root = pathlib.Path(tempfile.mkdtemp(prefix="repository-templates-"))
    _write_render_role(root)
    # One inventory host per case, its overrides as host vars (inventory vars, as a
    # deployment sets them): one include_role renders every case, the hosts in parallel.
    hosts = {}
    defaults_key = case_key({})
    for index, (key, overrides) in enumerate(declared_cases().items()):
        variables = dict(overrides if key == defaults_key else dict(BASE_VARS, **overrides))
        variables.update(ansible_connection="local", ansible_python_interpreter=sys.executable,
                         tritonfleet_test_case=key)
        if key == defaults_key:
            # the role's own defaults, on a host no earlier stage ran on: no BASE_VARS
            variables["tritonfleet_test_variables"] = role_variable_names() + list(COMMON_VARIABLES)
        hosts["case%d" % index] = variables
    inventory = root / "cases.json"
    inventory.write_text(json.dumps({"all": {"hosts": hosts}}))
    playbook = root / "render.yml"
    playbook.write_text(json.dumps([{
        "name": "Render the repository role's templates", "hosts": "all", "gather_facts": False,
        "tasks": [{"name": "Render every case",
                   "ansible.builtin.include_role": {"name": "repository_under_test", "tasks_from": "render"}}],
    }], indent=1))
    # The dependency (tritonfleet.serving.common) comes from this checkout, through .collections.
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=str(REPO_ROOT / ".collections"),
               ANSIBLE_ROLES_PATH=str(root / "roles"))
    try:
        run = playbook_run.run(["ansible-playbook", "-i", inventory, playbook],
                               env=env, cwd=root, timeout=600)
    finally:
        shutil.rmtree(root)
    assert run.rc == 0 and run.failures == 0, run
    out = {}
    for found in run.results(task="Render the model configurations"):
        out[found.result["msg"]["case"]] = found.result["msg"]
    return out


def role_defaults():
    """The role's defaults as Ansible resolves them on a host no earlier stage ran on."""
    variables = rendered_cases()[case_key({})]["variables"]
    return {name: variables[name] for name in role_variable_names()}


def render_configs(overrides):
    key = case_key(overrides)
    cases = rendered_cases()
    assert key in cases, "render %s: add these overrides to declared_cases()" % key
    return cases[key]["configs"]


def render(model, **overrides):
    return render_configs(overrides)[model]


def parse(text):
    return text_format.Parse(text, model_config_pb2.ModelConfig())


def render_all(**overrides):
    """The models the role renders with these overrides, as text and as ModelConfig."""
    texts = render_configs(overrides)
    return texts, {model: parse(text) for model, text in texts.items()}


def tensors(config, field):
    return {t.name: t for t in getattr(config, field)}


def type_name(value):
    return DT.Name(value)


def params(config):
    return {key: value.string_value for key, value in config.parameters.items()}


def dims_compatible(a, b):
    return len(a) == len(b) and all(x == y or -1 in (x, y) for x, y in zip(a, b))


def check_ensemble(ensemble, models):
    """Triton-like consistency check of the ensemble's steps; returns the problems found."""
    problems = []
    available = {
        t.name: (t.data_type, list(t.dims), t.optional, "ensemble input") for t in ensemble.input
    }
    consumed = set()
    for index, step in enumerate(ensemble.ensemble_scheduling.step):
        where = f"step {index} ({step.model_name})"
        if step.model_name not in models:
            problems.append(f"{where}: no such model")
            continue
        composing = models[step.model_name]
        inputs = tensors(composing, "input")
        outputs = tensors(composing, "output")
        for key, value in step.input_map.items():
            if key not in inputs:
                problems.append(f"{where}: input_map key {key} is not an input of {step.model_name}")
                continue
            if value not in available:
                problems.append(f"{where}: input_map value {value} is produced by no earlier step")
                continue
            dtype, dims, optional, source = available[value]
            consumed.add(value)
            if dtype != inputs[key].data_type:
                problems.append(
                    f"{where}: {value} ({type_name(dtype)}, {source}) feeds {key} "
                    f"({type_name(inputs[key].data_type)})"
                )
            if not dims_compatible(dims, list(inputs[key].dims)):
                problems.append(f"{where}: {value} dims {dims} do not fit {key} dims {list(inputs[key].dims)}")
            if optional and not inputs[key].optional:
                problems.append(f"{where}: optional {value} feeds required input {key}")
        for name, tensor in inputs.items():
            if not tensor.optional and name not in step.input_map:
                problems.append(f"{where}: required input {name} is not mapped")
        for key, value in step.output_map.items():
            if key not in outputs:
                problems.append(f"{where}: output_map key {key} is not an output of {step.model_name}")
                continue
            if value in available:
                problems.append(f"{where}: {value} is produced twice")
            available[value] = (outputs[key].data_type, list(outputs[key].dims), False, step.model_name)
    for output in ensemble.output:
        if output.name not in available:
            problems.append(f"ensemble output {output.name} is produced by no step")
        elif available[output.name][0] != output.data_type:
            problems.append(f"ensemble output {output.name} has the wrong type")
        elif not dims_compatible(available[output.name][1], list(output.dims)):
            problems.append(f"ensemble output {output.name} has incompatible dims")
    for tensor in ensemble.input:
        if tensor.name not in consumed:
            problems.append(f"ensemble input {tensor.name} is not used by any step")
    outputs = {t.name for t in ensemble.output}
    for name, (_unused, _unused, _unused, source) in available.items():
        if source != "ensemble input" and name not in consumed and name not in outputs:
            problems.append(f"{name} from {source} is never used")
    return problems


POLICIES = [
    ({"latest": {"num_versions": 1}}, "latest"),
    ({"latest": {"num_versions": 2}}, "latest"),
    ({"all": {}}, "all"),
    ({"specific": {"versions": [1, 3]}}, "specific"),
]
SCENARIOS = list(itertools.product(["gpu", "cpu"], [True, False], [True, False], range(len(POLICIES))))
STRICT_V07 = {accelerator: dict(repository_accelerator=accelerator, repository_extended_inputs=False,
                                repository_enable_bls=True) for accelerator in ("gpu", "cpu")}
INSTANCES_CPU = dict(
    repository_accelerator="cpu", repository_enable_bls=True,
    repository_preprocessing_instances=3, repository_postprocessing_instances=2,
    repository_bls_instances=4, repository_tensorrt_llm_instances=5,
    repository_max_queue_delay_microseconds=250, repository_max_queue_size=64,
)
INSTANCES_GPU = dict(repository_accelerator="gpu", repository_tensorrt_llm_instances=5,
                     repository_dynamic_batching=False)
BLS_ON = dict(repository_enable_bls=True)
UPSTREAM_PARAMETER_CASES = {
    model: {"repository_enable_bls": True,
            PARAMETER_VARIABLE[model]: {key: f"value-{index}" for index, key in enumerate(keys)}}
    for model, keys in UPSTREAM_PARAMETERS.items()
}
PARAMETER_STRINGS_ENGINE = dict(repository_tensorrt_llm_parameters={
    "gpu_device_ids": [0, 1],
    "enable_kv_cache_reuse": True,
    "kv_cache_free_gpu_mem_fraction": 0.5,
    "max_tokens_in_paged_kv_cache": 4096,
    "batch_scheduler_policy": None,
    "medusa_choices": '{0, 0}, {0, 1} "quoted" \\ back',
    "a_future_parameter": "x",
})
PARAMETER_STRINGS_PREPROCESSING = dict(repository_tokenizer_type="llama",
                                       repository_preprocessing_parameters={"add_special_tokens": False})


# -------------------------------------------------------------------- tests
@pytest.mark.parametrize("accelerator,decoupled,bls,policy_index", SCENARIOS)
def test_templates_parse_and_keep_the_contract(accelerator, decoupled, bls, policy_index):
    policy, kind = POLICIES[policy_index]
    texts, models = render_all(**scenario_vars(accelerator, decoupled, bls, policy_index))
    assert set(models) == set(MODELS) - (set() if bls else {"tensorrt_llm_bls"})
    for model, config in models.items():
        assert "${" not in texts[model], model
        assert config.name == model
        assert config.max_batch_size == 16
        assert config.version_policy.WhichOneof("policy_choice") == kind
        if kind == "latest":
            assert config.version_policy.latest.num_versions == policy["latest"]["num_versions"]
        if kind == "specific":
            assert list(config.version_policy.specific.versions) == [1, 3]

    ensemble = models["ensemble"]
    assert ensemble.platform == "ensemble"
    inputs = tensors(ensemble, "input")
    for name, (dtype, optional) in ENSEMBLE_INPUTS.items():
        assert type_name(inputs[name].data_type) == dtype, name
        assert inputs[name].optional == optional, name
    assert set(inputs) == set(ENSEMBLE_INPUTS) | ENSEMBLE_EXTENDED_INPUTS
    assert {n: type_name(t.data_type) for n, t in tensors(ensemble, "output").items()} == ENSEMBLE_OUTPUTS
    assert [s.model_name for s in ensemble.ensemble_scheduling.step] == [
        "preprocessing", "tensorrt_llm", "postprocessing"
    ]
    assert check_ensemble(ensemble, models) == []

    engine = models["tensorrt_llm"]
    assert engine.backend == ("tensorrtllm" if accelerator == "gpu" else "python")
    assert engine.model_transaction_policy.decoupled is decoupled
    assert [g.kind for g in engine.instance_group] == [model_config_pb2.ModelInstanceGroup.KIND_CPU]
    engine_inputs = tensors(engine, "input")
    for name, (dtype, dims, optional) in ENGINE_INPUTS.items():
        assert type_name(engine_inputs[name].data_type) == dtype, name
        assert list(engine_inputs[name].dims) == dims, name
        assert engine_inputs[name].optional == optional, name
    assert engine_inputs["input_ids"].allow_ragged_batch
    assert engine_inputs["input_lengths"].HasField("reshape")
    assert list(engine_inputs["input_lengths"].reshape.shape) == []
    for name, (dtype, dims) in ENGINE_OUTPUTS.items():
        output = tensors(engine, "output")[name]
        assert (type_name(output.data_type), list(output.dims)) == (dtype, dims), name
    engine_params = params(engine)
    assert engine_params["gpt_model_path"] == "/srv/engines/llama"
    assert engine_params["gpt_model_type"] == "inflight_fused_batching"
    assert engine_params["batch_scheduler_policy"] == "guaranteed_no_evict"
    assert engine_params["exclude_input_in_output"] == "true"
    assert engine.dynamic_batching.preferred_batch_size == [16]

    pre = models["preprocessing"]
    assert pre.backend == "python"
    assert {n: type_name(t.data_type) for n, t in tensors(pre, "input").items()} == PREPROCESSING_INPUTS
    assert {n: type_name(t.data_type) for n, t in tensors(pre, "output").items()} == PREPROCESSING_OUTPUTS
    assert params(pre)["tokenizer_dir"] == "/srv/tokenizers/llama"
    assert params(pre)["tokenizer_type"] == "auto"
    assert [(g.kind, g.count) for g in pre.instance_group] == [(model_config_pb2.ModelInstanceGroup.KIND_CPU, 1)]

    post = models["postprocessing"]
    assert {n: type_name(t.data_type) for n, t in tensors(post, "input").items()} == POSTPROCESSING_INPUTS
    assert {n: type_name(t.data_type) for n, t in tensors(post, "output").items()} == POSTPROCESSING_OUTPUTS
    assert params(post)["tokenizer_dir"] == "/srv/tokenizers/llama"

    if bls:
        bls_config = models["tensorrt_llm_bls"]
        assert bls_config.backend == "python"
        assert bls_config.model_transaction_policy.decoupled is decoupled
        assert {(t.name, t.data_type, t.optional, tuple(t.dims)) for t in bls_config.input} == {
            (t.name, t.data_type, t.optional, tuple(t.dims)) for t in ensemble.input
        }
        assert {(t.name, t.data_type) for t in bls_config.output} == {
            (t.name, t.data_type) for t in ensemble.output
        }
        assert params(bls_config) == {"accumulate_tokens": "false", "tensorrt_llm_model_name": "tensorrt_llm"}


@pytest.mark.parametrize("accelerator", ["gpu", "cpu"])
def test_strict_v07_contract_without_extended_inputs(accelerator):
    _unused, models = render_all(**STRICT_V07[accelerator])
    assert set(tensors(models["ensemble"], "input")) == set(ENSEMBLE_INPUTS)
    assert set(tensors(models["tensorrt_llm"], "input")) == set(ENGINE_INPUTS)
    assert set(tensors(models["tensorrt_llm_bls"], "input")) == set(ENSEMBLE_INPUTS)
    assert check_ensemble(models["ensemble"], models) == []


def test_instance_counts_and_queue_settings():
    _unused, models = render_all(**INSTANCES_CPU)
    assert models["preprocessing"].instance_group[0].count == 3
    assert models["postprocessing"].instance_group[0].count == 2
    assert models["tensorrt_llm_bls"].instance_group[0].count == 4
    assert models["tensorrt_llm"].instance_group[0].count == 5
    batching = models["tensorrt_llm"].dynamic_batching
    assert batching.max_queue_delay_microseconds == 250
    assert batching.default_queue_policy.max_queue_size == 64
    # gpu: the tensorrtllm backend manages the GPUs, one KIND_CPU instance
    _unused, gpu = render_all(**INSTANCES_GPU)
    assert [(g.kind, g.count) for g in gpu["tensorrt_llm"].instance_group] == [
        (model_config_pb2.ModelInstanceGroup.KIND_CPU, 1)
    ]
    assert not gpu["tensorrt_llm"].HasField("dynamic_batching")


def test_null_parameters_are_left_out():
    engine = parse(render("tensorrt_llm"))
    rendered = params(engine)
    defaults = role_defaults()["repository_tensorrt_llm_parameter_defaults"]
    for key, value in defaults.items():
        if value is None and key != "gpt_model_path":
            assert key not in rendered, key
    assert rendered["kv_cache_free_gpu_mem_fraction"] == "0.9"
    assert rendered["normalize_log_probs"] == "true"
    assert rendered["enable_trt_overlap"] == "false"


@pytest.mark.parametrize("model", sorted(UPSTREAM_PARAMETERS))
def test_every_upstream_parameter_is_settable(model):
    values = UPSTREAM_PARAMETER_CASES[model][PARAMETER_VARIABLE[model]]
    text = render(model, **UPSTREAM_PARAMETER_CASES[model])
    rendered = params(parse(text))
    assert {key: rendered.get(key) for key in values} == values


def test_parameter_values_render_as_triton_strings():
    engine = params(parse(render("tensorrt_llm", **PARAMETER_STRINGS_ENGINE)))
    assert engine["gpu_device_ids"] == "0,1"
    assert engine["enable_kv_cache_reuse"] == "true"
    assert engine["kv_cache_free_gpu_mem_fraction"] == "0.5"
    assert engine["max_tokens_in_paged_kv_cache"] == "4096"
    assert "batch_scheduler_policy" not in engine
    assert engine["medusa_choices"] == '{0, 0}, {0, 1} "quoted" \\ back'
    assert engine["a_future_parameter"] == "x"
    pre = params(parse(render("preprocessing", **PARAMETER_STRINGS_PREPROCESSING)))
    assert pre["tokenizer_type"] == "llama"
    assert pre["add_special_tokens"] == "false"


def test_defaults_resolve_without_the_earlier_stages():
    """On a host no earlier stage ran on, Ansible resolves the wiring defaults to the shared fallbacks."""
    variables = rendered_cases()[case_key({})]["variables"]
    defaults = role_defaults()
    for name, value in defaults.items():
        assert "{{" not in json.dumps(value), f"{name} still holds a template after Ansible resolved it"
    assert defaults["repository_accelerator"] == variables["tritonfleet_accelerator_fallback"]
    assert defaults["repository_accelerator"] in ("gpu", "cpu")
    assert defaults["repository_dir"] == variables["tritonfleet_model_repository"]
    assert defaults["repository_dir"] == "/var/lib/tritonfleet/model_repository"
    assert defaults["repository_engine_dir"] == ""
    assert defaults["repository_tokenizer_dir"] == ""
    assert defaults["repository_max_batch_size"] == 8
    assert defaults["repository_decoupled"] is True
    assert defaults["repository_model_version"] == 1
    assert defaults["repository_enable_bls"] is False


def test_argument_specs_cover_every_default():
    specs = yaml.safe_load((ROLE / "meta" / "argument_specs.yml").read_text())
    options = specs["argument_specs"]["main"]["options"]
    assert set(role_defaults()) == set(options)
    for name, spec in options.items():
        assert name.startswith("repository_")
        assert "type" in spec and spec.get("description"), name
    assert options["repository_accelerator"]["choices"] == ["gpu", "cpu"]


def test_ensemble_check_catches_miswiring():
    _unused, models = render_all()
    ensemble = models["ensemble"]
    step = ensemble.ensemble_scheduling.step[1]
    step.input_map["runtime_top_k"] = "top_p"  # FP32 into INT32
    del step.input_map["input_lengths"]
    problems = check_ensemble(ensemble, models)
    assert any("top_p" in p and "runtime_top_k" in p for p in problems)
    assert any("required input input_lengths" in p for p in problems)


# ------------------------------------------------------- the Python models
def load_module(relative, name):
    # The role installs common/tritonfleet_model_utils.py next to each model.py;
    # in the source tree it lives in files/common.
    if str(FILES / "common") not in sys.path:
        sys.path.insert(0, str(FILES / "common"))
    spec = importlib.util.spec_from_file_location(name, FILES / relative)
    module = importlib.util.module_from_spec(spec)
    # no __pycache__ inside the role's files/
    saved, sys.dont_write_bytecode = sys.dont_write_bytecode, True
    try:
        spec.loader.exec_module(module)
    finally:
        sys.dont_write_bytecode = saved
    return module


@pytest.fixture(scope="module")
def pre_module():
    return load_module("preprocessing/model.py", "tritonfleet_test_preprocessing")


@pytest.fixture(scope="module")
def post_module():
    return load_module("postprocessing/model.py", "tritonfleet_test_postprocessing")


@pytest.fixture(scope="module")
def bls_module():
    return load_module("tensorrt_llm_bls/model.py", "tritonfleet_test_bls")


SENTENCES = [
    "The quick brown fox jumps over the lazy dog.",
    "Hello world, héllo wörld! 日本語のテキスト",
    "Triton serves models; TensorRT-LLM builds engines.",
    "Streaming sends one piece at a time.",
]


@pytest.fixture(scope="module")
def tokenizer_dir(tmp_path_factory):
    """A tiny byte-level BPE tokenizer that AutoTokenizer loads offline."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    path = tmp_path_factory.mktemp("tokenizer")
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=320,
        special_tokens=["<|endoftext|>", "<|pad|>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    tokenizer.train_from_iterator(SENTENCES * 10, trainer)
    tokenizer.save(str(path / "tokenizer.json"))
    (path / "tokenizer_config.json").write_text(json.dumps({
        "tokenizer_class": "PreTrainedTokenizerFast",
        "eos_token": "<|endoftext|>",
        "pad_token": "<|pad|>",
        "model_max_length": 2048,
    }))
    return path


@pytest.fixture(scope="module")
def preprocessor(pre_module, tokenizer_dir):
    return pre_module.Preprocessor({"tokenizer_dir": str(tokenizer_dir), "tokenizer_type": "auto",
                                    "add_special_tokens": "true"})


@pytest.fixture(scope="module")
def postprocessor(post_module, tokenizer_dir):
    return post_module.Postprocessor({"tokenizer_dir": str(tokenizer_dir), "skip_special_tokens": "true"})


def strings(*values):
    return np.array([[v.encode("utf-8")] for v in values], dtype=object)


def test_round_trip_through_preprocessing_and_postprocessing(preprocessor, postprocessor):
    outputs = preprocessor({
        "QUERY": strings(*SENTENCES[:3]),
        "REQUEST_OUTPUT_LEN": np.array([[8], [8], [8]], dtype=np.int32),
    })
    ids, lengths = outputs["INPUT_ID"], outputs["REQUEST_INPUT_LEN"]
    assert ids.dtype == np.int32 and lengths.shape == (3, 1)
    pad = preprocessor.pad_id
    for row, length in zip(ids, lengths[:, 0]):
        assert (row[length:] == pad).all()
    assert outputs["OUT_END_ID"].tolist() == [[preprocessor.end_id]] * 3
    assert preprocessor.end_id == preprocessor.tokenizer.eos_token_id
    assert pad == preprocessor.tokenizer.pad_token_id
    # the engine hands the tokens back as [batch, beam, tokens], padded beyond sequence_length
    tokens = ids[:, np.newaxis, :]
    decoded = postprocessor({"TOKENS_BATCH": tokens, "SEQUENCE_LENGTH": lengths})
    assert decoded["OUTPUT"].shape == (3, 1)
    assert [t[0].decode("utf-8") for t in decoded["OUTPUT"]] == SENTENCES[:3]
    assert decoded["OUT_CUM_LOG_PROBS"].shape == (3, 1)
    assert decoded["OUT_OUTPUT_LOG_PROBS"].dtype == np.float32


def test_streamed_pieces_decode_one_by_one(preprocessor, postprocessor):
    text = SENTENCES[3]
    ids = preprocessor.tokenizer.encode(text)
    pieces = []
    for token in ids:  # a streaming response carries only its new token
        out = postprocessor({"TOKENS_BATCH": np.array([[[token]]], dtype=np.int32),
                             "SEQUENCE_LENGTH": np.array([[1]], dtype=np.int32)})
        pieces.append(out["OUTPUT"][0, 0].decode("utf-8"))
    assert "".join(pieces) == text
    # sequence_length larger than the piece (total length) never reads past it
    out = postprocessor({"TOKENS_BATCH": np.array([[[ids[0]]]], dtype=np.int32),
                         "SEQUENCE_LENGTH": np.array([[40]], dtype=np.int32)})
    assert out["OUTPUT"][0, 0].decode() == preprocessor.tokenizer.decode([ids[0]])


def test_special_tokens_are_skipped(postprocessor, preprocessor):
    ids = preprocessor.tokenizer.encode("Hello world") + [preprocessor.end_id]
    out = postprocessor({"TOKENS_BATCH": np.array([[ids]], dtype=np.int32)})
    assert out["OUTPUT"][0, 0] == b"Hello world"


def test_log_probs_pass_through(postprocessor):
    cum = np.array([[-1.5]], dtype=np.float32)
    per_token = np.array([[[-0.5, -1.0]]], dtype=np.float32)
    out = postprocessor({"TOKENS_BATCH": np.array([[[5, 6]]], dtype=np.int32),
                         "SEQUENCE_LENGTH": np.array([[2]], dtype=np.int32),
                         "CUM_LOG_PROBS": cum, "OUTPUT_LOG_PROBS": per_token})
    assert out["OUT_CUM_LOG_PROBS"].tolist() == cum.tolist()
    assert out["OUT_OUTPUT_LOG_PROBS"].tolist() == per_token.tolist()


def test_word_lists_use_the_flattened_format(pre_module, preprocessor):
    tok = preprocessor.tokenizer
    quick = tok.encode("quick", add_special_tokens=False)
    lazy = tok.encode(" lazy", add_special_tokens=False)
    comma = tok.encode("a,b", add_special_tokens=False)
    words = np.array([[b"quick, lazy"], [b'"a,b"']], dtype=object)
    result = pre_module.to_word_list_format(tok, words, 2)
    width = max(len(quick) + len(lazy), len(comma))
    assert result.shape == (2, 2, width) and result.dtype == np.int32
    assert result[0, 0, : len(quick) + len(lazy)].tolist() == quick + lazy
    assert result[0, 1].tolist()[:2] == [len(quick), len(quick) + len(lazy)]
    assert all(v == -1 for v in result[0, 1, 2:])
    assert result[1, 0, : len(comma)].tolist() == comma  # CSV quoting keeps the comma
    assert result[1, 1, 0] == len(comma)
    empty = pre_module.to_word_list_format(tok, None, 3)
    assert empty.shape == (3, 2, 0)


def test_embedding_bias(pre_module, preprocessor):
    tok = preprocessor.tokenizer
    bias = pre_module.embedding_bias(
        tok, np.array([[b"fox", b"dog"]], dtype=object), np.array([[2.0, -1.0]], dtype=np.float32), 1
    )
    assert bias.shape == (1, len(tok)) and bias.dtype == np.float32
    for token in tok.encode("fox", add_special_tokens=False):
        assert bias[0, token] >= 2.0 - 1.0
    assert pre_module.embedding_bias(tok, None, None, 2).shape == (2, 0)
    with pytest.raises(ValueError):
        pre_module.embedding_bias(tok, np.array([[b"fox"]], dtype=object),
                                  np.array([[1.0, 2.0]], dtype=np.float32), 1)


def test_preprocessing_rejects_bad_requests(preprocessor):
    with pytest.raises(ValueError, match="max_tokens"):
        preprocessor({"QUERY": strings("hi"), "REQUEST_OUTPUT_LEN": np.array([[0]], dtype=np.int32)})
    with pytest.raises(ValueError, match="empty"):
        preprocessor({"QUERY": strings(""), "REQUEST_OUTPUT_LEN": np.array([[4]], dtype=np.int32)})
    outputs = preprocessor({"QUERY": strings("hi"), "REQUEST_OUTPUT_LEN": np.array([[4]], dtype=np.int32),
                            "END_ID": np.array([[7]], dtype=np.int32)})
    assert outputs["OUT_END_ID"].tolist() == [[7]]


class FakePbUtils(types.SimpleNamespace):
    """Just enough of triton_python_backend_utils for execute()."""

    class Tensor:
        def __init__(self, name, value):
            self.name, self.value = name, np.asarray(value)

        def as_numpy(self):
            return self.value

    class TritonError:
        def __init__(self, message):
            self.message = message

    class InferenceResponse:
        def __init__(self, output_tensors, error=None):
            self.output_tensors, self.error = output_tensors, error

    @staticmethod
    def get_input_tensor_by_name(request, name):
        return request.get(name)

    @staticmethod
    def triton_string_to_numpy(data_type):
        return {"TYPE_INT32": np.int32, "TYPE_FP32": np.float32, "TYPE_STRING": np.object_}[data_type]


def test_execute_answers_each_request_and_never_raises(pre_module, post_module, tokenizer_dir, monkeypatch):
    fake = FakePbUtils()
    config = json.loads(json.dumps({
        "parameters": {"tokenizer_dir": {"string_value": str(tokenizer_dir)}},
        "output": [{"name": n, "data_type": t} for n, t in PREPROCESSING_OUTPUTS.items()],
    }))
    monkeypatch.setattr(pre_module, "pb_utils", fake)
    model = pre_module.TritonPythonModel()
    model.initialize({"model_config": json.dumps(config)})
    good = {"QUERY": fake.Tensor("QUERY", strings("Hello world")),
            "REQUEST_OUTPUT_LEN": fake.Tensor("REQUEST_OUTPUT_LEN", np.array([[4]], dtype=np.int32))}
    bad = {"QUERY": fake.Tensor("QUERY", strings("Hello world"))}
    responses = model.execute([good, bad, good])
    assert len(responses) == 3
    assert responses[0].error is None and responses[2].error is None
    assert {t.name for t in responses[0].output_tensors} == set(PREPROCESSING_OUTPUTS)
    assert "REQUEST_OUTPUT_LEN" in responses[1].error.message

    monkeypatch.setattr(post_module, "pb_utils", fake)
    post = post_module.TritonPythonModel()
    post.initialize({"model_config": json.dumps({"parameters": config["parameters"]})})
    responses = post.execute([{"TOKENS_BATCH": fake.Tensor("TOKENS_BATCH", np.array([[[1, 2]]]))},
                              {"TOKENS_BATCH": fake.Tensor("TOKENS_BATCH", np.zeros((1, 1, 1, 1, 1)))}])
    assert responses[0].error is None
    assert "TOKENS_BATCH" in responses[1].error.message


def test_bls_pipeline_streams_and_accumulates(bls_module, preprocessor, postprocessor):
    text = "Hello wörld 日本"

    def call(model, inputs, outputs, decoupled):
        if model == "preprocessing":
            yield preprocessor(inputs)
        elif model == "tensorrt_llm":
            assert "bad_words_list" not in inputs  # empty word lists are not forwarded
            ids = inputs["input_ids"][0, : int(inputs["input_lengths"][0, 0])]
            if bls_module.first_bool(inputs.get("streaming")):
                for token in ids:
                    yield {"output_ids": np.array([[[token]]], dtype=np.int32),
                           "sequence_length": np.array([[1]], dtype=np.int32)}
                yield {}  # the final, empty response
            else:
                yield {"output_ids": ids.reshape(1, 1, -1).astype(np.int32),
                       "sequence_length": np.array([[len(ids)]], dtype=np.int32)}
        else:
            yield postprocessor(inputs)

    request = {"text_input": strings(text), "max_tokens": np.array([[16]], dtype=np.int32)}
    whole = list(bls_module.Pipeline(call).run(request))
    assert [r["text_output"][0, 0].decode() for r in whole] == [text]
    assert set(whole[0]) == {"text_output", "cum_log_probs", "output_log_probs"}

    streaming = dict(request, stream=np.array([[True]]))
    accumulated = list(bls_module.Pipeline(call, accumulate=True).run(streaming))
    assert accumulated[-1]["text_output"][0, 0].decode() == text
    assert len(accumulated) == len(preprocessor.tokenizer.encode(text))
    pieces = list(bls_module.Pipeline(call, accumulate=False).run(streaming))
    assert len(pieces) == len(accumulated)
    with pytest.raises(ValueError, match="decoupled"):
        list(bls_module.Pipeline(call, decoupled=False).run(streaming))
    with pytest.raises(ValueError, match="max_tokens"):
        list(bls_module.Pipeline(call).run({"text_input": strings(text)}))


def test_bls_tables_match_the_rendered_configs(bls_module):
    _unused, models = render_all(**BLS_ON)
    bls_inputs = set(tensors(models["tensorrt_llm_bls"], "input"))
    assert set(bls_module.CLIENT_INPUTS) == bls_inputs
    engine_inputs = set(tensors(models["tensorrt_llm"], "input"))
    assert set(bls_module.CLIENT_TO_ENGINE.values()) <= engine_inputs
    assert set(bls_module.PREPROCESSING_TO_ENGINE.values()) <= engine_inputs
    assert set(bls_module.PREPROCESSING_TO_ENGINE) <= set(tensors(models["preprocessing"], "output"))
    assert set(bls_module.ENGINE_TO_POSTPROCESSING.values()) <= set(tensors(models["postprocessing"], "input"))
    assert set(bls_module.POSTPROCESSING_TO_CLIENT.values()) == set(tensors(models["tensorrt_llm_bls"], "output"))
    # the ensemble forwards the same client inputs to the engine as the BLS model does
    step = models["ensemble"].ensemble_scheduling.step[1]
    forwarded = {v: k for k, v in step.input_map.items() if not v.startswith("_")}
    assert forwarded == bls_module.CLIENT_TO_ENGINE


def test_python_models_import_without_triton():
    if "triton_python_backend_utils" in sys.modules:
        pytest.skip("the Triton utilities are importable here")
    for relative in ("preprocessing/model.py", "postprocessing/model.py", "tensorrt_llm_bls/model.py"):
        module = load_module(relative, "tritonfleet_probe_" + relative.split("/", maxsplit=1)[0])
        assert module.pb_utils is None
        assert hasattr(module, "TritonPythonModel")
