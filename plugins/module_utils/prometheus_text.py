# -*- coding: utf-8 -*-
# Copyright: (c) 2026, tritonfleet maintainers
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Parse the Prometheus text exposition format (version 0.0.4) into flat series.

``prometheus_client``'s parser is used when it is importable. Managed hosts
often lack it, so a small parser of our own (``parse_builtin``) implements the
same grouping rules; both return exactly the same data.

A *series* is ``{'name', 'labels', 'value', 'type'}``:

* ``name`` is the sample name as written in the exposition (prometheus_client
  renames counter samples to ``<name>_total`` internally; that is undone so
  the names match what ``curl /metrics`` shows and what users write).
* ``labels`` is a dict of strings.
* ``value`` is an int when the sample is integral, a float otherwise, and
  ``None`` for NaN/+Inf/-Inf, which JSON cannot carry.
* ``type`` is the family's type: counter, gauge, histogram, summary, untyped,
  ... (``unknown`` is reported as ``untyped``).
"""

from __future__ import annotations

__metaclass__ = type

import fnmatch
import math
import re

try:
    from prometheus_client.parser import text_string_to_metric_families
    HAS_PROMETHEUS_CLIENT = True
    PROMETHEUS_CLIENT_IMPORT_ERROR = None
except ImportError as _exc:  # the managed host may not have it
    text_string_to_metric_families = None
    HAS_PROMETHEUS_CLIENT = False
    PROMETHEUS_CLIENT_IMPORT_ERROR = _exc


class PrometheusTextError(ValueError):
    """The text is not valid Prometheus exposition format."""


_METRIC_NAME_RE = re.compile(r'^[a-zA-Z_:][a-zA-Z0-9_:]*$')
_LABEL_NAME_RE = re.compile(r'^[a-zA-Z_][a-zA-Z0-9_]*$')
_KNOWN_TYPES = frozenset(('counter', 'gauge', 'summary', 'histogram', 'gaugehistogram',
                          'unknown', 'untyped', 'info', 'stateset'))
# Sample-name suffixes that belong to a family of the given type.
_FAMILY_SUFFIXES = {
    'summary': ('', '_count', '_sum'),
    'histogram': ('_bucket', '_count', '_sum'),
}
_LABEL_ESCAPES = {'\\': '\\', '"': '"', 'n': '\n'}

PARSERS = ('auto', 'prometheus_client', 'builtin')


def normalize_value(value):
    """float-like -> int when integral, float otherwise, None when not finite."""
    value = float(value)
    if math.isnan(value) or math.isinf(value):
        return None
    if value.is_integer() and abs(value) < 2 ** 53:
        return int(value)
    return value


def _series(name, labels, value, typ):
    if typ == 'unknown':
        typ = 'untyped'
    return {'name': name, 'labels': dict(labels), 'value': normalize_value(value), 'type': typ}


def _comment_tokens(line):
    """'# TYPE name counter' -> ['#', 'TYPE', 'name', 'counter'] (at most 4 tokens)."""
    tokens = line.split(None, 3)
    if len(tokens) >= 3 and tokens[2].startswith('"') and tokens[2].endswith('"') and len(tokens[2]) > 1:
        tokens[2] = tokens[2][1:-1]
    return tokens


def _declared_counters(text):
    names = set()
    for line in text.splitlines():
        line = line.strip()
        if line.startswith('#'):
            tokens = _comment_tokens(line)
            if len(tokens) == 4 and tokens[1] == 'TYPE' and tokens[3].strip() == 'counter':
                names.add(tokens[2])
    return names


def parse_with_prometheus_client(text):
    """Series from prometheus_client's parser (raises PrometheusTextError)."""
    if not HAS_PROMETHEUS_CLIENT:
        raise PrometheusTextError('prometheus_client is not importable: %s' % PROMETHEUS_CLIENT_IMPORT_ERROR)
    declared_counters = _declared_counters(text)
    result = []
    try:
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                name = sample.name
                # `# TYPE x counter` + `x 1` comes back as sample `x_total`.
                if family.type == 'counter' and family.name in declared_counters and name == family.name + '_total':
                    name = family.name
                result.append(_series(name, sample.labels, sample.value, family.type))
    except (ValueError, KeyError, IndexError, TypeError) as exc:
        raise PrometheusTextError('invalid Prometheus text: %s' % exc)
    return result


def _parse_labels(text, pos, line):
    """Parse '{a="b",c="d"}' starting at text[pos] == '{'. Returns (labels, pos after '}')."""
    labels = {}
    pos += 1
    length = len(text)
    while True:
        while pos < length and text[pos] in ' \t':
            pos += 1
        if pos >= length:
            raise PrometheusTextError('unterminated label set: %s' % line)
        if text[pos] == '}':
            return labels, pos + 1
        eq = text.find('=', pos)
        if eq < 0:
            raise PrometheusTextError('label without value: %s' % line)
        name = text[pos:eq].strip()
        if name.startswith('"') and name.endswith('"') and len(name) > 1:
            name = name[1:-1]
        elif not _LABEL_NAME_RE.match(name):
            raise PrometheusTextError('invalid label name %r: %s' % (name, line))
        pos = eq + 1
        while pos < length and text[pos] in ' \t':
            pos += 1
        if pos >= length or text[pos] != '"':
            raise PrometheusTextError('label value must be quoted: %s' % line)
        pos += 1
        chars = []
        while True:
            if pos >= length:
                raise PrometheusTextError('unterminated label value: %s' % line)
            char = text[pos]
            if char == '\\' and pos + 1 < length:
                nxt = text[pos + 1]
                chars.append(_LABEL_ESCAPES.get(nxt, '\\' + nxt))
                pos += 2
                continue
            if char == '"':
                pos += 1
                break
            chars.append(char)
            pos += 1
        if name in labels:
            raise PrometheusTextError('duplicate label %r: %s' % (name, line))
        labels[name] = ''.join(chars)
        while pos < length and text[pos] in ' \t':
            pos += 1
        if pos < length and text[pos] == ',':
            pos += 1
        elif pos < length and text[pos] != '}':
            raise PrometheusTextError('expected "," or "}" after label value: %s' % line)


def _parse_number(token, line):
    if '_' in token:
        raise PrometheusTextError('invalid value %r: %s' % (token, line))
    try:
        return int(token)
    except ValueError:
        try:
            return float(token)
        except ValueError:
            raise PrometheusTextError('invalid value %r: %s' % (token, line))


_NAME_PREFIX_RE = re.compile(r'[a-zA-Z_:][a-zA-Z0-9_:]*')


def _parse_sample_line(line):
    match = _NAME_PREFIX_RE.match(line)
    name = match.group(0) if match else ''
    pos = len(name)
    while pos < len(line) and line[pos] in ' \t':
        pos += 1
    if pos < len(line) and line[pos] == '{':
        labels, pos = _parse_labels(line, pos, line)
        rest = line[pos:]
    else:
        labels = {}
        rest = line[len(name):]
        if rest[:1] not in (' ', '\t'):
            raise PrometheusTextError('invalid metric name: %s' % line)
    if not name and '__name__' in labels:
        name = labels.pop('__name__')
    elif '__name__' in labels:
        raise PrometheusTextError('metric name given twice: %s' % line)
    if not _METRIC_NAME_RE.match(name):
        raise PrometheusTextError('invalid metric name %r: %s' % (name, line))
    tokens = rest.split()
    if not tokens:
        raise PrometheusTextError('sample without value: %s' % line)
    return name, labels, _parse_number(tokens[0], line)


def parse_builtin(text):
    """Series from our own parser; same results as parse_with_prometheus_client()."""
    result = []
    family = None          # name of the current family
    family_type = 'untyped'
    allowed = ()           # sample names that belong to the current family

    def allowed_for(name, typ):
        return tuple(name + suffix for suffix in _FAMILY_SUFFIXES.get(typ, ('',)))

    for raw in text.splitlines():
        line = raw.strip()
        if not line:
            continue
        if line.startswith('#'):
            tokens = _comment_tokens(line)
            if len(tokens) < 3 or tokens[1] not in ('HELP', 'TYPE'):
                continue
            name = tokens[2]
            if tokens[1] == 'HELP':
                if name != family:
                    family, family_type, allowed = name, 'untyped', (name,)
            else:
                if len(tokens) < 4:
                    raise PrometheusTextError('TYPE line without a type: %s' % line)
                typ = tokens[3].strip()
                if typ not in _KNOWN_TYPES:
                    raise PrometheusTextError('invalid metric type %r: %s' % (typ, line))
                family, family_type = name, typ
                allowed = allowed_for(name, typ)
            continue
        name, labels, value = _parse_sample_line(line)
        if name in allowed:
            result.append(_series(name, labels, value, family_type))
        else:
            # A sample outside the current family is an untyped family of its
            # own and ends the current one.
            family, family_type, allowed = None, 'untyped', ()
            result.append(_series(name, labels, value, 'untyped'))
    return result


def parse_text(text, parser='auto'):
    """Parse exposition text. Returns (series, parser_used).

    ``parser`` is 'auto' (prometheus_client when importable, else builtin),
    'prometheus_client' or 'builtin'.
    """
    if isinstance(text, bytes):
        text = text.decode('utf-8', errors='replace')
    if parser not in PARSERS:
        raise ValueError('parser must be one of %s' % ', '.join(PARSERS))
    if parser == 'prometheus_client' or (parser == 'auto' and HAS_PROMETHEUS_CLIENT):
        return parse_with_prometheus_client(text), 'prometheus_client'
    return parse_builtin(text), 'builtin'


def _label_matches(actual, wanted):
    if isinstance(wanted, (list, tuple, set)):
        return actual is not None and actual in [str(w) for w in wanted]
    if isinstance(wanted, bool):
        wanted = 'true' if wanted else 'false'
    return actual == str(wanted)


def name_matches(name, patterns):
    """True when name equals, or matches as a glob, one of patterns."""
    if patterns is None:
        return True
    if isinstance(patterns, str):
        patterns = [patterns]
    return any(name == pattern or fnmatch.fnmatchcase(name, pattern) for pattern in patterns)


def select_series(series, names=None, labels=None):
    """Series whose name matches one of ``names`` (exact or glob; None = all)
    and whose labels equal every item of ``labels`` (a list value = any of)."""
    labels = labels or {}
    selected = []
    for item in series:
        if not name_matches(item['name'], names):
            continue
        if all(_label_matches(item['labels'].get(key), wanted) for key, wanted in labels.items()):
            selected.append(item)
    return selected


def _tidy(number):
    if isinstance(number, float) and number.is_integer() and abs(number) < 2 ** 53:
        return int(number)
    return number


def totals(series):
    """name -> sum of the values of the series with that name (None values skipped)."""
    sums = {}
    for item in series:
        sums.setdefault(item['name'], 0)
        if item['value'] is not None:
            sums[item['name']] += item['value']
    return dict((name, _tidy(value)) for name, value in sums.items())


AGGREGATES = ('sum', 'min', 'max', 'avg', 'count')


def aggregate(series, how='sum'):
    """Reduce the values of ``series`` to one number (None when there is none)."""
    if how == 'count':
        return len(series)
    values = [item['value'] for item in series if item['value'] is not None]
    if not values:
        return None
    if how == 'sum':
        return _tidy(sum(values))
    if how == 'min':
        return min(values)
    if how == 'max':
        return max(values)
    if how == 'avg':
        return _tidy(float(sum(values)) / len(values))
    raise ValueError('aggregate must be one of %s' % ', '.join(AGGREGATES))
