"""The repository role's model configurations, and its Python models.

Every config.pbtxt is rendered by Ansible itself, with the role's defaults, vars
and dependencies as the role sees them (one ansible-playbook run renders every
case below), then parsed as Triton's ModelConfig protobuf and compared with the
ensemble contract recorded for its TensorRT-LLM release
(roles/repository/files/contracts/<release>.yml): for every release file found
there, gpu and cpu, decoupled on, off and "false" as a string (as -e gives it),
BLS on and off. A handful of facts about upstream's releases are asserted on
their own, so that wrong data fails too, and the ensemble's wiring is checked
against the composing models' rendered tensors. The tokenization helpers of the
preprocessing, postprocessing and BLS models are exercised with a tiny
byte-level BPE tokenizer built here.
"""

import copy
import fcntl
import functools
import hashlib
import importlib.util
import itertools
import json
import os
import pathlib
import re
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
FILES = ROLE / "files"
CONTRACT_DIR = FILES / "contracts"
MODELS = ("preprocessing", "tensorrt_llm", "postprocessing", "ensemble", "tensorrt_llm_bls")
DT = model_config_pb2.DataType
KIND_CPU = model_config_pb2.ModelInstanceGroup.KIND_CPU
PLACEHOLDER = re.compile(r"^\$\{([A-Za-z_][A-Za-z0-9_]*)\}$")


# ---------------------------------------------------------------- releases
def _release_number(release):
    """'0.12' -> (0, 12), '1.x' -> (1,): enough to order releases and compare with a known one."""
    return tuple(int(piece) for piece in re.findall(r"\d+", str(release).split("x", maxsplit=1)[0]))


def _discover_releases():
    """Every contract file, read here (not through the lookup under test), oldest first."""
    contracts = [yaml.safe_load(path.read_text()) for path in sorted(CONTRACT_DIR.glob("*.yml"))]
    return sorted(contracts, key=lambda c: _release_number(c["release"]))


CONTRACTS = {str(c["release"]): c for c in _discover_releases()}
RELEASES = list(CONTRACTS)
OLDEST, NEWEST = RELEASES[0], RELEASES[-1]


def version_of(release):
    """A tritonfleet_trtllm_version the release covers, as a user writes it (a patch release of its prefix)."""
    return "%s.1" % CONTRACTS[release]["versions"][0]


def at_least(release, *number):
    return _release_number(release) >= number


# ----------------------------------------------------------------- the cases
# The directories a deployment passes; every rendered case but the role's bare defaults gets them.
BASE_VARS = {"repository_engine_dir": "/srv/engines/llama", "repository_tokenizer_dir": "/srv/tokenizers/llama"}
# Shared defaults (roles/common, a dependency of the role) the role's defaults refer to.
COMMON_VARIABLES = ("tritonfleet_accelerator_fallback", "tritonfleet_model_repository", "tritonfleet_trtllm_version")
POLICIES = [
    ({"latest": {"num_versions": 1}}, "latest"),
    ({"latest": {"num_versions": 2}}, "latest"),
    ({"all": {}}, "all"),
    ({"specific": {"versions": [1, 3]}}, "specific"),
]
# decoupled as YAML gives it and as `-e repository_decoupled=false` gives it (a string).
DECOUPLED = [True, False, "false"]
TABLE = list(itertools.product(RELEASES, ["gpu", "cpu"], DECOUPLED, [True, False]))


def table_vars(release, accelerator, decoupled, bls):
    # The version policy varies along the table instead of multiplying it.
    policy = POLICIES[TABLE.index((release, accelerator, decoupled, bls)) % len(POLICIES)][0]
    return dict(tritonfleet_trtllm_version=version_of(release), repository_accelerator=accelerator,
                repository_decoupled=decoupled, repository_enable_bls=bls,
                repository_version_policy=policy, repository_max_batch_size=16)


def instances_cpu(release):
    return dict(tritonfleet_trtllm_version=version_of(release), repository_accelerator="cpu",
                repository_enable_bls=True, repository_preprocessing_instances=3,
                repository_postprocessing_instances=2, repository_bls_instances=4,
                repository_tensorrt_llm_instances=5, repository_max_queue_delay_microseconds=250,
                repository_max_queue_size=64)


def instances_gpu(release):
    return dict(tritonfleet_trtllm_version=version_of(release), repository_accelerator="gpu",
                repository_tensorrt_llm_instances=5, repository_dynamic_batching=False)


# An old version with a pinned release: the pin wins.
PINNED = dict(tritonfleet_trtllm_version=version_of(OLDEST), repository_contract=NEWEST)
PARAMETER_VARIABLE = {
    "tensorrt_llm": "repository_tensorrt_llm_parameters",
    "preprocessing": "repository_preprocessing_parameters",
    "postprocessing": "repository_postprocessing_parameters",
    "tensorrt_llm_bls": "repository_bls_parameters",
}
PARAMETER_DEFAULTS_VARIABLE = {model: variable.replace("_parameters", "_parameter_defaults")
                               for model, variable in PARAMETER_VARIABLE.items()}
# Every parameter key upstream's inflight_batcher_llm configs have had, across releases: a user
# may set any of them, whether the release in use has it or not.
UPSTREAM_PARAMETERS = {
    "tensorrt_llm": [
        "max_beam_width", "FORCE_CPU_ONLY_INPUT_TENSORS", "gpt_model_type", "gpt_model_path",
        "encoder_model_path", "max_tokens_in_paged_kv_cache", "max_attention_window_size",
        "sink_token_length", "batch_scheduler_policy", "kv_cache_free_gpu_mem_fraction",
        "cross_kv_cache_fraction", "kv_cache_host_memory_bytes", "kv_cache_onboard_blocks",
        "max_num_sequences", "enable_trt_overlap", "exclude_input_in_output",
        "cancellation_check_period_ms", "stats_check_period_ms", "iter_stats_max_iterations",
        "request_stats_max_iterations", "enable_kv_cache_reuse", "normalize_log_probs",
        "enable_chunked_context", "gpu_device_ids", "participant_ids", "num_nodes",
        "lora_cache_optimal_adapter_size", "lora_cache_max_adapter_size",
        "lora_cache_gpu_memory_fraction", "lora_cache_host_memory_bytes", "lora_prefetch_dir",
        "decoding_mode", "executor_worker_path", "medusa_choices", "eagle_choices",
        "gpu_weights_percent", "enable_context_fmha_fp32_acc", "multi_block_mode",
        "cuda_graph_mode", "cuda_graph_cache_size", "speculative_decoding_fast_logits",
        "lookahead_window_size", "lookahead_ngram_size", "lookahead_verification_set_size",
        "guided_decoding_backend", "xgrammar_tokenizer_info_path", "tokenizer_dir",
    ],
    "preprocessing": [
        "tokenizer_dir", "tokenizer_type", "add_special_tokens", "visual_model_path",
        "multimodal_model_path", "gpt_model_path", "max_num_images",
    ],
    "postprocessing": ["tokenizer_dir", "tokenizer_type", "skip_special_tokens"],
    "tensorrt_llm_bls": ["accumulate_tokens", "tensorrt_llm_model_name", "tensorrt_llm_draft_model_name",
                         "multimodal_encoders_name"],
}


def upstream_parameter_case(release, model):
    return {"tritonfleet_trtllm_version": version_of(release), "repository_enable_bls": True,
            PARAMETER_VARIABLE[model]: {key: "value-%d" % index for index, key in enumerate(UPSTREAM_PARAMETERS[model])}}


PARAMETER_STRINGS_ENGINE = dict(repository_tensorrt_llm_parameters={
    "gpu_device_ids": [0, 1],
    "enable_kv_cache_reuse": True,
    "kv_cache_free_gpu_mem_fraction": 0.5,
    "max_tokens_in_paged_kv_cache": 4096,
    "batch_scheduler_policy": None,
    "medusa_choices": '{0, 0}, {0, 1} "quoted" \\ back',
    "a_future_parameter": "x",
})
# 0.7 is the release whose preprocessing still has tokenizer_type.
PARAMETER_STRINGS_PREPROCESSING = dict(tritonfleet_trtllm_version=version_of(OLDEST), repository_tokenizer_type="llama",
                                       repository_preprocessing_parameters={"add_special_tokens": False})
OLDEST_DEFAULTS = dict(tritonfleet_trtllm_version=version_of(OLDEST))


# ---------------------------------------------------------------- rendering
# A role that is the repository role (its defaults, vars, meta with the
# dependencies, templates) plus one task file, so that Ansible loads the role
# exactly as it does in a deployment and renders its template in its context.
RENDER_TASKS = """\
---
# The template lookup renders on the controller with the same templating as the
# role's template task, which loops over __repository_models with the model as
# item; the lookup leaves out only the copy onto the host. One result per model.
- name: Render the model configurations
  ansible.builtin.debug:
    msg:
      case: "{{ tritonfleet_test_case }}"
      model: "{{ item }}"
      config: "{{ lookup('ansible.builtin.template', 'config.pbtxt.j2') }}"
  loop: "{{ __repository_models }}"

# On the host of the role's bare defaults: the values of the variables the template sees.
- name: Report the variables
  ansible.builtin.debug:
    msg:
      case: "{{ tritonfleet_test_case }}"
      variables: >-
        {{ dict(tritonfleet_test_variables | zip(query('ansible.builtin.vars', *tritonfleet_test_variables))) }}
  when: tritonfleet_test_variables is defined
"""


def case_key(overrides):
    return json.dumps(overrides, sort_keys=True)


def role_variable_names():
    """The names of the role's defaults (reading names is not resolving values)."""
    return list(yaml.safe_load((ROLE / "defaults" / "main.yml").read_text()))


def declared_cases():
    """Every set of overrides a test below renders with: Ansible renders them all in one run."""
    cases = [{}, PINNED, OLDEST_DEFAULTS, PARAMETER_STRINGS_ENGINE, PARAMETER_STRINGS_PREPROCESSING]
    cases += [table_vars(*row) for row in TABLE]
    for release in RELEASES:
        cases += [instances_cpu(release), instances_gpu(release)]
    for release in (OLDEST, NEWEST):
        cases += [upstream_parameter_case(release, model) for model in UPSTREAM_PARAMETERS]
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
    """What the rendering depends on: Ansible, the role, the contracts, the plugins, the shared defaults, the cases."""
    digest = hashlib.sha256(RENDER_TASKS.encode())
    digest.update(("%s %s" % (sys.executable, ansible_release.__version__)).encode())
    digest.update(json.dumps(sorted(declared_cases()), sort_keys=True).encode())
    paths = [*ROLE.rglob("*"), *(REPO_ROOT / "roles" / "common").rglob("*"), *(REPO_ROOT / "plugins").rglob("*.py")]
    for path in sorted(paths):
        relative = path.relative_to(REPO_ROOT)
        # The Python models under files/ do not change what is rendered; the contracts do.
        if relative.parts[:3] == ("roles", "repository", "files") and relative.parts[3:4] != ("contracts",):
            continue
        if path.is_file() and "__pycache__" not in relative.parts:
            digest.update(str(relative).encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:16]


@functools.lru_cache(maxsize=None)
def rendered_cases():
    """Every declared case rendered: {case key: {"configs": {model: text}, "variables": {...}}}.

    ansible-test runs each test in a forked process (and pytest-xdist in
    several workers), so an in-memory cache would not spare a run per test:
    the first test renders and keeps the result in a file named by the digest
    of its inputs; the others, in any process, read it.
    """
    cache = pathlib.Path(tempfile.gettempdir()) / ("tritonfleet-model-contracts-%s.json" % _inputs_digest())
    with open(str(cache) + ".lock", "w", encoding="utf-8") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not cache.exists():
            rendered = _render_with_ansible()
            cache.with_suffix(".tmp").write_text(json.dumps(rendered))
            cache.with_suffix(".tmp").replace(cache)
    return json.loads(cache.read_text())


def _render_with_ansible():
    """One ansible-playbook run that renders every declared case."""
    root = pathlib.Path(tempfile.mkdtemp(prefix="model-contracts-"))
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
        "name": "Render the repository role's configurations", "hosts": "all", "gather_facts": False,
        "tasks": [{"name": "Render every case",
                   "ansible.builtin.include_role": {"name": "repository_under_test", "tasks_from": "render"}}],
    }], indent=1))
    # The dependency (tritonfleet.serving.common) and the plugins come from this checkout, through .collections.
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=str(REPO_ROOT / ".collections"),
               ANSIBLE_ROLES_PATH=str(root / "roles"), ANSIBLE_FORKS="10")
    try:
        run = playbook_run.run(["ansible-playbook", "-i", inventory, playbook],
                               env=env, cwd=root, timeout=900)
    finally:
        shutil.rmtree(root)
    assert run.rc == 0 and run.failures == 0, run
    out = {key: {"configs": {}} for key in declared_cases()}
    for found in run.results(task="Render the model configurations"):
        for result in found.result["results"]:
            out[result["msg"]["case"]]["configs"][result["msg"]["model"]] = result["msg"]["config"]
    for found in run.results(task="Report the variables"):
        if not found.result.get("skipped"):
            out[found.result["msg"]["case"]]["variables"] = found.result["msg"]["variables"]
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


def triton_string(value):
    """A parameter value as Triton reads it: booleans lower case, lists comma-joined."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return ",".join(triton_string(v) for v in value)
    return str(value)


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


# -------------------------------------------------------------- expectations
def boolean(value):
    """A boolean as Ansible's `| bool` reads it (the string "false" is false)."""
    if isinstance(value, bool):
        return value
    return str(value).strip().lower() in ("true", "yes", "on", "1", "y", "t")


def case_variables(overrides):
    """The role's variables for a case: its defaults, the directories a deployment passes, the overrides."""
    variables = role_defaults()
    if overrides:
        variables.update(BASE_VARS)
    variables.update(overrides)
    return variables


def contract_of(overrides):
    """The release a case asks for, read from the overrides (not through the filter under test)."""
    if overrides.get("repository_contract"):
        return CONTRACTS[overrides["repository_contract"]]
    version = overrides.get("tritonfleet_trtllm_version")
    if not version:
        return CONTRACTS[NEWEST]
    matching = [c for c in CONTRACTS.values() if version.startswith("%s." % c["versions"][0])]
    assert len(matching) == 1, version
    return matching[0]


def placeholder_values(variables):
    """What each ${name} of a release means with these role variables."""
    values = dict(variables["repository_placeholder_defaults"])
    values.update(
        triton_max_batch_size=int(variables["repository_max_batch_size"]),
        decoupled_mode=boolean(variables["repository_decoupled"]),
        max_queue_delay_microseconds=int(variables["repository_max_queue_delay_microseconds"]),
        max_queue_size=variables["repository_max_queue_size"],
        preprocessing_instance_count=int(variables["repository_preprocessing_instances"]),
        postprocessing_instance_count=int(variables["repository_postprocessing_instances"]),
        bls_instance_count=int(variables["repository_bls_instances"]),
        triton_backend="tensorrtllm" if variables["repository_accelerator"] == "gpu" else "python",
        engine_dir=variables["repository_engine_dir"],
        tokenizer_dir=variables["repository_tokenizer_dir"],
        tokenizer_type=variables["repository_tokenizer_type"],
    )
    return values


def resolve(value, values):
    match = PLACEHOLDER.match(str(value))
    if not match:
        return value
    assert match.group(1) in values, "the test knows no value for ${%s}" % match.group(1)
    return values[match.group(1)]


def tensor_facts(config, field):
    # ModelOutput has neither optional nor allow_ragged_batch: False, as a contract's output never sets them
    return [(t.name, type_name(t.data_type), list(t.dims), list(t.reshape.shape) if t.HasField("reshape") else None,
             getattr(t, "optional", False), getattr(t, "allow_ragged_batch", False)) for t in getattr(config, field)]


def contract_tensor_facts(entries, values):
    return [(t["name"], resolve(t["data_type"], values), list(t["dims"]), t.get("reshape"),
             bool(t.get("optional", False)), bool(t.get("allow_ragged_batch", False))) for t in entries]


def expected_parameters(model, entry, variables):
    """The release's parameters with the role's values (null ones left out), and the user's own keys."""
    role = dict(variables.get(PARAMETER_DEFAULTS_VARIABLE.get(model), {}) or {})
    explicit = dict(variables.get(PARAMETER_VARIABLE.get(model), {}) or {})
    if model in ("preprocessing", "postprocessing"):
        role.update(tokenizer_dir=variables["repository_tokenizer_dir"],
                    tokenizer_type=variables["repository_tokenizer_type"])
    if model == "tensorrt_llm":
        role.update(gpt_model_path=variables["repository_engine_dir"])
    fillers = {name: variables[variable] for name, variable in (
        ("engine_dir", "repository_engine_dir"), ("tokenizer_dir", "repository_tokenizer_dir"),
        ("tokenizer_type", "repository_tokenizer_type"))}
    release = entry.get("parameters") or {}
    expected = {}
    for key, upstream in release.items():
        match = PLACEHOLDER.match(str(upstream))
        # the user's value, else what the release ships fixed (0.7's add_special_tokens), else the role's default
        literal = None if match else upstream
        value = next((v for v in (explicit.get(key), literal, role.get(key)) if v not in (None, "")), None)
        if value is None and match:
            value = fillers.get(match.group(1))
        if value not in (None, ""):
            expected[key] = triton_string(value)
    for key, value in explicit.items():
        if key not in release and value not in (None, ""):
            expected[key] = triton_string(value)
    return expected


def assert_matches_contract(overrides, contract=None):
    """Every rendered model of the case parses and is its release's recorded contract with the case's values."""
    variables = case_variables(overrides)
    contract = contract or contract_of(overrides)
    values = placeholder_values(variables)
    texts, models = render_all(**overrides)
    bls = boolean(variables["repository_enable_bls"])
    assert list(models) == [m for m in MODELS if bls or m != "tensorrt_llm_bls"]
    assert set(contract["models"]) >= set(models)
    policy = variables["repository_version_policy"]
    for name, config in models.items():
        entry = contract["models"][name]
        where = "%s at %s" % (name, contract["release"])
        assert "${" not in texts[name], where
        assert contract["release"] in texts[name].splitlines()[0], where  # the header names the release
        assert config.name == name
        assert config.max_batch_size == int(resolve(entry["max_batch_size"], values)), where
        if name == "ensemble":
            assert (config.platform, config.backend) == ("ensemble", ""), where
        elif name == "tensorrt_llm":
            # cpu mode serves the engine on the Python backend, whatever the release wrote
            expected_backend = "tensorrtllm" if variables["repository_accelerator"] == "gpu" else "python"
            assert (config.platform, config.backend) == ("", expected_backend), where
        else:
            assert (config.platform, config.backend) == ("", resolve(entry["backend"], values)), where
        kind = config.version_policy.WhichOneof("policy_choice")
        assert kind == next(iter(policy)), where
        if kind == "latest":
            assert config.version_policy.latest.num_versions == policy["latest"]["num_versions"]
        if kind == "specific":
            assert list(config.version_policy.specific.versions) == policy["specific"]["versions"]

        assert tensor_facts(config, "input") == contract_tensor_facts(entry.get("inputs", []), values), where
        assert tensor_facts(config, "output") == contract_tensor_facts(entry.get("outputs", []), values), where

        if "decoupled" in entry:
            assert config.model_transaction_policy.decoupled is boolean(variables["repository_decoupled"]), where
        else:
            assert not config.HasField("model_transaction_policy"), where

        batching = entry.get("dynamic_batching")
        if batching is None or not boolean(variables["repository_dynamic_batching"]):
            assert not config.HasField("dynamic_batching"), where
        else:
            assert config.HasField("dynamic_batching"), where
            assert list(config.dynamic_batching.preferred_batch_size) == [
                int(resolve(v, values)) for v in batching.get("preferred_batch_size", [])], where
            assert config.dynamic_batching.max_queue_delay_microseconds == int(
                resolve(batching.get("max_queue_delay_microseconds", 0), values)), where
            queue = (batching.get("default_queue_policy") or {}).get("max_queue_size")
            queue = resolve(queue, values) if queue is not None else None
            if queue not in (None, "") and int(queue) > 0:
                assert config.dynamic_batching.default_queue_policy.max_queue_size == int(queue), where
            else:
                assert not config.dynamic_batching.HasField("default_queue_policy"), where

        group = entry.get("instance_group")
        if group is None:
            assert len(config.instance_group) == 0, where
        else:
            count = resolve(group["count"], values)
            if name == "tensorrt_llm":
                # the tensorrtllm backend places the engine itself: one instance; cpu mode: the role's count
                count = 1 if variables["repository_accelerator"] == "gpu" else variables["repository_tensorrt_llm_instances"]
            assert [(g.kind, g.count) for g in config.instance_group] == [
                (model_config_pb2.ModelInstanceGroup.Kind.Value(resolve(group["kind"], values)), int(count))], where

        steps = [(s.model_name, s.model_version, dict(s.input_map), dict(s.output_map))
                 for s in config.ensemble_scheduling.step]
        assert steps == [(s["model"], int(s.get("version", -1)), s.get("inputs", {}), s.get("outputs", {}))
                         for s in entry.get("steps", [])], where

        assert params(config) == expected_parameters(name, entry, variables), where
    assert check_ensemble(models["ensemble"], models) == []
    return contract, models


# -------------------------------------------------------------------- tests
def test_every_supported_release_has_a_contract_file():
    # Issue 9: at least 0.7.x (Triton 24.01), 0.12.x (24.08), 0.19.x and the current 1.x.
    assert {"0.7", "0.12", "0.19", "1.x"} <= set(RELEASES)
    assert [c["triton"] for c in CONTRACTS.values() if c["release"] in ("0.7", "0.12")] == ["24.01", "24.08"]
    for release, contract in CONTRACTS.items():
        assert contract["versions"] and contract["source"], release
        assert set(contract["models"]) == set(MODELS), release


@pytest.mark.parametrize("release,accelerator,decoupled,bls", TABLE,
                         ids=["%s-%s-decoupled=%r-bls=%s" % row for row in TABLE])
def test_rendered_configs_are_the_release_contract(release, accelerator, decoupled, bls):
    contract, _models = assert_matches_contract(table_vars(release, accelerator, decoupled, bls))
    assert contract["release"] == release


@pytest.mark.parametrize("release", RELEASES)
@pytest.mark.parametrize("accelerator", ["gpu", "cpu"])
def test_facts_of_the_release_hold(release, accelerator):
    """Facts of upstream's releases (issue 9), asserted apart from the recorded data."""
    _texts, models = render_all(**table_vars(release, accelerator, True, True))
    ensemble_inputs = tensors(models["ensemble"], "input")
    for client_model in ("ensemble", "tensorrt_llm_bls"):
        text_output = tensors(models[client_model], "output")["text_output"]
        # a 1-D array of batch*beam strings, at every release
        assert (type_name(text_output.data_type), list(text_output.dims)) == ("TYPE_STRING", [-1])
    assert models["tensorrt_llm"].backend == ("tensorrtllm" if accelerator == "gpu" else "python")
    for model in ("preprocessing", "postprocessing", "tensorrt_llm_bls"):
        assert models[model].backend == "python"
    assert [s.model_name for s in models["ensemble"].ensemble_scheduling.step] == [
        "preprocessing", "tensorrt_llm", "postprocessing"]
    assert type_name(ensemble_inputs["text_input"].data_type) == "TYPE_STRING"
    assert type_name(ensemble_inputs["max_tokens"].data_type) == "TYPE_INT32"

    ensemble_outputs = tensors(models["ensemble"], "output")
    if at_least(release, 0, 12):
        assert type_name(ensemble_outputs["batch_index"].data_type) == "TYPE_INT32"
        assert "DECODER_INPUT_ID" in tensors(models["preprocessing"], "output")
    else:
        assert "batch_index" not in ensemble_outputs
        assert "DECODER_INPUT_ID" not in tensors(models["preprocessing"], "output")
    if at_least(release, 0, 19):
        exclude = ensemble_inputs["exclude_input_in_output"]
        assert (type_name(exclude.data_type), exclude.optional) == ("TYPE_BOOL", True)
    else:
        assert "exclude_input_in_output" not in ensemble_inputs
    if at_least(release, 1):
        assert {"min_tokens", "seed"} <= set(ensemble_inputs)
        assert not {"min_length", "random_seed"} & set(ensemble_inputs)
        assert type_name(ensemble_inputs["seed"].data_type) == "TYPE_UINT64"
    else:
        assert {"min_length", "random_seed"} <= set(ensemble_inputs)
        assert not {"min_tokens", "seed"} & set(ensemble_inputs)
        assert type_name(ensemble_inputs["random_seed"].data_type) == "TYPE_UINT64"
    if release == "0.7":
        # 0.7's preprocessing takes no end/pad ids: the ensemble sends them to the engine itself
        assert "END_ID" not in tensors(models["preprocessing"], "input")
        step = models["ensemble"].ensemble_scheduling.step[1]
        assert (step.input_map["end_id"], step.input_map["pad_id"]) == ("end_id", "pad_id")


def _swap_first_inputs(model):
    model["inputs"][0], model["inputs"][1] = model["inputs"][1], model["inputs"][0]


MUTATIONS = {
    "dims": lambda models: models["ensemble"]["inputs"][0].update(dims=[1, -1]),
    "order": lambda models: _swap_first_inputs(models["tensorrt_llm"]),
    "optional": lambda models: models["tensorrt_llm"]["inputs"][-1].update(optional=False),
    "ragged": lambda models: models["tensorrt_llm"]["inputs"][0].update(allow_ragged_batch=False),
    "reshape": lambda models: next(t for t in models["tensorrt_llm"]["inputs"] if "reshape" in t).pop("reshape"),
    "data_type": lambda models: models["postprocessing"]["outputs"][0].update(data_type="TYPE_BYTES"),
    "missing tensor": lambda models: models["ensemble"]["outputs"].pop(),
    "step map": lambda models: models["ensemble"]["steps"][2]["outputs"].update(OUTPUT="other_output"),
    # a literal where the release has a placeholder the role leaves unset
    "parameter": lambda models: models["tensorrt_llm"]["parameters"].update(max_attention_window_size="4096"),
    "extra parameter": lambda models: models["postprocessing"]["parameters"].update(a_key="a value"),
    "decoupled": lambda models: models["tensorrt_llm_bls"].pop("decoupled"),
    "batching": lambda models: models["tensorrt_llm"].pop("dynamic_batching"),
    "instances": lambda models: models["preprocessing"]["instance_group"].update(count=2),
}


@pytest.mark.parametrize("release", RELEASES)
@pytest.mark.parametrize("mutation", sorted(MUTATIONS))
def test_a_wrong_contract_fails_the_table(release, mutation):
    """The comparison is not vacuous: a recorded contract that differs from what was rendered fails it."""
    case = table_vars(release, "cpu", True, True)
    assert_matches_contract(case, copy.deepcopy(CONTRACTS[release]))
    wrong = copy.deepcopy(CONTRACTS[release])
    MUTATIONS[mutation](wrong["models"])
    with pytest.raises(AssertionError):
        assert_matches_contract(case, wrong)


def test_decoupled_given_as_the_string_false_is_false():
    for release, accelerator, bls in itertools.product(RELEASES, ["gpu", "cpu"], [True, False]):
        as_string = render_all(**table_vars(release, accelerator, "false", bls))[1]
        as_boolean = render_all(**table_vars(release, accelerator, False, bls))[1]
        decoupled = render_all(**table_vars(release, accelerator, True, bls))[1]
        for name in ("tensorrt_llm", "tensorrt_llm_bls") if bls else ("tensorrt_llm",):
            assert as_string[name].model_transaction_policy.decoupled is False
            assert decoupled[name].model_transaction_policy.decoupled is True
        for name, config in as_string.items():
            # the same config as with a real false, but for the version policy that varies along the table
            config.ClearField("version_policy")
            as_boolean[name].ClearField("version_policy")
            assert config == as_boolean[name], (release, accelerator, bls, name)


def test_the_newest_release_without_a_version_and_a_pin_over_the_version():
    contract, _models = assert_matches_contract({})
    assert contract["release"] == NEWEST
    assert render_configs({})["ensemble"].startswith("# ")
    assert "TensorRT-LLM %s " % NEWEST in render_configs({})["ensemble"].splitlines()[0]
    contract, _models = assert_matches_contract(PINNED)
    assert contract["release"] == NEWEST != OLDEST
    assert "TensorRT-LLM %s " % NEWEST in render_configs(PINNED)["ensemble"].splitlines()[0]


@pytest.mark.parametrize("release", RELEASES)
def test_instance_counts_and_queue_settings(release):
    _contract, models = assert_matches_contract(instances_cpu(release))
    assert models["preprocessing"].instance_group[0].count == 3
    assert models["postprocessing"].instance_group[0].count == 2
    assert models["tensorrt_llm_bls"].instance_group[0].count == 4
    assert models["tensorrt_llm"].instance_group[0].count == 5
    batching = models["tensorrt_llm"].dynamic_batching
    assert batching.max_queue_delay_microseconds == 250
    # the queue limit is a setting of the releases whose config has it (0.12 and later)
    if at_least(release, 0, 12):
        assert batching.default_queue_policy.max_queue_size == 64
    else:
        assert not batching.HasField("default_queue_policy")
    # gpu: the tensorrtllm backend manages the GPUs, one KIND_CPU instance
    _contract, gpu = assert_matches_contract(instances_gpu(release))
    assert [(g.kind, g.count) for g in gpu["tensorrt_llm"].instance_group] == [(KIND_CPU, 1)]
    assert not any(config.HasField("dynamic_batching") for config in gpu.values())


def test_null_parameters_are_left_out():
    engine = params(parse(render("tensorrt_llm")))
    defaults = role_defaults()["repository_tensorrt_llm_parameter_defaults"]
    release = CONTRACTS[NEWEST]["models"]["tensorrt_llm"]["parameters"]
    for key, value in defaults.items():
        if value is None and PLACEHOLDER.match(str(release.get(key, "${absent}"))):
            assert key not in engine, key
    # what the release writes literally stands where the role has no value
    assert engine["executor_worker_path"] == release["executor_worker_path"]
    assert engine["kv_cache_free_gpu_mem_fraction"] == "0.9"
    assert engine["normalize_log_probs"] == "true"
    assert engine["batch_scheduler_policy"] == "guaranteed_no_evict"
    # no engine directory given: the path is left out, not rendered empty
    assert "gpt_model_path" not in engine


def test_defaults_keys_a_release_lacks_are_not_rendered():
    newest = {name: params(parse(text)) for name, text in render_configs({}).items()}
    oldest = {name: params(parse(text)) for name, text in render_configs(OLDEST_DEFAULTS).items()}
    # enable_trt_overlap is a 0.7 parameter; later releases' backends do not know it
    assert oldest["tensorrt_llm"]["enable_trt_overlap"] == "false"
    assert "enable_trt_overlap" not in newest["tensorrt_llm"]
    # tokenizer_type left upstream's preprocessing after 0.7
    assert oldest["preprocessing"]["tokenizer_type"] == "auto"
    assert "tokenizer_type" not in newest["preprocessing"]
    # the role's own keys that no release has stay out
    for configs in (newest, oldest):
        assert "trust_remote_code" not in configs["preprocessing"]
        assert "vocab_size" not in configs["preprocessing"]


@pytest.mark.parametrize("release", [OLDEST, NEWEST])
@pytest.mark.parametrize("model", sorted(UPSTREAM_PARAMETERS))
def test_every_upstream_parameter_is_settable(release, model):
    """A key the user gives is rendered, whether the release in use has it or not."""
    overrides = upstream_parameter_case(release, model)
    values = overrides[PARAMETER_VARIABLE[model]]
    rendered = params(parse(render(model, **overrides)))
    assert {key: rendered.get(key) for key in values} == values
    assert_matches_contract(overrides)


def test_parameter_values_render_as_triton_strings():
    engine = params(parse(render("tensorrt_llm", **PARAMETER_STRINGS_ENGINE)))
    assert engine["gpu_device_ids"] == "0,1"
    assert engine["enable_kv_cache_reuse"] == "true"
    assert engine["kv_cache_free_gpu_mem_fraction"] == "0.5"
    assert engine["max_tokens_in_paged_kv_cache"] == "4096"
    # null in the user's dict: the role's default stands
    assert engine["batch_scheduler_policy"] == "guaranteed_no_evict"
    assert engine["medusa_choices"] == '{0, 0}, {0, 1} "quoted" \\ back'
    assert engine["a_future_parameter"] == "x"
    assert engine["gpt_model_path"] == "/srv/engines/llama"
    pre = params(parse(render("preprocessing", **PARAMETER_STRINGS_PREPROCESSING)))
    assert pre["tokenizer_type"] == "llama"
    assert pre["add_special_tokens"] == "false"
    assert pre["tokenizer_dir"] == "/srv/tokenizers/llama"
    assert_matches_contract(PARAMETER_STRINGS_ENGINE)
    assert_matches_contract(PARAMETER_STRINGS_PREPROCESSING)


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
    assert defaults["repository_trtllm_version"] == variables["tritonfleet_trtllm_version"] == ""
    assert defaults["repository_contract"] == ""
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


@pytest.mark.parametrize("release", RELEASES)
def test_ensemble_check_catches_miswiring(release):
    _unused, models = render_all(**table_vars(release, "cpu", True, False))
    ensemble = models["ensemble"]
    step = ensemble.ensemble_scheduling.step[1]
    step.input_map["runtime_top_k"] = "top_p"  # FP32 into INT32
    del step.input_map["input_lengths"]
    del step.input_map["beam_width"]
    problems = check_ensemble(ensemble, models)
    assert any("top_p" in p and "runtime_top_k" in p for p in problems)
    assert any("required input input_lengths" in p for p in problems)
    assert "ensemble input beam_width is not used by any step" in problems
    models["ensemble"].output.add(name="not_produced", data_type=DT.Value("TYPE_INT32"), dims=[1])
    assert "ensemble output not_produced is produced by no step" in check_ensemble(ensemble, models)


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
    # text_output is 1-D, batch * beam strings, as upstream's postprocessing answers at every release
    assert decoded["OUTPUT"].shape == (3,)
    assert [t.decode("utf-8") for t in decoded["OUTPUT"]] == SENTENCES[:3]
    assert decoded["OUT_OUTPUT_LOG_PROBS"].dtype == np.float32


def test_streamed_pieces_decode_one_by_one(preprocessor, postprocessor):
    text = SENTENCES[3]
    ids = preprocessor.tokenizer.encode(text)
    pieces = []
    for token in ids:  # a streaming response carries only its new token
        out = postprocessor({"TOKENS_BATCH": np.array([[[token]]], dtype=np.int32),
                             "SEQUENCE_LENGTH": np.array([[1]], dtype=np.int32)})
        pieces.append(out["OUTPUT"][0].decode("utf-8"))
    assert "".join(pieces) == text
    # sequence_length larger than the piece (total length) never reads past it
    out = postprocessor({"TOKENS_BATCH": np.array([[[ids[0]]]], dtype=np.int32),
                         "SEQUENCE_LENGTH": np.array([[40]], dtype=np.int32)})
    assert out["OUTPUT"][0].decode() == preprocessor.tokenizer.decode([ids[0]])


def test_special_tokens_are_skipped(postprocessor, preprocessor):
    ids = preprocessor.tokenizer.encode("Hello world") + [preprocessor.end_id]
    out = postprocessor({"TOKENS_BATCH": np.array([[ids]], dtype=np.int32)})
    assert out["OUTPUT"].tolist() == [b"Hello world"]


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


@pytest.mark.parametrize("release", RELEASES)
def test_execute_answers_each_request_and_never_raises(release, pre_module, post_module, tokenizer_dir, monkeypatch):
    fake = FakePbUtils()
    preprocessing = CONTRACTS[release]["models"]["preprocessing"]
    # the config Triton hands the model: the release's tensors; a text request gets the text outputs the
    # release declares (a prompt table or image features only go out when such inputs came in)
    text_outputs = {"INPUT_ID", "REQUEST_INPUT_LEN", "DECODER_INPUT_ID", "REQUEST_DECODER_INPUT_LEN", "BAD_WORDS_IDS",
                    "STOP_WORDS_IDS", "EMBEDDING_BIAS", "REQUEST_OUTPUT_LEN", "OUT_END_ID", "OUT_PAD_ID"}
    outputs = [t["name"] for t in preprocessing["outputs"] if t["name"] in text_outputs]
    assert {"INPUT_ID", "REQUEST_INPUT_LEN", "REQUEST_OUTPUT_LEN"} <= set(outputs)
    config = json.loads(json.dumps({
        "parameters": {"tokenizer_dir": {"string_value": str(tokenizer_dir)}},
        "input": [{"name": t["name"], "data_type": t["data_type"]} for t in preprocessing["inputs"]],
        "output": [{"name": t["name"], "data_type": t["data_type"]} for t in preprocessing["outputs"]],
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
    assert sorted(t.name for t in responses[0].output_tensors) == sorted(outputs)
    assert "REQUEST_OUTPUT_LEN" in responses[1].error.message

    monkeypatch.setattr(post_module, "pb_utils", fake)
    post = post_module.TritonPythonModel()
    post.initialize({"model_config": json.dumps({"parameters": config["parameters"]})})
    responses = post.execute([{"TOKENS_BATCH": fake.Tensor("TOKENS_BATCH", np.array([[[1, 2]]]))},
                              {"TOKENS_BATCH": fake.Tensor("TOKENS_BATCH", np.zeros((1, 1, 1, 1, 1)))}])
    assert responses[0].error is None
    assert [t.value.shape for t in responses[0].output_tensors if t.name == "OUTPUT"] == [(1,)]
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
                           "sequence_length": np.array([[1]], dtype=np.int32),
                           "cum_log_probs": np.array([[-0.5]], dtype=np.float32),
                           "output_log_probs": np.array([[[-0.5]]], dtype=np.float32)}
                yield {}  # the final, empty response
            else:
                yield {"output_ids": ids.reshape(1, 1, -1).astype(np.int32),
                       "sequence_length": np.array([[len(ids)]], dtype=np.int32),
                       "cum_log_probs": np.array([[-1.5]], dtype=np.float32),
                       "output_log_probs": np.full((1, 1, len(ids)), -0.25, dtype=np.float32)}
        else:
            yield postprocessor(inputs)

    request = {"text_input": strings(text), "max_tokens": np.array([[16]], dtype=np.int32)}
    whole = list(bls_module.Pipeline(call).run(request))
    assert [r["text_output"].tolist() for r in whole] == [[text.encode()]]
    # the log-probs are the engine's, passed through
    assert set(whole[0]) == {"text_output", "cum_log_probs", "output_log_probs"}
    assert whole[0]["cum_log_probs"].tolist() == [[-1.5]]

    streaming = dict(request, stream=np.array([[True]]))
    accumulated = list(bls_module.Pipeline(call, accumulate=True).run(streaming))
    assert accumulated[-1]["text_output"].tolist() == [text.encode()]
    assert len(accumulated) == len(preprocessor.tokenizer.encode(text))
    pieces = list(bls_module.Pipeline(call, accumulate=False).run(streaming))
    assert len(pieces) == len(accumulated)
    with pytest.raises(ValueError, match="decoupled"):
        list(bls_module.Pipeline(call, decoupled=False).run(streaming))
    with pytest.raises(ValueError, match="max_tokens"):
        list(bls_module.Pipeline(call).run({"text_input": strings(text)}))


@pytest.mark.parametrize("release", RELEASES)
def test_bls_tables_match_the_rendered_configs(release, bls_module):
    _unused, models = render_all(**table_vars(release, "cpu", True, True))
    bls_inputs = set(tensors(models["tensorrt_llm_bls"], "input"))
    engine_inputs = set(tensors(models["tensorrt_llm"], "input"))
    engine_outputs = set(tensors(models["tensorrt_llm"], "output"))
    pre_inputs = set(tensors(models["preprocessing"], "input"))
    pre_outputs = set(tensors(models["preprocessing"], "output"))
    # every input of the release's BLS is taken somewhere (or refused by name: a draft model is not served)
    handled = set(bls_module.CLIENT_TO_PREPROCESSING) | set(bls_module.CLIENT_TO_ENGINE) | set(bls_module.DRAFT_INPUTS)
    assert bls_inputs - handled == set()
    for client, target in bls_module.CLIENT_TO_ENGINE.items():
        if client in bls_inputs:
            assert target in engine_inputs, (client, target)
    # image and video inputs need a multimodal encoder, which is not served: such a request fails either way
    multimodal = ("image_input", "image_bytes_input", "image_url_input", "image_sizes_input", "video_bytes_input")
    for client, target in bls_module.CLIENT_TO_PREPROCESSING.items():
        if client in multimodal:
            continue
        if client in bls_inputs and target in ("END_ID", "PAD_ID"):
            # 0.7's preprocessing has no END_ID/PAD_ID: the BLS sends them to the engine itself
            assert target in pre_inputs or client in engine_inputs, (client, target)
        elif client in bls_inputs:
            assert target in pre_inputs, (client, target)
    for output, target in bls_module.PREPROCESSING_TO_ENGINE.items():
        if output in pre_outputs:
            assert target in engine_inputs, (output, target)
    assert set(bls_module.ENGINE_TO_POSTPROCESSING.values()) <= set(tensors(models["postprocessing"], "input"))
    # text_output comes from postprocessing; every other output is the engine's of the same name
    assert set(tensors(models["tensorrt_llm_bls"], "output")) - {"text_output"} <= engine_outputs
    # the ensemble forwards client inputs to the engine as the BLS model does
    step = models["ensemble"].ensemble_scheduling.step[1]
    ensemble_inputs = set(tensors(models["ensemble"], "input"))
    forwarded = {v: k for k, v in step.input_map.items() if v in ensemble_inputs}
    direct = {name: name for name in ("end_id", "pad_id")}
    for client, target in forwarded.items():
        assert bls_module.CLIENT_TO_ENGINE.get(client, direct.get(client)) == target, (client, target)


def test_python_models_import_without_triton():
    if "triton_python_backend_utils" in sys.modules:
        pytest.skip("the Triton utilities are importable here")
    for relative in ("preprocessing/model.py", "postprocessing/model.py", "tensorrt_llm_bls/model.py"):
        module = load_module(relative, "tritonfleet_probe_" + relative.split("/", maxsplit=1)[0])
        assert module.pb_utils is None
        assert hasattr(module, "TritonPythonModel")
