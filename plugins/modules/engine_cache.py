#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, tritonfleet maintainers
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: engine_cache
short_description: Plan, stage and publish engines built outside Ansible's process (in a container)
description:
  - The steps of an engine build whose work runs elsewhere, typically a TensorRT-LLM container started by
    M(community.docker.docker_container), around the same content-addressed cache as
    M(tritonfleet.serving.engine_build).
  - V(plan) computes the engine's cache key (see the notes for what goes into it) and says whether that
    engine is already in the cache. It changes nothing.
  - V(stage) creates empty staging and work directories for the key; the build writes into the staging one.
  - V(commit) publishes the staging directory under the key by renaming it into place, with a manifest that
    records the inputs and the host that built it, and prunes older engines. A staging directory that already
    holds a manifest (an engine copied from the host that built it) must carry the same key.
  - V(abort) removes the staging and work directories after a failed build and returns the tail of the build
    log. Published engines are never touched by a failed build.
version_added: 0.2.0
author:
  - tritonfleet maintainers (@tritonfleet)
extends_documentation_fragment:
  - tritonfleet.serving.attributes
  - tritonfleet.serving.attributes.actiongroup_engine
  - tritonfleet.serving.engine_cache
options:
  step:
    description: Which step to run.
    type: str
    choices: [plan, stage, commit, abort]
    default: plan
  builder:
    description: Label of the build method (for example V(container:build_py)); part of the key.
    type: str
    default: container
  build_seconds:
    description: Duration of the build, recorded in the manifest by V(commit).
    type: float
  received_from:
    description: Host the staged engine was copied from, recorded by V(commit).
    type: str
attributes:
  check_mode:
    support: full
    details:
      - V(plan) runs as in a normal run, except that the per-file hash memo is not saved.
      - V(stage), V(commit) and V(abort) report the change they would make and make none. V(commit) lists in
        RV(pruned) the engines it would remove, and fails as a normal run does when no engine is staged or
        published for the key, or when the staged engine's manifest names another key. It does not look for the
        staged C(config.json), which the build that check mode skipped would have written.
      - When O(checkpoint_dir) does not exist yet (an earlier task that check mode only predicted creates it),
        every step but V(plan) reports a change, with an empty RV(cache_key).
  diff_mode:
    support: none
"""

EXAMPLES = r"""
- name: Is the engine for these inputs already built?
  tritonfleet.serving.engine_cache:
    name: baichuan2-7b-chat
    cache_dir: /var/lib/tritonfleet/engines
    checkpoint_dir: /var/lib/tritonfleet/checkpoints/baichuan2-7b-chat
    builder: container:build_py
    command: "{{ build_command }}"
    tp_size: 1
    key_inputs:
      gpu_sku: NVIDIA-H100-80GB-HBM3
      image: sha256:0123...
      trtllm_version: 0.7.1
  register: engine_plan

- name: Publish the engine the container wrote into the staging directory
  tritonfleet.serving.engine_cache:
    step: commit
    name: baichuan2-7b-chat
    cache_dir: /var/lib/tritonfleet/engines
    checkpoint_dir: /var/lib/tritonfleet/checkpoints/baichuan2-7b-chat
    builder: container:build_py
    command: "{{ build_command }}"
    key_inputs: "{{ engine_plan.inputs.key_inputs }}"
"""

RETURN = r"""
cache_key:
  description: sha256 of the build inputs.
  returned: always
  type: str
engine_dir:
  description: Where the engine for this key is (or will be) published.
  returned: always
  type: str
present:
  description: Whether a complete engine for the key is in the cache (after the step).
  returned: always
  type: bool
staging_dir:
  description: Directory the build writes the engine into.
  returned: always
  type: str
work_dir:
  description: Scratch directory of the build (converted checkpoints).
  returned: always
  type: str
log_file:
  description: The build's log on the host.
  returned: always
  type: str
manifest:
  description: The engine's manifest (key, inputs, built_on, built_at, build_seconds, received_from).
  returned: when the engine is present
  type: dict
inputs:
  description: The inputs hashed into the key.
  returned: always
  type: dict
log_tail:
  description: Last lines of the build log.
  returned: with O(step=abort)
  type: list
  elements: str
pruned:
  description: Older engine directories removed by V(commit) (in check mode, the ones it would remove).
  returned: always
  type: list
  elements: str
"""

import os

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.tritonfleet.serving.plugins.module_utils.engine_cache import (
    CACHE_ARGUMENT_SPEC, EngineCache, EngineMismatch, module_engine_key)
from ansible_collections.tritonfleet.serving.plugins.module_utils.supervisor import tail


def main():
    module = AnsibleModule(
        argument_spec=dict(
            CACHE_ARGUMENT_SPEC,
            step=dict(type="str", choices=["plan", "stage", "commit", "abort"], default="plan"),
            builder=dict(type="str", default="container"),
            build_seconds=dict(type="float"),
            received_from=dict(type="str"),
        ),
        supports_check_mode=True,
    )
    p = module.params
    cache = EngineCache(p["cache_dir"], p["name"])
    # Check mode before the checkpoint exists: the engine is certainly missing, its key is not known yet.
    pending = os.path.join(cache.root, "<pending>")
    inputs, key = module_engine_key(module, dict(
        changed=p["step"] != "plan", cache_key="", engine_dir=pending, present=False, staging_dir=pending,
        work_dir=pending, log_file=pending, inputs={}, pruned=[]))
    manifest = cache.lookup(key)
    result = dict(changed=False, cache_key=key, engine_dir=cache.path_for(key), present=manifest is not None,
                  staging_dir=cache.staging_for(key), work_dir=cache.work_for(key), log_file=cache.log_for(key),
                  inputs=inputs, pruned=[])
    if manifest is not None:
        result["manifest"] = manifest

    step = p["step"]
    if step == "stage":
        result["changed"] = True
        if not module.check_mode:
            cache.stage(key)
    elif step == "abort":
        result["log_tail"] = tail(cache.log_for(key))
        staged = [path for path in (cache.staging_for(key), cache.work_for(key)) if os.path.exists(path)]
        result["changed"] = bool(staged)
        if staged and not module.check_mode:
            cache.discard(key)
    elif step == "commit":
        staged = os.path.isdir(cache.staging_for(key))
        if not staged and manifest is None:
            module.fail_json(msg="engine %s: nothing staged in %s to publish for key %s"
                                 % (p["name"], cache.staging_for(key), key[:16]), **result)
        if staged:
            result["changed"] = True
            try:
                if module.check_mode:
                    cache.staged_manifest(key)
                else:
                    result["manifest"] = cache.commit(key, inputs, p["build_seconds"], p["received_from"])
                    result["present"] = True
            except (EngineMismatch, ValueError) as exc:
                module.fail_json(msg="engine %s: %s; existing engines were left in place" % (p["name"], exc),
                                 log_tail=tail(cache.log_for(key)), **result)
        result["pruned"] = cache.prune(key, p["keep"], dry_run=module.check_mode)
        result["changed"] = result["changed"] or bool(result["pruned"])
    module.exit_json(**result)


if __name__ == "__main__":
    main()
