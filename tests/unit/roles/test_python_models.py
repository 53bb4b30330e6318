"""The repository role's Python models answer each release's contract as that release's upstream models do.

Every model is fed the config Triton would hand it (the release's contract rendered by
model_contract.render_model_config, parsed as ModelConfig and turned into Triton's JSON form)
and requests shaped as upstream's clients send them. No tritonserver: the models keep their
logic in plain classes.
"""
import importlib.util
import pathlib
import sys

import numpy as np
import pytest
import yaml

from ansible_collections.tritonfleet.serving.plugins.module_utils.cpu_reference import build_engine
from ansible_collections.tritonfleet.serving.plugins.module_utils.cpu_tiny_checkpoint import generate_tiny_checkpoint
from ansible_collections.tritonfleet.serving.plugins.module_utils.model_contract import render_model_config

json_format = pytest.importorskip("google.protobuf.json_format")
text_format = pytest.importorskip("google.protobuf.text_format")
model_config_pb2 = pytest.importorskip("tritonclient.grpc.model_config_pb2")

FILES = pathlib.Path(__file__).resolve().parents[3] / "roles" / "repository" / "files"
RELEASES = ("0.7", "0.12", "0.19", "1.x")
PLACEHOLDERS = dict(
    triton_max_batch_size=8, decoupled_mode=True, max_queue_delay_microseconds=0, max_queue_size=0,
    preprocessing_instance_count=1, postprocessing_instance_count=1, bls_instance_count=1,
    logits_datatype="TYPE_FP32", triton_backend="python", engine_dir="/engine", tokenizer_dir="/tokenizer",
    encoder_input_features_data_type="TYPE_FP16", prompt_embedding_table_data_type="TYPE_FP16",
    max_beam_width=1, exclude_input_in_output=True, skip_special_tokens=True, add_special_tokens=True,
)


def load(relative, name):
    """Import one of the role's model files as Triton would (its directory first on sys.path)."""
    path = FILES / relative
    directory = str(path.parent)
    sys.path.insert(0, str(FILES / "common"))
    sys.path.insert(0, directory)
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    written, sys.dont_write_bytecode = sys.dont_write_bytecode, True  # the role ships files/ as is
    try:
        spec.loader.exec_module(module)
    finally:
        sys.dont_write_bytecode = written
    return module


engine_model = load("tensorrt_llm_cpu/model.py", "tritonfleet_test_cpu_engine_model")
pre_module = load("preprocessing/model.py", "tritonfleet_test_pre_release")
post_module = load("postprocessing/model.py", "tritonfleet_test_post_release")
bls_module = load("tensorrt_llm_bls/model.py", "tritonfleet_test_bls_release")


def contract(release):
    return yaml.safe_load((FILES / "contracts" / ("%s.yml" % release)).read_text())


def triton_config(release, model, decoupled=True, **values):
    """The JSON config Triton hands ``model`` of ``release`` (rendered, parsed, converted)."""
    placeholders = dict(PLACEHOLDERS, decoupled_mode=decoupled, **values)
    text = render_model_config(model, contract(release)["models"][model], placeholders, {})
    parsed = text_format.Parse(text, model_config_pb2.ModelConfig())
    return json_format.MessageToDict(parsed, preserving_proto_field_name=True)


@pytest.fixture(scope="module")
def engine(tmp_path_factory):
    root = tmp_path_factory.mktemp("release_models")
    generate_tiny_checkpoint(str(root / "checkpoint"), seed=0)
    build_engine(str(root / "checkpoint"), str(root / "engine"), max_input_len=64, max_seq_len=128)
    return engine_model.CpuEngine.load(str(root / "engine"))


def request(prompts, output_len=6, **extra):
    """tensorrt_llm inputs as the ensemble sends them: [batch, ...] with every scalar [batch, 1]."""
    width = max(len(p) for p in prompts)
    values = {"input_ids": np.array([p + [0] * (width - len(p)) for p in prompts], np.int32),
              "input_lengths": np.array([[len(p)] for p in prompts], np.int32),
              "request_output_len": np.array([[output_len]] * len(prompts), np.int32)}
    for name, value in extra.items():
        values[name] = np.repeat(np.asarray(value).reshape(1, -1), len(prompts), axis=0)
    return values


PROMPT = [1, 40, 41, 300, 250]


def log_softmax(row):
    row = row.astype(np.float64)
    shifted = row - row.max()
    return shifted - np.log(np.exp(shifted).sum())


# ----------------------------------------------------------------------------------------- tensorrt_llm

@pytest.mark.parametrize("release", RELEASES)
def test_log_probs_and_logits_are_the_engines(engine, release):
    config = triton_config(release, "tensorrt_llm")
    model = engine_model.EngineModel(engine, config, decoupled=True)
    flags = {"return_log_probs": [True]}
    if "return_generation_logits" in model.inputs:
        flags.update(return_generation_logits=[True], return_context_logits=[True])
    (response,) = list(model.responses(request([PROMPT], **flags)))
    assert set(response) <= set(model.output_types)
    tokens = response["output_ids"][0, 0].tolist()
    assert response["output_ids"].dtype == np.int32 and response["output_ids"].shape == (1, 1, 6)
    assert tokens == [t for t, _unused in engine.generate(PROMPT, 6)]
    log_probs = response["output_log_probs"][0, 0]
    assert (log_probs < 0).all()
    assert float(response["cum_log_probs"][0, 0]) == pytest.approx(float(log_probs.sum()), rel=1e-5)
    if "generation_logits" in response:
        logits = response["generation_logits"]
        assert logits.shape == (1, 1, 6, engine.vocab_size)
        for step, token in enumerate(tokens):
            assert token == int(np.argmax(logits[0, 0, step]))  # greedy
            assert log_probs[step] == pytest.approx(log_softmax(logits[0, 0, step])[token], abs=1e-4)
        context = response["context_logits"]
        assert context.shape == (1, len(PROMPT), engine.vocab_size)
        assert int(np.argmax(context[0, -1])) == tokens[0]


@pytest.mark.parametrize("release, present", [
    ("0.7", {"output_ids", "sequence_length", "cum_log_probs", "output_log_probs"}),
    ("0.12", {"output_ids", "sequence_length", "cum_log_probs", "output_log_probs", "context_logits",
              "generation_logits", "batch_index"}),
    ("0.19", {"output_ids", "sequence_length"}),
    ("1.x", {"output_ids", "sequence_length"}),
])
def test_outputs_present_as_the_releases_backend_sends_them(engine, release, present):
    model = engine_model.EngineModel(engine, triton_config(release, "tensorrt_llm"), decoupled=True)
    (response,) = list(model.responses(request([PROMPT])))
    assert set(response) == present
    if release in ("0.7", "0.12"):  # answered although not asked for: real, not zeros
        assert (response["output_log_probs"] < 0).all()


@pytest.mark.parametrize("release", ["0.19", "1.x"])
def test_batch_index_sequence_index_and_perf_metrics(engine, release):
    model = engine_model.EngineModel(engine, triton_config(release, "tensorrt_llm"), decoupled=True)
    seed = "seed" if release == "1.x" else "random_seed"
    extra = {"num_return_sequences": [2], "runtime_top_k": [20], "temperature": [1.5], seed: [np.uint64(7)],
             "return_perf_metrics": [True]}
    responses = list(model.responses(request([PROMPT, [1, 99, 98]], **extra)))
    assert [(int(r["batch_index"][0, 0]), int(r["sequence_index"][0, 0])) for r in responses] == [
        (0, 0), (0, 1), (1, 0), (1, 1)]
    for r in responses:
        times = [int(r[name][0, 0]) for name in engine_model.PERF_TIMES]
        assert times == sorted(times) and times[0] > 0
        assert "kv_cache_reused_blocks" not in r  # no truthful value on this engine
    again = list(model.responses(request([PROMPT, [1, 99, 98]], **extra)))
    assert [r["output_ids"].tolist() for r in again] == [r["output_ids"].tolist() for r in responses]


def test_new_and_old_input_names(engine):
    new = engine_model.EngineModel(engine, triton_config("1.x", "tensorrt_llm"), decoupled=True)
    old = engine_model.EngineModel(engine, triton_config("0.12", "tensorrt_llm"), decoupled=True)
    end_id = [t for t, _unused in engine.generate(PROMPT, 6)][1]
    for model, name in ((new, "min_tokens"), (old, "min_length")):
        (short,) = model.responses(request([PROMPT], end_id=[end_id]))
        (longer,) = model.responses(request([PROMPT], end_id=[end_id], **{name: [3]}))
        assert short["sequence_length"][0, 0] < 3 <= longer["sequence_length"][0, 0]
    with pytest.raises(engine_model.RequestError, match="min_length"):
        list(new.responses(request([PROMPT], min_length=[3])))  # not an input of 1.x


@pytest.mark.parametrize("release", ["0.19", "1.x"])
def test_exclude_input_in_output_input_wins_over_the_parameter(engine, release):
    model = engine_model.EngineModel(engine, triton_config(release, "tensorrt_llm"), decoupled=False)
    counts = {"return_num_input_tokens": [True], "return_num_output_tokens": [True]} if release == "1.x" else {}
    (response,) = model.responses(request([PROMPT], exclude_input_in_output=[False], **counts))
    assert response["output_ids"][0, 0, :len(PROMPT)].tolist() == PROMPT
    if release == "1.x":
        assert (int(response["num_input_tokens"][0, 0]), int(response["num_output_tokens"][0, 0])) == (5, 6)


@pytest.mark.parametrize("name, value", [
    ("lora_task_id", [np.uint64(1)]), ("draft_input_ids", [5, 6]), ("guided_decoding_guide_type", [b"json"]),
    ("beam_width", [2]), ("runtime_top_p_decay", [0.5]), ("decoder_input_ids", [7, 8]),
])
def test_inputs_it_cannot_honour_are_named(engine, name, value):
    model = engine_model.EngineModel(engine, triton_config("1.x", "tensorrt_llm"), decoupled=True)
    with pytest.raises(engine_model.RequestError, match=name):
        list(model.responses(request([PROMPT], **{name: value})))


def test_streaming_needs_decoupled_and_streams_real_log_probs(engine):
    sync = engine_model.EngineModel(engine, triton_config("0.7", "tensorrt_llm", decoupled=False), decoupled=False)
    with pytest.raises(engine_model.RequestError, match="streaming.*decoupled"):
        list(sync.responses(request([PROMPT], streaming=[True])))
    model = engine_model.EngineModel(engine, triton_config("0.19", "tensorrt_llm"), decoupled=True)
    pieces = list(model.responses(request([PROMPT], streaming=[True], return_log_probs=[True])))
    assert [p["output_ids"].shape for p in pieces] == [(1, 1, 1)] * 6
    log_probs = [float(p["output_log_probs"][0, 0, 0]) for p in pieces]
    assert float(pieces[-1]["cum_log_probs"][0, 0]) == pytest.approx(sum(log_probs), rel=1e-5)


# ----------------------------------------------------------------------------------------- tensorrt_llm metrics

def series(model):
    return model.metric_values()


def test_metrics_follow_the_sequence_the_engine_holds(engine):
    """Active requests, the decoded sequence, its KV blocks and the iteration count are the engine's, step by step."""
    model = engine_model.EngineModel(
        engine, triton_config("1.x", "tensorrt_llm", max_tokens_in_paged_kv_cache=256), decoupled=True)
    block = engine.stats.tokens_per_block
    assert block == 64  # TensorRT-LLM's default: the CPU engine's config records none
    idle = series(model)
    assert idle[("nv_trt_llm_kv_cache_block_metrics", "max")] == 256 // block
    assert idle[("nv_trt_llm_kv_cache_block_metrics", "used")] == 0
    assert idle[("nv_trt_llm_kv_cache_block_metrics", "free")] == 256 // block
    assert idle[("nv_trt_llm_request_metrics", "max")] == 8  # triton_max_batch_size of the engine's build
    assert idle[("nv_trt_llm_runtime_memory_metrics", "cpu")] == engine.stats.weight_bytes > 0
    start = idle[("nv_trt_llm_general_metrics", "iteration_counter")]
    prompt = [(7 * i) % 250 + 3 for i in range(60)]
    model.admit(2)  # one execute call with two requests: the second waits
    seen = []
    # end_id -1 never matches, so exactly 10 tokens come: 60 + 10 tokens cross one 64-token block.
    for step, _response in enumerate(model.responses(request([prompt], output_len=10, streaming=[True], end_id=[-1]))):
        now = series(model)
        in_cache = len(prompt) + step  # the token just sent is not in the cache yet
        seen.append(now[("nv_trt_llm_kv_cache_block_metrics", "used")])
        assert now[("nv_trt_llm_kv_cache_block_metrics", "used")] == -(-in_cache // block)
        assert now[("nv_trt_llm_kv_cache_block_metrics", "free")] == 4 - seen[-1]
        assert now[("nv_trt_llm_kv_cache_block_metrics", "fraction")] == pytest.approx(seen[-1] / 4.0)
        assert now[("nv_trt_llm_general_metrics", "iteration_counter")] == start + 1 + step
        assert now[("nv_trt_llm_request_metrics", "active")] == 2
        assert now[("nv_trt_llm_request_metrics", "scheduled")] == 1
        assert now[("nv_trt_llm_request_metrics", "waiting")] == 1
        context = step == 0
        assert now[("nv_trt_llm_request_metrics", "context")] == int(context)
        assert now[("nv_trt_llm_inflight_batcher_metrics", "total_context_tokens")] == (len(prompt) if context else 0)
        assert now[("nv_trt_llm_inflight_batcher_metrics", "generation_requests")] == int(not context)
        assert now[("nv_trt_llm_runtime_memory_metrics", "cpu")] > engine.stats.weight_bytes
    assert seen == [1] * 5 + [2] * 5
    model.done()
    after = series(model)
    # 10 tokens: the prompt's run, then one run per token but the last (never fed back).
    assert after[("nv_trt_llm_general_metrics", "iteration_counter")] == start + 10
    assert after[("nv_trt_llm_kv_cache_block_metrics", "used")] == 0
    assert after[("nv_trt_llm_request_metrics", "scheduled")] == 0
    assert after[("nv_trt_llm_request_metrics", "active")] == after[("nv_trt_llm_request_metrics", "waiting")] == 1
    assert after[("nv_trt_llm_runtime_memory_metrics", "cpu")] == engine.stats.weight_bytes
    assert after[("nv_trt_llm_general_metrics", "timestamp")] > 1.6e15  # microseconds since the epoch


def test_a_cancelled_sequence_frees_its_blocks(engine):
    model = engine_model.EngineModel(engine, triton_config("1.x", "tensorrt_llm"), decoupled=True)
    stream = model.responses(request([PROMPT], output_len=20, streaming=[True], end_id=[-1]))
    next(stream)
    assert series(model)[("nv_trt_llm_kv_cache_block_metrics", "used")] == 1
    stream.close()  # the client went away
    assert series(model)[("nv_trt_llm_kv_cache_block_metrics", "used")] == 0
    # Without a token budget the pool holds max_batch_size sequences of max_seq_len tokens.
    assert series(model)[("nv_trt_llm_kv_cache_block_metrics", "max")] == 8 * (128 // 64)


def test_v1_models_publish_the_v1_family(engine):
    model = engine_model.EngineModel(engine, triton_config("0.7", "tensorrt_llm", batching_strategy="V1"),
                                     decoupled=False)
    names = [family[0] for family in model.families()]
    assert "nv_trt_llm_v1_metrics" in names and "nv_trt_llm_inflight_batcher_metrics" not in names
    assert series(model)[("nv_trt_llm_v1_metrics", "empty_generation_slots")] == 8


class FakeMetrics:
    """The Python backend's custom metrics as Triton keeps them: one series per name and label set, shared."""

    GAUGE, COUNTER = "gauge", "counter"

    def __init__(self):
        self.series = {}
        self.families = {}
        self.warnings = []
        self.fail = False
        outer = self

        class Logger:
            @staticmethod
            def log_warn(message):
                outer.warnings.append(message)

        class Metric:
            def __init__(self, key):
                self.key = key

            def increment(self, value):
                if outer.fail:
                    raise RuntimeError("stub gone")
                outer.series[self.key] += value

            def set(self, value):
                outer.series[self.key] = value

        class MetricFamily:
            GAUGE, COUNTER = "gauge", "counter"

            def __init__(self, name, description, kind):
                outer.families.setdefault(name, (description, kind))
                self.name = name

            def Metric(self, labels):
                key = (self.name,) + tuple(sorted(labels.items()))
                outer.series.setdefault(key, 0.0)
                return Metric(key)

        self.Logger = Logger
        self.MetricFamily = MetricFamily

    def value(self, name, **labels):
        return self.series[(name,) + tuple(sorted(dict(labels, model="tensorrt_llm", version="1").items()))]


def test_instances_add_their_shares_to_the_backends_series(engine):
    utils = FakeMetrics()
    config = triton_config("1.x", "tensorrt_llm", max_tokens_in_paged_kv_cache=512)
    first = engine_model.EngineModel(engine, config, decoupled=True)
    second = engine_model.EngineModel(engine_model.CpuEngine(engine.config, {
        "embedding": engine.embedding, "layers": engine.layers, "final_norm": engine.final_norm,
        "lm_head": engine.lm_head}), config, decoupled=True)
    reporters = [engine_model.MetricsReporter(utils, model, "tensorrt_llm", "1") for model in (first, second)]
    for reporter in reporters:
        reporter.publish(force=True)
    assert utils.families["nv_trt_llm_kv_cache_block_metrics"] == ("TRT LLM KV cache block metrics", "gauge")
    assert utils.families["nv_trt_llm_disaggregated_serving_metrics"][1] == "counter"
    assert utils.value("nv_trt_llm_kv_cache_block_metrics", kv_cache_block_type="max") == 2 * 8
    assert utils.value("nv_trt_llm_kv_cache_block_metrics", kv_cache_block_type="tokens_per") == 64
    assert utils.value("nv_trt_llm_request_metrics", request_type="max") == 16
    start = utils.value("nv_trt_llm_general_metrics", general_type="iteration_counter")
    first.admit(1)
    reporters[0].publish(force=True)
    assert utils.value("nv_trt_llm_request_metrics", request_type="active") == 1
    list(first.responses(request([PROMPT], output_len=4, end_id=[-1])))
    first.done()
    reporters[0].publish(force=True)
    assert utils.value("nv_trt_llm_general_metrics", general_type="iteration_counter") == start + 4
    assert utils.value("nv_trt_llm_request_metrics", request_type="active") == 0
    reporters[1].close()  # an instance unloads: its share leaves the series
    assert utils.value("nv_trt_llm_kv_cache_block_metrics", kv_cache_block_type="max") == 8
    assert utils.value("nv_trt_llm_request_metrics", request_type="max") == 8
    assert utils.warnings == []


def test_publishing_waits_a_period_unless_forced(engine):
    utils = FakeMetrics()
    now = [100.0]
    model = engine_model.EngineModel(engine, triton_config("1.x", "tensorrt_llm"), decoupled=True)
    reporter = engine_model.MetricsReporter(utils, model, "tensorrt_llm", "1", period_ms=100, clock=lambda: now[0])
    reporter.publish()
    model.admit(1)
    reporter.publish()
    assert utils.value("nv_trt_llm_request_metrics", request_type="active") == 0
    now[0] += 0.25
    reporter.publish()
    assert utils.value("nv_trt_llm_request_metrics", request_type="active") == 1
    model.done()
    reporter.publish(force=True)
    assert utils.value("nv_trt_llm_request_metrics", request_type="active") == 0


def test_metrics_degrade_quietly_without_custom_metrics(engine):
    class OldUtils:
        warnings = []

        class Logger:
            @staticmethod
            def log_warn(message):
                OldUtils.warnings.append(message)

    model = engine_model.EngineModel(engine, triton_config("1.x", "tensorrt_llm"), decoupled=True)
    reporter = engine_model.MetricsReporter(OldUtils, model, "tensorrt_llm", "1")
    for _attempt in range(3):
        reporter.publish(force=True)
    assert len(OldUtils.warnings) == 1 and "MetricFamily" in OldUtils.warnings[0]
    assert list(model.responses(request([PROMPT], output_len=2)))  # still serves

    utils = FakeMetrics()
    reporter = engine_model.MetricsReporter(utils, model, "tensorrt_llm", "1")
    utils.fail = True
    model.admit(1)
    for _attempt in range(3):
        reporter.publish(force=True)
    model.done()
    assert len(utils.warnings) == 1 and "no longer updated" in utils.warnings[0]


# ----------------------------------------------------------------------------------------- pre/postprocessing

class FakeTokenizer:
    """Characters as token ids (ids below 3 are special), enough to see tensors move."""

    eos_token_id, pad_token_id, vocab_size = 2, 0, 300

    def encode(self, text, add_special_tokens=True):
        return ([1] if add_special_tokens else []) + [ord(c) for c in text]

    def decode(self, ids, skip_special_tokens=True):
        return "".join(chr(i) for i in ids if not (skip_special_tokens and i < 3))

    def __len__(self):
        return self.vocab_size


def strings(*texts):
    return np.array([[t.encode()] for t in texts], dtype=object)


@pytest.mark.parametrize("release", RELEASES)
def test_postprocessing_answers_1d_text_and_only_its_outputs(release):
    config = triton_config(release, "postprocessing")
    outputs = [o["name"] for o in config["output"]]
    post = post_module.Postprocessor({"skip_special_tokens": "${skip_special_tokens}"}, outputs, FakeTokenizer())
    tokens = np.array([[[ord("h"), ord("i"), 2]], [[ord("y"), ord("o"), ord("u")]]], np.int32)
    result = post({"TOKENS_BATCH": tokens, "SEQUENCE_LENGTH": np.array([[3], [2]], np.int32),
                   "CUM_LOG_PROBS": np.array([[-1.0], [-2.0]], np.float32)})
    assert result["OUTPUT"].shape == (2,) and [t.decode() for t in result["OUTPUT"]] == ["hi", "yo"]
    assert set(result) == set(outputs)
    if "OUT_CUM_LOG_PROBS" in outputs:
        assert result["OUT_CUM_LOG_PROBS"].tolist() == [[-1.0], [-2.0]]


@pytest.mark.parametrize("release", RELEASES)
def test_preprocessing_answers_its_configs_outputs(release):
    config = triton_config(release, "preprocessing")
    outputs = [o["name"] for o in config["output"]]
    pre = pre_module.Preprocessor({"add_special_tokens": "${add_special_tokens}"}, outputs, FakeTokenizer())
    result = pre({"QUERY": strings("ab", "c"), "REQUEST_OUTPUT_LEN": np.array([[4], [4]], np.int32)})
    optional = {"OUT_PROMPT_EMBEDDING_TABLE", "OUT_PROMPT_TABLE_EXTRA_IDS", "PIXEL_VALUES", "ASPECT_RATIO_IDS",
                "ASPECT_RATIO_MASK", "CROSS_ATTENTION_MASK", "IMAGE_SIZES", "IS_VIDEO_INPUT", "ATTENTION_MASK",
                "IMAGE_GRID_THW", "VISION_INPUT_ID"}
    assert set(result) == set(outputs) - optional
    assert result["INPUT_ID"].tolist() == [[1, 97, 98], [1, 99, 0]]
    if "DECODER_INPUT_ID" in outputs:  # what end_to_end_test.py (0.12) reads for a decoder-only model
        assert result["DECODER_INPUT_ID"].tolist() == [[0], [0]]
        assert result["REQUEST_DECODER_INPUT_LEN"].tolist() == [[1], [1]]


@pytest.mark.parametrize("name", ["IMAGE_BYTES", "IMAGE_URL", "VIDEO_BYTES"])
def test_preprocessing_names_multimodal_inputs(name):
    pre = pre_module.Preprocessor({}, None, FakeTokenizer())
    with pytest.raises(ValueError, match=name):
        pre({"QUERY": strings("ab"), "REQUEST_OUTPUT_LEN": np.array([[4]], np.int32),
             name: np.zeros((1, 1, 1, 1), np.uint8)})


def test_prompt_table_extra_ids_mark_prompt_table_tokens():
    ids = np.array([[1, 300, 301, 5]], np.int32)
    assert pre_module.prompt_table_extra_ids(ids, [[9]], 300).tolist() == [[0, 9, 9, 0]]


# ----------------------------------------------------------------------------------------- BLS

@pytest.mark.parametrize("release", RELEASES)
def test_bls_pipeline_follows_its_config(engine, release):
    bls = triton_config(release, "tensorrt_llm_bls")
    engine_config = triton_config(release, "tensorrt_llm")
    model = engine_model.EngineModel(engine, engine_config, decoupled=True)
    pre_outputs = [o["name"] for o in triton_config(release, "preprocessing")["output"]]
    pre = pre_module.Preprocessor({}, pre_outputs, FakeTokenizer())
    post = post_module.Postprocessor({}, ["OUTPUT"], FakeTokenizer())
    engine_outputs = {o["name"] for o in engine_config["output"]}

    def call(name, inputs, outputs, decoupled):
        if name == "preprocessing":
            assert set(outputs) <= set(pre_outputs)
            yield pre(inputs)
        elif name == "tensorrt_llm":
            assert set(inputs) <= set(model.inputs) and set(outputs) <= engine_outputs
            yield from model.responses(dict(inputs.items()))
        else:
            yield post(inputs)

    pipeline = bls_module.Pipeline(call, inputs=[i["name"] for i in bls["input"]],
                                   outputs=[o["name"] for o in bls["output"]])
    client = {"text_input": strings("hello"), "max_tokens": np.array([[4]], np.int32),
              "return_log_probs": np.array([[True]])}
    (answer,) = list(pipeline.run(client))
    assert answer["text_output"].shape == (1,)
    assert set(answer) <= {o["name"] for o in bls["output"]}
    assert (answer["output_log_probs"] < 0).all()
    with pytest.raises(ValueError, match="stream"):
        list(bls_module.Pipeline(call, decoupled=False, inputs=pipeline.inputs).run(
            dict(client, stream=np.array([[True]]))))
