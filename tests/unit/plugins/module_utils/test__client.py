# -*- coding: utf-8 -*-
# Copyright: debvirt.cluster developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""LibvirtClient against libvirt's test driver: lookups, the narrow "not found", error messages."""

from __future__ import annotations

from unittest import mock

import libvirt
import pytest

from ansible_collections.debvirt.cluster.plugins.module_utils._client import DOMAIN_STATES, LibvirtClient
from ansible_collections.debvirt.cluster.plugins.module_utils._errors import (
    DebvirtError,
    LibvirtCallError,
    NotFound,
    WaitTimeout,
)

BOGUS_URI = "test:///nonexistent-debvirt-file.xml"
DOMAIN = "<domain type='test'><name>%s</name><memory unit='MiB'>64</memory><os><type>hvm</type></os></domain>"
VOLUME = ("<volume><name>%s</name><capacity unit='bytes'>1048576</capacity>"
          "<target><format type='qcow2'/></target></volume>")


def libvirt_error(code, message="injected"):
    """A libvirtError as libvirt raises it, with the error code set."""
    err = libvirt.libvirtError(message)
    err.err = (code, libvirt.VIR_FROM_NONE, message, libvirt.VIR_ERR_ERROR, None, None, None, -1, -1)
    return err


def test_connecting_is_lazy_and_a_failure_is_an_error_not_absence():
    c = LibvirtClient(BOGUS_URI)
    assert c.uri == BOGUS_URI
    for lookup in (lambda: c.domain("web01"), lambda: c.network("default"), lambda: c.pool("default-pool"), c.domains):
        with pytest.raises(LibvirtCallError) as e:
            lookup()
        assert not isinstance(e.value, NotFound)
        assert e.value.msg.startswith("Failed to connect to %s: " % BOGUS_URI)
    c.close()


def test_lookups_of_missing_objects_are_none(client):
    assert client.domain("nope") is None
    assert client.pool("nope") is None
    assert client.network("nope") is None
    pool = client.pool("default-pool")
    assert client.volume(pool, "nope.qcow2") is None
    assert client.volume_by_path("/default-pool/nope.qcow2") is None


def test_lookups_of_existing_objects(client):
    assert client.domain("test").name() == "test"
    assert client.network("default").name() == "default"
    pool = client.pool("default-pool")
    assert client.pool_info(pool)[0] == libvirt.VIR_STORAGE_POOL_RUNNING
    vol = client.create_volume(pool, VOLUME % "a.qcow2", "a.qcow2")
    assert client.volume(pool, "a.qcow2").path() == vol.path()
    assert client.volume_by_path(vol.path()).name() == "a.qcow2"
    assert client.volume_info(vol)[1] == 1048576
    client.delete_volume(vol)
    assert client.volume(pool, "a.qcow2") is None


@pytest.mark.parametrize("code", ["VIR_ERR_NO_DOMAIN", "VIR_ERR_NO_STORAGE_POOL", "VIR_ERR_NO_STORAGE_VOL",
                                  "VIR_ERR_NO_NETWORK", "VIR_ERR_NO_SECRET", "VIR_ERR_NO_NODE_DEVICE"])
def test_not_found_codes(code):
    func = mock.Mock(side_effect=libvirt_error(getattr(libvirt, code), "no such thing"))
    with pytest.raises(NotFound, match="^guest web01 not found: no such thing$"):
        LibvirtClient.call("look up", "guest web01", func)
    assert LibvirtClient("test:///default").find("look up", "guest web01", func) is None


@pytest.mark.parametrize("code", ["VIR_ERR_OPERATION_DENIED", "VIR_ERR_AUTH_FAILED", "VIR_ERR_NO_CONNECT",
                                  "VIR_ERR_SYSTEM_ERROR", "VIR_ERR_INTERNAL_ERROR", "VIR_ERR_RPC",
                                  "VIR_ERR_OPERATION_INVALID", "VIR_ERR_NO_SUPPORT"])
@pytest.mark.parametrize("lookup, method, obj", [
    (lambda c: c.domain("web01"), "lookupByName", "guest web01"),
    (lambda c: c.pool("images"), "storagePoolLookupByName", "storage pool images"),
    (lambda c: c.network("lan"), "networkLookupByName", "network lan"),
], ids=["domain", "pool", "network"])
def test_other_errors_in_lookups_are_errors_not_absence(client, monkeypatch, code, lookup, method, obj):
    monkeypatch.setattr(client.conn, method, mock.Mock(side_effect=libvirt_error(getattr(libvirt, code), "denied")))
    with pytest.raises(LibvirtCallError) as e:
        lookup(client)
    assert e.value.msg == "Failed to look up %s: denied" % obj
    assert not isinstance(e.value, NotFound)


def test_volume_lookup_errors_are_errors(client, monkeypatch):
    pool = client.pool("default-pool")
    monkeypatch.setattr(pool, "storageVolLookupByName",
                        mock.Mock(side_effect=libvirt_error(libvirt.VIR_ERR_OPERATION_DENIED, "denied")))
    with pytest.raises(LibvirtCallError, match="^Failed to look up volume x in pool default-pool: denied$"):
        client.volume(pool, "x")


def test_error_without_message_falls_back_to_str():
    err = libvirt.libvirtError("virDomainCreate() failed")
    err.err = None
    with pytest.raises(LibvirtCallError, match=r"^Failed to start guest a: virDomainCreate\(\) failed$"):
        LibvirtClient.call("start", "guest a", mock.Mock(side_effect=err))


def test_errors_name_the_verb_and_the_object(client):
    dom = client.domain("test")
    with pytest.raises(LibvirtCallError, match="^Failed to start guest test: .*already running"):
        client.start(dom)
    with pytest.raises(LibvirtCallError, match="^Failed to define guest broken: "):
        client.define("<domain type='test'><name>broken</name></domain>", "broken")
    pool = client.pool("default-pool")
    client.create_volume(pool, VOLUME % "dup.qcow2", "dup.qcow2")
    with pytest.raises(LibvirtCallError, match="^Failed to create volume dup.qcow2 in pool default-pool: "):
        client.create_volume(pool, VOLUME % "dup.qcow2", "dup.qcow2")
    with pytest.raises(LibvirtCallError, match="^Failed to hot-plug disk vdb into guest test: .*not supported"):
        client.attach_live(dom, "<disk type='file'><source file='/x'/><target dev='vdb'/></disk>", "disk vdb")
    with pytest.raises(LibvirtCallError, match="^Failed to hot-unplug interface aa:bb:cc:dd:ee:ff from guest test: "):
        client.detach_live(dom, "<interface type='network'><mac address='aa:bb:cc:dd:ee:ff'/>"
                                "<source network='default'/></interface>", "interface aa:bb:cc:dd:ee:ff")
    client.destroy(dom)
    with pytest.raises(LibvirtCallError, match="^Failed to pause guest test: "):
        client.suspend(dom)
    with pytest.raises(LibvirtCallError, match="^Failed to shut down guest test: "):
        client.shutdown(dom)


def test_a_vanished_guest_is_not_found(client):
    dom = client.define(DOMAIN % "gone", "gone")
    client.undefine(dom, nvram=False)
    with pytest.raises(NotFound, match="^guest gone not found: "):
        client.domain_state(dom)
    with pytest.raises(DebvirtError):
        client.domain_xml(dom)


def test_run_states(client):
    dom = client.domain("test")
    assert client.domain_state(dom) == "running"
    client.suspend(dom)
    assert client.domain_state(dom) == "paused"
    client.resume(dom)
    client.shutdown(dom)
    client.wait_state(dom, "stopped", 5, "shut down")
    client.start(dom)
    assert client.domain_state(dom) == "running"
    client.destroy(dom)
    assert client.domain_state(dom) == "stopped"
    # The test driver cannot start a guest paused (QEMU can); the refusal still reads right.
    with pytest.raises(LibvirtCallError, match="^Failed to start guest test: unsupported flags"):
        client.start(dom, paused=True)


def test_state_names():
    assert DOMAIN_STATES == {0: "stopped", 1: "running", 2: "running", 3: "paused", 4: "running",
                             5: "stopped", 6: "crashed", 7: "paused"}


def test_wait_state_says_what_it_waited_for(client):
    dom = client.domain("test")
    with pytest.raises(WaitTimeout, match=r"^Timed out after 0s waiting for guest test to shut down \(ACPI\) \(it is running\)$"):
        client.wait_state(dom, "stopped", 0, "shut down (ACPI)")


def test_define_undefine_and_autostart(client):
    dom = client.define(DOMAIN % "web01", "web01")
    assert client.domain("web01").UUIDString() == dom.UUIDString()
    assert client.autostart(dom) is False
    client.set_autostart(dom, True)
    assert client.autostart(dom) is True
    assert "<name>web01</name>" in client.domain_xml(dom)
    client.undefine(dom, nvram=False)
    assert client.domain("web01") is None


def test_live_and_inactive_definitions_differ_for_a_running_guest(client):
    dom = client.domain("test")
    client.set_memory_live(dom, 1024 * 1024)
    client.set_vcpus_live(dom, 1)
    assert "<currentMemory unit='KiB'>1048576</currentMemory>" in client.domain_xml(dom, inactive=False)
    assert "<currentMemory unit='KiB'>2097152</currentMemory>" in client.domain_xml(dom, inactive=True)


def test_host_queries(client):
    assert client.capabilities().lstrip().startswith("<capabilities>")
    # A file's node has no NUMA cells, whose free memory getFreeMemory adds up; the stock node
    # has two. Read-only, so the state test:///default shares with other tests does not matter.
    stock = LibvirtClient("test:///default")
    try:
        assert stock.free_memory() > 0
    finally:
        stock.close()
    # The test driver has no domain capabilities: the guest code takes that as "cannot run it".
    assert client.domain_capabilities("kvm") is None
    assert [d.name() for d in client.domains()] == ["test"]


def test_block_info_and_addresses(client):
    dom = client.domain("test")
    capacity, allocation = client.block_info(dom, "vda")
    assert capacity > 0 and allocation >= 0
    assert client.block_info(dom, "vdz") is None
    assert client.interface_addresses(dom) == {"aa:bb:cc:dd:ee:ff": ["192.168.122.3/24"]}


def test_addresses_skip_a_source_that_fails(client, monkeypatch):
    dom = client.domain("test")
    real = dom.interfaceAddresses

    def agent_missing(source, flags):
        if source == libvirt.VIR_DOMAIN_INTERFACE_ADDRESSES_SRC_AGENT:
            raise libvirt_error(libvirt.VIR_ERR_AGENT_UNRESPONSIVE, "no agent")
        return real(source, flags)

    monkeypatch.setattr(dom, "interfaceAddresses", agent_missing)
    assert client.interface_addresses(dom) == {"aa:bb:cc:dd:ee:ff": ["192.168.122.3/24"]}


def test_close_is_idempotent_and_reconnects_lazily(driver_uri):
    c = LibvirtClient(driver_uri)
    c.close()  # never connected
    assert c.domain("test") is not None
    c.close()
    c.close()
    assert c._conn is None
    assert c.domain("test") is not None
    c.close()
