#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: debvirt.cluster developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: storage_pool_info
short_description: The storage pools of a host, with their space and volumes
version_added: 0.1.0
description:
  - Lists every storage pool on a host, or those named, with the fields
    M(debvirt.cluster.storage_pool) manages, its state, capacity, allocation and available space,
    and the volumes of active pools.
extends_documentation_fragment:
  - debvirt.cluster.libvirt
  - debvirt.cluster.info
  - debvirt.cluster.info.names
  - ansible.builtin.action_common_attributes
options:
  volumes:
    description: List the volumes of each active pool.
    type: bool
    default: true
seealso:
  - module: debvirt.cluster.storage_pool
  - module: debvirt.cluster.volume
"""

EXAMPLES = r"""
- name: All pools of the host
  debvirt.cluster.storage_pool_info:
  register: pools

- name: Free space of the images pool, in GiB
  ansible.builtin.debug:
    msg: "{{ (pools.pools | selectattr('name', '==', 'images') | first).available // 1024 ** 3 }}"
"""

RETURN = r"""
pools:
  description: The pools, sorted by name; sizes in bytes.
  returned: always
  type: list
  elements: dict
  sample:
    - name: images
      uuid: 0f4b0c4e-9d1c-4a43-8a8e-3c2b8f0a1b2c
      type: dir
      target: /var/lib/libvirt/images
      state: running
      autostart: true
      persistent: true
      capacity: 107374182400
      allocation: 21474836480
      available: 85899345920
      volumes:
        - {name: base.qcow2, path: /var/lib/libvirt/images/base.qcow2, format: qcow2,
           capacity: 2147483648, allocation: 351272960}
"""

from ansible_collections.debvirt.cluster.plugins.module_utils._module import INFO_NAMES, run_info
from ansible_collections.debvirt.cluster.plugins.module_utils._pool import list_pools


def main():
    run_info(dict(INFO_NAMES, volumes=dict(type="bool", default=True)),
             lambda m: {"pools": list_pools(m.client, m.params["name"], m.params["volumes"])})


if __name__ == "__main__":
    main()
