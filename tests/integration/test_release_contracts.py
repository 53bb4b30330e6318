"""Each supported TensorRT-LLM release's contract, driven as that release's own clients drive it.

For every release (0.7.1, 0.12.0, 0.19.0, the current 1.x) x decoupled (true, false):
the REAL repository role renders the model repository with
``-e tritonfleet_trtllm_version=<version> -e repository_decoupled=<"true"|"false">``
(strings, as a user types them) over the project's tiny CPU engine; the real
tritonserver (nvidia-pytriton wheel) serves it; then the requests of upstream's
clients of that release (tests/integration/upstream_clients.py holds what they
send and read) go to it:

* end_to_end_grpc_client.py, without and with --streaming (streaming answers only
  when decoupled; otherwise the error upstream's backend gives: no silent text);
* inflight_batcher_llm_client.py --streaming (token ids straight to tensorrt_llm);
* tools/inflight_batcher_llm/end_to_end_test.py (HTTP, plain infer: preprocessing,
  tensorrt_llm and postprocessing by hand, then the ensemble; needs the
  non-decoupled deployment).

One tritonserver per (release, decoupled) cell: the fixture is module-scoped and
parametrized, so pytest runs a cell's tests together.
"""

import json
import os
import pathlib
import subprocess
import sys
import time
import urllib.request
import uuid

import numpy as np
import pytest
import yaml

import upstream_clients as upstream
from ansible_collections.tritonfleet.serving.tests.unit.utils import playbook_run

pytestmark = pytest.mark.integration

grpcclient = pytest.importorskip("tritonclient.grpc")
httpclient = pytest.importorskip("tritonclient.http")

REPO = pathlib.Path(__file__).resolve().parents[2]
ROLES = REPO / "roles"
CONTRACTS = ROLES / "repository" / "files" / "contracts"
MAX_INPUT_LEN, MAX_SEQ_LEN = 64, 128
PROMPT = "The quick brown fox"
CELLS = [(release, decoupled) for release in upstream.RELEASES for decoupled in (True, False)]


def cell_id(cell):
    release, decoupled = cell
    return "%s-%s" % (release, "decoupled" if decoupled else "not_decoupled")


# ------------------------------------------------------------------ fixtures
@pytest.fixture(scope="module")
def engine(tmp_path_factory):
    """The project's tiny checkpoint (its tokenizer too) and its CPU engine, built once for every cell."""
    from ansible_collections.tritonfleet.serving.plugins.module_utils.cpu_reference import build_engine
    from ansible_collections.tritonfleet.serving.plugins.module_utils.cpu_tiny_checkpoint import generate_tiny_checkpoint

    root = tmp_path_factory.mktemp("release_engine")
    checkpoint, engine_dir = root / "checkpoint", root / "engine"
    generate_tiny_checkpoint(str(checkpoint), seed=0)
    build_engine(str(checkpoint), str(engine_dir), max_input_len=MAX_INPUT_LEN, max_seq_len=MAX_SEQ_LEN)
    return {"checkpoint": checkpoint, "engine": engine_dir}


def render_with_role(root, engine, version, decoupled):
    """ansible-playbook applying the repository role on localhost, the release and mode given as -e strings."""
    playbook = root / "play.yml"
    playbook.write_text(yaml.safe_dump([{
        "name": "Apply the repository role", "hosts": "localhost", "gather_facts": False,
        "roles": [{"role": "repository"}],
    }]))
    varfile = root / "vars.json"
    varfile.write_text(json.dumps({
        "repository_dir": str(root / "model_repository"),
        "repository_accelerator": "cpu",
        "repository_engine_dir": str(engine["engine"]),
        "repository_tokenizer_dir": str(engine["checkpoint"]),
    }))
    env = dict(os.environ, ANSIBLE_CONFIG=str(REPO / "ansible.cfg"),
               ANSIBLE_COLLECTIONS_PATH=str(REPO / ".collections"), ANSIBLE_ROLES_PATH=str(ROLES))
    run = playbook_run.run(
        ["ansible-playbook", "-i", "localhost,", "-c", "local",
         "-e", "ansible_python_interpreter=%s" % sys.executable, "-e", "@%s" % varfile,
         "-e", "tritonfleet_trtllm_version=%s" % version,
         "-e", "repository_decoupled=%s" % ("true" if decoupled else "false"),
         str(playbook)],
        env=env, cwd=root, timeout=600)
    assert run.rc == 0, "the repository role failed for %s (decoupled %s): %s\n%s" % (
        version, decoupled, run.messages(failed_only=True), run.transcript())
    return root / "model_repository"


class Server:
    """tritonserver (from the nvidia-pytriton wheel) on a rendered repository."""

    def __init__(self, repository, scratch):
        try:
            import pytriton
        except ImportError:
            pytest.skip("tritonserver from nvidia-pytriton is not installed")
        self.triton = pathlib.Path(pytriton.__file__).resolve().parent / "tritonserver"
        self.repository, self.scratch = repository, scratch
        self.log_path = scratch / "tritonserver.log"

    def start(self):
        from test_repository_role import _free_port, _python_backend

        backends, python_bin = _python_backend(self.triton, self.scratch / "triton")
        http, grpc, metrics = _free_port(), _free_port(), _free_port()
        # The stub's python3 (system interpreter, this virtualenv's packages) first, then this virtualenv.
        search_path = os.pathsep.join([str(python_bin), str(pathlib.Path(sys.executable).parent), os.environ.get("PATH", "")])
        self.log = self.log_path.open("w")
        self.process = subprocess.Popen(
            [str(self.triton / "bin" / "tritonserver"), "--model-repository=%s" % self.repository,
             "--backend-directory=%s" % backends, "--http-port=%d" % http, "--grpc-port=%d" % grpc,
             "--metrics-port=%d" % metrics, "--allow-metrics=false",
             # Other test runs may share this host's /dev/shm.
             "--backend-config=python,shm-region-prefix-name=tfrel_%s" % uuid.uuid4().hex[:12]],
            stdout=self.log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            env=dict(os.environ, PATH=search_path))
        self.http_url, self.grpc_url = "127.0.0.1:%d" % http, "127.0.0.1:%d" % grpc
        deadline = time.time() + 180
        while True:
            if self.process.poll() is not None:
                self.stop()
                pytest.fail("tritonserver exited with %s:\n%s" % (self.process.returncode, self.log_text()))
            try:
                with urllib.request.urlopen("http://%s/v2/health/ready" % self.http_url, timeout=2) as answer:
                    if answer.status == 200:
                        return self
            except OSError:
                pass
            if time.time() > deadline:
                self.stop()
                pytest.fail("tritonserver not ready after 180 s:\n" + self.log_text())
            time.sleep(0.5)

    def log_text(self):
        return self.log_path.read_text()[-6000:]

    def stop(self):
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.log.close()


class Cell:
    def __init__(self, release, decoupled, server, engine, repository):
        self.release, self.decoupled, self.server, self.repository = release, decoupled, server, repository
        self.gen = upstream.generation(release)
        self.tokenizer_dir = engine["checkpoint"]
        config = (repository / "tensorrt_llm" / "config.pbtxt").read_text()
        # The deployment's exclude_input_in_output: what 0.7 and 0.12 requests get (they cannot ask).
        self.exclude_param = 'key: "exclude_input_in_output"\n  value: {\n    string_value: "true"' in config

    @property
    def grpc(self):
        return self.server.grpc_url

    def explain(self):
        return "%s, %s; tritonserver log:\n%s" % (
            self.release, "decoupled" if self.decoupled else "not decoupled", self.server.log_text())


@pytest.fixture(scope="module", params=CELLS, ids=cell_id)
def cell(request, engine, tmp_path_factory):
    release, decoupled = request.param
    root = tmp_path_factory.mktemp("cell_%s" % cell_id(request.param).replace(".", "_"))
    repository = render_with_role(root, engine, upstream.RELEASES[release]["version"], decoupled)
    server = Server(repository, root).start()
    request.addfinalizer(server.stop)
    return Cell(release, decoupled, server, engine, repository)


@pytest.fixture(scope="module")
def tokenizer(engine):
    from transformers import AutoTokenizer
    return AutoTokenizer.from_pretrained(str(engine["checkpoint"]))


# --------------------------------------------------------------- the render
def test_rendered_contract_is_the_release(cell):
    """The role rendered the release's ensemble contract and the mode the user typed."""
    from google.protobuf import text_format
    from tritonclient.grpc import model_config_pb2

    contract = yaml.safe_load((CONTRACTS / ("%s.yml" % upstream.RELEASES[cell.release]["contract"])).read_text())
    for name in ("preprocessing", "tensorrt_llm", "postprocessing", "ensemble"):
        config = text_format.Parse((cell.repository / name / "config.pbtxt").read_text(), model_config_pb2.ModelConfig())
        expected = contract["models"][name]
        assert [t.name for t in config.input] == [t["name"] for t in expected["inputs"]], name
        assert [t.name for t in config.output] == [t["name"] for t in expected["outputs"]], name
        if name == "tensorrt_llm":
            assert config.model_transaction_policy.decoupled is cell.decoupled


# ------------------------------------------------ end_to_end_grpc_client.py
def test_end_to_end_grpc_client(cell, tokenizer):
    """``end_to_end_grpc_client.py -p PROMPT -o 12``: one answer whose text_output[0] decodes."""
    run = upstream.end_to_end_grpc_client(cell.grpc, cell.release, PROMPT, output_len=12)
    assert not run.errors, cell.explain()
    assert len(run.results) == 1
    text_output = run.results[0].as_numpy("text_output")
    assert text_output.ndim == 1 and text_output.shape == (1,), text_output.shape  # batch * beam strings
    if cell.gen == "0.12":
        assert run.results[0].as_numpy("batch_index").shape == (1, 1)
    text = run.text
    assert text.strip()
    # From 0.19 on the client sends exclude_input_in_output=false on every request: the prompt comes back first.
    includes_prompt = (cell.gen == "0.19") or not cell.exclude_param
    assert text.startswith(PROMPT) is includes_prompt, (text, cell.exclude_param)
    if cell.gen == "0.19":
        excluded = upstream.end_to_end_grpc_client(cell.grpc, cell.release, PROMPT, output_len=12,
                                                   exclude_input_in_output=True)
        assert not excluded.errors, cell.explain()
        assert excluded.text and not excluded.text.startswith(PROMPT)
        assert text.endswith(excluded.text.strip())
        # --return-log-probs: the client asks for cum_log_probs and output_log_probs by name.
        scored = upstream.end_to_end_grpc_client(cell.grpc, cell.release, PROMPT, output_len=12,
                                                 exclude_input_in_output=True, return_log_probs=True)
        assert not scored.errors, cell.explain()
        per_token = scored.output_log_probs.reshape(-1)
        # real scores, not zeros (a beam's padding may be 0; the scores of tokens are below 0)
        assert np.count_nonzero(per_token) >= 1 and np.all(per_token <= 0), per_token
        assert float(scored.cum_log_probs.reshape(-1)[0]) == pytest.approx(float(per_token.sum()), rel=1e-3, abs=1e-3)


def test_end_to_end_grpc_client_streaming(cell):
    """``end_to_end_grpc_client.py --streaming``: pieces appended; a non-decoupled model refuses by name."""
    run = upstream.end_to_end_grpc_client(cell.grpc, cell.release, PROMPT, output_len=12, streaming=True)
    if not cell.decoupled:
        # Upstream's backend answers a streaming request to a non-decoupled model with an error.
        assert not run.texts, run.texts
        assert run.errors and any("decoupled" in error for error in run.errors), (run.errors, cell.explain())
        return
    assert not run.errors, cell.explain()
    assert len(run.results) > 1
    for result in run.results:
        assert result.as_numpy("text_output").ndim == 1
        if cell.gen == "0.12":
            assert result.as_numpy("batch_index")[0][0] == 0
    whole = upstream.end_to_end_grpc_client(cell.grpc, cell.release, PROMPT, output_len=12,
                                            exclude_input_in_output=True)
    assert not whole.errors
    # Streaming sends only the new tokens, at every release; greedy decoding gives the same text.
    generated = whole.text[len(PROMPT):] if whole.text.startswith(PROMPT) else whole.text
    assert run.text.strip() == generated.strip()


# ------------------------------------------- inflight_batcher_llm_client.py
def test_inflight_batcher_llm_client_streaming(cell):
    """``inflight_batcher_llm_client.py --streaming --tokenizer-dir D --text T``: token ids, one per response."""
    tok, input_ids, end_id, pad_id = upstream.tokenizer_ids(cell.tokenizer_dir, cell.release, PROMPT)
    run = upstream.inflight_batcher_llm_client(cell.grpc, cell.release, input_ids, end_id, pad_id,
                                               request_output_len=16, return_log_probs=True)
    if not cell.decoupled:
        assert run.errors and any("decoupled" in error for error in run.errors), (run.errors, cell.explain())
        return
    assert not run.errors, cell.explain()
    generated = run.output_ids[len(input_ids):]
    assert run.output_ids[:len(input_ids)] == input_ids
    assert 1 <= len(generated) <= 16
    assert len(run.results) >= len(generated)
    assert all(0 <= token < tok.vocab_size for token in generated)
    # log probs computed for real: negative per token, not zeros
    per_token = np.concatenate([np.asarray(lp, dtype=np.float32).reshape(-1) for lp in run.output_log_probs])
    assert per_token.size >= len(generated) and np.all(per_token[:len(generated)] < 0), per_token


# ---------------------------------------- tools/.../end_to_end_test.py
def test_end_to_end_test(cell):
    """end_to_end_test.py's functionality test over HTTP: the pipeline by hand equals the ensemble."""
    if cell.decoupled:
        pytest.skip("end_to_end_test.py calls infer on tensorrt_llm: upstream runs it on a non-decoupled deployment")
    for return_log_probs in ((False, True) if cell.gen == "0.19" else (False,)):
        manual, ensemble = upstream.end_to_end_test(httpclient, cell.server.http_url, cell.release,
                                                    PROMPT, output_len=10, return_log_probs=return_log_probs)
        assert ensemble["text_output"].ndim == 1 and ensemble["text_output"].shape == (1,)
        assert manual["text_output"] == ensemble["text_output"], (manual["text_output"], ensemble["text_output"])
        assert ensemble["text_output"][0].decode("utf-8").strip()
        if "cum_log_probs" in ensemble:
            assert manual["cum_log_probs"] == ensemble["cum_log_probs"]
            assert (manual["output_log_probs"] == ensemble["output_log_probs"]).all()
        if cell.gen == "0.12":
            # Not asked for: the dummy tensors upstream's script expects.
            assert ensemble["context_logits"].shape == (1, 1, 1) and ensemble["context_logits"][0][0][0] == 0
            assert ensemble["generation_logits"].shape == (1, 1, 1, 1)
            assert (manual["generation_logits"] == manual["post_generation_logits"]).all()
        if return_log_probs:
            per_token = ensemble["output_log_probs"].reshape(-1)
            generated = int(manual["sequence_length"].reshape(-1)[0]) - (
                0 if cell.exclude_param else int(manual["input_ids"].shape[-1]))
            assert generated >= 1 and np.all(per_token[:generated] < 0), per_token
            assert float(ensemble["cum_log_probs"].reshape(-1)[0]) == pytest.approx(
                float(per_token[:generated].sum()), rel=1e-3, abs=1e-3)
