# -*- coding: utf-8 -*-
# Copyright: debvirt.cluster developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Virtual networks: read them, check the request, plan, apply.

libvirt changes a running network's DHCP hosts and DNS hosts live (virNetworkUpdate), in the
running network and its definition at once. Any other change needs the network redefined and
restarted, which cuts the guests on it off for that moment: the result names them.
"""

from __future__ import annotations

import ipaddress
import os
import re
import subprocess

from ansible_collections.debvirt.cluster.plugins.module_utils._client import is_local
from ansible_collections.debvirt.cluster.plugins.module_utils._domain import DomainXML
from ansible_collections.debvirt.cluster.plugins.module_utils._errors import InvalidSpec, NotFound
from ansible_collections.debvirt.cluster.plugins.module_utils._names import check_ifname, check_name, is_mac
from ansible_collections.debvirt.cluster.plugins.module_utils._netxml import (
    NetworkSpec,
    NetworkXML,
    host_id,
    host_key,
    host_xml,
)
from ansible_collections.debvirt.cluster.plugins.module_utils._plan import Plan, converge
from ansible_collections.debvirt.cluster.plugins.module_utils._runstate import Defined, Request, listed, plan_run_state, views
from ansible_collections.debvirt.cluster.plugins.module_utils._xml import parse

MODES = ("nat", "route", "open", "isolated", "bridge")
DUID = re.compile(r"[0-9a-f]{1,2}(:[0-9a-f]{1,2}){3,}")
NETWORK = "network"
# What a running network takes without a restart.
LIVE_SECTIONS = {"dhcp host": "dhcp-host", "dns host": "dns-host"}


# --- the request -----------------------------------------------------------------------------
def request_from_params(params):
    """Validate what needs no host and build the request; raises InvalidSpec."""
    p = params
    name = p["name"]
    check_name("network", name)
    state = p.get("state") or "present"
    if state == "absent":
        return Request(name, NetworkSpec(), state)
    mode = p.get("mode")
    bridge = p.get("bridge")
    if bridge is not None:
        check_ifname(bridge, "bridge")
    if mode == "bridge" and not bridge:
        raise InvalidSpec("mode bridge connects guests to an existing host bridge: give bridge")
    addresses = None
    if p.get("addresses") is not None:
        addresses = [_address(i, a) for i, a in enumerate(p["addresses"])]
        if mode == "bridge" and addresses:
            raise InvalidSpec("A bridge-mode network has no addresses: the host bridge's own network "
                              "serves the guests")
        nets = [ipaddress.ip_interface(a["address"]).network for a in addresses]
        if len({str(n) for n in nets}) != len(nets):
            raise InvalidSpec("addresses list the same network more than once")
    dns_hosts = None
    if p.get("dns_hosts") is not None:
        if mode == "bridge" and p["dns_hosts"]:
            raise InvalidSpec("A bridge-mode network has no DNS server of its own: dns_hosts do not apply")
        dns_hosts = sorted((_dns_host(i, h) for i, h in enumerate(p["dns_hosts"])), key=lambda h: h["ip"])
        ips = [h["ip"] for h in dns_hosts]
        if len(ips) != len(set(ips)):
            raise InvalidSpec("dns_hosts list the same address more than once: give it all its hostnames")
    if p.get("forward_dev") and mode not in ("nat", "route", None):
        raise InvalidSpec("forward_dev applies to nat and route networks only")
    mtu = p.get("mtu")
    if mtu is not None and not 68 <= mtu <= 65535:
        raise InvalidSpec("mtu %s is out of range (68 to 65535)" % mtu)
    spec = NetworkSpec(mode=mode, bridge=bridge, forward_dev=p.get("forward_dev"), mtu=mtu,
                       domain=p.get("domain"), addresses=addresses, dns_hosts=dns_hosts)
    return Request(name, spec, state, autostart=p.get("autostart"))


def _address(index, a):
    where = "addresses[%d]" % index
    try:
        iface = ipaddress.ip_interface(a["address"])
    except ValueError:
        raise InvalidSpec("%s: %r is not an address with a prefix, such as 192.168.100.1/24 or "
                          "fd00:1::1/64" % (where, a["address"])) from None
    if "/" not in a["address"]:
        raise InvalidSpec("%s: %s needs its prefix length, such as /24" % (where, a["address"]))
    net = iface.network
    out = {"address": "%s/%d" % (iface.ip, net.prefixlen)}
    if a.get("dhcp_ranges") is not None:
        out["dhcp_ranges"] = []
        for r in a["dhcp_ranges"]:
            start, end = _in(where, net, r["start"]), _in(where, net, r["end"])
            if int(start) > int(end):
                raise InvalidSpec("%s: DHCP range %s-%s ends before it starts" % (where, start, end))
            out["dhcp_ranges"].append({"start": str(start), "end": str(end)})
    if a.get("dhcp_hosts") is not None:
        hosts = [_dhcp_host(where, net, h) for h in a["dhcp_hosts"]]
        ids = [host_id(h) for h in hosts]
        if len(ids) != len(set(ids)):
            raise InvalidSpec("%s: dhcp_hosts name the same %s more than once"
                              % (where, "MAC" if net.version == 4 else "DUID or name"))
        out["dhcp_hosts"] = sorted(hosts, key=host_key)
    return out


def _dhcp_host(where, net, h):
    host = {"ip": str(_in(where, net, h["ip"]))}
    if h.get("name"):
        host["name"] = h["name"]
    if net.version == 4:
        if h.get("id"):
            raise InvalidSpec("%s: id is a DHCPv6 client's DUID; an IPv4 host is known by its mac" % where)
        mac = (h.get("mac") or "").lower()
        if not is_mac(mac):
            raise InvalidSpec("%s: %r is not a MAC address" % (where, h.get("mac")))
        host["mac"] = mac
        return host
    # DHCPv6 clients identify themselves by DUID; the MAC of the request means nothing there.
    if h.get("mac"):
        raise InvalidSpec("%s: DHCPv6 does not know hosts by MAC: give id (the client's DUID) or name "
                          "for %s" % (where, host["ip"]))
    if h.get("id"):
        duid = h["id"].lower()
        if not DUID.fullmatch(duid):
            raise InvalidSpec("%s: %r is not a DUID (hex bytes separated by colons, such as "
                              "00:03:00:01:52:54:00:12:34:56)" % (where, h["id"]))
        host["id"] = duid
    elif not h.get("name"):
        raise InvalidSpec("%s: the IPv6 host %s needs id (the client's DUID) or name" % (where, host["ip"]))
    return host


def _in(where, net, text):
    try:
        ip = ipaddress.ip_address(text)
    except ValueError:
        raise InvalidSpec("%s: %r is not an IP address" % (where, text)) from None
    if ip not in net:
        raise InvalidSpec("%s: %s is outside %s" % (where, ip, net))
    return ip


def _dns_host(index, h):
    try:
        ip = str(ipaddress.ip_address(h["ip"]))
    except ValueError:
        raise InvalidSpec("dns_hosts[%d]: %r is not an IP address" % (index, h["ip"])) from None
    if not h.get("hostnames"):
        raise InvalidSpec("dns_hosts[%d] needs at least one hostname" % index)
    return {"ip": ip, "hostnames": sorted(set(h["hostnames"]))}


# --- reading ---------------------------------------------------------------------------------
class ActualNetwork(Defined):
    SPEC = NetworkSpec

    def __init__(self, net, xml, active, autostart, persistent):
        super().__init__(net, xml, active, autostart, persistent)
        self.net = net


def read_network(client, name):
    net = client.network(name)
    if net is None:
        return None
    return ActualNetwork(net, NetworkXML(parse(client.network_xml(net, inactive=True))),
                         client.network_active(net), client.network_autostart(net),
                         client.network_persistent(net))


def guests_on(client, name):
    """{guest name: [its tap devices]} of the running guests with an interface on network name."""
    found = {}
    for dom in client.domains():
        try:
            if client.domain_state(dom) not in ("running", "paused"):
                continue
            xml = DomainXML(parse(client.domain_xml(dom, inactive=False)))
        except NotFound:
            continue  # gone while we looked
        taps = [i.node.find("target").get("dev") if i.node.find("target") is not None else None
                for i in xml.interfaces if i.type == "network" and i.network == name]
        if taps:
            found[dom.name()] = [t for t in taps if t]
    return found


def reconnect(bridge, taps):
    """Plug guests' tap devices back into a restarted network's bridge; returns the ones that failed.

    libvirt leaves them unplugged when a network is destroyed and started again (libvirt 9), so
    a restart would otherwise cut the guests off until each is restarted.
    """
    failed = []
    for tap in taps:
        if not os.path.exists("/sys/class/net/%s" % tap):
            failed.append(tap)
            continue
        result = subprocess.run(["ip", "link", "set", "dev", tap, "master", bridge, "up"],
                                capture_output=True, text=True, check=False)
        if result.returncode != 0:
            failed.append(tap)
    return failed


def inspect_network(client, req, actual):
    """Read-only checks against the host; raises InvalidSpec before anything is touched."""
    spec = req.spec
    if req.state == "absent":
        return
    mode = spec.mode or (actual.spec.mode if actual else None)
    if actual is None and mode is None:
        raise InvalidSpec("mode is required to define network %s" % req.name)
    if mode == "bridge" and spec.bridge and is_local(client.uri) and \
            not os.path.isdir("/sys/class/net/%s/bridge" % spec.bridge):
        raise InvalidSpec("Bridge %s does not exist on the host: a bridge-mode network uses an existing "
                          "host bridge" % spec.bridge)
    if mode == "bridge" and actual is not None and spec.addresses is None and actual.spec.addresses:
        raise InvalidSpec("Network %s has addresses; a bridge-mode network cannot: give addresses: []"
                          % req.name)
    if mode != "bridge" and spec.bridge and (actual is None or actual.spec.bridge != spec.bridge):
        for other in client.networks():
            if other.name() == req.name:
                continue
            try:
                xml = NetworkXML(parse(client.network_xml(other)))
            except NotFound:
                continue
            if xml.bridge == spec.bridge and xml.mode != "bridge":
                raise InvalidSpec("Bridge name %s is already used by network %s" % (spec.bridge, other.name()))


# --- planning --------------------------------------------------------------------------------
def managed_view(spec, desired):
    out = {}
    for field in NetworkSpec.FIELDS:
        want = getattr(desired, field)
        if want is None:
            continue
        value = getattr(spec, field)
        if field == "addresses":
            value = _addresses_view(value or [], want)
        out[field] = value
    return out


def _addresses_view(have, want):
    """have's addresses, each with only the DHCP parts that want manages for that address."""
    wanted = {a["address"]: a for a in want}
    out = []
    for entry in have:
        w = wanted.get(entry["address"], {})
        view = {"address": entry["address"]}
        for key in ("dhcp_ranges", "dhcp_hosts"):
            if w.get(key) is not None or (entry["address"] not in wanted and entry.get(key)):
                view[key] = entry.get(key, [])
        out.append(view)
    return out


def _desired_view(desired):
    out = {}
    for field in NetworkSpec.FIELDS:
        value = getattr(desired, field)
        if value is None:
            continue
        if field == "addresses":
            value = [{k: v for k, v in a.items() if v is not None} for a in value]
        out[field] = value
    return out


def plan_network(req, actual):
    plan = Plan()
    name = req.name
    if req.state == "absent":
        if actual is not None:
            if actual.active:
                plan.add("stop", NETWORK, "running", "stopped", key=name)
            if actual.persistent:
                plan.add("undefine", NETWORK, key=name)
        return plan
    desired = req.spec
    running = actual is not None and actual.active
    if actual is None:
        plan.add("define", NETWORK, after=_desired_view(desired), key=name)
    else:
        before, after = managed_view(actual.spec, desired), _desired_view(desired)
        live = []
        for field in ("mode", "bridge", "forward_dev", "mtu", "domain"):
            if field in after and after[field] != before.get(field) and not (
                    after[field] in ("", 0) and before.get(field) is None):
                plan.add("update", field, before.get(field), after[field], cold=running)
        if "addresses" in after:
            live += _plan_addresses(plan, before["addresses"], after["addresses"], running)
        if "dns_hosts" in after:
            live += [change + (-1,) for change in _diff_entries(
                "dns host", before["dns_hosts"] or [], after["dns_hosts"], lambda h: h["ip"])]
        cold = any(c.cold for c in plan.changes) or not running
        for action, kind, key, entry, parent in live:
            plan.add(action, kind, entry if action == "remove" else None, entry if action == "add" else None,
                     cold=cold and running, key=key, live=not cold, entry=entry, parent=parent)
        if not actual.persistent and not plan.changed:
            plan.add("define", NETWORK, after=after, key=name)
    plan_run_state(plan, req, actual, NETWORK)
    return plan


def _plan_addresses(plan, have, want, running):
    """Adds cold changes to plan; returns the DHCP host changes that can be made live, each with the
    position of its address among the network's (virNetworkUpdate's parent index)."""
    live = []
    position = {a["address"].split("/")[0]: i for i, a in enumerate(have)}
    have_by = {a["address"].split("/")[0]: a for a in have}
    want_by = {a["address"].split("/")[0]: a for a in want}
    for addr, entry in have_by.items():
        if addr not in want_by:
            plan.add("remove", "address", entry, None, cold=running, key=entry["address"])
    for addr, entry in want_by.items():
        old = have_by.get(addr)
        if old is None:
            plan.add("add", "address", None, entry, cold=running, key=entry["address"])
            continue
        if old["address"] != entry["address"]:
            plan.add("update", "address", old["address"], entry["address"], cold=running, key=addr, field="prefix")
        if entry.get("dhcp_ranges") is not None and entry["dhcp_ranges"] != old.get("dhcp_ranges", []):
            plan.add("update", "address", old.get("dhcp_ranges", []), entry["dhcp_ranges"], cold=running,
                     key=addr, field="dhcp_ranges")
        if entry.get("dhcp_hosts") is not None:
            changes = _diff_entries("dhcp host", old.get("dhcp_hosts", []), entry["dhcp_hosts"], host_id)
            live += [change + (position[addr],) for change in changes]
    return live


def _diff_entries(kind, have, want, key):
    """(action, kind, key, entry) to remove or add each entry that differs; an entry that changes
    is removed and added."""
    have_by = {key(e): e for e in have}
    want_by = {key(e): e for e in want}
    out = []
    for k, entry in sorted(have_by.items()):
        if want_by.get(k) != entry:
            out.append(("remove", kind, k, entry))
    for k, entry in sorted(want_by.items()):
        if have_by.get(k) != entry:
            out.append(("add", kind, k, entry))
    return out


# --- applying --------------------------------------------------------------------------------
def apply_network(client, req, plan, actual):
    """The only function here that writes."""
    net = actual.net if actual is not None else None
    if req.state == "absent":
        if plan.on(NETWORK, "stop"):
            client.stop_network(net)
        if plan.on(NETWORK, "undefine"):
            client.undefine_network(net)
        return
    live = [c for c in plan.changes if c.extra.get("live")]
    definition = [c for c in plan.changes if c.action in ("define", "update", "add", "remove")
                  and c.subject != "autostart" and not c.extra.get("live")]
    if definition:
        base = actual.xml if actual is not None else NetworkXML()
        base.name = req.name
        net = client.define_network(req.spec.to_xml(base).to_string(), req.name)
    for change in live:
        section = LIVE_SECTIONS[change.subject]
        command = "add" if change.action == "add" else "delete"
        client.update_network(net, command, section, host_xml(section, change.extra["entry"]), live=True,
                              parent_index=change.extra["parent"])
    if plan.on(NETWORK, "stop", "restart"):
        client.stop_network(net)
    if plan.on(NETWORK, "start", "restart"):
        client.start_network(net)
    for change in plan.on("autostart"):
        client.set_network_autostart(net, change.after)


# --- results ---------------------------------------------------------------------------------
def view(req, actual):
    after = _desired_view(req.spec)
    if actual is not None and "addresses" in after:
        # Unmanaged DHCP parts of an address keep what libvirt has, in the diff as in the network.
        have = {a["address"]: a for a in managed_view(actual.spec, req.spec).get("addresses", [])}
        after["addresses"] = [dict(have.get(a["address"], {}), **a) for a in after["addresses"]]
    return views(req, actual, managed_view, after)


def list_networks(client, names=None, leases=True):
    def describe(actual):
        out = actual.describe()
        if actual.active:
            out["guests"] = sorted(guests_on(client, actual.net.name()))
            if leases and actual.spec.addresses:
                out["leases"] = sorted(
                    ({"mac": l.get("mac"), "ip": "%s/%s" % (l.get("ipaddr"), l.get("prefix")),
                      "hostname": l.get("hostname"), "expires": l.get("expirytime")}
                     for l in client.network_leases(actual.net)), key=lambda l: l["ip"])
        return out

    return listed(client, client.networks(), names, read_network, describe)


def converge_network(client, req, check_mode):
    actual = read_network(client, req.name)
    inspect_network(client, req, actual)
    plan = plan_network(req, actual)
    on_it = {}
    if actual is not None and actual.active and plan.on(NETWORK, "restart", "stop"):
        on_it = guests_on(client, req.name)
    interrupted = sorted(on_it)

    def apply():
        apply_network(client, req, plan, actual)
        return _cut_off(client, req, plan, on_it)

    result = converge(plan, check_mode, apply, "network", req.name, lambda: view(req, actual),
                      lambda: read_network(client, req.name).describe(), absent=req.state == "absent",
                      interrupted_guests=interrupted)
    # Where nothing was applied, what it would do to the guests on the network stands.
    result.setdefault("warnings", _would_cut_off(req, plan, interrupted))
    return result


def _would_cut_off(req, plan, interrupted):
    if not interrupted:
        return []
    names = ", ".join(interrupted)
    if plan.on(NETWORK, "restart"):
        return ["Guests %s would lose their connection while network %s restarts" % (names, req.name)]
    return ["Guests %s would lose their connection: network %s is stopped" % (names, req.name)]


def _cut_off(client, req, plan, on_it):
    """What a stop or restart did to the guests on the network; after a restart, their interfaces
    are plugged back in where this host can."""
    if not on_it:
        return []
    names = ", ".join(sorted(on_it))
    if not plan.on(NETWORK, "restart"):
        return ["Guests %s lost their connection: network %s is stopped" % (names, req.name)]
    if not is_local(client.uri):
        return ["Guests %s lost their connection when network %s restarted; on a remote host their "
                "interfaces stay unplugged until each guest restarts" % (names, req.name)]
    live = NetworkXML(parse(client.network_xml(client.network(req.name), inactive=False)))
    failed = reconnect(live.bridge, [t for taps in on_it.values() for t in taps])
    if failed:
        return ["Guests %s lost their connection when network %s restarted; %s could not be plugged "
                "back into bridge %s" % (names, req.name, ", ".join(failed), live.bridge)]
    return ["Guests %s lost their connection for a moment while network %s restarted; their "
            "interfaces are plugged back into bridge %s" % (names, req.name, live.bridge)]
