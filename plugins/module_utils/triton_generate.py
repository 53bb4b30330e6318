# -*- coding: utf-8 -*-
# Copyright: (c) 2026, tritonfleet maintainers
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Text generation through the TensorRT-LLM ensemble tensor contract.

The request's inputs (text_input, max_tokens, stream and the optional
sampling inputs, checked per Triton datatype), and three ways to send it:
the gRPC bidirectional stream (decoupled models and ordinary ones), Triton's
HTTP generate / generate_stream (server-sent events) endpoints, and plain
KServe v2 infer over HTTP. Each collects the text_output pieces with their
timing in a GenerationResult. Connecting to the server (URLs, the client
libraries) is in triton_client.py.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import functools
import json
import re
import time

from ansible.module_utils.common.text.converters import to_native, to_text
from ansible.module_utils.parsing.convert_bool import boolean
from ansible.module_utils.six.moves import queue as _queue
from ansible.module_utils.six.moves.urllib.error import HTTPError, URLError
from ansible.module_utils.urls import open_url

from ansible_collections.tritonfleet.serving.plugins.module_utils.triton_client import (
    Deadline, InferenceServerException, TritonError, error_text, np, one_line, triton_grpc, triton_http)

# Optional inputs of upstream's ensemble that a caller may set, with their
# Triton datatypes.  All are sent with shape [1, 1].
GENERATION_PARAMETERS = {
    'bad_words': 'BYTES',
    'stop_words': 'BYTES',
    'end_id': 'INT32',
    'pad_id': 'INT32',
    'top_k': 'INT32',
    'top_p': 'FP32',
    'temperature': 'FP32',
    'length_penalty': 'FP32',
    'repetition_penalty': 'FP32',
    'presence_penalty': 'FP32',
    'min_length': 'INT32',
    'beam_width': 'INT32',
    'random_seed': 'UINT64',
    'return_log_probs': 'BOOL',
}

TEXT_INPUT = 'text_input'
TEXT_OUTPUT = 'text_output'

_INT_RANGES = {
    'INT8': (-2 ** 7, 2 ** 7 - 1), 'INT16': (-2 ** 15, 2 ** 15 - 1),
    'INT32': (-2 ** 31, 2 ** 31 - 1), 'INT64': (-2 ** 63, 2 ** 63 - 1),
    'UINT8': (0, 2 ** 8 - 1), 'UINT16': (0, 2 ** 16 - 1),
    'UINT32': (0, 2 ** 32 - 1), 'UINT64': (0, 2 ** 64 - 1),
}
_FLOATS = ('FP16', 'FP32', 'FP64')
DATATYPES = tuple(sorted(list(_INT_RANGES) + list(_FLOATS) + ['BOOL', 'BYTES']))


def coerce_value(name, datatype, value):
    """Check and convert one scalar for ``datatype``; raises ValueError naming the input."""
    if value is None:
        raise ValueError('%s: a value is required' % name)
    if datatype == 'BYTES':
        if isinstance(value, (list, tuple)):
            # upstream's preprocessing reads word lists as comma-separated text
            return ','.join(to_text(v) for v in value)
        if isinstance(value, (dict, bool)):
            raise ValueError('%s: expected text, got %r' % (name, value))
        return to_text(value)
    if datatype == 'BOOL':
        try:
            return boolean(value, strict=True)
        except TypeError:
            raise ValueError('%s: expected a boolean, got %r' % (name, value))
    if datatype in _INT_RANGES:
        if isinstance(value, bool):
            raise ValueError('%s: expected an integer, got %r' % (name, value))
        try:
            if isinstance(value, float):
                if not value.is_integer():
                    raise ValueError()
                number = int(value)
            else:
                number = int(to_text(value).strip(), 10)
        except (TypeError, ValueError):
            raise ValueError('%s: expected an integer, got %r' % (name, value))
        low, high = _INT_RANGES[datatype]
        if not low <= number <= high:
            raise ValueError('%s: %d is out of range for %s' % (name, number, datatype))
        return number
    if datatype in _FLOATS:
        if isinstance(value, bool):
            raise ValueError('%s: expected a number, got %r' % (name, value))
        try:
            return float(value)
        except (TypeError, ValueError):
            raise ValueError('%s: expected a number, got %r' % (name, value))
    raise ValueError('%s: unsupported datatype %r' % (name, datatype))


class GenerationInput(object):
    def __init__(self, name, datatype, value):
        self.name = name
        self.datatype = datatype
        self.value = value

    def __repr__(self):
        return 'GenerationInput(%r, %r, %r)' % (self.name, self.datatype, self.value)


def build_generation_inputs(prompt, max_tokens, stream=None, parameters=None, extra_inputs=None):
    """The ensemble inputs for one request, in order, as GenerationInput objects.

    ``text_input`` and ``max_tokens`` always; ``stream`` only when not None;
    ``parameters`` keys must be in GENERATION_PARAMETERS (None values are
    dropped); ``extra_inputs`` is a list of {name, datatype, value} for inputs
    outside that table (later upstream versions add some).  Raises ValueError.
    """
    inputs = [
        GenerationInput(TEXT_INPUT, 'BYTES', coerce_value(TEXT_INPUT, 'BYTES', prompt)),
        GenerationInput('max_tokens', 'INT32', coerce_value('max_tokens', 'INT32', max_tokens)),
    ]
    if stream is not None:
        inputs.append(GenerationInput('stream', 'BOOL', coerce_value('stream', 'BOOL', stream)))
    parameters = parameters or {}
    own = sorted(k for k in parameters if k in (TEXT_INPUT, 'max_tokens', 'stream', 'prompt'))
    if own:
        raise ValueError('%s cannot be set in parameters; use the option of its own (prompt, max_tokens, stream)'
                         % ', '.join(own))
    unknown = sorted(k for k in parameters if k not in GENERATION_PARAMETERS)
    if unknown:
        raise ValueError('unknown generation parameter(s): %s; known: %s (use extra_inputs for other inputs)'
                         % (', '.join(unknown), ', '.join(sorted(GENERATION_PARAMETERS))))
    for name in sorted(parameters):
        if parameters[name] is None:
            continue
        datatype = GENERATION_PARAMETERS[name]
        inputs.append(GenerationInput(name, datatype, coerce_value(name, datatype, parameters[name])))
    seen = set(i.name for i in inputs)
    for item in extra_inputs or []:
        name = item.get('name')
        datatype = (item.get('datatype') or '').upper()
        if not name:
            raise ValueError('extra_inputs: every item needs a name')
        if name in seen:
            raise ValueError('extra_inputs: input %s is already set' % name)
        if datatype not in DATATYPES:
            raise ValueError('extra_inputs: %s has datatype %r; use one of %s' % (name, datatype, ', '.join(DATATYPES)))
        inputs.append(GenerationInput(name, datatype, coerce_value(name, datatype, item.get('value'))))
        seen.add(name)
    return inputs


def generate_request_body(inputs):
    """JSON body for Triton's generate extension: {input name: scalar}."""
    return dict((i.name, i.value) for i in inputs)


_NUMPY_TYPES = {
    'BOOL': 'bool_', 'INT8': 'int8', 'INT16': 'int16', 'INT32': 'int32', 'INT64': 'int64',
    'UINT8': 'uint8', 'UINT16': 'uint16', 'UINT32': 'uint32', 'UINT64': 'uint64',
    'FP16': 'float16', 'FP32': 'float32', 'FP64': 'float64', 'BYTES': 'object_',
}


def to_numpy(inp):
    """A [1, 1] numpy array for one GenerationInput."""
    value = inp.value
    if inp.datatype == 'BYTES':
        value = to_text(value).encode('utf-8')
    return np.array([[value]], dtype=getattr(np, _NUMPY_TYPES[inp.datatype]))


def make_infer_inputs(client_module, inputs):
    """tritonclient InferInput objects (``client_module`` is tritonclient.grpc or tritonclient.http)."""
    result = []
    for inp in inputs:
        infer_input = client_module.InferInput(inp.name, [1, 1], inp.datatype)
        infer_input.set_data_from_numpy(to_numpy(inp))
        result.append(infer_input)
    return result


def decode_text(value):
    """Text from a text_output value: numpy BYTES array, list, bytes or str (elements joined)."""
    if value is None:
        return ''
    if hasattr(value, 'flatten'):
        value = value.flatten().tolist()
    if isinstance(value, (list, tuple)):
        return ''.join(decode_text(v) for v in value)
    if isinstance(value, bytes):
        return value.decode('utf-8', 'replace')
    return to_text(value)


def text_matches(text, expect):
    """True when ``expect`` is a substring of ``text`` or a regex that re.search finds in it."""
    if expect in text:
        return True
    try:
        return re.search(expect, text) is not None
    except re.error:
        return False


class GenerationResult(object):
    """What came back from one generation request."""

    def __init__(self, clock=time.monotonic):
        self._clock = clock
        self.start = clock()
        self.pieces = []
        self.responses = 0
        self.first = None
        self.end = None
        self.final = False

    def add(self, piece):
        now = self._clock()
        if self.first is None:
            self.first = now - self.start
        self.responses += 1
        self.pieces.append(piece)

    def finish(self, final):
        self.final = final
        self.end = self._clock() - self.start

    @property
    def text(self):
        return ''.join(self.pieces)

    def as_dict(self, stream):
        total = self.end if self.end is not None else self._clock() - self.start
        tps = None
        if stream and self.responses and total > 0:
            tps = round(self.responses / total, 3)
        return {
            'text': self.text,
            'responses': self.responses,
            'time_to_first_token': round(self.first, 6) if self.first is not None else None,
            'total_time': round(total, 6),
            'tokens_per_second': tps,
            'final_response': self.final,
        }


def _queue_callback(responses, result, error):
    responses.put((result, error))


def _final_flag(response):
    """triton_final_response of a grpc ModelInferResponse; None when the parameter is absent."""
    params = getattr(response, 'parameters', None)
    if params is None or 'triton_final_response' not in params:
        return None
    return bool(params['triton_final_response'].bool_param)


def grpc_generate(endpoint, model, inputs, timeout, model_version='', request_id='',
                  output_name=TEXT_OUTPUT, clock=time.monotonic, client=None):
    """Send one request over the gRPC bidirectional stream and collect text until the final flag.

    Works for decoupled models (many responses, then an empty response that
    carries ``triton_final_response``) and for ordinary models (one response
    that carries the flag).  Raises TritonError (with ``result`` = partial
    GenerationResult) on a server error or when ``timeout`` passes.
    ``client``: an open grpc InferenceServerClient to send on, left open
    (a caller sending many requests keeps one channel); else one is opened
    and closed here.
    """
    own_client = client is None
    if own_client:
        client = triton_grpc.InferenceServerClient(url=endpoint.address, ssl=endpoint.ssl)
    responses = _queue.Queue()
    deadline = Deadline(timeout, clock=clock)
    result = GenerationResult(clock=clock)
    final = False
    finished = False  # the server is done with the request (final flag or an error response)
    try:
        try:
            client.start_stream(callback=functools.partial(_queue_callback, responses),
                                stream_timeout=float(timeout) + 2.0)
            client.async_stream_infer(
                model_name=model, inputs=make_infer_inputs(triton_grpc, inputs),
                model_version=to_text(model_version or ''), request_id=request_id,
                outputs=[triton_grpc.InferRequestedOutput(output_name)],
                enable_empty_final_response=True)
        except InferenceServerException as exc:
            # A stream that failed to open says only "no longer in valid state";
            # the cause (connection refused, no such model ...) comes through the callback.
            finished = True
            try:
                _unused, error = responses.get(timeout=1.0)
            except _queue.Empty:
                error = exc
            raise TritonError('%s: %s' % (endpoint.base_url, error_text(error or exc)), result=result)
        while not final:
            remaining = deadline.remaining()
            if remaining <= 0:
                raise TritonError('no final response from %s within %ss (%d responses so far)'
                                  % (model, timeout, result.responses), result=result)
            try:
                infer_result, error = responses.get(timeout=min(remaining, 1.0))
            except _queue.Empty:
                continue
            if error is not None:
                finished = True
                raise TritonError('%s: %s' % (model, error_text(error)), result=result)
            response = infer_result.get_response()
            flag = _final_flag(response)
            if response.outputs:
                result.add(decode_text(infer_result.as_numpy(output_name)))
            final = True if flag is None else flag
        result.finish(final)
        return result
    finally:
        # cancel only a request the server may still be working on (timeout)
        try:
            client.stop_stream(cancel_requests=not (final or finished))
        except Exception:
            pass
        if own_client:
            try:
                client.close()
            except Exception:
                pass
            client = None  # do not let a traceback keep the channel alive


def _http_error_text(body, fallback):
    try:
        data = json.loads(to_text(body))
        if isinstance(data, dict) and data.get('error'):
            return to_text(data['error'])
    except ValueError:
        pass
    text = to_text(body or '').strip()
    return text or fallback


def iter_sse_events(readline):
    """Yield the data of each server-sent event read through ``readline()`` (bytes or text lines)."""
    data = []
    while True:
        line = readline()
        if not line:
            break
        line = to_text(line, errors='surrogate_or_replace').rstrip('\r\n')
        if not line:
            if data:
                yield '\n'.join(data)
                data = []
            continue
        if line.startswith(':'):
            continue
        field, dummy, value = line.partition(':')
        if value.startswith(' '):
            value = value[1:]
        if field == 'data':
            data.append(value)
    if data:
        yield '\n'.join(data)


def http_generate(endpoint, model, inputs, timeout, stream=False, model_version='',
                  validate_certs=True, output_name=TEXT_OUTPUT, clock=time.monotonic):
    """POST to Triton's generate (one response) or generate_stream (SSE) endpoint and collect the text.

    Raises TritonError on HTTP errors, an ``error`` in the JSON (Triton
    answers 200 with an error when a decoupled model sends several
    responses to /generate), or when ``timeout`` passes.
    """
    path = '/v2/models/%s' % model
    if model_version:
        path += '/versions/%s' % model_version
    path += '/generate_stream' if stream else '/generate'
    url = endpoint.base_url + path
    body = json.dumps(generate_request_body(inputs))
    deadline = Deadline(timeout, clock=clock)
    result = GenerationResult(clock=clock)
    headers = {'Content-Type': 'application/json'}
    if stream:
        headers['Accept'] = 'text/event-stream'
    try:
        response = open_url(url, data=body, method='POST', headers=headers, timeout=float(timeout),
                            validate_certs=validate_certs, follow_redirects='none')
    except HTTPError as exc:
        try:
            err_body = exc.read()
        except Exception:
            err_body = ''
        raise TritonError('%s: HTTP %s: %s' % (url, exc.code, _http_error_text(err_body, to_native(exc))),
                          result=result, status=exc.code)
    except (URLError, IOError, OSError) as exc:
        raise TritonError('%s: %s' % (url, error_text(getattr(exc, 'reason', exc))), result=result)
    try:
        if not stream:
            payload = response.read()
            try:
                data = json.loads(to_text(payload))
            except ValueError:
                raise TritonError('%s: not JSON: %s' % (url, one_line(to_text(payload), 200)), result=result)
            if isinstance(data, dict) and data.get('error'):
                raise TritonError('%s: %s' % (url, to_text(data['error'])), result=result)
            if not isinstance(data, dict) or output_name not in data:
                raise TritonError('%s: no %s in the answer: %s' % (url, output_name, one_line(to_text(payload), 200)),
                                  result=result)
            result.add(decode_text(data[output_name]))
            result.finish(True)
            return result
        for event in iter_sse_events(response.readline):
            try:
                data = json.loads(event)
            except ValueError:
                raise TritonError('%s: event is not JSON: %s' % (url, one_line(event, 200)), result=result)
            if isinstance(data, dict) and data.get('error'):
                raise TritonError('%s: %s' % (url, to_text(data['error'])), result=result)
            if isinstance(data, dict) and output_name in data:
                result.add(decode_text(data[output_name]))
            if deadline.expired():
                raise TritonError('%s: stream not finished within %ss (%d responses so far)'
                                  % (url, timeout, result.responses), result=result)
        result.finish(True)
        return result
    except TritonError:
        raise
    except Exception as exc:  # socket timeouts and resets while reading
        raise TritonError('%s: %s' % (url, error_text(exc)), result=result)
    finally:
        try:
            response.close()
        except Exception:
            pass


def http_infer(endpoint, model, inputs, timeout, model_version='', output_name=TEXT_OUTPUT, clock=time.monotonic):
    """Plain KServe v2 infer over HTTP (tritonclient) for models that are not decoupled."""
    client = triton_http.InferenceServerClient(url=endpoint.address, ssl=endpoint.ssl,
                                               connection_timeout=float(timeout), network_timeout=float(timeout))
    result = GenerationResult(clock=clock)
    try:
        answer = client.infer(model, make_infer_inputs(triton_http, inputs), model_version=to_text(model_version or ''),
                              outputs=[triton_http.InferRequestedOutput(output_name, binary_data=False)])
        result.add(decode_text(answer.as_numpy(output_name)))
        result.finish(True)
        return result
    except InferenceServerException as exc:
        raise TritonError('%s: %s' % (model, error_text(exc)), result=result)
    except Exception as exc:
        raise TritonError('%s: %s' % (endpoint.base_url, error_text(exc)), result=result)
    finally:
        client.close()
