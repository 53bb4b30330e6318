#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, tritonfleet maintainers
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: model_repository
short_description: Make a model repository directory match the files, directories and removals given, in one call
description:
  - Compares every listed file by sha256 of its contents, and every file and directory by mode and owner, with what
    O(path) holds, and changes only what differs.
  - Each file is written atomically, through a temporary file in its own directory renamed over it; missing parent
    directories are created with O(directory_mode).
  - Removes the paths of O(absent) that exist, and with O(prune_versions) the numeric version directories of those
    models that O(keep_versions) does not name.
  - One call replaces a loop of file, copy and template tasks, so a run that changes nothing costs one module call.
version_added: 0.3.0
author:
  - tritonfleet maintainers (@tritonfleet)
extends_documentation_fragment:
  - tritonfleet.serving.attributes
attributes:
  check_mode:
    support: full
    details:
      - Reports exactly the paths that would be written, created and removed; writes nothing.
  diff_mode:
    support: full
    details:
      - A list of before/after entries, one per changed path; text files show their contents, binary or large files
        are only named.
options:
  path:
    description: The repository directory; created (with its parents) when missing.
    type: path
    required: true
  files:
    description: Files the repository must hold.
    type: list
    elements: dict
    default: []
    suboptions:
      path:
        description: Path relative to O(path).
        type: str
        required: true
      content:
        description: The file's contents (text, written as UTF-8). Mutually exclusive with O(files[].content_base64).
        type: str
      content_base64:
        description:
          - The file's exact bytes, base64-encoded (binary files; see the P(tritonfleet.serving.file_base64#lookup)
            lookup). Mutually exclusive with O(files[].content).
        type: str
        version_added: 0.12.0
      mode:
        description: Mode of this file; O(file_mode) when not given.
        type: raw
  directories:
    description: Directories, relative to O(path), that must exist (the parents of O(files) always are).
    type: list
    elements: str
    default: []
  absent:
    description: Paths relative to O(path) removed when present (a directory with everything in it).
    type: list
    elements: str
    default: []
  prune_versions:
    description:
      - Model directories, relative to O(path), whose numeric subdirectories other than O(keep_versions) are removed.
    type: list
    elements: str
    default: []
  keep_versions:
    description: Version directories O(prune_versions) keeps.
    type: list
    elements: str
    default: []
  owner:
    description: Owner (name or uid) of what the module writes or creates, and of the listed paths; null leaves it alone.
    type: str
  group:
    description: Group (name or gid) of what the module writes or creates, and of the listed paths; null leaves it alone.
    type: str
  file_mode:
    description: Mode of the files, an octal string such as V("0644") or a symbolic mode; null keeps the umask's default.
    type: raw
    default: "0644"
  directory_mode:
    description: Mode of O(path), of O(directories) and of the parents of O(files), as O(file_mode).
    type: raw
    default: "0755"
notes:
  - Paths leaving O(path) (absolute ones or with C(..)) are refused.
seealso:
  - module: ansible.builtin.copy
  - module: ansible.builtin.file
"""

EXAMPLES = r"""
- name: Render a model repository in one call
  tritonfleet.serving.model_repository:
    path: /var/lib/tritonfleet/model_repository
    files:
      - path: ensemble/config.pbtxt
        content: "{{ lookup('ansible.builtin.template', 'config.pbtxt.j2', template_vars={'item': 'ensemble'}) }}"
      - path: preprocessing/1/model.py
        content: "{{ lookup('ansible.builtin.file', 'preprocessing/model.py', rstrip=false) }}"
    directories:
      - ensemble/1
    absent:
      - tensorrt_llm_bls
    prune_versions: [ensemble, preprocessing]
    keep_versions: ["1"]
    owner: triton
    group: triton
  register: repository_result
"""

RETURN = r"""
written:
  description: Files (relative paths) written, or that would be in check mode.
  returned: always
  type: list
  elements: str
  sample: [ensemble/config.pbtxt]
created_directories:
  description: Directories (relative paths, V(.) for O(path) itself) created, or that would be.
  returned: always
  type: list
  elements: str
removed:
  description: Paths removed (from O(absent) and O(prune_versions)), or that would be.
  returned: always
  type: list
  elements: str
attributes_set:
  description: Existing paths whose mode or owner was set, or would be.
  returned: always
  type: list
  elements: str
"""

import grp
import os
import pwd
import stat

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.common.text.converters import to_native
from ansible_collections.tritonfleet.serving.plugins.module_utils import model_repository as repo


class _Stat(object):
    def __init__(self, mode):
        self.st_mode = mode


def _umask():
    current = os.umask(0)
    os.umask(current)
    return current


def _uid(owner):
    if owner is None or owner == "":
        return None
    if str(owner).isdigit():
        return int(owner)
    return pwd.getpwnam(owner).pw_uid


def _gid(group):
    if group is None or group == "":
        return None
    if str(group).isdigit():
        return int(group)
    return grp.getgrnam(group).gr_gid


def main():
    module = AnsibleModule(
        argument_spec=dict(
            path=dict(type="path", required=True),
            files=dict(type="list", elements="dict", default=[], options=dict(
                path=dict(type="str", required=True),
                content=dict(type="str"),
                content_base64=dict(type="str"),
                mode=dict(type="raw"),
            ), mutually_exclusive=[("content", "content_base64")]),
            directories=dict(type="list", elements="str", default=[]),
            absent=dict(type="list", elements="str", default=[]),
            prune_versions=dict(type="list", elements="str", default=[]),
            keep_versions=dict(type="list", elements="str", default=[]),
            owner=dict(type="str"),
            group=dict(type="str"),
            file_mode=dict(type="raw", default="0644"),
            directory_mode=dict(type="raw", default="0755"),
        ),
        supports_check_mode=True,
    )
    params = module.params

    def resolve_mode(current, mode, is_dir):
        if current is None:
            current = (stat.S_IFDIR | (0o777 & ~_umask())) if is_dir else (stat.S_IFREG | (0o666 & ~_umask()))
        try:
            return module._symbolic_mode_to_octal(_Stat(current), mode)
        except ValueError as exc:
            raise repo.RepositoryError("bad mode %s: %s" % (mode, to_native(exc)))

    ids = []
    for name, lookup in ((params["owner"], _uid), (params["group"], _gid)):
        try:
            ids.append(lookup(name))
        except KeyError:
            # Check mode on a fresh host: an earlier task of this run would create the account.
            if not module.check_mode:
                module.fail_json(msg="unknown owner or group: %s" % name)
            module.warn("%s does not exist (yet); check mode compares without it" % name)
            ids.append(None)
    uid, gid = ids
    try:
        desired = repo.Desired(params["path"], files=params["files"], directories=params["directories"],
                               absent=params["absent"], prune_versions=params["prune_versions"],
                               keep_versions=params["keep_versions"], owner=uid, group=gid,
                               file_mode=params["file_mode"], dir_mode=params["directory_mode"])
        actions = repo.plan(desired, resolve_mode)
        if module.check_mode or not repo.changed(actions):
            result = repo.summary(actions)
        else:
            result = repo.apply(desired, actions)
    except (repo.RepositoryError, OSError) as exc:
        module.fail_json(msg=to_native(exc))
    result["changed"] = repo.changed(actions)
    if module._diff:
        result["diff"] = actions["diff"]
    module.exit_json(**result)


if __name__ == "__main__":
    main()
