# -*- coding: utf-8 -*-
# Copyright: debvirt.cluster developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Role cluster and the modules cluster_member and cluster_info on real corosync 3 and pacemaker.

The first three nodes start as the packages installed them (corosync's loopback-only default,
no authkey, no cluster SSH trust). Check mode changes nothing; the role forms a quorate 3-node
cluster (same nodelist and authkey, 0400, everywhere; knet with aes256/sha256; pacemaker online;
virsh qemu+ssh:// between all); a rerun and check mode are changed=0; cluster_info agrees with
corosync-quorumtool. A fourth node (added to the lab for the file) joins after check mode showed
the nodelist diff; a node running a guest cannot be removed; a node is removed and the rest stay
quorate; a removal that would cost quorum is refused; a node of another cluster and a name
mismatch are refused with nothing changed. The lab is put back to three nodes in cluster
"debvirt" (as demo.sh makes it), with checks. Last, a two-node cluster (two_node, a cluster
property) on a lab of its own keeps quorum on one node.

The tests run in order, each scenario on what the one before left.
"""

from __future__ import annotations

import pytest

from harness import eventually, say

ROLE = """\
- name: The cluster
  hosts: nodes
  gather_facts: false
  roles:
    - role: debvirt.cluster.cluster
      vars:
        # The demo's name, so that the lab stays usable for tests/lab/demo.sh.
        cluster_name: debvirt
        cluster_token: 3000
        cluster_quorum_timeout: 60
"""

PAIR_ROLE = """\
- name: Two-node cluster
  hosts: nodes
  gather_facts: false
  roles:
    - role: debvirt.cluster.cluster
      vars:
        cluster_name: pair
        cluster_two_node: true
        cluster_quorum_timeout: 60
        cluster_pacemaker_properties:
          stonith-enabled: false
"""

BUSY = 'dvtest-busy'
BUSY_XML = """<domain type='qemu'>
  <name>%s</name>
  <memory unit='MiB'>32</memory>
  <vcpu>1</vcpu>
  <os><type arch='x86_64'>hvm</type></os>
  <features><acpi/></features>
</domain>
""" % BUSY

# Back to what the packages installed: no authkey, a CIB of the default cluster, no cluster
# SSH trust (the loopback-only corosync.conf is written from the template after this).
RESET = """systemctl stop pacemaker corosync; rm -f /etc/corosync/authkey /etc/corosync/corosync.conf.debvirt-removed;
rm -rf /var/lib/pacemaker/cib/* /var/lib/pacemaker/cib.debvirt-before-join;
rm -f /root/.ssh/id_debvirt_cluster /root/.ssh/id_debvirt_cluster.pub /root/.ssh/known_hosts /root/.ssh/config;
sed -i "/debvirt.cluster: members of/,/debvirt.cluster: members of/d; / debvirt-cluster@/d" /root/.ssh/authorized_keys"""


def reset_node(lab, node):
    node.run(RESET)
    node.write('/etc/corosync/corosync.conf', (lab.template_rootfs / 'etc/corosync/corosync.conf').read_text())
    node.run('systemctl enable --now corosync pacemaker')


def fingerprints(nodes):
    """A node's cluster state, for the "nothing changed" checks."""
    return {n.name: n.run('md5sum /etc/corosync/corosync.conf /etc/corosync/authkey 2>&1; systemctl is-active corosync;'
                          ' corosync-cmapctl -g totem.config_version 2>&1', check=False).stdout for n in nodes}


def quorate_with(votes, nodes):
    """{node: quorum} of the nodes that are not quorate with this many votes (empty: all are)."""
    quorums = {n.name: n.quorum() for n in nodes}
    return {name: q for name, q in quorums.items() if not (q.quorate and q.total == votes)}


def same_everywhere(path, nodes):
    return len({n.out('md5sum < %s' % path) for n in nodes}) == 1


def info_disagrees(lab, nodes):
    """{node: (corosync-quorumtool, cluster_info)} where the two differ (empty: they agree)."""
    differ = {}
    for node in nodes:
        q = node.quorum()
        tool = (q.quorate, q.expected, q.total, q.nodeids)
        r = lab.module(node, 'cluster_info', {'guests': False}).one()
        info = (r['quorum']['quorate'], r['quorum']['expected_votes'], r['quorum']['total_votes'],
                sorted(m['nodeid'] for m in r['members'] if m['online'])) if not r['failed'] else r
        if not q.nodeids or tool != info:
            differ[node.name] = (tool, info)
    return differ


def refused(result, message):
    return result['failed'] and message in result.get('msg', '')


@pytest.fixture(scope='module')
def role(lab, work):
    path = work / 'cluster.yml'
    path.write_text(ROLE)

    def play(*options, timing=None, **kw):
        result = lab.playbook(path, *options, **kw)
        if timing:
            say('%s: %.1f s' % (timing, result.seconds))
        return result
    return play


@pytest.fixture(scope='module')
def three(lab, module_cleanup):
    """The first three nodes, reset to the packages' default; the lab has exactly three."""
    if len(lab.names) != 3:
        lab.up(3)
    # What a failed run leaves (a fourth node) must not stay for the tests after this file.
    module_cleanup.add(lambda: len(lab.names) == 3 or lab.up(3))
    nodes = lab.nodes
    for node in nodes:
        node.run('virsh -q destroy %s; virsh -q undefine %s' % (BUSY, BUSY), check=False)
        reset_node(lab, node)
    return nodes


@pytest.fixture(scope='module')
def fresh(three):
    return fingerprints(three)


# --- check mode on fresh nodes, then the role forms the cluster ---------------------------------

@pytest.fixture(scope='module')
def check1(role, fresh):
    return role(check=True, diff=True)


def test_check_mode_on_fresh_nodes_succeeds(check1):
    assert check1.ok, check1


def test_check_mode_predicts_the_cluster(check1):
    assert 'would join cluster debvirt' in check1.output, check1


def test_check_mode_changed_nothing(three, fresh, check1):
    assert fingerprints(three) == fresh


@pytest.fixture(scope='module')
def form(role, check1):
    return role(timing='form a 3-node cluster')


def test_the_role_forms_the_cluster(form):
    assert form.ok, form


def test_three_nodes_quorate_with_three_votes_everywhere(three, form):
    assert not quorate_with(3, three)


def test_same_corosync_conf_everywhere(three, form):
    assert same_everywhere('/etc/corosync/corosync.conf', three)


def test_same_authkey_everywhere(three, form):
    assert same_everywhere('/etc/corosync/authkey', three)


def test_authkey_mode_0400_everywhere(three, form):
    modes = {n.name: n.out('stat -c %a /etc/corosync/authkey') for n in three}
    assert set(modes.values()) == {'400'}, modes


def test_knet_aes256_sha256_token_3000(three, form):
    totem = three[0].out('corosync-cmapctl totem')
    for line in ('totem.crypto_cipher (str) = aes256', 'totem.crypto_hash (str) = sha256',
                 'totem.transport (str) = knet', 'totem.token (u32) = 3000'):
        assert line in totem, totem


def test_the_authkey_is_in_no_ansible_output(three, form):
    key_head = three[0].out('base64 -w0 /etc/corosync/authkey')[:24]
    assert key_head and key_head not in form.output


def test_pacemaker_sees_all_three_online_everywhere(three, form):
    online = 'Online: [ %s ]' % ' '.join(n.name for n in three)
    views = {n.name: eventually(lambda n=n: online in n.run('crm_mon -1', check=False).stdout, 60, 2) or n.run('crm_mon -1 2>&1', check=False).stdout
             for n in three}
    assert all(view is True for view in views.values()), views


def test_virsh_qemu_ssh_from_each_node_to_each_other(three, form):
    failed = [(a.name, b.name) for a in three for b in three
              if a != b and a.run('virsh -c qemu+ssh://root@%s/system hostname' % b.name, check=False).stdout.strip() != b.name]
    assert not failed


def test_host_keys_are_pinned_not_ignored(three, form):
    first, second = three[0], three[1]
    assert first.ok("grep -q '^%s,%s ssh-ed25519 ' /root/.ssh/known_hosts && ! grep -qi 'StrictHostKeyChecking no' /root/.ssh/config"
                    % (second.name, second.address))


def test_second_run_changes_nothing(role, form, lab):
    play = role(timing='second run')
    assert play.unchanged(), play


def test_check_mode_after_apply_changes_nothing(role, form):
    play = role(check=True, diff=True)
    assert play.unchanged(), play


def test_cluster_info_agrees_with_corosync_quorumtool(lab, three, form):
    assert not info_disagrees(lab, three)


# --- a fourth node joins --------------------------------------------------------------------

@pytest.fixture(scope='module')
def four(lab, role, form):
    """The lab grown to four nodes, the fourth reset and given the cluster's SSH trust.

    Planning a join reads the new node over SSH, so the trust (tag cluster_ssh) has to be there
    before check mode can show the join.
    """
    nodes = lab.up(4)
    reset_node(lab, nodes[3])
    trust = role('--tags', 'cluster_ssh')
    assert trust.ok, trust
    return nodes


@pytest.fixture(scope='module')
def join_check(role, four):
    before = fingerprints(four)
    return role(check=True, diff=True), before


def test_check_mode_with_a_fourth_node_succeeds(join_check):
    assert join_check[0].ok, join_check[0]


def test_check_mode_shows_the_fourth_node_added(four, join_check):
    assert '"name": "%s"' % four[3].name in join_check[0].output, join_check[0]


def test_check_mode_did_not_touch_corosync(four, join_check):
    assert fingerprints(four) == join_check[1]


@pytest.fixture(scope='module')
def join(role, join_check):
    return role(timing='join of a fourth node')


def test_the_role_joins_the_fourth_node(join):
    assert join.ok, join


def test_four_nodes_quorate_with_four_votes_everywhere(four, join):
    assert not quorate_with(4, four)


def test_same_corosync_conf_on_the_four(four, join):
    assert same_everywhere('/etc/corosync/corosync.conf', four)


def test_config_version_bumped_to_4(four, join):
    assert four[3].out('corosync-cmapctl -g totem.config_version').endswith('= 4')


def test_cluster_info_agrees_on_the_four(lab, four, join):
    assert not info_disagrees(lab, four)


# --- a node with a guest is not removed -----------------------------------------------------

@pytest.fixture(scope='module')
def busy(four, join, module_cleanup):
    """A guest running on the third node."""
    third = four[2]
    module_cleanup.add(third.run, 'virsh -q destroy %s; virsh -q undefine %s' % (BUSY, BUSY), check=False)
    third.define(BUSY_XML)
    third.run('virsh -q start %s' % BUSY)
    return third


def test_cluster_info_lists_a_guest_running_on_another_node(lab, four, busy):
    r = lab.module(four[0], 'cluster_info', {}).one()
    members = {m['name']: m for m in r.get('members', [])}
    assert {'name': BUSY, 'state': 'running'} in (members.get(busy.name, {}).get('guests') or []), r


@pytest.fixture(scope='module')
def busy_removal(lab, four, busy):
    before = fingerprints(four)
    return lab.module(four[0], 'cluster_member', {'name': busy.name, 'state': 'absent'}).one(), before


def test_removing_a_node_that_runs_a_guest_is_refused(busy_removal):
    assert refused(busy_removal[0], 'still runs guest(s) %s' % BUSY), busy_removal[0]


def test_refused_removal_changed_nothing(four, busy_removal):
    assert fingerprints(four) == busy_removal[1]


# --- a node is removed ----------------------------------------------------------------------

@pytest.fixture(scope='module')
def removal_check(lab, four, busy, busy_removal):
    busy.run('virsh -q destroy %s; virsh -q undefine %s' % (BUSY, BUSY))
    before = fingerprints(four)
    return lab.module(four[0], 'cluster_member', {'name': four[2].name, 'state': 'absent'}, check=True, diff=True).one(), before


def test_check_mode_reports_the_removal(removal_check):
    assert any(c.get('action') == 'remove' for c in removal_check[0].get('changes', [])), removal_check[0]


def test_check_mode_removal_changes_nothing(four, removal_check):
    assert fingerprints(four) == removal_check[1]


@pytest.fixture(scope='module')
def rest(four):
    """The members left when the third node is gone."""
    return [four[0], four[1], four[3]]


@pytest.fixture(scope='module')
def removal(lab, four, removal_check):
    return lab.module(four[0], 'cluster_member', {'name': four[2].name, 'state': 'absent'}).one()


def test_the_third_node_is_removed(removal):
    assert not removal['failed'] and removal['changed'], removal


def test_the_rest_stay_quorate_with_three_votes(rest, removal):
    assert not quorate_with(3, rest)


def test_expected_votes_are_three_on_the_rest(rest, removal):
    assert {n.name: n.quorum().expected for n in rest} == {n.name: 3 for n in rest}


def test_the_removed_node_stopped_its_config_moved_aside(four, removal):
    assert four[2].ok('! systemctl is-active --quiet corosync && test -f /etc/corosync/corosync.conf.debvirt-removed'
                      ' && ! test -e /etc/corosync/corosync.conf')


def test_same_corosync_conf_on_the_rest(rest, removal):
    assert same_everywhere('/etc/corosync/corosync.conf', rest)


def test_removing_it_again_changes_nothing(lab, four, removal):
    r = lab.module(four[0], 'cluster_member', {'name': four[2].name, 'state': 'absent'}).one()
    assert not r['failed'] and r['changed'] is False, r


def test_cluster_info_agrees_on_the_rest(lab, rest, removal):
    assert not info_disagrees(lab, rest)


# --- the quorum guard -----------------------------------------------------------------------

@pytest.fixture(scope='module')
def fourth_down(four, removal, module_cleanup):
    """corosync and pacemaker stopped on the fourth node: two of three votes left."""
    module_cleanup.add(four[3].run, 'systemctl start corosync pacemaker', check=False)
    four[3].run('systemctl stop pacemaker corosync')
    return four[3]


@pytest.fixture(scope='module')
def quorum_refusal(lab, four, fourth_down):
    before = fingerprints(four[:2])
    # force: guests (other tests' too) must not be what stops it here; quorum must.
    r = lab.module(four[0], 'cluster_member', {'name': four[1].name, 'state': 'absent', 'force': True}).one()
    return r, before


def test_a_removal_that_would_lose_quorum_is_refused(quorum_refusal):
    assert refused(quorum_refusal[0], 'without quorum'), quorum_refusal[0]


def test_the_refused_removal_changed_nothing(four, quorum_refusal):
    assert fingerprints(four[:2]) == quorum_refusal[1]


def test_the_fourth_node_back_gives_three_votes(four, quorum_refusal):
    four[3].run('systemctl start corosync pacemaker')
    assert eventually(lambda: four[0].quorum().total == 3, 30)


# --- another cluster, a wrong name, bad input -----------------------------------------------

@pytest.fixture(scope='module')
def other(lab, four, quorum_refusal):
    """The removed third node, its old config put away, forms a cluster of its own, "other"."""
    third = four[2]
    third.run('mv /etc/corosync/corosync.conf.debvirt-removed /root/dvtest-old-corosync.conf')
    third.write('/etc/corosync/corosync.conf', (lab.template_rootfs / 'etc/corosync/corosync.conf').read_text())
    return lab.module(third, 'cluster_member', {'name': third.name, 'addresses': [third.address], 'cluster_name': 'other'}).one()


def test_a_node_forms_a_cluster_of_its_own(other):
    assert not other['failed'] and other['changed'], other


@pytest.fixture(scope='module')
def other_before(four, other):
    return fingerprints(four)


def test_adding_a_node_of_another_cluster_is_refused(lab, four, other_before):
    third = four[2]
    r = lab.module(four[0], 'cluster_member', {'name': third.name, 'addresses': [third.address], 'cluster_name': 'debvirt'}).one()
    assert refused(r, "already belongs to cluster 'other'"), r


def test_a_cluster_name_mismatch_is_refused(lab, four, other_before):
    fourth = four[3]
    r = lab.module(four[0], 'cluster_member', {'name': fourth.name, 'addresses': [fourth.address], 'cluster_name': 'wrong'}).one()
    assert refused(r, 'Cluster name mismatch'), r


def test_the_refusals_changed_nothing_on_any_node(four, other_before):
    assert fingerprints(four) == other_before


def test_bad_input_is_refused_before_anything_is_read(lab, four, other_before):
    r = lab.module(four[0], 'cluster_member', {'name': lab.prefix + '9', 'addresses': ['not an address', 'x'], 'nodeid': 0}).one()
    assert refused(r, "addresses[0]: 'not an address' is not a host name"), r
    r = lab.module(four[0], 'cluster_member', {'name': lab.prefix + '9', 'addresses': ['10.77.0.99'], 'nodeid': 0}).one()
    assert refused(r, 'nodeid must be at least 1'), r


# --- back to three --------------------------------------------------------------------------

@pytest.fixture(scope='module')
def fourth_removed(lab, four, other_before):
    return lab.module(four[0], 'cluster_member', {'name': four[3].name, 'state': 'absent'}).one()


def test_the_fourth_node_is_removed(fourth_removed):
    assert not fourth_removed['failed'] and fourth_removed['changed'], fourth_removed


@pytest.fixture(scope='module')
def rejoin(lab, role, three, fourth_removed):
    reset_node(lab, three[2])
    lab.up(3)
    return role()


def test_a_removed_node_joins_again_through_the_role(rejoin):
    assert rejoin.ok, rejoin


def test_three_nodes_quorate_with_three_votes_again(three, rejoin):
    assert not quorate_with(3, three)


def test_cluster_info_agrees_on_the_three_again(lab, three, rejoin):
    assert not info_disagrees(lab, three)


# --- a two-node cluster, on a lab of its own ------------------------------------------------
# two_node keeps one node quorate when the other stops; cluster properties are set only where
# listed, once. A lab of its own (names, bridge, network) leaves the cluster above alone.

@pytest.fixture(scope='module')
def pair(lab, side_lab, work):
    other_lab = side_lab(lab.derived('p', 1), 2)
    path = work / 'pair.yml'
    path.write_text(PAIR_ROLE)
    return other_lab, path


@pytest.fixture(scope='module')
def pair_formed(pair):
    play = pair[0].playbook(pair[1])
    say('two-node cluster: %.1f s' % play.seconds)
    return play


def test_a_two_node_cluster_forms(pair_formed):
    assert pair_formed.ok, pair_formed


def test_two_node_and_wait_for_all_are_on(pair, pair_formed):
    q = pair[0].nodes[0].quorum()
    assert q.flags.startswith('2Node Quorate WaitForAll'), q.text


def test_stonith_enabled_is_false_as_asked(pair, pair_formed):
    assert pair[0].nodes[0].out('crm_attribute --type crm_config --name stonith-enabled --query --quiet') == 'false'


def test_second_run_of_the_two_node_cluster_changes_nothing(pair, pair_formed):
    play = pair[0].playbook(pair[1])
    assert play.unchanged(), play


def test_one_node_of_two_stays_quorate_when_the_other_stops(pair, pair_formed):
    first, second = pair[0].nodes
    second.run('systemctl stop pacemaker corosync')
    # A moment for corosync to notice the other one gone: a check right away proves nothing.
    eventually(lambda: first.quorum().total == 1, 10)
    assert first.quorate(), first.quorum().text
