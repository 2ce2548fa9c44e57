# -*- coding: utf-8 -*-
# Copyright: debvirt.cluster developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The contract between roles/node/files/debvirt-bridge probe and the filters' parser.

The probe runs in network and mount namespaces of its own, so the links it reports are the
test's.
"""

from __future__ import annotations

import os
import pathlib
import shutil
import subprocess

import pytest

from ansible_collections.debvirt.cluster.plugins.filter.bridges import bridge_problems, parse_probe

HELPER = pathlib.Path(__file__).resolve().parents[4] / 'roles' / 'node' / 'files' / 'debvirt-bridge'

needs_netns = pytest.mark.skipif(
    os.geteuid() != 0 or not shutil.which('unshare') or not shutil.which('ip'),
    reason='a network namespace of its own needs root, unshare and ip')


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
