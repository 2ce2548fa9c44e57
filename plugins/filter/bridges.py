# -*- coding: utf-8 -*-
# Copyright: debvirt.cluster developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filters bridge_problems and bridge_plan, for role node, over module_utils/_interfaces.py."""

from __future__ import annotations

from ansible.errors import AnsibleFilterError

from ansible_collections.debvirt.cluster.plugins.module_utils import _interfaces
from ansible_collections.debvirt.cluster.plugins.module_utils._errors import DebvirtError


def bridge_problems(bridges, interfaces_text='', probe_text=None):
    """Every reason not to go on, as sentences; [] when the declaration can be applied."""
    try:
        return _interfaces.bridge_problems(bridges, interfaces_text, probe_text)
    except DebvirtError as e:
        # The engine's message is the whole story: Ansible would append a chained cause to it.
        raise AnsibleFilterError(e.msg) from None


def bridge_plan(interfaces_text, bridges, probe_text=None):
    """The edited /etc/network/interfaces and how to get there (see _interfaces.bridge_plan)."""
    try:
        return _interfaces.bridge_plan(interfaces_text, bridges, probe_text)
    except DebvirtError as e:
        raise AnsibleFilterError(e.msg) from None


class FilterModule:
    """Linux bridges in /etc/network/interfaces."""

    def filters(self):
        return {
            'bridge_problems': bridge_problems,
            'bridge_plan': bridge_plan,
        }
