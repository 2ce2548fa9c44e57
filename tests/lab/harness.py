# -*- coding: utf-8 -*-
# Copyright: debvirt.cluster developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What the lab tests share: the lab, its nodes, Ansible runs on them and their results, guests.

Plain classes and functions; conftest.py turns them into fixtures. README.md beside this file
describes the API.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
LAB_SH = HERE / 'lab.sh'
DEFAULT_STATE = '/var/lib/debvirt-lab'
IMAGES = os.environ.get('DEBVIRT_TEST_IMAGES', '/var/cache/debvirt-test/guest')
SERIAL_LOG = '/var/log/libvirt/qemu/%s.serial.log'
# Output that Ansible writes for a program to read: no colours, no retry files, the one-line
# ad hoc format parsed below, host keys checked against the lab's pinned known_hosts.
ANSIBLE_ENV = {
    'ANSIBLE_FORCE_COLOR': '0',
    'ANSIBLE_NOCOLOR': '1',
    'ANSIBLE_RETRY_FILES_ENABLED': '0',
    'ANSIBLE_PIPELINING': '1',
    'ANSIBLE_STDOUT_CALLBACK': 'default',
    'ANSIBLE_HOST_KEY_CHECKING': '1',
}


class LabError(Exception):
    """The lab or a command on it did not do what a test needs before it can check anything."""


def run(argv, input=None, timeout=600, check=True, env=None):
    """Run a program; a CompletedProcess with text stdout and stderr. check: raise LabError.

    A program that outlives timeout is killed with every process it started (its own session):
    an ansible-playbook's workers would otherwise go on with the task they were in."""
    proc = subprocess.Popen(argv, stdin=subprocess.PIPE if input is not None else subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                            start_new_session=True)
    try:
        out, err = proc.communicate(input, timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
        raise LabError('%s: no end after %s s, killed; its output so far:\n%s'
                       % (shlex.join(map(str, argv))[:300], timeout, tail(out + err))) from None
    done = subprocess.CompletedProcess(argv, proc.returncode, out, err)
    if check and done.returncode != 0:
        raise LabError('%s: exit %s\n%s' % (shlex.join(map(str, argv))[:300], done.returncode,
                                            tail(done.stdout + done.stderr)))
    return done


def tail(text, lines=30):
    return '\n'.join(text.splitlines()[-lines:])


def eventually(probe, timeout, interval=1.0):
    """probe() until it returns something true or timeout seconds pass; its last value."""
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value or time.monotonic() >= deadline:
            return value
        time.sleep(interval)


def say(text):
    """A line for the person watching the run (pytest -s, or the log when a test fails)."""
    print(text, file=sys.stderr, flush=True)


class Lab:
    """One lab: nodes PREFIX1..N on bridge PREFIXbr0 at NET.0/24, its state in STATE."""

    def __init__(self, prefix='dvlab', net='10.77.0', state=DEFAULT_STATE):
        self.prefix = prefix
        self.net = net
        self.state = Path(state)
        self.inventory = self.state / 'inventory.ini'
        self.key = self.state / 'id_ed25519'
        self.known_hosts = self.state / 'known_hosts'
        self.cache = Path(os.environ.get('DEBVIRT_LAB_CACHE', '/var/cache/debvirt-lab'))
        self.template_rootfs = self.cache / 'template' / 'rootfs'
        self._lock = None

    @classmethod
    def from_env(cls):
        return cls(os.environ.get('DEBVIRT_LAB_PREFIX', 'dvlab'), os.environ.get('DEBVIRT_LAB_NET', '10.77.0'),
                   os.environ.get('DEBVIRT_LAB_STATE', DEFAULT_STATE))

    def derived(self, tag, offset):
        """A lab beside this one: prefix + tag, third octet + offset, state dir + '-' + tag."""
        a, b, c = self.net.split('.')
        return Lab((self.prefix + tag)[:8], '%s.%s.%d' % (a, b, (int(c) + offset) % 256),
                   '%s-%s' % (self.state, tag))

    def __repr__(self):
        return 'Lab(%s at %s.0/24)' % (self.prefix, self.net)

    @property
    def env(self):
        """The environment for lab.sh and for commands that read the lab's variables."""
        return dict(os.environ, DEBVIRT_LAB_PREFIX=self.prefix, DEBVIRT_LAB_NET=self.net,
                    DEBVIRT_LAB_STATE=str(self.state), **ANSIBLE_ENV)

    # --- the lab itself ----------------------------------------------------------------------

    @property
    def lock_path(self):
        # One lock per lab: tests of one lab take turns, tests of two labs never wait on each
        # other. The default lab keeps the name its bash tests have always used.
        return '/run/%s-test.lock' % self.state.name

    def lock(self, timeout=3600):
        """Take this lab's test lock (held until release() or the process ends)."""
        held = os.environ.get('DEBVIRT_LAB_TEST_LOCKED')
        if self._lock is not None or held == self.lock_path or (held == '1' and str(self.state) == DEFAULT_STATE):
            return
        t0 = time.monotonic()
        f = open(self.lock_path, 'w')  # pylint: disable=consider-using-with  # held past this call
        while True:
            try:
                fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() - t0 > timeout:
                    f.close()
                    raise LabError('another lab test holds %s' % self.lock_path) from None
                time.sleep(2)
        self._lock = f
        if time.monotonic() - t0 > 1:
            say('%s: test lock taken after %.0f s' % (self, time.monotonic() - t0))

    def release(self):
        if self._lock is not None:
            self._lock.close()
            self._lock = None

    def up(self, count=None, timeout=1800):
        """lab.sh up [count]: builds or repairs the lab; without a count, it keeps its size."""
        args = [str(LAB_SH), 'up'] + ([str(count)] if count else [])
        run(args, env=self.env, timeout=timeout)
        return self.nodes

    def down(self, timeout=600):
        run([str(LAB_SH), 'down'], env=self.env, timeout=timeout)

    def exists(self):
        return self.inventory.is_file()

    @property
    def names(self):
        """Node names in the inventory, in its order (empty when the lab is down)."""
        if not self.exists():
            return []
        pattern = re.compile(r'^(%s\d+) ansible_host=' % re.escape(self.prefix))
        return [m.group(1) for m in map(pattern.match, self.inventory.read_text().splitlines()) if m]

    @property
    def nodes(self):
        return [self.node(name) for name in self.names]

    def node(self, which):
        """A node by name (dvlab2) or number (2); it need not be in the inventory yet."""
        i = which if isinstance(which, int) else int(str(which)[len(self.prefix):])
        return Node(self, '%s%d' % (self.prefix, i), '%s.%d' % (self.net, 10 + i))

    # --- Ansible -----------------------------------------------------------------------------

    def module(self, hosts, module, args, *options, check=False, diff=False, timeout=900):
        """An Ansible module on hosts (a pattern or list); {host: result} with 'failed' set.

        Every host the pattern names must have a result: a missing one raises LabError.
        """
        hosts = str(hosts) if isinstance(hosts, (str, Node)) else ':'.join(str(h) for h in hosts)
        module = module if '.' in module else 'debvirt.cluster.' + module
        # -o: one line per host; -vvv keeps the diff in it (the default callback drops it below).
        argv = ['ansible', hosts, '-i', str(self.inventory), '-m', module, '-o', '-vvv'] + (['-a', json.dumps(args)] if args else [])
        argv += (['--check'] if check else []) + (['--diff'] if diff else []) + list(options)
        proc = run(argv, env=self.env, timeout=timeout, check=False)
        results = Results(proc.stdout + proc.stderr)
        names = hosts.split(':')
        expected = names if set(names) <= set(self.names) else self.hosts_of(hosts)
        missing = [h for h in expected if h not in results]
        if missing or not results:
            raise LabError('no result of %s for %s:\n%s' % (module, missing or hosts, tail(results.output)))
        return results

    def hosts_of(self, pattern, *inventories):
        argv = ['ansible', pattern, '-i', str(self.inventory), '--list-hosts']
        for inventory in inventories:
            argv += ['-i', str(inventory)]
        out = run(argv, env=self.env, timeout=300).stdout
        return [line.strip() for line in out.splitlines()[1:] if line.strip()]

    def playbook(self, playbook, *options, check=False, diff=False, inventories=(), timeout=1800):
        """ansible-playbook against this lab (and any further inventories); a Play."""
        argv = ['ansible-playbook', '-i', str(self.inventory)]
        for inventory in inventories:
            argv += ['-i', str(inventory)]
        argv += [str(playbook)] + (['--check'] if check else []) + (['--diff'] if diff else []) + list(options)
        t0 = time.monotonic()
        proc = run(argv, env=self.env, timeout=timeout, check=False)
        return Play(proc.returncode, proc.stdout + proc.stderr, time.monotonic() - t0)

    # --- guests and the cluster --------------------------------------------------------------

    def where(self, guest, uri='qemu:///system', nodes=None):
        """{node name: state} of every node that defines the guest."""
        found = {}
        for node in nodes or self.nodes:
            state = node.guest_state(guest, uri)
            if state is not None:
                found[node.name] = state
        return found

    def clean_guests(self, prefix, nodes=None):
        """Every guest named prefix* destroyed and undefined, its serial log removed."""
        for node in nodes or self.nodes:
            node.clean_guests(prefix)


class Node:
    """A lab node, reached over ssh with the lab's key and pinned host keys."""

    def __init__(self, lab, name, address):
        self.lab = lab
        self.name = name
        self.address = address

    def __repr__(self):
        return self.name

    def __str__(self):
        return self.name

    def __eq__(self, other):
        return isinstance(other, Node) and (self.lab.state, self.name) == (other.lab.state, other.name)

    def __hash__(self):
        return hash(self.name)

    def ssh_argv(self, command):
        return ['ssh', '-i', str(self.lab.key), '-o', 'UserKnownHostsFile=%s' % self.lab.known_hosts,
                '-o', 'StrictHostKeyChecking=yes', '-o', 'IdentitiesOnly=yes', '-o', 'BatchMode=yes',
                '-o', 'ConnectTimeout=10', '-o', 'LogLevel=ERROR', 'root@%s' % self.address, command]

    def run(self, command, input=None, check=True, timeout=300):
        """A shell command on the node; CompletedProcess. check: a non-zero exit raises LabError."""
        return run(self.ssh_argv(command), input=input, check=check, timeout=timeout)

    def ok(self, command, timeout=300):
        """Whether the command succeeds on the node."""
        return self.run(command, check=False, timeout=timeout).returncode == 0

    def out(self, command, timeout=300):
        """The command's stdout, stripped; a failure raises LabError."""
        return self.run(command, timeout=timeout).stdout.strip()

    def read(self, path):
        """A file's text; a missing file raises LabError."""
        return self.run('cat %s' % shlex.quote(path)).stdout

    def write(self, path, text, mode=None):
        command = 'cat > %s' % shlex.quote(path)
        if mode is not None:
            command += ' && chmod %o %s' % (mode, shlex.quote(path))
        self.run(command, input=text)

    def put(self, local, remote, mode=0o644):
        """A local file copied to the node, replaced in one step."""
        q = shlex.quote(remote)
        with open(local, 'rb') as f:
            proc = subprocess.run(self.ssh_argv('cat > %s.tmp && chmod %o %s.tmp && mv -f %s.tmp %s' % (q, mode, q, q, q)),
                                  stdin=f, capture_output=True, timeout=600, check=False)
        if proc.returncode != 0:
            raise LabError('%s: copy of %s to %s failed: %s' % (self, local, remote, proc.stderr.decode(errors='replace')))

    # --- libvirt and guests ------------------------------------------------------------------

    def guest_state(self, name, uri='qemu:///system'):
        """libvirt's state of the guest ('running', 'shut off', ...), None when it is not defined."""
        proc = self.run('virsh -c %s domstate %s' % (uri, shlex.quote(name)), check=False)
        return proc.stdout.strip().splitlines()[0] if proc.returncode == 0 and proc.stdout.strip() else None

    def persistent(self, name, uri='qemu:///system'):
        proc = self.run('virsh -c %s dominfo %s' % (uri, shlex.quote(name)), check=False)
        return re.search(r'^Persistent: *yes', proc.stdout, re.M) is not None

    def clean_guests(self, prefix):
        # virsh reads stdin, so the script goes through a file rather than a here-doc on ssh.
        script = ('for c in qemu:///system lxc:///system; do\n'
                  '  for d in $(virsh -c $c list --all --name | grep "^$1"); do\n'
                  '    virsh -c $c destroy "$d" >/dev/null 2>&1; virsh -c $c undefine "$d" >/dev/null 2>&1\n'
                  '  done\n'
                  'done\n'
                  'rm -f /var/log/libvirt/qemu/"$1"*.serial.log\n')
        path = '/tmp/%s-clean.sh' % prefix
        self.write(path, script)
        self.run('sh %s %s; rm -f %s' % (path, shlex.quote(prefix), path))

    def serial(self, guest):
        """The guest's serial log ('' while there is none)."""
        return self.run('cat %s 2>/dev/null || true' % (SERIAL_LOG % guest)).stdout

    def beats(self, guest):
        """The heartbeat numbers in the guest's serial log, in order."""
        return [int(n) for n in re.findall(r'heartbeat (\d+)', self.serial(guest))]

    def last_beat(self, guest):
        beats = self.beats(guest)
        return beats[-1] if beats else None

    def wait_log(self, guest, pattern, timeout=60):
        """Whether pattern (a regular expression) shows in the serial log within timeout s."""
        return bool(eventually(lambda: re.search(pattern, self.serial(guest)), timeout))

    def counting(self, guest, since, timeout=15):
        """Whether the guest prints a heartbeat above since within timeout s."""
        return bool(eventually(lambda: (self.last_beat(guest) or 0) > since, timeout))

    def push_images(self, images=IMAGES):
        """The test guest's kernel and initramfs at the same path on the node."""
        self.run('mkdir -p %s' % shlex.quote(images))
        for f in ('vmlinux', 'initrd.img'):
            self.put(os.path.join(images, f), os.path.join(images, f))

    def define(self, xml, uri='qemu:///system'):
        path = '/tmp/debvirt-define-%d.xml' % os.getpid()
        self.write(path, xml)
        self.run('virsh -c %s define %s >/dev/null && rm -f %s' % (uri, path, path))

    def busybox_root(self, root):
        """A container root directory with busybox and /loop.sh.

        /loop.sh counts seconds in /counter, going on from its last value, and logs its start
        and a clean stop (SIGTERM) to /events.
        """
        q = shlex.quote(root)
        with open('/bin/busybox', 'rb') as f:
            proc = subprocess.run(self.ssh_argv(
                'mkdir -p {r}/bin {r}/proc {r}/sys {r}/dev {r}/tmp {r}/etc && cat > {r}/bin/busybox && chmod 0755 {r}/bin/busybox'
                ' && for c in sh sleep cat udhcpc ip; do ln -sf busybox {r}/bin/$c; done'.format(r=q)),
                stdin=f, capture_output=True, timeout=300, check=False)
        if proc.returncode != 0:
            raise LabError('%s: busybox root %s: %s' % (self, root, proc.stderr.decode(errors='replace')))
        self.write(root + '/loop.sh', LOOP_SH)

    # --- the cluster -------------------------------------------------------------------------

    def quorum(self):
        """corosync-quorumtool on the node as a Quorum; quorate False when it does not answer."""
        return Quorum.parse(self.run('corosync-quorumtool -s -p', check=False).stdout)

    def quorate(self):
        return self.quorum().quorate


# PID 1 of a container gets only the signals it handles: a clean stop is SIGTERM, handled here.
LOOP_SH = """\
trap 'echo stopped >> /events; exit 0' TERM
echo started >> /events
n=$(cat /counter 2>/dev/null || echo 0)
while :; do n=$((n + 1)); echo "$n" > /counter; sleep 1; done
"""


class Quorum:
    """What corosync-quorumtool -s -p says: quorate, expected and total votes, member node ids."""

    def __init__(self, quorate, expected, total, nodeids, names, flags, text):
        self.quorate, self.expected, self.total = quorate, expected, total
        self.nodeids, self.names, self.flags, self.text = nodeids, names, flags, text

    @classmethod
    def parse(cls, text):
        def field(name):
            m = re.search(r'^%s:\s*(.*)$' % name, text, re.M)
            return m.group(1).strip() if m else ''
        members = text.split('Membership information', 1)[1:]
        rows = [line.split() for line in (members[0].splitlines() if members else [])]
        rows = [r for r in rows if r and r[0].isdigit()]
        votes = field('Total votes')
        expected = field('Expected votes')
        return cls(field('Quorate') == 'Yes', int(expected) if expected.isdigit() else None,
                   int(votes) if votes.isdigit() else None, sorted(int(r[0]) for r in rows),
                   sorted(r[3] for r in rows if len(r) > 3), field('Flags'), text)

    def __repr__(self):
        return 'Quorum(quorate=%s, expected=%s, total=%s, nodeids=%s)' % (self.quorate, self.expected, self.total, self.nodeids)


class Results(dict):
    """{host: result} from `ansible -o` output; the whole output in .output."""

    LINE = re.compile(r'^(\S+) \| ([A-Z]+)!?(?: \| rc=-?\d+)? => (\{.*\})\s*$')

    def __init__(self, output):
        super().__init__()
        self.output = output
        for line in output.splitlines():
            m = self.LINE.match(line)
            if m:
                result = json.loads(m.group(3))
                # The one-line format says FAILED or UNREACHABLE in the status, not in the result.
                result['failed'] = m.group(2) in ('FAILED', 'UNREACHABLE')
                result['unreachable'] = m.group(2) == 'UNREACHABLE'
                self[m.group(1)] = result

    def one(self):
        """The result of the only host."""
        if len(self) != 1:
            raise LabError('%d results, one expected:\n%s' % (len(self), tail(self.output)))
        return next(iter(self.values()))


class Play:
    """An ansible-playbook run: rc, output, seconds, and the recap as {host: {ok: n, changed: n, ...}}."""

    RECAP = re.compile(r'^(\S+)\s*:\s*((?:\w+=\d+\s*)+)$')

    def __init__(self, rc, output, seconds):
        self.rc, self.output, self.seconds = rc, output, seconds
        self.recap = {}
        after = output.split('PLAY RECAP', 1)[1] if 'PLAY RECAP' in output else ''
        for line in after.splitlines():
            m = self.RECAP.match(line.strip())
            if m:
                self.recap[m.group(1)] = {k: int(v) for k, v in re.findall(r'(\w+)=(\d+)', m.group(2))}

    @property
    def ok(self):
        """It succeeded: exit 0, a recap, no host failed or unreachable."""
        return self.rc == 0 and bool(self.recap) and all(
            r.get('failed', 0) == 0 and r.get('unreachable', 0) == 0 for r in self.recap.values())

    def changed(self, host=None):
        """changed= of one host, or {host: changed} of all."""
        if host is not None:
            return self.recap[str(host)]['changed']
        return {h: r['changed'] for h, r in self.recap.items()}

    def unchanged(self, hosts=None):
        """It succeeded with changed=0 on every host of the recap (and on each of hosts, if given)."""
        if hosts is not None and sorted(map(str, hosts)) != sorted(self.recap):
            return False
        return self.ok and all(r['changed'] == 0 for r in self.recap.values())

    def __str__(self):
        return 'rc %s after %.0f s:\n%s' % (self.rc, self.seconds, tail(self.output, 40))


def heartbeat_xml(name, images=IMAGES, disk=None, network=None, disk_xml='', memory=192, cmdline='console=ttyS0'):
    """Domain XML of the test guest: a boot marker, then a heartbeat every 2 s on its serial log."""
    if disk:
        disk_xml = ("<disk type='file' device='disk'><driver name='qemu' type='raw'/><source file='%s'/>"
                    "<target dev='vda' bus='virtio'/></disk>" % disk)
    nic = "<interface type='network'><source network='%s'/><model type='virtio'/></interface>" % network if network else ''
    return """<domain type='qemu'>
  <name>{name}</name>
  <memory unit='MiB'>{memory}</memory>
  <vcpu>1</vcpu>
  <os>
    <type arch='x86_64'>hvm</type>
    <kernel>{images}/vmlinux</kernel>
    <initrd>{images}/initrd.img</initrd>
    <cmdline>{cmdline}</cmdline>
  </os>
  <features><acpi/></features>
  <on_poweroff>destroy</on_poweroff>
  <devices>
    {disk}
    {nic}
    <serial type='pty'><log file='{log}' append='on'/></serial>
    <console type='pty'/>
  </devices>
</domain>
""".format(name=name, memory=memory, images=images, cmdline=cmdline, disk=disk_xml, nic=nic, log=SERIAL_LOG % name)


def heartbeat_spec(name, images=IMAGES, **options):
    """Arguments of module guest for the test guest (options added or overriding)."""
    spec = {'name': name, 'virt_type': 'qemu', 'memory': 192, 'vcpus': 1,
            'kernel': images + '/vmlinux', 'initrd': images + '/initrd.img', 'cmdline': 'console=ttyS0',
            'serial_log': SERIAL_LOG % name}
    spec.update(options)
    return spec


def ensure_images(images=IMAGES):
    """The test guest built on this machine (once); its directory."""
    vmlinux = os.path.join(images, 'vmlinux')
    if not (os.path.isfile(vmlinux) and os.path.getsize(vmlinux) > 0):
        run([str(ROOT / 'tests/images/build-test-guest.sh'), images], timeout=1800)
    return images
