# -*- coding: utf-8 -*-
# Copyright: (c) 2026, tritonfleet maintainers
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Unit tests for triton_model and the load/unload calls of module_utils/triton_client.py (fake clients)."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import copy
from unittest import mock

import pytest


from ansible_collections.tritonfleet.serving.plugins.module_utils import triton_client as tu
from ansible_collections.tritonfleet.serving.plugins.modules import triton_model
from ansible_collections.tritonfleet.serving.tests.unit.utils.ansible_module_harness import run_module


class FakeServer(object):
    """A server in explicit model control mode: an index that load/unload requests change.

    ``load_error`` maps a model name to the text a failed load raises (the versions loaded before stay);
    an unload shows UNLOADING for ``unloading_reads`` index reads, then UNAVAILABLE/unloaded.
    """

    def __init__(self, index, load_error=None, load_versions=None, unloading_reads=1, request_timeout=5.0,
                 index_error=None):
        self.entries = copy.deepcopy(index)
        self.load_error = load_error or {}
        self.load_versions = load_versions or {}
        self.unloading_reads = unloading_reads
        self.request_timeout = request_timeout
        self.index_error = index_error
        self.requests = []
        self.timeouts = []
        self.closed = False
        self._unloading = {}

    def repository_index(self, timeout=None):
        if self.index_error:
            raise self.index_error
        for name in list(self._unloading):
            if self._unloading[name] <= 0:
                for entry in self.entries:
                    if entry['name'] == name and entry.get('state') == 'UNLOADING':
                        entry.update(state='UNAVAILABLE', reason='unloaded')
                del self._unloading[name]
            else:
                self._unloading[name] -= 1
        return tu.normalize_repository_index(copy.deepcopy(self.entries))

    def load_model(self, name, timeout=None):
        self.requests.append(('load', name))
        self.timeouts.append(timeout)
        if name in self.load_error:
            if not any(e['name'] == name and e.get('state') == 'READY' for e in self.entries):
                self.entries = [e for e in self.entries if e['name'] != name]
                self.entries.append({'name': name, 'version': '1', 'state': 'UNAVAILABLE',
                                     'reason': self.load_error[name]})
            raise tu.InferenceServerException(self.load_error[name])
        self.entries = [e for e in self.entries if e['name'] != name]
        for version in self.load_versions.get(name, ['1']):
            self.entries.append({'name': name, 'version': version, 'state': 'READY'})

    def unload_model(self, name, unload_dependents=False, timeout=None):
        self.requests.append(('unload', name, unload_dependents))
        self.timeouts.append(timeout)
        for entry in self.entries:
            if entry['name'] == name and entry.get('state') in ('READY', 'LOADING'):
                entry['state'] = 'UNLOADING'
        self._unloading[name] = self.unloading_reads

    def close(self):
        self.closed = True


def run_model(args, server, check_mode=False, diff=False):
    def factory(protocol, url, request_timeout=5.0, verbose=False):
        server.made_with = (protocol, url, request_timeout)
        return server

    args = dict(args)
    if diff:
        args['_ansible_diff'] = True
    with mock.patch.object(triton_model, 'make_client', side_effect=factory):
        return run_module(triton_model.main, args, check_mode)


UNLOADED = [{'name': 'plain'}, {'name': 'ensemble'}]
READY = [{'name': 'plain', 'version': '1', 'state': 'READY'}, {'name': 'ensemble'}]


# --------------------------------------------------------------------------
# loaded / reloaded
# --------------------------------------------------------------------------

def test_load_when_not_loaded_changes():
    server = FakeServer(UNLOADED)
    out = run_model({'url': '127.0.0.1:8000', 'name': 'plain'}, server, diff=True)
    assert not out.failed, out.result['msg']
    r = out.result
    assert r['changed'] is True
    assert server.requests == [('load', 'plain')]
    assert r['model'] == {'name': 'plain', 'version': '1', 'state': 'READY', 'reason': '', 'ready': True}
    assert {'name': 'ensemble', 'version': None, 'state': None, 'reason': ''} in r['index']
    assert r['diff'] == {'before': 'plain: not loaded\n', 'after': 'plain version 1: READY\n'}
    assert r['url'] == 'http://127.0.0.1:8000' and r['protocol'] == 'http'
    assert server.closed
    # the load gets the whole time left, not the per-request limit
    assert server.timeouts[0] > 290


def test_load_when_ready_does_nothing():
    server = FakeServer(READY)
    out = run_model({'name': 'plain', 'state': 'loaded'}, server, diff=True)
    assert not out.failed
    assert out.result['changed'] is False
    assert server.requests == []
    assert out.result['diff'] == {'before': 'plain version 1: READY\n', 'after': 'plain version 1: READY\n'}


def test_load_after_a_failed_load_or_an_unload():
    for entry in ({'name': 'plain', 'version': '1', 'state': 'UNAVAILABLE', 'reason': 'unloaded'},
                  {'name': 'plain', 'version': '1', 'state': 'UNAVAILABLE', 'reason': 'load failed: x'}):
        server = FakeServer([entry])
        out = run_model({'name': 'plain'}, server)
        assert out.result['changed'] is True and out.result['model']['ready'] is True


def test_load_missing_version_loads_then_checks_it():
    server = FakeServer([{'name': 'llm', 'version': '1', 'state': 'READY'}], load_versions={'llm': ['1', '2']})
    out = run_model({'name': 'llm', 'version': '2'}, server)
    assert not out.failed, out.result['msg']
    assert out.result['changed'] is True
    assert out.result['model'] == {'name': 'llm', 'version': '2', 'state': 'READY', 'reason': '', 'ready': True}
    # again: version 2 is ready now
    out = run_model({'name': 'llm', 'version': 2}, server)
    assert out.result['changed'] is False and len(server.requests) == 1


def test_load_version_the_policy_does_not_serve_fails():
    server = FakeServer([{'name': 'llm'}])
    out = run_model({'name': 'llm', 'version': '3', 'timeout': 5}, server)
    assert out.failed
    assert out.result['msg'] == (
        'Triton at http://127.0.0.1:8000 loaded model llm, but it is not ready: llm (version 3): no state: '
        'version 3 of llm is not in the model repository index '
        '(Triton loads the versions the version_policy in config.pbtxt selects)')
    assert out.result['changed'] is False
    assert out.result['model']['ready'] is False
    assert out.result['elapsed'] < 2


def test_reloaded_always_changes():
    server = FakeServer(READY)
    out = run_model({'name': 'plain', 'state': 'reloaded', 'protocol': 'grpc'}, server, diff=True)
    assert not out.failed
    assert out.result['changed'] is True
    assert server.requests == [('load', 'plain')]
    assert out.result['diff'] == {'before': 'plain version 1: READY\n', 'after': 'plain version 1: READY (reloaded)\n'}
    assert out.result['url'] == 'grpc://127.0.0.1:8001'


def test_failed_reload_keeps_serving_and_says_so():
    reason = "load failed for model 'plain': version 1 is at UNAVAILABLE state: Internal: RuntimeError:\n boom"
    server = FakeServer(READY, load_error={'plain': reason})
    out = run_model({'url': '10.0.0.5:8000', 'name': 'plain', 'state': 'reloaded'}, server)
    assert out.failed
    assert out.result['msg'] == (
        "Triton at http://10.0.0.5:8000 did not load model plain: load failed for model 'plain': version 1 is at "
        "UNAVAILABLE state: Internal: RuntimeError: boom; now plain (version 1): READY "
        "(the versions loaded before keep serving)")
    assert out.result['changed'] is False
    assert out.result['model']['state'] == 'READY' and out.result['model']['ready'] is True
    assert out.result['index'][0]['state'] == 'READY'


def test_failed_first_load_reports_state_and_reason():
    server = FakeServer(UNLOADED, load_error={'plain': 'Internal: RuntimeError: toy load failure'})
    out = run_model({'name': 'plain'}, server)
    assert out.failed
    assert out.result['msg'] == (
        'Triton at http://127.0.0.1:8000 did not load model plain: Internal: RuntimeError: toy load failure; '
        'now plain (version 1): UNAVAILABLE: Internal: RuntimeError: toy load failure')
    assert out.result['model']['state'] == 'UNAVAILABLE'


def test_unreadable_config_is_named_from_the_log(tmp_path):
    log = tmp_path / 'triton.log'
    log.write_text(u"E1 model_repository_manager.cc:1460] \"Poll failed for model directory 'plain': old\"\n")
    server = FakeServer(READY, load_error={'plain': "failed to load 'plain', failed to poll from model repository"})
    load = server.load_model

    def load_and_log(name, timeout=None):
        with open(str(log), 'a') as handle:
            handle.write(u"E2 model_repository_manager.cc:1460] \"Poll failed for model directory 'plain': failed to "
                         u"read text proto from /repo/plain/config.pbtxt\"\n")
        load(name, timeout)
    server.load_model = load_and_log
    out = run_model({'name': 'plain', 'state': 'reloaded', 'log_file': str(log)}, server)
    assert out.failed
    assert out.result['msg'] == (
        "Triton at http://127.0.0.1:8000 did not load model plain: failed to load 'plain', failed to poll from model "
        "repository; the log says: cannot read model directory 'plain': failed to read text proto from "
        "/repo/plain/config.pbtxt; now plain (version 1): READY (the versions loaded before keep serving)")
    # a log that cannot be read adds nothing
    server = FakeServer(READY, load_error={'plain': 'x'})
    out = run_model({'name': 'plain', 'state': 'reloaded', 'log_file': str(tmp_path / 'nope.log')}, server)
    assert out.failed and 'the log says' not in out.result['msg']


def test_log_poll_failures_parses_triton_lines():
    lines = ['E1 model_repository_manager.cc:1460] "Poll failed for model directory \'a\': bad \\"x\\""',
             'I1 model_lifecycle.cc:472] "loading: a:1"',
             'E1 model_repository_manager.cc:1460] "Poll failed for model directory \'b\': failed to read"']
    assert tu.log_poll_failures(lines) == [{'name': 'a', 'reason': 'bad "x"'}, {'name': 'b', 'reason': 'failed to read'}]


def test_load_refused_outside_explicit_mode():
    refusal = 'explicit model load / unload is not allowed if polling is enabled'
    # Triton's answer in mode none too (checked live)
    server = FakeServer([{'name': 'ensemble', 'version': '1', 'state': 'READY'}], load_error={'ensemble': refusal})
    out = run_model({'name': 'ensemble', 'state': 'reloaded'}, server)
    assert out.failed
    assert out.result['msg'] == (
        'Triton at http://127.0.0.1:8000 did not load model ensemble: explicit model load / unload is not allowed '
        'if polling is enabled (the server must run with --model-control-mode=explicit); now ensemble (version 1): '
        'READY (the versions loaded before keep serving)')


def test_model_not_in_repository():
    server = FakeServer(UNLOADED)
    out = run_model({'name': 'ghost'}, server)
    assert out.failed
    assert out.result['msg'] == 'Triton at http://127.0.0.1:8000: model ghost is not in the model repository'
    assert server.requests == []
    out = run_model({'name': 'ghost', 'state': 'unloaded'}, server)
    assert not out.failed and out.result['changed'] is False
    assert server.requests == []


# --------------------------------------------------------------------------
# unloaded
# --------------------------------------------------------------------------

def test_unload_waits_for_unloading_to_end():
    server = FakeServer(READY, unloading_reads=3)
    out = run_model({'name': 'plain', 'state': 'unloaded', 'unload_dependents': True}, server, diff=True)
    assert not out.failed, out.result['msg']
    r = out.result
    assert r['changed'] is True
    assert server.requests == [('unload', 'plain', True)]
    assert r['model'] == {'name': 'plain', 'version': '1', 'state': 'UNAVAILABLE', 'reason': 'unloaded',
                          'ready': False}
    assert r['diff'] == {'before': 'plain version 1: READY\n', 'after': 'plain version 1: UNAVAILABLE (unloaded)\n'}
    assert server.timeouts == [5.0]
    assert 0.2 < r['elapsed'] < 2


def test_unload_when_unloaded_does_nothing():
    for index in (UNLOADED, [{'name': 'plain', 'version': '1', 'state': 'UNAVAILABLE', 'reason': 'unloaded'}]):
        server = FakeServer(index)
        out = run_model({'name': 'plain', 'state': 'unloaded'}, server)
        assert not out.failed and out.result['changed'] is False
        assert server.requests == []


def test_unload_stuck_unloading_times_out():
    server = FakeServer(READY, unloading_reads=10 ** 6)
    out = run_model({'name': 'plain', 'state': 'unloaded', 'timeout': 0.3}, server)
    assert out.failed
    assert out.result['msg'] == ('Triton at http://127.0.0.1:8000: model plain not unloaded after 0.3s: '
                                 'plain (version 1): UNLOADING')


# --------------------------------------------------------------------------
# check mode, listing
# --------------------------------------------------------------------------

@pytest.mark.parametrize('index, args, changed, after', [
    (UNLOADED, {'name': 'plain'}, True, 'plain: READY\n'),
    (UNLOADED, {'name': 'plain', 'version': '2'}, True, 'plain version 2: READY\n'),
    (READY, {'name': 'plain'}, False, 'plain version 1: READY\n'),
    (READY, {'name': 'plain', 'state': 'reloaded'}, True, 'plain version 1: READY (reloaded)\n'),
    (UNLOADED, {'name': 'plain', 'state': 'reloaded'}, True, 'plain: READY (reloaded)\n'),
    (READY, {'name': 'plain', 'state': 'unloaded'}, True, 'plain version 1: UNAVAILABLE (unloaded)\n'),
    (UNLOADED, {'name': 'plain', 'state': 'unloaded'}, False, 'plain: not loaded\n'),
])
def test_check_mode_changes_nothing(index, args, changed, after):
    server = FakeServer(index)
    out = run_model(args, server, check_mode=True, diff=True)
    assert not out.failed, out.result['msg']
    assert out.result['changed'] is changed
    assert out.result['diff']['after'] == after
    assert server.requests == []
    assert out.result['index'] == tu.normalize_repository_index(index)


def test_listed_returns_the_index_and_the_model():
    index = [{'name': 'plain', 'version': '1', 'state': 'READY'},
             {'name': 'broken', 'version': '1', 'state': 'UNAVAILABLE', 'reason': 'load failed'}, {'name': 'cold'}]
    server = FakeServer(index)
    out = run_model({'state': 'listed'}, server, diff=True)
    assert not out.failed
    assert out.result['changed'] is False and 'diff' not in out.result and 'model' not in out.result
    assert [e['name'] for e in out.result['index']] == ['plain', 'broken', 'cold']
    out = run_model({'state': 'listed', 'name': 'broken'}, server, check_mode=True)
    assert out.result['model'] == {'name': 'broken', 'version': '1', 'state': 'UNAVAILABLE', 'reason': 'load failed',
                                   'ready': False}
    assert server.requests == []


def test_unreachable_server():
    server = FakeServer([], index_error=ConnectionRefusedError(111, 'Connection refused'))
    out = run_model({'url': '127.0.0.1:18999', 'name': 'plain'}, server)
    assert out.failed
    assert out.result['msg'].startswith('Triton at http://127.0.0.1:18999: cannot read the model repository index: ')
    assert 'Connection refused' in out.result['msg']
    assert 'index' not in out.result and server.closed


# --------------------------------------------------------------------------
# arguments, libraries
# --------------------------------------------------------------------------

@pytest.mark.parametrize('args, text', [
    ({}, 'state is loaded but all of the following are missing: name'),
    ({'state': 'unloaded'}, 'missing: name'),
    ({'name': 'a/b'}, 'name must be a model name'),
    ({'name': ' '}, 'name must be a model name'),
    ({'name': 'm', 'version': 'latest'}, 'version must be a non-negative integer'),
    ({'name': 'm', 'version': '1', 'state': 'unloaded'}, 'version cannot be used with state=unloaded'),
    ({'name': 'm', 'timeout': 0}, 'timeout must be greater than 0'),
    ({'name': 'm', 'url': 'ftp://x'}, 'unsupported URL scheme'),
    ({'name': 'm', 'state': 'present'}, 'value of state must be one of'),
])
def test_bad_arguments(args, text):
    server = FakeServer(READY)
    out = run_model(args, server)
    assert out.failed and text in out.result['msg'], out.result['msg']
    assert server.requests == []


def test_missing_tritonclient_reports_missing_lib():
    with mock.patch.object(tu, 'HAS_TRITONCLIENT_GRPC', False):
        out = run_model({'protocol': 'grpc', 'name': 'm'}, FakeServer(READY))
    assert out.failed and 'tritonclient[grpc]' in out.result['msg']


# --------------------------------------------------------------------------
# module_utils: the client's load and unload calls
# --------------------------------------------------------------------------

def test_client_grpc_load_and_unload_pass_timeouts():
    raw = mock.MagicMock()
    with mock.patch.object(tu.triton_grpc, 'InferenceServerClient', return_value=raw):
        client = tu.make_client('grpc', '127.0.0.1:8001', request_timeout=3.0)
    client.load_model('m', timeout=120)
    raw.load_model.assert_called_once_with('m', client_timeout=120)
    client.unload_model('m', unload_dependents=1)
    raw.unload_model.assert_called_once_with('m', unload_dependents=True, client_timeout=3.0)


def test_client_http_long_load_gets_its_own_client():
    raw, long_raw = mock.MagicMock(), mock.MagicMock()
    with mock.patch.object(tu.triton_http, 'InferenceServerClient', side_effect=[raw, long_raw]) as ctor:
        client = tu.make_client('http', 'https://host:8443', request_timeout=2.0)
        client.load_model('m', timeout=600)
        client.unload_model('m')
    assert ctor.call_args_list[1] == mock.call(url='host:8443', verbose=False, ssl=True,
                                               connection_timeout=2.0, network_timeout=600)
    long_raw.load_model.assert_called_once_with('m')
    long_raw.close.assert_called_once_with()
    raw.load_model.assert_not_called()
    raw.unload_model.assert_called_once_with('m', unload_dependents=False)


def test_model_entries_sorted_by_version():
    index = tu.normalize_repository_index([
        {'name': 'm', 'version': '10', 'state': 'READY'}, {'name': 'm', 'version': '2', 'state': 'UNAVAILABLE'},
        {'name': 'x', 'version': '1', 'state': 'READY'}])
    assert [e['version'] for e in tu.model_entries(index, 'm')] == ['2', '10']
    assert tu.model_entries(index, 'm', 2) == [index[1]]
    assert tu.model_entries(None, 'm') == []
