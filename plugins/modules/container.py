#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: debvirt.cluster developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: container
short_description: An LXC system or application container through libvirt, declared and converged
version_added: 0.1.0
description:
  - Creates a container through libvirt's LXC driver and, later, converges it to the same spec.
  - Its root filesystem is an existing directory, or is made once from a Debian release
    (built with debootstrap into a cached template, then copied) or from an image tarball.
    An existing root filesystem is never overwritten.
  - Containers are unprivileged by default, with the container's IDs mapped into a subordinate
    range of the host's root (C(/etc/subuid), C(/etc/subgid)); a root filesystem this module
    makes is owned by that range.
  - The host name and the interfaces' addresses are written into the root filesystem in the
    format the image uses (C(/etc/network/interfaces) for ifupdown, or C(.network) files for
    systemd-networkd).
  - Only the options you set are compared. Changes a running container only sees after a
    restart are written to its definition and reported with RV(reboot_required).
extends_documentation_fragment:
  - debvirt.cluster.libvirt
  - debvirt.cluster.placement
  - debvirt.cluster.converge
  - ansible.builtin.action_common_attributes
options:
  uri:
    description:
      - The libvirt connection URI; it must be local, since the root filesystem is on the host.
    type: str
    default: lxc:///system
  name:
    description: The container's name, unique on the host.
    type: str
    required: true
  state:
    description:
      - V(present) defines the container and leaves it as it runs (a new container stays stopped).
      - V(running), V(stopped) and V(frozen) also set its run state.
      - V(absent) stops and undefines the container. Its root filesystem stays, unless
        O(remove_storage) is set.
    type: str
    choices: [present, running, stopped, frozen, absent]
    default: present
  autostart:
    description: Start the container when the host boots.
    type: bool
  rootfs:
    description:
      - The root filesystem. Without a source, O(rootfs.path) must already hold one.
      - With a source, it is made only when O(rootfs.path) is missing or empty.
      - Or a raw volume of a storage pool (O(rootfs.pool), O(rootfs.volume)) that holds a
        filesystem with the root filesystem in it, mounted through a loop device.
    type: dict
    suboptions:
      path:
        description:
          - Where the root filesystem is on the host.
          - Default C(/var/lib/debvirt/containers/<name>/rootfs), or where an existing container has it.
        type: path
      debian:
        description:
          - A Debian release, such as V(bookworm), built once with debootstrap into
            C(/var/cache/debvirt/templates/debian-<release>-<arch>) and copied from there.
          - The template is a minimal system with systemd and ifupdown.
        type: str
      mirror:
        description:
          - The Debian mirror debootstrap uses for O(rootfs.debian), an http(s):// or file:// URL;
            default C(http://deb.debian.org/debian).
        type: str
      image:
        description:
          - A root filesystem tarball (compressed or not), as a path on the host or an http(s) URL.
          - A URL is downloaded once into C(/var/cache/debvirt/images) and needs O(rootfs.checksum).
        type: str
      checksum:
        description: The image's checksum as V(sha256:HEX) (also sha384, sha512).
        type: str
      pool:
        description: The storage pool of O(rootfs.volume).
        type: str
      volume:
        description:
          - An existing raw volume (or block device volume) in O(rootfs.pool) holding the root
            filesystem. It is never created, written or deleted by this module.
          - Only for O(privileged=true) containers; libvirt's LXC driver cannot loop-mount a
            root filesystem in a user namespace. O(hostname) and O(interfaces[].address) cannot
            be written into it.
          - A name of letters, digits and C(_.+-:@), C(:) and C(@) not first, at most 255 characters; never C(/), C(.) or C(..).
        type: str
  privileged:
    description:
      - Run the container without a user namespace, its root being the host's root.
      - New containers are unprivileged unless this is V(true). It cannot change later.
    type: bool
  idmap:
    description:
      - The host IDs the container's IDs 0 and up map to, in a subordinate range of root.
      - Default is the first range of root in C(/etc/subuid) and C(/etc/subgid), at most 65536 IDs.
      - It cannot change later.
    type: dict
    suboptions:
      uid:
        description: The host UID of the container's root.
        type: int
        required: true
      gid:
        description: The host GID of the container's root group; default O(idmap.uid).
        type: int
      count:
        description: How many IDs are mapped.
        type: int
        default: 65536
  command:
    description:
      - The program and its arguments that run as the container's first process.
      - Default C(/sbin/init), the container's own init (a system container). Any other command
        makes an application container.
    type: list
    elements: str
  memory:
    description:
      - The memory limit in MiB. 512 when a container is created without it.
      - Lowering it applies live; raising it at the next restart.
    type: int
  vcpus:
    description:
      - How many host CPUs' worth of time the container may use (a CFS quota). 1 when a
        container is created without it. Applies live.
      - At most 8192, the most CPUs a Linux host has.
    type: int
  cpu_shares:
    description: The container's CPU weight against others (C(cpu.shares)). Applies live.
    type: int
  interfaces:
    description:
      - The container's network interfaces, all of them. A MAC address that you do not give is
        generated once by libvirt and kept on every later run.
    type: list
    elements: dict
    suboptions:
      network:
        description: A libvirt network.
        type: str
      bridge:
        description: A bridge on the host, by its Linux interface name (at most 15 characters).
        type: str
      mac:
        description: A fixed MAC address.
        type: str
      name:
        description:
          - The interface's name in the container, a Linux interface name (at most 15 characters);
            the next free C(ethN) by default.
        type: str
      address:
        description:
          - V(dhcp), or a static address with its prefix, such as V(192.0.2.10/24).
          - Written into the root filesystem; unset leaves its network configuration alone.
        type: str
      gateway:
        description: The default gateway, with a static O(interfaces[].address).
        type: str
  hostname:
    description:
      - The host name written to C(/etc/hostname). A new system container gets its name.
      - At most 64 characters, the kernel's limit.
    type: str
  mounts:
    description:
      - Host directories bind-mounted into the container, all of them. A mount missing from
        the list is removed from the definition; its directory is never touched.
    type: list
    elements: dict
    suboptions:
      source:
        description: The directory on the host.
        type: path
        required: true
      target:
        description: Where it appears in the container.
        type: path
        required: true
      readonly:
        description: Mount it read-only.
        type: bool
        default: false
  description:
    description: Free text kept in the container's metadata.
    type: str
  tags:
    description: Free-form tags kept in the container's metadata.
    type: list
    elements: str
  restart:
    description: Restart a running container when a change needs it.
    type: bool
    default: false
  force:
    description:
      - Stop the container forcibly when it does not stop within O(shutdown_timeout).
      - Application containers rarely stop on request, so they usually need this.
    type: bool
    default: false
  shutdown_timeout:
    description: Seconds to wait for the container to stop by itself.
    type: int
    default: 60
  remove_storage:
    description:
      - With O(state=absent), also delete the root filesystem, but only one this module made, at
        the path where it made it, never crossing into a mounted file system (refused while
        something is mounted in it). An existing directory given as the root filesystem is never
        deleted.
    type: bool
    default: false
notes:
  - The task must run on the container's host. With O(node) that is the member O(node) names
    (except for O(state=absent)); a container that another member has is moved here by its
    restart move, then converged. Check mode then reports the move's steps only; what the
    convergence changes after it shows on the next run.
  - Unprivileged containers need a subordinate ID range for root; the C(debvirt.cluster.node)
    role adds one.
seealso:
  - module: debvirt.cluster.container_info
  - module: debvirt.cluster.guest
"""

EXAMPLES = r"""
- name: A Debian container with a static address
  debvirt.cluster.container:
    name: web01
    state: running
    rootfs:
      debian: bookworm
    memory: 1024
    vcpus: 2
    interfaces:
      - network: default
        address: 192.168.122.50/24
        gateway: 192.168.122.1
    mounts:
      - source: /srv/web01/data
        target: /srv/data
    autostart: true

- name: An application container from an image
  debvirt.cluster.container:
    name: app01
    state: running
    rootfs:
      image: https://images.example.org/app-rootfs.tar.xz
      checksum: sha256:0d4f3e2a7c8b9e1f2a3b4c5d6e7f8091a2b3c4d5e6f708192a3b4c5d6e7f8091
    command: [/usr/bin/app, --listen, "0.0.0.0:8080"]
    interfaces:
      - network: default
        address: dhcp

- name: Freeze it
  debvirt.cluster.container:
    name: app01
    state: frozen

- name: Remove it with the root filesystem this module made
  debvirt.cluster.container:
    name: app01
    state: absent
    force: true
    remove_storage: true
"""

RETURN = r"""
container:
  description: The container after the task (in check mode, as it would be).
  returned: unless O(state=absent)
  type: dict
  sample:
    name: web01
    uuid: 0b6f2d4e-5c7a-4e1b-9a3f-6d2c1e0f9a8b
    kind: container
    state: running
    autostart: true
    memory: 1024
    vcpus: 2
    command: [/sbin/init]
    privileged: false
    idmap: {uid: 100000, gid: 100000, count: 65536}
    rootfs: /var/lib/debvirt/containers/web01/rootfs
    hostname: web01
    interfaces:
      - {network: default, mac: "52:54:00:3a:1b:2c", dev: eth0, address: 192.168.122.50/24, gateway: 192.168.122.1}
    mounts: [{source: /srv/web01/data, target: /srv/data, readonly: false}]
    tags: []
changes:
  description: What changed (or would change in check mode), in order.
  returned: always
  type: list
  elements: dict
  sample: [{action: update, target: memory, before: 512, after: 1024, needs_restart: true}]
node:
  description: The member the container is on after the task (in check mode, would be on).
  returned: when O(node) is given and O(state) is not V(absent)
  type: str
  sample: node2
migrated:
  description:
    - The move to O(node) (in check mode, the one that would be made), from the member that had
      the container; the move's own steps lead RV(changes).
    - C(time_elapsed_ms) and C(downtime_ms) as libvirt measured them (for a container, as this
      module measured its stop, copy and start); not in check mode.
  returned: when the container was (or would be) moved
  type: dict
  sample: {from: node1, to: node2, mode: live, time_elapsed_ms: 2130, downtime_ms: 41}
removed_from:
  description: The members the container was removed from, with O(node) and O(state=absent).
  returned: when O(node) is given and O(state=absent)
  type: list
  elements: str
  sample: [node1]
reboot_required:
  description: Some changes wait for the container's next restart.
  returned: always
  type: bool
"""

from ansible_collections.debvirt.cluster.plugins.module_utils._container import CONTAINER
from ansible_collections.debvirt.cluster.plugins.module_utils._module import LibvirtModule
from ansible_collections.debvirt.cluster.plugins.module_utils._placement import converge_module

# The container's own options are _container's, shared with the fleet's container items.
ARGUMENT_SPEC = dict(CONTAINER.argument_spec, uri=dict(type="str", default="lxc:///system"), node=dict(type="str"))


def main():
    module = LibvirtModule(ARGUMENT_SPEC, supports_check_mode=True)
    module.run(lambda: converge_module(CONTAINER, module))


if __name__ == "__main__":
    main()
