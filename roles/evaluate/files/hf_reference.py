# -*- coding: utf-8 -*-
# Copyright: (c) 2026, tritonfleet maintainers
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The reference side of the ROUGE regression gate: Hugging Face transformers on the checkpoint.

Runs in the evaluate role's own virtual environment (torch, transformers),
never in the serving interpreter. Summarizes every article of a JSONL set
with greedy decoding and writes one JSON object per line, {"output": text},
in the set's order; the file appears only once every sample is done.

The prompt must be the one the served ensemble gets
(plugins/module_utils/rouge_gate.py summarize_prompt); a unit test holds the
two to the same text.
"""

import argparse
import json
import os
import sys
import time

SUMMARIZE_SUFFIX = " TL;DR: "


def summarize_prompt(article, suffix=SUMMARIZE_SUFFIX):
    return (article + suffix).strip().replace(" n't", "n't")


def read_articles(path, field, limit):
    articles = []
    with open(path, "rb") as handle:
        for number, raw in enumerate(handle, start=1):
            if limit and len(articles) >= limit:
                break
            line = raw.decode("utf-8")
            if not line.strip():
                continue
            record = json.loads(line)
            if not isinstance(record, dict) or not isinstance(record.get(field), str):
                raise SystemExit("%s line %d has no string field %r" % (path, number, field))
            articles.append(record[field])
    if not articles:
        raise SystemExit("%s holds no samples" % path)
    return articles


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", required=True, help="Hugging Face checkpoint directory")
    parser.add_argument("--dataset", required=True, help="JSONL summarization set")
    parser.add_argument("--input-field", default="article")
    parser.add_argument("--max-samples", type=int, default=0, help="0: every sample")
    parser.add_argument("--max-new-tokens", type=int, required=True)
    parser.add_argument("--min-length", type=int, default=1,
                        help="fewest new tokens, as the engine's min_length (its default is 1, transformers' 0)")
    parser.add_argument("--dtype", default="float32", choices=["float32", "float16", "bfloat16"])
    parser.add_argument("--output", required=True, help="JSONL file to write")
    return parser.parse_args(argv)


def strip_eos(ids, eos_ids):
    """The generated ids without the end token(s) that finished them."""
    while ids and ids[-1] in eos_ids:
        ids = ids[:-1]
    return ids


def main(argv=None):
    args = parse_args(argv)
    # The checkpoint is local: never reach for the Hub.
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    articles = read_articles(args.dataset, args.input_field, args.max_samples)
    started = time.monotonic()
    tokenizer = AutoTokenizer.from_pretrained(args.checkpoint)
    # dtype= is transformers 5's name (torch_dtype= is the old one).
    model = AutoModelForCausalLM.from_pretrained(args.checkpoint, dtype=getattr(torch, args.dtype)).eval()
    config = model.generation_config
    eos = config.eos_token_id if config.eos_token_id is not None else model.config.eos_token_id
    eos_ids = set(eos if isinstance(eos, (list, tuple)) else [eos]) - {None}
    pad = config.pad_token_id if config.pad_token_id is not None else (sorted(eos_ids) or [None])[0]
    first_eos = (sorted(eos_ids) or [None])[0]
    lines = []
    for index, article in enumerate(articles):
        # add_special_tokens as the served preprocessing and summarize.py encode.
        ids = tokenizer.encode(summarize_prompt(article), add_special_tokens=True)
        with torch.no_grad():
            # max_new_tokens only: the checkpoint's generation config may also set max_length.
            sequence = model.generate(torch.tensor([ids]), max_new_tokens=args.max_new_tokens,
                                      min_new_tokens=args.min_length, do_sample=False,
                                      eos_token_id=first_eos, pad_token_id=pad)[0, len(ids):].tolist()
        text = tokenizer.decode(strip_eos(sequence, eos_ids), skip_special_tokens=True)
        lines.append(json.dumps({"output": text, "tokens": len(sequence)}))
        print("sample %d/%d: %d prompt tokens, %d new" % (index + 1, len(articles), len(ids), len(sequence)), flush=True)
    partial = args.output + ".partial"
    with open(partial, "w", encoding="utf-8") as handle:
        handle.write("\n".join(lines) + "\n")
    os.replace(partial, args.output)
    print(json.dumps({"samples": len(lines), "seconds": round(time.monotonic() - started, 3),
                      "torch": torch.__version__, "output": args.output}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
