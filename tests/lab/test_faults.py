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
4. libvirtd restarts on the source A during a move of the disk guest to B: the task fails well
   within its timeout, without a traceback, saying that the guest still runs at the source, which
   it does, disk intact; the same move then completes, its rerun is changed=0. Module guest_info,
   run again and again on B while libvirtd restarts under it, succeeds or fails with an error of
   ours, never hangs.
5. A dies while cluster_member removes C (run on B; C is stopping its pacemaker, A has not yet got
   the smaller nodelist): once A is back, a rerun brings A's file and the running cluster to the
   nodelist of A and B, quorate; a rerun after that is changed=0.
6. C, a new node again (the package's own corosync running, no authkey), dies during its join
   once it has the authkey and is stopping its packaged cluster, after A and B took the nodelist
   with it (run on B): once C is back, a rerun finishes the join (key, config, corosync
   started), all three agree on file, runtime nodelist and quorum, and a rerun is changed=0.
In 5 and 6 the disk guest the moves left on B runs on, there alone, its disk unchanged.
"""

from __future__ import annotations

import re
import subprocess
import threading
import time

import pytest

from guests import defined_on, members_of, three_members
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


def guest_anew(lab, nodes, node):
    """guest_on(node) with no test guest and no disk of it left anywhere before."""
    lab.clean_guests('dvtest-ft-', nodes)
    for n in nodes:
        n.run('rm -f %s/%s; virsh pool-refresh %s >/dev/null' % (POOL_PATH, DISK, POOL))
    return guest_on(lab, node)


def move(lab, runner, target, **extra):
    args = dict(name=GUEST, target=target.name, copy_storage='all', bandwidth=BANDWIDTH, timeout=600, **extra)
    return lab.module(runner, 'migration', args).one()


def in_flight(node):
    """Whether the guest's migration job on the node has started moving data."""
    info = node.run('virsh domjobinfo %s' % GUEST, check=False).stdout
    m = re.search(r'Data processed:\s+([\d.]+)', info)
    return bool(m and float(m.group(1)) > 0)


def during_move(lab, runner, source, target, fault, what):
    """The move from source to target, run on runner, with fault() done once data flows; its
    result and the seconds it took after the fault."""
    out = {}
    worker = threading.Thread(target=lambda: out.update(result=move(lab, runner, target)))
    worker.start()
    assert eventually(lambda: in_flight(source), 120), 'the move never got under way'
    fault()
    done = time.monotonic()
    worker.join(900)
    assert not worker.is_alive(), 'the move did not end after %s' % what
    ended = time.monotonic() - done
    result = out['result']
    print('the move ended %.0f s after %s: %s' % (ended, what, result.get('msg', result)))
    # A module that raised instead of failing leaves Python's traceback: never a clear error.
    assert 'exception' not in result and 'Traceback' not in result.get('msg', ''), result
    return result, ended


def kill(node):
    subprocess.run(['lxc-stop', '-k', '-n', node.name], check=True, timeout=120)


def kill_during_move(lab, runner, source, target, victim):
    """The move from source to target, run on runner, with victim killed once data flows; its result."""
    return during_move(lab, runner, source, target, lambda: kill(victim), '%s died' % victim)[0]


# --- 1. the target dies ----------------------------------------------------------------------------

def test_target_dies_during_a_live_move(lab, abc):
    a, b, c = abc
    before = guest_on(lab, a)
    result = kill_during_move(lab, c, a, b, b)
    assert result['failed'], result
    # The error says where the guest is, not only what libvirt said about the lost connection.
    assert 'Guest %s is still running on %s' % (GUEST, a) in result['msg'], result
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
    before = guest_anew(lab, abc, a)
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


def clean_fleet(lab, nodes):
    for prefix in ('dvtest-ft-a', 'dvtest-ft-b', 'dvtest-ft-c'):
        lab.clean_guests(prefix, nodes)


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
    kill(c)
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


# --- 4. libvirtd restarts under a task ---------------------------------------------------------------

def kept_on(lab, abc, node):
    """The disk guest running on node, where the test before left it (booted anew there when it did
    not: the fleet test clears it, since with it running beside the fleet's guests that test took
    150 s in two runs, against 31 and 58 s without), the fleet's guests gone; its disk's checksum."""
    clean_fleet(lab, abc)
    if running_on(lab, abc) != {node.name: 'running'} or defined_on([n for n in abc if n != node], GUEST):
        return guest_anew(lab, abc, node)
    return disk_sum(node)


def test_libvirtd_restarts_on_the_source_during_a_live_move(lab, abc):
    a, b, c = abc
    before = kept_on(lab, abc, a)
    result, seconds = during_move(lab, c, a, b, lambda: a.run('systemctl restart libvirtd'),
                                  'libvirtd restarted on %s' % a)
    assert result['failed'], result
    assert seconds < 600, 'the move outlived its timeout'
    assert 'Guest %s is still running on %s' % (GUEST, a) in result['msg'], result
    assert running_on(lab, abc) == {a.name: 'running'} and defined_on([b, c], GUEST) == []
    assert disk_sum(a) == before
    result = move(lab, c, b)
    assert (result['failed'], result.get('changed')) == (False, True), result
    assert running_on(lab, abc) == {b.name: 'running'} and disk_sum(b) == before
    result = move(lab, c, b)
    assert (result['failed'], result.get('changed')) == (False, False), result


def test_tasks_while_libvirtd_restarts_end_clearly(lab, abc):
    """guest_info on B, again and again while libvirtd restarts there several times: each run
    succeeds or fails with an error of ours, none hangs. The guest the move left there runs on."""
    b = abc[1]
    restarts = threading.Thread(target=b.run, args=('for i in 1 2 3 4 5; do systemctl restart libvirtd; sleep 2; done',))
    restarts.start()
    outcomes = []
    while restarts.is_alive() or not outcomes:
        t0 = time.monotonic()
        result = lab.module(b, 'guest_info', {'name': [GUEST]}, timeout=120).one()
        outcomes.append('%.0f s: %s' % (time.monotonic() - t0, result['msg'] if result['failed'] else 'succeeded'))
        assert 'exception' not in result, result
        assert not result['failed'] or result['msg'].startswith('Failed to '), result
        assert result['failed'] or [g['name'] for g in result['guests']] == [GUEST], result
    restarts.join(120)
    print('guest_info while libvirtd restarted: %s' % '; '.join(outcomes))
    assert running_on(lab, abc) == {b.name: 'running'} and b.counting(GUEST, b.last_beat(GUEST) or 0, 30)


# --- 5. a node dies while a member leaves, 6. while a node joins -------------------------------------
# The member that runs cluster_member is B, where the disk guest runs on; C leaves, then joins
# again as a new node would.

def still_beating(lab, abc, before):
    b = abc[1]
    assert running_on_one(lab, GUEST, abc) == b.name
    assert b.counting(GUEST, b.last_beat(GUEST) or 0, 30), '%s stopped counting on %s' % (GUEST, b)
    assert disk_sum(b) == before


def runtime_nodelist(node):
    """The node names in corosync's runtime nodelist on the node (what it reloaded, not its file)."""
    out = node.run('corosync-cmapctl -b nodelist.node', check=False).stdout
    return sorted(re.findall(r'^nodelist\.node\.\d+\.name \(str\) = (\S+)$', out, re.M))


def membership(nodes, names):
    """{node: why} of the nodes whose corosync does not run the cluster of exactly names, quorate,
    with the same corosync.conf as the others (empty: all agree)."""
    sums = {n.name: n.out('md5sum < /etc/corosync/corosync.conf') for n in nodes}
    wrong = {}
    for node in nodes:
        q = node.quorum()
        seen = (q.quorate, q.names, runtime_nodelist(node), members_of(node) == set(names))
        if seen != (True, sorted(names), sorted(names), True) or len(set(sums.values())) != 1:
            wrong[node.name] = (seen, sums[node.name])
    return wrong


def agreed(nodes, names, timeout=60):
    """Whether the nodes come to agree on the membership of names within timeout s; else why not."""
    return eventually(lambda: not membership(nodes, names), timeout, 2) or membership(nodes, names)


def member(lab, runner, node, state='present', timeout=30):
    args = {'name': node.name, 'state': state, 'timeout': timeout}
    if state == 'present':
        args.update(addresses=[node.address], cluster_name='debvirt')
    return lab.module(runner, 'cluster_member', args).one()


def during_membership_change(lab, runner, node, state, watched, window, victim):
    """cluster_member for node (state), run on runner, with victim killed as soon as
    watched.ok(window) holds; its result."""
    out = {}
    worker = threading.Thread(target=lambda: out.update(result=member(lab, runner, node, state)))
    worker.start()
    hit = eventually(lambda: watched.ok(window), 120, 0.1)
    kill(victim)
    worker.join(600)
    assert hit, 'the change never reached its window on %s (%s)' % (watched, window)
    assert not worker.is_alive(), 'cluster_member did not end after %s died' % victim
    result = out['result']
    print('cluster_member %s %s ended after %s died: %s' % (state, node, victim, result.get('msg', result)))
    assert 'exception' not in result, result
    return result


@pytest.fixture(scope='module')
def beating(lab, abc):
    return kept_on(lab, abc, abc[1])


@pytest.fixture(scope='module')
def c_rejoins(lab, abc, module_cleanup):
    """Whatever the membership tests leave, C is a member running pacemaker after the file."""
    a, b, c = abc

    def rejoin():
        if members_of(b) != {n.name for n in abc} or not c.quorate():
            result = member(lab, b, c, timeout=60)
            assert not result['failed'], result
        c.run('systemctl enable --now pacemaker')
    module_cleanup.add(rejoin)


def test_a_member_dies_while_a_node_is_removed(lab, abc, beating, c_rejoins):
    a, b, c = abc
    assert c.ok('systemctl is-active --quiet pacemaker') and members_of(b) == {n.name for n in abc}
    # A dies while C stops its pacemaker, the first step of the removal: C has left, B has or is
    # about to have the smaller nodelist, A never gets it.
    result = during_membership_change(lab, b, c, 'absent', c, '! systemctl is-active --quiet pacemaker', a)
    assert result['failed'], result
    lab.up()
    rerun = member(lab, b, c, 'absent')
    assert not rerun['failed'], rerun
    assert agreed([a, b], [a.name, b.name]) is True
    assert not c.ok('systemctl is-active --quiet corosync')
    rerun = member(lab, b, c, 'absent')
    assert (rerun['failed'], rerun['changed']) == (False, False), rerun
    still_beating(lab, abc, beating)


def fresh(lab, node):
    """The node as the packages leave it: corosync's loopback-only cluster running, with pacemaker,
    and no authkey."""
    node.run('rm -f /etc/corosync/authkey /etc/corosync/corosync.conf.debvirt-removed')
    node.write('/etc/corosync/corosync.conf', (lab.template_rootfs / 'etc/corosync/corosync.conf').read_text())
    node.run('systemctl enable --now corosync pacemaker')


def test_the_joining_node_dies_during_its_join(lab, abc, beating, c_rejoins):
    a, b, c = abc
    assert c.name not in members_of(b), 'the removal before left %s a member' % c
    fresh(lab, c)
    # C dies once it has the authkey, while the join stops its packaged cluster: A and B already
    # run the nodelist with C in it, C has not got it.
    t0 = time.monotonic()
    result = during_membership_change(lab, b, c, 'present', c, 'test -e /etc/corosync/authkey', c)
    assert result['failed'], result
    t1 = time.monotonic()
    lab.up()
    t2 = time.monotonic()
    rerun = member(lab, b, c)
    print('join: failed run %.0f s, %s back %.0f s, rerun %.0f s' % (t1 - t0, c, t2 - t1, time.monotonic() - t2))
    assert not rerun['failed'], rerun
    assert agreed(abc, [n.name for n in abc]) is True
    rerun = member(lab, b, c)
    assert (rerun['failed'], rerun['changed']) == (False, False), rerun
    still_beating(lab, abc, beating)
