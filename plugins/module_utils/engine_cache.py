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

from ansible_collections.tritonfleet.serving.plugins.module_utils.hashing import file_sha256, tree_digest

try:
    from ansible_collections.tritonfleet.serving.plugins.module_utils import cpu_reference
except ImportError:  # pragma: no cover - only where the module_utils file is broken
    cpu_reference = None

MANIFEST = "tritonfleet-engine.json"

# The options of the modules that build or stage engines in this cache
# (documented by the tritonfleet.serving.engine_cache doc fragment).
CACHE_ARGUMENT_SPEC = dict(
    name=dict(type="str", required=True),
    cache_dir=dict(type="path", required=True),
    checkpoint_dir=dict(type="path", required=True),
    tp_size=dict(type="int", default=1),
    pp_size=dict(type="int", default=1),
    command=dict(type="list", elements="str", default=[]),
    build_args=dict(type="dict", default={}),
    key_inputs=dict(type="dict", default={}, no_log=False),
    keep=dict(type="int", default=2),
)
HASH_MEMO = ".tritonfleet-file-hashes.json"


def cache_key(inputs):
    return hashlib.sha256(json.dumps(inputs, sort_keys=True).encode()).hexdigest()


def builder_version(builder):
    """The version of a builder that runs in this process, or None.

    A different builder makes a different engine from the same inputs, so its
    version is part of the key. Only the in-process cpu_reference builder has
    a version the module can read; the version of a builder that runs in a
    container is the image and TensorRT-LLM version its caller puts in
    key_inputs.
    """
    if builder != "cpu_reference":
        return None
    if cpu_reference is None:
        raise ValueError("the cpu_reference builder could not be imported, so its version is unknown")
    # Its version is the version of the engine format it writes. No silent
    # default: a missing version would change every key without a word.
    return cpu_reference.engine_format.FORMAT_VERSION


def engine_inputs(checkpoint_sha256, builder, command, tp_size, pp_size, build_args, key_inputs):
    """Everything an engine is built from, as hashed into its key and recorded in its manifest.

    engine_build and engine_cache both key their engines with this, so one
    engine has one key whichever module built, planned or received it.
    """
    return dict(
        checkpoint_sha256=checkpoint_sha256,
        builder=builder,
        builder_version=builder_version(builder),
        # No command hashes as null, the form the keys of engine_build's
        # cpu_reference engines were made with before its default became [].
        command=list(command) if command else None,
        tp_size=tp_size,
        pp_size=pp_size,
        build_args=build_args or {},
        key_inputs=key_inputs or {},
    )


class PendingCheckpoint(Exception):
    """The checkpoint does not exist yet in check mode: an earlier task that check mode only predicted makes it."""


def engine_key(params, check_mode=False):
    """The inputs and key of the engine that a module's parameters describe: ``(inputs, key)``.

    Raises ValueError for parameters no engine can be built from, and
    PendingCheckpoint in check mode when the checkpoint is missing. Outside
    check mode the per-file hashes are memoised in the cache (see tree_digest).
    """
    if params["tp_size"] < 1 or params["pp_size"] < 1:
        raise ValueError("tp_size and pp_size must be at least 1 (got %d and %d)" % (params["tp_size"], params["pp_size"]))
    if not os.path.isdir(params["checkpoint_dir"]):
        if check_mode:
            raise PendingCheckpoint(params["checkpoint_dir"])
        raise ValueError("checkpoint_dir %s does not exist" % params["checkpoint_dir"])
    memo = None if check_mode else os.path.join(params["cache_dir"], params["name"], HASH_MEMO)
    inputs = engine_inputs(tree_digest(params["checkpoint_dir"], memo), params["builder"], params["command"],
                           params["tp_size"], params["pp_size"], params["build_args"], params["key_inputs"])
    return inputs, cache_key(inputs)


def module_engine_key(module, pending):
    """engine_key() for a module: fails it on bad parameters, and in check mode
    before the checkpoint exists ends it with ``pending``, the result that module predicts."""
    try:
        return engine_key(module.params, module.check_mode)
    except PendingCheckpoint:
        module.exit_json(**pending)
    except ValueError as exc:
        module.fail_json(msg=str(exc))


def built_manifest(key, inputs, build_seconds):
    """The manifest of an engine built on this host."""
    return dict(key=key, inputs=inputs, built_at=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                build_seconds=build_seconds, built_on=socket.gethostname())


def engine_files(engine_dir):
    """``{relative path: {size, sha256}}`` of an engine's files, its manifest excepted."""
    files = {}
    for dirpath, dirnames, filenames in os.walk(engine_dir):
        dirnames.sort()
        for name in filenames:
            full = os.path.join(dirpath, name)
            rel = os.path.relpath(full, engine_dir)
            if rel != MANIFEST:
                files[rel] = dict(size=os.path.getsize(full), sha256=file_sha256(full))
    return files


class EngineMismatch(Exception):
    pass


class EngineCache(object):
    def __init__(self, cache_dir, name):
        self.root = os.path.join(cache_dir, name)

    def path_for(self, key):
        return os.path.join(self.root, key[:16])

    def staging_for(self, key):
        """Where a build (or a copy from another host) of ``key`` is assembled before it is published."""
        return os.path.join(self.root, ".building-%s" % key[:16])

    def work_for(self, key):
        """Scratch space of a multi-step build (converted checkpoints); removed after the build."""
        return os.path.join(self.root, ".work-%s" % key[:16])

    def log_for(self, key):
        return os.path.join(self.root, "logs", "%s.log" % key[:16])

    def stage(self, key):
        """Fresh, empty staging and work directories for ``key`` (leftovers of a failed attempt are removed)."""
        for path in (self.staging_for(key), self.work_for(key)):
            shutil.rmtree(path, ignore_errors=True)
            os.makedirs(path)
        os.makedirs(os.path.dirname(self.log_for(key)), exist_ok=True)
        return self.staging_for(key), self.work_for(key)

    def discard(self, key):
        """Remove the staging and work directories of ``key``; published engines are untouched."""
        removed = []
        for path in (self.staging_for(key), self.work_for(key)):
            if os.path.exists(path):
                shutil.rmtree(path, ignore_errors=True)
                removed.append(path)
        return removed

    def commit(self, key, inputs, build_seconds=None, received_from=None):
        """Publish the staging directory of ``key`` as its engine.

        A staging directory that already holds a manifest is an engine copied
        from another host: its key must be ``key`` (it was built from the same
        inputs) and its manifest is kept, so ``built_on`` still names the host
        that built it. Otherwise the manifest of a fresh build is written.
        """
        staging = self.staging_for(key)
        if not os.path.isfile(os.path.join(staging, "config.json")):
            raise EngineMismatch("the build left no config.json in %s; it did not produce an engine" % staging)
        manifest = self.staged_manifest(key)
        if manifest is not None:
            manifest["received_from"] = received_from
            manifest["received_at"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        else:
            manifest = built_manifest(key, inputs, build_seconds)
        self._publish(staging, key, manifest)
        shutil.rmtree(self.work_for(key), ignore_errors=True)
        return manifest

    def staged_manifest(self, key):
        """The manifest of the engine staged for ``key`` when it was copied from another host, else None.

        Raises EngineMismatch when that manifest names another key (the engine
        was built from other inputs); check mode asks this too, to refuse what
        a real commit would refuse.
        """
        staging = self.staging_for(key)
        manifest_path = os.path.join(staging, MANIFEST)
        if not os.path.exists(manifest_path):
            return None
        with open(manifest_path) as handle:
            manifest = json.load(handle)
        if manifest.get("key") != key:
            raise EngineMismatch("the engine copied into %s was built for key %s, not %s; its inputs differ "
                                 "from this host's (checkpoint, arguments, image or GPU SKU)"
                                 % (staging, str(manifest.get("key"))[:16], key[:16]))
        return manifest

    def _publish(self, staging, key, manifest):
        """Write the manifest into a finished engine directory and rename it into place.

        The manifest records each file's size and sha256 (kept from the source
        when the engine was copied), so a host that receives the engine checks
        every file against it.
        """
        if not manifest.get("files"):
            manifest["files"] = engine_files(staging)
        with open(os.path.join(staging, MANIFEST), "w") as handle:
            json.dump(manifest, handle, indent=2, sort_keys=True)
        os.chmod(staging, 0o755)
        final = self.path_for(key)
        if os.path.exists(final):
            # A directory without a valid manifest is debris of an older,
            # interrupted layout (lookup() said so), or the engine being replaced.
            shutil.rmtree(final)
        os.rename(staging, final)

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
        tmp = tempfile.mkdtemp(prefix=".building-%s-" % key[:16], dir=self.root)
        started = time.time()
        try:
            build_into(tmp)
            manifest = built_manifest(key, inputs, round(time.time() - started, 3))
            self._publish(tmp, key, manifest)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        return manifest

    def prune(self, keep_key, keep, dry_run=False):
        """Remove all but the ``keep`` most recent engines (always keeping ``keep_key``).

        Returns the engine directories removed; with ``dry_run`` (check mode)
        the ones that would be, removing nothing. ``keep_key`` need not be
        published yet, so a dry run before a build predicts the real one.
        """
        if not os.path.isdir(self.root):
            return []
        entries = []
        for name in os.listdir(self.root):
            path = os.path.join(self.root, name)
            if name.startswith(".building-"):
                # Leftovers of a build killed before its cleanup ran.
                if not dry_run and time.time() - os.path.getmtime(path) > 24 * 3600:
                    shutil.rmtree(path, ignore_errors=True)
                continue
            if os.path.isdir(path) and os.path.exists(os.path.join(path, MANIFEST)):
                entries.append((os.path.getmtime(os.path.join(path, MANIFEST)), path))
        entries.sort(reverse=True)
        keep_path = self.path_for(keep_key)
        survivors = [keep_path] + [p for _unused, p in entries if p != keep_path][:max(keep - 1, 0)]
        removed = [p for _unused, p in entries if p not in survivors]
        if not dry_run:
            for path in removed:
                shutil.rmtree(path, ignore_errors=True)
        return removed
