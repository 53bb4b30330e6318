#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, tritonfleet maintainers
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import absolute_import, division, print_function
__metaclass__ = type

DOCUMENTATION = r'''
---
module: benchmark_compare
short_description: Compare two benchmark reports side by side, and fail when one is worse than a reference beyond a tolerance
version_added: 0.1.0
description:
  - Reads two reports written by M(tritonfleet.serving.benchmark_report) and returns, for every tool and concurrency
    level either has, each figure of both and its change in percent, as rows and as a text table.
  - With O(check=true), O(reference) is the reference and O(candidate) the run under test. A latency figure (time to
    first token, inter-token latency, request latency, errors) fails when it rose by more than O(latency_tolerance)
    percent; a throughput figure (output tokens/s) fails when it fell by more than O(throughput_tolerance) percent. A
    change of exactly the tolerance passes. The failure names the tool, the concurrency, the figure, both values and
    the tolerance.
  - A level or figure the reference has and the candidate lacks fails the check, since a check that could not measure
    never passes.
author:
  - tritonfleet maintainers (@tritonfleet)
extends_documentation_fragment:
  - tritonfleet.serving.attributes
  - tritonfleet.serving.attributes.INFO_MODULE
options:
  reference:
    description: The reference report (left column), a path or the report itself.
    type: raw
    required: true
  candidate:
    description: The report compared with it (right column), a path or the report itself.
    type: raw
    required: true
  figures:
    description:
      - Figures in the table, as dotted names (V(request_latency_ms.p95), V(output_tokens_per_s), V(requests)).
      - Empty means the main ones.
    type: list
    elements: str
    default: []
  check:
    description: Fail when the candidate is worse than the reference beyond the tolerances.
    type: bool
    default: false
  check_figures:
    description: Figures the check looks at; empty means time to first token, inter-token latency and request latency
      percentiles, output tokens/s and errors.
    type: list
    elements: str
    default: []
  latency_tolerance:
    description: How much a latency figure may rise, in percent of the reference.
    type: float
    default: 10
  throughput_tolerance:
    description: How much a throughput figure may fall, in percent of the reference.
    type: float
    default: 10
seealso:
  - module: tritonfleet.serving.benchmark_report
'''

EXAMPLES = r'''
- name: Hold today's run to the stored reference
  tritonfleet.serving.benchmark_compare:
    reference: /srv/benchmarks/reference.json
    candidate: /var/tmp/benchmark/report.json
    check: true
    latency_tolerance: 15
    throughput_tolerance: 10
'''

RETURN = r'''
rows:
  description: One row per tool, concurrency and figure.
  returned: always
  type: list
  elements: dict
  sample: [{tool: client, concurrency: 2, figure: request_latency_ms.p95, left: 401.2, right: 420.0, change_percent: 4.686}]
table:
  description: The rows as text lines.
  returned: always
  type: list
  elements: str
failures:
  description: With O(check=true), every figure worse than the tolerance allows; empty otherwise.
  returned: always
  type: list
  elements: str
checked:
  description: With O(check=true), how many figures were compared.
  returned: always
  type: int
'''

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.common.text.converters import to_native

from ansible_collections.tritonfleet.serving.plugins.module_utils.benchmark import (
    DEFAULT_CHECK_FIGURES, DEFAULT_TABLE_FIGURES, BenchmarkError, check_against_reference, compare_reports,
    format_table, load_report, validate_report)


def _report(value, option):
    if isinstance(value, dict):
        return validate_report(value, option)
    if isinstance(value, str):
        return load_report(value)
    raise BenchmarkError('%s must be a path or a report, got %s' % (option, type(value).__name__))


def run_module():
    module = AnsibleModule(
        argument_spec=dict(
            reference=dict(type='raw', required=True),
            candidate=dict(type='raw', required=True),
            figures=dict(type='list', elements='str', default=[]),
            check=dict(type='bool', default=False),
            check_figures=dict(type='list', elements='str', default=[]),
            latency_tolerance=dict(type='float', default=10.0),
            throughput_tolerance=dict(type='float', default=10.0),
        ),
        supports_check_mode=True,
    )
    params = module.params
    try:
        reference = _report(params['reference'], 'reference')
        candidate = _report(params['candidate'], 'candidate')
        rows = compare_reports(reference, candidate, params['figures'] or DEFAULT_TABLE_FIGURES)
        table = format_table(rows, 'reference', 'candidate')
        failures, checked = [], 0
        if params['check']:
            failures, checked = check_against_reference(
                candidate, reference, params['latency_tolerance'], params['throughput_tolerance'],
                params['check_figures'] or DEFAULT_CHECK_FIGURES)
    except BenchmarkError as exc:
        module.fail_json(msg=to_native(exc))
    result = dict(changed=False, rows=rows, table=table, failures=failures, checked=checked)
    if failures:
        module.fail_json(msg='%d figure(s) worse than the reference beyond the tolerance: %s'
                         % (len(failures), '; '.join(failures)), **result)
    module.exit_json(**result)


def main():
    run_module()


if __name__ == '__main__':
    main()
