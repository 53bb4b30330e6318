#!/usr/bin/env python
# Copyright: (c) 2026, tritonfleet maintainers
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""CPU stand-in for TensorRT-LLM's engine build tools, for tests on machines without a GPU.

One script, three tools, chosen by the name it is called by (the stand-in
image installs it under each name) or, when run as ``trtllm_standin.py``, by
its first argument:

``examples/<family>/build.py``               v0.7-era build straight from a Hugging Face checkpoint
``examples/<family>/convert_checkpoint.py``  Hugging Face checkpoint -> TRT-LLM-style checkpoint directory
``trtllm-build``                              TRT-LLM-style checkpoint directory -> engine

for the families ``llama`` and ``baichuan``. They accept the real tools'
command-line flags (and reject unknown ones as the real argparse does), but
build with the collection's CPU reference builder
(``plugins/module_utils/cpu_reference.py``, copied next to this file in the
image with the files it imports: ``cpu_engine_format.py``, which defines the
engine format, and ``hashing.py``): the engine directory is a CPU reference
engine (``config.json`` plus ``rank{r}.engine`` per rank) that the ``cpu`` mode's ``tensorrt_llm`` Python
model serves. Its ``config.json`` also records the TensorRT-LLM version of
the image (environment variable ``TRTLLM_VERSION``) under ``version`` and the
tp/pp mapping (``pretrained_config.mapping``; build.py engines also carry
v0.7's ``builder_config.tensor_parallel``/``pipeline_parallel``).

The checkpoint directory written by ``convert_checkpoint.py`` holds a
``config.json`` in TRT-LLM's layout (architecture, dtype, mapping, model
sizes) and, under ``hf/``, a copy of the source checkpoint whose files'
sha256 sums the config records; ``trtllm-build`` checks them before building.

``TRITONFLEET_STANDIN_FAIL=1`` makes ``build.py`` and ``trtllm-build`` fail
like a build that crashes half-way: they log a few lines, leave a truncated
``rank0.engine`` in ``--output_dir`` and exit with status 3.

Exit status: 0 built, 1 the checkpoint or the settings cannot be built (the
reason on stderr), 2 bad command line, 3 simulated failure.
"""

import argparse
import json
import os
import shutil
import sys
import tempfile
import time

FAMILIES = {
    # family: (TRT-LLM architecture name in converted checkpoints, build.py defaults)
    "llama": ("LlamaForCausalLM", dict(max_input_len=2048, max_output_len=512, output_dir="engine_outputs")),
    "baichuan": ("BaichuanForCausalLM", dict(max_input_len=1024, max_output_len=1024, output_dir="baichuan_outputs")),
}
# Architectures trtllm-build accepts in a converted checkpoint. The weights are
# Llama-shaped either way: the CPU reference builder only builds Llama-style models.
ARCHITECTURES = tuple(arch for arch, dummy in FAMILIES.values())
BAICHUAN_VERSIONS = ("v1_7b", "v1_13b", "v2_7b", "v2_13b")
TRT_DTYPES = ("float32", "bfloat16", "float16")
PLUGIN_DTYPES = ("float16", "bfloat16", "float32")
HF_SUBDIR = "hf"
PRODUCER = "tritonfleet-trtllm-standin"
FAIL_ENV = "TRITONFLEET_STANDIN_FAIL"


class StandinError(Exception):
    """A build that cannot proceed; the message is printed on stderr and the exit status is 1."""


# --------------------------------------------------------------------------- plumbing

def trtllm_version():
    return os.environ.get("TRTLLM_VERSION") or "0.7.1"


def log(level, message):
    # TensorRT-LLM's logger format: [timestamp] [TRT-LLM] [I] message
    stream = sys.stderr if level in ("E", "W") else sys.stdout
    stream.write("[%s] [TRT-LLM] [%s] %s\n" % (time.strftime("%m/%d/%Y-%H:%M:%S"), level, message))
    stream.flush()


def _import_beside(name):
    """A file of the collection's CPU reference builder: next to this file (image), else from the checkout."""
    here = os.path.dirname(os.path.realpath(__file__))
    candidates = [here, os.environ.get("TRITONFLEET_CPU_REFERENCE_DIR", ""),
                  os.path.join(here, "..", "..", "..", "plugins", "module_utils")]
    for directory in candidates:
        if directory and os.path.isfile(os.path.join(directory, "cpu_reference.py")):
            if directory not in sys.path:
                sys.path.insert(0, directory)
            return __import__(name)
    raise StandinError("cannot find cpu_reference.py (looked in %s); set TRITONFLEET_CPU_REFERENCE_DIR"
                       % ", ".join(c for c in candidates if c))


def import_cpu_reference():
    """The builder (plugins/module_utils/cpu_reference.py)."""
    return _import_beside("cpu_reference")


def engine_format():
    """The CPU engine's format: names and version (cpu_engine_format.py, served beside the runtime)."""
    return _import_beside("cpu_engine_format")


def sha256_file(path):
    return _import_beside("hashing").file_sha256(path)


def read_json(path, what):
    """A JSON object from ``path``; StandinError (exit 1) with the reason otherwise."""
    return import_cpu_reference().read_json_object(path, StandinError, what)


def write_json(path, data):
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as handle:
        handle.write(json.dumps(data, indent=2, sort_keys=True) + "\n")
    os.replace(tmp, path)


def staging_dir(output_dir):
    """An empty directory inside output_dir (created if needed), on the same file system.

    output_dir may be a bind mount (the engine role mounts its staging
    directory there), so the result is never renamed over it: files are moved
    into it one by one by :func:`publish`.
    """
    try:
        os.makedirs(output_dir, exist_ok=True)
        return tempfile.mkdtemp(prefix=".standin-", dir=output_dir)
    except OSError as exc:
        raise StandinError("cannot create the output directory %s: %s" % (output_dir, exc))


def publish(staging, output_dir, last="config.json", stale=()):
    """Move staging's entries into output_dir, ``last`` last; remove ``stale`` names first.

    The old config.json goes first and the new one comes last, so a reader
    never sees a config.json next to rank files of another build.
    """
    names = sorted(os.listdir(staging))
    for name in [last] + [n for n in stale if n != last]:
        target = os.path.join(output_dir, name)
        if os.path.isdir(target) and not os.path.islink(target):
            shutil.rmtree(target)
        elif os.path.lexists(target):
            os.unlink(target)
    for name in sorted(names, key=lambda n: n == last):
        target = os.path.join(output_dir, name)
        if os.path.isdir(target) and not os.path.islink(target):
            shutil.rmtree(target)
        os.replace(os.path.join(staging, name), target)
    os.rmdir(staging)


def simulate_failure(tool, output_dir):
    """TRITONFLEET_STANDIN_FAIL=1: crash like a build killed half-way through writing rank 0."""
    log("I", "Loading weights for %s (%s stand-in, TensorRT-LLM %s)" % (tool, PRODUCER, trtllm_version()))
    log("I", "Building engine for rank 0 ...")
    os.makedirs(output_dir, exist_ok=True)
    with open(os.path.join(output_dir, engine_format().rank_file(0)), "wb") as handle:
        handle.write(b"\x00" * 64)  # a truncated engine, as a killed build leaves it
    log("E", "simulated build failure: %s=1 is set" % FAIL_ENV)
    sys.stderr.write("%s: error: the build failed (simulated by %s=1)\n" % (tool, FAIL_ENV))
    return 3


def clamp_lengths(max_input_len, max_seq_len, max_position_embeddings):
    """Fit the requested lengths to the model, with a warning, instead of failing like the CPU builder would.

    max_seq_len is capped at the model's max_position_embeddings; when that
    leaves no room for output, max_input_len keeps its requested share of the
    sequence (half when it asked for all of it).
    """
    requested_input, requested_seq = max_input_len, max_seq_len
    if max_seq_len > max_position_embeddings:
        log("W", "max_seq_len %d is larger than max_position_embeddings %d of the model; using %d"
            % (max_seq_len, max_position_embeddings, max_position_embeddings))
        max_seq_len = max_position_embeddings
    if max_input_len >= max_seq_len:
        share = float(requested_input) / requested_seq if requested_input < requested_seq else 0.5
        max_input_len = max(1, min(max_seq_len - 1, int(max_seq_len * share)))
        log("W", "max_input_len %d does not leave room for output within max_seq_len %d; using %d"
            % (requested_input, max_seq_len, max_input_len))
    return max_input_len, max_seq_len


def build(cpu_reference, tool, hf_dir, output_dir, tp_size, pp_size, dtype, max_batch_size, max_input_len,
          max_seq_len, extra, config_sections):
    """Build with the CPU reference builder into output_dir and add the TRT-LLM-style keys to config.json."""
    started = time.time()
    staging = staging_dir(output_dir)
    try:
        log("I", "Building %d engine(s) (tp_size %d, pp_size %d, dtype %s) from %s"
            % (tp_size * pp_size, tp_size, pp_size, dtype, hf_dir))
        result = cpu_reference.build_engine(hf_dir, staging, tp_size=tp_size, pp_size=pp_size, dtype=dtype,
                                            max_batch_size=max_batch_size, max_input_len=max_input_len,
                                            max_seq_len=max_seq_len, extra=extra)
        config = result["config"]
        # As trtllm-build does: the release under "version"; the CPU format's own under "format_version".
        config["version"] = trtllm_version()
        config["format_version"] = engine_format().FORMAT_VERSION
        config["tritonfleet_standin"] = dict(
            tool=tool, producer=PRODUCER, trtllm_version=trtllm_version())
        for section, values in config_sections.items():
            if isinstance(config.get(section), dict):
                config[section].update(values)
            else:
                config[section] = values
        write_json(os.path.join(staging, engine_format().ENGINE_CONFIG), config)
        stale = [n for n in os.listdir(output_dir) if n.startswith("rank") and n.endswith(".engine")]
        publish(staging, output_dir, last=engine_format().ENGINE_CONFIG, stale=stale)
    except cpu_reference.CpuReferenceError as exc:
        shutil.rmtree(staging, ignore_errors=True)
        raise StandinError(str(exc))
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    for name in result["rank_files"]:
        log("I", "Engine written to %s" % os.path.join(output_dir, name))
    log("I", "Config saved to %s" % os.path.join(output_dir, engine_format().ENGINE_CONFIG))
    log("I", "Total time of building all %d engines: %s"
        % (result["world_size"], time.strftime("%H:%M:%S", time.gmtime(time.time() - started))))
    return 0


def checkpoint_facts(cpu_reference, model_dir):
    """validate_checkpoint() with the stand-in's error type."""
    try:
        return cpu_reference.validate_checkpoint(model_dir)
    except cpu_reference.CpuReferenceError as exc:
        raise StandinError(str(exc))


def storage_dtype(dtype):
    if dtype == "bfloat16":
        raise StandinError("dtype bfloat16 cannot be built by the CPU stand-in (numpy has no bfloat16); "
                           "use float16 or float32")
    return dtype


def enabled(value):
    return value == "enable" or value is True


# --------------------------------------------------------------------------- v0.7 examples/<family>/build.py

WORLD_SIZE_ONLY = ("baichuan",)


def parser_build_py(family):
    defaults = FAMILIES[family][1]
    parser = argparse.ArgumentParser(prog="build.py")
    parser.add_argument("--world_size", type=int, default=None, help="world size, only 1 GPU per rank")
    if family in WORLD_SIZE_ONLY:
        # v0.7's baichuan build.py shards tensor-parallel only and has no --tp_size/--pp_size.
        parser.set_defaults(tp_size=None, pp_size=None)
    else:
        parser.add_argument("--tp_size", type=int, default=None)
        parser.add_argument("--pp_size", type=int, default=None)
    parser.add_argument("--model_dir", type=str, default=None)
    if family == "baichuan":
        parser.add_argument("--model_version", type=str, default="v1_13b", choices=BAICHUAN_VERSIONS)
    parser.add_argument("--dtype", type=str, default="float16", choices=TRT_DTYPES)
    parser.add_argument("--timing_cache", type=str, default="model.cache")
    parser.add_argument("--log_level", type=str, default="info")
    parser.add_argument("--max_batch_size", type=int, default=8)
    parser.add_argument("--max_input_len", type=int, default=defaults["max_input_len"])
    parser.add_argument("--max_output_len", type=int, default=defaults["max_output_len"])
    parser.add_argument("--max_beam_width", type=int, default=1)
    parser.add_argument("--max_num_tokens", type=int, default=None)
    parser.add_argument("--use_gpt_attention_plugin", nargs="?", const="float16", type=str, default=False,
                        choices=PLUGIN_DTYPES)
    parser.add_argument("--use_gemm_plugin", nargs="?", const="float16", type=str, default=False,
                        choices=PLUGIN_DTYPES)
    parser.add_argument("--enable_context_fmha", default=False, action="store_true")
    parser.add_argument("--enable_context_fmha_fp32_acc", default=False, action="store_true")
    parser.add_argument("--remove_input_padding", default=False, action="store_true")
    parser.add_argument("--paged_kv_cache", default=False, action="store_true")
    parser.add_argument("--tokens_per_block", type=int, default=64)
    parser.add_argument("--use_inflight_batching", default=False, action="store_true")
    parser.add_argument("--parallel_build", default=False, action="store_true")
    parser.add_argument("--gpus_per_node", type=int, default=8)
    parser.add_argument("--output_dir", type=str, default=defaults["output_dir"])
    return parser


def run_build_py(family, argv):
    tool = "%s/build.py" % family
    args = parser_build_py(family).parse_args(argv)
    if os.environ.get(FAIL_ENV) == "1":
        return simulate_failure(tool, args.output_dir)
    cpu_reference = import_cpu_reference()
    log("I", "%s stand-in of TensorRT-LLM %s examples/%s/build.py (CPU reference engine)"
        % (PRODUCER, trtllm_version(), family))

    if args.model_dir is None:
        raise StandinError("--model_dir is required: the CPU stand-in cannot build random-weight engines")
    if args.tp_size is None and args.pp_size is None:
        tp_size, pp_size = args.world_size or 1, 1
    else:
        tp_size, pp_size = args.tp_size or 1, args.pp_size or 1
    if args.world_size is not None and args.world_size != tp_size * pp_size:
        raise StandinError("world_size %d must equal tp_size %d * pp_size %d" % (args.world_size, tp_size, pp_size))
    if args.max_beam_width != 1:
        raise StandinError("max_beam_width %d: the CPU reference engine decodes with one beam only"
                           % args.max_beam_width)
    dtype = storage_dtype(args.dtype)
    if args.use_inflight_batching:
        # What v0.7's build.py does: in-flight batching needs these three.
        if not args.use_gpt_attention_plugin:
            args.use_gpt_attention_plugin = "float16"
            log("I", "Using GPT attention plugin for inflight batching mode. Setting to default '%s'"
                % args.use_gpt_attention_plugin)
        if not args.remove_input_padding:
            args.remove_input_padding = True
            log("I", "Using remove input padding for inflight batching mode.")
        if not args.paged_kv_cache:
            args.paged_kv_cache = True
            log("I", "Using paged KV cache for inflight batching mode.")

    facts = checkpoint_facts(cpu_reference, args.model_dir)
    hf_config = read_json(os.path.join(facts["path"], "config.json"), "checkpoint config")
    mpe = hf_config.get("max_position_embeddings")
    requested_seq = args.max_input_len + args.max_output_len
    max_input_len, max_seq_len = args.max_input_len, requested_seq
    if isinstance(mpe, int) and mpe > 1:
        max_input_len, max_seq_len = clamp_lengths(args.max_input_len, requested_seq, mpe)
    max_output_len = max_seq_len - max_input_len

    options = dict(sorted(vars(args).items()))
    plugin_config = dict(
        gpt_attention_plugin=args.use_gpt_attention_plugin or None, gemm_plugin=args.use_gemm_plugin or None,
        context_fmha=bool(args.enable_context_fmha), context_fmha_fp32_acc=bool(args.enable_context_fmha_fp32_acc),
        remove_input_padding=bool(args.remove_input_padding), paged_kv_cache=bool(args.paged_kv_cache),
        tokens_per_block=args.tokens_per_block)
    builder_config = dict(
        name=family, precision=args.dtype, tensor_parallel=tp_size, pipeline_parallel=pp_size,
        max_batch_size=args.max_batch_size, max_input_len=max_input_len, max_output_len=max_output_len,
        max_beam_width=1, max_num_tokens=args.max_num_tokens, parallel_build=bool(args.parallel_build),
        use_inflight_batching=bool(args.use_inflight_batching), hidden_act=hf_config.get("hidden_act"),
        vocab_size=hf_config.get("vocab_size"), num_layers=hf_config.get("num_hidden_layers"),
        num_heads=hf_config.get("num_attention_heads"), hidden_size=hf_config.get("hidden_size"),
        max_position_embeddings=mpe)
    if family == "baichuan":
        builder_config["model_version"] = args.model_version
    extra = dict(tool="build.py", family=family, options=options)
    return build(cpu_reference, tool, facts["path"], args.output_dir, tp_size, pp_size, dtype,
                 args.max_batch_size, max_input_len, max_seq_len, extra,
                 {"builder_config": builder_config, "plugin_config": plugin_config,
                  "build_config": {"plugin_config": plugin_config, "max_output_len": max_output_len}})


# --------------------------------------------------------------------------- examples/<family>/convert_checkpoint.py

def parser_convert(family):
    parser = argparse.ArgumentParser(prog="convert_checkpoint.py")
    parser.add_argument("--model_dir", type=str, default=None)
    if family == "baichuan":
        parser.add_argument("--model_version", type=str, default="v1_13b", choices=BAICHUAN_VERSIONS)
    parser.add_argument("--tp_size", type=int, default=1, help="N-way tensor parallelism size")
    parser.add_argument("--pp_size", type=int, default=1, help="N-way pipeline parallelism size")
    parser.add_argument("--dtype", type=str, default="float16", choices=TRT_DTYPES)
    parser.add_argument("--output_dir", type=str, default="tllm_checkpoint", help="The path to save the TensorRT-LLM checkpoint")
    parser.add_argument("--workers", type=int, default=1, help="The number of workers for converting checkpoint in parallel")
    parser.add_argument("--load_model_on_cpu", action="store_true")
    parser.add_argument("--use_parallel_embedding", action="store_true", default=False)
    parser.add_argument("--embedding_sharding_dim", type=int, default=0, choices=[0, 1])
    parser.add_argument("--log_level", type=str, default="info")
    return parser


def run_convert(family, argv):
    tool = "%s/convert_checkpoint.py" % family
    args = parser_convert(family).parse_args(argv)
    cpu_reference = import_cpu_reference()
    log("I", "%s stand-in of TensorRT-LLM %s examples/%s/convert_checkpoint.py" % (PRODUCER, trtllm_version(), family))
    if args.model_dir is None:
        raise StandinError("--model_dir is required: the CPU stand-in converts Hugging Face checkpoints only")
    if args.tp_size < 1 or args.pp_size < 1:
        raise StandinError("tp_size and pp_size must be at least 1")
    dtype = storage_dtype(args.dtype)
    facts = checkpoint_facts(cpu_reference, args.model_dir)
    hf_config = read_json(os.path.join(facts["path"], "config.json"), "checkpoint config")
    if hf_config.get("model_type") != "llama":
        raise StandinError("checkpoint %s is model_type %r; the CPU stand-in converts Llama-style checkpoints "
                           "(model_type 'llama') only" % (facts["path"], hf_config.get("model_type")))

    started = time.time()
    staging = staging_dir(args.output_dir)
    try:
        hf_staging = os.path.join(staging, HF_SUBDIR)
        os.mkdir(hf_staging)
        files = {}
        for name in sorted(os.listdir(facts["path"])):
            source = os.path.join(facts["path"], name)
            if not os.path.isfile(source):
                continue
            shutil.copyfile(source, os.path.join(hf_staging, name))
            files[name] = sha256_file(os.path.join(hf_staging, name))
        os.chmod(hf_staging, 0o755)
        world_size = args.tp_size * args.pp_size
        config = dict(
            architecture=FAMILIES[family][0],
            dtype=dtype,
            logits_dtype="float32",
            vocab_size=hf_config.get("vocab_size"),
            max_position_embeddings=hf_config.get("max_position_embeddings"),
            hidden_size=hf_config.get("hidden_size"),
            num_hidden_layers=hf_config.get("num_hidden_layers"),
            num_attention_heads=hf_config.get("num_attention_heads"),
            num_key_value_heads=hf_config.get("num_key_value_heads", hf_config.get("num_attention_heads")),
            intermediate_size=hf_config.get("intermediate_size"),
            hidden_act=hf_config.get("hidden_act", "silu"),
            norm_epsilon=hf_config.get("rms_norm_eps"),
            position_embedding_type="rope_gpt_neox",
            rotary_base=hf_config.get("rope_theta", 10000.0),
            use_parallel_embedding=bool(args.use_parallel_embedding),
            embedding_sharding_dim=args.embedding_sharding_dim,
            quantization=dict(quant_algo=None, kv_cache_quant_algo=None),
            mapping=dict(world_size=world_size, tp_size=args.tp_size, pp_size=args.pp_size),
            producer=dict(name=PRODUCER, version=trtllm_version(), tool=tool),
            tritonfleet_standin=dict(family=family, hf_dir=HF_SUBDIR, files=files,
                                     source_architectures=hf_config.get("architectures"),
                                     options=dict(sorted(vars(args).items()))),
        )
        if family == "baichuan":
            config["model_version"] = args.model_version
        write_json(os.path.join(staging, "config.json"), config)
        stale = [n for n in os.listdir(args.output_dir) if n.startswith("rank") and n.endswith(".safetensors")]
        publish(staging, args.output_dir, stale=[HF_SUBDIR] + stale)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    log("I", "Checkpoint (world size %d, dtype %s) saved to %s" % (world_size, dtype, args.output_dir))
    log("I", "Total time of converting checkpoints: %s" % time.strftime("%H:%M:%S", time.gmtime(time.time() - started)))
    return 0


# --------------------------------------------------------------------------- trtllm-build

def parser_trtllm_build():
    parser = argparse.ArgumentParser(prog="trtllm-build", formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    switch = dict(nargs="?", const="enable", choices=["enable", "disable"])
    plugin = dict(type=str, choices=["auto", "float16", "float32", "bfloat16", "disable"])
    parser.add_argument("--checkpoint_dir", type=str, default=None)
    parser.add_argument("--output_dir", type=str, default="engine_outputs",
                        help="The path to save the serialized engine files and model configs")
    parser.add_argument("--max_batch_size", type=int, default=256)
    parser.add_argument("--max_input_len", type=int, default=1024)
    parser.add_argument("--max_seq_len", type=int, default=None)
    parser.add_argument("--max_output_len", type=int, default=None)
    parser.add_argument("--max_beam_width", type=int, default=1)
    parser.add_argument("--max_num_tokens", type=int, default=None)
    parser.add_argument("--gemm_plugin", default="disable", **plugin)
    parser.add_argument("--gpt_attention_plugin", default="auto", **plugin)
    parser.add_argument("--remove_input_padding", default="enable", **switch)
    parser.add_argument("--paged_kv_cache", default="enable", **switch)
    parser.add_argument("--context_fmha", default="enable", **switch)
    parser.add_argument("--use_paged_context_fmha", default="disable", **switch)
    parser.add_argument("--tokens_per_block", type=int, default=64)
    parser.add_argument("--strongly_typed", default=False, action="store_true")
    parser.add_argument("--gather_all_token_logits", default=False, action="store_true")
    parser.add_argument("--workers", type=int, default=1, help="The number of workers for building in parallel")
    parser.add_argument("--log_level", type=str, default="info")
    return parser


def run_trtllm_build(argv):
    tool = "trtllm-build"
    args = parser_trtllm_build().parse_args(argv)
    if os.environ.get(FAIL_ENV) == "1":
        return simulate_failure(tool, args.output_dir)
    cpu_reference = import_cpu_reference()
    log("I", "%s stand-in of TensorRT-LLM %s trtllm-build (CPU reference engine)" % (PRODUCER, trtllm_version()))
    if args.checkpoint_dir is None:
        raise StandinError("--checkpoint_dir is required (a directory written by convert_checkpoint.py)")
    if args.max_beam_width != 1:
        raise StandinError("max_beam_width %d: the CPU reference engine decodes with one beam only"
                           % args.max_beam_width)

    checkpoint_dir = os.path.abspath(args.checkpoint_dir)
    config_path = os.path.join(checkpoint_dir, "config.json")
    if not os.path.isfile(config_path):
        raise StandinError("checkpoint_dir %s has no config.json; point --checkpoint_dir at the output of "
                           "convert_checkpoint.py" % checkpoint_dir)
    config = read_json(config_path, "checkpoint config")
    standin = config.get("tritonfleet_standin")
    if "architecture" not in config or "mapping" not in config or not isinstance(standin, dict):
        raise StandinError("%s is not a TensorRT-LLM checkpoint written by this stand-in's convert_checkpoint.py "
                           "(config.json lacks architecture, mapping or tritonfleet_standin; a Hugging Face "
                           "checkpoint must be converted first)" % checkpoint_dir)
    if config["architecture"] not in ARCHITECTURES:
        raise StandinError("checkpoint %s has architecture %r; the CPU stand-in builds %s"
                           % (checkpoint_dir, config["architecture"], ", ".join(ARCHITECTURES)))
    mapping = config["mapping"]
    try:
        tp_size, pp_size = int(mapping["tp_size"]), int(mapping["pp_size"])
        if int(mapping.get("world_size", tp_size * pp_size)) != tp_size * pp_size:
            raise ValueError("world_size != tp_size * pp_size")
    except (KeyError, TypeError, ValueError) as exc:
        raise StandinError("checkpoint %s has an invalid mapping %r (%s); re-run convert_checkpoint.py"
                           % (checkpoint_dir, mapping, exc))
    dtype = storage_dtype(config.get("dtype", "float16"))
    hf_dir = os.path.join(checkpoint_dir, standin.get("hf_dir") or HF_SUBDIR)
    files = standin.get("files") or {}
    if not files:
        raise StandinError("checkpoint %s lists no files; re-run convert_checkpoint.py" % checkpoint_dir)
    for name, expected in sorted(files.items()):
        path = os.path.join(hf_dir, name)
        if not os.path.isfile(path):
            raise StandinError("checkpoint %s is incomplete: %s is missing; re-run convert_checkpoint.py"
                               % (checkpoint_dir, path))
        if sha256_file(path) != expected:
            raise StandinError("checkpoint %s is corrupt: %s does not match the sha256 in config.json; re-run "
                               "convert_checkpoint.py" % (checkpoint_dir, path))

    mpe = config.get("max_position_embeddings")
    if args.max_seq_len is not None:
        max_seq_len = args.max_seq_len
    elif args.max_output_len is not None:
        max_seq_len = args.max_input_len + args.max_output_len
    elif isinstance(mpe, int):
        max_seq_len = mpe
        log("I", "max_seq_len is not specified, using max_position_embeddings %d" % mpe)
    else:
        max_seq_len = args.max_input_len + 1024
    max_input_len = args.max_input_len
    if isinstance(mpe, int) and mpe > 1:
        max_input_len, max_seq_len = clamp_lengths(max_input_len, max_seq_len, mpe)

    plugin_config = dict(
        gemm_plugin=None if args.gemm_plugin == "disable" else args.gemm_plugin,
        gpt_attention_plugin=None if args.gpt_attention_plugin == "disable" else args.gpt_attention_plugin,
        remove_input_padding=enabled(args.remove_input_padding), paged_kv_cache=enabled(args.paged_kv_cache),
        context_fmha=enabled(args.context_fmha), use_paged_context_fmha=enabled(args.use_paged_context_fmha),
        tokens_per_block=args.tokens_per_block)
    extra = dict(tool="trtllm-build", family=standin.get("family"), options=dict(sorted(vars(args).items())),
                 checkpoint_architecture=config["architecture"])
    if "model_version" in config:
        extra["model_version"] = config["model_version"]
    return build(cpu_reference, tool, hf_dir, args.output_dir, tp_size, pp_size, dtype, args.max_batch_size,
                 max_input_len, max_seq_len, extra,
                 {"build_config": {"plugin_config": plugin_config, "max_num_tokens_requested": args.max_num_tokens,
                                   "strongly_typed": bool(args.strongly_typed),
                                   "gather_all_token_logits": bool(args.gather_all_token_logits)},
                  "pretrained_config": {"architecture": config["architecture"]}})


# --------------------------------------------------------------------------- entry point

def dispatch(argv0, argv):
    """(function, arguments) for the tool named by argv0, or by argv[0] when run as trtllm_standin.py."""
    name = os.path.basename(argv0)
    path = os.path.abspath(argv0)
    if name in ("trtllm_standin.py", "trtllm_standin"):
        if not argv or argv[0] in ("-h", "--help"):
            sys.stdout.write(__doc__ + "\nusage: trtllm_standin.py {trtllm-build | FAMILY/build.py | "
                             "FAMILY/convert_checkpoint.py} [flags of that tool]\n")
            sys.exit(0 if argv else 2)
        name, path, argv = os.path.basename(argv[0]), os.path.abspath(argv[0]), argv[1:]
    if name == "trtllm-build":
        return run_trtllm_build, (argv,)
    if name in ("build.py", "convert_checkpoint.py"):
        family = os.path.basename(os.path.dirname(path))
        if family not in FAMILIES:
            sys.stderr.write("%s: the CPU stand-in supports the model families %s, not %r (taken from the "
                             "directory this tool runs from)\n" % (name, ", ".join(sorted(FAMILIES)), family))
            sys.exit(2)
        return (run_build_py if name == "build.py" else run_convert), (family, argv)
    sys.stderr.write("trtllm_standin.py: cannot tell which tool to be from the name %r\n" % name)
    sys.exit(2)


def main(argv=None):
    argv = sys.argv if argv is None else argv
    function, arguments = dispatch(argv[0], list(argv[1:]))
    try:
        return function(*arguments)
    except StandinError as exc:
        sys.stderr.write("error: %s\n" % exc)
        return 1


if __name__ == "__main__":
    sys.exit(main())
