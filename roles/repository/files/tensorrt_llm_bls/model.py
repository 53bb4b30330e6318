"""`tensorrt_llm_bls`: the ensemble's contract as one Python model (BLS).

Takes the same request as the `ensemble` of the same release (its config
Triton hands the model lists the inputs and outputs: text_input, max_tokens,
the sampling inputs, stream ...) and answers text_output and the outputs the
release's ensemble has (cum_log_probs, output_log_probs, logits, batch_index,
sequence_index, perf metrics...), calling `preprocessing`, `tensorrt_llm` and
`postprocessing` through Triton's business logic scripting. text_output comes
from postprocessing; every other output is tensorrt_llm's, passed through as
the ensemble maps it. Compared with the ensemble it can accumulate streamed
tokens (parameter accumulate_tokens): every streamed text_output then carries
the whole text so far, decoded from all tokens, which keeps multi-byte
characters and word-leading spaces whole.

Parameters: accumulate_tokens, tensorrt_llm_model_name (default
tensorrt_llm), tensorrt_llm_draft_model_name (a draft model is not served:
num_draft_tokens and use_draft_logits get an error naming them).

The tensor plumbing is plain functions and classes so they can be tested
without Triton; the Triton utilities are imported only inside the server.
Errors become error responses; the model itself keeps serving.
"""

import json
import os
import sys

import numpy as np

# Triton loads model.py by path: put its directory on sys.path for the sibling tritonfleet_model_utils.py.
_HERE = os.path.dirname(os.path.abspath(__file__))
if _HERE not in sys.path:
    sys.path.insert(0, _HERE)

from tritonfleet_model_utils import (  # noqa: E402
    error_response, model_parameters, parse_bool, pb_utils, request_inputs)

# client input -> preprocessing input
CLIENT_TO_PREPROCESSING = {
    "text_input": "QUERY",
    "decoder_text_input": "DECODER_QUERY",
    "image_input": "IMAGE",
    "image_bytes_input": "IMAGE_BYTES",
    "image_url_input": "IMAGE_URL",
    "image_sizes_input": "IMAGE_SIZES",
    "video_bytes_input": "VIDEO_BYTES",
    "max_tokens": "REQUEST_OUTPUT_LEN",
    "bad_words": "BAD_WORDS_DICT",
    "stop_words": "STOP_WORDS_DICT",
    "embedding_bias_words": "EMBEDDING_BIAS_WORDS",
    "embedding_bias_weights": "EMBEDDING_BIAS_WEIGHTS",
    "end_id": "END_ID",
    "pad_id": "PAD_ID",
    "prompt_table_extra_id": "PROMPT_TABLE_EXTRA_ID",
}
# preprocessing output -> tensorrt_llm input
PREPROCESSING_TO_ENGINE = {
    "INPUT_ID": "input_ids",
    "REQUEST_INPUT_LEN": "input_lengths",
    "REQUEST_OUTPUT_LEN": "request_output_len",
    "BAD_WORDS_IDS": "bad_words_list",
    "STOP_WORDS_IDS": "stop_words_list",
    "EMBEDDING_BIAS": "embedding_bias",
    "OUT_END_ID": "end_id",
    "OUT_PAD_ID": "pad_id",
    "DECODER_INPUT_ID": "decoder_input_ids",
    "REQUEST_DECODER_INPUT_LEN": "decoder_input_lengths",
    "OUT_PROMPT_TABLE_EXTRA_IDS": "prompt_table_extra_ids",
}
# What preprocessing answers at 0.7 (no end/pad ids, no decoder inputs).
PREPROCESSING_OUTPUTS_0_7 = ("INPUT_ID", "REQUEST_INPUT_LEN", "REQUEST_OUTPUT_LEN", "BAD_WORDS_IDS",
                             "STOP_WORDS_IDS", "EMBEDDING_BIAS")
# client input -> tensorrt_llm input, passed straight through
CLIENT_TO_ENGINE = {
    "top_k": "runtime_top_k",
    "top_p": "runtime_top_p",
    "temperature": "temperature",
    "length_penalty": "len_penalty",
    "repetition_penalty": "repetition_penalty",
    "min_length": "min_length",
    "min_tokens": "min_tokens",
    "presence_penalty": "presence_penalty",
    "frequency_penalty": "frequency_penalty",
    "random_seed": "random_seed",
    "seed": "seed",
    "return_log_probs": "return_log_probs",
    "return_context_logits": "return_context_logits",
    "return_generation_logits": "return_generation_logits",
    "return_perf_metrics": "return_perf_metrics",
    "return_num_input_tokens": "return_num_input_tokens",
    "return_num_output_tokens": "return_num_output_tokens",
    "exclude_input_in_output": "exclude_input_in_output",
    "num_return_sequences": "num_return_sequences",
    "beam_width": "beam_width",
    "stream": "streaming",
    "prompt_embedding_table": "prompt_embedding_table",
    "prompt_vocab_size": "prompt_vocab_size",
    "runtime_top_p_min": "runtime_top_p_min",
    "runtime_top_p_decay": "runtime_top_p_decay",
    "runtime_top_p_reset_ids": "runtime_top_p_reset_ids",
    "early_stopping": "early_stopping",
    "beam_search_diversity_rate": "beam_search_diversity_rate",
    "lora_task_id": "lora_task_id",
    "lora_weights": "lora_weights",
    "lora_config": "lora_config",
    "guided_decoding_guide_type": "guided_decoding_guide_type",
    "guided_decoding_guide": "guided_decoding_guide",
}
# BLS inputs for a draft model, which this project does not serve.
DRAFT_INPUTS = ("num_draft_tokens", "use_draft_logits")
# tensorrt_llm output -> postprocessing input
ENGINE_TO_POSTPROCESSING = {
    "output_ids": "TOKENS_BATCH",
    "sequence_length": "SEQUENCE_LENGTH",
}
# Optional engine inputs an empty tensor stands for "none" (not forwarded).
DROP_WHEN_EMPTY = ("bad_words_list", "stop_words_list", "embedding_bias")


def first_bool(value):
    """The first element of an optional BOOL tensor (False when absent)."""
    if value is None:
        return False
    array = np.asarray(value).reshape(-1)
    return bool(array[0]) if array.size else False


def preprocessing_inputs(client, via_preprocessing=None):
    """Inputs of `preprocessing` from the client's inputs (``via_preprocessing``: the client inputs it takes)."""
    if client.get("text_input") is None:
        raise ValueError("text_input is required")
    if client.get("max_tokens") is None:
        raise ValueError("max_tokens is required")
    return {
        target: client[source]
        for source, target in CLIENT_TO_PREPROCESSING.items()
        if client.get(source) is not None and (via_preprocessing is None or source in via_preprocessing)
    }


def engine_inputs(client, preprocessed, direct=()):
    """Inputs of `tensorrt_llm` from the client's inputs and preprocessing's outputs.

    ``direct`` names client inputs sent straight to the engine besides
    CLIENT_TO_ENGINE's (end_id and pad_id at 0.7, whose preprocessing has none).
    """
    inputs = {}
    for source, target in PREPROCESSING_TO_ENGINE.items():
        value = preprocessed.get(source)
        if value is None:
            continue
        if target in DROP_WHEN_EMPTY and np.asarray(value).size == 0:
            continue
        inputs[target] = value
    for source, target in CLIENT_TO_ENGINE.items():
        if client.get(source) is not None:
            inputs[target] = client[source]
    for name in direct:
        if client.get(name) is not None:
            inputs[name] = client[name]
    return inputs


def postprocessing_inputs(generated):
    """Inputs of `postprocessing` from one `tensorrt_llm` response."""
    return {
        target: generated[source]
        for source, target in ENGINE_TO_POSTPROCESSING.items()
        if generated.get(source) is not None
    }


def client_outputs(postprocessed, generated, outputs):
    """The client's outputs: text_output from postprocessing, the rest from `tensorrt_llm` as the ensemble maps it."""
    result = {}
    if postprocessed.get("OUTPUT") is not None:
        result["text_output"] = postprocessed["OUTPUT"]
    for name in outputs:
        if name != "text_output" and generated.get(name) is not None:
            result[name] = generated[name]
    return result


def first_response(responses):
    """The first response of a BLS call; an empty stream is an error, not the end of ours."""
    for response in responses:
        return response
    raise RuntimeError("a composing model returned no response")


class TokenAccumulator:
    """Collects streamed tokens of one request (batch 1, beam 1)."""

    def __init__(self):
        self.tokens = np.zeros((1, 1, 0), dtype=np.int32)

    def add(self, generated):
        """Add one streamed response; return it with all the tokens so far."""
        output_ids = np.asarray(generated["output_ids"])
        if output_ids.ndim == 2:
            output_ids = output_ids[:, np.newaxis, :]
        if output_ids.ndim != 3 or output_ids.shape[0] != 1 or output_ids.shape[1] != 1:
            raise ValueError("accumulate_tokens needs batch size 1 and beam width 1")
        count = output_ids.shape[2]
        lengths = generated.get("sequence_length")
        if lengths is not None and np.asarray(lengths).size:
            count = min(count, max(int(np.asarray(lengths).reshape(-1)[0]), 0))
        new = output_ids[:, :, :count].astype(np.int32)
        self.tokens = np.concatenate([self.tokens, new], axis=2)
        accumulated = dict(generated)
        accumulated["output_ids"] = self.tokens
        accumulated["sequence_length"] = np.array([[self.tokens.shape[2]]], dtype=np.int32)
        return accumulated


# The client contract of 0.7's BLS, used when no config says otherwise.
DEFAULT_INPUTS = ("text_input", "max_tokens", "bad_words", "stop_words", "end_id", "pad_id", "top_k", "top_p",
                  "temperature", "length_penalty", "repetition_penalty", "min_length", "presence_penalty",
                  "random_seed", "return_log_probs", "beam_width", "stream", "prompt_embedding_table",
                  "prompt_vocab_size", "embedding_bias_words", "embedding_bias_weights")
DEFAULT_OUTPUTS = ("text_output", "cum_log_probs", "output_log_probs")


class Pipeline:
    """preprocessing -> tensorrt_llm -> postprocessing for one request.

    `call(model, inputs, outputs, decoupled)` runs one model and yields dicts
    of output arrays, one per response; injected so that tests can run the
    pipeline without Triton. ``inputs`` and ``outputs`` are the names in this
    model's config (the client contract of the release).
    """

    def __init__(self, call, engine_model="tensorrt_llm", decoupled=True, accumulate=False,
                 inputs=DEFAULT_INPUTS, outputs=DEFAULT_OUTPUTS):
        self.call = call
        self.engine_model = engine_model
        self.decoupled = decoupled
        self.accumulate = accumulate
        self.inputs = list(inputs)
        self.outputs = list(outputs)
        # From 0.12 preprocessing takes end/pad ids and answers decoder inputs;
        # 0.7's BLS sends end/pad ids to the engine itself.
        self.modern = "decoder_text_input" in self.inputs
        self.direct = () if self.modern else ("end_id", "pad_id")

    def _preprocessing_outputs(self, client):
        if not self.modern:
            return list(PREPROCESSING_OUTPUTS_0_7)
        names = [name for name in PREPROCESSING_TO_ENGINE if name != "OUT_PROMPT_TABLE_EXTRA_IDS"]
        if client.get("prompt_table_extra_id") is not None:
            names.append("OUT_PROMPT_TABLE_EXTRA_IDS")
        return names

    def run(self, client):
        """Yield the client's outputs, one dict per response."""
        for name in DRAFT_INPUTS:
            if client.get(name) is not None:
                raise ValueError(f"input {name} is not supported: no draft model is served here (leave it out)")
        streaming = first_bool(client.get("stream"))
        if streaming and not self.decoupled:
            raise ValueError("input stream: streaming is only supported when the model is deployed decoupled "
                             "(repository_decoupled); this model is not decoupled")
        via = [name for name in CLIENT_TO_PREPROCESSING if self.modern or name not in ("end_id", "pad_id")]
        preprocessed = first_response(
            self.call("preprocessing", preprocessing_inputs(client, via), self._preprocessing_outputs(client), False)
        )
        inputs = engine_inputs(client, preprocessed, self.direct)
        engine_outputs = list(ENGINE_TO_POSTPROCESSING) + [
            name for name in self.outputs if name != "text_output" and name not in ENGINE_TO_POSTPROCESSING]
        accumulator = TokenAccumulator() if (self.accumulate and streaming) else None
        for generated in self.call(self.engine_model, inputs, engine_outputs, self.decoupled):
            if generated.get("output_ids") is None:
                continue  # e.g. the empty response that only carries the final flag
            if accumulator is not None:
                generated = accumulator.add(generated)
            postprocessed = first_response(
                self.call("postprocessing", postprocessing_inputs(generated), ["OUTPUT"], False)
            )
            yield client_outputs(postprocessed, generated, self.outputs)


def triton_call(model, inputs, outputs, decoupled):
    """Run `model` through BLS and yield its responses as dicts of arrays."""
    request = pb_utils.InferenceRequest(
        model_name=model,
        requested_output_names=outputs,
        inputs=[pb_utils.Tensor(name, np.asarray(value)) for name, value in inputs.items()],
    )
    responses = request.exec(decoupled=True) if decoupled else [request.exec()]
    for response in responses:
        if response.has_error():
            raise RuntimeError(f"{model}: {response.error().message()}")
        result = {}
        for name in outputs:
            tensor = pb_utils.get_output_tensor_by_name(response, name)
            if tensor is not None:
                result[name] = tensor.as_numpy()
        if result or not decoupled:
            yield result


class TritonPythonModel:
    """Triton entry point."""

    def initialize(self, args):
        model_config = json.loads(args["model_config"])
        params = model_parameters(model_config)
        self.decoupled = pb_utils.using_decoupled_model_transaction_policy(model_config)
        self.pipeline = Pipeline(
            triton_call,
            engine_model=params.get("tensorrt_llm_model_name") or "tensorrt_llm",
            decoupled=self.decoupled,
            accumulate=parse_bool(params.get("accumulate_tokens"), False),
            inputs=[entry["name"] for entry in model_config.get("input", [])],
            outputs=[entry["name"] for entry in model_config.get("output", [])],
        )

    def _client_inputs(self, request):
        """The inputs the client sent (the pipeline tells a missing optional input by its absence)."""
        sent = request_inputs(pb_utils, request, self.pipeline.inputs)
        return {name: value for name, value in sent.items() if value is not None}

    @staticmethod
    def _response(outputs):
        return pb_utils.InferenceResponse(
            output_tensors=[pb_utils.Tensor(name, value) for name, value in outputs.items()]
        )

    def execute(self, requests):
        if self.decoupled:
            for request in requests:
                sender = request.get_response_sender()
                try:
                    for outputs in self.pipeline.run(self._client_inputs(request)):
                        if request.is_cancelled():
                            break
                        sender.send(self._response(outputs))
                    sender.send(flags=pb_utils.TRITONSERVER_RESPONSE_COMPLETE_FINAL)
                except Exception as error:  # noqa: BLE001 - answer, never crash
                    sender.send(
                        error_response(pb_utils, "tensorrt_llm_bls", error),
                        flags=pb_utils.TRITONSERVER_RESPONSE_COMPLETE_FINAL,
                    )
            return None

        responses = []
        for request in requests:
            try:
                last = None
                for outputs in self.pipeline.run(self._client_inputs(request)):
                    last = outputs
                if last is None:
                    raise RuntimeError("tensorrt_llm returned no output")
                responses.append(self._response(last))
            except Exception as error:  # noqa: BLE001 - answer, never crash
                responses.append(error_response(pb_utils, "tensorrt_llm_bls", error))
        return responses

    def finalize(self):
        self.pipeline = None
