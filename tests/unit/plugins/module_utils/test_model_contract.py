"""Unit tests of module_utils/model_contract: picking a release's contract, filling placeholders, rendering a config.

The contracts here are small ones written for the tests; the real ones (roles/repository/files/contracts)
are rendered through the role and compared in tests/unit/roles/test_model_contracts.py.
"""

import copy

import pytest
from google.protobuf import text_format
from tritonclient.grpc import model_config_pb2

from ansible_collections.tritonfleet.serving.plugins.module_utils.model_contract import (
    ContractError, contract_for_version, effective_parameters, fill_placeholders, format_value, placeholder_values_for,
    placeholders, release_key, release_matches, render_model_config, version_policy_text)

# Listed out of order on purpose: the order of the files is no order of releases.
CONTRACTS = [
    {"release": "0.12", "versions": ["0.12"], "triton": "24.08", "models": {}},
    {"release": "1.x", "versions": ["1"], "triton": "25.12", "models": {}},
    {"release": "0.7", "versions": ["0.7"], "triton": "24.01", "models": {}},
    {"release": "0.19", "versions": ["0.19"], "triton": "25.05", "models": {}},
]


def by_release(name):
    return next(c for c in CONTRACTS if c["release"] == name)


# ------------------------------------------------------------------ versions
@pytest.mark.parametrize("prefixes,version", [
    (["0.7"], "0.7"), (["0.7"], "0.7.1"), (["0.7"], " 0.7.1 "), (["0.12"], "0.12.0"), (["0.19"], "0.19.0"),
    (["1"], "1"), (["1"], "1.0.0"), (["1"], "1.0.0rc3"), (["1"], "1.2.0"), (["1.0"], "1.0rc1"),
    (["1.0"], "1.0.dev5"), (["0.7", "0.8"], "0.8.0"),
])
def test_release_matches_the_versions_its_prefixes_cover(prefixes, version):
    assert release_matches({"versions": prefixes}, version) is True


@pytest.mark.parametrize("prefixes,version", [
    (["0.7"], "0.71"), (["0.7"], "0.70.1"), (["0.7"], "0.17.0"), (["0.1"], "0.12.0"), (["1"], "10.0.0"),
    (["1"], "0.1.0"), (["1"], "11"), (["0.7"], ""), (["0.7"], None), ([], "0.7.1"), (None, "0.7.1"),
])
def test_release_matches_nothing_else(prefixes, version):
    assert release_matches({"versions": prefixes}, version) is False


def test_releases_order_by_number_not_by_text():
    assert sorted(["1.x", "0.19", "0.7", "0.12"], key=release_key) == ["0.7", "0.12", "0.19", "1.x"]


@pytest.mark.parametrize("version,release", [
    ("0.7.1", "0.7"), ("0.12.0", "0.12"), ("0.19.0", "0.19"), ("1.0.0rc3", "1.x"), ("1.1.0", "1.x"),
])
def test_contract_for_version(version, release):
    assert contract_for_version(CONTRACTS, version)["release"] == release


@pytest.mark.parametrize("version", ["", None, "  "])
def test_an_empty_version_takes_the_newest_release(version):
    assert contract_for_version(CONTRACTS, version)["release"] == "1.x"


def test_a_pinned_release_wins_over_the_version():
    assert contract_for_version(CONTRACTS, "0.7.1", pinned="0.12")["release"] == "0.12"
    assert contract_for_version(CONTRACTS, "", pinned="0.7")["release"] == "0.7"
    with pytest.raises(ContractError) as error:
        contract_for_version(CONTRACTS, "0.7.1", pinned="0.8")
    assert "repository_contract '0.8'" in str(error.value)
    assert "0.7 (24.01), 0.12 (24.08), 0.19 (25.05), 1.x (25.12)" in str(error.value)


def test_an_unknown_version_names_the_variable_and_the_known_releases():
    with pytest.raises(ContractError) as error:
        contract_for_version(CONTRACTS, "0.9.0")
    message = str(error.value)
    assert "tritonfleet_trtllm_version '0.9.0'" in message
    # every known release with its Triton release, oldest first, and the way out
    assert "known releases: 0.7 (24.01), 0.12 (24.08), 0.19 (25.05), 1.x (25.12)" in message
    assert "repository_contract" in message


def test_no_contracts_at_all():
    with pytest.raises(ContractError, match="no contracts"):
        contract_for_version([], "0.7.1")


def test_picking_leaves_the_contracts_untouched():
    before = copy.deepcopy(CONTRACTS)
    contract_for_version(CONTRACTS, "")
    assert CONTRACTS == before


# ------------------------------------------------------------- placeholders
def test_placeholders_in_order_of_first_appearance():
    text = 'a: "${b}" c: ${a} ${b} ${not-a-name} $x {y} ${_z9}'
    assert placeholders(text) == ["b", "a", "_z9"]
    assert placeholders("nothing here") == []


@pytest.mark.parametrize("value,text", [
    (True, "true"), (False, "false"), ([0, 1], "0,1"), ((2, 3), "2,3"), ([True, 1, "x"], "true,1,x"),
    (0.9, "0.9"), (4096, "4096"), (0, "0"), ("auto", "auto"), ('{0, 0} "q"', '{0, 0} "q"'),
])
def test_values_are_written_as_fill_template_writes_them(value, text):
    assert format_value(value) == text


def test_fill_placeholders_reports_what_it_cannot_fill():
    text = "${a} ${b} ${c} ${d} ${a} ${e} ${f} ${g}"
    filled, unfilled = fill_placeholders(text, {"a": 1, "b": None, "c": "", "e": False, "f": [1, 2], "g": 0})
    # None, empty and missing are left in place (as fill_template.py leaves them) and reported once each
    assert filled == "1 ${b} ${c} ${d} 1 false 1,2 0"
    assert unfilled == ["b", "c", "d"]
    assert fill_placeholders("no placeholders", {}) == ("no placeholders", [])


# ------------------------------------------------------------- parameters
def test_effective_parameters_order_of_precedence():
    release = {
        "explicit_wins": "${p1}", "default_wins": "${p2}", "literal": "upstream", "placeholder": "${p4}",
        "unset": "${p5}", "explicit_over_literal": "upstream", "empty_explicit": "${p7}",
    }
    defaults = {"explicit_wins": "default", "default_wins": True, "placeholder": None, "unset": None,
                "empty_explicit": 3, "only_in_defaults": "dropped"}
    explicit = {"explicit_wins": "mine", "explicit_over_literal": [0, 1], "empty_explicit": "",
                "default_wins": None, "user_key": False, "user_null": None}
    values = {"p1": "v1", "p2": "v2", "p4": 0.5, "p5": None}
    result = effective_parameters(release, defaults, explicit, values)
    assert result == {
        "explicit_wins": "mine",
        "default_wins": "true",            # a null explicit value falls through to the role's default
        "literal": "upstream",             # what the release writes literally
        "placeholder": "0.5",              # the placeholder's value when nothing else is set
        "explicit_over_literal": "0,1",
        "empty_explicit": "3",
        "user_key": "false",               # a key the release lacks but the user gave is kept
    }
    # the release's parameters first, in its order; the user's own keys after them
    assert list(result) == ["explicit_wins", "default_wins", "literal", "placeholder", "explicit_over_literal",
                            "empty_explicit", "user_key"]


def test_effective_parameters_of_a_model_without_parameters():
    assert effective_parameters(None, {"a": 1}, {}, {}) == {}
    assert effective_parameters({}, {}, {"b": "x"}, {}) == {"b": "x"}


def test_placeholder_values_for_a_release():
    contract = {"models": {
        "tensorrt_llm": {"parameters": {"gpt_model_type": "${batching_strategy}", "max_beam_width": "${max_beam_width}",
                                        "literal": "x", "unset": "${unset}", "embedded": "a ${embedded}"}},
        "preprocessing": {"parameters": {"add_special_tokens": "${add_special_tokens}"}},
    }}
    values = placeholder_values_for(
        contract, {"triton_max_batch_size": 8, "max_beam_width": 2},
        {"tensorrt_llm": {"gpt_model_type": "inflight_fused_batching", "max_beam_width": 1},
         "preprocessing": {"add_special_tokens": True}},
        {"preprocessing": {"add_special_tokens": False}})
    assert values["triton_max_batch_size"] == 8
    assert values["max_beam_width"] == 2  # a structural value is not replaced by a parameter's
    assert values["batching_strategy"] == "inflight_fused_batching"
    assert values["add_special_tokens"] is False  # the user's value over the role's default
    assert values.get("unset") is None
    assert "embedded" not in values


# ---------------------------------------------------------------- rendering
MODEL = {
    "backend": "${triton_backend}",
    "max_batch_size": "${triton_max_batch_size}",
    "decoupled": "${decoupled_mode}",
    "dynamic_batching": {
        "preferred_batch_size": ["${triton_max_batch_size}"],
        "max_queue_delay_microseconds": "${max_queue_delay_microseconds}",
        "default_queue_policy": {"max_queue_size": "${max_queue_size}"},
    },
    "inputs": [
        {"name": "input_ids", "data_type": "TYPE_INT32", "dims": [-1], "allow_ragged_batch": True},
        {"name": "input_lengths", "data_type": "TYPE_INT32", "dims": [1], "reshape": []},
        {"name": "draft_logits", "data_type": "${logits_datatype}", "dims": [-1, -1], "optional": True},
    ],
    "outputs": [{"name": "output_ids", "data_type": "TYPE_INT32", "dims": [-1, -1]}],
    "instance_group": {"count": 1, "kind": "KIND_CPU"},
    "parameters": {"gpt_model_path": "${engine_dir}", "literal": "no", "left_out": "${nothing}"},
}
VALUES = {"triton_backend": "tensorrtllm", "triton_max_batch_size": 4, "decoupled_mode": "false",
          "max_queue_delay_microseconds": 100, "max_queue_size": 0, "logits_datatype": "TYPE_FP32",
          "engine_dir": "/srv/engine"}


def parse(text):
    return text_format.Parse(text, model_config_pb2.ModelConfig())


def test_render_model_config_writes_the_contract():
    text = render_model_config("tensorrt_llm", MODEL, dict(VALUES, version_policy={"latest": {"num_versions": 2}}),
                               header="made from a test contract")
    assert text.startswith("# made from a test contract\n")
    config = parse(text)
    assert (config.name, config.backend, config.max_batch_size) == ("tensorrt_llm", "tensorrtllm", 4)
    assert config.model_transaction_policy.decoupled is False  # "false" as a string is false
    assert config.version_policy.latest.num_versions == 2
    assert list(config.dynamic_batching.preferred_batch_size) == [4]
    assert config.dynamic_batching.max_queue_delay_microseconds == 100
    assert not config.dynamic_batching.HasField("default_queue_policy")  # 0: no limit
    assert [(t.name, model_config_pb2.DataType.Name(t.data_type), list(t.dims), t.optional, t.allow_ragged_batch)
            for t in config.input] == [("input_ids", "TYPE_INT32", [-1], False, True),
                                       ("input_lengths", "TYPE_INT32", [1], False, False),
                                       ("draft_logits", "TYPE_FP32", [-1, -1], True, False)]
    assert config.input[1].HasField("reshape") and list(config.input[1].reshape.shape) == []
    assert not config.input[0].HasField("reshape")
    assert [(g.kind, g.count) for g in config.instance_group] == [(model_config_pb2.ModelInstanceGroup.KIND_CPU, 1)]
    rendered = {k: v.string_value for k, v in config.parameters.items()}
    assert rendered == {"gpt_model_path": "/srv/engine", "literal": "no"}


def test_render_model_config_settings_over_the_release():
    values = dict(VALUES, tensorrt_llm_backend="python", tensorrt_llm_instance_count=3, max_queue_size=64,
                  decoupled_mode=True)
    config = parse(render_model_config("tensorrt_llm", MODEL, values, {"literal": "yes"}, {"user": [1, 2]}))
    assert config.backend == "python"  # cpu mode
    assert config.instance_group[0].count == 3
    assert config.dynamic_batching.default_queue_policy.max_queue_size == 64
    assert config.model_transaction_policy.decoupled is True
    assert {k: v.string_value for k, v in config.parameters.items()} == {
        "gpt_model_path": "/srv/engine", "literal": "no", "user": "1,2"}  # the release's literal beats a role default
    assert not parse(render_model_config("tensorrt_llm", MODEL, dict(VALUES, dynamic_batching="false"))).HasField(
        "dynamic_batching")
    # no version_policy value: Triton's default, nothing written
    assert not parse(render_model_config("tensorrt_llm", MODEL, VALUES)).HasField("version_policy")


def test_render_model_config_quotes_strings():
    model = dict(MODEL, parameters={"medusa_choices": "${m}"})
    config = parse(render_model_config("tensorrt_llm", model, dict(VALUES, m='{0, 0} "q" \\ back\nline')))
    assert config.parameters["medusa_choices"].string_value == '{0, 0} "q" \\ back\nline'


def test_an_ensemble_renders_its_steps_in_order():
    ensemble = {
        "platform": "ensemble", "max_batch_size": "${triton_max_batch_size}",
        "inputs": [{"name": "text_input", "data_type": "TYPE_STRING", "dims": [-1]}],
        "outputs": [{"name": "text_output", "data_type": "TYPE_STRING", "dims": [-1]}],
        "steps": [{"model": "preprocessing", "version": -1, "inputs": {"QUERY": "text_input"},
                   "outputs": {"INPUT_ID": "_INPUT_ID"}},
                  {"model": "postprocessing", "inputs": {"TOKENS_BATCH": "_INPUT_ID"}, "outputs": {"OUTPUT": "text_output"}}],
    }
    config = parse(render_model_config("ensemble", ensemble, VALUES))
    assert config.platform == "ensemble" and not config.backend
    assert [(s.model_name, s.model_version, dict(s.input_map), dict(s.output_map))
            for s in config.ensemble_scheduling.step] == [
        ("preprocessing", -1, {"QUERY": "text_input"}, {"INPUT_ID": "_INPUT_ID"}),
        ("postprocessing", -1, {"TOKENS_BATCH": "_INPUT_ID"}, {"OUTPUT": "text_output"})]
    assert not config.HasField("model_transaction_policy") and not config.instance_group


def test_a_placeholder_without_value_is_an_error_that_names_it():
    values = dict(VALUES)
    del values["logits_datatype"]
    with pytest.raises(ContractError) as error:
        render_model_config("tensorrt_llm", MODEL, values)
    assert "${logits_datatype}" in str(error.value)
    assert "draft_logits" in str(error.value)  # and where it is
    values = dict(VALUES, triton_max_batch_size=None)
    with pytest.raises(ContractError, match=r"no value for \$\{triton_max_batch_size\}"):
        render_model_config("tensorrt_llm", MODEL, values)


def test_a_decoupled_value_that_is_no_boolean_is_an_error():
    with pytest.raises(ContractError, match="'maybe' is not a boolean"):
        render_model_config("tensorrt_llm", MODEL, dict(VALUES, decoupled_mode="maybe"))


@pytest.mark.parametrize("policy,text", [
    ({"latest": {"num_versions": 1}}, "version_policy: { latest: { num_versions: 1 } }"),
    ({"specific": {"versions": [1, "3"]}}, "version_policy: { specific: { versions: [ 1, 3 ] } }"),
    ({"all": {}}, "version_policy: { all: { } }"),
])
def test_version_policies(policy, text):
    assert version_policy_text(policy) == text
    config = parse("name: \"m\"\n" + text)
    assert config.version_policy.WhichOneof("policy_choice") == next(iter(policy))
