"""`tensorrt_llm_bls`: the ensemble's contract as one Python model (BLS).

Takes the same request as `ensemble` (text_input, max_tokens, optional
sampling inputs, stream ...) and answers text_output, cum_log_probs and
output_log_probs, calling `preprocessing`, `tensorrt_llm` and
`postprocessing` through Triton's business logic scripting. Compared with
the ensemble it can accumulate streamed tokens (parameter
accumulate_tokens): every streamed text_output then carries the whole text
so far, decoded from all tokens, which keeps multi-byte characters and
word-leading spaces whole.

Parameters: accumulate_tokens, tensorrt_llm_model_name (default
tensorrt_llm), tensorrt_llm_draft_model_name (not used by this model; kept
for parity with upstream's configuration).

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

from tritonfleet_model_utils import error_response, model_parameters, parse_bool, pb_utils  # noqa: E402

# client input -> preprocessing input
CLIENT_TO_PREPROCESSING = {
    "text_input": "QUERY",
    "max_tokens": "REQUEST_OUTPUT_LEN",
    "bad_words": "BAD_WORDS_DICT",
    "stop_words": "STOP_WORDS_DICT",
    "embedding_bias_words": "EMBEDDING_BIAS_WORDS",
    "embedding_bias_weights": "EMBEDDING_BIAS_WEIGHTS",
    "end_id": "END_ID",
    "pad_id": "PAD_ID",
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
}
# client input -> tensorrt_llm input, passed straight through
CLIENT_TO_ENGINE = {
    "top_k": "runtime_top_k",
    "top_p": "runtime_top_p",
    "temperature": "temperature",
    "length_penalty": "len_penalty",
    "repetition_penalty": "repetition_penalty",
    "min_length": "min_length",
    "presence_penalty": "presence_penalty",
    "random_seed": "random_seed",
    "return_log_probs": "return_log_probs",
    "beam_width": "beam_width",
    "stream": "streaming",
    "prompt_embedding_table": "prompt_embedding_table",
    "prompt_vocab_size": "prompt_vocab_size",
    "frequency_penalty": "frequency_penalty",
    "runtime_top_p_min": "runtime_top_p_min",
    "runtime_top_p_decay": "runtime_top_p_decay",
    "runtime_top_p_reset_ids": "runtime_top_p_reset_ids",
    "early_stopping": "early_stopping",
    "beam_search_diversity_rate": "beam_search_diversity_rate",
    "lora_task_id": "lora_task_id",
    "lora_weights": "lora_weights",
    "lora_config": "lora_config",
}
# tensorrt_llm output -> postprocessing input
ENGINE_TO_POSTPROCESSING = {
    "output_ids": "TOKENS_BATCH",
    "sequence_length": "SEQUENCE_LENGTH",
    "cum_log_probs": "CUM_LOG_PROBS",
    "output_log_probs": "OUTPUT_LOG_PROBS",
}
# postprocessing output -> client output
POSTPROCESSING_TO_CLIENT = {
    "OUTPUT": "text_output",
    "OUT_CUM_LOG_PROBS": "cum_log_probs",
    "OUT_OUTPUT_LOG_PROBS": "output_log_probs",
}
# Optional engine inputs an empty tensor stands for "none" (not forwarded).
DROP_WHEN_EMPTY = ("bad_words_list", "stop_words_list", "embedding_bias")


def first_bool(value):
    """The first element of an optional BOOL tensor (False when absent)."""
    if value is None:
        return False
    array = np.asarray(value).reshape(-1)
    return bool(array[0]) if array.size else False


def preprocessing_inputs(client):
    """Inputs of `preprocessing` from the client's inputs."""
    if client.get("text_input") is None:
        raise ValueError("text_input is required")
    if client.get("max_tokens") is None:
        raise ValueError("max_tokens is required")
    return {
        target: client[source]
        for source, target in CLIENT_TO_PREPROCESSING.items()
        if client.get(source) is not None
    }


def engine_inputs(client, preprocessed):
    """Inputs of `tensorrt_llm` from the client's inputs and preprocessing's outputs."""
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
    return inputs


def postprocessing_inputs(generated):
    """Inputs of `postprocessing` from one `tensorrt_llm` response."""
    return {
        target: generated[source]
        for source, target in ENGINE_TO_POSTPROCESSING.items()
        if generated.get(source) is not None
    }


def client_outputs(postprocessed):
    """The client's outputs from `postprocessing`'s outputs."""
    return {
        target: postprocessed[source]
        for source, target in POSTPROCESSING_TO_CLIENT.items()
        if postprocessed.get(source) is not None
    }


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


class Pipeline:
    """preprocessing -> tensorrt_llm -> postprocessing for one request.

    `call(model, inputs, outputs, decoupled)` runs one model and yields dicts
    of output arrays, one per response; injected so that tests can run the
    pipeline without Triton.
    """

    def __init__(self, call, engine_model="tensorrt_llm", decoupled=True, accumulate=False):
        self.call = call
        self.engine_model = engine_model
        self.decoupled = decoupled
        self.accumulate = accumulate

    def run(self, client):
        """Yield the client's outputs, one dict per response."""
        streaming = first_bool(client.get("stream"))
        if streaming and not self.decoupled:
            raise ValueError("stream=true needs the decoupled transaction policy (repository_decoupled)")
        preprocessed = first_response(
            (
                self.call(
                    "preprocessing",
                    preprocessing_inputs(client),
                    list(PREPROCESSING_TO_ENGINE),
                    False,
                )
            )
        )
        inputs = engine_inputs(client, preprocessed)
        accumulator = TokenAccumulator() if (self.accumulate and streaming) else None
        for generated in self.call(
            self.engine_model, inputs, list(ENGINE_TO_POSTPROCESSING), self.decoupled
        ):
            if generated.get("output_ids") is None:
                continue  # e.g. the empty response that only carries the final flag
            if accumulator is not None:
                generated = accumulator.add(generated)
            postprocessed = first_response(
                (
                    self.call(
                        "postprocessing",
                        postprocessing_inputs(generated),
                        list(POSTPROCESSING_TO_CLIENT),
                        False,
                    )
                )
            )
            yield client_outputs(postprocessed)


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


CLIENT_INPUTS = tuple(CLIENT_TO_PREPROCESSING) + tuple(CLIENT_TO_ENGINE)


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
        )

    @staticmethod
    def _client_inputs(request):
        inputs = {}
        for name in CLIENT_INPUTS:
            tensor = pb_utils.get_input_tensor_by_name(request, name)
            if tensor is not None:
                inputs[name] = tensor.as_numpy()
        return inputs

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
