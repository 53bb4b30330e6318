#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, tritonfleet maintainers
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import absolute_import, division, print_function
__metaclass__ = type

DOCUMENTATION = r'''
---
module: benchmark_client
short_description: Measure one concurrency level of a Triton text-generation model with the collection's gRPC streaming client
version_added: 0.1.0
description:
  - Sends O(requests) streamed generation requests to the ensemble over gRPC from O(concurrency) workers; each worker
    sends its next request when its previous one is done, on a gRPC channel of its own.
  - Records per request the time to first token, the latency and the tokens (one streamed response per token), and
    returns the level's figures as the benchmark report stores them (see RV(level)).
  - A failed request is counted in the C(errors) of RV(level), never retried. No request starts after O(deadline) seconds; one not
    sent by then counts as an error too.
  - It never reports a change. Check mode sends nothing (see the C(check_mode) attribute).
author:
  - tritonfleet maintainers (@tritonfleet)
requirements:
  - tritonclient[grpc] and numpy
extends_documentation_fragment:
  - tritonfleet.serving.attributes
attributes:
  check_mode:
    support: partial
    details:
      - A benchmark sends load, so in check mode nothing is sent; the arguments are checked and the module returns
        RV(skipped=true) and RV(plan), what it would have sent.
  diff_mode:
    support: N/A
    details:
      - The module changes nothing, so there is nothing to diff.
options:
  url:
    description:
      - The server's or the gateway's gRPC address, C(host:port), with or without V(grpc://) (V(grpcs://) turns TLS on).
      - Defaults to C(127.0.0.1:8001).
    type: str
  model:
    description: Model to send the requests to.
    type: str
    default: ensemble
  prompt:
    description: The text sent as C(text_input) in every request.
    type: str
    required: true
  max_tokens:
    description: Sent as C(max_tokens) (INT32).
    type: int
    default: 32
  concurrency:
    description: Requests in flight at once.
    type: int
    required: true
  requests:
    description: Requests to send at this level, in all.
    type: int
    required: true
  deadline:
    description: Seconds the whole level may take; nothing starts after it.
    type: float
    default: 300
  request_timeout:
    description: Seconds one request may take.
    type: float
    default: 60
  parameters:
    description: Optional ensemble inputs, as in M(tritonfleet.serving.triton_infer)'s O(tritonfleet.serving.triton_infer#module:parameters).
    type: dict
    default: {}
  fail_on_errors:
    description: Fail when any request failed (the figures are returned all the same).
    type: bool
    default: false
seealso:
  - module: tritonfleet.serving.triton_infer
  - module: tritonfleet.serving.benchmark_report
'''

EXAMPLES = r'''
- name: Measure concurrency 4 with 64 requests
  tritonfleet.serving.benchmark_client:
    url: 127.0.0.1:8001
    prompt: "Summarize: Triton serves models."
    max_tokens: 32
    concurrency: 4
    requests: 64
  register: level

- name: Show it
  ansible.builtin.debug:
    msg: "p95 {{ level.level.request_latency_ms.p95 }} ms, {{ level.level.output_tokens_per_s }} tokens/s"
'''

RETURN = r'''
level:
  description:
    - The level's figures; times in milliseconds, each statistic as C(mean), C(p50), C(p95) and C(p99) over the requests
      that succeeded.
    - A request's inter-token latency is its latency less its time to first token, over its tokens less one.
  returned: success, and failure with O(fail_on_errors) after the requests were sent
  type: dict
  sample:
    concurrency: 2
    requests: 8
    succeeded: 8
    errors: 0
    unsent: 0
    error_samples: []
    duration_s: 1.52
    output_tokens: 128
    output_tokens_per_s: 84.2
    request_latency_ms: {mean: 380.1, p50: 377.0, p95: 401.2, p99: 404.9}
    time_to_first_token_ms: {mean: 40.2, p50: 39.8, p95: 45.0, p99: 46.1}
    inter_token_latency_ms: {mean: 22.6, p50: 22.5, p95: 23.9, p99: 24.0}
plan:
  description: What the level sends (in check mode, what it would send).
  returned: always
  type: dict
  sample: {url: grpc://127.0.0.1:8001, model: ensemble, concurrency: 2, requests: 8, max_tokens: 16}
skipped:
  description: True in check mode, where nothing is sent.
  returned: check mode
  type: bool
  sample: true
'''

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.common.text.converters import to_text

from ansible_collections.tritonfleet.serving.plugins.module_utils.benchmark_client import run_level
from ansible_collections.tritonfleet.serving.plugins.module_utils.triton_client import (
    normalize_url, require_tritonclient)
from ansible_collections.tritonfleet.serving.plugins.module_utils.triton_generate import build_generation_inputs


def run_module():
    module = AnsibleModule(
        argument_spec=dict(
            url=dict(type='str'),
            model=dict(type='str', default='ensemble'),
            prompt=dict(type='str', required=True),
            max_tokens=dict(type='int', default=32, no_log=False),
            concurrency=dict(type='int', required=True),
            requests=dict(type='int', required=True),
            deadline=dict(type='float', default=300.0),
            request_timeout=dict(type='float', default=60.0),
            parameters=dict(type='dict', default={}),
            fail_on_errors=dict(type='bool', default=False),
        ),
        supports_check_mode=True,
    )
    params = module.params
    for name in ('concurrency', 'requests', 'max_tokens'):
        if params[name] < 1:
            module.fail_json(msg='%s must be at least 1, got %s' % (name, params[name]))
    for name in ('deadline', 'request_timeout'):
        if params[name] <= 0:
            module.fail_json(msg='%s must be greater than 0, got %s' % (name, params[name]))
    try:
        endpoint = normalize_url(params['url'], 'grpc')
        # The ensemble streams one response per token only when asked to.
        inputs = build_generation_inputs(params['prompt'], params['max_tokens'], stream=True,
                                         parameters=params['parameters'])
    except ValueError as exc:
        module.fail_json(msg=to_text(exc))

    plan = dict(url=endpoint.base_url, model=params['model'], concurrency=params['concurrency'],
                requests=params['requests'], max_tokens=params['max_tokens'], deadline=params['deadline'],
                request_timeout=params['request_timeout'])
    if module.check_mode:
        module.exit_json(changed=False, skipped=True, plan=plan,
                         msg='check mode: would send %(requests)d requests at concurrency %(concurrency)d to %(url)s' % plan)

    require_tritonclient(module, 'grpc', numpy_needed=True)
    level = run_level(endpoint, params['model'], inputs, params['concurrency'], params['requests'],
                      params['deadline'], params['request_timeout'])
    result = dict(changed=False, plan=plan, level=level)
    if level['errors'] and params['fail_on_errors']:
        module.fail_json(msg='%d of %d requests failed at concurrency %d; first: %s' % (
            level['errors'], level['requests'], level['concurrency'], level['error_samples'][0]), **result)
    module.exit_json(**result)


def main():
    run_module()


if __name__ == '__main__':
    main()
