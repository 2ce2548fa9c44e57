# -*- coding: utf-8 -*-
# Copyright: debvirt.cluster developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Role node through playbooks/site.yml on every node of the lab.

From the files the role manages as the packages left them: check mode predicts changes and
changes nothing; the first run succeeds (warning that guests use software emulation, the lab
has no /dev/kvm); a second run and check mode report changed=0; libvirtd is enabled, running
and answering, each node's host UUID is its own and the recorded one, virt_type qemu; bad
input fails in preflight with a message that says why.
"""

from __future__ import annotations

import json

import pytest

from harness import say

SITE = 'debvirt.cluster.site'
MANAGED = '/etc/libvirt/libvirtd.conf /etc/libvirt/qemu.conf /etc/default/libvirtd /etc/ansible/facts.d/debvirt.fact'


def fingerprint(node):
    # The socket, not the daemon: as the packages install it, libvirtd exits after 120 s idle
    # (--timeout 120) and its socket starts it again, so its own state says nothing of a change.
    return node.run('md5sum %s 2>&1; systemctl is-enabled libvirtd; systemctl is-active libvirtd.socket' % MANAGED,
                    check=False).stdout


@pytest.fixture(scope='module')
def fresh(lab):
    """The managed files as the packages installed them; their fingerprints, node by node."""
    nodes = lab.nodes
    for node in nodes:
        # A guest "demo" that demo.sh left would stop the upgrade test (it moves no guest it
        # does not own).
        node.run('virsh destroy demo; virsh undefine demo', check=False)
        for path in ('/etc/libvirt/libvirtd.conf', '/etc/default/libvirtd'):
            node.write(path, (lab.template_rootfs / path.lstrip('/')).read_text())
        node.run('rm -f /etc/ansible/facts.d/debvirt.fact; rmdir /etc/ansible/facts.d /etc/ansible 2>/dev/null;'
                 ' systemctl restart libvirtd')
    return {node.name: fingerprint(node) for node in nodes}


@pytest.fixture(scope='module')
def check1(lab, fresh):
    play = lab.playbook(SITE, check=True, diff=True)
    say('check mode on fresh nodes: %.1f s' % play.seconds)
    return play


@pytest.fixture(scope='module')
def apply1(lab, check1):
    play = lab.playbook(SITE)
    say('first run: %.1f s' % play.seconds)
    return play


@pytest.fixture(scope='module')
def apply2(lab, apply1):
    play = lab.playbook(SITE)
    say('second run: %.1f s' % play.seconds)
    return play


def test_check_mode_on_fresh_nodes_succeeds(check1):
    assert check1.ok, check1


def test_check_mode_predicts_changes_on_every_node(lab, check1):
    assert sorted(check1.recap) == lab.names and all(n > 0 for n in check1.changed().values()), check1.changed()


def test_check_mode_shows_the_host_uuid_diff(check1):
    assert any(line.startswith('+host_uuid = "') for line in check1.output.splitlines()), check1


def test_check_mode_changed_nothing(lab, fresh, check1):
    after = {node.name: fingerprint(node) for node in lab.nodes}
    assert after == fresh


def test_first_run_succeeds(apply1):
    assert apply1.ok, apply1


def test_first_run_warns_of_software_emulation(apply1):
    assert 'WARNING: KVM is not usable' in apply1.output, apply1


def test_second_run_changes_nothing_on_any_node(lab, apply2):
    assert apply2.unchanged(lab.names), apply2


def test_check_mode_after_apply_changes_nothing(lab, apply2):
    play = lab.playbook(SITE, check=True, diff=True)
    assert play.unchanged(lab.names), play


def test_libvirtd_enabled_running_and_answering(lab, apply2):
    bad = [n.name for n in lab.nodes if not n.ok('systemctl is-enabled libvirtd && systemctl is-active libvirtd'
                                                 ' && virsh -c qemu:///system version')]
    assert not bad


def host_uuid(node):
    return node.out("virsh -c qemu:///system capabilities | sed -n 's:.*<uuid>\\(.*\\)</uuid>.*:\\1:p' | head -n1")


def test_host_uuid_is_the_recorded_one_and_virt_type_qemu(lab, apply2):
    seen = {}
    for node in lab.nodes:
        fact = json.loads(node.read('/etc/ansible/facts.d/debvirt.fact'))
        seen[node.name] = (host_uuid(node), fact.get('host_uuid'), fact.get('virt_type'))
    assert all(uuid and uuid == recorded and virt == 'qemu' for uuid, recorded, virt in seen.values()), seen


def test_host_uuids_differ_between_nodes(lab, apply2):
    uuids = {node.name: host_uuid(node) for node in lab.nodes}
    assert all(uuids.values()) and len(set(uuids.values())) == len(uuids), uuids


def test_virt_type_kvm_without_kvm_fails_with_a_clear_message(lab, apply2):
    play = lab.playbook(SITE, '-e', 'node_virt_type=kvm')
    assert play.rc != 0 and 'node_virt_type is kvm, but on' in play.output, play


def test_a_same_digit_host_uuid_fails_before_changing_anything(lab, apply2):
    play = lab.playbook(SITE, '-e', 'node_host_uuid=11111111-1111-1111-1111-111111111111')
    assert play.rc != 0 and 'node_host_uuid must be a UUID' in play.output, play
    assert play.recap and all(r['changed'] == 0 for r in play.recap.values()), play
