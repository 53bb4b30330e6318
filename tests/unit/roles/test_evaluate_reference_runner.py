# -*- coding: utf-8 -*-
# Copyright: (c) 2026, tritonfleet maintainers
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""roles/evaluate/files/hf_reference.py without torch: the reference model must get the served ensemble's prompts."""

import importlib.util
import json
import pathlib

import pytest

from ansible_collections.tritonfleet.serving.plugins.module_utils.rouge_gate import summarize_prompt

FILES = pathlib.Path(__file__).resolve().parents[3] / "roles" / "evaluate" / "files"


@pytest.fixture(scope="module")
def runner():
    spec = importlib.util.spec_from_file_location("hf_reference", FILES / "hf_reference.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # torch and transformers are imported in main() only
    return module


def test_prompts_are_the_ones_the_ensemble_gets(runner):
    articles = runner.read_articles(str(FILES / "summarize_sample.jsonl"), "article", 0)
    samples = [json.loads(line) for line in (FILES / "summarize_sample.jsonl").read_text().splitlines() if line.strip()]
    assert articles == [s["article"] for s in samples]
    tricky = ["He did n't say.  ", "  plain", "can n't won n't"]
    for article in articles + tricky:
        assert runner.summarize_prompt(article) == summarize_prompt(article)


def test_max_samples_and_bad_lines(runner, tmp_path):
    assert len(runner.read_articles(str(FILES / "summarize_sample.jsonl"), "article", 5)) == 5
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"article": "a"}\n\n{"text": "b"}\n')
    with pytest.raises(SystemExit, match="line 3 has no string field 'article'"):
        runner.read_articles(str(bad), "article", 0)


def test_end_tokens_are_cut_before_decoding(runner):
    assert runner.strip_eos([5, 6, 2], {2}) == [5, 6]
    assert runner.strip_eos([5, 6], {2}) == [5, 6]
    assert runner.strip_eos([2], {2}) == []


def test_requirements_are_pinned():
    lines = [line for line in (FILES / "reference-requirements.txt").read_text().splitlines()
             if line.strip() and not line.startswith("#")]
    assert lines == ["torch==2.14.1", "transformers==5.24.0", "tokenizers==0.23.3", "safetensors==0.8.0",
                     "numpy==1.26.4"]
