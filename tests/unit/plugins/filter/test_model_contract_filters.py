"""The filters that pick a release's contract and render model configurations from it (filter/model_contract.py)."""

import pytest
from ansible.errors import AnsibleFilterError
from google.protobuf import text_format
from tritonclient.grpc import model_config_pb2

from ansible_collections.tritonfleet.serving.plugins.filter import model_contract as filters
from ansible_collections.tritonfleet.serving.plugins.lookup.trtllm_contracts import load_contracts

CONTRACTS = [
    {"release": "0.7", "versions": ["0.7"], "triton": "24.01", "models": {}},
    {"release": "1.x", "versions": ["1"], "triton": "25.12", "models": {}},
]
MODEL = {
    "backend": "python", "max_batch_size": "${triton_max_batch_size}", "decoupled": "${decoupled_mode}",
    "inputs": [{"name": "QUERY", "data_type": "TYPE_STRING", "dims": [-1]}],
    "outputs": [{"name": "OUTPUT", "data_type": "${output_type}", "dims": [-1]}],
    "parameters": {"tokenizer_dir": "${tokenizer_dir}", "skip_special_tokens": "${skip_special_tokens}"},
}


def test_the_filters_are_registered():
    assert set(filters.FilterModule().filters()) >= {
        "trtllm_contract", "trtllm_contract_problem", "model_config_pbtxt", "contract_placeholder_values",
        "fill_placeholders"}


def test_trtllm_contract_picks_the_release():
    assert filters.trtllm_contract(CONTRACTS, "0.7.1")["release"] == "0.7"
    assert filters.trtllm_contract(CONTRACTS, "")["release"] == "1.x"
    assert filters.trtllm_contract(CONTRACTS, "0.7.1", "1.x")["release"] == "1.x"


def test_trtllm_contract_refuses_an_unknown_release():
    with pytest.raises(AnsibleFilterError) as error:
        filters.trtllm_contract(CONTRACTS, "0.9.0")
    assert "tritonfleet_trtllm_version '0.9.0'" in str(error.value)
    assert "0.7 (24.01), 1.x (25.12)" in str(error.value)
    with pytest.raises(AnsibleFilterError, match="repository_contract '0.8'"):
        filters.trtllm_contract(CONTRACTS, "0.7.1", "0.8")


def test_trtllm_contract_problem_is_empty_or_the_message():
    assert filters.trtllm_contract_problem(CONTRACTS, "1.0.0rc3") == ""
    assert filters.trtllm_contract_problem(CONTRACTS, "") == ""
    problem = filters.trtllm_contract_problem(CONTRACTS, "0.9.0")
    assert "tritonfleet_trtllm_version" in problem and "0.7 (24.01)" in problem
    assert "repository_contract '2'" in filters.trtllm_contract_problem(CONTRACTS, "", "2")


def test_every_known_version_has_a_contract_and_others_none():
    contracts = load_contracts()
    for version in ("0.7.1", "0.12.0", "0.19.0", "1.0.0", "1.0.0rc3"):
        assert filters.trtllm_contract_problem(contracts, version) == "", version
    for version in ("0.8.0", "0.11.0", "0.20.0", "2.0.0"):
        assert "tritonfleet_trtllm_version '%s'" % version in filters.trtllm_contract_problem(contracts, version)


def test_model_config_pbtxt_renders():
    text = filters.model_config_pbtxt(
        MODEL, "postprocessing",
        {"triton_max_batch_size": 2, "decoupled_mode": True, "output_type": "TYPE_STRING", "tokenizer_dir": "/tok"},
        {"skip_special_tokens": True}, None, "a header")
    assert text.startswith("# a header\n")
    config = text_format.Parse(text, model_config_pb2.ModelConfig())
    assert config.max_batch_size == 2 and config.model_transaction_policy.decoupled
    rendered = {k: v.string_value for k, v in config.parameters.items()}
    assert rendered == {"tokenizer_dir": "/tok", "skip_special_tokens": "true"}


def test_model_config_pbtxt_errors_name_the_model_and_the_placeholder():
    with pytest.raises(AnsibleFilterError) as error:
        filters.model_config_pbtxt(MODEL, "postprocessing", {"triton_max_batch_size": 2, "decoupled_mode": False})
    assert "cannot render postprocessing's config.pbtxt" in str(error.value)
    assert "${output_type}" in str(error.value)
    with pytest.raises(AnsibleFilterError, match="not a boolean"):
        filters.model_config_pbtxt(MODEL, "postprocessing", {"triton_max_batch_size": 2, "decoupled_mode": "sometimes",
                                                             "output_type": "TYPE_STRING"})
    with pytest.raises(AnsibleFilterError, match="cannot render postprocessing"):
        filters.model_config_pbtxt(MODEL, "postprocessing", {"triton_max_batch_size": "eight", "decoupled_mode": True,
                                                             "output_type": "TYPE_STRING"})


def test_contract_placeholder_values():
    contract = {"models": {"postprocessing": MODEL}}
    values = filters.contract_placeholder_values(contract, {"tokenizer_dir": "/tok"},
                                                 {"postprocessing": {"skip_special_tokens": True}})
    assert values == {"tokenizer_dir": "/tok", "skip_special_tokens": True}
    assert filters.contract_placeholder_values(contract, {"a": 1}) == {"a": 1}


def test_fill_placeholders_filter():
    result = filters.fill_placeholders('key: "${a}" other: "${b}" again: ${a}', {"a": [1, 2]})
    assert result == {"text": 'key: "1,2" other: "${b}" again: 1,2', "unfilled": ["b"], "used": ["a"]}
