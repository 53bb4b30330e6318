# -*- coding: utf-8 -*-
# Copyright: (c) 2026, tritonfleet maintainers
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""When apt's package lists can serve an install (module_utils/apt_lists.py)."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

from ansible_collections.tritonfleet.serving.plugins.module_utils import apt_lists

# apt-cache policy on Debian 12: one package installed, one installable, one only virtual;
# a package apt does not know at all is not printed.
POLICY = """\
docker.io:
  Installed: (none)
  Candidate: 20.10.24+dfsg1-1+deb12u1+b6
  Version table:
     20.10.24+dfsg1-1+deb12u1+b6 500
        500 http://deb.debian.org/debian bookworm/main amd64 Packages
python3-requests:
  Installed: 2.28.1+dfsg-1
  Candidate: 2.28.1+dfsg-1
  Version table:
 *** 2.28.1+dfsg-1 500
        500 http://deb.debian.org/debian bookworm/main amd64 Packages
        100 /var/lib/dpkg/status
mail-transport-agent:
  Installed: (none)
  Candidate: (none)
  Version table:
"""


def test_parse_policy_reads_installed_and_candidate():
    policy = apt_lists.parse_policy(POLICY)
    assert policy == {
        "docker.io": (None, "20.10.24+dfsg1-1+deb12u1+b6"),
        "python3-requests": ("2.28.1+dfsg-1", "2.28.1+dfsg-1"),
        "mail-transport-agent": (None, None),
    }


def test_unservable_names_unknown_and_candidate_less_packages_only():
    policy = apt_lists.parse_policy(POLICY)
    wanted = ["docker.io", "python3-requests", "mail-transport-agent", "nvidia-container-toolkit"]
    assert apt_lists.unservable(wanted, policy) == ["mail-transport-agent", "nvidia-container-toolkit"]


def test_installed_package_without_candidate_is_servable():
    policy = {"docker.io": ("20.10.24", None)}
    assert apt_lists.unservable(["docker.io"], policy) == []


def write(path, text):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return str(path)


def test_source_files_in_apts_order_and_only_its_patterns(tmp_path):
    main = write(tmp_path / "sources.list", "deb http://a ./\n")
    parts = tmp_path / "sources.list.d"
    b = write(parts / "b.sources", "Types: deb\n")
    a = write(parts / "a.list", "deb http://b ./\n")
    write(parts / "c.list.disabled", "deb http://c ./\n")
    assert apt_lists.source_files(main, str(parts)) == [main, a, b]
    assert apt_lists.source_files(str(tmp_path / "none"), str(parts)) == [a, b]


def test_sources_digest_follows_contents_not_times(tmp_path):
    parts = tmp_path / "sources.list.d"
    path = write(parts / "debian.sources", "URIs: http://deb.debian.org/debian\n")
    files = apt_lists.source_files(str(tmp_path / "sources.list"), str(parts))
    before = apt_lists.sources_digest(files)
    write(parts / "debian.sources", "URIs: http://deb.debian.org/debian\n")
    assert apt_lists.sources_digest(files) == before
    write(parts / "debian.sources", "URIs: http://mirror.internal/debian\n")
    assert apt_lists.sources_digest(files) != before
    # A source added beside the others changes the digest too.
    write(parts / "nvidia.list", "deb http://nvidia ./\n")
    assert apt_lists.sources_digest(apt_lists.source_files(str(tmp_path / "x"), str(parts))) != before
    assert path in files


def test_package_lists_leave_out_apts_own_files(tmp_path):
    lists = tmp_path / "lists"
    for name in ("lock", "auxfiles", "partial", "deb.debian.org_debian_dists_bookworm_InRelease"):
        (lists / name).mkdir(parents=True) if name in ("auxfiles", "partial") else write(lists / name, "")
    assert apt_lists.package_lists(str(lists)) == []
    write(lists / "deb.debian.org_debian_dists_bookworm_main_binary-amd64_Packages.lz4", "")
    assert apt_lists.package_lists(str(lists)) == ["deb.debian.org_debian_dists_bookworm_main_binary-amd64_Packages.lz4"]
    assert apt_lists.package_lists(str(tmp_path / "missing")) == []


def test_update_reasons():
    lists = ["x_Packages"]
    assert apt_lists.update_reasons(lists, "d1", "d1", []) == []
    assert apt_lists.update_reasons([], "d1", "d1", ["docker.io"]) == ["the host has no package lists"]
    assert apt_lists.update_reasons(lists, "d2", "d1", []) == ["the sources changed since the lists were last read"]
    assert apt_lists.update_reasons(lists, "d1", None, []) == ["no record of the sources the lists were read from"]
    assert apt_lists.update_reasons(lists, "d1", "d1", ["docker.io", "x"]) == ["no install candidate for docker.io, x"]
