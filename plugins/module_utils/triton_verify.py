# -*- coding: utf-8 -*-
# Copyright: (c) 2026, tritonfleet maintainers
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Check every Triton server of a host in one go: readiness, one prompt per protocol, request counters.

Each server is checked in a thread of its own (``verify_servers``); within a
server the steps run in order and stop at the first that fails.  The client
calls go through this module's names (make_client, grpc_generate,
http_generate, scrape_metrics) so tests can replace them.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import threading
import time

from ansible.module_utils.common.text.converters import to_text
from ansible.module_utils.six import string_types
from ansible.module_utils.urls import open_url

from ansible_collections.tritonfleet.serving.plugins.module_utils.processes import tail_file
from ansible_collections.tritonfleet.serving.plugins.module_utils.prometheus_text import (
    aggregate,
    parse_text,
    select_series,
)
from ansible_collections.tritonfleet.serving.plugins.module_utils.triton_client import (
    Deadline,
    TritonError,
    describe_model,
    error_text,
    is_load_failure,
    log_load_failures,
    make_client,
    model_status,
    normalize_url,
    one_line,
)
from ansible_collections.tritonfleet.serving.plugins.module_utils.triton_generate import (
    build_generation_inputs,
    grpc_generate,
    http_generate,
    text_matches,
)

REQUEST_COUNTER = 'nv_inference_request_success'
# How many lines of a server log are scanned for model load failures.
LOG_SCAN_LINES = 2000


class VerifySettings(object):
    """What every server is checked for (the module's options, minus the servers)."""

    def __init__(self, address='127.0.0.1', models=None, health_protocol='grpc', health_timeout=300.0,
                 interval=0.25, request_timeout_health=5.0, model='ensemble', prompt='', max_tokens=16,
                 stream=True, http_request=True, expect_text=None, request_timeout=60.0, assert_metrics=True,
                 metrics_timeout=10.0, log_lines=40):
        self.address = address
        self.models = list(models or [])
        self.health_protocol = health_protocol
        self.health_timeout = float(health_timeout)
        self.interval = float(interval)
        self.request_timeout_health = float(request_timeout_health)
        self.model = model
        self.prompt = prompt
        self.max_tokens = max_tokens
        self.stream = bool(stream)
        self.http_request = bool(http_request)
        self.expect_text = expect_text or None
        self.request_timeout = float(request_timeout)
        self.assert_metrics = bool(assert_metrics)
        self.metrics_timeout = float(metrics_timeout)
        self.log_lines = log_lines


def host_port(address, port):
    """'host:port', bracketing a bare IPv6 address."""
    address = to_text(address).strip()
    if ':' in address and not address.startswith('['):
        address = '[%s]' % address
    return '%s:%s' % (address, port)


def _port(server, key, required=True):
    value = server.get(key)
    if value in (None, ''):
        if required:
            raise ValueError('%s has no %s' % (server.get('name'), key))
        return None
    try:
        port = int(value)
    except (TypeError, ValueError):
        port = 0
    if isinstance(value, bool) or not 0 < port < 65536:
        raise ValueError('%s: %s must be a port number, got %r' % (server.get('name'), key, value))
    return port


def server_entry(server, read_logs=False):
    """What the checks need of one server of the layout (name, ports, models, log file); raises ValueError."""
    name = server.get('name')
    if not name or not isinstance(name, string_types):
        raise ValueError('each server needs a name, got %r' % (server,))
    models = server.get('load_models') or server.get('models') or []
    if not isinstance(models, list) or not all(isinstance(m, string_types) and m for m in models):
        raise ValueError('%s: load_models must be a list of model names, got %r' % (name, models))
    log_file = server.get('log_file') or None
    if not log_file and read_logs and server.get('log_dir') and (server.get('runtime') or 'process') != 'docker':
        log_file = '%s/%s.log' % (to_text(server['log_dir']).rstrip('/'), name)
    return {
        'name': to_text(name),
        'http_port': _port(server, 'http_port'),
        'grpc_port': _port(server, 'grpc_port'),
        'metrics_port': _port(server, 'metrics_port', required=False),
        'models': [to_text(m) for m in models],
        'log_file': log_file,
    }


class _Failed(Exception):
    def __init__(self, stage, msg):
        super(_Failed, self).__init__(msg)
        self.stage = stage
        self.msg = msg


def wait_ready(client, models, deadline, interval, sleep=time.sleep):
    """Poll one server until it is live, ready and every model is ready, a model failed to load, or time is up.

    Returns {ready, live, models, attempts, error, load_failures}; never raises.
    """
    state = {'ready': False, 'live': False, 'attempts': 0, 'error': None, 'load_failures': [],
             'models': [{'name': m, 'version': None, 'state': None, 'reason': 'server not reachable', 'ready': False}
                        for m in models]}

    def budget():
        return max(0.05, min(client.request_timeout, deadline.remaining()))

    while True:
        state['attempts'] += 1
        state['error'] = None
        try:
            state['live'] = bool(client.live(timeout=budget()))
        except Exception as exc:
            state['live'] = False
            state['error'] = 'not reachable: %s' % error_text(exc)
        if state['live']:
            try:
                state['ready'] = bool(client.ready(timeout=budget()))
            except Exception as exc:
                state['ready'] = False
                state['error'] = error_text(exc)
            index = None
            if models:
                try:
                    index = client.repository_index(timeout=budget())
                except Exception as exc:
                    state['error'] = 'repository index: %s' % error_text(exc)
            statuses = []
            for name in models:
                status = model_status(index, name)
                try:
                    status['ready'] = bool(client.model_ready(name, '', timeout=budget()))
                except Exception as exc:
                    status['ready'] = False
                    status['reason'] = status['reason'] or error_text(exc)
                statuses.append(status)
            state['models'] = statuses
            failures = [s for s in statuses if not s['ready'] and is_load_failure(s)]
            if failures:
                state['load_failures'] = failures
                return state
            if state['ready'] and all(s['ready'] for s in statuses):
                return state
            if not state['error']:
                state['error'] = 'server not ready'
        elif not state['error']:
            state['error'] = 'server not live'
        remaining = deadline.remaining()
        if remaining <= 0:
            return state
        sleep(min(interval, remaining))


def scrape_metrics(url, timeout):
    """GET a Prometheus text page (raises on any failure)."""
    response = open_url(url, method='GET', timeout=timeout,
                        headers={'Accept': 'text/plain;version=0.0.4;q=1,*/*;q=0.1'})
    try:
        return to_text(response.read(), errors='surrogate_or_replace')
    finally:
        response.close()


def read_counter(url, model, timeout):
    """Sum of the ensemble's request-success counter on one server, None when no series matched."""
    series, dummy = parse_text(scrape_metrics(url, timeout))
    matched = select_series(series, [REQUEST_COUNTER], {'model': model})
    return aggregate(matched, 'sum') if matched else None


def read_log(path, lines):
    """(tail, load failures) of a server log; empty when there is none or it cannot be read."""
    if not path:
        return [], []
    try:
        scanned = tail_file(path, max(lines, LOG_SCAN_LINES))
    except (IOError, OSError):
        return [], []
    return (scanned[-lines:] if lines > 0 else []), log_load_failures(scanned)


def _send(settings, protocol, url, stream):
    inputs = build_generation_inputs(settings.prompt, settings.max_tokens, stream=stream)
    endpoint = normalize_url(url, protocol)
    if protocol == 'grpc':
        answer = grpc_generate(endpoint, settings.model, inputs, settings.request_timeout)
    else:
        answer = http_generate(endpoint, settings.model, inputs, settings.request_timeout, stream=False)
    result = answer.as_dict(stream and protocol == 'grpc')
    result.update(protocol=protocol, url=endpoint.base_url,
                  endpoint='stream_infer' if protocol == 'grpc' else 'generate', stream=bool(stream and protocol == 'grpc'))
    return result


def _check_answer(settings, name, answer):
    protocol = answer['protocol']
    if not answer['text']:
        raise _Failed(protocol, '%s returned an empty answer to %r over %s' % (name, settings.prompt, protocol))
    if settings.expect_text and not text_matches(answer['text'], settings.expect_text):
        raise _Failed(protocol, '%s: answer over %s does not match expect_text %r: %r'
                      % (name, protocol, settings.expect_text, one_line(answer['text'], 300)))


def verify_server(server, settings):
    """Run every check on one server (a dict with name and ports); returns its result and never raises."""
    name = server['name']
    address = settings.address
    models = list(server.get('models') or settings.models)
    result = {
        'name': name,
        'http_url': 'http://%s' % host_port(address, server.get('http_port')),
        'grpc_address': host_port(address, server.get('grpc_port')),
        'metrics_url': 'http://%s/metrics' % host_port(address, server.get('metrics_port')),
        'ready': False, 'live': False, 'models': [], 'elapsed': 0.0, 'attempts': 0,
        'grpc': None, 'http': None, 'counter_before': None, 'counter_after': None,
        'failed': False, 'stage': None, 'msg': '', 'log_tail': [], 'log_load_failures': [],
    }
    deadline = Deadline(settings.health_timeout)
    try:
        port = server.get('%s_port' % settings.health_protocol)
        health_url = host_port(address, port)
        try:
            client = make_client(settings.health_protocol, health_url, request_timeout=settings.request_timeout_health)
        except Exception as exc:
            raise _Failed('health', 'cannot create a %s client for %s: %s'
                          % (settings.health_protocol, health_url, error_text(exc)))
        try:
            state = wait_ready(client, models, deadline, settings.interval)
        finally:
            client.close()
        result.update(ready=state['ready'], live=state['live'], models=state['models'],
                      attempts=state['attempts'], elapsed=round(deadline.elapsed(), 3))
        if state['load_failures']:
            raise _Failed('health', '%s at %s: model(s) failed to load (after %.2fs): %s' % (
                name, health_url, deadline.elapsed(), '; '.join(describe_model(m) for m in state['load_failures'])))
        if not (state['ready'] and all(m['ready'] for m in state['models'])):
            not_ready = [m for m in state['models'] if not m['ready']]
            msg = '%s at %s not ready within %ss: live=%s, ready=%s' % (
                name, health_url, settings.health_timeout, state['live'], state['ready'])
            if state['error']:
                msg += ' (%s)' % one_line(state['error'], 300)
            if not_ready:
                msg += '; models not ready: %s' % '; '.join(describe_model(m) for m in not_ready)
            raise _Failed('health', msg)

        if settings.assert_metrics:
            try:
                result['counter_before'] = read_counter(result['metrics_url'], settings.model, settings.metrics_timeout)
            except Exception as exc:
                raise _Failed('metrics', 'cannot read the metrics of %s at %s: %s'
                              % (name, result['metrics_url'], error_text(exc)))

        sent = 0
        sends = [('grpc', result['grpc_address'], settings.stream)]
        if settings.http_request:
            sends.append(('http', result['http_url'], False))
        for protocol, url, stream in sends:
            try:
                answer = _send(settings, protocol, url, stream)
            except TritonError as exc:
                raise _Failed(protocol, '%s over %s: %s' % (name, protocol, exc.msg))
            except ValueError as exc:
                raise _Failed(protocol, '%s over %s: %s' % (name, protocol, to_text(exc)))
            sent += 1
            result[protocol] = answer
            _check_answer(settings, name, answer)

        if settings.assert_metrics:
            try:
                after = read_counter(result['metrics_url'], settings.model, settings.metrics_timeout)
            except Exception as exc:
                raise _Failed('metrics', 'cannot read the metrics of %s at %s: %s'
                              % (name, result['metrics_url'], error_text(exc)))
            result['counter_after'] = after
            where = '%s{model=%s}' % (REQUEST_COUNTER, settings.model)
            if after is None:
                raise _Failed('metrics', '%s: no series matched %s' % (name, where))
            before = result['counter_before'] or 0
            if not after > before:
                raise _Failed('metrics', '%s: %s has not increased from %s (now %s) after %d request(s)'
                              % (name, where, before, after, sent))
    except _Failed as exc:
        result.update(failed=True, stage=exc.stage, msg=exc.msg)
        if exc.stage == 'health':
            tail, failures = read_log(server.get('log_file'), settings.log_lines)
            result.update(log_tail=tail, log_load_failures=failures)
            if failures:
                result['msg'] += '; load failures in the log: %s' % '; '.join(
                    '%s: %s' % (f['name'], one_line(f['reason'])) for f in failures)
    except Exception as exc:  # a bug or an unexpected client error: report it for this server only
        result.update(failed=True, stage=result['stage'] or 'error', msg='%s: %s' % (name, error_text(exc)))
    if not result['elapsed']:
        result['elapsed'] = round(deadline.elapsed(), 3)
    return result


def verify_servers(servers, settings):
    """Check all servers concurrently (a thread each); results in the order of ``servers``."""
    results = [None] * len(servers)

    def work(position, server):
        results[position] = verify_server(server, settings)

    threads = [threading.Thread(target=work, args=(position, server)) for position, server in enumerate(servers)]
    for thread in threads:
        thread.daemon = True
        thread.start()
    for thread in threads:
        thread.join()
    return results
