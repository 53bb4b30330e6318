#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, tritonfleet maintainers
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: path_digest
short_description: One sha256 over the contents of files and directory trees
description:
  - Hashes relative paths and contents of every file under each path (C(__pycache__) and hidden directories
    skipped), for use as a container label or a restart trigger that changes exactly when the contents do,
    whichever run changed them.
version_added: 0.2.0
author:
  - tritonfleet maintainers (@tritonfleet)
extends_documentation_fragment:
  - tritonfleet.serving.attributes
  - tritonfleet.serving.attributes.info_module
options:
  paths:
    description: Files or directories; missing paths hash as absent.
    type: list
    elements: path
    required: true
  memo:
    description:
      - File in which the sha256 of each file is remembered with its size and modification time, so that a large
        unchanged tree (a checkpoint of many GB) is not read again on the next run.
      - Writing it is the only thing this module writes; it does so in check mode too.
    type: path
    version_added: 0.12.0
"""

EXAMPLES = r"""
- name: Fingerprint the model repository a server serves
  tritonfleet.serving.path_digest:
    paths:
      - /var/lib/tritonfleet/model_repository
  register: repository_digest
"""

RETURN = r"""
digest:
  description: sha256 over every path's contents, in the order given.
  returned: always
  type: str
digests:
  description: The digest of each path (C(absent) for a missing one).
  returned: always
  type: dict
"""

import hashlib
import os

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.tritonfleet.serving.plugins.module_utils.hashing import file_sha256, tree_digest


def path_digest(path, memo=None):
    if os.path.isdir(path):
        return tree_digest(path, memo)
    if os.path.isfile(path):
        return file_sha256(path)
    return "absent"


def main():
    module = AnsibleModule(argument_spec=dict(paths=dict(type="list", elements="path", required=True),
                                              memo=dict(type="path")),
                           supports_check_mode=True)
    digests = dict((path, path_digest(path, module.params["memo"])) for path in module.params["paths"])
    combined = hashlib.sha256("".join("%s=%s\n" % (p, digests[p]) for p in module.params["paths"]).encode())
    module.exit_json(changed=False, digest=combined.hexdigest(), digests=digests)


if __name__ == "__main__":
    main()
