#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, tritonfleet maintainers
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: peer_fetch
short_description: Copy a directory from the host that shares it, checked and resumable
description:
  - Downloads every file that another host shares with M(tritonfleet.serving.peer_share) into O(dest), straight
    from that host.
  - Each file is written as C(<name>.part) and renamed into place only once its sha256 matches the one the
    source announced; a mismatch removes the partial copy and fails.
  - A file already in O(dest) with the announced size and sha256 is not downloaded again; a C(.part) file left
    by an interrupted run is resumed from its last byte with an HTTP range request.
version_added: 0.12.0
author:
  - tritonfleet maintainers (@tritonfleet)
extends_documentation_fragment:
  - tritonfleet.serving.attributes
options:
  url:
    description: Base URL of the source's share, for example V(http://10.0.0.11:8470).
    type: str
    required: true
  token:
    description: The token the source shares under.
    type: str
    required: true
  dest:
    description: Directory to fill; created when missing.
    type: path
    required: true
  replace:
    description:
      - Assemble the copy in C(<dest>.receiving) and, once every file is checked, put it in place of O(dest) in
        two renames, so that O(dest) never holds a mix of old and new files and keeps no file the source lacks.
      - Without it, files are added to O(dest) and files it has that the source lacks are left alone.
    type: bool
    default: false
  timeout:
    description: Seconds a connection or a read may stall before the attempt is retried.
    type: int
    default: 60
  attempts:
    description: Attempts per file; each resumes where the last one stopped.
    type: int
    default: 5
attributes:
  check_mode:
    support: full
    details:
      - Reads the source's list of files and reports which would be downloaded; writes nothing.
  diff_mode:
    support: none
seealso:
  - module: tritonfleet.serving.peer_share
"""

EXAMPLES = r"""
- name: Receive the engine from fleet-a1
  tritonfleet.serving.peer_fetch:
    url: http://fleet-a1:8470
    token: "{{ transfer_token }}"
    dest: /var/cache/tritonfleet/engines/llama/.building-0123456789abcdef
"""

RETURN = r"""
files:
  description: Number of files the source shares.
  returned: always
  type: int
bytes:
  description: Their total size in bytes.
  returned: always
  type: int
downloaded:
  description: Bytes downloaded by this run.
  returned: always
  type: int
fetched:
  description: Relative paths downloaded (or, in check mode, that would be).
  returned: always
  type: list
  elements: str
resumed:
  description: Files resumed from a partial copy, with the byte they resumed from.
  returned: always
  type: list
  elements: dict
seconds:
  description: Wall time of the transfer.
  returned: always
  type: float
"""

import os

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.tritonfleet.serving.plugins.module_utils.hashing import file_sha256
from ansible_collections.tritonfleet.serving.plugins.module_utils.peer_transfer import (
    TransferError, fetch, read_index, receiving_dir, replace_dir)


def main():
    module = AnsibleModule(
        argument_spec=dict(
            url=dict(type="str", required=True),
            token=dict(type="str", required=True, no_log=True),
            dest=dict(type="path", required=True),
            timeout=dict(type="int", default=60),
            attempts=dict(type="int", default=5),
            replace=dict(type="bool", default=False),
        ),
        supports_check_mode=True,
    )
    p = module.params
    try:
        if module.check_mode:
            files = read_index(p["url"], p["token"], p["timeout"])
            missing = [f for f in files if not (os.path.isfile(os.path.join(p["dest"], f["path"]))
                                                and file_sha256(os.path.join(p["dest"], f["path"])) == f["sha256"])]
            module.exit_json(changed=bool(missing), files=len(files), bytes=sum(f["size"] for f in files),
                             downloaded=0, fetched=[f["path"] for f in missing], resumed=[], seconds=0.0)
        if p["replace"]:
            summary = fetch(p["url"], p["token"], receiving_dir(p["dest"]), p["timeout"], p["attempts"])
            replace_dir(receiving_dir(p["dest"]), p["dest"])
        else:
            summary = fetch(p["url"], p["token"], p["dest"], p["timeout"], p["attempts"])
    except (TransferError, OSError) as exc:
        module.fail_json(msg="copy from %s into %s failed: %s" % (p["url"], p["dest"], exc))
    summary.pop("already_present", None)
    module.exit_json(changed=bool(summary["fetched"]), **summary)


if __name__ == "__main__":
    main()
