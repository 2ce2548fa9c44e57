# -*- coding: utf-8 -*-
# Copyright: debvirt.cluster developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A container's request: the container module's options, checked before any host is asked.

request_from_params() raises InvalidSpec on anything libvirt or the root filesystem would
refuse later, so that nothing is touched for a request that cannot succeed.
"""

from __future__ import annotations

import ipaddress
import os
import re

from ansible_collections.debvirt.cluster.plugins.module_utils import _kind, _names, _rootfs
from ansible_collections.debvirt.cluster.plugins.module_utils._errors import InvalidSpec
from ansible_collections.debvirt.cluster.plugins.module_utils._lxc import (
    META,
    RESOURCES,
    SYSTEM_INIT,
    ContainerNicSpec,
    ContainerSpec,
    MountSpec,
)

STATES = ("present", "running", "stopped", "frozen", "absent")
# The size of the ID range a container gets by default: what a Debian system uses.
DEFAULT_ID_COUNT = 65536


class ContainerRequest(_kind.Request):
    def __init__(self, name, spec, source=None, shutdown_timeout=60, **lifecycle):
        super().__init__(name, spec, shutdown_timeout=shutdown_timeout, **lifecycle)
        self.source = source or {"kind": "directory"}

    @property
    def system(self):
        """A system container runs its own init; an application container a given command."""
        return self.spec.command is None or self.spec.command == SYSTEM_INIT


# The container module's options but its URI and node; the fleet module takes a list of them.
ROOTFS = dict(
    path=dict(type="path"), debian=dict(type="str"), mirror=dict(type="str"),
    image=dict(type="str"), checksum=dict(type="str"), pool=dict(type="str"), volume=dict(type="str"),
)
IDMAP = dict(uid=dict(type="int", required=True), gid=dict(type="int"), count=dict(type="int", default=65536))
INTERFACE = dict(network=dict(type="str"), bridge=dict(type="str"), mac=dict(type="str"), name=dict(type="str"),
                 address=dict(type="str"), gateway=dict(type="str"))
MOUNT = dict(source=dict(type="path", required=True), target=dict(type="path", required=True),
             readonly=dict(type="bool", default=False))
SPEC_OPTIONS = RESOURCES + META
OPTIONS = _kind.lifecycle_options(STATES, 60) + SPEC_OPTIONS
ARGUMENT_SPEC = dict(
    OPTIONS.argument_spec(),
    rootfs=dict(type="dict", options=ROOTFS),
    privileged=dict(type="bool"),
    idmap=dict(type="dict", options=IDMAP),
    interfaces=dict(type="list", elements="dict", options=INTERFACE),
    mounts=dict(type="list", elements="dict", options=MOUNT),
)
_MIRROR = re.compile(r"(https?|file)://[^\s]+")


def request_from_params(params):
    """Validate what needs no host and build the request; raises InvalidSpec."""
    p = params
    name = p["name"]
    _names.check_name("container", name)
    OPTIONS.check(p)
    command = p.get("command")
    if command is not None:
        if not command or not command[0].startswith("/"):
            raise InvalidSpec("command must start with the absolute path of a program in the "
                              "container, got %r" % (command,))
        for index, arg in enumerate(command):
            _names.check_text(arg, "command[%d]" % index)
    rootfs = dict(p.get("rootfs") or {})
    path = rootfs.get("path")
    if path is not None:
        _names.check_path(path, "rootfs.path")
        if os.path.normpath(path) == "/":
            raise InvalidSpec("rootfs.path must be an absolute path other than /, got %r" % path)
    source = _source_from_params(rootfs)
    if source["kind"] == "volume" and path is not None:
        raise InvalidSpec("rootfs.path and rootfs.volume are two different root filesystems: give one")
    idmap = _idmap_from_params(p.get("idmap"), p.get("privileged"))
    hostname = p.get("hostname")
    if hostname is not None:
        _names.check_hostname(hostname, "hostname", _names.HOST_NAME_MAX)
    nics = None
    if p.get("interfaces") is not None:
        nics = [_nic_from_params(i, n) for i, n in enumerate(p["interfaces"])]
        macs = [n.mac for n in nics if n.mac]
        if len(macs) != len(set(macs)):
            raise InvalidSpec("interfaces list the same MAC more than once")
        devs = [n.dev for n in nics if n.dev]
        if len(devs) != len(set(devs)):
            raise InvalidSpec("interfaces list the same name more than once")
    mounts = None
    if p.get("mounts") is not None:
        mounts = [_mount_from_params(i, m) for i, m in enumerate(p["mounts"])]
        targets = [m.target for m in mounts]
        if len(targets) != len(set(targets)):
            raise InvalidSpec("mounts list the same target more than once")
    spec = ContainerSpec(
        privileged=p.get("privileged"), idmap=idmap,
        rootfs=os.path.normpath(path) if path else None,
        rootfs_volume="%s/%s" % (source["pool"], source["volume"]) if source["kind"] == "volume" else None,
        mounts=mounts, interfaces=nics, **SPEC_OPTIONS.fields(p)
    )
    return ContainerRequest(name, spec, source=source, shutdown_timeout=p.get("shutdown_timeout") or 60,
                            **_kind.request_params(p))


def _source_from_params(rootfs):
    given = [k for k in ("image", "debian", "volume") if rootfs.get(k)]
    if len(given) > 1:
        raise InvalidSpec("rootfs takes at most one source of image, debian and volume, not %s"
                          % " and ".join(given))
    if bool(rootfs.get("pool")) != bool(rootfs.get("volume")):
        raise InvalidSpec("rootfs.volume and rootfs.pool go together")
    if rootfs.get("volume"):
        _names.check_name("storage pool", rootfs["pool"], "rootfs.pool")
        _names.check_volume_name(rootfs["volume"], "rootfs.volume")
        return {"kind": "volume", "pool": rootfs["pool"], "volume": rootfs["volume"]}
    if rootfs.get("checksum") and not rootfs.get("image"):
        raise InvalidSpec("rootfs.checksum belongs to rootfs.image")
    if rootfs.get("image"):
        image = rootfs["image"]
        if _rootfs.is_url(image):
            if not rootfs.get("checksum"):
                raise InvalidSpec("rootfs.image %s is a URL: give rootfs.checksum (such as "
                                  "sha256:...) so that the download can be trusted and cached" % image)
        elif not os.path.isabs(image):
            raise InvalidSpec("rootfs.image must be an http(s) URL or an absolute path, got %r" % image)
        else:
            _names.check_path(image, "rootfs.image")
        if rootfs.get("checksum"):
            _rootfs.parse_checksum(rootfs["checksum"])
        return {"kind": "image", "image": image, "checksum": rootfs.get("checksum")}
    if rootfs.get("debian"):
        release = rootfs["debian"]
        if not re.fullmatch(r"[a-z][a-z0-9-]*", release):
            raise InvalidSpec("rootfs.debian %r is not a Debian release name such as bookworm" % release)
        mirror = rootfs.get("mirror")
        if mirror is not None and not _MIRROR.fullmatch(mirror):
            raise InvalidSpec("rootfs.mirror %r is not an http(s):// or file:// URL of a Debian mirror" % mirror)
        return {"kind": "debian", "release": release, "mirror": mirror or _rootfs.DEBIAN_MIRROR,
                "arch": _rootfs.host_arch()}
    return {"kind": "directory"}


def _idmap_from_params(idmap, privileged):
    if privileged and idmap:
        raise InvalidSpec("privileged: true runs without an ID map; do not give idmap with it")
    if not idmap:
        return None
    count = DEFAULT_ID_COUNT if idmap.get("count") is None else idmap["count"]
    out = {"uid": idmap.get("uid"), "gid": idmap.get("gid"), "count": count}
    if out["uid"] is None:
        raise InvalidSpec("idmap needs uid, the first host UID the container's root maps to")
    if out["gid"] is None:
        out["gid"] = out["uid"]
    if count < 1:
        raise InvalidSpec("idmap.count must be at least 1, got %s" % count)
    for kind in ("uid", "gid"):
        if out[kind] < 1:
            raise InvalidSpec("idmap.%s %s maps the container's root to the host's root; use a "
                              "subordinate range (see /etc/sub%s) or privileged: true" % (kind, out[kind], kind))
    return out


def _nic_from_params(index, n):
    where = "interfaces[%d]" % index
    mac = _names.check_nic(n, where)
    dev = n.get("name")
    if dev is not None:
        _names.check_ifname(dev, where + ".name")
    address, gateway = n.get("address"), n.get("gateway")
    if address is not None and address != "dhcp":
        try:
            iface = ipaddress.ip_interface(address)
        except ValueError:
            raise InvalidSpec("%s: address %r is not dhcp or an address with prefix such as "
                              "192.0.2.10/24" % (where, address)) from None
        if "/" not in address:
            raise InvalidSpec("%s: address %r needs a prefix length, such as %s/24" % (where, address, address))
        address = str(iface)
    if gateway is not None:
        if address in (None, "dhcp"):
            raise InvalidSpec("%s: gateway needs a static address" % where)
        try:
            gw = ipaddress.ip_address(gateway)
        except ValueError:
            raise InvalidSpec("%s: gateway %r is not an IP address" % (where, gateway)) from None
        if gw.version != ipaddress.ip_interface(address).version:
            raise InvalidSpec("%s: gateway %s and address %s are of different IP versions" % (where, gateway, address))
        gateway = str(gw)
    return ContainerNicSpec(network=n.get("network"), bridge=n.get("bridge"), mac=mac, dev=dev,
                            address=address, gateway=gateway)


def _mount_from_params(index, m):
    where = "mounts[%d]" % index
    source, target = m.get("source"), m.get("target")
    _names.check_path(source, where + ".source")
    _names.check_path(target, where + ".target")
    if os.path.normpath(target) == "/":
        raise InvalidSpec("%s.target must be an absolute path in the container other than /, got %r"
                          % (where, target))
    return MountSpec(source=os.path.normpath(source), target=os.path.normpath(target),
                     readonly=m.get("readonly"))
