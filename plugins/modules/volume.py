#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: debvirt.cluster developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: volume
short_description: A volume in a libvirt storage pool - created, imported, cloned, grown, deleted
version_added: 0.1.0
description:
  - Creates a volume once, by name, and later only grows it.
  - Its content is empty (a new image of O(capacity)), an image imported from a local file or an
    http(s) URL verified by O(checksum), or a copy of another volume - a full copy, or a qcow2
    overlay that keeps the other volume as its backing store (O(linked=true)).
  - An existing volume is never overwritten. A request that contradicts it (another format,
    another backing store, a smaller O(capacity) without O(allow_shrink), content that does not
    match O(checksum)) fails and says so.
extends_documentation_fragment:
  - debvirt.cluster.libvirt
  - debvirt.cluster.converge
  - ansible.builtin.action_common_attributes
attributes:
  check_mode:
    details: A URL that is not cached yet is not downloaded in check mode.
options:
  name:
    description:
      - The volume's name in its pool (for a directory pool, its file name).
      - A name of letters, digits and C(_.+-:@), C(:) and C(@) not first, at most 255 characters; never C(/), C(.) or C(..).
    type: str
    required: true
  pool:
    description: The storage pool; it must be active.
    type: str
    required: true
  state:
    description:
      - V(present) creates the volume if it is missing and grows it to O(capacity).
      - V(absent) deletes the volume and its data. It is refused while a guest or container (QEMU
        or LXC driver, running or not) has the volume as a disk, or another volume has it as its
        backing store. On a cluster member, every member's guests and containers are asked too
        (the refusal names the member); a member that is offline or cannot be asked refuses the
        deletion, check mode too.
    type: str
    choices: [present, absent]
    default: present
  capacity:
    description:
      - The size the guest sees, such as V(10G) or V(512MiB) (powers of 1024).
      - Required to create an empty volume. An existing volume smaller than this grows.
    type: str
  allocation:
    description: Space allocated up front when an empty volume is created; V(0) (the default) is sparse.
    type: str
  format:
    description:
      - The image format. V(qcow2) for a new empty volume when not given; an imported image keeps
        the format its header shows; a full clone keeps its source's.
      - An existing volume's format is never converted.
    type: str
    choices: [qcow2, raw]
  import_from:
    description:
      - An image to fill the new volume with - an absolute path on the host or an http(s) URL.
      - A URL is downloaded once into O(cache_dir), verified against O(checksum), and reused.
    type: str
  checksum:
    description:
      - V(ALGORITHM:HEX) such as V(sha256:9f86d0...); required for a URL.
      - The import is refused when the image does not match. For an existing volume, the
        checksum it was imported with (or its content) must match; it is never re-imported.
    type: str
  cache_dir:
    description: Where downloads are kept, named by their checksum, with the record of imports.
    type: path
    default: /var/cache/debvirt/images
  validate_certs:
    description: Verify the server's TLS certificate for an https URL.
    type: bool
    default: true
  timeout:
    description: Seconds to wait for the server of a URL.
    type: int
    default: 60
  clone_from:
    description: Another volume to copy, in the same pool or given as V(pool/volume).
    type: str
  linked:
    description:
      - Make the new volume a qcow2 overlay of O(clone_from) instead of a full copy. It is created
        at once and shares the base's data; the base must then stay as it is.
    type: bool
    default: false
  allow_shrink:
    description: Let O(capacity) shrink an existing volume. Data beyond the new size is lost.
    type: bool
    default: false
  wipe:
    description: With O(state=absent), overwrite the volume's data before deleting it.
    type: bool
    default: false
seealso:
  - module: debvirt.cluster.storage_pool
  - module: debvirt.cluster.guest
"""

EXAMPLES = r"""
- name: A base image, downloaded once and verified
  debvirt.cluster.volume:
    name: debian-12-base.qcow2
    pool: images
    import_from: https://cloud.debian.org/images/cloud/bookworm/latest/debian-12-generic-amd64.qcow2
    checksum: "sha512:{{ debian_image_sha512 }}"

- name: A guest's root disk as a 20G overlay of that base
  debvirt.cluster.volume:
    name: web01-root.qcow2
    pool: images
    clone_from: debian-12-base.qcow2
    linked: true
    capacity: 20G

- name: An empty data disk, later grown to 200G
  debvirt.cluster.volume:
    name: web01-data.qcow2
    pool: images
    capacity: 200G

- name: Delete a volume, overwriting its data first
  debvirt.cluster.volume:
    name: old-data.raw
    pool: images
    state: absent
    wipe: true
"""

RETURN = r"""
volume:
  description:
    - The volume after the task, sizes in bytes. In check mode, and for O(state=absent), the
      requested fields.
  returned: always
  type: dict
  sample:
    name: web01-root.qcow2
    pool: images
    path: /var/lib/libvirt/images/web01-root.qcow2
    format: qcow2
    capacity: 21474836480
    allocation: 200704
    backing_store: /var/lib/libvirt/images/debian-12-base.qcow2
changes:
  description: What changed (or would change in check mode), in order.
  returned: always
  type: list
  elements: dict
  sample: [{action: update, target: capacity, before: 10737418240, after: 21474836480}]
"""

from ansible_collections.debvirt.cluster.plugins.module_utils._module import LibvirtModule
from ansible_collections.debvirt.cluster.plugins.module_utils._usage import Scope
from ansible_collections.debvirt.cluster.plugins.module_utils._volume import (
    DEFAULT_CACHE,
    converge_volume,
    volume_request_from_params,
)

ARGUMENT_SPEC = dict(
    name=dict(type="str", required=True),
    pool=dict(type="str", required=True),
    state=dict(type="str", choices=["present", "absent"], default="present"),
    capacity=dict(type="str"),
    allocation=dict(type="str"),
    format=dict(type="str", choices=["qcow2", "raw"]),
    import_from=dict(type="str"),
    checksum=dict(type="str"),
    cache_dir=dict(type="path", default=DEFAULT_CACHE),
    validate_certs=dict(type="bool", default=True),
    timeout=dict(type="int", default=60),
    clone_from=dict(type="str"),
    linked=dict(type="bool", default=False),
    allow_shrink=dict(type="bool", default=False),
    wipe=dict(type="bool", default=False),
)


def main():
    module = LibvirtModule(ARGUMENT_SPEC, supports_check_mode=True,
                           mutually_exclusive=[("import_from", "clone_from")])
    module.run(lambda: converge_volume(module.client, volume_request_from_params(module.params),
                                       module.check_mode, Scope.of(module)))


if __name__ == "__main__":
    main()
