#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, tritonfleet maintainers
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

__metaclass__ = type

DOCUMENTATION = r'''
---
module: gpu_facts
short_description: Gather NVIDIA GPU facts from C(nvidia-smi -q -x)
version_added: 0.1.0
description:
  - Runs C(nvidia-smi -q -x) on the managed host (or reads a saved copy of its output) and sets facts
    describing every NVIDIA GPU - model, SKU, memory, compute capability, MIG state - plus the driver
    and CUDA versions.
  - A host without an NVIDIA driver is not an error. When C(nvidia-smi) is missing, cannot talk to the
    driver, cannot find C(libnvidia-ml.so) or finds no devices, the module reports zero GPUs,
    C(tritonfleet_accelerator=cpu) and a RV(reason); set O(require_gpu=true) to fail instead.
  - Any other C(nvidia-smi) failure (for example C(Driver/library version mismatch) after a driver
    upgrade without a reboot) fails the module, so that a broken GPU host is never mistaken for a CPU host.
author:
  - tritonfleet maintainers (@tritonfleet)
options:
  nvidia_smi_path:
    description:
      - Path of the C(nvidia-smi) executable.
      - By default it is looked up in E(PATH) and in C(/usr/bin), C(/usr/local/nvidia/bin) and
        C(/usr/lib/wsl/lib).
      - A path that does not exist is treated like a host without the NVIDIA driver.
    type: path
  xml_path:
    description:
      - Read this saved C(nvidia-smi -q -x) output instead of running C(nvidia-smi).
      - Useful for tests and for debugging hosts that cannot be reached.
      - The file is read on the managed host.
    type: path
  require_gpu:
    description:
      - Fail when no NVIDIA GPU is usable, instead of reporting C(tritonfleet_accelerator=cpu).
    type: bool
    default: false
extends_documentation_fragment:
  - tritonfleet.serving.attributes
  - tritonfleet.serving.attributes.info_module
  - tritonfleet.serving.attributes.facts
notes:
  - C(index) of each GPU is its position in C(nvidia-smi)'s listing, which is the NVML index used by
    C(nvidia-smi -i), C(CUDA_VISIBLE_DEVICES) and Docker C(--gpus device=N). C(minor_number) (the N
    of C(/dev/nvidiaN)) is reported separately; it usually, but not always, equals the index.
  - C(compute_capability) comes from C(nvidia-smi) when it reports one, else from a table of product
    names, else from the architecture; C(compute_capability_source) says which.
seealso:
  - name: nvidia-smi documentation
    description: The NVIDIA System Management Interface.
    link: https://docs.nvidia.com/deploy/nvidia-smi/index.html
'''

EXAMPLES = r'''
- name: Gather GPU facts
  tritonfleet.serving.gpu_facts:

- name: Require a GPU on hosts of the gpu group
  tritonfleet.serving.gpu_facts:
    require_gpu: true
  when: "'gpu' in group_names"

- name: Group hosts by GPU SKU (engines are built once per SKU)
  ansible.builtin.group_by:
    key: "gpu_sku_{{ tritonfleet_gpu_sku | replace('-', '_') }}"

- name: Parse a saved nvidia-smi -q -x from a host that cannot be reached
  tritonfleet.serving.gpu_facts:
    xml_path: /tmp/nvidia-smi-q.xml

- name: Report the accelerator mode
  ansible.builtin.debug:
    msg: >-
      {{ tritonfleet_gpu_count }} x {{ tritonfleet_gpu_sku }} (driver {{ tritonfleet_driver_version }},
      CUDA {{ tritonfleet_cuda_version }}), mode {{ tritonfleet_accelerator }}
'''

RETURN = r'''
reason:
  description:
    - Why the host is in C(cpu) mode (no driver, no devices ...). Empty when GPUs were found.
  returned: always
  type: str
  sample: "the NVIDIA driver is not loaded (nvidia-smi rc=9: NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver. ...)"
source:
  description: Where the XML came from, C(nvidia-smi) (with its path), C(xml_path) or C(none).
  returned: always
  type: str
  sample: /usr/bin/nvidia-smi
ansible_facts:
  description: Facts added to the host.
  returned: always
  type: dict
  contains:
    tritonfleet_gpus:
      description: One entry per GPU, in nvidia-smi order.
      type: list
      elements: dict
      returned: always
      contains:
        index:
          description: NVML index (position in nvidia-smi's listing).
          type: int
          sample: 0
        minor_number:
          description: Minor number of C(/dev/nvidiaN), or null when nvidia-smi reports N/A.
          type: int
          sample: 0
        uuid:
          description: GPU UUID.
          type: str
          sample: GPU-00000000-1111-2222-3333-444444444444
        name:
          description: Product name.
          type: str
          sample: NVIDIA H100 80GB HBM3
        brand:
          description: Product brand.
          type: str
          sample: NVIDIA
        architecture:
          description: Product architecture (from nvidia-smi, else derived from the name).
          type: str
          sample: Hopper
        sku:
          description: The product name normalised to a grouping key.
          type: str
          sample: NVIDIA-H100-80GB-HBM3
        pci_bus_id:
          description: PCI bus id.
          type: str
          sample: "00000000:00:06.0"
        memory_total_mib:
          description: Framebuffer memory in MiB.
          type: int
          sample: 81559
        memory_used_mib:
          description: Used framebuffer memory in MiB.
          type: int
          sample: 0
        memory_free_mib:
          description: Free framebuffer memory in MiB.
          type: int
          sample: 81079
        memory_reserved_mib:
          description: Memory reserved by the driver in MiB (null on older drivers).
          type: int
          sample: 480
        compute_capability:
          description: CUDA compute capability as C(major.minor), or null when unknown.
          type: str
          sample: "9.0"
        compute_capability_major:
          description: Major part of the compute capability.
          type: int
          sample: 9
        compute_capability_minor:
          description: Minor part of the compute capability.
          type: int
          sample: 0
        compute_capability_source:
          description: C(nvidia-smi), C(product_name), C(architecture) or null.
          type: str
          sample: product_name
        mig_capable:
          description: Whether the GPU supports MIG (nvidia-smi does not print N/A for its MIG mode).
          type: bool
          sample: true
        mig_mode:
          description: Current and pending MIG mode.
          type: dict
          sample: {"current": false, "pending": false}
        mig_devices:
          description:
            - MIG devices of the GPU; empty when MIG is off or no instance exists.
            - Each has C(index), C(gpu_instance_id), C(compute_instance_id), C(uuid) (null unless
              nvidia-smi reports one), C(multiprocessor_count), C(memory_total_mib),
              C(memory_used_mib), C(memory_free_mib) and C(bar1_total_mib).
          type: list
          elements: dict
        persistence_mode:
          description: Whether persistence mode is enabled.
          type: bool
          sample: true
        compute_mode:
          description: Compute mode.
          type: str
          sample: Default
        ecc_enabled:
          description: Whether ECC is currently enabled (null when not supported).
          type: bool
          sample: true
        power_limit_w:
          description: Enforced power limit in watts.
          type: float
          sample: 700.0
        power_default_limit_w:
          description: Default power limit in watts.
          type: float
          sample: 700.0
        power_min_limit_w:
          description: Minimum settable power limit in watts.
          type: float
          sample: 200.0
        power_max_limit_w:
          description: Maximum settable power limit in watts.
          type: float
          sample: 700.0
    tritonfleet_gpu_count:
      description: Number of GPUs.
      type: int
      returned: always
      sample: 1
    tritonfleet_gpu_sku:
      description: SKU of GPU 0, or C(none) without GPUs.
      type: str
      returned: always
      sample: NVIDIA-H100-80GB-HBM3
    tritonfleet_gpu_skus:
      description: The distinct SKUs on the host, in GPU order (more than one on a mixed host).
      type: list
      elements: str
      returned: always
      sample: ["NVIDIA-H100-80GB-HBM3"]
    tritonfleet_driver_version:
      description: NVIDIA driver version, or null without a driver.
      type: str
      returned: always
      sample: "580.159.04"
    tritonfleet_cuda_version:
      description: Highest CUDA version the driver supports, or null without a driver.
      type: str
      returned: always
      sample: "13.0"
    tritonfleet_accelerator:
      description: C(gpu) when at least one GPU was found, else C(cpu).
      type: str
      returned: always
      sample: gpu
    tritonfleet_accelerator_reason:
      description: Same as RV(reason).
      type: str
      returned: always
      sample: ""
'''

import os

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.common.text.converters import to_native

from ansible_collections.tritonfleet.serving.plugins.module_utils.nvidia_smi import (
    NvidiaSmiParseError,
    no_driver_reason,
    parse_nvidia_smi_xml,
)

NVIDIA_SMI_DIRS = ['/usr/bin', '/usr/local/nvidia/bin', '/usr/lib/wsl/lib']


def build_facts(parsed, reason=''):
    gpus = parsed.get('gpus') or []
    skus = []
    for gpu in gpus:
        if gpu['sku'] not in skus:
            skus.append(gpu['sku'])
    return {
        'tritonfleet_gpus': gpus,
        'tritonfleet_gpu_count': len(gpus),
        'tritonfleet_gpu_sku': gpus[0]['sku'] if gpus else 'none',
        'tritonfleet_gpu_skus': skus,
        'tritonfleet_driver_version': parsed.get('driver_version'),
        'tritonfleet_cuda_version': parsed.get('cuda_version'),
        'tritonfleet_accelerator': 'gpu' if gpus else 'cpu',
        'tritonfleet_accelerator_reason': reason,
    }


def _no_gpu(module, reason, source, parsed=None):
    if module.params['require_gpu']:
        module.fail_json(msg='A GPU is required on this host but none is usable: %s' % reason,
                         reason=reason, source=source)
    facts = build_facts(parsed or {}, reason)
    module.exit_json(changed=False, ansible_facts=facts, reason=reason, source=source)


def read_xml(module):
    """Return (xml_text, source) or exit through _no_gpu()/fail_json()."""
    xml_path = module.params['xml_path']
    if xml_path:
        try:
            with open(xml_path, 'rb') as handle:
                return handle.read().decode('utf-8', errors='replace'), 'xml_path'
        except (IOError, OSError) as exc:
            module.fail_json(msg='Cannot read xml_path %s: %s' % (xml_path, to_native(exc)))

    smi = module.params['nvidia_smi_path']
    if smi:
        if not os.path.exists(smi):
            _no_gpu(module, 'nvidia-smi is not installed (%s does not exist)' % smi, 'none')
    else:
        smi = module.get_bin_path('nvidia-smi', required=False, opt_dirs=NVIDIA_SMI_DIRS)
        if not smi:
            _no_gpu(module, 'nvidia-smi is not installed (not found in PATH or %s)' % ', '.join(NVIDIA_SMI_DIRS), 'none')

    try:
        rc, out, err = module.run_command([smi, '-q', '-x'], handle_exceptions=False,
                                          environ_update={'LC_ALL': 'C'})
    except OSError as exc:
        _no_gpu(module, 'nvidia-smi could not be run (%s): %s' % (smi, to_native(exc)), 'none')
    if rc != 0:
        reason = no_driver_reason(rc, out, err)
        if reason:
            _no_gpu(module, reason, smi)
        module.fail_json(msg='%s -q -x failed (rc=%s): %s' % (smi, rc, (err or out or '').strip()),
                         rc=rc, stdout=out, stderr=err)
    return out, smi


def main():
    module = AnsibleModule(
        argument_spec=dict(
            nvidia_smi_path=dict(type='path'),
            xml_path=dict(type='path'),
            require_gpu=dict(type='bool', default=False),
        ),
        mutually_exclusive=[('nvidia_smi_path', 'xml_path')],
        supports_check_mode=True,
    )

    text, source = read_xml(module)
    try:
        parsed = parse_nvidia_smi_xml(text)
    except NvidiaSmiParseError as exc:
        module.fail_json(msg='Cannot parse nvidia-smi XML from %s: %s' % (source, to_native(exc)))

    if not parsed['gpus']:
        _no_gpu(module, 'nvidia-smi lists no GPUs (attached_gpus=%s)' % parsed['attached_gpus'], source, parsed)

    facts = build_facts(parsed)
    if len(facts['tritonfleet_gpu_skus']) > 1:
        module.warn('This host mixes GPU SKUs (%s); engines built for one SKU do not run on another.'
                    % ', '.join(facts['tritonfleet_gpu_skus']))
    module.exit_json(changed=False, ansible_facts=facts, reason='', source=source)


if __name__ == '__main__':
    main()
