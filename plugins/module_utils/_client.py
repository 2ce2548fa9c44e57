# -*- coding: utf-8 -*-
# Copyright: debvirt.cluster developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The only user of libvirt (_connection imports it and opens connections). Every call goes
through LibvirtClient.call(), which translates libvirt's errors once: a narrow set of codes
means "not found", everything else is an error naming the verb and the object."""

from __future__ import annotations

import os
import time
from urllib.parse import urlparse

from ansible_collections.debvirt.cluster.plugins.module_utils._connection import (
    ANSWER_TIMEOUT,
    libvirt,
    libvirt_lxc,
    open_connection,
    run_event_loop,
)
# What a module checks before it runs, read here where the rest of libvirt is.
from ansible_collections.debvirt.cluster.plugins.module_utils._connection import LIBVIRT_IMPORT_ERROR  # pylint: disable=unused-import
from ansible_collections.debvirt.cluster.plugins.module_utils._errors import (
    LibvirtCallError,
    NotFound,
    WaitTimeout,
)

_NOT_FOUND = (
    "VIR_ERR_NO_DOMAIN",
    "VIR_ERR_NO_STORAGE_POOL",
    "VIR_ERR_NO_STORAGE_VOL",
    "VIR_ERR_NO_NETWORK",
    "VIR_ERR_NO_SECRET",
    "VIR_ERR_NO_NODE_DEVICE",
)

# What libvirt says when the daemon's end of a connection went away.
_CONNECTION_LOST = ("End of file while reading data", "client socket is closed", "Broken pipe",
                    "Connection reset by peer")

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


def is_local(uri):
    """The URI names this host: files a task writes here are where libvirt sees them."""
    return not urlparse(uri).netloc


def _not_found_codes():
    return {getattr(libvirt, name) for name in _NOT_FOUND if hasattr(libvirt, name)}


class LibvirtClient:
    """A lazy connection to one libvirt URI."""

    def __init__(self, uri, timeout=ANSWER_TIMEOUT):
        self.uri = uri
        self.timeout = timeout
        self._conn = None
        # Domains of the LXC driver are containers to the user; messages call them so.
        self.noun = "container" if uri.split(":", 1)[0].split("+", 1)[0] == "lxc" else "guest"

    def _label(self, dom):
        return "%s %s" % (self.noun, dom.name())

    @property
    def conn(self):
        if self._conn is None:
            run_event_loop()
            self._conn = self.call("connect to", self.uri, open_connection, self.uri, self.timeout)
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
            raise LibvirtClient._translate(verb, obj, e) from None

    @staticmethod
    def _translate(verb, obj, e):
        reason = e.get_error_message() or str(e)
        if e.get_error_code() in _not_found_codes():
            return NotFound("%s not found: %s" % (obj, reason))
        if "keepalive" in reason:
            reason += " (libvirtd stopped answering: is it hung or stopped?)"
        elif any(lost in reason for lost in _CONNECTION_LOST):
            reason += " (the connection to libvirtd was lost: did it restart, or its host go down?)"
        return LibvirtCallError("Failed to %s %s: %s" % (verb, obj, reason))

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

    def hostname(self):
        return self.call("read the host name of", self.uri, self.conn.getHostname)

    def free_memory(self):
        return self.call("read free memory of", self.uri, self.conn.getFreeMemory)

    # --- domains --------------------------------------------------------------------------
    def domain(self, name):
        return self.find("look up", "%s %s" % (self.noun, name), self.conn.lookupByName, name)

    def domains(self):
        return self.call("list guests on", self.uri, self.conn.listAllDomains, 0)

    def domain_xml(self, dom, inactive=True):
        flags = libvirt.VIR_DOMAIN_XML_SECURE
        if inactive:
            flags |= libvirt.VIR_DOMAIN_XML_INACTIVE
        return self.call("read the definition of", self._label(dom), dom.XMLDesc, flags)

    def domain_state(self, dom):
        state, _reason = self.call("read the state of", self._label(dom), dom.state)
        return DOMAIN_STATES.get(state, "unknown")

    def define(self, xml, name):
        return self.call("define", "%s %s" % (self.noun, name), self.conn.defineXML, xml)

    def undefine(self, dom, nvram):
        flags = libvirt.VIR_DOMAIN_UNDEFINE_MANAGED_SAVE | libvirt.VIR_DOMAIN_UNDEFINE_SNAPSHOTS_METADATA
        if nvram:
            flags |= libvirt.VIR_DOMAIN_UNDEFINE_NVRAM
        self.call("undefine", self._label(dom), dom.undefineFlags, flags)

    def start(self, dom, paused=False):
        flags = libvirt.VIR_DOMAIN_START_PAUSED if paused else 0
        self.call("start", self._label(dom), dom.createWithFlags, flags)

    def shutdown(self, dom):
        self.call("shut down", self._label(dom), dom.shutdown)

    def destroy(self, dom):
        self.call("force off", self._label(dom), dom.destroy)

    def suspend(self, dom):
        self.call("pause", self._label(dom), dom.suspend)

    def resume(self, dom):
        self.call("resume", self._label(dom), dom.resume)

    def autostart(self, dom):
        return bool(self.call("read autostart of", self._label(dom), dom.autostart))

    def set_autostart(self, dom, value):
        self.call("set autostart of", self._label(dom), dom.setAutostart, int(value))

    def attach_live(self, dom, xml, what):
        self.call("hot-plug %s into" % what, self._label(dom), dom.attachDeviceFlags,
                  xml, libvirt.VIR_DOMAIN_AFFECT_LIVE)

    def detach_live(self, dom, xml, what):
        self.call("hot-unplug %s from" % what, self._label(dom), dom.detachDeviceFlags,
                  xml, libvirt.VIR_DOMAIN_AFFECT_LIVE)

    def set_memory_live(self, dom, kib):
        self.call("set the memory of", self._label(dom), dom.setMemoryFlags,
                  kib, libvirt.VIR_DOMAIN_AFFECT_LIVE)

    def set_vcpus_live(self, dom, count):
        self.call("set the vCPUs of", self._label(dom), dom.setVcpusFlags,
                  count, libvirt.VIR_DOMAIN_AFFECT_LIVE)

    def wait_state(self, dom, wanted, timeout, what):
        deadline = time.monotonic() + timeout
        while True:
            state = self.domain_state(dom)
            if state == wanted:
                return
            if time.monotonic() >= deadline:
                raise WaitTimeout(
                    "Timed out after %ss waiting for %s to %s (it is %s)"
                    % (timeout, self._label(dom), what, state))
            time.sleep(min(0.5, max(0.0, deadline - time.monotonic())))

    def block_info(self, dom, target):
        """(capacity, allocation) in bytes, or None where libvirt cannot tell (an empty CD-ROM)."""
        try:
            capacity, allocation, _physical = dom.blockInfo(target, 0)
        except libvirt.libvirtError:
            return None
        return capacity, allocation

    def interface_addresses(self, dom, agent=True):
        """Addresses by MAC, from DHCP leases and, where it answers and agent is true, the guest
        agent, which reports whatever the guest tells it to."""
        found = {}
        sources = [libvirt.VIR_DOMAIN_INTERFACE_ADDRESSES_SRC_LEASE]
        if agent:
            sources.append(libvirt.VIR_DOMAIN_INTERFACE_ADDRESSES_SRC_AGENT)
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

    def volume_path(self, vol):
        # libvirtd is asked for it: a connection lost by then fails as this call, never as
        # libvirt's own exception (a rollback after the target died met that).
        return self.call("read the path of", "volume %s" % vol.name(), vol.path)

    def delete_volume(self, vol):
        self.call("delete", "volume %s" % self.volume_path(vol), vol.delete, 0)

    def network(self, name):
        return self.find("look up", "network %s" % name, self.conn.networkLookupByName, name)

    # --- storage pools and volumes: more -------------------------------------------------
    def pools(self):
        return self.call("list storage pools on", self.uri, self.conn.listAllStoragePools, 0)

    def pool_xml(self, pool, inactive=True):
        flags = libvirt.VIR_STORAGE_XML_INACTIVE if inactive else 0
        return self.call("read the definition of", "storage pool %s" % pool.name(), pool.XMLDesc, flags)

    def define_pool(self, xml, name):
        return self.call("define", "storage pool %s" % name, self.conn.storagePoolDefineXML, xml, 0)

    def build_pool(self, pool, no_overwrite):
        """False when the pool's device already holds its file system or volume group.

        no_overwrite: libvirt refuses to format a device that carries data, and says so with
        VIR_ERR_STORAGE_POOL_BUILT; any other failure is an error.
        """
        flags = libvirt.VIR_STORAGE_POOL_BUILD_NO_OVERWRITE if no_overwrite else 0
        try:
            pool.build(flags)
        except libvirt.libvirtError as e:
            if no_overwrite and e.get_error_code() == libvirt.VIR_ERR_STORAGE_POOL_BUILT:
                return False
            self.call("build", "storage pool %s" % pool.name(), self._reraise, e)
        return True

    @staticmethod
    def _reraise(error):
        # Lets an error caught for a closer look still go through call()'s one translation.
        raise error

    def start_pool(self, pool):
        self.call("start", "storage pool %s" % pool.name(), pool.create, 0)

    def stop_pool(self, pool):
        self.call("stop", "storage pool %s" % pool.name(), pool.destroy)

    def undefine_pool(self, pool):
        self.call("undefine", "storage pool %s" % pool.name(), pool.undefine)

    def delete_pool(self, pool):
        self.call("delete the data of", "storage pool %s" % pool.name(), pool.delete, 0)

    def refresh_pool(self, pool):
        self.call("refresh", "storage pool %s" % pool.name(), pool.refresh, 0)

    def pool_autostart(self, pool):
        return bool(self.call("read autostart of", "storage pool %s" % pool.name(), pool.autostart))

    def set_pool_autostart(self, pool, value):
        self.call("set autostart of", "storage pool %s" % pool.name(), pool.setAutostart, int(value))

    def pool_persistent(self, pool):
        return bool(self.call("read", "storage pool %s" % pool.name(), pool.isPersistent))

    def volumes(self, pool):
        return self.call("list the volumes of", "storage pool %s" % pool.name(), pool.listAllVolumes, 0)

    def volume_xml(self, vol):
        return self.call("read the definition of", "volume %s" % vol.name(), vol.XMLDesc, 0)

    def clone_volume(self, pool, xml, source, name):
        return self.call("clone", "volume %s into %s in pool %s" % (source.name(), name, pool.name()),
                         pool.createXMLFrom, xml, source, 0)

    def resize_volume(self, vol, capacity, shrink=False):
        flags = libvirt.VIR_STORAGE_VOL_RESIZE_SHRINK if shrink else 0
        self.call("resize", "volume %s" % vol.name(), vol.resize, capacity, flags)

    def wipe_volume(self, vol):
        self.call("wipe", "volume %s" % vol.name(), vol.wipe, 0)

    def upload_volume(self, vol, path, size):
        """Stream a local file of size bytes into the volume, through libvirt (remote URIs too)."""
        stream = self.call("open a stream to", self.uri, self.conn.newStream, 0)
        with open(path, "rb") as src:
            try:
                self.call("upload into", "volume %s" % vol.name(), vol.upload, stream, 0, size, 0)
                self.call("upload into", "volume %s" % vol.name(), stream.sendAll,
                          lambda _st, nbytes, f: f.read(nbytes), src)
                self.call("finish the upload into", "volume %s" % vol.name(), stream.finish)
            except Exception:
                try:
                    stream.abort()
                except libvirt.libvirtError:
                    pass
                raise

    def secret_by_usage(self, usage_type, usage_id):
        kinds = {"ceph": libvirt.VIR_SECRET_USAGE_TYPE_CEPH, "iscsi": libvirt.VIR_SECRET_USAGE_TYPE_ISCSI}
        return self.find("look up", "secret %s" % usage_id, self.conn.secretLookupByUsage,
                         kinds[usage_type], usage_id)

    def secret_xml(self, secret):
        return self.call("read", "secret %s" % secret.UUIDString(), secret.XMLDesc, 0)

    def define_secret(self, xml, usage_id):
        return self.call("define", "secret %s" % usage_id, self.conn.secretDefineXML, xml, 0)

    def set_secret_value(self, secret, value):
        self.call("set the value of", "secret %s" % secret.UUIDString(), secret.setValue,
                  value.encode("utf-8") if isinstance(value, str) else value, 0)

    # --- networks: more ------------------------------------------------------------------
    def networks(self):
        return self.call("list networks on", self.uri, self.conn.listAllNetworks, 0)

    def network_xml(self, net, inactive=True):
        flags = libvirt.VIR_NETWORK_XML_INACTIVE if inactive else 0
        return self.call("read the definition of", "network %s" % net.name(), net.XMLDesc, flags)

    def define_network(self, xml, name):
        return self.call("define", "network %s" % name, self.conn.networkDefineXML, xml)

    def start_network(self, net):
        self.call("start", "network %s" % net.name(), net.create)

    def stop_network(self, net):
        self.call("stop", "network %s" % net.name(), net.destroy)

    def undefine_network(self, net):
        self.call("undefine", "network %s" % net.name(), net.undefine)

    def network_active(self, net):
        return bool(self.call("read the state of", "network %s" % net.name(), net.isActive))

    def network_persistent(self, net):
        return bool(self.call("read", "network %s" % net.name(), net.isPersistent))

    def network_autostart(self, net):
        return bool(self.call("read autostart of", "network %s" % net.name(), net.autostart))

    def set_network_autostart(self, net, value):
        self.call("set autostart of", "network %s" % net.name(), net.setAutostart, int(value))

    _NET_SECTIONS = {"dhcp-host": "VIR_NETWORK_SECTION_IP_DHCP_HOST", "dns-host": "VIR_NETWORK_SECTION_DNS_HOST"}
    _NET_COMMANDS = {"add": "VIR_NETWORK_UPDATE_COMMAND_ADD_LAST", "delete": "VIR_NETWORK_UPDATE_COMMAND_DELETE"}

    def update_network(self, net, command, section, xml, live, parent_index=-1):
        """Change one entry of a network's DHCP hosts or DNS hosts, live and in its definition."""
        flags = libvirt.VIR_NETWORK_UPDATE_AFFECT_CONFIG
        if live:
            flags |= libvirt.VIR_NETWORK_UPDATE_AFFECT_LIVE
        self.call("update (%s %s)" % (command, section), "network %s" % net.name(), net.update,
                  getattr(libvirt, self._NET_COMMANDS[command]), getattr(libvirt, self._NET_SECTIONS[section]),
                  parent_index, xml, flags)

    def network_leases(self, net):
        return self.call("read the DHCP leases of", "network %s" % net.name(), net.DHCPLeases)

    # --- containers ----------------------------------------------------------------------
    def container(self, name):
        return self.find("look up", "container %s" % name, self.conn.lookupByName, name)

    def define_container(self, xml, name):
        return self.call("define", "container %s" % name, self.conn.defineXML, xml)

    def undefine_container(self, dom):
        # The LXC driver has no managed save, snapshots or NVRAM, and rejects those flags.
        self.call("undefine", "container %s" % dom.name(), dom.undefineFlags, 0)

    def set_container_cpu_live(self, dom, shares=None, quota=None, period=None):
        params = {}
        if shares is not None:
            params["cpu_shares"] = shares
        if period is not None:
            params["vcpu_period"] = period
        if quota is not None:
            params["vcpu_quota"] = quota
        self.call("set the CPU limits of", "container %s" % dom.name(), dom.setSchedulerParametersFlags,
                  params, libvirt.VIR_DOMAIN_AFFECT_LIVE)

    # --- cluster -------------------------------------------------------------------------

    # --- migration -----------------------------------------------------------------------
    def compare_cpu(self, cpu_xml, arch, machine, virttype):
        """True when this host's hypervisor can give a guest the CPU described by cpu_xml."""
        result = self.call("compare the CPU of a guest with", self.uri, self.conn.compareHypervisorCPU,
                           None, arch, machine, virttype, cpu_xml, 0)
        return result != libvirt.VIR_CPU_COMPARE_INCOMPATIBLE

    def volume_pool(self, vol):
        return self.call("find the pool of", "volume %s" % self.volume_path(vol), vol.storagePoolLookupByVolume)

    def set_max_downtime(self, dom, milliseconds):
        self.call("set the maximum migration downtime of", self._label(dom),
                  dom.migrateSetMaxDowntime, milliseconds, 0)

    def migrate_live(self, dom, dest, uri, persist_xml, bandwidth=None, copy_disks=(), tls=False, unsafe=False):
        """Move a running guest to dest (another LibvirtClient): persistent there, undefined here.

        Blocks until QEMU is done; abort_job() from another thread ends it early. tls: QEMU
        encrypts the memory and disk streams with the x509 credentials of both hosts. unsafe:
        skip libvirt's test of shared storage, for disks the caller proved shared itself.
        """
        flags = (libvirt.VIR_MIGRATE_LIVE | libvirt.VIR_MIGRATE_PERSIST_DEST
                 | libvirt.VIR_MIGRATE_UNDEFINE_SOURCE)
        if tls:
            flags |= libvirt.VIR_MIGRATE_TLS
        if unsafe:
            flags |= libvirt.VIR_MIGRATE_UNSAFE
        params = {libvirt.VIR_MIGRATE_PARAM_URI: uri, libvirt.VIR_MIGRATE_PARAM_PERSIST_XML: persist_xml}
        if bandwidth:
            params[libvirt.VIR_MIGRATE_PARAM_BANDWIDTH] = bandwidth
        if copy_disks:
            flags |= libvirt.VIR_MIGRATE_NON_SHARED_DISK
            params[libvirt.VIR_MIGRATE_PARAM_MIGRATE_DISKS] = list(copy_disks)
        return self.call("migrate", "guest %s to %s" % (dom.name(), dest.uri), dom.migrate3,
                         dest.conn, params, flags)

    def abort_job(self, dom):
        self.call("abort the migration of", self._label(dom), dom.abortJob)

    def job_stats(self, dom, completed=False):
        """libvirt's job statistics (time_elapsed, downtime, ... in ms); {} when it has none."""
        flags = libvirt.VIR_DOMAIN_JOB_STATS_COMPLETED if completed else 0
        try:
            return dom.jobStats(flags) or {}
        except libvirt.libvirtError:
            return {}

    def copy_volume_to(self, vol, dest, dest_vol, size, deadline=None):
        """Stream size bytes of vol into dest_vol, a volume of another host (through this process).

        deadline (time.monotonic()) ends the copy between two chunks with WaitTimeout, both
        streams aborted.
        """
        src = self.call("open a stream to", self.uri, self.conn.newStream, 0)
        dst = dest.call("open a stream to", dest.uri, dest.conn.newStream, 0)
        what = "volume %s to %s" % (self.volume_path(vol), dest.uri)
        try:
            self.call("read", "volume %s" % self.volume_path(vol), vol.download, src, 0, size, 0)
            dest.call("write", "volume %s on %s" % (dest.volume_path(dest_vol), dest.uri), dest_vol.upload, dst, 0, size, 0)
            while True:
                chunk = self.call("copy", what, src.recv, 1024 * 1024)
                if not chunk:
                    break
                dest.call("copy", what, dst.send, chunk)
                if deadline is not None and time.monotonic() >= deadline:
                    raise WaitTimeout("Gave up copying %s: the time allowed ran out" % what)
            self.call("finish copying", what, src.finish)
            dest.call("finish copying", what, dst.finish)
        except Exception:
            for stream in (src, dst):
                try:
                    stream.abort()
                except libvirt.libvirtError:
                    pass
            raise

    def container_init_lost(self, dom, timeout=10):
        """Whether libvirt, timeout s after a container's start, still does not know the PID of
        its init (False as soon as it does, or when this cannot be asked)."""
        # libvirt learns the PID from one message of the container's controller, sent once; we
        # saw it lost right after a start (libvirtd up throughout). Without the PID libvirt can
        # never stop that container cleanly, so a start is only done once the PID is known.
        # Only a local connection can receive the namespace descriptors the question returns.
        if libvirt_lxc is None or not is_local(self.uri):
            return False
        deadline, delay = time.monotonic() + timeout, 0.02
        while True:
            try:
                fds = libvirt_lxc.lxcOpenNamespace(dom, 0)
            except libvirt.libvirtError as e:
                if not (e.get_error_code() == libvirt.VIR_ERR_OPERATION_INVALID
                        and e.get_error_domain() == libvirt.VIR_FROM_LXC):
                    return False
                if self.domain_state(dom) != "running":
                    return False
                if time.monotonic() >= deadline:
                    return True
                time.sleep(delay)
                delay = min(delay * 2, 0.5)
                continue
            for fd in fds or ():
                os.close(fd)
            return False

    def stop_container(self, dom, timeout):
        """Shut a running container down within timeout seconds, or raise WaitTimeout."""
        deadline = time.monotonic() + timeout
        # libvirt's default asks init through initctl, which a system container's init reads; an
        # application's init never answers that, and gets SIGTERM after a few seconds instead.
        if not self._ask_container_to_stop(dom, timeout, deadline):
            return
        grace = min(10, max(0.0, deadline - time.monotonic()) / 2)
        try:
            self.wait_state(dom, "stopped", grace, "shut down")
            return
        except WaitTimeout:
            pass
        if not self._ask_container_to_stop(dom, timeout, deadline, libvirt.VIR_DOMAIN_SHUTDOWN_SIGNAL):
            return
        try:
            self.wait_state(dom, "stopped", max(0.0, deadline - time.monotonic()), "shut down")
        except WaitTimeout:
            raise WaitTimeout("Container %s did not stop within %gs, neither on libvirt's request nor on "
                              "SIGTERM to its init" % (dom.name(), timeout)) from None

    def _ask_container_to_stop(self, dom, timeout, deadline, flags=0):
        """libvirt's request to stop (flags 0) or SIGTERM to init (SIGNAL); False if the container
        stopped on its own before libvirt took the request."""
        # libvirt's LXC driver (lxcDomainShutdownFlags) learns a container's init PID from the
        # container's controller a moment after the start has returned, and again after each
        # restart; until then it refuses to stop a running container with this error of this
        # driver. That refusal only means "ask again shortly"; any other one is the answer.
        delay = 0.05
        while True:
            try:
                dom.shutdownFlags(flags)
                return True
            except libvirt.libvirtError as e:
                if not (e.get_error_code() == libvirt.VIR_ERR_OPERATION_INVALID
                        and e.get_error_domain() == libvirt.VIR_FROM_LXC):
                    raise self._translate("shut down", "container %s" % dom.name(), e) from None
                state = self.domain_state(dom)
                if state == "stopped":
                    return False
                if state != "running":
                    raise self._translate("shut down", "container %s" % dom.name(), e) from None
                left = deadline - time.monotonic()
                if left <= 0:
                    # A libvirtd restarted between a start and the controller's report has no PID
                    # in its saved state and never gets one: only a forced stop helps then.
                    raise WaitTimeout(
                        "Container %s did not stop within %gs: waited for libvirt to learn the process ID of "
                        "its init, which it needs to stop a container, and it did not (libvirt: %s)"
                        % (dom.name(), timeout, e.get_error_message() or e)) from None
                time.sleep(min(delay, left))
                delay = min(delay * 2, 0.5)
