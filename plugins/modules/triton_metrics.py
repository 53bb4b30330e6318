#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, tritonfleet maintainers
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

__metaclass__ = type

DOCUMENTATION = r'''
---
module: triton_metrics
short_description: Scrape and assert on Triton Inference Server's Prometheus metrics
version_added: 0.1.0
description:
  - Fetches Triton's metrics endpoint (C(/metrics) on the metrics port, 8002 by default), parses the
    Prometheus text format and returns the selected series and their totals.
  - Parsing uses C(prometheus_client)'s parser when it is installed on the managed host and a built-in
    parser otherwise; both give the same results.
  - Optional O(assertions) compare series with fixed values or with an earlier scrape (O(baseline)); the
    module fails, listing them, when any assertion fails, in check mode too.
author:
  - tritonfleet maintainers (@tritonfleet)
options:
  url:
    description:
      - URL of the metrics endpoint, for example V(http://127.0.0.1:8002/metrics).
    type: str
    required: true
  metrics:
    description:
      - Names of the metrics to return in RV(series) and RV(totals).
      - Each entry is an exact sample name or a shell-style glob (V(nv_gpu_*)).
      - Names are the sample names as exposed, for example V(nv_inference_request_success) or
        V(nv_inference_request_summary_us_count).
    type: list
    elements: str
    default: ['nv_*']
  labels:
    description:
      - "Only return series whose labels have these values, for example V({model: ensemble})."
      - A list value matches any of its items. Values are compared as strings.
    type: dict
    default: {}
  assertions:
    description:
      - Checks on the scraped metrics. The module fails when any of them does not hold.
      - Assertions see every scraped series; O(metrics) and O(labels) only shape RV(series) and RV(totals).
    type: list
    elements: dict
    default: []
    suboptions:
      metric:
        description:
          - Sample name (or glob) the assertion is about.
        type: str
        required: true
      labels:
        description:
          - Label filter for the assertion, as for the module's O(labels).
        type: dict
        default: {}
      op:
        description:
          - Comparison of the aggregated value with O(assertions[].value).
          - V(increased) compares with the same aggregate over O(baseline) and holds when the value grew
            (by at least O(assertions[].value) when that is given). A series missing from the baseline
            counts as 0 there.
        type: str
        required: true
        choices: ['>', '>=', '==', '<=', '<', '!=', 'increased']
      value:
        description:
          - Value to compare with. Required for every O(assertions[].op) except V(increased), where it is
            the minimum increase.
        type: float
      aggregate:
        description:
          - How the values of the matching series are combined before comparing.
          - With V(count), an assertion that matches nothing has the value 0; with the others it fails.
        type: str
        choices: ['sum', 'min', 'max', 'avg', 'count']
        default: sum
  baseline:
    description:
      - The RV(series) returned by an earlier run of this module (or that whole earlier result), used by
        V(increased) assertions.
      - Take the baseline with O(metrics)/O(labels) that include the series the assertions are about.
    type: raw
  timeout:
    description:
      - Timeout of the HTTP request, in seconds.
    type: float
    default: 10
  validate_certs:
    description:
      - Validate TLS certificates for C(https) URLs.
    type: bool
    default: true
  use_proxy:
    description:
      - Use the proxy from the environment (E(http_proxy), E(https_proxy), E(no_proxy)).
      - Set to V(false) when scraping a local server on a host whose proxy does not exempt it.
    type: bool
    default: true
  parser:
    description:
      - Which parser to use. V(auto) uses C(prometheus_client) when importable, else the built-in one.
    type: str
    choices: ['auto', 'prometheus_client', 'builtin']
    default: auto
extends_documentation_fragment:
  - tritonfleet.serving.attributes
  - tritonfleet.serving.attributes.info_module
notes:
  - Values that are NaN or infinite are returned as null and left out of sums.
  - RV(totals) adds up every selected series of a name, whatever its other labels (for example
    C(nv_gpu_memory_used_bytes) over all GPUs).
seealso:
  - name: Triton metrics
    description: The metrics Triton Inference Server exposes.
    link: https://docs.nvidia.com/deeplearning/triton-inference-server/user-guide/docs/user_guide/metrics.html
'''

EXAMPLES = r'''
- name: Read the GPU metrics of a Triton server
  tritonfleet.serving.triton_metrics:
    url: http://127.0.0.1:8002/metrics
    metrics:
      - nv_gpu_*
  register: gpu_metrics

- name: Counters of the ensemble before a test request
  tritonfleet.serving.triton_metrics:
    url: "http://{{ inventory_hostname }}:8002/metrics"
    metrics: [nv_inference_*]
    labels:
      model: ensemble
  register: before

- name: Send a request through the ensemble
  ansible.builtin.uri:
    url: "http://{{ inventory_hostname }}:8000/v2/models/ensemble/generate"
    method: POST
    body_format: json
    body: {text_input: "What is machine learning?", max_tokens: 16}

- name: The request was counted, nothing failed and the GPU has memory left
  tritonfleet.serving.triton_metrics:
    url: "http://{{ inventory_hostname }}:8002/metrics"
    metrics: [nv_inference_*]
    labels:
      model: ensemble
    baseline: "{{ before.series }}"
    assertions:
      - metric: nv_inference_request_success
        labels: {model: ensemble}
        op: increased
      - metric: nv_inference_request_failure
        labels: {model: ensemble}
        op: "=="
        value: 0
      - metric: nv_gpu_memory_used_bytes
        op: "<"
        value: 80000000000
        aggregate: max
      - metric: nv_gpu_utilization
        op: ">="
        value: 1
        aggregate: count
'''

RETURN = r'''
series:
  description: The selected samples, in the order of the exposition.
  returned: always
  type: list
  elements: dict
  contains:
    name:
      description: Sample name as exposed.
      type: str
      sample: nv_gpu_memory_total_bytes
    labels:
      description: Labels of the sample.
      type: dict
      sample: {"gpu_uuid": "GPU-00000000-1111-2222-3333-444444444444"}
    value:
      description: Value; int when integral, float otherwise, null for NaN/Inf.
      type: raw
      sample: 85520809984
    type:
      description: Metric type (counter, gauge, histogram, summary, untyped ...).
      type: str
      sample: gauge
  sample:
    - {"name": "nv_gpu_memory_total_bytes", "labels": {"gpu_uuid": "GPU-00000000-1111-2222-3333-444444444444"},
       "value": 85520809984, "type": "gauge"}
totals:
  description: For each name in RV(series), the sum of its values.
  returned: always
  type: dict
  sample: {"nv_gpu_memory_total_bytes": 85520809984, "nv_inference_request_success": 1}
failed_assertions:
  description: The entries of RV(assertion_results) that did not hold.
  returned: always
  type: list
  elements: dict
assertion_results:
  description:
    - One entry per assertion with C(metric), C(labels), C(op), C(value), C(aggregate), C(matched)
      (number of matching series), C(actual) (the aggregated value), C(baseline) (for V(increased)),
      C(passed) and C(msg).
  returned: always
  type: list
  elements: dict
  sample:
    - {"metric": "nv_inference_request_success", "labels": {"model": "ensemble"}, "op": "increased",
       "value": null, "aggregate": "sum", "matched": 1, "actual": 5, "baseline": 4, "passed": true,
       "msg": "nv_inference_request_success{model=ensemble} sum 5 increased from 4 (by 1)"}
parser:
  description: The parser that was used, C(prometheus_client) or C(builtin).
  returned: always
  type: str
  sample: prometheus_client
url:
  description: The URL that was scraped.
  returned: always
  type: str
  sample: http://127.0.0.1:8002/metrics
'''

import operator

from ansible.module_utils.basic import AnsibleModule, missing_required_lib
from ansible.module_utils.common.text.converters import to_native, to_text
from ansible.module_utils.urls import open_url

from ansible_collections.tritonfleet.serving.plugins.module_utils.prometheus_text import (
    AGGREGATES,
    HAS_PROMETHEUS_CLIENT,
    PARSERS,
    PROMETHEUS_CLIENT_IMPORT_ERROR,
    PrometheusTextError,
    aggregate,
    parse_text,
    select_series,
    totals,
)

OPS = {
    '>': operator.gt,
    '>=': operator.ge,
    '==': operator.eq,
    '<=': operator.le,
    '<': operator.lt,
    '!=': operator.ne,
}
OP_CHOICES = list(OPS) + ['increased']


def scrape(url, timeout, validate_certs=True, use_proxy=True):
    """GET url and return its body as text (raises on any failure)."""
    response = open_url(url, method='GET', timeout=timeout, validate_certs=validate_certs, use_proxy=use_proxy,
                        headers={'Accept': 'text/plain;version=0.0.4;q=1,*/*;q=0.1'})
    return to_text(response.read(), errors='surrogate_or_replace')


def normalize_baseline(baseline):
    """Accept the series list of an earlier result, or the whole result. Raises ValueError."""
    if baseline is None:
        return None
    if isinstance(baseline, dict):
        if 'series' not in baseline:
            raise ValueError('baseline is a dict without a "series" key')
        baseline = baseline['series']
    if not isinstance(baseline, list):
        raise ValueError('baseline must be the "series" list of an earlier triton_metrics result')
    series = []
    for position, item in enumerate(baseline):
        if not isinstance(item, dict) or 'name' not in item or 'value' not in item:
            raise ValueError('baseline entry %d is not a series ({name, labels, value, type})' % position)
        labels = item.get('labels') or {}
        if not isinstance(labels, dict):
            raise ValueError('baseline entry %d has labels that are not a dict' % position)
        value = item['value']
        if value is not None and not isinstance(value, (int, float)):
            try:
                value = float(value)
            except (TypeError, ValueError):
                raise ValueError('baseline entry %d has a non-numeric value %r' % (position, value))
        series.append({'name': item['name'], 'labels': dict((k, to_text(v)) for k, v in labels.items()),
                       'value': value, 'type': item.get('type', 'untyped')})
    return series


def evaluate_assertion(assertion, series, baseline=None):
    """Evaluate one assertion (a dict of the assertions suboptions) against parsed series."""
    metric = assertion['metric']
    labels = assertion.get('labels') or {}
    op = assertion['op']
    expected = assertion.get('value')
    how = assertion.get('aggregate') or 'sum'
    matched = select_series(series, [metric], labels)
    actual = aggregate(matched, how)
    result = {
        'metric': metric, 'labels': labels, 'op': op, 'value': expected, 'aggregate': how,
        'matched': len(matched), 'actual': actual, 'passed': False,
    }
    where = metric + ('{%s}' % ','.join('%s=%s' % item for item in sorted(labels.items())) if labels else '')

    if actual is None:
        result['msg'] = ('no series matched %s' % where) if not matched else \
            ('%s has no numeric value (NaN/Inf)' % where)
        if op == 'increased':
            result['baseline'] = None
        return result

    if op == 'increased':
        base_matched = select_series(baseline or [], [metric], labels)
        base = aggregate(base_matched, how) if base_matched else 0
        if base is None:
            base = 0
        result['baseline'] = base
        delta = actual - base
        if expected is None:
            result['passed'] = delta > 0
            needed = 'increased'
        else:
            result['passed'] = delta >= expected
            needed = 'increased by at least %s' % expected
        result['msg'] = '%s %s %s %s from %s (by %s)' % (
            where, how, actual, needed if result['passed'] else 'has not ' + needed, base, delta)
        return result

    result['passed'] = bool(OPS[op](actual, expected))
    result['msg'] = '%s %s is %s; expected %s %s%s' % (
        where, how, actual, op, expected, '' if result['passed'] else ' (failed)')
    return result


def main():
    module = AnsibleModule(
        argument_spec=dict(
            url=dict(type='str', required=True),
            metrics=dict(type='list', elements='str', default=['nv_*']),
            labels=dict(type='dict', default={}),
            assertions=dict(
                type='list', elements='dict', default=[],
                options=dict(
                    metric=dict(type='str', required=True),
                    labels=dict(type='dict', default={}),
                    op=dict(type='str', required=True, choices=OP_CHOICES),
                    value=dict(type='float'),
                    aggregate=dict(type='str', default='sum', choices=list(AGGREGATES)),
                ),
            ),
            baseline=dict(type='raw'),
            timeout=dict(type='float', default=10),
            validate_certs=dict(type='bool', default=True),
            use_proxy=dict(type='bool', default=True),
            parser=dict(type='str', default='auto', choices=list(PARSERS)),
        ),
        supports_check_mode=True,
    )
    params = module.params
    if params['parser'] == 'prometheus_client' and not HAS_PROMETHEUS_CLIENT:
        module.fail_json(msg=missing_required_lib('prometheus_client'),
                         exception=to_native(PROMETHEUS_CLIENT_IMPORT_ERROR))

    assertions = params['assertions'] or []
    for position, assertion in enumerate(assertions):
        if assertion['op'] != 'increased' and assertion['value'] is None:
            module.fail_json(msg='assertions[%d] (%s %s) needs a value' % (position, assertion['metric'], assertion['op']))
    try:
        baseline = normalize_baseline(params['baseline'])
    except ValueError as exc:
        module.fail_json(msg='Invalid baseline: %s' % to_native(exc))
    if baseline is None and any(a['op'] == 'increased' for a in assertions):
        module.fail_json(msg='An "increased" assertion needs a baseline: pass the "series" of an earlier '
                             'triton_metrics result as baseline')

    url = params['url']
    try:
        text = scrape(url, params['timeout'], params['validate_certs'], params['use_proxy'])
    except Exception as exc:  # open_url raises many kinds (HTTPError, URLError, socket, SSL ...)
        module.fail_json(msg='Cannot scrape %s: %s' % (url, to_native(exc)), url=url)

    try:
        series, parser_used = parse_text(text, params['parser'])
    except PrometheusTextError as exc:
        module.fail_json(msg='Cannot parse metrics from %s: %s' % (url, to_native(exc)), url=url)

    selected = select_series(series, params['metrics'], params['labels'])
    results = [evaluate_assertion(assertion, series, baseline) for assertion in assertions]
    failed = [result for result in results if not result['passed']]
    output = dict(
        changed=False,
        url=url,
        parser=parser_used,
        series=selected,
        totals=totals(selected),
        assertion_results=results,
        failed_assertions=failed,
    )
    if failed:
        module.fail_json(msg='%d of %d metric assertions failed: %s' % (
            len(failed), len(results), '; '.join(result['msg'] for result in failed)), **output)
    module.exit_json(**output)


if __name__ == '__main__':
    main()
