#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, tritonfleet maintainers
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import absolute_import, division, print_function
__metaclass__ = type

DOCUMENTATION = r'''
---
module: triton_model
short_description: Load, reload or unload a model of a Triton Inference Server, or list its repository
version_added: 0.4.0
description:
  - Reads the model repository index of a Triton Inference Server and loads, reloads or unloads one model
    through Triton's model repository API, over HTTP or gRPC.
  - Loading and unloading need a server started with C(--model-control-mode=explicit); a server in mode
    C(none) or C(poll) refuses them, and the module fails with Triton's answer.
  - O(state=loaded) and O(state=unloaded) are idempotent, O(state=reloaded) always reloads, O(state=listed)
    only reads.
  - C(changed) is V(true) only when the module asked the server to load, reload or unload the model.
author:
  - tritonfleet maintainers (@tritonfleet)
requirements:
  - tritonclient[http] for O(protocol=http), tritonclient[grpc] for O(protocol=grpc)
extends_documentation_fragment:
  - tritonfleet.serving.attributes
  - tritonfleet.serving.triton
attributes:
  check_mode:
    support: full
    details:
      - Reads the repository index and reports the change a normal run would make, without sending a load or
        an unload request.
  diff_mode:
    support: full
    details:
      - Returns the model's versions and states before and after, one line per version (in check mode the
        states expected after).
      - Nothing is returned for O(state=listed).
options:
  protocol:
    description: Protocol to talk to the server with.
    type: str
    choices: [http, grpc]
    default: http
  name:
    description:
      - Name of the model, as in the model repository.
      - Required unless O(state=listed).
    type: str
  state:
    description:
      - V(loaded) loads the model when it is not ready (when O(version) is given, when that version is not ready),
        and does nothing when it is.
      - V(reloaded) always asks Triton to load the model again, which re-reads its directory in the repository
        (a changed C(config.pbtxt), a new version). C(changed) is always V(true).
      - V(unloaded) unloads the model when any of its versions is loaded or loading, and waits until Triton
        has unloaded it (Triton finishes the requests in flight first).
      - V(listed) changes nothing and returns the repository index (and the state of O(name) when given).
      - When a load or a reload fails, Triton keeps serving the versions that were loaded before; the module
        fails with Triton's reason, the model's state and the server's URL.
    type: str
    choices: [loaded, reloaded, unloaded, listed]
    default: loaded
  version:
    description:
      - A version of the model (a non-negative integer) that must be ready.
      - Triton's load API cannot load a single version; it loads the versions the model's C(version_policy)
        in C(config.pbtxt) selects. With O(state=loaded), the model is loaded when this version is not ready,
        and the module fails when that version is still not ready afterwards. With O(state=listed) it selects
        which version O(name) reports.
      - Not allowed with O(state=unloaded), since Triton unloads all versions of a model together.
    type: str
  unload_dependents:
    description:
      - With O(state=unloaded), also unload the models the model depends on (the composing models of an
        ensemble), unless another loaded model still uses them.
    type: bool
    default: false
  timeout:
    description:
      - Seconds to wait for a load to finish (Triton answers a load request once the model is loaded or has
        failed, which can take minutes for a large engine), or for an unloaded model to leave the server.
    type: float
    default: 300
  request_timeout:
    description: Time limit of each single request other than a load, in seconds (never more than the time left).
    type: float
    default: 5
  log_file:
    description:
      - Path of the server's log, on the host the module runs on.
      - When a load fails, what Triton logged during the request about model directories it could not read is
        added to the message. Triton's answer to a load of a model whose C(config.pbtxt) it cannot parse says only
        C(failed to poll from model repository); the log names the file and the error.
    type: path
notes:
  - Triton answers an unload request at once and unloads in the background; the model shows as C(UNLOADING)
    until its requests in flight are done. The module waits for that up to O(timeout).
  - Loading an ensemble makes Triton load its composing models too.
  - An unload request for a model that is not in the repository succeeds on Triton's side; the module reports
    it as not changed.
seealso:
  - module: tritonfleet.serving.triton_health
  - module: tritonfleet.serving.triton_infer
'''

EXAMPLES = r'''
- name: Load the ensemble (a no-op when it is ready)
  tritonfleet.serving.triton_model:
    url: 127.0.0.1:8000
    name: ensemble
    state: loaded
    timeout: 900

- name: Re-read tensorrt_llm after a new engine was put in the repository
  tritonfleet.serving.triton_model:
    url: grpc://10.0.0.12:8001
    protocol: grpc
    name: tensorrt_llm
    state: reloaded
    timeout: 900

- name: Make sure version 2 of a model is being served
  tritonfleet.serving.triton_model:
    url: 127.0.0.1:8000
    name: tensorrt_llm
    version: "2"

- name: Unload the ensemble and the models it is made of
  tritonfleet.serving.triton_model:
    url: 127.0.0.1:8000
    name: ensemble
    state: unloaded
    unload_dependents: true

- name: List the repository
  tritonfleet.serving.triton_model:
    url: 127.0.0.1:8000
    state: listed
  register: repository

- name: Show the models that are ready
  ansible.builtin.debug:
    msg: "{{ repository.index | selectattr('state', 'equalto', 'READY') | map(attribute='name') | list }}"
'''

RETURN = r'''
index:
  description:
    - The server's model repository index after the action (in check mode, as read), one entry per model
      version Triton knows and one without version and state for each model in the repository it never loaded.
  returned: success, and on failure when the index could be read
  type: list
  elements: dict
  contains:
    name:
      description: Model name.
      type: str
    version:
      description: Model version, null for a model that was never loaded.
      type: str
    state:
      description: C(READY), C(UNAVAILABLE), C(LOADING), C(UNLOADING), or null for a model that was never loaded.
      type: str
    reason:
      description: Why the version is not ready (C(unloaded), or the load error), empty otherwise.
      type: str
  sample:
    - {name: ensemble, version: "1", state: READY, reason: ""}
    - {name: postprocessing, version: null, state: null, reason: ""}
model:
  description:
    - The state of O(name) after the action (in check mode, as read) - the ready version when one is ready,
      otherwise the most telling entry (a load error before C(unloaded)).
  returned: when O(name) is given
  type: dict
  contains:
    name:
      description: Model name.
      type: str
    version:
      description: The version the state belongs to, null when unknown.
      type: str
    state:
      description: The state, null when the model is not loaded (or not in the repository).
      type: str
    reason:
      description: Triton's reason, or why no state is known.
      type: str
    ready:
      description: Whether the model (O(version) when given) is ready.
      type: bool
  sample: {name: tensorrt_llm, version: "1", state: READY, reason: "", ready: true}
elapsed:
  description: Seconds the module spent, load and waits included (monotonic clock).
  returned: always
  type: float
  sample: 41.207
url:
  description: The normalised URL of the server.
  returned: always
  type: str
  sample: http://127.0.0.1:8000
protocol:
  description: Protocol used.
  returned: always
  type: str
  sample: http
'''

import os
import traceback

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.common.text.converters import to_text

from ansible_collections.tritonfleet.serving.plugins.module_utils.triton_client import (
    LOADED_STATES,
    Deadline,
    describe_model,
    error_text,
    log_poll_failures,
    make_client,
    model_entries,
    model_status,
    normalize_url,
    one_line,
    poll_until,
    require_tritonclient,
)

# Seconds between two reads of the index while waiting for a load or an unload to finish.
POLL_INTERVAL = 0.1

# Triton gives this answer in model control modes none and poll alike, which does not say what to change.
NOT_EXPLICIT = 'not allowed if polling is enabled'
NOT_EXPLICIT_HINT = ' (the server must run with --model-control-mode=explicit)'


# At most this much of the log written during a load is read.
LOG_READ_BYTES = 1024 * 1024


def log_size(path):
    try:
        return os.path.getsize(path) if path else None
    except OSError:
        return None


def new_log_lines(path, offset):
    """The lines written to ``path`` after ``offset`` (bounded; never raises)."""
    if offset is None:
        return []
    try:
        with open(path, 'rb') as handle:
            handle.seek(offset)
            data = handle.read(LOG_READ_BYTES)
    except (IOError, OSError):
        return []
    return to_text(data, errors='surrogate_or_replace').splitlines()


def request_error(exc):
    text = one_line(error_text(exc))
    if NOT_EXPLICIT in text:
        text += NOT_EXPLICIT_HINT
    return text


class ModelError(Exception):
    def __init__(self, msg, index=None):
        super(ModelError, self).__init__(msg)
        self.msg = msg
        self.index = index


def is_ready(index, name, version=None):
    return any(e['state'] == 'READY' for e in model_entries(index, name, version))


def is_loaded(index, name):
    """Whether a version of ``name`` is loaded or loading (an unload request has something to do)."""
    return any(e['state'] in ('READY', 'LOADING') for e in model_entries(index, name))


def is_gone(index, name):
    return not any(e['state'] in LOADED_STATES for e in model_entries(index, name))


def state_text(index, name, marker=''):
    """The model's versions and states, one line each, for the diff."""
    lines = []
    for entry in model_entries(index, name):
        if not entry['state']:
            continue
        line = '%s version %s: %s' % (name, entry['version'] or '?', entry['state'])
        if entry['reason']:
            line += ' (%s)' % one_line(entry['reason'], 200)
        lines.append(line + marker)
    if not lines:
        lines.append('%s: not loaded' % name)
    return '\n'.join(lines) + '\n'


def expected_text(index, name, state, version):
    """What state_text would say after the action (check mode)."""
    if state == 'unloaded':
        return state_text([dict(e, state='UNAVAILABLE', reason='unloaded') if e['state'] in LOADED_STATES else e
                           for e in model_entries(index, name)], name)
    if state == 'reloaded' and is_ready(index, name, version):
        return state_text(index, name, marker=' (reloaded)')
    label = ('%s version %s' % (name, version)) if version else name
    return '%s: READY%s\n' % (label, ' (reloaded)' if state == 'reloaded' else '')


def wants_change(index, name, state, version):
    if state == 'reloaded':
        return True
    if state == 'loaded':
        return not is_ready(index, name, version)
    if state == 'unloaded':
        return is_loaded(index, name)
    return False


class ModelController(object):
    """Loads and unloads one model on one server, reading the index around each request."""

    def __init__(self, client, deadline, base_url, log_file=None):
        self.client = client
        self.deadline = deadline
        self.base_url = base_url
        self.log_file = log_file

    def _timeout(self):
        return max(0.05, min(self.client.request_timeout, self.deadline.remaining()))

    def index(self):
        try:
            return self.client.repository_index(timeout=self._timeout())
        except Exception as exc:
            raise ModelError('Triton at %s: cannot read the model repository index: %s'
                             % (self.base_url, error_text(exc)))

    def _index_or_none(self):
        try:
            return self.client.repository_index(timeout=self._timeout())
        except Exception:
            return None

    def wait(self, done):
        """Poll the index until ``done(index)``; returns (ok, last index)."""
        last = {}

        def check():
            last['index'] = self.index()
            return done(last['index'])
        ok = poll_until(check, deadline=self.deadline, interval=POLL_INTERVAL).ok
        return ok, last['index']

    def load(self, name, version):
        offset = log_size(self.log_file)
        try:
            # a load gets all the time left: Triton answers once the model is loaded or has failed
            self.client.load_model(name, timeout=max(0.05, self.deadline.remaining()))
        except Exception as exc:
            index = self._index_or_none()
            msg = 'Triton at %s did not load model %s: %s' % (self.base_url, name, request_error(exc))
            polls = log_poll_failures(new_log_lines(self.log_file, offset))
            if polls:
                msg += '; the log says: %s' % '; '.join(
                    "cannot read model directory '%s': %s" % (p['name'], one_line(p['reason'], 300)) for p in polls)
            if index is not None:
                msg += '; now %s' % describe_model(model_status(index, name, version))
                if is_ready(index, name, version):
                    msg += ' (the versions loaded before keep serving)'
            raise ModelError(msg, index)
        # Triton answers once loading is over, so LOADING here means another client's load is under way.
        ok, index = self.wait(lambda idx: not any(e['state'] == 'LOADING' for e in model_entries(idx, name, version)))
        if is_ready(index, name, version):
            return index
        status = model_status(index, name, version)
        if not ok:
            raise ModelError('Triton at %s: model %s still loading after %ss: %s'
                             % (self.base_url, name, self.deadline.timeout, describe_model(status)), index)
        msg = 'Triton at %s loaded model %s, but it is not ready: %s' % (self.base_url, name, describe_model(status))
        if version:
            msg += ' (Triton loads the versions the version_policy in config.pbtxt selects)'
        raise ModelError(msg, index)

    def unload(self, name, unload_dependents):
        try:
            self.client.unload_model(name, unload_dependents=unload_dependents, timeout=self._timeout())
        except Exception as exc:
            raise ModelError('Triton at %s did not unload model %s: %s'
                             % (self.base_url, name, request_error(exc)), self._index_or_none())
        return self.wait_unloaded(name)

    def wait_unloaded(self, name):
        ok, index = self.wait(lambda idx: is_gone(idx, name))
        if not ok:
            busy = [e for e in model_entries(index, name) if e['state'] in LOADED_STATES]
            raise ModelError('Triton at %s: model %s not unloaded after %ss: %s' % (
                self.base_url, name, self.deadline.timeout,
                '; '.join(describe_model(e) for e in busy)), index)
        return index


def model_result(index, name, version):
    status = model_status(index, name, version)
    status['ready'] = is_ready(index, name, version)
    return status


def validate(module):
    params = module.params
    try:
        endpoint = normalize_url(params['url'], params['protocol'])
    except ValueError as exc:
        module.fail_json(msg=to_text(exc))
    name = params['name']
    if name is not None:
        name = name.strip()
        if not name or '/' in name:
            module.fail_json(msg='name must be a model name (no slashes), got %r' % params['name'])
    version = params['version']
    if version is not None:
        version = version.strip()
        if not version.isdigit():
            module.fail_json(msg='version must be a non-negative integer, got %r' % params['version'])
        version = to_text(int(version))
        if params['state'] == 'unloaded':
            module.fail_json(msg='version cannot be used with state=unloaded: Triton unloads all versions of a model')
    for option in ('timeout', 'request_timeout'):
        if params[option] <= 0:
            module.fail_json(msg='%s must be greater than 0, got %s' % (option, params[option]))
    return endpoint, name, version


def run_module():
    module = AnsibleModule(
        argument_spec=dict(
            url=dict(type='str'),
            protocol=dict(type='str', default='http', choices=['http', 'grpc']),
            name=dict(type='str'),
            state=dict(type='str', default='loaded', choices=['loaded', 'reloaded', 'unloaded', 'listed']),
            version=dict(type='str'),
            unload_dependents=dict(type='bool', default=False),
            timeout=dict(type='float', default=300.0),
            request_timeout=dict(type='float', default=5.0),
            log_file=dict(type='path'),
        ),
        required_if=[
            ('state', 'loaded', ['name']),
            ('state', 'reloaded', ['name']),
            ('state', 'unloaded', ['name']),
        ],
        supports_check_mode=True,
    )
    params = module.params
    protocol = params['protocol']
    state = params['state']
    endpoint, name, version = validate(module)
    require_tritonclient(module, protocol)

    deadline = Deadline(params['timeout'])
    result = dict(changed=False, url=endpoint.base_url, protocol=protocol)

    def finish(index, failed_msg=None):
        result['elapsed'] = round(deadline.elapsed(), 3)
        if index is not None:
            result['index'] = index
            if name is not None:
                result['model'] = model_result(index, name, version)
        if failed_msg:
            module.fail_json(msg=failed_msg, **result)
        module.exit_json(**result)

    try:
        client = make_client(protocol, endpoint.base_url, request_timeout=params['request_timeout'])
    except Exception as exc:
        module.fail_json(msg='cannot create a %s client for %s: %s' % (protocol, endpoint.base_url, error_text(exc)),
                         exception=traceback.format_exc(), **result)

    controller = ModelController(client, deadline, endpoint.base_url, log_file=params['log_file'])
    try:
        try:
            before = controller.index()
        except ModelError as exc:
            finish(None, exc.msg)
        if state == 'listed':
            finish(before)
        if not model_entries(before, name):
            if state == 'unloaded':
                finish(before)
            finish(before, 'Triton at %s: model %s is not in the model repository' % (endpoint.base_url, name))

        changed = wants_change(before, name, state, version)
        result['changed'] = changed
        if module.check_mode:
            if module._diff:
                result['diff'] = dict(before=state_text(before, name),
                                      after=expected_text(before, name, state, version) if changed
                                      else state_text(before, name))
            finish(before)

        try:
            if state == 'unloaded':
                after = controller.unload(name, params['unload_dependents']) if changed \
                    else controller.wait_unloaded(name)
            elif changed:
                after = controller.load(name, version)
            else:
                after = before
        except ModelError as exc:
            result['changed'] = False
            finish(exc.index, exc.msg)
        if module._diff:
            result['diff'] = dict(before=state_text(before, name),
                                  after=state_text(after, name, marker=' (reloaded)' if state == 'reloaded' else ''))
        finish(after)
    finally:
        client.close()


def main():
    run_module()


if __name__ == '__main__':
    main()
