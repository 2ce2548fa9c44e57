#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: debvirt.cluster developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: network_info
short_description: The virtual networks of a host, with their guests and DHCP leases
version_added: 0.1.0
description:
  - Lists every libvirt network on a host, or those named, with the fields
    M(debvirt.cluster.network) manages, its state, the running guests on it and its DHCP leases.
extends_documentation_fragment:
  - debvirt.cluster.libvirt
  - debvirt.cluster.info
  - debvirt.cluster.info.names
  - ansible.builtin.action_common_attributes
options:
  leases:
    description: List the DHCP leases of each active network that has addresses.
    type: bool
    default: true
seealso:
  - module: debvirt.cluster.network
"""

EXAMPLES = r"""
- name: The lan network and its leases
  debvirt.cluster.network_info:
    name: [lan]
  register: lan

- name: Addresses handed out
  ansible.builtin.debug:
    msg: "{{ lan.networks[0].leases | map(attribute='ip') | list }}"
"""

RETURN = r"""
networks:
  description: The networks, sorted by name.
  returned: always
  type: list
  elements: dict
  sample:
    - name: lan
      uuid: 2b1c5a0e-7f7a-4a54-9c55-1d2e3f4a5b6c
      state: running
      autostart: true
      persistent: true
      mode: nat
      bridge: virbr10
      addresses: [{address: 192.168.100.1/24, dhcp_ranges: [{start: 192.168.100.100, end: 192.168.100.199}]}]
      guests: [web01]
      leases: [{mac: "52:54:00:12:34:56", ip: 192.168.100.142/24, hostname: web01, expires: 1796300000}]
"""

from ansible_collections.debvirt.cluster.plugins.module_utils._module import INFO_NAMES, run_info
from ansible_collections.debvirt.cluster.plugins.module_utils._network import list_networks


def main():
    run_info(dict(INFO_NAMES, leases=dict(type="bool", default=True)),
             lambda m: {"networks": list_networks(m.client, m.params["name"], m.params["leases"])})


if __name__ == "__main__":
    main()
