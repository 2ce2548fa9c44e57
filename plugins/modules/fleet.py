#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: debvirt.cluster developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: fleet
short_description: All the virtual machines and containers of one host, converged in one call
version_added: 0.1.0
description:
  - Converges a list of virtual machines and containers on one host, each exactly as
    M(debvirt.cluster.guest) or M(debvirt.cluster.container) would, in one module call. A rerun
    over many unchanged guests costs about as much as reading them, instead of a module start
    per guest.
  - Every item is validated, read, checked and planned before any of them is changed, so bad
    input in one item changes nothing at all.
  - Guests and containers this fleet declared before and the list no longer declares (for any
    node) are reported in RV(undeclared); with O(purge) they are stopped and undefined. Their
    disks and root filesystems are kept. A guest that the list declares for another node and
    that runs here (moved by C(evacuate.yml) or a C(node) move) is neither reported nor purged.
  - On a cluster member, an item that is missing here is looked for on the other members first
    (one listing a member, only when some item is missing). One declared for this node is moved
    here with the checks of M(debvirt.cluster.migration) (live when it runs), or left where it is
    while this node is drained by C(evacuate.yml) (RV(elsewhere)). One that names no node is
    refused, naming the member that has it. A guest is never created a second time.
  - The module connects to O(uri) for virtual machines and to O(container_uri) for containers.
    Both are read to find undeclared members of the fleet; a driver that cannot be reached is an
    error where the list declares guests of its kind or O(purge) is set, and a warning otherwise.
extends_documentation_fragment:
  - debvirt.cluster.libvirt
  - debvirt.cluster.converge
  - ansible.builtin.action_common_attributes
options:
  uri:
    description:
      - The libvirt connection URI of the virtual machines.
    type: str
    default: qemu:///system
  container_uri:
    description:
      - The libvirt connection URI of the containers. It must be local, since a container's root
        filesystem is on the host.
    type: str
    default: lxc:///system
  guests:
    description:
      - The guests, each a dict of the options of M(debvirt.cluster.guest) (C(type=vm), the
        default) or of M(debvirt.cluster.container) (C(type=container)), except C(uri),
        validated the same way.
      - C(type) says which kind the item is, V(vm) or V(container).
      - An item may also name its C(node); it is then converged only where O(node) matches.
      - Names are unique across both kinds.
      - The secret options of every item (C(graphics.password), C(cloud_init.user_data)), other
        nodes' items included, are hidden from the host's log and from the result, as the modules
        of their kinds hide them.
    type: list
    elements: dict
    required: true
  node:
    description:
      - The name of this host in the cluster. Items of O(guests) with another C(node) are left
        out, so that one cluster-wide list can be given to every node.
      - They are validated all the same (but not checked against this host), so that a bad item
        fails every node's call before any of them changes anything. A name is unique in the list.
    type: str
  fleet:
    description:
      - The name of this set of guests, kept in each guest's and container's metadata. Purging
        only ever touches members of the same fleet, never guests or containers made otherwise.
      - Letters, digits and C(_.+-), at most 63 characters.
    type: str
    default: default
  purge:
    description:
      - Stop and undefine the guests and containers of this fleet that O(guests) no longer lists.
      - Disks and root filesystems are kept; to delete them, declare the item with
        C(state=absent) and C(remove_storage=true) instead of dropping it.
    type: bool
    default: false
seealso:
  - module: debvirt.cluster.guest
  - module: debvirt.cluster.container
"""

EXAMPLES = r"""
- name: This node's guests and containers, from inventory
  debvirt.cluster.fleet:
    guests: "{{ node_guests }}"

- name: Two virtual machines and a Debian container, declared inline
  debvirt.cluster.fleet:
    fleet: web
    guests:
      - name: web01
        memory: 2048
        disks: [{pool: default, volume: web01.qcow2, size: 20G}]
        state: running
      - name: web02
        memory: 2048
        disks: [{pool: default, volume: web02.qcow2, size: 20G}]
      - name: cache01
        type: container
        rootfs: {debian: bookworm}
        memory: 512
        interfaces: [{network: default, address: dhcp}]
        state: running

- name: Remove what is no longer declared (disks and root filesystems stay)
  debvirt.cluster.fleet:
    guests: "{{ node_guests }}"
    purge: true
"""

RETURN = r"""
guests:
  description: Each guest's and container's outcome, by name; C(migrated) when it was moved here from another member.
  returned: always
  type: dict
  sample: {web01: {type: vm, changed: true, changes: [{action: update, target: memory, before: 1024, after: 2048}],
                   reboot_required: false, state: running,
                   migrated: {from: node1, to: node2, mode: live, time_elapsed_ms: 2130, downtime_ms: 41}},
           cache01: {type: container, changed: false, changes: [], reboot_required: false, state: running}}
elsewhere:
  description: Guests declared for this node that another member holds while this node is drained, by name.
  returned: always
  type: dict
  sample: {web01: node1}
undeclared:
  description: Guests and containers of this fleet that the list no longer declares (without O(purge)).
  returned: always
  type: list
  elements: str
purged:
  description: Guests and containers removed because the list no longer declares them.
  returned: always
  type: list
  elements: str
"""

from ansible_collections.debvirt.cluster.plugins.module_utils._cluster import Shell
from ansible_collections.debvirt.cluster.plugins.module_utils._fleet import converge_fleet, items_from_params, secrets_of
from ansible_collections.debvirt.cluster.plugins.module_utils._placement import FleetCluster
from ansible_collections.debvirt.cluster.plugins.module_utils._module import LibvirtModule


def main():
    module = LibvirtModule(
        dict(guests=dict(type="list", elements="dict", required=True),
             container_uri=dict(type="str", default="lxc:///system"),
             node=dict(type="str"),
             fleet=dict(type="str", default="default"),
             purge=dict(type="bool", default=False)),
        supports_check_mode=True,
        secrets=lambda params: secrets_of(params["guests"]),
    )
    containers = module.client_for(module.params["container_uri"])

    def run():
        try:
            declared = set()
            items = items_from_params(module.params["guests"], module.params["fleet"], module.params["node"],
                                      module.no_log_values, declared)
            shell = Shell(module.run_command)
            return converge_fleet({"vm": module.client, "container": containers}, items,
                                  module.params["fleet"], module.params["purge"], module.check_mode,
                                  declared, FleetCluster(shell, module.client_for), shell)
        finally:
            containers.close()

    module.run(run)


if __name__ == "__main__":
    main()
