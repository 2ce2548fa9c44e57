# -*- coding: utf-8 -*-
# Copyright: debvirt.cluster developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Networks: validation, planner tables (live against cold changes), and convergence of every
mode against libvirt's test driver."""

from __future__ import annotations

import pytest

from ansible_collections.debvirt.cluster.plugins.modules.network import ARGUMENT_SPEC
from ansible_collections.debvirt.cluster.tests.unit.helpers import module_params
from ansible_collections.debvirt.cluster.plugins.module_utils import _network as N
from ansible_collections.debvirt.cluster.plugins.module_utils._errors import InvalidSpec
from ansible_collections.debvirt.cluster.plugins.module_utils._xml import parse

PREFIX = "u-net-"

V4 = {"address": "192.168.100.1/24", "dhcp_ranges": [{"start": "192.168.100.100", "end": "192.168.100.199"}],
      "dhcp_hosts": [{"mac": "52:54:00:00:10:01", "ip": "192.168.100.10", "name": "web01"}]}
V6 = {"address": "fd00:100::1/64", "dhcp_ranges": [{"start": "fd00:100::100", "end": "fd00:100::1ff"}],
      "dhcp_hosts": None}


def req(name="lan", **kw):
    return N.request_from_params(module_params(ARGUMENT_SPEC, name=name, **kw))


# --- validation ------------------------------------------------------------------------------
@pytest.mark.parametrize("kw, message", [
    ({"name": "bad name"}, "Invalid network name"),
    ({"mode": "bridge"}, "give bridge"),
    ({"mode": "nat", "bridge": "a-bridge-name-too-long"}, "is not a Linux interface name"),
    # The check guests and containers make of the bridge they plug into, the same one.
    ({"mode": "nat", "bridge": "virbr9\n"}, "bridge: 'virbr9\\n' is not a Linux interface name"),
    ({"mode": "bridge", "bridge": ".."}, "bridge: '..' is not a Linux interface name"),
    ({"mode": "bridge", "bridge": "br0", "addresses": [{"address": "10.0.0.1/24"}]}, "has no addresses"),
    ({"mode": "bridge", "bridge": "br0", "dns_hosts": [{"ip": "10.0.0.1", "hostnames": ["a"]}]}, "no DNS server"),
    ({"mode": "nat", "addresses": [{"address": "10.0.0.1"}]}, "needs its prefix length"),
    ({"mode": "nat", "addresses": [{"address": "10.0.0.300/24"}]}, "is not an address with a prefix"),
    ({"mode": "nat", "addresses": [{"address": "10.0.0.1/24"}, {"address": "10.0.0.2/24"}]},
     "the same network more than once"),
    ({"mode": "nat", "addresses": [{"address": "10.0.0.1/24", "dhcp_ranges": [{"start": "10.0.1.1", "end": "10.0.0.9"}]}]},
     "10.0.1.1 is outside 10.0.0.0/24"),
    ({"mode": "nat", "addresses": [{"address": "10.0.0.1/24", "dhcp_ranges": [{"start": "10.0.0.9", "end": "10.0.0.2"}]}]},
     "ends before it starts"),
    ({"mode": "nat", "addresses": [{"address": "fd00::1/64", "dhcp_hosts": [{"mac": "52:54:00:00:00:01", "ip": "fd00::5"}]}]},
     "DHCPv6 does not know hosts by MAC"),
    ({"mode": "nat", "addresses": [{"address": "fd00::1/64", "dhcp_hosts": [{"ip": "fd00::5"}]}]},
     "needs id (the client's DUID) or name"),
    ({"mode": "nat", "addresses": [{"address": "fd00::1/64", "dhcp_hosts": [{"id": "52:54", "ip": "fd00::5"}]}]},
     "is not a DUID"),
    ({"mode": "nat", "addresses": [{"address": "fd00::1/64", "dhcp_hosts": [
        {"name": "a", "ip": "fd00::5"}, {"name": "a", "ip": "fd00::6"}]}]}, "the same DUID or name more than once"),
    ({"mode": "nat", "addresses": [{"address": "10.0.0.1/24", "dhcp_hosts": [
        {"mac": "52:54:00:00:00:01", "id": "00:03:00:01:52:54:00:00:00:01", "ip": "10.0.0.5"}]}]}, "id is a DHCPv6"),
    ({"mode": "nat", "addresses": [{"address": "10.0.0.1/24", "dhcp_hosts": [{"mac": "nope", "ip": "10.0.0.5"}]}]},
     "is not a MAC address"),
    ({"mode": "nat", "addresses": [{"address": "10.0.0.1/24", "dhcp_hosts": [
        {"mac": "52:54:00:00:00:01", "ip": "10.0.0.5"}, {"mac": "52:54:00:00:00:01", "ip": "10.0.0.6"}]}]},
     "the same MAC more than once"),
    ({"mode": "nat", "dns_hosts": [{"ip": "10.0.0.5", "hostnames": []}]}, "at least one hostname"),
    ({"mode": "nat", "dns_hosts": [{"ip": "10.0.0.5", "hostnames": ["a"]}, {"ip": "10.0.0.5", "hostnames": ["b"]}]},
     "the same address more than once"),
    ({"mode": "isolated", "forward_dev": "eth0"}, "nat and route networks only"),
    ({"mode": "nat", "mtu": 20}, "out of range"),
])
def test_bad_requests_are_refused(kw, message):
    with pytest.raises(InvalidSpec) as e:
        req(**kw)
    assert message in e.value.msg


def test_requests_are_normalised():
    r = req(mode="nat", addresses=[{"address": "192.168.100.7/24", "dhcp_ranges": None, "dhcp_hosts": [
        {"mac": "52:54:00:00:10:02", "ip": "192.168.100.12", "name": None},
        {"mac": "52:54:00:00:10:01", "ip": "192.168.100.11", "name": "a"}]}],
        dns_hosts=[{"ip": "192.168.100.12", "hostnames": ["b", "a", "b"]}])
    assert r.spec.addresses == [{"address": "192.168.100.7/24", "dhcp_hosts": [
        {"mac": "52:54:00:00:10:01", "ip": "192.168.100.11", "name": "a"},
        {"mac": "52:54:00:00:10:02", "ip": "192.168.100.12"}]}]
    assert r.spec.dns_hosts == [{"ip": "192.168.100.12", "hostnames": ["a", "b"]}]


# --- planning --------------------------------------------------------------------------------
NAT = ("<network><name>lan</name><uuid>2b1c5a0e-7f7a-4a54-9c55-1d2e3f4a5b6c</uuid><forward mode='nat'/>"
       "<bridge name='virbr10' stp='on' delay='0'/><mac address='52:54:00:12:34:56'/>"
       "<dns><host ip='192.168.100.10'><hostname>www</hostname></host></dns>"
       "<ip address='192.168.100.1' prefix='24'><dhcp><range start='192.168.100.100' end='192.168.100.199'/>"
       "<host mac='52:54:00:00:10:01' name='web01' ip='192.168.100.10'/></dhcp></ip>"
       "<ip family='ipv6' address='fd00:100::1' prefix='64'><dhcp><range start='fd00:100::100' end='fd00:100::1ff'/>"
       "</dhcp></ip></network>")


def actual(xml=NAT, active=True, autostart=False, persistent=True):
    return N.ActualNetwork(None, N.NetworkXML.from_string(xml), active, autostart, persistent)


def plan_of(r, act):
    return [(c.action, c.target, c.cold, bool(c.extra.get("live"))) for c in N.plan_network(r, act).changes]


HOST2 = {"mac": "52:54:00:00:10:02", "ip": "192.168.100.11", "name": "web02"}
HOST6 = {"name": "six", "ip": "fd00:100::6"}


@pytest.mark.parametrize("kw, act, expected", [
    ({"mode": "nat", "autostart": True}, None,
     [("define", "network lan", False, False), ("start", "network lan", False, False),
      ("update", "autostart", False, False)]),
    ({"mode": "nat", "bridge": "virbr10", "addresses": [V4, V6],
      "dns_hosts": [{"ip": "192.168.100.10", "hostnames": ["www"]}]}, actual(), []),
    ({"mode": "nat"}, actual(), []),
    # DHCP hosts and DNS hosts are live on a running network
    ({"addresses": [dict(V4, dhcp_hosts=[V4["dhcp_hosts"][0], HOST2]), V6]}, actual(),
     [("add", "dhcp host 52:54:00:00:10:02", False, True)]),
    ({"dns_hosts": []}, actual(), [("remove", "dns host 192.168.100.10", False, True)]),
    ({"addresses": [V4, dict(V6, dhcp_hosts=[HOST6])]}, actual(), [("add", "dhcp host six", False, True)]),
    ({"addresses": [dict(V4, dhcp_hosts=[dict(V4["dhcp_hosts"][0], ip="192.168.100.9")]), V6]}, actual(),
     [("remove", "dhcp host 52:54:00:00:10:01", False, True), ("add", "dhcp host 52:54:00:00:10:01", False, True)]),
    # anything else redefines and restarts, and the host changes go with the redefinition
    ({"mtu": 9000, "dns_hosts": []}, actual(),
     [("update", "mtu", True, False), ("remove", "dns host 192.168.100.10", True, False),
      ("restart", "network lan", False, False)]),
    ({"mode": "isolated"}, actual(), [("update", "mode", True, False), ("restart", "network lan", False, False)]),
    ({"addresses": [V4]}, actual(), [("remove", "address fd00:100::1/64", True, False),
                                     ("restart", "network lan", False, False)]),
    ({"addresses": [dict(V4, dhcp_ranges=[]), V6]}, actual(),
     [("update", "address 192.168.100.1 dhcp_ranges", True, False), ("restart", "network lan", False, False)]),
    # a stopped network takes everything into its definition, and stays stopped
    ({"state": "stopped", "dns_hosts": []}, actual(active=False),
     [("remove", "dns host 192.168.100.10", False, False)]),
    ({"state": "stopped"}, actual(), [("stop", "network lan", False, False)]),
    ({"state": "absent"}, actual(), [("stop", "network lan", False, False), ("undefine", "network lan", False, False)]),
    ({"state": "absent"}, None, []),
])
def test_plan_network(kw, act, expected):
    assert plan_of(req(**kw), act) == expected


def test_view_keeps_unmanaged_dhcp_parts_of_an_address():
    r = req(addresses=[{"address": "192.168.100.1/24", "dhcp_ranges": None, "dhcp_hosts": [HOST2]}, V6])
    before, after = N.view(r, actual())
    assert before["addresses"][0] == {"address": "192.168.100.1/24", "dhcp_hosts": [
        {"mac": "52:54:00:00:10:01", "ip": "192.168.100.10", "name": "web01"}]}
    assert after["addresses"][0] == {"address": "192.168.100.1/24", "dhcp_hosts": [HOST2]}
    assert before["state"] == after["state"] == "running"


# --- against libvirt's test driver -----------------------------------------------------------
MODES = {
    "nat": {"bridge": "dvu0", "mtu": 1400, "domain": "lan.internal", "addresses": [V4, V6],
            "dns_hosts": [{"ip": "192.168.100.10", "hostnames": ["www"]}]},
    "route": {"bridge": "dvu1", "addresses": [{"address": "10.9.0.1/24", "dhcp_ranges": None, "dhcp_hosts": None}]},
    "open": {"bridge": "dvu2", "addresses": [{"address": "10.9.1.1/24", "dhcp_ranges": None, "dhcp_hosts": None}]},
    "isolated": {"bridge": "dvu3", "addresses": [{"address": "10.9.2.1/24", "dhcp_ranges": None, "dhcp_hosts": None}]},
    "bridge": {"bridge": "br0"},
}


def converge(client, r):
    act = N.read_network(client, r.name)
    plan = N.plan_network(r, act)
    N.apply_network(client, r, plan, act)
    return plan


@pytest.mark.parametrize("mode", list(MODES))
def test_every_mode_converges_through_libvirts_parser(live_client, mode):
    r = req(name=PREFIX + mode, mode=mode, **MODES[mode])
    first = converge(live_client, r)
    assert first.has("define", "start")
    act = N.read_network(live_client, r.name)
    assert act.active and act.spec.mode == mode
    assert N.plan_network(r, act).changes == []


def test_live_changes_reach_the_running_network_and_its_definition(live_client):
    r = req(name=PREFIX + "live", mode="nat", bridge="dvu4", addresses=[V4])
    converge(live_client, r)
    uuid = N.read_network(live_client, r.name).xml.uuid
    r2 = req(name=PREFIX + "live", addresses=[dict(V4, dhcp_hosts=[V4["dhcp_hosts"][0], HOST2])],
             dns_hosts=[{"ip": "192.168.100.11", "hostnames": ["web02"]}])
    plan = converge(live_client, r2)
    assert [(c.action, c.extra.get("live")) for c in plan.changes] == [("add", True), ("add", True)]
    net = live_client.network(r.name)
    xml = N.NetworkXML(parse(live_client.network_xml(net)))
    assert HOST2 in xml.ips[0].hosts
    assert xml.dns_hosts == [{"ip": "192.168.100.11", "hostnames": ["web02"]}]
    after = N.read_network(live_client, r.name)
    assert after.xml.uuid == uuid
    assert N.plan_network(r2, after).changes == []


def test_dhcpv6_hosts_change_live_on_their_own_address(live_client):
    r = req(name=PREFIX + "six", mode="nat", bridge="dvu6", addresses=[V4, V6])
    converge(live_client, r)
    duid = {"id": "00:03:00:01:52:54:00:00:10:06", "ip": "fd00:100::7", "name": "seven"}
    r2 = req(name=PREFIX + "six", addresses=[V4, dict(V6, dhcp_hosts=[HOST6, dict(duid, id=duid["id"].upper())])])
    plan = converge(live_client, r2)
    assert [(c.target, c.extra.get("live"), c.extra.get("parent")) for c in plan.changes] == [
        ("dhcp host 00:03:00:01:52:54:00:00:10:06", True, 1), ("dhcp host six", True, 1)]
    xml = N.NetworkXML(parse(live_client.network_xml(live_client.network(r.name))))
    assert xml.ips[0].hosts == V4["dhcp_hosts"]
    assert xml.ips[1].hosts == [duid, HOST6]
    assert N.plan_network(r2, N.read_network(live_client, r.name)).changes == []


def test_a_cold_change_redefines_keeping_the_uuid(live_client):
    # A stopped network: the test driver keeps a running network's new definition aside and does
    # not bring it in on restart, unlike libvirtd (the network integration target restarts them).
    r = req(name=PREFIX + "cold", mode="nat", bridge="dvu5", addresses=[V4], state="stopped")
    converge(live_client, r)
    first = N.read_network(live_client, r.name)
    plan = converge(live_client, req(name=PREFIX + "cold", mode="route", state="stopped"))
    assert [(c.action, c.target, c.cold) for c in plan.changes] == [("update", "mode", False)]
    second = N.read_network(live_client, r.name)
    assert second.spec.mode == "route" and not second.active
    assert second.xml.uuid == first.xml.uuid
    assert second.spec.addresses[0]["dhcp_hosts"] == V4["dhcp_hosts"]


def test_a_bridge_name_in_use_is_refused(live_client):
    converge(live_client, req(name=PREFIX + "one", mode="isolated", bridge="dvu6"))
    with pytest.raises(InvalidSpec) as e:
        N.inspect_network(live_client, req(name=PREFIX + "two", mode="nat", bridge="dvu6"), None)
    assert e.value.msg == "Bridge name dvu6 is already used by network %sone" % PREFIX


def test_info_lists_networks(live_client):
    converge(live_client, req(name=PREFIX + "info", mode="isolated", bridge="dvu7"))
    found = N.list_networks(live_client, [PREFIX + "info"], leases=False)
    assert [(n["name"], n["mode"], n["state"], n["guests"]) for n in found] == [
        (PREFIX + "info", "isolated", "running", [])]


def test_stopping_a_network_warns_of_its_guests_predicted_then_done(live_client):
    """The guests a stop cuts off: check mode says they would lose their connection and stops
    nothing; the real run stops the network and says they lost it."""
    name = PREFIX + "cut"
    converge(live_client, req(name=name, mode="isolated", bridge="dvu8"))
    live_client.start(live_client.define(
        "<domain type='test'><name>%sguest</name><memory>65536</memory><os><type>hvm</type></os><devices>"
        "<interface type='network'><source network='%s'/><target dev='vnetu8'/></interface></devices></domain>"
        % (PREFIX, name), PREFIX + "guest"))
    stop = req(name=name, state="stopped")
    checked = N.converge_network(live_client, stop, True)
    assert checked["interrupted_guests"] == [PREFIX + "guest"]
    assert checked["warnings"] == ["Guests %sguest would lose their connection: network %s is stopped" % (PREFIX, name)]
    assert N.read_network(live_client, name).active
    applied = N.converge_network(live_client, stop, False)
    assert applied["changes"] == checked["changes"] == [
        {"action": "stop", "target": "network %s" % name, "before": "running", "after": "stopped"}]
    assert applied["warnings"] == ["Guests %sguest lost their connection: network %s is stopped" % (PREFIX, name)]
    assert not N.read_network(live_client, name).active and applied["network"]["state"] == "stopped"
