# -*- coding: utf-8 -*-
# Copyright: debvirt.cluster developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations


class ModuleDocFragment:
    # What every module of the collection shares: the connection, what it needs on the host,
    # who wrote it.
    DOCUMENTATION = r"""
options:
  uri:
    description:
      - The libvirt connection URI.
      - The default is the host's system instance of the QEMU driver.
    type: str
    default: qemu:///system
  connect_timeout:
    description:
      - Seconds libvirtd may take to answer, to open the connection and for every call after it.
      - A daemon that is stopped or hung fails the task with a message saying so once this time
        has passed, instead of leaving it waiting; libvirt's keepalive finds a daemon that stops
        answering during the task. Work that libvirtd does while it answers, such as a long
        migration, is not bounded by it.
      - At least V(1); a smaller value fails the task before anything is touched.
    type: int
    default: 30
requirements:
  - libvirt-python (Debian package C(python3-libvirt)) on the managed host
  - lxml (Debian package C(python3-lxml)) on the managed host
author:
  - debvirt.cluster developers (@debvirt)
"""
