# -*- coding: utf-8 -*-
# Copyright: debvirt.cluster developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Role node's node_bridges and their rollback, on a one-node lab of its own.

Node dvbr1 at 10.80.0.11 on bridge dvbrbr0, state in /var/lib/debvirt-lab-br
(DEBVIRT_BRIDGE_LAB_PREFIX, _NET and _STATE move it), so that it never meets the shared lab:
the file brings that lab up from nothing and takes it down at the end (KEEP_LAB=1 keeps it).
Every role run is a small playbook with that lab's inventory. The tests run in file order,
each on the state the ones before it left:

1. bad input fails before anything changes: an unknown port, vids without vlan_aware,
   duplicate names, a rollback due too early, an interface managed by systemd-networkd;
2. check mode predicts the change (diff of /etc/network/interfaces) and changes nothing, also
   with a libvirt network declared on the bridge it has yet to make;
3. apply moves the host address from eth0 to bridge vmbr0 over eth0 (VLAN-aware with vids
   2-4094 where the kernel filters VLANs on bridges; where it cannot, the role must refuse
   vlan_aware, and the plain bridge is applied); a rerun, check mode and a run after a reboot
   are changed=0;
4. a declaration that makes the node unreachable is rolled back by the armed timer, a failing
   step (a gateway that does not answer) at once;
5. a libvirt network in bridge mode on vmbr0 (node_networks); a guest on it gets a lease from a
   DHCP server on the node's LAN and answers HTTP from the lab host, through vmbr0; a change
   that would re-create vmbr0 under the guest is refused, with nothing changed.
"""

from __future__ import annotations

import json
import os
import re
import time
import urllib.request

import pytest

from harness import ROOT, Lab, LabError, eventually, heartbeat_xml, run, say

PREFIX = os.environ.get('DEBVIRT_BRIDGE_LAB_PREFIX', 'dvbr')
NET = os.environ.get('DEBVIRT_BRIDGE_LAB_NET', '10.80.0')
STATE = os.environ.get('DEBVIRT_BRIDGE_LAB_STATE', '/var/lib/debvirt-lab-br')
NODE_IP = NET + '.11'
# Documentation addresses (RFC 5737): no other lab of this machine uses them.
BAD_NET = '192.0.2'
GUEST = 'dvtest-br-guest'
LIBVIRT_NET = 'dvtest-br-net'
PLAYBOOK = """\
- name: Role node with the bridges of the test
  hosts: nodes
  gather_facts: false
  roles:
    - role: debvirt.cluster.node
"""
# The bridge-independent role variables of every run; a run's own variables override them.
BASE_VARS = {'node_virt_type': 'qemu', 'node_bridges_rollback_after': 70, 'node_bridges_confirm_timeout': 15}
ROLLED_BACK = 'The rollback restored the previous /etc/network/interfaces'


# --- the lab, the node and the role runs ---------------------------------------------------------

@pytest.fixture(scope='module')
def brlab():
    """This file's own lab of one node, from nothing; taken down after the file."""
    if PREFIX.startswith('dvlab'):
        pytest.fail("the bridge test must not use the shared lab's names (dvlab*)")
    lab = Lab(PREFIX, NET, STATE)
    lab.lock()
    try:
        run([str(ROOT / 'tests/sync-collection.sh')])
        # A lab an interrupted run left behind may hold a bridge already.
        lab.down()
        t0 = time.monotonic()
        lab.up(1)
        say('lab of one node up in %.0f s' % (time.monotonic() - t0))
        yield lab
        if not os.environ.get('KEEP_LAB'):
            lab.down()
    finally:
        lab.release()


@pytest.fixture(scope='module')
def node(brlab):
    the_node = brlab.node(1)
    if not the_node.ok('true'):
        raise LabError('%s does not answer over ssh' % the_node)
    return the_node


@pytest.fixture(scope='module')
def role(brlab, work):
    """role(tag, variables, check=, diff=): the role on the node with BASE_VARS and these; a Play."""
    playbook = work / 'play.yml'
    playbook.write_text(PLAYBOOK)

    def play(tag, variables, check=False, diff=False):
        path = work / ('%s.vars.json' % tag)
        path.write_text(json.dumps(dict(BASE_VARS, **variables)))
        result = brlab.playbook(playbook, '-e', '@%s' % path, check=check, diff=diff)
        say('  (%s: %.0f s)' % (tag, result.seconds))
        return result
    return play


def changed_some(play):
    return play.ok and play.changed(PREFIX + '1') > 0


def failed_with(play, text):
    return play.rc != 0 and text in play.output


def lines_of(play, *lines):
    """Whether the run's output has each of these as a line of its own (a diff's lines)."""
    output = play.output.splitlines()
    return all(line in output for line in lines)


def interfaces(node):
    return node.read('/etc/network/interfaces')


def addr_on(node, dev, address):
    return re.search(r' %s/' % re.escape(address), node.out('ip -o -4 addr show dev %s' % dev)) is not None


def master_of(node, dev):
    return node.out('basename $(readlink -f /sys/class/net/%s/master) 2>/dev/null || true' % dev)


def timer_armed(node):
    return 'debvirt-bridge' in node.out('systemctl list-timers --all --no-legend')


def bridges(vlan, **extra):
    """The good declaration (vmbr0 over eth0), with extra options on vmbr0."""
    return {'node_bridges': [dict({'name': 'vmbr0', 'ports': ['eth0'], 'vlan_aware': vlan}, **extra)]}


@pytest.fixture(scope='module')
def baseline(node, role):
    """The role without bridges, so that later runs only show bridge changes; the file after it."""
    return role('base', {}), interfaces(node)


@pytest.fixture(scope='module')
def vlan(node):
    """Whether this kernel filters VLANs on bridges (CONFIG_BRIDGE_VLAN_FILTERING)."""
    return node.ok("unshare --net sh -c 'ip link add dvprobe0 type bridge vlan_filtering 1'")


def test_baseline_run_of_role_node(baseline):
    play, _text = baseline
    assert play.ok, play


# --- 1. bad input fails before anything changes -------------------------------------------------

@pytest.mark.parametrize('tag, variables, message', [
    ('unknown', {'node_bridges': [{'name': 'vmbr0', 'ports': ['eth9']}]},
     'port eth9 does not exist on the host'),
    ('vids', {'node_bridges': [{'name': 'vmbr0', 'ports': ['eth0'], 'vids': '10-20'}]},
     'vids (10-20) are only for a VLAN-aware bridge'),
    ('dup', {'node_bridges': [{'name': 'vmbr0', 'ports': ['eth0']}, {'name': 'vmbr0', 'ports': []}]},
     'vmbr0 is declared 2 times'),
    ('timing', {'node_bridges': [{'name': 'vmbr0', 'ports': ['eth0']}], 'node_bridges_rollback_after': 30},
     'node_bridges_rollback_after (30 s) must be at least'),
    # The argument spec's own refusal names the unknown option.
    ('badtype', {'node_bridges': [{'name': 'vmbr0', 'ports': ['eth0'], 'stp': 'maybe', 'colour': 'blue'}]},
     'colour'),
], ids=['an unknown port', 'vids without vlan_aware', 'a bridge declared twice',
        'a rollback due before the change can be confirmed', 'a bad type and an unknown option'])
def test_refused(baseline, role, tag, variables, message):
    play = role(tag, variables)
    assert failed_with(play, message), play


@pytest.fixture
def networkd_port(node):
    """A port that systemd-networkd manages: a veth (the lab's kernel has no dummy links)."""
    try:
        node.run("ip link add dvtestbr0 type veth peer name dvtestbr1 && mkdir -p /etc/systemd/network"
                 " && printf '[Match]\\nName=dvtestbr0\\n[Network]\\nAddress=192.0.2.1/24\\n'"
                 " >/etc/systemd/network/dvtest-br.network && systemctl start systemd-networkd")
        if not eventually(lambda: re.search(r'\bconfigur(ing|ed)\b',
                                            node.run('networkctl list --no-legend dvtestbr0', check=False).stdout), 15):
            raise LabError('systemd-networkd does not manage dvtestbr0 after 15 s')
        yield 'dvtestbr0'
    finally:
        node.run('systemctl stop systemd-networkd.socket systemd-networkd;'
                 ' rm -f /etc/systemd/network/dvtest-br.network; ip link del dvtestbr0', check=False)


def test_refused_a_port_managed_by_systemd_networkd(baseline, role, networkd_port):
    play = role('networkd', {'node_bridges': [{'name': 'vmbr9', 'ports': [networkd_port]}]})
    assert failed_with(play, 'port %s is managed by systemd-networkd' % networkd_port), play


def test_after_the_refusals_the_interfaces_file_is_unchanged(node, baseline):
    assert interfaces(node) == baseline[1]


def test_after_the_refusals_no_bridge_vmbr0_was_made(node, baseline):
    assert not node.ok('ip link show vmbr0')


def test_after_the_refusals_eth0_still_has_the_node_address(node, baseline):
    assert addr_on(node, 'eth0', NODE_IP)


# --- 2./3. check mode, apply, rerun --------------------------------------------------------------

@pytest.fixture(scope='module')
def no_vlan_run(node, role, vlan):
    if vlan:
        pytest.skip('this kernel filters VLANs on bridges: vlan_aware is not refused')
    return role('vlan', bridges(True))


def test_refused_vlan_aware_on_a_kernel_without_bridge_vlan_filtering(no_vlan_run):
    assert failed_with(no_vlan_run, 'this kernel cannot filter VLANs on bridges'), no_vlan_run


def test_vlan_aware_refusal_changes_nothing(node, baseline, no_vlan_run):
    assert interfaces(node) == baseline[1]


@pytest.fixture(scope='module')
def check1(baseline, role, vlan):
    return role('check1', bridges(vlan), check=True, diff=True)


def test_check_mode_reports_the_change(check1):
    assert changed_some(check1), check1


def test_check_mode_says_what_it_would_do(check1):
    assert 'new bridge vmbr0 over eth0, taking over the addresses of eth0' in check1.output, check1


def test_check_mode_shows_the_diff_of_the_interfaces_file(check1):
    assert lines_of(check1, '-iface eth0 inet static', '+iface eth0 inet manual', '+iface vmbr0 inet static',
                    '+    bridge-ports eth0'), check1


@pytest.fixture(scope='module')
def checknet(baseline, role, vlan):
    network = {'name': LIBVIRT_NET, 'mode': 'bridge', 'bridge': 'vmbr0'}
    return role('checknet', dict(bridges(vlan), node_networks=[network]), check=True)


def test_check_mode_with_a_network_on_the_bridge_still_to_be_made_succeeds(checknet):
    assert checknet.ok, checknet


def test_check_mode_says_the_network_would_be_made_once_the_bridge_exists(checknet):
    assert ('network %s would be made on bridge vmbr0 once node_bridges has created it' % LIBVIRT_NET
            in checknet.output), checknet


def test_check_mode_changes_nothing(node, baseline, check1, checknet):
    assert interfaces(node) == baseline[1]


def test_check_mode_makes_no_bridge(node, check1, checknet):
    assert not node.ok('ip link show vmbr0')


@pytest.fixture(scope='module')
def applied(node, role, vlan, check1, checknet):
    """The apply run, and the interfaces file it left."""
    return role('apply', bridges(vlan), diff=True), interfaces(node)


def test_apply_makes_the_bridge(applied):
    assert changed_some(applied[0]), applied[0]


def test_apply_diff_shows_the_file_change(applied):
    assert lines_of(applied[0], '+iface vmbr0 inet static', '-iface eth0 inet static'), applied[0]


def test_after_apply_the_node_answers_over_ssh(node, applied):
    assert node.ok('true')


def test_after_apply_vmbr0_has_the_node_address(node, applied):
    assert addr_on(node, 'vmbr0', NODE_IP)


def test_after_apply_eth0_has_no_address(node, applied):
    assert 'inet' not in node.out('ip -o -4 addr show dev eth0')


def test_after_apply_eth0_is_a_port_of_vmbr0(node, applied):
    assert master_of(node, 'eth0') == 'vmbr0'


def test_after_apply_the_file_has_eth0_manual_and_vmbr0_with_the_address(applied):
    lines = applied[1].splitlines()
    assert 'iface eth0 inet manual' in lines
    assert 'iface vmbr0 inet static' in lines
    assert '    address %s/24' % NODE_IP in lines


def test_after_apply_ifupdown_knows_vmbr0_as_up(node, applied):
    assert 'vmbr0=vmbr0' in node.read('/run/network/ifstate').splitlines()


def test_after_apply_no_rollback_is_left_armed(node, applied):
    assert not timer_armed(node)


def test_after_apply_the_old_file_is_kept_as_the_backup(node, baseline, applied):
    assert node.read('/var/lib/debvirt/bridge/interfaces.before') == baseline[1]


@pytest.fixture
def vlan_bridge(vlan):
    if not vlan:
        pytest.skip('a VLAN-aware bridge with vids 2-4094: this kernel has no CONFIG_BRIDGE_VLAN_FILTERING')


def test_after_apply_vmbr0_filters_vlans(node, applied, vlan_bridge):
    assert node.read('/sys/class/net/vmbr0/bridge/vlan_filtering').strip() == '1'


def test_after_apply_bridge_vlan_show_lists_2_to_4094_on_eth0_and_vmbr0(node, applied, vlan_bridge):
    vlans = re.sub(r'[ \t]+', ' ', node.out('bridge vlan show'))
    assert re.search(r'^eth0 .*(2-4094|4094)', vlans, re.M), vlans
    assert re.search(r'^vmbr0 .*4094', vlans, re.M), vlans


def test_rerun_is_unchanged(applied, role, vlan):
    play = role('rerun', bridges(vlan), diff=True)
    assert play.unchanged(), play


def test_check_mode_again_is_unchanged(applied, role, vlan):
    play = role('check2', bridges(vlan), check=True, diff=True)
    assert play.unchanged(), play


@pytest.fixture(scope='module')
def rebooted(node, applied):
    """The node rebooted: what ifupdown brings up at boot is the file alone."""
    # /run is new after a reboot: the helper's state there from the apply shows whether it
    # really happened.
    node.run('test -e /run/debvirt-bridge/apply.log && systemctl reboot', check=False)
    time.sleep(3)
    if not eventually(lambda: node.ok('true', timeout=30), 60):
        raise LabError('%s does not answer 60 s after its reboot' % node)
    node.run('systemctl is-system-running --wait', check=False)


def test_after_a_reboot_the_node_has_its_address_on_vmbr0_over_eth0(node, rebooted):
    assert not node.ok('test -e /run/debvirt-bridge/apply.log'), 'the node did not reboot'
    assert addr_on(node, 'vmbr0', NODE_IP)
    assert master_of(node, 'eth0') == 'vmbr0'


def test_after_a_reboot_the_role_changes_nothing(rebooted, role, vlan):
    play = role('reboot', bridges(vlan))
    assert play.unchanged(), play


# --- 4. rollbacks --------------------------------------------------------------------------------

@pytest.fixture(scope='module')
def unreachable(rebooted, role, vlan):
    """A declaration that puts the node on another subnet: the armed timer rolls it back."""
    return role('unreach', bridges(vlan, address='%s.11/24' % BAD_NET))


def test_unreachable_after_the_change_the_role_fails_saying_the_rollback_restored_the_network(unreachable):
    assert failed_with(unreachable, ROLLED_BACK), unreachable


def test_after_the_timer_rollback_the_node_answers(node, unreachable):
    assert node.ok('true')


def test_after_the_timer_rollback_the_file_is_the_one_from_before(node, applied, unreachable):
    assert interfaces(node) == applied[1]


def test_after_the_timer_rollback_vmbr0_has_its_old_address_again(node, unreachable):
    assert addr_on(node, 'vmbr0', NODE_IP)
    assert not addr_on(node, 'vmbr0', BAD_NET + '.11')


def test_after_the_timer_rollback_no_rollback_is_left_armed(node, unreachable):
    assert not timer_armed(node)


@pytest.fixture(scope='module')
def no_gateway(unreachable, role, vlan):
    """A failing step: a gateway that does not answer, rolled back at once."""
    return role('nogw', bridges(vlan, address='%s/24' % NODE_IP, gateway=NET + '.254'))


def test_a_failing_step_is_rolled_back_at_once(no_gateway):
    assert failed_with(no_gateway, 'the gateway %s.254 does not answer on vmbr0' % NET), no_gateway


def test_a_failing_step_the_role_says_the_rollback_restored_the_network(no_gateway):
    assert failed_with(no_gateway, ROLLED_BACK), no_gateway


def test_after_the_failing_step_the_node_answers(node, no_gateway):
    assert node.ok('true')


def test_after_the_failing_step_the_file_is_the_one_from_before(node, applied, no_gateway):
    assert interfaces(node) == applied[1]


def test_after_the_failing_step_no_default_route_is_left(node, no_gateway):
    assert node.out('ip route show default') == ''


def test_the_good_declaration_again_is_unchanged(no_gateway, role, vlan):
    play = role('rerun2', bridges(vlan))
    assert play.unchanged(), play


# --- 5. a libvirt network in bridge mode, and a guest on it --------------------------------------

def with_network(vlan):
    return dict(bridges(vlan), node_networks=[{'name': LIBVIRT_NET, 'mode': 'bridge', 'bridge': 'vmbr0'}])


@pytest.fixture(scope='module')
def network(no_gateway, role, vlan):
    return role('net', with_network(vlan), diff=True)


def test_a_network_in_bridge_mode_on_vmbr0_is_made(network):
    assert changed_some(network), network


def test_the_network_is_active_on_bridge_vmbr0(node, network):
    info = node.out('virsh net-info %s' % LIBVIRT_NET)
    assert re.search(r'^Active: *yes', info, re.M), info
    assert re.search(r'^Bridge: *vmbr0', info, re.M), info


def test_the_network_rerun_is_unchanged(network, role, vlan):
    play = role('net2', with_network(vlan))
    assert play.unchanged(), play


@pytest.fixture(scope='module')
def guest(node, network, images):
    """A guest on the network, with a DHCP server on the node's LAN (through vmbr0), as a
    site's would be; both gone after the file."""
    try:
        node.push_images(images)
        node.run('dnsmasq --port=0 --interface=vmbr0 --bind-interfaces'
                 ' --dhcp-range=%s.50,%s.59,255.255.255.0,10m' % (NET, NET)
                 + ' --dhcp-leasefile=/run/dvtest-br.leases --pid-file=/run/dvtest-br-dnsmasq.pid')
        node.define(heartbeat_xml(GUEST, images, network=LIBVIRT_NET, memory=128))
        node.run('virsh start %s >/dev/null' % GUEST)
        yield GUEST
    finally:
        node.clean_guests(GUEST)
        node.run('kill $(cat /run/dvtest-br-dnsmasq.pid)', check=False)


@pytest.fixture(scope='module')
def guest_ip(node, guest):
    """The address the guest reports on its serial console, '' when it has none after 90 s."""
    def address():
        found = re.findall(r'debvirt-test-guest: eth0 ([0-9.]*)/', node.serial(guest))
        return found[-1] if found else ''
    return eventually(address, 90)


def http_up(address):
    try:
        with urllib.request.urlopen('http://%s/' % address, timeout=5) as reply:
            return 'DEBVIRT-TEST-GUEST-UP' in reply.read().decode(errors='replace')
    except OSError:
        return False


def test_a_guest_on_the_network_starts(node, guest):
    assert node.guest_state(guest) == 'running'


def test_the_guest_nic_is_a_port_of_vmbr0(node, guest):
    assert re.search(r'^vnet', node.out('ls /sys/class/net/vmbr0/brif/'), re.M)


def test_the_guest_gets_a_lease_from_the_dhcp_server_on_the_lan_through_vmbr0(node, guest, guest_ip):
    assert guest_ip, node.serial(guest)[-2000:]


def test_the_guest_answers_http_from_the_lab_host(guest_ip):
    assert guest_ip and http_up(guest_ip)


@pytest.fixture(scope='module')
def in_use(node, guest, guest_ip, role, vlan):
    """A change that would re-create vmbr0 under the guest (the file before it, the run)."""
    before = interfaces(node)
    return before, role('inuse', bridges(vlan, stp=True))


def test_refused_changing_vmbr0_while_the_guest_nic_is_on_it(in_use):
    assert failed_with(in_use[1], 'would take it down and re-create it, but other interfaces are attached to it (vnet'), \
        in_use[1]


def test_the_refused_change_changes_nothing(node, in_use):
    assert interfaces(node) == in_use[0]


def test_the_guest_still_answers_after_the_refused_change(guest_ip, in_use):
    assert guest_ip and http_up(guest_ip)
