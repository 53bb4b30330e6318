# Copyright: (c) 2026, tritonfleet maintainers
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The tritonfleet CPU reference engine's on-disk format, defined once.

File names, the ``config.json`` layout, the weight names and the format
version. Everything that writes or reads a CPU reference engine takes them
from here: the builder (``plugins/module_utils/cpu_reference.py``), the runtime
served by Triton's Python backend (``cpu_engine_runtime.py`` beside this file)
and the molecule stand-in of the TensorRT-LLM backend. Two ways in:

* the repository role copies this file with ``model.py`` and
  ``cpu_engine_runtime.py`` into the ``tensorrt_llm`` model's version
  directory, where the Python backend imports it by its plain name;
* ``plugins/module_utils/cpu_engine_format.py`` is a symbolic link to this
  file, so the builder imports the same definitions as a module_utils file
  (Ansible ships it with the modules that build engines).

Standard library only: a host that builds or checks engines needs nothing else
to read this file.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import os

# Bumped whenever generated checkpoints or built engines would differ in bytes
# or layout; engine cache keys include it, so a bump forces rebuilds.
FORMAT_VERSION = "1"
ENGINE_FORMAT = "tritonfleet-cpu-reference"
ENGINE_CONFIG = "config.json"
# Storage types of the weights; the runtime computes in float32.
STORAGE_DTYPES = ("float32", "float16")
COMPUTE_DTYPE = "float32"
ARCHITECTURE = "LlamaForCausalLM"
# The one safetensors metadata key of a rank file: its rank facts as sorted
# JSON (safetensors writes several keys in hash order, so rebuilds would
# differ in bytes).
RANK_METADATA_KEY = "tritonfleet"

# Weight names: TensorRT-LLM's Llama names, global layer numbers.
EMBEDDING = "transformer.vocab_embedding.weight"  # [vocab, hidden], first pipeline stage
FINAL_NORM = "transformer.ln_f.weight"            # [hidden], last pipeline stage
LM_HEAD = "lm_head.weight"                        # [vocab_padded/tp, hidden], last stage, split over vocab
INPUT_NORM = "input_layernorm.weight"             # [hidden]
QKV = "attention.qkv.weight"                      # [(q+k+v rows)/tp, hidden], this rank's q, k, v heads stacked
DENSE = "attention.dense.weight"                  # [hidden, q rows/tp], o_proj, row-parallel
POST_NORM = "post_layernorm.weight"               # [hidden]
MLP_FC = "mlp.fc.weight"                          # [inter/tp, hidden], gate_proj (the SiLU branch)
MLP_GATE = "mlp.gate.weight"                      # [inter/tp, hidden], up_proj
MLP_PROJ = "mlp.proj.weight"                      # [hidden, inter/tp], down_proj, row-parallel


def format_version_of(config):
    """The format version of an engine's config.json.

    The project's builder writes it under ``version``. A TensorRT-LLM build image that
    writes this format (CI's stand-in of ``trtllm-build``) records the TensorRT-LLM release
    under ``version``, as ``trtllm-build`` does, and the format's under ``format_version``.
    """
    return str(config.get("format_version", config.get("version")))


def release_of(config):
    """The TensorRT-LLM release recorded in an engine's config.json, or None.

    None for the project's own builder: its engines serve every release's contract.
    """
    if "format_version" in config and config.get("version") is not None:
        return str(config["version"])
    return None


def layer_weight(layer, part):
    """The name of weight ``part`` (INPUT_NORM, QKV ...) of decoder layer ``layer``."""
    return "transformer.layers.%d.%s" % (layer, part)


def rank_file(rank):
    """The file name of rank ``rank`` (rank = pp_rank * tp_size + tp_rank, as TensorRT-LLM numbers them)."""
    return "rank%d.engine" % rank


def rank_metadata(rank, tp_rank, pp_rank, tp_size, pp_size, layers):
    """The safetensors metadata of one rank file (``layers`` is the range of its decoder layers)."""
    return {RANK_METADATA_KEY: json.dumps(
        {"engine_format": ENGINE_FORMAT, "format_version": FORMAT_VERSION, "rank": rank, "tp_rank": tp_rank,
         "pp_rank": pp_rank, "tp_size": tp_size, "pp_size": pp_size, "layers": [layers.start, layers.stop]},
        sort_keys=True)}


def engine_config(shape, dtype, tp_size, pp_size, vocab_padded, max_batch_size, max_input_len, max_seq_len,
                  extra):
    """The ``config.json`` of an engine; ``shape`` holds the model's dimensions and special token ids."""
    return {
        "version": FORMAT_VERSION,
        "engine_format": ENGINE_FORMAT,
        "pretrained_config": {
            "architecture": ARCHITECTURE,
            "dtype": dtype,
            "logits_dtype": COMPUTE_DTYPE,
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
            "mapping": {"world_size": tp_size * pp_size, "tp_size": tp_size, "pp_size": pp_size},
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


def engine_mapping(config):
    """(tp_size, pp_size) of a parsed engine config; KeyError/TypeError/ValueError when it has none."""
    mapping = config["pretrained_config"]["mapping"]
    return int(mapping["tp_size"]), int(mapping["pp_size"])


def read_engine_config(engine_dir, error):
    """Parse ``engine_dir``'s config.json of a CPU reference engine and check that every rank file is there.

    Raises ``error`` (an exception class) saying what to rebuild or fix when
    the config is missing or invalid, when it describes another engine format
    (a TensorRT-LLM engine), or when a ``rank{r}.engine`` is missing. Returns
    the parsed config.
    """
    engine_dir = os.path.abspath(engine_dir)
    config_path = os.path.join(engine_dir, ENGINE_CONFIG)
    if not os.path.isfile(config_path):
        raise error("engine directory %s has no %s; build the engine first (or point at the directory the build "
                    "wrote)" % (engine_dir, ENGINE_CONFIG))
    try:
        with open(config_path, encoding="utf-8") as handle:
            config = json.load(handle)
    except OSError as exc:
        raise error("cannot read engine config %s: %s" % (config_path, exc))
    except ValueError as exc:
        raise error("engine config %s is not valid JSON (%s); rebuild the engine" % (config_path, exc))
    found = config.get("engine_format") if isinstance(config, dict) else None
    if found != ENGINE_FORMAT:
        raise error("engine %s is not a %s engine (engine_format %r); a TensorRT-LLM engine needs the gpu "
                    "accelerator mode" % (engine_dir, ENGINE_FORMAT, found))
    if not isinstance(config.get("pretrained_config"), dict) or not isinstance(config.get("build_config"), dict):
        raise error("engine config %s lacks pretrained_config or build_config; rebuild the engine" % config_path)
    mapping = config["pretrained_config"].get("mapping")
    try:
        tp_size, pp_size = engine_mapping(config)
        world_size = int(mapping["world_size"])
    except (KeyError, TypeError, ValueError):
        world_size = tp_size = pp_size = 0
    if world_size < 1 or world_size != tp_size * pp_size:
        raise error("engine config %s has an invalid mapping %r; rebuild the engine" % (config_path, mapping))
    missing = [rank_file(r) for r in range(world_size) if not os.path.isfile(os.path.join(engine_dir, rank_file(r)))]
    if missing:
        raise error("engine %s is incomplete: missing %s of its %d ranks; rebuild the engine"
                    % (engine_dir, ", ".join(missing), world_size))
    return config
