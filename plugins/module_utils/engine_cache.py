# -*- coding: utf-8 -*-
# Copyright: (c) 2026, tritonfleet maintainers
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Content-addressed engine cache.

An engine directory is named after a hash of everything that went into it
(checkpoint contents, builder, build arguments, parallelism, image, GPU SKU).
A build whose key already exists is skipped; a new build is written to a
temporary sibling and renamed into place only when it finished, so a failed
or interrupted build never replaces or corrupts a good engine.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import hashlib
import json
import os
import shutil
import socket
import tempfile
import time

MANIFEST = "tritonfleet-engine.json"
HASH_MEMO = ".tritonfleet-file-hashes.json"


def cache_key(inputs):
    return hashlib.sha256(json.dumps(inputs, sort_keys=True).encode()).hexdigest()


class EngineCache(object):
    def __init__(self, cache_dir, name):
        self.root = os.path.join(cache_dir, name)

    def path_for(self, key):
        return os.path.join(self.root, key[:16])

    def lookup(self, key):
        """The manifest of a complete engine for ``key``, or None."""
        try:
            with open(os.path.join(self.path_for(key), MANIFEST)) as handle:
                manifest = json.load(handle)
        except (OSError, ValueError):
            return None
        return manifest if manifest.get("key") == key else None

    def build(self, key, inputs, build_into):
        """Run ``build_into(tmp_dir)`` and publish the result under ``key``."""
        os.makedirs(self.root, exist_ok=True)
        final = self.path_for(key)
        tmp = tempfile.mkdtemp(prefix=".building-%s-" % key[:16], dir=self.root)
        started = time.time()
        try:
            build_into(tmp)
            manifest = dict(key=key, inputs=inputs, built_at=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                            build_seconds=round(time.time() - started, 3), built_on=socket.gethostname())
            with open(os.path.join(tmp, MANIFEST), "w") as handle:
                json.dump(manifest, handle, indent=2, sort_keys=True)
            os.chmod(tmp, 0o755)
            if os.path.exists(final):
                # A directory without a valid manifest is debris of an older,
                # interrupted layout; the manifest check in lookup() said so.
                shutil.rmtree(final)
            os.rename(tmp, final)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        return manifest

    def prune(self, keep_key, keep):
        """Remove all but the ``keep`` most recent engines (always keeping ``keep_key``)."""
        if not os.path.isdir(self.root):
            return []
        entries = []
        for name in os.listdir(self.root):
            path = os.path.join(self.root, name)
            if name.startswith(".building-"):
                # Leftovers of a build killed before its cleanup ran.
                if time.time() - os.path.getmtime(path) > 24 * 3600:
                    shutil.rmtree(path, ignore_errors=True)
                continue
            if os.path.isdir(path) and os.path.exists(os.path.join(path, MANIFEST)):
                entries.append((os.path.getmtime(os.path.join(path, MANIFEST)), path))
        entries.sort(reverse=True)
        keep_path = self.path_for(keep_key)
        survivors = [keep_path] + [p for _unused, p in entries if p != keep_path][:max(keep - 1, 0)]
        removed = [p for _unused, p in entries if p not in survivors]
        for path in removed:
            shutil.rmtree(path, ignore_errors=True)
        return removed
