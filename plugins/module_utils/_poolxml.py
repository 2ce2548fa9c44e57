# -*- coding: utf-8 -*-
# Copyright: debvirt.cluster developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The XML model of storage pools and volumes, as _netxml is the networks': fields bound to
XPaths, nothing else. _pool and _volume plan and write with it."""

from __future__ import annotations

from ansible_collections.debvirt.cluster.plugins.module_utils._xml import INT, Prop, XMLObject, append, ensure


class PoolXML(XMLObject):
    TAG = "pool"
    type = Prop("@type")
    name = Prop("name")
    uuid = Prop("uuid")
    target = Prop("target/path")
    mode = Prop("target/permissions/mode")
    owner = Prop("target/permissions/owner", INT)
    group = Prop("target/permissions/group", INT)
    source_dir = Prop("source/dir/@path")
    source_name = Prop("source/name")
    source_format = Prop("source/format/@type")
    initiator = Prop("source/initiator/iqn/@name")
    auth_type = Prop("source/auth/@type")
    auth_username = Prop("source/auth/@username")
    auth_usage = Prop("source/auth/secret/@usage")
    auth_uuid = Prop("source/auth/secret/@uuid")

    @property
    def devices(self):
        return [n.get("path") for n in self.node.findall("source/device")]

    @devices.setter
    def devices(self, paths):
        source = ensure(self.node, "source")
        for node in source.findall("device"):
            source.remove(node)
        for path in paths:
            append(source, "device").set("path", path)

    @property
    def hosts(self):
        out = []
        for node in self.node.findall("source/host"):
            port = node.get("port")
            out.append(node.get("name") + (":%s" % port if port else ""))
        return out

    @hosts.setter
    def hosts(self, hosts):
        source = ensure(self.node, "source")
        for node in source.findall("host"):
            source.remove(node)
        for host in hosts:
            name, port = split_host(host)
            node = append(source, "host")
            node.set("name", name)
            if port:
                node.set("port", str(port))


class VolumeXML(XMLObject):
    TAG = "volume"
    name = Prop("name")
    path = Prop("target/path")
    format = Prop("target/format/@type")
    capacity = Prop("capacity", INT)
    capacity_unit = Prop("capacity/@unit")
    allocation = Prop("allocation", INT)
    allocation_unit = Prop("allocation/@unit")
    backing_path = Prop("backingStore/path")
    backing_format = Prop("backingStore/format/@type")


def split_host(host):
    """("name", port or None) from "name", "name:port" or "[v6addr]:port"."""
    if host.startswith("["):
        addr, _sep, rest = host[1:].partition("]")
        return addr, int(rest[1:]) if rest.startswith(":") else None
    if host.count(":") == 1:
        name, port = host.split(":")
        return name, int(port)
    return host, None
