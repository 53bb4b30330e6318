"""The `repository` role applied for real with ansible-playbook on localhost.

* renders into a temporary directory twice: the first run changes things,
  the second reports changed=0;
* bad values fail before anything is written, naming the variable;
* --check --diff shows the change without writing it;
* switching cpu -> gpu and BLS off prunes what is no longer rendered;
* the rendered cpu repository is served by the real tritonserver (from the
  nvidia-pytriton wheel), with an echo stand-in for the CPU engine, and
  answers text through the ensemble and the BLS model, streaming too.
"""

import json
import os
import pathlib
import queue
import shutil
import socket
import subprocess
import sys
import sysconfig
import time

import numpy as np
import pytest
import yaml
from google.protobuf import text_format
from tritonclient.grpc import model_config_pb2

from ansible_collections.tritonfleet.serving.tests.unit.utils import playbook_run

pytestmark = pytest.mark.integration

REPO = pathlib.Path(__file__).resolve().parents[2]
ROLES = REPO / "roles"
CPU_ENGINE_FILES = ("model.py", "cpu_engine_runtime.py", "cpu_engine_format.py")
MODELS = ["preprocessing", "tensorrt_llm", "postprocessing", "ensemble"]


# ------------------------------------------------------------------ helpers
def make_tokenizer(path):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    path.mkdir(parents=True, exist_ok=True)
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=300, special_tokens=["<|endoftext|>", "<|pad|>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    tokenizer.train_from_iterator(["Hello world, the quick brown fox. Triton serves models."] * 20, trainer)
    tokenizer.save(str(path / "tokenizer.json"))
    (path / "tokenizer_config.json").write_text(json.dumps({
        "tokenizer_class": "PreTrainedTokenizerFast", "eos_token": "<|endoftext|>",
        "pad_token": "<|pad|>", "model_max_length": 1024,
    }))
    return path


class Env:
    """A scratch directory with a tokenizer and an engine dir; the role comes from roles/ as it is."""

    def __init__(self, root):
        self.root = root
        self.repository = root / "model_repository"
        self.tokenizer = make_tokenizer(root / "tokenizer")
        self.engine = root / "engine"
        self.engine.mkdir()
        (self.engine / "config.json").write_text(json.dumps(
            {"builder_config": {"max_batch_size": 8, "max_beam_width": 1}}))
        self.playbook = root / "play.yml"
        self.playbook.write_text(yaml.safe_dump([{
            "name": "Apply the repository role",
            "hosts": "localhost",
            "gather_facts": False,
            "roles": [{"role": "repository"}],
        }]))

    def variables(self, **extra):
        values = {
            "repository_dir": str(self.repository),
            "repository_accelerator": "cpu",
            "repository_engine_dir": str(self.engine),
            "repository_tokenizer_dir": str(self.tokenizer),
        }
        values.update(extra)
        return values

    def run(self, *args, **extra):
        """ansible-playbook with the JSON callback; returns (rc, its results, the run to show on failure)."""
        env = dict(os.environ)
        env.update(
            ANSIBLE_CONFIG=str(REPO / "ansible.cfg"),
            ANSIBLE_COLLECTIONS_PATH=str(REPO / ".collections"),
            ANSIBLE_ROLES_PATH=str(ROLES),
        )
        varfile = self.root / "vars.json"
        varfile.write_text(json.dumps(self.variables(**extra)))
        run = playbook_run.run(
            ["ansible-playbook", "-i", "localhost,", "-c", "local",
             "-e", f"ansible_python_interpreter={sys.executable}",
             "-e", f"@{varfile}", *args, str(self.playbook)],
            env=env, cwd=self.root, timeout=600,
        )
        return run.rc, run.data, run


def stats(data):
    return data["stats"]["localhost"]


def task_results(data):
    for play in data.get("plays", []):
        for task in play.get("tasks", []):
            result = task["hosts"].get("localhost")
            if result is not None:
                yield task["task"]["name"], result


def failure_message(data):
    """The failed results' messages, with the argument_specs validation's errors."""
    texts = []
    for _unused, result in task_results(data):
        if result.get("failed"):
            texts.append(str(result.get("msg", "")))
            texts.extend(str(error) for error in result.get("argument_errors", []))
    return "\n".join(texts)


def facts(data):
    merged = {}
    for _unused, result in task_results(data):
        merged.update(result.get("ansible_facts", {}))
    return merged


def parse_config(path):
    return text_format.Parse(path.read_text(), model_config_pb2.ModelConfig())


@pytest.fixture
def env(tmp_path):
    return Env(tmp_path)


# -------------------------------------------------------------------- tests
def test_renders_then_is_idempotent(env):
    rc, data, raw = env.run(repository_enable_bls=True)
    assert rc == 0, raw
    assert stats(data)["changed"] > 0
    models = MODELS + ["tensorrt_llm_bls"]
    assert facts(data)["repository_models"] == models
    assert facts(data)["repository_changed"] is True
    for model in models:
        config = parse_config(env.repository / model / "config.pbtxt")
        assert config.name == model
        assert (env.repository / model / "1").is_dir()
        assert oct((env.repository / model / "config.pbtxt").stat().st_mode & 0o777) == "0o644"
    for model in ("preprocessing", "postprocessing", "tensorrt_llm_bls"):
        assert (env.repository / model / "1" / "model.py").is_file()
    for name in CPU_ENGINE_FILES:
        assert (env.repository / "tensorrt_llm" / "1" / name).is_file()
    engine = parse_config(env.repository / "tensorrt_llm" / "config.pbtxt")
    assert engine.backend == "python"
    assert engine.parameters["gpt_model_path"].string_value == str(env.engine)

    rc, data, raw = env.run(repository_enable_bls=True)
    assert rc == 0, raw
    assert stats(data)["changed"] == 0, raw
    assert facts(data)["repository_changed"] is False


def test_switching_modes_prunes_what_is_no_longer_rendered(env):
    assert env.run(repository_enable_bls=True)[0] == 0
    (env.repository / "custom_model").mkdir()  # not ours: left alone
    rc, data, raw = env.run(repository_accelerator="gpu", repository_enable_bls=False)
    assert rc == 0, raw
    assert facts(data)["repository_models"] == MODELS
    assert not (env.repository / "tensorrt_llm_bls").exists()
    assert (env.repository / "custom_model").is_dir()
    for name in CPU_ENGINE_FILES:
        assert not (env.repository / "tensorrt_llm" / "1" / name).exists()
    assert parse_config(env.repository / "tensorrt_llm" / "config.pbtxt").backend == "tensorrtllm"
    rc, data, raw = env.run(repository_accelerator="gpu", repository_enable_bls=False)
    assert rc == 0 and stats(data)["changed"] == 0, raw


def test_new_version_directory_and_pruning_old_ones(env):
    assert env.run()[0] == 0
    policy = {"specific": {"versions": [1, 2]}}
    rc, _unused, raw = env.run(repository_model_version=2, repository_version_policy=policy)
    assert rc == 0, raw
    assert (env.repository / "preprocessing" / "1" / "model.py").is_file()  # kept for rollbacks
    assert (env.repository / "preprocessing" / "2" / "model.py").is_file()
    config = parse_config(env.repository / "ensemble" / "config.pbtxt")
    assert list(config.version_policy.specific.versions) == [1, 2]
    rc, _unused, raw = env.run(repository_model_version=2, repository_prune_versions=True)
    assert rc == 0, raw
    assert not (env.repository / "preprocessing" / "1").exists()
    assert (env.repository / "preprocessing" / "2").is_dir()


@pytest.mark.parametrize("overrides,variable", [
    ({"repository_accelerator": "tpu"}, "repository_accelerator"),
    ({"repository_max_batch_size": 0}, "repository_max_batch_size"),
    ({"repository_version_policy": {"specific": {"versions": [3]}}}, "repository_version_policy"),
    ({"repository_version_policy": {"latest": {"num_versions": 1}, "all": {}}}, "repository_version_policy"),
    ({"repository_tensorrt_llm_parameters": {"batch_scheduler_policy": "fastest"}}, "batch_scheduler_policy"),
    ({"repository_engine_dir": "engines/relative"}, "repository_engine_dir"),
    ({"repository_tokenizer_dir": "/nonexistent/tokenizer"}, "repository_tokenizer_dir"),
    ({"repository_enable_bls": True, "repository_decoupled": False,
      "repository_bls_parameters": {"accumulate_tokens": True}}, "repository_decoupled"),
])
def test_bad_values_fail_before_writing(env, overrides, variable):
    rc, data, raw = env.run(**overrides)
    assert rc != 0, raw
    assert variable in failure_message(data), raw
    assert not env.repository.exists(), "the role wrote files before failing"


def test_engine_without_config_json_fails(env):
    (env.engine / "config.json").unlink()
    rc, data, raw = env.run()
    assert rc != 0
    assert "repository_engine_dir" in failure_message(data), raw
    assert "config.json" in failure_message(data)
    assert not env.repository.exists()


def test_engine_batch_size_is_checked_in_gpu_mode(env):
    rc, data, raw = env.run(repository_accelerator="gpu", repository_max_batch_size=16)
    assert rc != 0
    assert "repository_max_batch_size" in failure_message(data), raw


def test_check_diff_reports_without_writing(env):
    rc, data, raw = env.run("--check", "--diff")
    assert rc == 0, raw
    assert not env.repository.exists(), "check mode wrote files"
    assert env.run()[0] == 0
    before = {p: p.read_bytes() for p in env.repository.rglob("*") if p.is_file()}

    rc, data, raw = env.run("--check", "--diff", repository_max_batch_size=4)
    assert rc == 0, raw
    assert stats(data)["changed"] > 0
    diffs = []
    for name, result in task_results(data):
        for item in result.get("results", [result]):
            for diff in item.get("diff", []) if isinstance(item.get("diff"), list) else [item.get("diff") or {}]:
                diffs.append(str(diff.get("before", "")) + "\n=>\n" + str(diff.get("after", "")))
    assert any("max_batch_size: 8" in d and "max_batch_size: 4" in d for d in diffs), raw
    after = {p: p.read_bytes() for p in env.repository.rglob("*") if p.is_file()}
    assert after == before


# ------------------------------------------------------- served for real
STUB_ENGINE = '''
"""Echo stand-in for tensorrt_llm (tests only): generates the prompt's tokens back."""
import json

import numpy as np
import triton_python_backend_utils as pb_utils


def _get(request, name):
    tensor = pb_utils.get_input_tensor_by_name(request, name)
    return None if tensor is None else tensor.as_numpy()


class TritonPythonModel:
    def initialize(self, args):
        config = json.loads(args["model_config"])
        self.decoupled = pb_utils.using_decoupled_model_transaction_policy(config)

    def _response(self, ids):
        ids = np.asarray(ids, dtype=np.int32).reshape(1, 1, -1)
        n = ids.shape[2]
        return pb_utils.InferenceResponse(output_tensors=[
            pb_utils.Tensor("output_ids", ids),
            pb_utils.Tensor("sequence_length", np.array([[n]], dtype=np.int32)),
            pb_utils.Tensor("cum_log_probs", np.array([[-0.5 * n]], dtype=np.float32)),
            pb_utils.Tensor("output_log_probs", np.full((1, 1, n), -0.5, dtype=np.float32)),
        ])

    def _tokens(self, request):
        ids = _get(request, "input_ids").reshape(-1)
        length = int(_get(request, "input_lengths").reshape(-1)[0])
        limit = int(_get(request, "request_output_len").reshape(-1)[0])
        return ids[:length][:limit]

    def execute(self, requests):
        if not self.decoupled:
            return [self._response(self._tokens(r)) for r in requests]
        final = pb_utils.TRITONSERVER_RESPONSE_COMPLETE_FINAL
        for request in requests:
            sender = request.get_response_sender()
            tokens = self._tokens(request)
            streaming = _get(request, "streaming")
            if streaming is not None and bool(streaming.reshape(-1)[0]):
                for token in tokens:
                    sender.send(self._response([token]))
                sender.send(flags=final)
            else:
                sender.send(self._response(tokens), flags=final)
        return None
'''


def _triton_root():
    try:
        import pytriton
    except ImportError:
        return None
    root = pathlib.Path(pytriton.__file__).parent / "tritonserver"
    return root if (root / "bin" / "tritonserver").is_file() else None


def _free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _python_backend(root, scratch):
    """A backend directory and a Python home the pytriton stub can run our models with.

    The stub embeds the system's libpython and finds its Python through
    `python3` on PATH; it ignores PYTHONPATH. A venv-like directory whose
    python3 is the system interpreter and whose site-packages are this
    virtualenv's gives it numpy, transformers and tokenizers.
    """
    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    stub = root / "python_backend_stubs" / version / "triton_python_backend_stub"
    system_python = pathlib.Path(f"/usr/bin/python{version}")
    if not stub.is_file() or not system_python.is_file():
        pytest.skip(f"no Python backend stub or system python for {version}")
    backends = scratch / "backends" / "python"
    backends.mkdir(parents=True)
    shutil.copy(root / "backends" / "python" / "libtriton_python.so", backends)
    shutil.copy(root / "backends" / "python" / "triton_python_backend_utils.py", backends)
    (backends / "triton_python_backend_stub").symlink_to(stub)
    home = scratch / "python"
    (home / "bin").mkdir(parents=True)
    (home / "bin" / "python3").symlink_to(system_python)
    (home / "lib" / f"python{version}").mkdir(parents=True)
    (home / "lib" / f"python{version}" / "site-packages").symlink_to(sysconfig.get_paths()["purelib"])
    (home / "pyvenv.cfg").write_text(f"home = {system_python.parent}\ninclude-system-site-packages = false\n")
    return scratch / "backends", home / "bin"


def _infer(url, model, prompt, max_tokens=64, stream=False, extra=None, log_probs=None):
    """Text pieces of one request (and its error); ``log_probs`` (a list) collects each response's log-probs."""
    import tritonclient.grpc as grpcclient

    client = grpcclient.InferenceServerClient(url)
    results = queue.Queue()
    client.start_stream(callback=lambda result, error: results.put((result, error)))

    def tensor(name, value, dtype):
        item = grpcclient.InferInput(name, value.shape, dtype)
        item.set_data_from_numpy(value)
        return item

    inputs = [
        tensor("text_input", np.array([[prompt.encode()]], dtype=object), "BYTES"),
        tensor("max_tokens", np.array([[max_tokens]], dtype=np.int32), "INT32"),
        tensor("stream", np.array([[stream]], dtype=bool), "BOOL"),
    ]
    for name, (value, dtype) in (extra or {}).items():
        inputs.append(tensor(name, value, dtype))
    client.async_stream_infer(model, inputs, enable_empty_final_response=True)
    pieces, error = [], None
    try:
        while True:
            result, error = results.get(timeout=60)
            if error is not None:
                break
            response = result.get_response()
            final = response.parameters.get("triton_final_response")
            if response.outputs:
                pieces.append(result.as_numpy("text_output").reshape(-1)[0].decode("utf-8"))
                if log_probs is not None:
                    log_probs.append((result.as_numpy("cum_log_probs"), result.as_numpy("output_log_probs")))
            if final is not None and final.bool_param:
                break
    finally:
        client.stop_stream()
        client.close()
    return pieces, error


class Served:
    """tritonserver on the rendered repository, for the duration of a with block."""

    def __init__(self, repository, scratch):
        self.root = _triton_root()
        if self.root is None:
            pytest.skip("tritonserver from nvidia-pytriton is not installed")
        self.repository, self.scratch = repository, scratch
        self.log_path = scratch / "tritonserver.log"

    def __enter__(self):
        import tritonclient.grpc as grpcclient

        backends, python_bin = _python_backend(self.root, self.scratch / "triton")
        ports = [_free_port() for _unused in range(3)]
        self.log = self.log_path.open("w")
        self.server = subprocess.Popen(
            [str(self.root / "bin" / "tritonserver"), f"--model-repository={self.repository}",
             f"--backend-directory={backends}", f"--http-port={ports[0]}", f"--grpc-port={ports[1]}",
             f"--metrics-port={ports[2]}", "--allow-metrics=false"],
            stdout=self.log, stderr=subprocess.STDOUT,
            env=dict(os.environ, PATH=f"{python_bin}:{os.environ.get('PATH', '')}"),
        )
        self.url = f"127.0.0.1:{ports[1]}"
        deadline = time.time() + 120
        ready = False
        while time.time() < deadline and self.server.poll() is None and not ready:
            try:
                ready = grpcclient.InferenceServerClient(self.url).is_server_ready()
            except Exception:  # noqa: BLE001 - not listening yet
                time.sleep(1)
        if not ready:
            self.__exit__(None, None, None)
            pytest.fail("tritonserver did not get ready:\n" + self.log_path.read_text()[-4000:])
        return self

    def __exit__(self, *exc):
        self.server.terminate()
        try:
            self.server.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.server.kill()
            self.server.wait()
        self.log.close()
        return False


def test_rendered_repository_serves_text(env, tmp_path):
    rc, _unused, raw = env.run(repository_enable_bls=True)
    assert rc == 0, raw
    # The CPU reference engine needs a built engine; an echo model stands in for it here.
    (env.repository / "tensorrt_llm" / "1" / "model.py").write_text(STUB_ENGINE)
    with Served(env.repository, tmp_path) as served:
        url = served.url
        prompt = "Hello world, the quick brown fox."
        for model in ("ensemble", "tensorrt_llm_bls"):
            pieces, error = _infer(url, model, prompt)
            assert error is None, error
            assert pieces == [prompt], model
            pieces, error = _infer(url, model, prompt, stream=True)
            assert error is None, error
            assert len(pieces) > 1 and "".join(pieces) == prompt, model
        pieces, error = _infer(url, "ensemble", prompt, extra={
            "bad_words": (np.array([[b"quick,lazy"]], dtype=object), "BYTES"),
            "stop_words": (np.array([[b"fox"]], dtype=object), "BYTES"),
            "embedding_bias_words": (np.array([[b"fox", b"dog"]], dtype=object), "BYTES"),
            "embedding_bias_weights": (np.array([[1.0, -1.0]], dtype=np.float32), "FP32"),
            "end_id": (np.array([[0]], dtype=np.int32), "INT32"),
            "top_k": (np.array([[1]], dtype=np.int32), "INT32"),
            "temperature": (np.array([[0.7]], dtype=np.float32), "FP32"),
        })
        assert error is None and pieces == [prompt], error
        # a bad request is answered with an error, and the server keeps serving
        pieces, error = _infer(url, "ensemble", prompt, max_tokens=0)
        assert error is not None and "max_tokens" in str(error)
        pieces, error = _infer(url, "ensemble", prompt)
        assert error is None and pieces == [prompt]


def test_rendered_repository_serves_the_cpu_reference_engine(env, tmp_path):
    """The whole cpu mode: the project's tiny checkpoint, its CPU engine and our repository."""
    # A missing builder is a failure, not a skip: the collection ships it.
    from ansible_collections.tritonfleet.serving.plugins.module_utils.cpu_reference import build_engine
    from ansible_collections.tritonfleet.serving.plugins.module_utils.cpu_tiny_checkpoint import generate_tiny_checkpoint
    checkpoint, engine = tmp_path / "checkpoint", tmp_path / "cpu_engine"
    generate_tiny_checkpoint(str(checkpoint), seed=0)
    build_engine(str(checkpoint), str(engine), max_input_len=64, max_seq_len=128)
    rc, _unused, raw = env.run(repository_enable_bls=True, repository_engine_dir=str(engine),
                               repository_tokenizer_dir=str(checkpoint))
    assert rc == 0, raw
    with Served(env.repository, tmp_path) as served:
        prompt = "The quick brown fox"
        answers = {}
        for model in ("ensemble", "tensorrt_llm_bls"):
            whole, error = _infer(served.url, model, prompt, max_tokens=12)
            assert error is None, error
            assert len(whole) == 1 and whole[0], model
            pieces, error = _infer(served.url, model, prompt, max_tokens=12, stream=True)
            assert error is None, error
            assert 1 <= len(pieces) <= 12, model
            answers[model] = (whole[0], pieces)
        # greedy decoding: both front ends give the same answer
        assert answers["ensemble"] == answers["tensorrt_llm_bls"]
        # log-probs only when asked (the newest release's backend leaves unrequested outputs out), and real
        collected = []
        whole, error = _infer(served.url, "ensemble", prompt, max_tokens=12, log_probs=collected, extra={
            "return_log_probs": (np.array([[True]], dtype=bool), "BOOL")})
        assert error is None and whole == [answers["ensemble"][0]], error
        ((cumulative, per_token),) = collected
        assert per_token is not None and per_token.size >= 1 and (per_token < 0).all(), per_token
        assert abs(float(cumulative.reshape(-1)[0]) - float(per_token.sum())) < 1e-3


# ------------------------------------------------- repository_source: directory
def _template_text(name, model):
    """A config.pbtxt template in upstream's layout: the release's contract with its ${...} kept.

    Written for the test (upstream's files are not shipped); the placeholders are the release's own.
    """
    def dims(values):
        return "[ %s ]" % ", ".join(str(v) for v in values)

    lines = ['name: "%s"' % name]
    lines.append('platform: "ensemble"' if model.get("platform") else 'backend: "%s"' % model["backend"])
    lines.append("max_batch_size: %s" % model["max_batch_size"])
    if "decoupled" in model:
        lines.append("model_transaction_policy {\n  decoupled: %s\n}" % str(model["decoupled"]).lower())
    for field, key in (("input", "inputs"), ("output", "outputs")):
        lines.append("%s [" % field)
        entries = []
        for tensor in model[key]:
            entry = ['    name: "%s"' % tensor["name"], "    data_type: %s" % tensor["data_type"],
                     "    dims: %s" % dims(tensor["dims"])]
            if "reshape" in tensor:
                entry.append("    reshape: { shape: %s }" % dims(tensor["reshape"]))
            if tensor.get("optional"):
                entry.append("    optional: true")
            if tensor.get("allow_ragged_batch"):
                entry.append("    allow_ragged_batch: true")
            entries.append("  {\n%s\n  }" % "\n".join(entry))
        lines.append(",\n".join(entries))
        lines.append("]")
    if model.get("steps"):
        steps = []
        for step in model["steps"]:
            maps = ['      model_name: "%s"' % step["model"], "      model_version: -1"]
            maps += ['      input_map {\n        key: "%s"\n        value: "%s"\n      }' % kv for kv in step["inputs"].items()]
            maps += ['      output_map {\n        key: "%s"\n        value: "%s"\n      }' % kv for kv in step["outputs"].items()]
            steps.append("    {\n%s\n    }" % "\n".join(maps))
        lines.append("ensemble_scheduling {\n  step [\n%s\n  ]\n}" % ",\n".join(steps))
    if model.get("instance_group"):
        lines.append("instance_group [\n  {\n    count: %s\n    kind: %s\n  }\n]" % (
            model["instance_group"]["count"], model["instance_group"]["kind"]))
    for key, value in (model.get("parameters") or {}).items():
        lines.append('parameters: {\n  key: "%s"\n  value: {\n    string_value: "%s"\n  }\n}' % (key, value))
    return "\n".join(lines) + "\n"


def upstream_layout(root, release="0.12"):
    """An all_models/inflight_batcher_llm checkout of `release` as users keep one, with the project's Python models."""
    contract = yaml.safe_load((ROLES / "repository" / "files" / "contracts" / ("%s.yml" % release)).read_text())
    files = ROLES / "repository" / "files"
    for name, model in contract["models"].items():
        (root / name / "1").mkdir(parents=True)
        (root / name / "config.pbtxt").write_text(_template_text(name, model))
    for name in ("preprocessing", "postprocessing", "tensorrt_llm_bls"):
        shutil.copy(files / name / "model.py", root / name / "1" / "model.py")
        shutil.copy(files / "common" / "tritonfleet_model_utils.py", root / name / "1")
    (root / "tensorrt_llm_bls" / "1" / "lib").mkdir()
    (root / "tensorrt_llm_bls" / "1" / "lib" / "notes.txt").write_text("a file in a subdirectory\n")
    (root / "tensorrt_llm" / "1" / ".gitkeep").write_text("")
    (root / "ensemble" / "1" / ".tmp").write_text("")
    return root


def test_directory_source_is_filled_strictly_and_idempotently(env, tmp_path):
    source = upstream_layout(tmp_path / "all_models" / "inflight_batcher_llm")
    variables = dict(repository_source="directory", repository_source_dir=str(source), repository_enable_bls=True,
                     tritonfleet_trtllm_version="0.12.0", repository_max_batch_size=4)
    # decoupled given as the string a command line gives
    rc, data, raw = env.run("-e", "repository_decoupled=false", **variables)
    assert rc == 0, raw
    for model in MODELS + ["tensorrt_llm_bls"]:
        text = (env.repository / model / "config.pbtxt").read_text()
        assert "${" not in text, (model, text)
        config = parse_config(env.repository / model / "config.pbtxt")
        assert config.max_batch_size == 4, model
    engine = parse_config(env.repository / "tensorrt_llm" / "config.pbtxt")
    assert engine.backend == "python"  # cpu mode: the CPU reference engine, whatever the directory said
    assert engine.model_transaction_policy.decoupled is False
    assert engine.parameters["gpt_model_path"].string_value == str(env.engine)
    assert engine.parameters["gpt_model_type"].string_value == "inflight_fused_batching"  # ${batching_strategy}
    # parameters the role leaves out (null) are dropped, not left as "${...}"
    assert "max_tokens_in_paged_kv_cache" not in engine.parameters
    assert (env.repository / "tensorrt_llm_bls" / "1" / "lib" / "notes.txt").is_file()
    for name in CPU_ENGINE_FILES:
        assert (env.repository / "tensorrt_llm" / "1" / name).is_file()
    assert not (env.repository / "tensorrt_llm" / "1" / ".gitkeep").exists()
    rc, data, raw = env.run("-e", "repository_decoupled=false", **variables)
    assert rc == 0 and stats(data)["changed"] == 0, raw

    # a placeholder of the user's own that nothing fills, and a value that matches no placeholder
    text = (source / "preprocessing" / "config.pbtxt").read_text()
    (source / "preprocessing" / "config.pbtxt").write_text(
        text + 'parameters: {\n  key: "site_label"\n  value: {\n    string_value: "${site_label}"\n  }\n}\n')
    fresh = tmp_path / "fresh_repository"
    rc, data, raw = env.run(repository_dir=str(fresh), repository_placeholder_values={"sitelabel": "eu-west"}, **variables)
    assert rc != 0, raw
    message = failure_message(data)
    assert "%s has ${site_label}" % (source / "preprocessing" / "config.pbtxt") in message, message
    assert "repository_placeholder_values: sitelabel matches no placeholder" in message, message
    assert stats(data)["changed"] == 0 and not fresh.exists()
    rc, data, raw = env.run(repository_dir=str(fresh), repository_placeholder_values={"site_label": "eu-west"},
                            **variables)
    assert rc == 0, raw
    assert parse_config(fresh / "preprocessing" / "config.pbtxt").parameters["site_label"].string_value == "eu-west"


def test_directory_source_serves_the_cpu_reference_engine(env, tmp_path):
    from ansible_collections.tritonfleet.serving.plugins.module_utils.cpu_reference import build_engine
    from ansible_collections.tritonfleet.serving.plugins.module_utils.cpu_tiny_checkpoint import generate_tiny_checkpoint
    checkpoint, engine = tmp_path / "checkpoint", tmp_path / "cpu_engine"
    generate_tiny_checkpoint(str(checkpoint), seed=0)
    build_engine(str(checkpoint), str(engine), max_input_len=64, max_seq_len=128)
    source = upstream_layout(tmp_path / "inflight_batcher_llm", release="0.7")
    rc, _unused, raw = env.run(repository_source="directory", repository_source_dir=str(source),
                               tritonfleet_trtllm_version="0.7.1", repository_engine_dir=str(engine),
                               repository_tokenizer_dir=str(checkpoint))
    assert rc == 0, raw
    with Served(env.repository, tmp_path) as served:
        pieces, error = _infer(served.url, "ensemble", "The quick brown fox", max_tokens=8, stream=True)
        assert error is None, error
        assert 1 <= len(pieces) <= 8 and "".join(pieces).strip(), pieces
