from ansible_collections.tritonfleet.serving.tests.unit.utils.ansible_module_harness import run_module

from ansible_collections.tritonfleet.serving.plugins.modules import path_digest


def digest(paths):
    res = run_module(path_digest.main, {"paths": [str(p) for p in paths]})
    assert not res.failed and not res.result["changed"]
    return res.result


def test_digest_follows_contents_of_trees_and_files(tmp_path):
    repo = tmp_path / "repo"
    (repo / "ensemble").mkdir(parents=True)
    (repo / "ensemble" / "config.pbtxt").write_text("a")
    single = tmp_path / "tokenizer.json"
    single.write_text("t")
    first = digest([repo, single])["digest"]
    assert digest([repo, single])["digest"] == first
    (repo / "ensemble" / "__pycache__").mkdir()
    (repo / "ensemble" / "__pycache__" / "x.pyc").write_text("cache")
    assert digest([repo, single])["digest"] == first
    (repo / "ensemble" / "config.pbtxt").write_text("b")
    assert digest([repo, single])["digest"] != first


def test_missing_paths_hash_as_absent(tmp_path):
    result = digest([tmp_path / "nope"])
    assert result["digests"] == {str(tmp_path / "nope"): "absent"}
