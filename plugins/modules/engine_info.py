#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, tritonfleet maintainers
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: engine_info
short_description: Describe a TensorRT-LLM engine and refuse one that does not fit the host or the server
description:
  - Reads an engine directory's C(config.json) in either TensorRT-LLM era (v0.7 C(build.py) engines with
    C(builder_config); C(trtllm-build) engines with C(version), C(pretrained_config.mapping)) and the project's
    manifest (C(tritonfleet-engine.json)), which records the GPU SKU and the TensorRT-LLM version the engine
    was built with.
  - With O(expect), compares those with what the host and the server configuration need and fails, before any
    server starts, naming every mismatch. Engines are specific to the GPU they were built on and to the
    parallel layout and TensorRT-LLM version they were built for; a mismatch fails at load time on a GPU host,
    often only after minutes.
  - A value the engine does not record (a v0.7 engine built outside this project records no SKU or version)
    cannot be compared and is listed in RV(unverified) instead.
version_added: 0.2.0
author:
  - tritonfleet maintainers (@tritonfleet)
extends_documentation_fragment:
  - tritonfleet.serving.attributes
  - tritonfleet.serving.attributes.info_module
options:
  engine_dir:
    description: The engine directory (C(config.json) and C(rank*.engine)).
    type: path
    required: true
  expect:
    description:
      - Values the engine must have. Keys C(gpu_sku), C(tp_size), C(pp_size), C(trtllm_version); unset or null
        keys are not checked.
      - A CPU reference engine serves every release's contract, so C(trtllm_version) is not compared for it; its
        format version must be the one this collection reads.
      - C(max_rank_mib) is an upper bound instead, the GPU memory one rank may take (a GPU's memory divided by
        the servers sharing it); the largest C(*.engine) file must fit in it. The KV cache needs more, so passing
        it proves only that the weights fit.
    type: dict
    default: {}
  fail_on_mismatch:
    description: Fail when a value differs; with V(false) the mismatches are only returned.
    type: bool
    default: true
"""

EXAMPLES = r"""
- name: Refuse an engine built for another GPU, layout or TensorRT-LLM version
  tritonfleet.serving.engine_info:
    engine_dir: /var/lib/tritonfleet/engines/baichuan2-7b-chat/0123456789abcdef
    expect:
      gpu_sku: "{{ tritonfleet_gpu_sku }}"
      tp_size: 2
      pp_size: 1
      trtllm_version: 0.7.1
"""

RETURN = r"""
engine:
  description: What the engine records.
  returned: always
  type: dict
  contains:
    era:
      description:
        - V(build_py) (v0.7 C(builder_config)), V(trtllm_build) (C(pretrained_config)) or V(cpu_reference)
          (the project's CPU reference engine, which serves every release's contract).
      type: str
    engine_format:
      description: C(tritonfleet-cpu-reference) for a CPU reference engine, else null.
      type: str
    format_version:
      description:
        - The CPU reference engine's format version (its C(config.json) C(version)), checked against the format
          this collection reads; null for TensorRT-LLM engines.
      type: str
    trtllm_version:
      description:
        - TensorRT-LLM version that built the engine, from C(config.json) (C(trtllm-build) records it); for
          engines that record none (v0.7 C(build.py)), the version declared for the build image at build time
          (the manifest's key inputs); null when neither is known.
        - A CPU reference engine records no release (its C(version) is its format's), so this is the declared version and
          the C(trtllm_version) key of O(expect) is not compared.
      type: str
    trtllm_version_source:
      description: Where RV(engine.trtllm_version) comes from, V(engine) or V(declared); null when unknown.
      type: str
    declared_trtllm_version:
      description: The version declared for the build image when it built the engine (manifest), or null.
      type: str
    gpu_sku:
      description: GPU SKU the engine was built on (manifest); null when unrecorded.
      type: str
    tp_size:
      description: Tensor parallel size.
      type: int
    pp_size:
      description: Pipeline parallel size.
      type: int
    world_size:
      description: Ranks the engine needs (C(tp_size * pp_size)).
      type: int
    dtype:
      description: Engine precision.
      type: str
    largest_rank_mib:
      description: Size of the largest C(*.engine) file (one rank's serialized engine) in MiB; null when there is none.
      type: float
    built_on:
      description: Host that built the engine (manifest).
      type: str
    cache_key:
      description: The engine's cache key (manifest).
      type: str
mismatches:
  description: One sentence per value that differs from O(expect).
  returned: always
  type: list
  elements: str
unverified:
  description: Keys of O(expect) the engine does not record.
  returned: always
  type: list
  elements: str
"""

import json
import os

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.tritonfleet.serving.plugins.module_utils.cpu_engine_format import (
    ENGINE_FORMAT, FORMAT_VERSION, format_version_of, release_of)
from ansible_collections.tritonfleet.serving.plugins.module_utils.engine_cache import MANIFEST

CHECKED = ("gpu_sku", "tp_size", "pp_size", "trtllm_version")
MIB = 1024 * 1024


def read_json(path):
    with open(path) as handle:
        return json.load(handle)


def describe(config, manifest):
    """Normalise both config.json eras and the manifest into one flat dict."""
    manifest = manifest or {}
    key_inputs = (manifest.get("inputs") or {}).get("key_inputs") or {}
    cpu_engine = config.get("engine_format") == ENGINE_FORMAT
    if "builder_config" in config:
        builder = config["builder_config"]
        info = dict(era="build_py", tp_size=builder.get("tensor_parallel", 1),
                    pp_size=builder.get("pipeline_parallel", 1), dtype=builder.get("precision"),
                    trtllm_version=None)
    else:
        pretrained = config.get("pretrained_config") or {}
        mapping = pretrained.get("mapping") or {}
        info = dict(era="trtllm_build", tp_size=mapping.get("tp_size", 1), pp_size=mapping.get("pp_size", 1),
                    dtype=pretrained.get("dtype"), trtllm_version=config.get("version"))
    info["engine_format"] = config.get("engine_format") if cpu_engine else None
    info["format_version"] = None
    if cpu_engine:
        # The project's builder records its format's version, not a TensorRT-LLM
        # release: such an engine serves every release's contract, so the release
        # is the one declared for the deployment. A TensorRT-LLM image that writes
        # the format records its release as trtllm-build does.
        info["era"] = "cpu_reference"
        info["format_version"] = format_version_of(config)
        info["trtllm_version"] = release_of(config)
    info["tp_size"] = int(info["tp_size"])
    info["pp_size"] = int(info["pp_size"])
    info["world_size"] = info["tp_size"] * info["pp_size"]
    # What the builder itself wrote (trtllm-build records its version) is the
    # truth; the version the inventory declared for the build image fills in
    # only for engines that record none (v0.7 build.py).
    declared = key_inputs.get("trtllm_version")
    if info["trtllm_version"]:
        info["trtllm_version"] = str(info["trtllm_version"])
        info["trtllm_version_source"] = "engine"
    elif declared:
        info["trtllm_version"] = str(declared)
        info["trtllm_version_source"] = "declared"
    else:
        info["trtllm_version_source"] = None
    info["declared_trtllm_version"] = str(declared) if declared else None
    info["gpu_sku"] = key_inputs.get("gpu_sku")
    info["built_on"] = manifest.get("built_on")
    info["cache_key"] = manifest.get("key")
    return info


def largest_rank_mib(engine_dir):
    """MiB of the largest serialized rank engine (rank0.engine, or v0.7's <model>_<dtype>_tp<N>_rank<r>.engine)."""
    sizes = [entry.stat().st_size for entry in os.scandir(engine_dir)
             if entry.is_file() and entry.name.endswith(".engine")]
    return round(max(sizes) / float(MIB), 1) if sizes else None


def compare(info, expect):
    mismatches, unverified = [], []
    cpu_engine = info.get("era") == "cpu_reference"
    for key in CHECKED:
        wanted = expect.get(key)
        if wanted is None or wanted == "":
            continue
        if cpu_engine and key == "trtllm_version" and info.get("trtllm_version_source") != "engine":
            continue  # release-agnostic: any release's contract is served from it
        have = info.get(key)
        if have is None:
            unverified.append(key)
            continue
        if str(have) != str(wanted):
            mismatches.append("%s is %s, but %s is needed" % (key, have, wanted))
    room = expect.get("max_rank_mib")
    if room not in (None, "") and info.get("largest_rank_mib") is not None and info["largest_rank_mib"] > float(room):
        mismatches.append("a rank's engine is %.0f MiB, more than the %.0f MiB of GPU memory each server gets here "
                          "(the GPU's memory over the servers sharing it)" % (info["largest_rank_mib"], float(room)))
    if cpu_engine and info.get("format_version") != FORMAT_VERSION:
        mismatches.append("the CPU reference engine has format version %s, but this collection reads format "
                          "version %s" % (info.get("format_version"), FORMAT_VERSION))
    declared = info.get("declared_trtllm_version")
    if info.get("trtllm_version_source") == "engine" and declared and declared != info["trtllm_version"]:
        mismatches.append("the build image is TensorRT-LLM %s, not the %s declared for it "
                          "(tritonfleet_trtllm_version)" % (info["trtllm_version"], declared))
    return mismatches, unverified


def main():
    module = AnsibleModule(
        argument_spec=dict(
            engine_dir=dict(type="path", required=True),
            expect=dict(type="dict", default={}),
            fail_on_mismatch=dict(type="bool", default=True),
        ),
        supports_check_mode=True,
    )
    engine_dir = module.params["engine_dir"]
    config_path = os.path.join(engine_dir, "config.json")
    try:
        config = read_json(config_path)
    except (OSError, IOError) as exc:
        module.fail_json(msg="engine %s has no readable config.json (%s); build the engine first" % (engine_dir, exc))
    except ValueError as exc:
        module.fail_json(msg="%s is not valid JSON: %s" % (config_path, exc))
    manifest = None
    if os.path.exists(os.path.join(engine_dir, MANIFEST)):
        try:
            manifest = read_json(os.path.join(engine_dir, MANIFEST))
        except ValueError as exc:
            module.fail_json(msg="%s is not valid JSON: %s" % (os.path.join(engine_dir, MANIFEST), exc))
    info = describe(config, manifest)
    info["largest_rank_mib"] = largest_rank_mib(engine_dir)
    mismatches, unverified = compare(info, module.params["expect"])
    result = dict(changed=False, engine=info, mismatches=mismatches, unverified=unverified)
    if mismatches and module.params["fail_on_mismatch"]:
        module.fail_json(msg="engine %s does not fit: %s. Rebuild it for this host and server configuration "
                             "(or point the servers at a matching engine)" % (engine_dir, "; ".join(mismatches)),
                         **result)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
