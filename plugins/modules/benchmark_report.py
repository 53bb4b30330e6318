#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, tritonfleet maintainers
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import absolute_import, division, print_function
__metaclass__ = type

DOCUMENTATION = r'''
---
module: benchmark_report
short_description: Write the benchmark report (JSON) and its plot (PNG) from measured concurrency levels
version_added: 0.1.0
description:
  - Gathers the levels measured by M(tritonfleet.serving.benchmark_client) and the JSON exports of NVIDIA's C(aiperf)
    into one report whose schema is C(tritonfleet.benchmark/1) (documented in the collection's
    C(plugins/module_utils/benchmark.py)), writes it to O(path), and draws every figure against concurrency into O(plot).
  - Returns the report and a table of its figures, one line per tool and concurrency level.
author:
  - tritonfleet maintainers (@tritonfleet)
requirements:
  - matplotlib, for O(plot)
extends_documentation_fragment:
  - tritonfleet.serving.attributes
attributes:
  check_mode:
    support: full
    details:
      - Nothing is written; the report is built from the given levels and C(changed) says whether the file would change.
  diff_mode:
    support: full
    details:
      - The report before and after as JSON text.
options:
  path:
    description: Where to write the report (JSON). Its directory must exist.
    type: path
    required: true
  plot:
    description: Where to write the plot (PNG). Not drawn when unset.
    type: path
  target:
    description: What was measured, stored as the report's C(target) (for instance C(name), C(grpc_url), C(model)).
    type: dict
    default: {}
  settings:
    description: How it was measured, stored as the report's C(settings) (concurrency list, requests, max_tokens ...).
    type: dict
    default: {}
  client_levels:
    description: The RV(tritonfleet.serving.benchmark_client#module:level) results of M(tritonfleet.serving.benchmark_client), one per level.
    type: list
    elements: dict
    default: []
  aiperf_exports:
    description: aiperf's JSON export (C(profile_export_aiperf.json)) of each concurrency level.
    type: list
    elements: dict
    default: []
    suboptions:
      concurrency:
        description: The level's concurrency.
        type: int
        required: true
      path:
        description: The export file.
        type: path
        required: true
  aiperf_version:
    description: The aiperf version that measured O(aiperf_exports), stored in the report.
    type: str
  title:
    description: The plot's title.
    type: str
    default: Triton benchmark
seealso:
  - module: tritonfleet.serving.benchmark_client
  - module: tritonfleet.serving.benchmark_compare
'''

EXAMPLES = r'''
- name: Write the report and the plot
  tritonfleet.serving.benchmark_report:
    path: /var/tmp/benchmark/report.json
    plot: /var/tmp/benchmark/report.png
    target: {name: gateway, grpc_url: "grpc://127.0.0.1:8081", model: ensemble}
    settings: {concurrency: [1, 2, 4], requests: 32, max_tokens: 32}
    client_levels: "{{ client_results.results | map(attribute='level') | list }}"
  register: report

- name: Print the figures
  ansible.builtin.debug:
    var: report.table
'''

RETURN = r'''
report:
  description: The report as written.
  returned: always
  type: dict
table:
  description: The report's main figures as text lines, one per tool and concurrency level.
  returned: always
  type: list
  elements: str
path:
  description: The report's path.
  returned: always
  type: str
plot:
  description: The plot's path; null when none was asked for.
  returned: always
  type: str
'''

import json
import os
import tempfile
import traceback

from ansible.module_utils.basic import AnsibleModule, missing_required_lib
from ansible.module_utils.common.text.converters import to_native

from ansible_collections.tritonfleet.serving.plugins.module_utils.benchmark import (
    BenchmarkError, build_report, figure_value, level_from_aiperf, level_lines, validate_report)

try:
    import matplotlib
    matplotlib.use('Agg')  # headless: no display on a server or in CI
    import matplotlib.pyplot as plt
    HAS_MATPLOTLIB = True
    MATPLOTLIB_ERROR = None
except Exception:  # pragma: no cover - depends on the host
    HAS_MATPLOTLIB = False
    MATPLOTLIB_ERROR = traceback.format_exc()

# mkstemp makes its files private; a report is for everyone who reads benchmarks.
READABLE = 0o644

# The plot's panels: a title and the figures (dotted names) drawn in it.
PANELS = (
    ('Time to first token (ms)', ('time_to_first_token_ms.p50', 'time_to_first_token_ms.p99')),
    ('Inter-token latency (ms)', ('inter_token_latency_ms.p50', 'inter_token_latency_ms.p99')),
    ('Request latency (ms)', ('request_latency_ms.p50', 'request_latency_ms.p95', 'request_latency_ms.p99')),
    ('Output tokens/s', ('output_tokens_per_s',)),
)


def draw_plot(report, path, title):
    """Every panel's figures against concurrency: a colour per tool, a line style per statistic.

    Written aside and renamed, so a reader never sees half a PNG.
    """
    fig, axes = plt.subplots(2, 2, figsize=(11, 8))
    tools = sorted(report['tools'])
    colours = dict((tool, 'C%d' % n) for n, tool in enumerate(tools))
    styles = {'p50': '-', 'p95': '--', 'p99': ':'}
    levels = sorted(set(lv['concurrency'] for tool in tools for lv in report['tools'][tool]['levels']))
    for ax, (panel, figures) in zip(axes.flat, PANELS):
        for tool in tools:
            for figure in figures:
                points = [(lv['concurrency'], figure_value(lv, figure)) for lv in report['tools'][tool]['levels']]
                points = [(x, y) for x, y in points if y is not None]
                if points:
                    stat = figure.split('.')[-1]
                    label = tool if len(figures) == 1 else '%s %s' % (tool, stat)
                    ax.plot([p[0] for p in points], [p[1] for p in points], marker='o', label=label,
                            color=colours[tool], linestyle=styles.get(stat, '-'))
        ax.set_title(panel)
        ax.set_xlabel('concurrency')
        ax.set_xticks(levels)
        ax.set_ylim(bottom=0)
        ax.grid(True, alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize='small')
    fig.suptitle('%s: %s' % (title, report.get('target', {}).get('name', '')))
    fig.tight_layout()
    fd, tmp = tempfile.mkstemp(prefix='.benchmark-', suffix='.png', dir=os.path.dirname(os.path.abspath(path)))
    os.close(fd)
    try:
        fig.savefig(tmp, format='png', dpi=100)
        os.chmod(tmp, READABLE)
        os.rename(tmp, path)
    finally:
        plt.close(fig)
        if os.path.exists(tmp):
            os.unlink(tmp)


def write_atomic(path, text):
    fd, tmp = tempfile.mkstemp(prefix='.benchmark-', suffix='.json', dir=os.path.dirname(os.path.abspath(path)))
    try:
        with os.fdopen(fd, 'w') as handle:
            handle.write(text)
        os.chmod(tmp, READABLE)
        os.rename(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def run_module():
    module = AnsibleModule(
        argument_spec=dict(
            path=dict(type='path', required=True),
            plot=dict(type='path'),
            target=dict(type='dict', default={}),
            settings=dict(type='dict', default={}),
            client_levels=dict(type='list', elements='dict', default=[]),
            aiperf_exports=dict(type='list', elements='dict', default=[], options=dict(
                concurrency=dict(type='int', required=True),
                path=dict(type='path', required=True),
            )),
            aiperf_version=dict(type='str'),
            title=dict(type='str', default='Triton benchmark'),
        ),
        supports_check_mode=True,
    )
    params = module.params
    if params['plot'] and not HAS_MATPLOTLIB:
        module.fail_json(msg=missing_required_lib('matplotlib'), exception=MATPLOTLIB_ERROR)
    for option in ('path', 'plot'):
        if params[option] and not os.path.isdir(os.path.dirname(os.path.abspath(params[option]))):
            module.fail_json(msg='%s: the directory of %s does not exist' % (option, params[option]))

    tools = {}
    if params['client_levels']:
        tools['client'] = {'version': None, 'levels': params['client_levels']}
    if params['aiperf_exports']:
        levels = []
        for export in params['aiperf_exports']:
            try:
                with open(export['path'], 'r') as handle:
                    data = json.load(handle)
                levels.append(level_from_aiperf(export['concurrency'], data))
            except (IOError, OSError, ValueError) as exc:
                module.fail_json(msg='aiperf export of concurrency %d (%s): %s'
                                 % (export['concurrency'], export['path'], to_native(exc)))
            except BenchmarkError as exc:
                module.fail_json(msg='aiperf export of concurrency %d (%s): %s'
                                 % (export['concurrency'], export['path'], to_native(exc)))
        tools['aiperf'] = {'version': params['aiperf_version'], 'levels': levels}
    if not tools:
        module.fail_json(msg='nothing to report: give client_levels and/or aiperf_exports')
    try:
        report = validate_report(build_report(params['target'], params['settings'], tools))
    except BenchmarkError as exc:
        module.fail_json(msg=to_native(exc))

    text = json.dumps(report, indent=2, sort_keys=True) + '\n'
    before = ''
    if os.path.exists(params['path']):
        with open(params['path'], 'r') as handle:
            before = handle.read()
    # A new report carries a new creation time, so it always differs from the file there.
    result = dict(changed=before != text, report=report, table=level_lines(report), path=params['path'],
                  plot=params['plot'])
    if module._diff:
        result['diff'] = dict(before=before, after=text, before_header=params['path'], after_header=params['path'])
    if module.check_mode:
        module.exit_json(**result)
    write_atomic(params['path'], text)
    if params['plot']:
        try:
            draw_plot(report, params['plot'], params['title'])
        except Exception as exc:
            module.fail_json(msg='cannot draw %s: %s' % (params['plot'], to_native(exc)), **result)
        result['changed'] = True
    module.exit_json(**result)


def main():
    run_module()


if __name__ == '__main__':
    main()
