#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: debvirt.cluster developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: guest
short_description: A KVM/QEMU virtual machine, declared and converged
version_added: 0.1.0
description:
  - Creates a virtual machine through libvirt and, later, converges it to the same spec.
  - Only the options you set are compared; everything libvirt generated (UUID, MAC addresses,
    PCI addresses, NVRAM) is kept.
  - Disks and interfaces are hot-plugged into a running guest. Changes that a running guest can
    only see after a restart go into its persistent definition and the result says
    O(restart) would apply them (RV(reboot_required)).
extends_documentation_fragment:
  - debvirt.cluster.libvirt
  - debvirt.cluster.placement
  - debvirt.cluster.converge
  - ansible.builtin.action_common_attributes
options:
  name:
    description: The guest's name, unique on the host (in a cluster, unique in the cluster).
    type: str
    required: true
  state:
    description:
      - V(present) defines the guest and leaves it as it runs (a new guest stays off).
      - V(running), V(stopped) and V(paused) also set its run state; V(running) implies V(present).
      - V(absent) stops and undefines the guest with its NVRAM and snapshot metadata. Its disks
        stay, unless O(remove_storage) is set.
    type: str
    choices: [present, running, stopped, paused, absent]
    default: present
  autostart:
    description: Start the guest when the host boots.
    type: bool
  virt_type:
    description:
      - V(auto) uses KVM where the host can run it and QEMU emulation (slow) otherwise, with a
        warning. It only applies when the guest is created.
    type: str
    choices: [auto, kvm, qemu]
    default: auto
  memory:
    description:
      - Memory in MiB. 1024 when a guest is created without it.
      - A running guest's memory changes live up to O(max_memory).
    type: int
  max_memory:
    description: The most memory in MiB the guest may be given live. Defaults to O(memory).
    type: int
  vcpus:
    description:
      - Virtual CPUs. 1 when a guest is created without it.
      - A running guest gains vCPUs live up to O(max_vcpus).
      - At most what the machine type takes (C(maxCpus) in C(virsh capabilities); with QEMU 7.2,
        255 for V(pc) and 288 for V(q35)).
    type: int
  max_vcpus:
    description: The most vCPUs the guest may be given live. Defaults to O(vcpus). Bounded as O(vcpus) is.
    type: int
  cpu_mode:
    description: The CPU model mode. O(cpu_model) implies V(custom).
    type: str
    choices: [host-passthrough, host-model, custom]
  cpu_model:
    description:
      - A named CPU model, such as V(Skylake-Server) or V(qemu64), one that
        C(virsh domcapabilities) lists for the guest's O(virt_type).
    type: str
  machine:
    description:
      - The machine type, such as V(q35) or V(pc), one that C(virsh capabilities) lists; aliases
        match their canonical names.
    type: str
  firmware:
    description: V(uefi) gives the guest OVMF and its own NVRAM, kept for the guest's life.
    type: str
    choices: [bios, uefi]
  disks:
    description:
      - The guest's disks, all of them. A disk missing from the list is detached, never deleted.
      - A disk is the same disk when its O(disks[].target) or its source matches.
    type: list
    elements: dict
    suboptions:
      path:
        description: A file or block device on the host, as an absolute path.
        type: path
      pool:
        description: The storage pool of O(disks[].volume).
        type: str
      volume:
        description:
          - A volume in O(disks[].pool); created when missing and O(disks[].size) is set.
          - A name of letters, digits and C(_.+-:@), C(:) and C(@) not first, at most 255 characters; never C(/), C(.) or C(..).
        type: str
      size:
        description:
          - Creates the volume with this size when it does not exist, such as V(10G) or V(512MiB).
          - An existing volume is never resized or overwritten.
        type: str
      format:
        description: The image format; defaults to the volume's format, or V(qcow2) for new volumes.
        type: str
        choices: [qcow2, raw]
      device:
        description: V(cdrom) for an ISO image.
        type: str
        choices: [disk, cdrom]
        default: disk
      bus:
        description: V(virtio) and V(scsi) disks can be hot-plugged. Default V(virtio), V(sata) for CD-ROMs.
        type: str
        choices: [virtio, sata, scsi, ide, usb]
      target:
        description: The device name in the guest, such as V(vdb); the next free one by default.
        type: str
      cache:
        description: The host cache mode.
        type: str
        choices: [none, writethrough, writeback, directsync, unsafe, default]
      readonly:
        description: Attach read-only (CD-ROMs always are).
        type: bool
      boot_order:
        description: This disk's place in the boot order (1 first); no two disks share one.
        type: int
  interfaces:
    description:
      - The guest's network interfaces, all of them. A MAC address that you do not give is
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
      model:
        description: The NIC model, such as V(e1000e); V(virtio) for new interfaces.
        type: str
      mac:
        description: A fixed MAC address.
        type: str
  cloud_init:
    description:
      - A NoCloud seed for cloud-init, built on the host as an ISO and attached as a CD-ROM.
      - It is rebuilt only when its content changes. The task must run on the host itself.
    type: dict
    suboptions:
      user_data:
        description:
          - The user-data; a dict is written as cloud-config.
          - It is secret (no_log), as passwords, their hashes and keys live there. Ansible hides each
            string and number of a dict wherever it appears in the task's result, so a short or
            common one (a user name, a package name, C(2)) is masked in every other field that
            contains it too. With a user named C(admin) in it, a field reading C(admin@example.org)
            reads C(********@example.org); with a number 2 in it, a memory of 128 reads
            C(VALUE_SPECIFIED_IN_NO_LOG_PARAMETER). Give the user-data as one string instead (a
            C(#cloud-config) document, for example C(config | to_nice_yaml) after a first line
            C(#cloud-config)), and only that whole text is hidden.
        type: raw
      meta_data:
        description: The meta-data; default gives the guest's name as instance-id and hostname.
        type: raw
      network_config:
        description:
          - The network-config (version 1 or 2).
          - It is not secret and appears in the result and the log; keep keys and passwords in
            O(cloud_init.user_data).
        type: raw
      path:
        description:
          - Where the seed ISO goes, in a directory that exists on the host. Default
            C(/var/lib/libvirt/images/<name>-cidata.iso).
          - The module marks each seed it makes as this guest's (the ISO's application identifier
            carries a digest of the guest's name) and replaces only its own seed of this guest. A file there that it did not
            make, a symlink, or anything else than a regular file is refused, in check mode too,
            and never overwritten.
        type: path
  kernel:
    description: A kernel on the host for direct kernel boot.
    type: path
  initrd:
    description: An initrd for O(kernel).
    type: path
  cmdline:
    description: The kernel command line for O(kernel).
    type: str
  serial_log:
    description:
      - A serial console whose output is also written to this file on the host, in a directory
        that exists there.
    type: path
  graphics:
    description: A graphical console.
    type: dict
    suboptions:
      type:
        description: V(none) removes it.
        type: str
        choices: [vnc, spice, none]
        required: true
      listen:
        description:
          - The address it listens on, an IP address or a host name.
          - A console on any address but loopback (C(127.0.0.1), C(::1), C(localhost)) without a
            O(graphics.password) gives whoever reaches that address the guest's keyboard and
            screen; the module warns, in check mode too, unless O(graphics.insecure_ok) is set.
        type: str
        default: 127.0.0.1
      port:
        description: A fixed port, from 5900 for VNC; chosen by libvirt when not given.
        type: int
      password:
        description: The console password; for VNC at most 8 characters (libvirt's limit), for SPICE any length.
        type: str
      insecure_ok:
        description:
          - Accept a console on a non-loopback O(graphics.listen) address without a password
            (on a network only trusted hosts reach, say), and so silence the module's warning.
          - Not part of the guest's definition; the fleet's items take it too.
        type: bool
        default: false
  description:
    description: Free text kept in the guest's metadata.
    type: str
  tags:
    description: Free-form tags kept in the guest's metadata; the inventory groups by them.
    type: list
    elements: str
  restart:
    description: Restart a running guest gracefully when a change needs it.
    type: bool
    default: false
  force:
    description: Power the guest off when it does not shut down within O(shutdown_timeout).
    type: bool
    default: false
  shutdown_timeout:
    description: Seconds to wait for a graceful (ACPI) shutdown.
    type: int
    default: 120
  remove_storage:
    description:
      - With O(state=absent), also delete the volumes this module created for the guest and its
        cloud-init seed, but only those still among the guest's disks and used by no other guest
        or container on the host's QEMU and LXC drivers (on a cluster member, on every member's);
        the others are kept, with a warning naming who has them and where. With such a volume to
        check, a member that is offline or cannot be asked fails the task before anything is
        touched. Other disks are never deleted. A file at the seed's path that is not the seed
        the module made for this guest is kept, with a warning.
    type: bool
    default: false
notes:
  - In a sandbox where KVM is not usable, set O(virt_type=qemu).
seealso:
  - module: debvirt.cluster.guest_info
"""

EXAMPLES = r"""
- name: A Debian guest with a new 20G disk on the default network
  debvirt.cluster.guest:
    name: web01
    state: running
    memory: 2048
    vcpus: 2
    disks:
      - pool: default
        volume: web01-root.qcow2
        size: 20G
    interfaces:
      - network: default
    cloud_init:
      user_data:
        users:
          - name: admin
            ssh_authorized_keys: ["ssh-ed25519 AAAA..."]
    tags: [web, production]

- name: Add a second disk (hot-plugged) and more memory (applied at the next restart)
  debvirt.cluster.guest:
    name: web01
    memory: 4096
    disks:
      - pool: default
        volume: web01-root.qcow2
      - pool: default
        volume: web01-data.qcow2
        size: 100G
    restart: true

- name: Remove the guest and the volumes it created
  debvirt.cluster.guest:
    name: web01
    state: absent
    force: true
    remove_storage: true
"""

RETURN = r"""
guest:
  description: The guest after the task (in check mode, as it would be).
  returned: unless O(state=absent)
  type: dict
  sample:
    name: web01
    uuid: 6a3c1f0e-2f43-4d5c-9b7e-1f0a6c2d9e11
    state: running
    memory: 2048
    vcpus: 2
    disks: [{target: vda, pool: default, volume: web01-root.qcow2, format: qcow2, bus: virtio, device: disk}]
    interfaces: [{network: default, model: virtio, mac: "52:54:00:12:34:56"}]
    tags: [production, web]
changes:
  description: What changed (or would change in check mode), in order.
  returned: always
  type: list
  elements: dict
  sample: [{action: update, target: memory, before: 2048, after: 4096, needs_restart: true}]
node:
  description: The member the guest is on after the task (in check mode, would be on).
  returned: when O(node) is given and O(state) is not V(absent)
  type: str
  sample: node2
migrated:
  description:
    - The move to O(node) (in check mode, the one that would be made), from the member that had
      the guest; the move's own steps lead RV(changes).
    - C(time_elapsed_ms) and C(downtime_ms) as libvirt measured them (for a container, as this
      module measured its stop, copy and start); not in check mode.
  returned: when the guest was (or would be) moved
  type: dict
  sample: {from: node1, to: node2, mode: live, time_elapsed_ms: 2130, downtime_ms: 41}
removed_from:
  description: The members the guest was removed from, with O(node) and O(state=absent).
  returned: when O(node) is given and O(state=absent)
  type: list
  elements: str
  sample: [node1]
reboot_required:
  description: Some changes wait for the guest's next restart.
  returned: always
  type: bool
"""

from ansible_collections.debvirt.cluster.plugins.module_utils._guest import GUEST
from ansible_collections.debvirt.cluster.plugins.module_utils._module import LibvirtModule
from ansible_collections.debvirt.cluster.plugins.module_utils._placement import converge_module

# node is the module's alone: a fleet runs on the node its guests belong to.
ARGUMENT_SPEC = dict(GUEST.argument_spec, node=dict(type="str"))


def main():
    module = LibvirtModule(ARGUMENT_SPEC, supports_check_mode=True)
    module.run(lambda: converge_module(GUEST, module))


if __name__ == "__main__":
    main()
