# -*- coding: utf-8 -*-
# Copyright: debvirt.cluster developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The guest and guest_info modules run in-process against libvirt's test driver.

The test driver forgets everything when its last connection closes, and a module closes its
own; a test that needs the state of one run in the next holds a connection of its own open.
"""

from __future__ import annotations

import json

import pytest

from ansible_collections.debvirt.cluster.plugins.module_utils import _module
from ansible_collections.debvirt.cluster.plugins.modules import guest, guest_info

URI = "test:///default"
WEB01 = {
    "uri": URI, "name": "web01", "memory": 256, "state": "running",
    "disks": [{"pool": "default-pool", "volume": "web01.qcow2", "size": "64M"}],
    "interfaces": [{"network": "default"}],
}


def names(conn):
    return sorted(d.name() for d in conn.listAllDomains(0))


def test_check_mode_reports_and_changes_nothing(default_driver, module_run):
    rc, result, _out = module_run(guest, dict(WEB01, _ansible_check_mode=True, _ansible_diff=True))
    assert rc == 0
    assert result["changed"] is True
    assert [c["action"] for c in result["changes"]] == ["create", "define", "start"]
    assert result["diff"]["before"] == {}
    assert result["diff"]["after"]["memory"] == 256
    assert result["diff"]["after"]["state"] == "running"
    assert result["guest"]["name"] == "web01"
    assert names(default_driver) == ["test"]
    assert default_driver.storagePoolLookupByName("default-pool").listVolumes() == []


def test_apply_then_nothing_to_do(default_driver, module_run):
    rc, result, _out = module_run(guest, WEB01)
    assert (rc, result["changed"]) == (0, True)
    assert names(default_driver) == ["test", "web01"]
    assert default_driver.lookupByName("web01").isActive()
    assert result["guest"]["state"] == "running"
    assert result["guest"]["interfaces"][0]["mac"].startswith("52:54:00:")
    # No KVM in the test driver: said once, as an Ansible warning (2.19 structures warnings as events).
    assert json.dumps(result["warnings"]).count("KVM is not available on this host") == 1
    for check_mode in (True, False):
        rc, again, _out = module_run(guest, dict(WEB01, _ansible_check_mode=check_mode))
        assert (rc, again["changed"], again["changes"]) == (0, False, [])
        assert again["diff"]["before"] == again["diff"]["after"]


def test_diff_of_an_update(default_driver, module_run):
    module_run(guest, WEB01)
    rc, result, _out = module_run(guest, dict(WEB01, memory=512, _ansible_diff=True))
    assert rc == 0
    assert result["diff"]["before"]["memory"] == 256
    assert result["diff"]["after"]["memory"] == 512
    assert result["changes"] == [{"action": "update", "target": "max_memory", "before": 256, "after": 512,
                                  "needs_restart": True},
                                 {"action": "update", "target": "memory", "before": 256, "after": 512,
                                  "needs_restart": True}]
    assert result["reboot_required"] is True


def test_password_never_reaches_the_output(default_driver, module_run):
    rc, result, out = module_run(guest, dict(WEB01, graphics={"type": "vnc", "password": "s3cr3tvn"},
                                             _ansible_check_mode=True))
    assert rc == 0
    assert result["diff"]["after"]["graphics"]["password"] == "********"
    assert "s3cret-vnc" not in out


@pytest.mark.parametrize("args, message", [
    ({"interfaces": [{"network": "nope"}]}, "Network nope does not exist (define it first, e.g. with debvirt.cluster.network)"),
    ({"memory": 4096, "max_memory": 1024}, "memory (4096 MiB) is larger than max_memory (1024 MiB)"),
    ({"name": "bad name"}, "Invalid guest name 'bad name'"),
    ({"uri": "test:///nonexistent-debvirt-file.xml"}, "Failed to connect to test:///nonexistent-debvirt-file.xml: "),
])
def test_failures_give_a_message_without_traceback(default_driver, module_run, args, message):
    rc, result, out = module_run(guest, dict(WEB01, **args))
    assert rc == 1
    assert result["failed"] is True
    assert result["msg"].startswith(message)
    assert "exception" not in result
    assert "Traceback" not in out
    assert names(default_driver) == ["test"]
    assert default_driver.storagePoolLookupByName("default-pool").listVolumes() == []


def test_argument_errors_are_ansibles(module_run):
    rc, result, _out = module_run(guest, dict(WEB01, state="gone"))
    assert rc == 1
    assert "value of state must be one of" in result["msg"]
    rc, result, _out = module_run(guest, {"uri": URI})
    assert rc == 1
    assert "missing required arguments: name" in result["msg"]


@pytest.mark.parametrize("variable, package", [
    ("LIBVIRT_IMPORT_ERROR", "libvirt-python (Debian: python3-libvirt)"),
    ("LXML_IMPORT_ERROR", "lxml (Debian: python3-lxml)"),
])
@pytest.mark.parametrize("module", [guest, guest_info])
def test_missing_library_names_both_packages(monkeypatch, module_run, module, variable, package):
    monkeypatch.setattr(_module, variable, "Traceback (most recent call last):\nImportError: injected")
    rc, result, _out = module_run(module, {"uri": URI, "name": "web01"} if module is guest else {"uri": URI})
    assert rc == 1
    assert result["failed"] is True
    assert "Failed to import the required Python library (%s)" % package in result["msg"]


def test_guest_info(default_driver, module_run):
    module_run(guest, dict(WEB01, tags=["web"]))
    rc, result, _out = module_run(guest_info, {"uri": URI})
    assert (rc, result["changed"]) == (0, False)
    assert [g["name"] for g in result["guests"]] == ["test", "web01"]
    web = result["guests"][1]
    assert (web["state"], web["memory"], web["tags"]) == ("running", 256, ["web"])
    assert web["disks"][0]["volume"] == "web01.qcow2"
    rc, result, _out = module_run(guest_info, {"uri": URI, "tags": ["web"]})
    assert [g["name"] for g in result["guests"]] == ["web01"]
    rc, result, _out = module_run(guest_info, {"uri": URI, "name": ["test", "nope"]})
    assert [g["name"] for g in result["guests"]] == ["test"]


def test_guest_info_in_check_mode_and_failure(module_run):
    rc, result, _out = module_run(guest_info, {"uri": URI, "_ansible_check_mode": True})
    assert (rc, [g["name"] for g in result["guests"]]) == (0, ["test"])
    rc, result, out = module_run(guest_info, {"uri": "test:///nonexistent-debvirt-file.xml"})
    assert rc == 1
    assert result["msg"].startswith("Failed to connect to test:///nonexistent-debvirt-file.xml: ")
    assert "Traceback" not in out


@pytest.mark.parametrize("check_mode", [True, False])
def test_an_open_console_without_a_password_is_warned_of_unless_accepted(default_driver, module_run, check_mode):
    open_vnc = dict(WEB01, graphics={"type": "vnc", "listen": "0.0.0.0"}, _ansible_check_mode=check_mode)
    rc, result, _out = module_run(guest, open_vnc)
    assert rc == 0
    assert json.dumps(result["warnings"]).count("The vnc console of guest web01 listens on 0.0.0.0 without a password") == 1
    rc, result, _out = module_run(guest, dict(open_vnc, graphics=dict(open_vnc["graphics"], insecure_ok=True)))
    assert rc == 0
    assert "without a password" not in json.dumps(result.get("warnings", []))
