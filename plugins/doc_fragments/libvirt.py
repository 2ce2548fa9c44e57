# -*- coding: utf-8 -*-
# Copyright: debvirt.cluster developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations


class ModuleDocFragment:
    DOCUMENTATION = r"""
options:
  uri:
    description:
      - The libvirt connection URI.
      - The default is the host's system instance of the QEMU driver.
    type: str
    default: qemu:///system
requirements:
  - libvirt-python (Debian package C(python3-libvirt)) on the managed host
  - lxml (Debian package C(python3-lxml)) on the managed host
"""
