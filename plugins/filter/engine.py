# -*- coding: utf-8 -*-
# Copyright: (c) 2026, tritonfleet maintainers
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Filters that turn engine variables into TensorRT-LLM build commands.

Two eras of TensorRT-LLM are in use and both are first-class:

``build_py``
    v0.7-style ``examples/<family>/build.py --model_dir ... --output_dir ...``
    (one step from a Hugging Face checkpoint to an engine).
``trtllm_build``
    ``examples/<family>/convert_checkpoint.py`` into a TRT-LLM checkpoint, then
    ``trtllm-build`` from it.

Arguments are dicts so inventories stay readable: ``{use_gemm_plugin: float16,
parallel_build: true}`` becomes ``--use_gemm_plugin float16 --parallel_build``;
``false`` and ``null`` values are left out.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import re
import shlex

from ansible.errors import AnsibleFilterError
from ansible_collections.tritonfleet.serving.plugins.module_utils.addresses import reachable_address

RECIPES = ("build_py", "trtllm_build")
# How a v0.7 build.py takes its parallel layout. Most families' build.py
# (llama, gpt, ...) have --world_size, --tp_size and --pp_size; some
# (baichuan, chatglm) only --world_size and shard tensor-parallel only, and
# argparse stops them on any other flag.
BUILD_PY_PARALLEL_FLAGS = ("world_size", "tp_pp")
FLAG_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_-]*$")
# The build command owns these; setting them through a dict would point the
# build at other paths or contradict the parallel sizes the key records.
RESERVED = {
    "build_py": ("model_dir", "output_dir", "world_size", "tp_size", "pp_size"),
    "trtllm_build": ("checkpoint_dir", "output_dir", "model_dir", "tp_size", "pp_size"),
}


def cli_flags(args):
    """``{"dtype": "float16", "parallel_build": True}`` -> ``["--dtype", "float16", "--parallel_build"]``."""
    if args is None:
        return []
    if not isinstance(args, dict):
        raise AnsibleFilterError("build arguments must be a dict of flag: value, got %r" % (args,))
    flags = []
    for name in sorted(args):
        value = args[name]
        if not FLAG_NAME.match(str(name)):
            raise AnsibleFilterError("%r is not a valid command-line flag name" % (name,))
        if value is None or value is False:
            continue
        if value is True:
            flags.append("--%s" % name)
        elif isinstance(value, (list, tuple)):
            flags.append("--%s" % name)
            flags.extend(str(v) for v in value)
        elif isinstance(value, dict):
            raise AnsibleFilterError("flag --%s: value must be a string, number, boolean or list, not a dict" % name)
        else:
            flags.extend(["--%s" % name, str(value)])
    return flags


def _check_reserved(recipe, *arg_dicts):
    for args in arg_dicts:
        taken = sorted(set(args or {}) & set(RESERVED[recipe]))
        if taken:
            raise AnsibleFilterError("build arguments %s are set by the %s recipe itself (from the engine's paths and "
                                     "engine_tp_size/engine_pp_size); remove them" % (", ".join(taken), recipe))


def trtllm_build_steps(recipe, checkpoint_dir, output_dir, work_dir, tp_size=1, pp_size=1, build_args=None,
                       convert_args=None, examples_dir="/app/tensorrt_llm/examples", model_family="llama",
                       python="python3", trtllm_build="trtllm-build", build_py_parallel_flags="tp_pp"):
    """The argument vectors of a build, in order (one for build_py, two for trtllm_build)."""
    if recipe not in RECIPES:
        raise AnsibleFilterError("engine recipe must be one of %s, got %r" % (", ".join(RECIPES), recipe))
    tp_size, pp_size = int(tp_size), int(pp_size)
    if tp_size < 1 or pp_size < 1:
        raise AnsibleFilterError("tp_size and pp_size must be at least 1 (got %d and %d)" % (tp_size, pp_size))
    _check_reserved(recipe, build_args, convert_args)
    family_dir = "%s/%s" % (examples_dir.rstrip("/"), model_family)
    if recipe == "build_py":
        if convert_args:
            raise AnsibleFilterError("convert arguments only apply to the trtllm_build recipe; "
                                     "put build.py flags into the build arguments")
        if build_py_parallel_flags not in BUILD_PY_PARALLEL_FLAGS:
            raise AnsibleFilterError("build_py_parallel_flags must be one of %s, got %r"
                                     % (", ".join(BUILD_PY_PARALLEL_FLAGS), build_py_parallel_flags))
        parallel = ["--world_size", str(tp_size * pp_size)]
        if build_py_parallel_flags == "tp_pp":
            parallel += ["--tp_size", str(tp_size), "--pp_size", str(pp_size)]
        elif pp_size > 1:
            raise AnsibleFilterError("examples/%s/build.py takes only --world_size and shards tensor-parallel only, "
                                     "so engine_pp_size must be 1 (got %d); use engine_tp_size, or set "
                                     "engine_build_py_parallel_flags: tp_pp for a build.py that has --tp_size and "
                                     "--pp_size" % (model_family, pp_size))
        return [[python, "%s/build.py" % family_dir, "--model_dir", checkpoint_dir, "--output_dir", output_dir]
                + parallel + cli_flags(build_args)]
    converted = "%s/trtllm-checkpoint" % work_dir.rstrip("/")
    return [
        [python, "%s/convert_checkpoint.py" % family_dir, "--model_dir", checkpoint_dir, "--output_dir", converted,
         "--tp_size", str(tp_size), "--pp_size", str(pp_size)] + cli_flags(convert_args),
        [trtllm_build, "--checkpoint_dir", converted, "--output_dir", output_dir] + cli_flags(build_args),
    ]


def trtllm_build_command(recipe, checkpoint_dir, output_dir, work_dir, log_file, **kwargs):
    """One ``/bin/sh -c`` argument vector running every step, output appended to ``log_file``.

    A shell joins the steps so one container runs them in order, stops at the
    first failure (``set -e``) and keeps the whole log in a file on the host,
    where the engine role reads its tail when a build fails.
    """
    steps = trtllm_build_steps(recipe, checkpoint_dir, output_dir, work_dir, **kwargs)
    lines = ["set -e", "exec >>%s 2>&1" % shlex.quote(log_file)]
    for step in steps:
        quoted = " ".join(shlex.quote(a) for a in step)
        lines.append("echo %s" % shlex.quote("+ " + quoted))
        lines.append(quoted)
    return ["/bin/sh", "-c", "\n".join(lines)]


def engine_distribution(hosts, plans, fanout=1):
    """Decide, for every host, whether it builds, sends, receives or already has its engine.

    ``hosts`` is the play's host list in order; ``plans`` maps a host to its
    ``engine_cache`` plan (``cache_key``, ``present``). Hosts that computed the
    same key need the same engine. For each key the source is the first host
    that already has it, else the first host, which builds it; every other
    host of the key without the engine receives it.

    A host-to-host copy goes in rounds: in each round every host that has the
    engine sends it to at most ``fanout`` hosts that do not, so the hosts that
    have it multiply by ``fanout + 1`` per round and N receivers take about
    log(N) rounds rather than N copies from one host. Returns ``{host: {source,
    build, receive, receivers, sender, round, shares, rounds}}``: ``receivers``
    (on the source) are all the hosts of its key that receive, for a copy
    through the controller; ``sender`` is the host a receiver copies from host
    to host, in round ``round`` (1-based); ``shares`` says whether the host
    sends in any round; ``rounds`` is the number of rounds of the whole play.
    """
    fanout = int(fanout)
    if fanout < 1:
        raise AnsibleFilterError("engine_distribution: fanout must be at least 1, got %d" % fanout)
    by_key = {}
    for host in hosts:
        plan = plans.get(host)
        if not plan:
            continue
        by_key.setdefault(plan["cache_key"], []).append(host)
    result = {}
    rounds = 0
    for key, members in by_key.items():
        have = [h for h in members if plans[h].get("present")]
        source = have[0] if have else members[0]
        receivers = [h for h in members if h != source and not plans[h].get("present")]
        holders = have or [source]
        sender, received_in, sending = {}, {}, set()
        waiting = list(receivers)
        key_round = 0
        while waiting:
            key_round += 1
            assigned = []
            for holder in list(holders):
                for host in waiting[:fanout]:
                    sender[host] = holder
                    received_in[host] = key_round
                    sending.add(holder)
                    assigned.append(host)
                del waiting[:fanout]
            holders.extend(assigned)
        rounds = max(rounds, key_round)
        for host in members:
            result[host] = dict(source=source, build=host == source and not have,
                                receive=host in receivers, receivers=receivers if host == source else [],
                                sender=sender.get(host, ""), round=received_in.get(host, 0),
                                shares=host in sending)
    for entry in result.values():
        entry["rounds"] = rounds
    return result


def peer_url(host_vars, host, port, listen_address="0.0.0.0"):
    """Base URL of what ``host`` (its hostvars ``host_vars``) shares with peer_share on ``port``."""
    address = reachable_address(host_vars, host, listen_address)
    if ":" in address and not address.startswith("["):
        address = "[%s]" % address
    return "http://%s:%d" % (address, int(port))


def engine_build_failure(state, timeout):
    """Why a build container did not produce an engine, from its last ``docker_container_info`` result.

    Empty when the container exited with status 0. The reason is read from
    the container's state, so the message says what happened to the build
    (still running at the deadline, killed for memory, a non-zero exit, gone)
    whichever task noticed it.
    """
    if not isinstance(state, dict):
        raise AnsibleFilterError("engine_build_failure expects a docker_container_info result, got %r" % (state,))
    container = state.get("container")
    if not state.get("exists", container is not None) or not isinstance(container, dict):
        return "the build container disappeared before it finished (removed from outside the play?)"
    status = container.get("State") or {}
    if status.get("Running"):
        return "it ran past engine_build_timeout (%s s) and was stopped" % timeout
    code = status.get("ExitCode")
    if status.get("OOMKilled"):
        return ("the build container ran out of memory and was killed (exit status %s); the build needs more "
                "memory than the host gives it" % code)
    if status.get("Error"):
        return "Docker could not run the build container: %s" % status["Error"]
    if code is None:
        return "the build container reported no exit status (state %s)" % (status.get("Status") or "unknown")
    if int(code) != 0:
        return "the build container exited with status %s" % code
    return ""


class FilterModule(object):
    def filters(self):
        return {
            "trtllm_cli_flags": cli_flags,
            "engine_peer_url": peer_url,
            "trtllm_build_steps": trtllm_build_steps,
            "trtllm_build_command": trtllm_build_command,
            "engine_distribution": engine_distribution,
            "engine_build_failure": engine_build_failure,
        }
