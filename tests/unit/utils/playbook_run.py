# -*- coding: utf-8 -*-
# Copyright: (c) 2026, tritonfleet maintainers
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Run ansible-playbook (or ansible ad hoc) and read what it returned, not what it printed.

The run uses the ``ansible.posix.json`` stdout callback, so every task's
per-host result (changed, failed, skipped, msg and the module's return values)
and the recap stats arrive as data. Tests assert on those; the transcript
(plays, tasks, statuses and messages rebuilt from the same data, plus stderr)
is only what an assertion shows when it fails.
"""

from __future__ import annotations

import collections
import json
import os
import pathlib
import subprocess
import sys

BIN = pathlib.Path(sys.executable).parent

JSON_CALLBACK_ENV = {
    "ANSIBLE_STDOUT_CALLBACK": "ansible.posix.json",
    # `ansible` (ad hoc) uses the default callback unless told to load others.
    "ANSIBLE_LOAD_CALLBACK_PLUGINS": "1",
    "ANSIBLE_NOCOLOR": "1",
    "ANSIBLE_FORCE_COLOR": "0",
}

TaskResult = collections.namedtuple("TaskResult", "play task host result")


def status_of(result):
    """ok, changed, failed, skipped or unreachable, as the default callback would print it."""
    if result.get("unreachable"):
        return "unreachable"
    if result.get("failed"):
        return "failed"
    if result.get("skipped"):
        return "skipped"
    return "changed" if result.get("changed") else "ok"


def _texts(value):
    """Every string in a result value (msg may be a string, a list of lines or a dict)."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from _texts(item)
    elif isinstance(value, (list, tuple)):
        for item in value:
            yield from _texts(item)
    elif value is not None:
        yield str(value)


class PlaybookRun:
    """The outcome of one ansible-playbook or ansible run."""

    def __init__(self, args, returncode, stdout, stderr):
        self.args = list(args)
        self.rc = returncode
        self.stderr = stderr
        self.stdout = stdout
        try:
            self.data = json.loads(stdout[stdout.index("{"):])
        except ValueError:  # no JSON: ansible-playbook stopped before the first play (see stderr)
            self.data = {}

    # ------------------------------------------------------------ data
    @property
    def stats(self):
        """The recap per host: ok, changed, failures, unreachable, skipped, rescued, ignored."""
        return self.data.get("stats", {})

    @property
    def changed(self):
        return sum(host["changed"] for host in self.stats.values())

    @property
    def failures(self):
        return sum(host["failures"] + host["unreachable"] for host in self.stats.values())

    @property
    def plays(self):
        return [play["play"]["name"] for play in self.data.get("plays", [])]

    def results(self, task=None, host=None, play=None):
        """Each task's result per host, in the order they ran.

        task matches a task's name with or without its role prefix
        ("tritonfleet.serving.verify : Fail ..." matches "Fail ...").
        """
        for play_data in self.data.get("plays", []):
            play_name = play_data["play"]["name"]
            if play is not None and play_name != play:
                continue
            for task_data in play_data.get("tasks", []):
                name = task_data["task"]["name"]
                if task is not None and name != task and not name.endswith(" : " + task):
                    continue
                for host_name, result in task_data["hosts"].items():
                    if host is None or host_name == host:
                        yield TaskResult(play_name, name, host_name, result)

    def result(self, task, host=None):
        """The result of the first task named so (on host); fails the test if none ran."""
        for found in self.results(task=task, host=host):
            return found.result
        raise AssertionError("task %r did not run\n%r" % (task, self))

    def status(self, task, host=None):
        return status_of(self.result(task, host))

    def failed_results(self):
        """Failed and unreachable results (the JSON callback records ignored failures as failed too)."""
        return [r for r in self.results() if r.result.get("failed") or r.result.get("unreachable")]

    def messages(self, task=None, host=None, failed_only=False):
        """The text of the results' msg values (the failure message, a debug message)."""
        texts = []
        for found in self.results(task=task, host=host):
            if failed_only and not (found.result.get("failed") or found.result.get("unreachable")):
                continue
            texts.extend(_texts(found.result.get("msg")))
            texts.extend(_texts(found.result.get("argument_errors")))
            for item in found.result.get("results", []) or []:
                if isinstance(item, dict):
                    texts.extend(_texts(item.get("msg")))
        return "\n".join(texts)

    def facts(self, host=None):
        """The ansible_facts the tasks returned (set_fact, *_facts modules), merged in order."""
        merged = {}
        for found in self.results(host=host):
            merged.update(found.result.get("ansible_facts") or {})
        return merged

    # ------------------------------------------------------------ for people
    def transcript(self):
        """The run as the default callback would show it, rebuilt from the results."""
        lines = []
        for play_data in self.data.get("plays", []):
            lines.append("PLAY [%s]" % play_data["play"]["name"])
            for task_data in play_data.get("tasks", []):
                lines.append("TASK [%s]" % task_data["task"]["name"])
                for host_name, result in task_data["hosts"].items():
                    line = "%s: [%s]" % (status_of(result), host_name)
                    message = "\n".join(_texts(result.get("msg")))
                    if result.get("failed") or result.get("unreachable"):
                        detail = {k: result[k] for k in ("msg", "stderr", "stdout", "rc") if result.get(k)}
                        line += " => " + json.dumps(detail or result, indent=2, default=str)
                    elif message and result.get("action", "").endswith("debug"):
                        line += " => " + message
                    lines.append(line)
        lines.append("RECAP %s" % json.dumps(self.stats, sort_keys=True))
        return "\n".join(lines)

    def __repr__(self):
        return "%s: rc=%s changed=%s\n%s\n--- stderr\n%s" % (
            " ".join(str(a) for a in self.args), self.rc, self.changed,
            self.transcript()[-8000:], self.stderr[-3000:])


def run(args, env=None, cwd=None, timeout=900):
    """Run an ansible command line (ansible-playbook or ansible) with the JSON callback."""
    full_env = dict(os.environ if env is None else env)
    full_env.update(JSON_CALLBACK_ENV)
    full_env["PATH"] = "%s%s%s" % (BIN, os.pathsep, full_env.get("PATH", ""))
    command = [str(args[0]) if os.sep in str(args[0]) else str(BIN / args[0])] + [str(a) for a in args[1:]]
    proc = subprocess.run(command, cwd=None if cwd is None else str(cwd), env=full_env, capture_output=True,
                          text=True, timeout=timeout, check=False)
    return PlaybookRun(command, proc.returncode, proc.stdout, proc.stderr)
