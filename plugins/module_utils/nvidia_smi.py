# -*- coding: utf-8 -*-
# Copyright: (c) 2026, tritonfleet maintainers
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Parse the output of ``nvidia-smi -q -x`` into plain Python data.

Only the standard library is used (``xml.etree``) so this runs on any managed
host. Every field is optional: nvidia-smi's XML schema changes between driver
generations (``power_readings`` became ``gpu_power_readings``, fields are added
and renamed) and many values are ``N/A`` on some boards, so each accessor
returns ``None`` rather than raising when something is missing.
"""

from __future__ import annotations

__metaclass__ = type

import re
import xml.etree.ElementTree as ET


class NvidiaSmiParseError(ValueError):
    """The text is not an ``nvidia-smi -q -x`` document."""


# Values nvidia-smi prints when a field does not apply or cannot be read.
_UNAVAILABLE = frozenset((
    '', 'n/a', 'none', '[n/a]', '[not supported]', 'not supported', 'unknown error',
    'requested functionality has been deprecated', '[unknown error]', 'insufficient permissions',
))

_ENABLED = frozenset(('enabled', 'yes', 'on', 'true', 'active'))
_DISABLED = frozenset(('disabled', 'no', 'off', 'false', 'not active'))

_SIZE_TO_MIB = {
    'b': 1.0 / (1024 * 1024),
    'kib': 1.0 / 1024,
    'kb': 1.0 / 1024,
    'mib': 1.0,
    'mb': 1.0,
    'gib': 1024.0,
    'gb': 1024.0,
    'tib': 1024.0 * 1024,
}

# Product-name patterns -> (compute capability, architecture). The first match
# wins, so the more specific patterns come first. Names are matched
# case-insensitively against nvidia-smi's product_name.
_NAME_TABLE = (
    # Blackwell
    (r'\bG?B300\b', '10.3', 'Blackwell'),
    (r'\bGB10\b', '12.1', 'Blackwell'),
    (r'\bG?B200\b|\bB100\b', '10.0', 'Blackwell'),
    (r'\bThor\b', '11.0', 'Blackwell'),
    (r'\bRTX\s+50[5-9]0\b|\bRTX\s+PRO\s+\d{4}\b|\bRTX\s+\d{4}\b.*\bBlackwell\b', '12.0', 'Blackwell'),
    # Hopper
    (r'\bG?H(100|200|800|20)\b', '9.0', 'Hopper'),
    # Ada Lovelace
    (r'\bL(4|40S?|20|2)\b|\bRTX\s+40[5-9]0\b|\bRTX\s+\d{4}\b.*\bAda\b', '8.9', 'Ada Lovelace'),
    # Ampere
    (r'\bA(100|800|30)\b', '8.0', 'Ampere'),
    (r'\bOrin\b', '8.7', 'Ampere'),
    (r'\bA(10G?|10M|16|2|40|\d{4})\b|\bRTX\s+30[5-9]0\b', '8.6', 'Ampere'),
    # Turing
    (r'\bT4G?\b|\bT(400|600|1000|1200)\b|\bRTX\s+20[5-8]0\b|\bGTX\s+16[3-6]0\b|\bQuadro\s+RTX\b|\bTITAN\s+RTX\b',
     '7.5', 'Turing'),
    # Volta
    (r'\bG?V100[SD]?\b|\bTITAN\s+V\b', '7.0', 'Volta'),
    # Pascal
    (r'\bG?P100\b', '6.0', 'Pascal'),
    (r'\bP(4|6|40)\b|\bGTX\s+10\d0\b|\bTITAN\s+Xp?\b|\bQuadro\s+P\d+\b', '6.1', 'Pascal'),
    # Maxwell / Kepler (old, but seen on inherited fleets)
    (r'\bM(6|10|40|60)\b', '5.2', 'Maxwell'),
    (r'\bK80\b', '3.7', 'Kepler'),
    (r'\bK(20|40)[mcx]?\b', '3.5', 'Kepler'),
)
_NAME_TABLE_RE = tuple((re.compile(pattern, re.IGNORECASE), cc, arch) for pattern, cc, arch in _NAME_TABLE)

# Architecture -> compute capability when the product name is not in the table.
# Architectures that span several capabilities take the most common one for
# the board class (see compute_capability_for()).
_ARCH_TABLE = {
    'blackwell': '10.0',
    'hopper': '9.0',
    'ada lovelace': '8.9',
    'ada': '8.9',
    'ampere': '8.6',
    'turing': '7.5',
    'volta': '7.0',
    'pascal': '6.1',
    'maxwell': '5.2',
    'kepler': '3.5',
}

# Element names a newer nvidia-smi may use to carry the compute capability.
_CC_ELEMENTS = ('compute_cap', 'compute_capability', 'cuda_compute_capability')

# Outputs of nvidia-smi that mean "there is no usable NVIDIA driver/GPU here",
# as opposed to a broken GPU host (e.g. "Driver/library version mismatch").
_NO_DRIVER_MARKERS = (
    ("couldn't communicate with the nvidia driver", 'the NVIDIA driver is not loaded'),
    ("couldn't find libnvidia-ml.so", 'the NVIDIA driver (libnvidia-ml.so) is not installed'),
    ('no devices were found', 'nvidia-smi found no NVIDIA devices'),
    ('command not found', 'nvidia-smi is not installed'),
    ('no such file or directory', 'nvidia-smi is not installed'),
)


def _text(elem, path):
    """Stripped text of elem/path, or None when missing or unavailable."""
    if elem is None:
        return None
    child = elem.find(path)
    if child is None or child.text is None:
        return None
    value = child.text.strip()
    if value.lower() in _UNAVAILABLE:
        return None
    return value


def _first_text(elem, paths):
    for path in paths:
        value = _text(elem, path)
        if value is not None:
            return value
    return None


def parse_int(value):
    """'0' -> 0, '4000' -> 4000, 'N/A'/None -> None."""
    if value is None:
        return None
    match = re.match(r'^\s*(-?\d+)\b', value)
    return int(match.group(1)) if match else None


def parse_float(value):
    """'700.00 W' -> 700.0, '44 C' -> 44.0, 'N/A'/None -> None."""
    if value is None:
        return None
    match = re.match(r'^\s*(-?\d+(?:\.\d+)?)', value)
    return float(match.group(1)) if match else None


def parse_mib(value):
    """'81559 MiB' -> 81559; other binary/decimal units are converted to MiB."""
    if value is None:
        return None
    match = re.match(r'^\s*(\d+(?:\.\d+)?)\s*([A-Za-z]*)\s*$', value)
    if not match:
        return None
    number, unit = float(match.group(1)), match.group(2).lower() or 'mib'
    factor = _SIZE_TO_MIB.get(unit)
    if factor is None:
        return None
    return int(round(number * factor))


def parse_bool(value):
    """'Enabled'/'Disabled' (and Yes/No, On/Off) -> True/False; anything else -> None."""
    if value is None:
        return None
    lowered = value.strip().lower()
    if lowered in _ENABLED:
        return True
    if lowered in _DISABLED:
        return False
    return None


def sku_from_name(name):
    """A grouping key from a product name: 'NVIDIA H100 80GB HBM3' -> 'NVIDIA-H100-80GB-HBM3'."""
    if not name:
        return 'unknown'
    sku = re.sub(r'[^A-Za-z0-9]+', '-', name).strip('-')
    return sku or 'unknown'


def _split_cc(cc):
    match = re.match(r'^\s*(\d+)\.(\d+)\s*$', cc or '')
    if not match:
        return None
    return int(match.group(1)), int(match.group(2))


def architecture_from_name(name):
    """Architecture implied by a product name, or None."""
    for regex, dummy_cc, arch in _NAME_TABLE_RE:
        if name and regex.search(name):
            return arch
    return None


def compute_capability_for(name, architecture=None, reported=None):
    """Return (compute_capability, source) for a GPU.

    ``reported`` (a value read from nvidia-smi itself) wins; then the product
    name table; then the architecture. ``source`` is 'nvidia-smi',
    'product_name', 'architecture' or None when nothing matched.
    """
    if reported and _split_cc(reported):
        major, minor = _split_cc(reported)
        return '%d.%d' % (major, minor), 'nvidia-smi'
    if name:
        for regex, cc, dummy_arch in _NAME_TABLE_RE:
            if regex.search(name):
                return cc, 'product_name'
    if architecture:
        arch = architecture.strip().lower()
        if arch == 'blackwell' and name and re.search(r'\b(RTX|GeForce)\b', name, re.IGNORECASE):
            return '12.0', 'architecture'
        if arch == 'pascal' and name and re.search(r'\bP100\b', name, re.IGNORECASE):
            return '6.0', 'architecture'
        if arch in _ARCH_TABLE:
            return _ARCH_TABLE[arch], 'architecture'
    return None, None


def _parse_memory(elem):
    return {
        'total': parse_mib(_text(elem, 'total')),
        'reserved': parse_mib(_text(elem, 'reserved')),
        'used': parse_mib(_text(elem, 'used')),
        'free': parse_mib(_text(elem, 'free')),
    }


def _parse_mig_devices(gpu):
    devices = []
    container = gpu.find('mig_devices')
    if container is None:
        return devices
    for position, dev in enumerate(container.findall('mig_device')):
        memory = _parse_memory(dev.find('fb_memory_usage'))
        bar1 = _parse_memory(dev.find('bar1_memory_usage'))
        index = parse_int(_text(dev, 'index'))
        devices.append({
            'index': position if index is None else index,
            'gpu_instance_id': parse_int(_text(dev, 'gpu_instance_id')),
            'compute_instance_id': parse_int(_text(dev, 'compute_instance_id')),
            'uuid': _first_text(dev, ('uuid', 'mig_uuid')),
            'multiprocessor_count': parse_int(_text(dev, 'device_attributes/shared/multiprocessor_count')),
            'memory_total_mib': memory['total'],
            'memory_used_mib': memory['used'],
            'memory_free_mib': memory['free'],
            'bar1_total_mib': bar1['total'],
        })
    return devices


def _parse_power(gpu):
    # Drivers >= 530 use gpu_power_readings/current_power_limit; older ones
    # power_readings/power_limit (+ enforced_power_limit).
    readings = gpu.find('gpu_power_readings')
    if readings is None:
        readings = gpu.find('power_readings')
    return {
        'limit': parse_float(_first_text(readings, ('current_power_limit', 'enforced_power_limit', 'power_limit'))),
        'default': parse_float(_text(readings, 'default_power_limit')),
        'min': parse_float(_text(readings, 'min_power_limit')),
        'max': parse_float(_text(readings, 'max_power_limit')),
    }


def parse_gpu(gpu, position=0):
    """One ``<gpu>`` element -> dict. ``position`` is its order in the document."""
    name = _text(gpu, 'product_name')
    architecture = _text(gpu, 'product_architecture') or architecture_from_name(name)
    cc, cc_source = compute_capability_for(name, architecture, _first_text(gpu, _CC_ELEMENTS))
    cc_parts = _split_cc(cc) if cc else None
    memory = _parse_memory(gpu.find('fb_memory_usage') if gpu.find('fb_memory_usage') is not None
                           else gpu.find('memory_usage'))
    power = _parse_power(gpu)
    current_mig = _text(gpu, 'mig_mode/current_mig')
    pending_mig = _text(gpu, 'mig_mode/pending_mig')
    return {
        # nvidia-smi lists GPUs in NVML index order, the numbering that
        # `nvidia-smi -i`, CUDA_VISIBLE_DEVICES and Docker's --gpus use.
        'index': position,
        'minor_number': parse_int(_text(gpu, 'minor_number')),
        'uuid': _text(gpu, 'uuid'),
        'name': name,
        'brand': _text(gpu, 'product_brand'),
        'architecture': architecture,
        'sku': sku_from_name(name),
        'pci_bus_id': _text(gpu, 'pci/pci_bus_id') or (gpu.get('id') or None),
        'memory_total_mib': memory['total'],
        'memory_used_mib': memory['used'],
        'memory_free_mib': memory['free'],
        'memory_reserved_mib': memory['reserved'],
        'compute_capability': cc,
        'compute_capability_major': cc_parts[0] if cc_parts else None,
        'compute_capability_minor': cc_parts[1] if cc_parts else None,
        'compute_capability_source': cc_source,
        'mig_capable': current_mig is not None,
        'mig_mode': {
            'current': bool(parse_bool(current_mig)),
            'pending': bool(parse_bool(pending_mig)),
        },
        'mig_devices': _parse_mig_devices(gpu),
        'persistence_mode': parse_bool(_text(gpu, 'persistence_mode')),
        'compute_mode': _text(gpu, 'compute_mode'),
        'ecc_enabled': parse_bool(_text(gpu, 'ecc_mode/current_ecc')),
        'power_limit_w': power['limit'],
        'power_default_limit_w': power['default'],
        'power_min_limit_w': power['min'],
        'power_max_limit_w': power['max'],
    }


def parse_nvidia_smi_xml(text):
    """Parse ``nvidia-smi -q -x`` output.

    Returns a dict with ``driver_version``, ``cuda_version``, ``attached_gpus``
    and ``gpus`` (a list of dicts from parse_gpu(), in nvidia-smi's order).
    Raises NvidiaSmiParseError when the text is not such a document.
    """
    if isinstance(text, bytes):
        text = text.decode('utf-8', errors='replace')
    if not text or not text.strip():
        raise NvidiaSmiParseError('nvidia-smi produced no XML output')
    try:
        # nvidia-smi's <!DOCTYPE ... SYSTEM "nvsmi_device_vNN.dtd"> names an
        # external DTD that ElementTree never fetches.
        root = ET.fromstring(text.strip())
    except ET.ParseError as exc:
        raise NvidiaSmiParseError('cannot parse nvidia-smi XML: %s' % exc)
    if root.tag != 'nvidia_smi_log':
        raise NvidiaSmiParseError('not an nvidia-smi -q -x document (root element <%s>)' % root.tag)
    gpus = [parse_gpu(gpu, position) for position, gpu in enumerate(root.findall('gpu'))]
    attached = parse_int(_text(root, 'attached_gpus'))
    return {
        'driver_version': _text(root, 'driver_version'),
        'cuda_version': _text(root, 'cuda_version'),
        'attached_gpus': len(gpus) if attached is None else attached,
        'timestamp': _text(root, 'timestamp'),
        'gpus': gpus,
    }


def parse_gpus(text):
    """Only the GPU list of parse_nvidia_smi_xml()."""
    return parse_nvidia_smi_xml(text)['gpus']


def no_driver_reason(rc, stdout, stderr):
    """Why nvidia-smi's failure means "no NVIDIA GPU here", or None.

    None means the failure is something else (a broken GPU host, for example
    "Failed to initialize NVML: Driver/library version mismatch") and must not
    be mistaken for a CPU-only host.
    """
    output = ' '.join(part for part in (stdout, stderr) if part).strip()
    lowered = output.lower()
    for marker, reason in _NO_DRIVER_MARKERS:
        if marker in lowered:
            first_line = output.splitlines()[0].strip() if output else ''
            return '%s (nvidia-smi rc=%s: %s)' % (reason, rc, first_line)
    if rc == 127:
        return 'nvidia-smi is not installed (rc=127)'
    return None
