# -*- coding: utf-8 -*-
# Copyright: (c) 2026, tritonfleet maintainers
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Where other hosts reach a service of an inventory host: one rule for the gateway and Prometheus."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible.module_utils.common.text.converters import to_text

WILDCARD_ADDRESSES = ('', '0.0.0.0', '::', '[::]')


def reachable_address(hv, host, listen_address):
    """The address of ``host`` (its hostvars ``hv``) for a service listening on ``listen_address``.

    tritonfleet_address wins; then a specific listen address; then
    ansible_host; a local connection is the loopback; else the inventory name.
    HAProxy and Prometheus use this same order, so they reach a server at the
    same address.
    """
    if hv.get('tritonfleet_address'):
        return to_text(hv['tritonfleet_address'])
    listen = to_text(listen_address or '')
    if listen not in WILDCARD_ADDRESSES:
        return listen
    if hv.get('ansible_host'):
        return to_text(hv['ansible_host'])
    if hv.get('ansible_connection') == 'local':
        return '127.0.0.1'
    return to_text(host)
