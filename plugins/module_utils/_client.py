# -*- coding: utf-8 -*-
# Copyright: debvirt.cluster developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The only place that imports libvirt. Every call goes through LibvirtClient.call(), which
translates libvirt's errors once: a narrow set of codes means "not found", everything else is
an error naming the verb and the object."""

from __future__ import annotations

import time
import traceback

from ansible_collections.debvirt.cluster.plugins.module_utils._errors import (
    LibvirtCallError,
    NotFound,
    WaitTimeout,
)

try:
    import libvirt
except ImportError:
    libvirt = None
    LIBVIRT_IMPORT_ERROR = traceback.format_exc()
else:
    LIBVIRT_IMPORT_ERROR = None

    # libvirt prints every error to stderr unless a handler swallows it; errors reach us as exceptions.
    libvirt.registerErrorHandler(lambda ctx, err: None, None)

_NOT_FOUND = (
    "VIR_ERR_NO_DOMAIN",
    "VIR_ERR_NO_STORAGE_POOL",
    "VIR_ERR_NO_STORAGE_VOL",
    "VIR_ERR_NO_NETWORK",
    "VIR_ERR_NO_SECRET",
    "VIR_ERR_NO_NODE_DEVICE",
)

# virDomainState values, named as the modules report them.
DOMAIN_STATES = {
    0: "stopped",  # NOSTATE
    1: "running",
    2: "running",  # BLOCKED: running, waiting on a resource
    3: "paused",
    4: "running",  # SHUTDOWN: still running while it shuts down
    5: "stopped",  # SHUTOFF
    6: "crashed",
    7: "paused",  # PMSUSPENDED
}


def _not_found_codes():
    return {getattr(libvirt, name) for name in _NOT_FOUND if hasattr(libvirt, name)}


class LibvirtClient:
    """A lazy connection to one libvirt URI."""

    def __init__(self, uri):
        self.uri = uri
        self._conn = None

    @property
    def conn(self):
        if self._conn is None:
            self._conn = self.call("connect to", self.uri, libvirt.open, self.uri)
        return self._conn

    def close(self):
        if self._conn is not None:
            try:
                self._conn.close()
            except libvirt.libvirtError:
                pass
            self._conn = None

    @staticmethod
    def call(verb, obj, func, *args):
        try:
            return func(*args)
        except libvirt.libvirtError as e:
            reason = e.get_error_message() or str(e)
            if e.get_error_code() in _not_found_codes():
                raise NotFound("%s not found: %s" % (obj, reason)) from None
            raise LibvirtCallError("Failed to %s %s: %s" % (verb, obj, reason)) from None

    def find(self, verb, obj, func, *args):
        """Like call(), but "not found" is None: for lookups only."""
        try:
            return self.call(verb, obj, func, *args)
        except NotFound:
            return None

    # --- host -----------------------------------------------------------------------------
    def capabilities(self):
        return self.call("read the capabilities of", self.uri, self.conn.getCapabilities)

    def domain_capabilities(self, virttype):
        """None when the host cannot run guests of this type."""
        try:
            return self.conn.getDomainCapabilities(None, None, None, virttype, 0)
        except libvirt.libvirtError:
            return None

    def free_memory(self):
        return self.call("read free memory of", self.uri, self.conn.getFreeMemory)

    # --- domains --------------------------------------------------------------------------
    def domain(self, name):
        return self.find("look up", "guest %s" % name, self.conn.lookupByName, name)

    def domains(self):
        return self.call("list guests on", self.uri, self.conn.listAllDomains, 0)

    def domain_xml(self, dom, inactive=True):
        flags = libvirt.VIR_DOMAIN_XML_SECURE
        if inactive:
            flags |= libvirt.VIR_DOMAIN_XML_INACTIVE
        return self.call("read the definition of", "guest %s" % dom.name(), dom.XMLDesc, flags)

    def domain_state(self, dom):
        state, _reason = self.call("read the state of", "guest %s" % dom.name(), dom.state)
        return DOMAIN_STATES.get(state, "unknown")

    def define(self, xml, name):
        return self.call("define", "guest %s" % name, self.conn.defineXML, xml)

    def undefine(self, dom, nvram):
        flags = libvirt.VIR_DOMAIN_UNDEFINE_MANAGED_SAVE | libvirt.VIR_DOMAIN_UNDEFINE_SNAPSHOTS_METADATA
        if nvram:
            flags |= libvirt.VIR_DOMAIN_UNDEFINE_NVRAM
        self.call("undefine", "guest %s" % dom.name(), dom.undefineFlags, flags)

    def start(self, dom, paused=False):
        flags = libvirt.VIR_DOMAIN_START_PAUSED if paused else 0
        self.call("start", "guest %s" % dom.name(), dom.createWithFlags, flags)

    def shutdown(self, dom):
        self.call("shut down", "guest %s" % dom.name(), dom.shutdown)

    def destroy(self, dom):
        self.call("force off", "guest %s" % dom.name(), dom.destroy)

    def suspend(self, dom):
        self.call("pause", "guest %s" % dom.name(), dom.suspend)

    def resume(self, dom):
        self.call("resume", "guest %s" % dom.name(), dom.resume)

    def autostart(self, dom):
        return bool(self.call("read autostart of", "guest %s" % dom.name(), dom.autostart))

    def set_autostart(self, dom, value):
        self.call("set autostart of", "guest %s" % dom.name(), dom.setAutostart, int(value))

    def attach_live(self, dom, xml, what):
        self.call("hot-plug %s into" % what, "guest %s" % dom.name(), dom.attachDeviceFlags,
                  xml, libvirt.VIR_DOMAIN_AFFECT_LIVE)

    def detach_live(self, dom, xml, what):
        self.call("hot-unplug %s from" % what, "guest %s" % dom.name(), dom.detachDeviceFlags,
                  xml, libvirt.VIR_DOMAIN_AFFECT_LIVE)

    def set_memory_live(self, dom, kib):
        self.call("set the memory of", "guest %s" % dom.name(), dom.setMemoryFlags,
                  kib, libvirt.VIR_DOMAIN_AFFECT_LIVE)

    def set_vcpus_live(self, dom, count):
        self.call("set the vCPUs of", "guest %s" % dom.name(), dom.setVcpusFlags,
                  count, libvirt.VIR_DOMAIN_AFFECT_LIVE)

    def wait_state(self, dom, wanted, timeout, what):
        deadline = time.monotonic() + timeout
        while True:
            state = self.domain_state(dom)
            if state == wanted:
                return
            if time.monotonic() >= deadline:
                raise WaitTimeout(
                    "Timed out after %ss waiting for guest %s to %s (it is %s)"
                    % (timeout, dom.name(), what, state))
            time.sleep(0.5)

    def block_info(self, dom, target):
        """(capacity, allocation) in bytes, or None where libvirt cannot tell (an empty CD-ROM)."""
        try:
            capacity, allocation, _physical = dom.blockInfo(target, 0)
        except libvirt.libvirtError:
            return None
        return capacity, allocation

    def interface_addresses(self, dom):
        """Addresses by MAC, from DHCP leases and, where it answers, the guest agent."""
        found = {}
        sources = [libvirt.VIR_DOMAIN_INTERFACE_ADDRESSES_SRC_LEASE,
                   libvirt.VIR_DOMAIN_INTERFACE_ADDRESSES_SRC_AGENT]
        for source in sources:
            try:
                ifaces = dom.interfaceAddresses(source, 0)
            except libvirt.libvirtError:
                continue  # no agent, or no lease source: other sources may still answer
            for iface in ifaces.values():
                mac = (iface.get("hwaddr") or "").lower()
                for addr in iface.get("addrs") or []:
                    entry = "%s/%s" % (addr["addr"], addr["prefix"])
                    if mac and entry not in found.setdefault(mac, []):
                        found[mac].append(entry)
        return found

    # --- storage and networks -------------------------------------------------------------
    def pool(self, name):
        return self.find("look up", "storage pool %s" % name, self.conn.storagePoolLookupByName, name)

    def pool_info(self, pool):
        """(state, capacity, allocation, available) in bytes."""
        return self.call("read", "storage pool %s" % pool.name(), pool.info)

    def volume(self, pool, name):
        return self.find("look up", "volume %s in pool %s" % (name, pool.name()),
                         pool.storageVolLookupByName, name)

    def volume_by_path(self, path):
        return self.find("look up", "volume %s" % path, self.conn.storageVolLookupByPath, path)

    def volume_info(self, vol):
        """(type, capacity, allocation) in bytes."""
        return self.call("read", "volume %s" % vol.name(), vol.info)

    def create_volume(self, pool, xml, name):
        return self.call("create", "volume %s in pool %s" % (name, pool.name()), pool.createXML, xml, 0)

    def delete_volume(self, vol):
        self.call("delete", "volume %s" % vol.path(), vol.delete, 0)

    def network(self, name):
        return self.find("look up", "network %s" % name, self.conn.networkLookupByName, name)

    # --- storage pools and volumes: more -------------------------------------------------

    # --- networks: more ------------------------------------------------------------------

    # --- containers ----------------------------------------------------------------------

    # --- cluster -------------------------------------------------------------------------
