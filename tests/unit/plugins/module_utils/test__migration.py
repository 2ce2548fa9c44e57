# -*- coding: utf-8 -*-
# Copyright: debvirt.cluster developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The migration planner: every preflight check, the planned steps. No host:
the facts are built by hand as read_facts() would have read them. What a failed step leaves
behind against clients that keep their domains and volumes in dicts and fail where a test says."""

from __future__ import annotations

import pytest

from ansible_collections.debvirt.cluster.plugins.module_utils._cluster import Shell
from ansible_collections.debvirt.cluster.plugins.module_utils._errors import DebvirtError, InvalidSpec
from ansible_collections.debvirt.cluster.plugins.module_utils._migration import (
    MigrationRequest,
    apply_container,
    apply_migration,
    plan_migration,
    preflight,
    request_from_params,
)
from ansible_collections.debvirt.cluster.plugins.module_utils._migration_facts import Disk, Facts
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


def same_file_disk():
    """A disk in a dir pool that the probe found to be one directory on both nodes."""
    d = local_disk(exists=True)
    d.shared = d.same_file = True
    d.on_target = None
    return d


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
    assert [c.action for c in plan.changes] == ["stop", "copy", "undefine", "define", "start", "delete"]


def test_a_stopped_container_moves_offline():
    plan, _checks = plan_migration(req(keep_source_storage=True), container_facts(state="stopped"))
    assert [c.action for c in plan.changes] == ["copy", "undefine", "define"]


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


# --- shared storage found by a probe -----------------------------------------------------------------
@pytest.mark.parametrize("copy_storage", ["auto", "all", "never"])
def test_a_disk_on_a_shared_directory_is_never_copied_nor_deleted(copy_storage):
    f = facts(disks=[same_file_disk()])
    checks = preflight(req(copy_storage=copy_storage), f)
    assert [(c["result"], c["detail"]) for c in checks if c["check"] == "storage"] == [
        ("passed", "shared: vda (dir, the same file on both nodes)")]
    plan, _checks = plan_migration(req(copy_storage=copy_storage), f)
    assert steps(plan) == [("migrate", "guest web")]


def test_offline_on_a_shared_directory_moves_only_the_definition():
    plan, _checks = plan_migration(req(), facts(state="stopped", disks=[same_file_disk()]))
    assert steps(plan) == [("define", "guest web"), ("undefine", "guest web on a")]


# --- what a failed step leaves -----------------------------------------------------------------------
class Vol:
    def __init__(self, path):
        self.path_ = path

    def name(self):
        return self.path_.rsplit("/", 1)[-1]


class FakeNode:
    """One node's libvirt: domains {name: [state, autostart]}, volumes by path; fail names the
    method that raises."""

    def __init__(self, domains=(), volumes=(), fail=None):
        self.domains = {n: ["running", False] for n in domains}
        self.volumes = set(volumes)
        self.fail = fail

    def _maybe_fail(self, what):
        if self.fail == what:
            raise DebvirtError("Failed to %s: injected" % what)

    def domain(self, name):
        return name if name in self.domains else None

    def domain_state(self, dom):
        return self.domains[dom][0]

    def create_volume(self, pool, xml, name):
        self._maybe_fail("create_volume")
        path = "/var/lib/libvirt/images/%s" % name
        self.volumes.add(path)
        return Vol(path)

    def pool(self, name):
        return name

    def delete_volume(self, vol):
        self.volumes.discard(vol.path_)

    def volume_by_path(self, path):
        return Vol(path) if path in self.volumes else None

    def volume(self, pool, name):
        return self.volume_by_path("/var/lib/libvirt/images/%s" % name)

    def copy_volume_to(self, vol, dest, dest_vol, size, deadline=None):
        assert vol.path_ in self.volumes and dest_vol.path_ in dest.volumes

    def set_autostart(self, dom, value):
        self._maybe_fail("set_autostart")
        # As libvirt's QEMU driver does when it cannot make the link: success, and nothing kept.
        if self.fail != "keep_autostart":
            self.domains[dom][1] = value

    def autostart(self, dom):
        return self.domains[dom][1]

    def job_stats(self, dom, completed=False):
        return {"time_elapsed": 900, "downtime": 30, "data_total": 1}

    def migrate_live(self, dom, dest, uri, xml, bandwidth, copy_disks, tls=False, unsafe=False):
        self._maybe_fail("migrate_live")
        self.unsafe = unsafe
        del self.domains[dom]
        dest.domains[dom] = ["running", False]
        return dom

    def define(self, xml, name):
        self._maybe_fail("define")
        self.domains[name] = ["stopped", False]
        return name

    def define_container(self, xml, name):
        return self.define(xml, name)

    def undefine(self, dom, nvram=False):
        self._maybe_fail("undefine")
        del self.domains[dom]

    def undefine_container(self, dom):
        self.undefine(dom)

    def destroy(self, dom):
        self.domains[dom][0] = "stopped"

    def start(self, dom):
        self._maybe_fail("start")
        self.domains[dom][0] = "running"

    def stop_container(self, dom, timeout):
        self.domains[dom][0] = "stopped"


DISK = "/var/lib/libvirt/images/web.qcow2"


def moved(state="running", autostart=True, src_fail=None, tgt_fail=None, container=False):
    f = container_facts(state) if container else facts(state=state, disks=[local_disk()])
    f.autostart = autostart
    src = FakeNode(["web"], [DISK], src_fail)
    src.domains["web"] = [state, autostart]
    tgt = FakeNode(fail=tgt_fail)
    plan, _checks = plan_migration(req(), f)
    return f, plan, {"a": src, "b": tgt}


@pytest.mark.parametrize("fail", ["set_autostart", "keep_autostart"])
def test_a_failure_after_the_live_move_keeps_the_guest_and_its_volumes_on_the_target(fail):
    f, plan, clients = moved(tgt_fail=fail)
    with pytest.raises(MigrationError) as e:
        apply_migration(req(), plan, f, clients)
    assert "Guest web is on b now and stays there: nothing was rolled back" in e.value.msg
    assert "its old volumes on a were kept (%s)" % DISK in e.value.msg
    assert clients["b"].domains == {"web": ["running", False]} and clients["b"].volumes == {DISK}
    assert clients["a"].domains == {} and clients["a"].volumes == {DISK}


def test_a_failed_live_move_removes_what_it_made_on_the_target():
    f, plan, clients = moved(src_fail="migrate_live")
    with pytest.raises(MigrationError, match="injected. Guest web is still running on a$"):
        apply_migration(req(), plan, f, clients)
    assert clients["b"].volumes == set() and clients["a"].volumes == {DISK}


def test_an_offline_move_that_fails_before_the_source_is_undefined_is_undone():
    f, plan, clients = moved(state="stopped", src_fail="undefine")
    with pytest.raises(MigrationError, match="Guest web is still stopped on a$"):
        apply_migration(req(), plan, f, clients)
    assert clients["b"].domains == {} and clients["b"].volumes == set()


@pytest.mark.parametrize("fail, where", [("define", "a"), ("set_autostart", "a"), ("keep_autostart", "a"),
                                         ("start", "a")])
def test_a_container_move_leaves_one_definition_whatever_fails(fail, where):
    f, plan, clients = moved(tgt_fail=fail, container=True)

    with pytest.raises(MigrationError, match=r"\. Guest web is still running on a$"):
        apply_container(req(), plan, f, clients, Shell(lambda argv, **kwargs: (0, "", "")))
    assert [n for n in ("a", "b") if clients[n].domains] == [where]
    assert clients[where].domains["web"] == ["running", True], "autostart goes back with it"


def test_a_container_target_that_cannot_be_asked_keeps_the_source_undefined():
    f, plan, clients = moved(tgt_fail="start", container=True)

    def unreachable(name):
        raise DebvirtError("Failed to look up guest web: unable to connect")

    clients["b"].domain = unreachable

    with pytest.raises(MigrationError, match="so that two nodes never hold it, it was not defined on a again"):
        apply_container(req(), plan, f, clients, Shell(lambda argv, **kwargs: (0, "", "")))
    assert clients["a"].domains == {}


@pytest.mark.parametrize("cache, unsafe", [("none", True), ("directsync", True), (None, False), ("writeback", False)])
def test_libvirt_is_told_of_shared_storage_only_that_the_probe_proved_and_that_has_no_host_cache(cache, unsafe):
    f = facts(disks=[same_file_disk()])
    f.disks[0].cache = cache
    plan, _checks = plan_migration(req(), f)
    clients = {"a": FakeNode(["web"]), "b": FakeNode()}
    apply_migration(req(), plan, f, clients)
    assert clients["a"].unsafe is unsafe and clients["b"].domains == {"web": ["running", False]}


def test_a_disk_libvirt_judges_itself_keeps_it_judging():
    shared = same_file_disk()
    shared.cache = "none"
    f = facts(disks=[shared, Disk("vdc", "/mnt/nfs/other.img", False, "nfs", "netfs", "other.img", True)])
    plan, _checks = plan_migration(req(), f)
    clients = {"a": FakeNode(["web"]), "b": FakeNode()}
    apply_migration(req(), plan, f, clients)
    assert clients["a"].unsafe is False
