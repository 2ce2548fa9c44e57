# -*- coding: utf-8 -*-
# Copyright: debvirt.cluster developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The migration planner: every preflight check, the planned steps. No host:
the facts are built by hand as read_facts() would have read them."""

from __future__ import annotations

import pytest

from ansible_collections.debvirt.cluster.plugins.module_utils._errors import InvalidSpec
from ansible_collections.debvirt.cluster.plugins.module_utils._migration import (
    Disk,
    Facts,
    MigrationRequest,
    plan_migration,
    preflight,
    request_from_params,
)
from ansible_collections.debvirt.cluster.plugins.module_utils._transport import Members, MigrationError, Node

GIB = 1024 ** 3


def members(quorate=True, online_b=True, source="corosync"):
    return Members({"a": Node("a", "qemu:///system", "10.0.0.1", True),
                    "b": Node("b", "qemu+ssh://root@10.0.0.2/system", "10.0.0.2", online_b)},
                   quorate, source)


def facts(state="running", disks=(), networks=None, free=8 * GIB, memory_mib=512, cpu=(True, "ok"), **kw):
    f = Facts()
    f.members = kw.get("members") or members()
    f.source = "a"
    f.state = state
    f.found = {"a": state}
    f.memory_kib = memory_mib * 1024
    f.networks = sorted(networks or {})
    f.target_networks = dict(networks or {})
    f.disks = list(disks)
    f.target_pools = kw.get("target_pools", {"local": {"active": True, "path": "/var/lib/libvirt/images"}})
    f.source_pool_paths = {"local": "/var/lib/libvirt/images"}
    f.target_free = free
    f.cpu = cpu
    f.inactive_xml = "<domain/>"
    return f


def local_disk(exists=False, used_by=None, readonly=False):
    d = Disk("vda", "/var/lib/libvirt/images/web.qcow2", readonly, "local", "dir", "web.qcow2", False,
             10 * GIB, GIB, "qcow2")
    d.on_target = {"exists": exists, "used_by": used_by}
    return d


def shared_disk():
    return Disk("vdb", "iqn.2026-11.lab:disk/0", False, "san", "iscsi-direct", "unit:0:0:0", True)


def req(**kw):
    values = dict(name="web", target="b")
    values.update(kw)
    return MigrationRequest(**values)


def results(checks):
    return {c["check"]: c["result"] for c in checks}


# --- request ---------------------------------------------------------------------------------------
BASE = dict(name="web", target="b", mode="auto", copy_storage="auto", timeout=600, max_downtime=None,
            bandwidth=None, min_free_memory=0, keep_source_storage=False, members=None,
            migrate_address=None)


@pytest.mark.parametrize("change, message", [
    ({"timeout": 0}, "timeout must be at least 1"),
    ({"bandwidth": -1}, "bandwidth must not be negative"),
    ({"members": {}}, "at least the source and the target"),
    ({"members": {"a": "qemu:///system"}}, "target b is not one of the members given"),
])
def test_bad_requests(change, message):
    with pytest.raises(InvalidSpec, match=message):
        request_from_params(dict(BASE, **change))


# --- preflight ---------------------------------------------------------------------------------------
def test_all_checks_pass_for_a_running_diskless_guest():
    checks = preflight(req(), facts())
    assert results(checks) == {"target is a quorate member": "passed", "mode": "passed", "networks": "passed",
                               "storage": "passed", "memory": "passed", "cpu": "passed"}


@pytest.mark.parametrize("f, check, detail", [
    (facts(members=members(quorate=False)), "target is a quorate member", "not quorate"),
    (facts(members=members(online_b=False)), "target is a quorate member", "b is offline"),
    (facts(networks={"lan": None}), "networks", "b lacks network(s) lan"),
    (facts(networks={"lan": False}), "networks", "has network(s) lan but not running"),
    (facts(free=256 * 1024 ** 2), "memory", "guest needs 512 MiB, b has 256 MiB free"),
    (facts(cpu=(False, "the target's kvm hypervisor cannot provide CPU Skylake")), "cpu", "cannot provide"),
    (facts(disks=[local_disk()], target_pools={"local": None}), "storage", "b lacks storage pool local"),
    (facts(disks=[local_disk()], target_pools={"local": {"active": False, "path": "/x"}}), "storage",
     "storage pool local on b is not running"),
    (facts(disks=[local_disk()], target_pools={"local": {"active": True, "path": "/srv"}}), "storage",
     "the disk's path would change"),
    (facts(disks=[local_disk(exists=True)]), "storage", "copy_storage all overwrites it"),
    (facts(disks=[local_disk(exists=True, used_by="db")]), "storage", "belongs to guest db"),
    (facts(disks=[local_disk(readonly=True)]), "storage", "read-only local disk"),
])
def test_a_failed_check_refuses_with_its_reason(f, check, detail):
    checks = preflight(req(), f)
    failed = {c["check"]: c["detail"] for c in checks if c["result"] == "failed"}
    assert list(failed) == [check]
    assert detail in failed[check]
    with pytest.raises(MigrationError) as e:
        plan_migration(req(), f)
    assert "Nothing was changed; the guest stays running on a" in e.value.msg
    assert detail in e.value.msg


def test_every_failed_check_is_named_at_once():
    f = facts(networks={"lan": None}, free=0)
    with pytest.raises(MigrationError) as e:
        plan_migration(req(), f)
    assert "networks:" in e.value.msg and "memory:" in e.value.msg


def test_min_free_memory_is_kept():
    checks = preflight(req(min_free_memory=1024), facts(free=1024 * 1024 ** 2))
    assert results(checks)["memory"] == "failed"
    assert results(preflight(req(min_free_memory=256), facts(free=1024 * 1024 ** 2)))["memory"] == "passed"


def test_copy_storage_never_refuses_local_disks():
    checks = preflight(req(copy_storage="never"), facts(disks=[local_disk()]))
    assert results(checks)["storage"] == "failed"


def test_copy_storage_all_reuses_an_unused_target_volume():
    assert results(preflight(req(copy_storage="all"), facts(disks=[local_disk(exists=True)])))["storage"] == "passed"


def test_shared_disks_need_nothing():
    f = facts(disks=[shared_disk()], target_pools={})
    assert results(preflight(req(copy_storage="never"), f))["storage"] == "passed"


def test_members_given_skip_the_quorum_check():
    checks = preflight(req(), facts(members=members(quorate=None, online_b=None, source="given")))
    assert results(checks)["target is a quorate member"] == "skipped"


def test_no_cpu_model_is_not_compared():
    assert "cpu" not in results(preflight(req(), facts(cpu=None)))


@pytest.mark.parametrize("mode, state, ok", [
    ("auto", "running", True), ("auto", "stopped", True), ("live", "running", True),
    ("live", "stopped", False), ("offline", "stopped", True), ("offline", "running", False),
    ("live", "paused", True),
])
def test_modes(mode, state, ok):
    assert (results(preflight(req(mode=mode), facts(state=state)))["mode"] == "passed") is ok


def test_a_stopped_guest_needs_no_free_memory():
    assert results(preflight(req(), facts(state="stopped", free=0)))["memory"] == "skipped"


# --- the plan ----------------------------------------------------------------------------------------
def steps(plan):
    return [(c.action, c.target) for c in plan.changes]


def test_already_on_the_target_plans_nothing():
    f = facts()
    f.source = "b"
    plan, checks = plan_migration(req(), f)
    assert not plan.changed and checks == []


def test_live_plan_for_a_diskless_guest():
    plan, _checks = plan_migration(req(), facts())
    assert steps(plan) == [("migrate", "guest web")]
    assert (plan.changes[0].before, plan.changes[0].after) == ("a", "b")


def test_live_plan_with_a_local_disk_creates_copies_and_deletes_the_source():
    plan, _checks = plan_migration(req(), facts(disks=[local_disk(), shared_disk()]))
    assert steps(plan) == [("create", "volume web.qcow2 in pool local on b"), ("migrate", "guest web"),
                           ("delete", "volume web.qcow2 in pool local on a")]


def test_keep_source_storage():
    plan, _checks = plan_migration(req(keep_source_storage=True), facts(disks=[local_disk()]))
    assert not plan.has("delete")


def test_offline_plan():
    plan, _checks = plan_migration(req(), facts(state="stopped", disks=[local_disk()]))
    assert steps(plan) == [("create", "volume web.qcow2 in pool local on b"), ("copy", "disk vda to b"),
                           ("define", "guest web"), ("undefine", "guest web on a"),
                           ("delete", "volume web.qcow2 in pool local on a")]


def test_offline_plan_with_all_overwrites_without_creating():
    plan, _checks = plan_migration(req(copy_storage="all"), facts(state="stopped", disks=[local_disk(exists=True)]))
    assert not plan.has("create") and plan.has("copy")


# --- containers --------------------------------------------------------------------------------------
def container_facts(state="running", **kw):
    f = facts(state=state, cpu=None, **kw)
    f.container = True
    f.rootfs = "/var/lib/debvirt/containers/ct/rootfs"
    return f


def test_a_running_container_moves_by_a_restart():
    plan, checks = plan_migration(req(), container_facts())
    assert results(checks)["mode"] == "passed"
    assert [c.action for c in plan.changes] == ["stop", "copy", "define", "start", "undefine", "delete"]


def test_a_stopped_container_moves_offline():
    plan, _checks = plan_migration(req(keep_source_storage=True), container_facts(state="stopped"))
    assert [c.action for c in plan.changes] == ["copy", "define", "undefine"]


def test_a_container_never_moves_live():
    checks = preflight(req(mode="live"), container_facts())
    assert results(checks)["mode"] == "failed"


def test_a_container_root_already_on_the_target_is_refused():
    f = container_facts()
    f.rootfs_on_target = True
    with pytest.raises(MigrationError, match="already has a non-empty"):
        plan_migration(req(), f)


def test_a_container_root_in_an_image_is_refused():
    f = container_facts()
    f.rootfs_problem = "its root file system is not a directory"
    with pytest.raises(MigrationError, match="not a directory"):
        plan_migration(req(), f)
