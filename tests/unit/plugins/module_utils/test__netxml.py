# -*- coding: utf-8 -*-
# Copyright: debvirt.cluster developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The network XML model: edits of libvirt's own documents (golden files), what a spec reads
back, and the host entries virNetworkUpdate takes."""

from __future__ import annotations

import os

from ansible_collections.debvirt.cluster.plugins.module_utils._netxml import NetworkSpec, NetworkXML, host_xml
from ansible_collections.debvirt.cluster.plugins.module_utils._xml import parse

DATA = os.path.join(os.path.dirname(__file__), "data", "network")


def _read(name):
    with open(os.path.join(DATA, name)) as f:
        return f.read()


def test_edit_keeps_what_libvirt_generated():
    """Golden file: nat becomes route, a DHCP host and the MTU change; UUID, MAC, STP stay."""
    net = NetworkXML.from_string(_read("nat-edit-in.xml"))
    spec = NetworkSpec(mode="route", mtu=9000, addresses=[
        {"address": "192.168.100.1/24",
         "dhcp_hosts": [{"mac": "52:54:00:00:10:02", "ip": "192.168.100.11", "name": "web02"}]}])
    assert spec.to_xml(net).to_string() == _read("nat-edit-out.xml")


def test_from_xml_reads_netmask_and_both_families():
    net = NetworkXML.from_string(
        "<network><name>n</name><forward mode='nat'/><bridge name='virbr9'/>"
        "<ip address='10.1.0.1' netmask='255.255.0.0'><dhcp><range start='10.1.0.10' end='10.1.0.20'/>"
        "<host mac='52:54:00:AA:00:01' ip='10.1.0.5'/></dhcp></ip>"
        "<ip family='ipv6' address='fd00:0:0:1::1' prefix='64'/>"
        "<dns><host ip='10.1.0.5'><hostname>b</hostname><hostname>a</hostname></host></dns></network>")
    spec = NetworkSpec.from_xml(net)
    assert spec.mode == "nat" and spec.bridge == "virbr9"
    assert spec.addresses == [
        {"address": "10.1.0.1/16", "dhcp_ranges": [{"start": "10.1.0.10", "end": "10.1.0.20"}],
         "dhcp_hosts": [{"mac": "52:54:00:aa:00:01", "ip": "10.1.0.5"}]},
        {"address": "fd00:0:0:1::1/64"}]
    assert spec.dns_hosts == [{"ip": "10.1.0.5", "hostnames": ["a", "b"]}]
    assert NetworkSpec.from_xml(NetworkXML.from_string("<network><name>i</name></network>")).mode == "isolated"


def test_host_entries_for_virnetworkupdate():
    assert host_xml("dhcp-host", {"mac": "52:54:00:00:10:01", "ip": "10.0.0.5", "name": "a&b"}) == \
        "<host mac='52:54:00:00:10:01' name='a&amp;b' ip='10.0.0.5'/>"
    node = parse(host_xml("dns-host", {"ip": "10.0.0.5", "hostnames": ["a", "b"]}))
    assert node.get("ip") == "10.0.0.5" and [h.text for h in node] == ["a", "b"]
