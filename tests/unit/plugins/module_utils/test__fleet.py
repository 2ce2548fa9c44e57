# -*- coding: utf-8 -*-
# Copyright: debvirt.cluster developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A fleet of virtual machines and containers: item validation, and converge_fleet() end to end
against two connections of libvirt's test driver, one standing for qemu:///system and one for
lxc:///system (the test driver defines and starts domains of type lxc as well).

Containers here are privileged, on a directory made in tmp_path that holds /sbin/init: an
unprivileged one would need the host's subordinate ID ranges.
"""

from __future__ import annotations

import os

import pytest

from ansible_collections.debvirt.cluster.plugins.module_utils import _container
from ansible_collections.debvirt.cluster.plugins.module_utils._client import LibvirtClient
from ansible_collections.debvirt.cluster.plugins.module_utils._container import read_container
from ansible_collections.debvirt.cluster.plugins.module_utils._errors import InvalidSpec, LibvirtCallError
from ansible_collections.debvirt.cluster.plugins.module_utils._fleet import converge_fleet, items_from_params, secrets_of
from ansible_collections.debvirt.cluster.plugins.module_utils._guest import read_guest

FLEET = "unit"


@pytest.fixture
def clients(driver_uri):
    """A connection for each kind; each holds its own copy of the driver's stock objects."""
    out = {"vm": LibvirtClient(driver_uri), "container": LibvirtClient(driver_uri)}
    yield out
    for c in out.values():
        c.close()


@pytest.fixture
def rootfs(tmp_path):
    def make(name):
        path = tmp_path / name
        (path / "sbin").mkdir(parents=True)
        (path / "sbin" / "init").write_text("#!/bin/sh\n")
        return str(path)
    return make


@pytest.fixture
def declared(rootfs):
    """Two virtual machines and two containers, one of each running."""
    return [
        {"name": "vm1", "memory": 128, "state": "running"},
        {"name": "vm2", "memory": 128},
        {"name": "ct1", "type": "container", "privileged": True, "rootfs": {"path": rootfs("ct1")},
         "memory": 64, "state": "running"},
        {"name": "ct2", "type": "container", "privileged": True, "rootfs": {"path": rootfs("ct2")},
         "command": ["/sbin/init", "--app"], "memory": 64},
    ]


def converge(clients, guests, purge=False, check_mode=False):
    items = items_from_params(guests, FLEET)
    return converge_fleet(clients, items, FLEET, purge, check_mode)


def world(clients):
    """Every domain's state and definition on both connections, to prove that a run wrote nothing."""
    return {kind: {d.name(): (c.domain_state(d), c.domain_xml(d)) for d in c.domains()}
            for kind, c in clients.items()}


def changed(result):
    return sorted(name for name, r in result["guests"].items() if r["changed"])


# --- validation, before anything is read -----------------------------------------------------
@pytest.mark.parametrize("item, msg", [
    ({"name": "x", "type": "lxc"}, r"guests\[1\] \(x\): type must be one of vm, container, got 'lxc'"),
    ({"name": "x", "type": "container", "disks": []}, r"guests\[1\] \(x\): unsupported option disks\. Supported parameters include: "),
    ({"name": "x", "type": "container", "memory": "lots"}, r"guests\[1\] \(x\): .*memory"),
    ({"name": "x", "type": "container", "memory": 0}, r"guests\[1\] \(x\): memory must be at least 1"),
    ({"name": "x", "type": "container", "rootfs": {"debian": "bookworm", "image": "/i.tar"}},
     r"guests\[1\] \(x\): rootfs takes at most one source"),
    ({"name": "x", "type": "container", "uri": "lxc:///system"}, r"guests\[1\] \(x\): .*uri"),
    ({"name": "x", "rootfs": {"path": "/srv/x"}}, r"guests\[1\] \(x\): .*rootfs"),
    ({"name": "bad name!", "type": "container"}, r"guests\[1\] \(bad name!\): "),
    ({"type": "container"}, r"guests\[1\] \(\?\): .*name"),
    # Refused by the same request parsing as the guest and container modules', naming the item.
    ({"name": "x", "disks": [{"pool": "p", "volume": "../x.qcow2", "size": "64MiB"}]},
     r"^guests\[1\] \(x\): disks\[0\]\.volume: invalid volume name '\.\./x\.qcow2'"),
    ({"name": "x", "graphics": {"type": "vnc", "password": "123456789"}},
     r"^guests\[1\] \(x\): graphics\.password is longer than the 8 characters libvirt takes"),
    ({"name": "x", "vcpus": 2 ** 31}, r"^guests\[1\] \(x\): vcpus must be at most 8192"),
    ({"name": "x", "type": "container", "interfaces": [{"bridge": "a/b"}]},
     r"^guests\[1\] \(x\): interfaces\[0\]\.bridge: 'a/b' is not a Linux interface name"),
    ({"name": "x", "type": "container", "rootfs": {"pool": "p", "volume": "."}},
     r"^guests\[1\] \(x\): rootfs\.volume: invalid volume name '\.'"),
    ({"name": "x", "type": "container", "hostname": "x\n"}, r"^guests\[1\] \(x\): hostname: 'x\\n' is not a valid"),
])
def test_a_bad_item_is_refused_by_its_index_and_name(item, msg):
    with pytest.raises(InvalidSpec, match=msg):
        items_from_params([{"name": "ok"}, item], FLEET)


def test_a_fleet_name_is_a_name():
    with pytest.raises(InvalidSpec, match="^Invalid fleet name 'my fleet': use letters"):
        items_from_params([{"name": "a"}], "my fleet")


def test_items_are_of_their_type_and_carry_the_fleet():
    items = items_from_params([{"name": "a"}, {"name": "b", "type": "vm"},
                               {"name": "c", "type": "container", "memory": 64}], FLEET)
    assert [(i.name, i.kind.type, i.req.spec.fleet) for i in items] == \
        [("a", "vm", FLEET), ("b", "vm", FLEET), ("c", "container", FLEET)]
    assert items[2].req.spec.memory == 64


def test_a_name_is_declared_once_across_both_kinds():
    with pytest.raises(InvalidSpec, match="guests declare a more than once"):
        items_from_params([{"name": "a"}, {"name": "a", "type": "container"}], FLEET)


def test_items_for_other_nodes_are_left_out_whatever_their_type():
    items = items_from_params(
        [{"name": "a", "node": "n1"}, {"name": "b", "node": "n2", "type": "container"},
         {"name": "c", "node": "n1", "type": "container"}, {"name": "d"}], FLEET, node="n1")
    assert [i.name for i in items] == ["a", "c", "d"]


def test_items_for_other_nodes_are_validated_all_the_same():
    with pytest.raises(InvalidSpec, match=r"guests\[1\] \(b\): memory must be at least 1"):
        items_from_params([{"name": "a", "node": "n1"}, {"name": "b", "node": "n2", "type": "container", "memory": 0}],
                          FLEET, node="n1")
    with pytest.raises(InvalidSpec, match="guests declare a more than once"):
        items_from_params([{"name": "a", "node": "n1"}, {"name": "a", "node": "n2"}], FLEET, node="n1")


def test_secrets_of_every_item_are_collected_even_when_one_before_them_is_refused():
    secrets = set()
    with pytest.raises(InvalidSpec, match=r"guests\[0\] \(c\): memory must be at least 1"):
        items_from_params([{"name": "c", "type": "container", "memory": 0},
                           {"name": "a", "graphics": {"type": "vnc", "password": "s3cret"}}], FLEET, secrets=secrets)
    assert "s3cret" in secrets


def test_secrets_of_reads_the_items_as_their_kinds_do_and_takes_anything():
    items = [{"name": "a", "node": "n2", "graphics": {"type": "vnc", "password": "s3cret"},
              "cloud_init": {"user_data": "#cloud-config\npassword: p4ss\n"}},
             {"name": "b", "type": "bogus", "password": "x"}, "not a dict", {"name": "c", "memory": 0}]
    assert secrets_of(items) == {"s3cret", "#cloud-config\npassword: p4ss\n"}
    assert secrets_of(None) == set()


# --- end to end on the test driver ------------------------------------------------------------
def test_check_mode_predicts_both_kinds_and_changes_nothing(clients, declared):
    before = world(clients)
    predicted = converge(clients, declared, check_mode=True)
    assert world(clients) == before
    assert changed(predicted) == ["ct1", "ct2", "vm1", "vm2"]
    assert {n: r["type"] for n, r in predicted["guests"].items()} == \
        {"vm1": "vm", "vm2": "vm", "ct1": "container", "ct2": "container"}
    assert predicted["diff"]["before"]["ct1"] == {}
    assert predicted["diff"]["after"]["ct1"]["memory"] == 64
    real = converge(clients, declared)
    for name, r in real["guests"].items():
        assert r["changes"] == predicted["guests"][name]["changes"], name
    assert real["diff"]["after"] == predicted["diff"]["after"]


def test_converge_then_rerun_writes_nothing(clients, declared):
    first = converge(clients, declared)
    assert first["changed"]
    assert {n: r["state"] for n, r in first["guests"].items()} == \
        {"vm1": "running", "vm2": "stopped", "ct1": "running", "ct2": "stopped"}
    ct = read_container(clients["container"], "ct1")
    assert (ct.spec.fleet, ct.spec.rootfs, ct.spec.memory) == (FLEET, declared[2]["rootfs"]["path"], 64)
    assert read_guest(clients["vm"], "vm1").spec.fleet == FLEET
    # Each kind lives on its own connection only.
    assert clients["vm"].domain("ct1") is None and clients["container"].domain("vm1") is None

    before = world(clients)
    for check_mode in (True, False):
        again = converge(clients, declared, check_mode=check_mode)
        assert (again["changed"], changed(again), again["undeclared"]) == (False, [], [])
        assert again["diff"] == {"before": {}, "after": {}}
    assert world(clients) == before


def test_one_container_changed_changes_only_it(clients, declared):
    converge(clients, declared)
    declared[3] = dict(declared[3], memory=96, description="cache")
    result = converge(clients, declared)
    assert changed(result) == ["ct2"]
    assert [c["target"] for c in result["guests"]["ct2"]["changes"]] == ["memory", "description"]
    assert result["diff"]["before"]["ct2"]["memory"] == 64
    assert result["diff"]["after"]["ct2"]["memory"] == 96
    assert read_container(clients["container"], "ct2").spec.memory == 96


def test_a_dropped_container_is_reported_then_purged_its_rootfs_kept(clients, declared):
    converge(clients, declared)
    # Made outside the fleet: never reported, never purged.
    (outsider,) = items_from_params([dict(declared[3], name="ct-other")], FLEET)
    outsider.req.spec.fleet = None
    assert _container.CONTAINER.converge(clients["container"], outsider.req, False)["changed"]

    kept = declared[:2] + declared[3:]
    reported = converge(clients, kept)
    assert (reported["changed"], reported["undeclared"], reported["purged"]) == (False, ["ct1"], [])
    assert read_container(clients["container"], "ct1") is not None

    before = world(clients)
    predicted = converge(clients, kept, purge=True, check_mode=True)
    assert world(clients) == before
    assert (predicted["undeclared"], predicted["purged"]) == ([], ["ct1"])
    assert [c["action"] for c in predicted["guests"]["ct1"]["changes"]] == ["stop", "undefine"]

    purged = converge(clients, kept, purge=True)
    assert purged["purged"] == ["ct1"] and purged["guests"]["ct1"]["state"] == "absent"
    assert read_container(clients["container"], "ct1") is None
    assert read_container(clients["container"], "ct-other") is not None
    assert os.path.isfile(os.path.join(declared[2]["rootfs"]["path"], "sbin", "init"))
    assert converge(clients, kept, purge=True)["changed"] is False


def test_bad_input_found_on_the_host_changes_nothing(clients, declared):
    converge(clients, declared)
    before = world(clients)
    bad = [dict(i, memory=100) for i in declared] + [
        {"name": "ct9", "type": "container", "privileged": True, "rootfs": {"path": "/nonexistent/dvtest"}}]
    with pytest.raises(InvalidSpec, match=r"^container ct9: Root filesystem /nonexistent/dvtest does not exist"):
        converge(clients, bad)
    assert world(clients) == before


def test_an_unreachable_kind_not_declared_is_a_warning_and_an_error_with_purge(driver_uri):
    clients = {"vm": LibvirtClient(driver_uri), "container": LibvirtClient("dvtest-nodriver:///system")}
    try:
        result = converge(clients, [{"name": "vm1", "memory": 128}])
        assert result["changed"]
        assert [w for w in result["warnings"] if w.startswith("containers of fleet unit were not looked for: ")]
        with pytest.raises(LibvirtCallError, match="dvtest-nodriver:///system"):
            converge(clients, [{"name": "vm1", "memory": 128}], purge=True)
        with pytest.raises(LibvirtCallError, match="^container ct1: .*dvtest-nodriver:///system"):
            converge(clients, [{"name": "ct1", "type": "container", "privileged": True}])
    finally:
        for c in clients.values():
            c.close()
