#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: debvirt.cluster developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: container_info
short_description: The LXC containers of a host, with their state, spec and addresses
version_added: 0.1.0
description:
  - Lists every container on a host, or those selected by name or by tags.
  - Each container comes with the fields M(debvirt.cluster.container) manages, named as
    M(debvirt.cluster.guest_info) names a virtual machine's (name, uuid, state, autostart,
    memory, vcpus, interfaces with their addresses, tags), and C(kind=container).
extends_documentation_fragment:
  - debvirt.cluster.libvirt
  - debvirt.cluster.info
  - debvirt.cluster.info.names
  - debvirt.cluster.info.tags
  - ansible.builtin.action_common_attributes
options:
  uri:
    description: The libvirt connection URI.
    type: str
    default: lxc:///system
seealso:
  - module: debvirt.cluster.container
  - module: debvirt.cluster.guest_info
"""

EXAMPLES = r"""
- name: All containers of the host
  debvirt.cluster.container_info:
  register: containers

- name: With the virtual machines, one inventory of the host
  ansible.builtin.debug:
    msg: "{{ (vms.guests + containers.containers) | map(attribute='name') | list }}"
"""

RETURN = r"""
containers:
  description: The containers, sorted by name.
  returned: always
  type: list
  elements: dict
  sample:
    - name: web01
      uuid: 0b6f2d4e-5c7a-4e1b-9a3f-6d2c1e0f9a8b
      kind: container
      state: running
      autostart: true
      memory: 1024
      vcpus: 2
      cpu_shares: 1024
      command: [/sbin/init]
      privileged: false
      idmap: {uid: 100000, gid: 100000, count: 65536}
      rootfs: /var/lib/debvirt/containers/web01/rootfs
      hostname: web01
      mounts: []
      tags: [web]
      interfaces:
        - {network: default, mac: "52:54:00:3a:1b:2c", dev: eth0, address: dhcp, addresses: [192.168.122.50/24]}
"""

from ansible_collections.debvirt.cluster.plugins.module_utils._container import list_containers
from ansible_collections.debvirt.cluster.plugins.module_utils._module import INFO_NAMES, INFO_TAGS, run_info


def main():
    run_info(dict(INFO_NAMES, uri=dict(type="str", default="lxc:///system"), **INFO_TAGS),
             lambda m: {"containers": list_containers(m.client, m.params["name"], m.params["tags"])})


if __name__ == "__main__":
    main()
