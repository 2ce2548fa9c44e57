# -*- coding: utf-8 -*-
# Copyright: debvirt.cluster developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What the migration, placement and upgrade tests ask of guests beyond harness.py: whether a
heartbeat guest went on counting where it moved, busybox containers, SSH trust between members.
"""

from __future__ import annotations

import re
import shlex

from harness import SERIAL_LOG, eventually

BOOT_MARKER = 'DEBVIRT-TEST-GUEST-UP'
LXC = 'lxc:///system'


def first_beat(node, guest):
    beats = node.beats(guest)
    return beats[0] if beats else None


def next_beat(first, last):
    """Whether FIRST (on the target) goes on from LAST (on the source): a restarted guest would
    count from 1 again; a beat printed while the module returned may be in either node's log."""
    return first is not None and last is not None and last < first <= last + 2


def booted_on(node, guest):
    """Whether the guest's serial log on the node has a boot marker (a guest moved live has none)."""
    return BOOT_MARKER in node.serial(guest)


def start(node, guest, timeout=180):
    """Start the heartbeat guest with a fresh serial log; whether it booted within timeout s.

    The guest boots in software emulation: on the 2-core machine with other labs busy, that has
    taken longer than a minute.
    """
    node.run('rm -f %s; virsh start %s >/dev/null' % (SERIAL_LOG % guest, guest))
    return node.wait_log(guest, BOOT_MARKER, timeout)


def defined_on(nodes, guest, uri='qemu:///system'):
    """The names of those of the nodes that define the guest."""
    return [n.name for n in nodes if n.guest_state(guest, uri) is not None]


def container_xml(name, root, init_args=('/loop.sh',)):
    """A 64 MiB container running /bin/sh with init_args in root."""
    args = ''.join('<initarg>%s</initarg>' % a.replace('&', '&amp;').replace('<', '&lt;') for a in init_args)
    return """<domain type='lxc'>
  <name>%s</name>
  <memory unit='MiB'>64</memory>
  <vcpu>1</vcpu>
  <os><type>exe</type><init>/bin/sh</init>%s</os>
  <devices>
    <filesystem type='mount'><source dir='%s'/><target dir='/'/></filesystem>
    <console type='pty'/>
  </devices>
</domain>
""" % (name, args, root)


def events(node, root):
    """A busybox container's start and stop log on one line: 'started stopped started '."""
    return node.run("tr '\\n' ' ' < %s/events" % shlex.quote(root), check=False).stdout


def counter(node, root):
    """The count of a busybox container's /loop.sh (None when there is none)."""
    value = node.run('cat %s/counter' % shlex.quote(root), check=False).stdout.strip()
    return int(value) if value.isdigit() else None


def members_of(node):
    """The node names in the node's corosync nodelist."""
    text = node.run('cat /etc/corosync/corosync.conf', check=False).stdout
    return set(re.findall(r'^\s*name: *(\S+)$', text, re.M))


def trust(a, b, timeout=60):
    """Whether a reaches b's libvirt over the cluster's SSH trust (another test may be
    re-creating it right now: a minute's grace)."""
    return bool(eventually(lambda: a.ok("virsh -c 'qemu+ssh://root@%s/system?no_tty=1' version >/dev/null 2>&1"
                                        % b.name), timeout, interval=2))


def output(node, command):
    """The command's stdout on the node, stripped, whatever its exit status (grep -c of nothing
    exits 1)."""
    return node.run(command, check=False).stdout.strip()


def three_members(lab, images, module_cleanup, prefix, pairs, reset=None):
    """The lab's first three nodes in a quorate cluster whose members reach each other's libvirt
    over SSH for each (from, to) of pairs (indexes), the test guest's image on each, nothing named
    prefix* (and what reset(node) removes) before or after."""
    nodes = lab.nodes[:3]
    assert nodes[0].quorate(), 'the lab is no quorate cluster (playbooks/site.yml forms it)'
    assert members_of(nodes[0]) >= {n.name for n in nodes}, 'the cluster is not made of %s' % nodes
    for x, y in pairs:
        assert trust(nodes[x], nodes[y]), "%s does not reach %s's libvirt over the cluster's SSH trust" % (
            nodes[x], nodes[y])
    if reset is not None:
        module_cleanup.add(lambda: [reset(n) for n in nodes])
    module_cleanup.add(lab.clean_guests, prefix, nodes)
    lab.clean_guests(prefix, nodes)
    for n in nodes:
        if reset is not None:
            reset(n)
        n.push_images(images)
    return nodes
