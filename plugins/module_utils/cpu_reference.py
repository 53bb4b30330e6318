# -*- coding: utf-8 -*-
# Copyright: (c) 2026, tritonfleet maintainers
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The CPU reference engine: the ``cpu`` accelerator mode's stand-in for TensorRT-LLM.

Three jobs live here, all usable from Ansible modules and from a shell:

* :func:`generate_tiny_checkpoint` writes a tiny Hugging Face format,
  Llama-style checkpoint with random weights from a fixed seed and a real
  byte-level BPE tokenizer, so a host without GPU or network has a model to
  serve. The same arguments always give byte-identical files, so every host of
  a fleet derives the same engine cache key.
* :func:`validate_checkpoint` checks that a directory holds what a build needs
  and reports the facts a play wants to show (model type, sizes, tokenizer).
* :func:`build_engine` turns a checkpoint into an *engine directory* laid out
  like a TensorRT-LLM engine directory (``config.json`` plus one
  ``rank{r}.engine`` per rank), sharded for tensor and pipeline parallelism the
  way TensorRT-LLM shards Llama. The CPU runtime that serves it
  (``roles/repository/files/tensorrt_llm_cpu/cpu_engine_runtime.py``) merges
  the shards back; sharding here keeps the engine's shape honest, so the
  parts of the deployment that count ranks, place files and key caches behave
  as they do with real engines.

The module must import on a controller or host without numpy (Ansible loads
every module_utils file a module names), so numpy is optional at import time
and safetensors/tokenizers are imported only inside the functions that need
them; calling such a function without them raises :class:`CpuReferenceError`
saying what to install.

Engine rank files are safetensors files whose tensors use TensorRT-LLM's Llama
names (global layer numbers)::

    transformer.vocab_embedding.weight             [vocab, hidden]        first pipeline stage
    transformer.layers.{i}.input_layernorm.weight  [hidden]
    transformer.layers.{i}.attention.qkv.weight    [(q+k+v rows)/tp, hidden]  this rank's q, k, v heads stacked
    transformer.layers.{i}.attention.dense.weight  [hidden, q rows/tp]    o_proj, row-parallel
    transformer.layers.{i}.post_layernorm.weight   [hidden]
    transformer.layers.{i}.mlp.fc.weight           [inter/tp, hidden]     gate_proj (the SiLU branch)
    transformer.layers.{i}.mlp.gate.weight         [inter/tp, hidden]     up_proj
    transformer.layers.{i}.mlp.proj.weight         [hidden, inter/tp]     down_proj, row-parallel
    transformer.ln_f.weight                        [hidden]               last pipeline stage
    lm_head.weight                                 [vocab_padded/tp, hidden]  last stage, split over vocab
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import argparse
import glob
import hashlib
import json
import math
import os
import shutil
import sys
import tempfile

try:
    import numpy as np
    NUMPY_IMPORT_ERROR = None
except ImportError as _exc:  # pragma: no cover - exercised only on hosts without numpy
    np = None
    NUMPY_IMPORT_ERROR = _exc

# Bumped whenever generated checkpoints or built engines would differ in bytes
# or layout; engine cache keys include it, so a bump forces rebuilds.
FORMAT_VERSION = "1"
ENGINE_FORMAT = "tritonfleet-cpu-reference"
ENGINE_CONFIG = "config.json"
SUPPORTED_DTYPES = ("float32", "float16")
SUPPORTED_ARCHITECTURES = ("LlamaForCausalLM",)

# Special tokens of the tiny tokenizer, in id order (Llama's ids for unk/bos/eos).
UNK_TOKEN, BOS_TOKEN, EOS_TOKEN, PAD_TOKEN = "<unk>", "<s>", "</s>", "<pad>"
SPECIAL_TOKENS = (UNK_TOKEN, BOS_TOKEN, EOS_TOKEN, PAD_TOKEN)
# The trainer stops earlier when the corpus runs out of pairs seen twice; the
# actual size is whatever training reaches, and is deterministic.
TOKENIZER_TARGET_VOCAB = 1024
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json")

# Training text for the tiny tokenizer: plain, varied English written for this
# project, so common words become single tokens and prompts tokenize sensibly.
TINY_CORPUS = """\
The morning train left the station a few minutes after seven, and the platform emptied quickly.
A small dog waited by the bakery door, hoping that someone would drop a piece of warm bread.
Rain had fallen all night, so the streets were shining and the gutters ran like little rivers.
She opened the window, listened to the birds, and decided that the day would be a good one.
Our team builds servers that answer questions, and every answer must arrive quickly and correctly.
When a request comes in, the server reads the prompt, turns the words into numbers, and runs the model.
The model predicts one token at a time; each new token is added to the text and the loop continues.
If the answer is long, the client can stream it, reading every piece as soon as it is ready.
Good engineers measure before they change anything, and they write tests that prove the change works.
A fleet of machines is only healthy when each machine reports that it is live and ready.
The garden behind the house has tomatoes, beans, onions, carrots, and a row of tall sunflowers.
In the autumn the leaves turn red and gold, and the children collect them on the way to school.
He read the old letter twice, folded it carefully, and placed it back inside the wooden box.
Numbers such as one, two, three, four, five, six, seven, eight, nine, and ten are easy to learn.
The river flows north through the valley, past the mill, under the stone bridge, and into the lake.
Please check the configuration file, restart the service, and then look at the logs for errors.
Cooking rice is simple: rinse the grains, add water, bring it to a boil, and let it rest covered.
The library opens at nine in the morning and closes at six in the evening, except on Sundays.
Mountains in the distance were covered with snow, although the valley below was green and warm.
Every version of the model lives in its own directory, so an update never breaks the running one.
The teacher asked a simple question, and the whole class answered together in a loud voice.
A careful plan names the goal, the steps, the risks, and the way to know when the work is done.
Coffee, tea, water, and juice were served on a long table beside the window of the hall.
The ship sailed at dawn, and by noon the coast was only a thin grey line behind it.
Light travels faster than sound, which is why we see the lightning before we hear the thunder.
They walked along the beach, counting shells, talking about books, and watching the waves roll in.
When the power failed, the old server kept running on its battery long enough to shut down safely.
Write clear names, keep functions short, and explain in comments why the code does what it does.
The market was busy with people buying apples, pears, cheese, fish, flowers, and fresh bread.
At night the city is quiet, the lamps are bright, and only a few cars move through the streets.
A question that is well asked is already half answered, as the old saying goes.
The cat slept in the sun on the kitchen floor while the soup cooked slowly on the stove.
Building an engine takes time, so the result is stored and reused whenever the inputs are the same.
Hello, world! How are you today? I am fine, thank you, and I hope that you are well too.
What is the capital of France? Paris is the capital of France, and it sits on the river Seine.
The quick brown fox jumps over the lazy dog near the bank of the river.
My grandmother kept a notebook of recipes, and every page smelled faintly of cinnamon and butter.
Traffic on the highway slowed to a crawl because a truck had lost part of its load.
Scientists watched the comet for weeks, writing down its position every night at the same hour.
The hospital needs nurses, doctors, cleaners, and cooks, and all of them work long shifts.
After the storm, neighbours helped each other clear branches from the roads and repair the fences.
A good map shows the roads, the rivers, the hills, and the towns, with a scale in the corner.
Students often ask why history matters; the answer is that the past explains much of the present.
The orchestra tuned its instruments, the lights went down, and the concert hall became silent.
Fresh snow makes the forest very quiet, as if the whole world were holding its breath.
Her first computer was slow and loud, but it taught her how programs and memory really work.
We planted a young oak tree near the gate, hoping our grandchildren would sit in its shade.
The price of bread went up again this year, and many families changed what they buy each week.
A bridge must carry its own weight, the weight of the traffic, and the force of the wind.
On Monday the office was crowded, but by Friday most people were working from home.
The museum has paintings, statues, old coins, maps of the world, and a room full of clocks.
If you want to learn a language, speak it every day, even when you make mistakes.
The farmer checked the sky, saw dark clouds in the west, and hurried to bring in the hay.
Good documentation tells you what a tool does, how to use it, and what to do when it fails.
The baby laughed at the bubbles, reaching for each one until it popped in the air.
Our village has one shop, one school, two churches, and a small harbour full of boats.
Monitoring shows the latency of each request, the number of errors, and the memory in use.
A long walk after dinner helps you sleep, especially when the evening air is cool and clear.
"""


class CpuReferenceError(Exception):
    """Base class of this module's errors; the message says what to do."""


class CheckpointError(CpuReferenceError):
    """A checkpoint directory cannot be used (or generated)."""


class EngineBuildError(CpuReferenceError):
    """An engine cannot be built from the given checkpoint and settings."""


class EngineConfigError(CpuReferenceError):
    """An engine directory is missing, incomplete or not a CPU reference engine."""


# --------------------------------------------------------------------------- helpers

def _require_numpy():
    if np is None:
        raise CpuReferenceError(
            "the CPU reference engine needs numpy, which this Python (%s) cannot import (%s); install the "
            "collection's requirements.txt into the interpreter that runs it" % (sys.executable, NUMPY_IMPORT_ERROR))


def _import_optional(name):
    """Import a heavy optional dependency at call time, with an actionable error."""
    try:
        return __import__(name, fromlist=["_"])
    except ImportError as exc:
        raise CpuReferenceError(
            "the CPU reference engine needs the Python package %r, which this Python (%s) cannot import (%s); "
            "install the collection's requirements.txt into the interpreter that runs it"
            % (name.split(".")[0], sys.executable, exc))


def _write_json(path, data):
    # Sorted keys and a fixed layout keep generated files byte-identical.
    with open(path, "w", encoding="utf-8") as handle:
        handle.write(json.dumps(data, indent=2, sort_keys=True) + "\n")


def read_json_object(path, error_class, what):
    try:
        with open(path, encoding="utf-8") as handle:
            data = json.load(handle)
    except OSError as exc:
        raise error_class("cannot read %s %s: %s" % (what, path, exc))
    except ValueError as exc:
        raise error_class("%s %s is not valid JSON (%s); regenerate or re-download it" % (what, path, exc))
    if not isinstance(data, dict):
        raise error_class("%s %s must hold a JSON object, not %s" % (what, path, type(data).__name__))
    return data


def file_sha256(path):
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _positive_int(value, name, error_class):
    """``value`` as an int >= 1; digit strings count, since templated Ansible arguments may arrive as text."""
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise error_class("%s must be a positive integer, got %r" % (name, value))
    return value


def _umask():
    umask = os.umask(0)
    os.umask(umask)
    return umask


def _save_safetensors(tensors, path, metadata):
    # safetensors creates its files 0600; checkpoints and engines must be
    # readable by the (possibly different) user that runs tritonserver.
    safetensors_numpy = _import_optional("safetensors.numpy")
    safetensors_numpy.save_file(tensors, path, metadata=metadata)
    os.chmod(path, 0o666 & ~_umask())


# --------------------------------------------------------------------------- tiny checkpoint

def _train_tokenizer():
    """Train the tiny byte-level BPE tokenizer on :data:`TINY_CORPUS`.

    The trainer of the ``tokenizers`` library breaks ties between equally
    frequent pairs deterministically, so the result depends on the corpus only
    (the unit tests hold it to that).
    """
    tokenizers = _import_optional("tokenizers")
    from tokenizers import decoders, models, pre_tokenizers, processors, trainers

    tokenizer = tokenizers.Tokenizer(models.BPE(unk_token=UNK_TOKEN))
    # add_prefix_space=False so decode(encode(text)) gives back text exactly.
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=TOKENIZER_TARGET_VOCAB,
        min_frequency=2,
        special_tokens=list(SPECIAL_TOKENS),
        # Every byte is in the vocabulary, so any text (any language, emoji)
        # encodes without <unk>.
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator(TINY_CORPUS.splitlines(), trainer)
    bos_id = tokenizer.token_to_id(BOS_TOKEN)
    # Llama tokenizers start every sequence with <s>; the engine expects it.
    tokenizer.post_processor = processors.TemplateProcessing(
        single="%s $A" % BOS_TOKEN, pair="%s $A %s $B" % (BOS_TOKEN, BOS_TOKEN),
        special_tokens=[(BOS_TOKEN, bos_id)])
    return tokenizer


def _tiny_weights(seed, dims):
    """Random Llama weights with HF names, scaled so activations stay near unit size.

    Projections use std 1/sqrt(fan_in) (unit-variance outputs for unit inputs);
    norm weights sit near 1 with some spread so a runtime that ignored them
    would be caught by tests; lm_head is scaled for logits of std ~2, peaked
    enough that greedy decoding is not decided by rounding noise.
    """
    rng = np.random.default_rng(seed)
    hidden, inter, vocab = dims["hidden_size"], dims["intermediate_size"], dims["vocab_size"]
    head_size = hidden // dims["num_attention_heads"]
    q_rows = dims["num_attention_heads"] * head_size
    kv_rows = dims["num_key_value_heads"] * head_size

    def normal(shape, std):
        return rng.standard_normal(shape, dtype=np.float32) * np.float32(std)

    def norm_weight():
        return np.float32(1.0) + normal((hidden,), 0.1)

    # Insertion order fixes the order of draws from rng, hence the bytes.
    tensors = {"model.embed_tokens.weight": normal((vocab, hidden), 1.0)}
    for layer in range(dims["num_hidden_layers"]):
        prefix = "model.layers.%d." % layer
        tensors[prefix + "input_layernorm.weight"] = norm_weight()
        tensors[prefix + "self_attn.q_proj.weight"] = normal((q_rows, hidden), 1.0 / math.sqrt(hidden))
        tensors[prefix + "self_attn.k_proj.weight"] = normal((kv_rows, hidden), 1.0 / math.sqrt(hidden))
        tensors[prefix + "self_attn.v_proj.weight"] = normal((kv_rows, hidden), 1.0 / math.sqrt(hidden))
        tensors[prefix + "self_attn.o_proj.weight"] = normal((hidden, q_rows), 1.0 / math.sqrt(q_rows))
        tensors[prefix + "post_attention_layernorm.weight"] = norm_weight()
        tensors[prefix + "mlp.gate_proj.weight"] = normal((inter, hidden), 1.0 / math.sqrt(hidden))
        tensors[prefix + "mlp.up_proj.weight"] = normal((inter, hidden), 1.0 / math.sqrt(hidden))
        tensors[prefix + "mlp.down_proj.weight"] = normal((hidden, inter), 1.0 / math.sqrt(inter))
    tensors["model.norm.weight"] = norm_weight()
    tensors["lm_head.weight"] = normal((vocab, hidden), 2.0 / math.sqrt(hidden))
    return tensors


def _swap_into_place(staging, output_dir):
    """Rename ``staging`` to ``output_dir``, replacing an existing directory.

    The old directory is renamed aside first and removed only after the new
    one is in place, so an interrupted run leaves either version whole.
    """
    if os.path.lexists(output_dir):
        retired = tempfile.mkdtemp(prefix=".%s.old-" % os.path.basename(output_dir),
                                   dir=os.path.dirname(output_dir))
        os.rmdir(retired)
        os.rename(output_dir, retired)
        try:
            os.rename(staging, output_dir)
        except OSError:
            os.rename(retired, output_dir)
            raise
        shutil.rmtree(retired, ignore_errors=True)
    else:
        os.rename(staging, output_dir)


def generate_tiny_checkpoint(output_dir, seed=0, hidden_size=64, num_hidden_layers=2, num_attention_heads=4,
                             num_key_value_heads=2, intermediate_size=128, max_position_embeddings=1024,
                             vocab_size=None):
    """Write a tiny random Llama-style checkpoint in Hugging Face format to ``output_dir``.

    The directory gets ``config.json``, ``generation_config.json``,
    ``model.safetensors`` (float32 weights drawn from ``numpy.random.default_rng(seed)``)
    and a byte-level BPE tokenizer (``tokenizer.json``, ``tokenizer_config.json``,
    ``special_tokens_map.json``) that ``transformers.AutoTokenizer`` loads offline.

    ``vocab_size`` defaults to the tokenizer's size; a larger value pads the
    embedding with rows no token maps to (as real checkpoints often do), a
    smaller one is refused.

    Files are written into a temporary directory beside ``output_dir`` and
    renamed into place. If ``output_dir`` already holds byte-identical files
    it is left untouched (``changed`` is False in the result); files that are
    not part of the checkpoint (markers written by callers) are then kept.

    Returns a summary dict: ``path``, ``changed``, ``seed``, the model sizes,
    ``num_parameters``, ``files`` (name -> sha256), ``digest`` (sha256 over
    the files) and ``format_version``.
    """
    _require_numpy()
    _import_optional("safetensors.numpy")  # fail before the slow work, not after it
    hidden_size = _positive_int(hidden_size, "hidden_size", CheckpointError)
    num_hidden_layers = _positive_int(num_hidden_layers, "num_hidden_layers", CheckpointError)
    num_attention_heads = _positive_int(num_attention_heads, "num_attention_heads", CheckpointError)
    num_key_value_heads = _positive_int(num_key_value_heads, "num_key_value_heads", CheckpointError)
    intermediate_size = _positive_int(intermediate_size, "intermediate_size", CheckpointError)
    max_position_embeddings = _positive_int(max_position_embeddings, "max_position_embeddings", CheckpointError)
    if isinstance(seed, str) and seed.strip().isdigit():
        seed = int(seed)
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise CheckpointError("seed must be a non-negative integer, got %r" % (seed,))
    if hidden_size % num_attention_heads:
        raise CheckpointError("hidden_size %d is not divisible by num_attention_heads %d"
                              % (hidden_size, num_attention_heads))
    if num_attention_heads % num_key_value_heads:
        raise CheckpointError("num_attention_heads %d is not a multiple of num_key_value_heads %d"
                              % (num_attention_heads, num_key_value_heads))
    if (hidden_size // num_attention_heads) % 2:
        raise CheckpointError("the head size (hidden_size / num_attention_heads = %d) must be even for rotary "
                              "embeddings" % (hidden_size // num_attention_heads))

    tokenizer = _train_tokenizer()
    tokenizer_vocab = tokenizer.get_vocab_size()
    vocab_size = _positive_int(tokenizer_vocab if vocab_size is None else vocab_size, "vocab_size", CheckpointError)
    if vocab_size < tokenizer_vocab:
        raise CheckpointError("vocab_size %d is smaller than the tokenizer's %d tokens; leave it unset or raise it"
                              % (vocab_size, tokenizer_vocab))
    ids = {token: tokenizer.token_to_id(token) for token in SPECIAL_TOKENS}

    dims = dict(hidden_size=hidden_size, num_hidden_layers=num_hidden_layers,
                num_attention_heads=num_attention_heads, num_key_value_heads=num_key_value_heads,
                intermediate_size=intermediate_size, max_position_embeddings=max_position_embeddings,
                vocab_size=vocab_size)
    config = dict(dims)
    config.update(
        architectures=["LlamaForCausalLM"], model_type="llama", hidden_act="silu",
        head_dim=hidden_size // num_attention_heads, rms_norm_eps=1e-5, rope_theta=10000.0, rope_scaling=None,
        attention_bias=False, attention_dropout=0.0, mlp_bias=False, pretraining_tp=1,
        initializer_range=0.02, tie_word_embeddings=False, use_cache=True, torch_dtype="float32",
        bos_token_id=ids[BOS_TOKEN], eos_token_id=ids[EOS_TOKEN], pad_token_id=ids[PAD_TOKEN],
        tritonfleet_tiny_checkpoint={"seed": seed, "format_version": FORMAT_VERSION},
    )
    generation_config = dict(bos_token_id=ids[BOS_TOKEN], eos_token_id=ids[EOS_TOKEN],
                             pad_token_id=ids[PAD_TOKEN], do_sample=False, max_length=max_position_embeddings)
    tokenizer_config = dict(
        tokenizer_class="PreTrainedTokenizerFast", bos_token=BOS_TOKEN, eos_token=EOS_TOKEN,
        unk_token=UNK_TOKEN, pad_token=PAD_TOKEN, model_max_length=max_position_embeddings,
        add_bos_token=True, add_eos_token=False, clean_up_tokenization_spaces=False, padding_side="left",
    )
    special_tokens_map = dict(bos_token=BOS_TOKEN, eos_token=EOS_TOKEN, unk_token=UNK_TOKEN, pad_token=PAD_TOKEN)
    tensors = _tiny_weights(seed, dims)

    output_dir = os.path.abspath(output_dir)
    parent = os.path.dirname(output_dir)
    try:
        os.makedirs(parent, exist_ok=True)
        staging = tempfile.mkdtemp(prefix=".%s.tmp-" % os.path.basename(output_dir), dir=parent)
    except OSError as exc:
        raise CheckpointError("cannot create a staging directory beside %s: %s" % (output_dir, exc))
    try:
        _write_json(os.path.join(staging, "config.json"), config)
        _write_json(os.path.join(staging, "generation_config.json"), generation_config)
        _save_safetensors(tensors, os.path.join(staging, "model.safetensors"), metadata={"format": "pt"})
        with open(os.path.join(staging, "tokenizer.json"), "w", encoding="utf-8") as handle:
            handle.write(tokenizer.to_str(pretty=True) + "\n")
        _write_json(os.path.join(staging, "tokenizer_config.json"), tokenizer_config)
        _write_json(os.path.join(staging, "special_tokens_map.json"), special_tokens_map)
        # mkdtemp makes 0700 directories; see _save_safetensors for why that matters.
        os.chmod(staging, 0o777 & ~_umask())
        files = {name: file_sha256(os.path.join(staging, name)) for name in sorted(os.listdir(staging))}
        unchanged = os.path.isdir(output_dir) and all(
            os.path.isfile(os.path.join(output_dir, name)) and file_sha256(os.path.join(output_dir, name)) == sha
            for name, sha in files.items())
        if unchanged:
            shutil.rmtree(staging)
        else:
            _swap_into_place(staging, output_dir)
    except BaseException as exc:
        shutil.rmtree(staging, ignore_errors=True)
        if isinstance(exc, OSError):
            raise CheckpointError("cannot write the tiny checkpoint to %s: %s" % (output_dir, exc))
        raise

    digest = hashlib.sha256("".join("%s %s\n" % item for item in sorted(files.items())).encode()).hexdigest()
    summary = dict(dims)
    summary.update(path=output_dir, changed=not unchanged, seed=seed, files=files, digest=digest,
                   num_parameters=int(sum(t.size for t in tensors.values())),
                   tokenizer_vocab_size=tokenizer_vocab, format_version=FORMAT_VERSION,
                   bos_token_id=ids[BOS_TOKEN], eos_token_id=ids[EOS_TOKEN], pad_token_id=ids[PAD_TOKEN])
    return summary


# --------------------------------------------------------------------------- validation

def _tokenizer_files(checkpoint_dir):
    """The tokenizer files present, and a description of what is missing (None when usable)."""
    def present(name):
        return os.path.isfile(os.path.join(checkpoint_dir, name))

    found = [name for name in ("tokenizer.json", "tokenizer.model", "vocab.json", "merges.txt",
                               "tokenizer_config.json", "special_tokens_map.json") if present(name)]
    if present("tokenizer.json") or present("tokenizer.model") or (present("vocab.json") and present("merges.txt")):
        return found, None
    if present("vocab.json"):
        missing = "merges.txt (vocab.json is there, but a BPE tokenizer needs both)"
    elif present("merges.txt"):
        missing = "vocab.json (merges.txt is there, but a BPE tokenizer needs both)"
    else:
        missing = "tokenizer files: tokenizer.json, or tokenizer.model, or vocab.json + merges.txt"
    return found, missing


def validate_checkpoint(checkpoint_dir):
    """Check that ``checkpoint_dir`` holds a usable Hugging Face checkpoint.

    Needs ``config.json``, at least one ``*.safetensors`` weight file and a
    tokenizer (``tokenizer.json``, or ``tokenizer.model``, or ``vocab.json`` and
    ``merges.txt``). Raises :class:`CheckpointError` naming the directory and
    every missing piece at once. Returns a dict of facts: ``path``,
    ``model_type``, ``architectures``, ``vocab_size``, ``hidden_size``,
    ``num_hidden_layers`` (also as ``layers``), ``num_attention_heads``,
    ``num_key_value_heads``, ``intermediate_size``, ``torch_dtype``,
    ``weight_files`` and ``tokenizer_files``.
    """
    checkpoint_dir = os.path.abspath(checkpoint_dir)
    if not os.path.isdir(checkpoint_dir):
        raise CheckpointError("checkpoint directory %s does not exist; point checkpoint_dir at a Hugging Face "
                              "model directory, or generate the tiny test checkpoint there" % checkpoint_dir)
    missing = []
    config_path = os.path.join(checkpoint_dir, "config.json")
    if not os.path.isfile(config_path):
        missing.append("config.json")
    weight_files = sorted(os.path.basename(p) for p in glob.glob(os.path.join(checkpoint_dir, "*.safetensors")))
    if not weight_files:
        torch_files = sorted(os.path.basename(p) for p in glob.glob(os.path.join(checkpoint_dir, "*.bin")))
        if torch_files:
            missing.append("weights as *.safetensors (found only PyTorch pickles %s; convert them to safetensors, "
                           "serving must not need torch)" % ", ".join(torch_files))
        else:
            missing.append("weights (*.safetensors)")
    tokenizer_files, tokenizer_missing = _tokenizer_files(checkpoint_dir)
    if tokenizer_missing:
        missing.append(tokenizer_missing)
    if missing:
        raise CheckpointError(
            "checkpoint %s is incomplete; missing: %s. Copy the complete model (config, safetensors weights and "
            "tokenizer) from its source into that directory, or generate the tiny test checkpoint there"
            % (checkpoint_dir, "; ".join(missing)))

    config = read_json_object(config_path, CheckpointError, "checkpoint config")
    num_layers = config.get("num_hidden_layers")
    return dict(
        path=checkpoint_dir,
        model_type=config.get("model_type"),
        architectures=list(config.get("architectures") or []),
        vocab_size=config.get("vocab_size"),
        hidden_size=config.get("hidden_size"),
        num_hidden_layers=num_layers,
        layers=num_layers,
        num_attention_heads=config.get("num_attention_heads"),
        num_key_value_heads=config.get("num_key_value_heads", config.get("num_attention_heads")),
        intermediate_size=config.get("intermediate_size"),
        torch_dtype=config.get("torch_dtype", config.get("dtype")),
        weight_files=weight_files,
        tokenizer_files=tokenizer_files,
    )


# --------------------------------------------------------------------------- engine build

def _model_shape(config, checkpoint_dir):
    """The Llama dimensions the engine needs, refusing features the runtime lacks."""
    architectures = config.get("architectures") or []
    if config.get("model_type") != "llama" or not any(a in SUPPORTED_ARCHITECTURES for a in architectures):
        raise EngineBuildError(
            "checkpoint %s is model_type %r / architectures %r; the CPU reference engine builds only Llama-style "
            "models (model_type 'llama', %s)" % (checkpoint_dir, config.get("model_type"), architectures,
                                                 ", ".join(SUPPORTED_ARCHITECTURES)))
    shape = {}
    for key in ("vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size",
                "max_position_embeddings"):
        value = config.get(key)
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise EngineBuildError("checkpoint %s: config.json needs a positive integer %s, got %r"
                                   % (checkpoint_dir, key, value))
        shape[key] = value
    shape["num_key_value_heads"] = int(config.get("num_key_value_heads") or shape["num_attention_heads"])
    head_size = config.get("head_dim") or shape["hidden_size"] // shape["num_attention_heads"]
    shape["head_size"] = int(head_size)
    if shape["num_attention_heads"] % shape["num_key_value_heads"]:
        raise EngineBuildError("checkpoint %s: num_attention_heads %d is not a multiple of num_key_value_heads %d"
                               % (checkpoint_dir, shape["num_attention_heads"], shape["num_key_value_heads"]))
    if shape["head_size"] % 2:
        raise EngineBuildError("checkpoint %s: head size %d is odd; rotary embeddings need an even head size"
                               % (checkpoint_dir, shape["head_size"]))
    rope = config.get("rope_parameters") or {}
    shape["rope_theta"] = float(config.get("rope_theta") or rope.get("rope_theta") or 10000.0)
    scaling = config.get("rope_scaling") or (rope if rope.get("rope_type", "default") != "default" else None)
    if scaling:
        raise EngineBuildError("checkpoint %s uses rope scaling %r, which the CPU reference engine does not "
                               "implement" % (checkpoint_dir, scaling))
    for flag in ("attention_bias", "mlp_bias"):
        if config.get(flag):
            raise EngineBuildError("checkpoint %s sets %s; the CPU reference engine has no bias terms"
                                   % (checkpoint_dir, flag))
    if config.get("hidden_act", "silu") != "silu":
        raise EngineBuildError("checkpoint %s uses hidden_act %r; the CPU reference engine implements SwiGLU (silu)"
                               % (checkpoint_dir, config.get("hidden_act")))
    shape["rms_norm_eps"] = float(config.get("rms_norm_eps", 1e-6))
    shape["tie_word_embeddings"] = bool(config.get("tie_word_embeddings", False))

    eos = config.get("eos_token_id")
    if isinstance(eos, list):
        # Newer Llamas list several end tokens; the contract has one end_id.
        eos = eos[0] if eos else None
    bos = config.get("bos_token_id")
    pad = config.get("pad_token_id")
    if eos is None:
        raise EngineBuildError("checkpoint %s: config.json has no eos_token_id; the engine needs a default end_id"
                               % checkpoint_dir)
    shape.update(bos_token_id=bos, eos_token_id=int(eos), pad_token_id=int(eos if pad is None else pad))
    return shape


def _load_checkpoint_tensors(checkpoint_dir, weight_files):
    safetensors_numpy = _import_optional("safetensors.numpy")
    tensors = {}
    for name in weight_files:
        path = os.path.join(checkpoint_dir, name)
        try:
            loaded = safetensors_numpy.load_file(path)
        except Exception as exc:  # safetensors raises several types; all mean "unreadable"
            raise EngineBuildError("cannot read weights %s: %s (bfloat16 weights need converting to float16 or "
                                   "float32 first; numpy has no bfloat16)" % (path, exc))
        tensors.update(loaded)
    return tensors


def _expected_hf_tensors(shape):
    hidden, inter, vocab = shape["hidden_size"], shape["intermediate_size"], shape["vocab_size"]
    q_rows = shape["num_attention_heads"] * shape["head_size"]
    kv_rows = shape["num_key_value_heads"] * shape["head_size"]
    expected = {"model.embed_tokens.weight": (vocab, hidden), "model.norm.weight": (hidden,)}
    if not shape["tie_word_embeddings"]:
        expected["lm_head.weight"] = (vocab, hidden)
    for layer in range(shape["num_hidden_layers"]):
        prefix = "model.layers.%d." % layer
        expected.update({
            prefix + "input_layernorm.weight": (hidden,),
            prefix + "self_attn.q_proj.weight": (q_rows, hidden),
            prefix + "self_attn.k_proj.weight": (kv_rows, hidden),
            prefix + "self_attn.v_proj.weight": (kv_rows, hidden),
            prefix + "self_attn.o_proj.weight": (hidden, q_rows),
            prefix + "post_attention_layernorm.weight": (hidden,),
            prefix + "mlp.gate_proj.weight": (inter, hidden),
            prefix + "mlp.up_proj.weight": (inter, hidden),
            prefix + "mlp.down_proj.weight": (hidden, inter),
        })
    return expected


def _check_tensors(tensors, shape, checkpoint_dir):
    expected = _expected_hf_tensors(shape)
    missing = sorted(name for name in expected if name not in tensors)
    wrong = sorted("%s is %s, expected %s" % (name, tuple(tensors[name].shape), want)
                   for name, want in expected.items() if name in tensors and tuple(tensors[name].shape) != want)
    if missing or wrong:
        problems = []
        if missing:
            problems.append("missing tensors %s" % ", ".join(missing[:8]) + (" ..." if len(missing) > 8 else ""))
        if wrong:
            problems.append("; ".join(wrong[:8]))
        raise EngineBuildError("checkpoint %s does not match its config.json: %s" % (checkpoint_dir,
                                                                                     "; ".join(problems)))
    for name in expected:
        if tensors[name].dtype.kind != "f":
            raise EngineBuildError("checkpoint %s: tensor %s has dtype %s; quantized checkpoints are not supported "
                                   "by the CPU reference engine" % (checkpoint_dir, name, tensors[name].dtype))


def _layer_range(num_layers, pp_size, pp_rank):
    per_stage = num_layers // pp_size
    return range(pp_rank * per_stage, (pp_rank + 1) * per_stage)


def _rank_tensors(tensors, shape, tp_size, pp_size, tp_rank, pp_rank, vocab_padded, dtype):
    """The weights of one rank, sharded as TensorRT-LLM shards Llama."""
    head_size = shape["head_size"]
    q_per_rank = shape["num_attention_heads"] // tp_size * head_size
    kv_per_rank = shape["num_key_value_heads"] // tp_size * head_size
    inter_per_rank = shape["intermediate_size"] // tp_size

    def rows(array, size):
        # Column-parallel: each rank owns a block of output rows.
        return array[tp_rank * size:(tp_rank + 1) * size]

    def cols(array, size):
        # Row-parallel: each rank owns a block of input columns; ranks' partial
        # products are summed (an all-reduce on GPUs).
        return array[:, tp_rank * size:(tp_rank + 1) * size]

    out = {}
    if pp_rank == 0:
        out["transformer.vocab_embedding.weight"] = tensors["model.embed_tokens.weight"]
    for layer in _layer_range(shape["num_hidden_layers"], pp_size, pp_rank):
        src = "model.layers.%d." % layer
        dst = "transformer.layers.%d." % layer
        out[dst + "input_layernorm.weight"] = tensors[src + "input_layernorm.weight"]
        out[dst + "attention.qkv.weight"] = np.concatenate([
            rows(tensors[src + "self_attn.q_proj.weight"], q_per_rank),
            rows(tensors[src + "self_attn.k_proj.weight"], kv_per_rank),
            rows(tensors[src + "self_attn.v_proj.weight"], kv_per_rank)], axis=0)
        out[dst + "attention.dense.weight"] = cols(tensors[src + "self_attn.o_proj.weight"], q_per_rank)
        out[dst + "post_layernorm.weight"] = tensors[src + "post_attention_layernorm.weight"]
        out[dst + "mlp.fc.weight"] = rows(tensors[src + "mlp.gate_proj.weight"], inter_per_rank)
        out[dst + "mlp.gate.weight"] = rows(tensors[src + "mlp.up_proj.weight"], inter_per_rank)
        out[dst + "mlp.proj.weight"] = cols(tensors[src + "mlp.down_proj.weight"], inter_per_rank)
    if pp_rank == pp_size - 1:
        out["transformer.ln_f.weight"] = tensors["model.norm.weight"]
        lm_head = tensors["model.embed_tokens.weight" if shape["tie_word_embeddings"] else "lm_head.weight"]
        if vocab_padded > lm_head.shape[0]:
            # Vocab padded to a multiple of tp so every rank's slice is equal;
            # the runtime drops the padding rows again.
            lm_head = np.concatenate(
                [lm_head, np.zeros((vocab_padded - lm_head.shape[0], lm_head.shape[1]), lm_head.dtype)])
        out["lm_head.weight"] = rows(lm_head, vocab_padded // tp_size)
    return {name: np.ascontiguousarray(array, dtype=dtype) for name, array in out.items()}


def build_engine(checkpoint_dir, output_dir, tp_size=1, pp_size=1, dtype="float32", max_batch_size=8,
                 max_input_len=512, max_seq_len=1024, extra=None):
    """Build a CPU reference engine directory from a Llama-style HF checkpoint.

    Writes ``config.json`` and ``rank{r}.engine`` for r in range(tp_size * pp_size)
    (rank = pp_rank * tp_size + tp_rank, as TensorRT-LLM numbers them) directly
    into ``output_dir``, which must be absent or empty; publishing it
    atomically is the caller's job. ``config.json`` is written last, so its
    presence means the rank files are complete.

    ``dtype`` is the storage type of the weights ("float32", "float16", or
    "auto" for the checkpoint's own); the runtime computes in float32.
    ``extra`` is a JSON-serialisable dict recorded verbatim under
    ``build_config.extra`` (builder options that have no meaning on CPU but
    belong to the engine's identity).

    Raises :class:`CheckpointError` for an incomplete checkpoint and
    :class:`EngineBuildError` for everything else. Returns a summary dict:
    ``engine_dir``, ``world_size``, ``rank_files`` and ``config``.
    """
    _require_numpy()
    facts = validate_checkpoint(checkpoint_dir)
    checkpoint_dir = facts["path"]
    tp_size = _positive_int(tp_size, "tp_size", EngineBuildError)
    pp_size = _positive_int(pp_size, "pp_size", EngineBuildError)
    max_batch_size = _positive_int(max_batch_size, "max_batch_size", EngineBuildError)
    max_input_len = _positive_int(max_input_len, "max_input_len", EngineBuildError)
    max_seq_len = _positive_int(max_seq_len, "max_seq_len", EngineBuildError)
    if max_input_len >= max_seq_len:
        raise EngineBuildError("max_input_len (%d) must be smaller than max_seq_len (%d): max_seq_len counts the "
                               "prompt and the generated tokens together" % (max_input_len, max_seq_len))
    if extra is None:
        extra = {}
    if not isinstance(extra, dict):
        raise EngineBuildError("extra must be a dict of builder options, got %s" % type(extra).__name__)
    try:
        extra = json.loads(json.dumps(extra, sort_keys=True))
    except (TypeError, ValueError) as exc:
        raise EngineBuildError("extra builder options must be JSON-serialisable: %s" % exc)

    config = read_json_object(os.path.join(checkpoint_dir, "config.json"), CheckpointError, "checkpoint config")
    shape = _model_shape(config, checkpoint_dir)
    if dtype == "auto":
        dtype = config.get("torch_dtype", config.get("dtype", "float32"))
    if dtype not in SUPPORTED_DTYPES:
        raise EngineBuildError("dtype %r is not supported by the CPU reference engine; use one of %s (or 'auto' for "
                               "a float32/float16 checkpoint); numpy has no bfloat16"
                               % (dtype, ", ".join(SUPPORTED_DTYPES)))
    if max_seq_len > shape["max_position_embeddings"]:
        raise EngineBuildError("max_seq_len %d exceeds the model's max_position_embeddings %d"
                               % (max_seq_len, shape["max_position_embeddings"]))
    for what, count in (("num_attention_heads", shape["num_attention_heads"]),
                        ("num_key_value_heads", shape["num_key_value_heads"]),
                        ("intermediate_size", shape["intermediate_size"])):
        if count % tp_size:
            raise EngineBuildError("tp_size %d does not divide %s %d of checkpoint %s; choose a tp_size that "
                                   "divides it" % (tp_size, what, count, checkpoint_dir))
    if shape["num_hidden_layers"] % pp_size:
        raise EngineBuildError("pp_size %d does not divide num_hidden_layers %d of checkpoint %s"
                               % (pp_size, shape["num_hidden_layers"], checkpoint_dir))

    output_dir = os.path.abspath(output_dir)
    if os.path.exists(output_dir) and (not os.path.isdir(output_dir) or os.listdir(output_dir)):
        raise EngineBuildError("output_dir %s exists and is not an empty directory; build into a fresh directory "
                               "(write aside, then rename into place)" % output_dir)

    tensors = _load_checkpoint_tensors(checkpoint_dir, facts["weight_files"])
    _check_tensors(tensors, shape, checkpoint_dir)

    world_size = tp_size * pp_size
    vocab_padded = -(-shape["vocab_size"] // tp_size) * tp_size
    np_dtype = np.dtype(dtype)
    try:
        os.makedirs(output_dir, exist_ok=True)
        rank_files = []
        for rank in range(world_size):
            pp_rank, tp_rank = divmod(rank, tp_size)
            layers = _layer_range(shape["num_hidden_layers"], pp_size, pp_rank)
            shard = _rank_tensors(tensors, shape, tp_size, pp_size, tp_rank, pp_rank, vocab_padded, np_dtype)
            name = "rank%d.engine" % rank
            # One metadata key holding sorted JSON: safetensors writes several
            # keys in hash order, which would make rebuilds differ in bytes.
            metadata = {"tritonfleet": json.dumps(
                {"engine_format": ENGINE_FORMAT, "format_version": FORMAT_VERSION, "rank": rank, "tp_rank": tp_rank,
                 "pp_rank": pp_rank, "tp_size": tp_size, "pp_size": pp_size,
                 "layers": [layers.start, layers.stop]}, sort_keys=True)}
            _save_safetensors(shard, os.path.join(output_dir, name), metadata)
            rank_files.append(name)

        engine_config = {
            "version": FORMAT_VERSION,
            "engine_format": ENGINE_FORMAT,
            "pretrained_config": {
                "architecture": "LlamaForCausalLM",
                "dtype": dtype,
                "logits_dtype": "float32",
                "vocab_size": shape["vocab_size"],
                "vocab_size_padded": vocab_padded,
                "hidden_size": shape["hidden_size"],
                "num_hidden_layers": shape["num_hidden_layers"],
                "num_attention_heads": shape["num_attention_heads"],
                "num_key_value_heads": shape["num_key_value_heads"],
                "head_size": shape["head_size"],
                "intermediate_size": shape["intermediate_size"],
                "hidden_act": "silu",
                "max_position_embeddings": shape["max_position_embeddings"],
                "position_embedding_type": "rope_gpt_neox",
                "rms_norm_eps": shape["rms_norm_eps"],
                "rope_theta": shape["rope_theta"],
                "mapping": {"world_size": world_size, "tp_size": tp_size, "pp_size": pp_size},
                "bos_token_id": shape["bos_token_id"],
                "eos_token_id": shape["eos_token_id"],
                "pad_token_id": shape["pad_token_id"],
            },
            "build_config": {
                "max_batch_size": max_batch_size,
                "max_input_len": max_input_len,
                "max_seq_len": max_seq_len,
                "max_beam_width": 1,
                "max_num_tokens": max_batch_size * max_input_len,
                "extra": extra,
            },
        }
        _write_json(os.path.join(output_dir, ENGINE_CONFIG), engine_config)
    except OSError as exc:
        raise EngineBuildError("cannot write the engine to %s: %s" % (output_dir, exc))
    return dict(engine_dir=output_dir, world_size=world_size, rank_files=rank_files, config=engine_config)


def read_engine_config(engine_dir):
    """Parse ``engine_dir/config.json`` of a CPU reference engine and check its rank files.

    Raises :class:`EngineConfigError` when the config is missing or invalid,
    when it describes a TensorRT-LLM (GPU) engine, or when any
    ``rank{r}.engine`` for r < world_size is missing. Returns the parsed config.
    """
    engine_dir = os.path.abspath(engine_dir)
    config_path = os.path.join(engine_dir, ENGINE_CONFIG)
    if not os.path.isfile(config_path):
        raise EngineConfigError("engine directory %s has no %s; build the engine first (or point at the directory "
                                "the build wrote)" % (engine_dir, ENGINE_CONFIG))
    config = read_json_object(config_path, EngineConfigError, "engine config")
    if config.get("engine_format") != ENGINE_FORMAT:
        raise EngineConfigError("engine %s is not a %s engine (engine_format %r); a TensorRT-LLM engine needs the "
                                "gpu accelerator mode" % (engine_dir, ENGINE_FORMAT, config.get("engine_format")))
    pretrained = config.get("pretrained_config")
    build = config.get("build_config")
    if not isinstance(pretrained, dict) or not isinstance(build, dict):
        raise EngineConfigError("engine config %s lacks pretrained_config or build_config; rebuild the engine"
                                % config_path)
    mapping = pretrained.get("mapping") or {}
    world_size = mapping.get("world_size")
    if (not isinstance(world_size, int) or world_size < 1
            or world_size != mapping.get("tp_size", 0) * mapping.get("pp_size", 0)):
        raise EngineConfigError("engine config %s has an invalid mapping %r; rebuild the engine"
                                % (config_path, mapping))
    missing = [name for name in ("rank%d.engine" % r for r in range(world_size))
               if not os.path.isfile(os.path.join(engine_dir, name))]
    if missing:
        raise EngineConfigError("engine %s is incomplete: missing %s of its %d ranks; rebuild the engine"
                                % (engine_dir, ", ".join(missing), world_size))
    return config


# --------------------------------------------------------------------------- command line

def main(argv=None):
    """Command line modelled on ``trtllm-build``; prints a JSON summary on success.

    ``--generate_tiny_checkpoint DIR [--seed N]`` writes the tiny checkpoint;
    ``--checkpoint_dir C --output_dir O [...]`` builds an engine. Both may be
    given at once: the build then uses the generated checkpoint unless
    ``--checkpoint_dir`` says otherwise. Returns the exit status.
    """
    parser = argparse.ArgumentParser(
        prog="cpu_reference.py",
        description="Build tritonfleet CPU reference engines (the cpu mode's trtllm-build) or generate the tiny "
                    "test checkpoint.")
    parser.add_argument("--generate_tiny_checkpoint", metavar="DIR",
                        help="write the tiny random Llama checkpoint to DIR")
    parser.add_argument("--seed", type=int, default=0, help="seed of the tiny checkpoint's weights (default 0)")
    parser.add_argument("--checkpoint_dir", help="Hugging Face checkpoint to build from")
    parser.add_argument("--output_dir", help="engine directory to write (absent or empty)")
    parser.add_argument("--tp_size", type=int, default=1)
    parser.add_argument("--pp_size", type=int, default=1)
    parser.add_argument("--dtype", default="float32", choices=list(SUPPORTED_DTYPES) + ["auto"])
    parser.add_argument("--max_batch_size", type=int, default=8)
    parser.add_argument("--max_input_len", type=int, default=512)
    parser.add_argument("--max_seq_len", type=int, default=1024)
    args = parser.parse_args(argv)

    if not args.generate_tiny_checkpoint and not args.output_dir:
        parser.error("give --generate_tiny_checkpoint DIR, or --checkpoint_dir and --output_dir")
    checkpoint_dir = args.checkpoint_dir or args.generate_tiny_checkpoint
    if args.output_dir and not checkpoint_dir:
        parser.error("--output_dir needs --checkpoint_dir (or --generate_tiny_checkpoint)")
    result = {}
    try:
        if args.generate_tiny_checkpoint:
            result["checkpoint"] = generate_tiny_checkpoint(args.generate_tiny_checkpoint, seed=args.seed)
        if args.output_dir:
            result["engine"] = build_engine(
                checkpoint_dir, args.output_dir, tp_size=args.tp_size, pp_size=args.pp_size, dtype=args.dtype,
                max_batch_size=args.max_batch_size, max_input_len=args.max_input_len, max_seq_len=args.max_seq_len)
    except CpuReferenceError as exc:
        sys.stderr.write("error: %s\n" % exc)
        return 1
    sys.stdout.write(json.dumps(result, indent=2, sort_keys=True) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
