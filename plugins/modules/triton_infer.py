#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, tritonfleet maintainers
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import absolute_import, division, print_function
__metaclass__ = type

DOCUMENTATION = r'''
---
module: triton_infer
short_description: Send text through a Triton text-generation model (the TensorRT-LLM ensemble) and check the answer
version_added: 0.1.0
description:
  - Sends one prompt to a model that speaks upstream's TensorRT-LLM ensemble tensor contract
    (C(text_input), C(max_tokens) and optional sampling inputs in, C(text_output) out) and returns the text.
  - Over gRPC it always uses the bidirectional streaming API, which serves decoupled models (the ensemble)
    and ordinary ones alike. With O(stream=true) the model sends one response per token and the pieces are
    concatenated; the request ends when the response flagged C(triton_final_response) arrives.
  - Over HTTP it uses Triton's generate extension (C(/v2/models/<model>/generate), or C(generate_stream)
    read as server-sent events when O(stream=true)), or plain KServe v2 inference with O(http_endpoint=infer)
    for models that are not decoupled.
  - It never reports a change. Check mode does not send the request (see the C(check_mode) attribute).
author:
  - tritonfleet maintainers (@tritonfleet)
requirements:
  - tritonclient[grpc] and numpy for O(protocol=grpc); tritonclient[http] and numpy for O(http_endpoint=infer)
extends_documentation_fragment:
  - tritonfleet.serving.attributes
  - tritonfleet.serving.triton
attributes:
  check_mode:
    support: partial
    details:
      - The request is B(not) sent in check mode, because inference costs GPU time and moves the server's
        metrics. The arguments and O(url) are checked as in a normal run; the module then returns
        RV(skipped=true), RV(endpoint) and the RV(request) it would have sent, without RV(text).
      - O(expect_text) and O(min_responses) are not checked, and the server is not contacted.
  diff_mode:
    support: N/A
    details:
      - The module changes nothing, so there is nothing to diff.
options:
  protocol:
    description: Protocol to send the request with.
    type: str
    choices: [grpc, http]
    default: grpc
  model:
    description: Model to send the request to.
    type: str
    default: ensemble
  model_version:
    description: Model version; empty lets the server choose.
    type: str
    default: ''
  prompt:
    description: The text sent as C(text_input).
    type: str
    required: true
  max_tokens:
    description: Sent as C(max_tokens) (INT32).
    type: int
    default: 32
  stream:
    description:
      - Ask for a streamed answer. Sent as the C(stream) input (BOOL) only when set.
      - Over HTTP V(true) selects the C(generate_stream) endpoint.
      - Unset behaves as V(false) but leaves the input out, so models without a C(stream) input work.
    type: bool
  parameters:
    description:
      - Optional ensemble inputs, each sent with shape C([1, 1]) and only when given (a null value is not sent).
      - "Known keys and their datatypes: C(bad_words), C(stop_words) (BYTES; a list is joined with commas, the
        format upstream's preprocessing reads), C(end_id), C(pad_id), C(top_k), C(min_length), C(beam_width) (INT32),
        C(top_p), C(temperature), C(length_penalty), C(repetition_penalty), C(presence_penalty) (FP32),
        C(random_seed) (UINT64), C(return_log_probs) (BOOL)."
      - Any other key fails; use O(extra_inputs) for inputs outside this list.
    type: dict
    default: {}
  extra_inputs:
    description: Further inputs sent with shape C([1, 1]), for models that take more than the known O(parameters).
    type: list
    elements: dict
    default: []
    suboptions:
      name:
        description: Input name.
        type: str
        required: true
      datatype:
        description: Triton datatype.
        type: str
        required: true
        choices: [BOOL, BYTES, FP16, FP32, FP64, INT8, INT16, INT32, INT64, UINT8, UINT16, UINT32, UINT64]
      value:
        description: The scalar value.
        type: raw
        required: true
  http_endpoint:
    description:
      - With O(protocol=http), V(generate) uses the generate extension (decoupled models included, as long as
        they send one response when not streaming); V(infer) sends a plain inference request, for models that
        are not decoupled and do not stream.
    type: str
    choices: [generate, infer]
    default: generate
  timeout:
    description: Overall time limit of the request, in seconds.
    type: float
    default: 60
  expect_text:
    description:
      - The answer must contain this text, or match it as a regular expression (C(re.search)); the module fails
        otherwise.
    type: str
  min_responses:
    description:
      - Fail unless at least this many responses carrying text arrived. With O(stream=true) the ensemble sends
        one response per generated token, so this is a floor on generated tokens.
    type: int
  request_id:
    description: Request id sent with the request (gRPC only).
    type: str
    default: ''
  validate_certs:
    description: Verify the server's TLS certificate for V(https://) URLs with the generate extension.
    type: bool
    default: true
notes:
  - RV(tokens_per_second) is the number of streamed responses divided by RV(total_time); each streamed response of
    the ensemble carries one token's text. It is null when not streaming.
  - Over HTTP, Triton answers C(/generate) with an error when a model sends more than one response; use
    O(stream=true) (C(generate_stream)) for streamed answers.
seealso:
  - module: tritonfleet.serving.triton_health
'''

EXAMPLES = r'''
- name: Ask the ensemble a question over gRPC, streamed
  tritonfleet.serving.triton_infer:
    url: 127.0.0.1:8001
    prompt: "What is machine learning?"
    max_tokens: 64
    stream: true
    parameters:
      temperature: 0.7
      top_k: 40
      random_seed: 1234
    min_responses: 4
  register: answer

- name: Same through HTTP's generate endpoint, and require a word in the answer
  tritonfleet.serving.triton_infer:
    url: http://127.0.0.1:8000
    protocol: http
    prompt: "The capital of France is"
    max_tokens: 8
    expect_text: "(?i)paris"

- name: Report time to first token
  ansible.builtin.debug:
    msg: "TTFT {{ answer.time_to_first_token }}s, {{ answer.tokens_per_second }} tokens/s"
'''

RETURN = r'''
text:
  description: The answer (streamed pieces concatenated).
  returned: success or failure after a request was sent
  type: str
  sample: " Machine learning is a field of"
responses:
  description: Number of responses that carried text (the empty final-flag response of a decoupled model is not counted).
  returned: success or failure after a request was sent
  type: int
  sample: 8
time_to_first_token:
  description: Seconds from sending the request to the first response with text; null when none came.
  returned: success or failure after a request was sent
  type: float
  sample: 0.042
total_time:
  description: Seconds from sending the request to its end (final flag, end of the event stream or the answer).
  returned: success or failure after a request was sent
  type: float
  sample: 0.311
tokens_per_second:
  description: Streamed responses per second of RV(total_time); null when not streaming.
  returned: success or failure after a request was sent
  type: float
  sample: 25.7
final_response:
  description: Whether the request ended properly (final flag, end of stream or a complete answer).
  returned: success or failure after a request was sent
  type: bool
  sample: true
endpoint:
  description: How the request was sent (C(stream_infer) for gRPC, C(generate), C(generate_stream) or C(infer) for HTTP).
  returned: always
  type: str
  sample: stream_infer
request:
  description: The inputs sent (or, in check mode, that would have been sent), name to value.
  returned: always
  type: dict
  sample: {text_input: "What is machine learning?", max_tokens: 64, stream: true, temperature: 0.7}
protocol:
  description: Protocol used.
  returned: always
  type: str
  sample: grpc
model:
  description: Model the request went to.
  returned: always
  type: str
  sample: ensemble
url:
  description: The normalised server URL.
  returned: always
  type: str
  sample: grpc://127.0.0.1:8001
stream:
  description: Whether a streamed answer was asked for.
  returned: always
  type: bool
  sample: true
skipped:
  description: True in check mode, where no request is sent.
  returned: check mode
  type: bool
  sample: true
'''

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.common.text.converters import to_text

from ansible_collections.tritonfleet.serving.plugins.module_utils.triton_client import (
    TritonError,
    normalize_url,
    one_line,
    require_tritonclient,
)
from ansible_collections.tritonfleet.serving.plugins.module_utils.triton_generate import (
    DATATYPES,
    build_generation_inputs,
    generate_request_body,
    grpc_generate,
    http_generate,
    http_infer,
    text_matches,
)


def run_module():
    module = AnsibleModule(
        argument_spec=dict(
            url=dict(type='str'),
            protocol=dict(type='str', default='grpc', choices=['grpc', 'http']),
            model=dict(type='str', default='ensemble'),
            model_version=dict(type='str', default=''),
            prompt=dict(type='str', required=True),
            max_tokens=dict(type='int', default=32, no_log=False),
            stream=dict(type='bool'),
            parameters=dict(type='dict', default={}),
            extra_inputs=dict(type='list', elements='dict', default=[], options=dict(
                name=dict(type='str', required=True),
                datatype=dict(type='str', required=True, choices=list(DATATYPES)),
                value=dict(type='raw', required=True),
            )),
            http_endpoint=dict(type='str', default='generate', choices=['generate', 'infer']),
            timeout=dict(type='float', default=60.0),
            expect_text=dict(type='str'),
            min_responses=dict(type='int'),
            request_id=dict(type='str', default=''),
            validate_certs=dict(type='bool', default=True),
        ),
        supports_check_mode=True,
    )
    params = module.params
    protocol = params['protocol']
    stream = bool(params['stream'])
    if params['timeout'] <= 0:
        module.fail_json(msg='timeout must be greater than 0, got %s' % params['timeout'])
    if params['max_tokens'] < 1:
        module.fail_json(msg='max_tokens must be at least 1, got %s' % params['max_tokens'])
    if params['min_responses'] is not None and params['min_responses'] < 0:
        module.fail_json(msg='min_responses must not be negative')
    if protocol == 'http' and params['http_endpoint'] == 'infer' and stream:
        module.fail_json(msg='stream=true needs the generate endpoint (or gRPC); http_endpoint=infer cannot stream')
    try:
        endpoint = normalize_url(params['url'], protocol)
        inputs = build_generation_inputs(params['prompt'], params['max_tokens'], stream=params['stream'],
                                         parameters=params['parameters'], extra_inputs=params['extra_inputs'])
    except ValueError as exc:
        module.fail_json(msg=to_text(exc))

    if protocol == 'grpc':
        how = 'stream_infer'
    elif params['http_endpoint'] == 'infer':
        how = 'infer'
    else:
        how = 'generate_stream' if stream else 'generate'

    result = dict(changed=False, protocol=protocol, model=params['model'], url=endpoint.base_url,
                  stream=stream, endpoint=how, request=generate_request_body(inputs))

    if module.check_mode:
        module.exit_json(skipped=True, msg='check mode: request not sent', **result)

    if protocol == 'grpc':
        require_tritonclient(module, 'grpc', numpy_needed=True)
    elif how == 'infer':
        require_tritonclient(module, 'http', numpy_needed=True)

    try:
        if how == 'stream_infer':
            answer = grpc_generate(endpoint, params['model'], inputs, params['timeout'],
                                   model_version=params['model_version'], request_id=params['request_id'])
        elif how == 'infer':
            answer = http_infer(endpoint, params['model'], inputs, params['timeout'],
                                model_version=params['model_version'])
        else:
            answer = http_generate(endpoint, params['model'], inputs, params['timeout'], stream=stream,
                                   model_version=params['model_version'], validate_certs=params['validate_certs'])
    except TritonError as exc:
        partial = exc.details.get('result')
        if partial is not None:
            result.update(partial.as_dict(stream))
        module.fail_json(msg=exc.msg, **result)

    result.update(answer.as_dict(stream))
    text = result['text']
    if params['min_responses'] is not None and result['responses'] < params['min_responses']:
        module.fail_json(msg='%s sent %d response(s) with text, fewer than min_responses=%d'
                         % (params['model'], result['responses'], params['min_responses']), **result)
    if params['expect_text'] is not None and not text_matches(text, params['expect_text']):
        module.fail_json(msg='answer of %s does not match expect_text %r: %r'
                         % (params['model'], params['expect_text'], one_line(text, 300)), **result)
    module.exit_json(**result)


def main():
    run_module()


if __name__ == '__main__':
    main()
