# -*- coding: utf-8 -*-
# Copyright: (c) 2026, tritonfleet maintainers
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Content hashes of files and directory trees (engine cache keys, service fingerprints)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import hashlib
import json
import os


def file_sha256(path):
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(4 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def tree_digest(root, memo_path=None):
    """sha256 over relative paths and contents of every file under ``root``.

    Checkpoints are many GB; per-file hashes are memoised by (size, mtime) in
    ``memo_path`` so an unchanged checkpoint is not re-read on every run.
    """
    memo = {}
    if memo_path and os.path.exists(memo_path):
        try:
            with open(memo_path) as handle:
                memo = json.load(handle)
        except (OSError, ValueError):
            memo = {}
    fresh = {}
    digest = hashlib.sha256()
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith(".") and d != "__pycache__")
        for name in sorted(filenames):
            full = os.path.join(dirpath, name)
            stat = os.stat(full)
            stamp = "%d:%d" % (stat.st_size, stat.st_mtime_ns)
            cached = memo.get(full)
            file_hash = cached[1] if cached and cached[0] == stamp else file_sha256(full)
            fresh[full] = [stamp, file_hash]
            digest.update(os.path.relpath(full, root).encode() + b"\0" + file_hash.encode() + b"\n")
    if memo_path and fresh != {k: memo.get(k) for k in fresh}:
        os.makedirs(os.path.dirname(memo_path), exist_ok=True)
        memo.update(fresh)
        # Several processes (forks delegated to the controller) may update one memo at once.
        tmp = "%s.%d.tmp" % (memo_path, os.getpid())
        with open(tmp, "w") as handle:
            json.dump(memo, handle)
        os.replace(tmp, memo_path)
    return digest.hexdigest()
