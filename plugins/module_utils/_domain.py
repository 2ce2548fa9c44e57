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
    TAG = "domain"
    name = Prop("name")
    uuid = Prop("uuid")
    virt_type = Prop("@type")
    max_memory_kib = Prop("memory")
    max_memory_unit = Prop("memory/@unit")
    memory_kib = Prop("currentMemory")
    memory_unit = Prop("currentMemory/@unit")
    max_vcpus = Prop("vcpu", INT)
    vcpus = Prop("vcpu/@current", INT)
    arch = Prop("os/type/@arch")
    machine = Prop("os/type/@machine")
    firmware_attr = Prop("os/@firmware")
    loader_type = Prop("os/loader/@type")
    kernel = Prop("os/kernel")
    initrd = Prop("os/initrd")
    cmdline = Prop("os/cmdline")
    cpu_mode = Prop("cpu/@mode")
    cpu_model = Prop("cpu/model")
    description = Prop("metadata/dv:guest/dv:description")
    fleet = Prop("metadata/dv:guest/dv:fleet")
    seed_path = Prop("metadata/dv:guest/dv:cloud-init/@path")
    seed_sha256 = Prop("metadata/dv:guest/dv:cloud-init/@sha256")

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


class GuestSpec(Spec):
    FIELDS = ("virt_type", "memory", "max_memory", "vcpus", "max_vcpus", "cpu_mode", "cpu_model",
              "machine", "firmware", "kernel", "initrd", "cmdline", "serial_log", "graphics",
              "description", "tags", "disks", "interfaces", "seed", "created", "fleet")
    # Bookkeeping that is written to the guest's metadata but is not the user's to see in a diff.
    INTERNAL = ("seed", "created", "fleet")

    @classmethod
    def from_xml(cls, domain):
        firmware = "uefi" if domain.firmware_attr == "efi" or domain.loader_type == "pflash" else "bios"
        cpu_mode = domain.cpu_mode
        return cls(
            virt_type=domain.virt_type,
            memory=mib(domain.memory_kib or domain.max_memory_kib, domain.memory_unit or domain.max_memory_unit),
            max_memory=mib(domain.max_memory_kib, domain.max_memory_unit),
            vcpus=domain.vcpus if domain.vcpus is not None else domain.max_vcpus,
            max_vcpus=domain.max_vcpus,
            cpu_mode=cpu_mode,
            cpu_model=domain.cpu_model if cpu_mode in (None, "custom") else None,
            machine=domain.machine,
            firmware=firmware,
            kernel=domain.kernel,
            initrd=domain.initrd,
            cmdline=domain.cmdline,
            serial_log=domain.serial_log,
            graphics=GraphicsSpec.from_xml(domain),
            description=domain.description,
            tags=sorted(domain.list_meta("tag")),
            disks=[DiskSpec.from_xml(d) for d in domain.disks if not d.path or d.path != domain.seed_path],
            interfaces=[NicSpec.from_xml(i) for i in domain.interfaces],
            seed={"path": domain.seed_path, "sha256": domain.seed_sha256,
                  "target": next((d.target for d in domain.disks if d.path == domain.seed_path), None)}
            if domain.seed_path else None,
            created=domain.list_meta("created-volume"),
            fleet=domain.fleet,
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
        if self.virt_type is not None:
            domain.virt_type = self.virt_type
        if self.memory is not None:
            domain.memory_kib, domain.memory_unit = str(self.memory * 1024), "KiB"
        if self.max_memory is not None:
            domain.max_memory_kib, domain.max_memory_unit = str(self.max_memory * 1024), "KiB"
        online = domain.vcpus if domain.vcpus is not None else domain.max_vcpus
        if self.max_vcpus is not None:
            domain.max_vcpus = self.max_vcpus
        if self.vcpus is not None:
            online = self.vcpus
        if online is not None:
            domain.vcpus = online if online != domain.max_vcpus else None
        if self.cpu_mode is not None:
            if self.cpu_mode != domain.cpu_mode:
                # libvirt allows migratable only with host-passthrough; it sets its own default.
                ensure(domain.node, "cpu").attrib.pop("migratable", None)
            domain.cpu_mode = self.cpu_mode
            if self.cpu_mode != "custom":
                domain.cpu_model = None
        if self.cpu_model is not None:
            domain.cpu_model = self.cpu_model
        if self.machine is not None:
            domain.machine = self.machine
        if self.firmware is not None:
            _write_firmware(domain, self.firmware)
        for field in ("kernel", "initrd", "cmdline", "description", "fleet"):
            if getattr(self, field) is not None:
                setattr(domain, field, getattr(self, field) or None)
        if self.serial_log is not None:
            domain.serial_log = self.serial_log
        if self.graphics is not None:
            self.graphics.write(domain)
        if self.tags is not None:
            domain.set_list_meta("tag", sorted(self.tags))
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


def _write_firmware(domain, firmware):
    os_node = ensure(domain.node, "os")
    if firmware == "uefi":
        os_node.set("firmware", "efi")
        return
    os_node.attrib.pop("firmware", None)
    for tag in ("loader", "nvram", "firmware"):
        for node in os_node.findall(tag):
            os_node.remove(node)


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
