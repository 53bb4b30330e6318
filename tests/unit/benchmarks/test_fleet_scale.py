# -*- coding: utf-8 -*-
# Copyright: (c) 2026, tritonfleet maintainers
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The pure parts of benchmarks/fleet_scale.py: the generated inventory, the recap it judges runs by, the table."""

import yaml

import fleet_scale

RECAP_OUTPUT = """\
PLAY [Verify] ******************************************************************

TASK [Report] ******************************************************************
ok: [scale01] => changed=false
  msg: 'scale01: ok=3 changed=1 is not a recap line'

PLAY RECAP *********************************************************************
scale01                    : ok=120  changed=0    unreachable=0    failed=0    skipped=40   rescued=0    ignored=0
scale02                    : ok=118  changed=2    unreachable=0    failed=1    skipped=41   rescued=0    ignored=0
scale03                    : ok=1    changed=0    unreachable=1    failed=0    skipped=0    rescued=0    ignored=0

"""


def test_every_host_gets_its_own_root_ports_and_shm_prefix(tmp_path):
    inv = fleet_scale.inventory(8, tmp_path, 21000)
    hosts = inv["triton_servers"]["hosts"]
    assert list(hosts) == ["scale%02d" % i for i in range(1, 9)]
    assert len({h["tritonfleet_root"] for h in hosts.values()}) == 8
    assert all(h["tritonfleet_root"].startswith(str(tmp_path) + "/scale") for h in hosts.values())
    bases = [h["servers_http_port_base"] for h in hosts.values()]
    assert bases == [21000 + 100 * i for i in range(8)]
    prefixes = [h["servers_shm_region_prefix"] for h in hosts.values()]
    # No prefix of one host's instance region is a prefix of another's, nor of the local default's tritonfleet<i>_.
    regions = [p + "0_" for p in prefixes] + ["tritonfleet0_", "tritonfleet1_"]
    assert not [(a, b) for a in regions for b in regions if a != b and b.startswith(a)]
    for host in hosts.values():
        assert host["ansible_connection"] == "local" and host["servers_count"] == 1
        # every port the host uses (servers, gateway +80.., monitoring +90..) stays inside its own block of 100
        assert host["servers_http_port_base"] < host["engine_transfer_port"] < host["servers_http_port_base"] + 100
    assert inv["triton_gateways"]["hosts"] == {"scale01": None} and inv["monitoring"]["hosts"] == {"scale01": None}


def test_no_front_host_leaves_the_groups_empty(tmp_path):
    inv = fleet_scale.inventory(3, tmp_path, 30000, front="none")
    assert inv["triton_gateways"]["hosts"] == {} and inv["monitoring"]["hosts"] == {}
    assert len(inv["triton_servers"]["hosts"]) == 3


def test_written_inventory_has_the_local_defaults_group_vars(tmp_path):
    path = fleet_scale.write_inventory(tmp_path / "inv", 3, tmp_path / "root", 21000)
    assert yaml.safe_load(path.read_text()) == fleet_scale.inventory(3, tmp_path / "root", 21000)
    copied = yaml.safe_load((tmp_path / "inv" / "group_vars" / "all.yml").read_text())
    assert copied["tritonfleet_runtime"] == "process" and copied["facts_accelerator"] == "cpu"
    # written again (the next run), it replaces the copy instead of failing
    fleet_scale.write_inventory(tmp_path / "inv", 1, tmp_path / "root", 21000)
    assert list(yaml.safe_load(path.read_text())["triton_servers"]["hosts"]) == ["scale01"]


def test_recap_is_read_from_the_last_play_recap_only():
    recap = fleet_scale.parse_recap(RECAP_OUTPUT)
    assert list(recap) == ["scale01", "scale02", "scale03"]
    assert recap["scale01"] == dict(ok=120, changed=0, unreachable=0, failed=0, skipped=40, rescued=0, ignored=0)
    assert recap["scale02"]["failed"] == 1 and recap["scale03"]["unreachable"] == 1
    assert fleet_scale.parse_recap("no recap at all\n") == {}


def test_recap_problems_name_each_host():
    recap = fleet_scale.parse_recap(RECAP_OUTPUT)
    hosts = ["scale01", "scale02", "scale03", "scale04"]
    assert fleet_scale.recap_problems(recap, hosts) == [
        "scale02: failed=1", "scale03: unreachable=1", "scale04: not in the recap"]
    assert "scale02: changed=2 on the no-op" in fleet_scale.recap_problems(recap, hosts, noop=True)
    assert fleet_scale.recap_problems(recap, ["scale01"], noop=True) == []


def test_table_gives_per_host_and_ratio_columns():
    results = [dict(size=1, converge=100.0, noop=20.0, setup=5.0), dict(size=8, converge=140.0, noop=40.0, setup=10.0)]
    rows = fleet_scale.rows_for(results)
    assert rows[1]["noop_per_host"] == 5.0 and rows[1]["noop_setup"] == 4.0 and rows[1]["scale"] == 1.4
    lines = fleet_scale.table(rows)
    assert lines[0].split() == ["hosts", "converge", "s", "no-op", "s", "no-op/host", "s", "setup", "s", "no-op/setup",
                                "conv/conv1"]
    assert lines[2].split() == ["8", "140.0", "40.0", "5.00", "10.0", "4.00", "1.40"]


def test_table_without_a_one_host_run_leaves_the_scale_out():
    lines = fleet_scale.table(fleet_scale.rows_for([dict(size=3, converge=90.0, noop=30.0, setup=0.0)]))
    assert lines[1].split()[-2:] == ["-", "-"]
