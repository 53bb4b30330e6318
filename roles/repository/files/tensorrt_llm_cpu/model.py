# Copyright: (c) 2026, tritonfleet maintainers
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Triton Python backend model serving the CPU reference engine as ``tensorrt_llm``.

In the ``cpu`` accelerator mode this file stands where the ``tensorrtllm``
backend stands on GPUs: it speaks upstream TensorRT-LLM backend's tensor
contract (input_ids, input_lengths, request_output_len, end_id, pad_id,
stop/bad word lists, sampling knobs, streaming -> output_ids,
sequence_length, cum_log_probs, output_log_probs), so the ensemble,
preprocessing and postprocessing models and every client are the same in both
modes.

Parameters read from config.pbtxt (unset ones, and ``${...}`` template
placeholders left unfilled, take the default):

* ``gpt_model_path``: the engine directory (required; relative paths are
  resolved against this model's directory).
* ``exclude_input_in_output``: "true" (default) or "false".
* ``max_beam_width``: default 1; the engine decodes with one beam only.

GPU-only parameters (kv_cache_free_gpu_mem_fraction, batch_scheduler_policy,
gpt_model_type, ...) are ignored.

The model works both decoupled (responses through each request's response
sender; ``streaming`` true sends one response per generated token) and
non-decoupled (one response per request; streaming is then refused). Requests
are decoded one after another: this is a reference for correctness, not a
batching engine.
"""

import json
import os
import sys
import traceback

import numpy as np
import triton_python_backend_utils as pb_utils

# The runtime ships in this version directory next to this file; Triton does
# not put that directory on sys.path.
_HERE = os.path.dirname(os.path.abspath(__file__))
if not sys.path or sys.path[0] != _HERE:
    sys.path.insert(0, _HERE)

from cpu_engine_runtime import CpuEngine, EngineLoadError, RequestError  # noqa: E402

_TRUE = ("true", "1", "yes", "on")
_FALSE = ("false", "0", "no", "off")
_OUTPUTS = ("output_ids", "sequence_length", "cum_log_probs", "output_log_probs")


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


def _error(message):
    # Older Python backends take no error code; INVALID_ARG tells clients the
    # request, not the server, is at fault.
    code = getattr(pb_utils.TritonError, "INVALID_ARG", None)
    if code is None:
        return pb_utils.TritonError(message)
    return pb_utils.TritonError(message, code)


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


class _Request:
    """One inference request's inputs, split per sequence of the batch."""

    def __init__(self, request):
        self.arrays = {}
        for name in ("input_ids", "input_lengths", "request_output_len", "end_id", "pad_id", "stop_words_list",
                     "bad_words_list", "embedding_bias", "beam_width", "temperature", "runtime_top_k",
                     "runtime_top_p", "len_penalty", "repetition_penalty", "min_length", "presence_penalty",
                     "random_seed", "return_log_probs", "stop", "streaming", "prompt_embedding_table",
                     "prompt_vocab_size"):
            tensor = pb_utils.get_input_tensor_by_name(request, name)
            if tensor is not None:
                self.arrays[name] = tensor.as_numpy()
        if "input_ids" not in self.arrays:
            raise RequestError("input_ids is required")
        if "request_output_len" not in self.arrays:
            raise RequestError("request_output_len is required")
        input_ids = self.arrays["input_ids"]
        # With max_batch_size 0 in config.pbtxt tensors arrive without the batch dim.
        self.input_ids = input_ids.reshape(1, -1) if input_ids.ndim == 1 else input_ids.reshape(input_ids.shape[0], -1)
        self.batch_size = self.input_ids.shape[0]

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

    def flag(self, name):
        """A BOOL input that applies to the whole request (true if any sequence sets it)."""
        array = self.arrays.get(name)
        return bool(array is not None and array.size and np.any(array))


class TritonPythonModel:
    """The ``tensorrt_llm`` model of the cpu accelerator mode."""

    def initialize(self, args):
        model_config = json.loads(args["model_config"])
        parameters = model_config.get("parameters") or {}
        self.model_name = args.get("model_name", "tensorrt_llm")
        self.decoupled = pb_utils.using_decoupled_model_transaction_policy(model_config)
        self.exclude_input_in_output = _bool_parameter(parameters, "exclude_input_in_output", True)
        self.max_beam_width = _int_parameter(parameters, "max_beam_width", 1)
        self.outputs = {output["name"] for output in model_config.get("output", [])}

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
            self.engine = CpuEngine.load(engine_dir)
        except EngineLoadError as exc:
            raise ValueError("model %s: %s" % (self.model_name, exc))

        if self.max_beam_width > self.engine.max_beam_width:
            pb_utils.Logger.log_warn(
                "model %s: max_beam_width %d requested, but the CPU reference engine decodes with one beam; "
                "requests with beam_width > 1 will be refused" % (self.model_name, self.max_beam_width))
        config = self.engine.config["pretrained_config"]
        pb_utils.Logger.log_info(
            "model %s: loaded CPU reference engine %s (%s, %d layers, hidden %d, vocab %d, tp %d x pp %d merged, "
            "max_input_len %d, max_seq_len %d, %s, exclude_input_in_output=%s)"
            % (self.model_name, engine_dir, config.get("architecture"), self.engine.num_layers,
               self.engine.hidden_size, self.engine.vocab_size, config["mapping"]["tp_size"],
               config["mapping"]["pp_size"], self.engine.max_input_len, self.engine.max_seq_len,
               "decoupled" if self.decoupled else "not decoupled", str(self.exclude_input_in_output).lower()))

    def execute(self, requests):
        if self.decoupled:
            for request in requests:
                self._execute_decoupled(request)
            return None
        return [self._execute_single(request) for request in requests]

    def finalize(self):
        pb_utils.Logger.log_info("model %s: unloading the CPU reference engine" % self.model_name)
        self.engine = None

    # ------------------------------------------------------------------ request handling

    def _execute_single(self, request):
        try:
            parsed = _Request(request)
            if parsed.flag("streaming"):
                raise RequestError("streaming needs a decoupled model (model_transaction_policy { decoupled: true }); "
                                   "this %s model is not decoupled" % self.model_name)
            return self._complete_response(parsed)
        except RequestError as exc:
            return pb_utils.InferenceResponse(output_tensors=[], error=_error(str(exc)))
        except Exception as exc:  # never let one request take the model down
            return pb_utils.InferenceResponse(output_tensors=[], error=self._internal_error(exc))

    def _execute_decoupled(self, request):
        sender = request.get_response_sender()
        final = pb_utils.TRITONSERVER_RESPONSE_COMPLETE_FINAL
        try:
            parsed = _Request(request)
            if not parsed.flag("streaming"):
                sender.send(self._complete_response(parsed), flags=final)
                return
            if parsed.batch_size != 1:
                raise RequestError("streaming requests must carry one sequence (batch size 1), got %d"
                                   % parsed.batch_size)
            if parsed.flag("stop"):
                sender.send(flags=final)
                return
            prompt, steps = self._start(parsed, 0)
            cumulative = 0.0
            for token, log_prob in steps:
                cumulative += log_prob
                sender.send(self._response([[token]], [[log_prob]], [cumulative], [prompt], include_prompt=False))
                if getattr(sender, "is_cancelled", None) is not None and sender.is_cancelled():
                    break
            sender.send(flags=final)
        except RequestError as exc:
            sender.send(pb_utils.InferenceResponse(output_tensors=[], error=_error(str(exc))), flags=final)
        except Exception as exc:  # never let one request take the model down
            sender.send(pb_utils.InferenceResponse(output_tensors=[], error=self._internal_error(exc)), flags=final)

    def _internal_error(self, exc):
        pb_utils.Logger.log_error("model %s: request failed: %s" % (self.model_name, traceback.format_exc()))
        return pb_utils.TritonError("internal error in the CPU reference engine: %s: %s"
                                    % (type(exc).__name__, exc))

    def _complete_response(self, parsed):
        """Decode every sequence of the request to the end and answer with one response."""
        if parsed.batch_size > self.engine.max_batch_size:
            raise RequestError("the request carries %d sequences but the engine was built with max_batch_size %d"
                               % (parsed.batch_size, self.engine.max_batch_size))
        prompts, tokens, log_probs, cumulative = [], [], [], []
        stop = parsed.flag("stop")
        for index in range(parsed.batch_size):
            prompt, steps = self._start(parsed, index)
            generated = [] if stop else list(steps)
            prompts.append(prompt)
            tokens.append([token for token, _unused in generated])
            log_probs.append([log_prob for _unused, log_prob in generated])
            cumulative.append(float(sum(log_probs[-1])))
        return self._response(tokens, log_probs, cumulative, prompts, include_prompt=not self.exclude_input_in_output)

    def _start(self, parsed, index):
        """Validate one sequence's inputs and return (prompt ids, generator of (token, log prob))."""
        beam_width = parsed.scalar("beam_width", index, 1, int)
        if beam_width != 1:
            raise RequestError("beam_width %d is not supported: the CPU reference engine decodes with a single beam "
                               "(send beam_width 1)" % beam_width)
        width = parsed.input_ids.shape[1]
        length = parsed.scalar("input_lengths", index, width, int)
        if not 1 <= length <= width:
            raise RequestError("input_lengths %d must lie in [1, %d] (the width of input_ids)" % (length, width))
        prompt = parsed.input_ids[index, :length]
        max_new_tokens = parsed.scalar("request_output_len", index, None, int)

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
            prompt, max_new_tokens,
            end_id=parsed.scalar("end_id", index, self.engine.eos_id, int),
            pad_id=parsed.scalar("pad_id", index, self.engine.pad_id, int),
            temperature=parsed.scalar("temperature", index, 1.0, float),
            top_k=parsed.scalar("runtime_top_k", index, 1, int),
            top_p=parsed.scalar("runtime_top_p", index, 0.0, float),
            repetition_penalty=parsed.scalar("repetition_penalty", index, 1.0, float),
            presence_penalty=parsed.scalar("presence_penalty", index, 0.0, float),
            min_length=parsed.scalar("min_length", index, 1, int),
            random_seed=parsed.scalar("random_seed", index, None, int),
            stop_words=None if stop_words is None else _word_list(stop_words, "stop_words_list"),
            bad_words=None if bad_words is None else _word_list(bad_words, "bad_words_list"),
            embedding_bias=parsed.row("embedding_bias", index),
            return_log_probs=parsed.scalar("return_log_probs", index, False, bool),
            prompt_embedding_table=table,
        )
        return prompt, steps

    def _response(self, tokens, log_probs, cumulative, prompts, include_prompt):
        """Build a response in the contract's shapes: [batch, beam(=1), tokens] and [batch, beam]."""
        sequences = [(list(prompt) if include_prompt else []) + list(row) for prompt, row in zip(prompts, tokens)]
        batch = len(sequences)
        longest = max(len(sequence) for sequence in sequences)
        longest_generated = max(len(row) for row in tokens)
        # Rows shorter than the longest are padded with the engine's end id,
        # as TensorRT-LLM fills its output buffers; sequence_length says where
        # each row really ends.
        output_ids = np.full((batch, 1, longest), self.engine.eos_id, dtype=np.int32)
        output_log_probs = np.zeros((batch, 1, longest_generated), dtype=np.float32)
        for index, sequence in enumerate(sequences):
            output_ids[index, 0, :len(sequence)] = sequence
            output_log_probs[index, 0, :len(log_probs[index])] = log_probs[index]
        values = {
            "output_ids": output_ids,
            "sequence_length": np.array([[len(sequence)] for sequence in sequences], dtype=np.int32),
            "cum_log_probs": np.array([[value] for value in cumulative], dtype=np.float32),
            "output_log_probs": output_log_probs,
        }
        tensors = [pb_utils.Tensor(name, values[name]) for name in _OUTPUTS if name in self.outputs]
        return pb_utils.InferenceResponse(output_tensors=tensors)
