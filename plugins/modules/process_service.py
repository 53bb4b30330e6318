#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, tritonfleet maintainers
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: process_service
short_description: Run a long-lived command as a pid-file supervised service
description:
  - Starts, stops or restarts a command (a C(tritonserver) in the C(process) runtime) detached from
    Ansible, with its output appended to a log file and its pid and configuration recorded in O(run_dir).
  - The desired state is the command, its environment, its working directory and a fingerprint of the
    files under O(fingerprint_paths). A running service whose recorded state matches is left alone
    (C(changed=false)); one that differs is restarted.
  - Before starting, every port in O(ports) must be free, except ports held by this service's own
    running process. A busy port fails the task naming the service and the port, in check mode too,
    so a check-mode pass over all instances is a preflight that starts nothing.
  - For hosts without systemd, and the local default deployment. It is not a process monitor; a
    crashed service is started again by the next run.
version_added: 0.1.0
author:
  - tritonfleet maintainers (@tritonfleet)
extends_documentation_fragment:
  - tritonfleet.serving.attributes
options:
  name:
    description: Service name; names the pid and state files.
    type: str
    required: true
  command:
    description: Argument vector. Required unless O(state=stopped).
    type: list
    elements: str
  environment:
    description: Complete environment of the process (nothing is inherited from Ansible's).
    type: dict
    default: {}
  chdir:
    description: Working directory.
    type: path
  run_dir:
    description: Directory for C(<name>.pid) and C(<name>.json).
    type: path
    required: true
  log_file:
    description: File that receives stdout and stderr (appended; rotated once past 50 MiB).
    type: path
  fingerprint_paths:
    description: Files or directories whose contents are part of the desired state.
    type: list
    elements: path
    default: []
  ports:
    description: TCP ports the process will listen on; checked free before a start.
    type: list
    elements: int
    default: []
  state:
    description: V(restarted) always restarts a running service.
    type: str
    choices: [started, stopped, restarted]
    default: started
  stop_timeout:
    description: Seconds between SIGTERM and SIGKILL to the process group.
    type: float
    default: 30
  start_grace:
    description: Seconds the new process must survive for the start to count.
    type: float
    default: 1.0
attributes:
  check_mode:
    support: full
    details:
      - Reads the pid and state files and reports RV(action) (started, stopped, restarted or none) and its
        RV(reason) as a normal run would; starts and stops nothing.
      - The ports in O(ports) are checked in check mode too, and a busy one fails the task as in a normal run.
  diff_mode:
    support: full
    details:
      - The diff is the service's state before and after (stopped, or running with its pid and command line).
"""

EXAMPLES = r"""
- name: Run Triton instance 0
  tritonfleet.serving.process_service:
    name: triton0
    command: [/opt/triton/bin/tritonserver, --model-repository, /srv/models, --http-port, "8000"]
    environment:
      PATH: /opt/venv/bin:/usr/bin:/bin
    run_dir: /run/tritonfleet
    log_file: /var/log/tritonfleet/triton0.log
    fingerprint_paths: [/srv/models]
    ports: [8000, 8001, 8002]

- name: Stop it
  tritonfleet.serving.process_service:
    name: triton0
    run_dir: /run/tritonfleet
    state: stopped
"""

RETURN = r"""
pid:
  description: Pid of the running process (null once stopped).
  returned: always
  type: int
action:
  description: What was (or, in check mode, would be) done.
  returned: always
  type: str
  sample: started
reason:
  description: Why a running service was restarted.
  returned: when action is restarted
  type: str
  sample: configuration changed
log_file:
  description: The log file.
  returned: when O(log_file) is set
  type: str
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.tritonfleet.serving.plugins.module_utils.supervisor import (
    Service, SupervisorError, fingerprint_paths, spec_digest, tail)


def main():
    module = AnsibleModule(
        argument_spec=dict(
            name=dict(type="str", required=True),
            command=dict(type="list", elements="str"),
            environment=dict(type="dict", default={}),
            chdir=dict(type="path"),
            run_dir=dict(type="path", required=True),
            log_file=dict(type="path"),
            fingerprint_paths=dict(type="list", elements="path", default=[]),
            ports=dict(type="list", elements="int", default=[]),
            state=dict(type="str", choices=["started", "stopped", "restarted"], default="started"),
            stop_timeout=dict(type="float", default=30),
            start_grace=dict(type="float", default=1.0),
        ),
        required_if=[("state", "started", ("command", "log_file")), ("state", "restarted", ("command", "log_file"))],
        supports_check_mode=True,
    )
    p = module.params
    service = Service(p["name"], p["run_dir"])
    pid = service.running_pid()
    recorded = service.recorded() if pid else None
    result = dict(changed=False, pid=pid, action="none")
    if p["log_file"]:
        result["log_file"] = p["log_file"]

    if p["state"] == "stopped":
        if pid is not None:
            result.update(changed=True, action="stopped", pid=None,
                          diff=dict(before="running (pid %d)\n" % pid, after="stopped\n"))
            if not module.check_mode:
                service.stop(p["stop_timeout"])
        module.exit_json(**result)

    env = {str(k): str(v) for k, v in p["environment"].items()}
    spec = dict(argv=p["command"], env=env, chdir=p["chdir"],
                fingerprint=fingerprint_paths(p["fingerprint_paths"]))
    desired = spec_digest(spec)
    if pid is None:
        action, reason = "started", None
    elif p["state"] == "restarted":
        action, reason = "restarted", "restart requested"
    elif recorded is None or recorded.get("digest") != desired:
        action, reason = "restarted", "configuration changed"
    else:
        module.exit_json(**result)

    busy = service.busy_ports(p["ports"])
    # On a restart the old process of this same service still holds its old
    # ports; only ports new to this configuration can be taken by others.
    if busy:
        module.fail_json(msg="%s: port %s already in use on this host by another process; "
                             "free it or choose other ports for this instance"
                             % (p["name"], ", ".join(str(b) for b in busy)), busy_ports=busy, **result)

    before = "stopped\n" if pid is None else "running (pid %d): %s\n" % (pid, " ".join(recorded.get("argv", []) if recorded else []))
    result.update(changed=True, action=action,
                  diff=dict(before=before, after="running: %s\n" % " ".join(p["command"])))
    if reason:
        result["reason"] = reason
    if module.check_mode:
        module.exit_json(**result)

    try:
        if pid is not None:
            service.stop(p["stop_timeout"])
        result["pid"] = service.start(p["command"], env, p["chdir"], p["log_file"], spec,
                                      p["ports"], p["start_grace"])
    except SupervisorError as exc:
        result["log_tail"] = tail(p["log_file"])
        module.fail_json(msg=str(exc), **result)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
