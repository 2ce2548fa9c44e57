#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: debvirt.cluster developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: cluster_info
short_description: The corosync cluster a node belongs to, its quorum, members and their guests
version_added: 0.1.0
description:
  - Reads C(/etc/corosync/corosync.conf) and corosync's runtime state on the node it runs on
    (C(corosync-quorumtool -s), C(corosync-cfgtool -n)) and returns one cluster-wide view.
  - For every member that is online it lists the guests through that member's libvirt, the
    local one at O(uri), the others at the same driver over SSH
    (C(qemu+ssh://root@<address>/system)), with the trust that role C(debvirt.cluster.cluster)
    sets up.
  - On a host that belongs to no cluster (no C(corosync.conf), or the package's loopback-only
    default), it returns C(member=false) and no members.
extends_documentation_fragment:
  - debvirt.cluster.libvirt
  - debvirt.cluster.info
  - ansible.builtin.action_common_attributes
options:
  guests:
    description:
      - List each online member's guests. Off saves a libvirt connection per member.
    type: bool
    default: true
seealso:
  - module: debvirt.cluster.cluster_member
"""

EXAMPLES = r"""
- name: Read the cluster
  debvirt.cluster.cluster_info:
  register: cluster

- name: Fail unless quorate
  ansible.builtin.assert:
    that: cluster.quorum.quorate

- name: Where each guest runs
  ansible.builtin.debug:
    msg: "{{ item.name }}: {{ item.guests | map(attribute='name') | join(', ') }}"
  loop: "{{ cluster.members }}"
  loop_control:
    label: "{{ item.name }}"
"""

RETURN = r"""
member:
  description: Whether the host belongs to a cluster.
  returned: always
  type: bool
cluster_name:
  description: The cluster's name (C(totem.cluster_name)).
  returned: always
  type: str
  sample: lab
config_version:
  description: C(totem.config_version) of this node's C(corosync.conf).
  returned: always
  type: int
  sample: 3
local_node:
  description: This node's name in the nodelist.
  returned: when RV(member) is true
  type: str
  sample: node1
quorum:
  description: Quorum as this node's corosync sees it; null when corosync does not run here.
  returned: always
  type: dict
  contains:
    quorate:
      description: Whether the partition this node is in has quorum.
      type: bool
    expected_votes:
      description: Votes expected in the whole cluster.
      type: int
    total_votes:
      description: Votes present in this node's partition.
      type: int
    quorum:
      description: Votes needed for quorum.
      type: int
    nodes:
      description: Nodes in this node's partition.
      type: int
    node_id:
      description: This node's id.
      type: int
  sample: {quorate: true, expected_votes: 3, total_votes: 3, quorum: 2, nodes: 3, node_id: 1}
members:
  description: Every node of the nodelist.
  returned: always
  type: list
  elements: dict
  contains:
    name:
      description: Node name.
      type: str
    nodeid:
      description: corosync node id.
      type: int
    addresses:
      description: The node's address on each link, link 0 first.
      type: list
      elements: str
    local:
      description: Whether it is the node the module ran on.
      type: bool
    online:
      description: Whether it is in this node's membership.
      type: bool
    votes:
      description: Its votes (0 when not online).
      type: int
    links:
      description: Each link's state seen from this node, by link number, V(connected),
        V(disconnected), or V(local) for this node itself.
      type: dict
    guests:
      description: Its guests with their state, through its libvirt; null when offline or
        not asked for.
      type: list
      elements: dict
  sample:
    - name: node1
      nodeid: 1
      addresses: [10.77.0.11]
      local: true
      online: true
      votes: 1
      links: {"0": local}
      guests: [{name: demo, state: running}]
"""

from ansible_collections.debvirt.cluster.plugins.module_utils._cluster import Shell, member_uri
from ansible_collections.debvirt.cluster.plugins.module_utils._module import run_info
from ansible_collections.debvirt.cluster.plugins.module_utils._quorum import cluster_info


def main():
    def read(module):
        uri = module.params["uri"]

        def client_for(host):
            return module.client_for(uri if host is None else member_uri(uri, host))

        return cluster_info(Shell(module.run_command), client_for if module.params["guests"] else None)

    run_info(dict(guests=dict(type="bool", default=True)), read)


if __name__ == "__main__":
    main()
