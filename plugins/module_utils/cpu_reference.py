# -*- coding: utf-8 -*-
# Copyright: (c) 2026, tritonfleet maintainers
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The CPU reference engine builder: the ``cpu`` accelerator mode's stand-in for TensorRT-LLM's build.

* :func:`validate_checkpoint` checks that a directory holds what a build needs
  and reports the facts a play wants to show (model type, sizes, tokenizer).
* :func:`build_engine` turns a Llama-style Hugging Face checkpoint into an
  *engine directory* laid out like a TensorRT-LLM engine directory
  (``config.json`` plus one ``rank{r}.engine`` per rank), sharded for tensor
  and pipeline parallelism the way TensorRT-LLM shards Llama. The runtime that
  serves it merges the shards back; sharding here keeps the engine's shape
  honest, so the parts of the deployment that count ranks, place files and key
  caches behave as they do with real engines.
* :func:`read_engine_config` checks a built engine directory.

The engine format (file names, config layout, weight names, version) is
defined once, in ``cpu_engine_format.py`` (served beside the runtime; this
directory's ``cpu_engine_format.py`` links to it). The tiny test checkpoint
is written by ``cpu_tiny_checkpoint.py``, the command line is
``cpu_reference_cli.py``.

The module must import on a controller or host without numpy (Ansible loads
every module_utils file a module names), so numpy is optional at import time
and safetensors/tokenizers are imported only inside the functions that need
them; calling such a function without them raises :class:`CpuReferenceError`
saying what to install.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import functools
import glob
import json
import os
import sys

try:
    import numpy as np
    NUMPY_IMPORT_ERROR = None
except ImportError as _exc:  # pragma: no cover - exercised only on hosts without numpy
    np = None
    NUMPY_IMPORT_ERROR = _exc

# Inside Ansible the engine format is a module_utils file of the collection;
# run as a script or copied beside it (the molecule build image), a plain
# import finds it.
try:
    from ansible_collections.tritonfleet.serving.plugins.module_utils import cpu_engine_format as engine_format
except ImportError:
    import cpu_engine_format as engine_format


class CpuReferenceError(Exception):
    """Base class of this module's errors; the message says what to do."""


class CheckpointError(CpuReferenceError):
    """A checkpoint directory cannot be used (or generated)."""


class EngineBuildError(CpuReferenceError):
    """An engine cannot be built from the given checkpoint and settings."""


class EngineConfigError(CpuReferenceError):
    """An engine directory is missing, incomplete or not a CPU reference engine."""


# --------------------------------------------------------------------------- helpers

def require_numpy():
    if np is None:
        raise CpuReferenceError(
            "the CPU reference engine needs numpy, which this Python (%s) cannot import (%s); install the "
            "collection's requirements.txt into the interpreter that runs it" % (sys.executable, NUMPY_IMPORT_ERROR))


def import_optional(name):
    """Import a heavy optional dependency at call time, with an actionable error."""
    try:
        return __import__(name, fromlist=["_"])
    except ImportError as exc:
        raise CpuReferenceError(
            "the CPU reference engine needs the Python package %r, which this Python (%s) cannot import (%s); "
            "install the collection's requirements.txt into the interpreter that runs it"
            % (name.split(".")[0], sys.executable, exc))


def write_json(path, data):
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


def positive_int(value, name, error_class):
    """``value`` as an int >= 1; digit strings count, since templated Ansible arguments may arrive as text."""
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise error_class("%s must be a positive integer, got %r" % (name, value))
    return value


def umask():
    umask = os.umask(0)
    os.umask(umask)
    return umask


def save_safetensors(tensors, path, metadata):
    # safetensors creates its files 0600; checkpoints and engines must be
    # readable by the (possibly different) user that runs tritonserver.
    safetensors_numpy = import_optional("safetensors.numpy")
    safetensors_numpy.save_file(tensors, path, metadata=metadata)
    os.chmod(path, 0o666 & ~umask())


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
    if config.get("model_type") != "llama" or engine_format.ARCHITECTURE not in architectures:
        raise EngineBuildError(
            "checkpoint %s is model_type %r / architectures %r; the CPU reference engine builds only Llama-style "
            "models (model_type 'llama', %s)"
            % (checkpoint_dir, config.get("model_type"), architectures, engine_format.ARCHITECTURE))
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
    safetensors_numpy = import_optional("safetensors.numpy")
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
        out[engine_format.EMBEDDING] = tensors["model.embed_tokens.weight"]
    for layer in _layer_range(shape["num_hidden_layers"], pp_size, pp_rank):
        src = "model.layers.%d." % layer
        name = functools.partial(engine_format.layer_weight, layer)
        out[name(engine_format.INPUT_NORM)] = tensors[src + "input_layernorm.weight"]
        out[name(engine_format.QKV)] = np.concatenate([
            rows(tensors[src + "self_attn.q_proj.weight"], q_per_rank),
            rows(tensors[src + "self_attn.k_proj.weight"], kv_per_rank),
            rows(tensors[src + "self_attn.v_proj.weight"], kv_per_rank)], axis=0)
        out[name(engine_format.DENSE)] = cols(tensors[src + "self_attn.o_proj.weight"], q_per_rank)
        out[name(engine_format.POST_NORM)] = tensors[src + "post_attention_layernorm.weight"]
        out[name(engine_format.MLP_FC)] = rows(tensors[src + "mlp.gate_proj.weight"], inter_per_rank)
        out[name(engine_format.MLP_GATE)] = rows(tensors[src + "mlp.up_proj.weight"], inter_per_rank)
        out[name(engine_format.MLP_PROJ)] = cols(tensors[src + "mlp.down_proj.weight"], inter_per_rank)
    if pp_rank == pp_size - 1:
        out[engine_format.FINAL_NORM] = tensors["model.norm.weight"]
        lm_head = tensors["model.embed_tokens.weight" if shape["tie_word_embeddings"] else "lm_head.weight"]
        if vocab_padded > lm_head.shape[0]:
            # Vocab padded to a multiple of tp so every rank's slice is equal;
            # the runtime drops the padding rows again.
            lm_head = np.concatenate(
                [lm_head, np.zeros((vocab_padded - lm_head.shape[0], lm_head.shape[1]), lm_head.dtype)])
        out[engine_format.LM_HEAD] = rows(lm_head, vocab_padded // tp_size)
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
    require_numpy()
    facts = validate_checkpoint(checkpoint_dir)
    checkpoint_dir = facts["path"]
    tp_size = positive_int(tp_size, "tp_size", EngineBuildError)
    pp_size = positive_int(pp_size, "pp_size", EngineBuildError)
    max_batch_size = positive_int(max_batch_size, "max_batch_size", EngineBuildError)
    max_input_len = positive_int(max_input_len, "max_input_len", EngineBuildError)
    max_seq_len = positive_int(max_seq_len, "max_seq_len", EngineBuildError)
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
    if dtype not in engine_format.STORAGE_DTYPES:
        raise EngineBuildError("dtype %r is not supported by the CPU reference engine; use one of %s (or 'auto' for "
                               "a float32/float16 checkpoint); numpy has no bfloat16"
                               % (dtype, ", ".join(engine_format.STORAGE_DTYPES)))
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
            name = engine_format.rank_file(rank)
            save_safetensors(shard, os.path.join(output_dir, name),
                             engine_format.rank_metadata(rank, tp_rank, pp_rank, tp_size, pp_size, layers))
            rank_files.append(name)

        engine = engine_format.engine_config(shape, dtype, tp_size, pp_size, vocab_padded, max_batch_size,
                                             max_input_len, max_seq_len, extra)
        # Written last: its presence means the rank files are complete.
        write_json(os.path.join(output_dir, engine_format.ENGINE_CONFIG), engine)
    except OSError as exc:
        raise EngineBuildError("cannot write the engine to %s: %s" % (output_dir, exc))
    return dict(engine_dir=output_dir, world_size=world_size, rank_files=rank_files, config=engine)


def read_engine_config(engine_dir):
    """Parse ``engine_dir/config.json`` of a CPU reference engine and check its rank files.

    Raises :class:`EngineConfigError` when the config is missing or invalid,
    when it describes a TensorRT-LLM (GPU) engine, or when any
    ``rank{r}.engine`` for r < world_size is missing. Returns the parsed config.
    """
    return engine_format.read_engine_config(engine_dir, EngineConfigError)
