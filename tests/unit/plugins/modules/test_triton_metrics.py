# -*- coding: utf-8 -*-
# Copyright (c) 2026, tritonfleet maintainers
# SPDX-License-Identifier: Apache-2.0
"""The triton_metrics module, scraping a real local http.server that serves
Triton's real /metrics output from an H100 host."""

from __future__ import annotations

import http.server
import json
import os
import pathlib
import socket
import subprocess
import sys
import threading
from unittest import mock

import pytest

from ansible_collections.tritonfleet.serving.plugins.module_utils import prometheus_text as pt
from ansible_collections.tritonfleet.serving.plugins.modules import triton_metrics

from ansible_collections.tritonfleet.serving.tests.unit.utils import nvsmi_variants as variants
from ansible_collections.tritonfleet.serving.tests.unit.utils.ansible_module_harness import run_module

UUID = variants.H100_UUID
REPO_ROOT = pathlib.Path(__file__).resolve().parents[4]
REAL_TEXT = variants.H100_METRICS_PATH.read_text()


class MetricsServer:
    """Triton's metrics endpoint stand-in: serves self.body at /metrics."""

    def __init__(self):
        self.body = REAL_TEXT
        self.requests = []
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                outer.requests.append((self.path, self.headers.get('Accept')))
                if self.path != '/metrics':
                    self.send_error(404, 'Not Found')
                    return
                data = outer.body.encode('utf-8')
                self.send_response(200)
                self.send_header('Content-Type', 'text/plain; version=0.0.4; charset=utf-8')
                self.send_header('Content-Length', str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(('127.0.0.1', 0), Handler)
        self.url = 'http://127.0.0.1:%d/metrics' % self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    def set_value(self, sample_prefix, value):
        """Change the value of the one sample line that starts with sample_prefix."""
        lines = self.body.splitlines()
        hits = [i for i, line in enumerate(lines) if line.startswith(sample_prefix)]
        assert len(hits) == 1, sample_prefix
        lines[hits[0]] = '%s %s' % (lines[hits[0]].rsplit(' ', 1)[0], value)
        self.body = '\n'.join(lines) + '\n'

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(5)


@pytest.fixture
def server():
    srv = MetricsServer()
    yield srv
    srv.close()


def run(args):
    out = run_module(triton_metrics.main, args)
    return ('fail' if out.failed else 'exit'), out.result


SUCCESS = 'nv_inference_request_success{model="gpu_matmul",version="1"}'


# --- scraping --------------------------------------------------------------------------------------

def test_scrape_defaults(server):
    kind, result = run({'url': server.url})
    assert kind == 'exit', result
    assert result['changed'] is False
    assert result['url'] == server.url
    assert result['parser'] == ('prometheus_client' if pt.HAS_PROMETHEUS_CLIENT else 'builtin')
    assert len(result['series']) == 24      # every metric of the fixture is nv_*
    mem = [s for s in result['series'] if s['name'] == 'nv_gpu_memory_total_bytes']
    assert mem == [{'name': 'nv_gpu_memory_total_bytes', 'labels': {'gpu_uuid': UUID}, 'value': 85520809984,
                    'type': 'gauge'}]
    assert result['totals']['nv_gpu_memory_total_bytes'] == 85520809984
    assert result['totals']['nv_inference_request_success'] == 1
    assert result['totals']['nv_inference_request_failure'] == 0
    assert result['failed_assertions'] == [] and result['assertion_results'] == []
    path, accept = server.requests[-1]
    assert path == '/metrics' and accept.startswith('text/plain')


def test_default_selects_only_nv_metrics(server):
    server.body = REAL_TEXT + '# TYPE process_cpu_seconds_total counter\nprocess_cpu_seconds_total 12.5\n'
    kind, result = run({'url': server.url})
    assert kind == 'exit'
    assert 'process_cpu_seconds_total' not in result['totals']
    kind, result = run({'url': server.url, 'metrics': ['process_*']})
    assert result['series'] == [{'name': 'process_cpu_seconds_total', 'labels': {}, 'value': 12.5, 'type': 'counter'}]


def test_metrics_filter(server):
    kind, result = run({'url': server.url, 'metrics': ['nv_gpu_*', 'nv_energy_consumption']})
    assert kind == 'exit'
    assert sorted(result['totals']) == ['nv_energy_consumption', 'nv_gpu_memory_total_bytes',
                                        'nv_gpu_memory_used_bytes', 'nv_gpu_power_limit', 'nv_gpu_power_usage',
                                        'nv_gpu_utilization']
    assert result['totals']['nv_gpu_memory_used_bytes'] == 3348103168
    assert result['totals']['nv_energy_consumption'] == 551.139


def test_labels_filter(server):
    kind, result = run({'url': server.url, 'labels': {'model': 'gpu_matmul', 'reason': 'BACKEND'}})
    assert kind == 'exit'
    assert [(s['name'], s['labels']['reason']) for s in result['series']] == [('nv_inference_request_failure', 'BACKEND')]
    kind, result = run({'url': server.url, 'labels': {'gpu_uuid': UUID}})
    assert len(result['series']) == 6
    kind, result = run({'url': server.url, 'labels': {'model': 'ensemble'}})
    assert result['series'] == [] and result['totals'] == {}


def test_check_mode(server):
    kind, result = run({'url': server.url, '_ansible_check_mode': True,
                        'assertions': [{'metric': 'nv_gpu_power_limit', 'op': '==', 'value': 700}]})
    assert kind == 'exit'
    assert result['changed'] is False
    assert result['failed_assertions'] == []


@pytest.mark.parametrize('parser', ['builtin', 'prometheus_client'])
def test_parsers_agree_through_the_module(server, parser):
    if parser == 'prometheus_client' and not pt.HAS_PROMETHEUS_CLIENT:
        pytest.skip('prometheus_client is not installed')
    kind, result = run({'url': server.url, 'parser': parser})
    assert kind == 'exit' and result['parser'] == parser
    assert result['series'] == pt.parse_builtin(REAL_TEXT)


def test_forced_prometheus_client_missing(server):
    with mock.patch.object(triton_metrics, 'HAS_PROMETHEUS_CLIENT', False):
        kind, result = run({'url': server.url, 'parser': 'prometheus_client'})
    assert kind == 'fail'
    assert 'prometheus_client' in result['msg']


def test_auto_falls_back_without_prometheus_client(server):
    with mock.patch.object(pt, 'HAS_PROMETHEUS_CLIENT', False):
        kind, result = run({'url': server.url})
    assert kind == 'exit'
    assert result['parser'] == 'builtin'
    assert len(result['series']) == 24


# --- assertions ----------------------------------------------------------------------------------

@pytest.mark.parametrize('op, value, passes', [
    ('>', 85520809983, True), ('>', 85520809984, False),
    ('>=', 85520809984, True), ('>=', 85520809985, False),
    ('==', 85520809984, True), ('==', 1, False),
    ('<=', 85520809984, True), ('<=', 85520809983, False),
    ('<', 85520809985, True), ('<', 85520809984, False),
    ('!=', 0, True), ('!=', 85520809984, False),
])
def test_each_op(server, op, value, passes):
    assertion = {'metric': 'nv_gpu_memory_total_bytes', 'labels': {'gpu_uuid': UUID}, 'op': op, 'value': value}
    kind, result = run({'url': server.url, 'assertions': [assertion]})
    assert kind == ('exit' if passes else 'fail')
    [res] = result['assertion_results']
    assert res['actual'] == 85520809984 and res['matched'] == 1 and res['passed'] is passes
    assert res['op'] == op and res['aggregate'] == 'sum'
    if passes:
        assert result['failed_assertions'] == []
    else:
        assert result['failed_assertions'] == [res]
        assert result['msg'].startswith('1 of 1 metric assertions failed')
        # the scrape is still reported on failure
        assert result['totals']['nv_gpu_memory_total_bytes'] == 85520809984


def test_several_assertions_list_all_failures(server):
    assertions = [
        {'metric': 'nv_inference_request_failure', 'labels': {'model': 'gpu_matmul'}, 'op': '==', 'value': 0},
        {'metric': 'nv_gpu_utilization', 'op': '>', 'value': 0.5},
        {'metric': 'nv_inference_request_success', 'labels': {'model': 'ensemble'}, 'op': '>=', 'value': 1},
        {'metric': 'nv_gpu_power_usage', 'op': '<', 'value': 700, 'aggregate': 'max'},
    ]
    kind, result = run({'url': server.url, 'assertions': assertions, 'metrics': ['nv_cpu_*']})
    assert kind == 'fail'
    assert [r['passed'] for r in result['assertion_results']] == [True, False, False, True]
    assert [r['metric'] for r in result['failed_assertions']] == ['nv_gpu_utilization', 'nv_inference_request_success']
    assert result['failed_assertions'][1]['msg'] == 'no series matched nv_inference_request_success{model=ensemble}'
    assert result['msg'].startswith('2 of 4 metric assertions failed')
    # assertions see everything; metrics/labels only shape the returned series
    assert sorted(result['totals']) == ['nv_cpu_memory_total_bytes', 'nv_cpu_memory_used_bytes', 'nv_cpu_utilization']


def test_count_aggregate(server):
    assertions = [
        {'metric': 'nv_gpu_*', 'labels': {'gpu_uuid': UUID}, 'op': '==', 'value': 5, 'aggregate': 'count'},
        {'metric': 'nv_inference_request_failure', 'op': '==', 'value': 4, 'aggregate': 'count'},
        {'metric': 'nv_gpu_utilization', 'labels': {'gpu_uuid': 'GPU-other'}, 'op': '==', 'value': 0,
         'aggregate': 'count'},
    ]
    kind, result = run({'url': server.url, 'assertions': assertions})
    assert kind == 'exit', result


# --- increased / baseline ------------------------------------------------------------------------

def test_increased_with_baseline(server):
    kind, before = run({'url': server.url, 'labels': {'model': 'gpu_matmul'}})
    assert kind == 'exit'
    server.set_value(SUCCESS, 3)
    assertion = {'metric': 'nv_inference_request_success', 'labels': {'model': 'gpu_matmul'}, 'op': 'increased'}
    kind, result = run({'url': server.url, 'baseline': before['series'], 'assertions': [assertion]})
    assert kind == 'exit', result
    [res] = result['assertion_results']
    assert (res['baseline'], res['actual'], res['passed']) == (1, 3, True)
    assert 'increased from 1 (by 2)' in res['msg']

    # with a minimum increase, and the whole earlier result as baseline
    kind, result = run({'url': server.url, 'baseline': before,
                        'assertions': [dict(assertion, value=5)]})
    assert kind == 'fail'
    res = result['failed_assertions'][0]
    assert (res['baseline'], res['actual'], res['value']) == (1, 3, 5)
    assert 'has not increased by at least 5' in res['msg']


def test_not_increased(server):
    kind, before = run({'url': server.url})
    assertion = {'metric': 'nv_inference_count', 'op': 'increased'}
    kind, result = run({'url': server.url, 'baseline': before['series'], 'assertions': [assertion]})
    assert kind == 'fail'
    [res] = result['failed_assertions']
    assert (res['baseline'], res['actual'], res['passed']) == (1, 1, False)
    assert 'has not increased' in result['msg']


def test_increased_from_missing_baseline_series(server):
    """A model loaded after the baseline: its counters start from 0."""
    kind, result = run({'url': server.url, 'baseline': [],
                        'assertions': [{'metric': 'nv_inference_request_success', 'op': 'increased'}]})
    assert kind == 'exit'
    assert result['assertion_results'][0]['baseline'] == 0


def test_increased_needs_baseline(server):
    kind, result = run({'url': server.url, 'assertions': [{'metric': 'nv_inference_count', 'op': 'increased'}]})
    assert kind == 'fail'
    assert 'needs a baseline' in result['msg']
    assert server.requests == []    # validated before scraping


def test_baseline_round_trips_through_json(server):
    """Registered results come back through JSON; that must still be a valid baseline."""
    kind, before = run({'url': server.url})
    baseline = json.loads(json.dumps(before['series']))
    server.set_value('nv_energy_consumption{', 600.5)
    kind, result = run({'url': server.url, 'baseline': baseline,
                        'assertions': [{'metric': 'nv_energy_consumption', 'op': 'increased', 'value': 49}]})
    assert kind == 'exit', result
    assert result['assertion_results'][0]['actual'] == 600.5


@pytest.mark.parametrize('baseline, message', [
    ({'nope': []}, 'without a "series" key'),
    ('text', 'must be the "series" list'),
    ([{'labels': {}}], 'is not a series'),
    ([{'name': 'x', 'value': 'many'}], 'non-numeric value'),
])
def test_invalid_baseline(server, baseline, message):
    kind, result = run({'url': server.url, 'baseline': baseline})
    assert kind == 'fail'
    assert message in result['msg']


def test_op_needs_value(server):
    kind, result = run({'url': server.url, 'assertions': [{'metric': 'nv_inference_count', 'op': '>'}]})
    assert kind == 'fail'
    assert 'needs a value' in result['msg']


def test_invalid_op(server):
    kind, result = run({'url': server.url, 'assertions': [{'metric': 'nv_inference_count', 'op': '=~', 'value': 1}]})
    assert kind == 'fail'
    assert 'op' in result['msg']


def test_nan_value_fails_assertion():
    series = pt.parse_builtin('# TYPE s summary\ns{quantile="0.5"} NaN\n')
    res = triton_metrics.evaluate_assertion({'metric': 's', 'op': '<', 'value': 10}, series)
    assert res['passed'] is False and 'NaN' in res['msg']


# --- HTTP failures -------------------------------------------------------------------------------

def test_http_404(server):
    kind, result = run({'url': server.url.replace('/metrics', '/nope')})
    assert kind == 'fail'
    assert result['msg'].startswith('Cannot scrape') and '404' in result['msg']


def test_connection_refused():
    port = _unused_port()
    kind, result = run({'url': 'http://127.0.0.1:%d/metrics' % port, 'timeout': 5})
    assert kind == 'fail'
    assert result['msg'].startswith('Cannot scrape http://127.0.0.1:%d/metrics' % port)


def _unused_port():
    sock = socket.socket()
    sock.bind(('127.0.0.1', 0))
    port = sock.getsockname()[1]
    sock.close()
    return port


def test_use_proxy(server, monkeypatch):
    """An environment proxy that does not exempt localhost breaks the scrape unless use_proxy is false."""
    for name in ('no_proxy', 'NO_PROXY'):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv('http_proxy', 'http://127.0.0.1:%d' % _unused_port())
    kind, result = run({'url': server.url, 'timeout': 5})
    assert kind == 'fail' and result['msg'].startswith('Cannot scrape')
    kind, result = run({'url': server.url, 'use_proxy': False})
    assert kind == 'exit' and len(result['series']) == 24


def test_unparseable_body(server):
    server.body = 'this is { not prometheus\n'
    kind, result = run({'url': server.url})
    assert kind == 'fail'
    assert result['msg'].startswith('Cannot parse metrics')


# --- through ansible itself ---------------------------------------------------------------------------

def _managed_pythons():
    """This venv's Python (has prometheus_client) and, when present without it, the system Python."""
    pythons = [pytest.param(sys.executable, 'prometheus_client' if pt.HAS_PROMETHEUS_CLIENT else 'builtin',
                            id='venv-python')]
    system = '/usr/bin/python3'
    if os.path.exists(system) and subprocess.run([system, '-c', 'import prometheus_client'],
                                                 capture_output=True, check=False).returncode != 0:
        pythons.append(pytest.param(system, 'builtin', id='system-python-without-prometheus_client'))
    return pythons


@pytest.mark.skipif(not (pathlib.Path(sys.executable).parent / 'ansible-playbook').exists(),
                    reason='ansible-playbook is not installed next to this Python')
@pytest.mark.parametrize('python, expected_parser', _managed_pythons())
def test_playbook_baseline_and_assertions(server, tmp_path, python, expected_parser):
    playbook = tmp_path / 'metrics.yml'
    playbook.write_text(
        '- hosts: localhost\n'
        '  gather_facts: false\n'
        '  tasks:\n'
        '    - tritonfleet.serving.triton_metrics:\n'
        '        url: %(url)s\n'
        '        metrics: [nv_inference_*, nv_gpu_*]\n'
        '      register: before\n'
        '    - ansible.builtin.uri:\n'
        '        url: %(url)s\n'
        '    - tritonfleet.serving.triton_metrics:\n'
        '        url: %(url)s\n'
        '        baseline: "{{ before.series }}"\n'
        '        assertions:\n'
        '          - {metric: nv_gpu_memory_total_bytes, op: "==", value: 85520809984}\n'
        '          - {metric: nv_inference_request_failure, labels: {model: gpu_matmul}, op: "==", value: 0}\n'
        '          - {metric: nv_inference_request_success, op: increased}\n'
        '      register: after\n'
        '      ignore_errors: true\n'
        '    - ansible.builtin.assert:\n'
        '        that:\n'
        '          - before.totals.nv_gpu_memory_total_bytes == 85520809984\n'
        '          - before is not changed\n'
        '          - before.parser == "%(parser)s"\n'
        '          - after is failed\n'
        '          - after.failed_assertions | length == 1\n'
        '          - after.failed_assertions[0].metric == "nv_inference_request_success"\n'
        % {'url': server.url, 'parser': expected_parser})
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=str(REPO_ROOT / '.collections'),
               ANSIBLE_STDOUT_CALLBACK='ansible.builtin.json', ANSIBLE_NOCOLOR='1')
    proc = subprocess.run(
        [str(pathlib.Path(sys.executable).parent / 'ansible-playbook'), '-i', 'localhost,', '-c', 'local',
         '-e', 'ansible_python_interpreter=%s' % python, str(playbook)],
        cwd=str(tmp_path), env=env, capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    stats = json.loads(proc.stdout)['stats']['localhost']
    assert stats['changed'] == 0 and stats['ignored'] == 1
