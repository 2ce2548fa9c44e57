# -*- coding: utf-8 -*-
# Copyright: debvirt.cluster developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A virtual machine's request: the guest module's options, checked before any host is asked.

request_from_params() raises InvalidSpec on anything libvirt would refuse later, so that
nothing is touched for a request that cannot succeed.
"""

from __future__ import annotations

import ipaddress
import os
import re

from ansible_collections.debvirt.cluster.plugins.module_utils import _kind, _names
from ansible_collections.debvirt.cluster.plugins.module_utils._domain import (
    MACHINE,
    META,
    SIZE,
    DiskSpec,
    GraphicsSpec,
    GuestSpec,
    NicSpec,
)
from ansible_collections.debvirt.cluster.plugins.module_utils._errors import InvalidSpec

STATES = ("present", "running", "stopped", "paused", "absent")


class GuestRequest(_kind.Request):
    def __init__(self, name, spec, shutdown_timeout=120, cloud_init=None, virt_type="auto", console_warning=None,
                 **lifecycle):
        super().__init__(name, spec, shutdown_timeout=shutdown_timeout, **lifecycle)
        self.cloud_init = cloud_init
        self.virt_type = virt_type
        self.console_warning = console_warning  # the console is open to the network, unasked


def request_from_params(params):
    """Validate what needs no host and build the request; raises InvalidSpec."""
    name = params["name"]
    _names.check_name("guest", name)
    p = params
    OPTIONS.check(p)
    if p.get("max_memory") is not None and p.get("memory") is not None and p["memory"] > p["max_memory"]:
        raise InvalidSpec("memory (%s MiB) is larger than max_memory (%s MiB)" % (p["memory"], p["max_memory"]))
    if p.get("max_vcpus") is not None and p.get("vcpus") is not None and p["vcpus"] > p["max_vcpus"]:
        raise InvalidSpec("vcpus (%s) is larger than max_vcpus (%s)" % (p["vcpus"], p["max_vcpus"]))
    cpu_mode = p.get("cpu_mode")
    if p.get("cpu_model") and cpu_mode not in (None, "custom"):
        raise InvalidSpec("cpu_model %r needs cpu_mode custom, not %s" % (p["cpu_model"], cpu_mode))
    if p.get("cpu_model") and cpu_mode is None:
        cpu_mode = "custom"
    if cpu_mode == "custom" and not p.get("cpu_model"):
        raise InvalidSpec("cpu_mode custom needs cpu_model")
    if (p.get("initrd") or p.get("cmdline")) and not p.get("kernel"):
        raise InvalidSpec("initrd and cmdline need kernel (direct kernel boot)")

    fields = SPEC_OPTIONS.fields(p)
    fields["cpu_mode"] = cpu_mode
    spec = GuestSpec(
        graphics=_graphics_from_params(p.get("graphics")),
        disks=[_disk_from_params(i, d) for i, d in enumerate(p["disks"])] if p.get("disks") is not None else None,
        interfaces=[_nic_from_params(i, n) for i, n in enumerate(p["interfaces"])]
        if p.get("interfaces") is not None else None,
        **fields
    )
    if spec.disks:
        keys = [d.key() for d in spec.disks]
        dupes = sorted({"%s" % "/".join(k[1:]) for k in keys if keys.count(k) > 1})
        if dupes:
            raise InvalidSpec("disks list the same source more than once: %s" % ", ".join(dupes))
        targets = [d.target for d in spec.disks if d.target]
        if len(targets) != len(set(targets)):
            raise InvalidSpec("disks list the same target more than once")
        orders = [d.boot_order for d in spec.disks]
        for index, order in enumerate(orders):
            if order is not None and order in orders[:index]:
                # libvirt refuses the definition: "boot order used for more than one device".
                raise InvalidSpec("disks[%d].boot_order %d is already that of disks[%d]"
                                  % (index, order, orders.index(order)))
    if spec.interfaces:
        macs = [n.mac for n in spec.interfaces if n.mac]
        if len(macs) != len(set(macs)):
            raise InvalidSpec("interfaces list the same MAC more than once")
    if p.get("cloud_init") is not None:
        _check_cloud_init(p["cloud_init"], seed_path(name, p["cloud_init"]), spec.disks or [])
    return GuestRequest(name, spec, shutdown_timeout=p.get("shutdown_timeout", 120), cloud_init=p.get("cloud_init"),
                        virt_type=p.get("virt_type") or "auto",
                        console_warning=console_warning(name, spec.graphics, (p.get("graphics") or {}).get("insecure_ok")),
                        **_kind.request_params(p))


def console_warning(name, graphics, insecure_ok=False):
    """The warning for a console that anyone who reaches the address can take over (keyboard,
    screen, and so the guest), unless the user said that is what they want; None otherwise."""
    if insecure_ok or graphics is None or graphics.type == "none" or graphics.password or _names.is_loopback(graphics.listen):
        return None
    return ("The %s console of guest %s listens on %s without a password: whoever reaches that address "
            "controls the guest's keyboard and screen. Set graphics.password, listen on 127.0.0.1 (and "
            "tunnel), or set graphics.insecure_ok to accept it" % (graphics.type, name, graphics.listen))


# The port range libvirt starts a VNC console on; a SPICE port is any TCP port.
_PORTS = {"vnc": (5900, " for vnc (libvirt's range)"), "spice": (1, "")}
_VNC_PASSWORD_MAX = 8  # libvirt refuses the definition beyond this (QEMU's VNC auth); SPICE has none
_NIC_MODEL = re.compile(r"[A-Za-z0-9_-]+")  # what libvirt's definition accepts as a model name


def seed_path(name, cloud_init):
    return cloud_init.get("path") or "/var/lib/libvirt/images/%s-cidata.iso" % name


def _check_cloud_init(ci, path, disks):
    for key in ("user_data", "meta_data", "network_config"):
        value = ci.get(key)
        if value is not None and not isinstance(value, (str, dict, list)):
            raise InvalidSpec("cloud_init.%s must be text or a dict, got %s" % (key, type(value).__name__))
    _names.check_path(path, "cloud_init.path")
    if path.endswith("/") or os.path.basename(path) in (".", ".."):
        raise InvalidSpec("cloud_init.path %s names a directory: give the path of the seed file" % path)
    for index, disk in enumerate(disks):
        if disk.path is not None and os.path.normpath(disk.path) == os.path.normpath(path):
            raise InvalidSpec("cloud_init.path %s is disks[%d].path too: the seed would overwrite that disk"
                              % (path, index))


def _graphics_from_params(g):
    if g is None:
        return None
    kind = g.get("type", "none")
    if kind == "none":
        return GraphicsSpec(type="none")
    listen = g.get("listen") or "127.0.0.1"
    try:
        ipaddress.ip_address(listen)
    except ValueError:
        _names.check_hostname(listen, "graphics.listen")
    port, password = g.get("port"), g.get("password")
    if port is not None:
        low, why = _PORTS[kind]
        _names.check_int(port, "graphics.port", low, 65535, why)
    if password is not None:
        _names.check_text(password, "graphics.password")
        if kind == "vnc" and len(password.encode("utf-8")) > _VNC_PASSWORD_MAX:
            raise InvalidSpec("graphics.password is longer than the %d characters libvirt takes for a VNC "
                              "console (SPICE has no such limit)" % _VNC_PASSWORD_MAX)
    return GraphicsSpec(type=kind, listen=listen, port=port, password=password)


def _disk_from_params(index, d):
    where = "disks[%d]" % index
    sources = [k for k in ("path", "pool") if d.get(k)]
    if len(sources) != 1:
        raise InvalidSpec("%s needs exactly one of path or pool (with volume)" % where)
    if d.get("pool") and not d.get("volume"):
        raise InvalidSpec("%s: pool %s needs volume (the volume's name)" % (where, d["pool"]))
    if d.get("volume") and not d.get("pool"):
        raise InvalidSpec("%s: volume %s needs pool" % (where, d["volume"]))
    if d.get("size") is not None and not d.get("pool"):
        raise InvalidSpec("%s: size creates a volume and needs pool and volume" % where)
    if d.get("path"):
        _names.check_path(d["path"], where + ".path")
    else:
        _names.check_name("storage pool", d["pool"], where + ".pool")
        _names.check_volume_name(d["volume"], where + ".volume")
    size = d.get("size")
    if size is not None:
        size = _names.size_bytes(size, where)
    device = d.get("device") or "disk"
    target = d.get("target")
    if target and not re.fullmatch(r"(vd|sd|hd|xvd)[a-z]{1,2}", target):
        raise InvalidSpec("%s: target %r is not a disk name like vdb or sdc" % (where, target))
    if d.get("boot_order") is not None:
        _names.check_int(d["boot_order"], where + ".boot_order", 1)
    return DiskSpec(target=target, device=device, bus=d.get("bus"), format=d.get("format"),
                    cache=d.get("cache"), readonly=d.get("readonly"), boot_order=d.get("boot_order"),
                    path=d.get("path"), pool=d.get("pool"), volume=d.get("volume"), size=size)


def _nic_from_params(index, n):
    where = "interfaces[%d]" % index
    mac = _names.check_nic(n, where)
    model = n.get("model")
    if model is not None and not _NIC_MODEL.fullmatch(model):
        raise InvalidSpec("%s.model: %r is not a NIC model name such as virtio or e1000e" % (where, model))
    return NicSpec(network=n.get("network"), bridge=n.get("bridge"), model=model, mac=mac)


# The guest module's options; the fleet module takes a list of them.
DISK = dict(
    path=dict(type="path"), pool=dict(type="str"), volume=dict(type="str"), size=dict(type="str"),
    format=dict(type="str", choices=["qcow2", "raw"]),
    device=dict(type="str", choices=["disk", "cdrom"], default="disk"),
    bus=dict(type="str", choices=["virtio", "sata", "scsi", "ide", "usb"]),
    target=dict(type="str"),
    cache=dict(type="str", choices=["none", "writethrough", "writeback", "directsync", "unsafe", "default"]),
    readonly=dict(type="bool"), boot_order=dict(type="int"),
)
INTERFACE = dict(network=dict(type="str"), bridge=dict(type="str"), model=dict(type="str"), mac=dict(type="str"))
# user_data holds passwords and keys. network_config is not secret: hiding it would hide every
# number with a 2 in it from the result for a plain "version: 2".
CLOUD_INIT = dict(user_data=dict(type="raw", no_log=True), meta_data=dict(type="raw"), network_config=dict(type="raw"),
                  path=dict(type="path"))
GRAPHICS = dict(type=dict(type="str", choices=["vnc", "spice", "none"], required=True),
                listen=dict(type="str", default="127.0.0.1"), port=dict(type="int"),
                password=dict(type="str", no_log=True), insecure_ok=dict(type="bool", default=False))

SPEC_OPTIONS = SIZE + MACHINE + META
OPTIONS = _kind.lifecycle_options(STATES, 120) + SPEC_OPTIONS
ARGUMENT_SPEC = dict(
    OPTIONS.argument_spec(),
    disks=dict(type="list", elements="dict", options=DISK),
    interfaces=dict(type="list", elements="dict", options=INTERFACE),
    cloud_init=dict(type="dict", options=CLOUD_INIT),
    graphics=dict(type="dict", options=GRAPHICS),
)
