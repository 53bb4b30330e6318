#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, tritonfleet maintainers
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: rouge_gate
short_description: ROUGE regression gate between an engine's summaries and its reference model's
version_added: 0.4.0
description:
  - Scores two sets of summaries of the same articles, the candidate's (the served engine) and the
    reference's (the reference model, for example Hugging Face C(transformers) on the checkpoint), against the
    reference summaries of a summarization set, with rouge1, rouge2, rougeL and rougeLsum from the
    C(rouge_score) package, in points (F-measure times 100).
  - Scoring is set up as TensorRT-LLM's C(examples/summarize.py) sets it up, so figures compare with its
    output; rougeLsum reads sentences from the newlines already in the texts.
  - Fails when a gated metric of the candidate is more than O(threshold) points below the reference's,
    naming the metric, the drop and the threshold (unless O(fail_on_drop=false)).
  - Never passes on what it could not measure; a dataset line that does not parse or lacks a field, outputs
    missing for some samples or all empty, a null output (a request that got no answer), a NaN score or a
    threshold outside 0..100 fails the task with a message that says which.
requirements:
  - rouge_score (0.1.2; it brings nltk, absl-py, numpy and six) on the host that runs the module
author:
  - tritonfleet maintainers (@tritonfleet)
extends_documentation_fragment:
  - tritonfleet.serving.attributes
  - tritonfleet.serving.attributes.info_module
options:
  dataset:
    description:
      - JSONL summarization set, one JSON object per line, holding the reference summary under
        O(reference_field). Blank lines are skipped.
      - Exactly one of O(dataset) and O(references) is required.
    type: path
  reference_field:
    description:
      - Field of each O(dataset) line that holds the reference summary (cnn_dailymail calls it
        V(highlights), one sentence per line).
    type: str
    default: highlights
  references:
    description:
      - The reference summaries themselves, in the order of the outputs, instead of O(dataset).
    type: list
    elements: str
  max_samples:
    description:
      - Use only the first this many samples of O(dataset) and of output files. The outputs must still cover
        every sample used.
    type: int
  candidate_outputs:
    description:
      - The candidate's summaries, one per sample, in the dataset's order.
      - Exactly one of O(candidate_outputs) and O(candidate_file) is required.
    type: list
    elements: raw
  candidate_file:
    description:
      - JSONL file of the candidate's summaries, one object per line with the text under O(output_field).
    type: path
  reference_outputs:
    description:
      - The reference model's summaries, one per sample, in the dataset's order.
      - Exactly one of O(reference_outputs), O(reference_file) and O(reference_scores) is required.
    type: list
    elements: raw
  reference_file:
    description:
      - JSONL file of the reference model's summaries, as O(candidate_file).
    type: path
  reference_scores:
    description:
      - The reference model's scores measured earlier (the V(reference) entry of RV(scores) of an earlier run), instead of its
        summaries, so the reference model need not run again for every engine.
      - "A dict of points (0..100) for each of V(rouge1), V(rouge2), V(rougeL) and V(rougeLsum). Only valid
        when measured on the same samples, with the same O(aggregation), O(use_stemmer) and generation settings."
      - Exactly one of O(reference_outputs), O(reference_file) and O(reference_scores) is required.
      - Cannot be combined with O(min_agreement), which needs the reference model's summaries.
    type: dict
  output_field:
    description:
      - Field of each line of O(candidate_file) and O(reference_file) that holds the summary.
    type: str
    default: output
  threshold:
    description:
      - Largest drop, in ROUGE points (0 to 100), that a gated metric of the candidate may show against the
        reference's. A drop is the reference's score minus the candidate's.
    type: float
    required: true
  metrics:
    description:
      - The metrics the gate decides on. All four are always scored and returned.
    type: list
    elements: str
    choices: [rouge1, rouge2, rougeL, rougeLsum]
    default: [rouge1, rouge2, rougeL, rougeLsum]
  aggregation:
    description:
      - V(bootstrap) is C(rouge_score)'s bootstrap aggregate with numpy seeded as C(summarize.py) seeds it,
        which gives C(summarize.py)'s figures; V(mean) is the plain mean of the per-sample F-measures.
    type: str
    choices: [bootstrap, mean]
    default: bootstrap
  use_stemmer:
    description:
      - Stem words with the Porter stemmer before matching. C(summarize.py) does not.
    type: bool
    default: false
  min_agreement:
    description:
      - When set, also score the candidate's summaries against the reference model's own summaries, and fail
        when a gated metric of that agreement is below this many points.
      - With greedy decoding a faithful engine reproduces the reference model's text (100 points), whatever
        the model's quality; this catches a degraded engine even on a test model whose summaries score near
        zero against human ones.
    type: float
  fail_on_drop:
    description:
      - Fail the task when the gate does not pass. With V(false) the result (RV(passed), RV(msg)) is returned
        for a later task to store and act on. Errors that leave nothing measured fail the task either way.
    type: bool
    default: true
"""

EXAMPLES = r"""
- name: Gate the served engine against the reference model on the collection's sample set
  tritonfleet.serving.rouge_gate:
    dataset: "{{ role_path }}/files/summarize_sample.jsonl"
    candidate_file: /var/lib/tritonfleet/evaluate/engine_outputs.jsonl
    reference_file: /var/lib/tritonfleet/evaluate/hf_outputs.jsonl
    threshold: 2.5

- name: Gate a rebuilt engine against the reference scores stored by an earlier run
  tritonfleet.serving.rouge_gate:
    dataset: "{{ role_path }}/files/summarize_sample.jsonl"
    candidate_file: /var/lib/tritonfleet/evaluate/engine_outputs.jsonl
    reference_scores: "{{ stored_report.scores.reference }}"
    threshold: 2.5

- name: Gate on rougeLsum only, keep the result for the report, and decide later
  tritonfleet.serving.rouge_gate:
    references: "{{ samples | map(attribute='highlights') }}"
    candidate_outputs: "{{ engine_answers }}"
    reference_outputs: "{{ hf_answers }}"
    metrics: [rougeLsum]
    threshold: 2.5
    min_agreement: 99
    fail_on_drop: false
  register: gate
"""

RETURN = r"""
passed:
  description: Whether the gate passed (no gated metric dropped more than the threshold, and the agreement, when
    asked for, reached O(min_agreement)).
  returned: success
  type: bool
samples:
  description: Number of samples scored.
  returned: success
  type: int
  sample: 24
scores:
  description: Points (0..100) of every metric, for V(candidate) and V(reference).
  returned: success
  type: dict
  sample: {candidate: {rouge1: 30.1, rouge2: 10.2, rougeL: 22.3, rougeLsum: 24.09},
           reference: {rouge1: 29.8, rouge2: 9.9, rougeL: 21.7, rougeLsum: 22.04}}
drops:
  description: Reference minus candidate, in points, for every metric; negative when the candidate scores higher.
  returned: success
  type: dict
  sample: {rouge1: -0.3, rouge2: -0.3, rougeL: -0.6, rougeLsum: -2.05}
failed_metrics:
  description: The gated metrics whose drop exceeds the threshold.
  returned: success
  type: list
  elements: str
agreement:
  description: With O(min_agreement), the candidate's summaries scored against the reference model's
    (V(scores), points, plain mean), and how many are V(identical) out of V(samples).
  returned: success and O(min_agreement) is set
  type: dict
agreement_failed_metrics:
  description: With O(min_agreement), the gated metrics whose agreement is below it.
  returned: success and O(min_agreement) is set
  type: list
  elements: str
empty_outputs:
  description: How many summaries were empty, for V(candidate) and V(reference) (all empty is an error;
    V(reference) is null with O(reference_scores)).
  returned: success
  type: dict
threshold:
  description: The threshold applied, in points.
  returned: success
  type: float
metrics:
  description: The metrics the gate decided on.
  returned: success
  type: list
  elements: str
table:
  description: The scores, drops and verdict as a fixed-width table, for logs and reports.
  returned: success
  type: str
msg:
  description: The verdict, naming every failing metric with its drop and the threshold.
  returned: always
  type: str
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.tritonfleet.serving.plugins.module_utils.rouge_gate import (
    METRICS, AGGREGATIONS, RougeGateError, format_table, read_jsonl, read_outputs, run_gate)


def _outputs(params, name, limit):
    if name == "reference" and params["reference_scores"] is not None:
        return None
    if params[name + "_file"] is not None:
        return read_outputs(params[name + "_file"], params["output_field"], limit=limit)
    outputs = params[name + "_outputs"]
    return outputs[:limit] if limit is not None else outputs


def main():
    module = AnsibleModule(
        argument_spec=dict(
            dataset=dict(type="path"),
            reference_field=dict(type="str", default="highlights"),
            references=dict(type="list", elements="str"),
            max_samples=dict(type="int"),
            # raw, not str: a null (a request that got no answer) must reach the gate as null, not as "None".
            candidate_outputs=dict(type="list", elements="raw"),
            candidate_file=dict(type="path"),
            reference_outputs=dict(type="list", elements="raw"),
            reference_file=dict(type="path"),
            reference_scores=dict(type="dict"),
            output_field=dict(type="str", default="output"),
            threshold=dict(type="float", required=True),
            metrics=dict(type="list", elements="str", choices=list(METRICS), default=list(METRICS)),
            aggregation=dict(type="str", choices=list(AGGREGATIONS), default="bootstrap"),
            use_stemmer=dict(type="bool", default=False),
            min_agreement=dict(type="float"),
            fail_on_drop=dict(type="bool", default=True),
        ),
        required_one_of=[("dataset", "references"), ("candidate_outputs", "candidate_file"),
                         ("reference_outputs", "reference_file", "reference_scores")],
        mutually_exclusive=[("dataset", "references"), ("candidate_outputs", "candidate_file"),
                            ("reference_outputs", "reference_file", "reference_scores"),
                            ("reference_scores", "min_agreement")],
        supports_check_mode=True,
    )
    params = module.params
    limit = params["max_samples"]
    try:
        if limit is not None and limit < 1:
            raise RougeGateError("max_samples must be a positive integer, got %d" % limit)
        if params["dataset"] is not None:
            references = [s[params["reference_field"]]
                          for s in read_jsonl(params["dataset"], [params["reference_field"]], limit=limit)]
        else:
            references = params["references"][:limit] if limit is not None else params["references"]
        result = run_gate(references, _outputs(params, "candidate", limit), _outputs(params, "reference", limit),
                          params["threshold"], metrics=params["metrics"], use_stemmer=params["use_stemmer"],
                          aggregation=params["aggregation"], min_agreement=params["min_agreement"],
                          reference_scores=params["reference_scores"])
    except RougeGateError as exc:
        module.fail_json(msg=str(exc))
    result["table"] = format_table(result)
    # Only reads: check mode runs the same gate and reports the same verdict.
    if not result["passed"] and params["fail_on_drop"]:
        module.fail_json(changed=False, **result)
    module.exit_json(changed=False, **result)


if __name__ == "__main__":
    main()
