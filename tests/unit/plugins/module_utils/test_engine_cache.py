import os

import pytest

from ansible_collections.tritonfleet.serving.plugins.module_utils import engine_cache
from ansible_collections.tritonfleet.serving.plugins.module_utils.engine_cache import (
    MANIFEST, EngineCache, EngineMismatch, PendingCheckpoint, builder_version, cache_key, engine_inputs, engine_key)
from ansible_collections.tritonfleet.serving.plugins.module_utils.hashing import tree_digest


def _write(path, text):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def test_tree_digest_depends_on_content_and_names_and_uses_memo(tmp_path):
    ckpt = tmp_path / "ckpt"
    _write(ckpt / "config.json", "{}")
    _write(ckpt / "model.safetensors", "weights")
    memo = str(tmp_path / "cache" / "memo.json")
    first = tree_digest(str(ckpt), memo)
    assert os.path.exists(memo)
    assert tree_digest(str(ckpt), memo) == first
    _write(ckpt / "model.safetensors", "weightz")
    assert tree_digest(str(ckpt), memo) != first
    (ckpt / "model.safetensors").rename(ckpt / "other.safetensors")
    assert tree_digest(str(ckpt), memo) not in (first,)


def test_key_is_order_independent():
    assert cache_key({"a": 1, "b": {"x": 1, "y": 2}}) == cache_key({"b": {"y": 2, "x": 1}, "a": 1})
    assert cache_key({"a": 1}) != cache_key({"a": 2})


def test_build_publishes_atomically_and_failure_keeps_old_engine(tmp_path):
    cache = EngineCache(str(tmp_path), "m")

    def good(out):
        _write(__import__("pathlib").Path(out) / "rank0.engine", "ok")

    manifest = cache.build("a" * 64, {"v": 1}, good)
    assert manifest["key"] == "a" * 64
    assert cache.lookup("a" * 64)["inputs"] == {"v": 1}
    assert cache.lookup("b" * 64) is None

    def bad(out):
        _write(__import__("pathlib").Path(out) / "rank0.engine", "half")
        raise RuntimeError("builder crashed")

    with pytest.raises(RuntimeError):
        cache.build("b" * 64, {"v": 2}, bad)
    assert cache.lookup("b" * 64) is None
    assert (tmp_path / "m" / ("a" * 16) / "rank0.engine").read_text() == "ok"
    assert not [p for p in os.listdir(tmp_path / "m") if p.startswith(".building")]


def test_prune_keeps_current_and_most_recent(tmp_path):
    cache = EngineCache(str(tmp_path), "m")
    keys = [c * 64 for c in "abcd"]
    for i, key in enumerate(keys):
        cache.build(key, {}, lambda out: None)
        os.utime(os.path.join(cache.path_for(key), MANIFEST), (1000 + i, 1000 + i))
    removed = cache.prune(keys[0], keep=2)
    assert sorted(removed) == sorted([cache.path_for(keys[1]), cache.path_for(keys[2])])
    assert cache.lookup(keys[0]) and cache.lookup(keys[3])


def test_prune_dry_run_names_the_same_engines_and_removes_none(tmp_path):
    cache = EngineCache(str(tmp_path), "m")
    keys = [c * 64 for c in "abc"]
    for i, key in enumerate(keys):
        cache.build(key, {}, lambda out: None)
        os.utime(os.path.join(cache.path_for(key), MANIFEST), (1000 + i, 1000 + i))
    # The key to keep is not built yet, as in check mode before a build.
    predicted = cache.prune("d" * 64, keep=2, dry_run=True)
    assert all(cache.lookup(key) for key in keys)
    assert cache.prune("d" * 64, keep=2) == predicted == [cache.path_for(keys[1]), cache.path_for(keys[0])]


def test_staged_manifest_refuses_an_engine_built_for_another_key(tmp_path):
    cache = EngineCache(str(tmp_path), "m")
    assert cache.staged_manifest("a" * 64) is None
    _write(__import__("pathlib").Path(cache.staging_for("a" * 64)) / MANIFEST, '{"key": "%s"}' % ("b" * 64))
    with pytest.raises(EngineMismatch):
        cache.staged_manifest("a" * 64)


# Keys of engines already in caches: a change here makes every host rebuild
# its engines, so it must be deliberate (and said in the changelog).
KNOWN_KEYS = [
    (dict(checkpoint_sha256="0" * 64, builder="command", command=["build", "{output_dir}"], tp_size=2, pp_size=1,
          build_args={"dtype": "float16"}, key_inputs={"gpu_sku": "NVIDIA-H100"}),
     "8edcb1217657f393605c66901045694386af808386602b79d2309b7c539f22e9"),
    (dict(checkpoint_sha256="0" * 64, builder="cpu_reference", command=None, tp_size=1, pp_size=1,
          build_args={}, key_inputs={}),
     "057cea59f23f719e721a3a018d7be4b30ccb59eafd55d48486b06228771ec937"),
]


@pytest.mark.parametrize("inputs,key", KNOWN_KEYS)
def test_engine_inputs_keep_the_keys_engine_build_made(inputs, key):
    assert builder_version("cpu_reference") == "1", "a new builder format makes new keys: update KNOWN_KEYS"
    assert cache_key(engine_inputs(**inputs)) == key


def test_builder_version_is_part_of_the_key(monkeypatch):
    inputs = dict(KNOWN_KEYS[1][0])
    assert engine_inputs(**inputs)["builder_version"] == "1"
    container = dict(inputs)
    container["builder"] = "container:build_py"
    assert engine_inputs(**container)["builder_version"] is None
    before = cache_key(engine_inputs(**inputs))
    monkeypatch.setattr(engine_cache, "builder_version", lambda builder: "2")
    assert cache_key(engine_inputs(**inputs)) != before


def test_no_command_hashes_alike_whatever_its_spelling():
    inputs = dict(KNOWN_KEYS[1][0])
    empty, unset = dict(inputs), dict(inputs)
    empty["command"], unset["command"] = [], None
    assert engine_inputs(**empty) == engine_inputs(**unset)


def test_engine_key_refuses_bad_sizes_and_a_missing_checkpoint(tmp_path):
    params = dict(name="m", cache_dir=str(tmp_path / "cache"), checkpoint_dir=str(tmp_path / "missing"),
                  builder="command", command=["build"], tp_size=1, pp_size=1, build_args={}, key_inputs={})
    with pytest.raises(PendingCheckpoint):
        engine_key(params, check_mode=True)
    with pytest.raises(ValueError, match="does not exist"):
        engine_key(params)
    with pytest.raises(ValueError, match="at least 1"):
        engine_key(dict(params, tp_size=0), check_mode=True)
