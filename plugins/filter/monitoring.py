# -*- coding: utf-8 -*-
# Copyright: (c) 2026, tritonfleet maintainers
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Prometheus's view of the inventory: what to scrape on which host, under which labels.

The monitoring role renders ``scrape_configs`` of prometheus.yml from it. The
alert rules select by the job names (``MONITORING_JOBS``) and by the labels
set here (host, server, model_group), so both change together.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible.errors import AnsibleFilterError
from ansible.module_utils.common.text.converters import to_text
from ansible.module_utils.parsing.convert_bool import boolean
from ansible_collections.tritonfleet.serving.plugins.module_utils.addresses import reachable_address

# One job per kind of target; the alert rules name them.
MONITORING_JOBS = ('triton', 'gateway', 'node', 'dcgm')


def _target(address, port):
    address = to_text(address)
    # An IPv6 literal needs brackets before the port.
    if ':' in address and not address.startswith('['):
        address = '[%s]' % address
    return '%s:%d' % (address, int(port))


def _port(value, what):
    try:
        port = int(value)
    except (TypeError, ValueError):
        port = 0
    if not 0 < port < 65536:
        raise AnsibleFilterError("monitoring_scrape_configs: %s must be a TCP port, got %r" % (what, value))
    return port


def _watches_gpus(hv, default_runtime, enabled):
    """A GPU host in the docker runtime runs the DCGM exporter (unless the host turns it off)."""
    runtime = to_text(hv.get('tritonfleet_runtime') or default_runtime)
    try:
        gpu_count = int(hv.get('tritonfleet_gpu_count') or 0)
    except (TypeError, ValueError):
        gpu_count = 0
    return gpu_count > 0 and runtime == 'docker' and boolean(hv.get('monitoring_dcgm_exporter', enabled), strict=False)


def _job(name, static_configs, metrics_path='/metrics'):
    return dict(job_name=name, metrics_path=metrics_path, static_configs=static_configs)


def monitoring_scrape_configs(hosts, hostvars, servers_hosts=None, gateway_hosts=None, node_exporter_port=9100,
                              node_exporter=True, dcgm_exporter_port=9400, dcgm_exporter=True,
                              gateway_stats_port=8404, default_runtime='docker', default_group='default'):
    """``groups['all'] | monitoring_scrape_configs(hostvars, servers_hosts=groups.triton_servers, ...)``.

    Returns the scrape jobs (``triton``, ``gateway``, ``node``, ``dcgm``; a job
    without targets is left out) and the hosts left out with the reason:
    servers hosts whose layout is unknown in this run (unreachable), gateways
    whose HAProxy did not start.

    Per-host inventory values win over the arguments: ``monitoring_node_exporter_port``,
    ``monitoring_node_exporter`` (false: this host runs none), ``monitoring_dcgm_exporter_port``,
    ``monitoring_dcgm_exporter``, ``gateway_stats_port`` (the gateway's own fact first).
    """
    if not isinstance(hosts, (list, tuple)):
        raise AnsibleFilterError("monitoring_scrape_configs expects a list of inventory hosts, got %r" % (hosts,))
    hosts = [to_text(h) for h in hosts]
    servers_hosts = [to_text(h) for h in servers_hosts or []]
    gateway_hosts = [to_text(h) for h in gateway_hosts or []]

    triton, gateway, node, dcgm = [], [], [], []
    unknown_layout, gateways_left_out = [], []
    model_group = {}

    for host in servers_hosts:
        hv = hostvars[host]
        layout = hv.get('tritonfleet_servers')
        if not layout:
            unknown_layout.append(host)
            continue
        group = to_text(hv.get('tritonfleet_model_group') or default_group)
        model_group[host] = group
        address = reachable_address(hv, host, hv.get('servers_listen_address'))
        for server in layout:
            if not isinstance(server, dict) or 'name' not in server or 'metrics_port' not in server:
                raise AnsibleFilterError("monitoring_scrape_configs: tritonfleet_servers of %s holds %r, which has no "
                                         "name or metrics_port (the servers layout sets both)" % (host, server))
            port = _port(server['metrics_port'], 'metrics_port of %s on %s' % (server['name'], host))
            triton.append(dict(targets=[_target(address, port)],
                               labels=dict(host=host, server=to_text(server['name']), model_group=group)))

    for host in gateway_hosts:
        hv = hostvars[host]
        fact = hv.get('tritonfleet_gateway')
        # The gateway stage (or its facts) says whether HAProxy runs; without
        # that fact the inventory's word is taken, and a missing gateway shows as up == 0.
        if isinstance(fact, dict) and not boolean(fact.get('available', False), strict=False):
            gateways_left_out.append(host)
            continue
        fact = fact if isinstance(fact, dict) else {}
        port = _port(fact.get('stats_port') or hv.get('gateway_stats_port') or gateway_stats_port,
                     'gateway_stats_port of %s' % host)
        address = reachable_address(hv, host, hv.get('gateway_listen_address'))
        # No `server` label here: HAProxy's own series carry one (the backend server).
        gateway.append(dict(targets=[_target(address, port)], labels=dict(host=host)))

    for host in hosts:
        hv = hostvars[host]
        labels = dict(host=host)
        if host in model_group:
            labels['model_group'] = model_group[host]
        if boolean(hv.get('monitoring_node_exporter', node_exporter), strict=False):
            port = _port(hv.get('monitoring_node_exporter_port') or node_exporter_port,
                         'monitoring_node_exporter_port of %s' % host)
            node.append(dict(targets=[_target(reachable_address(hv, host, hv.get('monitoring_node_exporter_listen_address')),
                                              port)], labels=dict(labels)))
        if _watches_gpus(hv, default_runtime, dcgm_exporter):
            port = _port(hv.get('monitoring_dcgm_exporter_port') or dcgm_exporter_port,
                         'monitoring_dcgm_exporter_port of %s' % host)
            dcgm.append(dict(targets=[_target(reachable_address(hv, host, hv.get('monitoring_dcgm_exporter_listen_address')),
                                              port)], labels=dict(labels)))

    jobs = [_job(name, configs) for name, configs in zip(MONITORING_JOBS, (triton, gateway, node, dcgm)) if configs]
    return dict(scrape_configs=jobs, unknown_layout=unknown_layout, gateways_left_out=gateways_left_out)


def dcgm_exporter_hosts(hosts, hostvars, default_runtime='docker', enabled=True):
    """``groups['all'] | dcgm_exporter_hosts(hostvars)``: the hosts whose GPUs the DCGM exporter watches.

    The predicate of the ``dcgm`` job of monitoring_scrape_configs, for the
    exporter's own tasks and for tests.
    """
    if not isinstance(hosts, (list, tuple)):
        raise AnsibleFilterError("dcgm_exporter_hosts expects a list of inventory hosts, got %r" % (hosts,))
    return [to_text(host) for host in hosts if _watches_gpus(hostvars[host], default_runtime, enabled)]


class FilterModule(object):
    def filters(self):
        return {
            'monitoring_scrape_configs': monitoring_scrape_configs,
            'dcgm_exporter_hosts': dcgm_exporter_hosts,
        }
