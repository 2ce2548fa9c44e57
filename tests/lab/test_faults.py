# -*- coding: utf-8 -*-
# Copyright: debvirt.cluster developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Nodes that die for real (lxc-stop -k: the node's every process, its QEMUs too, killed at once)
in the middle of a live move, on the lab's first three nodes A, B and C in one quorate cluster.
The move of a heartbeat guest with a local 32 MiB raw disk full of random data runs from C (the
migration module reaches both members), slowed down by a bandwidth limit so that it is surely
under way when the node dies. Each scenario ends with the guest defined and running on exactly
one node, its disk's checksum unchanged, and a rerun that converges with changed=0.

1. the target dies during the move: the guest runs on at the source, which still has its disk;
   once the target is back, the same move completes and its rerun is changed=0
2. the source dies during the move: nothing runs on the target; once the source is back, its
   disk is intact and the guest is started there again; a rerun is changed=0
3. C dies while the fleet (guests declared for each node, the list handed to every node)
   converges the cluster: A's and B's guests run; once C is back, a rerun makes C's run there,
   each guest on its node alone, and a rerun after that is changed=0
"""

from __future__ import annotations

import re
import subprocess
import threading
import time

import pytest

from guests import defined_on, three_members
from harness import LabError, eventually, heartbeat_spec, heartbeat_xml

POOL = 'dvtest-ft-pool'
POOL_PATH = '/var/lib/libvirt/dvtest-ft-pool'
GUEST = 'dvtest-ft-g'
DISK = GUEST + '.img'
# MiB/s: the 192 MiB of memory and the 32 MiB disk take some 30 s to cross, time enough to die in.
BANDWIDTH = 8


def reset(node):
    node.run('if virsh pool-info {p} >/dev/null 2>&1; then for v in $(virsh vol-list {p} --name); do '
             'virsh vol-delete --pool {p} "$v" >/dev/null 2>&1; done; virsh pool-destroy {p} >/dev/null 2>&1; '
             'virsh pool-undefine {p} >/dev/null 2>&1; fi; rm -rf {d}'.format(p=POOL, d=POOL_PATH))


@pytest.fixture(scope='module')
def abc(lab, images, module_cleanup):
    nodes = three_members(lab, images, module_cleanup, 'dvtest-ft-', ((2, 0), (2, 1), (0, 1), (1, 0)), reset=reset)
    # A node killed by a failed test comes back for the next file.
    module_cleanup.add(lab.up)
    for n in nodes:
        n.run('virsh pool-define-as %s dir --target %s >/dev/null && virsh pool-build %s >/dev/null '
              '&& virsh pool-start %s >/dev/null && virsh pool-autostart %s >/dev/null'
              % (POOL, POOL_PATH, POOL, POOL, POOL))
    return nodes


def disk_sum(node):
    return node.out('sha256sum < %s/%s 2>/dev/null || true' % (POOL_PATH, DISK))


def running_on(lab, nodes):
    return {n: s for n, s in lab.where(GUEST, nodes=nodes).items() if s == 'running'}


def guest_on(lab, node):
    """The heartbeat guest with a fresh disk of random data, running on node; the disk's checksum."""
    node.run('virsh vol-create-as %s %s 32M --format raw >/dev/null && dd if=/dev/urandom of=%s/%s bs=1M '
             'count=32 conv=notrunc status=none' % (POOL, DISK, POOL_PATH, DISK))
    node.define(heartbeat_xml(GUEST, disk='%s/%s' % (POOL_PATH, DISK)))
    node.run('virsh start %s >/dev/null' % GUEST)
    assert node.wait_log(GUEST, 'heartbeat 1', 120), 'the guest did not boot on %s' % node
    return disk_sum(node)


def move(lab, runner, target, **extra):
    args = dict(name=GUEST, target=target.name, copy_storage='all', bandwidth=BANDWIDTH, timeout=600, **extra)
    return lab.module(runner, 'migration', args).one()


def in_flight(node):
    """Whether the guest's migration job on the node has started moving data."""
    info = node.run('virsh domjobinfo %s' % GUEST, check=False).stdout
    m = re.search(r'Data processed:\s+([\d.]+)', info)
    return bool(m and float(m.group(1)) > 0)


def kill_during_move(lab, runner, source, target, victim):
    """The move from source to target, run on runner, with victim killed once data flows; its result."""
    out = {}
    worker = threading.Thread(target=lambda: out.update(result=move(lab, runner, target)))
    worker.start()
    assert eventually(lambda: in_flight(source), 120), 'the move never got under way'
    subprocess.run(['lxc-stop', '-k', '-n', victim.name], check=True, timeout=120)
    killed = time.monotonic()
    worker.join(900)
    assert not worker.is_alive(), 'the move did not end after %s died' % victim
    ended = time.monotonic() - killed
    print('the move ended %.0f s after %s died: %s' % (ended, victim, out['result'].get('msg', out['result'])))
    return out['result']


# --- 1. the target dies ----------------------------------------------------------------------------

def test_target_dies_during_a_live_move(lab, abc):
    a, b, c = abc
    before = guest_on(lab, a)
    result = kill_during_move(lab, c, a, b, b)
    assert result['failed'], result
    assert running_on(lab, [a, c]) == {a.name: 'running'}
    assert disk_sum(a) == before, "the source's disk changed"
    lab.up()
    assert running_on(lab, abc) == {a.name: 'running'}
    assert defined_on([b, c], GUEST) == []
    # The same move once the target is back: it completes, with the disk as it was.
    result = move(lab, c, b)
    assert (result['failed'], result.get('changed')) == (False, True), result
    assert running_on(lab, abc) == {b.name: 'running'} and defined_on([a, c], GUEST) == []
    assert disk_sum(b) == before
    result = move(lab, c, b)
    assert (result['failed'], result.get('changed')) == (False, False), result


# --- 2. the source dies ----------------------------------------------------------------------------

def test_source_dies_during_a_live_move(lab, abc):
    a, b, c = abc
    lab.clean_guests('dvtest-ft-', abc)
    for n in abc:
        n.run('rm -f %s/%s; virsh pool-refresh %s >/dev/null' % (POOL_PATH, DISK, POOL))
    before = guest_on(lab, a)
    result = kill_during_move(lab, c, a, b, a)
    assert result['failed'], result
    assert running_on(lab, [b, c]) == {}
    assert defined_on([b, c], GUEST) == []
    lab.up()
    # Back, the source holds the guest's persistent definition (stopped by the death) and its disk.
    assert defined_on(abc, GUEST) == [a.name]
    assert disk_sum(a) == before
    a.run('virsh start %s >/dev/null' % GUEST)
    assert running_on(lab, abc) == {a.name: 'running'}
    result = move(lab, c, a)
    assert (result['failed'], result.get('changed')) == (False, False), result


# --- 3. a node dies while the fleet converges the cluster --------------------------------------------
def fleet_guests(nodes):
    """{guest: node}: one heartbeat guest for A and one for B, six for C (so that C is surely
    still at work when it dies)."""
    a, b, c = nodes
    return dict([('dvtest-ft-a', a), ('dvtest-ft-b', b)] + [('dvtest-ft-c%d' % i, c) for i in range(6)])


def fleet(lab, nodes):
    """The list handed to every node."""
    guests = [dict(heartbeat_spec(g, state='running', memory=64), node=n.name) for g, n in fleet_guests(nodes).items()]
    return lab.module(nodes, 'fleet', {'guests': guests, 'fleet': 'dvtest-ft', 'purge': True,
                                       'node': '{{ inventory_hostname }}'})


def test_a_node_dies_while_the_fleet_converges(lab, abc):
    a, b, c = abc
    lab.clean_guests('dvtest-ft-', abc)
    out = {}

    def converge():
        try:
            out['results'] = fleet(lab, abc)
        except LabError as e:  # C, dead, gives no result at all
            out['error'] = e

    worker = threading.Thread(target=converge)
    worker.start()
    assert eventually(lambda: c.guest_state('dvtest-ft-c0') is not None, 300), 'the fleet never reached %s' % c
    subprocess.run(['lxc-stop', '-k', '-n', c.name], check=True, timeout=120)
    worker.join(900)
    assert not worker.is_alive(), 'the fleet did not end after %s died' % c
    results = out.get('results')
    if results is not None:
        assert results[c.name]['failed'], 'the fleet on %s ended before it died: %s' % (c, results[c.name])
    assert running_on_one(lab, 'dvtest-ft-a', [a, b]) == a.name
    assert running_on_one(lab, 'dvtest-ft-b', [a, b]) == b.name
    lab.up()
    rerun = fleet(lab, abc)
    assert not any(r['failed'] for r in rerun.values()), rerun
    for guest, node in fleet_guests(abc).items():
        assert running_on_one(lab, guest, abc) == node.name
    assert not any(r.get('changed') for r in fleet(lab, abc).values())


def running_on_one(lab, guest, nodes):
    where = lab.where(guest, nodes=nodes)
    assert len(where) == 1 and list(where.values()) == ['running'], '%s: %s' % (guest, where)
    return next(iter(where))
