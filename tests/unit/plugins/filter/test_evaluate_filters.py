# -*- coding: utf-8 -*-
# Copyright: (c) 2026, tritonfleet maintainers
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""plugins/filter/evaluate.py: which servers the gate still has to measure, and its verdicts."""

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.tritonfleet.serving.plugins.filter.evaluate import (
    FilterModule, evaluate_pending, evaluate_results, gate_id)

ENGINE = {"engine_dir": "/r/engines/tiny/aaaa", "cache_key": "aaaa" + "0" * 60, "checkpoint_dir": "/r/ckpt"}
NEW = {"name": "triton0", "repository": "/r/servers/revisions/r2", "readonly_mounts": ["/r/engines/tiny/aaaa", "/r/ckpt"]}
OLD = {"name": "triton0", "repository": "/r/servers/revisions/r1", "readonly_mounts": ["/r/engines/tiny/bbbb", "/r/ckpt"]}


def test_a_server_passed_on_the_same_revision_is_not_gated_again():
    assert evaluate_pending([NEW], [], ENGINE) == [NEW]
    assert evaluate_pending([NEW], [gate_id(NEW, ENGINE)], ENGINE) == []
    # site.yml's last verify names the rendered repository, not the revision: the same engine is enough
    assert evaluate_pending([dict(NEW, repository="/r/model_repository")], [gate_id(NEW, ENGINE)], ENGINE) == []
    # ... and the layout alone, without mounts: the engine stage's engine
    assert evaluate_pending([{"name": "triton0"}], [gate_id(NEW, ENGINE)], ENGINE) == []
    assert gate_id({"name": "triton0"}, {}) == "triton0|"
    # the rollback serves another engine: measured anew
    assert evaluate_pending([OLD], [gate_id(NEW, ENGINE)], ENGINE) == [OLD]


def test_verdicts_name_the_engine_each_server_runs():
    gate = {"passed": False, "samples": 28, "metrics": ["rouge1", "rougeL"], "threshold": 2.5,
            "drops": {"rouge1": 0.34, "rougeL": 0.35}, "failed_metrics": [],
            "agreement": {"identical": 4, "samples": 28, "scores": {"rouge1": 50.1, "rougeL": 48.17}},
            "agreement_failed_metrics": ["rouge1", "rougeL"], "msg": "ROUGE regression gate failed: ...",
            "scores": {}, "table": "t"}
    new, old = evaluate_results([{"item": NEW, "seconds": 1.5}, {"item": OLD}], [gate, dict(gate, passed=True)], ENGINE)
    assert (new["engine"], new["engine_cache_key"], new["passed"]) == ("aaaa", ENGINE["cache_key"], False)
    # a rollback's engine is not the engine stage's: only its directory names it
    assert (old["engine"], old["engine_cache_key"], old["passed"]) == ("bbbb", "", True)
    assert "drop rouge1 0.34, rougeL 0.35; agreement rouge1 50.10, rougeL 48.17 (4 of 28 identical)" in new["summary"]
    assert new["id"] == gate_id(NEW, ENGINE) and new["generate_seconds"] == 1.5


def test_bad_input_is_refused():
    with pytest.raises(AnsibleFilterError, match="needs a name"):
        evaluate_pending([{}], [], ENGINE)
    with pytest.raises(AnsibleFilterError, match="2 summary runs but 1 gate results"):
        evaluate_results([{"item": NEW}, {"item": OLD}], [{}], ENGINE)


def test_filters_are_registered():
    assert set(FilterModule().filters()) == {"evaluate_pending", "evaluate_results"}
