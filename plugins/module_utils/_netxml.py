# -*- coding: utf-8 -*-
# Copyright: debvirt.cluster developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A virtual network's XML, as a model: the fields bound to libvirt's document, the spec read
from it and written into it (only the managed fields), and the host entries that a running
network takes live. Imports only the XML layer."""

from __future__ import annotations

import ipaddress

from ansible_collections.debvirt.cluster.plugins.module_utils._domain import Spec
from ansible_collections.debvirt.cluster.plugins.module_utils._xml import (
    INT,
    Prop,
    XMLObject,
    append,
    ensure,
    parse,
    remove,
    quote,
)


class IpXML(XMLObject):
    TAG = "ip"
    address = Prop("@address")
    prefix = Prop("@prefix", INT)
    netmask = Prop("@netmask")
    family = Prop("@family")

    @property
    def cidr(self):
        prefix = self.prefix
        if prefix is None and self.netmask:
            prefix = ipaddress.ip_network("0.0.0.0/%s" % self.netmask).prefixlen
        if prefix is None:
            prefix = 64 if ":" in self.address else 24
        return "%s/%d" % (ipaddress.ip_address(self.address), prefix)

    @property
    def ranges(self):
        return [{"start": n.get("start"), "end": n.get("end")} for n in self.node.findall("dhcp/range")]

    @property
    def hosts(self):
        return sorted((_host_dict(n) for n in self.node.findall("dhcp/host")), key=host_key)


HOST_ATTRS = ("mac", "id", "name", "ip")


def _host_dict(node):
    out = {k: node.get(k) for k in HOST_ATTRS}
    for k in ("mac", "id"):
        out[k] = (out[k] or "").lower() or None
    return {k: v for k, v in out.items() if v is not None}


def host_id(host):
    """What names a static DHCP host: its MAC for IPv4; for DHCPv6, which knows no MAC, its DUID or name."""
    return host.get("mac") or host.get("id") or host["name"]


def host_key(host):
    return (host_id(host), host.get("ip") or "")


class NetworkXML(XMLObject):
    TAG = "network"
    name = Prop("name")
    uuid = Prop("uuid")
    forward_mode = Prop("forward/@mode")
    forward_dev = Prop("forward/@dev")
    bridge = Prop("bridge/@name")
    mtu = Prop("mtu/@size", INT)
    domain = Prop("domain/@name")

    @property
    def mode(self):
        if self.node.find("forward") is None:
            return "isolated"
        return self.forward_mode or "nat"

    @property
    def ips(self):
        return self.children("ip", IpXML)

    @property
    def dns_hosts(self):
        out = []
        for node in self.node.findall("dns/host"):
            out.append({"ip": node.get("ip"), "hostnames": sorted(h.text for h in node.findall("hostname"))})
        return sorted(out, key=lambda h: h["ip"])


# --- the spec --------------------------------------------------------------------------------
class NetworkSpec(Spec):
    FIELDS = ("mode", "bridge", "forward_dev", "mtu", "domain", "addresses", "dns_hosts")

    @classmethod
    def from_xml(cls, net):
        addresses = []
        for ip in net.ips:
            entry = {"address": ip.cidr}
            if ip.ranges:
                entry["dhcp_ranges"] = ip.ranges
            if ip.hosts:
                entry["dhcp_hosts"] = ip.hosts
            addresses.append(entry)
        return cls(mode=net.mode, bridge=net.bridge, forward_dev=net.forward_dev, mtu=net.mtu,
                   domain=net.domain, addresses=addresses, dns_hosts=net.dns_hosts)

    def to_xml(self, net):
        """Write the managed fields into net (libvirt's own document, or a new one)."""
        if self.mode is not None and self.mode != net.mode:
            # A new mode starts from a bare <forward>: the old mode's <nat> or <pf> would not fit.
            old = net.node.find("forward")
            at = list(net.node).index(old) if old is not None else \
                len(net.node.findall("name")) + len(net.node.findall("uuid"))
            remove(old)
            if self.mode != "isolated":
                net.node.insert(at, _new("forward"))
                net.forward_mode = self.mode
        if self.forward_dev is not None:
            net.forward_dev = self.forward_dev or None
        if self.bridge is not None:
            net.bridge = self.bridge
        if self.mtu is not None:
            net.mtu = self.mtu or None
        if self.domain is not None:
            net.domain = self.domain or None
        if self.dns_hosts is not None:
            dns = ensure(net.node, "dns")
            for node in dns.findall("host"):
                dns.remove(node)
            for host in self.dns_hosts:
                node = append(dns, "host")
                node.set("ip", host["ip"])
                for name in host["hostnames"]:
                    append(node, "hostname").text = name
            if len(dns) == 0 and not dns.attrib:
                remove(dns)
        if self.addresses is not None:
            _write_addresses(net, self.addresses)
        return net


def _new(tag):
    return parse("<%s/>" % tag)


def _write_addresses(net, addresses):
    existing = {ip.cidr.split("/")[0]: ip for ip in net.ips}
    wanted = {a["address"].split("/")[0] for a in addresses}
    for addr, ip in existing.items():
        if addr not in wanted:
            remove(ip.node)
    for entry in addresses:
        addr, prefix = entry["address"].split("/")
        ip = existing.get(addr)
        if ip is None:
            ip = IpXML()
            net.node.append(ip.node)
            ip.address = addr
            if ":" in addr:
                ip.family = "ipv6"
        ip.netmask = None
        ip.prefix = int(prefix)
        ranges, hosts = entry.get("dhcp_ranges"), entry.get("dhcp_hosts")
        if ranges is None and hosts is None:
            continue
        dhcp = ensure(ip.node, "dhcp")
        if ranges is not None:
            for node in dhcp.findall("range"):
                dhcp.remove(node)
            for i, r in enumerate(ranges):
                node = _new("range")
                node.set("start", r["start"])
                node.set("end", r["end"])
                dhcp.insert(i, node)
        if hosts is not None:
            for node in dhcp.findall("host"):
                dhcp.remove(node)
            for host in hosts:
                node = append(dhcp, "host")
                for key in HOST_ATTRS:
                    if host.get(key):
                        node.set(key, host[key])
        if len(dhcp) == 0:
            remove(dhcp)


def host_xml(section, entry):
    if section == "dhcp-host":
        return "<host %s/>" % " ".join("%s='%s'" % (k, quote(entry[k])) for k in HOST_ATTRS if entry.get(k))
    names = "".join("<hostname>%s</hostname>" % quote(n) for n in entry["hostnames"])
    return "<host ip='%s'>%s</host>" % (quote(entry["ip"]), names)
