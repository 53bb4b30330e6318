"""`postprocessing`: token ids in, text out (Triton Python backend).

The tensors of upstream's inflight_batcher_llm postprocessing model:

  TOKENS_BATCH [batch, beam, tokens]  -> OUTPUT [batch, beam] strings
  SEQUENCE_LENGTH [batch, beam]          (each beam is cut at its length)
  CUM_LOG_PROBS [batch, beam]         -> OUT_CUM_LOG_PROBS (passed through)
  OUTPUT_LOG_PROBS [batch, beam, n]   -> OUT_OUTPUT_LOG_PROBS (passed through)

When tensorrt_llm streams, each response carries only the new tokens; they
are decoded on their own (skip_special_tokens by default), so a streaming
client concatenates the text pieces. Absent log probs come back as zeros.

The helpers are plain functions, tested without Triton (tritonfleet_model_utils
brings the Triton utilities inside the server). A bad request gets an error
response; it never takes the model down.
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
    error_response, model_parameters, parse_bool, pb_utils, request_inputs, tokenizer_from_parameters)


def as_beams(tokens_batch):
    """TOKENS_BATCH as [batch, beam, tokens] (a [batch, tokens] tensor is one beam)."""
    tokens = np.asarray(tokens_batch)
    if tokens.ndim == 1:
        tokens = tokens.reshape(1, 1, -1)
    elif tokens.ndim == 2:
        tokens = tokens[:, np.newaxis, :]
    elif tokens.ndim != 3:
        raise ValueError(f"TOKENS_BATCH must have 2 or 3 dimensions, got shape {tokens.shape}")
    return tokens


def beam_lengths(sequence_length, shape):
    """SEQUENCE_LENGTH as [batch, beam]; absent: every token counts."""
    batch, beam, width = shape
    if sequence_length is None:
        return np.full((batch, beam), width, dtype=np.int64)
    lengths = np.asarray(sequence_length).astype(np.int64)
    if lengths.size == batch * beam:
        return lengths.reshape(batch, beam)
    if lengths.size == batch:
        return np.repeat(lengths.reshape(batch, 1), beam, axis=1)
    raise ValueError(
        f"SEQUENCE_LENGTH of shape {lengths.shape} does not fit TOKENS_BATCH of shape {shape}"
    )


def decode_tokens(tokenizer, tokens_batch, sequence_length=None, skip_special_tokens=True):
    """Detokenize [batch, beam, tokens] into a [batch, beam] array of UTF-8 bytes.

    Each beam is cut at its sequence length (never beyond the tokens there
    are: a streamed response holds only its new tokens).
    """
    tokens = as_beams(tokens_batch)
    lengths = beam_lengths(sequence_length, tokens.shape)
    batch, beam, width = tokens.shape
    texts = np.empty((batch, beam), dtype=object)
    for b in range(batch):
        for k in range(beam):
            count = int(min(max(lengths[b, k], 0), width))
            ids = [int(token) for token in tokens[b, k, :count]]
            text = tokenizer.decode(ids, skip_special_tokens=skip_special_tokens)
            texts[b, k] = text.encode("utf-8")
    return texts


def log_probs(cum_log_probs, output_log_probs, batch, beam):
    """Pass the log probs through as float32; zeros stand in for absent ones."""
    if cum_log_probs is None:
        cum = np.zeros((batch, beam), dtype=np.float32)
    else:
        cum = np.asarray(cum_log_probs, dtype=np.float32)
    if output_log_probs is None:
        out = np.zeros((batch, beam, 1), dtype=np.float32)
    else:
        out = np.asarray(output_log_probs, dtype=np.float32)
    return cum, out


class Postprocessor:
    """The detokenization of one model instance, independent of Triton."""

    def __init__(self, params):
        self.tokenizer = tokenizer_from_parameters(params)
        self.skip_special_tokens = parse_bool(params.get("skip_special_tokens"), True)

    def __call__(self, inputs):
        """Map a dict of input arrays (None when absent) to a dict of outputs."""
        tokens = inputs.get("TOKENS_BATCH")
        if tokens is None:
            raise ValueError("TOKENS_BATCH is required")
        tokens = as_beams(tokens)
        texts = decode_tokens(
            self.tokenizer, tokens, inputs.get("SEQUENCE_LENGTH"), self.skip_special_tokens
        )
        cum, out = log_probs(
            inputs.get("CUM_LOG_PROBS"), inputs.get("OUTPUT_LOG_PROBS"), *tokens.shape[:2]
        )
        return {"OUTPUT": texts, "OUT_CUM_LOG_PROBS": cum, "OUT_OUTPUT_LOG_PROBS": out}


INPUT_NAMES = ("TOKENS_BATCH", "SEQUENCE_LENGTH", "CUM_LOG_PROBS", "OUTPUT_LOG_PROBS")


class TritonPythonModel:
    """Triton entry point."""

    def initialize(self, args):
        model_config = json.loads(args["model_config"])
        self.postprocessor = Postprocessor(model_parameters(model_config))

    def execute(self, requests):
        responses = []
        for request in requests:
            try:
                outputs = self.postprocessor(request_inputs(pb_utils, request, INPUT_NAMES))
                tensors = [pb_utils.Tensor(name, value) for name, value in outputs.items()]
                responses.append(pb_utils.InferenceResponse(output_tensors=tensors))
            except Exception as error:  # noqa: BLE001 - one bad request must not fail the batch
                responses.append(error_response(pb_utils, "postprocessing", error))
        return responses

    def finalize(self):
        self.postprocessor = None
