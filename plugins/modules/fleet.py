#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: debvirt.cluster developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: fleet
short_description: All the guests of one host, converged in one call
version_added: 0.1.0
description:
  - Converges a list of virtual machines on one host, each exactly as M(debvirt.cluster.guest)
    would, in one module call. A rerun over many unchanged guests costs about as much as
    reading them, instead of a module start per guest.
  - Every guest is read, checked and planned before any of them is changed, so bad input in
    one item changes nothing at all.
  - Guests this fleet declared before and the list no longer declares are reported in
    RV(undeclared); with O(purge) they are stopped and undefined. Their disks are kept.
extends_documentation_fragment:
  - debvirt.cluster.libvirt
  - ansible.builtin.action_common_attributes
attributes:
  check_mode:
    support: full
  diff_mode:
    support: full
  platform:
    platforms: debian
options:
  guests:
    description:
      - The guests, each a dict of the options of M(debvirt.cluster.guest) except O(uri),
        validated the same way.
      - An item may also name its O(node); it is then converged only where O(node) matches.
    type: list
    elements: dict
    required: true
  node:
    description:
      - The name of this host in the cluster. Items of O(guests) with another C(node) are left
        out, so that one cluster-wide list can be given to every node.
    type: str
  fleet:
    description:
      - The name of this set of guests, kept in each guest's metadata. Purging only ever
        touches guests of the same fleet, never guests made otherwise.
    type: str
    default: default
  purge:
    description: Stop and undefine the guests of this fleet that O(guests) no longer lists (disks are kept).
    type: bool
    default: false
seealso:
  - module: debvirt.cluster.guest
author:
  - debvirt.cluster developers (@debvirt)
"""

EXAMPLES = r"""
- name: This node's guests, from inventory
  debvirt.cluster.fleet:
    guests: "{{ node_guests }}"

- name: Remove what is no longer declared
  debvirt.cluster.fleet:
    guests: "{{ node_guests }}"
    purge: true
"""

RETURN = r"""
guests:
  description: Each guest's outcome, by name.
  returned: always
  type: dict
  sample: {web01: {changed: true, changes: [{action: update, target: memory, before: 1024, after: 2048}],
                   reboot_required: false, state: running}}
undeclared:
  description: Guests of this fleet that the list no longer declares (without O(purge)).
  returned: always
  type: list
  elements: str
purged:
  description: Guests removed because the list no longer declares them.
  returned: always
  type: list
  elements: str
"""

from ansible_collections.debvirt.cluster.plugins.module_utils._fleet import converge_fleet, requests_from_params
from ansible_collections.debvirt.cluster.plugins.module_utils._module import LibvirtModule


def main():
    module = LibvirtModule(
        dict(guests=dict(type="list", elements="dict", required=True),
             node=dict(type="str"),
             fleet=dict(type="str", default="default"),
             purge=dict(type="bool", default=False)),
        supports_check_mode=True,
    )

    def run():
        requests, secrets = requests_from_params(module.params["guests"], module.params["fleet"],
                                                 module.params["node"])
        module.no_log_values.update(secrets)
        return converge_fleet(module.client, requests, module.params["fleet"], module.params["purge"],
                              module.check_mode)

    module.run(run)


if __name__ == "__main__":
    main()
