# -*- coding: utf-8 -*-
# Copyright (c) 2026, tritonfleet maintainers
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The docker_daemon_config module, run in-process on temporary daemon.json files."""

from __future__ import annotations

import json
import os
import stat

import pytest

from ansible_collections.tritonfleet.serving.plugins.module_utils import docker_daemon
from ansible_collections.tritonfleet.serving.plugins.modules import docker_daemon_config

from ansible_collections.tritonfleet.serving.tests.unit.utils.ansible_module_harness import run_module

NVIDIA_ENTRY = {'path': 'nvidia-container-runtime', 'args': []}

# What a site might already have: keys this project never sets, in the user's order and layout.
USER_TEXT = '{\n  "data-root": "/srv/docker",\n  "log-opts": {"max-size": "10m", "labels": "team"},\n  "live-restore": true\n}\n'


def run(args, check_mode=False, diff=False):
    args = dict(args)
    if diff:
        args['_ansible_diff'] = True
    out = run_module(docker_daemon_config.main, args, check_mode=check_mode)
    return ('fail' if out.failed else 'exit'), out.result


@pytest.fixture
def daemon_json(tmp_path):
    path = tmp_path / 'docker' / 'daemon.json'
    path.parent.mkdir()
    path.write_text(USER_TEXT)
    return path


def load(path):
    return json.loads(path.read_text())


# --- merging ------------------------------------------------------------------------------------

def test_merge_keeps_unknown_keys(daemon_json):
    kind, result = run({'path': str(daemon_json),
                        'settings': {'log-driver': 'json-file', 'log-opts': {'max-size': '100m'},
                                     'insecure-registries': ['mirror.internal:5000']}})
    assert kind == 'exit'
    assert result['changed'] is True
    assert result['created'] is False
    written = load(daemon_json)
    assert written == {
        'data-root': '/srv/docker',
        'log-opts': {'max-size': '100m', 'labels': 'team'},
        'live-restore': True,
        'log-driver': 'json-file',
        'insecure-registries': ['mirror.internal:5000'],
    }
    assert result['config'] == written
    # The user's keys keep their order; new keys come after them.
    assert list(written) == ['data-root', 'log-opts', 'live-restore', 'log-driver', 'insecure-registries']
    assert daemon_json.read_text() == json.dumps(written, indent=4) + '\n'


def test_lists_are_replaced_and_null_removes(daemon_json):
    daemon_json.write_text(json.dumps({'insecure-registries': ['a:5000', 'b:5000'], 'debug': True}))
    kind, result = run({'path': str(daemon_json),
                        'settings': {'insecure-registries': ['c:5000'], 'debug': None, 'absent': None}})
    assert kind == 'exit' and result['changed'] is True
    assert load(daemon_json) == {'insecure-registries': ['c:5000']}


def test_second_run_is_unchanged_and_does_not_rewrite(daemon_json):
    args = {'path': str(daemon_json), 'settings': {'log-driver': 'json-file'}, 'nvidia_runtime': True}
    assert run(args)[1]['changed'] is True
    before = os.stat(daemon_json)
    kind, result = run(args)
    assert kind == 'exit'
    assert result['changed'] is False
    after = os.stat(daemon_json)
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)


def test_formatting_alone_is_not_a_change(daemon_json):
    """The user's layout is kept when the values are already what is wanted."""
    kind, result = run({'path': str(daemon_json), 'settings': {'live-restore': True, 'log-opts': {'labels': 'team'}}})
    assert kind == 'exit' and result['changed'] is False
    assert daemon_json.read_text() == USER_TEXT


def test_boolean_is_not_equal_to_number(daemon_json):
    daemon_json.write_text('{"debug": 1}')
    kind, result = run({'path': str(daemon_json), 'settings': {'debug': True}})
    assert kind == 'exit' and result['changed'] is True
    assert load(daemon_json) == {'debug': True}


# --- missing and empty files --------------------------------------------------------------------

def test_missing_file_is_created_with_parent_and_mode_0644(tmp_path):
    path = tmp_path / 'etc' / 'docker' / 'daemon.json'
    kind, result = run({'path': str(path), 'settings': {'log-driver': 'local'}})
    assert kind == 'exit'
    assert result['changed'] is True and result['created'] is True
    assert load(path) == {'log-driver': 'local'}
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o644
    assert [p.name for p in path.parent.iterdir()] == ['daemon.json']  # no temporary file left


def test_missing_file_is_not_created_when_nothing_is_wanted(tmp_path):
    path = tmp_path / 'daemon.json'
    kind, result = run({'path': str(path)})
    assert kind == 'exit'
    assert result['changed'] is False and result['created'] is False
    assert result['config'] == {}
    assert not path.exists()


def test_empty_file_counts_as_empty_object(daemon_json):
    daemon_json.write_text('  \n')
    assert run({'path': str(daemon_json)})[1]['changed'] is False
    kind, result = run({'path': str(daemon_json), 'settings': {'debug': False}})
    assert kind == 'exit' and result['changed'] is True and result['created'] is False
    assert load(daemon_json) == {'debug': False}


def test_file_mode_and_content_of_others_kept(daemon_json):
    os.chmod(daemon_json, 0o600)
    kind, result = run({'path': str(daemon_json), 'settings': {'debug': True}})
    assert kind == 'exit' and result['changed'] is True
    assert stat.S_IMODE(os.stat(daemon_json).st_mode) == 0o600


def test_backup_keeps_previous_file(daemon_json):
    kind, result = run({'path': str(daemon_json), 'settings': {'debug': True}, 'backup': True})
    assert kind == 'exit' and result['changed'] is True
    with open(result['backup_file']) as handle:
        assert handle.read() == USER_TEXT


# --- check and diff modes -----------------------------------------------------------------------

def test_check_mode_writes_nothing(daemon_json):
    before = os.stat(daemon_json)
    kind, result = run({'path': str(daemon_json), 'settings': {'log-driver': 'json-file'}, 'nvidia_runtime': True},
                       check_mode=True)
    assert kind == 'exit'
    assert result['changed'] is True
    assert result['config']['runtimes'] == {'nvidia': NVIDIA_ENTRY}
    assert daemon_json.read_text() == USER_TEXT
    assert os.stat(daemon_json).st_mtime_ns == before.st_mtime_ns


def test_check_mode_does_not_create_missing_file(tmp_path):
    path = tmp_path / 'docker' / 'daemon.json'
    kind, result = run({'path': str(path), 'settings': {'debug': True}}, check_mode=True)
    assert kind == 'exit' and result['changed'] is True and result['created'] is True
    assert not path.parent.exists()


def test_diff_has_before_and_after_text(daemon_json):
    kind, result = run({'path': str(daemon_json), 'settings': {'log-driver': 'json-file'}}, check_mode=True, diff=True)
    assert kind == 'exit'
    diff = result['diff']
    assert diff['before'] == USER_TEXT
    assert json.loads(diff['after']) == dict(json.loads(USER_TEXT), **{'log-driver': 'json-file'})
    assert diff['after'].endswith('    "log-driver": "json-file"\n}\n')
    assert diff['before_header'] == diff['after_header'] == str(daemon_json)


def test_diff_of_missing_file_starts_empty(tmp_path):
    path = tmp_path / 'daemon.json'
    kind, result = run({'path': str(path), 'nvidia_runtime': True}, diff=True)
    assert kind == 'exit'
    assert result['diff']['before'] == ''
    assert json.loads(result['diff']['after']) == {'runtimes': {'nvidia': NVIDIA_ENTRY}}


def test_no_diff_without_diff_mode(daemon_json):
    assert 'diff' not in run({'path': str(daemon_json), 'settings': {'debug': True}})[1]


def test_unchanged_diff_is_identical(daemon_json):
    kind, result = run({'path': str(daemon_json), 'settings': {'live-restore': True}}, diff=True)
    assert result['changed'] is False
    assert result['diff']['before'] == result['diff']['after'] == USER_TEXT


# --- invalid files ------------------------------------------------------------------------------

@pytest.mark.parametrize('text, words', [
    ('{"log-driver": "json-file",}', 'is not valid JSON'),
    ('{"a": 1', 'is not valid JSON'),
    ('["runc"]', 'must hold a JSON object, found a JSON list'),
])
def test_invalid_json_fails_and_is_not_overwritten(daemon_json, text, words):
    daemon_json.write_text(text)
    kind, result = run({'path': str(daemon_json), 'settings': {'debug': True}, 'nvidia_runtime': True})
    assert kind == 'fail'
    assert str(daemon_json) in result['msg']
    assert words in result['msg']
    assert result['changed'] is False
    assert daemon_json.read_text() == text


def test_invalid_json_fails_in_check_mode_too(daemon_json):
    daemon_json.write_text('not json')
    kind, result = run({'path': str(daemon_json)}, check_mode=True)
    assert kind == 'fail' and 'is not valid JSON' in result['msg']


def test_unreadable_path_fails(tmp_path):
    kind, result = run({'path': str(tmp_path)})
    assert kind == 'fail'
    assert 'cannot read %s' % tmp_path in result['msg']


# --- the nvidia runtime -------------------------------------------------------------------------

def test_nvidia_runtime_added_only_when_asked(daemon_json):
    kind, result = run({'path': str(daemon_json), 'settings': {'debug': True}})
    assert 'runtimes' not in load(daemon_json)
    kind, result = run({'path': str(daemon_json), 'nvidia_runtime': True})
    assert kind == 'exit' and result['changed'] is True
    written = load(daemon_json)
    assert written['runtimes'] == {'nvidia': NVIDIA_ENTRY}
    assert 'default-runtime' not in written
    assert written['data-root'] == '/srv/docker' and written['debug'] is True


def test_nvidia_runtime_keeps_other_runtimes_and_matches_nvidia_ctk(daemon_json):
    # The file nvidia-ctk runtime configure --runtime=docker leaves, plus a second runtime of the site.
    daemon_json.write_text(json.dumps({'runtimes': {'nvidia': NVIDIA_ENTRY, 'kata': {'path': '/usr/bin/kata-runtime'}}},
                                      indent=4))
    kind, result = run({'path': str(daemon_json), 'nvidia_runtime': True})
    assert kind == 'exit' and result['changed'] is False
    kind, result = run({'path': str(daemon_json), 'nvidia_runtime': False})
    assert kind == 'exit' and result['changed'] is False
    assert set(load(daemon_json)['runtimes']) == {'nvidia', 'kata'}


def test_nvidia_runtime_repairs_a_wrong_path(daemon_json):
    daemon_json.write_text(json.dumps({'runtimes': {'nvidia': {'path': '/opt/old/nvidia-container-runtime', 'args': []}}}))
    kind, result = run({'path': str(daemon_json), 'nvidia_runtime': True})
    assert kind == 'exit' and result['changed'] is True
    assert load(daemon_json)['runtimes']['nvidia'] == NVIDIA_ENTRY


def test_default_runtime(daemon_json):
    kind, result = run({'path': str(daemon_json), 'nvidia_runtime': True, 'default_runtime': 'nvidia'})
    assert kind == 'exit' and result['changed'] is True
    assert load(daemon_json)['default-runtime'] == 'nvidia'
    assert run({'path': str(daemon_json), 'nvidia_runtime': True, 'default_runtime': 'nvidia'})[1]['changed'] is False
    kind, result = run({'path': str(daemon_json), 'default_runtime': 'runc'})
    assert kind == 'exit' and result['changed'] is True
    assert load(daemon_json)['default-runtime'] == 'runc'


def test_default_runtime_must_be_defined(daemon_json):
    kind, result = run({'path': str(daemon_json), 'default_runtime': 'nvidia'})
    assert kind == 'fail'
    assert "default-runtime 'nvidia'" in result['msg']
    assert daemon_json.read_text() == USER_TEXT


# --- module_utils directly ----------------------------------------------------------------------

def test_deep_merge_does_not_modify_its_inputs():
    base = {'a': {'b': [1]}}
    wanted = {'a': {'c': {'d': 1}}}
    merged = docker_daemon.deep_merge(base, wanted)
    merged['a']['b'].append(2)
    merged['a']['c']['d'] = 2
    assert base == {'a': {'b': [1]}}
    assert wanted == {'a': {'c': {'d': 1}}}


def test_object_replaces_scalar_and_scalar_replaces_object():
    assert docker_daemon.deep_merge({'a': 1, 'b': {'x': 1}}, {'a': {'y': 2}, 'b': 'z'}) == {'a': {'y': 2}, 'b': 'z'}
