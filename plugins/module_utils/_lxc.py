# -*- coding: utf-8 -*-
# Copyright: debvirt.cluster developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A container's specification and its mapping onto the domain XML of libvirt's LXC driver.

As with a virtual machine's (_domain), a spec holds only what the user manages, from_xml()
reads it from libvirt's document and to_xml() writes it back into that same document.
"""

from __future__ import annotations

from ansible_collections.debvirt.cluster.plugins.module_utils._domain import (
    InterfaceXML,
    Memory,
    NicSpec,
    Spec,
    _write_interfaces,
)
from ansible_collections.debvirt.cluster.plugins.module_utils._names import CPU_LIMITS, MEMORY_LIMITS
from ansible_collections.debvirt.cluster.plugins.module_utils._options import Option, OptionGroup
from ansible_collections.debvirt.cluster.plugins.module_utils._xml import INT, NAMESPACES, YES_NO, Flag, Prop, XMLObject
from ansible_collections.debvirt.cluster.plugins.module_utils._xml import append, ensure, remove

SYSTEM_INIT = ["/sbin/init"]
CFS_PERIOD = 100000


# --- the XML model ---------------------------------------------------------------------------
class FilesystemXML(XMLObject):
    TAG = "filesystem"
    type = Prop("@type")
    accessmode = Prop("@accessmode")
    dir = Prop("source/@dir")
    file = Prop("source/@file")
    dev = Prop("source/@dev")
    target = Prop("target/@dir")
    readonly = Flag("readonly")


class ContainerXML(XMLObject):
    """Bound here: what is not one of the options below (RESOURCES, META, BOOKKEEPING bind theirs)."""

    TAG = "domain"
    name = Prop("name")
    uuid = Prop("uuid")
    virt_type = Prop("@type")
    limit = Memory("memory")
    current = Memory("currentMemory")
    _vcpus = Prop("vcpu", INT)
    period = Prop("cputune/period", INT)
    quota = Prop("cputune/quota", INT)
    init = Prop("os/init")
    uid_start = Prop("idmap/uid/@start", INT)
    uid_target = Prop("idmap/uid/@target", INT)
    uid_count = Prop("idmap/uid/@count", INT)
    gid_start = Prop("idmap/gid/@start", INT)
    gid_target = Prop("idmap/gid/@target", INT)
    gid_count = Prop("idmap/gid/@count", INT)
    rootfs_source = Prop("metadata/dv:container/dv:rootfs/@source")
    rootfs_created = Prop("metadata/dv:container/dv:rootfs/@created", YES_NO)
    rootfs_path = Prop("metadata/dv:container/dv:rootfs/@path")  # where it was created
    rootfs_volume = Prop("metadata/dv:container/dv:rootfs/@volume")

    @property
    def memory(self):
        """In MiB; a container's current memory is always its maximum."""
        return self.limit

    @memory.setter
    def memory(self, value):
        self.limit = self.current = value

    @property
    def vcpus(self):
        return self._vcpus

    @vcpus.setter
    def vcpus(self, count):
        # The LXC driver runs a container on every host CPU; a CFS quota is what limits it.
        self._vcpus = count
        self.period, self.quota = CFS_PERIOD, count * CFS_PERIOD

    @property
    def command(self):
        return [self.init or SYSTEM_INIT[0]] + self.initargs

    @command.setter
    def command(self, argv):
        self.init = argv[0]
        self.initargs = argv[1:]

    @property
    def initargs(self):
        return [n.text or "" for n in self.node.findall("os/initarg")]

    @initargs.setter
    def initargs(self, args):
        os_node = ensure(self.node, "os")
        for node in os_node.findall("initarg"):
            os_node.remove(node)
        anchor = os_node.find("init")
        for arg in args:
            node = append(os_node, "initarg")
            node.text = arg
            # libvirt keeps initarg right after init; so does the document it is given.
            if anchor is not None:
                anchor.addnext(node)
            anchor = node

    @property
    def filesystems(self):
        return self.children("devices/filesystem", FilesystemXML)

    @property
    def interfaces(self):
        return self.children("devices/interface", InterfaceXML)

    def addresses(self):
        """{interface name: (address, gateway)} as this module recorded them."""
        out = {}
        for node in self.node.findall("metadata/dv:container/dv:address", NAMESPACES):
            out[node.get("dev")] = (node.get("address"), node.get("gateway"))
        return out

    def set_addresses(self, nics):
        def fill(node, nic):
            # Keyed by name: a new interface has no MAC until libvirt gives it one.
            node.set("dev", nic.dev)
            node.set("address", nic.address)
            if nic.gateway:
                node.set("gateway", nic.gateway)
        self._replace_meta("address", [n for n in nics if n.address is not None and n.dev], fill)

    @property
    def tags(self):
        return sorted(n.text for n in self.node.findall("metadata/dv:container/dv:tag", NAMESPACES))

    @tags.setter
    def tags(self, values):
        self._replace_meta("tag", sorted(values), lambda node, value: setattr(node, "text", value))

    def _replace_meta(self, name, items, fill):
        """Replace the dv:<name> entries in place, so a rewrite leaves the document as it was."""
        meta = ensure(self.node, "metadata/dv:container")
        old = meta.findall("dv:%s" % name, NAMESPACES)
        index = meta.index(old[0]) if old else len(meta)
        for node in old:
            meta.remove(node)
        for offset, item in enumerate(items):
            node = append(meta, "dv:%s" % name)
            fill(node, item)
            meta.insert(index + offset, node)


NEW_CONTAINER = """<domain type='lxc'>
  <name>new</name>
  <memory unit='KiB'>524288</memory>
  <vcpu placement='static'>1</vcpu>
  <os><type>exe</type><init>/sbin/init</init></os>
  <features><privnet/></features>
  <on_poweroff>destroy</on_poweroff>
  <on_reboot>restart</on_reboot>
  <on_crash>destroy</on_crash>
  <devices>
    <console type='pty'/>
  </devices>
</domain>
"""
# privnet: without it a container without interfaces would share the host's network namespace.


# --- the options -----------------------------------------------------------------------------
# A container's scalar options, in the order the plan compares them. Memory is compared in the
# planner's own way: the LXC driver cannot raise a running container's memory.
RESOURCES = OptionGroup(
    Option("memory", dict(type="int"), check=MEMORY_LIMITS, compared=False),
    Option("vcpus", dict(type="int"), check=CPU_LIMITS, live=True),
    Option("cpu_shares", dict(type="int"), "cputune/shares", INT, check=(2, 262144, ""), live=True),
    # Checked by the request: the first word is the path of a program.
    Option("command", dict(type="list", elements="str"), request=list, cold=True),
)
META = OptionGroup(
    # Checked by the request as a host name.
    Option("hostname", dict(type="str"), "metadata/dv:container/dv:hostname", cold=True),
    Option("description", dict(type="str"), "metadata/dv:container/dv:description", check="text", clear=True),
    Option("tags", dict(type="list", elements="str"), request=lambda tags: sorted(set(tags))),
)
# The fleet's name is its own bookkeeping, no user's option.
BOOKKEEPING = OptionGroup(Option("fleet", None, "metadata/dv:container/dv:fleet"))
(RESOURCES + META + BOOKKEEPING).bind(ContainerXML)


# --- the specs -------------------------------------------------------------------------------
class MountSpec(Spec):
    FIELDS = ("source", "target", "readonly")


class ContainerNicSpec(NicSpec):
    """An interface: where it plugs in, its MAC, its name inside, and its addressing there."""

    FIELDS = ("network", "bridge", "mac", "dev", "address", "gateway")
    model = None  # veth pairs have no model

    @classmethod
    def from_xml(cls, iface, addresses=None):
        guest = iface.node.find("guest")
        dev = guest.get("dev") if guest is not None else None
        address, gateway = (addresses or {}).get(dev, (None, None))
        return cls(network=iface.network if iface.type == "network" else None,
                   bridge=iface.bridge if iface.type == "bridge" else None,
                   mac=iface.mac.lower() if iface.mac else None, dev=dev,
                   address=address, gateway=gateway)

    def write(self, iface):
        super().write(iface)
        if self.dev is not None:
            ensure(iface.node, "guest").set("dev", self.dev)


class ContainerSpec(Spec):
    FIELDS = ("memory", "vcpus", "cpu_shares", "command", "privileged", "idmap", "rootfs", "rootfs_volume", "mounts",
              "interfaces", "hostname", "description", "tags", "created", "fleet")
    # Bookkeeping written to the metadata that is not the user's to see in a diff.
    INTERNAL = ("created", "fleet")

    @classmethod
    def from_xml(cls, domain):
        rootfs, mounts = None, []
        for fs in domain.filesystems:
            if fs.target == "/":
                rootfs = fs.dir or fs.file or fs.dev
            elif fs.type in (None, "mount"):
                mounts.append(MountSpec(source=fs.dir, target=fs.target, readonly=fs.readonly))
        idmap = None
        if domain.uid_target is not None:
            idmap = {"uid": domain.uid_target, "gid": domain.gid_target, "count": domain.uid_count}
        addresses = domain.addresses()
        return cls(
            privileged=idmap is None,
            idmap=idmap,
            rootfs=rootfs,
            rootfs_volume=domain.rootfs_volume,
            mounts=mounts,
            interfaces=[ContainerNicSpec.from_xml(i, addresses) for i in domain.interfaces],
            created=domain.rootfs_source and {"source": domain.rootfs_source,
                                              "created": bool(domain.rootfs_created),
                                              "path": domain.rootfs_path},
            **RESOURCES.read(domain), **META.read(domain), **BOOKKEEPING.read(domain)
        )

    def view(self):
        out = self.as_dict()
        for field in self.INTERNAL:
            out.pop(field, None)
        return out

    def to_xml(self, domain):
        """Write every managed field into domain (a ContainerXML) and return it."""
        RESOURCES.write(self, domain)
        if self.privileged:
            remove(domain.node.find("idmap"))
        elif self.idmap is not None:
            for kind in ("uid", "gid"):
                node = ensure(domain.node, "idmap/%s" % kind)
                node.set("start", "0")
                node.set("target", str(self.idmap[kind]))
                node.set("count", str(self.idmap["count"]))
        if self.rootfs is not None and self.rootfs_volume is not None:
            _write_volume_rootfs(domain, self.rootfs)
        elif self.rootfs is not None:
            _write_mount(domain, MountSpec(source=self.rootfs, target="/", readonly=False))
        if self.rootfs_volume is not None:
            domain.rootfs_volume = self.rootfs_volume
        if self.mounts is not None:
            wanted = {m.target for m in self.mounts}
            for fs in domain.filesystems:
                if fs.target != "/" and fs.target not in wanted and fs.type in (None, "mount"):
                    remove(fs.node)
            for mount in self.mounts:
                _write_mount(domain, mount)
        if self.interfaces is not None:
            _write_interfaces(domain, self.interfaces)
            domain.set_addresses(self.interfaces)
        META.write(self, domain)
        if self.created is not None:
            domain.rootfs_source = self.created["source"]
            domain.rootfs_created = self.created["created"]
            domain.rootfs_path = self.created.get("path")
        BOOKKEEPING.write(self, domain)
        return domain


def _write_volume_rootfs(domain, path):
    node = next((fs for fs in domain.filesystems if fs.target == "/"), None)
    if node is None:
        node = domain.add("devices", FilesystemXML())
    node.accessmode, node.target, node.dir = "passthrough", "/", None
    if path.startswith("/dev/"):
        node.type, node.file, node.dev = "block", None, path
        remove(node.node.find("driver"))
    else:
        # libvirt attaches the image to a loop device and mounts the filesystem in it.
        node.type, node.dev, node.file = "file", None, path
        driver = ensure(node.node, "driver")
        driver.set("type", "loop")
        driver.set("format", "raw")


def _write_mount(domain, mount):
    node = next((fs for fs in domain.filesystems if fs.target == mount.target), None)
    if node is None:
        node = domain.add("devices", FilesystemXML())
    node.type, node.accessmode = "mount", "passthrough"
    node.file = node.dev = None
    remove(node.node.find("driver"))
    node.dir, node.target = mount.source, mount.target
    node.readonly = bool(mount.readonly)
