import os

import pytest

from ansible_collections.tritonfleet.serving.plugins.module_utils.engine_cache import MANIFEST, EngineCache, cache_key
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
