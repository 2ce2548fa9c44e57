#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: debvirt.cluster developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: storage_pool
short_description: A libvirt storage pool, declared and converged
version_added: 0.1.0
description:
  - Defines a storage pool, builds it where that makes something (a directory, a file system,
    a volume group), starts it and sets its autostart.
  - An existing pool converges to the options you set; the options you leave out keep what
    libvirt has.
  - libvirt applies a new definition to an active pool only when the pool is stopped and started
    again. The module does that, and refuses while a running guest has a disk in the pool,
    naming those guests.
  - A pool's data is deleted only with O(delete_data=true).
extends_documentation_fragment:
  - debvirt.cluster.libvirt
  - debvirt.cluster.converge
  - ansible.builtin.action_common_attributes
options:
  name:
    description: The pool's name, unique on the host.
    type: str
    required: true
  state:
    description:
      - V(present) defines the pool and starts it.
      - V(stopped) defines the pool and stops it.
      - V(absent) stops and undefines the pool. Its volumes and data stay unless
        O(delete_data=true).
    type: str
    choices: [present, stopped, absent]
    default: present
  type:
    description:
      - The pool type. Required unless O(state=absent); an existing pool's type cannot change.
      - V(dir) a directory; V(fs) a block device with a file system, mounted on O(target);
        V(logical) an LVM volume group; V(netfs) an NFS export mounted on O(target);
        V(iscsi) an iSCSI target through the kernel initiator; V(iscsi-direct) an iSCSI target
        through QEMU's own initiator (libiscsi); V(rbd) a Ceph RBD pool; V(zfs) a ZFS pool.
    type: str
    choices: [dir, fs, logical, netfs, iscsi, iscsi-direct, rbd, zfs]
  target:
    description:
      - The directory of the pool on the host (V(dir), V(fs), V(netfs), V(iscsi), and optionally
        V(logical) and V(zfs)).
    type: path
  permissions:
    description: Owner, group and mode of O(target), for V(dir), V(fs) and V(netfs) pools.
    type: dict
    suboptions:
      mode:
        description: An octal mode such as V(0711).
        type: str
      owner:
        description: A numeric user ID.
        type: int
      group:
        description: A numeric group ID.
        type: int
  source:
    description: Where the pool's storage comes from; which suboptions apply depends on O(type).
    type: dict
    suboptions:
      devices:
        description:
          - Block devices (V(fs), V(logical), V(zfs)), or the target IQN of an iSCSI target
            (V(iscsi), V(iscsi-direct)).
        type: list
        elements: str
      hosts:
        description:
          - Servers, as V(name) or V(name:port) (V([address]:port) for IPv6); the NFS server,
            the iSCSI portal or the Ceph monitors.
        type: list
        elements: str
      dir:
        description: The exported directory of an NFS server (V(netfs)).
        type: str
      name:
        description: The volume group (V(logical)), the Ceph pool (V(rbd)) or the ZFS pool (V(zfs)).
        type: str
      format:
        description: The file system (V(fs) such as V(ext4) or V(xfs), V(netfs) such as V(nfs)).
        type: str
      initiator:
        description: The initiator IQN (V(iscsi-direct) requires one).
        type: str
      auth:
        description:
          - Credentials, kept in a private libvirt secret that the pool refers to by its usage name.
          - CHAP for V(iscsi) and V(iscsi-direct), cephx for V(rbd).
        type: dict
        suboptions:
          username:
            description: The CHAP user or the Ceph client name (such as V(libvirt)).
            type: str
            required: true
          secret:
            description: The CHAP password or the Ceph key. It is rewritten only when it changes.
            type: str
            required: true
          usage:
            description: The secret's usage name. Default C(debvirt-pool-<name>).
            type: str
  autostart:
    description: Start the pool when libvirtd starts.
    type: bool
  build:
    description:
      - Build a new pool (and an inactive one before it starts) where that makes something -
        create its directory (V(dir), V(fs), V(netfs)), make its file system (V(fs)) or its volume
        group (V(logical)).
      - A device that already holds a file system or volume group is used as it is, never
        formatted over.
    type: bool
    default: true
  delete_data:
    description:
      - With O(state=absent), delete every volume of the pool and then the pool's own storage
        (its directory, volume group, ...). This destroys data.
      - Refused, before anything is touched, while any defined guest or container (running or
        not, QEMU or LXC driver) uses the pool, on this host or, on a cluster member, on any
        member; the refusal names them and their member. A member that is offline or cannot be
        asked refuses it too.
    type: bool
    default: false
notes:
  - On a host whose kernel lacks NFS, LVM device-mapper, iSCSI or Ceph, the pool of that type can
    be defined but not started.
seealso:
  - module: debvirt.cluster.storage_pool_info
  - module: debvirt.cluster.volume
"""

EXAMPLES = r"""
- name: A directory pool that starts with libvirtd
  debvirt.cluster.storage_pool:
    name: images
    type: dir
    target: /var/lib/libvirt/images
    autostart: true

- name: An ext4 file system on a disk, made if the disk is blank
  debvirt.cluster.storage_pool:
    name: fast
    type: fs
    source:
      devices: [/dev/sdb]
      format: ext4
    target: /srv/fast

- name: A Ceph RBD pool with its key in a libvirt secret
  debvirt.cluster.storage_pool:
    name: ceph
    type: rbd
    source:
      name: libvirt-pool
      hosts: [mon1.example.org, mon2.example.org:6789]
      auth:
        username: libvirt
        secret: "{{ vault_ceph_libvirt_key }}"

- name: Remove a pool, keeping its data
  debvirt.cluster.storage_pool:
    name: fast
    state: absent
"""

RETURN = r"""
pool:
  description:
    - The pool after the task, with its capacity, allocation and available space in bytes.
    - In check mode, and for O(state=absent), only the requested fields.
  returned: always
  type: dict
  sample:
    name: images
    uuid: 0f4b0c4e-9d1c-4a43-8a8e-3c2b8f0a1b2c
    type: dir
    target: /var/lib/libvirt/images
    state: running
    autostart: true
    persistent: true
    capacity: 107374182400
    allocation: 21474836480
    available: 85899345920
changes:
  description: What changed (or would change in check mode), in order.
  returned: always
  type: list
  elements: dict
  sample: [{action: update, target: target, before: /srv/a, after: /srv/b, needs_restart: true},
           {action: restart, target: storage pool images, before: running, after: running}]
"""

from ansible_collections.debvirt.cluster.plugins.module_utils._module import LibvirtModule
from ansible_collections.debvirt.cluster.plugins.module_utils._pool import (
    POOL_TYPES,
    converge_pool,
    request_from_params,
)
from ansible_collections.debvirt.cluster.plugins.module_utils._usage import Scope

AUTH = dict(username=dict(type="str", required=True), secret=dict(type="str", required=True, no_log=True),
            usage=dict(type="str"))
SOURCE = dict(
    devices=dict(type="list", elements="str"), hosts=dict(type="list", elements="str"),
    dir=dict(type="str"), name=dict(type="str"), format=dict(type="str"), initiator=dict(type="str"),
    auth=dict(type="dict", options=AUTH),
)
PERMISSIONS = dict(mode=dict(type="str"), owner=dict(type="int"), group=dict(type="int"))

ARGUMENT_SPEC = dict(
    name=dict(type="str", required=True),
    state=dict(type="str", choices=["present", "stopped", "absent"], default="present"),
    type=dict(type="str", choices=list(POOL_TYPES)),
    target=dict(type="path"),
    permissions=dict(type="dict", options=PERMISSIONS),
    source=dict(type="dict", options=SOURCE),
    autostart=dict(type="bool"),
    build=dict(type="bool", default=True),
    delete_data=dict(type="bool", default=False),
)


def main():
    module = LibvirtModule(ARGUMENT_SPEC, supports_check_mode=True,
                           required_if=[("state", "present", ["type"]), ("state", "stopped", ["type"])])
    module.run(lambda: converge_pool(module.client, request_from_params(module.params), module.check_mode,
                                     Scope.of(module)))


if __name__ == "__main__":
    main()
