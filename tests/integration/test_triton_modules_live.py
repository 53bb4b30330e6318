# -*- coding: utf-8 -*-
# Copyright: (c) 2026, tritonfleet maintainers
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""triton_health, triton_infer and triton_model against a real tritonserver (CPU, Python backend, toy models).

tritonserver, the Python backend and its stub come from the nvidia-pytriton wheel in the venv.
Each server gets free ports, its own shm-region-prefix-name and a log file, and is stopped by a
finalizer.  The toy models are written into the test's tmp dir:

* ``ensemble``: decoupled, upstream's ensemble tensor contract (text_input, max_tokens and all the
  optional inputs with their upstream datatypes, text_output); it echoes the prompt's words, one
  response per word when ``stream`` is true, one response otherwise, then a flags-only final response.
* ``plain``: an ordinary (not decoupled) text_input/max_tokens -> text_output model.
* ``broken``: raises in initialize (load failure).
* ``slow``: sleeps 2 s in initialize.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import json
import os
import pathlib
import shutil
import signal
import socket
import subprocess
import sys
import textwrap
import time

import pytest


from ansible_collections.tritonfleet.serving.plugins.modules import triton_health, triton_infer, triton_model
from ansible_collections.tritonfleet.serving.tests.unit.utils.ansible_module_harness import run_module

pytestmark = pytest.mark.integration

REPO_ROOT = pathlib.Path(__file__).resolve().parents[2]
VENV_BIN = pathlib.Path(sys.executable).parent


def _site_packages():
    try:
        import pytriton
    except ImportError:
        return None
    return pathlib.Path(pytriton.__file__).resolve().parent.parent


SITE = _site_packages()
PY_TAG = '%d.%d' % sys.version_info[:2]
TRITONSERVER = SITE / 'pytriton' / 'tritonserver' / 'bin' / 'tritonserver' if SITE else None

if TRITONSERVER is None or not TRITONSERVER.exists():
    pytest.skip('tritonserver from nvidia-pytriton is not installed', allow_module_level=True)


# --------------------------------------------------------------------------
# toy models
# --------------------------------------------------------------------------

OPTIONAL_INPUTS = [
    ('bad_words', 'TYPE_STRING', '[ -1 ]'),
    ('stop_words', 'TYPE_STRING', '[ -1 ]'),
    ('end_id', 'TYPE_INT32', '[ 1 ]'),
    ('pad_id', 'TYPE_INT32', '[ 1 ]'),
    ('top_k', 'TYPE_INT32', '[ 1 ]'),
    ('top_p', 'TYPE_FP32', '[ 1 ]'),
    ('temperature', 'TYPE_FP32', '[ 1 ]'),
    ('length_penalty', 'TYPE_FP32', '[ 1 ]'),
    ('repetition_penalty', 'TYPE_FP32', '[ 1 ]'),
    ('min_length', 'TYPE_INT32', '[ 1 ]'),
    ('presence_penalty', 'TYPE_FP32', '[ 1 ]'),
    ('random_seed', 'TYPE_UINT64', '[ 1 ]'),
    ('return_log_probs', 'TYPE_BOOL', '[ 1 ]'),
    ('beam_width', 'TYPE_INT32', '[ 1 ]'),
    ('stream', 'TYPE_BOOL', '[ 1 ]'),
]

ENSEMBLE_CONFIG = '''
name: "ensemble"
backend: "python"
max_batch_size: 8
model_transaction_policy { decoupled: true }
input [
  { name: "text_input" data_type: TYPE_STRING dims: [ -1 ] },
  { name: "max_tokens" data_type: TYPE_INT32 dims: [ -1 ] },
%s
]
output [
  { name: "text_output" data_type: TYPE_STRING dims: [ -1 ] }
]
instance_group [ { count: 1 kind: KIND_CPU } ]
''' % ',\n'.join('  { name: "%s" data_type: %s dims: %s optional: true }' % i for i in OPTIONAL_INPUTS)

ENSEMBLE_MODEL = '''
import numpy as np
import triton_python_backend_utils as pb_utils

OPTIONAL = %r


def scalar(request, name):
    tensor = pb_utils.get_input_tensor_by_name(request, name)
    if tensor is None:
        return None
    value = tensor.as_numpy().flatten()[0]
    if isinstance(value, bytes):
        return value.decode("utf-8")
    return value.item()


def text_tensor(text):
    return pb_utils.Tensor("text_output", np.array([[text.encode("utf-8")]], dtype=np.object_))


class TritonPythonModel:
    """Echo the prompt's words (at most max_tokens); list the optional inputs received at the end."""

    def execute(self, requests):
        for request in requests:
            sender = request.get_response_sender()
            words = ["echo:"] + scalar(request, "text_input").split()
            words = words[:scalar(request, "max_tokens")]
            seen = ["%%s=%%s" %% (name, scalar(request, name)) for name in OPTIONAL
                    if name != "stream" and scalar(request, name) is not None]
            if seen:
                words.append("[" + " ".join(seen) + "]")
            if scalar(request, "stream"):
                for i, word in enumerate(words):
                    sender.send(pb_utils.InferenceResponse(output_tensors=[text_tensor(word if i == 0 else " " + word)]))
            else:
                sender.send(pb_utils.InferenceResponse(output_tensors=[text_tensor(" ".join(words))]))
            sender.send(flags=pb_utils.TRITONSERVER_RESPONSE_COMPLETE_FINAL)
        return None
''' % ([item[0] for item in OPTIONAL_INPUTS],)

PLAIN_CONFIG = '''
backend: "python"
max_batch_size: 8
input [
  { name: "text_input" data_type: TYPE_STRING dims: [ -1 ] },
  { name: "max_tokens" data_type: TYPE_INT32 dims: [ -1 ] }
]
output [ { name: "text_output" data_type: TYPE_STRING dims: [ -1 ] } ]
instance_group [ { count: 1 kind: KIND_CPU } ]
'''

PLAIN_MODEL = '''
import numpy as np
import triton_python_backend_utils as pb_utils


class TritonPythonModel:
    def execute(self, requests):
        responses = []
        for request in requests:
            text = pb_utils.get_input_tensor_by_name(request, "text_input").as_numpy().flatten()[0]
            out = pb_utils.Tensor("text_output", np.array([[b"plain: " + text]], dtype=np.object_))
            responses.append(pb_utils.InferenceResponse(output_tensors=[out]))
        return responses
'''

TRIVIAL_CONFIG = '''
backend: "python"
max_batch_size: 0
input [ { name: "IN" data_type: TYPE_FP32 dims: [ 1 ] } ]
output [ { name: "OUT" data_type: TYPE_FP32 dims: [ 1 ] } ]
instance_group [ { count: 1 kind: KIND_CPU } ]
'''

BROKEN_MODEL = '''
class TritonPythonModel:
    def initialize(self, args):
        raise RuntimeError("toy load failure: engine file missing")

    def execute(self, requests):
        return []
'''

SLOW_MODEL = '''
import time


class TritonPythonModel:
    def initialize(self, args):
        time.sleep(2)

    def execute(self, requests):
        return []
'''

MODELS = {
    'ensemble': (ENSEMBLE_CONFIG, ENSEMBLE_MODEL),
    'plain': (PLAIN_CONFIG, PLAIN_MODEL),
    'broken': (TRIVIAL_CONFIG, BROKEN_MODEL),
    'slow': (TRIVIAL_CONFIG, SLOW_MODEL),
}


def write_repository(root, names):
    root.mkdir(parents=True, exist_ok=True)
    for name in names:
        config, code = MODELS[name]
        (root / name / '1').mkdir(parents=True)
        (root / name / 'config.pbtxt').write_text(textwrap.dedent(config))
        (root / name / '1' / 'model.py').write_text(textwrap.dedent(code))
    return root


# --------------------------------------------------------------------------
# servers
# --------------------------------------------------------------------------

def free_ports(count):
    socks = []
    try:
        for dummy in range(count):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.bind(('127.0.0.1', 0))
            socks.append(sock)
        return [s.getsockname()[1] for s in socks]
    finally:
        for sock in socks:
            sock.close()


@pytest.fixture(scope='session')
def backends_dir(tmp_path_factory):
    """B/python/ = the wheel's python backend + the stub for this Python."""
    root = tmp_path_factory.mktemp('backends')
    target = root / 'python'
    shutil.copytree(str(SITE / 'pytriton' / 'tritonserver' / 'backends' / 'python'), str(target),
                    ignore=shutil.ignore_patterns('__pycache__'))
    shutil.copy2(str(SITE / 'pytriton' / 'tritonserver' / 'python_backend_stubs' / PY_TAG /
                     'triton_python_backend_stub'), str(target))
    return root


class Server(object):
    counter = 0

    def __init__(self, repo, backends, log, extra_args=()):
        Server.counter += 1
        self.http_port, self.grpc_port, self.metrics_port = free_ports(3)
        self.log = log
        self.shm_prefix = 'tfmod%d_%dx' % (os.getpid(), Server.counter)
        env = dict(os.environ)
        env['LD_LIBRARY_PATH'] = os.pathsep.join(
            [str(SITE / 'nvidia_pytriton.libs')] + ([env['LD_LIBRARY_PATH']] if env.get('LD_LIBRARY_PATH') else []))
        env['PATH'] = os.pathsep.join([str(VENV_BIN), env.get('PATH', '')])
        self.cmd = [
            str(TRITONSERVER), '--model-repository', str(repo), '--backend-directory', str(backends),
            '--http-port', str(self.http_port), '--grpc-port', str(self.grpc_port),
            '--metrics-port', str(self.metrics_port),
            '--backend-config=python,shm-region-prefix-name=%s' % self.shm_prefix,
        ] + list(extra_args)
        self._log_handle = open(str(log), 'wb')
        self.started = time.monotonic()
        self.proc = subprocess.Popen(self.cmd, stdout=self._log_handle, stderr=subprocess.STDOUT, env=env,
                                     start_new_session=True)

    @property
    def http_url(self):
        return '127.0.0.1:%d' % self.http_port

    @property
    def grpc_url(self):
        return '127.0.0.1:%d' % self.grpc_port

    def log_text(self):
        return pathlib.Path(str(self.log)).read_text(errors='replace')

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=10)
        self._log_handle.close()
        # a killed server leaves its Python-backend shm regions behind
        shm = pathlib.Path('/dev/shm')
        if shm.is_dir():
            for region in shm.glob(self.shm_prefix + '*'):
                try:
                    region.unlink()
                except OSError:
                    pass


@pytest.fixture
def start_server(tmp_path, backends_dir):
    servers = []

    def start(models, extra_args=(), name='server'):
        repo = write_repository(tmp_path / ('%s-repo' % name), models)
        server = Server(repo, backends_dir, tmp_path / ('%s.log' % name), extra_args)
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


@pytest.fixture(scope='module')
def llm_server(tmp_path_factory, backends_dir):
    """One server with the decoupled ensemble and a plain model, shared by the inference tests."""
    root = tmp_path_factory.mktemp('llm')
    server = Server(write_repository(root / 'repo', ['ensemble', 'plain']), backends_dir, root / 'triton.log')
    try:
        out = run_module(triton_health.main, {'url': server.http_url, 'models': ['ensemble', 'plain'], 'timeout': 60,
                                              'log_file': str(server.log), 'pid': server.proc.pid})
        assert not out.failed, out.result['msg']
        yield server
    finally:
        server.stop()


# --------------------------------------------------------------------------
# running modules
# --------------------------------------------------------------------------

def run_ansible(tmp_path, module, args, check=False):
    """Run the module through the real `ansible` ad-hoc CLI; returns (rc, result dict or None, output)."""
    env = dict(os.environ)
    env.update({
        'ANSIBLE_COLLECTIONS_PATH': str(REPO_ROOT / '.collections'),
        'ANSIBLE_CALLBACK_RESULT_FORMAT': 'json',
        'ANSIBLE_LOCALHOST_WARNING': 'false',
        'ANSIBLE_INVENTORY_UNPARSED_WARNING': 'false',
        'ANSIBLE_HOME': str(tmp_path / 'ansible-home'),
        'ANSIBLE_NOCOLOR': '1',
    })
    env.pop('ANSIBLE_CONFIG', None)
    cmd = [str(VENV_BIN / 'ansible'), 'localhost', '-i', 'localhost,', '-c', 'local',
           '-e', 'ansible_python_interpreter=%s' % sys.executable,
           '-m', 'tritonfleet.serving.%s' % module, '-a', json.dumps(args)]
    if check:
        cmd.append('--check')
    proc = subprocess.run(cmd, cwd=str(tmp_path), env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          timeout=180, check=False)
    out = proc.stdout.decode('utf-8', 'replace')
    marker = out.rfind('=> ')
    return proc.returncode, (json.loads(out[marker + 3:]) if marker >= 0 else None), out


# --------------------------------------------------------------------------
# (a) the decoupled ensemble: health and inference over both protocols
# --------------------------------------------------------------------------

@pytest.mark.parametrize('protocol', ['http', 'grpc'])
def test_health_ready_server(llm_server, protocol):
    url = 'http://' + llm_server.http_url if protocol == 'http' else llm_server.grpc_url
    out = run_module(triton_health.main, {'url': url, 'protocol': protocol, 'timeout': 10,
                                          'models': ['ensemble', {'name': 'plain', 'version': 1}]})
    assert not out.failed, out.result['msg']
    r = out.result
    assert r['changed'] is False and r['live'] and r['ready']
    assert r['models'] == [
        {'name': 'ensemble', 'version': '1', 'state': 'READY', 'reason': '', 'ready': True},
        {'name': 'plain', 'version': '1', 'state': 'READY', 'reason': '', 'ready': True}]
    assert r['server']['version'] == '2.51.0' and 'model_repository' in r['server']['extensions']
    assert r['elapsed'] < 2


def test_health_missing_model_times_out(llm_server):
    out = run_module(triton_health.main, {'url': llm_server.grpc_url, 'protocol': 'grpc', 'timeout': 0.5,
                                          'interval': 0.1, 'models': ['ensemble', 'tensorrt_llm']})
    assert out.failed
    assert out.result['msg'] == ('Triton at grpc://%s not ready within 0.5s: server live=True, ready=True; '
                                 'models not ready: tensorrt_llm: no state: tensorrt_llm is not in the model '
                                 'repository index' % llm_server.grpc_url)


def test_grpc_streaming(llm_server):
    out = run_module(triton_infer.main, {'url': llm_server.grpc_url, 'prompt': 'the quick brown fox jumps',
                                         'max_tokens': 5, 'stream': True, 'min_responses': 5, 'expect_text': 'brown fox'})
    assert not out.failed, out.result['msg']
    r = out.result
    assert r['text'] == 'echo: the quick brown fox'
    assert r['responses'] == 5
    assert r['final_response'] is True
    assert 0 < r['time_to_first_token'] <= r['total_time'] < 5
    assert r['tokens_per_second'] > 0
    assert r['endpoint'] == 'stream_infer' and r['changed'] is False


def test_grpc_not_streaming_one_response(llm_server):
    out = run_module(triton_infer.main, {'url': 'grpc://' + llm_server.grpc_url, 'prompt': 'the quick brown fox',
                                         'max_tokens': 32, 'stream': False})
    assert not out.failed, out.result['msg']
    assert out.result['text'] == 'echo: the quick brown fox'
    assert out.result['responses'] == 1 and out.result['final_response'] is True
    assert out.result['tokens_per_second'] is None


def test_grpc_all_parameters_reach_the_model(llm_server):
    params = {'bad_words': 'bad', 'stop_words': ['stop', 'end'], 'end_id': 2, 'pad_id': 0, 'top_k': 3,
              'top_p': 0.5, 'temperature': 0.25, 'length_penalty': 1.0, 'repetition_penalty': 1.5,
              'presence_penalty': 0.0, 'min_length': 1, 'beam_width': 1, 'random_seed': 2 ** 40,
              'return_log_probs': True}
    out = run_module(triton_infer.main, {'url': llm_server.grpc_url, 'prompt': 'hi', 'parameters': params})
    assert not out.failed, out.result['msg']
    assert out.result['text'] == (
        'echo: hi [bad_words=bad stop_words=stop,end end_id=2 pad_id=0 top_k=3 top_p=0.5 temperature=0.25 '
        'length_penalty=1.0 repetition_penalty=1.5 min_length=1 presence_penalty=0.0 random_seed=1099511627776 '
        'return_log_probs=True beam_width=1]')


def test_grpc_wrong_datatype_is_reported(llm_server):
    out = run_module(triton_infer.main, {'url': llm_server.grpc_url, 'prompt': 'hi', 'extra_inputs': [
        {'name': 'temperature', 'datatype': 'FP64', 'value': 0.5}]})
    assert out.failed
    assert out.result['msg'] == ("ensemble: [request id: <id_unknown>] inference input 'temperature' data-type "
                                 "is 'FP64', but model 'ensemble' expects 'FP32'")


def test_grpc_unknown_model(llm_server):
    out = run_module(triton_infer.main, {'url': llm_server.grpc_url, 'prompt': 'hi', 'model': 'nope'})
    assert out.failed and out.result['msg'] == "nope: Request for unknown model: 'nope' is not found"


def test_grpc_ordinary_model(llm_server):
    out = run_module(triton_infer.main, {'url': llm_server.grpc_url, 'prompt': 'hi', 'model': 'plain'})
    assert not out.failed, out.result['msg']
    assert out.result['text'] == 'plain: hi' and out.result['final_response'] is True


def test_http_generate(llm_server):
    out = run_module(triton_infer.main, {'url': 'http://%s/' % llm_server.http_url, 'protocol': 'http',
                                         'prompt': 'the quick brown fox', 'max_tokens': 3, 'stream': False,
                                         'parameters': {'temperature': 0.5, 'random_seed': 7}})
    assert not out.failed, out.result['msg']
    assert out.result['text'] == 'echo: the quick [temperature=0.5 random_seed=7]'
    assert out.result['endpoint'] == 'generate' and out.result['responses'] == 1


def test_http_generate_stream(llm_server):
    out = run_module(triton_infer.main, {'url': llm_server.http_url, 'protocol': 'http', 'prompt': 'a b c d e f',
                                         'max_tokens': 32, 'stream': True, 'min_responses': 7})
    assert not out.failed, out.result['msg']
    assert out.result['text'] == 'echo: a b c d e f'
    assert out.result['responses'] == 7 and out.result['endpoint'] == 'generate_stream'
    assert out.result['time_to_first_token'] <= out.result['total_time']


def test_http_generate_refuses_many_responses(llm_server):
    """Triton answers /generate with HTTP 200 and an error when a decoupled model streams."""
    out = run_module(triton_infer.main, {'url': llm_server.http_url, 'protocol': 'http', 'prompt': 'a b c',
                                         'extra_inputs': [{'name': 'stream', 'datatype': 'BOOL', 'value': True}]})
    assert out.failed
    assert out.result['msg'] == (
        'http://%s/v2/models/ensemble/generate: generate expects model to produce exactly 1 response, use '
        'generate stream for model that generates various number of responses' % llm_server.http_url)


def test_http_infer_endpoint_for_plain_model(llm_server):
    out = run_module(triton_infer.main, {'url': llm_server.http_url, 'protocol': 'http', 'http_endpoint': 'infer',
                                         'model': 'plain', 'prompt': 'hello'})
    assert not out.failed, out.result['msg']
    assert out.result['text'] == 'plain: hello'


def test_http_generate_unknown_fields_and_models(llm_server):
    # generate maps JSON fields onto the model's inputs; a field that is no input is not an error
    out = run_module(triton_infer.main, {'url': llm_server.http_url, 'protocol': 'http', 'model': 'plain',
                                         'prompt': 'x', 'parameters': {'top_k': 1}})
    assert not out.failed, out.result['msg']
    assert out.result['text'] == 'plain: x'
    # over gRPC the same request is refused (KServe infer checks the input count)
    out = run_module(triton_infer.main, {'url': llm_server.grpc_url, 'model': 'plain', 'prompt': 'x',
                                         'parameters': {'top_k': 1}})
    assert out.failed and "expected 2 inputs but got 3 inputs for model 'plain'" in out.result['msg']
    out = run_module(triton_infer.main, {'url': llm_server.http_url, 'protocol': 'http', 'model': 'nope', 'prompt': 'x'})
    assert out.failed
    assert out.result['msg'] == ("http://%s/v2/models/nope/generate: HTTP 404: Request for unknown model: "
                                 "'nope' is not found" % llm_server.http_url)


def test_expect_text_mismatch(llm_server):
    out = run_module(triton_infer.main, {'url': llm_server.grpc_url, 'prompt': 'the sky is blue', 'stream': True,
                                         'expect_text': '(?i)green'})
    assert out.failed
    assert out.result['msg'] == "answer of ensemble does not match expect_text '(?i)green': 'echo: the sky is blue'"
    assert out.result['text'] == 'echo: the sky is blue' and out.result['responses'] == 5


def _success_count(server, model):
    import tritonclient.http as httpclient
    client = httpclient.InferenceServerClient(server.http_url)
    try:
        stats = client.get_inference_statistics(model)['model_stats'][0]
        return stats['inference_stats']['success']['count']
    finally:
        client.close()


def test_check_mode_sends_no_request(llm_server):
    before = _success_count(llm_server, 'ensemble')
    out = run_module(triton_infer.main, {'url': llm_server.grpc_url, 'prompt': 'hi'}, check_mode=True)
    assert not out.failed and out.result['skipped'] is True
    assert out.result['msg'] == 'check mode: request not sent'
    assert _success_count(llm_server, 'ensemble') == before
    out = run_module(triton_infer.main, {'url': llm_server.grpc_url, 'prompt': 'hi'})
    assert not out.failed
    assert _success_count(llm_server, 'ensemble') == before + 1


def test_through_ansible_cli(llm_server, tmp_path):
    rc, result, out = run_ansible(tmp_path, 'triton_health', {
        'url': llm_server.http_url, 'models': ['ensemble', 'plain'], 'timeout': 10})
    assert rc == 0, out
    assert result['changed'] is False and result['ready'] is True
    rc, result, out = run_ansible(tmp_path, 'triton_health', {
        'url': llm_server.grpc_url, 'protocol': 'grpc', 'models': ['tensorrt_llm'], 'timeout': 0.3})
    assert rc == 2 and 'FAILED!' in out, out
    assert 'tensorrt_llm: no state' in result['msg']
    rc, result, out = run_ansible(tmp_path, 'triton_infer', {
        'url': llm_server.grpc_url, 'prompt': 'over the cli', 'stream': True, 'parameters': {'top_k': 1}})
    assert rc == 0, out
    assert result['text'] == 'echo: over the cli [top_k=1]' and result['responses'] == 5
    # check mode: the ad-hoc callback shows a skipped result ("localhost | SKIPPED") and no request is sent
    before = _success_count(llm_server, 'ensemble')
    rc, result, out = run_ansible(tmp_path, 'triton_infer', {'url': llm_server.grpc_url, 'prompt': 'x'}, check=True)
    assert rc == 0 and 'SKIPPED' in out, out
    assert _success_count(llm_server, 'ensemble') == before


# --------------------------------------------------------------------------
# (b) a model that fails to load
# --------------------------------------------------------------------------

def test_load_failure_with_exit_on_error_false(start_server):
    server = start_server(['plain', 'broken'], extra_args=['--exit-on-error=false'], name='broken')
    start = time.monotonic()
    out = run_module(triton_health.main, {'url': server.http_url, 'models': ['plain', 'broken'], 'timeout': 60,
                                          'interval': 0.2, 'log_file': str(server.log), 'log_lines': 30,
                                          'pid': server.proc.pid})
    took = time.monotonic() - start
    assert out.failed
    r = out.result
    assert r['msg'].startswith('Triton at http://%s: model(s) failed to load' % server.http_url)
    assert 'broken (version 1): UNAVAILABLE: Internal: RuntimeError: toy load failure: engine file missing' in r['msg']
    assert took < 20
    assert r['live'] is True and r['ready'] is False
    plain, broken = r['models']
    assert plain['ready'] is True and plain['state'] == 'READY'
    assert broken['ready'] is False and broken['state'] == 'UNAVAILABLE' and broken['version'] == '1'
    assert 'toy load failure: engine file missing' in broken['reason']
    assert len(r['log_tail']) == 30
    assert r['log_load_failures'][0]['name'] == 'broken'
    # Triton stays up with --exit-on-error=false; the server is live but not ready (strict readiness)
    assert server.proc.poll() is None
    out = run_module(triton_health.main, {'url': server.grpc_url, 'protocol': 'grpc', 'models': ['plain'],
                                          'timeout': 0.5, 'interval': 0.1})
    assert out.failed
    assert out.result['msg'] == 'Triton at grpc://%s not ready within 0.5s: server live=True, ready=False' % (
        server.grpc_url)
    assert out.result['models'][0]['ready'] is True
    # what the repository index says, over both protocols
    import tritonclient.grpc as grpcclient
    import tritonclient.http as httpclient
    index = httpclient.InferenceServerClient(server.http_url).get_model_repository_index()
    broken_entry = [e for e in index if e['name'] == 'broken'][0]
    assert broken_entry['state'] == 'UNAVAILABLE' and broken_entry['version'] == '1'
    assert broken_entry['reason'].startswith('Internal: RuntimeError: toy load failure: engine file missing')
    index = grpcclient.InferenceServerClient(server.grpc_url).get_model_repository_index(as_json=True)
    assert [e for e in index['models'] if e['name'] == 'broken'][0]['state'] == 'UNAVAILABLE'
    assert server.proc.poll() is None


def test_load_failure_default_exit_on_error_and_pid(start_server):
    server = start_server(['plain', 'broken'], name='exits')
    out = run_module(triton_health.main, {'url': server.http_url, 'models': ['plain', 'broken'], 'timeout': 60,
                                          'interval': 0.2, 'log_file': str(server.log), 'pid': server.proc.pid})
    assert out.failed
    r = out.result
    assert r['msg'].startswith('tritonserver (pid %d) exited while waiting for http://%s'
                               % (server.proc.pid, server.http_url))
    assert 'load failures in the log: broken: Internal: RuntimeError: toy load failure: engine file missing' in r['msg']
    assert r['elapsed'] < 30
    assert r['live'] is False
    assert r['log_tail'][-1] == 'error: creating server: Internal - failed to load all models'
    assert server.proc.wait(timeout=10) == 1


def test_server_gone_without_pid_times_out_with_log(start_server):
    server = start_server(['broken'], name='gone')
    server.proc.wait(timeout=60)
    out = run_module(triton_health.main, {'url': server.http_url, 'models': ['broken'], 'timeout': 0.5,
                                          'interval': 0.1, 'log_file': str(server.log), 'log_lines': 5})
    assert out.failed
    msg = out.result['msg']
    assert msg.startswith('Triton at http://%s not reachable within 0.5s: ' % server.http_url)
    assert 'load failures in the log: broken: Internal: RuntimeError' in msg
    assert len(out.result['log_tail']) == 5


# --------------------------------------------------------------------------
# (c) a model that is slow to load
# --------------------------------------------------------------------------

@pytest.mark.parametrize('protocol', ['http', 'grpc'])
def test_slow_model_is_waited_for(start_server, protocol):
    server = start_server(['slow'], name='slow-' + protocol)
    url = server.http_url if protocol == 'http' else server.grpc_url
    start = time.monotonic()
    out = run_module(triton_health.main, {'url': url, 'protocol': protocol, 'models': ['slow'], 'timeout': 60,
                                          'interval': 0.1, 'log_file': str(server.log), 'pid': server.proc.pid})
    measured = time.monotonic() - start
    assert not out.failed, out.result['msg']
    r = out.result
    assert r['models'][0]['state'] == 'READY'
    # initialize sleeps 2 s; polling every 0.1 s notices readiness within a fraction of a second
    assert 2.0 <= r['elapsed'] <= measured
    assert measured - r['elapsed'] < 0.5
    assert r['elapsed'] != int(r['elapsed'])
    assert r['attempts'] >= 15
    assert r['elapsed'] < (time.monotonic() - server.started)


# --------------------------------------------------------------------------
# (d) triton_model: explicit model control
# --------------------------------------------------------------------------

def _explicit_server(start_server, models, name, extra_args=()):
    server = start_server(models, extra_args=['--model-control-mode=explicit'] + list(extra_args), name=name)
    # nothing is loaded at start in explicit mode, so the server is ready as soon as it listens
    out = run_module(triton_health.main, {'url': server.http_url, 'timeout': 60, 'interval': 0.1,
                                          'pid': server.proc.pid, 'log_file': str(server.log)})
    assert not out.failed, out.result['msg']
    return server


def _model(server, args, check_mode=False, protocol='http'):
    url = server.http_url if protocol == 'http' else server.grpc_url
    args = dict(args, url=url, protocol=protocol, _ansible_diff=True)
    return run_module(triton_model.main, args, check_mode=check_mode)


def _plain_answer(server):
    out = run_module(triton_infer.main, {'url': server.grpc_url, 'prompt': 'hi', 'model': 'plain'})
    return out.result['msg'] if out.failed else out.result['text']


def test_triton_model_load_unload_idempotent(start_server, tmp_path):
    server = _explicit_server(start_server, ['plain', 'slow'], 'explicit')
    out = _model(server, {'state': 'listed'})
    assert not out.failed, out.result['msg']
    assert out.result['changed'] is False
    assert sorted(e['name'] for e in out.result['index']) == ['plain', 'slow']
    assert all(e['state'] is None for e in out.result['index'])

    # check mode: reported, not done
    out = _model(server, {'name': 'plain'}, check_mode=True)
    assert not out.failed and out.result['changed'] is True
    assert out.result['diff'] == {'before': 'plain: not loaded\n', 'after': 'plain: READY\n'}
    assert out.result['model']['state'] is None

    out = _model(server, {'name': 'plain'})
    assert not out.failed, out.result['msg']
    assert out.result['changed'] is True
    assert out.result['model'] == {'name': 'plain', 'version': '1', 'state': 'READY', 'reason': '', 'ready': True}
    assert out.result['diff'] == {'before': 'plain: not loaded\n', 'after': 'plain version 1: READY\n'}
    assert _plain_answer(server) == 'plain: hi'

    # again, over gRPC: nothing to do
    out = _model(server, {'name': 'plain', 'version': '1'}, protocol='grpc')
    assert not out.failed and out.result['changed'] is False

    # a load answers when the model is loaded (slow sleeps 2 s in initialize)
    out = _model(server, {'name': 'slow', 'state': 'loaded'}, protocol='grpc')
    assert not out.failed, out.result['msg']
    assert out.result['changed'] is True and out.result['model']['ready'] is True
    assert out.result['elapsed'] >= 2

    out = _model(server, {'name': 'plain', 'state': 'reloaded'})
    assert not out.failed and out.result['changed'] is True
    assert out.result['diff']['after'] == 'plain version 1: READY (reloaded)\n'

    out = _model(server, {'name': 'plain', 'state': 'unloaded'}, check_mode=True)
    assert not out.failed and out.result['changed'] is True
    assert out.result['model']['state'] == 'READY'
    assert _plain_answer(server) == 'plain: hi'

    # Triton unloads in the background; the module waits until the model has left
    out = _model(server, {'name': 'plain', 'state': 'unloaded'})
    assert not out.failed, out.result['msg']
    assert out.result['changed'] is True
    assert out.result['model'] == {'name': 'plain', 'version': '1', 'state': 'UNAVAILABLE', 'reason': 'unloaded',
                                   'ready': False}
    assert "Request for unknown model: 'plain' has no available versions" in _plain_answer(server)
    out = _model(server, {'name': 'plain', 'state': 'unloaded'}, protocol='grpc')
    assert not out.failed and out.result['changed'] is False

    # through the ansible CLI (AnsiballZ), check mode
    rc, result, text = run_ansible(tmp_path, 'triton_model', {'url': server.http_url, 'name': 'plain'}, check=True)
    assert rc == 0, text
    assert result['changed'] is True and result['model']['state'] == 'UNAVAILABLE'


def test_triton_model_failed_reload_keeps_serving(start_server, tmp_path):
    # After a failed reload of a Python-backend model tritonserver's shutdown waits out --exit-timeout-secs
    # (30 s by default) for a connection it still counts; a short one keeps the test fast.
    server = _explicit_server(start_server, ['plain', 'broken'], 'reload', extra_args=['--exit-timeout-secs=3'])
    repo = tmp_path / 'reload-repo'
    out = _model(server, {'name': 'plain'})
    assert not out.failed, out.result['msg']

    # a broken config.pbtxt: Triton refuses the reload, its answer does not say why (the log does),
    # and version 1 keeps serving
    (repo / 'plain' / 'config.pbtxt').write_text(u'backend: "python"\ninput [ { name: "x" data_type: TYPE_NOPE } ]\n')
    out = _model(server, {'name': 'plain', 'state': 'reloaded', 'log_file': str(server.log)})
    assert out.failed
    assert out.result['msg'] == (
        "Triton at http://%s did not load model plain: failed to load 'plain', failed to poll from model repository; "
        "the log says: cannot read model directory 'plain': failed to read text proto from %s; "
        "now plain (version 1): READY (the versions loaded before keep serving)"
        % (server.http_url, repo / 'plain' / 'config.pbtxt'))
    assert out.result['changed'] is False and out.result['model']['ready'] is True
    assert _plain_answer(server) == 'plain: hi'

    # a model.py that raises in initialize, over gRPC: Triton's answer has the exception
    (repo / 'plain' / 'config.pbtxt').write_text(textwrap.dedent(PLAIN_CONFIG))
    (repo / 'plain' / '1' / 'model.py').write_text(textwrap.dedent(BROKEN_MODEL))
    out = _model(server, {'name': 'plain', 'state': 'reloaded'}, protocol='grpc')
    assert out.failed
    msg = out.result['msg']
    assert msg.startswith("Triton at grpc://%s did not load model plain: load failed for model 'plain': version 1 is "
                          "at UNAVAILABLE state: Internal: RuntimeError: toy load failure: engine file missing At: "
                          % server.grpc_url), msg
    assert msg.endswith('; now plain (version 1): READY (the versions loaded before keep serving)'), msg
    assert _plain_answer(server) == 'plain: hi'

    # a first load that fails leaves the model UNAVAILABLE with the reason
    out = _model(server, {'name': 'broken'})
    assert out.failed
    assert 'now broken (version 1): UNAVAILABLE: Internal: RuntimeError: toy load failure' in out.result['msg']
    assert out.result['model']['state'] == 'UNAVAILABLE' and out.result['model']['ready'] is False
    assert server.proc.poll() is None


def test_triton_model_refused_without_explicit_mode(start_server):
    server = start_server(['plain'], name='none-mode')
    out = run_module(triton_health.main, {'url': server.http_url, 'models': ['plain'], 'timeout': 60,
                                          'pid': server.proc.pid})
    assert not out.failed, out.result['msg']
    out = _model(server, {'name': 'plain', 'state': 'reloaded'})
    assert out.failed
    assert out.result['msg'] == (
        'Triton at http://%s did not load model plain: explicit model load / unload is not allowed if polling is '
        'enabled (the server must run with --model-control-mode=explicit); now plain (version 1): READY (the '
        'versions loaded before keep serving)' % server.http_url)
    # ready already: loaded asks nothing, so it passes in any mode
    out = _model(server, {'name': 'plain'})
    assert not out.failed and out.result['changed'] is False
