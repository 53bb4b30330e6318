# -*- coding: utf-8 -*-
# Copyright: (c) 2026, tritonfleet maintainers
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
name: file_base64
author: tritonfleet maintainers (@tritonfleet)
version_added: "0.12.0"
short_description: the exact bytes of controller files, base64-encoded
description:
  - Reads each file on the controller, found like P(ansible.builtin.file#lookup) finds it (a role's C(files/),
    the play's directory, or an absolute path), and returns its bytes base64-encoded.
  - Unlike P(ansible.builtin.file#lookup), which reads text, binary files come through unchanged; give the result
    to M(tritonfleet.serving.model_repository) as a file's C(content_base64).
options:
  _terms:
    description: Paths of the files.
    required: true
    type: list
    elements: str
"""

EXAMPLES = r"""
- name: Write a user's model files, whatever they hold
  tritonfleet.serving.model_repository:
    path: /var/lib/tritonfleet/model_repository
    files:
      - path: preprocessing/1/tokenizer.model
        content_base64: "{{ lookup('tritonfleet.serving.file_base64', '/srv/models/preprocessing/1/tokenizer.model') }}"
"""

RETURN = r"""
_raw:
  description: The base64 encoding of each file's bytes.
  type: list
  elements: str
"""

import base64

from ansible.errors import AnsibleLookupError
from ansible.plugins.lookup import LookupBase


class LookupModule(LookupBase):
    def run(self, terms, variables=None, **kwargs):
        self.set_options(var_options=variables, direct=kwargs)
        encoded = []
        for term in terms:
            path = self.find_file_in_search_path(variables, "files", term)
            if path is None:
                raise AnsibleLookupError("file_base64: %s was not found (a role's files/, the play's directory, or an "
                                         "absolute path)" % term)
            try:
                with open(path, "rb") as handle:
                    encoded.append(base64.b64encode(handle.read()).decode("ascii"))
            except (IOError, OSError) as exc:
                raise AnsibleLookupError("file_base64: cannot read %s: %s" % (path, exc))
        return encoded
