# -*- coding: utf-8 -*-
# Copyright: debvirt.cluster developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The filters are a wrapper: the engine's answers pass through, its errors become Ansible's."""

from __future__ import annotations

import pytest

from ansible.errors import AnsibleFilterError
from ansible_collections.debvirt.cluster.plugins.filter.bridges import FilterModule
from ansible_collections.debvirt.cluster.plugins.module_utils import _interfaces

TEXT = 'auto eth0\niface eth0 inet static\n    address 192.0.2.11/24\n'
PROBE = 'ifupdown yes\nlink eth0 other\nifstate eth0\nvlan_filtering no\n'
VMBR0 = [{'name': 'vmbr0', 'ports': ['eth0']}]


@pytest.fixture
def filters():
    return FilterModule().filters()


def test_filters_are_registered(filters):
    assert set(filters) == {'bridge_plan', 'bridge_problems'}


def test_answers_are_the_engines(filters):
    plan = filters['bridge_plan'](TEXT, VMBR0, PROBE)
    assert plan == _interfaces.bridge_plan(TEXT, VMBR0, PROBE)
    assert plan['reasons'] == ['new bridge vmbr0 over eth0, taking over the addresses of eth0']
    vlan = [{'name': 'vmbr0', 'ports': ['eth0'], 'vlan_aware': True}]
    problems = filters['bridge_problems'](vlan, TEXT, PROBE)
    assert problems == _interfaces.bridge_problems(vlan, TEXT, PROBE)
    assert len(problems) == 1 and 'cannot filter VLANs' in problems[0]
    # Without the host's probe only the declaration is checked.
    assert filters['bridge_problems'](vlan) == []


def test_engine_errors_become_filter_errors_with_the_same_message(filters):
    with pytest.raises(AnsibleFilterError, match=r'^node_bridges: node_bridges: vmbr0 is declared 2 times$'):
        filters['bridge_plan'](TEXT, VMBR0 + VMBR0)
    with pytest.raises(AnsibleFilterError, match='^node_bridges must be a list of bridges, got str$'):
        filters['bridge_problems']('vmbr0')
