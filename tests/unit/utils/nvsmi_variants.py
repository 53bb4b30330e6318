# -*- coding: utf-8 -*-
# Copyright: (c) 2026, tritonfleet maintainers
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Variants of the real H100 ``nvidia-smi -q -x`` output, derived programmatically.

Every variant starts from tests/fixtures/h100-host/nvidia-smi-q.xml and only
changes what a different host would change: more <gpu> elements (other ids,
UUIDs, minor numbers, bus ids, product names), MIG mode and its mig_device
blocks, or no GPUs at all.
"""

from __future__ import annotations

import copy
import pathlib
import xml.etree.ElementTree as ET

FIXTURES = pathlib.Path(__file__).resolve().parents[2] / 'fixtures'
H100_DIR = FIXTURES / 'h100-host'
H100_XML_PATH = H100_DIR / 'nvidia-smi-q.xml'
H100_METRICS_PATH = H100_DIR / 'triton-metrics-gpu.txt'

H100_UUID = 'GPU-00000000-1111-2222-3333-444444444444'

# What nvidia-smi prints (on stdout, exit status 9) when the kernel module is
# not loaded / the driver is not installed.
NO_DRIVER_MESSAGE = ("NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver. "
                     "Make sure that the latest NVIDIA driver is installed and running.")
NO_DRIVER_RC = 9
# A GPU host whose driver was upgraded without a reboot: a real failure, not "CPU host".
VERSION_MISMATCH_MESSAGE = 'Failed to initialize NVML: Driver/library version mismatch\nNVML library version: 580.159'
VERSION_MISMATCH_RC = 18
NO_DEVICES_MESSAGE = 'No devices were found'
NO_DEVICES_RC = 6


def real_xml():
    return H100_XML_PATH.read_text()


def _split_prolog(text):
    """Return (prolog lines before the root element, root element)."""
    start = text.index('<nvidia_smi_log')
    return text[:start], ET.fromstring(text[start:])


def _serialize(prolog, root):
    return prolog + ET.tostring(root, encoding='unicode') + '\n'


def _set(elem, path, value):
    child = elem.find(path)
    assert child is not None, path
    child.text = value


def gpu_uuid(n):
    return 'GPU-%08d-1111-2222-3333-4444444444%02d' % (n, n)


def bus_id(n):
    return '00000000:%02X:06.0' % (n + 0x10) if n else '00000000:00:06.0'


def multi_gpu_xml(count=4, names=None, minor_numbers=None):
    """The real document with ``count`` clones of its <gpu>.

    GPU 0 stays the real one; GPU n>0 gets uuid gpu_uuid(n), bus id bus_id(n),
    minor number ``minor_numbers[n]`` (default n) and product name ``names[n]``
    (default: unchanged).
    """
    prolog, root = _split_prolog(real_xml())
    template = root.find('gpu')
    position = list(root).index(template)
    root.remove(template)
    for n in range(count):
        gpu = copy.deepcopy(template)
        if n:
            gpu.set('id', bus_id(n))
            _set(gpu, 'uuid', gpu_uuid(n))
            _set(gpu, 'pci/pci_bus_id', bus_id(n))
            _set(gpu, 'pci/pci_bus', '%02X' % (n + 0x10))
            _set(gpu, 'serial', str(1650000000001 + n))
        _set(gpu, 'minor_number', str(minor_numbers[n] if minor_numbers else n))
        if names and names[n]:
            _set(gpu, 'product_name', names[n])
        root.insert(position + n, gpu)
    _set(root, 'attached_gpus', str(count))
    return _serialize(prolog, root)


def _mig_device(index, gi, ci, sms, total_mib, used_mib):
    dev = ET.Element('mig_device')
    for tag, text in (('index', index), ('gpu_instance_id', gi), ('compute_instance_id', ci)):
        ET.SubElement(dev, tag).text = str(text)
    shared = ET.SubElement(ET.SubElement(dev, 'device_attributes'), 'shared')
    for tag, text in (('multiprocessor_count', sms), ('copy_engine_count', 3), ('encoder_count', 0),
                      ('decoder_count', 3), ('ofa_count', 0), ('jpg_count', 3)):
        ET.SubElement(shared, tag).text = str(text)
    volatile = ET.SubElement(ET.SubElement(dev, 'ecc_error_count'), 'volatile_count')
    ET.SubElement(volatile, 'sram_uncorrectable').text = '0'
    fb = ET.SubElement(dev, 'fb_memory_usage')
    for tag, text in (('total', '%d MiB' % total_mib), ('reserved', '0 MiB'), ('used', '%d MiB' % used_mib),
                      ('free', '%d MiB' % (total_mib - used_mib))):
        ET.SubElement(fb, tag).text = text
    bar1 = ET.SubElement(dev, 'bar1_memory_usage')
    for tag, text in (('total', '32767 MiB'), ('used', '0 MiB'), ('free', '32767 MiB')):
        ET.SubElement(bar1, tag).text = text
    return dev


# Two 3g.40gb instances of an H100 80GB (GPU instances 1 and 2, 60 SMs each).
MIG_DEVICES = (
    dict(index=0, gi=1, ci=0, sms=60, total_mib=40448, used_mib=11),
    dict(index=1, gi=2, ci=0, sms=60, total_mib=40448, used_mib=298),
)


def mig_xml(current='Enabled', pending='Enabled', devices=MIG_DEVICES):
    """The real document with MIG mode set and mig_device blocks for ``devices``."""
    prolog, root = _split_prolog(real_xml())
    gpu = root.find('gpu')
    _set(gpu, 'mig_mode/current_mig', current)
    _set(gpu, 'mig_mode/pending_mig', pending)
    container = gpu.find('mig_devices')
    container.text = None if devices else 'None'
    for spec in devices:
        container.append(_mig_device(**spec))
    return _serialize(prolog, root)


def no_gpu_xml():
    """A document from a driver that sees no GPU (attached_gpus 0, no <gpu>)."""
    prolog, root = _split_prolog(real_xml())
    for gpu in root.findall('gpu'):
        root.remove(gpu)
    _set(root, 'attached_gpus', '0')
    return _serialize(prolog, root)


def fake_nvidia_smi(directory, stdout='', rc=0, stdout_file=None):
    """Write an executable ``nvidia-smi`` that prints stdout (or a file) and exits rc."""
    directory = pathlib.Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    script = directory / 'nvidia-smi'
    payload = directory / 'nvidia-smi.out'
    if stdout_file is not None:
        payload.write_text(pathlib.Path(stdout_file).read_text())
    else:
        payload.write_text(stdout + ('\n' if stdout and not stdout.endswith('\n') else ''))
    script.write_text('#!/bin/sh\n'
                      '[ "$1 $2" = "-q -x" ] || { echo "unexpected arguments: $*" >&2; exit 2; }\n'
                      'cat "%s"\nexit %d\n' % (payload, rc))
    script.chmod(0o755)
    return str(script)
