"""Tests of the CPU reference engine: tiny checkpoint, validation, engine build and the numpy runtime."""

import json
import os
import pathlib
import re
import subprocess
import sys

import numpy as np
import pytest
from safetensors.numpy import load_file

from ansible_collections.tritonfleet.serving.plugins.module_utils import (
    cpu_engine_format, cpu_reference, cpu_reference_cli, cpu_tiny_checkpoint)
from ansible_collections.tritonfleet.serving.plugins.module_utils.cpu_reference import (
    CheckpointError, EngineBuildError, EngineConfigError, build_engine, read_engine_config, validate_checkpoint)
from ansible_collections.tritonfleet.serving.plugins.module_utils.cpu_tiny_checkpoint import generate_tiny_checkpoint

REPO_ROOT = pathlib.Path(__file__).resolve().parents[4]
RUNTIME_DIR = REPO_ROOT / "roles" / "repository" / "files" / "tensorrt_llm_cpu"
sys.path.insert(0, str(RUNTIME_DIR))
# No __pycache__ inside the role's files/: the repository role ships that directory as is.
_WRITE_BYTECODE, sys.dont_write_bytecode = sys.dont_write_bytecode, True
from cpu_engine_runtime import CpuEngine, RequestError  # noqa: E402
sys.dont_write_bytecode = _WRITE_BYTECODE

PROMPT = [1, 40, 41, 300, 250, 17, 99, 5]


# --------------------------------------------------------------------------- fixtures

@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    return tmp_path_factory.mktemp("cpu_reference")


@pytest.fixture(scope="module")
def checkpoint(workdir):
    path = workdir / "tiny"
    generate_tiny_checkpoint(str(path), seed=0)
    return path


@pytest.fixture(scope="module")
def engines(workdir, checkpoint):
    """Engines of one checkpoint under several parallel layouts, keyed by (tp, pp) or a dtype name."""
    built = {}
    for tp, pp in ((1, 1), (2, 1), (1, 2), (2, 2)):
        out = workdir / ("engine-tp%d-pp%d" % (tp, pp))
        build_engine(str(checkpoint), str(out), tp_size=tp, pp_size=pp, max_input_len=64, max_seq_len=128)
        built[(tp, pp)] = out
    out = workdir / "engine-fp16"
    build_engine(str(checkpoint), str(out), dtype="float16", max_input_len=64, max_seq_len=128)
    built["float16"] = out
    return built


@pytest.fixture(scope="module")
def engine(engines):
    return CpuEngine.load(str(engines[(1, 1)]))


@pytest.fixture(scope="module")
def greedy_tokens(engine):
    return [token for token, _unused in engine.generate(PROMPT, 24)]


def _files(path):
    return {p.name: p.read_bytes() for p in sorted(pathlib.Path(path).iterdir())}


# --------------------------------------------------------------------------- a reference forward pass

def reference_logits(checkpoint_dir, ids):
    """Full-recompute logits of every position, straight from the HF checkpoint, in float64.

    Written independently of the runtime (per-head loops, explicit kv-head
    lookup, a fresh causal mask each time) so the two can check each other.
    """
    config = json.loads((pathlib.Path(checkpoint_dir) / "config.json").read_text())
    tensors = load_file(str(pathlib.Path(checkpoint_dir) / "model.safetensors"))
    weights = {name: array.astype(np.float64) for name, array in tensors.items()}
    hidden, heads, kv_heads = config["hidden_size"], config["num_attention_heads"], config["num_key_value_heads"]
    head_size = hidden // heads
    eps, theta = config["rms_norm_eps"], config["rope_theta"]
    count = len(ids)

    def rms(x, w):
        return x / np.sqrt(np.mean(x * x, axis=-1, keepdims=True) + eps) * w

    angles = np.arange(count)[:, None] / theta ** (np.arange(0, head_size, 2) / head_size)[None, :]
    cos, sin = np.cos(np.hstack([angles, angles])), np.sin(np.hstack([angles, angles]))

    def rope(t):
        half = head_size // 2
        return t * cos[:, None] + np.concatenate([-t[..., half:], t[..., :half]], -1) * sin[:, None]

    x = weights["model.embed_tokens.weight"][ids]
    for layer in range(config["num_hidden_layers"]):
        p = "model.layers.%d." % layer
        h = rms(x, weights[p + "input_layernorm.weight"])
        q = rope((h @ weights[p + "self_attn.q_proj.weight"].T).reshape(count, heads, head_size))
        k = rope((h @ weights[p + "self_attn.k_proj.weight"].T).reshape(count, kv_heads, head_size))
        v = (h @ weights[p + "self_attn.v_proj.weight"].T).reshape(count, kv_heads, head_size)
        out = np.zeros((count, heads, head_size))
        for head in range(heads):
            kv = head // (heads // kv_heads)
            scores = q[:, head] @ k[:, kv].T / np.sqrt(head_size)
            scores[np.triu(np.ones((count, count), bool), 1)] = -np.inf
            probs = np.exp(scores - scores.max(-1, keepdims=True))
            out[:, head] = (probs / probs.sum(-1, keepdims=True)) @ v[:, kv]
        x = x + out.reshape(count, -1) @ weights[p + "self_attn.o_proj.weight"].T
        h = rms(x, weights[p + "post_attention_layernorm.weight"])
        gate = h @ weights[p + "mlp.gate_proj.weight"].T
        up = h @ weights[p + "mlp.up_proj.weight"].T
        x = x + (gate / (1 + np.exp(-gate)) * up) @ weights[p + "mlp.down_proj.weight"].T
    return rms(x, weights["model.norm.weight"]) @ weights["lm_head.weight"].T


# --------------------------------------------------------------------------- tiny checkpoint

def test_same_seed_gives_identical_bytes_and_other_seed_differs(workdir, checkpoint):
    again = workdir / "tiny-again"
    summary = generate_tiny_checkpoint(str(again), seed=0)
    assert _files(again) == _files(checkpoint)
    assert summary["changed"] is True and summary["seed"] == 0
    assert set(summary["files"]) == {"config.json", "generation_config.json", "model.safetensors",
                                     "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"}

    other = workdir / "tiny-seed1"
    generate_tiny_checkpoint(str(other), seed=1)
    assert (other / "model.safetensors").read_bytes() != (checkpoint / "model.safetensors").read_bytes()
    # The tokenizer does not depend on the seed.
    assert (other / "tokenizer.json").read_bytes() == (checkpoint / "tokenizer.json").read_bytes()


def test_generation_is_deterministic_across_processes(workdir, checkpoint):
    # A fresh interpreter gets fresh hash seeds (Python's and Rust's): byte
    # equality here means fleet hosts produce the same checkpoint.
    out = workdir / "tiny-subprocess"
    proc = subprocess.run([sys.executable, cpu_reference_cli.__file__, "--generate_tiny_checkpoint", str(out)],
                          capture_output=True, text=True, check=False, env=dict(os.environ, PYTHONHASHSEED="random"))
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["checkpoint"]["path"] == str(out)
    assert _files(out) == _files(checkpoint)


def test_regeneration_is_unchanged_and_atomic(workdir):
    path = workdir / "tiny-regen"
    first = generate_tiny_checkpoint(str(path), seed=3, hidden_size=32, num_hidden_layers=1)
    (path / "marker.json").write_text("{}")  # a caller's file survives an unchanged regeneration
    second = generate_tiny_checkpoint(str(path), seed=3, hidden_size=32, num_hidden_layers=1)
    assert second["changed"] is False and second["digest"] == first["digest"]
    assert (path / "marker.json").exists()
    third = generate_tiny_checkpoint(str(path), seed=4, hidden_size=32, num_hidden_layers=1)
    assert third["changed"] is True and third["digest"] != first["digest"]
    assert not (path / "marker.json").exists()
    # No staging or retired directories are left beside it.
    assert sorted(p.name for p in workdir.iterdir() if p.name.startswith(".")) == []
    assert oct((path / "model.safetensors").stat().st_mode & 0o044) == oct(0o044 & ~_umask())


def _umask():
    mask = os.umask(0)
    os.umask(mask)
    return mask


def test_checkpoint_config_and_bad_arguments(checkpoint, workdir):
    config = json.loads((checkpoint / "config.json").read_text())
    assert config["architectures"] == ["LlamaForCausalLM"] and config["model_type"] == "llama"
    assert config["torch_dtype"] == "float32" and config["tie_word_embeddings"] is False
    assert (config["bos_token_id"], config["eos_token_id"], config["pad_token_id"]) == (1, 2, 3)
    tensors = load_file(str(checkpoint / "model.safetensors"))
    assert tensors["model.layers.1.self_attn.k_proj.weight"].shape == (32, 64)
    assert tensors["lm_head.weight"].shape == (config["vocab_size"], 64)
    assert all(t.dtype == np.float32 for t in tensors.values())
    with pytest.raises(CheckpointError, match="num_key_value_heads"):
        generate_tiny_checkpoint(str(workdir / "bad"), num_attention_heads=4, num_key_value_heads=3)
    with pytest.raises(CheckpointError, match="smaller than the tokenizer"):
        generate_tiny_checkpoint(str(workdir / "bad"), vocab_size=10)
    padded = generate_tiny_checkpoint(str(workdir / "padded"), vocab_size=1000, num_hidden_layers=1)
    assert padded["vocab_size"] == 1000 and padded["tokenizer_vocab_size"] == config["vocab_size"]


def test_auto_tokenizer_loads_offline_and_round_trips(checkpoint, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("TRANSFORMERS_OFFLINE", "1")
    transformers = pytest.importorskip("transformers")
    tokenizer = transformers.AutoTokenizer.from_pretrained(str(checkpoint))
    config = transformers.AutoConfig.from_pretrained(str(checkpoint))
    assert config.model_type == "llama" and config.vocab_size == len(tokenizer)
    assert (tokenizer.bos_token_id, tokenizer.eos_token_id, tokenizer.pad_token_id) == (1, 2, 3)
    text = "Hello, world!  The server streams tokens quickly.\nCafé, naïve, 42 — done."
    ids = tokenizer.encode(text)
    assert ids[0] == tokenizer.bos_token_id
    assert tokenizer.decode(ids, skip_special_tokens=True) == text
    # Common words of the corpus are single tokens, so prompts stay short.
    assert len(tokenizer.encode(" the server")) == 3


# --------------------------------------------------------------------------- validation

def test_validate_checkpoint_reports_facts(checkpoint):
    facts = validate_checkpoint(str(checkpoint))
    assert facts["model_type"] == "llama" and facts["architectures"] == ["LlamaForCausalLM"]
    assert facts["layers"] == facts["num_hidden_layers"] == 2 and facts["hidden_size"] == 64
    assert facts["weight_files"] == ["model.safetensors"]
    assert "tokenizer.json" in facts["tokenizer_files"]


def test_validate_checkpoint_names_missing_files(checkpoint, workdir):
    broken = workdir / "broken"
    broken.mkdir()
    for name in ("config.json", "model.safetensors", "tokenizer_config.json"):
        (broken / name).write_bytes((checkpoint / name).read_bytes())
    with pytest.raises(CheckpointError) as info:
        validate_checkpoint(str(broken))
    message = str(info.value)
    assert str(broken) in message
    for name in ("tokenizer.json", "tokenizer.model", "vocab.json", "merges.txt"):
        assert name in message
    assert "config.json" not in message.split("missing:")[1].split(".")[0]

    (broken / "vocab.json").write_text("{}")
    with pytest.raises(CheckpointError, match="merges.txt"):
        validate_checkpoint(str(broken))
    (broken / "merges.txt").write_text("")
    assert validate_checkpoint(str(broken))["tokenizer_files"] == ["vocab.json", "merges.txt",
                                                                   "tokenizer_config.json"]

    empty = workdir / "empty"
    empty.mkdir()
    (empty / "pytorch_model.bin").write_bytes(b"")
    with pytest.raises(CheckpointError) as info:
        validate_checkpoint(str(empty))
    assert "config.json" in str(info.value) and "safetensors" in str(info.value)
    assert "pytorch_model.bin" in str(info.value)
    with pytest.raises(CheckpointError, match="does not exist"):
        validate_checkpoint(str(workdir / "nowhere"))


# --------------------------------------------------------------------------- engine build

def test_build_engine_layout(engines, checkpoint):
    for (tp, pp) in ((1, 1), (2, 1), (1, 2), (2, 2)):
        engine_dir = engines[(tp, pp)]
        config = read_engine_config(str(engine_dir))
        assert config["engine_format"] == "tritonfleet-cpu-reference"
        assert config["version"] == cpu_engine_format.FORMAT_VERSION
        pretrained, build = config["pretrained_config"], config["build_config"]
        assert pretrained["mapping"] == {"world_size": tp * pp, "tp_size": tp, "pp_size": pp}
        assert pretrained["architecture"] == "LlamaForCausalLM" and pretrained["dtype"] == "float32"
        for key in ("vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads", "num_key_value_heads",
                    "intermediate_size", "max_position_embeddings", "rms_norm_eps", "rope_theta",
                    "bos_token_id", "eos_token_id", "pad_token_id"):
            assert key in pretrained
        assert (build["max_batch_size"], build["max_input_len"], build["max_seq_len"]) == (8, 64, 128)
        assert sorted(p.name for p in engine_dir.glob("rank*.engine")) == ["rank%d.engine" % r
                                                                           for r in range(tp * pp)]
    # Column-parallel q/k/v: rank 1 of tp 2 holds half of each (2 q heads, 1 kv head, 16 wide).
    shard = load_file(str(engines[(2, 1)] / "rank1.engine"))
    assert shard["transformer.layers.0.attention.qkv.weight"].shape == ((2 + 1 + 1) * 16, 64)
    assert shard["transformer.layers.0.attention.dense.weight"].shape == (64, 32)
    assert shard["transformer.layers.0.mlp.proj.weight"].shape == (64, 64)
    # Pipeline stage 1 of pp 2 holds layer 1, the final norm and lm_head, but no embedding.
    stage = load_file(str(engines[(1, 2)] / "rank1.engine"))
    assert "transformer.vocab_embedding.weight" not in stage and "transformer.ln_f.weight" in stage
    assert not any(name.startswith("transformer.layers.0.") for name in stage)
    assert load_file(str(engines["float16"] / "rank0.engine"))["lm_head.weight"].dtype == np.float16


def test_build_engine_is_reproducible(engines, checkpoint, workdir):
    again = workdir / "engine-again"
    summary = build_engine(str(checkpoint), str(again), tp_size="2", pp_size=1, max_input_len=64, max_seq_len=128)
    assert summary["world_size"] == 2 and summary["rank_files"] == ["rank0.engine", "rank1.engine"]
    assert _files(again) == _files(engines[(2, 1)])


def test_build_engine_refuses_bad_settings(checkpoint, workdir):
    def build(name, **kwargs):
        return build_engine(str(checkpoint), str(workdir / name), **kwargs)

    with pytest.raises(EngineBuildError, match="tp_size 3 does not divide num_attention_heads 4"):
        build("tp3", tp_size=3)
    with pytest.raises(EngineBuildError, match="num_key_value_heads 2"):
        build("tp4", tp_size=4)
    with pytest.raises(EngineBuildError, match="pp_size 3"):
        build("pp3", pp_size=3)
    with pytest.raises(EngineBuildError, match="max_input_len .* smaller than max_seq_len"):
        build("lens", max_input_len=256, max_seq_len=256)
    with pytest.raises(EngineBuildError, match="max_position_embeddings"):
        build("long", max_seq_len=4096)
    with pytest.raises(EngineBuildError, match="bfloat16"):
        build("bf16", dtype="bfloat16")
    with pytest.raises(EngineBuildError, match="positive integer"):
        build("zero", tp_size=0)
    occupied = workdir / "occupied"
    occupied.mkdir()
    (occupied / "stale").write_text("x")
    with pytest.raises(EngineBuildError, match="not an empty directory"):
        build("occupied")
    with pytest.raises(CheckpointError):
        build_engine(str(workdir), str(workdir / "x"))
    assert not (workdir / "tp3").exists()


def test_read_engine_config_checks_rank_files(engines, workdir):
    copy = workdir / "engine-copy"
    copy.mkdir()
    for item in engines[(2, 1)].iterdir():
        (copy / item.name).write_bytes(item.read_bytes())
    (copy / "rank1.engine").unlink()
    with pytest.raises(EngineConfigError, match="rank1.engine"):
        read_engine_config(str(copy))
    with pytest.raises(EngineConfigError, match="no config.json"):
        read_engine_config(str(workdir))


def test_command_line(checkpoint, workdir, capsys):
    out = workdir / "cli-engine"
    assert cpu_reference_cli.main(["--checkpoint_dir", str(checkpoint), "--output_dir", str(out), "--tp_size", "2",
                                   "--max_input_len", "32", "--max_seq_len", "64"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["engine"]["world_size"] == 2 and (out / "rank1.engine").exists()
    assert cpu_reference_cli.main(["--checkpoint_dir", str(checkpoint), "--output_dir", str(workdir / "cli-bad"),
                                   "--tp_size", "3"]) == 1
    assert "tp_size 3" in capsys.readouterr().err


def test_modules_import_without_numpy():
    # Ansible imports module_utils on hosts that may lack numpy; only calls need it.
    code = ("import sys; sys.modules['numpy'] = None; sys.path.insert(0, %r)\n"
            "import cpu_reference, cpu_tiny_checkpoint, cpu_reference_cli\n"
            "try:\n"
            "    cpu_tiny_checkpoint.generate_tiny_checkpoint('/nonexistent/x')\n"
            "except cpu_reference.CpuReferenceError as exc:\n"
            "    print('refused:', exc)\n" % os.path.dirname(cpu_reference.__file__))
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr
    assert "refused:" in proc.stdout and "numpy" in proc.stdout


def test_engine_format_has_one_definition():
    # The builder's module_utils file of the format is a link to the served file, not a second copy.
    link = pathlib.Path(cpu_engine_format.__file__)
    assert link.is_symlink() and link.resolve() == (RUNTIME_DIR / "cpu_engine_format.py").resolve()
    # The runtime and the builder take every name of the format from it, none of their own.
    for name in ("FORMAT_VERSION", "ENGINE_CONFIG", "EMBEDDING", "LM_HEAD", "QKV", "MLP_PROJ", "rank_file"):
        assert not re.search(r"^%s\s*=|^def %s\b" % (name, name), (RUNTIME_DIR / "cpu_engine_runtime.py").read_text(), re.M)
        assert not re.search(r"^%s\s*=|^def %s\b" % (name, name), pathlib.Path(cpu_reference.__file__).read_text(), re.M)


def _top_level_imports(path):
    import ast
    names = set()
    for node in ast.parse(pathlib.Path(path).read_text()).body:
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
        elif isinstance(node, ast.Try):  # guarded optional imports
            for inner in ast.walk(node):
                if isinstance(inner, ast.Import):
                    names.update(alias.name.split(".")[0] for alias in inner.names)
    return names


def test_dependencies_stay_light():
    stdlib = set(sys.stdlib_module_names)
    runtime = _top_level_imports(RUNTIME_DIR / "cpu_engine_runtime.py")
    assert runtime - stdlib == {"numpy", "cpu_engine_format"}  # safetensors is imported when an engine loads
    assert _top_level_imports(RUNTIME_DIR / "cpu_engine_format.py") - stdlib == set()
    for library in (cpu_reference, cpu_tiny_checkpoint, cpu_reference_cli):
        # safetensors and tokenizers are imported inside functions; the rest are this collection's files.
        assert _top_level_imports(library.__file__) - stdlib <= {
            "numpy", "ansible_collections", "cpu_engine_format", "cpu_reference", "cpu_tiny_checkpoint", "hashing"}
    model = _top_level_imports(RUNTIME_DIR / "model.py")
    assert model - stdlib == {"numpy", "triton_python_backend_utils", "cpu_engine_runtime"}


# --------------------------------------------------------------------------- runtime

def test_kv_cache_decoding_matches_full_recompute(engine, checkpoint, greedy_tokens):
    sequence = PROMPT + greedy_tokens[:12]
    expected = reference_logits(checkpoint, sequence)
    cache = engine.new_cache()
    # Prefill, then a chunk (exercises the causal mask with a non-empty cache), then token by token.
    pieces = [engine.forward(PROMPT[:5], cache), engine.forward(sequence[5:9], cache)]
    pieces += [engine.forward([token], cache) for token in sequence[9:]]
    incremental = np.concatenate(pieces)
    assert cache.length == len(sequence)
    np.testing.assert_allclose(incremental, expected, rtol=1e-4, atol=1e-4)
    # Greedy decoding picks the reference model's argmax at every step.
    assert list(np.argmax(expected[len(PROMPT) - 1:-1], axis=-1)) == greedy_tokens[:12]


def test_greedy_is_deterministic(engine, engines, greedy_tokens):
    assert [t for t, _unused in engine.generate(PROMPT, 24)] == greedy_tokens
    again = CpuEngine.load(str(engines[(1, 1)]))
    assert [t for t, _unused in again.generate(PROMPT, 24)] == greedy_tokens
    # Temperature does not affect greedy decoding; top_k 0 with top_p 0 is greedy too.
    assert [t for t, _unused in engine.generate(PROMPT, 24, temperature=0.3, top_k=0, top_p=0.0)] == greedy_tokens
    assert len(set(greedy_tokens)) > 3  # the random model does not collapse to a single token


def test_tensor_parallel_shards_merge_to_the_same_model(engines, engine, greedy_tokens):
    cache = engine.new_cache()
    expected = engine.forward(PROMPT, cache)
    for key in ((2, 1), (1, 2), (2, 2)):
        merged = CpuEngine.load(str(engines[key]))
        np.testing.assert_allclose(merged.forward(PROMPT, merged.new_cache()), expected, rtol=1e-5, atol=1e-5)
        assert [t for t, _unused in merged.generate(PROMPT, 24)] == greedy_tokens
    half = CpuEngine.load(str(engines["float16"]))
    np.testing.assert_allclose(half.forward(PROMPT, half.new_cache()), expected, atol=0.05)


def test_end_id_stops_and_min_length_suppresses_it(engine, greedy_tokens):
    position = 6
    end_id = greedy_tokens[position]
    first = greedy_tokens.index(end_id)
    assert [t for t, _unused in engine.generate(PROMPT, 24, end_id=end_id)] == greedy_tokens[:first]

    end_id = greedy_tokens[0]
    assert list(engine.generate(PROMPT, 24, end_id=end_id, min_length=0)) == []
    # The default min_length of 1 (as upstream's) always yields a first token.
    assert next(engine.generate(PROMPT, 24, end_id=end_id))[0] != end_id
    held = [t for t, _unused in engine.generate(PROMPT, 24, end_id=end_id, min_length=3)]
    assert len(held) >= 3 and end_id not in held[:3]
    # The engine's eos is the default end_id.
    assert engine.eos_id == 2


def test_stop_words_end_generation_after_the_word(engine, greedy_tokens):
    word = greedy_tokens[4:6]
    first = next(i for i in range(len(greedy_tokens) - 1) if greedy_tokens[i:i + 2] == word)
    out = [t for t, _unused in engine.generate(PROMPT, 24, stop_words=[[999999], word])]
    assert out == greedy_tokens[:first + 2]
    assert [t for t, _unused in engine.generate(PROMPT, 24, stop_words=[[]])] == greedy_tokens


def test_bad_words_bias_and_penalties_change_choices(engine, greedy_tokens):
    banned = [t for t, _unused in engine.generate(PROMPT, 4, bad_words=[[greedy_tokens[0]]])]
    assert banned[0] != greedy_tokens[0]
    # A two-token bad word bans its last token only after its first.
    pair = [t for t, _unused in engine.generate(PROMPT, 4, bad_words=[[PROMPT[-1], greedy_tokens[0]]])]
    assert pair[0] != greedy_tokens[0]
    bias = np.zeros(engine.vocab_size, np.float32)
    bias[500] = 1000.0
    assert [t for t, _unused in engine.generate(PROMPT, 5, embedding_bias=bias)] == [500] * 5
    repeated = [t for t, _unused in engine.generate(PROMPT, 24, repetition_penalty=10.0)]
    assert len(set(repeated)) == len(repeated)  # a strong penalty forbids repeats in practice
    present = [t for t, _unused in engine.generate(PROMPT, 24, presence_penalty=100.0)]
    assert len(set(present)) == len(present) and not set(present) & set(PROMPT)
    with pytest.raises(RequestError, match="embedding_bias"):
        engine.generate(PROMPT, 5, embedding_bias=np.ones(7, np.float32))


def test_sampling_is_reproducible_with_a_seed(engine, greedy_tokens):
    def sample(seed, **kwargs):
        options = dict(temperature=1.5, top_k=50, top_p=0.95, random_seed=seed)
        options.update(kwargs)
        return [t for t, _unused in engine.generate(PROMPT, 24, **options)]

    first = sample(7)
    assert sample(7) == first
    assert sample(8) != first
    assert first != greedy_tokens
    assert sample(7, top_k=1) == greedy_tokens
    # top_k 0 with top_p set samples from the nucleus of the whole vocabulary.
    nucleus = sample(11, top_k=0, top_p=0.5)
    assert nucleus == sample(11, top_k=0, top_p=0.5)
    # A tiny nucleus keeps only the best token: greedy again.
    assert sample(3, top_k=0, top_p=1e-6) == greedy_tokens


def test_log_probs(engine, greedy_tokens):
    # min_length 0: otherwise step 0 bans end_id, which moves its probability elsewhere.
    steps = list(engine.generate(PROMPT, 8, return_log_probs=True, min_length=0))
    assert [t for t, _unused in steps] == greedy_tokens[:8]
    assert all(lp < 0 for _unused, lp in steps)
    cache = engine.new_cache()
    logits = engine.forward(PROMPT, cache)[-1].astype(np.float64)
    expected = logits[greedy_tokens[0]] - np.log(np.sum(np.exp(logits - logits.max()))) - logits.max()
    assert steps[0][1] == pytest.approx(expected, abs=1e-4)
    assert all(lp == 0.0 for _unused, lp in engine.generate(PROMPT, 3))


def test_prompt_embedding_table_serves_virtual_tokens(engine):
    table = engine.embedding[[40, 41]]
    virtual = [PROMPT[0], engine.vocab_size, engine.vocab_size + 1] + PROMPT[3:]
    with_table = [t for t, _unused in engine.generate(virtual, 6, prompt_embedding_table=table)]
    assert with_table == [t for t, _unused in engine.generate(PROMPT, 6)]
    with pytest.raises(RequestError, match="input_ids must lie in"):
        engine.generate(virtual, 6)


def test_requests_beyond_the_engine_are_refused(engine):
    with pytest.raises(RequestError, match="max_input_len 64"):
        engine.generate(list(range(3, 68)), 1)
    with pytest.raises(RequestError, match="max_seq_len 128"):
        engine.generate(PROMPT, 125)
    with pytest.raises(RequestError, match="non-empty"):
        engine.generate([], 4)
    with pytest.raises(RequestError, match="runtime_top_p"):
        engine.generate(PROMPT, 4, top_p=1.5)
    assert list(engine.generate(PROMPT, 0)) == []
