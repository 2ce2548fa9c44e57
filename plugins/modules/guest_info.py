#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: debvirt.cluster developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: guest_info
short_description: The virtual machines of a host, with their state, spec, disks and addresses
version_added: 0.1.0
description:
  - Lists every guest on a host, or those selected by name or by tags.
  - Each guest comes with the same fields M(debvirt.cluster.guest) manages, its disks' capacity
    and allocation, and its interfaces' addresses where libvirt knows them (DHCP leases of
    libvirt networks, the QEMU guest agent).
extends_documentation_fragment:
  - debvirt.cluster.libvirt
  - debvirt.cluster.info
  - debvirt.cluster.info.names
  - debvirt.cluster.info.tags
  - ansible.builtin.action_common_attributes
seealso:
  - module: debvirt.cluster.guest
"""

EXAMPLES = r"""
- name: All guests of the host
  debvirt.cluster.guest_info:
  register: all_guests

- name: Guests tagged web
  debvirt.cluster.guest_info:
    tags: [web]
  register: web

- name: Their first addresses
  ansible.builtin.debug:
    msg: "{{ web.guests | map(attribute='interfaces') | map('first') | map(attribute='addresses') | list }}"
"""

RETURN = r"""
guests:
  description: The guests, sorted by name.
  returned: always
  type: list
  elements: dict
  sample:
    - name: web01
      uuid: 6a3c1f0e-2f43-4d5c-9b7e-1f0a6c2d9e11
      state: running
      autostart: true
      memory: 2048
      vcpus: 2
      tags: [web]
      disks:
        - {target: vda, pool: default, volume: web01-root.qcow2, format: qcow2, capacity: 21474836480, allocation: 1811939328}
      interfaces:
        - {network: default, model: virtio, mac: "52:54:00:12:34:56", addresses: [192.168.122.31/24]}
"""

from ansible_collections.debvirt.cluster.plugins.module_utils._guest import list_guests
from ansible_collections.debvirt.cluster.plugins.module_utils._module import INFO_NAMES, INFO_TAGS, run_info


def main():
    run_info(dict(INFO_NAMES, **INFO_TAGS),
             lambda m: {"guests": list_guests(m.client, m.params["name"], m.params["tags"])})


if __name__ == "__main__":
    main()
