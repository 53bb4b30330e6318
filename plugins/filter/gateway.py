# -*- coding: utf-8 -*-
# Copyright: (c) 2026, tritonfleet maintainers
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The gateway's view of the inventory: which Triton servers stand behind which frontend.

The gateway role renders HAProxy's configuration from it and checks it in the
preflight play; the servers role drains and enables servers at the gateway by
the same names (``gateway_server_name``).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import re

from ansible.errors import AnsibleFilterError
from ansible.module_utils.common.text.converters import to_text
from ansible.module_utils.parsing.convert_bool import boolean
from ansible_collections.tritonfleet.serving.plugins.module_utils.addresses import reachable_address

# HAProxy's rule for proxy and server names.
NAME_RE = re.compile(r'^[A-Za-z0-9_.:-]+$')


def gateway_server_name(host, server):
    """``inventory_hostname | gateway_server_name(server.name)``: a server's name in every HAProxy backend."""
    name = '%s.%s' % (to_text(host), to_text(server))
    if not NAME_RE.match(name):
        raise AnsibleFilterError("gateway_server_name: %r cannot name an HAProxy server (letters, digits and _ . : - only); "
                                 "rename the inventory host or the server (servers_name_prefix)" % name)
    return name


def gateway_frontends(model_groups, hostvars, hosts, ensemble_model='ensemble', default_group='default'):
    """``gateway_model_groups | gateway_frontends(hostvars, groups.triton_servers)``.

    Returns each model group with the servers behind it, the hosts whose
    layout is unknown (they did not run the servers layout in this run: an
    unreachable host), which are left out of the backends, and the servers
    left out because they did not pass verification in this run (the verify
    role's ``tritonfleet_servers_unverified``: a failed health check, answer
    or ROUGE gate keeps a server out of service even though its host's layout
    is still in hostvars).
    """
    if not isinstance(model_groups, (list, tuple)):
        raise AnsibleFilterError("gateway_frontends: gateway_model_groups must be a list of mappings, got %r" % (model_groups,))
    frontends = []
    by_name = {}
    for group in model_groups:
        if not isinstance(group, dict) or 'name' not in group:
            raise AnsibleFilterError("gateway_frontends: each gateway_model_groups entry needs a name, got %r" % (group,))
        frontend = dict(name=to_text(group['name']), http_port=group.get('http_port'), grpc_port=group.get('grpc_port'),
                        ensemble=to_text(group.get('ensemble') or ensemble_model), servers=[])
        frontends.append(frontend)
        by_name[frontend['name']] = frontend
    unknown_layout = []
    unserved = []
    unverified = []
    for host in hosts or []:
        hv = hostvars[host]
        layout = hv.get('tritonfleet_servers')
        if not layout:
            unknown_layout.append(to_text(host))
            continue
        group_name = to_text(hv.get('tritonfleet_model_group') or default_group)
        frontend = by_name.get(group_name)
        if frontend is None:
            unserved.append(dict(host=to_text(host), model_group=group_name))
            continue
        address = reachable_address(hv, host, hv.get('servers_listen_address'))
        failed = set(to_text(name) for name in hv.get('tritonfleet_servers_unverified') or [])
        for server in layout:
            if to_text(server['name']) in failed:
                unverified.append(dict(host=to_text(host), server=to_text(server['name'])))
                continue
            frontend['servers'].append(dict(
                name=gateway_server_name(host, server['name']), host=to_text(host), address=address,
                http_port=int(server['http_port']), grpc_port=int(server['grpc_port'])))
    return dict(frontends=frontends, unknown_layout=unknown_layout, unserved=unserved, unverified=unverified)


def gateways_available(hosts, hostvars):
    """``groups.triton_gateways | gateways_available(hostvars)``: the hosts whose HAProxy runs in this run."""
    found = []
    for host in hosts or []:
        if host not in hostvars:
            continue
        gateway = hostvars[host].get('tritonfleet_gateway') or {}
        if boolean(gateway.get('available', False), strict=False):
            found.append(host)
    return found


def duplicates(values):
    """``[8080, 8081, 8080] | duplicates`` is ``[8080]``: each value given more than once, in first-seen order."""
    if not isinstance(values, (list, tuple)):
        raise AnsibleFilterError("duplicates expects a list, got %r" % (values,))
    seen, twice = [], []
    for value in values:
        if value in seen and value not in twice:
            twice.append(value)
        seen.append(value)
    return twice


class FilterModule(object):
    def filters(self):
        return {
            'gateway_frontends': gateway_frontends,
            'gateway_server_name': gateway_server_name,
            'gateways_available': gateways_available,
            'duplicates': duplicates,
        }
