# -*- coding: utf-8 -*-
# Copyright: (c) 2026, tritonfleet maintainers
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Unit tests for triton_health and the shared helpers in module_utils/triton.py (mocked clients)."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import subprocess
import sys
import time
from unittest import mock

import pytest


from ansible_collections.tritonfleet.serving.plugins.module_utils import processes
from ansible_collections.tritonfleet.serving.plugins.module_utils import triton_client as tu
from ansible_collections.tritonfleet.serving.plugins.modules import triton_health
from ansible_collections.tritonfleet.serving.tests.unit.utils.ansible_module_harness import run_module


def run_health(args, check_mode=False, client=None):
    if client is None:
        return run_module(triton_health.main, args, check_mode)

    def factory(protocol, url, request_timeout=5.0, verbose=False):
        client.made_with = (protocol, url, request_timeout)
        return client

    with mock.patch.object(triton_health, 'make_client', side_effect=factory):
        return run_module(triton_health.main, args, check_mode)


class FakeClient(object):
    """A scripted TritonClient: each attribute may be a value, a list (one per call, last repeats) or an exception."""

    def __init__(self, live=True, ready=True, models=None, index=None, metadata=None, request_timeout=5.0,
                 index_seq=None):
        self.request_timeout = request_timeout
        self._live = live
        self._ready = ready
        self._models = models or {}
        # index: one repository index for every call; index_seq: one per call (the last repeats)
        self._index = index_seq if index_seq is not None else [index if index is not None else []]
        self._metadata = metadata or {'name': 'triton', 'version': '2.51.0', 'extensions': ['model_repository']}
        self.calls = []
        self.closed = False
        self.timeouts = []

    @staticmethod
    def _next(value, key):
        if isinstance(value, list):
            value = value.pop(0) if len(value) > 1 else value[0]
        if isinstance(value, Exception):
            raise value
        if callable(value):
            return value()
        return value

    def live(self, timeout=None):
        self.calls.append('live')
        self.timeouts.append(timeout)
        return self._next(self._live, 'live')

    def ready(self, timeout=None):
        self.calls.append('ready')
        return self._next(self._ready, 'ready')

    def server_metadata(self, timeout=None):
        self.calls.append('metadata')
        return dict(self._metadata)

    def repository_index(self, timeout=None):
        self.calls.append('index')
        return tu.normalize_repository_index(self._next(self._index, 'index'))

    def model_ready(self, name, version='', timeout=None):
        self.calls.append(('model_ready', name, version))
        return self._next(self._models.get(name, False), name)

    def close(self):
        self.closed = True


READY_INDEX = [
    {'name': 'ensemble', 'version': '1', 'state': 'READY'},
    {'name': 'tensorrt_llm', 'version': '1', 'state': 'READY'},
]


# --------------------------------------------------------------------------
# module_utils: URLs
# --------------------------------------------------------------------------

@pytest.mark.parametrize('url, protocol, expected, ssl', [
    ('127.0.0.1:8000', 'http', 'http://127.0.0.1:8000', False),
    ('http://127.0.0.1:8000', 'http', 'http://127.0.0.1:8000', False),
    ('http://127.0.0.1:8000/', 'http', 'http://127.0.0.1:8000', False),
    ('HTTP://localhost:9000', 'http', 'http://localhost:9000', False),
    ('https://triton.example:443/', 'http', 'https://triton.example:443', True),
    ('triton.example', 'http', 'http://triton.example:8000', False),
    ('http://proxy:80/triton/', 'http', 'http://proxy:80/triton', False),
    ('127.0.0.1:8001', 'grpc', 'grpc://127.0.0.1:8001', False),
    ('http://127.0.0.1:8001', 'grpc', 'grpc://127.0.0.1:8001', False),
    ('grpc://10.0.0.1', 'grpc', 'grpc://10.0.0.1:8001', False),
    ('grpcs://10.0.0.1:9443', 'grpc', 'grpcs://10.0.0.1:9443', True),
    ('[::1]:8000', 'http', 'http://[::1]:8000', False),
    ('http://[::1]', 'http', 'http://[::1]:8000', False),
    (None, 'http', 'http://127.0.0.1:8000', False),
    ('', 'grpc', 'grpc://127.0.0.1:8001', False),
    ('  127.0.0.1:8000  ', 'http', 'http://127.0.0.1:8000', False),
])
def test_normalize_url(url, protocol, expected, ssl):
    endpoint = tu.normalize_url(url, protocol)
    assert endpoint.base_url == expected
    assert endpoint.ssl is ssl
    assert '://' not in endpoint.address


@pytest.mark.parametrize('url, protocol', [
    ('ftp://host:1', 'http'),
    ('host:notaport', 'http'),
    ('host:70000', 'http'),
    ('grpc://host:8001/path', 'grpc'),
    ('::1:8000', 'http'),
    ('http://:8000', 'http'),
    ('[::1', 'http'),
])
def test_normalize_url_rejects(url, protocol):
    with pytest.raises(ValueError):
        tu.normalize_url(url, protocol)


def test_client_wrapper_grpc_passes_client_timeout():
    raw = mock.MagicMock()
    raw.is_server_live.return_value = True
    raw.get_model_repository_index.return_value = {'models': [
        {'name': 'm', 'version': '1', 'state': 'UNAVAILABLE', 'reason': 'boom'}, {'name': 'unloaded'}]}
    raw.get_server_metadata.return_value = {'name': 'triton', 'version': '2.51.0', 'extensions': ['a']}
    with mock.patch.object(tu.triton_grpc, 'InferenceServerClient', return_value=raw) as ctor:
        client = tu.make_client('grpc', 'http://127.0.0.1:8001/', request_timeout=3.0)
    ctor.assert_called_once_with(url='127.0.0.1:8001', verbose=False, ssl=False)
    assert client.live() is True
    raw.is_server_live.assert_called_with(client_timeout=3.0)
    client.model_ready('m', 2, timeout=0.5)
    raw.is_model_ready.assert_called_with('m', '2', client_timeout=0.5)
    assert client.repository_index() == [
        {'name': 'm', 'version': '1', 'state': 'UNAVAILABLE', 'reason': 'boom'},
        {'name': 'unloaded', 'version': None, 'state': None, 'reason': ''}]
    assert client.server_metadata()['extensions'] == ['a']


def test_client_wrapper_http_builds_client_without_scheme():
    raw = mock.MagicMock()
    raw.get_model_repository_index.return_value = [{'name': 'm', 'version': '1', 'state': 'READY'}]
    with mock.patch.object(tu.triton_http, 'InferenceServerClient', return_value=raw) as ctor:
        client = tu.make_client('http', 'https://host:8443/', request_timeout=2.0)
    ctor.assert_called_once_with(url='host:8443', verbose=False, ssl=True,
                                 connection_timeout=2.0, network_timeout=2.0)
    assert client.repository_index()[0]['state'] == 'READY'
    client.model_ready('m')
    raw.is_model_ready.assert_called_with('m', '')


# --------------------------------------------------------------------------
# module_utils: polling, model states, logs, processes
# --------------------------------------------------------------------------

class FakeClock(object):
    def __init__(self):
        self.now = 100.0
        self.sleeps = []

    def __call__(self):
        return self.now

    def sleep(self, seconds):
        self.sleeps.append(seconds)
        self.now += seconds


def test_poll_until_succeeds_after_some_attempts():
    clock = FakeClock()
    answers = iter([False, False, 'yes'])
    result = tu.poll_until(lambda: next(answers), timeout=10, interval=0.25, clock=clock, sleep=clock.sleep)
    assert result.ok and result.value == 'yes'
    assert result.attempts == 3
    assert clock.sleeps == [0.25, 0.25]
    assert result.elapsed == pytest.approx(0.5)


def test_poll_until_never_sleeps_past_the_deadline():
    clock = FakeClock()
    result = tu.poll_until(lambda: None, timeout=1.0, interval=0.4, clock=clock, sleep=clock.sleep)
    assert not result.ok
    assert clock.sleeps == [0.4, 0.4, pytest.approx(0.2)]
    assert result.elapsed == pytest.approx(1.0)
    assert result.attempts == 4


def test_poll_until_runs_once_and_propagates_exceptions():
    def check():
        raise KeyError('stop')
    with pytest.raises(KeyError):
        tu.poll_until(check, timeout=0)
    with pytest.raises(ValueError):
        tu.poll_until(lambda: True, interval=0.1)
    with pytest.raises(ValueError):
        tu.poll_until(lambda: True, timeout=1, interval=0)


def test_poll_until_real_clock_is_subsecond():
    start = time.monotonic()
    result = tu.poll_until(lambda: time.monotonic() - start > 0.3, timeout=5, interval=0.05)
    assert result.ok
    assert 0.3 <= result.elapsed < 0.6
    assert result.attempts >= 5


def test_model_status_picks_ready_version_then_load_error():
    index = tu.normalize_repository_index([
        {'name': 'llm', 'version': '1', 'state': 'UNAVAILABLE', 'reason': 'unloaded'},
        {'name': 'llm', 'version': '2', 'state': 'READY'},
        {'name': 'llm', 'version': '10', 'state': 'READY'},
        {'name': 'bad', 'version': '3', 'state': 'UNAVAILABLE', 'reason': 'unloaded'},
        {'name': 'bad', 'version': '2', 'state': 'UNAVAILABLE', 'reason': 'load failed: no engine'},
        {'name': 'listed'},
    ])
    assert tu.model_status(index, 'llm') == {'name': 'llm', 'version': '10', 'state': 'READY', 'reason': ''}
    assert tu.model_status(index, 'llm', 1)['state'] == 'UNAVAILABLE'
    bad = tu.model_status(index, 'bad')
    assert (bad['version'], bad['reason']) == ('2', 'load failed: no engine')
    assert tu.is_load_failure(bad)
    assert not tu.is_load_failure(tu.model_status(index, 'bad', '3'))
    listed = tu.model_status(index, 'listed')
    assert listed['state'] is None and listed['version'] is None
    missing = tu.model_status(index, 'ghost')
    assert missing['state'] is None and 'not in the model repository index' in missing['reason']
    assert 'index not available' in tu.model_status(None, 'llm')['reason']


def test_describe_model_collapses_tracebacks():
    text = tu.describe_model({'name': 'tensorrt_llm', 'version': '1', 'state': 'UNAVAILABLE',
                              'reason': 'load failed:\n  engine missing\n\nAt:\n  x.py(3)'})
    assert text == 'tensorrt_llm (version 1): UNAVAILABLE: load failed: engine missing At: x.py(3)'
    assert tu.describe_model({'name': 'm', 'version': None, 'state': None, 'reason': ''}) == 'm: no state'


def test_tail_file_is_bytes_safe(tmp_path):
    log = tmp_path / 'triton.log'
    body = b''.join(b'line %d \xff\xfe caf\xc3\xa9\n' % i for i in range(5000))
    log.write_bytes(body + b'last line without newline')
    tail = processes.tail_file(str(log), 3, block_size=64)
    assert tail == [u'line 4998 \ufffd\ufffd caf\xe9', u'line 4999 \ufffd\ufffd caf\xe9', u'last line without newline']
    assert len(processes.tail_file(str(log), 4000)) == 4000
    assert processes.tail_file(str(log), 0) == []
    # capped read: never more than max_bytes, first (cut) line dropped
    capped = processes.tail_file(str(log), 4000, max_bytes=1000)
    assert 0 < len(capped) < 100 and capped[-1] == 'last line without newline'
    small = tmp_path / 'small.log'
    small.write_bytes(b'a\r\nb\r\n')
    assert processes.tail_file(str(small), 10) == ['a', 'b']
    empty = tmp_path / 'empty.log'
    empty.write_bytes(b'')
    assert processes.tail_file(str(empty), 10) == []
    with pytest.raises((IOError, OSError)):
        processes.tail_file(str(tmp_path / 'missing.log'), 10)


def test_log_load_failures_parses_triton_lines():
    lines = [
        'I1125 10:06:27.501348 3801 model_lifecycle.cc:777] "failed to load \'broken\'"',
        'E1125 10:06:27.501329 3801 model_lifecycle.cc:642] "failed to load \'broken\' version 1: '
        'Internal: RuntimeError: toy\\n\\nAt:\\n  model.py(3): initialize\\n"',
        'E1125 10:06:28.0 1 model_lifecycle.cc:642] "failed to load \'tensorrt_llm\' version 2: Invalid argument: x"',
    ]
    found = tu.log_load_failures(lines)
    assert [f['name'] for f in found] == ['broken', 'tensorrt_llm']
    assert found[0]['version'] == '1'
    assert found[0]['reason'].startswith('Internal: RuntimeError: toy\n\nAt:')
    assert found[1]['reason'] == 'Invalid argument: x'


def test_process_running_sees_zombies_and_reaped_processes():
    assert processes.process_running(subprocess.os.getpid())
    proc = subprocess.Popen([sys.executable, '-c', 'pass'])
    deadline = time.monotonic() + 10
    while processes.process_running(proc.pid) and time.monotonic() < deadline:
        time.sleep(0.02)  # exits, then stays a zombie until reaped
    assert not processes.process_running(proc.pid)
    proc.wait()
    assert not processes.process_running(proc.pid)


# --------------------------------------------------------------------------
# the module
# --------------------------------------------------------------------------

def test_parse_models_forms():
    assert triton_health.parse_models(['ensemble', {'name': 'tensorrt_llm', 'version': 2},
                                       {'name': 'pre', 'version': '3'}, {'name': 'post'}]) == [
        {'name': 'ensemble', 'version': None}, {'name': 'tensorrt_llm', 'version': '2'},
        {'name': 'pre', 'version': '3'}, {'name': 'post', 'version': None}]


@pytest.mark.parametrize('item', [
    {'version': 1}, {'name': ''}, {'name': 'x', 'version': 'latest'}, {'name': 'x', 'version': -1},
    {'name': 'x', 'versoin': 1}, 3, True, {'name': 'x', 'version': True},
])
def test_parse_models_rejects(item):
    with pytest.raises(ValueError):
        triton_health.parse_models([item])


def test_ready_server_and_models():
    client = FakeClient(models={'ensemble': True, 'tensorrt_llm': True}, index=READY_INDEX)
    out = run_health({'url': 'http://127.0.0.1:8000/', 'models': ['ensemble', {'name': 'tensorrt_llm', 'version': 1}]},
                     client=client)
    assert not out.failed
    r = out.result
    assert r['changed'] is False
    assert r['live'] is True and r['ready'] is True
    assert r['url'] == 'http://127.0.0.1:8000' and r['protocol'] == 'http'
    assert r['models'] == [
        {'name': 'ensemble', 'version': '1', 'state': 'READY', 'reason': '', 'ready': True},
        {'name': 'tensorrt_llm', 'version': '1', 'state': 'READY', 'reason': '', 'ready': True}]
    assert r['server'] == {'name': 'triton', 'version': '2.51.0', 'extensions': ['model_repository']}
    assert isinstance(r['elapsed'], float) and r['elapsed'] < 1
    assert r['attempts'] == 1
    assert ('model_ready', 'tensorrt_llm', '1') in client.calls
    assert client.closed
    assert client.made_with[0] == 'http' and client.made_with[2] == 5.0
    assert 'log_tail' not in r


def test_grpc_default_url_and_check_mode_runs_the_same():
    client = FakeClient(models={'ensemble': True}, index=READY_INDEX)
    out = run_health({'protocol': 'grpc', 'models': ['ensemble']}, check_mode=True, client=client)
    assert not out.failed
    assert out.result['url'] == 'grpc://127.0.0.1:8001'
    assert out.result['changed'] is False
    assert 'live' in client.calls and ('model_ready', 'ensemble', '') in client.calls


def test_waits_until_reachable_and_ready():
    refused = ConnectionRefusedError(111, 'Connection refused')
    client = FakeClient(live=[refused, refused, refused, True], ready=[False, True],
                        models={'ensemble': [False, True]},
                        index_seq=[[{'name': 'ensemble', 'version': '1', 'state': 'LOADING'}], READY_INDEX])
    out = run_health({'url': '127.0.0.1:8000', 'models': ['ensemble'], 'interval': 0.05, 'timeout': 10},
                     client=client)
    assert not out.failed
    assert out.result['attempts'] == 5
    assert 0.15 <= out.result['elapsed'] < 2


def test_per_request_timeout_never_exceeds_time_left():
    client = FakeClient(live=False, request_timeout=30.0)
    out = run_health({'url': '127.0.0.1:8000', 'timeout': 0.3, 'interval': 0.1, 'request_timeout': 30},
                     client=client)
    assert out.failed
    assert max(client.timeouts) <= 0.3
    assert out.result['msg'] == ('Triton at http://127.0.0.1:8000 not live within 0.3s: server not live')


def test_timeout_names_url_models_states_and_log_tail(tmp_path):
    log = tmp_path / 'triton.log'
    log.write_text(u''.join(u'log line %d\n' % i for i in range(100)))
    client = FakeClient(ready=False, models={'ensemble': False, 'tensorrt_llm': False},
                        index=[{'name': 'ensemble', 'version': '1', 'state': 'LOADING'},
                               {'name': 'tensorrt_llm', 'version': '1', 'state': 'UNLOADING', 'reason': ''}])
    out = run_health({'url': '10.1.2.3:8000', 'models': ['ensemble', 'tensorrt_llm'], 'timeout': 0.3,
                      'interval': 0.1, 'log_file': str(log), 'log_lines': 5}, client=client)
    assert out.failed
    msg = out.result['msg']
    assert msg.startswith('Triton at http://10.1.2.3:8000 not ready within 0.3s: server live=True, ready=False')
    assert 'ensemble (version 1): LOADING' in msg
    assert 'tensorrt_llm (version 1): UNLOADING' in msg
    assert out.result['log_tail'] == ['log line %d' % i for i in range(95, 100)]
    assert [m['state'] for m in out.result['models']] == ['LOADING', 'UNLOADING']
    assert out.result['elapsed'] >= 0.3
    assert out.result['changed'] is False


def test_load_failure_fails_fast_with_state_and_reason(tmp_path):
    log = tmp_path / 'triton.log'
    log.write_text(u'E1125 model_lifecycle.cc:642] "failed to load \'tensorrt_llm\' version 1: load failed"\n')
    client = FakeClient(ready=False, models={'ensemble': False, 'tensorrt_llm': False, 'preprocessing': True},
                        index=[{'name': 'tensorrt_llm', 'version': '1', 'state': 'UNAVAILABLE',
                                'reason': 'load failed: [TensorRT-LLM][ERROR] engine file\nnot found'},
                               {'name': 'ensemble', 'version': '1', 'state': 'UNAVAILABLE',
                                'reason': 'load failed: dependency tensorrt_llm not ready'},
                               {'name': 'preprocessing', 'version': '1', 'state': 'READY'}])
    out = run_health({'models': ['preprocessing', 'tensorrt_llm', 'ensemble'], 'timeout': 60,
                      'log_file': str(log)}, client=client)
    assert out.failed
    msg = out.result['msg']
    assert msg.startswith('Triton at http://127.0.0.1:8000: model(s) failed to load')
    assert 'tensorrt_llm (version 1): UNAVAILABLE: load failed: [TensorRT-LLM][ERROR] engine file not found' in msg
    assert 'ensemble (version 1): UNAVAILABLE: load failed: dependency' in msg
    assert 'preprocessing' not in msg
    assert out.result['elapsed'] < 5
    assert out.result['log_tail'][0].startswith('E1125')
    assert out.result['log_load_failures'][0]['name'] == 'tensorrt_llm'
    assert [m['ready'] for m in out.result['models']] == [True, False, False]


def test_fail_fast_off_waits_for_timeout():
    client = FakeClient(ready=False, models={'m': False},
                        index=[{'name': 'm', 'version': '1', 'state': 'UNAVAILABLE', 'reason': 'boom'}])
    out = run_health({'models': ['m'], 'timeout': 0.3, 'interval': 0.05, 'fail_fast': False}, client=client)
    assert out.failed
    assert 'not ready within 0.3s' in out.result['msg'] and 'm (version 1): UNAVAILABLE: boom' in out.result['msg']
    assert out.result['attempts'] > 2


def test_unloaded_versions_do_not_fail_fast():
    client = FakeClient(models={'m': [False, True]},
                        index_seq=[[{'name': 'm', 'version': '1', 'state': 'UNAVAILABLE', 'reason': 'unloaded'}],
                                   [{'name': 'm', 'version': '2', 'state': 'READY'}]])
    out = run_health({'models': ['m'], 'timeout': 5, 'interval': 0.05}, client=client)
    assert not out.failed and out.result['models'][0]['version'] == '2'


def test_unreachable_reports_last_error_and_missing_log(tmp_path):
    client = FakeClient(live=ConnectionRefusedError(111, 'Connection refused'))
    out = run_health({'url': '127.0.0.1:18999', 'models': ['ensemble'], 'timeout': 0.2, 'interval': 0.05,
                      'log_file': str(tmp_path / 'nope.log')}, client=client)
    assert out.failed
    msg = out.result['msg']
    assert msg.startswith('Triton at http://127.0.0.1:18999 not reachable within 0.2s: ')
    assert 'Connection refused' in msg
    assert 'models not ready: ensemble' in msg
    assert 'cannot read log' in msg
    assert out.result['log_tail'] == []
    assert out.result['live'] is False
    assert out.result['models'][0] == {'name': 'ensemble', 'version': None, 'state': None,
                                       'reason': 'server not reachable', 'ready': False}


def test_server_not_ready_without_models():
    client = FakeClient(ready=False)
    out = run_health({'timeout': 0.2, 'interval': 0.05}, client=client)
    assert out.failed
    assert 'server live=True, ready=False' in out.result['msg']


@pytest.mark.parametrize('reap', [False, True])
def test_process_died_fails_at_once(tmp_path, reap):
    log = tmp_path / 'triton.log'
    log.write_text(u'E1125 1 model_lifecycle.cc:642] "failed to load \'tensorrt_llm\' version 1: '
                   u'Internal: engine not found"\nerror: creating server: Internal - failed to load all models\n')
    proc = subprocess.Popen([sys.executable, '-c', 'pass'])
    if reap:
        proc.wait()
    else:
        deadline = time.monotonic() + 10
        while processes.process_running(proc.pid) and time.monotonic() < deadline:
            time.sleep(0.02)
    client = FakeClient(live=ConnectionRefusedError(111, 'Connection refused'))
    try:
        out = run_health({'models': ['tensorrt_llm'], 'timeout': 60, 'pid': proc.pid, 'log_file': str(log)},
                         client=client)
    finally:
        proc.wait()
    assert out.failed
    msg = out.result['msg']
    assert msg.startswith('tritonserver (pid %d) exited while waiting for http://127.0.0.1:8000' % proc.pid)
    assert "load failures in the log: tensorrt_llm: Internal: engine not found" in msg
    assert out.result['elapsed'] < 5
    assert out.result['log_tail'][-1] == 'error: creating server: Internal - failed to load all models'


def test_live_process_keeps_waiting_until_ready():
    client = FakeClient(live=[False, False, True])
    out = run_health({'timeout': 5, 'interval': 0.05, 'pid': subprocess.os.getpid()}, client=client)
    assert not out.failed and out.result['attempts'] == 3


@pytest.mark.parametrize('args, text', [
    ({'models': [{'version': 1}]}, 'needs a model name'),
    ({'timeout': 0}, 'timeout must be greater than 0'),
    ({'interval': -1}, 'interval must be greater than 0'),
    ({'url': 'ftp://x'}, 'unsupported URL scheme'),
    ({'protocol': 'grpc', 'url': 'grpc://h:1/p'}, 'cannot have a path'),
    ({'pid': 0}, 'pid must be a positive integer'),
    ({'log_lines': -1}, 'log_lines must not be negative'),
    ({'protocol': 'tcp'}, 'value of protocol must be one of'),
])
def test_bad_arguments(args, text):
    client = FakeClient()
    out = run_health(args, client=client)
    assert out.failed and text in out.result['msg']
    assert client.calls == []


def test_missing_tritonclient_reports_missing_lib():
    with mock.patch.object(tu, 'HAS_TRITONCLIENT_GRPC', False):
        out = run_health({'protocol': 'grpc'}, client=FakeClient())
    assert out.failed and 'tritonclient[grpc]' in out.result['msg']
