# -*- coding: utf-8 -*-
# Copyright (c) 2026, tritonfleet maintainers
# SPDX-License-Identifier: Apache-2.0
"""plugins/module_utils/nvidia_smi.py against the real H100 output and variants of it."""

from __future__ import annotations

import pytest

from ansible_collections.tritonfleet.serving.plugins.module_utils.nvidia_smi import (
    NvidiaSmiParseError,
    compute_capability_for,
    no_driver_reason,
    parse_bool,
    parse_gpus,
    parse_mib,
    parse_nvidia_smi_xml,
    sku_from_name,
)

from ansible_collections.tritonfleet.serving.tests.unit.utils import nvsmi_variants as variants


@pytest.fixture(scope='module')
def h100():
    return parse_nvidia_smi_xml(variants.real_xml())


# --- the real H100 host --------------------------------------------------------------

def test_real_h100_host_level(h100):
    assert h100['driver_version'] == '580.159.04'
    assert h100['cuda_version'] == '13.0'
    assert h100['attached_gpus'] == 1
    assert h100['timestamp'] == 'Tue Nov 24 22:39:59 2026'
    assert len(h100['gpus']) == 1


def test_real_h100_gpu(h100):
    gpu = h100['gpus'][0]
    assert gpu['name'] == 'NVIDIA H100 80GB HBM3'
    assert gpu['uuid'] == variants.H100_UUID
    assert gpu['index'] == 0
    assert gpu['minor_number'] == 0
    assert gpu['brand'] == 'NVIDIA'
    assert gpu['architecture'] == 'Hopper'
    assert gpu['sku'] == 'NVIDIA-H100-80GB-HBM3'
    assert gpu['pci_bus_id'] == '00000000:00:06.0'
    assert gpu['memory_total_mib'] == 81559
    assert gpu['memory_used_mib'] == 0
    assert gpu['memory_free_mib'] == 81079
    assert gpu['memory_reserved_mib'] == 480
    assert gpu['compute_capability'] == '9.0'
    assert (gpu['compute_capability_major'], gpu['compute_capability_minor']) == (9, 0)
    assert gpu['compute_capability_source'] == 'product_name'
    assert gpu['mig_capable'] is True
    assert gpu['mig_mode'] == {'current': False, 'pending': False}
    assert gpu['mig_devices'] == []
    assert gpu['persistence_mode'] is True
    assert gpu['compute_mode'] == 'Default'
    assert gpu['ecc_enabled'] is True
    assert gpu['power_limit_w'] == 700.0
    assert gpu['power_default_limit_w'] == 700.0
    assert gpu['power_min_limit_w'] == 200.0
    assert gpu['power_max_limit_w'] == 700.0


def test_real_memory_matches_triton_metrics(h100):
    """nvidia-smi's MiB and Triton's nv_gpu_memory_total_bytes describe the same card."""
    metrics = variants.H100_METRICS_PATH.read_text()
    line = [l for l in metrics.splitlines() if l.startswith('nv_gpu_memory_total_bytes{')][0]
    total_bytes = int(line.rsplit(' ', 1)[1])
    assert total_bytes == 85520809984
    assert h100['gpus'][0]['memory_total_mib'] == total_bytes // (1024 * 1024)


def test_accepts_bytes_and_parse_gpus():
    assert parse_gpus(variants.real_xml().encode())[0]['uuid'] == variants.H100_UUID


# --- multi-GPU variants -----------------------------------------------------------------

def test_eight_gpus():
    parsed = parse_nvidia_smi_xml(variants.multi_gpu_xml(8))
    assert parsed['attached_gpus'] == 8
    gpus = parsed['gpus']
    assert [g['index'] for g in gpus] == list(range(8))
    assert [g['minor_number'] for g in gpus] == list(range(8))
    assert gpus[0]['uuid'] == variants.H100_UUID
    assert [g['uuid'] for g in gpus[1:]] == [variants.gpu_uuid(n) for n in range(1, 8)]
    assert len(set(g['uuid'] for g in gpus)) == 8
    assert [g['pci_bus_id'] for g in gpus] == [variants.bus_id(n) for n in range(8)]
    assert set(g['sku'] for g in gpus) == {'NVIDIA-H100-80GB-HBM3'}
    assert all(g['memory_total_mib'] == 81559 for g in gpus)


def test_index_is_nvml_order_not_minor_number():
    """/dev/nvidiaN minor numbers need not follow NVML order; index does."""
    parsed = parse_nvidia_smi_xml(variants.multi_gpu_xml(4, minor_numbers=[2, 3, 0, 1]))
    assert [g['index'] for g in parsed['gpus']] == [0, 1, 2, 3]
    assert [g['minor_number'] for g in parsed['gpus']] == [2, 3, 0, 1]


def test_mixed_skus():
    names = [None, 'NVIDIA A100-SXM4-80GB', 'NVIDIA L40S']
    gpus = parse_gpus(variants.multi_gpu_xml(3, names=names))
    assert [g['sku'] for g in gpus] == ['NVIDIA-H100-80GB-HBM3', 'NVIDIA-A100-SXM4-80GB', 'NVIDIA-L40S']
    # The clones keep <product_architecture>Hopper</product_architecture>, but
    # the product-name table decides the capability.
    assert [g['compute_capability'] for g in gpus] == ['9.0', '8.0', '8.9']


# --- MIG --------------------------------------------------------------------------------

def test_mig_enabled_with_devices():
    gpu = parse_gpus(variants.mig_xml())[0]
    assert gpu['mig_mode'] == {'current': True, 'pending': True}
    assert gpu['mig_capable'] is True
    assert gpu['mig_devices'] == [
        {'index': 0, 'gpu_instance_id': 1, 'compute_instance_id': 0, 'uuid': None, 'multiprocessor_count': 60,
         'memory_total_mib': 40448, 'memory_used_mib': 11, 'memory_free_mib': 40437, 'bar1_total_mib': 32767},
        {'index': 1, 'gpu_instance_id': 2, 'compute_instance_id': 0, 'uuid': None, 'multiprocessor_count': 60,
         'memory_total_mib': 40448, 'memory_used_mib': 298, 'memory_free_mib': 40150, 'bar1_total_mib': 32767},
    ]
    # The parent GPU keeps its identity and SKU.
    assert gpu['uuid'] == variants.H100_UUID
    assert gpu['sku'] == 'NVIDIA-H100-80GB-HBM3'


def test_mig_enabled_without_instances():
    gpu = parse_gpus(variants.mig_xml(devices=()))[0]
    assert gpu['mig_mode'] == {'current': True, 'pending': True}
    assert gpu['mig_devices'] == []


def test_mig_pending_enable():
    gpu = parse_gpus(variants.mig_xml(current='Disabled', pending='Enabled', devices=()))[0]
    assert gpu['mig_mode'] == {'current': False, 'pending': True}


def test_mig_device_uuid_when_reported():
    text = variants.mig_xml().replace(
        '<gpu_instance_id>1</gpu_instance_id>',
        '<gpu_instance_id>1</gpu_instance_id><uuid>MIG-11111111-2222-3333-4444-555555555555</uuid>', 1)
    devices = parse_gpus(text)[0]['mig_devices']
    assert devices[0]['uuid'] == 'MIG-11111111-2222-3333-4444-555555555555'
    assert devices[1]['uuid'] is None


def test_gpu_without_mig_support():
    text = variants.real_xml().replace('<current_mig>Disabled</current_mig>', '<current_mig>N/A</current_mig>') \
        .replace('<pending_mig>Disabled</pending_mig>', '<pending_mig>N/A</pending_mig>')
    gpu = parse_gpus(text)[0]
    assert gpu['mig_capable'] is False
    assert gpu['mig_mode'] == {'current': False, 'pending': False}


# --- robustness ---------------------------------------------------------------------------

def test_no_gpus():
    parsed = parse_nvidia_smi_xml(variants.no_gpu_xml())
    assert parsed['gpus'] == []
    assert parsed['attached_gpus'] == 0
    assert parsed['driver_version'] == '580.159.04'


def test_missing_and_na_elements():
    """A minimal document of an older driver: most fields absent or N/A."""
    text = ('<?xml version="1.0" ?><nvidia_smi_log><driver_version>470.57.02</driver_version>'
            '<attached_gpus>1</attached_gpus><gpu id="00000000:3B:00.0">'
            '<product_name>Tesla V100-SXM2-16GB</product_name><uuid>GPU-v100</uuid>'
            '<minor_number>N/A</minor_number><persistence_mode>N/A</persistence_mode>'
            '<fb_memory_usage><total>16160 MiB</total><used>N/A</used></fb_memory_usage>'
            '<power_readings><power_limit>300.00 W</power_limit><default_power_limit>N/A</default_power_limit>'
            '</power_readings></gpu></nvidia_smi_log>')
    parsed = parse_nvidia_smi_xml(text)
    assert parsed['cuda_version'] is None
    gpu = parsed['gpus'][0]
    assert gpu['minor_number'] is None
    assert gpu['persistence_mode'] is None
    assert gpu['memory_total_mib'] == 16160
    assert gpu['memory_used_mib'] is None and gpu['memory_free_mib'] is None
    assert gpu['pci_bus_id'] == '00000000:3B:00.0'   # from the id attribute
    assert gpu['architecture'] == 'Volta'              # derived from the name
    assert gpu['compute_capability'] == '7.0'
    assert gpu['power_limit_w'] == 300.0
    assert gpu['power_default_limit_w'] is None
    assert gpu['mig_capable'] is False and gpu['mig_devices'] == []
    assert gpu['brand'] is None


def test_compute_capability_from_xml_field_wins():
    text = variants.real_xml().replace(
        '<product_architecture>Hopper</product_architecture>',
        '<product_architecture>Hopper</product_architecture><compute_cap>9.0</compute_cap>')
    gpu = parse_gpus(text)[0]
    assert gpu['compute_capability'] == '9.0'
    assert gpu['compute_capability_source'] == 'nvidia-smi'


def test_unknown_product_falls_back_to_architecture():
    text = variants.real_xml().replace('NVIDIA H100 80GB HBM3', 'NVIDIA Future Accelerator')
    gpu = parse_gpus(text)[0]
    assert gpu['compute_capability'] == '9.0'
    assert gpu['compute_capability_source'] == 'architecture'
    assert gpu['sku'] == 'NVIDIA-Future-Accelerator'


@pytest.mark.parametrize('text', ['', '   ', 'NVIDIA-SMI has failed', '<foo/>', '<nvidia_smi_log>'])
def test_not_nvidia_smi_xml(text):
    with pytest.raises(NvidiaSmiParseError):
        parse_nvidia_smi_xml(text)


# --- tables and helpers ---------------------------------------------------------------------

@pytest.mark.parametrize('name, arch, expected', [
    ('NVIDIA H100 80GB HBM3', 'Hopper', '9.0'),
    ('NVIDIA H100 PCIe', None, '9.0'),
    ('NVIDIA H200', 'Hopper', '9.0'),
    ('NVIDIA GH200 480GB', 'Hopper', '9.0'),
    ('NVIDIA B200', 'Blackwell', '10.0'),
    ('NVIDIA GB200', 'Blackwell', '10.0'),
    ('NVIDIA GeForce RTX 5090', 'Blackwell', '12.0'),
    ('NVIDIA RTX PRO 6000 Blackwell Server Edition', 'Blackwell', '12.0'),
    ('NVIDIA L4', 'Ada Lovelace', '8.9'),
    ('NVIDIA L40S', 'Ada Lovelace', '8.9'),
    ('NVIDIA GeForce RTX 4090', 'Ada Lovelace', '8.9'),
    ('NVIDIA RTX 6000 Ada Generation', 'Ada Lovelace', '8.9'),
    ('NVIDIA RTX 5000 Ada Generation', 'Ada Lovelace', '8.9'),
    ('NVIDIA A100-SXM4-80GB', 'Ampere', '8.0'),
    ('NVIDIA A100 80GB PCIe', 'Ampere', '8.0'),
    ('NVIDIA A30', 'Ampere', '8.0'),
    ('NVIDIA A10G', 'Ampere', '8.6'),
    ('NVIDIA A10', 'Ampere', '8.6'),
    ('NVIDIA A40', 'Ampere', '8.6'),
    ('NVIDIA RTX A6000', 'Ampere', '8.6'),
    ('NVIDIA GeForce RTX 3090', 'Ampere', '8.6'),
    ('Orin (nvgpu)', None, '8.7'),
    ('Tesla T4', 'Turing', '7.5'),
    ('Quadro RTX 5000', 'Turing', '7.5'),
    ('NVIDIA GeForce RTX 2080 Ti', 'Turing', '7.5'),
    ('Tesla V100-SXM2-32GB', 'Volta', '7.0'),
    ('Tesla P100-PCIE-16GB', 'Pascal', '6.0'),
    ('Tesla P40', 'Pascal', '6.1'),
    ('Some Ampere Board', 'Ampere', '8.6'),
    ('Some Blackwell Board', 'Blackwell', '10.0'),
    ('Something', None, None),
])
def test_compute_capability_table(name, arch, expected):
    assert compute_capability_for(name, arch)[0] == expected


@pytest.mark.parametrize('name, sku', [
    ('NVIDIA H100 80GB HBM3', 'NVIDIA-H100-80GB-HBM3'),
    ('NVIDIA A100-SXM4-80GB', 'NVIDIA-A100-SXM4-80GB'),
    ('  Tesla  V100 (SXM2) ', 'Tesla-V100-SXM2'),
    (None, 'unknown'),
    ('', 'unknown'),
])
def test_sku_from_name(name, sku):
    assert sku_from_name(name) == sku


@pytest.mark.parametrize('value, mib', [
    ('81559 MiB', 81559), ('0 MiB', 0), ('80 GiB', 81920), ('1024 KiB', 1), ('N/A', None), (None, None),
    ('garbage', None), ('12 parsecs', None),
])
def test_parse_mib(value, mib):
    assert parse_mib(value) == mib


@pytest.mark.parametrize('value, expected', [
    ('Enabled', True), ('Disabled', False), ('Yes', True), ('No', False), ('N/A', None), (None, None), ('odd', None),
])
def test_parse_bool(value, expected):
    assert parse_bool(value) is expected


# --- failure classification ------------------------------------------------------------------

def test_no_driver_message_is_no_driver():
    reason = no_driver_reason(variants.NO_DRIVER_RC, variants.NO_DRIVER_MESSAGE + '\n', '')
    assert reason.startswith('the NVIDIA driver is not loaded')
    assert 'rc=9' in reason and "couldn't communicate with the NVIDIA driver" in reason


@pytest.mark.parametrize('rc, out, err, expected', [
    (6, variants.NO_DEVICES_MESSAGE, '', 'found no NVIDIA devices'),
    (12, 'NVIDIA-SMI couldn\'t find libnvidia-ml.so library in your system. Please make sure that the NVIDIA '
         'Display Driver is properly installed and present in your system.', '', 'libnvidia-ml.so'),
    (127, '', '/bin/sh: 1: nvidia-smi: not found', 'not installed'),
    (127, '', 'bash: nvidia-smi: command not found', 'not installed'),
])
def test_other_no_driver_outputs(rc, out, err, expected):
    assert expected in no_driver_reason(rc, out, err)


@pytest.mark.parametrize('rc, out, err', [
    (variants.VERSION_MISMATCH_RC, variants.VERSION_MISMATCH_MESSAGE, ''),
    (255, 'Failed to initialize NVML: Unknown Error', ''),
    (1, '', ''),
])
def test_broken_gpu_host_is_not_no_driver(rc, out, err):
    assert no_driver_reason(rc, out, err) is None
