# -*- coding: utf-8 -*-
# Copyright (c) 2026, tritonfleet maintainers
# SPDX-License-Identifier: Apache-2.0
"""plugins/module_utils/prometheus_text.py: both parsers on Triton's real /metrics
output from an H100 host, and on the format's corner cases."""

from __future__ import annotations

import importlib.util
import math
import sys

import pytest

from ansible_collections.tritonfleet.serving.plugins.module_utils import prometheus_text as pt

from ansible_collections.tritonfleet.serving.tests.unit.utils import nvsmi_variants as variants

UUID = variants.H100_UUID
PARSERS = ['prometheus_client', 'builtin']

# Additions in Triton's own style to the real exposition: a summary with
# quantiles (NaN before any request), a histogram, a `_total` counter, label
# escapes, a timestamp and an untyped sample.
EXTRA = r'''# HELP nv_inference_request_summary_us Summary of inference request duration in microseconds (includes cached requests)
# TYPE nv_inference_request_summary_us summary
nv_inference_request_summary_us_count{model="ensemble",version="1"} 3
nv_inference_request_summary_us_sum{model="ensemble",version="1"} 52125.5
nv_inference_request_summary_us{model="ensemble",version="1",quantile="0.5"} NaN
nv_inference_request_summary_us{model="ensemble",version="1",quantile="0.99"} 20123.25
# HELP nv_inference_first_response_histogram_ms Duration from request to first response in milliseconds
# TYPE nv_inference_first_response_histogram_ms histogram
nv_inference_first_response_histogram_ms_count{model="ensemble",version="1"} 3
nv_inference_first_response_histogram_ms_sum{model="ensemble",version="1"} 41
nv_inference_first_response_histogram_ms_bucket{model="ensemble",version="1",le="10"} 1
nv_inference_first_response_histogram_ms_bucket{model="ensemble",version="1",le="+Inf"} 3
# HELP tritonfleet_requests_total Requests, declared with the _total suffix
# TYPE tritonfleet_requests_total counter
tritonfleet_requests_total{path="/v2/models/ensemble/generate"} 7
# TYPE tritonfleet_label_escapes gauge
tritonfleet_label_escapes{text="say \"hi\"",path="C:\\triton",multi="a\nb",} 1.5e3 1732487999000
untyped_sample{a="b"} -2
'''


@pytest.fixture(scope='module')
def triton_text():
    return variants.H100_METRICS_PATH.read_text()


def by(series, name, **labels):
    found = [s for s in series if s['name'] == name and all(s['labels'].get(k) == v for k, v in labels.items())]
    assert len(found) == 1, (name, labels, found)
    return found[0]


@pytest.fixture(params=PARSERS)
def parse(request):
    if request.param == 'prometheus_client':
        if not pt.HAS_PROMETHEUS_CLIENT:
            pytest.skip('prometheus_client is not installed')
        return pt.parse_with_prometheus_client
    return pt.parse_builtin


# --- Triton's real exposition ------------------------------------------------------------------

def test_real_gpu_metrics(parse, triton_text):
    series = parse(triton_text)
    assert len(series) == 24
    total = by(series, 'nv_gpu_memory_total_bytes', gpu_uuid=UUID)
    assert total == {'name': 'nv_gpu_memory_total_bytes', 'labels': {'gpu_uuid': UUID},
                     'value': 85520809984, 'type': 'gauge'}
    assert by(series, 'nv_gpu_memory_used_bytes', gpu_uuid=UUID)['value'] == 3348103168
    assert by(series, 'nv_gpu_power_usage', gpu_uuid=UUID)['value'] == 130.151
    assert by(series, 'nv_gpu_power_limit', gpu_uuid=UUID)['value'] == 700
    assert by(series, 'nv_gpu_utilization', gpu_uuid=UUID)['value'] == 0
    assert by(series, 'nv_cpu_utilization')['value'] == 0.0024906600249066
    assert by(series, 'nv_pinned_memory_pool_total_bytes') == {
        'name': 'nv_pinned_memory_pool_total_bytes', 'labels': {}, 'value': 268435456, 'type': 'gauge'}


def test_real_counters_keep_their_exposed_names(parse, triton_text):
    series = parse(triton_text)
    success = by(series, 'nv_inference_request_success', model='gpu_matmul')
    assert success == {'name': 'nv_inference_request_success', 'labels': {'model': 'gpu_matmul', 'version': '1'},
                       'value': 1, 'type': 'counter'}
    assert not [s for s in series if s['name'].endswith('_total')]
    failures = [s for s in series if s['name'] == 'nv_inference_request_failure']
    assert [s['labels']['reason'] for s in failures] == ['OTHER', 'BACKEND', 'CANCELED', 'REJECTED']
    assert all(s['value'] == 0 and s['type'] == 'counter' for s in failures)
    assert by(series, 'nv_inference_request_duration_us')['value'] == 321037
    assert by(series, 'nv_inference_compute_infer_duration_us')['value'] == 320679
    assert by(series, 'nv_energy_consumption', gpu_uuid=UUID) == {
        'name': 'nv_energy_consumption', 'labels': {'gpu_uuid': UUID}, 'value': 551.139, 'type': 'counter'}
    assert by(series, 'nv_inference_pending_request_count')['type'] == 'gauge'


def test_fallback_equals_prometheus_client_on_real_metrics(triton_text):
    if not pt.HAS_PROMETHEUS_CLIENT:
        pytest.skip('prometheus_client is not installed')
    assert pt.parse_builtin(triton_text) == pt.parse_with_prometheus_client(triton_text)


# --- the format's corner cases ---------------------------------------------------------------------

def test_extra_cases(parse, triton_text):
    series = parse(triton_text + EXTRA)
    assert len(series) == 24 + 11
    q50 = by(series, 'nv_inference_request_summary_us', quantile='0.5')
    assert q50['value'] is None and q50['type'] == 'summary'
    assert by(series, 'nv_inference_request_summary_us', quantile='0.99')['value'] == 20123.25
    assert by(series, 'nv_inference_request_summary_us_count')['value'] == 3
    assert by(series, 'nv_inference_request_summary_us_sum')['value'] == 52125.5
    inf = by(series, 'nv_inference_first_response_histogram_ms_bucket', le='+Inf')
    assert inf['value'] == 3 and inf['type'] == 'histogram'
    assert by(series, 'nv_inference_first_response_histogram_ms_count')['type'] == 'histogram'
    assert by(series, 'tritonfleet_requests_total') == {
        'name': 'tritonfleet_requests_total', 'labels': {'path': '/v2/models/ensemble/generate'},
        'value': 7, 'type': 'counter'}
    escaped = by(series, 'tritonfleet_label_escapes')
    assert escaped['labels'] == {'text': 'say "hi"', 'path': 'C:\\triton', 'multi': 'a\nb'}
    assert escaped['value'] == 1500 and escaped['type'] == 'gauge'
    assert by(series, 'untyped_sample') == {'name': 'untyped_sample', 'labels': {'a': 'b'}, 'value': -2,
                                            'type': 'untyped'}


def test_fallback_equals_prometheus_client_on_extra_cases(triton_text):
    if not pt.HAS_PROMETHEUS_CLIENT:
        pytest.skip('prometheus_client is not installed')
    text = triton_text + EXTRA
    assert pt.parse_builtin(text) == pt.parse_with_prometheus_client(text)


@pytest.mark.parametrize('text', [
    # a sample that does not belong to the family before it is untyped, and ends that family
    '# TYPE a gauge\na 1\nb 2\na 3\n',
    # HELP without TYPE, then TYPE for the same family
    '# HELP c Some help\n# TYPE c counter\nc{x="1"} 4\nc{x="2"} 5\n',
    # a summary's bare name carries quantiles
    '# TYPE s summary\ns{quantile="0.9"} 1\ns_count 2\ns_sum 3\ns_bucket 4\n',
    # a histogram's bare name is not part of the family
    '# TYPE h histogram\nh_bucket{le="1"} 1\nh 9\nh_count 1\n',
    # tabs, blank lines, other comments, +Inf/-Inf values, scientific notation
    '# a plain comment\n\n# TYPE g gauge\ng\t+Inf\ng{k="v"} -Inf\ng{k="w"} 1e-3\ng{k="z"} 7 123\n',
    # a space between name and labels, no labels
    'spaced {a="1"} 2\nbare 3\n',
])
def test_fallback_equals_prometheus_client_on_grouping(text):
    if not pt.HAS_PROMETHEUS_CLIENT:
        pytest.skip('prometheus_client is not installed')
    assert pt.parse_builtin(text) == pt.parse_with_prometheus_client(text)


def test_grouping_results():
    series = pt.parse_builtin('# TYPE a gauge\na 1\nb 2\na 3\n# TYPE h histogram\nh_bucket{le="1"} 1\nh 9\n')
    assert [(s['name'], s['type']) for s in series] == [
        ('a', 'gauge'), ('b', 'untyped'), ('a', 'untyped'), ('h_bucket', 'histogram'), ('h', 'untyped')]


@pytest.mark.parametrize('text', [
    'nv_x{a="b" 1\n',          # unterminated label set
    'nv_x{a=b} 1\n',           # unquoted label value
    'nv_x abc\n',              # not a number
    'nv_x\n',                  # no value
    'nv_x 1_000\n',            # underscores are not allowed in values
    '# TYPE nv_x nonsense\nnv_x 1\n',
    'nv_x{a="1",a="2"} 1\n',   # duplicate label
])
def test_invalid_text(parse, text):
    with pytest.raises((pt.PrometheusTextError, ValueError)):
        parse(text)


def test_invalid_text_raises_our_error_type():
    for parser in ('builtin', 'prometheus_client') if pt.HAS_PROMETHEUS_CLIENT else ('builtin',):
        with pytest.raises(pt.PrometheusTextError):
            pt.parse_text('nv_x{a="b" 1\n', parser)


# --- parser selection ------------------------------------------------------------------------------

def test_parse_text_auto_uses_prometheus_client(triton_text):
    if not pt.HAS_PROMETHEUS_CLIENT:
        pytest.skip('prometheus_client is not installed')
    series, used = pt.parse_text(triton_text)
    assert used == 'prometheus_client' and len(series) == 24


def test_parse_text_builtin(triton_text):
    series, used = pt.parse_text(triton_text.encode(), 'builtin')
    assert used == 'builtin' and len(series) == 24


def test_parse_text_rejects_unknown_parser():
    with pytest.raises(ValueError):
        pt.parse_text('', 'fancy')


def test_without_prometheus_client(monkeypatch, triton_text):
    """A fresh copy of the module_utils file imported while prometheus_client cannot be imported."""
    monkeypatch.setitem(sys.modules, 'prometheus_client', None)
    monkeypatch.setitem(sys.modules, 'prometheus_client.parser', None)
    spec = importlib.util.spec_from_file_location('prometheus_text_without_client', pt.__file__)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.HAS_PROMETHEUS_CLIENT is False
    assert module.PROMETHEUS_CLIENT_IMPORT_ERROR is not None
    series, used = module.parse_text(triton_text)
    assert used == 'builtin'
    assert series == pt.parse_builtin(triton_text)
    with pytest.raises(module.PrometheusTextError):
        module.parse_text(triton_text, 'prometheus_client')


# --- selection, totals, aggregates -----------------------------------------------------------------

def test_select_by_name_and_glob(triton_text):
    series = pt.parse_builtin(triton_text)
    assert len(pt.select_series(series)) == 24
    assert len(pt.select_series(series, ['nv_*'])) == 24
    gpu = pt.select_series(series, ['nv_gpu_*'])
    assert [s['name'] for s in gpu] == ['nv_gpu_utilization', 'nv_gpu_memory_total_bytes', 'nv_gpu_memory_used_bytes',
                                        'nv_gpu_power_usage', 'nv_gpu_power_limit']
    assert len(pt.select_series(series, 'nv_cpu_utilization')) == 1
    assert pt.select_series(series, ['nv_gpu']) == []


def test_select_by_labels(triton_text):
    series = pt.parse_builtin(triton_text)
    assert len(pt.select_series(series, labels={'gpu_uuid': UUID})) == 6
    assert len(pt.select_series(series, labels={'model': 'gpu_matmul'})) == 13
    backend = pt.select_series(series, ['nv_inference_request_failure'], {'reason': 'BACKEND'})
    assert [s['labels']['reason'] for s in backend] == ['BACKEND']
    either = pt.select_series(series, ['nv_inference_request_failure'], {'reason': ['BACKEND', 'OTHER']})
    assert sorted(s['labels']['reason'] for s in either) == ['BACKEND', 'OTHER']
    # Ansible may hand over numbers; labels are strings
    assert len(pt.select_series(series, ['nv_inference_count'], {'version': 1})) == 1
    assert pt.select_series(series, labels={'model': 'ensemble'}) == []


def test_totals(triton_text):
    series = pt.parse_builtin(triton_text + EXTRA)
    totals = pt.totals(series)
    assert totals['nv_gpu_memory_total_bytes'] == 85520809984
    assert totals['nv_inference_request_failure'] == 0
    assert totals['nv_inference_request_success'] == 1
    # NaN quantile is skipped
    assert totals['nv_inference_request_summary_us'] == 20123.25
    twice = pt.totals(series + [dict(series[0])])
    assert twice['nv_inference_request_success'] == 2


def test_aggregates():
    series = [{'name': 'x', 'labels': {}, 'value': v, 'type': 'gauge'} for v in (1, 2.5, None, 4)]
    assert pt.aggregate(series, 'sum') == 7.5
    assert pt.aggregate(series, 'min') == 1
    assert pt.aggregate(series, 'max') == 4
    assert pt.aggregate(series, 'avg') == 2.5
    assert pt.aggregate(series, 'count') == 4
    assert pt.aggregate([], 'sum') is None
    assert pt.aggregate([], 'count') == 0
    with pytest.raises(ValueError):
        pt.aggregate(series, 'median')


@pytest.mark.parametrize('raw, expected', [
    (1, 1), (1.0, 1), ('85520809984', 85520809984), (0.5, 0.5), (float('nan'), None), (float('inf'), None),
    (-float('inf'), None), (2 ** 60, float(2 ** 60)),
])
def test_normalize_value(raw, expected):
    value = pt.normalize_value(raw)
    assert value == expected and type(value) is type(expected)
    assert value is None or math.isfinite(value)
