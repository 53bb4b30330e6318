# -*- coding: utf-8 -*-
# Copyright: (c) 2026, tritonfleet maintainers
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""apt_lists_info on a host laid out in a temporary directory (apt-cache mocked)."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

from unittest import mock

import pytest

from ansible.module_utils import basic
from ansible_collections.tritonfleet.serving.plugins.module_utils import apt_lists
from ansible_collections.tritonfleet.serving.plugins.modules import apt_lists_info
from ansible_collections.tritonfleet.serving.tests.unit.utils.ansible_module_harness import run_module

POLICY_BOTH = "docker.io:\n  Installed: (none)\n  Candidate: 20.10.24\npython3-requests:\n  Installed: (none)\n  Candidate: 2.28.1\n"


@pytest.fixture
def host(tmp_path):
    """A freshly built image: sources present, lists directory with apt's own files only."""
    parts = tmp_path / "sources.list.d"
    parts.mkdir()
    (parts / "debian.sources").write_text("Types: deb\nURIs: http://mirror.internal/debian\nSuites: ./\n")
    lists = tmp_path / "lists"
    (lists / "partial").mkdir(parents=True)
    (lists / "lock").write_text("")
    return tmp_path


def args(host, packages=("docker.io", "python3-requests")):
    return dict(packages=list(packages), sources_record=str(host / "record"), sources_list=str(host / "sources.list"),
                sources_parts=str(host / "sources.list.d"), lists_dir=str(host / "lists"))


def run(host, policy=POLICY_BOTH, check_mode=False, **kwargs):
    calls = []

    def run_command(self, argv, **_):
        calls.append(argv)
        return 0, policy, ""

    with mock.patch.object(basic.AnsibleModule, "get_bin_path", return_value="/usr/bin/apt-cache"), \
            mock.patch.object(basic.AnsibleModule, "run_command", run_command):
        result = run_module(apt_lists_info.main, args(host, **kwargs), check_mode).result
    return result, calls


def read_lists(host):
    """What an apt-get update leaves: package lists and, from the role, the record."""
    (host / "lists" / "mirror.internal_debian_._Packages").write_text("Package: docker.io\n")
    digest = apt_lists.sources_digest(apt_lists.source_files(str(host / "sources.list"), str(host / "sources.list.d")))
    (host / "record").write_text(digest + "\n")


def test_fresh_image_without_lists_needs_an_update(host):
    result, calls = run(host)
    assert result["update_needed"] is True
    assert "the host has no package lists" in result["reasons"]
    assert result["unservable"] == ["docker.io", "python3-requests"]
    assert result["changed"] is False
    assert calls == []  # nothing to ask apt-cache without lists


def test_lists_read_from_the_recorded_sources_serve_the_install(host):
    read_lists(host)
    result, calls = run(host)
    assert result["update_needed"] is False, result["reasons"]
    assert result["reasons"] == []
    assert calls == [["/usr/bin/apt-cache", "policy", "docker.io", "python3-requests"]]


def test_sources_replaced_after_the_last_update(host):
    read_lists(host)
    (host / "sources.list.d" / "debian.sources").write_text("Types: deb\nURIs: http://other/debian\nSuites: ./\n")
    result, dummy = run(host)
    assert result["update_needed"] is True
    assert result["reasons"] == ["the sources changed since the lists were last read"]


def test_host_never_updated_by_the_role_reads_its_lists_once(host):
    read_lists(host)
    (host / "record").unlink()
    result, dummy = run(host)
    assert result["reasons"] == ["no record of the sources the lists were read from"]


def test_package_without_candidate(host):
    read_lists(host)
    result, dummy = run(host, policy="docker.io:\n  Installed: (none)\n  Candidate: 20.10.24\n")
    assert result["update_needed"] is True
    assert result["unservable"] == ["python3-requests"]


def test_check_mode_reads_the_same(host):
    read_lists(host)
    result, calls = run(host, check_mode=True)
    assert result["update_needed"] is False and result["changed"] is False
    assert len(calls) == 1


def test_apt_cache_failure_is_reported(host):
    read_lists(host)

    def failing(self, argv, **_):
        return 100, "", "E: The package cache file is corrupted"

    with mock.patch.object(basic.AnsibleModule, "get_bin_path", return_value="/usr/bin/apt-cache"), \
            mock.patch.object(basic.AnsibleModule, "run_command", failing):
        result = run_module(apt_lists_info.main, args(host), False).result
    assert result["failed"] is True
    assert "corrupted" in result["msg"]
