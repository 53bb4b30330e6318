# -*- coding: utf-8 -*-
# Copyright: (c) 2026, tritonfleet maintainers
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""A boolean typed on the command line means what it says.

``-e name=false`` gives Ansible the string "false", which is true wherever
the raw value is tested. The roles' real entry points run here (one
ansible-playbook run per spelling, in check mode with diff, on localhost)
with booleans of five roles given that way, each where its effect shows in a
task's result: a refusal or not, a task skipped or not, a server command
line. tests/unit/roles/test_boolean_variables.py checks every read statically;
this checks a few end to end. (repository_decoupled is driven end to end by
the repository role's own tests.)
"""

import re

import pytest

from local_deploy import Deployment, free_port_base

pytestmark = pytest.mark.integration

# Every case is a block, so one refusal does not stop the others: the rescue
# records the failure and the test reads each block's task results.
PLAYBOOK = """\
---
- name: Booleans given as strings
  hosts: triton_servers
  gather_facts: false
  tasks:
    - name: Facts case
      block:
        - name: Run the facts role
          ansible.builtin.include_role:
            name: tritonfleet.serving.facts
          vars:
            facts_nvidia_smi_xml: "{{ no_gpu_xml }}"
      rescue:
        - name: Facts refused
          ansible.builtin.set_fact:
            case_facts_refused: "{{ ansible_failed_result.msg }}"

    - name: Images case
      block:
        - name: Check the images settings
          ansible.builtin.include_role:
            name: tritonfleet.serving.images
            tasks_from: validate
          vars:
            images_triton: nvcr.io/nvidia/tritonserver:latest
      rescue:
        - name: Images refused
          ansible.builtin.set_fact:
            case_images_refused: "{{ ansible_failed_result.msg }}"

    - name: Engine case
      block:
        - name: Check the engine settings
          ansible.builtin.include_role:
            name: tritonfleet.serving.engine
            tasks_from: validate
          vars:
            engine_checkpoint_dir: "{{ empty_dir }}"
      rescue:
        - name: Engine refused
          ansible.builtin.set_fact:
            case_engine_refused: "{{ ansible_failed_result.msg }}"

    - name: GPU host case
      block:
        - name: Check the GPU host settings
          ansible.builtin.include_role:
            name: tritonfleet.serving.gpu_host
            tasks_from: validate
          vars:
            gpu_host_accelerator: gpu
            tritonfleet_gpu_count: 1
            tritonfleet_driver_version: "550.54.15"
      rescue:
        - name: GPU host refused
          ansible.builtin.set_fact:
            case_gpu_host_refused: "{{ ansible_failed_result.msg }}"

    - name: Servers case
      block:
        - name: Lay out the servers
          ansible.builtin.include_role:
            name: tritonfleet.serving.servers
            tasks_from: layout
        - name: Start the servers (check mode)
          ansible.builtin.include_role:
            name: tritonfleet.serving.servers
            tasks_from: run
          vars:
            __servers_batch: >-
              {{ tritonfleet_servers | map('combine', {'repository': '/nonexistent/revision', 'readonly_mounts': [],
                                                       'image': ''}) | list }}
            __servers_tritonserver: /opt/tritonserver/bin/tritonserver
            __servers_backend_directory: /opt/tritonserver/backends
            __servers_process_environment: {}
"""

NO_GPU_XML = """<?xml version="1.0" ?>
<nvidia_smi_log>
  <driver_version>550.54.15</driver_version>
  <cuda_version>12.4</cuda_version>
  <attached_gpus>0</attached_gpus>
</nvidia_smi_log>
"""

# The booleans under test, each spelled as a user types it; ON and OFF set each
# one the other way. gpu_host_nvidia_default_runtime is on where
# gpu_host_nvidia_runtime is off, so a raw "false" would pass the relation check.
OFF = {
    "facts_require_gpu": "false",
    "images_allow_latest": "false",
    "engine_generate_tiny_checkpoint": "false",
    "gpu_host_nvidia_runtime": "false",
    "gpu_host_nvidia_default_runtime": "true",
    "servers_exit_on_error": "no",
}
ON = {
    "facts_require_gpu": "true",
    "images_allow_latest": "yes",
    "engine_generate_tiny_checkpoint": "true",
    "gpu_host_nvidia_runtime": "on",
    "gpu_host_nvidia_default_runtime": "false",
    # "on" is a bool to the argument spec; the command filter once knew only true/yes.
    "servers_exit_on_error": "on",
}


def _run(tmp_path, booleans):
    (tmp_path / "play.yml").write_text(PLAYBOOK)
    (tmp_path / "no-gpu.xml").write_text(NO_GPU_XML)
    (tmp_path / "empty").mkdir(exist_ok=True)
    args = ["--check", "--diff", "-e", "no_gpu_xml=%s" % (tmp_path / "no-gpu.xml"),
            "-e", "empty_dir=%s" % (tmp_path / "empty")]
    for name, value in booleans.items():
        # key=value, exactly as typed on a command line: Ansible keeps it a string.
        args += ["-e", "%s=%s" % (name, value)]
    deployment = Deployment(tmp_path / "root", free_port_base())
    return deployment.playbook(str(tmp_path / "play.yml"), *args, timeout=240)


@pytest.fixture(scope="module", params=["off", "on"])
def spelled(request, tmp_path_factory):
    booleans = OFF if request.param == "off" else ON
    tmp_path = tmp_path_factory.mktemp("bool-" + request.param)
    run = _run(tmp_path, booleans)
    run.state_root = tmp_path / "root"
    return request.param, run


def _exit_on_error_flags(run):
    diffs = []
    for found in run.results(task="Run Triton servers as processes"):
        for item in found.result.get("results", []):
            for diff in item.get("diff", []) if isinstance(item.get("diff"), list) else [item.get("diff") or {}]:
                diffs.append(diff.get("after", ""))
    return diffs, [flag for text in diffs for flag in re.findall(r"--exit-on-error=(\w+)", text)]


def test_the_run_passes_and_writes_nothing(spelled):
    _mode, run = spelled
    assert run.rc == 0, run
    # Check mode: the servers' directories and processes are only reported.
    would_change = {r.task.split(" : ")[-1] for r in run.results() if r.result.get("changed")}
    assert would_change <= {"Create the log and run directories", "Run Triton servers as processes",
                            "Create the revisions directory", "Create the directory of the in-service records",
                            "Record what the servers serve now that they passed verification"}, run
    assert not run.state_root.exists() or not any(run.state_root.iterdir()), run


def test_facts_require_gpu(spelled):
    mode, run = spelled
    refused = run.facts().get("case_facts_refused")
    if mode == "off":
        assert refused is None, run
        assert run.facts()["tritonfleet_accelerator"] == "cpu", run
    else:
        assert "no GPUs" in refused, run


def test_images_allow_latest(spelled):
    mode, run = spelled
    refused = run.facts().get("case_images_refused")
    if mode == "off":
        assert refused and "images_allow_latest" in refused, run
    else:
        assert refused is None, run


def test_engine_generate_tiny_checkpoint(spelled):
    mode, run = spelled
    refused = run.facts().get("case_engine_refused")
    if mode == "off":
        assert refused and "not a usable checkpoint" in refused, run
    else:
        assert refused is None, run
        assert run.status("Require config.json, weights and tokenizer files in the checkpoint") == "skipped", run


def test_gpu_host_nvidia_runtimes(spelled):
    mode, run = spelled
    refused = run.facts().get("case_gpu_host_refused")
    if mode == "off":
        # default_runtime "true" with runtime "false": the relation check runs and refuses.
        assert refused and "needs gpu_host_nvidia_runtime=true" in refused, run
    else:
        assert refused is None, run
        assert run.status("Check the nvidia runtime settings") == "skipped", run


def test_servers_exit_on_error(spelled):
    mode, run = spelled
    diffs, flags = _exit_on_error_flags(run)
    assert len(flags) == len(diffs) >= 1, run
    assert set(flags) == {"false" if mode == "off" else "true"}, diffs
