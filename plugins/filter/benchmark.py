# -*- coding: utf-8 -*-
# Copyright: (c) 2026, tritonfleet maintainers
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Where the benchmark role sends its load: a gateway frontend or one server of the layout."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible.errors import AnsibleFilterError
from ansible.module_utils.common.text.converters import to_text


def benchmark_gateway_frontends(gateways, model_group):
    """The frontends of ``model_group`` of every running gateway (``tritonfleet_gateway`` facts), with its address."""
    if not isinstance(gateways, (list, tuple)):
        raise AnsibleFilterError('benchmark_gateway_frontends expects a list of tritonfleet_gateway facts')
    out = []
    for gateway in gateways:
        if not isinstance(gateway, dict):
            continue
        for frontend in gateway.get('frontends') or []:
            if to_text(frontend.get('name')) == to_text(model_group):
                entry = dict(frontend)
                entry['address'] = to_text(gateway.get('address') or '127.0.0.1')
                entry['host'] = to_text(gateway.get('host') or entry['address'])
                out.append(entry)
    return out


def benchmark_server_layout(hosts, hostvars):
    """Every server of the layout (``tritonfleet_servers``) of ``hosts``, with its inventory host and host/name."""
    out = []
    for host in hosts or []:
        hv = hostvars[host] if host in hostvars else {}
        for server in hv.get('tritonfleet_servers') or []:
            entry = dict(server)
            entry['inventory_host'] = to_text(host)
            entry['qualified_name'] = '%s/%s' % (host, server.get('name'))
            # The address others reach the server at, as the gateway and Prometheus use it.
            entry['host'] = to_text(hv.get('tritonfleet_address') or server.get('host') or host)
            out.append(entry)
    return out


class FilterModule(object):
    def filters(self):
        return {
            'benchmark_gateway_frontends': benchmark_gateway_frontends,
            'benchmark_server_layout': benchmark_server_layout,
        }
