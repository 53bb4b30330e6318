#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, tritonfleet maintainers
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: evaluate_generate
short_description: Summarize every article of a summarization set through a Triton ensemble
version_added: 0.4.0
description:
  - "Reads a JSONL summarization set, builds TensorRT-LLM C(summarize.py)'s prompt from each article (the article,
    then C( TL;DR: )) and sends the prompts one after another to a Triton server's ensemble model over one
    connection, returning the text of every answer in the set's order."
  - The candidate side of the ROUGE regression gate (M(tritonfleet.serving.rouge_gate)); the reference side runs the
    same prompts through the reference model.
  - Fails, naming the sample and the server, on the first request that gets no answer, so the gate never scores
    a partial set.
requirements:
  - tritonclient[grpc] and numpy (gRPC), on the host that runs the module
author:
  - tritonfleet maintainers (@tritonfleet)
extends_documentation_fragment:
  - tritonfleet.serving.attributes
  - tritonfleet.serving.attributes.info_module
options:
  url:
    description: The server's gRPC (V(host:port)) or HTTP (V(http://host:port)) address.
    type: str
    required: true
  protocol:
    description: Protocol of O(url).
    type: str
    choices: [grpc, http]
    default: grpc
  model:
    description: Model that takes C(text_input) and returns C(text_output).
    type: str
    default: ensemble
  dataset:
    description: JSONL summarization set, one JSON object per line; blank lines are skipped.
    type: path
    required: true
  input_field:
    description: Field of each line that holds the article.
    type: str
    default: article
  reference_field:
    description: Field every line must also hold (the human summary the gate scores against), checked here so a
      set the gate could not score fails before any request.
    type: str
    default: highlights
  max_samples:
    description: Use only the first this many samples.
    type: int
  max_tokens:
    description: New tokens to generate for each article (C(max_tokens)).
    type: int
    required: true
  parameters:
    description:
      - "Further ensemble inputs sent with every request, as the O(tritonfleet.serving.triton_infer#module:parameters)
        of M(tritonfleet.serving.triton_infer), for example V({top_k: 1}) for greedy decoding."
    type: dict
    default: {}
  min_length:
    description:
      - Fewest new tokens of each summary, sent under the name the model's inputs use (C(min_tokens) in
        TensorRT-LLM 1.x's ensemble, C(min_length) before), read from the model's metadata.
      - The engine's own default is 1, transformers' 0; set it so both sides generate under the same rule.
    type: int
  timeout:
    description: Time limit of each request, in seconds.
    type: float
    default: 120
"""

EXAMPLES = r"""
- name: Summarize the sample set with greedy decoding
  tritonfleet.serving.evaluate_generate:
    url: 127.0.0.1:8001
    dataset: /srv/sets/summarize_sample.jsonl
    max_tokens: 100
    parameters: {top_k: 1, min_length: 1}
  register: engine_summaries
"""

RETURN = r"""
outputs:
  description: The text of each answer, in the set's order.
  returned: success, not in check mode
  type: list
  elements: str
samples:
  description: Number of articles read (and, unless in check mode, summarized).
  returned: success
  type: int
  sample: 28
seconds:
  description: Time all requests took, in seconds.
  returned: success, not in check mode
  type: float
url:
  description: The normalised server URL.
  returned: always
  type: str
skipped:
  description: True in check mode, where no request is sent.
  returned: check mode
  type: bool
"""

import json
import time

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.common.text.converters import to_text
from ansible.module_utils.urls import open_url

from ansible_collections.tritonfleet.serving.plugins.module_utils.rouge_gate import (
    RougeGateError, read_jsonl, summarize_prompt)
from ansible_collections.tritonfleet.serving.plugins.module_utils.triton_client import (
    InferenceServerException, TritonError, error_text, normalize_url, one_line, require_tritonclient, triton_grpc)

# Names of the fewest-new-tokens input across TensorRT-LLM releases, newest first.
MIN_LENGTH_INPUTS = ('min_tokens', 'min_length')
from ansible_collections.tritonfleet.serving.plugins.module_utils.triton_generate import (
    build_generation_inputs, grpc_generate, http_generate)


def read_prompts(dataset, input_field, reference_field, limit):
    """The prompts of the set, in order; raises RougeGateError naming the file and line of a bad sample."""
    fields = [input_field] + ([reference_field] if reference_field and reference_field != input_field else [])
    return [summarize_prompt(sample[input_field]) for sample in read_jsonl(dataset, fields, limit=limit)]


def model_inputs(endpoint, protocol, model, timeout, client=None):
    """The names of the model's inputs, from its metadata; raises TritonError when the server does not say."""
    try:
        if protocol == 'grpc':
            data = client.get_model_metadata(model_name=model, as_json=True, client_timeout=timeout)
        else:
            data = json.loads(open_url(endpoint.base_url + '/v2/models/%s' % model, timeout=timeout).read())
    except InferenceServerException as exc:
        raise TritonError('cannot read the metadata of model %s from %s: %s' % (model, endpoint.base_url, error_text(exc)))
    except Exception as exc:  # urllib's errors and a body that is not JSON
        raise TritonError('cannot read the metadata of model %s from %s: %s' % (model, endpoint.base_url, to_text(exc)))
    return [to_text(i.get('name')) for i in (data or {}).get('inputs') or []]


def min_length_input(inputs, model, min_length):
    """The extra input that carries ``min_length`` under the model's own name for it."""
    for name in MIN_LENGTH_INPUTS:
        if name in inputs:
            return [dict(name=name, datatype='INT32', value=min_length)]
    raise TritonError('model %s takes none of the inputs %s, so min_length cannot be sent; its inputs: %s'
                      % (model, ', '.join(MIN_LENGTH_INPUTS), ', '.join(inputs)))


def generate_all(endpoint, protocol, model, prompts, max_tokens, parameters, timeout, client=None, extra_inputs=None):
    """Send each prompt in turn; returns the answers' texts. Raises TritonError naming the sample that failed."""
    outputs = []
    for index, prompt in enumerate(prompts):
        inputs = build_generation_inputs(prompt, max_tokens, parameters=parameters, extra_inputs=extra_inputs)
        try:
            if protocol == 'grpc':
                answer = grpc_generate(endpoint, model, inputs, timeout, request_id='evaluate-%d' % index, client=client)
            else:
                answer = http_generate(endpoint, model, inputs, timeout)
        except TritonError as exc:
            exc.msg = 'sample %d of %d got no answer from %s (%s): %s' % (
                index + 1, len(prompts), endpoint.base_url, model, exc.msg)
            raise
        outputs.append(answer.text)
    return outputs


def main():
    module = AnsibleModule(
        argument_spec=dict(
            url=dict(type='str', required=True),
            protocol=dict(type='str', default='grpc', choices=['grpc', 'http']),
            model=dict(type='str', default='ensemble'),
            dataset=dict(type='path', required=True),
            input_field=dict(type='str', default='article'),
            reference_field=dict(type='str', default='highlights'),
            max_samples=dict(type='int'),
            max_tokens=dict(type='int', required=True, no_log=False),
            parameters=dict(type='dict', default={}),
            min_length=dict(type='int'),
            timeout=dict(type='float', default=120.0),
        ),
        supports_check_mode=True,
    )
    params = module.params
    if params['max_tokens'] < 1:
        module.fail_json(msg='max_tokens must be at least 1, got %d' % params['max_tokens'])
    if params['min_length'] is not None and not 0 <= params['min_length'] <= params['max_tokens']:
        module.fail_json(msg='min_length must be from 0 to max_tokens (%d), got %d' % (params['max_tokens'], params['min_length']))
    if params['timeout'] <= 0:
        module.fail_json(msg='timeout must be greater than 0, got %s' % params['timeout'])
    try:
        endpoint = normalize_url(params['url'], params['protocol'])
        prompts = read_prompts(params['dataset'], params['input_field'], params['reference_field'], params['max_samples'])
        # Checked once here, so a bad parameter fails before any request.
        build_generation_inputs(prompts[0], params['max_tokens'], parameters=params['parameters'])
    except (RougeGateError, ValueError) as exc:
        module.fail_json(msg=to_text(exc))
    result = dict(changed=False, url=endpoint.base_url, samples=len(prompts))
    if module.check_mode:
        module.exit_json(skipped=True, msg='check mode: %d requests not sent' % len(prompts), **result)

    client = None
    if params['protocol'] == 'grpc':
        require_tritonclient(module, 'grpc', numpy_needed=True)
        # One channel for the whole set instead of one per sample.
        client = triton_grpc.InferenceServerClient(url=endpoint.address, ssl=endpoint.ssl)
    started = time.monotonic()
    try:
        extra_inputs = None
        if params['min_length'] is not None:
            names = model_inputs(endpoint, params['protocol'], params['model'], params['timeout'], client=client)
            extra_inputs = min_length_input(names, params['model'], params['min_length'])
        outputs = generate_all(endpoint, params['protocol'], params['model'], prompts, params['max_tokens'],
                               params['parameters'], params['timeout'], client=client, extra_inputs=extra_inputs)
    except TritonError as exc:
        module.fail_json(msg=one_line(exc.msg, 2000), **result)
    finally:
        if client is not None:
            client.close()
    module.exit_json(outputs=outputs, seconds=round(time.monotonic() - started, 3), **result)


if __name__ == '__main__':
    main()
