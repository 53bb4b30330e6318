# -*- coding: utf-8 -*-
# Copyright: (c) 2026, tritonfleet maintainers
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Make a directory tree match a desired set of files, directories and removals in one pass.

The model_repository module's logic: ``plan()`` compares what is on disk with what is
wanted (sha256 of the contents, mode, owner) and returns the actions; ``apply()`` carries
them out, each file written atomically (temporary file beside it, then rename).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import base64
import hashlib
import os
import re
import shutil
import stat
import tempfile

from ansible_collections.tritonfleet.serving.plugins.module_utils.hashing import file_sha256

VERSION_DIR_RE = re.compile(r"^[0-9]+$")
# Text diffs are given for files up to this size; larger or binary ones are named only.
DIFF_MAX_BYTES = 256 * 1024


class RepositoryError(Exception):
    pass


def sha256_bytes(data):
    return hashlib.sha256(data).hexdigest()


def relative_path(rel):
    """``rel`` normalised; fails when it is absolute or leaves the tree."""
    if rel is None or rel == "":
        raise RepositoryError("an empty relative path was given")
    if os.path.isabs(rel):
        raise RepositoryError("%s is not a relative path" % rel)
    norm = os.path.normpath(rel)
    if norm == "." or norm == ".." or norm.startswith(".." + os.sep):
        raise RepositoryError("%s leaves the repository directory" % rel)
    return norm


def parents(rel):
    """The relative parent directories of ``rel``, outermost first."""
    found = []
    head = os.path.dirname(rel)
    while head:
        found.append(head)
        head = os.path.dirname(head)
    return list(reversed(found))


def octal_mode(mode):
    """An int mode from an int or an octal string; None for a symbolic mode (resolved per path)."""
    if mode is None:
        return None
    if isinstance(mode, int):
        return mode & 0o7777
    text = str(mode).strip()
    if re.match(r"^0?o?[0-7]{1,4}$", text):
        return int(text.replace("o", ""), 8) & 0o7777
    return None


def as_text(data):
    """``data`` (bytes) as text for a diff, or None when it is binary or too large."""
    if len(data) > DIFF_MAX_BYTES or b"\0" in data:
        return None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return None


class Desired(object):
    """What the tree should hold, with the defaults of every entry."""

    def __init__(self, root, files=None, directories=None, absent=None, prune_versions=None, keep_versions=None,
                 owner=None, group=None, file_mode=None, dir_mode=None):
        self.root = root
        self.uid = owner
        self.gid = group
        self.file_mode = file_mode
        self.dir_mode = dir_mode
        self.files = []
        seen = set()
        for entry in files or []:
            rel = relative_path(entry["path"])
            if rel in seen:
                raise RepositoryError("%s is listed twice in files" % rel)
            seen.add(rel)
            content = entry.get("content")
            if entry.get("content_base64") is not None:
                try:
                    data = base64.b64decode(entry["content_base64"], validate=True)
                except (TypeError, ValueError) as exc:
                    raise RepositoryError("%s: content_base64 is not base64 (%s)" % (rel, exc))
            elif content is None:
                data = b""
            else:
                data = content if isinstance(content, bytes) else content.encode("utf-8", "surrogateescape")
            mode = entry.get("mode")
            self.files.append({"path": rel, "data": data, "mode": file_mode if mode is None else mode})
        self.directories = []
        for rel in list(directories or []) + [d for f in self.files for d in parents(f["path"])]:
            rel = relative_path(rel)
            for each in parents(rel) + [rel]:
                if each not in self.directories:
                    self.directories.append(each)
        for rel in self.directories:
            if rel in seen:
                raise RepositoryError("%s is both a file and a directory" % rel)
        self.absent = []
        for rel in absent or []:
            rel = relative_path(rel)
            if rel in seen or rel in self.directories:
                raise RepositoryError("%s is both wanted and listed in absent" % rel)
            if rel not in self.absent:
                self.absent.append(rel)
        self.prune_versions = [relative_path(rel) for rel in prune_versions or []]
        self.keep_versions = set(str(v) for v in keep_versions or [])


def _attributes_differ(st, mode, uid, gid):
    problems = []
    if mode is not None and stat.S_IMODE(st.st_mode) != mode:
        problems.append(("mode", "%04o" % stat.S_IMODE(st.st_mode), "%04o" % mode))
    if uid is not None and st.st_uid != uid:
        problems.append(("owner", st.st_uid, uid))
    if gid is not None and st.st_gid != gid:
        problems.append(("group", st.st_gid, gid))
    return problems


def plan(desired, resolve_mode=None):
    """The actions that make the tree match ``desired``; nothing is changed.

    ``resolve_mode(current_mode, mode, is_dir)`` turns a symbolic mode into an int (octal ones
    need no resolver). Returns a dict: ``remove`` (relative paths), ``mkdir`` and ``write`` (entries
    with the resolved mode and, for writes, the old bytes or None), ``attributes`` (existing
    paths whose mode or owner differ) and ``diff`` (before/after entries).
    """
    root = desired.root
    actions = {"remove": [], "mkdir": [], "write": [], "attributes": [], "diff": []}

    def resolve(mode, current, is_dir):
        number = octal_mode(mode)
        if number is not None or mode is None:
            return number
        if resolve_mode is None:
            raise RepositoryError("cannot resolve the symbolic mode %s" % mode)
        return resolve_mode(current, mode, is_dir)

    def lstat(path):
        try:
            return os.lstat(path)
        except OSError:
            return None

    root_st = lstat(root)
    if root_st is not None and not stat.S_ISDIR(root_st.st_mode):
        raise RepositoryError("%s exists and is not a directory" % root)
    root_mode = resolve(desired.dir_mode, root_st.st_mode if root_st else None, True)
    if root_st is None:
        actions["mkdir"].append({"path": ".", "mode": root_mode})
        actions["diff"].append({"before_header": root, "after_header": root, "before": "", "after": "directory\n"})
    elif _attributes_differ(root_st, root_mode, desired.uid, desired.gid):
        actions["attributes"].append({"path": ".", "mode": root_mode, "is_dir": True})
        actions["diff"].append(_attribute_diff(root, root_st, root_mode, desired))

    removed = set()

    def gone(rel):
        return any(rel == r or rel.startswith(r + os.sep) for r in removed)

    for rel in desired.absent:
        if not gone(rel) and lstat(os.path.join(root, rel)) is not None:
            actions["remove"].append(rel)
            removed.add(rel)
    for model in desired.prune_versions:
        model_dir = os.path.join(root, model)
        if not os.path.isdir(model_dir) or gone(model):
            continue
        for name in sorted(os.listdir(model_dir)):
            rel = os.path.join(model, name)
            if (VERSION_DIR_RE.match(name) and name not in desired.keep_versions and not gone(rel)
                    and os.path.isdir(os.path.join(model_dir, name)) and not os.path.islink(os.path.join(model_dir, name))):
                actions["remove"].append(rel)
                removed.add(rel)
    for rel in actions["remove"]:
        actions["diff"].append({"before_header": os.path.join(root, rel), "after_header": os.path.join(root, rel),
                                "before": "present\n", "after": "absent\n"})

    for rel in desired.directories:
        path = os.path.join(root, rel)
        st = None if gone(rel) else lstat(path)
        if st is not None and not stat.S_ISDIR(st.st_mode):
            raise RepositoryError("%s exists and is not a directory" % path)
        mode = resolve(desired.dir_mode, st.st_mode if st else None, True)
        if st is None:
            actions["mkdir"].append({"path": rel, "mode": mode})
            actions["diff"].append({"before_header": path, "after_header": path, "before": "", "after": "directory\n"})
        elif _attributes_differ(st, mode, desired.uid, desired.gid):
            actions["attributes"].append({"path": rel, "mode": mode, "is_dir": True})
            actions["diff"].append(_attribute_diff(path, st, mode, desired))

    for entry in desired.files:
        rel = entry["path"]
        path = os.path.join(root, rel)
        st = None if gone(rel) else lstat(path)
        if st is not None and stat.S_ISDIR(st.st_mode):
            raise RepositoryError("%s is a directory, a file is wanted there" % path)
        current_mode = st.st_mode if st is not None and stat.S_ISREG(st.st_mode) else None
        mode = resolve(entry["mode"], current_mode, False)
        old = None
        if st is not None and stat.S_ISREG(st.st_mode):
            if st.st_size == len(entry["data"]) and file_sha256(path) == sha256_bytes(entry["data"]):
                if _attributes_differ(st, mode, desired.uid, desired.gid):
                    actions["attributes"].append({"path": rel, "mode": mode, "is_dir": False})
                    actions["diff"].append(_attribute_diff(path, st, mode, desired))
                continue
            with open(path, "rb") as handle:
                old = handle.read()
        actions["write"].append({"path": rel, "mode": mode, "data": entry["data"]})
        before = "" if old is None else as_text(old)
        after = as_text(entry["data"])
        if before is None or after is None:
            before, after = ("" if old is None else "(binary or large file)\n"), "(binary or large file, %d bytes)\n" % len(entry["data"])
        actions["diff"].append({"before_header": path, "after_header": path, "before": before, "after": after})
    return actions


def _attribute_diff(path, st, mode, desired):
    before, after = [], []
    for what, old, new in _attributes_differ(st, mode, desired.uid, desired.gid):
        before.append("%s: %s\n" % (what, old))
        after.append("%s: %s\n" % (what, new))
    return {"before_header": path + " (attributes)", "after_header": path + " (attributes)",
            "before": "".join(before), "after": "".join(after)}


def changed(actions):
    return any(actions[key] for key in ("remove", "mkdir", "write", "attributes"))


def _set_attributes(path, mode, uid, gid, fd=None):
    if uid is not None or gid is not None:
        uid_arg = -1 if uid is None else uid
        gid_arg = -1 if gid is None else gid
        if fd is not None:
            os.fchown(fd, uid_arg, gid_arg)
        else:
            os.lchown(path, uid_arg, gid_arg)
    if mode is not None:
        if fd is not None:
            os.fchmod(fd, mode)
        else:
            os.chmod(path, mode)


def _remove(path):
    if not os.path.lexists(path):
        return
    if os.path.isdir(path) and not os.path.islink(path):
        shutil.rmtree(path)
    else:
        os.unlink(path)


def write_atomically(path, data, mode, uid=None, gid=None):
    """Write ``data`` to a temporary file beside ``path``, set its attributes, then rename it over ``path``."""
    directory = os.path.dirname(path)
    fd, tmp = tempfile.mkstemp(dir=directory, prefix="." + os.path.basename(path) + ".")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
            if mode is None:
                mode = 0o666 & ~_umask()
            _set_attributes(tmp, mode, uid, gid, fd=handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.lexists(tmp):
            os.unlink(tmp)
        raise


def _umask():
    current = os.umask(0)
    os.umask(current)
    return current


def apply(desired, actions):
    """Carry out ``actions`` (from plan()); returns the relative paths written, created and removed."""
    root = desired.root
    for rel in actions["remove"]:
        _remove(os.path.join(root, rel))
    created = []
    for entry in actions["mkdir"]:
        path = root if entry["path"] == "." else os.path.join(root, entry["path"])
        if entry["path"] == ".":
            os.makedirs(path)
        else:
            os.mkdir(path)
        _set_attributes(path, entry["mode"], desired.uid, desired.gid)
        created.append(entry["path"])
    for entry in actions["attributes"]:
        path = root if entry["path"] == "." else os.path.join(root, entry["path"])
        _set_attributes(path, entry["mode"], desired.uid, desired.gid)
    written = []
    for entry in actions["write"]:
        write_atomically(os.path.join(root, entry["path"]), entry["data"], entry["mode"], desired.uid, desired.gid)
        written.append(entry["path"])
    return {"written": written, "created_directories": created, "removed": list(actions["remove"]),
            "attributes_set": [entry["path"] for entry in actions["attributes"]]}


def summary(actions):
    """What apply() would return, for check mode."""
    return {"written": [e["path"] for e in actions["write"]], "created_directories": [e["path"] for e in actions["mkdir"]],
            "removed": list(actions["remove"]), "attributes_set": [e["path"] for e in actions["attributes"]]}
