"""The CPU ``tensorrt_llm`` model behind a real tritonserver (from the nvidia-pytriton wheel), over gRPC and HTTP.

Two models share one engine: ``tensorrt_llm`` (decoupled, the contract's
plain shapes, input excluded from the output) and ``tensorrt_llm_sync`` (not
decoupled, upstream's scalar ``reshape: { shape: [ ] }`` inputs, input
included in the output), so both transaction policies and both input layouts
run for real. ``tensorrt_llm_sync`` runs two instances, whose shares of the
TensorRT-LLM metric series add up in the one series Triton keeps.
"""

import os
import pathlib
import queue
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
import uuid

import numpy as np
import pytest

from ansible_collections.tritonfleet.serving.plugins.module_utils.cpu_reference import build_engine
from ansible_collections.tritonfleet.serving.plugins.module_utils.cpu_tiny_checkpoint import generate_tiny_checkpoint

pytestmark = pytest.mark.integration

grpcclient = pytest.importorskip("tritonclient.grpc")
httpclient = pytest.importorskip("tritonclient.http")
pytriton = pytest.importorskip("pytriton")
from tokenizers import Tokenizer  # noqa: E402
from tritonclient.utils import InferenceServerException  # noqa: E402

REPO_ROOT = pathlib.Path(__file__).resolve().parents[2]
MODEL_FILES = REPO_ROOT / "roles" / "repository" / "files" / "tensorrt_llm_cpu"
sys.path.insert(0, str(MODEL_FILES))
# No __pycache__ inside the role's files/: the repository role ships that directory as is.
_WRITE_BYTECODE, sys.dont_write_bytecode = sys.dont_write_bytecode, True
from cpu_engine_runtime import CpuEngine  # noqa: E402
sys.dont_write_bytecode = _WRITE_BYTECODE

MAX_INPUT_LEN, MAX_SEQ_LEN = 64, 128

# The contract's inputs: (name, type, dims, optional); dims exclude the batch dim.
INPUTS = [
    ("input_ids", "TYPE_INT32", "-1", False),
    ("input_lengths", "TYPE_INT32", "1", False),
    ("request_output_len", "TYPE_INT32", "1", False),
    ("end_id", "TYPE_INT32", "1", True),
    ("pad_id", "TYPE_INT32", "1", True),
    ("stop_words_list", "TYPE_INT32", "2, -1", True),
    ("bad_words_list", "TYPE_INT32", "2, -1", True),
    ("embedding_bias", "TYPE_FP32", "-1", True),
    ("beam_width", "TYPE_INT32", "1", True),
    ("temperature", "TYPE_FP32", "1", True),
    ("runtime_top_k", "TYPE_INT32", "1", True),
    ("runtime_top_p", "TYPE_FP32", "1", True),
    ("len_penalty", "TYPE_FP32", "1", True),
    ("repetition_penalty", "TYPE_FP32", "1", True),
    ("min_length", "TYPE_INT32", "1", True),
    ("presence_penalty", "TYPE_FP32", "1", True),
    ("random_seed", "TYPE_UINT64", "1", True),
    ("return_log_probs", "TYPE_BOOL", "1", True),
    ("stop", "TYPE_BOOL", "1", True),
    ("streaming", "TYPE_BOOL", "1", True),
    ("prompt_embedding_table", "TYPE_FP16", "-1, -1", True),
    ("prompt_vocab_size", "TYPE_INT32", "1", True),
]
OUTPUTS = [
    ("output_ids", "TYPE_INT32", "-1, -1"),
    ("sequence_length", "TYPE_INT32", "-1"),
    ("cum_log_probs", "TYPE_FP32", "-1"),
    ("output_log_probs", "TYPE_FP32", "-1, -1"),
]


def model_config(name, engine_dir, decoupled, exclude_input, scalar_reshape, instances=1):
    """A minimal config.pbtxt following the tensorrt_llm tensor contract (``engine_dir`` None leaves it unset)."""
    inputs = []
    for input_name, data_type, dims, optional in INPUTS:
        entry = '  { name: "%s" data_type: %s dims: [ %s ]' % (input_name, data_type, dims)
        if input_name == "input_ids":
            entry += " allow_ragged_batch: true"
        if scalar_reshape and dims == "1" and input_name != "request_output_len":
            entry += " reshape: { shape: [ ] }"
        if optional:
            entry += " optional: true"
        inputs.append(entry + " }")
    outputs = ['  { name: "%s" data_type: %s dims: [ %s ] }' % output for output in OUTPUTS]
    parameters = {
        "gpt_model_path": "${engine_dir}" if engine_dir is None else str(engine_dir),
        "exclude_input_in_output": "true" if exclude_input else "false",
        # An unfilled template placeholder must read as "unset".
        "max_beam_width": "${max_beam_width}",
        # GPU-only knobs are accepted and ignored.
        "kv_cache_free_gpu_mem_fraction": "0.9",
        "batch_scheduler_policy": "guaranteed_no_evict",
        "gpt_model_type": "inflight_fused_batching",
    }
    text = ['name: "%s"' % name, 'backend: "python"', "max_batch_size: 8"]
    if decoupled:
        text.append("model_transaction_policy { decoupled: true }")
    text += ["input [", ",\n".join(inputs), "]", "output [", ",\n".join(outputs), "]",
             "instance_group [ { count: %d kind: KIND_CPU } ]" % instances]
    text += ['parameters: { key: "%s" value: { string_value: "%s" } }' % item for item in parameters.items()]
    return "\n".join(text) + "\n"


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def engine_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("cpu_trtllm")
    checkpoint = root / "checkpoint"
    generate_tiny_checkpoint(str(checkpoint), seed=0)
    engine = root / "engine"
    build_engine(str(checkpoint), str(engine), tp_size=2, max_input_len=MAX_INPUT_LEN, max_seq_len=MAX_SEQ_LEN)
    return engine


@pytest.fixture(scope="module")
def tokenizer(engine_dir):
    return Tokenizer.from_file(str(engine_dir.parent / "checkpoint" / "tokenizer.json"))


@pytest.fixture(scope="module")
def engine(engine_dir):
    return CpuEngine.load(str(engine_dir))


@pytest.fixture(scope="module")
def server(engine_dir, request):
    """A tritonserver serving both models; yields (http_url, grpc_url, metrics_url)."""
    root = engine_dir.parent
    site = pathlib.Path(pytriton.__file__).resolve().parent.parent
    triton = site / "pytriton" / "tritonserver"
    backends = root / "backends"
    (backends / "python").mkdir(parents=True)
    for item in (triton / "backends" / "python").iterdir():
        if item.is_file():
            shutil.copy(item, backends / "python" / item.name)
    stub_dir = triton / "python_backend_stubs" / ("%d.%d" % sys.version_info[:2])
    shutil.copy(stub_dir / "triton_python_backend_stub", backends / "python" / "triton_python_backend_stub")

    repository = root / "repository"
    for name, decoupled, exclude_input, reshape in (("tensorrt_llm", True, True, False),
                                                    ("tensorrt_llm_sync", False, False, True),
                                                    ("tensorrt_llm_unset", True, True, False)):
        version = repository / name / "1"
        version.mkdir(parents=True)
        for filename in ("model.py", "cpu_engine_runtime.py", "cpu_engine_format.py"):
            shutil.copy(MODEL_FILES / filename, version / filename)
        (repository / name / "config.pbtxt").write_text(
            model_config(name, None if name.endswith("unset") else engine_dir, decoupled, exclude_input, reshape,
                         instances=2 if name.endswith("sync") else 1))

    http_port, grpc_port, metrics_port = free_port(), free_port(), free_port()
    env = dict(os.environ)
    env["LD_LIBRARY_PATH"] = ":".join(filter(None, [str(site / "nvidia_pytriton.libs"), env.get("LD_LIBRARY_PATH")]))
    env["PATH"] = "%s:%s" % (pathlib.Path(sys.executable).parent, env.get("PATH", ""))
    log_path = root / "tritonserver.log"
    log = open(log_path, "wb")
    process = subprocess.Popen(
        [str(triton / "bin" / "tritonserver"), "--model-repository", str(repository),
         "--backend-directory", str(backends), "--http-port", str(http_port), "--grpc-port", str(grpc_port),
         "--metrics-port", str(metrics_port),
         # Explicit control keeps the misconfigured model out of startup (where it would stop the server).
         "--model-control-mode", "explicit", "--load-model", "tensorrt_llm", "--load-model", "tensorrt_llm_sync",
         "--backend-config=python,shm-region-prefix-name=tftest_%s" % uuid.uuid4().hex[:12]],
        stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env)

    def stop():
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        log.close()

    request.addfinalizer(stop)
    deadline = time.time() + 120
    while True:
        if process.poll() is not None:
            pytest.fail("tritonserver exited with %s:\n%s" % (process.returncode, log_path.read_text()[-4000:]))
        try:
            with urllib.request.urlopen("http://127.0.0.1:%d/v2/health/ready" % http_port, timeout=2) as answer:
                if answer.status == 200:
                    break
        except OSError:
            pass
        if time.time() > deadline:
            pytest.fail("tritonserver not ready after 120 s:\n%s" % log_path.read_text()[-4000:])
        time.sleep(0.25)
    yield "127.0.0.1:%d" % http_port, "127.0.0.1:%d" % grpc_port, "http://127.0.0.1:%d/metrics" % metrics_port


# --------------------------------------------------------------------------- helpers

def make_inputs(module, prompt, output_len, **extra):
    """Contract inputs for one sequence (batch 1); ``extra`` maps input name -> numpy value without batch dim."""
    values = {"input_ids": np.array(prompt, np.int32), "input_lengths": np.array([len(prompt)], np.int32),
              "request_output_len": np.array([output_len], np.int32)}
    values.update(extra)
    inputs = []
    for name, value in values.items():
        value = np.asarray(value)[None]
        data_type = {np.dtype(np.int32): "INT32", np.dtype(np.float32): "FP32", np.dtype(np.uint64): "UINT64",
                     np.dtype(bool): "BOOL", np.dtype(np.float16): "FP16"}[value.dtype]
        tensor = module.InferInput(name, list(value.shape), data_type)
        tensor.set_data_from_numpy(value)
        inputs.append(tensor)
    return inputs


def stream_request(grpc_url, inputs, model="tensorrt_llm"):
    """Send one request on a gRPC stream; return its responses (dicts of outputs), raising on an error response."""
    client = grpcclient.InferenceServerClient(grpc_url)
    answers = queue.Queue()
    client.start_stream(callback=lambda result, error: answers.put((result, error)))
    try:
        client.async_stream_infer(model, inputs, request_id=uuid.uuid4().hex, enable_empty_final_response=True)
        responses = []
        while True:
            result, error = answers.get(timeout=60)
            if error is not None:
                raise error
            response = result.get_response()
            outputs = {output.name: result.as_numpy(output.name) for output in response.outputs}
            if outputs:
                responses.append(outputs)
            if response.parameters["triton_final_response"].bool_param:
                return responses
    finally:
        client.stop_stream()
        client.close()


def word_list(words):
    """Upstream's flattened [2, n] word-list format: ids, then cumulative end offsets padded with -1."""
    ids = [token for word in words for token in word]
    offsets = list(np.cumsum([len(word) for word in words]))
    width = max(len(ids), len(offsets))
    return np.array([ids + [0] * (width - len(ids)), offsets + [-1] * (width - len(offsets))], np.int32)


# --------------------------------------------------------------------------- tests

def test_models_are_ready(server):
    client = grpcclient.InferenceServerClient(server[1])
    assert client.is_server_live() and client.is_server_ready()
    assert client.is_model_ready("tensorrt_llm") and client.is_model_ready("tensorrt_llm_sync")
    client.close()


def test_missing_engine_path_fails_the_load_clearly(server):
    client = grpcclient.InferenceServerClient(server[1])
    with pytest.raises(InferenceServerException, match="gpt_model_path is not set"):
        client.load_model("tensorrt_llm_unset")
    assert client.is_model_ready("tensorrt_llm")
    client.close()


def test_non_streaming_returns_all_tokens(server, engine, tokenizer):
    prompt = tokenizer.encode("The morning train left the station").ids
    expected = [token for token, _unused in engine.generate(prompt, 12)]
    responses = stream_request(server[1], make_inputs(grpcclient, prompt, 12, streaming=np.array([False])))
    assert len(responses) == 1
    (response,) = responses
    assert response["output_ids"].shape == (1, 1, 12)
    assert response["output_ids"][0, 0].tolist() == expected  # the prompt is excluded
    assert response["sequence_length"].tolist() == [[12]]
    assert response["cum_log_probs"].shape == (1, 1)


def test_streaming_sends_one_token_per_response(server, engine, tokenizer):
    prompt = tokenizer.encode("Hello, world! How are you").ids
    expected = [token for token, _unused in engine.generate(prompt, 10)]
    responses = stream_request(server[1], make_inputs(grpcclient, prompt, 10, streaming=np.array([True]),
                                                      return_log_probs=np.array([True])))
    assert [r["output_ids"].shape for r in responses] == [(1, 1, 1)] * 10
    assert [int(r["output_ids"][0, 0, 0]) for r in responses] == expected
    assert all(r["sequence_length"].tolist() == [[1]] for r in responses)
    # cum_log_probs accumulates the per-token log probs.
    log_probs = [float(r["output_log_probs"][0, 0, 0]) for r in responses]
    assert all(lp < 0 for lp in log_probs)
    assert float(responses[-1]["cum_log_probs"][0, 0]) == pytest.approx(sum(log_probs), rel=1e-5)
    text = tokenizer.decode(expected)
    assert isinstance(text, str) and text


def test_stop_words_end_id_and_sampling_inputs(server, engine, tokenizer):
    prompt = tokenizer.encode("Please check the configuration file").ids
    greedy = [token for token, _unused in engine.generate(prompt, 16)]
    word = greedy[3:5]
    first = next(i for i in range(len(greedy) - 1) if greedy[i:i + 2] == word)
    responses = stream_request(server[1], make_inputs(grpcclient, prompt, 16,
                                                      stop_words_list=word_list([[7, 7, 7], word]),
                                                      bad_words_list=word_list([[9999]])))
    assert responses[0]["output_ids"][0, 0].tolist() == greedy[:first + 2]

    end_id = greedy[5]
    responses = stream_request(server[1], make_inputs(grpcclient, prompt, 16, end_id=np.array([end_id], np.int32)))
    assert responses[0]["output_ids"][0, 0].tolist() == greedy[:greedy.index(end_id)]

    sampling = dict(runtime_top_k=np.array([40], np.int32), runtime_top_p=np.array([0.9], np.float32),
                    temperature=np.array([1.3], np.float32), random_seed=np.array([1234], np.uint64))
    first_draw = stream_request(server[1], make_inputs(grpcclient, prompt, 16, **sampling))
    second_draw = stream_request(server[1], make_inputs(grpcclient, prompt, 16, **sampling))
    assert first_draw[0]["output_ids"].tolist() == second_draw[0]["output_ids"].tolist()
    assert first_draw[0]["output_ids"][0, 0].tolist() == [
        t for t, _unused in engine.generate(prompt, 16, top_k=40, top_p=0.9, temperature=1.3, random_seed=1234)]


def test_prompt_table_and_embedding_bias(server, engine):
    prompt = [1, 40, 41, 300, 250]
    # Virtual ids vocab_size and vocab_size+1 embed as the table's rows, here the embeddings of 40 and 41.
    virtual = [1, engine.vocab_size, engine.vocab_size + 1, 300, 250]
    table = engine.embedding[[40, 41]].astype(np.float16)
    responses = stream_request(server[1], make_inputs(grpcclient, virtual, 6, prompt_embedding_table=table,
                                                      prompt_vocab_size=np.array([2], np.int32)))
    expected = [t for t, _unused in engine.generate(prompt, 6, prompt_embedding_table=table.astype(np.float32))]
    assert responses[0]["output_ids"][0, 0].tolist() == expected

    bias = np.zeros(engine.vocab_size, np.float32)
    bias[123] = 1000.0
    responses = stream_request(server[1], make_inputs(grpcclient, prompt, 3, embedding_bias=bias))
    assert responses[0]["output_ids"][0, 0].tolist() == [123, 123, 123]


@pytest.mark.parametrize("extra, length, output_len, message", [
    ({"beam_width": np.array([2], np.int32)}, 4, 8, "beam_width 2"),
    ({}, MAX_INPUT_LEN + 1, 4, "max_input_len %d" % MAX_INPUT_LEN),
    ({}, 60, 80, "max_seq_len %d" % MAX_SEQ_LEN),
    ({"streaming": np.array([True]), "runtime_top_p": np.array([2.0], np.float32)}, 4, 8, "runtime_top_p"),
])
def test_bad_requests_get_error_responses(server, extra, length, output_len, message):
    prompt = list(range(10, 10 + length))
    with pytest.raises(InferenceServerException, match=message):
        stream_request(server[1], make_inputs(grpcclient, prompt, output_len, **extra))
    # The model is still serving afterwards.
    assert stream_request(server[1], make_inputs(grpcclient, [1, 2, 3], 2))[0]["sequence_length"].tolist() == [[2]]


def test_not_decoupled_model_includes_input_and_batches(server, engine):
    client = httpclient.InferenceServerClient(server[0])
    prompts = [[1, 40, 41, 300, 250], [1, 99, 98]]
    width = max(len(p) for p in prompts)
    ids = np.array([p + [3] * (width - len(p)) for p in prompts], np.int32)
    inputs = []
    for name, value, data_type in (("input_ids", ids, "INT32"),
                                   ("input_lengths", np.array([[len(p)] for p in prompts], np.int32), "INT32"),
                                   ("request_output_len", np.array([[6], [6]], np.int32), "INT32")):
        tensor = httpclient.InferInput(name, list(value.shape), data_type)
        tensor.set_data_from_numpy(value)
        inputs.append(tensor)
    result = client.infer("tensorrt_llm_sync", inputs)
    output_ids, lengths = result.as_numpy("output_ids"), result.as_numpy("sequence_length")
    assert output_ids.shape == (2, 1, width + 6) and lengths.tolist() == [[11], [9]]
    for row, prompt in enumerate(prompts):
        expected = prompt + [t for t, _unused in engine.generate(prompt, 6)]
        assert output_ids[row, 0, :lengths[row, 0]].tolist() == expected

    streaming = make_inputs(httpclient, [1, 2, 3], 4, streaming=np.array([True]))
    with pytest.raises(InferenceServerException, match="decoupled"):
        client.infer("tensorrt_llm_sync", streaming)
    client.close()


# --------------------------------------------------------------------------- metrics

def scrape(metrics_url):
    """The server's nv_trt_llm_* series: {(name, frozenset of label pairs): value}."""
    with urllib.request.urlopen(metrics_url, timeout=10) as answer:
        text = answer.read().decode()
    found = {}
    for line in text.splitlines():
        if not line.startswith("nv_trt_llm_"):
            continue
        head, value = line.rsplit(" ", 1)
        name, labels = head.split("{", 1)
        pairs = frozenset(tuple(item.split("=", 1)) for item in labels.rstrip("}").replace('"', "").split(","))
        found[(name, pairs)] = float(value)
    return found


def trt_value(found, name, model, **labels):
    return found[(name, frozenset(dict(labels, model=model, version="1").items()))]


FAMILIES = {
    "nv_trt_llm_request_metrics": ("request_type", {"active", "max", "scheduled", "context", "waiting"}),
    "nv_trt_llm_runtime_memory_metrics": ("memory_type", {"cpu", "gpu", "pinned"}),
    "nv_trt_llm_kv_cache_block_metrics": ("kv_cache_block_type",
                                          {"max", "free", "used", "tokens_per", "reused", "fraction"}),
    "nv_trt_llm_inflight_batcher_metrics": ("inflight_batcher_specific_metric",
                                            {"total_context_tokens", "generation_requests", "micro_batch_id",
                                             "paused_requests"}),
    "nv_trt_llm_general_metrics": ("general_type", {"timestamp", "iteration_counter"}),
    "nv_trt_llm_disaggregated_serving_metrics": ("disaggregated_serving_type",
                                                 {"kv_cache_transfer_ms", "request_count"}),
}


def test_trt_llm_metrics_carry_the_backends_names_labels_and_the_engines_values(server):
    found = scrape(server[2])
    for model in ("tensorrt_llm", "tensorrt_llm_sync"):
        for family, (label, values) in FAMILIES.items():
            present = {dict(pairs)[label] for name, pairs in found
                       if name == family and dict(pairs).get("model") == model}
            assert present == values, (model, family)
    # max_batch_size 8 sequences of max_seq_len 128 in 64-token blocks, per instance; two instances add up.
    assert trt_value(found, "nv_trt_llm_kv_cache_block_metrics", "tensorrt_llm", kv_cache_block_type="max") == 16
    assert trt_value(found, "nv_trt_llm_kv_cache_block_metrics", "tensorrt_llm_sync", kv_cache_block_type="max") == 32
    assert trt_value(found, "nv_trt_llm_request_metrics", "tensorrt_llm_sync", request_type="max") == 16
    assert trt_value(found, "nv_trt_llm_kv_cache_block_metrics", "tensorrt_llm", kv_cache_block_type="tokens_per") == 64
    assert trt_value(found, "nv_trt_llm_runtime_memory_metrics", "tensorrt_llm", memory_type="cpu") > 0
    assert trt_value(found, "nv_trt_llm_runtime_memory_metrics", "tensorrt_llm", memory_type="gpu") == 0

    before = trt_value(found, "nv_trt_llm_general_metrics", "tensorrt_llm", general_type="iteration_counter")
    responses = stream_request(server[1], make_inputs(grpcclient, [1, 40, 41, 300, 250], 7, streaming=np.array([True]),
                                                      end_id=np.array([-1], np.int32)))
    assert len(responses) == 7
    # The model counts the request out just after its final response: wait for it.
    deadline = time.time() + 10
    while True:
        after = scrape(server[2])
        if trt_value(after, "nv_trt_llm_request_metrics", "tensorrt_llm", request_type="active") == 0 or \
                time.time() > deadline:
            break
        time.sleep(0.1)
    # The prompt's run, then one per token but the last.
    assert trt_value(after, "nv_trt_llm_general_metrics", "tensorrt_llm", general_type="iteration_counter") == before + 7
    assert trt_value(after, "nv_trt_llm_general_metrics", "tensorrt_llm", general_type="timestamp") > 1.6e15
    for request_type in ("active", "scheduled", "context", "waiting"):
        assert trt_value(after, "nv_trt_llm_request_metrics", "tensorrt_llm", request_type=request_type) == 0
    assert trt_value(after, "nv_trt_llm_kv_cache_block_metrics", "tensorrt_llm", kv_cache_block_type="used") == 0
    assert trt_value(after, "nv_trt_llm_kv_cache_block_metrics", "tensorrt_llm", kv_cache_block_type="free") == 16
