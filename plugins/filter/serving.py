# -*- coding: utf-8 -*-
# Copyright: (c) 2026, tritonfleet maintainers
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Filters that lay out Triton server instances on a host.

Every instance needs its own HTTP, gRPC and metrics port, its own Python
backend shared-memory prefix and (in gpu mode) its own GPUs. Computing these
from a base and an index, in one place, is what keeps several servers on one
host from colliding; `triton_instance_conflicts` proves it before anything
starts.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json

from ansible.errors import AnsibleFilterError

PORT_KINDS = ("http_port", "grpc_port", "metrics_port")
OVERRIDABLE = PORT_KINDS + ("name", "shm_region_prefix", "gpus")


def _as_int(value, what):
    try:
        return int(value)
    except (TypeError, ValueError):
        raise AnsibleFilterError("%s must be an integer, got %r" % (what, value))


def triton_instances(count, http_port_base=8000, grpc_port_base=8001, metrics_port_base=8002,
                     port_stride=10, shm_region_prefix="tritonfleet", name_prefix="triton",
                     gpu_ids=None, gpus_per_instance=0, instances_per_gpu=1, overrides=None):
    """Return one dict per server instance.

    Instance ``i`` listens on ``<kind>_port_base + i * port_stride`` and uses the
    shared-memory prefix ``<shm_region_prefix><i>_`` (the Python backend
    appends its own suffixes after it). In gpu mode instance ``i`` gets the
    ``gpus_per_instance`` GPUs starting at ``gpu_ids[g * gpus_per_instance]``
    with ``g = i // instances_per_gpu``: by default every instance has its own
    GPUs; ``instances_per_gpu=2`` puts two servers on each GPU (engines whose
    KV cache is sized to share it).
    ``overrides`` is a list of dicts with an ``index`` key and any of
    name/http_port/grpc_port/metrics_port/shm_region_prefix/gpus, for users
    who must pin one instance to a specific port.
    """
    count = _as_int(count, "servers count")
    stride = _as_int(port_stride, "port_stride")
    if count < 1:
        raise AnsibleFilterError("servers count must be at least 1, got %d" % count)
    gpu_ids = [_as_int(g, "GPU index") for g in (gpu_ids or [])]
    per = _as_int(gpus_per_instance, "gpus_per_instance")
    sharing = _as_int(instances_per_gpu, "instances_per_gpu")
    if sharing < 1:
        raise AnsibleFilterError("instances_per_gpu must be at least 1, got %d" % sharing)

    by_index = {}
    for item in overrides or []:
        if not isinstance(item, dict) or "index" not in item:
            raise AnsibleFilterError("each instance override needs an 'index' key, got %r" % (item,))
        unknown = set(item) - set(OVERRIDABLE) - {"index"}
        if unknown:
            raise AnsibleFilterError("instance override %r has unknown keys %s; allowed: %s"
                                     % (item["index"], sorted(unknown), ", ".join(OVERRIDABLE)))
        by_index[_as_int(item["index"], "override index")] = item

    instances = []
    for i in range(count):
        inst = {
            "index": i,
            "name": "%s%d" % (name_prefix, i),
            "http_port": _as_int(http_port_base, "http_port_base") + i * stride,
            "grpc_port": _as_int(grpc_port_base, "grpc_port_base") + i * stride,
            "metrics_port": _as_int(metrics_port_base, "metrics_port_base") + i * stride,
            "shm_region_prefix": "%s%d_" % (shm_region_prefix, i),
            "gpus": gpu_ids[(i // sharing) * per:(i // sharing + 1) * per] if per > 0 else [],
        }
        override = dict(by_index.get(i, {}))
        override.pop("index", None)
        inst.update(override)
        for kind in PORT_KINDS:
            inst[kind] = _as_int(inst[kind], "%s of %s" % (kind, inst["name"]))
        instances.append(inst)
    return instances


def triton_instance_conflicts(instances, host_gpu_ids=None):
    """Return human-readable problems with a list of instances (empty when fine).

    Checks ports across all three kinds (an HTTP port of one instance equal to
    the metrics port of another collides just the same), the valid port range,
    shared-memory prefixes (one prefix being a prefix of another lets the
    backends of two servers open each other's regions), names, and, when
    ``host_gpu_ids`` is given, that every pinned GPU exists on the host.
    """
    problems = []
    owners = {}
    for inst in instances:
        for kind in PORT_KINDS:
            port = inst[kind]
            if not 1 <= port <= 65535:
                problems.append("%s: %s %d is outside 1-65535" % (inst["name"], kind, port))
            if port in owners:
                problems.append("%s: %s %d is already used as %s of %s"
                                % (inst["name"], kind, port, owners[port][1], owners[port][0]))
            else:
                owners[port] = (inst["name"], kind)
    names = {}
    for inst in instances:
        if inst["name"] in names:
            problems.append("instance name %s is used twice" % inst["name"])
        names[inst["name"]] = inst
    prefixes = [(inst["name"], inst["shm_region_prefix"]) for inst in instances]
    for a_pos, (a_name, a_prefix) in enumerate(prefixes):
        if not a_prefix:
            problems.append("%s: shm_region_prefix is empty" % a_name)
            continue
        for b_name, b_prefix in prefixes[a_pos + 1:]:
            if b_prefix and (a_prefix.startswith(b_prefix) or b_prefix.startswith(a_prefix)):
                problems.append("%s and %s: shm_region_prefix %r and %r overlap"
                                % (a_name, b_name, a_prefix, b_prefix))
    if host_gpu_ids is not None:
        existing = set(int(g) for g in host_gpu_ids)
        for inst in instances:
            missing = [g for g in inst.get("gpus", []) if int(g) not in existing]
            if missing:
                problems.append("%s: GPU index %s does not exist on this host (GPUs: %s)"
                                % (inst["name"], ", ".join(str(g) for g in missing),
                                   ", ".join(str(g) for g in sorted(existing)) or "none"))
    return problems


def _flag(value):
    return "true" if value in (True, "true", "True", "yes", 1) else "false"


def triton_server_command(instance, model_repository, tritonserver="tritonserver", backend_directory=None,
                          listen_address="0.0.0.0", accelerator="cpu", model_control_mode="none",
                          exit_on_error=False, log_verbose=0, log_file=None, repository_poll_secs=15,
                          load_models=None, extra_args=None, world_size=1, tensorrt_llm_model="tensorrt_llm",
                          mpirun="mpirun"):
    """The argument vector that starts one Triton server instance.

    With ``world_size`` > 1 (tensor/pipeline parallel engines) the server runs
    under MPI the way upstream's ``launch_triton_server.py`` starts it: one
    tritonserver per rank, joined by ``:``. Rank 0 serves the endpoints and every
    model; the other ranks only load the TensorRT-LLM model, open no endpoints
    (so ranks never fight over ports) and get their own shm prefix.
    """
    world_size = _as_int(world_size, "world_size")
    if world_size < 1:
        raise AnsibleFilterError("world_size must be at least 1, got %d" % world_size)
    if model_control_mode not in ("none", "explicit", "poll"):
        raise AnsibleFilterError("model_control_mode must be none, explicit or poll, got %r" % (model_control_mode,))
    load_models = list(load_models or [])
    common = ["--model-repository=%s" % model_repository]
    if backend_directory:
        common.append("--backend-directory=%s" % backend_directory)
    rank0 = [tritonserver, "--id=%s" % instance["name"]] + common + [
        "--backend-config=python,shm-region-prefix-name=%s" % instance["shm_region_prefix"],
        "--http-address=%s" % listen_address,
        "--http-port=%d" % int(instance["http_port"]),
        "--grpc-address=%s" % listen_address,
        "--grpc-port=%d" % int(instance["grpc_port"]),
        "--metrics-address=%s" % listen_address,
        "--metrics-port=%d" % int(instance["metrics_port"]),
        "--allow-gpu-metrics=%s" % _flag(accelerator == "gpu"),
        "--model-control-mode=%s" % model_control_mode,
        "--exit-on-error=%s" % _flag(exit_on_error),
        "--log-verbose=%d" % int(log_verbose),
    ]
    if log_file:
        rank0.append("--log-file=%s" % log_file)
    if model_control_mode == "poll":
        rank0.append("--repository-poll-secs=%d" % int(repository_poll_secs))
    if model_control_mode == "explicit":
        rank0 += ["--load-model=%s" % m for m in load_models] if load_models else ["--load-model=*"]
    rank0 += [str(a) for a in (extra_args or [])]
    if world_size == 1:
        return rank0
    argv = [mpirun, "--allow-run-as-root", "-n", "1"] + rank0
    for rank in range(1, world_size):
        argv += [":", "-n", "1", tritonserver, "--id=%s-rank%d" % (instance["name"], rank)] + common + [
            "--backend-config=python,shm-region-prefix-name=%srank%d_" % (instance["shm_region_prefix"], rank),
            "--model-control-mode=explicit",
            "--load-model=%s" % tensorrt_llm_model,
            "--allow-http=false",
            "--allow-grpc=false",
            "--allow-metrics=false",
            "--log-verbose=%d" % int(log_verbose),
        ]
    return argv


def readonly_bind(path):
    """A read-only bind mount of a host path at the same path in a container (docker_container ``mounts``)."""
    return {"type": "bind", "source": path, "target": path, "read_only": True}


def _holder(listener):
    pid = _as_int(listener.get("pid") or 0, "pid of a listener")
    if pid > 0:
        return "%s (pid %d)" % (listener.get("name") or "a process", pid)
    # ss and netstat name a socket's process only to root and to the process' own user
    return "a process of another user"


def triton_busy_ports(instances, listeners, own_ports=None, own_pids=None):
    """Return one problem per instance port another program listens on (empty when all are free).

    ``listeners`` is the ``tcp_listen`` list of community.general.listen_ports_facts
    (``port``, ``pid``, ``name``; pid 0 when the tool could not see the owner).
    A listener on any address counts: the server binds its ports on
    ``servers_listen_address``, by default every address. Ports the role's
    own servers hold are theirs to keep and are left out: ``own_ports`` (the
    ports the role's running containers publish) and, per instance, the
    ports its own process holds, whose pid ``own_pids`` gives (``{instance
    name: pid}``, from the process runtime's pid files).
    """
    own_ports = set(_as_int(p, "own port") for p in (own_ports or []))
    own_pids = own_pids or {}
    by_port = {}
    for listener in listeners or []:
        by_port.setdefault(_as_int(listener.get("port"), "port of a listener"), []).append(listener)
    problems = []
    for inst in instances:
        own_pid = str(own_pids.get(inst["name"], "")).strip()
        own_pid = int(own_pid) if own_pid.isdigit() and int(own_pid) > 0 else None
        for kind in PORT_KINDS:
            port = _as_int(inst[kind], "%s of %s" % (kind, inst["name"]))
            if port in own_ports:
                continue
            holders = []
            for listener in by_port.get(port, []):
                if own_pid is not None and _as_int(listener.get("pid") or 0, "pid of a listener") == own_pid:
                    continue
                holder = _holder(listener)
                if holder not in holders:
                    holders.append(holder)
            if holders:
                problems.append("%s: port %d already in use by %s (its %s)"
                                % (inst["name"], port, ", ".join(holders), kind))
    return problems


def docker_log_lines(lines):
    """Lines of Docker's json-file log (``{"log": "...", "stream": ..., "time": ...}``) as the text they carry.

    Other lines (a plain log file) are returned as they are, so one task can
    show the tail of a process runtime's log and of a container's log alike.
    """
    text = []
    for line in lines or []:
        entry = None
        if isinstance(line, str) and line.startswith("{"):
            try:
                entry = json.loads(line)
            except ValueError:
                entry = None
        if isinstance(entry, dict) and isinstance(entry.get("log"), str):
            text.append(entry["log"].rstrip("\n"))
        else:
            text.append(line)
    return text


class FilterModule(object):
    def filters(self):
        return {
            "triton_instances": triton_instances,
            "triton_instance_conflicts": triton_instance_conflicts,
            "triton_busy_ports": triton_busy_ports,
            "triton_server_command": triton_server_command,
            "readonly_bind": readonly_bind,
            "docker_log_lines": docker_log_lines,
        }
