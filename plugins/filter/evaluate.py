# -*- coding: utf-8 -*-
# Copyright: (c) 2026, tritonfleet maintainers
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The evaluate role's bookkeeping: which servers still need the ROUGE gate, and its verdicts per server."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os

from ansible.errors import AnsibleFilterError
from ansible.module_utils.common.text.converters import to_text


def _engine_dir(server, engine):
    """The engine a server runs: the engine stage's when the server mounts it (a rollback mounts an older one).

    A server described by its layout alone (site.yml's last verify: no mounts
    yet) runs the engine stage's engine, or one this run does not know ('').
    """
    mounts = [to_text(m) for m in server.get('readonly_mounts') or []]
    current = to_text((engine or {}).get('engine_dir') or '')
    if current and (current in mounts or not mounts):
        return current
    return mounts[0] if mounts else ''


def gate_id(server, engine=None):
    """What a verdict holds for: the server and the engine it runs.

    Not the repository: the servers stage verifies a revision's snapshot,
    site.yml's last verify the same servers by their rendered repository.
    """
    if not isinstance(server, dict) or 'name' not in server:
        raise AnsibleFilterError('evaluate: each server needs a name, got %r' % (server,))
    return '%s|%s' % (to_text(server['name']), _engine_dir(server, engine))


def evaluate_pending(servers, passed, engine=None):
    """``evaluate_servers | evaluate_pending(passed_ids, tritonfleet_engine)``: the servers without a pass in this run."""
    if not isinstance(servers, (list, tuple)):
        raise AnsibleFilterError('evaluate_pending: expected a list of servers, got %r' % (servers,))
    done = set(to_text(p) for p in passed or [])
    return [s for s in servers if gate_id(s, engine) not in done]


def _fmt(value):
    return '%.2f' % value if isinstance(value, (int, float)) else 'n/a'


def evaluate_results(candidates, gates, engine=None):
    """One verdict per server from the registered results of evaluate_generate and rouge_gate (same order)."""
    if len(candidates) != len(gates):
        raise AnsibleFilterError('evaluate_results: %d summary runs but %d gate results' % (len(candidates), len(gates)))
    engine = engine or {}
    results = []
    for candidate, gate in zip(candidates, gates):
        server = candidate['item']
        engine_dir = _engine_dir(server, engine)
        same_engine = bool(engine_dir) and engine_dir == to_text(engine.get('engine_dir') or '')
        drops = gate.get('drops') or {}
        agreement = gate.get('agreement')
        metrics = gate.get('metrics') or sorted(drops)
        summary = '%s: %s; drop %s' % (to_text(server['name']), to_text(gate.get('msg', '')).rstrip('.'),
                                       ', '.join('%s %s' % (m, _fmt(drops.get(m))) for m in metrics))
        if agreement:
            summary += '; agreement %s (%s of %s identical)' % (
                ', '.join('%s %s' % (m, _fmt((agreement.get('scores') or {}).get(m))) for m in metrics),
                agreement.get('identical'), agreement.get('samples'))
        results.append(dict(
            name=to_text(server['name']),
            id=gate_id(server, engine),
            engine=os.path.basename(engine_dir.rstrip('/')) or 'unknown',
            engine_dir=engine_dir,
            engine_cache_key=to_text(engine.get('cache_key') or '') if same_engine else '',
            repository=to_text(server.get('repository') or ''),
            passed=bool(gate.get('passed')),
            samples=gate.get('samples'),
            scores=gate.get('scores'),
            drops=drops,
            failed_metrics=gate.get('failed_metrics') or [],
            agreement=agreement,
            agreement_failed_metrics=gate.get('agreement_failed_metrics') or [],
            threshold=gate.get('threshold'),
            msg=to_text(gate.get('msg', '')),
            table=to_text(gate.get('table', '')),
            summary=summary,
            generate_seconds=candidate.get('seconds'),
        ))
    return results


class FilterModule(object):
    def filters(self):
        return {
            'evaluate_pending': evaluate_pending,
            'evaluate_results': evaluate_results,
        }
