#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: debvirt.cluster developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: cluster_member
short_description: Add a node to a corosync cluster, remove one, or create a cluster
version_added: 0.1.0
description:
  - Manages one node's membership of a corosync 3 cluster (knet transport, encrypted).
  - The module runs on a current member (use C(delegate_to)) and reaches the other members
    and the node named in O(name) over SSH as root, with the key and pinned host keys that
    role C(debvirt.cluster.cluster) sets up. It reads every member's C(corosync.conf) first,
    plans once, and writes the same nodelist, with C(config_version) bumped, to every member
    in the same task, so the members never disagree about who belongs to the cluster.
  - O(state=present) for a node that is not a member yet copies the cluster's authkey to it
    (base64 over SSH, mode 0400, never in a result), writes the new nodelist to every member,
    reloads it with C(corosync-cfgtool -R), writes it to the new node and starts corosync
    there, then waits until the node is in the membership and the cluster is quorate.
    A node that runs the package's loopback-only default configuration counts as fresh; its
    pacemaker CIB of that default cluster is moved to C(/var/lib/pacemaker/cib.debvirt-before-join).
  - O(state=present) run on a host that belongs to no cluster, with O(name) naming that host,
    creates a one-node cluster there (O(cluster_name), O(addresses) and the cluster settings
    apply only then) and generates the authkey with C(corosync-keygen) unless one exists.
  - O(state=absent) refuses while the node runs guests (unless O(force)), and when the
    members that stay would not be quorate without it. Otherwise it stops pacemaker and
    corosync on the node, moves its C(corosync.conf) aside to C(corosync.conf.debvirt-removed)
    (so it can join a cluster again), writes the smaller nodelist to every other member,
    reloads it and removes the node from pacemaker's CIB.
  - A rerun finishes what a run that stopped half way left (a member died, say). A member that
    missed the new nodelist gets it and the running cluster reloads it; a node that the members
    took in but that never got the cluster's configuration gets the authkey and the configuration
    and starts corosync, as a join gives them.
  - A node that belongs to another cluster, and a member whose cluster is not O(cluster_name),
    fail with a message, and nothing is changed.
  - Pacemaker is not started by this module; role C(debvirt.cluster.cluster) does that once
    the ring is up.
extends_documentation_fragment:
  - debvirt.cluster.libvirt
  - debvirt.cluster.converge
  - ansible.builtin.action_common_attributes
attributes:
  check_mode:
    details: Reads every member and reports the planned changes; writes nothing.
  diff_mode:
    details: Shows the cluster name, C(config_version) and nodelist before and after.
options:
  name:
    description:
      - The node's name in the nodelist; by convention its host name.
    type: str
    required: true
  addresses:
    description:
      - The node's address on each knet link, link 0 first (C(ring0_addr), C(ring1_addr), ...).
      - Needed to add a node or create a cluster; the module reaches the node over SSH at the
        first one.
      - A member's addresses cannot be changed; remove the node and add it again.
      - Each is a host name or an IPv4 or IPv6 address; anything else (a blank, a newline, a
        brace, a C(#)) is refused before anything is read or written, in check mode too.
    type: list
    elements: str
  nodeid:
    description:
      - The node's corosync node id. Default the lowest free one.
    type: int
  state:
    description:
      - V(present) makes the node a member, V(absent) removes it.
    type: str
    choices: [present, absent]
    default: present
  cluster_name:
    description:
      - The cluster's name. When the member the module runs on belongs to another cluster,
        the module fails without changing anything.
      - Required to create a cluster.
    type: str
  force:
    description:
      - Remove a node that still runs guests, or whose guests cannot be checked because it
        is unreachable. Its guests are not stopped; they lose the cluster.
    type: bool
    default: false
  timeout:
    description:
      - Seconds to wait for the cluster to be quorate with the node joined (or left).
    type: int
    default: 60
  token:
    description:
      - Totem token timeout in milliseconds, when creating a cluster. Default corosync's.
    type: int
  token_coefficient:
    description:
      - Milliseconds added to the token timeout per node beyond two, when creating a cluster.
    type: int
  two_node:
    description:
      - Set C(two_node) in the quorum section, when creating a cluster that is to have two
        nodes, so that one node keeps quorum when the other fails (corosync then implies
        C(wait_for_all)).
    type: bool
    default: false
  wait_for_all:
    description:
      - Set C(wait_for_all) when creating a cluster. Default corosync's.
    type: bool
  qdevice:
    description:
      - A QDevice (corosync-qnetd host) that gives a tie-breaking vote, when creating a
        cluster. The node needs C(corosync-qdevice) installed and certificates set up; this
        module only writes the configuration.
    type: dict
    suboptions:
      host:
        description: Address of the corosync-qnetd server.
        type: str
        required: true
      algorithm:
        description: The vote algorithm.
        type: str
        choices: [ffsplit, lms]
        default: ffsplit
      tie_breaker:
        description: Which partition wins a tie (V(lowest), V(highest) or a node id).
        type: str
notes:
  - Cluster settings (O(token), O(two_node), O(qdevice), ...) are written when the cluster is
    created only; the module does not change them on an existing cluster.
  - O(uri) is the libvirt URI of the node the module runs on; another member's guests are
    read at the same driver over SSH (C(qemu+ssh://root@<address>/system)).
seealso:
  - module: debvirt.cluster.cluster_info
"""

EXAMPLES = r"""
- name: Create cluster lab on the first node
  debvirt.cluster.cluster_member:
    name: node1
    addresses: [10.77.0.11]
    cluster_name: lab
    token: 3000

- name: Add node4 through node1
  debvirt.cluster.cluster_member:
    name: node4
    addresses: [10.77.0.14]
    cluster_name: lab
  delegate_to: node1

- name: Remove node3 (refused while it runs guests)
  debvirt.cluster.cluster_member:
    name: node3
    state: absent
  delegate_to: node1
"""

RETURN = r"""
cluster:
  description: The cluster's name, C(config_version) and nodelist after the task (in check mode,
    as they would be); empty when the host belongs to no cluster.
  returned: always
  type: dict
  sample:
    cluster_name: lab
    config_version: 4
    nodelist:
      - {name: node1, nodeid: 1, addresses: [10.77.0.11]}
      - {name: node4, nodeid: 4, addresses: [10.77.0.14]}
changes:
  description: What changed (or would change in check mode), in order.
  returned: always
  type: list
  elements: dict
  sample:
    - {action: add, target: node node4, after: {name: node4, nodeid: 4, addresses: [10.77.0.14]}}
    - {action: update, target: config_version, before: 3, after: 4}
    - {action: write, target: corosync.conf on node1}
    - {action: reload, target: corosync}
"""

from ansible_collections.debvirt.cluster.plugins.module_utils._cluster import (
    Shell,
    converge_member,
    member_uri,
    request_from_params,
)
from ansible_collections.debvirt.cluster.plugins.module_utils._module import LibvirtModule

QDEVICE = dict(host=dict(type="str", required=True),
               algorithm=dict(type="str", choices=["ffsplit", "lms"], default="ffsplit"),
               tie_breaker=dict(type="str"))

ARGUMENT_SPEC = dict(
    name=dict(type="str", required=True),
    addresses=dict(type="list", elements="str"),
    nodeid=dict(type="int"),
    state=dict(type="str", choices=["present", "absent"], default="present"),
    cluster_name=dict(type="str"),
    force=dict(type="bool", default=False),
    timeout=dict(type="int", default=60),
    token=dict(type="int", no_log=False),
    token_coefficient=dict(type="int", no_log=False),
    two_node=dict(type="bool", default=False),
    wait_for_all=dict(type="bool"),
    qdevice=dict(type="dict", options=QDEVICE),
)


def main():
    module = LibvirtModule(ARGUMENT_SPEC, supports_check_mode=True)
    uri = module.params["uri"]

    def client_for(host):
        return module.client_for(uri if host is None else member_uri(uri, host))

    module.run(lambda: converge_member(Shell(module.run_command), request_from_params(module.params),
                                       module.check_mode, client_for))


if __name__ == "__main__":
    main()
