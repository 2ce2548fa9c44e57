#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: debvirt.cluster developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: network
short_description: A libvirt virtual network, declared and converged
version_added: 0.1.0
description:
  - Defines a virtual network in V(nat), V(route), V(open) or V(isolated) mode, with libvirt's
    own bridge, addresses, DHCP and DNS; or in V(bridge) mode, on a bridge the host already has.
  - An existing network converges to the options you set; the options you leave out keep what
    libvirt has, and so do its UUID and MAC address.
  - Static DHCP hosts (of the first IPv4 address) and DNS hosts change live and in the
    definition, without a restart.
  - Any other change to a running network redefines and restarts it. Guests on the network lose
    their connection for that moment; RV(interrupted_guests) names them.
extends_documentation_fragment:
  - debvirt.cluster.libvirt
  - debvirt.cluster.converge
  - ansible.builtin.action_common_attributes
options:
  name:
    description: The network's name, unique on the host.
    type: str
    required: true
  state:
    description:
      - V(present) defines the network and starts it; V(stopped) defines it and stops it.
      - V(absent) stops and undefines it.
    type: str
    choices: [present, stopped, absent]
    default: present
  autostart:
    description: Start the network when libvirtd starts.
    type: bool
  mode:
    description:
      - V(nat) - guests reach outside through the host's masquerading.
      - V(route) - guests' addresses are routed by the host, without NAT.
      - V(open) - like V(route), but libvirt adds no firewall rules.
      - V(isolated) - guests reach each other and the host only.
      - V(bridge) - guests join an existing host bridge (O(bridge)); no addresses, DHCP or DNS.
      - Required to create a network.
    type: str
    choices: [nat, route, open, isolated, bridge]
  bridge:
    description:
      - The bridge's name (at most 15 characters). For V(bridge) mode, the host bridge to use;
        otherwise the bridge libvirt creates, chosen by libvirt when not given.
    type: str
  forward_dev:
    description: Forward only through this host interface (V(nat) and V(route)).
    type: str
  mtu:
    description: The MTU of the network's bridge.
    type: int
  domain:
    description: The DNS domain of the network; guests' names resolve in it.
    type: str
  addresses:
    description:
      - The host's addresses on the network, all of them; each makes a subnet the guests live in.
        IPv4 and IPv6 alike.
    type: list
    elements: dict
    suboptions:
      address:
        description: The address with its prefix, such as V(192.168.100.1/24) or V(fd00:100::1/64).
        type: str
        required: true
      dhcp_ranges:
        description: The ranges DHCP hands out, all of them; an empty list disables them.
        type: list
        elements: dict
        suboptions:
          start:
            description: The first address.
            type: str
            required: true
          end:
            description: The last address.
            type: str
            required: true
      dhcp_hosts:
        description:
          - Fixed addresses, all of them. On a running network, changes to the hosts of an
            address that already exists apply live.
          - An IPv4 host is known by O(addresses[].dhcp_hosts[].mac); a DHCPv6 client by its DUID
            (O(addresses[].dhcp_hosts[].id)) or its O(addresses[].dhcp_hosts[].name).
        type: list
        elements: dict
        suboptions:
          mac:
            description: The guest interface's MAC address (IPv4 hosts only, and required there).
            type: str
          id:
            description: The DHCPv6 client's DUID, hex bytes separated by colons (IPv6 hosts only).
            type: str
          ip:
            description: Its address.
            type: str
            required: true
          name:
            description: Its host name (for IPv6 hosts, O(addresses[].dhcp_hosts[].id) or this one is needed).
            type: str
  dns_hosts:
    description: Names the network's DNS server answers, all of them; changes apply live.
    type: list
    elements: dict
    suboptions:
      ip:
        description: The address.
        type: str
        required: true
      hostnames:
        description: Its names.
        type: list
        elements: str
        required: true
seealso:
  - module: debvirt.cluster.network_info
  - module: debvirt.cluster.guest
"""

EXAMPLES = r"""
- name: A NAT network with DHCP, a fixed address and a DNS name
  debvirt.cluster.network:
    name: lan
    mode: nat
    bridge: virbr10
    domain: lan.internal
    autostart: true
    addresses:
      - address: 192.168.100.1/24
        dhcp_ranges:
          - {start: 192.168.100.100, end: 192.168.100.199}
        dhcp_hosts:
          - {mac: "52:54:00:00:10:01", ip: 192.168.100.10, name: web01}
      - address: fd00:100::1/64
        dhcp_ranges: [{start: "fd00:100::100", end: "fd00:100::1ff"}]
        dhcp_hosts:
          - {id: "00:03:00:01:52:54:00:00:10:01", ip: "fd00:100::10", name: web01}
    dns_hosts:
      - {ip: 192.168.100.10, hostnames: [www]}

- name: Guests on the host's own bridge br0
  debvirt.cluster.network:
    name: public
    mode: bridge
    bridge: br0
"""

RETURN = r"""
network:
  description: The network after the task (in check mode, and for O(state=absent), as requested).
  returned: always
  type: dict
  sample:
    name: lan
    uuid: 2b1c5a0e-7f7a-4a54-9c55-1d2e3f4a5b6c
    state: running
    autostart: true
    persistent: true
    mode: nat
    bridge: virbr10
    addresses:
      - address: 192.168.100.1/24
        dhcp_ranges: [{start: 192.168.100.100, end: 192.168.100.199}]
        dhcp_hosts: [{mac: "52:54:00:00:10:01", ip: 192.168.100.10, name: web01}]
changes:
  description: What changed (or would change in check mode), in order.
  returned: always
  type: list
  elements: dict
  sample: [{action: add, target: "dhcp host 52:54:00:00:10:02", after: {mac: "52:54:00:00:10:02", ip: 192.168.100.11}}]
interrupted_guests:
  description: Running guests on the network that lost (in check mode, would lose) their connection
    while it restarted or stopped.
  returned: always
  type: list
  elements: str
  sample: [web01]
"""

from ansible_collections.debvirt.cluster.plugins.module_utils._module import LibvirtModule
from ansible_collections.debvirt.cluster.plugins.module_utils._network import (
    MODES,
    converge_network,
    request_from_params,
)

RANGE = dict(start=dict(type="str", required=True), end=dict(type="str", required=True))
HOST = dict(mac=dict(type="str"), id=dict(type="str"), ip=dict(type="str", required=True), name=dict(type="str"))
ADDRESS = dict(
    address=dict(type="str", required=True),
    dhcp_ranges=dict(type="list", elements="dict", options=RANGE),
    dhcp_hosts=dict(type="list", elements="dict", options=HOST),
)
DNS_HOST = dict(ip=dict(type="str", required=True), hostnames=dict(type="list", elements="str", required=True))

ARGUMENT_SPEC = dict(
    name=dict(type="str", required=True),
    state=dict(type="str", choices=["present", "stopped", "absent"], default="present"),
    autostart=dict(type="bool"),
    mode=dict(type="str", choices=list(MODES)),
    bridge=dict(type="str"),
    forward_dev=dict(type="str"),
    mtu=dict(type="int"),
    domain=dict(type="str"),
    addresses=dict(type="list", elements="dict", options=ADDRESS),
    dns_hosts=dict(type="list", elements="dict", options=DNS_HOST),
)


def main():
    module = LibvirtModule(ARGUMENT_SPEC, supports_check_mode=True)
    module.run(lambda: converge_network(module.client, request_from_params(module.params), module.check_mode))


if __name__ == "__main__":
    main()
