# -*- coding: utf-8 -*-
# Copyright: debvirt.cluster developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Deletions ask every member, on the lab's first two nodes A and B in one quorate cluster. A
dir pool on the lab's shared mount (the same directory on both) holds two volumes; a stopped
guest defined on B only has both as its disks. Nothing boots. Uses only objects named
dvtest-own-*; never changes membership. The tests build on each other, in file order:

1. volume state=absent on A of the volume B's guest uses, and storage_pool state=absent
   delete_data=true on A of its pool: refused in check mode and for real, naming the guest and
   member B; the pool and its volumes stay
2. guest state=absent remove_storage=true on A of a guest whose disk (made by the module) B's
   guest uses too: check mode and the run undefine it and keep the volume, with a warning
   naming the user on B
3. once B's guest is gone, volume state=absent on A deletes the volume: the refusal was B's
4. two ansible-playbook runs converging one new guest with a disk on the shared pool, started
   together on A: one makes it, the other waits for the guest's lock and changes nothing; one
   domain on A and none on B, one volume, a valid qcow2
5. a move of a stopped guest whose dir pool exists on both members but whose directory is gone
   on the target: migration cannot tell whether the pool is shared storage and refuses, in check
   mode and for real, before anything is touched (no probe file left, nothing on B)
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from guests import members_of, trust

POOL = 'dvtest-own-shared'
PATH = '/srv/debvirt-shared/dvtest-own'
VOL = 'dvtest-own-vol.raw'
MADE = 'dvtest-own-a.qcow2'
ON_A = 'dvtest-own-a'
ON_B = 'dvtest-own-b'
RESET = ('for d in $(virsh list --all --name | grep "^dvtest-own-"); do virsh destroy "$d" >/dev/null 2>&1; '
         'virsh undefine "$d" >/dev/null 2>&1; done; '
         'virsh pool-destroy %s >/dev/null 2>&1; virsh pool-undefine %s >/dev/null 2>&1; true' % (POOL, POOL))


def user_xml():
    """A stopped guest on B whose two disks are the shared volumes, named by path."""
    disks = ''.join("<disk type='file' device='disk'><driver name='qemu' type='%s'/><source file='%s/%s'/>"
                    "<target dev='%s' bus='virtio'/></disk>" % (fmt, PATH, vol, dev)
                    for fmt, vol, dev in (('raw', VOL, 'vda'), ('qcow2', MADE, 'vdb')))
    return ("<domain type='qemu'><name>%s</name><memory unit='MiB'>32</memory><vcpu>1</vcpu>"
            "<os><type arch='x86_64' machine='pc'>hvm</type></os><devices>%s</devices></domain>" % (ON_B, disks))


@pytest.fixture(scope='module')
def ab(lab, module_cleanup):
    """A and B in a quorate cluster, A reaching B's libvirt; the shared pool on both, VOL made there."""
    a, b = lab.nodes[:2]
    assert a.quorate(), 'the lab is no quorate cluster (playbooks/site.yml forms it)'
    assert members_of(a) >= {a.name, b.name}, 'the cluster is not made of %s and %s' % (a, b)
    assert trust(a, b), "%s does not reach %s's libvirt over the cluster's SSH trust" % (a, b)

    def reset():
        for n in (a, b):
            n.run(RESET)
        a.run('rm -rf %s' % PATH)
    module_cleanup.add(reset)
    reset()
    a.run('mkdir -p %s' % PATH)
    for n in (a, b):
        n.run('virsh pool-define-as %s dir --target %s >/dev/null && virsh pool-start %s >/dev/null'
              % (POOL, PATH, POOL))
    a.run('virsh vol-create-as %s %s 1M --format raw >/dev/null' % (POOL, VOL))
    return a, b


def seconds(what, t0):
    print('%s: %.1f s' % (what, time.monotonic() - t0))


def volume_absent(lab, node, name, check=False):
    return lab.module(node, 'volume', dict(name=name, pool=POOL, state='absent'), check=check).one()


# --- 1. a volume that a guest on another member uses ---------------------------------------------

@pytest.fixture(scope='module')
def used_on_b(lab, ab):
    """A's guest made MADE (the module records it as its own); B's stopped guest uses both volumes."""
    a, b = ab
    r = lab.module(a, 'guest', dict(name=ON_A, memory=32, state='present',
                                    disks=[dict(pool=POOL, volume=MADE, size='1M')])).one()
    assert (r['failed'], r.get('changed')) == (False, True), r
    b.run('virsh pool-refresh %s >/dev/null' % POOL)
    b.define(user_xml())
    assert (a.guest_state(ON_B), b.guest_state(ON_B)) == (None, 'shut off')
    return a, b


@pytest.mark.parametrize('check', [True, False], ids=['check_mode', 'run'])
def test_volume_absent_is_refused_naming_the_guest_on_the_other_member(lab, used_on_b, check):
    a, b = used_on_b
    t0 = time.monotonic()
    r = volume_absent(lab, a, VOL, check=check)
    seconds('volume absent refused', t0)
    assert r['failed'], r
    assert r['msg'] == 'Volume %s/%s is a disk of guests %s on member %s: detach it first' % (POOL, VOL, ON_B, b), r
    assert r.get('users') == ['guest %s on member %s' % (ON_B, b)], r
    assert a.ok('test -f %s/%s' % (PATH, VOL))


@pytest.mark.parametrize('check', [True, False], ids=['check_mode', 'run'])
def test_pool_delete_data_is_refused_naming_the_guest_on_the_other_member(lab, used_on_b, check):
    a, b = used_on_b
    t0 = time.monotonic()
    r = lab.module(a, 'storage_pool', dict(name=POOL, state='absent', delete_data=True), check=check).one()
    seconds('pool delete_data refused', t0)
    assert r['failed'], r
    assert 'guests %s on member %s' % (ON_B, b) in r['msg'], r
    assert 'guest %s on member %s' % (ON_B, b) in r.get('users', []), r
    assert a.out('virsh pool-info %s | grep -c "^State: *running"' % POOL) == '1'
    assert a.ok('test -f %s/%s && test -f %s/%s' % (PATH, VOL, PATH, MADE))


# --- 2. remove_storage keeps a disk another member's guest uses ----------------------------------

@pytest.mark.parametrize('check', [True, False], ids=['check_mode', 'run'])
def test_remove_storage_keeps_the_volume_another_members_guest_uses(lab, used_on_b, check):
    a, b = used_on_b
    t0 = time.monotonic()
    results = lab.module(a, 'guest', dict(name=ON_A, state='absent', remove_storage=True), check=check)
    seconds('guest absent with remove_storage', t0)
    r = results.one()
    assert (r['failed'], r.get('changed')) == (False, True), r
    assert [(c['action'], c['target']) for c in r['changes']] == [('undefine', 'guest %s' % ON_A)], r
    warning = ('Volume %s/%s, made for guest %s, is kept: it is a disk of guests %s on member %s'
               % (POOL, MADE, ON_A, ON_B, b))
    # Ansible prints a module's warnings (wrapped at spaces), not in the one-line result.
    assert warning in ' '.join(results.output.split()), results.output
    assert a.guest_state(ON_A) == (None if not check else 'shut off')
    assert a.ok('test -f %s/%s' % (PATH, MADE))
    assert b.guest_state(ON_B) == 'shut off'


# --- 3. without the user, the deletion goes ahead -------------------------------------------------

def test_volume_absent_deletes_once_the_other_members_guest_is_gone(lab, used_on_b):
    a, b = used_on_b
    b.run('virsh undefine %s >/dev/null' % ON_B)
    t0 = time.monotonic()
    r = volume_absent(lab, a, VOL)
    seconds('volume absent', t0)
    assert (r['failed'], r.get('changed')) == (False, True), r
    assert not a.ok('test -e %s/%s' % (PATH, VOL))
    assert volume_absent(lab, a, VOL).get('changed') is False


# --- 4. two playbooks converge one new guest at once ------------------------------------------------

RACE = 'dvtest-own-race'
RACE_PLAY = """- hosts: %s
  gather_facts: false
  tasks:
    - name: One new guest with a disk on the shared pool
      debvirt.cluster.guest:
        name: %s
        memory: 32
        state: present
        disks: [{pool: %s, volume: %s.qcow2, size: 16M}]
"""


def test_two_playbooks_at_once_make_one_guest_and_one_volume(lab, ab, work):
    a, b = ab
    playbook = work / 'race.yml'
    playbook.write_text(RACE_PLAY % (a, RACE, POOL, RACE))
    t0 = time.monotonic()
    with ThreadPoolExecutor(2) as pool:
        plays = list(pool.map(lambda _: lab.playbook(playbook), range(2)))
    seconds('two playbooks at once', t0)
    assert all(p.ok for p in plays), '\n'.join(map(str, plays))
    assert sorted(p.changed(a) for p in plays) == [0, 1], [p.changed() for p in plays]
    assert (a.guest_state(RACE), b.guest_state(RACE)) == ('shut off', None)
    assert a.out('ls %s | grep -c "^%s"' % (PATH, RACE)).strip() == '1'
    a.run('qemu-img check -q %s/%s.qcow2' % (PATH, RACE))


# --- 5. a pool the probe cannot judge ------------------------------------------------------------

GONE = 'dvtest-own-gone'
GONE_PATH = '/var/lib/%s' % GONE
PROBED = 'dvtest-own-probed'


@pytest.fixture(scope='module')
def gone_on_b(lab, ab, module_cleanup):
    """A stopped guest on A with its disk in a dir pool of A; the pool is active on B too, with
    its directory removed after the start, so the probe finds neither the file nor the directory."""
    a, b = ab

    def reset():
        for n in (a, b):
            n.run('virsh pool-destroy %s >/dev/null 2>&1; virsh pool-undefine %s >/dev/null 2>&1; rm -rf %s; true'
                  % (GONE, GONE, GONE_PATH))
    module_cleanup.add(reset)
    reset()
    for n in (a, b):
        n.run('mkdir -p %s && virsh pool-define-as %s dir --target %s >/dev/null && virsh pool-start %s >/dev/null'
              % (GONE_PATH, GONE, GONE_PATH, GONE))
    b.run('rmdir %s' % GONE_PATH)
    r = lab.module(a, 'guest', dict(name=PROBED, memory=32, state='present',
                                    disks=[dict(pool=GONE, volume=PROBED + '.qcow2', size='1M')])).one()
    assert (r['failed'], r.get('changed')) == (False, True), r
    return a, b


@pytest.mark.parametrize('check', [True, False], ids=['check_mode', 'run'])
def test_a_move_is_refused_when_the_probe_cannot_tell_whether_the_pool_is_shared(lab, gone_on_b, check):
    a, b = gone_on_b
    t0 = time.monotonic()
    r = lab.module(a, 'migration', dict(name=PROBED, target=str(b)), check=check).one()
    seconds('move refused by the probe', t0)
    assert r['failed'], r
    assert r['msg'].startswith('Cannot tell whether %s is shared storage: looking for the probe file on %s'
                               % (GONE_PATH, b)), r
    assert (a.guest_state(PROBED), b.guest_state(PROBED)) == ('shut off', None)
    assert a.out('ls -A %s' % GONE_PATH) == PROBED + '.qcow2'
