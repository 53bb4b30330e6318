#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, tritonfleet maintainers
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import absolute_import, division, print_function
__metaclass__ = type

DOCUMENTATION = r'''
---
module: triton_health
short_description: Wait until a Triton Inference Server and its models are ready
version_added: 0.1.0
description:
  - Polls a Triton Inference Server over HTTP or gRPC until the server is live, the server is ready
    and every listed model is ready, or until O(timeout) passes.
  - Per-model state and reason come from the model repository index, readiness from the model ready API.
  - On failure the message names the URL and every model that is not ready with its state and reason,
    and the tail of the server's log (O(log_file)) is returned in RV(log_tail).
author:
  - tritonfleet maintainers (@tritonfleet)
requirements:
  - tritonclient[http] for O(protocol=http), tritonclient[grpc] for O(protocol=grpc)
extends_documentation_fragment:
  - tritonfleet.serving.attributes
  - tritonfleet.serving.attributes.info_module
  - tritonfleet.serving.triton
options:
  protocol:
    description: Protocol to talk to the server with.
    type: str
    choices: [http, grpc]
    default: http
  models:
    description:
      - Models that must be ready. Each item is a model name, or a dict with V(name) and optionally V(version).
      - Without a version, a model counts as ready when any of its versions is ready.
    type: list
    elements: raw
    default: []
  timeout:
    description: Overall time to wait, in seconds.
    type: float
    default: 120
  interval:
    description: Seconds between two polls. Sub-second values are fine.
    type: float
    default: 0.25
  request_timeout:
    description: Time limit of each single request to the server, in seconds (never more than the time left).
    type: float
    default: 5
  log_file:
    description:
      - Path of the server's log (on the host the module runs on). Its last O(log_lines) lines are returned
        on failure, and model load failures found in it are named in the message.
    type: path
  log_lines:
    description: How many lines of O(log_file) to return on failure.
    type: int
    default: 40
  pid:
    description:
      - Process id of the tritonserver being waited for. When it exits (or is a zombie) while waiting, the
        module fails at once saying so, instead of waiting out O(timeout).
    type: int
  fail_fast:
    description:
      - Fail as soon as the server is live and a listed model is C(UNAVAILABLE) with a load error as its
        reason (anything but C(unloaded)). In model control mode C(none) such a model never becomes ready.
      - Set V(false) to keep waiting, for example in C(poll) mode while a fix reaches the repository.
    type: bool
    default: true
notes:
  - Triton started with C(--model-control-mode=none) opens its HTTP and gRPC ports only after every model
    has been loaded or has failed, so a slow load shows as "connection refused" until then.
  - With the default C(--exit-on-error=true) a failed model load makes tritonserver exit; pass O(pid) and
    O(log_file) to get that reported at once with the reason from the log.
seealso:
  - module: tritonfleet.serving.triton_infer
'''

EXAMPLES = r'''
- name: Wait for the server and the ensemble's models
  tritonfleet.serving.triton_health:
    url: 127.0.0.1:8000
    models: [preprocessing, tensorrt_llm, postprocessing, ensemble]
    timeout: 600
    log_file: /var/log/tritonfleet/triton-gpu0.log
    pid: "{{ triton_pid }}"

- name: Check one version of a model over gRPC
  tritonfleet.serving.triton_health:
    url: grpc://10.0.0.12:8001
    protocol: grpc
    models:
      - name: tensorrt_llm
        version: 2
    timeout: 30
  register: health

- name: Show the server version
  ansible.builtin.debug:
    msg: "Triton {{ health.server.version }} ready after {{ health.elapsed }}s"
'''

RETURN = r'''
live:
  description: Whether the server answered live.
  returned: always
  type: bool
  sample: true
ready:
  description: Whether the server answered ready.
  returned: always
  type: bool
  sample: true
models:
  description: State of each listed model, in the order given.
  returned: always
  type: list
  elements: dict
  contains:
    name:
      description: Model name.
      type: str
    version:
      description: Version the state belongs to (the ready one when any is), null when unknown.
      type: str
    state:
      description: State from the repository index (C(READY), C(UNAVAILABLE), C(LOADING), C(UNLOADING) ...),
        null when the index has none (server down, model not loaded in explicit mode, not in the repository).
      type: str
    reason:
      description: Reason from the repository index (the load error for a failed model), or why no state is known.
      type: str
    ready:
      description: Whether the model ready API said ready.
      type: bool
  sample:
    - {name: ensemble, version: "1", state: READY, reason: "", ready: true}
elapsed:
  description: Seconds spent waiting (monotonic clock).
  returned: always
  type: float
  sample: 2.318
attempts:
  description: Number of polls made.
  returned: always
  type: int
  sample: 10
server:
  description: Server metadata; empty until the server answered.
  returned: always
  type: dict
  contains:
    name:
      description: Server name.
      type: str
    version:
      description: Triton version.
      type: str
    extensions:
      description: Protocol extensions the server supports.
      type: list
      elements: str
  sample: {name: triton, version: 2.51.0, extensions: [classification, model_repository, statistics]}
url:
  description: The normalised URL that was polled.
  returned: always
  type: str
  sample: http://127.0.0.1:8000
protocol:
  description: Protocol used.
  returned: always
  type: str
  sample: http
log_tail:
  description: Last O(log_lines) lines of O(log_file) (empty when no log file was given or it could not be read).
  returned: failure
  type: list
  elements: str
log_load_failures:
  description: Model load failures found in the last lines of O(log_file) (C(failed to load 'x' version N ...)).
  returned: failure
  type: list
  elements: dict
  sample:
    - {name: tensorrt_llm, version: "1", reason: "Internal: unexpected error when creating modelInstanceState"}
'''

import traceback

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.common.text.converters import to_text
from ansible.module_utils.six import string_types

from ansible_collections.tritonfleet.serving.plugins.module_utils.triton_client import (
    Deadline,
    describe_model,
    error_text,
    is_load_failure,
    log_load_failures,
    make_client,
    model_status,
    normalize_url,
    one_line,
    poll_until,
    require_tritonclient,
)
from ansible_collections.tritonfleet.serving.plugins.module_utils.processes import process_running, tail_file

# How many lines of the log are scanned for load failures.
LOG_SCAN_LINES = 2000


class _StopWaiting(Exception):
    pass


def parse_models(items):
    """Normalise the models option into a list of {name, version}; raises ValueError."""
    models = []
    for item in items or []:
        if isinstance(item, dict):
            unknown = sorted(set(item) - set(['name', 'version']))
            if unknown:
                raise ValueError('models: unknown key(s) %s in %r (use name and version)' % (', '.join(unknown), item))
            name = item.get('name')
            version = item.get('version')
        else:
            name = item
            version = None
        if not isinstance(name, string_types) or not name.strip():
            raise ValueError('models: each item needs a model name, got %r' % (item,))
        if version in (None, ''):
            version = None
        else:
            if isinstance(version, bool) or not to_text(version).strip().isdigit():
                raise ValueError('models: version of %s must be a non-negative integer, got %r' % (name, version))
            version = to_text(int(to_text(version).strip()))
        models.append({'name': name.strip(), 'version': version})
    return models


class HealthWaiter(object):
    """Polls one server; its attributes hold the last observation."""

    def __init__(self, client, models, deadline, pid=None, fail_fast=True):
        self.client = client
        self.wanted = models
        self.deadline = deadline
        self.pid = pid
        self.fail_fast = fail_fast
        self.live = False
        self.reachable = False
        self.ready = False
        self.server = {}
        self.last_error = None
        self.exited = False
        self.failed = []
        self.attempts = 0
        self.models = [self._unknown(m, 'server not reachable') for m in models]

    @staticmethod
    def _unknown(model, reason):
        return {'name': model['name'], 'version': model['version'], 'state': None, 'reason': reason, 'ready': False}

    def _timeout(self):
        return max(0.05, min(self.client.request_timeout, self.deadline.remaining()))

    def check(self):
        self.attempts += 1
        self.last_error = None
        if self.pid is not None and not process_running(self.pid):
            self.exited = True
            raise _StopWaiting()
        try:
            self.live = self.client.live(timeout=self._timeout())
            self.reachable = True
        except Exception as exc:
            self.live = False
            self.reachable = False
            self.ready = False
            self.last_error = error_text(exc)
            self.models = [self._unknown(m, 'server not reachable') for m in self.wanted]
            return False
        if not self.live:
            self.ready = False
            self.last_error = 'server not live'
            return False
        try:
            self.ready = self.client.ready(timeout=self._timeout())
        except Exception as exc:
            self.ready = False
            self.last_error = error_text(exc)
        if not self.server:
            try:
                self.server = self.client.server_metadata(timeout=self._timeout())
            except Exception:
                self.server = {}
        index = None
        if self.wanted:
            try:
                index = self.client.repository_index(timeout=self._timeout())
            except Exception as exc:
                index = None
                self.last_error = 'repository index: %s' % error_text(exc)
        statuses = []
        for model in self.wanted:
            status = model_status(index, model['name'], model['version'])
            try:
                status['ready'] = self.client.model_ready(model['name'], model['version'] or '',
                                                          timeout=self._timeout())
            except Exception as exc:
                status['ready'] = False
                if not status['reason']:
                    status['reason'] = error_text(exc)
            statuses.append(status)
        self.models = statuses
        if self.fail_fast:
            self.failed = [s for s in statuses if not s['ready'] and is_load_failure(s)]
            if self.failed:
                raise _StopWaiting()
        if self.live and not self.ready and not self.last_error:
            self.last_error = 'server not ready'
        return self.live and self.ready and all(s['ready'] for s in statuses)


def read_log(path, lines):
    """(tail, load failures, error) for the log file; never raises."""
    if not path:
        return [], [], None
    try:
        scanned = tail_file(path, max(lines, LOG_SCAN_LINES))
    except (IOError, OSError) as exc:
        return [], [], 'cannot read log %s: %s' % (path, error_text(exc))
    tail = scanned[-lines:] if lines > 0 else []
    return tail, log_load_failures(scanned), None


def failure_message(waiter, base_url, timeout, elapsed, pid, log_failures):
    not_ready = [m for m in waiter.models if not m['ready']]
    if waiter.exited:
        msg = 'tritonserver (pid %d) exited while waiting for %s (after %.2fs)' % (pid, base_url, elapsed)
    elif waiter.failed:
        msg = 'Triton at %s: model(s) failed to load (after %.2fs): %s' % (
            base_url, elapsed, '; '.join(describe_model(m) for m in waiter.failed))
        return msg
    elif not waiter.live:
        msg = 'Triton at %s not %s within %ss' % (base_url, 'live' if waiter.reachable else 'reachable', timeout)
        if waiter.last_error:
            msg += ': %s' % one_line(waiter.last_error, 300)
    else:
        msg = 'Triton at %s not ready within %ss: server live=%s, ready=%s' % (
            base_url, timeout, waiter.live, waiter.ready)
        if not_ready:
            msg += '; models not ready: %s' % '; '.join(describe_model(m) for m in not_ready)
        return msg
    if log_failures:
        msg += '; load failures in the log: %s' % '; '.join(
            '%s: %s' % (f['name'], one_line(f['reason'])) for f in log_failures)
    elif not_ready:
        msg += '; models not ready: %s' % ', '.join(m['name'] for m in not_ready)
    return msg


def run_module():
    module = AnsibleModule(
        argument_spec=dict(
            url=dict(type='str'),
            protocol=dict(type='str', default='http', choices=['http', 'grpc']),
            models=dict(type='list', elements='raw', default=[]),
            timeout=dict(type='float', default=120.0),
            interval=dict(type='float', default=0.25),
            request_timeout=dict(type='float', default=5.0),
            log_file=dict(type='path'),
            log_lines=dict(type='int', default=40),
            pid=dict(type='int'),
            fail_fast=dict(type='bool', default=True),
        ),
        supports_check_mode=True,
    )
    params = module.params
    protocol = params['protocol']
    try:
        endpoint = normalize_url(params['url'], protocol)
        models = parse_models(params['models'])
    except ValueError as exc:
        module.fail_json(msg=to_text(exc))
    for name in ('timeout', 'interval', 'request_timeout'):
        if params[name] <= 0:
            module.fail_json(msg='%s must be greater than 0, got %s' % (name, params[name]))
    if params['log_lines'] < 0:
        module.fail_json(msg='log_lines must not be negative')
    if params['pid'] is not None and params['pid'] <= 0:
        module.fail_json(msg='pid must be a positive integer')

    require_tritonclient(module, protocol)

    result = dict(changed=False, url=endpoint.base_url, protocol=protocol)
    deadline = Deadline(params['timeout'])
    try:
        client = make_client(protocol, endpoint.base_url, request_timeout=params['request_timeout'])
    except Exception as exc:
        module.fail_json(msg='cannot create a %s client for %s: %s' % (protocol, endpoint.base_url, error_text(exc)),
                         exception=traceback.format_exc(), **result)

    waiter = HealthWaiter(client, models, deadline, pid=params['pid'], fail_fast=params['fail_fast'])
    ok = False
    try:
        ok = poll_until(waiter.check, deadline=deadline, interval=params['interval']).ok
    except _StopWaiting:
        ok = False
    finally:
        client.close()
    elapsed = deadline.elapsed()
    result.update(
        live=waiter.live,
        ready=waiter.ready,
        models=waiter.models,
        elapsed=round(elapsed, 3),
        attempts=waiter.attempts,
        server=waiter.server,
    )
    if ok:
        module.exit_json(**result)

    tail, log_failures, log_error = read_log(params['log_file'], params['log_lines'])
    msg = failure_message(waiter, endpoint.base_url, params['timeout'], elapsed, params['pid'], log_failures)
    if log_error:
        msg += ' (%s)' % log_error
    module.fail_json(msg=msg, log_tail=tail, log_load_failures=log_failures, **result)


def main():
    run_module()


if __name__ == '__main__':
    main()
