# -*- coding: utf-8 -*-
# Copyright: debvirt.cluster developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""LibvirtClient against libvirt's test driver: lookups, the narrow "not found", error messages."""

from __future__ import annotations

import math
import os
from unittest import mock

import libvirt
import pytest

from ansible_collections.debvirt.cluster.plugins.module_utils import _client
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


def libvirt_error(code, message="injected", domain=None):
    """A libvirtError as libvirt raises it, with the error code (and the reporting domain) set."""
    err = libvirt.libvirtError(message)
    domain = libvirt.VIR_FROM_NONE if domain is None else domain
    err.err = (code, domain, message, libvirt.VIR_ERR_ERROR, None, None, None, -1, -1)
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


def test_a_volume_whose_path_is_lost_with_the_connection_fails_as_an_error(client, monkeypatch):
    # A volume's path comes from libvirtd: after the connection was lost, a delete (a rollback's)
    # fails as one of ours, which the caller handles, not as libvirt's exception.
    vol = client.create_volume(client.pool("default-pool"), VOLUME % "b.qcow2", "b.qcow2")
    monkeypatch.setattr(vol, "path", mock.Mock(side_effect=libvirt_error(libvirt.VIR_ERR_INTERNAL_ERROR,
                                                                         "client socket is closed")))
    with pytest.raises(LibvirtCallError, match="^Failed to read the path of volume b.qcow2: client socket is closed "
                                               r"\(the connection to libvirtd was lost"):
        client.delete_volume(vol)


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


def test_addresses_without_the_agent_never_ask_it(client, monkeypatch):
    dom = client.domain("test")
    real = dom.interfaceAddresses
    asked = []

    def recorded(source, flags):
        asked.append(source)
        return real(source, flags)

    monkeypatch.setattr(dom, "interfaceAddresses", recorded)
    assert client.interface_addresses(dom, agent=False) == {"aa:bb:cc:dd:ee:ff": ["192.168.122.3/24"]}
    assert asked == [libvirt.VIR_DOMAIN_INTERFACE_ADDRESSES_SRC_LEASE]


def test_close_is_idempotent_and_reconnects_lazily(driver_uri):
    c = LibvirtClient(driver_uri)
    c.close()  # never connected
    assert c.domain("test") is not None
    c.close()
    c.close()
    assert c._conn is None
    assert c.domain("test") is not None
    c.close()


# --- stopping a container while libvirt does not know its init PID yet -----------------------
SIGNAL = libvirt.VIR_DOMAIN_SHUTDOWN_SIGNAL
# As libvirt 9.0's LXC driver reports it (lxcDomainShutdownFlags, src/lxc/lxc_driver.c) until its
# controller has told it the container's init PID, which happens after the start has returned.
INIT_PID_UNKNOWN = ("Requested operation is not valid: Init process ID is not yet known",
                    libvirt.VIR_ERR_OPERATION_INVALID, libvirt.VIR_FROM_LXC)


class FakeClock:
    """time as _client sees it: a sleep moves the clock on at once, so a test waits for nothing
    and knows exactly how long the code under test would have waited."""

    def __init__(self):
        self.start = self.now = 1000.0

    def monotonic(self):
        return self.now

    def sleep(self, seconds):
        assert seconds >= 0
        self.now += seconds

    @property
    def elapsed(self):
        return self.now - self.start


@pytest.fixture
def clock(monkeypatch):
    fake = FakeClock()
    monkeypatch.setattr(_client, "time", fake)
    return fake


class RacingContainer:
    """A running container as libvirt's LXC driver shows it right after a start: the first
    refusals[flags] requests to stop are refused as libvirt refuses them before it knows the init
    PID; after that, a request in `heeds` stops the container stop_after seconds later."""

    def __init__(self, clock, refusals, heeds=(0, SIGNAL), stop_after=1.0, error=INIT_PID_UNKNOWN, state=None):
        self.clock, self.refusals, self.heeds, self.stop_after, self.error = clock, dict(refusals), heeds, stop_after, error
        self.fixed_state = state
        self.requests = []
        self.stops_at = None

    def name(self):
        return "dvtest-race"

    def state(self):
        if self.fixed_state is not None:
            return [self.fixed_state, 0]
        stopped = self.stops_at is not None and self.clock.now >= self.stops_at
        return [libvirt.VIR_DOMAIN_SHUTOFF if stopped else libvirt.VIR_DOMAIN_RUNNING, 1]

    def shutdownFlags(self, flags):
        self.requests.append(flags)
        if self.refusals.get(flags, 0) > 0:
            self.refusals[flags] -= 1
            message, code, domain = self.error
            raise libvirt_error(code, message, domain)
        if flags in self.heeds and self.stops_at is None:
            self.stops_at = self.clock.now + self.stop_after
        return 0

    def shutdown(self):
        # The LXC driver's virDomainShutdown is virDomainShutdownFlags with no flags.
        return self.shutdownFlags(0)


def container_client():
    # Never connects: every call below goes to the fake domain.
    return LibvirtClient("lxc:///system")


def test_a_stop_right_after_the_start_waits_for_the_init_pid_then_stops_cleanly(clock):
    dom = RacingContainer(clock, {0: 3})
    container_client().stop_container(dom, 10)
    assert dom.requests == [0, 0, 0, 0]  # refused three times, then taken: no SIGTERM needed
    assert dom.state()[0] == libvirt.VIR_DOMAIN_SHUTOFF
    assert clock.elapsed < 2


def test_the_sigterm_request_waits_for_the_init_pid_too(clock):
    # An application container ignores libvirt's request; its controller restarted meanwhile,
    # so libvirt does not know the new init PID when SIGTERM is due.
    dom = RacingContainer(clock, {SIGNAL: 2}, heeds=(SIGNAL,), stop_after=0.2)
    container_client().stop_container(dom, 10)
    assert dom.requests == [0, SIGNAL, SIGNAL, SIGNAL]
    assert dom.state()[0] == libvirt.VIR_DOMAIN_SHUTOFF
    assert clock.elapsed <= 10


@pytest.mark.parametrize("timeout", [0, 1, 3, 60])
def test_a_pid_that_never_comes_ends_within_the_timeout_and_says_what_was_awaited(clock, timeout):
    dom = RacingContainer(clock, {0: math.inf})
    with pytest.raises(WaitTimeout) as e:
        container_client().stop_container(dom, timeout)
    assert e.value.msg == ("Container dvtest-race did not stop within %gs: waited for libvirt to learn the process "
                           "ID of its init, which it needs to stop a container, and it did not (libvirt: "
                           "Requested operation is not valid: Init process ID is not yet known)" % timeout)
    assert clock.elapsed == pytest.approx(timeout)
    assert set(dom.requests) == {0}
    # Asked again and again with a short backoff, not once per timeout nor in a busy loop.
    assert timeout == 0 or 2 < len(dom.requests) <= 5 + 2 * timeout


def test_the_timeout_covers_the_wait_for_the_pid_and_the_stop_together(clock):
    # The PID comes late; libvirt's request is ignored; SIGTERM is taken but init never exits.
    dom = RacingContainer(clock, {0: 12}, heeds=())
    with pytest.raises(WaitTimeout, match="^Container dvtest-race did not stop within 5s, neither on libvirt's "
                                          "request nor on SIGTERM to its init$"):
        container_client().stop_container(dom, 5)
    assert dom.requests[-2:] == [0, SIGNAL]
    assert clock.elapsed == pytest.approx(5)


@pytest.mark.parametrize("message, code, domain", [
    ("domain is not running", libvirt.VIR_ERR_OPERATION_INVALID, libvirt.VIR_FROM_DOMAIN),
    ("Init process ID is not yet known", libvirt.VIR_ERR_OPERATION_INVALID, libvirt.VIR_FROM_QEMU),
    ("Init process ID is not yet known", libvirt.VIR_ERR_OPERATION_FAILED, libvirt.VIR_FROM_LXC),
    ("cannot acquire state change lock", libvirt.VIR_ERR_OPERATION_TIMEOUT, libvirt.VIR_FROM_NONE),
    ("Unable to send SIGTERM to init pid 42", libvirt.VIR_ERR_SYSTEM_ERROR, libvirt.VIR_FROM_LXC),
], ids=["not-running", "other-driver", "other-code", "job-lock", "system-error"])
def test_only_that_refusal_is_retried(clock, message, code, domain):
    dom = RacingContainer(clock, {0: 1}, error=(message, code, domain))
    with pytest.raises(LibvirtCallError) as e:
        container_client().stop_container(dom, 10)
    assert e.value.msg == "Failed to shut down container dvtest-race: %s" % message
    assert dom.requests == [0]
    assert clock.elapsed == 0


@pytest.mark.parametrize("state", [libvirt.VIR_DOMAIN_PAUSED, libvirt.VIR_DOMAIN_CRASHED])
def test_that_refusal_for_a_container_not_running_is_an_error(clock, state):
    dom = RacingContainer(clock, {0: 1}, state=state)
    with pytest.raises(LibvirtCallError, match="^Failed to shut down container dvtest-race: .*Init process ID is not yet known$"):
        container_client().stop_container(dom, 10)
    assert dom.requests == [0]


def test_a_container_that_stopped_on_its_own_while_refused_is_stopped(clock):
    dom = RacingContainer(clock, {0: 1}, state=libvirt.VIR_DOMAIN_SHUTOFF)
    container_client().stop_container(dom, 10)
    assert dom.requests == [0]


# --- a start after which libvirt never learns the init PID ---------------------------------------
INIT_PID_UNAVAILABLE = ("Requested operation is not valid: Init pid is not yet available",
                        libvirt.VIR_ERR_OPERATION_INVALID, libvirt.VIR_FROM_LXC)


class FakeLxc:
    """libvirt_lxc as _client sees it: lxcOpenNamespace refuses `unknown` times as libvirt 9.0
    does without the init PID (lxcDomainLxcOpenNamespace), then hands out namespace descriptors."""

    def __init__(self, unknown, error=INIT_PID_UNAVAILABLE):
        self.unknown, self.error, self.calls, self.fds = unknown, error, 0, []

    def lxcOpenNamespace(self, dom, flags):
        self.calls += 1
        if self.calls <= self.unknown:
            message, code, domain = self.error
            raise libvirt_error(code, message, domain)
        self.fds = [os.open(os.devnull, os.O_RDONLY), os.open(os.devnull, os.O_RDONLY)]
        return list(self.fds)


def closed(fd):
    try:
        os.fstat(fd)
    except OSError:
        return True
    return False


@pytest.mark.parametrize("unknown, lost, asked", [(0, False, 1), (4, False, 5), (10 ** 6, True, None)])
def test_the_init_pid_is_waited_for_and_a_lost_one_is_told(clock, monkeypatch, unknown, lost, asked):
    lxc = FakeLxc(unknown)
    monkeypatch.setattr(_client, "libvirt_lxc", lxc)
    dom = RacingContainer(clock, {})
    assert container_client().container_init_lost(dom, timeout=10) is lost
    if lost:
        assert 10 <= clock.elapsed < 11
    else:
        assert lxc.calls == asked and clock.elapsed < 2
        assert all(closed(fd) for fd in lxc.fds)  # the namespaces are not kept open


def test_the_init_pid_cannot_be_asked_so_nothing_is_lost(clock, monkeypatch):
    dom = RacingContainer(clock, {})
    monkeypatch.setattr(_client, "libvirt_lxc", None)
    assert container_client().container_init_lost(dom) is False
    # Another refusal is no answer either.
    lxc = FakeLxc(1, ("internal error", libvirt.VIR_ERR_INTERNAL_ERROR, libvirt.VIR_FROM_LXC))
    monkeypatch.setattr(_client, "libvirt_lxc", lxc)
    assert container_client().container_init_lost(dom) is False
    # A remote connection cannot receive descriptors: it is not asked.
    assert LibvirtClient("lxc+ssh://root@node2/system").container_init_lost(dom) is False
    assert lxc.calls == 1
    assert clock.elapsed == 0


def test_a_container_that_stopped_by_itself_lost_nothing(clock, monkeypatch):
    monkeypatch.setattr(_client, "libvirt_lxc", FakeLxc(10 ** 6))
    dom = RacingContainer(clock, {}, state=libvirt.VIR_DOMAIN_SHUTOFF)
    assert container_client().container_init_lost(dom) is False
