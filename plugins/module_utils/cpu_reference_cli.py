# -*- coding: utf-8 -*-
# Copyright: (c) 2026, tritonfleet maintainers
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Command line of the CPU reference engine: the ``cpu`` mode's ``trtllm-build``.

``python cpu_reference_cli.py --generate_tiny_checkpoint DIR`` writes the tiny
test checkpoint (``cpu_tiny_checkpoint.py``); ``--checkpoint_dir C
--output_dir O`` builds an engine (``cpu_reference.py``).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import argparse
import json
import sys

# Inside Ansible these are module_utils of the collection; run as a script or
# copied beside its siblings (the molecule build image), plain imports find them.
try:
    from ansible_collections.tritonfleet.serving.plugins.module_utils.cpu_engine_format import STORAGE_DTYPES
    from ansible_collections.tritonfleet.serving.plugins.module_utils.cpu_reference import (
        CpuReferenceError, build_engine)
    from ansible_collections.tritonfleet.serving.plugins.module_utils.cpu_tiny_checkpoint import (
        generate_tiny_checkpoint)
except ImportError:
    from cpu_engine_format import STORAGE_DTYPES
    from cpu_reference import CpuReferenceError, build_engine
    from cpu_tiny_checkpoint import generate_tiny_checkpoint


def main(argv=None):
    """Command line modelled on ``trtllm-build``; prints a JSON summary on success.

    ``--generate_tiny_checkpoint DIR [--seed N]`` writes the tiny checkpoint;
    ``--checkpoint_dir C --output_dir O [...]`` builds an engine. Both may be
    given at once: the build then uses the generated checkpoint unless
    ``--checkpoint_dir`` says otherwise. Returns the exit status.
    """
    parser = argparse.ArgumentParser(
        prog="cpu_reference_cli.py",
        description="Build tritonfleet CPU reference engines (the cpu mode's trtllm-build) or generate the tiny "
                    "test checkpoint.")
    parser.add_argument("--generate_tiny_checkpoint", metavar="DIR",
                        help="write the tiny random Llama checkpoint to DIR")
    parser.add_argument("--seed", type=int, default=0, help="seed of the tiny checkpoint's weights (default 0)")
    parser.add_argument("--checkpoint_dir", help="Hugging Face checkpoint to build from")
    parser.add_argument("--output_dir", help="engine directory to write (absent or empty)")
    parser.add_argument("--tp_size", type=int, default=1)
    parser.add_argument("--pp_size", type=int, default=1)
    parser.add_argument("--dtype", default="float32", choices=list(STORAGE_DTYPES) + ["auto"])
    parser.add_argument("--max_batch_size", type=int, default=8)
    parser.add_argument("--max_input_len", type=int, default=512)
    parser.add_argument("--max_seq_len", type=int, default=1024)
    args = parser.parse_args(argv)

    if not args.generate_tiny_checkpoint and not args.output_dir:
        parser.error("give --generate_tiny_checkpoint DIR, or --checkpoint_dir and --output_dir")
    checkpoint_dir = args.checkpoint_dir or args.generate_tiny_checkpoint
    if args.output_dir and not checkpoint_dir:
        parser.error("--output_dir needs --checkpoint_dir (or --generate_tiny_checkpoint)")
    result = {}
    try:
        if args.generate_tiny_checkpoint:
            result["checkpoint"] = generate_tiny_checkpoint(args.generate_tiny_checkpoint, seed=args.seed)
        if args.output_dir:
            result["engine"] = build_engine(
                checkpoint_dir, args.output_dir, tp_size=args.tp_size, pp_size=args.pp_size, dtype=args.dtype,
                max_batch_size=args.max_batch_size, max_input_len=args.max_input_len, max_seq_len=args.max_seq_len)
    except CpuReferenceError as exc:
        sys.stderr.write("error: %s\n" % exc)
        return 1
    sys.stdout.write(json.dumps(result, indent=2, sort_keys=True) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
