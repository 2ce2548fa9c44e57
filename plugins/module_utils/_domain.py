# -*- coding: utf-8 -*-
# Copyright: debvirt.cluster developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A guest's specification and its mapping onto libvirt's domain XML.

A spec holds only what the user manages: None means "leave it as libvirt has it". from_xml()
reads every managed field of an existing guest; to_xml() writes the spec's non-None fields into
libvirt's own document, so everything else in it survives.
"""

from __future__ import annotations

import copy

from ansible_collections.debvirt.cluster.plugins.module_utils._names import CPU_LIMITS, MEMORY_LIMITS
from ansible_collections.debvirt.cluster.plugins.module_utils._options import Option, OptionGroup
from ansible_collections.debvirt.cluster.plugins.module_utils._xml import (
    INT,
    Flag,
    Prop,
    NAMESPACES,
    XMLObject,
    append,
    ensure,
)

_UNITS = {"b": 1, "bytes": 1, "k": 1024, "kib": 1024, "kb": 1000, "m": 1024 ** 2, "mib": 1024 ** 2,
          "mb": 1000 ** 2, "g": 1024 ** 3, "gib": 1024 ** 3, "gb": 1000 ** 3, "t": 1024 ** 4,
          "tib": 1024 ** 4, "tb": 1000 ** 4}


def mib(value, unit):
    return int(value) * _UNITS[(unit or "KiB").lower()] // 1024 ** 2


class Memory:
    """A libvirt memory element (memory, currentMemory) in MiB, whatever unit it was written in;
    written back in KiB, libvirt's own unit."""

    def __init__(self, path):
        self.amount = Prop(path)
        self.unit = Prop(path + "/@unit")

    def __get__(self, obj, owner=None):
        if obj is None:
            return self
        amount = self.amount.__get__(obj)
        return None if amount is None else mib(amount, self.unit.__get__(obj))

    def __set__(self, obj, value):
        self.amount.__set__(obj, None if value is None else str(value * 1024))
        self.unit.__set__(obj, None if value is None else "KiB")


# --- the XML model ---------------------------------------------------------------------------
class DiskXML(XMLObject):
    TAG = "disk"
    type = Prop("@type")
    device = Prop("@device")
    format = Prop("driver/@type")
    cache = Prop("driver/@cache")
    file = Prop("source/@file")
    dev = Prop("source/@dev")
    pool = Prop("source/@pool")
    volume = Prop("source/@volume")
    target = Prop("target/@dev")
    bus = Prop("target/@bus")
    readonly = Flag("readonly")
    boot_order = Prop("boot/@order", INT)

    @property
    def path(self):
        return self.file or self.dev


class InterfaceXML(XMLObject):
    TAG = "interface"
    type = Prop("@type")
    network = Prop("source/@network")
    bridge = Prop("source/@bridge")
    model = Prop("model/@type")
    mac = Prop("mac/@address")


class GraphicsXML(XMLObject):
    TAG = "graphics"
    type = Prop("@type")
    port = Prop("@port", INT)
    autoport = Prop("@autoport")
    listen = Prop("@listen")
    password = Prop("@passwd")


class DomainXML(XMLObject):
    """Bound here: what is not one of the options below (SIZE, MACHINE, META bind theirs)."""

    TAG = "domain"
    name = Prop("name")
    uuid = Prop("uuid")
    max_memory = Memory("memory")
    current_memory = Memory("currentMemory")
    max_vcpus = Prop("vcpu", INT)
    vcpus = Prop("vcpu/@current", INT)
    arch = Prop("os/type/@arch")
    firmware_attr = Prop("os/@firmware")
    loader_type = Prop("os/loader/@type")
    _cpu_mode = Prop("cpu/@mode")
    _cpu_model = Prop("cpu/model")
    seed_path = Prop("metadata/dv:guest/dv:cloud-init/@path")
    seed_sha256 = Prop("metadata/dv:guest/dv:cloud-init/@sha256")

    @property
    def memory(self):
        """The current memory in MiB (libvirt's currentMemory, or its memory when it has none)."""
        return self.current_memory or self.max_memory

    @memory.setter
    def memory(self, value):
        self.current_memory = value

    @property
    def cpu_mode(self):
        return self._cpu_mode

    @cpu_mode.setter
    def cpu_mode(self, mode):
        if mode != self._cpu_mode:
            # libvirt allows migratable only with host-passthrough; it sets its own default.
            ensure(self.node, "cpu").attrib.pop("migratable", None)
        self._cpu_mode = mode
        if mode != "custom":
            self._cpu_model = None

    @property
    def cpu_model(self):
        """Only a custom CPU mode has a model of its own; the others' is libvirt's."""
        return self._cpu_model if self._cpu_mode in (None, "custom") else None

    @cpu_model.setter
    def cpu_model(self, model):
        self._cpu_model = model

    @property
    def firmware(self):
        return "uefi" if self.firmware_attr == "efi" or self.loader_type == "pflash" else "bios"

    @firmware.setter
    def firmware(self, firmware):
        os_node = ensure(self.node, "os")
        if firmware == "uefi":
            os_node.set("firmware", "efi")
            return
        os_node.attrib.pop("firmware", None)
        for tag in ("loader", "nvram", "firmware"):
            for node in os_node.findall(tag):
                os_node.remove(node)

    @property
    def tags(self):
        return sorted(self.list_meta("tag"))

    @tags.setter
    def tags(self, values):
        self.set_list_meta("tag", sorted(values))

    @property
    def disks(self):
        return self.children("devices/disk", DiskXML)

    @property
    def interfaces(self):
        return self.children("devices/interface", InterfaceXML)

    @property
    def graphics(self):
        return self.children("devices/graphics", GraphicsXML)

    @property
    def serial_log(self):
        node = self.node.find("devices/serial/log")
        return None if node is None else node.get("file")

    @serial_log.setter
    def serial_log(self, path):
        serial = self.node.find("devices/serial")
        if serial is None:
            serial = ensure(self.node, "devices/serial")
            serial.set("type", "pty")
            ensure(serial, "target").set("port", "0")
            if self.node.find("devices/console") is None:
                console = ensure(self.node, "devices/console")
                console.set("type", "pty")
                target = ensure(console, "target")
                target.set("type", "serial")
                target.set("port", "0")
        log = ensure(serial, "log")
        log.set("file", path)
        log.set("append", "on")

    def list_meta(self, name):
        return [n.text for n in self.node.findall("metadata/dv:guest/dv:%s" % name, NAMESPACES)]

    def set_list_meta(self, name, values):
        guest = ensure(self.node, "metadata/dv:guest")
        for node in guest.findall("dv:%s" % name, NAMESPACES):
            guest.remove(node)
        for value in values:
            append(guest, "dv:%s" % name).text = value


NEW_DOMAIN = """<domain type='kvm'>
  <name>new</name>
  <memory unit='KiB'>1048576</memory>
  <currentMemory unit='KiB'>1048576</currentMemory>
  <vcpu placement='static'>1</vcpu>
  <os><type arch='x86_64'>hvm</type></os>
  <features><acpi/><apic/></features>
  <on_poweroff>destroy</on_poweroff>
  <on_reboot>restart</on_reboot>
  <on_crash>destroy</on_crash>
  <devices>
    <rng model='virtio'><backend model='random'>/dev/urandom</backend></rng>
  </devices>
</domain>
"""


# --- the specs -------------------------------------------------------------------------------
class Spec:
    """Fields are plain attributes; None means "not managed"."""

    FIELDS = ()

    def __init__(self, **values):
        for field in self.FIELDS:
            setattr(self, field, values.pop(field, None))
        if values:
            raise TypeError("unknown fields: %s" % ", ".join(sorted(values)))

    def as_dict(self):
        out = {}
        for field in self.FIELDS:
            value = getattr(self, field)
            if isinstance(value, list):
                value = [v.as_dict() if isinstance(v, Spec) else v for v in value]
            elif isinstance(value, Spec):
                value = value.as_dict()
            if value is not None:
                out[field] = value
        return out

    def copy(self):
        return copy.deepcopy(self)

    def __eq__(self, other):
        # Field by field, not as_dict(): as_dict() may mask secrets.
        return type(self) is type(other) and all(
            getattr(self, f) == getattr(other, f) for f in self.FIELDS)

    def __repr__(self):
        return "%s(%r)" % (type(self).__name__, self.as_dict())


HOTPLUG_BUSES = ("virtio", "scsi", "usb")
_BUS_PREFIX = {"virtio": "vd", "sata": "sd", "scsi": "sd", "usb": "sd", "ide": "hd"}


def target_name(prefix, index):
    """vda, vdb, ... vdz, vdaa: libvirt's own naming of disk targets."""
    name = ""
    index += 1
    while index:
        index, rest = divmod(index - 1, 26)
        name = chr(ord("a") + rest) + name
    return prefix + name


class DiskSpec(Spec):
    FIELDS = ("target", "device", "bus", "format", "cache", "readonly", "boot_order",
              "path", "pool", "volume", "size")
    # Fields compared on an existing disk; the source identifies it, size only creates it.
    COMPARED = ("device", "bus", "format", "cache", "readonly", "boot_order")

    def key(self):
        if self.pool is not None:
            return ("volume", self.pool, self.volume)
        return ("path", self.path)

    @classmethod
    def from_xml(cls, disk):
        return cls(target=disk.target, device=disk.device or "disk", bus=disk.bus,
                   format=disk.format, cache=disk.cache, readonly=disk.readonly,
                   boot_order=disk.boot_order, path=disk.path, pool=disk.pool, volume=disk.volume)

    def write(self, disk):
        """Write the managed fields into a DiskXML (new or libvirt's own)."""
        if self.pool is not None:
            disk.type = "volume"
            disk.file = disk.dev = None
            disk.pool, disk.volume = self.pool, self.volume
        elif self.path is not None:
            disk.pool = disk.volume = None
            if self.path.startswith("/dev/"):
                disk.type, disk.file, disk.dev = "block", None, self.path
            else:
                disk.type, disk.dev, disk.file = "file", None, self.path
        disk.device = self.device
        if self.format is not None or self.cache is not None:
            ensure(disk.node, "driver").set("name", "qemu")
        disk.format = self.format
        disk.cache = self.cache
        disk.target = self.target
        disk.bus = self.bus
        disk.readonly = self.readonly
        disk.boot_order = self.boot_order


class NicSpec(Spec):
    FIELDS = ("network", "bridge", "model", "mac")
    COMPARED = ("model",)

    def source(self):
        return ("network", self.network) if self.network is not None else ("bridge", self.bridge)

    @classmethod
    def from_xml(cls, iface):
        return cls(network=iface.network if iface.type == "network" else None,
                   bridge=iface.bridge if iface.type == "bridge" else None,
                   model=iface.model, mac=iface.mac.lower() if iface.mac else None)

    def write(self, iface):
        kind, name = self.source()
        iface.type = kind
        iface.network = name if kind == "network" else None
        iface.bridge = name if kind == "bridge" else None
        iface.model = self.model
        iface.mac = self.mac


class GraphicsSpec(Spec):
    FIELDS = ("type", "listen", "port", "password")

    @classmethod
    def from_xml(cls, domain):
        nodes = domain.graphics
        if not nodes:
            return cls(type="none")
        g = nodes[0]
        listen = g.listen
        if listen is None:
            child = g.node.find("listen")
            listen = child.get("address") if child is not None else None
        port = g.port if g.autoport != "yes" else None
        return cls(type=g.type, listen=listen, port=port, password=g.password)

    def managed_view(self, actual):
        """The actual value restricted to what this (desired) spec manages."""
        if self.type == "none" or actual.type == "none":
            return GraphicsSpec(type=actual.type)
        return GraphicsSpec(type=actual.type, listen=actual.listen,
                            port=actual.port if self.port is not None else None,
                            password=actual.password if self.password is not None else None)

    def write(self, domain):
        for g in domain.graphics:
            g.node.getparent().remove(g.node)
        if self.type == "none":
            return
        g = domain.add("devices", GraphicsXML())
        g.type = self.type
        g.autoport = "no" if self.port is not None else "yes"
        g.port = self.port if self.port is not None else -1
        g.listen = self.listen
        if self.listen is not None:
            listen = ensure(g.node, "listen")
            listen.set("type", "address")
            listen.set("address", self.listen)
        g.password = self.password

    def as_dict(self):
        out = super().as_dict()
        if "password" in out:
            out["password"] = "********"
        return out


def _sorted_set(values):
    return sorted(set(values))


# The guest's scalar options, in the order the plan compares them. Sizes are compared in the
# planner's own way: raising one above its maximum raises the maximum, and some apply live.
SIZE = OptionGroup(
    Option("memory", dict(type="int"), check=MEMORY_LIMITS, compared=False),
    Option("max_memory", dict(type="int"), check=MEMORY_LIMITS, compared=False),
    # The online count depends on the maximum: GuestSpec.to_xml writes both.
    Option("vcpus", dict(type="int"), check=CPU_LIMITS, compared=False, xml=False),
    Option("max_vcpus", dict(type="int"), check=CPU_LIMITS, compared=False, xml=False),
)
# A running guest sees these at its next boot.
MACHINE = OptionGroup(
    Option("virt_type", dict(type="str", choices=["auto", "kvm", "qemu"], default="auto"), "@type",
           request=lambda v: v if v in ("kvm", "qemu") else None, cold=True),
    Option("cpu_mode", dict(type="str", choices=["host-passthrough", "host-model", "custom"]), cold=True),
    Option("cpu_model", dict(type="str"), check="word", cold=True),
    Option("machine", dict(type="str"), "os/type/@machine", check="word", cold=True),
    Option("firmware", dict(type="str", choices=["bios", "uefi"]), cold=True),
    Option("kernel", dict(type="path"), "os/kernel", check="path", clear=True, cold=True),
    Option("initrd", dict(type="path"), "os/initrd", check="path", clear=True, cold=True),
    Option("cmdline", dict(type="str"), "os/cmdline", check="text", clear=True, cold=True),
    Option("serial_log", dict(type="path"), check="path", cold=True),
)
# This collection's metadata; the fleet's name is its own bookkeeping, no user's option.
META = OptionGroup(
    Option("description", dict(type="str"), "metadata/dv:guest/dv:description", check="text", clear=True),
    Option("fleet", None, "metadata/dv:guest/dv:fleet", clear=True),
    Option("tags", dict(type="list", elements="str"), request=_sorted_set),
)
(SIZE + MACHINE + META).bind(DomainXML)


class GuestSpec(Spec):
    FIELDS = ("virt_type", "memory", "max_memory", "vcpus", "max_vcpus", "cpu_mode", "cpu_model",
              "machine", "firmware", "kernel", "initrd", "cmdline", "serial_log", "graphics",
              "description", "tags", "disks", "interfaces", "seed", "created", "fleet")
    # Bookkeeping that is written to the guest's metadata but is not the user's to see in a diff.
    INTERNAL = ("seed", "created", "fleet")

    @classmethod
    def from_xml(cls, domain):
        return cls(
            vcpus=domain.vcpus if domain.vcpus is not None else domain.max_vcpus,
            max_vcpus=domain.max_vcpus,
            graphics=GraphicsSpec.from_xml(domain),
            disks=[DiskSpec.from_xml(d) for d in domain.disks if not d.path or d.path != domain.seed_path],
            interfaces=[NicSpec.from_xml(i) for i in domain.interfaces],
            seed={"path": domain.seed_path, "sha256": domain.seed_sha256,
                  "target": next((d.target for d in domain.disks if d.path == domain.seed_path), None)}
            if domain.seed_path else None,
            created=domain.list_meta("created-volume"),
            **SIZE.read(domain), **MACHINE.read(domain), **META.read(domain)
        )

    def view(self):
        """as_dict() without the bookkeeping: what a user sees in a diff or a result."""
        out = self.as_dict()
        for field in self.INTERNAL:
            out.pop(field, None)
        if self.seed:
            out["cloud_init"] = {"path": self.seed["path"], "sha256": self.seed["sha256"]}
        return out

    def to_xml(self, domain):
        """Write every managed field into domain (a DomainXML) and return it.

        Disks are matched by target and interfaces by MAC: the planner gives every desired disk
        its target and every kept interface its MAC before this runs.
        """
        SIZE.write(self, domain)
        online = domain.vcpus if domain.vcpus is not None else domain.max_vcpus
        if self.max_vcpus is not None:
            domain.max_vcpus = self.max_vcpus
        if self.vcpus is not None:
            online = self.vcpus
        if online is not None:
            domain.vcpus = online if online != domain.max_vcpus else None
        MACHINE.write(self, domain)
        if self.graphics is not None:
            self.graphics.write(domain)
        META.write(self, domain)
        if self.disks is not None:
            _write_disks(domain, self.disks, self.seed)
        if self.interfaces is not None:
            _write_interfaces(domain, self.interfaces)
        if self.seed is not None:
            _write_seed(domain, self.seed)
        if self.created is not None:
            domain.set_list_meta("created-volume", self.created)
        return domain


def _write_seed(domain, seed):
    if not any(d.path == seed["path"] for d in domain.disks):
        DiskSpec(device="cdrom", bus="sata", format="raw", readonly=True, path=seed["path"],
                 target=seed["target"]).write(domain.add("devices", DiskXML()))
    domain.seed_path, domain.seed_sha256 = seed["path"], seed["sha256"]


def _write_disks(domain, disks, seed):
    by_target = {d.target: d for d in domain.disks}
    seed_path = seed["path"] if seed else domain.seed_path
    wanted = {d.target for d in disks}
    for target, node in by_target.items():
        if target not in wanted and (seed_path is None or node.path != seed_path):
            node.node.getparent().remove(node.node)
    for spec in disks:
        node = by_target.get(spec.target)
        if node is None:
            node = domain.add("devices", DiskXML())
        spec.write(node)
    if any(d.boot_order is not None for d in disks):
        # libvirt refuses per-device boot order beside <os><boot dev=.../>.
        for node in domain.node.findall("os/boot"):
            node.getparent().remove(node)


def _write_interfaces(domain, nics):
    existing = {i.mac.lower(): i for i in domain.interfaces if i.mac}
    kept = {n.mac for n in nics if n.mac}
    for mac, node in existing.items():
        if mac not in kept:
            node.node.getparent().remove(node.node)
    for spec in nics:
        node = existing.get(spec.mac) if spec.mac else None
        if node is None:
            node = domain.add("devices", InterfaceXML())
        spec.write(node)
