#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, tritonfleet maintainers
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import absolute_import, division, print_function
__metaclass__ = type

DOCUMENTATION = r'''
---
module: triton_verify
short_description: Check all Triton servers of a host at once (ready, answering over gRPC and HTTP, counting requests)
version_added: 0.2.0
description:
  - Checks every server in O(servers) concurrently, one thread per server, in a single module call.
  - "For each server, in order, stopping at the first step that fails: wait until the server and its models are
    ready (O(models), or the server's own C(models)); read the ensemble's C(nv_inference_request_success) counter;
    send O(prompt) through O(model) over gRPC (streamed when O(stream=true)) and, with O(http_request=true), over
    HTTP's generate endpoint; require a non-empty answer matching O(expect_text); read the counter again and
    require that it grew."
  - The module fails when any server fails; RV(servers) then holds every server's result, each with its own
    RV(servers[].msg), and the failed names are in RV(failed_servers).
  - It never reports a change. Check mode does not contact the servers (see the C(check_mode) attribute).
author:
  - tritonfleet maintainers (@tritonfleet)
requirements:
  - tritonclient[grpc] and numpy; tritonclient[http] when O(health_protocol=http)
extends_documentation_fragment:
  - tritonfleet.serving.attributes
attributes:
  check_mode:
    support: partial
    details:
      - In check mode nothing is sent (inference costs GPU time and moves the metrics); the module returns
        RV(skipped=true) and the servers it would have checked.
  diff_mode:
    support: N/A
    details:
      - The module changes nothing, so there is nothing to diff.
options:
  servers:
    description:
      - The servers of the host, as the servers stage lays them out (C(tritonfleet_servers)); other keys are ignored.
      - Each needs C(name), C(http_port) and C(grpc_port), and C(metrics_port) with O(assert_metrics=true).
      - A non-empty C(load_models) (an explicit-mode server's load list) replaces O(models) for that server.
      - C(log_file), or with O(read_logs=true) C(log_dir)/C(name).log of a server whose C(runtime) is not
        V(docker), is the server's log on the host the module runs on; when the server is not ready its last
        O(log_lines) lines are returned in RV(servers[].log_tail), and load failures found in it are named in the message.
    type: list
    elements: dict
    required: true
  read_logs:
    description: Read the log of each process server from C(log_dir) (the module runs on the servers' host).
    type: bool
    default: false
  address:
    description: Address of the servers, as this host reaches them (a name, an IPv4 or an IPv6 address).
    type: str
    default: 127.0.0.1
  models:
    description: Models that must be ready on every server without its own C(models).
    type: list
    elements: str
    default: []
  health_protocol:
    description: Protocol of the readiness checks.
    type: str
    choices: [grpc, http]
    default: grpc
  health_timeout:
    description: Seconds each server may take to become ready.
    type: float
    default: 300
  interval:
    description: Seconds between two readiness polls.
    type: float
    default: 0.25
  model:
    description: Model that takes C(text_input) and returns C(text_output).
    type: str
    default: ensemble
  prompt:
    description: Prompt sent to each server.
    type: str
    required: true
  max_tokens:
    description: Tokens to generate.
    type: int
    default: 16
  stream:
    description: Ask for a streamed answer over gRPC (only a decoupled model streams). HTTP never streams.
    type: bool
    default: true
  http_request:
    description: Also send the prompt over HTTP (Triton's generate endpoint).
    type: bool
    default: true
  expect_text:
    description: Each answer must contain this text or match it as a regular expression; empty accepts any non-empty answer.
    type: str
    default: ''
  request_timeout:
    description: Seconds one inference request may take.
    type: float
    default: 60
  assert_metrics:
    description: Require that each server's C(nv_inference_request_success) counter of O(model) grew.
    type: bool
    default: true
  log_lines:
    description: How many lines of a server's C(log_file) to return when it is not ready.
    type: int
    default: 40
seealso:
  - module: tritonfleet.serving.triton_health
  - module: tritonfleet.serving.triton_infer
  - module: tritonfleet.serving.triton_metrics
'''

EXAMPLES = r'''
- name: Check both servers of a host
  tritonfleet.serving.triton_verify:
    address: 127.0.0.1
    servers:
      - {name: triton0, http_port: 8000, grpc_port: 8001, metrics_port: 8002}
      - {name: triton1, http_port: 8010, grpc_port: 8011, metrics_port: 8012}
    models: [preprocessing, tensorrt_llm, postprocessing, ensemble]
    prompt: "Triton serves large language models"
    max_tokens: 16
  register: checks

- name: Show the answers
  ansible.builtin.debug:
    msg: "{{ checks.servers | map(attribute='grpc.text') | list }}"
'''

RETURN = r'''
servers:
  description: One result per server, in the order of O(servers).
  returned: always
  type: list
  elements: dict
  contains:
    name:
      description: Server name.
      type: str
    failed:
      description: Whether a check of this server failed.
      type: bool
    stage:
      description: The step that failed (C(health), C(metrics), C(grpc), C(http)), null when none did.
      type: str
    msg:
      description: Why the server failed; empty when it passed.
      type: str
    ready:
      description: Whether the server answered ready.
      type: bool
    live:
      description: Whether the server answered live.
      type: bool
    models:
      description: Each model's C(name), C(version), C(state), C(reason) and C(ready), as the readiness check last saw them.
      type: list
      elements: dict
    elapsed:
      description: Seconds the server took to become ready (or until the readiness check gave up).
      type: float
    attempts:
      description: Readiness polls made.
      type: int
    grpc:
      description:
        - The gRPC answer, null when none came; C(text), C(responses), C(time_to_first_token), C(total_time),
          C(tokens_per_second), C(final_response), C(protocol), C(url), C(endpoint) and C(stream).
      type: dict
    http:
      description: The HTTP answer (same keys as RV(servers[].grpc)), null when none was asked for or none came.
      type: dict
    counter_before:
      description: C(nv_inference_request_success) of O(model) before the requests (null when not read or no series).
      type: float
    counter_after:
      description: The same counter after the requests.
      type: float
    http_url:
      description: The server's HTTP URL.
      type: str
    grpc_address:
      description: The server's gRPC address.
      type: str
    metrics_url:
      description: The server's metrics URL.
      type: str
    log_tail:
      description: Last lines of the server's C(log_file) when it was not ready.
      type: list
      elements: str
    log_load_failures:
      description: Model load failures found in the server's C(log_file) when it was not ready.
      type: list
      elements: dict
  sample:
    - name: triton0
      failed: false
      stage: null
      msg: ""
      ready: true
      elapsed: 0.012
      grpc: {text: " and more", responses: 16, protocol: grpc, stream: true}
      counter_before: 3.0
      counter_after: 5.0
failed_servers:
  description: Names of the servers that failed.
  returned: always
  type: list
  elements: str
  sample: []
elapsed:
  description: Seconds the whole call took.
  returned: always
  type: float
  sample: 0.41
skipped:
  description: True in check mode, where nothing is sent.
  returned: check mode
  type: bool
  sample: true
'''

import time

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.tritonfleet.serving.plugins.module_utils.triton_client import require_tritonclient
from ansible_collections.tritonfleet.serving.plugins.module_utils import triton_verify as checks


def run_module():
    module = AnsibleModule(
        argument_spec=dict(
            servers=dict(type='list', elements='dict', required=True),
            read_logs=dict(type='bool', default=False),
            address=dict(type='str', default='127.0.0.1'),
            models=dict(type='list', elements='str', default=[]),
            health_protocol=dict(type='str', default='grpc', choices=['grpc', 'http']),
            health_timeout=dict(type='float', default=300.0),
            interval=dict(type='float', default=0.25),
            model=dict(type='str', default='ensemble'),
            prompt=dict(type='str', required=True),
            max_tokens=dict(type='int', default=16, no_log=False),
            stream=dict(type='bool', default=True),
            http_request=dict(type='bool', default=True),
            expect_text=dict(type='str', default=''),
            request_timeout=dict(type='float', default=60.0),
            assert_metrics=dict(type='bool', default=True),
            log_lines=dict(type='int', default=40),
        ),
        supports_check_mode=True,
    )
    params = module.params
    for name in ('health_timeout', 'interval', 'request_timeout'):
        if params[name] <= 0:
            module.fail_json(msg='%s must be greater than 0, got %s' % (name, params[name]))
    if params['max_tokens'] < 1:
        module.fail_json(msg='max_tokens must be at least 1, got %s' % params['max_tokens'])
    if params['log_lines'] < 0:
        module.fail_json(msg='log_lines must not be negative')
    try:
        servers = [checks.server_entry(server, params['read_logs']) for server in params['servers']]
    except ValueError as exc:
        module.fail_json(msg='servers: %s' % exc)
    names = [server['name'] for server in servers]
    duplicates = sorted(set(name for name in names if names.count(name) > 1))
    if duplicates:
        module.fail_json(msg='servers: duplicate name(s) %s' % ', '.join(duplicates))
    if params['assert_metrics']:
        missing = [server['name'] for server in servers if not server.get('metrics_port')]
        if missing:
            module.fail_json(msg='assert_metrics needs the metrics_port of %s' % ', '.join(missing))

    if module.check_mode:
        module.exit_json(changed=False, skipped=True, msg='check mode: nothing sent', failed_servers=[], elapsed=0.0,
                         servers=[dict(name=name, failed=False, stage=None, msg='') for name in names])

    require_tritonclient(module, 'grpc', numpy_needed=True)
    if params['health_protocol'] == 'http':
        require_tritonclient(module, 'http')

    settings = checks.VerifySettings(
        address=params['address'], models=params['models'], health_protocol=params['health_protocol'],
        health_timeout=params['health_timeout'], interval=params['interval'], model=params['model'],
        prompt=params['prompt'], max_tokens=params['max_tokens'], stream=params['stream'],
        http_request=params['http_request'], expect_text=params['expect_text'],
        request_timeout=params['request_timeout'], assert_metrics=params['assert_metrics'],
        log_lines=params['log_lines'])
    start = time.monotonic()
    results = checks.verify_servers(servers, settings)
    failed = [result for result in results if result['failed']]
    output = dict(changed=False, servers=results, failed_servers=[result['name'] for result in failed],
                  elapsed=round(time.monotonic() - start, 3))
    if failed:
        reasons = '; '.join(result['msg'] for result in failed)
        module.fail_json(msg='%d of %d server(s) failed: %s' % (len(failed), len(results), reasons), **output)
    module.exit_json(**output)


def main():
    run_module()


if __name__ == '__main__':
    main()
