#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, tritonfleet maintainers
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
---
module: docker_daemon_config
short_description: Merge settings into Docker's C(daemon.json) without touching the others
version_added: 0.1.0
description:
  - Reads Docker's daemon configuration (a missing or empty file counts as C({})), merges O(settings)
    into it, optionally adds Docker's C(nvidia) runtime entry and C(default-runtime), and writes the
    file back only when the result differs from what it holds. Keys the task does not name are kept
    as they are, in their order.
  - The comparison is between parsed JSON, so a file that already holds the wanted values is left
    alone however it is formatted. A file that is written is indented with four spaces.
  - The file is replaced atomically (written aside, then renamed); an existing file keeps its mode
    and owner, a new one gets mode C(0644). The parent directory is created when missing.
  - A file that is not valid JSON, or whose top level is not an object, fails the task with the file's
    name and the parse error, and is not overwritten.
  - The module does not restart Docker; notify a handler when it reports a change (dockerd reads the
    file only at start, and C(runtimes) changes need a restart, not a reload).
author:
  - tritonfleet maintainers (@tritonfleet)
options:
  path:
    description: The daemon configuration file.
    type: path
    default: /etc/docker/daemon.json
  settings:
    description:
      - Keys to set. Objects merge key by key, recursively, with what the file holds; any other value
        (string, number, boolean, list) replaces the file's value, so a list such as
        C(insecure-registries) is exactly what you give.
      - A value of V(null) removes that key from the file.
    type: dict
    default: {}
  nvidia_runtime:
    description:
      - Ensure that C(runtimes.nvidia) is the object with C(path) set to O(nvidia_runtime_path) and C(args)
        set to C([]), which is what C(nvidia-ctk runtime configure --runtime=docker) writes. Other runtimes
        are kept.
      - V(false) leaves C(runtimes) as the file and O(settings) have it; it never removes an entry.
    type: bool
    default: false
  nvidia_runtime_path:
    description: Executable of the nvidia runtime entry (looked up in E(PATH) by dockerd when not absolute).
    type: str
    default: nvidia-container-runtime
  default_runtime:
    description:
      - Set C(default-runtime) to this runtime name, for example V(nvidia).
      - It must be V(runc), V(io.containerd.runc.v2) or a runtime the resulting C(runtimes) defines,
        otherwise the task fails, since dockerd would refuse to start.
      - Not set leaves C(default-runtime) as the file and O(settings) have it.
    type: str
  backup:
    description: Keep a timestamped copy of the previous file when it is changed.
    type: bool
    default: false
extends_documentation_fragment:
  - tritonfleet.serving.attributes
attributes:
  check_mode:
    support: full
    details:
      - Reads and validates the file and reports the change, with its diff under C(--diff); writes nothing and
        makes no backup.
  diff_mode:
    support: full
    details:
      - The diff is the file's text before and after, as the module writes it (indented with four spaces).
notes:
  - Docker reads C(daemon.json) when it starts. Restart the C(docker) service after a change.
  - A key given both in C(daemon.json) and as a C(dockerd) command-line flag (for example in a
    systemd drop-in) makes dockerd refuse to start; this module does not look at the unit's flags.
seealso:
  - name: Docker daemon configuration file
    description: The keys C(daemon.json) accepts.
    link: https://docs.docker.com/reference/cli/dockerd/#daemon-configuration-file
  - name: NVIDIA Container Toolkit, configuring Docker
    description: The C(nvidia) runtime entry that C(nvidia-ctk runtime configure) writes.
    link: https://docs.nvidia.com/datacenter/cloud-native/container-toolkit/latest/install-guide.html#configuring-docker
'''

EXAMPLES = r'''
- name: Log rotation and a private registry mirror, keeping the other daemon settings
  tritonfleet.serving.docker_daemon_config:
    settings:
      log-driver: json-file
      log-opts:
        max-size: 100m
        max-file: "3"
      insecure-registries:
        - registry.internal:5000
  notify: restart docker

- name: Docker's nvidia runtime, as nvidia-ctk would configure it
  tritonfleet.serving.docker_daemon_config:
    nvidia_runtime: true
  notify: restart docker

- name: Make nvidia the default runtime
  tritonfleet.serving.docker_daemon_config:
    nvidia_runtime: true
    default_runtime: nvidia
  notify: restart docker

- name: Remove a key the site no longer wants
  tritonfleet.serving.docker_daemon_config:
    settings:
      live-restore: null
  notify: restart docker
'''

RETURN = r'''
path:
  description: The configuration file.
  returned: always
  type: str
  sample: /etc/docker/daemon.json
config:
  description: The configuration the file holds after the task (in check mode, would hold).
  returned: always
  type: dict
  sample: {"log-driver": "json-file", "runtimes": {"nvidia": {"path": "nvidia-container-runtime", "args": []}}}
created:
  description: Whether the file was created (in check mode, would be). A missing file is only created when something is wanted.
  returned: always
  type: bool
  sample: false
backup_file:
  description: The copy of the previous file.
  returned: when O(backup=true) and the file was changed
  type: str
  sample: /etc/docker/daemon.json.12345.2026-01-01@12:00:00~
'''

import os
import tempfile

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.common.text.converters import to_bytes, to_native

from ansible_collections.tritonfleet.serving.plugins.module_utils.docker_daemon import (
    DaemonConfigError,
    desired_config,
    read_daemon_config,
    render,
    same_config,
)


def write_atomically(module, path, text):
    """Write text to a sibling temporary file and rename it over path (keeping path's mode and owner)."""
    directory = os.path.dirname(path) or '.'
    if not os.path.isdir(directory):
        try:
            os.makedirs(directory, 0o755)
        except OSError as exc:
            module.fail_json(msg='Cannot create %s: %s' % (directory, to_native(exc)))
    creating = not os.path.exists(path)
    try:
        fd, tmp = tempfile.mkstemp(prefix='.%s.' % os.path.basename(path), dir=directory)
    except OSError as exc:
        module.fail_json(msg='Cannot write in %s: %s' % (directory, to_native(exc)))
    try:
        with os.fdopen(fd, 'wb') as handle:
            handle.write(to_bytes(text))
            handle.flush()
            os.fsync(handle.fileno())
    except (IOError, OSError) as exc:
        os.unlink(tmp)
        module.fail_json(msg='Cannot write %s: %s' % (tmp, to_native(exc)))
    module.atomic_move(tmp, path)
    if creating:
        os.chmod(path, 0o644)


def main():
    module = AnsibleModule(
        argument_spec=dict(
            path=dict(type='path', default='/etc/docker/daemon.json'),
            settings=dict(type='dict', default={}),
            nvidia_runtime=dict(type='bool', default=False),
            nvidia_runtime_path=dict(type='str', default='nvidia-container-runtime'),
            default_runtime=dict(type='str'),
            backup=dict(type='bool', default=False),
        ),
        supports_check_mode=True,
    )
    path = module.params['path']
    result = dict(changed=False, path=path)

    try:
        current, before_text = read_daemon_config(path)
        wanted = desired_config(
            current,
            settings=module.params['settings'],
            nvidia_runtime=module.params['nvidia_runtime'],
            runtime_path=module.params['nvidia_runtime_path'],
            default_runtime=module.params['default_runtime'],
        )
    except DaemonConfigError as exc:
        module.fail_json(msg=to_native(exc), **result)

    # A file that parses to the wanted object is not rewritten, however it is formatted; a missing
    # file is not created when nothing is wanted.
    changed = not same_config(wanted, current)
    after_text = render(wanted) if changed else before_text
    result.update(changed=changed, config=wanted, created=changed and before_text is None)
    if module._diff:
        result['diff'] = dict(before=before_text or '', after=after_text or '',
                              before_header=path, after_header=path)

    if changed and not module.check_mode:
        if module.params['backup'] and before_text is not None:
            result['backup_file'] = module.backup_local(path)
        write_atomically(module, path, after_text)

    module.exit_json(**result)


if __name__ == '__main__':
    main()
