# -*- coding: utf-8 -*-
# Copyright: debvirt.cluster developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The fleet module runs in-process against libvirt's test driver, with test:///default as both
its URIs: the virtual machines' and the containers' (the driver keeps domains of type lxc too,
and each kind's reader passes over the other's).

The fixtures module_run and default_driver are in conftest.py.
"""

from __future__ import annotations

from unittest import mock

import pytest
from ansible.module_utils import basic

from ansible_collections.debvirt.cluster.plugins.modules import fleet

URI = "test:///default"
SECRET = "dvS3cr3t"  # a VNC password has at most 8 characters


@pytest.fixture
def run(module_run):
    return lambda args: module_run(fleet, args)


@pytest.fixture
def args(tmp_path):
    rootfs = tmp_path / "ct1"
    (rootfs / "sbin").mkdir(parents=True)
    (rootfs / "sbin" / "init").write_text("#!/bin/sh\n")
    return {
        "uri": URI, "container_uri": URI, "fleet": "unit",
        "guests": [
            {"name": "vm1", "memory": 128, "state": "running",
             "graphics": {"type": "vnc", "password": SECRET}},
            {"name": "ct1", "type": "container", "privileged": True, "rootfs": {"path": str(rootfs)},
             "memory": 64, "state": "running"},
        ],
    }


def names(conn):
    return sorted(d.name() for d in conn.listAllDomains(0))


def test_check_mode_reports_both_kinds_and_changes_nothing(default_driver, args, run):
    rc, result, out = run(dict(args, _ansible_check_mode=True, _ansible_diff=True))
    assert rc == 0
    assert result["changed"] is True
    assert {n: (g["type"], g["state"]) for n, g in result["guests"].items()} == \
        {"vm1": ("vm", "running"), "ct1": ("container", "running")}
    assert result["diff"]["after"]["ct1"]["memory"] == 64
    assert names(default_driver) == ["test"]
    assert SECRET not in out


def test_apply_then_nothing_to_do(default_driver, args, run):
    rc, result, _out = run(args)
    assert (rc, result["changed"]) == (0, True)
    assert names(default_driver) == ["ct1", "test", "vm1"]
    assert default_driver.lookupByName("ct1").isActive() and default_driver.lookupByName("vm1").isActive()
    rc, again, _out = run(args)
    assert (rc, again["changed"], again["undeclared"]) == (0, False, [])
    assert [g["changed"] for g in again["guests"].values()] == [False, False]


def test_a_dropped_container_is_reported(default_driver, args, run):
    run(args)
    rc, result, _out = run(dict(args, guests=args["guests"][:1]))
    assert (rc, result["changed"], result["undeclared"], result["purged"]) == (0, False, ["ct1"], [])
    rc, result, _out = run(dict(args, guests=args["guests"][:1], purge=True))
    assert (rc, result["changed"], result["purged"]) == (0, True, ["ct1"])
    assert names(default_driver) == ["test", "vm1"]


def test_one_bad_item_fails_whole_naming_it_and_hides_secrets(default_driver, args, run):
    bad = dict(args, guests=args["guests"] + [{"name": "ct2", "type": "container", "cpu_shares": 1}])
    rc, result, out = run(bad)
    assert rc == 1
    assert result["msg"] == "guests[2] (ct2): cpu_shares must be at least 2, got 1"
    assert names(default_driver) == ["test"]
    assert SECRET not in out


def test_an_open_console_without_a_password_is_warned_of_in_a_fleet_item(default_driver, args, run):
    args["guests"][0]["graphics"] = {"type": "spice", "listen": "0.0.0.0"}
    rc, result, _out = run(dict(args, _ansible_check_mode=True))
    assert rc == 0
    assert "guest vm1: The spice console of guest vm1 listens on 0.0.0.0 without a password" in str(result["warnings"])
    args["guests"][0]["graphics"]["insecure_ok"] = True
    rc, result, _out = run(dict(args, _ansible_check_mode=True))
    assert rc == 0 and "without a password" not in str(result.get("warnings", []))


def test_the_invocation_log_hides_every_items_secrets(default_driver, args, run):
    # Ansible logs the invocation from AnsibleModule's __init__, before main() validates the items.
    args["guests"].append({"name": "vm9", "node": "elsewhere",
                           "cloud_init": {"user_data": {"users": [{"name": "ops", "passwd": "dvUserData9"}]}}})
    logged = mock.Mock()
    with mock.patch.object(basic, "has_journal", False), mock.patch.object(basic.syslog, "syslog", logged):
        rc, _result, out = run(dict(args, node="here", _ansible_check_mode=True))
    assert rc == 0
    text = " ".join(str(c) for c in logged.call_args_list)
    assert "Invoked with" in text and "vm9" in text
    for secret in (SECRET, "dvUserData9"):
        assert secret not in text and secret not in out
