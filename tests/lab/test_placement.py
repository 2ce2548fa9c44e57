# -*- coding: utf-8 -*-
# Copyright: debvirt.cluster developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Placement on the lab: modules guest and container with node:, on the lab's first three
nodes A, B and C in one quorate cluster. Uses only objects named dvtest-pl-*; never changes
membership. The tests build on each other, in file order:

1. a heartbeat guest declared with node: B, the task run on A: check mode defines nothing
   anywhere; the run defines and starts it on B only; a rerun and check mode are changed=0
2. the same guest declared with node: C while it runs: check mode predicts the live move (and
   the node change in the diff) and moves nothing; the run moves it live (still counting on
   C, no second boot, undefined on B); a rerun is changed=0
3. refusals, nothing defined: the same name without node on A (it lives on C), a node that is
   no member, a container placed on another host than the task's
4. state absent with node removes the guest from the member that has it (C)
5. a container created on B (node: B, the task run there) is declared with node: C on C:
   check mode predicts the restart move; the run stops it cleanly, copies its root directory
   and starts it on C (its counter goes on); a rerun is changed=0
"""

from __future__ import annotations

import time

import pytest

from guests import LXC, BOOT_MARKER, booted_on, counter, defined_on, events, first_beat, next_beat, three_members
from harness import heartbeat_spec

HB = 'dvtest-pl-hb'
CT = 'dvtest-pl-ct'
CT_ROOT = '/var/lib/dvtest-pl-ct/rootfs'


@pytest.fixture(scope='module')
def abc(lab, images, module_cleanup):
    """A, B and C, nothing of this test's left before or after."""
    return three_members(lab, images, module_cleanup, 'dvtest-pl-', ((0, 1), (0, 2), (2, 1)),
                         reset=lambda n: n.run('rm -rf /var/lib/dvtest-pl-ct'))


def guest(lab, host, where, state, check=False, diff=False, **extra):
    """Module guest on host with the heartbeat guest's spec, placed on where (None: not placed)."""
    args = heartbeat_spec(HB, state=state, **extra)
    if where:
        args['node'] = str(where)
    return lab.module(host, 'guest', args, check=check, diff=diff).one()


def container(lab, host, where, check=False):
    return lab.module(host, 'container', dict(
        name=CT, node=where.name, state='running', privileged=True, memory=64,
        rootfs=dict(path=CT_ROOT), command=['/bin/sh', '/loop.sh']), check=check).one()


def migrated(r):
    return [r['migrated'][k] for k in ('from', 'to', 'mode')] if 'migrated' in r else r.get('msg')


# --- 1. created on the node it names ------------------------------------------------------------

def test_create_check_mode(lab, abc):
    a, b, _c = abc
    r = guest(lab, a, b, 'running', check=True)
    assert (r['failed'], r.get('changed')) == (False, True), r
    assert defined_on(abc, HB) == []


def test_create_on_named_node(lab, abc):
    a, b, c = abc
    r = guest(lab, a, b, 'running')
    assert (r['failed'], r.get('changed')) == (False, True), r
    assert r.get('node') == b.name
    assert b.wait_log(HB, BOOT_MARKER, 60), 'not booted on %s' % b
    assert defined_on([a, c], HB) == []


def test_create_rerun(lab, abc):
    a, b, _c = abc
    r = guest(lab, a, b, 'running')
    assert (r['failed'], r.get('changed')) == (False, False), r
    r = guest(lab, a, b, 'running', check=True)
    assert (r['failed'], r.get('changed')) == (False, False), r


# --- 2. moved live to another node --------------------------------------------------------------

def test_move_check_mode(lab, abc):
    a, b, c = abc
    b.wait_log(HB, 'heartbeat 2', 30)
    r = guest(lab, a, c, 'running', check=True, diff=True)
    assert (r['failed'], r.get('changed')) == (False, True), r
    assert migrated(r) == [b.name, c.name, 'live']
    assert (r['diff']['before'].get('node'), r['diff']['after'].get('node')) == (b.name, c.name)
    assert b.guest_state(HB) == 'running'
    assert defined_on([c], HB) == []


def test_move_live(lab, abc):
    a, b, c = abc
    r = guest(lab, a, c, 'running')
    after_src = b.last_beat(HB)
    assert (r['failed'], r.get('changed')) == (False, True), r
    print('moved %s -> %s (%s, %s ms, downtime %s ms)' % (
        b, c, r['migrated'].get('mode'), r['migrated'].get('time_elapsed_ms'), r['migrated'].get('downtime_ms')))
    assert (migrated(r), r.get('node')) == ([b.name, c.name, 'live'], c.name)
    assert c.guest_state(HB) == 'running' and c.persistent(HB)
    assert defined_on([a, b], HB) == []
    c.wait_log(HB, 'heartbeat', 20)
    first = first_beat(c, HB)
    print('heartbeat: %s last on %s, %s first on %s' % (after_src, b, first, c))
    assert next_beat(first, after_src), 'the heartbeat does not go on from where it was'
    assert not booted_on(c, HB), 'a second boot on %s' % c
    assert c.counting(HB, first)


def test_move_rerun(lab, abc):
    a, _b, c = abc
    r = guest(lab, a, c, 'running')
    assert (r['failed'], r.get('changed')) == (False, False), r


# --- 3. refusals --------------------------------------------------------------------------------

def test_same_name_elsewhere_refused(lab, abc):
    a, _b, c = abc
    r = guest(lab, a, None, 'running')
    assert r['failed'] and 'already exists on %s' % c.name in r['msg'], r
    assert defined_on([a], HB) == []


def test_node_no_member_refused(lab, abc):
    r = guest(lab, abc[0], 'dvtest-pl-nosuch', 'running')
    assert r['failed'] and 'node dvtest-pl-nosuch is not a member of the cluster' in r['msg'], r


def test_container_elsewhere_refused(lab, abc):
    a, b, _c = abc
    r = lab.module(a, 'container', dict(name=CT, node=b.name, privileged=True, rootfs=dict(path=CT_ROOT))).one()
    assert r['failed'] and 'node %s is not this host (%s)' % (b.name, a.name) in r['msg'], r
    assert defined_on([a, b], CT) == []


# --- 4. absent with node: gone wherever it is ---------------------------------------------------

def test_absent_check_mode(lab, abc):
    a, _b, c = abc
    r = guest(lab, a, a, 'absent', check=True)
    assert (r['failed'], r.get('changed'), r.get('removed_from')) == (False, True, [c.name]), r
    assert c.guest_state(HB) == 'running'


def test_absent(lab, abc):
    a, _b, c = abc
    # The test guest has no ACPI daemon: it is powered off after a short wait.
    r = guest(lab, a, a, 'absent', force=True, shutdown_timeout=5)
    assert (r['failed'], r.get('changed'), r.get('removed_from')) == (False, True, [c.name]), r
    assert defined_on(abc, HB) == []
    r = guest(lab, a, a, 'absent')
    assert (r['failed'], r.get('changed')) == (False, False), r


# --- 5. a container moved by its restart move ---------------------------------------------------

def test_container_created(lab, abc):
    _a, b, c = abc
    b.busybox_root(CT_ROOT)
    r = container(lab, b, b)
    assert (r['failed'], r.get('changed')) == (False, True), r
    assert b.guest_state(CT, LXC) == 'running'
    assert defined_on([c], CT, LXC) == []


def test_container_move_check_mode(lab, abc):
    _a, b, c = abc
    time.sleep(2)
    r = container(lab, c, c, check=True)
    assert (r.get('changed'), migrated(r)) == (True, [b.name, c.name, 'restart']), r
    assert b.guest_state(CT, LXC) == 'running'


def test_container_moved(lab, abc):
    _a, b, c = abc
    before = counter(b, CT_ROOT)
    r = container(lab, c, c)
    if r.get('changed') is not True:
        # libvirt once lost this container's init PID (so no clean stop was possible) with no
        # libvirtd restart in sight: what it and the container's controller said since the start.
        print(b.run("grep 'init pid' /run/libvirt/lxc/%s.xml; tail -n 30 /var/log/libvirt/lxc/%s.log; "
                    "journalctl -u libvirtd --since '-10 min' --no-pager -o short-iso | grep -v cgroup.controllers | tail -n 40; "
                    "ps -eo pid,ppid,lstart,args | grep -E 'libvirt|loop' | grep -v grep"
                    % (CT, CT), check=False).stdout)
    assert (r['failed'], r.get('changed')) == (False, True), r
    print('container moved by a restart (down %s ms)' % r['migrated'].get('downtime_ms'))
    assert c.guest_state(CT, LXC) == 'running'
    assert defined_on([b], CT, LXC) == []
    assert not b.ok('test -e %s' % CT_ROOT), 'its root directory is left on %s' % b
    assert events(c, CT_ROOT) == 'started stopped started '
    time.sleep(2)
    now = counter(c, CT_ROOT)
    assert before is not None and now is not None and now > before, (before, now)


def test_container_move_rerun(lab, abc):
    c = abc[2]
    r = container(lab, c, c)
    assert (r['failed'], r.get('changed')) == (False, False), r
