# -*- coding: utf-8 -*-
# Copyright: (c) 2026, tritonfleet maintainers
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Whether a host's apt package lists can serve an install.

``cache_valid_time`` alone trusts the lists' age. A freshly built image or a
freshly provisioned cloud host has young lists that are empty or were read from
other sources than the ones it has now, so an install right after it fails with
"No package matching". The lists are judged instead by what they hold:

- lists exist at all;
- the sources are the ones the lists were last read from (a digest of the
  sources' contents, recorded after each update, not a time stamp: apt gives
  list files the archive's own dates);
- every package to install is installed or has an install candidate.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import glob
import hashlib
import os

SOURCE_PATTERNS = ("*.list", "*.sources")
# Files apt keeps in its lists directory that are not package lists.
NOT_LISTS = ("lock", "partial", "auxfiles")


def source_files(sources_list, sources_parts):
    """The sources files apt reads, in apt's order (the main file, then the parts sorted)."""
    files = [sources_list] if os.path.isfile(sources_list) else []
    parts = []
    for pattern in SOURCE_PATTERNS:
        parts.extend(glob.glob(os.path.join(sources_parts, pattern)))
    return files + sorted(parts)


def sources_digest(files):
    """sha256 over the names and contents of the sources files."""
    digest = hashlib.sha256()
    for path in files:
        with open(path, "rb") as handle:
            content = handle.read()
        digest.update(("%s\0%d\0" % (path, len(content))).encode())
        digest.update(content)
    return digest.hexdigest()


def package_lists(lists_dir):
    """The package index files in apt's lists directory (``*_Packages``, possibly compressed)."""
    if not os.path.isdir(lists_dir):
        return []
    return sorted(name for name in os.listdir(lists_dir)
                  if name not in NOT_LISTS and "_Packages" in name)


def parse_policy(text):
    """``apt-cache policy PKG...`` output -> {package: (installed, candidate)}; None for ``(none)``.

    apt prints nothing for a package it does not know at all.
    """
    result = {}
    package = None
    installed = candidate = None
    for line in text.splitlines():
        if line and not line[0].isspace() and line.rstrip().endswith(":"):
            if package is not None:
                result[package] = (installed, candidate)
            package = line.rstrip()[:-1]
            installed = candidate = None
            continue
        stripped = line.strip()
        for field in ("Installed:", "Candidate:"):
            if stripped.startswith(field):
                value = stripped[len(field):].strip()
                value = None if value in ("", "(none)") else value
                if field == "Installed:":
                    installed = value
                else:
                    candidate = value
    if package is not None:
        result[package] = (installed, candidate)
    return result


def unservable(packages, policy):
    """The packages that are neither installed nor installable from the current lists."""
    missing = []
    for name in packages:
        installed, candidate = policy.get(name, (None, None))
        if installed is None and candidate is None:
            missing.append(name)
    return missing


def update_reasons(lists, digest, recorded_digest, missing):
    """Why the lists must be read again; empty when they can serve the install."""
    reasons = []
    if not lists:
        reasons.append("the host has no package lists")
    if recorded_digest is None:
        reasons.append("no record of the sources the lists were read from")
    elif recorded_digest != digest:
        reasons.append("the sources changed since the lists were last read")
    if lists and missing:
        reasons.append("no install candidate for %s" % ", ".join(missing))
    return reasons
