# -*- coding: utf-8 -*-
# Copyright: (c) 2026, tritonfleet maintainers
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The benchmark report: figures per concurrency level, aiperf's export, comparison and the reference check.

A report (SCHEMA) is one JSON object:

  schema        "tritonfleet.benchmark/1"
  created       UTC time the report was written, ISO 8601
  target        {name, grpc_url, http_url, model}: what was measured
  settings      {concurrency: [..], requests, max_tokens, prompt_words, ...}: how
  tools         {tool name ("client", "aiperf"): {version, levels: [LEVEL, ...]}}

and each LEVEL (one concurrency level of one tool):

  concurrency                    requests in flight at once
  requests                       requests sent
  succeeded, errors              how many answered, how many failed (errors counts
                                 failed requests; error_samples has up to 5 messages)
  duration_s                     wall time of the level
  output_tokens                  tokens of the requests that succeeded
  output_tokens_per_s            output_tokens / duration_s
  request_latency_ms             {mean, p50, p95, p99} over the requests that succeeded
  time_to_first_token_ms         {mean, p50, p95, p99}
  inter_token_latency_ms         {mean, p50, p95, p99}; a request's inter-token latency
                                 is (latency - time to first token) / (tokens - 1)

A figure is named "<statistic family>.<stat>" (request_latency_ms.p95) or a plain
key (output_tokens_per_s, errors); FIGURES gives each its direction: for "lower"
figures an increase is worse, for "higher" ones a decrease.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import datetime
import json
import math

SCHEMA = 'tritonfleet.benchmark/1'
QUANTILES = (50, 95, 99)
STAT_FAMILIES = ('time_to_first_token_ms', 'inter_token_latency_ms', 'request_latency_ms')
MAX_ERROR_SAMPLES = 5

LOWER = 'lower'
HIGHER = 'higher'

# Every figure a level carries, with the direction that is better.
FIGURES = dict(
    [('%s.%s' % (family, stat), LOWER) for family in STAT_FAMILIES for stat in ('mean', 'p50', 'p95', 'p99')]
    + [('output_tokens_per_s', HIGHER), ('errors', LOWER)]
)
# What the reference check looks at unless told otherwise.
DEFAULT_CHECK_FIGURES = (
    'time_to_first_token_ms.p50', 'time_to_first_token_ms.p99',
    'inter_token_latency_ms.p50', 'inter_token_latency_ms.p99',
    'request_latency_ms.p50', 'request_latency_ms.p95', 'request_latency_ms.p99',
    'output_tokens_per_s', 'errors',
)
# What the side-by-side table shows unless told otherwise.
DEFAULT_TABLE_FIGURES = (
    'time_to_first_token_ms.p50', 'inter_token_latency_ms.p50',
    'request_latency_ms.p50', 'request_latency_ms.p95', 'request_latency_ms.p99',
    'output_tokens_per_s', 'requests', 'errors',
)


class BenchmarkError(Exception):
    pass


# --------------------------------------------------------------------------
# Statistics
# --------------------------------------------------------------------------

def percentile(values, q):
    """The q-th percentile (0..100), linear between closest ranks (numpy's default); None for no values."""
    if not values:
        return None
    if not 0 <= q <= 100:
        raise ValueError('percentile must be within 0..100, got %r' % (q,))
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100.0
    low = int(math.floor(rank))
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def summarize(values, scale=1.0, digits=3):
    """{mean, p50, p95, p99} of values times scale, rounded; every entry None for no values."""
    values = [v * scale for v in values if v is not None]
    out = {'mean': round(sum(values) / len(values), digits) if values else None}
    for q in QUANTILES:
        value = percentile(values, q)
        out['p%d' % q] = round(value, digits) if value is not None else None
    return out


def level_from_records(concurrency, records, duration_s):
    """One LEVEL from per-request records.

    records: dicts with ok (bool), latency_s, first_token_s (None when no token
    came), tokens (int), error (text or None).
    """
    good = [r for r in records if r.get('ok')]
    bad = [r for r in records if not r.get('ok')]
    tokens = sum(int(r.get('tokens') or 0) for r in good)
    itl = []
    for r in good:
        first, latency, count = r.get('first_token_s'), r.get('latency_s'), int(r.get('tokens') or 0)
        if first is not None and latency is not None and count > 1:
            itl.append((latency - first) / (count - 1))
    return {
        'concurrency': int(concurrency),
        'requests': len(records),
        'succeeded': len(good),
        'errors': len(bad),
        'error_samples': [r.get('error') or 'failed' for r in bad][:MAX_ERROR_SAMPLES],
        'duration_s': round(duration_s, 6),
        'output_tokens': tokens,
        'output_tokens_per_s': round(tokens / duration_s, 3) if duration_s > 0 else None,
        'request_latency_ms': summarize([r.get('latency_s') for r in good], 1000.0),
        'time_to_first_token_ms': summarize([r.get('first_token_s') for r in good], 1000.0),
        'inter_token_latency_ms': summarize(itl, 1000.0),
    }


# --------------------------------------------------------------------------
# aiperf's export (profile_export_aiperf.json)
# --------------------------------------------------------------------------

# Our figure family -> aiperf's metric tag, and the unit aiperf reports it in.
AIPERF_METRICS = {
    'time_to_first_token_ms': 'time_to_first_token',
    'inter_token_latency_ms': 'inter_token_latency',
    'request_latency_ms': 'request_latency',
}
_TO_MS = {'ms': 1.0, 'us': 0.001, 'ns': 0.000001, 's': 1000.0, 'sec': 1000.0}


def _aiperf_metric(data, tag):
    """aiperf's export keeps each metric under its tag, either at the top or in a "records"/"metrics" map."""
    for holder in (data, data.get('records'), data.get('metrics')):
        if isinstance(holder, dict) and isinstance(holder.get(tag), dict):
            return holder[tag]
        if isinstance(holder, list):
            for item in holder:
                if isinstance(item, dict) and item.get('tag') == tag:
                    return item
    return None


def _number(value):
    if isinstance(value, bool) or value is None:
        return None
    try:
        value = float(value)
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) else None


def level_from_aiperf(concurrency, data):
    """One LEVEL from aiperf's JSON export of one run; raises BenchmarkError when it carries no request figures."""
    if not isinstance(data, dict):
        raise BenchmarkError('the aiperf export is not a JSON object')
    level = {'concurrency': int(concurrency), 'error_samples': []}
    for family, tag in AIPERF_METRICS.items():
        metric = _aiperf_metric(data, tag) or {}
        factor = _TO_MS.get(str(metric.get('unit', 'ms')).lower())
        if factor is None:
            raise BenchmarkError('aiperf reports %s in %r, a unit this report cannot convert' % (tag, metric.get('unit')))
        stats = {}
        for stat in ('mean',) + tuple('p%d' % q for q in QUANTILES):
            value = _number(metric.get('avg' if stat == 'mean' else stat))
            stats[stat] = round(value * factor, 3) if value is not None else None
        level[family] = stats
    if level['request_latency_ms']['p50'] is None:
        raise BenchmarkError('the aiperf export has no request_latency figures (did any request succeed?)')

    def avg(tag):
        metric = _aiperf_metric(data, tag) or {}
        return _number(metric.get('avg'))

    succeeded = avg('request_count')
    errors = avg('error_request_count') or 0
    level['succeeded'] = int(succeeded) if succeeded is not None else None
    level['errors'] = int(errors)
    level['requests'] = (level['succeeded'] or 0) + level['errors']
    duration = avg('benchmark_duration')
    duration_unit = _TO_MS.get(str((_aiperf_metric(data, 'benchmark_duration') or {}).get('unit', 'sec')).lower(), 1000.0)
    level['duration_s'] = round(duration * duration_unit / 1000.0, 6) if duration is not None else None
    throughput = avg('output_token_throughput')
    level['output_tokens_per_s'] = round(throughput, 3) if throughput is not None else None
    total = avg('total_output_tokens')
    if total is None:
        total = _number(((_aiperf_metric(data, 'output_sequence_length') or {}).get('sum')))
    level['output_tokens'] = int(total) if total is not None else None
    for item in data.get('error_summary') or []:
        if isinstance(item, dict) and len(level['error_samples']) < MAX_ERROR_SAMPLES:
            detail = item.get('error_details') or item
            level['error_samples'].append('%s (%s times)' % (
                detail.get('message') or detail.get('type') or json.dumps(detail, sort_keys=True), item.get('count', '?')))
    return level


# --------------------------------------------------------------------------
# Reports
# --------------------------------------------------------------------------

def now_iso():
    return datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0).isoformat().replace('+00:00', 'Z')


def build_report(target, settings, tools, created=None):
    """A report dict; tools maps a tool name to {version, levels}, levels sorted by concurrency."""
    out_tools = {}
    for name, tool in sorted(tools.items()):
        levels = sorted(tool.get('levels') or [], key=lambda lv: lv['concurrency'])
        out_tools[name] = {'version': tool.get('version'), 'levels': levels}
    return {'schema': SCHEMA, 'created': created or now_iso(), 'target': target, 'settings': settings,
            'tools': out_tools}


def validate_report(report, what='report'):
    """Raise BenchmarkError unless report is a report this module wrote (schema, tools, levels)."""
    if not isinstance(report, dict):
        raise BenchmarkError('%s is not a JSON object' % what)
    if report.get('schema') != SCHEMA:
        raise BenchmarkError('%s has schema %r, expected %r' % (what, report.get('schema'), SCHEMA))
    tools = report.get('tools')
    if not isinstance(tools, dict) or not tools:
        raise BenchmarkError('%s has no tools' % what)
    for name, tool in tools.items():
        levels = tool.get('levels') if isinstance(tool, dict) else None
        if not isinstance(levels, list):
            raise BenchmarkError('%s: tool %s has no levels list' % (what, name))
        for level in levels:
            if not isinstance(level, dict) or not isinstance(level.get('concurrency'), int):
                raise BenchmarkError('%s: tool %s has a level without an integer concurrency' % (what, name))
    return report


def load_report(path):
    try:
        with open(path, 'r') as handle:
            data = json.load(handle)
    except (IOError, OSError) as exc:
        raise BenchmarkError('cannot read %s: %s' % (path, exc))
    except ValueError as exc:
        raise BenchmarkError('%s is not JSON: %s' % (path, exc))
    return validate_report(data, path)


def figure_value(level, figure):
    """A figure of a level by its dotted name; None when absent."""
    value = level
    for part in figure.split('.'):
        if not isinstance(value, dict) or part not in value:
            return None
        value = value[part]
    return _number(value)


def figure_direction(figure):
    if figure in FIGURES:
        return FIGURES[figure]
    if figure in ('requests', 'succeeded', 'output_tokens', 'duration_s', 'concurrency'):
        return None  # shown, never judged
    raise BenchmarkError('unknown figure %r; known: %s' % (figure, ', '.join(sorted(FIGURES))))


def _levels_by_key(report):
    out = {}
    for tool, data in sorted(report['tools'].items()):
        for level in data['levels']:
            out[(tool, level['concurrency'])] = level
    return out


def change_percent(reference, candidate):
    """(candidate - reference) / reference in percent, rounded so that decimal edges stay edges; None when undefined."""
    if reference is None or candidate is None:
        return None
    if reference == 0:
        return 0.0 if candidate == 0 else (math.inf if candidate > 0 else -math.inf)
    return round((candidate - reference) / abs(reference) * 100.0, 9)


def compare_reports(left, right, figures=DEFAULT_TABLE_FIGURES):
    """Rows {tool, concurrency, figure, left, right, change_percent} for every level both reports have,
    plus a row with the missing side None for a level only one has."""
    for figure in figures:
        figure_direction(figure)
    a, b = _levels_by_key(left), _levels_by_key(right)
    rows = []
    for key in sorted(set(a) | set(b)):
        for figure in figures:
            lv, rv = (figure_value(a[key], figure) if key in a else None,
                      figure_value(b[key], figure) if key in b else None)
            rows.append({'tool': key[0], 'concurrency': key[1], 'figure': figure, 'left': lv, 'right': rv,
                         'change_percent': change_percent(lv, rv)})
    return rows


COUNT_FIGURES = ('requests', 'succeeded', 'errors', 'unsent', 'output_tokens', 'concurrency')


def _fmt(value, figure=None):
    if value is None:
        return '-'
    if figure in COUNT_FIGURES and isinstance(value, float) and value.is_integer():
        return '%d' % value
    if isinstance(value, float):
        if math.isinf(value):
            return '+inf' if value > 0 else '-inf'
        return '%.3f' % value if abs(value) < 1000 else '%.1f' % value
    return str(value)


def format_table(rows, left_name='left', right_name='right'):
    """The rows of compare_reports as fixed-width text lines."""
    header = ('tool', 'conc', 'figure', left_name, right_name, 'change %')
    body = [(r['tool'], str(r['concurrency']), r['figure'], _fmt(r['left'], r['figure']), _fmt(r['right'], r['figure']),
             ('%+.1f' % r['change_percent']) if r['change_percent'] is not None and math.isfinite(r['change_percent'])
             else _fmt(r['change_percent'])) for r in rows]
    widths = [max(len(str(row[i])) for row in [header] + body) for i in range(len(header))]
    lines = ['  '.join(str(cell).ljust(widths[i]) if i < 3 else str(cell).rjust(widths[i])
                       for i, cell in enumerate(row)).rstrip() for row in [header] + body]
    lines.insert(1, '  '.join('-' * w for w in widths))
    return lines


def level_lines(report, figures=DEFAULT_TABLE_FIGURES):
    """One report's figures as a table: one line per tool and concurrency level."""
    header = ['tool', 'conc'] + list(figures)
    rows = []
    for tool, data in sorted(report['tools'].items()):
        for level in data['levels']:
            rows.append([tool, str(level['concurrency'])] + [_fmt(figure_value(level, f), f) for f in figures])
    widths = [max(len(row[i]) for row in [header] + rows) for i in range(len(header))]
    lines = ['  '.join(cell.ljust(widths[i]) if i < 1 else cell.rjust(widths[i]) for i, cell in enumerate(row))
             for row in [header] + rows]
    lines.insert(1, '  '.join('-' * w for w in widths))
    return lines


def check_against_reference(candidate, reference, latency_tolerance, throughput_tolerance,
                            figures=DEFAULT_CHECK_FIGURES):
    """Every way the candidate is worse than the reference beyond the tolerance (percent), as messages.

    A "lower" figure fails when it rose by more than latency_tolerance percent,
    a "higher" one when it fell by more than throughput_tolerance percent; a
    change of exactly the tolerance passes. A level or figure the reference has
    and the candidate lacks fails too: a check that could not measure never passes.
    Returns (failures, checked): failures are messages, checked counts the
    figures compared.
    """
    for name, value in (('latency tolerance', latency_tolerance), ('throughput tolerance', throughput_tolerance)):
        if value is None or not 0 <= float(value) < 1000:
            raise BenchmarkError('%s must be a percentage within 0..1000, got %r' % (name, value))
    directions = {}
    for figure in figures:
        direction = figure_direction(figure)
        if direction is None:
            raise BenchmarkError('figure %r has no better direction and cannot be checked' % figure)
        directions[figure] = direction
    cand, ref = _levels_by_key(candidate), _levels_by_key(reference)
    failures = []
    checked = 0
    for key in sorted(ref):
        tool, conc = key
        if key not in cand:
            failures.append('%s at concurrency %d: measured in the reference, not in this run' % (tool, conc))
            continue
        for figure in figures:
            rv, cv = figure_value(ref[key], figure), figure_value(cand[key], figure)
            if rv is None:
                continue  # the reference did not measure it: nothing to hold this run to
            if cv is None:
                failures.append('%s at concurrency %d: %s is %s in the reference and was not measured'
                                % (tool, conc, figure, _fmt(rv)))
                continue
            checked += 1
            change = change_percent(rv, cv)
            if directions[figure] == LOWER:
                tolerance, worse = float(latency_tolerance), change > float(latency_tolerance)
                word = 'rose'
            else:
                tolerance, worse = float(throughput_tolerance), -change > float(throughput_tolerance)
                word = 'fell'
            if worse:
                failures.append('%s at concurrency %d: %s %s from %s (reference) to %s, %s%% against a tolerance of %s%%'
                                % (tool, conc, figure, word, _fmt(rv, figure), _fmt(cv, figure),
                                   ('%+.2f' % change) if math.isfinite(change) else _fmt(change), _fmt(tolerance)))
    return failures, checked
