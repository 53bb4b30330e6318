# Copyright: (c) 2026, tritonfleet maintainers
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Helpers shared by the repository's Python backend models.

The role copies this file into the version directory of each Python model
(preprocessing, postprocessing, tensorrt_llm_bls), next to its model.py.
"""

import os


TRUE_STRINGS = ("1", "true", "t", "yes", "y", "on")


def parse_bool(value, default=False):
    """Read a Triton string parameter as a boolean."""
    if value is None:
        return default
    text = str(value).strip().lower()
    if text == "":
        return default
    return text in TRUE_STRINGS


def model_parameters(model_config):
    """Return the string parameters of a parsed model configuration."""
    params = {}
    for key, value in (model_config.get("parameters") or {}).items():
        if isinstance(value, dict):
            params[key] = value.get("string_value", "")
        else:
            params[key] = str(value)
    return params


def load_tokenizer(tokenizer_dir, tokenizer_type="auto", trust_remote_code=True):
    """Load an HF tokenizer from a local directory, never from the network."""
    if not tokenizer_dir or not os.path.isdir(tokenizer_dir):
        raise ValueError(f"tokenizer_dir {tokenizer_dir!r} is not a directory")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    from transformers import AutoTokenizer  # imported late: heavy, and offline first

    kwargs = {"local_files_only": True, "trust_remote_code": trust_remote_code}
    if tokenizer_type == "llama":
        kwargs["legacy"] = False
    elif tokenizer_type not in ("auto", "t5", "", None):
        raise ValueError(f"unexpected tokenizer_type {tokenizer_type!r} (auto, llama or t5)")
    return AutoTokenizer.from_pretrained(tokenizer_dir, **kwargs)
