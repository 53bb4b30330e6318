# -*- coding: utf-8 -*-
# Copyright: (c) 2026, tritonfleet maintainers
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import absolute_import, division, print_function

__metaclass__ = type


class ModuleDocFragment(object):
    # The Triton endpoint, as the modules that talk to a server take it.
    DOCUMENTATION = r"""
options:
  url:
    description:
      - Address of the server, C(host:port), with or without a scheme (V(http://), V(https://), V(grpc://), V(grpcs://)).
      - The HTTP port (default V(8000)) for O(protocol=http), the gRPC port (default V(8001)) for O(protocol=grpc).
      - V(https://) or V(grpcs://) turns TLS on. A missing port means the protocol's default port.
      - Defaults to C(127.0.0.1) on the protocol's default port.
    type: str
"""
