# -*- coding: utf-8 -*-
# Copyright: (c) 2026, tritonfleet maintainers
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Unit tests for triton_infer and the text-generation helpers in module_utils/triton.py (mocked transports)."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import io
import json
import threading
import time
from unittest import mock

import numpy as np
import pytest

from ansible.module_utils.six.moves.urllib.error import HTTPError, URLError

from ansible_collections.tritonfleet.serving.plugins.module_utils import triton_generate as tu
from ansible_collections.tritonfleet.serving.plugins.modules import triton_infer
from ansible_collections.tritonfleet.serving.tests.unit.utils.ansible_module_harness import run_module


def run_infer(args, check_mode=False):
    return run_module(triton_infer.main, args, check_mode)


# --------------------------------------------------------------------------
# fake gRPC client
# --------------------------------------------------------------------------

class FakeParam(object):
    def __init__(self, value):
        self.bool_param = value


class FakeResponse(object):
    def __init__(self, has_output, final):
        self.outputs = ['text_output'] if has_output else []
        self.parameters = {} if final is None else {'triton_final_response': FakeParam(final)}


class FakeResult(object):
    def __init__(self, text, final):
        self._text = text
        self._response = FakeResponse(text is not None, final)

    def get_response(self):
        return self._response

    def as_numpy(self, name):
        assert name == 'text_output'
        if self._text is None:
            return None
        return np.array([[self._text.encode('utf-8')]], dtype=np.object_)


class FakeError(tu.InferenceServerException):
    def __init__(self, msg):
        super(FakeError, self).__init__(msg)
        self._msg = msg

    def message(self):
        return self._msg


class FakeGrpcClient(object):
    """Answers async_stream_infer from a script of (text, final) pairs or FakeError, from another thread."""

    instances = []

    def __init__(self, script, delay=0.0):
        self.script = script
        self.delay = delay
        self.requests = []
        self.stopped = None
        self.closed = False
        self.stream_timeout = None

    def __call__(self, url, ssl=False, **kwargs):
        self.url = url
        self.ssl = ssl
        FakeGrpcClient.instances.append(self)
        return self

    def start_stream(self, callback, stream_timeout=None, **kwargs):
        self.callback = callback
        self.stream_timeout = stream_timeout

    def async_stream_infer(self, **kwargs):
        self.requests.append(kwargs)

        def send():
            for item in self.script:
                time.sleep(self.delay)
                if isinstance(item, Exception):
                    self.callback(result=None, error=item)
                else:
                    self.callback(result=FakeResult(*item), error=None)
        threading.Thread(target=send).start()

    def stop_stream(self, cancel_requests=False):
        self.stopped = cancel_requests

    def close(self):
        self.closed = True


def patch_grpc(fake):
    return mock.patch.object(tu.triton_grpc, 'InferenceServerClient', fake)


# --------------------------------------------------------------------------
# fake HTTP
# --------------------------------------------------------------------------

class FakeHTTPResponse(object):
    def __init__(self, body):
        self._body = io.BytesIO(body)
        self.closed = False

    def read(self):
        return self._body.read()

    def readline(self):
        return self._body.readline()

    def close(self):
        self.closed = True


class FakeOpenUrl(object):
    def __init__(self, body=b'', error=None):
        self.body = body
        self.error = error
        self.calls = []

    def __call__(self, url, data=None, method=None, headers=None, timeout=None, validate_certs=True, **kwargs):
        self.calls.append({'url': url, 'data': json.loads(data), 'method': method, 'headers': headers,
                           'timeout': timeout, 'validate_certs': validate_certs})
        if self.error is not None:
            raise self.error
        return FakeHTTPResponse(self.body)


def sse(*events):
    return b''.join(b'data: ' + json.dumps(e).encode() + b'\n\n' for e in events)


# --------------------------------------------------------------------------
# module_utils: building requests
# --------------------------------------------------------------------------

def test_build_inputs_types_and_order():
    inputs = tu.build_generation_inputs(
        u'Bonjour \u00e0 tous', '16', stream='yes',
        parameters={'temperature': '0.5', 'top_k': 3, 'random_seed': 2 ** 63, 'return_log_probs': 'false',
                    'stop_words': ['end', 'stop'], 'bad_words': 'x', 'top_p': None, 'end_id': 2.0})
    got = [(i.name, i.datatype, i.value) for i in inputs]
    assert got == [
        ('text_input', 'BYTES', u'Bonjour \u00e0 tous'),
        ('max_tokens', 'INT32', 16),
        ('stream', 'BOOL', True),
        ('bad_words', 'BYTES', 'x'),
        ('end_id', 'INT32', 2),
        ('random_seed', 'UINT64', 2 ** 63),
        ('return_log_probs', 'BOOL', False),
        ('stop_words', 'BYTES', 'end,stop'),
        ('temperature', 'FP32', 0.5),
        ('top_k', 'INT32', 3),
    ]
    arrays = dict((i.name, tu.to_numpy(i)) for i in inputs)
    assert arrays['text_input'].shape == (1, 1) and arrays['text_input'][0, 0] == u'Bonjour \u00e0 tous'.encode()
    assert arrays['random_seed'].dtype == np.uint64 and arrays['random_seed'][0, 0] == 2 ** 63
    assert arrays['temperature'].dtype == np.float32
    assert arrays['return_log_probs'].dtype == np.bool_
    assert arrays['max_tokens'].dtype == np.int32


def test_stream_left_out_when_unset():
    names = [i.name for i in tu.build_generation_inputs('hi', 4)]
    assert names == ['text_input', 'max_tokens']


@pytest.mark.parametrize('params, text', [
    ({'temprature': 1.0}, 'unknown generation parameter(s): temprature'),
    ({'stream': True}, 'use the option of its own'),
    ({'max_tokens': 3}, 'use the option of its own'),
    ({'top_k': 1.5}, 'top_k: expected an integer'),
    ({'top_k': True}, 'top_k: expected an integer'),
    ({'top_k': 2 ** 31}, 'out of range for INT32'),
    ({'random_seed': -1}, 'out of range for UINT64'),
    ({'temperature': 'hot'}, 'temperature: expected a number'),
    ({'return_log_probs': 'maybe'}, 'return_log_probs: expected a boolean'),
    ({'stop_words': {'a': 1}}, 'stop_words: expected text'),
])
def test_build_inputs_rejects(params, text):
    with pytest.raises(ValueError) as info:
        tu.build_generation_inputs('hi', 4, parameters=params)
    assert text in str(info.value)


def test_extra_inputs():
    inputs = tu.build_generation_inputs('hi', 4, extra_inputs=[
        {'name': 'frequency_penalty', 'datatype': 'fp32', 'value': '0.1'},
        {'name': 'num_return_sequences', 'datatype': 'INT32', 'value': 2}])
    assert [(i.name, i.datatype, i.value) for i in inputs[2:]] == [
        ('frequency_penalty', 'FP32', pytest.approx(0.1)), ('num_return_sequences', 'INT32', 2)]
    with pytest.raises(ValueError, match='already set'):
        tu.build_generation_inputs('hi', 4, extra_inputs=[{'name': 'max_tokens', 'datatype': 'INT32', 'value': 1}])
    with pytest.raises(ValueError, match='datatype'):
        tu.build_generation_inputs('hi', 4, extra_inputs=[{'name': 'x', 'datatype': 'STRING', 'value': 1}])


def test_decode_text_and_matching():
    assert tu.decode_text(np.array([[b'a', b'b']], dtype=np.object_)) == 'ab'
    assert tu.decode_text([u'x', b'\xc3\xa9']) == u'x\xe9'
    assert tu.decode_text(None) == ''
    assert tu.text_matches('The capital is Paris.', 'Paris')
    assert tu.text_matches('The capital is Paris.', r'(?i)capital\s+is\s+paris')
    assert tu.text_matches('a (b', '(b')  # not a valid regex, but a substring
    assert not tu.text_matches('The capital is Lyon.', 'Paris')


def test_iter_sse_events():
    lines = iter([b': comment\n', b'data: {"a": 1}\n', b'\n', b'event: x\n', b'data: {"b":\n', b'data: 2}\r\n',
                  b'\r\n', b'data: {"c": 3}'])
    assert list(tu.iter_sse_events(lambda: next(lines, b''))) == ['{"a": 1}', '{"b":\n2}', '{"c": 3}']


# --------------------------------------------------------------------------
# the module: check mode, arguments
# --------------------------------------------------------------------------

def test_check_mode_sends_nothing():
    boom = mock.Mock(side_effect=AssertionError('must not be called'))
    with mock.patch.object(triton_infer, 'grpc_generate', boom), \
            mock.patch.object(triton_infer, 'http_generate', boom), \
            mock.patch.object(tu, 'open_url', boom):
        out = run_infer({'prompt': 'hello', 'stream': True, 'parameters': {'temperature': 0.1}}, check_mode=True)
    assert not out.failed
    r = out.result
    assert r['skipped'] is True and r['changed'] is False
    assert r['msg'] == 'check mode: request not sent'
    assert r['request'] == {'text_input': 'hello', 'max_tokens': 32, 'stream': True, 'temperature': pytest.approx(0.1)}
    assert r['url'] == 'grpc://127.0.0.1:8001' and r['endpoint'] == 'stream_infer' and r['model'] == 'ensemble'
    assert 'text' not in r


@pytest.mark.parametrize('args, text', [
    ({'prompt': 'x', 'protocol': 'http', 'http_endpoint': 'infer', 'stream': True}, 'cannot stream'),
    ({'prompt': 'x', 'timeout': 0}, 'timeout must be greater than 0'),
    ({'prompt': 'x', 'max_tokens': 0}, 'max_tokens must be at least 1'),
    ({'prompt': 'x', 'parameters': {'topk': 1}}, 'unknown generation parameter(s): topk'),
    ({'prompt': 'x', 'url': 'grpc://h:1/v2'}, 'cannot have a path'),
    ({}, 'missing required arguments: prompt'),
    ({'prompt': 'x', 'extra_inputs': [{'name': 'a', 'datatype': 'STRING', 'value': 1}]}, 'datatype'),
])
def test_bad_arguments(args, text):
    boom = mock.Mock(side_effect=AssertionError('must not be called'))
    with mock.patch.object(triton_infer, 'grpc_generate', boom), mock.patch.object(triton_infer, 'http_generate', boom):
        out = run_infer(args)
    assert out.failed and text in out.result['msg']


# --------------------------------------------------------------------------
# the module over gRPC
# --------------------------------------------------------------------------

def test_grpc_streaming_concatenates_until_final_flag():
    fake = FakeGrpcClient([('Hello', False), (' big', False), (' world', False), (None, True)], delay=0.02)
    with patch_grpc(fake):
        out = run_infer({'url': 'http://10.0.0.5:8001/', 'prompt': 'hi', 'max_tokens': 8, 'stream': True,
                         'parameters': {'top_k': 5, 'temperature': 0.7, 'random_seed': 1}, 'expect_text': 'big',
                         'min_responses': 3})
    assert not out.failed, out.result
    r = out.result
    assert r['text'] == 'Hello big world'
    assert r['responses'] == 3
    assert r['final_response'] is True
    assert 0.015 <= r['time_to_first_token'] < r['total_time']
    assert r['tokens_per_second'] == pytest.approx(3 / r['total_time'], rel=0.01)
    assert r['changed'] is False and r['protocol'] == 'grpc' and r['model'] == 'ensemble'
    assert r['url'] == 'grpc://10.0.0.5:8001'
    assert fake.url == '10.0.0.5:8001'
    request = fake.requests[0]
    assert request['model_name'] == 'ensemble' and request['enable_empty_final_response'] is True
    sent = [(i.name(), i.datatype(), i.shape()) for i in request['inputs']]
    assert sent == [('text_input', 'BYTES', [1, 1]), ('max_tokens', 'INT32', [1, 1]), ('stream', 'BOOL', [1, 1]),
                    ('random_seed', 'UINT64', [1, 1]), ('temperature', 'FP32', [1, 1]), ('top_k', 'INT32', [1, 1])]
    assert [o.name() for o in request['outputs']] == ['text_output']
    assert fake.stopped is False and fake.closed


def test_grpc_single_response_and_non_decoupled_model():
    fake = FakeGrpcClient([('whole answer', False), (None, True)])
    with patch_grpc(fake):
        out = run_infer({'prompt': 'hi', 'stream': False})
    assert out.result['text'] == 'whole answer' and out.result['responses'] == 1
    assert out.result['tokens_per_second'] is None
    assert out.result['time_to_first_token'] <= out.result['total_time']
    # an ordinary model: the one response carries the final flag (or no flag at all)
    for final in (True, None):
        fake = FakeGrpcClient([('plain', final)])
        with patch_grpc(fake):
            out = run_infer({'prompt': 'hi', 'model': 'plain', 'model_version': '3'})
        assert out.result['text'] == 'plain' and out.result['final_response'] is True
        assert fake.requests[0]['model_version'] == '3'
        assert [i.name() for i in fake.requests[0]['inputs']] == ['text_input', 'max_tokens']


def test_grpc_server_error_fails_with_partial_result():
    fake = FakeGrpcClient([('Hel', False), FakeError("in ensemble 'ensemble', tensorrt_llm: out of memory")])
    with patch_grpc(fake):
        out = run_infer({'prompt': 'hi', 'stream': True})
    assert out.failed
    assert out.result['msg'] == "ensemble: in ensemble 'ensemble', tensorrt_llm: out of memory"
    assert out.result['text'] == 'Hel' and out.result['responses'] == 1
    assert out.result['final_response'] is False
    # an error response ends the request: no cancel (Triton 2.51 then holds the model until exit-timeout)
    assert fake.stopped is False


def test_grpc_timeout_without_final_flag():
    fake = FakeGrpcClient([('a', False), ('b', False)])
    with patch_grpc(fake):
        start = time.monotonic()
        out = run_infer({'prompt': 'hi', 'stream': True, 'timeout': 0.5})
    assert out.failed
    assert 0.5 <= time.monotonic() - start < 3
    assert out.result['msg'] == 'no final response from ensemble within 0.5s (2 responses so far)'
    assert out.result['text'] == 'ab'
    assert fake.stream_timeout == pytest.approx(2.5)
    assert fake.stopped is True  # pending request cancelled


def test_expect_text_and_min_responses_failures():
    fake = FakeGrpcClient([('The answer is 41', False), (None, True)])
    with patch_grpc(fake):
        out = run_infer({'prompt': 'hi', 'expect_text': r'\b42\b'})
    assert out.failed
    assert out.result['msg'] == "answer of ensemble does not match expect_text '\\\\b42\\\\b': 'The answer is 41'"
    assert out.result['text'] == 'The answer is 41'
    fake = FakeGrpcClient([('one', False), (None, True)])
    with patch_grpc(fake):
        out = run_infer({'prompt': 'hi', 'stream': True, 'min_responses': 2})
    assert out.failed and 'sent 1 response(s) with text, fewer than min_responses=2' in out.result['msg']


# --------------------------------------------------------------------------
# the module over HTTP
# --------------------------------------------------------------------------

def test_http_generate():
    fake = FakeOpenUrl(json.dumps({'model_name': 'ensemble', 'model_version': '1', 'text_output': 'Paris.'}).encode())
    with mock.patch.object(tu, 'open_url', fake):
        out = run_infer({'url': '127.0.0.1:8000', 'protocol': 'http', 'prompt': 'Capital of France?',
                         'max_tokens': 4, 'parameters': {'temperature': 0.0, 'stop_words': 'x'},
                         'expect_text': '(?i)paris'})
    assert not out.failed, out.result
    call = fake.calls[0]
    assert call['url'] == 'http://127.0.0.1:8000/v2/models/ensemble/generate'
    assert call['method'] == 'POST'
    assert call['data'] == {'text_input': 'Capital of France?', 'max_tokens': 4, 'temperature': 0.0, 'stop_words': 'x'}
    assert call['timeout'] == 60.0
    assert out.result['text'] == 'Paris.' and out.result['responses'] == 1 and out.result['endpoint'] == 'generate'


def test_http_generate_stream_reads_events():
    body = sse({'text_output': 'one'}, {'text_output': ' two'}, {'text_output': ' three'})
    fake = FakeOpenUrl(body)
    with mock.patch.object(tu, 'open_url', fake):
        out = run_infer({'url': 'https://h:8443/', 'protocol': 'http', 'prompt': 'count', 'stream': True,
                         'model_version': '2', 'validate_certs': False})
    assert not out.failed, out.result
    call = fake.calls[0]
    assert call['url'] == 'https://h:8443/v2/models/ensemble/versions/2/generate_stream'
    assert call['data']['stream'] is True and call['validate_certs'] is False
    assert call['headers']['Accept'] == 'text/event-stream'
    assert out.result['text'] == 'one two three' and out.result['responses'] == 3
    assert out.result['tokens_per_second'] is not None and out.result['endpoint'] == 'generate_stream'


def test_http_error_in_200_answer_and_in_stream():
    msg = ('generate expects model to produce exactly 1 response, use generate stream for model that '
           'generates various number of responses')
    with mock.patch.object(tu, 'open_url', FakeOpenUrl(json.dumps({'error': msg}).encode())):
        out = run_infer({'protocol': 'http', 'prompt': 'x'})
    assert out.failed and out.result['msg'] == 'http://127.0.0.1:8000/v2/models/ensemble/generate: ' + msg
    with mock.patch.object(tu, 'open_url', FakeOpenUrl(sse({'text_output': 'a'}, {'error': 'engine died'}))):
        out = run_infer({'protocol': 'http', 'prompt': 'x', 'stream': True})
    assert out.failed and out.result['msg'].endswith('generate_stream: engine died')
    assert out.result['text'] == 'a'


def test_http_status_errors_and_unreachable():
    error = HTTPError('http://127.0.0.1:8000/v2/models/nope/generate', 404, 'Not Found', {},
                      io.BytesIO(b'{"error":"Request for unknown model: \'nope\' is not found"}'))
    with mock.patch.object(tu, 'open_url', FakeOpenUrl(error=error)):
        out = run_infer({'protocol': 'http', 'prompt': 'x', 'model': 'nope'})
    assert out.failed
    assert out.result['msg'] == ("http://127.0.0.1:8000/v2/models/nope/generate: HTTP 404: "
                                 "Request for unknown model: 'nope' is not found")
    refused = URLError(ConnectionRefusedError(111, 'Connection refused'))
    with mock.patch.object(tu, 'open_url', FakeOpenUrl(error=refused)):
        out = run_infer({'protocol': 'http', 'prompt': 'x'})
    assert out.failed and 'Connection refused' in out.result['msg']
    with mock.patch.object(tu, 'open_url', FakeOpenUrl(b'<html>')):
        out = run_infer({'protocol': 'http', 'prompt': 'x'})
    assert out.failed and 'not JSON' in out.result['msg']


def test_http_plain_infer_endpoint():
    raw = mock.MagicMock()
    raw.infer.return_value.as_numpy.return_value = np.array([[b'plain: hi']], dtype=np.object_)
    with mock.patch.object(tu.triton_http, 'InferenceServerClient', return_value=raw) as ctor:
        out = run_infer({'protocol': 'http', 'http_endpoint': 'infer', 'model': 'plain', 'prompt': 'hi',
                         'timeout': 7})
    assert not out.failed, out.result
    assert ctor.call_args[1]['url'] == '127.0.0.1:8000' and ctor.call_args[1]['network_timeout'] == 7.0
    args, kwargs = raw.infer.call_args
    assert args[0] == 'plain'
    assert [(i.name(), i.datatype(), i.shape()) for i in args[1]] == [('text_input', 'BYTES', [1, 1]),
                                                                      ('max_tokens', 'INT32', [1, 1])]
    assert out.result['text'] == 'plain: hi' and out.result['endpoint'] == 'infer'
    raw.infer.side_effect = FakeError('inference request batch-size must be <= 8')
    with mock.patch.object(tu.triton_http, 'InferenceServerClient', return_value=raw):
        out = run_infer({'protocol': 'http', 'http_endpoint': 'infer', 'model': 'plain', 'prompt': 'hi'})
    assert out.failed and out.result['msg'] == 'plain: inference request batch-size must be <= 8'
    assert raw.close.called
