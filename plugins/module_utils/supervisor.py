# -*- coding: utf-8 -*-
# Copyright: (c) 2026, tritonfleet maintainers
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""A small pid-file supervisor for hosts without systemd (and the local default).

A service is described by its argv, environment and working directory plus a
fingerprint of files it reads at start (a Triton model repository). The
description is hashed; the hash is stored next to the pid file, so a later
run can tell "running as desired" from "running with an old configuration"
without restarting anything that is already right.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import hashlib
import json
import os
import signal
import socket
import subprocess
import time

from ansible_collections.tritonfleet.serving.plugins.module_utils.hashing import file_sha256, tree_digest
from ansible_collections.tritonfleet.serving.plugins.module_utils.processes import process_running, tail_file

LOG_ROTATE_BYTES = 50 * 1024 * 1024


class SupervisorError(Exception):
    """A service could not be brought to the requested state."""


def fingerprint_paths(paths):
    """Hash the contents of the files and directory trees in ``paths``.

    Model repositories hold small text files (config.pbtxt, model.py), so
    hashing content is cheap and catches edits made outside Ansible too.
    Engines are referenced by a path that already contains their cache key.
    """
    digest = hashlib.sha256()
    for path in sorted(paths or []):
        if os.path.isdir(path):
            content = tree_digest(path)
        elif os.path.isfile(path):
            content = file_sha256(path)
        else:
            content = "missing"
        digest.update(("%s=%s\n" % (path, content)).encode())
    return digest.hexdigest()


def spec_digest(spec):
    return hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()


def _read_json(path):
    try:
        with open(path) as handle:
            return json.load(handle)
    except (OSError, ValueError):
        return None


def process_cmdline(pid):
    try:
        with open("/proc/%d/cmdline" % pid, "rb") as handle:
            raw = handle.read()
    except OSError:
        return None
    return [part.decode(errors="replace") for part in raw.split(b"\0") if part]


def mapped_shm_regions(pid):
    """Files under /dev/shm that process ``pid`` has mapped."""
    try:
        with open("/proc/%d/maps" % pid) as handle:
            lines = handle.read().splitlines()
    except OSError:
        return []
    regions = set()
    for line in lines:
        fields = line.split(None, 5)
        if len(fields) == 6 and fields[5].startswith("/dev/shm/"):
            regions.add(fields[5].replace(" (deleted)", ""))
    return sorted(regions)


def port_in_use(port, host="0.0.0.0"):
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
    except OSError:
        return True
    finally:
        sock.close()
    return False


def tail(path, lines=40):
    """The last lines of a log for a failure message; none when the log is missing."""
    try:
        return tail_file(path, lines)
    except (IOError, OSError):
        return []


class Service(object):
    def __init__(self, name, run_dir):
        self.name = name
        self.pid_file = os.path.join(run_dir, name + ".pid")
        self.state_file = os.path.join(run_dir, name + ".json")

    def recorded(self):
        """The state written at the last start, or None."""
        return _read_json(self.state_file)

    def running_pid(self):
        """Pid of the live process this service started, or None.

        A pid alone can be reused by an unrelated process after a reboot, so
        the process' argv must still be the one recorded at start.
        """
        state = self.recorded()
        try:
            with open(self.pid_file) as handle:
                pid = int(handle.read().strip())
        except (OSError, ValueError):
            return None
        if not process_running(pid):
            return None
        cmdline = process_cmdline(pid)
        if state and cmdline is not None and cmdline != state.get("argv"):
            return None
        return pid

    def busy_ports(self, ports):
        """Ports of ``ports`` that something other than this service holds."""
        own = set()
        state = self.recorded()
        if state and self.running_pid():
            own = set(state.get("ports", []))
        return [port for port in ports if port not in own and port_in_use(port)]

    def start(self, argv, env, chdir, log_file, spec, ports, grace):
        log_dir = os.path.dirname(log_file)
        if log_dir:
            os.makedirs(log_dir, exist_ok=True)
        os.makedirs(os.path.dirname(self.pid_file), exist_ok=True)
        if os.path.exists(log_file) and os.path.getsize(log_file) > LOG_ROTATE_BYTES:
            os.replace(log_file, log_file + ".1")
        with open(log_file, "ab") as log:
            log.write(("==== %s: starting %s ====\n" % (time.strftime("%Y-%m-%dT%H:%M:%S"), self.name)).encode())
            log.flush()
            try:
                # A new session detaches the server from Ansible's connection;
                # the pid is also its process group, so stop() reaches the
                # backend stubs it forks.
                proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                        env=env, cwd=chdir or None, close_fds=True, start_new_session=True)
            except OSError as exc:
                raise SupervisorError("%s: cannot execute %s: %s" % (self.name, argv[0], exc))
        state = {"argv": argv, "digest": spec_digest(spec), "ports": ports, "log_file": log_file,
                 "started_at": time.time(), "pid": proc.pid}
        self._write(self.pid_file, "%d\n" % proc.pid)
        self._write(self.state_file, json.dumps(state, indent=2, sort_keys=True) + "\n")
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise SupervisorError("%s exited with status %s right after start; see %s"
                                      % (self.name, proc.returncode, log_file))
            time.sleep(0.05)
        return proc.pid

    def stop(self, timeout):
        pid = self.running_pid()
        if pid is not None:
            shm_regions = mapped_shm_regions(pid)
            self._signal_group(pid, signal.SIGTERM)
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline and process_running(pid):
                time.sleep(0.1)
            if process_running(pid):
                self._signal_group(pid, signal.SIGKILL)
                while process_running(pid):
                    time.sleep(0.05)
            # Triton's Python backend unlinks its regions on a clean exit; a
            # killed server leaves them behind. Only regions this process had
            # mapped are removed, never another server's.
            for path in shm_regions:
                try:
                    os.unlink(path)
                except OSError:
                    pass
        for path in (self.pid_file, self.state_file):
            try:
                os.unlink(path)
            except OSError:
                pass
        return pid

    @staticmethod
    def _signal_group(pid, sig):
        try:
            os.killpg(pid, sig)
        except OSError:
            try:
                os.kill(pid, sig)
            except OSError:
                pass

    @staticmethod
    def _write(path, text):
        tmp = path + ".tmp"
        with open(tmp, "w") as handle:
            handle.write(text)
        os.replace(tmp, path)
