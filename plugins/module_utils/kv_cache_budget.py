# -*- coding: utf-8 -*-
# Copyright: (c) 2026, tritonfleet maintainers
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""KV-cache budgets of TensorRT-LLM servers that share a GPU.

The tensorrtllm backend sizes its paged KV cache as the smaller of
``max_tokens_in_paged_kv_cache`` and ``kv_cache_free_gpu_mem_fraction`` times
the GPU memory free when it loads. With one server per GPU the fraction alone
is right. With several, the first server to load takes 90% (the default
fraction) of what is free and the next 90% of what is left, whichever loads
first, so one server gets most of the cache or the last one none at all
(TensorRT-LLM issues #486 and #1400). An explicit token budget per server,
computed so that every server's weights, runtime headroom and KV cache add up
to the GPU's memory, makes the sum fit in any load order.

Units: memory is in MiB (2**20 bytes) as nvidia-smi reports it, except
``kv_bytes_per_token`` (bytes) and engine file sizes (bytes, as ``find`` and
``stat`` report them). Token budgets count tokens of one sequence position,
the unit of ``max_tokens_in_paged_kv_cache``; every rank of a tensor- or
pipeline-parallel server holds its share of the heads or layers for each.

The arithmetic, per server on a GPU shared by ``servers_per_gpu`` servers::

    usable      = min over the host's GPUs of (memory_total_mib - memory_reserved_mib)
    share       = floor(usable / servers_per_gpu)
    kv_mib      = share - weights_mib - headroom_mib
    max_tokens  = floor(kv_mib * 2**20 / kv_bytes_per_token), down to a multiple of tokens_per_block

``weights_mib`` is the largest ``*.engine`` file of the engine (one rank's
serialized engine, which is its weights and little else); ``headroom_mib``
(DEFAULT_HEADROOM_MIB unless given) is left per server for what the engine
allocates besides weights and KV cache: the CUDA context, the engine's
activation memory (it grows with ``max_num_tokens``), the decoder's and
sampler's buffers and, with tp > 1, NCCL's.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

MIB = 1024 * 1024
# Per server. A CUDA context takes about 0.5 GiB on Hopper; activations of a
# 7B-13B engine built with max_num_tokens 8192 take 1-2 GiB; the runtime's
# decoder buffers (logits of max_batch_size x vocab) and NCCL the rest.
DEFAULT_HEADROOM_MIB = 4096
# trtllm-build's default block size, and what v0.7's build.py engines use unless built otherwise.
DEFAULT_TOKENS_PER_BLOCK = 64

# Bytes of one KV-cache element by the engine's precision or its KV-cache quantization.
DTYPE_BYTES = {"float32": 4, "float16": 2, "bfloat16": 2, "fp8": 1, "int8": 1}
# kv_cache_quant_algo of trtllm-build engines. NVFP4 is half a byte plus block
# scales; counting it as one byte keeps the budget on the safe side.
KV_QUANT_BYTES = {"FP8": 1, "INT8": 1, "NVFP4": 1}
# v0.7 quant_mode bits (TensorRT-LLM's QuantMode flags of that release).
QUANT_MODE_INT8_KV_CACHE = 1 << 6
QUANT_MODE_FP8_KV_CACHE = 1 << 7

VAR_PER_GPU = "servers_instances_per_gpu"
VAR_HEADROOM = "servers_gpu_memory_headroom_mib"
VAR_MAX_TOKENS = "repository_tensorrt_llm_parameters.max_tokens_in_paged_kv_cache"


class KVCacheBudgetError(ValueError):
    """An input that cannot be read (a negative size, a config.json that is not a mapping)."""


def _int(value, what, minimum=None):
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise KVCacheBudgetError("%s must be an integer, got %r" % (what, value))
    if minimum is not None and number < minimum:
        raise KVCacheBudgetError("%s must be %d or more, got %d" % (what, minimum, number))
    return number


def _ceil_div(a, b):
    return -(-a // b)


def kv_cache_layout(config):
    """What sizes the KV cache, from an engine's ``config.json`` (either TensorRT-LLM era).

    Returns a dict: ``era``, ``num_layers``, ``num_heads``, ``num_kv_heads``,
    ``head_size`` (whole model, not per rank), ``kv_dtype``, ``kv_element_bytes``,
    ``tp_size``, ``pp_size``, ``paged`` (bool or None when unrecorded),
    ``tokens_per_block``, ``max_seq_len`` (None when unrecorded) and
    ``missing``: the names of the dimensions the file does not record (an
    empty list when the KV bytes per token can be computed).
    """
    if not isinstance(config, dict):
        raise KVCacheBudgetError("an engine's config.json must be a mapping, got %s" % type(config).__name__)
    if "builder_config" in config:
        # v0.7 build.py: whole-model sizes in builder_config, the KV-cache dtype in quant_mode's bits.
        builder = config.get("builder_config") or {}
        plugin = config.get("plugin_config") or {}
        num_heads = builder.get("num_heads")
        quant_mode = int(builder.get("quant_mode") or 0)
        dtype = builder.get("precision")
        if quant_mode & QUANT_MODE_FP8_KV_CACHE:
            dtype = "fp8"
        elif quant_mode & QUANT_MODE_INT8_KV_CACHE:
            dtype = "int8"
        hidden = builder.get("hidden_size")
        input_len, output_len = builder.get("max_input_len"), builder.get("max_output_len")
        layout = dict(
            era="build_py", num_layers=builder.get("num_layers"), num_heads=num_heads,
            num_kv_heads=builder.get("num_kv_heads") or num_heads, head_size=builder.get("head_size"),
            hidden_size=hidden, kv_dtype=dtype, tp_size=builder.get("tensor_parallel", 1),
            pp_size=builder.get("pipeline_parallel", 1), paged=plugin.get("paged_kv_cache"),
            tokens_per_block=plugin.get("tokens_per_block"),
            max_seq_len=(int(input_len) + int(output_len)) if input_len and output_len else None)
    else:
        pretrained = config.get("pretrained_config") or {}
        build = config.get("build_config") or {}
        plugin = build.get("plugin_config") or {}
        mapping = pretrained.get("mapping") or {}
        quant = pretrained.get("quantization") or {}
        num_heads = pretrained.get("num_attention_heads")
        kv_algo = quant.get("kv_cache_quant_algo")
        dtype = pretrained.get("dtype")
        # kv_cache_type (PAGED, CONTINUOUS, DISABLED) replaced plugin_config.paged_kv_cache in later releases.
        kv_type = build.get("kv_cache_type")
        paged = (str(kv_type).upper() == "PAGED") if kv_type is not None else plugin.get("paged_kv_cache")
        max_seq_len = build.get("max_seq_len")
        if not max_seq_len and build.get("max_input_len") and build.get("max_output_len"):
            max_seq_len = int(build["max_input_len"]) + int(build["max_output_len"])
        layout = dict(
            era="trtllm_build", num_layers=pretrained.get("num_hidden_layers"), num_heads=num_heads,
            num_kv_heads=pretrained.get("num_key_value_heads") or num_heads,
            head_size=pretrained.get("head_size") or pretrained.get("head_dim"),
            hidden_size=pretrained.get("hidden_size"), kv_dtype=dtype,
            tp_size=mapping.get("tp_size", 1), pp_size=mapping.get("pp_size", 1), paged=paged,
            tokens_per_block=plugin.get("tokens_per_block") or build.get("tokens_per_block"),
            max_seq_len=max_seq_len or None)
        if kv_algo:
            layout["kv_dtype"] = str(kv_algo)
    if layout["head_size"] is None and layout["hidden_size"] and layout["num_heads"]:
        layout["head_size"] = int(layout["hidden_size"]) // int(layout["num_heads"])
    layout["kv_element_bytes"] = KV_QUANT_BYTES.get(layout["kv_dtype"],
                                                    DTYPE_BYTES.get(str(layout["kv_dtype"]).lower()))
    layout["tp_size"] = _int(layout["tp_size"] or 1, "tp_size", 1)
    layout["pp_size"] = _int(layout["pp_size"] or 1, "pp_size", 1)
    layout["tokens_per_block"] = _int(layout["tokens_per_block"] or DEFAULT_TOKENS_PER_BLOCK, "tokens_per_block", 1)
    layout["max_seq_len"] = int(layout["max_seq_len"]) if layout["max_seq_len"] else None
    if layout["paged"] is not None:
        layout["paged"] = str(layout["paged"]).lower() in ("true", "1", "yes")
    layout["missing"] = [name for name in ("num_layers", "num_kv_heads", "head_size", "kv_element_bytes")
                         if not layout[name]]
    return layout


def kv_bytes_per_token(layout):
    """Bytes of KV cache one token takes on the busiest rank of a server; None when the layout lacks a dimension.

    K and V, for each of the rank's layers (pipeline parallelism splits the
    layers, the first ranks take the remainder) and each of its KV heads
    (tensor parallelism splits the heads; with fewer KV heads than ranks each
    rank keeps one).
    """
    if layout.get("missing"):
        return None
    layers = _ceil_div(int(layout["num_layers"]), layout["pp_size"])
    heads = max(1, _ceil_div(int(layout["num_kv_heads"]), layout["tp_size"]))
    return 2 * layers * heads * int(layout["head_size"]) * layout["kv_element_bytes"]


def usable_gpu_mib(gpus):
    """Memory of the smallest GPU in a ``tritonfleet_gpus`` list (MiB), less what the driver reserves."""
    sizes = []
    for gpu in gpus or []:
        total = gpu.get("memory_total_mib")
        if total in (None, ""):
            continue
        reserved = _int(gpu.get("memory_reserved_mib") or 0, "memory_reserved_mib", 0)
        sizes.append(_int(total, "memory_total_mib", 0) - reserved)
    return min(sizes) if sizes else None


def kv_cache_budget(config, gpu_mib, servers_per_gpu=1, engine_sizes=None, headroom_mib=None, max_tokens=None):
    """The KV-cache budget of each server and what keeps a layout from fitting (see :func:`_budget`).

    A server alone on its GPU (``servers_per_gpu`` 1) with no budget given
    keeps the backend's own sizing (``kv_cache_free_gpu_mem_fraction`` of the
    memory free once it loaded, measured rather than estimated), so its
    numbers are returned but never a problem: the estimate's headroom must not
    refuse a layout that serves today.
    """
    result = _budget(config, gpu_mib, servers_per_gpu, engine_sizes, headroom_mib, max_tokens)
    if result["servers_per_gpu"] == 1 and max_tokens in (None, ""):
        result["unverified"].extend("estimate only, one server per GPU: " + p for p in result["problems"])
        result["problems"] = []
    return result


def _budget(config, gpu_mib, servers_per_gpu, engine_sizes, headroom_mib, max_tokens):
    """The KV-cache budget of each server and what keeps a layout from fitting.

    ``config``: the engine's config.json (None or {} before the engine exists).
    ``gpu_mib``: usable memory of the smallest GPU (:func:`usable_gpu_mib`).
    ``engine_sizes``: sizes in bytes of the engine's ``*.engine`` files.
    ``headroom_mib``: memory left per server besides weights and KV cache
    (None: DEFAULT_HEADROOM_MIB). ``max_tokens``: a budget the user gave
    (``max_tokens_in_paged_kv_cache``), checked instead of computed.

    Returns a dict with ``parameters`` (tensorrt_llm parameters to set: the
    computed ``max_tokens_in_paged_kv_cache`` when several servers share a GPU
    and the user gave none, else empty), ``problems`` (one message per reason
    the layout does not fit, each naming the variable to change), ``unverified``
    (what could not be checked and why) and the numbers: ``gpu_mib``,
    ``servers_per_gpu``, ``share_mib``, ``weights_mib``, ``headroom_mib``,
    ``kv_cache_mib``, ``kv_bytes_per_token``, ``max_tokens`` (the budget the
    servers get, given or computed; None when unknown), ``tokens_per_block``,
    ``max_seq_len``.
    """
    servers_per_gpu = _int(servers_per_gpu, VAR_PER_GPU, 1)
    headroom = DEFAULT_HEADROOM_MIB if headroom_mib in (None, "") else _int(headroom_mib, VAR_HEADROOM, 0)
    given = None if max_tokens in (None, "") else _int(max_tokens, VAR_MAX_TOKENS, 1)
    sizes = [_int(size, "engine file size", 0) for size in (engine_sizes or [])]
    weights_mib = max(sizes) / float(MIB) if sizes else 0.0
    layout = kv_cache_layout(config) if config else None
    per_token = kv_bytes_per_token(layout) if layout else None
    result = dict(parameters={}, problems=[], unverified=[], gpu_mib=gpu_mib, servers_per_gpu=servers_per_gpu,
                  share_mib=None, weights_mib=round(weights_mib, 1), headroom_mib=headroom, kv_cache_mib=None,
                  kv_bytes_per_token=per_token, max_tokens=given,
                  tokens_per_block=layout["tokens_per_block"] if layout else None,
                  max_seq_len=layout["max_seq_len"] if layout else None)
    if gpu_mib in (None, ""):
        result["unverified"].append("GPU memory: the facts list no GPU with memory_total_mib")
        return result
    gpu_mib = _int(gpu_mib, "gpu_mib", 0)
    share = gpu_mib // servers_per_gpu
    kv_mib = share - weights_mib - headroom
    result.update(gpu_mib=gpu_mib, share_mib=share, kv_cache_mib=int(kv_mib) if kv_mib > 0 else 0)
    fix_layout = ("%sbuild the engine for a larger tensor-parallel size (tritonfleet_tp_size) so each rank "
                  "holds fewer weights, or lower %s" % ("lower %s, " % VAR_PER_GPU if servers_per_gpu > 1 else "",
                                                        VAR_HEADROOM))
    what = ("%d MiB of GPU memory (the smallest GPU's %d MiB over %s=%d)" % (share, gpu_mib, VAR_PER_GPU, servers_per_gpu)
            if servers_per_gpu > 1 else "the GPU's %d MiB" % gpu_mib)
    if kv_mib <= 0:
        taken = ("a rank's weights (%.0f MiB) and %s (%d MiB) leave" % (weights_mib, VAR_HEADROOM, headroom) if sizes
                 else "%s (%d MiB) alone, before any weights, leaves" % (VAR_HEADROOM, headroom))
        result["problems"].append("each server gets %s, but %s no room for its KV cache; %s" % (what, taken, fix_layout))
        return result
    if layout is None:
        result["unverified"].append("KV cache size: the engine does not exist yet")
        return result
    if layout["paged"] is False:
        result["unverified"].append("KV cache size: the engine was built without a paged KV cache")
        return result
    if per_token is None:
        result["unverified"].append("KV bytes per token: the engine's config.json does not record %s"
                                    % ", ".join(layout["missing"]))
        if servers_per_gpu > 1 and given is None:
            result["problems"].append(
                "%s=%d servers share each GPU, but the engine's config.json does not record %s, so their KV-cache "
                "budgets cannot be computed; set %s to a token budget per server, or run one server per GPU"
                % (VAR_PER_GPU, servers_per_gpu, ", ".join(layout["missing"]), VAR_MAX_TOKENS))
        return result
    block = layout["tokens_per_block"]
    fit = int(kv_mib * MIB // per_token) // block * block
    longest = layout["max_seq_len"] or block
    if given is not None:
        need_mib = given * per_token / float(MIB)
        if given > fit:
            result["problems"].append(
                "%s=%d tokens need %.0f MiB of KV cache per server (%d bytes per token), but each server has only "
                "%.0f MiB after a rank's weights (%.0f MiB) and %s (%d MiB) in %s; lower it to %d or less, or %s"
                % (VAR_MAX_TOKENS, given, need_mib, per_token, kv_mib, weights_mib, VAR_HEADROOM, headroom, what,
                   fit, fix_layout))
        return result
    result["max_tokens"] = fit
    if fit < longest:
        result["problems"].append(
            "each server's KV cache would hold %d tokens (%.0f MiB after a rank's weights of %.0f MiB and %s of "
            "%d MiB in %s), fewer than one sequence of the engine's max_seq_len %d; %s"
            % (fit, kv_mib, weights_mib, VAR_HEADROOM, headroom, what, longest, fix_layout))
        return result
    if servers_per_gpu > 1:
        result["parameters"] = {"max_tokens_in_paged_kv_cache": fit}
    return result
