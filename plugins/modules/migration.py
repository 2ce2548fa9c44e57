#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: debvirt.cluster developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: migration
short_description: Move a virtual machine to another cluster member, live or offline
version_added: 0.1.0
description:
  - Runs on any member of the cluster. It finds the node that runs guest O(name) by asking
    every online member's libvirt (the local one at O(uri), the others at the same driver over
    SSH, C(qemu+ssh://root@<address>/system), with the trust that role
    C(debvirt.cluster.cluster) sets up; or over TLS, see O(transport)), and moves the guest to
    node O(target).
  - A guest that already is on O(target) is left alone (C(changed=false)).
  - Before anything is touched it checks that the target is an online member of a quorate
    cluster, has the networks and storage pools the guest uses, has enough free memory, can
    provide the guest's CPU model (libvirt's hypervisor CPU comparison), and that every disk is
    on shared storage or will be copied. Any failed check stops the move with every reason in
    one message; the guest stays where it was.
  - A running guest moves live; its memory, and its local disks, go straight from the source
    node to the target over C(tcp://<target address>), encrypted with O(transport=tls). The
    definition becomes persistent on the
    target and is removed from the source. A stopped guest moves offline; its definition, and
    the data of its local disks, are copied to the target, then removed from the source.
  - Local disks (any pool type but C(iscsi), C(iscsi-direct), C(netfs), C(rbd), C(gluster)) need
    a running pool of the same name at the same path on the target; the module creates the
    target volume there with the source's capacity and format.
  - A C(dir) or C(fs) pool may be a shared file system mounted at the same path on every
    member, which libvirt cannot tell. The module finds out by making a file with a random name
    in the pool's directory on the source and looks for it on the target (over the SSH trust,
    also in check mode; the file is removed at once). When the target sees it, the disks in
    that pool are shared like those of a C(netfs) pool - whatever O(copy_storage) says, they
    are neither copied (never onto themselves) nor deleted on the source. A probe that cannot
    tell stops the move before anything is touched.
  - Containers (O(uri=lxc:///system)) cannot move live through libvirt. With O(mode=auto) a
    running container moves by a restart; it is stopped cleanly (its init is asked through
    initctl, then sent SIGTERM after 10 seconds), its root directory is copied to the same path
    on the target through this host (tar over the SSH trust), and it is defined and started
    there. C(stats.downtime_ms) says how long it was down. A stopped container moves offline the
    same way, without the stop and start. Only a root file system that is a directory is
    copied. Its definition is removed from the source before it is defined on the target, so
    that no two nodes hold it at once.
  - A step that fails is rolled back only as far as the move made things and only while the
    guest is not on the target yet; the error says where the guest is. Once a guest runs on the
    target (a live move) or is defined there only (offline), a later failure such as setting
    autostart there rolls nothing back - the target's volumes are its disks now - and the
    source's old volumes are kept, named in the error. A failed container move gives the source
    back its definition and autostart only when the target's definition is proven gone, and
    starts it there again.
extends_documentation_fragment:
  - debvirt.cluster.libvirt
  - debvirt.cluster.converge
  - ansible.builtin.action_common_attributes
attributes:
  check_mode:
    details: Locates the guest and runs every check; reports the planned move, moves nothing.
  diff_mode:
    details: Shows the node before and after.
options:
  name:
    description:
      - The guest to move.
    type: str
    required: true
  target:
    description:
      - The node to move it to, by its name in the cluster's nodelist (or in O(members)).
    type: str
    required: true
  mode:
    description:
      - V(live) moves a running guest without stopping it; V(offline) moves a stopped guest.
      - V(auto) is live for a running (or paused) virtual machine, a restart for a running
        container, and offline for a stopped guest.
      - A guest in the other state is refused, not stopped or started.
    type: str
    choices: [auto, live, offline]
    default: auto
  copy_storage:
    description:
      - Local disks, on storage that only the source reaches.
      - V(auto) copies them to a new volume on the target, and refuses to touch a volume of
        that name which already exists there.
      - V(all) copies them too, and overwrites a volume of that name on the target that no
        guest there uses.
      - V(never) refuses to move a guest that has any.
    type: str
    choices: [auto, never, all]
    default: auto
  keep_source_storage:
    description:
      - Keep the source's copy of each local disk after a successful move. By default it is
        deleted, as the guest now writes to the target's copy and the old one is stale.
    type: bool
    default: false
  timeout:
    description:
      - Seconds a live migration may take; when they run out the migration is aborted and the
        guest goes on running on the source.
      - For an offline move, the seconds the copies of its local disks may take together; when
        they run out the copy is aborted, the volumes created on the target are deleted and the
        guest stays defined (stopped) on the source.
      - For a container, the seconds its clean stop may take, and again the seconds the copy of
        its root directory may take; when the copy runs out of time it is aborted, the partial
        copy on the target removed and a container that was running started again on the source.
    type: int
    default: 600
  max_downtime:
    description:
      - The longest pause, in milliseconds, that QEMU may impose on the guest to finish the
        move. Unset leaves the hypervisor's default (300 ms for QEMU).
    type: int
  bandwidth:
    description:
      - The most the migration stream may use, in MiB/s. Unset is unlimited.
    type: int
  min_free_memory:
    description:
      - MiB of memory that must remain free on the target once the guest's (maximum) memory is
        taken. Only checked for a live move.
    type: int
    default: 0
  members:
    description:
      - The nodes to ask, as a mapping of node name to libvirt URI, instead of the cluster's
        nodelist. For tests and for hosts without corosync; quorum is then not checked.
    type: dict
  migrate_address:
    description:
      - The target's address for the migration stream. Default is its first corosync address
        (or the host of its URI in O(members)).
    type: str
  transport:
    description:
      - How the module reaches the other members' libvirt, and how a live migration's streams
        travel.
      - V(ssh) uses the members' root SSH trust (C(qemu+ssh://root@<address>/system)); the
        migration stream of memory and disks is plain TCP.
      - V(tls) uses libvirt's TLS transport (C(qemu+tls://<address>/system)) with the
        certificates of the cluster's CA, and QEMU encrypts the memory and disk streams
        (libvirt's C(VIR_MIGRATE_TLS)). It needs the cluster set up with C(cluster_tls=true)
        (role C(debvirt.cluster.cluster)); before anything else the module checks that the
        target answers over TLS and stops with a message if it does not.
      - A container's root directory is copied over the SSH trust with either.
    type: str
    choices: [ssh, tls]
    default: ssh
seealso:
  - module: debvirt.cluster.cluster_info
  - module: debvirt.cluster.guest
notes:
  - With O(transport=ssh) the migration stream goes unencrypted over C(tcp://); use it on a
    trusted cluster network, or O(transport=tls).
  - Disk leases (role C(debvirt.cluster.node), C(node_lock_manager)) make libvirt itself refuse
    a second QEMU on a disk that runs elsewhere; a live move hands the leases over.
"""

EXAMPLES = r"""
- name: Move web01 to node2, live
  debvirt.cluster.migration:
    name: web01
    target: node2
    max_downtime: 300
    timeout: 300

- name: Move a guest with local disks, copying them during the live migration
  debvirt.cluster.migration:
    name: db01
    target: node3
    copy_storage: auto
    bandwidth: 200
  register: moved

- name: How long it took
  ansible.builtin.debug:
    msg: "{{ moved.stats.time_elapsed_ms }} ms in all, paused {{ moved.stats.downtime_ms }} ms"

- name: Move a container (a clean stop, a copy of its root directory, a start there)
  debvirt.cluster.migration:
    uri: lxc:///system
    name: ct01
    target: node2
    timeout: 120

- name: Move web01 over TLS, its memory stream encrypted (the cluster role ran with cluster_tls)
  debvirt.cluster.migration:
    name: web01
    target: node1
    transport: tls

- name: Would it fit on node3? (check mode only checks)
  debvirt.cluster.migration:
    name: big01
    target: node3
  check_mode: true
"""

RETURN = r"""
name:
  description: The guest.
  returned: success
  type: str
  sample: web01
source:
  description: The node the guest was on.
  returned: success
  type: str
  sample: node1
target:
  description: The node it is on now (in check mode, would be on).
  returned: success
  type: str
  sample: node2
transport:
  description: How the members were reached and the streams went, V(ssh) or V(tls).
  returned: success
  type: str
  sample: tls
mode:
  description: V(live), V(offline) or, for a running container, V(restart); null when the guest
    already was on the target.
  returned: success
  type: str
  sample: live
checks:
  description: Every preflight check with its result (V(passed), V(failed) or V(skipped)).
  returned: success and when a check failed
  type: list
  elements: dict
  sample: [{check: memory, result: passed, detail: "guest needs 256 MiB, node2 has 15000 MiB free"}]
changes:
  description: The steps of the move, in order.
  returned: success
  type: list
  elements: dict
  sample: [{action: migrate, target: guest web01, before: node1, after: node2}]
copied_disks:
  description: Target devices of the local disks copied to the target.
  returned: when the guest was moved or would be
  type: list
  elements: str
  sample: [vda]
stats:
  description: The move as libvirt measured it; empty in check mode and when nothing moved.
  returned: success
  type: dict
  contains:
    time_elapsed_ms:
      description: Total time of the live migration (libvirt's completed job statistics); for a
        container, of the whole move as measured by the module.
      type: int
    downtime_ms:
      description: How long the guest was paused at the switch-over; for a container, from the
        request to stop to its start on the target.
      type: int
    data_total_bytes:
      description: Bytes of memory and disk the migration had to transfer.
      type: int
    disk_total_bytes:
      description: Bytes of disk copied during the live migration, where libvirt reports it.
      type: int
    duration_s:
      description: Wall time of the whole move as the module saw it, checks excluded.
      type: float
  sample: {time_elapsed_ms: 2051, downtime_ms: 38, data_total_bytes: 280000000, duration_s: 2.4}
"""

from ansible_collections.debvirt.cluster.plugins.module_utils._cluster import Shell
from ansible_collections.debvirt.cluster.plugins.module_utils._migration import (
    COPY_STORAGE,
    MODES,
    TRANSPORTS,
    converge_migration,
    request_from_params,
)
from ansible_collections.debvirt.cluster.plugins.module_utils._module import LibvirtModule

ARGUMENT_SPEC = dict(
    name=dict(type="str", required=True),
    target=dict(type="str", required=True),
    mode=dict(type="str", choices=list(MODES), default="auto"),
    copy_storage=dict(type="str", choices=list(COPY_STORAGE), default="auto"),
    keep_source_storage=dict(type="bool", default=False),
    timeout=dict(type="int", default=600),
    max_downtime=dict(type="int"),
    bandwidth=dict(type="int"),
    min_free_memory=dict(type="int", default=0),
    members=dict(type="dict"),
    migrate_address=dict(type="str"),
    transport=dict(type="str", choices=list(TRANSPORTS), default="ssh"),
)


def main():
    module = LibvirtModule(ARGUMENT_SPEC, supports_check_mode=True)
    module.run(lambda: converge_migration(Shell(module.run_command), module.params["uri"], module.client_for,
                                          request_from_params(module.params), module.check_mode))


if __name__ == "__main__":
    main()
