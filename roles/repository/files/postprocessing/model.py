"""`postprocessing`: token ids in, text out (Triton Python backend).

The tensors of upstream's inflight_batcher_llm postprocessing model, taken
from the config Triton hands the model (they differ between releases):

  TOKENS_BATCH [batch, beam, tokens]  -> OUTPUT [batch * beam] strings (1-D, as
  SEQUENCE_LENGTH [batch, beam]          upstream answers at every release)
  CUM_LOG_PROBS, OUTPUT_LOG_PROBS,    -> OUT_CUM_LOG_PROBS, OUT_OUTPUT_LOG_PROBS,
  CONTEXT_LOGITS, GENERATION_LOGITS,     OUT_CONTEXT_LOGITS, OUT_GENERATION_LOGITS,
  BATCH_INDEX (up to 0.12)               OUT_BATCH_INDEX, passed through

An OUT_* the config declares whose input did not come gets the stand-in
upstream's model sends (a zero of the right rank); an OUT_* the config does not
declare (0.19 and later) is never sent. Each beam is cut at its sequence
length; leading prompt-table ids (>= the vocabulary) are skipped as upstream
does. skip_special_tokens defaults to true, as upstream reads the parameter.

When tensorrt_llm streams, each response carries only the new tokens; they
are decoded on their own, so a streaming client concatenates the pieces.

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
    error_response, flag_parameter, model_parameters, pb_utils, request_inputs, tensor_types,
    tokenizer_from_parameters)


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


def decode_tokens(tokenizer, tokens_batch, sequence_length=None, skip_special_tokens=True, vocab_size=None):
    """Detokenize [batch, beam, tokens] into a 1-D array of batch * beam UTF-8 strings (batch major).

    Each beam is cut at its sequence length (never beyond the tokens there
    are: a streamed response holds only its new tokens); leading ids past the
    vocabulary (a prompt table's virtual tokens) are skipped.
    """
    tokens = as_beams(tokens_batch)
    lengths = beam_lengths(sequence_length, tokens.shape)
    batch, beam, width = tokens.shape
    texts = []
    for b in range(batch):
        for k in range(beam):
            count = int(min(max(lengths[b, k], 0), width))
            ids = [int(token) for token in tokens[b, k, :count]]
            if vocab_size:
                while ids and ids[0] >= vocab_size:
                    ids.pop(0)
            text = tokenizer.decode(ids, skip_special_tokens=skip_special_tokens)
            texts.append(text.encode("utf-8"))
    result = np.empty(len(texts), dtype=object)
    result[:] = texts
    return result


# OUT_* output -> (input passed through, stand-in when the input did not come)
PASS_THROUGH = {
    "OUT_CUM_LOG_PROBS": ("CUM_LOG_PROBS", np.zeros((1, 1), dtype=np.float32)),
    "OUT_OUTPUT_LOG_PROBS": ("OUTPUT_LOG_PROBS", np.zeros((1, 1, 1), dtype=np.float32)),
    "OUT_CONTEXT_LOGITS": ("CONTEXT_LOGITS", np.zeros((1, 1, 1), dtype=np.float32)),
    "OUT_GENERATION_LOGITS": ("GENERATION_LOGITS", np.zeros((1, 1, 1, 1), dtype=np.float32)),
    "OUT_BATCH_INDEX": ("BATCH_INDEX", np.zeros((1, 1), dtype=np.int32)),
}


class Postprocessor:
    """The detokenization of one model instance, independent of Triton.

    ``outputs`` are the output names of the model's config (all of them when
    None).
    """

    def __init__(self, params, outputs=None, tokenizer=None):
        self.tokenizer = tokenizer if tokenizer is not None else tokenizer_from_parameters(params)
        self.skip_special_tokens = flag_parameter(params.get("skip_special_tokens"), True)
        self.outputs = list(outputs) if outputs is not None else ["OUTPUT"] + list(PASS_THROUGH)
        self.vocab_size = getattr(self.tokenizer, "vocab_size", None)

    def __call__(self, inputs):
        """Map a dict of input arrays (None when absent) to a dict of outputs."""
        tokens = inputs.get("TOKENS_BATCH")
        if tokens is None:
            raise ValueError("TOKENS_BATCH is required")
        result = {"OUTPUT": decode_tokens(self.tokenizer, tokens, inputs.get("SEQUENCE_LENGTH"),
                                          self.skip_special_tokens, self.vocab_size)}
        for name, (source, stand_in) in PASS_THROUGH.items():
            if name in self.outputs:
                value = inputs.get(source)
                result[name] = stand_in.copy() if value is None else np.asarray(value)
        return {name: value for name, value in result.items() if name in self.outputs}


INPUT_NAMES = ("TOKENS_BATCH", "SEQUENCE_LENGTH", "CUM_LOG_PROBS", "OUTPUT_LOG_PROBS", "CONTEXT_LOGITS",
               "GENERATION_LOGITS", "BATCH_INDEX")


class TritonPythonModel:
    """Triton entry point."""

    def initialize(self, args):
        model_config = json.loads(args["model_config"])
        self.output_dtypes = tensor_types(model_config, "output")
        # A config without tensor lists (a hand-written one) takes every tensor this model knows.
        declared = tensor_types(model_config, "input")
        self.input_names = [name for name in declared if name in INPUT_NAMES] if declared else list(INPUT_NAMES)
        self.postprocessor = Postprocessor(model_parameters(model_config), outputs=list(self.output_dtypes) or None)

    def execute(self, requests):
        responses = []
        for request in requests:
            try:
                outputs = self.postprocessor(request_inputs(pb_utils, request, self.input_names))
                tensors = [
                    pb_utils.Tensor(name, value if name == "OUTPUT" else value.astype(self.output_dtypes.get(name) or value.dtype))
                    for name, value in outputs.items()
                ]
                responses.append(pb_utils.InferenceResponse(output_tensors=tensors))
            except Exception as error:  # noqa: BLE001 - one bad request must not fail the batch
                responses.append(error_response(pb_utils, "postprocessing", error))
        return responses

    def finalize(self):
        self.postprocessor = None
