# -*- coding: utf-8 -*-
# Copyright: debvirt.cluster developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A fleet in the cluster, on the lab's first three nodes A, B and C: one cluster-wide list with
purge on, handed to every node (as role guests does), declaring a heartbeat guest for B. Uses only
objects named dvtest-fl-*; never changes membership. The tests build on each other, in file order:

1. the fleet on every node: the guest is made and started on B only; a rerun is changed=0
2. B is evacuated (the guest goes live to A) and the fleet runs on every node again: nothing
   is re-created on the drained B, nothing is purged on A; the guest runs on A alone, the same
   guest (UUID, no second boot)
3. restored to B, the fleet on every node is changed=0
4. moved by hand to C (module guest with node: C) while B is not drained: the fleet on every
   node moves it back to B, live; a rerun is changed=0
"""

from __future__ import annotations

import json

import pytest

from guests import booted_on, defined_on, three_members
from harness import heartbeat_spec

HB = 'dvtest-fl-hb'
FLEET = 'dvtest-fl'
RECORD = '/etc/ansible/facts.d/debvirt_evacuated.fact'


def forget_drain(node):
    node.run('rm -f %s; crm_attribute --node %s --name debvirt-drained --delete --lifetime forever '
             '>/dev/null 2>&1 || true' % (RECORD, node.name))


@pytest.fixture(scope='module')
def abc(lab, images, module_cleanup):
    """A, B and C, nothing of this test's left before or after, no node drained."""
    return three_members(lab, images, module_cleanup, 'dvtest-fl-', ((1, 0), (0, 1), (2, 1), (1, 2)),
                         reset=forget_drain)


def fleet(lab, nodes, check=False):
    """The one cluster-wide list on every node, each naming itself; {node: result}."""
    item = dict(heartbeat_spec(HB, state='running'), node=nodes[1].name)
    args = {'guests': [item], 'fleet': FLEET, 'purge': True, 'node': '{{ inventory_hostname }}'}
    return lab.module(nodes, 'fleet', args, check=check)


def changed(results):
    assert not any(r['failed'] for r in results.values()), results
    return sorted(h for h, r in results.items() if r.get('changed'))


def uuid(node):
    return node.out('virsh domuuid %s' % HB)


# --- 1. made on the node it is declared for -------------------------------------------------------

def test_fleet_makes_the_guest_on_its_node_only(lab, abc):
    a, b, c = abc
    assert changed(fleet(lab, abc)) == [b.name]
    assert lab.where(HB, nodes=abc) == {b.name: 'running'}
    assert b.wait_log(HB, 'heartbeat 2', 90), 'no heartbeat on %s' % b
    assert changed(fleet(lab, abc)) == []


# --- 2. evacuated: nothing re-created, nothing purged ----------------------------------------------

@pytest.fixture(scope='module')
def evacuated(lab, abc):
    a, b, _c = abc
    before = uuid(b)
    play = lab.playbook('debvirt.cluster.evacuate', '-e', json.dumps(
        dict(evacuate_node=b.name, evacuate_targets=[a.name], evacuate_guests=[HB])))
    assert play.ok, play
    assert lab.where(HB, nodes=abc) == {a.name: 'running'}
    return before


def test_fleet_on_every_node_after_an_evacuation_leaves_the_guest_where_it_went(lab, abc, evacuated):
    a, b, _c = abc
    last = a.last_beat(HB) or 0
    results = fleet(lab, abc)
    assert changed(results) == []
    assert results[b.name]['elsewhere'] == {HB: a.name}, results[b.name]
    assert results[a.name]['purged'] == [] and results[a.name]['undeclared'] == []
    assert lab.where(HB, nodes=abc) == {a.name: 'running'}
    assert uuid(a) == evacuated
    assert a.counting(HB, last, 30), 'the guest stopped counting on %s' % a
    assert not booted_on(a, HB), 'the guest booted again on %s' % a


def test_check_mode_after_an_evacuation_predicts_nothing(lab, abc, evacuated):
    assert changed(fleet(lab, abc, check=True)) == []


# --- 3. restored ---------------------------------------------------------------------------------

def test_restored_the_fleet_is_changed_0(lab, abc, evacuated):
    a, b, _c = abc
    play = lab.playbook('debvirt.cluster.restore', '-e', json.dumps(
        dict(evacuate_node=b.name, evacuate_guests=[HB])))
    assert play.ok, play
    assert lab.where(HB, nodes=abc) == {b.name: 'running'}
    assert changed(fleet(lab, abc)) == []


# --- 4. moved by hand: the fleet brings it back ------------------------------------------------------

def test_moved_by_hand_the_fleet_moves_it_back_live(lab, abc, evacuated):
    a, b, c = abc
    r = lab.module(a, 'guest', dict(heartbeat_spec(HB, state='running'), node=c.name)).one()
    assert (r['failed'], r.get('changed')) == (False, True), r
    assert lab.where(HB, nodes=abc) == {c.name: 'running'}
    predicted = fleet(lab, abc, check=True)
    assert changed(predicted) == [b.name]
    assert lab.where(HB, nodes=abc) == {c.name: 'running'}
    results = fleet(lab, abc)
    assert changed(results) == [b.name]
    moved = results[b.name]['guests'][HB]['migrated']
    assert (moved['from'], moved['to'], moved['mode']) == (c.name, b.name, 'live'), moved
    assert lab.where(HB, nodes=abc) == {b.name: 'running'}
    assert defined_on([a, c], HB) == []
    assert uuid(b) == evacuated
    assert changed(fleet(lab, abc)) == []
