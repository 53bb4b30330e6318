# -*- coding: utf-8 -*-
# Copyright: (c) 2026, tritonfleet maintainers
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Run an Ansible module's main() in-process with given arguments.

exit_json/fail_json are replaced by functions that raise ModuleExit, so a test
gets the module's result instead of a SystemExit. Unit and integration tests
both import it by its collection name,
``ansible_collections.tritonfleet.serving.tests.unit.utils.ansible_module_harness``:
ansible-test units resolves that through its collection loader, plain pytest
through the .collections link that tests/conftest.py puts on sys.path.
"""

from __future__ import annotations

import contextlib
import json
from unittest import mock

from ansible.module_utils import basic
from ansible.module_utils.common.text.converters import to_bytes

try:  # ansible-core >= 2.19
    from ansible.module_utils.testing import patch_module_args
except ImportError:  # older ansible-core: the classic _ANSIBLE_ARGS approach
    patch_module_args = None


class ModuleExit(Exception):
    """exit_json() or fail_json() was called; .failed tells which, .result holds the result."""

    def __init__(self, failed, result):
        super().__init__(result.get('msg'))
        self.failed = failed
        self.result = result


@contextlib.contextmanager
def set_module_args(args):
    if patch_module_args is not None:
        with patch_module_args(args):
            yield
        return
    serialized = to_bytes(json.dumps({'ANSIBLE_MODULE_ARGS': args}))
    with mock.patch.object(basic, '_ANSIBLE_ARGS', serialized):
        yield


def _exit_json(self, **kwargs):
    kwargs.setdefault('changed', False)
    kwargs['warnings'] = list(getattr(self, '_harness_warnings', []))
    raise ModuleExit(False, kwargs)


def _fail_json(self, msg, **kwargs):
    kwargs['failed'] = True
    kwargs['msg'] = msg
    kwargs['warnings'] = list(getattr(self, '_harness_warnings', []))
    raise ModuleExit(True, kwargs)


def _warn(self, warning):
    if not hasattr(self, '_harness_warnings'):
        self._harness_warnings = []
    self._harness_warnings.append(warning)


def run_module(main, args, check_mode=False):
    """Run main() with args; returns the ModuleExit that exit_json/fail_json raised."""
    args = dict(args)
    if check_mode:
        args['_ansible_check_mode'] = True
    with set_module_args(args), \
            mock.patch.object(basic.AnsibleModule, 'exit_json', _exit_json), \
            mock.patch.object(basic.AnsibleModule, 'fail_json', _fail_json), \
            mock.patch.object(basic.AnsibleModule, 'warn', _warn):
        try:
            main()
        except ModuleExit as exc:
            return exc
    raise AssertionError('the module returned without calling exit_json or fail_json')
