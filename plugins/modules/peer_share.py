#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, tritonfleet maintainers
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: peer_share
short_description: Serve a directory to other hosts for a limited time, for a host-to-host copy
description:
  - Starts, on the host that has a directory (an engine, a checkpoint), a small read-only HTTP server of the
    Python standard library that serves every file of the directory under a random token, with range requests,
    so that the hosts that need the directory download it straight from this one with
    M(tritonfleet.serving.peer_fetch); the controller is not in the data path.
  - The server also serves the list of files with their sizes and sha256 (taken from the engine manifest when
    O(manifest) names one, else computed), against which each receiver checks what it downloaded.
  - It stops by itself after O(idle_timeout) seconds without a request, or O(lifetime) seconds in all, so an
    interrupted play leaves nothing serving for long; O(state=absent) stops it at once.
version_added: 0.12.0
author:
  - tritonfleet maintainers (@tritonfleet)
extends_documentation_fragment:
  - tritonfleet.serving.attributes
options:
  path:
    description: The directory to serve. Required with O(state=present).
    type: path
  state:
    description: V(present) starts (or restarts) the server, V(absent) stops it.
    type: str
    choices: [present, absent]
    default: present
  name:
    description: Name of the share on this host; its process is recorded in O(state_dir)/<name>.json.
    type: str
    required: true
  state_dir:
    description: Where the server's pid and settings are recorded.
    type: path
    required: true
  listen_address:
    description: Address to listen on.
    type: str
    default: 0.0.0.0
  port:
    description: TCP port to listen on; the receivers must reach it.
    type: int
    default: 8470
  token:
    description:
      - Secret path prefix of every URL; requests without it are refused. Give the receivers the same value.
      - Required with O(state=present).
    type: str
  manifest:
    description:
      - Name of a JSON file in O(path) whose C(files) key maps relative paths to C(size) and C(sha256)
        (the engine cache's manifest). Those files are not read again to announce their checksums.
    type: str
  idle_timeout:
    description: Seconds without a request after which the server stops.
    type: int
    default: 600
  lifetime:
    description: Seconds after which the server stops in any case.
    type: int
    default: 7200
attributes:
  check_mode:
    support: full
    details:
      - Reports the start or stop it would make and starts or stops nothing.
  diff_mode:
    support: none
notes:
  - The transfer is not encrypted; the token keeps other clients of the network from reading the files. Use
    the controller path of the calling role on networks that must not carry model files in the clear.
seealso:
  - module: tritonfleet.serving.peer_fetch
"""

EXAMPLES = r"""
- name: Share the engine with the hosts that need it
  tritonfleet.serving.peer_share:
    name: engine-llama
    path: /var/cache/tritonfleet/engines/llama/0123456789abcdef
    manifest: tritonfleet-engine.json
    state_dir: /var/lib/tritonfleet/shares
    token: "{{ transfer_token }}"
    port: 8470

- name: Stop sharing
  tritonfleet.serving.peer_share:
    name: engine-llama
    state_dir: /var/lib/tritonfleet/shares
    state: absent
"""

RETURN = r"""
pid:
  description: Process id of the server (V(present)).
  returned: when O(state=present) and not in check mode
  type: int
files:
  description: Number of files served.
  returned: when O(state=present)
  type: int
bytes:
  description: Their total size in bytes.
  returned: when O(state=present)
  type: int
"""

import json
import os

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.tritonfleet.serving.plugins.module_utils.peer_transfer import Share, TransferError, list_files


def main():
    module = AnsibleModule(
        argument_spec=dict(
            path=dict(type="path"),
            state=dict(type="str", choices=["present", "absent"], default="present"),
            name=dict(type="str", required=True),
            state_dir=dict(type="path", required=True),
            listen_address=dict(type="str", default="0.0.0.0"),
            port=dict(type="int", default=8470),
            token=dict(type="str", no_log=True),
            manifest=dict(type="str"),
            idle_timeout=dict(type="int", default=600),
            lifetime=dict(type="int", default=7200),
        ),
        required_if=[("state", "present", ("path", "token"))],
        supports_check_mode=True,
    )
    p = module.params
    share = Share(os.path.join(p["state_dir"], "%s.json" % p["name"]))
    if p["state"] == "absent":
        running = share.running() is not None
        if not module.check_mode:
            share.stop()
        module.exit_json(changed=running)

    if not os.path.isdir(p["path"]):
        module.fail_json(msg="%s is not a directory; nothing to share" % p["path"])
    known = {}
    if p["manifest"]:
        try:
            with open(os.path.join(p["path"], p["manifest"])) as handle:
                known = json.load(handle).get("files") or {}
        except (OSError, IOError, ValueError):
            known = {}
    files = list_files(p["path"], known)
    result = dict(changed=True, files=len(files), bytes=sum(f["size"] for f in files))
    if module.check_mode:
        module.exit_json(**result)
    try:
        result["pid"] = share.start(p["path"], files, p["listen_address"], p["port"], p["token"],
                                    p["idle_timeout"], p["lifetime"])
    except (TransferError, OSError) as exc:
        module.fail_json(msg="cannot share %s on port %d: %s" % (p["path"], p["port"], exc), **result)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
