#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, tritonfleet maintainers
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: apt_lists_info
short_description: Tell whether apt's package lists can serve an install
description:
  - Says whether the package lists must be read again (C(apt-get update)) before packages are installed,
    judged by what the lists hold rather than by their age, so that a freshly built image or a freshly
    provisioned host (young lists that are empty or were read from other sources) installs on the first run.
  - The lists must be read again when there are none, when the sources differ from the ones recorded in
    O(sources_record) (a digest of the sources files' contents, written by the caller after an update), or
    when a package of O(packages) is neither installed nor has an install candidate.
version_added: 0.4.0
author:
  - tritonfleet maintainers (@tritonfleet)
extends_documentation_fragment:
  - tritonfleet.serving.attributes
  - tritonfleet.serving.attributes.info_module
options:
  packages:
    description: The packages about to be installed.
    type: list
    elements: str
    default: []
  sources_record:
    description:
      - A file holding the sources digest of the last update (RV(sources_digest) written by the caller after
        it updated the lists). A missing file means the sources of the lists are unknown.
    type: path
    required: true
  sources_list:
    description: apt's main sources file.
    type: path
    default: /etc/apt/sources.list
  sources_parts:
    description: apt's directory of C(*.list) and deb822 C(*.sources) files.
    type: path
    default: /etc/apt/sources.list.d
  lists_dir:
    description: apt's lists directory.
    type: path
    default: /var/lib/apt/lists
attributes:
  platform:
    platforms: debian
requirements:
  - apt-cache on the host
"""

EXAMPLES = r"""
- name: Check whether the package lists can serve the install
  tritonfleet.serving.apt_lists_info:
    packages: [docker.io, python3-requests]
    sources_record: /var/lib/apt/tritonfleet-sources.sha256
  register: lists

- name: Install Docker, reading the lists first when they cannot serve it
  ansible.builtin.apt:
    name: [docker.io, python3-requests]
    update_cache: true
    cache_valid_time: "{{ 0 if lists.update_needed else 3600 }}"

- name: Record the sources the lists were read from
  ansible.builtin.copy:
    content: "{{ lists.sources_digest }}\n"
    dest: /var/lib/apt/tritonfleet-sources.sha256
    mode: "0644"
"""

RETURN = r"""
update_needed:
  description: Whether the lists must be read again before the install.
  returned: always
  type: bool
reasons:
  description: Why, one sentence each; empty when the lists can serve the install.
  returned: always
  type: list
  elements: str
  sample: [the sources changed since the lists were last read]
sources_digest:
  description: sha256 over the names and contents of the sources files apt reads now.
  returned: always
  type: str
sources:
  description: Those sources files, in apt's order.
  returned: always
  type: list
  elements: str
lists:
  description: The number of package index files in O(lists_dir).
  returned: always
  type: int
unservable:
  description: Packages of O(packages) that are neither installed nor have a candidate in the current lists.
  returned: always
  type: list
  elements: str
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.tritonfleet.serving.plugins.module_utils import apt_lists


def read_record(path):
    try:
        with open(path) as handle:
            return handle.read().strip() or None
    except (IOError, OSError):
        return None


def main():
    module = AnsibleModule(
        argument_spec=dict(
            packages=dict(type="list", elements="str", default=[]),
            sources_record=dict(type="path", required=True),
            sources_list=dict(type="path", default="/etc/apt/sources.list"),
            sources_parts=dict(type="path", default="/etc/apt/sources.list.d"),
            lists_dir=dict(type="path", default="/var/lib/apt/lists"),
        ),
        supports_check_mode=True,
    )
    params = module.params
    sources = apt_lists.source_files(params["sources_list"], params["sources_parts"])
    digest = apt_lists.sources_digest(sources)
    lists = apt_lists.package_lists(params["lists_dir"])

    missing = []
    if lists and params["packages"]:
        apt_cache = module.get_bin_path("apt-cache", required=True)
        rc, out, err = module.run_command([apt_cache, "policy"] + params["packages"])
        if rc != 0:
            module.fail_json(msg="apt-cache policy failed: %s" % (err or out).strip(), rc=rc)
        missing = apt_lists.unservable(params["packages"], apt_lists.parse_policy(out))
    elif params["packages"]:
        missing = list(params["packages"])

    reasons = apt_lists.update_reasons(lists, digest, read_record(params["sources_record"]), missing)
    module.exit_json(changed=False, update_needed=bool(reasons), reasons=reasons, sources_digest=digest,
                     sources=sources, lists=len(lists), unservable=missing)


if __name__ == "__main__":
    main()
