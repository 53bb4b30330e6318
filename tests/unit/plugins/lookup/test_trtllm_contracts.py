"""The lookup that reads the releases' contract files (lookup/trtllm_contracts.py)."""

import os
import pathlib

import pytest
import yaml
from ansible.errors import AnsibleLookupError

from ansible_collections.tritonfleet.serving.plugins.lookup import trtllm_contracts
from ansible_collections.tritonfleet.serving.plugins.lookup.trtllm_contracts import LookupModule, load_contracts

CONTRACT_DIR = pathlib.Path(__file__).resolve().parents[4] / "roles" / "repository" / "files" / "contracts"


def test_every_file_is_read_oldest_release_first():
    contracts = load_contracts()
    files = sorted(path.stem for path in CONTRACT_DIR.glob("*.yml"))
    assert sorted(c["release"] for c in contracts) == files
    releases = [c["release"] for c in contracts]
    assert releases[:3] == ["0.7", "0.12", "0.19"] and releases[-1] == "1.x"
    for contract in contracts:
        assert {"release", "versions", "triton", "source", "models"} <= set(contract), contract["release"]


def test_the_lookup_returns_all_or_the_named_releases():
    lookup = LookupModule()
    assert [c["release"] for c in lookup.run([])] == [c["release"] for c in load_contracts()]
    assert [c["release"] for c in lookup.run(["1.x", "0.7"])] == ["1.x", "0.7"]
    with pytest.raises(AnsibleLookupError) as error:
        lookup.run(["0.7", "0.8"])
    assert "unknown releases 0.8" in str(error.value) and "0.12" in str(error.value)


def write(path, data):
    path.write_text(yaml.safe_dump(data))


def test_a_new_file_is_a_new_release(tmp_path):
    write(tmp_path / "0.7.yml", {"release": "0.7", "versions": ["0.7"], "models": {}})
    write(tmp_path / "0.10.yml", {"release": "0.10", "versions": ["0.10"], "models": {}})
    (tmp_path / "README.md").write_text("not a contract")
    assert [c["release"] for c in load_contracts(str(tmp_path))] == ["0.7", "0.10"]


def test_a_file_that_is_no_contract_is_an_error(tmp_path):
    write(tmp_path / "0.7.yml", {"versions": ["0.7"], "models": {}})
    with pytest.raises(AnsibleLookupError, match="0.7.yml is not a contract file"):
        load_contracts(str(tmp_path))


def test_a_changed_file_is_read_again(tmp_path):
    path = tmp_path / "0.7.yml"
    write(path, {"release": "0.7", "versions": ["0.7"], "triton": "24.01", "models": {}})
    assert load_contracts(str(tmp_path))[0]["triton"] == "24.01"
    write(path, {"release": "0.7", "versions": ["0.7"], "triton": "24.02", "models": {}})
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000))  # a new mtime even on a coarse clock
    assert load_contracts(str(tmp_path))[0]["triton"] == "24.02"


def test_the_lookup_reports_an_unreadable_directory(monkeypatch, tmp_path):
    monkeypatch.setattr(trtllm_contracts, "CONTRACT_DIR", str(tmp_path / "missing"))
    monkeypatch.setattr(trtllm_contracts.load_contracts, "__defaults__", (str(tmp_path / "missing"),))
    with pytest.raises(AnsibleLookupError, match="cannot read the contracts"):
        LookupModule().run([])
