# -*- coding: utf-8 -*-
# Copyright: debvirt.cluster developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Placement decisions against libvirt's test driver: each "member" is a test-driver file of its
own (a connection to a file URI gets its own copy of the file's objects), so a guest defined on
one is not on the other. The cluster's members are given by hand, as read_members() would have
read them from corosync.
"""

from __future__ import annotations

from unittest import mock

import pytest

from ansible_collections.debvirt.cluster.plugins.module_utils._client import LibvirtClient
from ansible_collections.debvirt.cluster.plugins.module_utils._container import CONTAINER
from ansible_collections.debvirt.cluster.plugins.module_utils._container import ContainerRequest, ContainerSpec
from ansible_collections.debvirt.cluster.plugins.module_utils._errors import InvalidSpec
from ansible_collections.debvirt.cluster.plugins.module_utils._fleet import converge_fleet, items_from_params
from ansible_collections.debvirt.cluster.plugins.module_utils._guest import GUEST
from ansible_collections.debvirt.cluster.plugins.module_utils._guest import read_guest, request_from_params
from ansible_collections.debvirt.cluster.plugins.module_utils._migration import Members, MigrationError, Node
from ansible_collections.debvirt.cluster.plugins.module_utils._placement import (
    FleetCluster,
    PlacementError,
    converge_placed,
    migrated,
    place,
)

# A running guest without disks or networks (nothing that would keep it from moving) and a stopped one.
RUNNING = """<domain type='test'><name>%s</name><memory unit='MiB'>256</memory><vcpu>1</vcpu>
  <os><type>hvm</type></os></domain>"""
STOPPED = """<domain type='test' xmlns:test='http://libvirt.org/schemas/domain/test/1.0'><name>%s</name>
  <memory unit='MiB'>256</memory><vcpu>1</vcpu><os><type>hvm</type></os><test:runstate>5</test:runstate></domain>"""
NETWORK = "<network><name>default</name><bridge name='virbr0'/></network>"


class Cluster:
    """Members a (this host), b and c, each a test-driver file; records which ones were opened."""

    def __init__(self, tmp_path, guests, online=None):
        self.uris, self.opened = {}, []
        for name in "abc":
            path = tmp_path / ("%s.xml" % name)
            path.write_text("<node>%s%s</node>" % (NETWORK, "".join(guests.get(name, []))))
            self.uris[name] = "test://%s" % path
        online = online or {}
        self.members = Members({n: Node(n, uri, "10.0.0.%d" % i, online.get(n, True), None if n == "a" else n)
                                for i, (n, uri) in enumerate(sorted(self.uris.items()), 1)}, True, "corosync")
        self.here = LibvirtClient(self.uris["a"])
        self.asked = 0

    def client_for(self, uri):
        self.opened.append(next(n for n, u in self.uris.items() if u == uri))
        return LibvirtClient(uri)

    def read_members(self):
        self.asked += 1
        return self.members

    def place(self, name, node=None, absent=False, kind=GUEST):
        return place(None, self.here, self.client_for, kind, name, node, absent, self.read_members)


@pytest.fixture
def free_memory():
    # The test driver has no free-memory figure; the migration's memory check needs one.
    with mock.patch.object(LibvirtClient, "free_memory", return_value=8 * 1024 ** 3):
        yield


# --- without node: this host, and the name unique in the cluster ---------------------------------
def test_an_existing_guest_costs_no_remote_call(tmp_path):
    c = Cluster(tmp_path, {"a": [RUNNING % "web"], "b": [RUNNING % "web"]})
    p = c.place("web")
    assert p.client is c.here and p.move is None
    assert c.asked == 0 and c.opened == []


def test_absent_without_node_acts_here_only(tmp_path):
    c = Cluster(tmp_path, {"b": [RUNNING % "web"]})
    p = c.place("web", absent=True)
    assert p.client is c.here and p.remove_on is None and c.opened == []


def test_off_a_cluster_a_new_guest_is_created_here(tmp_path):
    c = Cluster(tmp_path, {})
    c.members = None
    p = c.place("web")
    assert p.client is c.here and c.asked == 1 and c.opened == []


def test_a_name_another_member_uses_is_refused(tmp_path):
    c = Cluster(tmp_path, {"c": [STOPPED % "web"]})
    with pytest.raises(PlacementError, match="A guest named web already exists on c: a name is unique"):
        c.place("web")
    assert sorted(c.opened) == ["b", "c"]


def test_a_member_that_is_down_is_a_warning_not_a_refusal(tmp_path):
    c = Cluster(tmp_path, {}, online={"c": False})
    p = c.place("web")
    assert p.client is c.here and c.opened == ["b"]
    assert p.warnings == ["Members c could not be asked whether they have a guest named web: its name "
                          "is unique only among those that answered"]


def test_a_remote_uri_without_node_is_left_alone(tmp_path):
    c = Cluster(tmp_path, {})
    c.here = LibvirtClient("qemu+ssh://root@10.0.0.9/system")
    # A remote URI is never connected to here: its guest is looked up only when local.
    assert c.place("web").client is c.here and c.asked == 0


# --- with node ----------------------------------------------------------------------------------
def test_node_off_a_cluster_is_an_error(tmp_path):
    c = Cluster(tmp_path, {})
    c.members = None
    with pytest.raises(PlacementError, match="node b needs this host to be a cluster member"):
        c.place("web", node="b")


def test_node_that_is_no_member(tmp_path):
    c = Cluster(tmp_path, {})
    with pytest.raises(InvalidSpec, match=r"node x is not a member of the cluster \(members: a, b, c\)"):
        c.place("web", node="x")


def test_node_with_a_remote_uri(tmp_path):
    c = Cluster(tmp_path, {})
    c.here = LibvirtClient("qemu+ssh://root@10.0.0.9/system")
    with pytest.raises(InvalidSpec, match="give a local uri"):
        c.place("web", node="b")


def test_node_offline(tmp_path):
    c = Cluster(tmp_path, {}, online={"b": False})
    with pytest.raises(PlacementError, match="node b is offline"):
        c.place("web", node="b")


def test_a_guest_on_its_node_is_managed_there_and_no_other_member_asked(tmp_path):
    c = Cluster(tmp_path, {"b": [RUNNING % "web"]})
    p = c.place("web", node="b")
    assert p.client.uri == c.uris["b"] and p.move is None and c.opened == ["b"]


def test_this_host_as_node_needs_no_connection(tmp_path):
    c = Cluster(tmp_path, {"a": [RUNNING % "web"]})
    p = c.place("web", node="a")
    assert p.client is c.here and c.opened == []


def test_a_new_guest_goes_to_its_node(tmp_path):
    c = Cluster(tmp_path, {})
    p = c.place("web", node="c")
    assert p.client.uri == c.uris["c"] and p.move is None
    # Every member is asked once (the node itself over the connection already open).
    assert sorted(c.opened) == ["b", "c"]


@pytest.mark.usefixtures("free_memory")
@pytest.mark.parametrize("guest, mode, steps", [
    (RUNNING, "live", [("migrate", "guest web")]),
    (STOPPED, "offline", [("define", "guest web"), ("undefine", "guest web on a")]),
])
def test_a_guest_on_another_member_moves(tmp_path, guest, mode, steps):
    c = Cluster(tmp_path, {"a": [guest % "web"]})
    p = c.place("web", node="b")
    assert p.source == "a" and p.client.uri == c.uris["b"]
    moved = migrated(p, {})
    assert (moved["from"], moved["to"], moved["mode"]) == ("a", "b", mode)
    assert [(s["action"], s["target"]) for s in moved["changes"]] == steps


def test_a_move_the_target_cannot_take_is_refused_by_the_migration_checks(tmp_path):
    c = Cluster(tmp_path, {"a": [RUNNING % "web"]})
    with mock.patch.object(LibvirtClient, "free_memory", return_value=64 * 1024 ** 2):
        with pytest.raises(MigrationError, match="memory: guest needs 256 MiB, b has 64 MiB free"):
            c.place("web", node="b")
    assert read_guest(c.here, "web").state == "running"


def test_a_container_is_placed_only_on_this_host(tmp_path):
    c = Cluster(tmp_path, {})
    with pytest.raises(InvalidSpec, match=r"node b is not this host \(a\): a container's root filesystem"):
        c.place("web", node="b", kind=CONTAINER)
    assert c.opened == []


def test_absent_with_node_finds_every_member_that_defines_it(tmp_path):
    c = Cluster(tmp_path, {"a": [STOPPED % "web"], "c": [RUNNING % "web"]})
    p = c.place("web", node="b", absent=True)
    assert p.remove_on == ["a", "c"]


# --- the module's result, end to end on the test driver -----------------------------------------
def run(c, params, node, check_mode=False):
    req = request_from_params(params)
    with mock.patch("ansible_collections.debvirt.cluster.plugins.module_utils._placement.members_of",
                    return_value=c.members):
        return converge_placed(GUEST, c.here, req, node, check_mode, None, c.client_for)


def test_converged_on_its_node_with_the_node_in_the_diff(tmp_path):
    c = Cluster(tmp_path, {"b": [RUNNING % "web"]})
    result = run(c, {"name": "web", "memory": 256, "description": "on b"}, "b")
    assert result["changed"] and result["node"] == "b"
    assert result["diff"] == {"before": {"memory": 256, "state": "running", "node": "b"},
                              "after": {"description": "on b", "memory": 256, "state": "running", "node": "b"}}
    assert [x["target"] for x in result["changes"]] == ["description"]
    # Written on b; this host never had it.
    assert read_guest(c.here, "web") is None


def test_refused_creation_defines_nothing(tmp_path):
    c = Cluster(tmp_path, {"b": [STOPPED % "web"]})
    with pytest.raises(PlacementError, match="already exists on b"):
        run(c, {"name": "web", "memory": 256}, None)
    assert read_guest(c.here, "web") is None


@pytest.mark.usefixtures("free_memory")
def test_check_mode_predicts_the_move_and_the_changes_after_it(tmp_path):
    c = Cluster(tmp_path, {"a": [STOPPED % "web"]})
    result = run(c, {"name": "web", "memory": 256, "description": "moved"}, "b", check_mode=True)
    assert result["changed"] is True and result["node"] == "b"
    assert result["migrated"]["from"] == "a" and result["migrated"]["mode"] == "offline"
    assert [(x["action"], x["target"]) for x in result["changes"]] == [
        ("define", "guest web"), ("undefine", "guest web on a"), ("update", "description")]
    assert (result["diff"]["before"]["node"], result["diff"]["after"]["node"]) == ("a", "b")
    assert read_guest(c.here, "web").state == "stopped"


def test_absent_with_node_removes_it_from_every_member_that_has_it(tmp_path):
    c = Cluster(tmp_path, {"a": [STOPPED % "web"], "c": [STOPPED % "web"]})
    result = run(c, {"name": "web", "state": "absent"}, "b")
    assert result["changed"] is True and result["removed_from"] == ["a", "c"]
    assert [(x["action"], x["node"]) for x in result["changes"]] == [("undefine", "a"), ("undefine", "c")]
    assert result["diff"] == {"before": {"state": "stopped", "node": "a, c"}, "after": {}}
    assert read_guest(c.here, "web") is None


def test_absent_with_node_where_no_member_has_it(tmp_path):
    c = Cluster(tmp_path, {})
    result = run(c, {"name": "web", "state": "absent"}, "b")
    assert (result["changed"], result["removed_from"], result["changes"]) == (False, [], [])


def test_absent_check_mode_names_the_members_and_removes_nothing(tmp_path):
    c = Cluster(tmp_path, {"a": [RUNNING % "web"]})
    result = run(c, {"name": "web", "state": "absent"}, "c", check_mode=True)
    assert result["changed"] is True and result["removed_from"] == ["a"]
    assert read_guest(c.here, "web").state == "running"


def test_a_container_root_is_deleted_only_on_its_own_host(tmp_path):
    c = Cluster(tmp_path, {"b": [STOPPED % "web"]})
    req = ContainerRequest("web", ContainerSpec(), state="absent", remove_storage=True)
    with mock.patch("ansible_collections.debvirt.cluster.plugins.module_utils._placement.members_of",
                    return_value=c.members):
        with pytest.raises(InvalidSpec, match="defined on b: its root filesystem is deleted only on its own host"):
            converge_placed(CONTAINER, c.here, req, "a", False, None, c.client_for)


# --- a fleet in the cluster ----------------------------------------------------------------------
FLEET = "unit"
FLEET_GUEST = """<domain type='test'><name>%s</name><memory unit='MiB'>256</memory><vcpu>1</vcpu>
  <os><type>hvm</type></os><metadata><dv:guest xmlns:dv='urn:debvirt:cluster:1'><dv:fleet>unit</dv:fleet>
  </dv:guest></metadata></domain>"""


def fleet_run(c, tmp_path, guests, drained=False, purge=False, check_mode=True):
    record = tmp_path / "evacuated.fact"
    if drained:
        record.write_text('{"drained": true, "by": "evacuate", "guests": []}')
    declared = set()
    items = items_from_params(guests, FLEET, node="a", declared=declared)
    cluster = FleetCluster(None, c.client_for, drained_record=str(record))
    with mock.patch("ansible_collections.debvirt.cluster.plugins.module_utils._placement.members_of",
                    return_value=c.members):
        return converge_fleet({"vm": c.here, "container": c.here}, items, FLEET, purge, check_mode,
                              declared, cluster, None)


def test_fleet_missing_items_cost_one_listing_a_member(tmp_path):
    c = Cluster(tmp_path, {})
    result = fleet_run(c, tmp_path, [{"name": "web%d" % i, "memory": 256, "node": "a"} for i in range(5)])
    assert sorted(result["guests"]) == ["web%d" % i for i in range(5)]
    assert all(g["changes"][0]["action"] == "define" for g in result["guests"].values())
    assert sorted(c.opened) == ["b", "c"]


def test_fleet_existing_items_ask_no_member(tmp_path):
    c = Cluster(tmp_path, {"a": [FLEET_GUEST % "web"]})
    fleet_run(c, tmp_path, [{"name": "web", "memory": 256, "node": "a"}])
    assert c.opened == []


@pytest.mark.usefixtures("free_memory")
def test_fleet_item_declared_here_and_found_on_another_member_moves_here(tmp_path):
    c = Cluster(tmp_path, {"b": [FLEET_GUEST % "web"]})
    result = fleet_run(c, tmp_path, [{"name": "web", "memory": 256, "node": "a", "state": "running"}])
    web = result["guests"]["web"]
    assert (web["migrated"]["from"], web["migrated"]["to"], web["migrated"]["mode"]) == ("b", "a", "live")
    assert [(s["action"], s["target"]) for s in web["changes"]][:1] == [("migrate", "guest web")]
    assert "define" not in [s["action"] for s in web["changes"]]
    assert (result["diff"]["before"]["web"]["node"], result["diff"]["after"]["web"]["node"]) == ("b", "a")
    # Check mode: nothing moved, nothing made here.
    assert read_guest(c.here, "web") is None


def test_fleet_leaves_a_guest_where_it_is_while_this_node_is_drained(tmp_path):
    c = Cluster(tmp_path, {"b": [FLEET_GUEST % "web"]})
    result = fleet_run(c, tmp_path, [{"name": "web", "memory": 256, "node": "a"}], drained=True, check_mode=False)
    assert result["elsewhere"] == {"web": "b"} and "web" not in result["guests"]
    assert not result["changed"]
    assert any("drained" in w for w in result["warnings"])
    assert read_guest(c.here, "web") is None


def test_fleet_item_without_node_that_another_member_has_is_refused(tmp_path):
    c = Cluster(tmp_path, {"b": [FLEET_GUEST % "web"]})
    with pytest.raises(PlacementError, match="exists on b and the list names no node for it"):
        fleet_run(c, tmp_path, [{"name": "web", "memory": 256}], check_mode=False)
    assert read_guest(c.here, "web") is None


def test_fleet_never_purges_a_guest_declared_for_another_node(tmp_path):
    # web was evacuated here from b; the list still declares it for b.
    c = Cluster(tmp_path, {"a": [FLEET_GUEST % "web", FLEET_GUEST % "old"]})
    result = fleet_run(c, tmp_path, [{"name": "web", "memory": 256, "node": "b"}], purge=True, check_mode=False)
    assert result["purged"] == ["old"]
    assert read_guest(c.here, "web") is not None
