# -*- coding: utf-8 -*-
# Copyright: (c) 2026, tritonfleet maintainers
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Docker's daemon.json as data: parse it, merge wanted keys into it, render it.

Nothing here touches the file system except read_daemon_config(); the
docker_daemon_config module decides whether and how to write.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import copy
import errno
import json

# What `nvidia-ctk runtime configure --runtime=docker` writes under "runtimes".
NVIDIA_RUNTIME_NAME = "nvidia"
NVIDIA_RUNTIME_PATH = "nvidia-container-runtime"

# Runtimes dockerd knows without a "runtimes" entry.
BUILTIN_RUNTIMES = ("runc", "io.containerd.runc.v2")


class DaemonConfigError(Exception):
    """daemon.json cannot be read or does not hold a JSON object."""


def read_daemon_config(path):
    """Return (config, text) of the file at path.

    A missing file, or one holding only whitespace, is an empty configuration
    with text None. Invalid JSON or a top-level value that is not an object
    raises DaemonConfigError naming the file.
    """
    try:
        with open(path, "rb") as handle:
            raw = handle.read()
    except (IOError, OSError) as exc:
        if exc.errno == errno.ENOENT:
            return {}, None
        raise DaemonConfigError("cannot read %s: %s" % (path, exc))
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise DaemonConfigError("%s is not UTF-8 text: %s" % (path, exc))
    if not text.strip():
        return {}, text
    try:
        config = json.loads(text)
    except ValueError as exc:
        raise DaemonConfigError("%s is not valid JSON (%s); fix or remove it, it was left unchanged" % (path, exc))
    if not isinstance(config, dict):
        raise DaemonConfigError("%s must hold a JSON object, found a JSON %s; it was left unchanged"
                                % (path, type(config).__name__))
    return config, text


def deep_merge(base, wanted):
    """Return a copy of base with wanted merged in.

    Objects merge key by key, recursively; any other value (string, number,
    list) replaces what base has. A wanted value of None removes the key.
    Keys of base that wanted does not name are kept, in their order.
    """
    merged = copy.deepcopy(base)
    for key, value in wanted.items():
        if value is None:
            merged.pop(key, None)
        elif isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def nvidia_runtime_settings(runtime_path=NVIDIA_RUNTIME_PATH):
    """The "runtimes" entry nvidia-ctk writes for Docker, as settings to merge."""
    return {"runtimes": {NVIDIA_RUNTIME_NAME: {"path": runtime_path, "args": []}}}


def desired_config(current, settings=None, nvidia_runtime=False, runtime_path=NVIDIA_RUNTIME_PATH,
                   default_runtime=None):
    """Return the configuration current should become.

    settings are merged first, then the nvidia runtime entry (when asked for),
    then "default-runtime". Raises DaemonConfigError when default_runtime names
    a runtime the result does not define, since dockerd would not start.
    """
    config = deep_merge(current, settings or {})
    if nvidia_runtime:
        config = deep_merge(config, nvidia_runtime_settings(runtime_path))
    if default_runtime:
        runtimes = config.get("runtimes")
        known = list(BUILTIN_RUNTIMES) + (sorted(runtimes) if isinstance(runtimes, dict) else [])
        if default_runtime not in known:
            raise DaemonConfigError(
                "default-runtime %r is not a runtime dockerd would know (known: %s); "
                "define it under runtimes or set nvidia_runtime=true" % (default_runtime, ", ".join(known)))
        config["default-runtime"] = default_runtime
    return config


def same_config(first, second):
    """Equal as JSON: unlike ==, true and 1 differ (dockerd rejects a number for a boolean)."""
    return json.dumps(first, sort_keys=True) == json.dumps(second, sort_keys=True)


def render(config):
    """daemon.json text: four-space indent like nvidia-ctk and dockerd's docs, key order kept."""
    return json.dumps(config, indent=4, separators=(",", ": "), ensure_ascii=False) + "\n"
