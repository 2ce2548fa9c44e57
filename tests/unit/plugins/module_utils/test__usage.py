# -*- coding: utf-8 -*-
# Copyright: debvirt.cluster developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Who uses storage, asked of several libvirt connections (private copies of libvirt's test
driver stand for a host's QEMU and LXC drivers, or for other members). A real libvirt cannot
give two members here: the members are given as read_members() would read them from corosync,
and client_for hands each member URI built by member_uri its own test-driver file."""

from __future__ import annotations

import pytest

from ansible_collections.debvirt.cluster.plugins.module_utils import _pool, _usage as U, _volume
from ansible_collections.debvirt.cluster.plugins.module_utils._client import LibvirtClient
from ansible_collections.debvirt.cluster.plugins.module_utils._cluster import member_uri
from ansible_collections.debvirt.cluster.plugins.module_utils._errors import InvalidSpec
from ansible_collections.debvirt.cluster.plugins.module_utils._guest import GUEST, read_guest, request_from_params
from ansible_collections.debvirt.cluster.plugins.module_utils._transport import Members, Node
from ansible_collections.debvirt.cluster.plugins.module_utils._xml import parse
from ansible_collections.debvirt.cluster.plugins.modules.storage_pool import ARGUMENT_SPEC as POOL_SPEC
from ansible_collections.debvirt.cluster.plugins.modules.volume import ARGUMENT_SPEC as VOLUME_SPEC
from ansible_collections.debvirt.cluster.tests.unit.helpers import module_params


def domain(name, devices):
    return ("<domain type='test'><name>%s</name><memory unit='MiB'>64</memory><os><type>hvm</type></os>"
            "<devices>%s</devices></domain>" % (name, devices))


BY_VOLUME = "<disk type='volume' device='disk'><source pool='default-pool' volume='a.qcow2'/><target dev='vda'/></disk>"
BY_PATH = "<disk type='file' device='disk'><source file='/default-pool/a.qcow2'/><target dev='vdb'/></disk>"
AS_FILESYSTEM = "<filesystem type='file'><source file='/default-pool//a.qcow2'/><target dir='/'/></filesystem>"
OTHER = "<disk type='file' device='disk'><source file='/default-pool/b.qcow2'/><target dev='vdc'/></disk>"


@pytest.fixture
def two(driver_uri):
    """Two connections that share nothing, as two drivers or two members do."""
    clients = [LibvirtClient(driver_uri), LibvirtClient(driver_uri)]
    yield clients
    for c in clients:
        c.close()


def test_sources_of_disks_filesystems_and_backing_stores():
    root = parse(domain("x", BY_VOLUME + AS_FILESYSTEM +
                        "<disk type='file'><source file='/p/top.qcow2'/><backingStore type='file'>"
                        "<source file='/p/base.qcow2'/></backingStore><target dev='vdd'/></disk>"))
    assert [(s.pool, s.volume, s.path) for s in U.sources(root)] == [
        ("default-pool", "a.qcow2", None), (None, None, "/default-pool/a.qcow2"), (None, None, "/p/top.qcow2"),
        (None, None, "/p/base.qcow2")]


def test_every_connection_is_asked_and_every_way_of_naming_counts(two):
    first, second = two
    first.define(domain("by-volume", BY_VOLUME), "by-volume")
    first.define(domain("unrelated", OTHER), "unrelated")
    second.define(domain("by-path", BY_PATH), "by-path")
    second.define(domain("as-root", AS_FILESYSTEM), "as-root")
    found = U.users(two, U.volume_is("default-pool", "a.qcow2", "/default-pool/a.qcow2"))
    assert [str(u) for u in found] == ["guest as-root", "guest by-path", "guest by-volume"]
    assert {u.uri for u in found} == {first.uri}  # both copies have one URI; each was asked
    assert U.phrase(found) == "guests as-root, by-path, by-volume"


def test_a_stopped_domain_is_a_user_and_the_one_asking_is_not(two):
    first, _second = two
    dom = first.define(domain("me", BY_VOLUME), "me")
    assert first.domain_state(dom) == "stopped"
    uses = U.volume_is("default-pool", "a.qcow2", None)
    assert [u.name for u in U.users([first], uses)] == ["me"]
    assert U.users([first], uses, skip=(first.uri, "me")) == []


def test_a_running_domains_live_disks_count(two):
    first, _second = two
    first.define(domain("live", OTHER), "live")
    # The test driver cannot hot-plug: a transient domain has only a live configuration.
    first.conn.createXML(domain("transient", BY_PATH), 0)
    found = U.users([first], U.volume_is("default-pool", "a.qcow2", "/default-pool/a.qcow2"))
    assert [u.name for u in found] == ["transient"]


def test_anything_in_a_pool(two):
    first, _second = two
    first.define(domain("below", "<disk type='file'><source file='/default-pool/sub/c.raw'/>"
                                 "<target dev='vda'/></disk>"), "below")
    first.define(domain("beside", "<disk type='file'><source file='/default-pool-2/c.raw'/>"
                                  "<target dev='vda'/></disk>"), "beside")
    first.define(domain("named", BY_VOLUME), "named")
    found = U.users([first], U.in_pool("default-pool", [], "/default-pool"))
    assert [u.name for u in found] == ["below", "named"]
    assert [u.name for u in U.users([first], U.in_pool("other", ["/default-pool-2/c.raw"], None))] == ["beside"]


class Opened:
    """client_for that records what it opens and closes; its clients never connect."""

    def __init__(self):
        self.uris, self.closed = [], []

    def __call__(self, uri):
        opened = self

        class Client:
            def __init__(self):
                self.uri = uri
                opened.uris.append(uri)

            def close(self):
                opened.closed.append(uri)
        return Client()


@pytest.mark.parametrize("uri, others", [("qemu:///system", ["lxc:///system"]),
                                         ("lxc:///system", ["qemu:///system"]),
                                         ("qemu+ssh://node2/system", [])])
def test_off_a_cluster_a_hosts_other_driver_is_asked_too_and_closed(uri, others):
    given = LibvirtClient(uri)
    opened = Opened()
    with U.Scope(opened).connections(given) as clients:
        assert [c.uri for c in clients] == [uri] + others
        assert list(clients)[0] is given
    assert opened.closed == others


def test_a_scope_reads_and_opens_nothing_until_asked():
    read = []
    opened = Opened()
    scope = U.Scope(opened, lambda: read.append(1))
    with scope.connections(LibvirtClient("qemu:///system")):
        pass
    assert (read, opened.uris) == ([], [])


# --- members ---------------------------------------------------------------------------------
POOL_XML = "<pool type='dir'><name>default-pool</name><target><path>/default-pool</path></target></pool>"


class Cluster:
    """This host a and the members b (online) and c, each with a QEMU and an LXC driver, each
    driver a test-driver file holding the pool default-pool and the domains put there."""

    def __init__(self, tmp_path, online=None, unreadable=()):
        self.tmp_path = tmp_path
        self.opened, self.closed = [], []
        for host in "abc":
            for driver in ("qemu", "lxc"):
                self.put(host, driver)
        self.drivers = (self.file("a", "qemu"), self.file("a", "lxc"))
        self.uris = {d: d for d in self.drivers}
        for i, host in enumerate("bc", 2):
            for here, driver in zip(self.drivers, ("qemu", "lxc")):
                real = "dvtest-nodriver:///system" if host in unreadable else self.file(host, driver)
                self.uris[member_uri(here, "10.0.0.%d" % i)] = real
        online = online or {}
        self.members = Members({
            n: Node(n, "qemu:///system", "10.0.0.%d" % i, online.get(n, True), None if n == "a" else "10.0.0.%d" % i)
            for i, n in enumerate("abc", 1)}, True, "corosync")
        self.here = LibvirtClient(self.drivers[0])
        self.read = 0

    def file(self, host, driver):
        return "test://%s" % (self.tmp_path / ("%s-%s.xml" % (host, driver)))

    def put(self, host, driver, *domains):
        """The driver's objects as a connection opened from now on finds them."""
        path = self.tmp_path / ("%s-%s.xml" % (host, driver))
        path.write_text("<node>%s%s</node>" % (POOL_XML, "".join(domains)))

    def client_for(self, uri):
        self.opened.append(uri)
        cluster = self

        class Client(LibvirtClient):
            def close(self):
                cluster.closed.append(uri)
                super().close()
        return Client(self.uris[uri])

    def cluster(self):
        self.read += 1
        return self.members

    def scope(self):
        return U.Scope(self.client_for, self.cluster, self.drivers)


USES_A = U.volume_is("default-pool", "a.qcow2", "/default-pool/a.qcow2")


def test_every_members_two_drivers_are_asked_once_and_each_user_named_with_its_member(tmp_path):
    c = Cluster(tmp_path)
    c.put("b", "qemu", domain("on-b", BY_PATH))
    c.put("c", "lxc", domain("on-c", BY_VOLUME))
    c.put("a", "lxc", domain("here", AS_FILESYSTEM))
    with c.scope().connections(c.here) as clients:
        found = U.users(clients, USES_A)
        opened = list(c.opened)
        assert [str(u) for u in U.users(clients, USES_A)] == [str(u) for u in found]
        assert c.opened == opened, "a second question opened connections again"
    assert [str(u) for u in found] == ["guest here", "guest on-b on member b", "guest on-c on member c"]
    assert U.phrase(found) == "guests here and guests on-b on member b and guests on-c on member c"
    assert c.read == 1 and len(opened) == 5 == len(set(opened))
    assert sorted(c.closed) == sorted(opened)


def test_an_offline_member_refuses_before_anything_is_opened(tmp_path):
    c = Cluster(tmp_path, online={"c": False})
    with pytest.raises(U.UsageUnknown) as e:
        with c.scope().connections(c.here) as clients:
            U.users(clients, USES_A)
    assert e.value.msg.startswith("Member c is offline in the cluster: whether its guests or containers use "
                                  "the storage cannot be asked")
    assert "remove it from the cluster first" in e.value.msg
    assert c.opened == []


def test_a_host_outside_the_cluster_is_asked_alone_whatever_the_members_state(tmp_path):
    c = Cluster(tmp_path, online={"c": False})
    outside = LibvirtClient("qemu+ssh://root@elsewhere/system")
    with c.scope().connections(outside) as clients:
        assert list(clients) == [outside]
    assert c.opened == []


def test_a_member_that_cannot_be_read_refuses(tmp_path):
    c = Cluster(tmp_path, unreadable=("b",))
    with pytest.raises(U.UsageUnknown) as e:
        with c.scope().connections(c.here) as clients:
            U.users(clients, USES_A)
    assert e.value.msg.startswith("Member b could not be asked whether its guests or containers use the storage")


def test_a_members_own_connection_asks_every_member_and_skips_the_one_asking(tmp_path):
    # As placement removes a guest on the member that defines it: the client is that member's.
    c = Cluster(tmp_path)
    c.put("b", "qemu", domain("asking", BY_PATH))
    c.put("a", "qemu", domain("here", BY_VOLUME))
    uri = member_uri(c.drivers[0], "10.0.0.2")
    given = c.client_for(uri)
    assert given.conn  # connected to b's file, then labelled as client_for(uri) is for real
    given.uri = uri
    with c.scope().connections(given) as clients:
        asked = [client.uri for client in clients]
        found = U.users(clients, USES_A, skip=(uri, "asking"))
    assert asked[0] == uri and set(c.drivers) <= set(asked) and len(asked) == 6
    assert [str(u) for u in found] == ["guest here"]


def absent(pool=None, **kw):
    if pool is not None:
        return _pool.request_from_params(module_params(POOL_SPEC, name=pool, state="absent", **kw))
    return _volume.volume_request_from_params(module_params(VOLUME_SPEC, name="a.qcow2", pool="default-pool",
                                                            state="absent", **kw))


class LivePools(LibvirtClient):
    # The test driver keeps no inactive definition of a pool.
    def pool_xml(self, pool, inactive=True):
        return super().pool_xml(pool, inactive=False)


@pytest.mark.parametrize("check_mode", [True, False])
def test_volume_absent_and_pool_delete_data_are_refused_naming_the_member(tmp_path, check_mode):
    c = Cluster(tmp_path)
    c.here = LivePools(c.drivers[0])
    pool = c.here.pool("default-pool")
    c.here.create_volume(pool, "<volume><name>a.qcow2</name><capacity>1048576</capacity>"
                               "<target><format type='qcow2'/></target></volume>", "a.qcow2")
    c.put("b", "lxc", domain("user", BY_VOLUME))
    with pytest.raises(InvalidSpec) as e:
        _volume.converge_volume(c.here, absent(cache_dir=str(tmp_path)), check_mode, c.scope())
    assert e.value.msg == "Volume default-pool/a.qcow2 is a disk of guests user on member b: detach it first"
    assert e.value.details == {"users": ["guest user on member b"]}
    with pytest.raises(InvalidSpec) as e:
        _pool.converge_pool(c.here, absent("default-pool", delete_data=True), check_mode, c.scope())
    assert "it holds disks of guests user on member b, running or not" in e.value.msg
    assert c.here.volume(pool, "a.qcow2") is not None and c.here.pool_info(pool)[0] == _volume.POOL_RUNNING


def test_no_deletion_planned_asks_no_member(tmp_path):
    c = Cluster(tmp_path)
    _volume.converge_volume(c.here, absent(cache_dir=str(tmp_path)), False, c.scope())
    _pool.converge_pool(LivePools(c.drivers[0]), absent("default-pool"), True, c.scope())
    assert (c.read, c.opened) == (0, [])


@pytest.mark.parametrize("check_mode", [True, False])
def test_remove_storage_keeps_a_volume_a_guest_on_another_member_uses(tmp_path, check_mode):
    c = Cluster(tmp_path)
    made = GUEST.converge(c.here, request_from_params({"name": "web01", "memory": 256, "disks": [
        {"pool": "default-pool", "volume": "web01.qcow2", "size": "1M"}]}), False)
    assert made["changed"] and read_guest(c.here, "web01").spec.created == ["default-pool/web01.qcow2"]
    c.put("b", "qemu", domain("user", "<disk type='volume' device='disk'><source pool='default-pool' "
                                      "volume='web01.qcow2'/><target dev='vda'/></disk>"))
    req = request_from_params({"name": "web01", "state": "absent", "remove_storage": True})
    req.usage = c.scope()
    result = GUEST.converge(c.here, req, check_mode)
    assert [(s["action"], s["target"]) for s in result["changes"]] == [("undefine", "guest web01")]
    assert result["warnings"] == ["Volume default-pool/web01.qcow2, made for guest web01, is kept: it is a disk "
                                  "of guests user on member b"]
    assert c.here.volume(c.here.pool("default-pool"), "web01.qcow2") is not None
