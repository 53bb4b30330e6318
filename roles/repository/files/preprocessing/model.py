"""`preprocessing`: text in, token ids out (Triton Python backend).

Turns the ensemble's request into the inputs of `tensorrt_llm`, with the
tensors of upstream's inflight_batcher_llm preprocessing model at the release
the config Triton hands the model comes from:

  QUERY [batch, 1] strings          -> INPUT_ID [batch, max_len] (padded with pad_id)
                                       REQUEST_INPUT_LEN [batch, 1]
  DECODER_QUERY (0.12+, optional)   -> DECODER_INPUT_ID, REQUEST_DECODER_INPUT_LEN; without it
                                       [pad_id] and 1, what upstream fills for decoder-only models
  REQUEST_OUTPUT_LEN [batch, n]     -> REQUEST_OUTPUT_LEN (checked, as INT32)
  BAD_WORDS_DICT / STOP_WORDS_DICT  -> BAD_WORDS_IDS / STOP_WORDS_IDS [batch, 2, n]
  EMBEDDING_BIAS_WORDS / _WEIGHTS   -> EMBEDDING_BIAS [batch, vocab] ([batch, 0]: none)
  END_ID / PAD_ID (0.12+, optional) -> OUT_END_ID / OUT_PAD_ID [batch, 1]
  PROMPT_EMBEDDING_TABLE (0.12)     -> OUT_PROMPT_EMBEDDING_TABLE (passed through, only when sent)
  PROMPT_TABLE_EXTRA_ID (0.19+)     -> OUT_PROMPT_TABLE_EXTRA_IDS [batch, max_len] (only when sent): the
                                       id on every prompt-table token (ids >= the vocabulary), else 0

Only the outputs the config declares are answered. Image and video inputs
(IMAGE, IMAGE_BYTES, IMAGE_URL, VIDEO_BYTES, IMAGE_SIZES) need a multimodal
encoder this project does not serve: a request carrying one gets an error
naming it.

Word lists use TensorRT-LLM's flattened format: row 0 holds the token ids of
all words one after another, row 1 the cumulative end offset of each word,
both padded (ids with 0, offsets with -1) to the longest row of the batch.
Each string of a BAD_WORDS_DICT/STOP_WORDS_DICT row may hold several words
separated by commas (CSV quoting keeps a comma inside a word).

The helpers are plain functions, tested without Triton (tritonfleet_model_utils
brings the Triton utilities inside the server). A bad request gets an error
response; it never takes the model down.
"""

import csv
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

# Inputs that need a multimodal encoder; no model of this project runs one.
MULTIMODAL_INPUTS = ("IMAGE", "IMAGE_BYTES", "IMAGE_URL", "VIDEO_BYTES", "IMAGE_SIZES")


def default_special_ids(tokenizer):
    """End and pad ids from the tokenizer: eos, and pad falling back to eos."""
    end_id = tokenizer.eos_token_id
    pad_id = tokenizer.pad_token_id
    if end_id is None:
        end_id = pad_id if pad_id is not None else 0
    if pad_id is None:
        pad_id = end_id
    return int(end_id), int(pad_id)


def as_text(value):
    """A Triton BYTES element (bytes, numpy bytes or str) as str."""
    if isinstance(value, (bytes, np.bytes_)):
        return bytes(value).decode("utf-8")
    if isinstance(value, np.ndarray):
        return as_text(value.item())
    return str(value)


def row_strings(row):
    """The strings of one batch row of a TYPE_STRING tensor."""
    return [as_text(item) for item in np.asarray(row, dtype=object).reshape(-1)]


def encode_queries(tokenizer, queries, add_special_tokens, pad_id):
    """Tokenize a [batch, 1] QUERY tensor.

    Returns (input_ids int32 [batch, max_len], input_lengths int32 [batch, 1]).
    """
    queries = np.asarray(queries, dtype=object)
    if queries.ndim == 1:
        queries = queries.reshape(-1, 1)
    sequences = []
    for index, row in enumerate(queries):
        texts = row_strings(row)
        if len(texts) != 1:
            raise ValueError(
                f"QUERY row {index} holds {len(texts)} strings; send one prompt per batch entry"
            )
        ids = tokenizer.encode(texts[0], add_special_tokens=add_special_tokens)
        if len(ids) == 0:
            raise ValueError(f"QUERY row {index} is empty after tokenization")
        sequences.append(ids)
    max_len = max(len(ids) for ids in sequences)
    input_ids = np.full((len(sequences), max_len), pad_id, dtype=np.int32)
    for index, ids in enumerate(sequences):
        input_ids[index, : len(ids)] = ids
    input_lengths = np.array([[len(ids)] for ids in sequences], dtype=np.int32)
    return input_ids, input_lengths


def split_words(texts):
    """Words of one BAD_WORDS_DICT/STOP_WORDS_DICT row (comma separated, CSV quoting)."""
    words = []
    for text in texts:
        if text == "":
            continue
        for fields in csv.reader([text]):
            words.extend(field for field in fields if field != "")
    return words


def to_word_list_format(tokenizer, word_dict, batch_size):
    """Build TensorRT-LLM's [batch, 2, n] word list from a [batch, k] string tensor.

    No tensor gives an empty [batch, 2, 0] list.
    """
    if word_dict is None:
        return np.zeros((batch_size, 2, 0), dtype=np.int32)
    rows = np.asarray(word_dict, dtype=object)
    if rows.ndim == 1:
        rows = rows.reshape(-1, 1)
    flat_ids = []
    offsets = []
    for row in rows:
        item_ids = []
        item_offsets = []
        for word in split_words(row_strings(row)):
            ids = tokenizer.encode(word, add_special_tokens=False)
            if not ids:
                continue
            item_ids.extend(ids)
            item_offsets.append(len(item_ids))
        flat_ids.append(item_ids)
        offsets.append(item_offsets)
    width = max(1, max(len(ids) for ids in flat_ids))
    result = np.zeros((len(flat_ids), 2, width), dtype=np.int32)
    result[:, 1, :] = -1
    for index, (ids, ends) in enumerate(zip(flat_ids, offsets)):
        result[index, 0, : len(ids)] = ids
        result[index, 1, : len(ends)] = ends
    return result


def embedding_bias(tokenizer, words, weights, batch_size, vocab_size=None):
    """EMBEDDING_BIAS [batch, vocab] from words and their weights.

    Every token of a word gets the word's weight added. Without words or
    weights the result is an empty [batch, 0] tensor (no bias).
    """
    if words is None or weights is None:
        return np.zeros((batch_size, 0), dtype=np.float32)
    size = int(vocab_size) if vocab_size else len(tokenizer)
    word_rows = np.asarray(words, dtype=object)
    weight_rows = np.asarray(weights, dtype=np.float32)
    if word_rows.ndim == 1:
        word_rows = word_rows.reshape(1, -1)
    if weight_rows.ndim == 1:
        weight_rows = weight_rows.reshape(1, -1)
    if word_rows.shape[0] != weight_rows.shape[0]:
        raise ValueError("EMBEDDING_BIAS_WORDS and EMBEDDING_BIAS_WEIGHTS differ in batch size")
    bias = np.zeros((word_rows.shape[0], size), dtype=np.float32)
    for index, (word_row, weight_row) in enumerate(zip(word_rows, weight_rows)):
        row_words = row_strings(word_row)
        if len(row_words) != len(weight_row):
            raise ValueError(
                f"row {index}: {len(row_words)} embedding bias words but {len(weight_row)} weights"
            )
        for word, weight in zip(row_words, weight_row):
            if word == "":
                continue
            for token in tokenizer.encode(word, add_special_tokens=False):
                if not 0 <= token < size:
                    raise ValueError(f"token {token} of {word!r} is outside the vocabulary ({size})")
                bias[index, token] += weight
    return bias


def request_output_len(value):
    """REQUEST_OUTPUT_LEN as INT32, every value checked to be > 0."""
    lengths = np.asarray(value)
    if lengths.size == 0:
        raise ValueError("max_tokens (REQUEST_OUTPUT_LEN) is empty")
    if not np.issubdtype(lengths.dtype, np.integer):
        raise ValueError("max_tokens (REQUEST_OUTPUT_LEN) must be an integer tensor")
    if (lengths <= 0).any():
        raise ValueError("max_tokens (REQUEST_OUTPUT_LEN) must be greater than 0")
    lengths = lengths.astype(np.int32)
    if lengths.ndim == 1:
        lengths = lengths.reshape(-1, 1)
    return lengths


def special_id_tensor(value, default, batch_size):
    """OUT_END_ID/OUT_PAD_ID [batch, 1]: the request's value, else the tokenizer's."""
    if value is None:
        return np.full((batch_size, 1), default, dtype=np.int32)
    ids = np.asarray(value).astype(np.int32).reshape(-1, 1)
    if ids.shape[0] == 1 and batch_size > 1:
        ids = np.repeat(ids, batch_size, axis=0)
    return ids


def prompt_table_extra_ids(input_ids, extra_id, vocab_size):
    """OUT_PROMPT_TABLE_EXTRA_IDS: each prompt-table token (id >= vocab_size) carries its row's extra id."""
    extra = np.asarray(extra_id).astype(np.uint64).reshape(-1)
    if extra.size == 1 and input_ids.shape[0] > 1:
        extra = np.repeat(extra, input_ids.shape[0])
    if extra.size != input_ids.shape[0]:
        raise ValueError("PROMPT_TABLE_EXTRA_ID (prompt_table_extra_id) needs one value per batch entry")
    return np.where(input_ids >= vocab_size, extra.reshape(-1, 1), 0).astype(np.uint64)


class Preprocessor:
    """The tokenization of one model instance, independent of Triton.

    ``outputs`` are the output names of the model's config (all of them when
    None).
    """

    def __init__(self, params, outputs=None, tokenizer=None):
        self.tokenizer = tokenizer if tokenizer is not None else tokenizer_from_parameters(params)
        self.add_special_tokens = flag_parameter(params.get("add_special_tokens"), True)
        vocab = params.get("vocab_size", "")
        self.vocab_size = int(vocab) if str(vocab).strip().isdigit() else None
        self.end_id, self.pad_id = default_special_ids(self.tokenizer)
        self.outputs = outputs

    def __call__(self, inputs):
        """Map a dict of input arrays (None when absent) to a dict of outputs."""
        for name in MULTIMODAL_INPUTS:
            if inputs.get(name) is not None and np.asarray(inputs[name]).size:
                raise ValueError(
                    f"input {name} is not supported: image and video inputs need a multimodal encoder, which this "
                    "deployment does not serve; send text only")
        query = inputs.get("QUERY")
        if query is None:
            raise ValueError("QUERY (text_input) is required")
        if inputs.get("REQUEST_OUTPUT_LEN") is None:
            raise ValueError("REQUEST_OUTPUT_LEN (max_tokens) is required")
        batch = np.asarray(query).shape[0]
        end_id = special_id_tensor(inputs.get("END_ID"), self.end_id, batch)
        pad_id = special_id_tensor(inputs.get("PAD_ID"), self.pad_id, batch)
        input_ids, input_lengths = encode_queries(
            self.tokenizer, query, self.add_special_tokens, int(pad_id[0, 0])
        )
        batch_size = input_ids.shape[0]
        if inputs.get("DECODER_QUERY") is not None:
            decoder_ids, decoder_lengths = encode_queries(
                self.tokenizer, inputs["DECODER_QUERY"], self.add_special_tokens, int(pad_id[0, 0]))
        else:
            decoder_ids = pad_id.reshape(-1, 1).astype(np.int32)
            decoder_lengths = np.ones((batch_size, 1), dtype=np.int32)
        result = {
            "INPUT_ID": input_ids,
            "REQUEST_INPUT_LEN": input_lengths,
            "DECODER_INPUT_ID": decoder_ids,
            "REQUEST_DECODER_INPUT_LEN": decoder_lengths,
            "BAD_WORDS_IDS": to_word_list_format(self.tokenizer, inputs.get("BAD_WORDS_DICT"), batch_size),
            "STOP_WORDS_IDS": to_word_list_format(self.tokenizer, inputs.get("STOP_WORDS_DICT"), batch_size),
            "EMBEDDING_BIAS": embedding_bias(
                self.tokenizer,
                inputs.get("EMBEDDING_BIAS_WORDS"),
                inputs.get("EMBEDDING_BIAS_WEIGHTS"),
                batch_size,
                self.vocab_size,
            ),
            "REQUEST_OUTPUT_LEN": request_output_len(inputs["REQUEST_OUTPUT_LEN"]),
            "OUT_END_ID": end_id,
            "OUT_PAD_ID": pad_id,
        }
        # Sent on only when the client sent their input, as upstream does.
        if inputs.get("PROMPT_EMBEDDING_TABLE") is not None:
            result["OUT_PROMPT_EMBEDDING_TABLE"] = np.asarray(inputs["PROMPT_EMBEDDING_TABLE"])
        if inputs.get("PROMPT_TABLE_EXTRA_ID") is not None:
            vocab = self.vocab_size or len(self.tokenizer)
            result["OUT_PROMPT_TABLE_EXTRA_IDS"] = prompt_table_extra_ids(
                input_ids, inputs["PROMPT_TABLE_EXTRA_ID"], vocab)
        if self.outputs is not None:
            result = {name: value for name, value in result.items() if name in self.outputs}
        return result


INPUT_NAMES = (
    "QUERY",
    "DECODER_QUERY",
    "REQUEST_OUTPUT_LEN",
    "BAD_WORDS_DICT",
    "STOP_WORDS_DICT",
    "EMBEDDING_BIAS_WORDS",
    "EMBEDDING_BIAS_WEIGHTS",
    "END_ID",
    "PAD_ID",
    "PROMPT_EMBEDDING_TABLE",
    "PROMPT_TABLE_EXTRA_ID",
) + MULTIMODAL_INPUTS


class TritonPythonModel:
    """Triton entry point."""

    def initialize(self, args):
        model_config = json.loads(args["model_config"])
        self.output_dtypes = tensor_types(model_config, "output")
        # A config without tensor lists (a hand-written one) takes every tensor this model knows.
        declared = tensor_types(model_config, "input")
        self.input_names = [name for name in declared if name in INPUT_NAMES] if declared else list(INPUT_NAMES)
        self.preprocessor = Preprocessor(model_parameters(model_config), outputs=list(self.output_dtypes) or None)

    def execute(self, requests):
        responses = []
        for request in requests:
            try:
                outputs = self.preprocessor(request_inputs(pb_utils, request, self.input_names))
                tensors = [
                    pb_utils.Tensor(name, value.astype(self.output_dtypes.get(name) or value.dtype))
                    for name, value in outputs.items()
                    if name in self.output_dtypes or not self.output_dtypes
                ]
                responses.append(pb_utils.InferenceResponse(output_tensors=tensors))
            except Exception as error:  # noqa: BLE001 - one bad request must not fail the batch
                responses.append(error_response(pb_utils, "preprocessing", error))
        return responses

    def finalize(self):
        self.preprocessor = None
