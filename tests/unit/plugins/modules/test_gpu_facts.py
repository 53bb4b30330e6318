# -*- coding: utf-8 -*-
# Copyright (c) 2026, tritonfleet maintainers
# SPDX-License-Identifier: Apache-2.0
"""The gpu_facts module, run in-process against the real H100 output, variants
of it and fake nvidia-smi executables (real processes run by run_command)."""

from __future__ import annotations

import json
import os
import pathlib
import subprocess
import sys
from unittest import mock

import pytest

from ansible.module_utils import basic

from ansible_collections.tritonfleet.serving.plugins.modules import gpu_facts

from ansible_collections.tritonfleet.serving.tests.unit.utils import nvsmi_variants as variants
from ansible_collections.tritonfleet.serving.tests.unit.utils.ansible_module_harness import run_module

REPO_ROOT = pathlib.Path(__file__).resolve().parents[4]


def run(args):
    out = run_module(gpu_facts.main, args)
    return ('fail' if out.failed else 'exit'), out.result


@pytest.fixture
def no_nvidia_smi_on_path():
    """Make the default lookup find nothing, whatever the test machine has installed."""
    with mock.patch.object(basic.AnsibleModule, 'get_bin_path', return_value=None) as patched:
        yield patched


def write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text)
    return str(path)


# --- a real H100 host ----------------------------------------------------------------------

def test_xml_path_real_h100():
    kind, result = run({'xml_path': str(variants.H100_XML_PATH)})
    assert kind == 'exit'
    assert result['changed'] is False
    assert result['reason'] == ''
    assert result['source'] == 'xml_path'
    facts = result['ansible_facts']
    assert facts['tritonfleet_gpu_count'] == 1
    assert facts['tritonfleet_gpu_sku'] == 'NVIDIA-H100-80GB-HBM3'
    assert facts['tritonfleet_gpu_skus'] == ['NVIDIA-H100-80GB-HBM3']
    assert facts['tritonfleet_driver_version'] == '580.159.04'
    assert facts['tritonfleet_cuda_version'] == '13.0'
    assert facts['tritonfleet_accelerator'] == 'gpu'
    assert facts['tritonfleet_accelerator_reason'] == ''
    gpu = facts['tritonfleet_gpus'][0]
    assert gpu['name'] == 'NVIDIA H100 80GB HBM3'
    assert gpu['uuid'] == variants.H100_UUID
    assert gpu['memory_total_mib'] == 81559
    assert gpu['compute_capability'] == '9.0'
    assert gpu['mig_mode'] == {'current': False, 'pending': False}
    assert result['warnings'] == []


def test_runs_nvidia_smi_from_explicit_path(tmp_path):
    smi = variants.fake_nvidia_smi(tmp_path / 'bin', stdout_file=variants.H100_XML_PATH)
    kind, result = run({'nvidia_smi_path': smi})
    assert kind == 'exit'
    assert result['source'] == smi
    assert result['ansible_facts']['tritonfleet_gpus'][0]['uuid'] == variants.H100_UUID


def test_finds_nvidia_smi_by_default(tmp_path):
    smi = variants.fake_nvidia_smi(tmp_path / 'bin', stdout_file=variants.H100_XML_PATH)
    with mock.patch.object(basic.AnsibleModule, 'get_bin_path', return_value=smi) as lookup:
        kind, result = run({})
    assert kind == 'exit'
    assert lookup.call_args[0][0] == 'nvidia-smi'
    assert '/usr/local/nvidia/bin' in lookup.call_args[1]['opt_dirs']
    assert result['ansible_facts']['tritonfleet_accelerator'] == 'gpu'


def test_finds_nvidia_smi_on_path(tmp_path, monkeypatch):
    """The real get_bin_path, with the fake executable first on PATH."""
    bindir = tmp_path / 'bin'
    variants.fake_nvidia_smi(bindir, stdout_file=variants.H100_XML_PATH)
    monkeypatch.setenv('PATH', os.pathsep.join([str(bindir), '/usr/bin', '/bin']))
    with mock.patch.object(gpu_facts, 'NVIDIA_SMI_DIRS', []):
        kind, result = run({})
    assert kind == 'exit'
    assert result['source'] == str(bindir / 'nvidia-smi')
    assert result['ansible_facts']['tritonfleet_gpu_count'] == 1


def test_check_mode_still_reads():
    kind, result = run({'xml_path': str(variants.H100_XML_PATH), '_ansible_check_mode': True})
    assert kind == 'exit'
    assert result['changed'] is False
    assert result['ansible_facts']['tritonfleet_gpu_count'] == 1


# --- variants ------------------------------------------------------------------------------------

def test_multi_gpu(tmp_path):
    smi = variants.fake_nvidia_smi(tmp_path, stdout=variants.multi_gpu_xml(8))
    kind, result = run({'nvidia_smi_path': smi})
    facts = result['ansible_facts']
    assert kind == 'exit'
    assert facts['tritonfleet_gpu_count'] == 8
    assert facts['tritonfleet_gpu_skus'] == ['NVIDIA-H100-80GB-HBM3']
    assert [g['index'] for g in facts['tritonfleet_gpus']] == list(range(8))
    assert len(set(g['uuid'] for g in facts['tritonfleet_gpus'])) == 8
    assert result['warnings'] == []


def test_mixed_skus_are_reported(tmp_path):
    xml = variants.multi_gpu_xml(4, names=[None, None, 'NVIDIA A100-SXM4-80GB', 'NVIDIA A100-SXM4-80GB'])
    kind, result = run({'xml_path': write(tmp_path, 'mixed.xml', xml)})
    facts = result['ansible_facts']
    assert kind == 'exit'
    assert facts['tritonfleet_gpu_sku'] == 'NVIDIA-H100-80GB-HBM3'
    assert facts['tritonfleet_gpu_skus'] == ['NVIDIA-H100-80GB-HBM3', 'NVIDIA-A100-SXM4-80GB']
    assert len(result['warnings']) == 1 and 'mixes GPU SKUs' in result['warnings'][0]


def test_mig(tmp_path):
    kind, result = run({'xml_path': write(tmp_path, 'mig.xml', variants.mig_xml())})
    gpu = result['ansible_facts']['tritonfleet_gpus'][0]
    assert kind == 'exit'
    assert gpu['mig_mode'] == {'current': True, 'pending': True}
    assert [(d['gpu_instance_id'], d['compute_instance_id'], d['memory_total_mib']) for d in gpu['mig_devices']] == \
        [(1, 0, 40448), (2, 0, 40448)]


def test_driver_without_gpus(tmp_path):
    kind, result = run({'xml_path': write(tmp_path, 'none.xml', variants.no_gpu_xml())})
    facts = result['ansible_facts']
    assert kind == 'exit'
    assert facts['tritonfleet_accelerator'] == 'cpu'
    assert facts['tritonfleet_gpu_count'] == 0
    assert facts['tritonfleet_gpu_sku'] == 'none'
    assert facts['tritonfleet_driver_version'] == '580.159.04'
    assert 'no GPUs' in result['reason']


# --- hosts without a driver ----------------------------------------------------------------------

def _assert_cpu(result):
    facts = result['ansible_facts']
    assert result['changed'] is False
    assert facts['tritonfleet_accelerator'] == 'cpu'
    assert facts['tritonfleet_gpus'] == []
    assert facts['tritonfleet_gpu_count'] == 0
    assert facts['tritonfleet_gpu_sku'] == 'none'
    assert facts['tritonfleet_gpu_skus'] == []
    assert facts['tritonfleet_driver_version'] is None
    assert facts['tritonfleet_cuda_version'] is None
    assert facts['tritonfleet_accelerator_reason'] == result['reason'] != ''


def test_nvidia_smi_missing(no_nvidia_smi_on_path):
    kind, result = run({})
    assert kind == 'exit'
    _assert_cpu(result)
    assert 'nvidia-smi is not installed' in result['reason']
    assert result['source'] == 'none'


def test_nvidia_smi_missing_require_gpu(no_nvidia_smi_on_path):
    kind, result = run({'require_gpu': True})
    assert kind == 'fail'
    assert result['msg'].startswith('A GPU is required on this host but none is usable: nvidia-smi is not installed')


def test_explicit_path_missing(tmp_path):
    kind, result = run({'nvidia_smi_path': str(tmp_path / 'nope' / 'nvidia-smi')})
    assert kind == 'exit'
    _assert_cpu(result)
    assert 'does not exist' in result['reason']


def test_driver_not_loaded(tmp_path):
    smi = variants.fake_nvidia_smi(tmp_path, stdout=variants.NO_DRIVER_MESSAGE, rc=variants.NO_DRIVER_RC)
    kind, result = run({'nvidia_smi_path': smi})
    assert kind == 'exit'
    _assert_cpu(result)
    assert "couldn't communicate with the NVIDIA driver" in result['reason']
    assert 'rc=9' in result['reason']


def test_driver_not_loaded_require_gpu(tmp_path):
    smi = variants.fake_nvidia_smi(tmp_path, stdout=variants.NO_DRIVER_MESSAGE, rc=variants.NO_DRIVER_RC)
    kind, result = run({'nvidia_smi_path': smi, 'require_gpu': True})
    assert kind == 'fail'
    assert 'A GPU is required' in result['msg']
    assert 'the NVIDIA driver is not loaded' in result['msg']


def test_no_devices_found(tmp_path):
    smi = variants.fake_nvidia_smi(tmp_path, stdout=variants.NO_DEVICES_MESSAGE, rc=variants.NO_DEVICES_RC)
    kind, result = run({'nvidia_smi_path': smi})
    assert kind == 'exit'
    _assert_cpu(result)
    assert 'no NVIDIA devices' in result['reason']


def test_not_executable(tmp_path):
    path = write(tmp_path, 'nvidia-smi', '#!/bin/sh\nexit 0\n')
    os.chmod(path, 0o644)
    kind, result = run({'nvidia_smi_path': path})
    assert kind == 'exit'
    _assert_cpu(result)
    assert 'could not be run' in result['reason']


# --- real failures ---------------------------------------------------------------------------------

def test_version_mismatch_is_a_failure(tmp_path):
    smi = variants.fake_nvidia_smi(tmp_path, stdout=variants.VERSION_MISMATCH_MESSAGE,
                                   rc=variants.VERSION_MISMATCH_RC)
    kind, result = run({'nvidia_smi_path': smi})
    assert kind == 'fail'
    assert 'Driver/library version mismatch' in result['msg']
    assert result['rc'] == 18


def test_garbage_output_is_a_failure(tmp_path):
    smi = variants.fake_nvidia_smi(tmp_path, stdout='this is not xml')
    kind, result = run({'nvidia_smi_path': smi})
    assert kind == 'fail'
    assert 'Cannot parse nvidia-smi XML' in result['msg']


def test_xml_path_missing(tmp_path):
    kind, result = run({'xml_path': str(tmp_path / 'missing.xml')})
    assert kind == 'fail'
    assert 'Cannot read xml_path' in result['msg']


def test_nvidia_smi_path_and_xml_path_exclusive(tmp_path):
    kind, result = run({'xml_path': str(variants.H100_XML_PATH), 'nvidia_smi_path': '/usr/bin/nvidia-smi'})
    assert kind == 'fail'
    assert 'mutually exclusive' in result['msg']


# --- through ansible itself (AnsiballZ packaging, module_utils import, fact setting) -----------------

@pytest.mark.skipif(not (pathlib.Path(sys.executable).parent / 'ansible-playbook').exists(),
                    reason='ansible-playbook is not installed next to this Python')
def test_playbook_sets_facts(tmp_path):
    playbook = tmp_path / 'facts.yml'
    playbook.write_text(
        '- hosts: localhost\n'
        '  gather_facts: false\n'
        '  tasks:\n'
        '    - tritonfleet.serving.gpu_facts:\n'
        '        xml_path: %s\n'
        '    - ansible.builtin.assert:\n'
        '        that:\n'
        '          - tritonfleet_accelerator == "gpu"\n'
        '          - tritonfleet_gpu_count == 1\n'
        '          - tritonfleet_gpus[0].memory_total_mib == 81559\n'
        '          - tritonfleet_gpus[0].compute_capability is version("8.0", ">=")\n'
        '    - tritonfleet.serving.gpu_facts:\n'
        '        nvidia_smi_path: %s\n'
        '    - ansible.builtin.assert:\n'
        '        that:\n'
        '          - tritonfleet_accelerator == "cpu"\n'
        '          - tritonfleet_gpu_sku == "none"\n' % (variants.H100_XML_PATH, tmp_path / 'no-such-nvidia-smi'))
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=str(REPO_ROOT / '.collections'),
               ANSIBLE_STDOUT_CALLBACK='ansible.builtin.json', ANSIBLE_NOCOLOR='1')
    proc = subprocess.run(
        [str(pathlib.Path(sys.executable).parent / 'ansible-playbook'), '-i', 'localhost,', '-c', 'local',
         '-e', 'ansible_python_interpreter=%s' % sys.executable, str(playbook)],
        cwd=str(tmp_path), env=env, capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    stats = json.loads(proc.stdout)['stats']['localhost']
    assert stats['failures'] == 0 and stats['changed'] == 0 and stats['ok'] == 4
