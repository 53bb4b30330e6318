"""How tensorrtllm_backend's own clients talk to the ensemble, release by release.

Facts read from upstream's client scripts at each release (never their code):

* ``inflight_batcher_llm/client/end_to_end_grpc_client.py`` (the ensemble, text in,
  text out, always over a gRPC stream, ``--streaming`` or not);
* ``inflight_batcher_llm/client/inflight_batcher_llm_client.py --streaming`` (token ids
  straight to ``tensorrt_llm`` over a gRPC stream);
* ``tools/inflight_batcher_llm/end_to_end_test.py`` (HTTP by default, plain ``infer``:
  preprocessing -> tensorrt_llm -> postprocessing by hand, then the ensemble, and both
  answers compared).

Tags v0.7.1, v0.12.0, v0.19.0 of triton-inference-server/tensorrtllm_backend; the
current release from NVIDIA/TensorRT-LLM ``triton_backend/`` (commit 2a9abd95, the
commit the 1.x contract was recorded from), whose clients match v0.19.0's in what
they send and read.

:data:`CLIENTS` holds, per release and client, the tensors sent (name, numpy dtype,
shape as the client builds it), the outputs it asks for and how it reads them.
The functions below send exactly those requests with tritonclient and read the answers
the same way (``output[0].decode("utf-8")``, ``batch_index[0][0]``,
``output_ids[0][0]`` ...), so a shape or name upstream's client would trip on raises
here the same error.
"""

import queue
import uuid

import numpy as np

# Which releases the tests run, the tritonfleet_trtllm_version each is deployed with,
# and the contract file (roles/repository/files/contracts/<contract>.yml) it selects.
RELEASES = {
    "0.7": {"version": "0.7.1", "contract": "0.7", "tag": "v0.7.1"},
    "0.12": {"version": "0.12.0", "contract": "0.12", "tag": "v0.12.0"},
    "0.19": {"version": "0.19.0", "contract": "0.19", "tag": "v0.19.0"},
    # The contract's `versions: ['1']`: every 1.x release, the CPU engine's recorded version.
    "1.x": {"version": "1", "contract": "1.x", "tag": "NVIDIA/TensorRT-LLM@2a9abd95"},
}

_BOOL, _I32, _F32, _U64, _OBJ = bool, np.int32, np.float32, np.uint64, object

# Per release and client: what is sent and what is read.
#   always: tensors sent on every request: (name, numpy dtype, shape); "B" is the batch.
#   options: tensors sent only when the user passes the matching command-line flag.
#   outputs: outputs named in the request (None: the client names none, all come back).
#   reads: how the client reads the answers.
CLIENTS = {
    "end_to_end_grpc_client": {
        "0.7": {
            "protocol": "grpc stream (start_stream, async_stream_infer, stop_stream), also without --streaming",
            "always": [("text_input", _OBJ, [1, 1]), ("max_tokens", _I32, [1, 1]), ("stream", _BOOL, [1, 1]),
                       ("beam_width", _I32, [1, 1]), ("temperature", _F32, [1, 1])],
            "options": [("bad_words", _OBJ, [1, -1]), ("stop_words", _OBJ, [1, -1]),
                        ("repetition_penalty", _F32, [1, 1]), ("presence_penalty", _F32, [1, 1]),
                        ("embedding_bias_words", _OBJ, [1, -1]), ("embedding_bias_weights", _F32, [1, -1])],
            "outputs": None,
            "reads": {"text_output": "output[0].decode('utf8'); streamed pieces appended"},
        },
        "0.12": {
            "protocol": "grpc stream, also without --streaming",
            "always": [("text_input", _OBJ, ["B", 1]), ("max_tokens", _I32, ["B", 1]), ("stream", _BOOL, ["B", 1]),
                       ("beam_width", _I32, ["B", 1]), ("temperature", _F32, ["B", 1])],
            "options": [("bad_words", _OBJ, [1, -1]), ("stop_words", _OBJ, [1, -1]),
                        ("repetition_penalty", _F32, [1, 1]), ("presence_penalty", _F32, [1, 1]),
                        ("frequency_penalty", _F32, [1, 1]), ("return_context_logits", _BOOL, [1, 1]),
                        ("return_generation_logits", _BOOL, [1, 1]), ("end_id", _I32, [1, 1]), ("pad_id", _I32, [1, 1]),
                        ("embedding_bias_words", _OBJ, [1, -1]), ("embedding_bias_weights", _F32, [1, -1])],
            "outputs": None,
            # The client indexes batch_index unconditionally: an ensemble without it fails here.
            "reads": {"text_output": "output[0].decode('utf-8')", "batch_index": "as_numpy('batch_index')[0][0], required"},
        },
        "0.19": {
            "protocol": "grpc stream, also without --streaming",
            "always": [("text_input", _OBJ, ["B", 1]), ("max_tokens", _I32, ["B", 1]), ("stream", _BOOL, ["B", 1]),
                       ("beam_width", _I32, ["B", 1]), ("temperature", _F32, ["B", 1]),
                       # --exclude-input-in-output is store_true, so False is sent when not given.
                       ("exclude_input_in_output", _BOOL, ["B", 1])],
            "options": [("num_return_sequences", _I32, [1, 1]), ("bad_words", _OBJ, [1, -1]), ("stop_words", _OBJ, [1, -1]),
                        ("repetition_penalty", _F32, [1, 1]), ("presence_penalty", _F32, [1, 1]),
                        ("frequency_penalty", _F32, [1, 1]), ("return_log_probs", _BOOL, [1, 1]),
                        ("return_context_logits", _BOOL, [1, 1]), ("return_generation_logits", _BOOL, [1, 1]),
                        ("return_perf_metrics", _BOOL, [1, 1]), ("end_id", _I32, [1, 1]), ("pad_id", _I32, [1, 1]),
                        ("embedding_bias_words", _OBJ, [1, -1]), ("embedding_bias_weights", _F32, [1, -1])],
            # Only what it reads: text_output, plus the log probs with --return-log-probs,
            # sequence_index with -n > 1, batch_index with --batch-inputs.
            "outputs": ["text_output"],
            "reads": {"text_output": "output[0].decode('utf-8')", "batch_index": "[0][0] if present, else 0",
                      "sequence_index": "[0][0] if present, else 0"},
        },
    },
    "inflight_batcher_llm_client": {
        "0.7": {
            "protocol": "grpc stream to tensorrt_llm with --streaming (decoupled model); async_infer without",
            "always": [("input_ids", _I32, [1, -1]), ("input_lengths", _I32, [1, 1]), ("request_output_len", _I32, [1, 1]),
                       ("beam_width", _I32, [1, 1]), ("temperature", _F32, [1, 1]), ("streaming", _BOOL, [1, 1]),
                       ("end_id", _I32, [1, 1]), ("pad_id", _I32, [1, 1]), ("return_log_probs", _BOOL, [1, 1]),
                       ("runtime_top_k", _I32, [1, 1]), ("runtime_top_p", _F32, [1, 1])],
            "outputs": None,
            # Streamed: each response's output_ids[0][0] appended to the prompt's ids (unless
            # --exclude-input-in-output), skipped when sequence_length[0][0] is 0.
            "reads": {"output_ids": "list(output_ids[0][0])", "sequence_length": "[0][0] > 0"},
            "end_pad_from_tokenizer": "pad_token = eos_token; both ids = encode(eos, add_special_tokens=False)[0]",
        },
        "0.12": {
            "protocol": "as 0.7",
            "always": "as 0.7",
            "outputs": None,
            "reads": "as 0.7",
            "end_pad_from_tokenizer": "as 0.7",
        },
        "0.19": {
            "protocol": "as 0.7; model name --model-name (default tensorrt_llm)",
            # return_log_probs only with --return-log-probs; exclude_input_in_output only when given.
            "always": [("input_ids", _I32, [1, -1]), ("input_lengths", _I32, [1, 1]), ("request_output_len", _I32, [1, 1]),
                       ("beam_width", _I32, [1, 1]), ("temperature", _F32, [1, 1]), ("streaming", _BOOL, [1, 1]),
                       ("end_id", _I32, [1, 1]), ("pad_id", _I32, [1, 1]),
                       ("runtime_top_k", _I32, [1, 1]), ("runtime_top_p", _F32, [1, 1])],
            "options": [("return_log_probs", _BOOL, [1, 1]), ("exclude_input_in_output", _BOOL, [1, 1]),
                        ("num_return_sequences", _I32, [1, 1])],
            "outputs": None,
            "reads": {"output_ids": "list(output_ids[0][0]) of sequence_index (absent: 0)",
                      "sequence_length": "[0][0]", "cum_log_probs": "[0] with --return-log-probs"},
            "end_pad_from_tokenizer": "pad_token = eos_token only when unset; ids = encode(token, add_special_tokens=False)[0]",
        },
    },
    "end_to_end_test": {
        "0.7": {
            "protocol": "http (default -i http), client.infer; needs a non-decoupled tensorrt_llm",
            "preprocessing": [("QUERY", _OBJ, [1, 1]), ("BAD_WORDS_DICT", _OBJ, [1, 1]), ("STOP_WORDS_DICT", _OBJ, [1, 1]),
                              ("REQUEST_OUTPUT_LEN", _I32, [1, 1])],
            "reads_preprocessing": ["INPUT_ID", "REQUEST_INPUT_LEN", "REQUEST_OUTPUT_LEN"],
            "tensorrt_llm": ["input_ids", "input_lengths", "request_output_len"],
            "reads_tensorrt_llm": ["output_ids", "sequence_length", "cum_log_probs", "output_log_probs"],
            "postprocessing": ["TOKENS_BATCH", "SEQUENCE_LENGTH", "CUM_LOG_PROBS", "OUTPUT_LOG_PROBS"],
            "ensemble": [("text_input", _OBJ, [1, 1]), ("max_tokens", _I32, [1, 1]), ("bad_words", _OBJ, [1, 1]),
                         ("stop_words", _OBJ, [1, 1])],
            "compares": "OUTPUT == text_output; cum_log_probs and output_log_probs equal",
        },
        "0.12": {
            "protocol": "as 0.7",
            "reads_preprocessing": ["INPUT_ID", "REQUEST_INPUT_LEN", "REQUEST_OUTPUT_LEN", "DECODER_INPUT_ID",
                                    "OUT_END_ID", "OUT_PAD_ID"],
            "tensorrt_llm": ["input_ids", "decoder_input_ids", "input_lengths", "request_output_len", "end_id", "pad_id"],
            # .astype() on each: all six must come back even when nothing asked for them.
            "reads_tensorrt_llm": ["output_ids", "sequence_length", "cum_log_probs", "output_log_probs",
                                   "context_logits", "generation_logits"],
            "postprocessing": ["TOKENS_BATCH", "SEQUENCE_LENGTH", "CUM_LOG_PROBS", "OUTPUT_LOG_PROBS",
                               "CONTEXT_LOGITS", "GENERATION_LOGITS"],
            "compares": "as 0.7, plus context_logits [1,1,1] and generation_logits [1,1,1,1] when not asked",
        },
        "0.19": {
            "protocol": "as 0.7",
            "reads_preprocessing": "as 0.12",
            "tensorrt_llm": "as 0.12, plus return_log_probs with --return-log-probs",
            "reads_tensorrt_llm": ["output_ids", "sequence_length", "cum_log_probs and output_log_probs when asked"],
            "postprocessing": ["TOKENS_BATCH", "SEQUENCE_LENGTH"],
            "ensemble": "as 0.7, plus return_log_probs when asked; requests text_output (+ log probs when asked)",
            "compares": "OUTPUT == text_output; log probs when asked",
        },
    },
}
# The current release's clients send and read what v0.19.0's do.
for _client in CLIENTS.values():
    _client["1.x"] = _client["0.19"]


def client_facts(client, release):
    return CLIENTS[client][release]


def generation(release):
    """0.7, 0.12 or 0.19: the generation of client code a release uses."""
    return "0.19" if release in ("0.19", "1.x") else release


class ClientRun:
    """What one client run produced: its texts or ids, the errors it printed, the raw results."""

    def __init__(self):
        self.texts = []
        self.errors = []
        self.results = []
        self.output_ids = []
        self.sequence_length = None
        self.cum_log_probs = None
        self.output_log_probs = None

    @property
    def text(self):
        return self.texts[0] if self.texts else None


def _grpc():
    import tritonclient.grpc as grpcclient
    return grpcclient


def _tensor(module, name, value):
    from tritonclient.utils import np_to_triton_dtype
    item = module.InferInput(name, list(value.shape), np_to_triton_dtype(value.dtype))
    item.set_data_from_numpy(value)
    return item


def _stream(url, model, inputs, outputs=None, request_id=""):
    """Send one request on a gRPC stream and wait for the server to close it, as the clients do.

    Returns the callback's items in arrival order: InferResult or InferenceServerException.
    """
    grpcclient = _grpc()
    client = grpcclient.InferenceServerClient(url=url)
    answers = queue.Queue()
    try:
        client.start_stream(callback=lambda result, error: answers.put(error if error else result))
        client.async_stream_infer(model, inputs, outputs=outputs, request_id=request_id)
        # stop_stream() returns once the server has answered everything sent on the stream.
        client.stop_stream()
    finally:
        client.close()
    items = []
    while not answers.empty():
        items.append(answers.get_nowait())
    return items


def end_to_end_grpc_client(url, release, prompt, output_len=100, streaming=False, beam_width=1, temperature=1.0,
                           model="ensemble", stop_words=None, bad_words=None, end_id=None, pad_id=None,
                           exclude_input_in_output=False, return_log_probs=False, num_return_sequences=None):
    """``end_to_end_grpc_client.py -p PROMPT -o N [--streaming] ...`` of ``release``.

    Texts are assembled as the client does: streamed pieces appended per batch index,
    otherwise the one answer's ``output[0]``. Errors are collected as the client prints them.
    """
    from tritonclient.utils import InferenceServerException

    gen = generation(release)
    data = {
        "text_input": np.array([[prompt]]).astype(object),
        "max_tokens": np.ones_like([[prompt]]).astype(np.int32) * output_len,
        "stream": np.array([[streaming]], dtype=bool),
        "beam_width": np.array([[beam_width]], dtype=np.int32),
        "temperature": np.array([[temperature]], dtype=np.float32),
    }
    if gen == "0.19" and num_return_sequences is not None:
        data["num_return_sequences"] = np.array([[num_return_sequences]], dtype=np.int32)
    if bad_words:
        data["bad_words"] = np.array([bad_words], dtype=object)
    if stop_words:
        data["stop_words"] = np.array([stop_words], dtype=object)
    if gen == "0.19" and return_log_probs:
        data["return_log_probs"] = np.array([[True]], dtype=bool)
    if gen != "0.7" and end_id is not None:
        data["end_id"] = np.array([[end_id]], dtype=np.int32)
    if gen != "0.7" and pad_id is not None:
        data["pad_id"] = np.array([[pad_id]], dtype=np.int32)
    if gen == "0.19":
        data["exclude_input_in_output"] = np.array([[exclude_input_in_output]], dtype=bool)
    grpcclient = _grpc()
    inputs = [_tensor(grpcclient, name, value) for name, value in data.items()]
    outputs = None
    if gen == "0.19":
        names = ["text_output"]
        if return_log_probs:
            names += ["cum_log_probs", "output_log_probs"]
        if num_return_sequences is not None and num_return_sequences > 1:
            names.append("sequence_index")
        outputs = [grpcclient.InferRequestedOutput(name) for name in names]

    run = ClientRun()
    generations = num_return_sequences or beam_width
    texts = [[""] * generations]
    for item in _stream(url, model, inputs, outputs):
        if isinstance(item, InferenceServerException):
            run.errors.append(str(item))
            continue
        run.results.append(item)
        output = item.as_numpy("text_output")
        if gen == "0.12":
            batch_index = item.as_numpy("batch_index")[0][0]
            seq_index = 0
        elif gen == "0.19":
            batch_index = item.as_numpy("batch_index")
            batch_index = 0 if batch_index is None else batch_index[0][0]
            seq_index = item.as_numpy("sequence_index")
            seq_index = 0 if seq_index is None else seq_index[0][0]
        else:
            batch_index = seq_index = 0
        if streaming and beam_width == 1:
            texts[batch_index][seq_index] += output[0].decode("utf-8")
        else:
            texts[batch_index][seq_index] = output[0].decode("utf-8")
        if return_log_probs:
            run.cum_log_probs = item.as_numpy("cum_log_probs")
            run.output_log_probs = item.as_numpy("output_log_probs")
    if run.results:
        run.texts = texts[0]
    return run


def tokenizer_ids(tokenizer_dir, release, text):
    """The prompt's ids and the end and pad ids inflight_batcher_llm_client.py derives from the tokenizer."""
    from transformers import AutoTokenizer

    if generation(release) == "0.19":
        tokenizer = AutoTokenizer.from_pretrained(str(tokenizer_dir), legacy=False, padding_side="left",
                                                  trust_remote_code=True)
        if not tokenizer.pad_token:
            tokenizer.pad_token = tokenizer.eos_token
    else:
        tokenizer = AutoTokenizer.from_pretrained(str(tokenizer_dir), padding_side="left", trust_remote_code=True)
        tokenizer.pad_token = tokenizer.eos_token
    pad_id = tokenizer.encode(tokenizer.pad_token, add_special_tokens=False)[0]
    end_id = tokenizer.encode(tokenizer.eos_token, add_special_tokens=False)[0]
    return tokenizer, tokenizer.encode(text), end_id, pad_id


def inflight_batcher_llm_client(url, release, input_ids, end_id, pad_id, request_output_len=16, streaming=True,
                                exclude_input_in_output=False, return_log_probs=False, top_k=1, top_p=0.0,
                                model="tensorrt_llm"):
    """``inflight_batcher_llm_client.py --streaming --tokenizer-dir D --text T`` of ``release``.

    Only the streaming path (the one that needs no async_infer future): the ids are
    assembled as the client does, prompt first unless --exclude-input-in-output.
    """
    from tritonclient.utils import InferenceServerException

    gen = generation(release)
    data = {
        "input_ids": np.array([input_ids], dtype=np.int32),
        "input_lengths": np.array([[len(input_ids)]], dtype=np.int32),
        "request_output_len": np.array([[request_output_len]], dtype=np.int32),
        "beam_width": np.array([[1]], dtype=np.int32),
        "temperature": np.array([[1.0]], dtype=np.float32),
        "streaming": np.array([[streaming]], dtype=bool),
        "end_id": np.array([[end_id]], dtype=np.int32),
        "pad_id": np.array([[pad_id]], dtype=np.int32),
    }
    if gen != "0.19":
        data["return_log_probs"] = np.array([[return_log_probs]], dtype=bool)
    data["runtime_top_k"] = np.array([[top_k]], dtype=np.int32)
    data["runtime_top_p"] = np.array([[top_p]], dtype=np.float32)
    if gen == "0.19" and return_log_probs:
        data["return_log_probs"] = np.array([[True]], dtype=bool)
    if gen == "0.19" and exclude_input_in_output:
        data["exclude_input_in_output"] = np.array([[True]], dtype=bool)
    grpcclient = _grpc()
    inputs = [_tensor(grpcclient, name, value) for name, value in data.items()]

    run = ClientRun()
    run.output_ids = [] if exclude_input_in_output else list(input_ids)
    cum, per_token = [], []
    for item in _stream(url, model, inputs):
        if isinstance(item, InferenceServerException):
            run.errors.append(str(item))
            continue
        run.results.append(item)
        output_ids = item.as_numpy("output_ids")
        if output_ids is None:
            continue  # the client's "cancellation response"
        lengths = item.as_numpy("sequence_length")
        if lengths is None or lengths[0][0] > 0:
            run.output_ids += list(output_ids[0][0])
        if return_log_probs:
            cum.append(item.as_numpy("cum_log_probs")[0])
            per_token.append(item.as_numpy("output_log_probs")[0])
    if return_log_probs and cum:
        run.cum_log_probs, run.output_log_probs = cum, per_token
    return run


def end_to_end_test(module, url, release, prompt, output_len, return_log_probs=False):
    """One prompt of ``tools/inflight_batcher_llm/end_to_end_test.py``'s functionality test.

    ``module`` is tritonclient.http (the script's default) or tritonclient.grpc. Returns
    (manual, ensemble): dicts of what each path gave; the script asserts they agree.
    """
    gen = generation(release)
    client = module.InferenceServerClient(url)
    request_id = uuid.uuid4().hex[:8]

    def tensor(name, value):
        return _tensor(module, name, value)

    query = np.array([[prompt]]).astype(object)
    out_len = np.ones_like([[prompt]]).astype(np.int32) * output_len
    empty = np.array([[""]], dtype=object)
    result = client.infer("preprocessing", [tensor("QUERY", query), tensor("BAD_WORDS_DICT", empty),
                                            tensor("STOP_WORDS_DICT", empty), tensor("REQUEST_OUTPUT_LEN", out_len)],
                          request_id=request_id)
    input_id = result.as_numpy("INPUT_ID")
    trt_inputs = [tensor("input_ids", input_id)]
    if gen != "0.7":
        trt_inputs.append(tensor("decoder_input_ids", result.as_numpy("DECODER_INPUT_ID")))
    trt_inputs += [tensor("input_lengths", result.as_numpy("REQUEST_INPUT_LEN")),
                   tensor("request_output_len", result.as_numpy("REQUEST_OUTPUT_LEN"))]
    if gen != "0.7":
        trt_inputs += [tensor("end_id", result.as_numpy("OUT_END_ID")), tensor("pad_id", result.as_numpy("OUT_PAD_ID"))]
    if gen == "0.19" and return_log_probs:
        trt_inputs.append(tensor("return_log_probs", np.array([[True]], dtype=bool)))
    result = client.infer("tensorrt_llm", trt_inputs, request_id=request_id)
    manual = {"input_ids": input_id, "output_ids": result.as_numpy("output_ids").astype(np.int32),
              "sequence_length": result.as_numpy("sequence_length")}
    post_inputs = [tensor("TOKENS_BATCH", manual["output_ids"]), tensor("SEQUENCE_LENGTH", manual["sequence_length"])]
    if gen != "0.19" or return_log_probs:
        manual["cum_log_probs"] = result.as_numpy("cum_log_probs").astype(np.float32)
        manual["output_log_probs"] = result.as_numpy("output_log_probs").astype(np.float32)
    if gen == "0.12":
        manual["context_logits"] = result.as_numpy("context_logits").astype(np.float32)
        manual["generation_logits"] = result.as_numpy("generation_logits").astype(np.float32)
    if gen != "0.19":
        post_inputs += [tensor("CUM_LOG_PROBS", manual["cum_log_probs"]),
                        tensor("OUTPUT_LOG_PROBS", manual["output_log_probs"])]
    if gen == "0.12":
        post_inputs += [tensor("CONTEXT_LOGITS", manual["context_logits"]),
                        tensor("GENERATION_LOGITS", manual["generation_logits"])]
    result = client.infer("postprocessing", post_inputs, request_id=request_id)
    manual["text_output"] = result.as_numpy("OUTPUT")
    if gen == "0.12":
        manual["post_generation_logits"] = result.as_numpy("OUT_GENERATION_LOGITS")

    ens_inputs = [tensor("text_input", query), tensor("max_tokens", out_len), tensor("bad_words", empty),
                  tensor("stop_words", empty)]
    outputs = None
    if gen == "0.19":
        names = ["text_output"]
        if return_log_probs:
            ens_inputs.append(tensor("return_log_probs", np.array([[True]], dtype=bool)))
            names += ["cum_log_probs", "output_log_probs"]
        outputs = [module.InferRequestedOutput(name) for name in names]
    result = client.infer("ensemble", ens_inputs, outputs=outputs, request_id=request_id)
    ensemble = {"text_output": result.as_numpy("text_output")}
    for name in ("cum_log_probs", "output_log_probs", "context_logits", "generation_logits"):
        if gen == "0.19" and not (return_log_probs and name.endswith("log_probs")):
            continue
        ensemble[name] = result.as_numpy(name)
    client.close()
    return manual, ensemble
