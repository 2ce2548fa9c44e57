# -*- coding: utf-8 -*-
# Copyright: debvirt.cluster developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Who uses storage, asked of several libvirt connections (private copies of libvirt's test
driver stand for a host's QEMU and LXC drivers, or for other members)."""

from __future__ import annotations

import pytest

from ansible_collections.debvirt.cluster.plugins.module_utils import _usage as U
from ansible_collections.debvirt.cluster.plugins.module_utils._client import LibvirtClient
from ansible_collections.debvirt.cluster.plugins.module_utils._xml import parse


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
def test_a_hosts_other_driver_is_asked_too_and_closed(uri, others):
    given = LibvirtClient(uri)
    opened = Opened()
    with U.host_connections(given, opened) as clients:
        assert [c.uri for c in clients] == [uri] + others
        assert clients[0] is given
    assert opened.closed == others
