# -*- coding: utf-8 -*-
# Copyright: debvirt.cluster developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""The interfaces engine: planner tables on interfaces(5) text and probe output, and the
contract between roles/node/files/debvirt-bridge probe and the parser.

The probe runs in network and mount namespaces of its own, so the links it reports are the
test's.
"""

from __future__ import annotations

import os
import pathlib
import shutil
import subprocess

import pytest

from ansible_collections.debvirt.cluster.plugins.module_utils._errors import InvalidSpec
from ansible_collections.debvirt.cluster.plugins.module_utils._interfaces import (
    bridge_plan, bridge_problems, parse_probe)

HELPER = pathlib.Path(__file__).resolve().parents[4] / 'roles' / 'node' / 'files' / 'debvirt-bridge'

needs_netns = pytest.mark.skipif(
    os.geteuid() != 0 or not shutil.which('unshare') or not shutil.which('ip'),
    reason='a network namespace of its own needs root, unshare and ip')

# What the lab nodes have, and what Debian's installer writes for a static address.
LAB = """\
auto lo
iface lo inet loopback

auto eth0
iface eth0 inet static
    address 10.78.0.11/24
"""

LAB_BRIDGED = """\
auto lo
iface lo inet loopback

auto eth0
iface eth0 inet manual

auto vmbr0
iface vmbr0 inet static
    address 10.78.0.11/24
    bridge-ports eth0
    bridge-stp off
    bridge-fd 0
"""

PROBE = """\
ifupdown yes
link lo other
link eth0 other
link eth1 other
ifstate lo
ifstate eth0
ifquery eth0
vlan_filtering yes
"""

# The same host once vmbr0 is up.
PROBE_UP = PROBE + "link vmbr0 bridge\nmaster eth0 vmbr0\nifstate vmbr0\nifquery vmbr0\n"

VMBR0 = [{'name': 'vmbr0', 'ports': ['eth0']}]


def test_takes_over_the_port_address():
    plan = bridge_plan(LAB, VMBR0, PROBE)
    assert plan['content'] == LAB_BRIDGED
    assert plan['changed'] and plan['file_changed']
    assert plan['reasons'] == ['new bridge vmbr0 over eth0, taking over the addresses of eth0']
    # Down with the old file: only what it configured; up with the new one: ports first.
    assert plan['down'] == ['eth0']
    assert plan['up'] == ['eth0', 'vmbr0']
    assert plan['delete'] == ['vmbr0']
    assert plan['created'] == ['vmbr0']
    assert plan['helper_plan'] == 'down eth0\nup eth0 vmbr0\ndelete vmbr0\nbridge vmbr0 eth0\n'


def test_rerun_changes_nothing():
    plan = bridge_plan(LAB_BRIDGED, VMBR0, PROBE_UP)
    assert plan['content'] == LAB_BRIDGED
    assert not plan['changed'] and not plan['file_changed']
    assert plan['reasons'] == [] and plan['down'] == [] and plan['up'] == []
    assert plan['created'] == []


def test_configured_but_not_up_is_a_change_without_file_change():
    plan = bridge_plan(LAB_BRIDGED, VMBR0, PROBE)
    assert plan['changed'] and not plan['file_changed']
    assert plan['reasons'] == ['bridge vmbr0 is configured but not up']
    assert plan['up'] == ['eth0', 'vmbr0']
    # Both have stanzas in the file: both go down with it first.
    assert plan['down'] == ['vmbr0', 'eth0']
    assert plan['delete'] == []


def test_port_enslaved_to_something_else_is_not_up():
    probe = PROBE + "link vmbr0 bridge\nifstate vmbr0\n"
    assert bridge_plan(LAB_BRIDGED, VMBR0, probe)['changed']


def test_explicit_address_replaces_addresses_and_keeps_other_settings():
    text = LAB_BRIDGED.replace('    bridge-fd 0\n', '    bridge-fd 0\n    dns-nameservers 192.0.2.53\n'
                               '    netmask 255.255.255.0\n')
    plan = bridge_plan(text, [{'name': 'vmbr0', 'ports': ['eth0'], 'address': '192.0.2.10/24',
                               'gateway': '192.0.2.1'}], PROBE_UP)
    assert plan['content'].endswith("""\
auto vmbr0
iface vmbr0 inet static
    address 192.0.2.10/24
    gateway 192.0.2.1
    dns-nameservers 192.0.2.53
    bridge-ports eth0
    bridge-stp off
    bridge-fd 0
""")
    assert plan['reasons'] == ['bridge vmbr0 changes, address 192.0.2.10/24']
    assert plan['delete'] == []


def test_vlan_aware_bridge_gets_its_vids_on_ports_and_itself():
    plan = bridge_plan(LAB, [{'name': 'vmbr0', 'ports': ['eth0', 'eth1'], 'vlan_aware': True,
                              'vids': '10 20-30'}], PROBE)
    assert """\
    bridge-ports eth0 eth1
    bridge-stp off
    bridge-fd 0
    bridge-vlan-aware yes
    post-up bridge vlan add dev eth0 vid 10
    post-up bridge vlan add dev eth1 vid 10
    post-up bridge vlan add dev vmbr0 vid 10 self
    post-up bridge vlan add dev eth0 vid 20-30
    post-up bridge vlan add dev eth1 vid 20-30
    post-up bridge vlan add dev vmbr0 vid 20-30 self
""" in plan['content']
    # eth1 had no stanza: a manual one, next to eth0's.
    assert 'iface eth0 inet manual\n\niface eth1 inet manual\n\nauto vmbr0\n' in plan['content']
    # A rerun finds its own post-up lines and leaves them.
    probe = PROBE_UP + "master eth1 vmbr0\n"
    again = bridge_plan(plan['content'], [{'name': 'vmbr0', 'ports': ['eth0', 'eth1'],
                                           'vlan_aware': 'yes', 'vids': '10 20-30'}], probe)
    assert not again['changed']


def test_vlan_aware_defaults_to_all_vids():
    content = bridge_plan(LAB, [{'name': 'vmbr0', 'ports': ['eth0'], 'vlan_aware': True}])['content']
    assert '    post-up bridge vlan add dev vmbr0 vid 2-4094 self\n' in content


def test_dhcp_and_inet6_move_to_the_bridge_link_settings_stay():
    text = """\
# The primary network interface
allow-hotplug eth0
iface eth0 inet dhcp
    hwaddress ether 02:00:00:00:00:01
    mtu 1450
iface eth0 inet6 static
    address 2001:db8::10/64
    gateway 2001:db8::1
"""
    plan = bridge_plan(text, VMBR0)
    assert plan['content'] == """\
# The primary network interface
allow-hotplug eth0
iface eth0 inet manual
    hwaddress ether 02:00:00:00:00:01
    mtu 1450

auto vmbr0
iface vmbr0 inet dhcp
    bridge-ports eth0
    bridge-stp off
    bridge-fd 0

iface vmbr0 inet6 static
    address 2001:db8::10/64
    gateway 2001:db8::1
"""
    assert plan['down'] == ['eth0']


def test_mtu_of_the_bridge_replaces_the_ports():
    text = "auto eth0\niface eth0 inet manual\n    mtu 1500\n"
    content = bridge_plan(text, [{'name': 'br1', 'ports': ['eth0'], 'mtu': 9000}])['content']
    assert content == """\
auto eth0
iface eth0 inet manual

auto br1
iface br1 inet manual
    bridge-ports eth0
    bridge-stp off
    bridge-fd 0
    mtu 9000
"""


def test_untouched_stanzas_stay_byte_for_byte():
    text = """\
# Written by hand; keep this comment.
source /etc/network/interfaces.d/*

auto lo
iface lo inet loopback

auto eth1
iface eth1 inet static
\taddress 198.51.100.2/24
\t# a comment between options
\tup ip route add 203.0.113.0/24 \\
\t   via 198.51.100.1

auto eth0
iface eth0 inet static
    address 10.78.0.11/24
"""
    content = bridge_plan(text, VMBR0)['content']
    head = text[:text.index('auto eth0')]
    assert content.startswith(head)
    assert bridge_plan(content, VMBR0, PROBE_UP + 'link eth1 other\n')['content'] == content


def test_bridge_without_ports_and_address():
    plan = bridge_plan(LAB, [{'name': 'br-int', 'ports': [], 'stp': True, 'forward_delay': 4}])
    assert plan['content'] == LAB + """
auto br-int
iface br-int inet manual
    bridge-ports none
    bridge-stp on
    bridge-fd 4
"""
    assert plan['down'] == [] and plan['up'] == ['br-int']


def test_user_written_underscore_options_are_recognised():
    text = """\
auto vmbr0
iface vmbr0 inet static
    address 10.0.0.1/24
    bridge_ports eth0
    bridge_stp off
    bridge_fd 0
"""
    plan = bridge_plan(text, VMBR0)
    assert '    address 10.0.0.1/24\n    bridge-ports eth0\n' in plan['content']
    assert 'bridge_ports' not in plan['content']
    # A port with no stanza goes before the bridge, not between its auto line and stanza.
    assert plan['content'].startswith('iface eth0 inet manual\n\nauto vmbr0\n')


def test_plan_refuses_bad_input():
    with pytest.raises(InvalidSpec, match='declared 2 times'):
        bridge_plan(LAB, VMBR0 + VMBR0)


@pytest.mark.parametrize('bridges, message', [
    ([{'name': 'vmbr0', 'ports': ['eth0'], 'vids': '10'}],
     'bridge vmbr0: vids (10) are only for a VLAN-aware bridge; set vlan_aware: true or drop vids'),
    ([{'name': 'vmbr0', 'vlan_aware': True, 'vids': '0-10'}],
     "bridge vmbr0: vids has '0-10': VLAN ids go from 1 to 4094, low to high"),
    ([{'name': 'vmbr0', 'vlan_aware': True, 'vids': '20-10'}], "vids has '20-10'"),
    ([{'name': 'vmbr0', 'vlan_aware': True, 'vids': 'ten'}],
     "vids has 'ten', which is neither a VLAN id nor a range such as 2-4094"),
    ([{'name': 'a-much-too-long-name'}], "'a-much-too-long-name' is not a valid interface name"),
    ([{'name': 'lo'}], "'lo' is not a valid interface name"),
    ([{'name': 'vmbr0', 'ports': ['eth0']}, {'name': 'vmbr1', 'ports': ['eth0']}],
     'bridge vmbr1: port eth0 is already a port of bridge vmbr0'),
    ([{'name': 'vmbr0', 'ports': ['vmbr1']}, {'name': 'vmbr1'}],
     'bridge vmbr0: port vmbr1 is itself a declared bridge'),
    ([{'name': 'vmbr0', 'ports': ['eth0', 'eth0']}], 'a port is listed twice'),
    ([{'name': 'vmbr0', 'address': '10.0.0.1'}], "address '10.0.0.1' is not an IPv4 address with a prefix"),
    ([{'name': 'vmbr0', 'address': '10.0.0.0/24'}], 'is the network or broadcast address of 10.0.0.0/24'),
    ([{'name': 'vmbr0', 'gateway': '10.0.0.1'}], 'gateway 10.0.0.1 needs an address too'),
    ([{'name': 'vmbr0', 'address': '10.0.0.2/24', 'gateway': 'router'}], "gateway 'router' is not an IPv4"),
    ([{'name': 'vmbr0', 'address': '10.0.0.2/24', 'gateway': '10.0.0.2'}], "is the bridge's own address"),
    ([{'name': 'vmbr0', 'stp': 'maybe'}], "stp must be true or false, got 'maybe'"),
    ([{'name': 'vmbr0', 'forward_delay': 31}], 'forward_delay must be 0 to 30 seconds, got 31'),
    ([{'name': 'vmbr0', 'mtu': 20}], 'mtu must be 68 to 65535, got 20'),
])
def test_input_problems(bridges, message):
    problems = bridge_problems(bridges)
    assert any(message in p for p in problems), problems


def test_every_problem_is_named_at_once():
    problems = bridge_problems([{'name': 'vmbr0', 'vids': '5', 'mtu': 1}, {'name': 'vmbr0'}])
    assert len(problems) == 3


def test_strings_convert_as_role_argument_validation_would():
    assert bridge_problems([{'name': 'vmbr0', 'ports': 'eth0, eth1', 'vlan_aware': 'yes',
                             'forward_delay': '2', 'mtu': '9000'}], LAB, PROBE) == []
    plan = bridge_plan(LAB, [{'name': 'vmbr0', 'ports': 'eth0,eth1', 'vids': [10, 20],
                              'vlan_aware': 'true'}])
    assert '    bridge-ports eth0 eth1\n' in plan['content']
    assert 'vid 20 self' in plan['content']


def test_a_good_declaration_on_a_good_host_has_no_problem():
    assert bridge_problems(VMBR0, LAB, PROBE) == []
    assert bridge_problems(VMBR0, LAB_BRIDGED, PROBE_UP) == []


@pytest.mark.parametrize('bridges, text, probe, message', [
    (VMBR0, LAB, 'ifupdown no\n', 'the host has no ifupdown'),
    ([{'name': 'vmbr0', 'ports': ['eth9']}], LAB, PROBE,
     'bridge vmbr0: port eth9 does not exist on the host (it has: eth0, eth1)'),
    (VMBR0, LAB, PROBE + 'link virbr0 bridge\nmaster eth0 virbr0\n',
     'bridge vmbr0: port eth0 is already a port of virbr0'),
    (VMBR0, LAB, PROBE + 'link vmbr0 other\n', 'the host has an interface vmbr0 that is not a bridge'),
    (VMBR0, LAB, PROBE + 'link vmbr0 bridge\n',
     'the host has a bridge vmbr0 that /etc/network/interfaces does not configure'),
    ([{'name': 'vmbr0', 'ports': ['br9']}], LAB, PROBE + 'link br9 bridge\n', 'port br9 is a bridge'),
    (VMBR0, '', PROBE, 'port eth0 is configured in a file that /etc/network/interfaces sources'),
    (VMBR0, LAB, PROBE + 'ifquery vmbr0\n', 'bridge vmbr0: vmbr0 is configured in a file that /etc/network/interfaces sources'),
    (VMBR0, LAB, PROBE + 'nm eth0 100 (connected)\n',
     'port eth0 is managed by NetworkManager (device state: 100 (connected)); refusing to configure '
     'it through ifupdown as well'),
    (VMBR0, LAB, PROBE + 'networkd eth0 configured\n',
     'port eth0 is managed by systemd-networkd (setup state: configured)'),
    (VMBR0, LAB, PROBE + 'networkd vmbr0 configuring\n', 'vmbr0 is managed by systemd-networkd'),
    ([{'name': 'vmbr0', 'ports': ['eth0'], 'vlan_aware': True}], LAB,
     PROBE.replace('vlan_filtering yes', 'vlan_filtering no'),
     'this kernel cannot filter VLANs on bridges (no CONFIG_BRIDGE_VLAN_FILTERING)'),
    (VMBR0, LAB_BRIDGED.replace('auto vmbr0', 'auto eth0\niface eth0 inet manual\n    bridge-ports eth1\n'),
     PROBE, 'port eth0 is configured as a bridge'),
])
def test_host_problems(bridges, text, probe, message):
    problems = bridge_problems(bridges, text, probe)
    assert any(message in p for p in problems), problems


def test_unmanaged_devices_are_no_problem():
    probe = PROBE + 'nm eth0 10 (unmanaged)\nnetworkd eth0 unmanaged\n'
    assert bridge_problems(VMBR0, LAB, probe) == []


def test_vlan_subinterface_port_needs_its_parent():
    assert bridge_problems([{'name': 'vmbr100', 'ports': ['eth0.100']}], LAB, PROBE) == []
    assert bridge_problems([{'name': 'vmbr100', 'ports': ['eth7.100']}], LAB, PROBE)


def test_parse_probe():
    probe = parse_probe(PROBE_UP + 'nm eth1 20 (unavailable)\n\nnonsense\n')
    assert probe['links'] == {'lo': 'other', 'eth0': 'other', 'eth1': 'other', 'vmbr0': 'bridge'}
    assert probe['masters'] == {'eth0': 'vmbr0'}
    assert probe['brif'] == {'vmbr0': {'eth0'}}
    assert probe['ifstate'] == {'lo', 'eth0', 'vmbr0'}
    assert probe['nm'] == {'eth1': '20 (unavailable)'}
    assert probe['ifupdown'] and probe['vlan_filtering']


@pytest.mark.parametrize('bad', ['vmbr0', [['vmbr0']]])
def test_not_a_list_of_dicts(bad):
    with pytest.raises(InvalidSpec):
        bridge_problems(bad)


def test_interfaces_of_guests_on_a_bridge_that_changes_are_named():
    probe = PROBE_UP + 'link vnet0 other\nmaster vnet0 vmbr0\n'
    plan = bridge_plan(LAB_BRIDGED, [{'name': 'vmbr0', 'ports': ['eth0'], 'stp': True}], probe)
    assert plan['in_use'] == {'vmbr0': ['vnet0']}
    # Nothing to change, nothing in the way.
    assert bridge_plan(LAB_BRIDGED, VMBR0, probe)['in_use'] == {}


# --- the probe of roles/node/files/debvirt-bridge, read by parse_probe ---------------------------
def probe_in_namespace(setup, *names):
    # sysfs shows the links of the namespace that mounted it: a private mount of our own.
    script = 'mount -t sysfs sysfs /sys && ' + setup + ' && sh "$0" probe "$@"'
    return subprocess.run(['unshare', '--net', '--mount', 'sh', '-c', script, str(HELPER)] + list(names),
                          capture_output=True, text=True, check=True, timeout=30).stdout


@needs_netns
def test_probe_reports_links_bridges_and_ports():
    out = probe_in_namespace(
        'ip link add dvtbr0 type bridge && ip link add dvtv0 type veth peer name dvtv1'
        ' && ip link set dvtv0 master dvtbr0', 'dvtbr0', 'dvtv0')
    probe = parse_probe(out)
    assert probe['links'] == {'lo': 'other', 'dvtbr0': 'bridge', 'dvtv0': 'other', 'dvtv1': 'other'}
    assert probe['masters'] == {'dvtv0': 'dvtbr0'}
    # Every line is one the parser knows.
    kinds = {line.split()[0] for line in out.splitlines()}
    assert kinds <= {'ifupdown', 'link', 'master', 'ifstate', 'ifquery', 'nm', 'networkd',
                     'vlan_filtering'}
    assert {'ifupdown', 'link', 'vlan_filtering'} <= kinds


@needs_netns
def test_a_port_of_another_bridge_is_refused_from_the_probe():
    out = probe_in_namespace(
        'ip link add dvtbr0 type bridge && ip link add dvtv0 type veth peer name dvtv1'
        ' && ip link set dvtv0 master dvtbr0', 'vmbr0', 'dvtv0')
    # As if ifupdown were there, so that the ports themselves are looked at.
    out = out.replace('ifupdown no', 'ifupdown yes')
    problems = bridge_problems([{'name': 'vmbr0', 'ports': ['dvtv0', 'dvtv9']}],
                               'iface dvtv0 inet manual\n', out)
    assert 'bridge vmbr0: port dvtv0 is already a port of dvtbr0' in problems
    assert any(p.startswith('bridge vmbr0: port dvtv9 does not exist on the host') for p in problems)


def test_helper_without_a_command_prints_its_usage():
    result = subprocess.run(['sh', str(HELPER)], capture_output=True, text=True, timeout=30, check=False)
    assert result.returncode == 2
    assert 'debvirt-bridge arm SECONDS' in result.stderr


def test_arm_wants_a_number():
    result = subprocess.run(['sh', str(HELPER), 'arm', 'soon'], capture_output=True, text=True,
                            timeout=30, input='', check=False)
    assert result.returncode == 2
    assert 'SECONDS must be a number' in result.stderr
