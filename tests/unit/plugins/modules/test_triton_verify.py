# -*- coding: utf-8 -*-
# Copyright: (c) 2026, tritonfleet maintainers
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Unit tests for triton_verify and module_utils/triton_verify.py (fakes of the client layer)."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import contextlib
import threading
from unittest import mock

import pytest

from ansible_collections.tritonfleet.serving.plugins.module_utils import triton_client as tc
from ansible_collections.tritonfleet.serving.plugins.module_utils import triton_generate as tg
from ansible_collections.tritonfleet.serving.plugins.module_utils import triton_verify as tv
from ansible_collections.tritonfleet.serving.plugins.modules import triton_verify
from ansible_collections.tritonfleet.serving.tests.unit.utils.ansible_module_harness import run_module

MODELS = ['preprocessing', 'tensorrt_llm', 'postprocessing', 'ensemble']
READY_INDEX = [{'name': name, 'version': '1', 'state': 'READY'} for name in MODELS]


def layout(count=2, **extra):
    servers = []
    for i in range(count):
        server = {'name': 'triton%d' % i, 'http_port': 8000 + 10 * i, 'grpc_port': 8001 + 10 * i,
                  'metrics_port': 8002 + 10 * i, 'runtime': 'process', 'log_dir': '/nonexistent', 'load_models': []}
        server.update(extra)
        servers.append(server)
    return servers


class FakeClient(object):
    """A TritonClient answering from a repository index; ``down`` makes live() raise."""

    def __init__(self, url, index=None, down=False, request_timeout=5.0):
        self.url = url
        self.index = READY_INDEX if index is None else index
        self.down = down
        self.request_timeout = request_timeout
        self.closed = False
        self.asked = []

    def live(self, timeout=None):
        if self.down:
            raise ConnectionRefusedError('connection refused')
        return True

    def ready(self, timeout=None):
        return all(e['state'] == 'READY' for e in self.index)

    def repository_index(self, timeout=None):
        return tc.normalize_repository_index(self.index)

    def model_ready(self, name, version='', timeout=None):
        self.asked.append(name)
        return any(e['name'] == name and e['state'] == 'READY' for e in self.index)

    def close(self):
        self.closed = True


class Fleet(object):
    """Fakes for every server: health clients, answers and request counters, keyed by port."""

    def __init__(self, text='Paris is a city', index=None, down=(), counting=True, barrier=None):
        self.text = text
        self.index = index
        self.down = set(down)
        self.counting = counting
        self.barrier = barrier
        self.counters = {}
        self.clients = []
        self.sent = []
        self.lock = threading.Lock()

    def make_client(self, protocol, url, request_timeout=5.0, verbose=False):
        client = FakeClient(url, index=self.index, down=url.rsplit(':', 1)[1] in self.down,
                            request_timeout=request_timeout)
        self.clients.append((protocol, client))
        return client

    def _answer(self, protocol, endpoint, inputs, stream):
        if self.barrier is not None:
            self.barrier.wait()  # every server's request is in flight at once, or this times out
        with self.lock:
            self.sent.append((protocol, endpoint.base_url, dict((i.name, i.value) for i in inputs), stream))
            if self.counting:
                metrics_port = endpoint.port + (1 if protocol == 'grpc' else 2)
                self.counters[metrics_port] = self.counters.get(metrics_port, 0) + 1
        result = tg.GenerationResult()
        if isinstance(self.text, Exception):
            raise self.text
        for piece in (self.text.split(' ') if stream else [self.text]):
            result.add(piece)
        result.finish(True)
        return result

    def grpc_generate(self, endpoint, model, inputs, timeout, **kwargs):
        stream = dict((i.name, i.value) for i in inputs).get('stream', False)
        return self._answer('grpc', endpoint, inputs, stream)

    def http_generate(self, endpoint, model, inputs, timeout, stream=False, **kwargs):
        return self._answer('http', endpoint, inputs, stream)

    def scrape_metrics(self, url, timeout):
        port = int(url.split(':')[2].split('/')[0])
        value = self.counters.get(port, 3)
        self.counters.setdefault(port, 3)
        return ('# TYPE nv_inference_request_success counter\n'
                'nv_inference_request_success{model="ensemble",version="1"} %s\n'
                'nv_inference_request_success{model="preprocessing",version="1"} 99\n' % value)


@contextlib.contextmanager
def patched(fleet):
    with mock.patch.object(tv, 'make_client', side_effect=fleet.make_client), \
            mock.patch.object(tv, 'grpc_generate', side_effect=fleet.grpc_generate), \
            mock.patch.object(tv, 'http_generate', side_effect=fleet.http_generate), \
            mock.patch.object(tv, 'scrape_metrics', side_effect=fleet.scrape_metrics), \
            mock.patch.object(triton_verify, 'require_tritonclient'):
        yield


def run_verify(args, fleet=None, check_mode=False):
    fleet = fleet or Fleet()
    base = {'servers': layout(), 'models': MODELS, 'prompt': 'The capital of France is', 'health_timeout': 1,
            'interval': 0.01}
    base.update(args)
    with patched(fleet):
        return run_module(triton_verify.main, base, check_mode)


def test_all_servers_pass_with_answers_and_counters():
    fleet = Fleet()
    out = run_verify({}, fleet)
    assert not out.failed, out.result
    r = out.result
    assert r['changed'] is False and r['failed_servers'] == []
    assert [s['name'] for s in r['servers']] == ['triton0', 'triton1']
    for i, server in enumerate(r['servers']):
        assert server['failed'] is False and server['stage'] is None and server['msg'] == ''
        assert server['ready'] and server['live']
        assert [m['state'] for m in server['models']] == ['READY'] * 4
        assert server['grpc']['text'] == 'Paris is a city'.replace(' ', '')  # streamed pieces joined
        assert server['grpc']['responses'] == 4 and server['grpc']['stream'] is True
        assert server['http']['text'] == 'Paris is a city' and server['http']['stream'] is False
        assert server['counter_before'] == 3 and server['counter_after'] == 5
        assert server['grpc_address'] == '127.0.0.1:%d' % (8001 + 10 * i)
        assert server['metrics_url'] == 'http://127.0.0.1:%d/metrics' % (8002 + 10 * i)
    assert all(client.closed for dummy, client in fleet.clients)
    assert sorted(p for p, c in fleet.clients) == ['grpc', 'grpc']
    grpc_sends = [s for s in fleet.sent if s[0] == 'grpc']
    assert grpc_sends[0][2] == {'text_input': 'The capital of France is', 'max_tokens': 16, 'stream': True}
    http_sends = [s for s in fleet.sent if s[0] == 'http']
    assert http_sends[0][2]['stream'] is False and http_sends[0][3] is False


def test_servers_are_checked_concurrently():
    # Each fake request waits until the other server's request arrives: a serial run would time out.
    fleet = Fleet(barrier=threading.Barrier(2, timeout=5))
    out = run_verify({'http_request': False}, fleet)
    assert not out.failed, out.result


def test_no_stream_no_http_and_no_metrics():
    fleet = Fleet(counting=False)
    out = run_verify({'stream': False, 'http_request': False, 'assert_metrics': False,
                      'servers': layout(1, metrics_port=None)}, fleet)
    assert not out.failed, out.result
    server = out.result['servers'][0]
    assert server['http'] is None and server['counter_before'] is None
    assert [s[0] for s in fleet.sent] == ['grpc']
    assert fleet.sent[0][2]['stream'] is False and server['grpc']['responses'] == 1


def test_load_failure_names_the_model_and_reads_the_log_on_the_host(tmp_path):
    (tmp_path / 'triton0.log').write_text(
        'I1202 loading\nE1202 model_lifecycle.cc:1] failed to load \'tensorrt_llm\' version 1: '
        'Internal: /nonexistent/engine not found\n')
    index = [dict(e) for e in READY_INDEX]
    index[1] = {'name': 'tensorrt_llm', 'version': '1', 'state': 'UNAVAILABLE',
                'reason': 'Internal: /nonexistent/engine not found'}
    fleet = Fleet(index=index)
    out = run_verify({'servers': layout(1, log_dir=str(tmp_path)), 'read_logs': True}, fleet)
    assert out.failed
    server = out.result['servers'][0]
    assert server['failed'] and server['stage'] == 'health'
    assert 'tensorrt_llm (version 1): UNAVAILABLE: Internal: /nonexistent/engine' in server['msg']
    assert 'load failures in the log' in server['msg']
    assert any('nonexistent' in line for line in server['log_tail'])
    assert out.result['failed_servers'] == ['triton0']
    assert 'triton0' in out.result['msg']
    assert fleet.sent == []  # nothing sent to a server that is not ready


def test_logs_are_not_read_off_the_host_or_for_containers(tmp_path):
    (tmp_path / 'triton0.log').write_text('line\n')
    fleet = Fleet(down=['8001'])
    out = run_verify({'servers': layout(1, log_dir=str(tmp_path))}, fleet)
    assert out.failed and out.result['servers'][0]['log_tail'] == []
    out = run_verify({'servers': layout(1, log_dir=str(tmp_path), runtime='docker'), 'read_logs': True}, Fleet(down=['8001']))
    assert out.failed and out.result['servers'][0]['log_tail'] == []


def test_one_unreachable_server_fails_alone():
    fleet = Fleet(down=['8011'])
    out = run_verify({'health_timeout': 0.2}, fleet)
    assert out.failed
    first, second = out.result['servers']
    assert not first['failed'] and first['grpc']['text']
    assert second['failed'] and second['stage'] == 'health'
    assert 'not reachable' in second['msg'] and 'connection refused' in second['msg']
    assert second['models'][0]['reason'] == 'server not reachable'
    assert out.result['failed_servers'] == ['triton1']
    assert out.result['msg'].startswith('1 of 2 server(s) failed')


def test_explicit_mode_load_models_replace_models():
    fleet = Fleet()
    out = run_verify({'servers': layout(1, load_models=['ensemble'])}, fleet)
    assert not out.failed, out.result
    assert [m['name'] for m in out.result['servers'][0]['models']] == ['ensemble']
    assert fleet.clients[0][1].asked == ['ensemble']


def test_health_over_http_uses_the_http_port():
    fleet = Fleet()
    out = run_verify({'health_protocol': 'http', 'servers': layout(1)}, fleet)
    assert not out.failed, out.result
    assert fleet.clients[0][0] == 'http' and fleet.clients[0][1].url == '127.0.0.1:8000'


def test_counter_that_did_not_grow_fails():
    out = run_verify({'servers': layout(1)}, Fleet(counting=False))
    assert out.failed
    server = out.result['servers'][0]
    assert server['stage'] == 'metrics' and 'has not increased from 3' in server['msg']
    assert server['grpc']['text'] and server['counter_after'] == 3


def test_empty_answer_fails():
    out = run_verify({'servers': layout(1)}, Fleet(text=''))
    server = out.result['servers'][0]
    assert out.failed and server['stage'] == 'grpc' and 'empty answer' in server['msg']


def test_expect_text_applies_to_both_protocols():
    out = run_verify({'servers': layout(1), 'expect_text': '(?i)paris', 'stream': False}, Fleet())
    assert not out.failed, out.result
    out = run_verify({'servers': layout(1), 'expect_text': 'Berlin'}, Fleet())
    server = out.result['servers'][0]
    assert out.failed and server['stage'] == 'grpc' and 'does not match expect_text' in server['msg']


def test_request_error_names_server_and_protocol():
    out = run_verify({'servers': layout(1)}, Fleet(text=tc.TritonError('ensemble: unknown model')))
    server = out.result['servers'][0]
    assert out.failed and server['stage'] == 'grpc'
    assert server['msg'] == 'triton0 over grpc: ensemble: unknown model'


def test_check_mode_contacts_nothing():
    fleet = Fleet()
    out = run_verify({}, fleet, check_mode=True)
    assert not out.failed and out.result['skipped'] is True
    assert [s['name'] for s in out.result['servers']] == ['triton0', 'triton1']
    assert fleet.clients == [] and fleet.sent == []


@pytest.mark.parametrize('args, text', [
    ({'servers': [{'name': 'a', 'http_port': 1}]}, 'a has no grpc_port'),
    ({'servers': [{'http_port': 1, 'grpc_port': 2}]}, 'each server needs a name'),
    ({'servers': [{'name': 'a', 'http_port': 'x', 'grpc_port': 2}]}, 'http_port must be a port number'),
    ({'servers': layout(1) + layout(1)}, 'duplicate name(s) triton0'),
    ({'servers': layout(1, metrics_port=None)}, 'assert_metrics needs the metrics_port of triton0'),
    ({'servers': layout(1, load_models='ensemble')}, 'load_models must be a list'),
    ({'health_timeout': 0}, 'health_timeout must be greater than 0'),
    ({'max_tokens': 0}, 'max_tokens must be at least 1'),
])
def test_bad_arguments(args, text):
    out = run_verify(args)
    assert out.failed and text in out.result['msg'], out.result


def test_host_port_brackets_ipv6():
    assert tv.host_port('::1', 8000) == '[::1]:8000'
    assert tv.host_port('[::1]', 8000) == '[::1]:8000'
    assert tv.host_port('triton.example', 8001) == 'triton.example:8001'


def test_wait_ready_polls_until_models_load():
    loading = [dict(e) for e in READY_INDEX]
    loading[1] = {'name': 'tensorrt_llm', 'version': '1', 'state': 'LOADING'}
    client = FakeClient('x', index=loading)
    sleeps = []

    def sleep(seconds):
        sleeps.append(seconds)
        client.index = READY_INDEX

    state = tv.wait_ready(client, MODELS, tc.Deadline(5), 0.1, sleep=sleep)
    assert state['ready'] and state['attempts'] == 2 and sleeps == [0.1]
    assert all(m['ready'] for m in state['models'])
