# Copyright: (c) 2026, tritonfleet maintainers
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Triton Python backend model serving the CPU reference engine as ``tensorrt_llm``.

In the ``cpu`` accelerator mode this file stands where the ``tensorrtllm``
backend stands on GPUs. It answers with the tensors of the config.pbtxt Triton
hands it, so it speaks the contract of whichever TensorRT-LLM release the
repository was rendered for:

* inputs: the old and the new names (``min_length``/``min_tokens``,
  ``random_seed``/``seed``), ``exclude_input_in_output`` as a request input
  (0.19 and later) over the parameter, ``num_return_sequences``, stop and bad
  word lists, end and pad ids, the p-tuning prompt table, the sampling knobs;
* outputs: log-probs and logits computed by the engine, ``batch_index`` and
  ``sequence_index``, the timestamps it measured for ``return_perf_metrics``,
  ``num_input_tokens``/``num_output_tokens``.

Which outputs a response carries follows the release's backend. Up to 0.12
(configs without ``sequence_index``) every declared output is in every
response: log-probs are always real; logits not asked for are the backend's
``[1, 1, 1]`` zero stand-in, which says "not requested". From 0.19 an output is
present only when asked for (``return_log_probs``, ``return_*_logits``,
``return_perf_metrics``) or meaningful (``batch_index`` with batch > 1,
``sequence_index`` with more than one sequence). Outputs the CPU engine has no
truthful value for (KV-cache block counts, speculative acceptance rate) are
left out.

A request carrying an input the CPU engine cannot honour (LoRA, draft tokens,
guided decoding, encoder or cross-attention inputs, beam search...) gets an
error response naming the input, never a silently different answer.

Parameters read from config.pbtxt (unset ones, and ``${...}`` placeholders
left unfilled, take the default): ``gpt_model_path`` (required; relative
paths are resolved against the model's directory), ``exclude_input_in_output``
(default true), ``max_beam_width`` (default 1). GPU-only parameters are
ignored.

Metrics: the model publishes the TensorRT-LLM backend's metric families
(``nv_trt_llm_request_metrics``, ``nv_trt_llm_runtime_memory_metrics``,
``nv_trt_llm_kv_cache_block_metrics``, ``nv_trt_llm_inflight_batcher_metrics``
or, for ``gpt_model_type`` V1, ``nv_trt_llm_v1_metrics``,
``nv_trt_llm_general_metrics`` and ``nv_trt_llm_disaggregated_serving_metrics``)
with the backend's names and labels (``model``, ``version`` and the family's
own), through the Python backend's custom metrics. The values are the CPU
engine's own: requests it holds, the sequence it decodes, the KV cache it
holds counted in blocks of a pool sized by ``max_tokens_in_paged_kv_cache``
(else ``max_batch_size`` sequences of ``max_seq_len`` tokens), its iteration
count, the bytes of its weights and caches. Several instances of the model
add their counts into the same series (their own share each), as one
backend instance's figures would add up; the block fraction, the block size
and the timestamp are the latest instance's. They are published at most every
``stats_check_period_ms`` (100 by default, the backend's) while decoding and
at once when a request arrives or ends. A Python backend without custom
metrics serves the model without them (one warning in the log).

Decoupled, each request's responses go through its response sender
(``streaming`` true: one response per token); not decoupled, one response per
request, and ``streaming`` is refused as the TensorRT-LLM backend refuses it.
Requests are decoded one after another: a reference for correctness, not a
batching engine. The logic lives in :class:`EngineModel` (no Triton needed), so
the unit tests drive it directly.
"""

import json
import os
import sys
import time
import traceback

import numpy as np

try:  # only present inside the Triton Python backend stub
    import triton_python_backend_utils as pb_utils
except ImportError:  # pragma: no cover - unit tests drive EngineModel directly
    pb_utils = None

# The runtime ships in this version directory next to this file; Triton does
# not put that directory on sys.path.
_HERE = os.path.dirname(os.path.abspath(__file__))
if not sys.path or sys.path[0] != _HERE:
    sys.path.insert(0, _HERE)

from cpu_engine_runtime import CpuEngine, EngineLoadError, RequestError  # noqa: E402

_TRUE = ("true", "1", "yes", "on")
_FALSE = ("false", "0", "no", "off")

NUMPY_TYPES = {
    "TYPE_BOOL": np.bool_, "TYPE_UINT8": np.uint8, "TYPE_UINT64": np.uint64, "TYPE_INT32": np.int32,
    "TYPE_INT64": np.int64, "TYPE_FP16": np.float16, "TYPE_FP32": np.float32, "TYPE_BF16": np.float32,
    "TYPE_STRING": np.object_,
}

# Inputs the engine cannot honour, with what a client can do instead.
UNSUPPORTED = {
    "draft_input_ids": "speculative decoding (draft tokens)",
    "draft_logits": "speculative decoding (draft logits)",
    "draft_acceptance_threshold": "speculative decoding",
    "encoder_input_features": "encoder-decoder models",
    "encoder_output_lengths": "encoder-decoder models",
    "cross_attention_mask": "encoder-decoder and multimodal models",
    "skip_cross_attn_blocks": "encoder-decoder and multimodal models",
    "mrope_rotary_cos_sin": "multimodal models (mrope)",
    "mrope_position_deltas": "multimodal models (mrope)",
    "lora_task_id": "LoRA adapters",
    "lora_weights": "LoRA adapters",
    "lora_config": "LoRA adapters",
    "context_phase_params": "disaggregated serving",
    "guided_decoding_guide_type": "guided decoding",
    "guided_decoding_guide": "guided decoding",
    "lookahead_window_size": "lookahead decoding",
    "lookahead_ngram_size": "lookahead decoding",
    "lookahead_verification_set_size": "lookahead decoding",
}
# Inputs that change nothing on this engine, accepted as the backend accepts
# them: beam-search knobs with one beam, the prompt-table ids that only key
# KV-cache reuse, and KV-cache retention priorities (no cache outlives a request).
IGNORED = ("len_penalty", "early_stopping", "beam_search_diversity_rate", "runtime_top_p_min",
           "runtime_top_p_reset_ids", "prompt_table_extra_ids", "retention_token_range_starts",
           "retention_token_range_ends", "retention_token_range_priorities",
           "retention_token_range_durations_ms", "retention_decode_priority", "retention_decode_duration_ms")
PERF_TIMES = ("arrival_time_ns", "first_scheduled_time_ns", "first_token_time_ns", "last_token_time_ns")

# The TensorRT-LLM backend's metric families: (name, help, the family's label, its values, kind).
REQUEST_METRICS = ("nv_trt_llm_request_metrics", "TRT LLM request metrics", "request_type",
                   ("active", "max", "scheduled", "context", "waiting"), "gauge")
MEMORY_METRICS = ("nv_trt_llm_runtime_memory_metrics", "TRT LLM runtime memory metrics", "memory_type",
                  ("cpu", "gpu", "pinned"), "gauge")
KV_CACHE_METRICS = ("nv_trt_llm_kv_cache_block_metrics", "TRT LLM KV cache block metrics", "kv_cache_block_type",
                    ("max", "free", "used", "tokens_per", "reused", "fraction"), "gauge")
INFLIGHT_BATCHER_METRICS = ("nv_trt_llm_inflight_batcher_metrics", "TRT LLM inflight_batcher-specific metrics",
                            "inflight_batcher_specific_metric",
                            ("total_context_tokens", "generation_requests", "micro_batch_id", "paused_requests"),
                            "gauge")
V1_METRICS = ("nv_trt_llm_v1_metrics", "TRT LLM v1-specific metrics", "v1_specific_metric",
              ("total_context_tokens", "total_generation_tokens", "empty_generation_slots"), "gauge")
GENERAL_METRICS = ("nv_trt_llm_general_metrics", "General TRT LLM metrics", "general_type",
                   ("timestamp", "iteration_counter"), "gauge")
DISAGGREGATED_METRICS = ("nv_trt_llm_disaggregated_serving_metrics", "TRT LLM disaggregated serving metrics",
                         "disaggregated_serving_type", ("kv_cache_transfer_ms", "request_count"), "counter")
# Series that are one instance's reading, not a count its share adds to (the last instance to publish wins).
ABSOLUTE_SERIES = frozenset([
    ("nv_trt_llm_kv_cache_block_metrics", "tokens_per"), ("nv_trt_llm_kv_cache_block_metrics", "fraction"),
    ("nv_trt_llm_inflight_batcher_metrics", "micro_batch_id"), ("nv_trt_llm_general_metrics", "timestamp"),
])


def _parameter(parameters, name):
    """A config.pbtxt parameter's string value, or None when unset or an unfilled ``${...}`` placeholder."""
    value = (parameters.get(name) or {}).get("string_value")
    if value is None:
        return None
    value = value.strip()
    if not value or value.startswith("${"):
        return None
    return value


def _bool_parameter(parameters, name, default):
    value = _parameter(parameters, name)
    if value is None:
        return default
    if value.lower() in _TRUE:
        return True
    if value.lower() in _FALSE:
        return False
    raise ValueError("parameter %s must be true or false, got %r" % (name, value))


def _int_parameter(parameters, name, default):
    value = _parameter(parameters, name)
    if value is None:
        return default
    try:
        return int(value)
    except ValueError:
        raise ValueError("parameter %s must be an integer, got %r" % (name, value))


def _word_list(flat, what):
    """Decode upstream's flattened word list [2, n]: row 0 the ids, row 1 cumulative end offsets padded with -1."""
    flat = np.asarray(flat)
    if flat.size == 0:
        return []
    if flat.ndim != 2 or flat.shape[0] != 2:
        raise RequestError("%s must be [2, n] per sequence (ids row, offsets row), got %s"
                           % (what, list(flat.shape)))
    ids, offsets = flat[0], flat[1]
    words, start = [], 0
    for end in offsets:
        end = int(end)
        if end < 0:
            break
        if end < start or end > ids.size:
            raise RequestError("%s has offset %d outside [%d, %d]; offsets are cumulative word ends"
                               % (what, end, start, ids.size))
        if end > start:
            words.append([int(t) for t in ids[start:end]])
        start = end
    return words


class ParsedRequest:
    """One inference request's inputs (a dict name -> array), split per sequence of the batch."""

    def __init__(self, arrays):
        self.arrays = {name: np.asarray(value) for name, value in arrays.items() if value is not None}
        if "input_ids" not in self.arrays:
            raise RequestError("input_ids is required (the CPU engine takes token ids, not encoder features)")
        if "request_output_len" not in self.arrays:
            raise RequestError("request_output_len is required")
        input_ids = self.arrays["input_ids"]
        # With max_batch_size 0 in config.pbtxt tensors arrive without the batch dim.
        self.input_ids = input_ids.reshape(1, -1) if input_ids.ndim == 1 else input_ids.reshape(input_ids.shape[0], -1)
        self.batch_size = self.input_ids.shape[0]

    def sent(self, name):
        array = self.arrays.get(name)
        return array is not None and array.size > 0

    def row(self, name, index):
        """The ``index``-th sequence's slice of an input, or None when the input was not sent."""
        array = self.arrays.get(name)
        if array is None:
            return None
        if array.ndim == 0:
            return array
        if array.shape[0] == self.batch_size:
            return array[index]
        if array.shape[0] == 1:
            return array[0]  # one value for the whole batch
        raise RequestError("%s has batch size %d but input_ids has %d" % (name, array.shape[0], self.batch_size))

    def scalar(self, name, index, default, cast):
        value = self.row(name, index)
        if value is None:
            return default
        value = np.asarray(value).reshape(-1)
        return default if value.size == 0 else cast(value[0])

    def first(self, names, index, default, cast):
        """The scalar of the first of ``names`` that was sent (a release's name, then the other release's)."""
        for name in names:
            if name in self.arrays:
                return self.scalar(name, index, default, cast)
        return default

    def flag(self, name):
        """A BOOL input that applies to the whole request (true if any sequence sets it)."""
        array = self.arrays.get(name)
        return bool(array is not None and array.size and np.any(array))


def _pad_to(array, shape, fill):
    if tuple(array.shape) == tuple(shape):
        return array
    out = np.full(shape, fill, dtype=array.dtype)
    out[tuple(slice(0, n) for n in array.shape)] = array
    return out


def stack_responses(pieces, fills):
    """Join per-sequence responses (leading dim 1) into one response of the whole batch, padding trailing dims."""
    if len(pieces) == 1:
        return pieces[0]
    names = [name for name in pieces[0] if all(name in piece for piece in pieces)]
    joined = {}
    for name in names:
        arrays = [np.asarray(piece[name]) for piece in pieces]
        shape = [max(a.shape[d] for a in arrays) for d in range(1, arrays[0].ndim)]
        joined[name] = np.concatenate(
            [_pad_to(a, [a.shape[0]] + shape, fills.get(name, 0)) for a in arrays], axis=0)
    return joined


class EngineModel:
    """The request handling of the cpu ``tensorrt_llm`` model, independent of Triton.

    ``model_config`` is the parsed config Triton hands the model; its inputs
    and outputs decide what a request may carry and what a response holds.
    """

    def __init__(self, engine, model_config, decoupled, clock=time.time_ns):
        parameters = model_config.get("parameters") or {}
        self.engine = engine
        self.decoupled = bool(decoupled)
        self.clock = clock
        self.exclude_input_in_output = _bool_parameter(parameters, "exclude_input_in_output", True)
        self.max_beam_width = _int_parameter(parameters, "max_beam_width", 1)
        self.inputs = [entry["name"] for entry in model_config.get("input", [])]
        self.output_types = {entry["name"]: NUMPY_TYPES.get(entry.get("data_type"), None)
                             for entry in model_config.get("output", [])}
        # Up to 0.12 the backend answered every declared output; 0.19 (the
        # release that added sequence_index) only what was asked for.
        self.always = "sequence_index" not in self.output_types
        self.v1 = (_parameter(parameters, "gpt_model_type") or "").lower() == "v1"
        self.max_requests = _int_parameter(parameters, "max_num_sequences", engine.max_batch_size)
        engine.stats.set_token_budget(_int_parameter(parameters, "max_tokens_in_paged_kv_cache", None))
        self.active = 0  # requests received whose final response has not gone yet

    # ------------------------------------------------------------------ metrics

    def admit(self, count):
        """``count`` requests arrived (one execute call's)."""
        self.active += count

    def done(self):
        """One request's final response went out."""
        self.active = max(self.active - 1, 0)

    def families(self):
        """The metric families this model publishes, as the backend has them for its gpt_model_type."""
        return (REQUEST_METRICS, MEMORY_METRICS, KV_CACHE_METRICS,
                V1_METRICS if self.v1 else INFLIGHT_BATCHER_METRICS, GENERAL_METRICS, DISAGGREGATED_METRICS)

    def metric_values(self):
        """Every series' value now: {(family name, label value): number}."""
        stats = self.engine.stats.snapshot()
        scheduled = stats["scheduled"]
        values = {
            ("nv_trt_llm_request_metrics", "active"): self.active,
            ("nv_trt_llm_request_metrics", "max"): self.max_requests,
            ("nv_trt_llm_request_metrics", "scheduled"): scheduled,
            ("nv_trt_llm_request_metrics", "context"): stats["context_requests"],
            ("nv_trt_llm_request_metrics", "waiting"): max(self.active - scheduled, 0),
            # Weights and KV caches live in host memory; nothing is on a GPU or pinned.
            ("nv_trt_llm_runtime_memory_metrics", "cpu"): stats["cpu_bytes"],
            ("nv_trt_llm_runtime_memory_metrics", "gpu"): 0,
            ("nv_trt_llm_runtime_memory_metrics", "pinned"): 0,
            ("nv_trt_llm_kv_cache_block_metrics", "max"): stats["max_blocks"],
            ("nv_trt_llm_kv_cache_block_metrics", "free"): stats["free_blocks"],
            ("nv_trt_llm_kv_cache_block_metrics", "used"): stats["used_blocks"],
            ("nv_trt_llm_kv_cache_block_metrics", "tokens_per"): stats["tokens_per_block"],
            # No cache outlives its request, so no block is ever reused.
            ("nv_trt_llm_kv_cache_block_metrics", "reused"): 0,
            ("nv_trt_llm_kv_cache_block_metrics", "fraction"): stats["fraction"],
            ("nv_trt_llm_general_metrics", "timestamp"): stats["timestamp_us"],
            ("nv_trt_llm_general_metrics", "iteration_counter"): stats["iterations"],
            # No disaggregated serving: nothing is transferred.
            ("nv_trt_llm_disaggregated_serving_metrics", "kv_cache_transfer_ms"): 0,
            ("nv_trt_llm_disaggregated_serving_metrics", "request_count"): 0,
        }
        if self.v1:
            values.update({
                ("nv_trt_llm_v1_metrics", "total_context_tokens"): stats["context_tokens"],
                ("nv_trt_llm_v1_metrics", "total_generation_tokens"): stats["generation_requests"],
                ("nv_trt_llm_v1_metrics", "empty_generation_slots"): max(self.engine.max_batch_size - scheduled, 0),
            })
        else:
            values.update({
                ("nv_trt_llm_inflight_batcher_metrics", "total_context_tokens"): stats["context_tokens"],
                ("nv_trt_llm_inflight_batcher_metrics", "generation_requests"): stats["generation_requests"],
                # One micro batch, and a request once scheduled runs to its end: none is paused.
                ("nv_trt_llm_inflight_batcher_metrics", "micro_batch_id"): 0,
                ("nv_trt_llm_inflight_batcher_metrics", "paused_requests"): 0,
            })
        return values

    # ------------------------------------------------------------------ checks

    def parse(self, arrays):
        """Check a request's inputs and return the ParsedRequest; RequestError names what cannot be honoured."""
        unknown = sorted(name for name, value in arrays.items() if value is not None and name not in self.inputs)
        if unknown:
            raise RequestError("unexpected input(s) %s: not in this model's config" % ", ".join(unknown))
        parsed = ParsedRequest(arrays)
        for name, what in UNSUPPORTED.items():
            if parsed.sent(name):
                raise RequestError("input %s is not supported by the CPU reference engine (%s needs the gpu "
                                   "accelerator mode); leave it out of the request" % (name, what))
        for index in range(parsed.batch_size):
            decay = parsed.scalar("runtime_top_p_decay", index, 1.0, float)
            if decay != 1.0:
                raise RequestError("input runtime_top_p_decay %r is not supported by the CPU reference engine "
                                   "(send 1.0 or leave it out)" % decay)
            beam_width = parsed.scalar("beam_width", index, 1, int)
            if beam_width != 1:
                raise RequestError("input beam_width %d is not supported: the CPU reference engine decodes with a "
                                   "single beam (send beam_width 1 and num_return_sequences for several answers)"
                                   % beam_width)
            self._check_decoder_inputs(parsed, index)
        count = self.num_sequences(parsed)
        if count < 1:
            raise RequestError("input num_return_sequences must be at least 1, got %d" % count)
        if parsed.flag("streaming") and not self.decoupled:
            raise RequestError("input streaming: streaming is only supported when the model is deployed decoupled "
                               "(model_transaction_policy { decoupled: true }); this model is not decoupled")
        if count > 1 and not self.decoupled:
            raise RequestError("input num_return_sequences %d needs the decoupled transaction policy (one response "
                               "per sequence); this model is not decoupled" % count)
        if self.decoupled and parsed.batch_size > 1 and parsed.flag("streaming") and \
                "batch_index" not in self.output_types:
            raise RequestError("streaming requests must carry one sequence (batch size 1) at this release (its "
                               "responses have no batch_index), got %d" % parsed.batch_size)
        if parsed.batch_size > self.engine.max_batch_size:
            raise RequestError("the request carries %d sequences but the engine was built with max_batch_size %d"
                               % (parsed.batch_size, self.engine.max_batch_size))
        return parsed

    def _check_decoder_inputs(self, parsed, index):
        """decoder_input_ids is what preprocessing fills for decoder-only models ([pad_id], length 1); more is an
        encoder-decoder request the engine cannot serve."""
        if not parsed.sent("decoder_input_ids"):
            return
        ids = np.asarray(parsed.row("decoder_input_ids", index)).reshape(-1)
        length = parsed.scalar("decoder_input_lengths", index, ids.size, int)
        pad_id = parsed.scalar("pad_id", index, self.engine.pad_id, int)
        if length > 1 or (length == 1 and ids.size and int(ids[0]) != pad_id):
            raise RequestError("input decoder_input_ids (decoder_text_input) is for encoder-decoder models; the CPU "
                               "reference engine is decoder-only: leave decoder_text_input out")

    @staticmethod
    def num_sequences(parsed):
        return parsed.scalar("num_return_sequences", 0, 1, int)

    # ------------------------------------------------------------------ generation

    def _steps(self, parsed, index, rng, context_sink, want_log_probs):
        """Validate one batch entry's inputs and return (prompt ids, generator of (token, log prob, logits))."""
        width = parsed.input_ids.shape[1]
        length = parsed.scalar("input_lengths", index, width, int)
        if not 1 <= length <= width:
            raise RequestError("input_lengths %d must lie in [1, %d] (the width of input_ids)" % (length, width))
        prompt = parsed.input_ids[index, :length]
        table = parsed.row("prompt_embedding_table", index)
        if table is not None:
            table = np.asarray(table, dtype=np.float32)
            table = table.reshape(-1, table.shape[-1]) if table.size else None
            rows = parsed.scalar("prompt_vocab_size", index, None, int)
            if table is not None and rows is not None:
                table = table[:max(rows, 0)]
        stop_words = parsed.row("stop_words_list", index)
        bad_words = parsed.row("bad_words_list", index)
        steps = self.engine.generate(
            prompt, parsed.scalar("request_output_len", index, None, int),
            end_id=parsed.scalar("end_id", index, self.engine.eos_id, int),
            pad_id=parsed.scalar("pad_id", index, self.engine.pad_id, int),
            temperature=parsed.scalar("temperature", index, 1.0, float),
            top_k=parsed.scalar("runtime_top_k", index, 1, int),
            top_p=parsed.scalar("runtime_top_p", index, 0.0, float),
            repetition_penalty=parsed.scalar("repetition_penalty", index, 1.0, float),
            presence_penalty=parsed.scalar("presence_penalty", index, 0.0, float),
            frequency_penalty=parsed.scalar("frequency_penalty", index, 0.0, float),
            min_length=parsed.first(("min_tokens", "min_length"), index, 1, int),
            stop_words=None if stop_words is None else _word_list(stop_words, "stop_words_list"),
            bad_words=None if bad_words is None else _word_list(bad_words, "bad_words_list"),
            embedding_bias=parsed.row("embedding_bias", index),
            return_log_probs=want_log_probs,
            prompt_embedding_table=table,
            rng=rng, details=True, context_logits=context_sink,
        )
        return prompt, steps

    def _rng(self, parsed, index):
        seed = parsed.first(("seed", "random_seed"), index, None, int)
        return np.random.default_rng(seed)

    def responses(self, arrays, arrival_ns=None):
        """Yield the responses (dicts output name -> array) that answer one request, in order.

        Not decoupled: exactly one, holding the whole batch. Decoupled: one per
        batch entry and sequence, or one per token when streaming.
        """
        arrival_ns = self.clock() if arrival_ns is None else arrival_ns
        parsed = self.parse(arrays)
        streaming = parsed.flag("streaming")
        if parsed.flag("stop") and (streaming or self.decoupled):
            return  # a stopped request ends with the final flag alone
        pieces = []
        for index in range(parsed.batch_size):
            rng = self._rng(parsed, index)
            for sequence in range(self.num_sequences(parsed)):
                for response in self._sequence(parsed, index, sequence, rng, streaming, arrival_ns):
                    if streaming:
                        yield response
                    else:
                        pieces.append(response)
        if streaming:
            return
        separate = self.decoupled and ("batch_index" in self.output_types or self.num_sequences(parsed) > 1)
        if separate:
            yield from pieces
        else:
            yield stack_responses(pieces, {"output_ids": self.engine.eos_id, "output_log_probs": 0.0})

    def _sequence(self, parsed, index, sequence, rng, streaming, arrival_ns):
        """The responses of one generated sequence: one per token when streaming, else one."""
        want = self._wanted(parsed)
        sink = [] if want["context_logits"] else None
        scheduled_ns = self.clock()
        prompt, steps = self._steps(parsed, index, rng, sink, want["log_probs"])
        if parsed.flag("stop"):
            steps = iter(())  # not decoupled, stop still owes one (empty) answer
        include_prompt = not streaming and not self._exclude_input(parsed, index)
        times = {"arrival_time_ns": arrival_ns, "first_scheduled_time_ns": scheduled_ns}
        tokens, log_probs, logits = [], [], []
        for token, log_prob, row in steps:
            now = self.clock()
            times.setdefault("first_token_time_ns", now)
            times["last_token_time_ns"] = now
            if streaming:
                cumulative = float(sum(log_probs)) + log_prob
                log_probs.append(log_prob)
                yield self._piece(parsed, index, sequence, want, [], [token], [log_prob], cumulative,
                                  [row], sink if len(log_probs) == 1 else None, times, len(prompt))
            else:
                tokens.append(token)
                log_probs.append(log_prob)
                logits.append(row)
        if not streaming:
            yield self._piece(parsed, index, sequence, want, list(prompt) if include_prompt else [], tokens,
                              log_probs, float(sum(log_probs)), logits, sink, times, len(prompt))

    def _exclude_input(self, parsed, index):
        # The request's input (0.19 and later) wins over the parameter, as in the backend.
        if "exclude_input_in_output" in parsed.arrays:
            return parsed.scalar("exclude_input_in_output", index, self.exclude_input_in_output, bool)
        return self.exclude_input_in_output

    def _wanted(self, parsed):
        return {
            "log_probs": self.always or parsed.flag("return_log_probs"),
            "context_logits": parsed.flag("return_context_logits") and "context_logits" in self.output_types,
            "generation_logits": parsed.flag("return_generation_logits") and "generation_logits" in self.output_types,
            "perf": parsed.flag("return_perf_metrics"),
            "num_input_tokens": parsed.flag("return_num_input_tokens"),
            "num_output_tokens": parsed.flag("return_num_output_tokens"),
        }

    def _piece(self, parsed, index, sequence, want, prompt, tokens, log_probs, cumulative, logits, context, times,
               prompt_length):
        """One response of one sequence, leading (batch) dim 1, only the outputs this release's backend sends."""
        ids = list(prompt) + list(tokens)
        values = {
            "output_ids": np.array([[ids]], dtype=np.int32).reshape(1, 1, len(ids)),
            "sequence_length": np.array([[len(ids)]], dtype=np.int32),
        }
        if want["log_probs"]:
            values["cum_log_probs"] = np.array([[cumulative]], dtype=np.float32)
            values["output_log_probs"] = np.array(log_probs, dtype=np.float32).reshape(1, 1, len(log_probs))
        if want["context_logits"] and context:
            values["context_logits"] = np.asarray(context[0], dtype=np.float32)[np.newaxis]
        elif self.always:
            values["context_logits"] = np.zeros((1, 1, 1), dtype=np.float32)  # the backend's "not requested"
        if want["generation_logits"]:
            rows = np.asarray(logits, dtype=np.float32).reshape(len(logits), self.engine.vocab_size)
            values["generation_logits"] = rows[np.newaxis, np.newaxis]
        elif self.always:
            values["generation_logits"] = np.zeros((1, 1, 1, 1), dtype=np.float32)
        if self.always or parsed.batch_size > 1:
            values["batch_index"] = np.array([[index]], dtype=np.int32)
        if self.num_sequences(parsed) > 1:
            values["sequence_index"] = np.array([[sequence]], dtype=np.int32)
        if want["perf"]:
            for name in PERF_TIMES:
                if name in times:
                    values[name] = np.array([[times[name]]], dtype=np.int64)
            # No speculative decoding here: no draft token was proposed or accepted.
            values["total_draft_tokens"] = np.zeros((1, 1), dtype=np.int32)
            values["total_accepted_draft_tokens"] = np.zeros((1, 1), dtype=np.int32)
        if want["num_input_tokens"]:
            values["num_input_tokens"] = np.array([[prompt_length]], dtype=np.int32)
        if want["num_output_tokens"]:
            values["num_output_tokens"] = np.array([[len(tokens)]], dtype=np.int32)
        return {name: self._typed(name, value) for name, value in values.items() if name in self.output_types}

    def _typed(self, name, value):
        dtype = self.output_types.get(name)
        return value if dtype is None else value.astype(dtype, copy=False)


class MetricsReporter:
    """Publishes an :class:`EngineModel`'s metric values through the Python backend's custom metrics.

    Every instance of a model creates the same series (same names and
    labels), which Triton keeps as one; each instance therefore adds the
    change of its own share (``increment``) rather than setting the value,
    except for the series of ``ABSOLUTE_SERIES``. ``utils`` is
    ``triton_python_backend_utils``; without ``MetricFamily`` (Python backends
    before custom metrics) or when Triton refuses the families, the reporter
    logs once and does nothing.
    """

    def __init__(self, utils, model, model_name, model_version, period_ms=100, clock=time.monotonic):
        self.model = model
        self.period = max(period_ms, 0) / 1000.0
        self.clock = clock
        self.logger = utils.Logger
        self.model_name = model_name
        self.metrics = {}
        self.shares = {}
        self.last = None
        self.enabled = False
        family_class = getattr(utils, "MetricFamily", None)
        if family_class is None:
            self._warn("this Python backend has no custom metrics (MetricFamily); the nv_trt_llm_* metrics are "
                       "not published")
            return
        kinds = {"gauge": family_class.GAUGE, "counter": family_class.COUNTER}
        try:
            self._families = []
            for name, description, label, values, kind in model.families():
                family = family_class(name=name, description=description, kind=kinds[kind])
                self._families.append(family)  # a family dropped by Python takes its series with it
                for value in values:
                    self.metrics[(name, value)] = family.Metric(
                        labels={"model": model_name, "version": str(model_version), label: value})
        except Exception as exc:  # Triton refusing a family must not stop the model from serving
            self._warn("cannot create the nv_trt_llm_* metrics (%s: %s); they are not published"
                       % (type(exc).__name__, exc))
            self.metrics = {}
            return
        self.enabled = True

    def _warn(self, message):
        self.logger.log_warn("model %s: %s" % (self.model_name, message))

    def publish(self, force=False):
        """Send what changed since the last publication; unless ``force``, at most once a period."""
        if not self.enabled:
            return
        now = self.clock()
        if not force and self.last is not None and now - self.last < self.period:
            return
        self.last = now
        try:
            for key, value in self.model.metric_values().items():
                self._send(key, float(value))
        except Exception as exc:  # a metrics failure must not fail requests; say so once and stop trying
            self.enabled = False
            self._warn("publishing the nv_trt_llm_* metrics failed (%s: %s); they are no longer updated"
                       % (type(exc).__name__, exc))

    def _send(self, key, value):
        metric = self.metrics.get(key)
        if metric is None:
            return
        previous = self.shares.get(key, 0.0)
        if value == previous:
            return
        if key in ABSOLUTE_SERIES:
            metric.set(value)
        else:
            metric.increment(value - previous)
        self.shares[key] = value

    def close(self):
        """Take this instance's share out of the series the other instances keep."""
        if not self.enabled:
            return
        self.enabled = False
        try:
            for key, share in self.shares.items():
                if share and key not in ABSOLUTE_SERIES and key[0] != DISAGGREGATED_METRICS[0]:
                    self.metrics[key].increment(-share)
        except Exception:  # unloading anyway
            pass
        self.shares = {}


def _error(message):
    # Older Python backends take no error code; INVALID_ARG tells clients the
    # request, not the server, is at fault.
    code = getattr(pb_utils.TritonError, "INVALID_ARG", None)
    if code is None:
        return pb_utils.TritonError(message)
    return pb_utils.TritonError(message, code)


class TritonPythonModel:
    """The ``tensorrt_llm`` model of the cpu accelerator mode."""

    def initialize(self, args):
        model_config = json.loads(args["model_config"])
        parameters = model_config.get("parameters") or {}
        self.model_name = args.get("model_name", "tensorrt_llm")
        self.decoupled = pb_utils.using_decoupled_model_transaction_policy(model_config)

        engine_dir = _parameter(parameters, "gpt_model_path")
        if engine_dir is None:
            raise ValueError("model %s: parameter gpt_model_path is not set; set it in config.pbtxt to the CPU "
                             "reference engine directory" % self.model_name)
        if not os.path.isabs(engine_dir):
            engine_dir = os.path.join(args.get("model_repository") or _HERE, engine_dir)
        if not os.path.isdir(engine_dir):
            raise ValueError("model %s: gpt_model_path %s is not a directory; build the engine there or fix the "
                             "parameter" % (self.model_name, engine_dir))
        try:
            engine = CpuEngine.load(engine_dir)
        except EngineLoadError as exc:
            raise ValueError("model %s: %s" % (self.model_name, exc))
        self.model = EngineModel(engine, model_config, self.decoupled)
        self.input_names = list(self.model.inputs)
        self.metrics = MetricsReporter(pb_utils, self.model, self.model_name, args.get("model_version", "1"),
                                       _int_parameter(parameters, "stats_check_period_ms", 100))
        engine.stats.listener = self.metrics.publish
        self.metrics.publish(force=True)

        if self.model.max_beam_width > engine.max_beam_width:
            pb_utils.Logger.log_warn(
                "model %s: max_beam_width %d requested, but the CPU reference engine decodes with one beam; "
                "requests with beam_width > 1 will be refused" % (self.model_name, self.model.max_beam_width))
        config = engine.config["pretrained_config"]
        pb_utils.Logger.log_info(
            "model %s: loaded CPU reference engine %s (%s, %d layers, hidden %d, vocab %d, tp %d x pp %d merged, "
            "max_input_len %d, max_seq_len %d, %s, exclude_input_in_output=%s)"
            % (self.model_name, engine_dir, config.get("architecture"), engine.num_layers,
               engine.hidden_size, engine.vocab_size, config["mapping"]["tp_size"],
               config["mapping"]["pp_size"], engine.max_input_len, engine.max_seq_len,
               "decoupled" if self.decoupled else "not decoupled", str(self.model.exclude_input_in_output).lower()))

    def _arrays(self, request):
        arrays = {}
        for name in self.input_names:
            tensor = pb_utils.get_input_tensor_by_name(request, name)
            if tensor is not None:
                arrays[name] = tensor.as_numpy()
        return arrays

    @staticmethod
    def _response(values):
        return pb_utils.InferenceResponse(
            output_tensors=[pb_utils.Tensor(name, value) for name, value in values.items()])

    def execute(self, requests):
        self.model.admit(len(requests))
        self.metrics.publish(force=True)
        if self.decoupled:
            for request in requests:
                try:
                    self._execute_decoupled(request)
                finally:
                    self._request_done()
            return None
        responses = []
        for request in requests:
            try:
                responses.append(self._execute_single(request))
            finally:
                self._request_done()
        return responses

    def _request_done(self):
        self.model.done()
        self.metrics.publish(force=True)

    def finalize(self):
        pb_utils.Logger.log_info("model %s: unloading the CPU reference engine" % self.model_name)
        self.metrics.close()
        self.model.engine.stats.listener = None
        self.model = None

    def _execute_single(self, request):
        try:
            answers = list(self.model.responses(self._arrays(request)))
            return self._response(answers[-1])
        except RequestError as exc:
            return pb_utils.InferenceResponse(output_tensors=[], error=_error("%s: %s" % (self.model_name, exc)))
        except Exception as exc:  # never let one request take the model down
            return pb_utils.InferenceResponse(output_tensors=[], error=self._internal_error(exc))

    def _execute_decoupled(self, request):
        sender = request.get_response_sender()
        final = pb_utils.TRITONSERVER_RESPONSE_COMPLETE_FINAL
        try:
            for values in self.model.responses(self._arrays(request)):
                sender.send(self._response(values))
                if getattr(request, "is_cancelled", None) is not None and request.is_cancelled():
                    break
            sender.send(flags=final)
        except RequestError as exc:
            sender.send(pb_utils.InferenceResponse(output_tensors=[], error=_error("%s: %s" % (self.model_name, exc))),
                        flags=final)
        except Exception as exc:  # never let one request take the model down
            sender.send(pb_utils.InferenceResponse(output_tensors=[], error=self._internal_error(exc)), flags=final)

    def _internal_error(self, exc):
        pb_utils.Logger.log_error("model %s: request failed: %s" % (self.model_name, traceback.format_exc()))
        return pb_utils.TritonError("internal error in the CPU reference engine: %s: %s"
                                    % (type(exc).__name__, exc))
