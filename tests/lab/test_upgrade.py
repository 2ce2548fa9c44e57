# -*- coding: utf-8 -*-
# Copyright: debvirt.cluster developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Rolling upgrade on the lab: playbook debvirt.cluster.rolling_upgrade on the lab's first three
nodes N1, N2 and N3. Uses only objects named dvtest-ru-*; reboots every node, one at a time; ends
with every node up, the cluster quorate with 3 votes and nothing of its own left (a teardown
error otherwise).

The nodes have no package mirror, so the test brings the upgrade: a package dvtest-ru-marker
built here with dpkg-deb, version 1 installed on every node, newer versions in a flat repository
copied onto each node and named by a sources.list.d entry. For the file's duration an
apt.conf.d drop-in makes apt read that source only, with index lists of its own: the nodes' own
sources point at a mirror they cannot reach, and their stale lists offer upgrades that could
never be downloaded. The nodes are containers, whose boot_id is the machine's kernel's: the
playbook is told to watch PID 1's start time instead. Guests g1 (on N1) and g2 (on N2) run and
print a heartbeat, g3 (on N3) is defined and stopped.

The scenarios build on each other, in file order; each is a fixture (the play) and its checks:

1. check mode reports the upgrade and changes nothing: no guest moved, no package, no reboot
2. the upgrade to version 2: every node at version 2 and rebooted, one at a time (the play's
   results never interleave nodes; each node's upgrade and reboot come after the previous
   node's); the running guests were live-moved and kept counting across their node's reboot (no
   second boot, no gap in the heartbeat); every guest ends where it started, in the state it
   had; the cluster stayed quorate throughout (sampled, and by corosync's own log)
3. a rerun with nothing to upgrade is changed=0: no guest moves, no reboot; check mode too
4. a failure: version 3 is broken for N2 only. N1 is upgraded; the play stops at N2 with a
   message that says so; N2 stays drained (its guest runs elsewhere, the record and the
   pacemaker mark say so) at version 2; N3 is untouched
5. resume: with the package mended, a rerun skips N1 (nothing pending), finishes N2 (its guest
   comes back) and upgrades N3
6. a node drained by hand (evacuate.yml) with an upgrade pending is upgraded and rebooted but
   stays drained; restore.yml brings its guest back
7. rolling_upgrade_force on one node (rolling_upgrade_hosts): evacuated, rebooted and restored
   with nothing to upgrade; the other nodes untouched
8. with N3's corosync stopped, forcing N1 through the cycle is refused (its reboot would cost
   quorum) before anything is touched
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tarfile
import threading
import time

import pytest

from guests import BOOT_MARKER, output, trust
from harness import LabError, eventually, heartbeat_xml, run, say

PKG = 'dvtest-ru-marker'
REPO = '/var/lib/dvtest-ru-repo'
LISTS = '/var/lib/dvtest-ru-lists'
RECORD = '/etc/ansible/facts.d/debvirt_evacuated.fact'
# The start of PID 1 in clock ticks since the kernel booted: new on every boot of a container.
BOOT_TIME_COMMAND = "cut -d' ' -f22 /proc/1/stat"
G1, G2, G3 = 'dvtest-ru-g1', 'dvtest-ru-g2', 'dvtest-ru-g3'
GUESTS = (G1, G2, G3)
# What the playbook's own waits allow a node by their defaults (playbooks/README.md): the
# reboot (rolling_upgrade_reboot_timeout), the rejoin (restore_quorum_timeout) and a move of
# each guest away and back (evacuate_timeout). The play is given that much per node, so that
# on a busy machine one of its own waits gives up first and says what it waited for. A shorter
# limit of ours (Lab.playbook's default, 1800 s) kills ansible-playbook without its output and
# leaves its forked worker behind, still in the reboot wait.
NODE_ALLOWANCE = 900 + 120 + 2 * len(GUESTS) * 600


class Env:
    """The nodes, the packages built here, where each guest lives and what the scenarios saw."""

    def __init__(self, lab, work, nodes):
        self.lab, self.work, self.nodes = lab, work, nodes
        n1, n2, n3 = nodes
        self.home = {G1: n1, G2: n2, G3: n3}
        self.state = {G1: 'running', G2: 'running', G3: 'shut off'}

    def whole(self, timeout=90):
        """Every node up, libvirtd running, the cluster quorate with 3 votes: how the lab is left."""
        def probe():
            quorums = [n.quorum() if n.ok('systemctl is-active -q libvirtd') else None for n in self.nodes]
            return all(q and q.quorate and q.total == 3 for q in quorums)
        if eventually(probe, timeout):
            return True
        print('after %d s not every node is up with libvirtd and a quorate 3-vote cluster' % timeout)
        return False

    def clean(self):
        self.lab.clean_guests('dvtest-ru-', self.nodes)
        for n in self.nodes:
            # An evacuation record of this test's guests with its drained mark, the package, its
            # repository and the apt configuration that points at it.
            n.run("if grep -q dvtest-ru- %(r)s 2>/dev/null; then rm -f %(r)s; crm_attribute --node $(hostname) "
                  "--name debvirt-drained --delete --lifetime forever >/dev/null 2>&1; fi; "
                  "dpkg -P %(p)s >/dev/null 2>&1; rm -rf /etc/apt/sources.list.d/dvtest-ru.list "
                  "/etc/apt/apt.conf.d/99dvtest-ru %(repo)s %(lists)s" % dict(r=RECORD, p=PKG, repo=REPO, lists=LISTS))

    # --- the package and its repositories -------------------------------------------------------

    def deb(self, version, broken=False):
        return os.path.join(self.work, 'debs', 'broken' if broken else '', '%s_%s_all.deb' % (PKG, version))

    def build(self, version, broken=False):
        """deb(version, broken): a package carrying its version; a broken one's preinst fails."""
        d = os.path.join(self.work, 'pkg')
        shutil.rmtree(d, ignore_errors=True)
        os.makedirs(os.path.join(d, 'DEBIAN'))
        os.makedirs(os.path.join(d, 'usr/share', PKG))
        with open(os.path.join(d, 'DEBIAN/control'), 'w') as f:
            f.write('Package: %s\nVersion: %s\nArchitecture: all\nMaintainer: debvirt tests <root@localhost>\n'
                    'Section: misc\nPriority: optional\nDescription: debvirt rolling-upgrade test marker\n'
                    ' Carries nothing but its version, in /usr/share/%s/version.\n' % (PKG, version, PKG))
        with open(os.path.join(d, 'usr/share', PKG, 'version'), 'w') as f:
            f.write('%s\n' % version)
        if broken:
            with open(os.path.join(d, 'DEBIAN/preinst'), 'w') as f:
                f.write('#!/bin/sh\necho "%s %s refuses to install (a test of a failed upgrade)" >&2\nexit 1\n'
                        % (PKG, version))
            os.chmod(os.path.join(d, 'DEBIAN/preinst'), 0o755)
        os.makedirs(os.path.dirname(self.deb(version, broken)), exist_ok=True)
        run(['dpkg-deb', '--root-owner-group', '-Zgzip', '-b', d, self.deb(version, broken)])

    def publish(self, node, deb):
        """The node's repository holds exactly this package."""
        r = os.path.join(self.work, 'repo-' + node.name)
        shutil.rmtree(r, ignore_errors=True)
        os.makedirs(r)
        shutil.copy(deb, r)
        # Relative file names in the index: the repository moves to the node.
        run(['sh', '-c', 'cd "$0" && dpkg-scanpackages -m . /dev/null > Packages 2>/dev/null', r])
        with tarfile.open(r + '.tar', 'w') as t:
            t.add(r, arcname='.')
        node.put(r + '.tar', '/tmp/dvtest-ru-repo.tar')
        node.run('rm -rf {r} && mkdir -p {r} && tar -C {r} -xf /tmp/dvtest-ru-repo.tar && rm -f /tmp/dvtest-ru-repo.tar'
                 .format(r=REPO))

    def versions(self):
        """{node: version and dpkg status}, e.g. '2ii'."""
        return {n.name: output(n, "dpkg-query -W -f '${Version}${db:Status-Abbrev}' %s 2>/dev/null" % PKG).replace(' ', '')
                for n in self.nodes}

    def all_at(self, *versions):
        return {n.name: v for n, v in zip(self.nodes, versions)}

    # --- where things are --------------------------------------------------------------------

    def boots(self):
        """{node: its PID 1's start}; a node that does not answer raises LabError."""
        return {n.name: n.out(BOOT_TIME_COMMAND) for n in self.nodes}

    def boot_wall(self, node):
        """When the node's PID 1 started, in seconds since the epoch (the kernel is shared, so the
        machine's boot time plus PID 1's start ticks)."""
        with open('/proc/stat') as f:
            btime = int(re.search(r'^btime (\d+)', f.read(), re.M).group(1))
        return btime + int(node.out(BOOT_TIME_COMMAND)) // os.sysconf('SC_CLK_TCK')

    def upgraded_at(self, node, version):
        """When dpkg installed that version on the node, in seconds since the epoch (None: never)."""
        line = output(node, "grep ' status installed %s:all %s$' /var/log/dpkg.log | tail -n1" % (PKG, version))
        if not line:
            return None
        return int(time.mktime(time.strptime(' '.join(line.split()[:2]), '%Y-%m-%d %H:%M:%S')))

    def where(self):
        """{guest: (node, state)} of every guest of the test, wherever it is; a guest defined
        twice shows under both as a list, which no check accepts."""
        found = {}
        for n in self.nodes:
            for name in n.out('virsh list --all --name').split():
                if name.startswith('dvtest-ru-'):
                    found.setdefault(name, []).append((n.name, n.guest_state(name)))
        return {g: seen[0] if len(seen) == 1 else seen for g, seen in found.items()}

    def at_home(self, *guests):
        """Whether the guests (all by default) are where they started, in their state."""
        guests = guests or GUESTS
        now = self.where()
        ok = all(now.get(g) == (self.home[g].name, self.state[g]) for g in guests) and set(now) == set(GUESTS)
        if not ok:
            print('guests: %s' % now)
        return ok

    def drained(self):
        """The nodes that have an evacuation record."""
        return [n.name for n in self.nodes if n.ok('test -e %s' % RECORD)]

    def one_boot(self, guest):
        """Across every node's serial log, a single boot and no gap in the heartbeat."""
        text = ''.join(n.serial(guest) for n in self.nodes)
        boots = text.count(BOOT_MARKER)
        beats = sorted(set(int(b) for b in re.findall(r'heartbeat (\d+)', text)))
        gaps = [(x, y) for x, y in zip(beats, beats[1:]) if y - x > 2]
        print('%s: %d boot(s), heartbeats %s..%s, gaps %s' % (guest, boots, beats[:1], beats[-1:], gaps))
        return boots == 1 and bool(beats) and not gaps

    def serial_order(self, version, nodes):
        """Each node's upgrade, then its reboot, came after the previous node's reboot."""
        prev = 0
        for n in nodes:
            u, r = self.upgraded_at(n, version), self.boot_wall(n)
            print('%s: upgraded at %s, rebooted at %s' % (n, u and time.strftime('%T', time.localtime(u)),
                                                          time.strftime('%T', time.localtime(r))))
            if u is None or u < prev or r < u:
                return False
            prev = r
        return True

    def corosync_history(self, since, expected):
        """Corosync's own log on every node since then: no node ever saw a membership without
        quorum, at most one node was out at any time, and the nodes went out (and came back) in
        the order expected."""
        names, events, bad = {}, [], []
        for n in self.nodes:
            text = output(n, "corosync-quorumtool -l | awk '$1 ~ /^[0-9]+$/ {print \"ID\", $1, $3}'; "
                          "journalctl -u corosync --since @%d --no-pager -o short-unix "
                          "| grep -e 'QUORUM\\] Members\\[' -e 'non-primary'" % since)
            for line in text.splitlines():
                f = line.split()
                if f and f[0] == 'ID':
                    names[f[1]] = f[2]
                elif 'non-primary' in line:
                    bad.append(line.strip())
                else:
                    m = re.search(r'Members\[\d+\]: ([\d ]+)', line)
                    if m:
                        events.append((float(f[0]), n.name, m.group(1).split()))
        events.sort()
        everyone = set(names)
        out_seq = []
        for t, seen_by, members in events:
            if members == [k for k, v in names.items() if v == seen_by]:
                continue    # a node that just started, before it joined: its own view, not the cluster
            gone = sorted(everyone - set(members))
            if len(gone) > 1 or 2 * len(members) <= len(everyone):
                bad.append('%s saw members %s at %d' % (seen_by, ' '.join(members), t))
            label = ' '.join(names[k] for k in gone)
            if gone and (not out_seq or out_seq[-1] != label):
                out_seq.append(label)
            if not gone and out_seq and out_seq[-1] != '':
                out_seq.append('')
        order = [x for x in out_seq if x]
        print('corosync: nodes out one at a time: %s; problems: %s' % (' '.join(order) or 'none', bad or 'none'))
        return bool(names) and not bad and order == [n.name for n in expected]

    # --- the play -----------------------------------------------------------------------------

    def upgrade(self, *options, nodes=3):
        play = self.lab.playbook('debvirt.cluster.rolling_upgrade',
                                 '-e', json.dumps(dict(rolling_upgrade_boot_time_command=BOOT_TIME_COMMAND)),
                                 *options, timeout=600 + nodes * NODE_ALLOWANCE)
        say('rolling upgrade %s: rc %s after %.0f s' % (' '.join(options), play.rc, play.seconds))
        return play

    def changed_total(self, play):
        return sum(play.changed(n) for n in self.nodes)


class Sampler:
    """Every 2 s, each node's quorum view, its PID 1's start and where the running guests count."""

    PROBE = ('q=$(corosync-quorumtool -s 2>/dev/null | sed -n "s/^Quorate: *//p"); b=$(%s); g=""; '
             'for d in $(virsh list --name 2>/dev/null | grep "^dvtest-ru-"); do '
             'g="$g $d:$(sed -n "s/.*heartbeat \\([0-9]\\+\\).*/\\1/p" /var/log/libvirt/qemu/$d.serial.log | tail -n1)"; '
             'done; echo "quorate=${q:-none} boot=$b$g"' % BOOT_TIME_COMMAND)

    def __init__(self, nodes):
        self.nodes = nodes
        self.samples = []     # (time, node, {'quorate': bool, 'boot': str, 'beats': {guest: n}} or None: down)
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        while not self.stopping.is_set():
            for n in self.nodes:
                try:
                    r = n.run(self.PROBE, check=False, timeout=5)
                    f = r.stdout.split() if r.returncode == 0 else []
                except LabError:
                    f = []
                sample = None
                if len(f) >= 2 and f[0].startswith('quorate='):
                    beats = dict(item.split(':', 1) for item in f[2:] if ':' in item)
                    sample = dict(quorate=f[0] == 'quorate=Yes', boot=f[1],
                                  beats={k: int(v) for k, v in beats.items() if v.isdigit()})
                self.samples.append((int(time.time()), n.name, sample))
            self.stopping.wait(2)

    def stop(self):
        # A few samples more of the lab as the play left it.
        time.sleep(4)
        self.stopping.set()
        self.thread.join()

    def quorum_held(self):
        """In every round of samples at least two nodes saw a quorate cluster."""
        rounds, current = [], {}
        for _t, n, s in self.samples:
            if n in current:
                rounds.append(current)
                current = {}
            current[n] = bool(s and s['quorate'])
        rounds.append(current)
        # The sampler may be stopped half-way through a round.
        rounds = [r for r in rounds if len(r) == len(self.nodes)]
        bad = [r for r in rounds if sum(r.values()) < 2]
        print('%d rounds of samples, %d with fewer than two quorate nodes' % (len(rounds), len(bad)))
        return not bad and len(rounds) >= 5

    def counted_across_reboot(self, guest, home):
        """Samples taken just before and just after the home node's reboot (its PID 1 changed)
        find the guest running on another node, its heartbeat higher after."""
        seen = []                   # (time, node, beat) of each sighting of the guest
        last_old = change = boot = None
        for t, n, s in self.samples:
            if not s:
                continue
            if guest in s['beats']:
                seen.append((t, n, s['beats'][guest]))
            if n == home.name and change is None:
                if boot is not None and s['boot'] != boot:
                    change = t
                else:
                    last_old = t
                boot = s['boot']
        if change is None:
            print('no reboot of %s seen by the sampler' % home)
            return False
        before = [w for w in seen if w[0] <= last_old]
        after = [w for w in seen if w[0] >= change]
        if not before or not after:
            print('%s not seen around the reboot of %s' % (guest, home))
            return False
        b, a = before[-1], after[0]
        print('%s: heartbeat %d on %s before the reboot of %s, %d on %s after' % (guest, b[2], b[1], home, a[2], a[1]))
        # Seen on the node before it was emptied is fine: the guest then counted on through the move too.
        return a[1] != home.name and a[2] > b[2]


class Run:
    """One sampled run of the play: the Play, the Sampler, when it started and the nodes' boots
    before and after."""

    def __init__(self, env, *options):
        self.boots_before = env.boots()
        self.sampler = Sampler(env.nodes)
        self.since = int(time.time())
        try:
            self.play = env.upgrade(*options)
        finally:
            self.sampler.stop()
        self.boots = env.boots()


def lines_with(text, part):
    return sum(1 for line in text.splitlines() if part in line)


def result_order(text):
    """The nodes in the order the play reported results, runs folded."""
    order = []
    for m in re.finditer(r'^(?:ok|changed|fatal|skipping): \[([^]]*)\]', text, re.M):
        host = m.group(1).split(' -> ')[0]
        if not order or order[-1] != host:
            order.append(host)
    return order


@pytest.fixture(scope='module')
def env(lab, images, work, module_cleanup):
    """The three nodes in a quorate cluster with SSH trust (site.yml forms it if not), holding no
    guest of others; the packages built, version 1 installed and version 2 published on every
    node, apt reading only that; the guests defined, g1 and g2 counting."""
    e = Env(lab, str(work), lab.nodes[:3])

    def after():
        e.clean()
        if not e.whole():
            raise LabError('the lab is not left whole: every node up, libvirtd running, quorate with 3 votes')
    module_cleanup.add(after)
    e.clean()
    nodes = e.nodes
    if not e.whole(timeout=0) or not all(trust(a, b, timeout=0) for a in nodes for b in nodes if a != b):
        # The guests move over the members' SSH trust; the reboots must keep quorum.
        say('cluster not formed (or no SSH trust): playbooks/site.yml')
        play = lab.playbook('debvirt.cluster.site')
        assert play.ok, play
    assert e.whole(), 'the cluster is not whole before the test'
    # The playbook empties each node of every guest, and a reboot stops whatever stays: the test
    # does neither to guests it does not own.
    foreign = ['%s: %s' % (n, d) for n in nodes
               for d in n.out('virsh list --all --name; virsh -c lxc:///system list --all --name').split()
               if not d.startswith('dvtest-ru-')]
    assert not foreign, 'the lab nodes hold guests of others (the rolling upgrade would move or stop them): %s' % foreign
    if not shutil.which('dpkg-scanpackages'):
        run(['apt-get', 'install', '-y', '-q', 'dpkg-dev'])
    for v in (1, 2, 3, 4):
        e.build(v)
    e.build(3, broken=True)
    for n in nodes:
        n.put(e.deb(1), '/tmp/%s.deb' % PKG)
        n.run('dpkg -i /tmp/{p}.deb >/dev/null && rm -f /tmp/{p}.deb'.format(p=PKG))
        e.publish(n, e.deb(2))
        n.run('echo "deb [trusted=yes] file:%s ./" > /etc/apt/sources.list.d/dvtest-ru.list && mkdir -p %s/partial'
              % (REPO, LISTS))
        n.write('/etc/apt/apt.conf.d/99dvtest-ru',
                '// The lab has no mirror: only the repository of the rolling-upgrade lab test, with lists of '
                'its own.\nDir::Etc::SourceList "/dev/null";\nDir::State::Lists "%s/";\n' % LISTS)
        n.push_images(images)
    assert e.versions() == e.all_at('1ii', '1ii', '1ii')
    for g in GUESTS:
        e.home[g].define(heartbeat_xml(g, cmdline='console=ttyS0 no_timer_check'))
    for g in (G1, G2):
        e.home[g].run('virsh start %s >/dev/null' % g)
    # Two guests boot at once in software emulation, on a machine other labs keep busy.
    for g in (G1, G2):
        assert e.home[g].wait_log(g, 'heartbeat 2', 180), '%s does not count on %s' % (g, e.home[g])
    assert e.at_home()
    return e


# --- 1. check mode --------------------------------------------------------------------------------

@pytest.fixture(scope='module')
def check(env):
    boots = env.boots()
    play = env.upgrade('--check', '--diff')
    return play, boots


def test_check_mode_runs(check):
    play, _boots = check
    assert 'PLAY RECAP' in play.output, play


def test_check_mode_plans_the_whole_cycle_on_every_node(env, check):
    play, _boots = check
    assert [play.recap[n.name]['failed'] for n in env.nodes] == [0, 0, 0], play
    assert lines_with(play.output, 'package(s) to upgrade (%s)"' % PKG) == 3, play
    assert env.changed_total(play) >= 6, play


def test_check_mode_changed_nothing(env, check):
    _play, boots = check
    assert env.versions() == env.all_at('1ii', '1ii', '1ii')
    assert env.boots() == boots
    assert env.at_home()


# --- 2. the upgrade -------------------------------------------------------------------------------

@pytest.fixture(scope='module')
def upgrade(env, check):
    return Run(env)


def test_the_rolling_upgrade_succeeds(upgrade):
    assert upgrade.play.ok, upgrade.play


def test_every_node_at_version_2(env, upgrade):
    assert env.versions() == env.all_at('2ii', '2ii', '2ii')


def test_every_node_rebooted(env, upgrade):
    assert all(upgrade.boots[n.name] != upgrade.boots_before[n.name] for n in env.nodes), \
        (upgrade.boots_before, upgrade.boots)


def test_the_results_come_node_by_node(env, upgrade):
    assert result_order(upgrade.play.output) == [n.name for n in env.nodes]


def test_each_upgrade_and_reboot_after_the_previous_reboot(env, upgrade):
    assert env.serial_order(2, env.nodes)


def test_two_nodes_quorate_in_every_sample(upgrade):
    assert upgrade.sampler.quorum_held()


def test_corosync_saw_one_node_out_at_a_time_in_order(env, upgrade):
    assert env.corosync_history(upgrade.since, env.nodes)


def test_g1_counted_elsewhere_across_its_nodes_reboot(env, upgrade):
    assert upgrade.sampler.counted_across_reboot(G1, env.home[G1])


def test_g2_counted_elsewhere_across_its_nodes_reboot(env, upgrade):
    assert upgrade.sampler.counted_across_reboot(G2, env.home[G2])


def test_g1_one_boot_no_gap(env, upgrade):
    assert env.one_boot(G1)


def test_g2_one_boot_no_gap(env, upgrade):
    assert env.one_boot(G2)


def test_guests_back_home_after_the_upgrade(env, upgrade):
    assert env.at_home()


def test_no_node_left_drained_after_the_upgrade(env, upgrade):
    assert env.drained() == []


# --- 3. nothing to upgrade -----------------------------------------------------------------------

@pytest.fixture(scope='module')
def rerun(env, upgrade):
    return env.upgrade()


def test_a_rerun_with_nothing_to_upgrade_is_unchanged(env, rerun):
    assert rerun.unchanged(env.nodes), rerun
    assert lines_with(rerun.output, 'nothing to upgrade; left as it is') == 3, rerun


def test_the_rerun_rebooted_and_moved_nothing(env, upgrade, rerun):
    assert env.boots() == upgrade.boots
    assert env.at_home()


@pytest.fixture(scope='module')
def recheck(env, rerun):
    return env.upgrade('--check')


def test_check_mode_with_nothing_to_upgrade_is_unchanged(env, recheck):
    assert recheck.unchanged(env.nodes), recheck


# --- 4. a failure on the second node -------------------------------------------------------------

@pytest.fixture(scope='module')
def failure(env, recheck):
    n1, n2, n3 = env.nodes
    env.publish(n1, env.deb(3))
    env.publish(n2, env.deb(3, broken=True))
    env.publish(n3, env.deb(3))
    return Run(env)


def test_the_play_fails(failure):
    assert failure.play.rc != 0, failure.play


def test_it_says_it_stopped_at_n2_which_stays_drained(env, failure):
    n1, n2, n3 = env.nodes
    text = failure.play.output
    for line in text.splitlines():
        if line.startswith('fatal: [%s]' % n2) and 'Rolling upgrade stopped' in line:
            print(json.loads(line.split(' => ', 1)[1])['msg'].replace('\n', ' '))
    assert re.search('Rolling upgrade stopped at %s: task .Upgrade its packages. failed' % n2, text), failure.play
    assert re.search(r'%s stays drained, its guests where the evacuation put them: %s on (%s|%s) \(recorded'
                     % (n2, G2, n1, n3), text), failure.play


def test_n1_upgraded_and_rebooted_n2_n3_neither(env, upgrade, failure):
    n1, n2, n3 = env.nodes
    assert env.versions() == env.all_at('3ii', '2ii', '2ii')
    assert failure.boots[n1.name] != upgrade.boots[n1.name], '%s did not reboot' % n1
    assert [failure.boots[n.name] for n in (n2, n3)] == [upgrade.boots[n.name] for n in (n2, n3)], \
        '%s or %s rebooted' % (n2, n3)


def test_no_task_ran_on_n3(env, failure):
    assert '[%s]' % env.nodes[2] not in failure.play.output, failure.play


def test_n2_drained_g2_elsewhere_g1_g3_at_home(env, failure):
    n1, _n2, n3 = env.nodes
    assert env.where().get(G2) in ((n1.name, 'running'), (n3.name, 'running')), env.where()
    assert env.at_home(G1, G3)


def test_n2_record_names_g2_and_the_rolling_upgrade_mark_set(env, failure):
    n2 = env.nodes[1]
    record = json.loads(n2.read(RECORD))
    print(record)
    assert record['by'] == 'rolling_upgrade'
    assert G2 in [g['name'] for g in record['guests']]
    assert n2.out('crm_attribute --node %s --name debvirt-drained --query --quiet --lifetime forever' % n2) == 'true'


def test_quorum_held_through_the_failure(failure):
    assert failure.sampler.quorum_held()


def test_corosync_saw_only_n1_out(env, failure):
    assert env.corosync_history(failure.since, env.nodes[:1])


# --- 5. resume ------------------------------------------------------------------------------------

@pytest.fixture(scope='module')
def resume(env, failure):
    env.publish(env.nodes[1], env.deb(3))
    return Run(env)


def test_the_rerun_finishes_the_upgrade(resume):
    assert resume.play.ok, resume.play


def test_every_node_at_version_3(env, resume):
    assert env.versions() == env.all_at('3ii', '3ii', '3ii')


def test_n1_left_as_it_was(env, failure, resume):
    n1 = env.nodes[0]
    assert '%s: nothing to upgrade; left as it is' % n1 in resume.play.output, resume.play
    assert resume.boots[n1.name] == failure.boots[n1.name], '%s rebooted' % n1


def test_n2_then_n3_upgraded_and_rebooted(env, resume):
    assert env.serial_order(3, env.nodes[1:])


def test_g2_counted_across_n2s_reboot(env, resume):
    assert resume.sampler.counted_across_reboot(G2, env.nodes[1])


def test_guests_back_home_after_the_resume(env, resume):
    assert env.at_home()


def test_g1_g2_one_boot_each_no_gap(env, resume):
    assert env.one_boot(G1)
    assert env.one_boot(G2)


def test_no_node_left_drained_after_the_resume(env, resume):
    assert env.drained() == []


def test_quorum_held_through_the_resume(resume):
    assert resume.sampler.quorum_held()


def test_corosync_saw_n2_then_n3_out(env, resume):
    assert env.corosync_history(resume.since, env.nodes[1:])


# --- 6. a node drained by hand stays drained ----------------------------------------------------

@pytest.fixture(scope='module')
def evacuated(env, resume):
    n3 = env.nodes[2]
    # evacuate.yml empties N3 (its stopped guest moves offline); version 4 is for N3 alone.
    env.publish(n3, env.deb(4))
    return env.lab.playbook('debvirt.cluster.evacuate', '-e', 'evacuate_node=%s' % n3)


def test_evacuate_drains_n3_by_hand(evacuated):
    assert evacuated.ok, evacuated


@pytest.fixture(scope='module')
def by_hand(env, evacuated):
    n3 = env.nodes[2]
    boot = n3.out(BOOT_TIME_COMMAND)
    return env.upgrade('-e', 'rolling_upgrade_hosts=%s' % n3, nodes=1), boot


def test_a_node_drained_by_hand_is_upgraded_and_rebooted(env, by_hand):
    play, boot = by_hand
    n3 = env.nodes[2]
    assert env.versions()[n3.name] == '4ii', play
    assert n3.out(BOOT_TIME_COMMAND) != boot, play


def test_and_stays_drained_as_it_says(env, by_hand):
    play, _boot = by_hand
    n1, n2, n3 = env.nodes
    assert '%s: 1 package(s) to upgrade (%s); drained by hand before, it stays drained' % (n3, PKG) in play.output, play
    assert env.where().get(G3) in ((n1.name, 'shut off'), (n2.name, 'shut off')), env.where()
    assert n3.ok("grep -q 'by.:..evacuate' %s" % RECORD)


@pytest.fixture(scope='module')
def restored(env, by_hand):
    return env.lab.playbook('debvirt.cluster.restore', '-e', 'evacuate_node=%s' % env.nodes[2])


def test_restore_brings_g3_back(restored):
    assert restored.ok, restored


# --- 7. forced ------------------------------------------------------------------------------------

@pytest.fixture(scope='module')
def forced(env, restored):
    boots = env.boots()
    play = env.upgrade('-e', 'rolling_upgrade_hosts=%s' % env.nodes[0], '-e', 'rolling_upgrade_force=true', nodes=1)
    return play, boots


def test_forced_on_n1_alone_nothing_to_upgrade_still_rebooted(env, forced):
    play, boots = forced
    n1, n2, n3 = env.nodes
    now = env.boots()
    assert '%s: nothing to upgrade; forced' % n1 in play.output, play
    assert now[n1.name] != boots[n1.name], '%s did not reboot' % n1
    assert [now[n.name] for n in (n2, n3)] == [boots[n.name] for n in (n2, n3)], '%s or %s rebooted' % (n2, n3)


def test_guests_back_home_after_forcing(env, forced):
    assert env.at_home()


def test_g1_one_boot_no_gap_after_forcing(env, forced):
    assert env.one_boot(G1)


def test_no_node_left_drained_after_forcing(env, forced):
    assert env.drained() == []


# --- 8. a reboot that would cost quorum is refused -------------------------------------------------

@pytest.fixture(scope='module')
def no_quorum(env, forced, module_cleanup):
    n1, _n2, n3 = env.nodes
    module_cleanup.add(n3.run, 'systemctl start corosync pacemaker')
    n3.run('systemctl stop pacemaker corosync')
    assert eventually(lambda: n1.quorum().total == 2, 30), '%s is still in the cluster: not 2 votes of 3' % n3
    boots = env.boots()
    play = env.upgrade('-e', 'rolling_upgrade_hosts=%s' % n1, '-e', 'rolling_upgrade_force=true', nodes=1)
    return play, boots


def test_forcing_n1_down_then_is_refused(env, no_quorum):
    play, _boots = no_quorum
    n1 = env.nodes[0]
    assert play.rc != 0, play
    # The task's name is quoted in the message: any quote will do.
    message = re.escape('Rolling upgrade stopped at %s: task @The cluster must stay quorate while the node is down@ '
                        'failed: Not taking %s down: the cluster would lose quorum without it (2 votes present, 2 '
                        'needed). Bring the missing members back first. Nothing was changed on it.'
                        % (n1, n1)).replace('@', '.')
    assert re.search(message, play.output), play


def test_refused_before_anything_was_touched(env, no_quorum):
    _play, boots = no_quorum
    n1, n2, _n3 = env.nodes
    now = env.boots()
    assert [now[n.name] for n in (n1, n2)] == [boots[n.name] for n in (n1, n2)], '%s or %s rebooted' % (n1, n2)
    assert env.at_home()
    assert env.drained() == []
