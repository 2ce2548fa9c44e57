# -*- coding: utf-8 -*-
# Copyright: debvirt.cluster developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The debvirt.cluster.guests inventory plugin over the lab's 3-node cluster.

Six guests across the first three nodes (test-image VMs, two running with a DHCP lease on a
network of their node, three shut off; a busybox container running on the second node, leased
too), with tags and descriptions. From the controller, members from the first node's corosync
nodelist: every guest libvirt has on the nodes is a host, with the node, state, type, uuid and
addresses libvirt reports and the tags and description it was given; standard and constructed
groups. With explicit URIs and JMESPath filters: only what the filters keep. A play over one of
its groups agrees with virsh on the guests' nodes. On the first node itself, nodelist:
localhost, over the SSH trust of role cluster: the same. The cache answers with no network at
all. libvirtd stopped on the third node and an address where no node answers: both reported
and skipped, the others listed, nothing cached; fatal with strict: true.

Uses only objects named dvtest-inv-*; never changes the cluster's membership.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tarfile
import time

import pytest

from harness import LabError, eventually, run, say

NET = 'dvtest-inv-net'
CT_DIR = '/var/lib/dvtest-inv-ct'
# ansible-core and the collection for the run on the first node (the nodes have no Ansible).
NODE_DIR = '/tmp/dvtest-inv-ansible'
LIBVIRTD_UNITS = 'libvirtd.socket libvirtd-ro.socket libvirtd-admin.socket libvirtd.service'
NET_XML = """<network><name>%s</name><bridge name='dvtinvbr0'/>
  <ip address='192.168.177.1' netmask='255.255.255.0'><dhcp><range start='192.168.177.100' end='192.168.177.200'/></dhcp></ip>
</network>
""" % NET

# What each guest is given, so what the inventory must show: name, node (index), type, state,
# memory, tags, description.
GUESTS = [
    ('dvtest-inv-web1', 1, 'vm', 'running', 192, ['dvtest-inv', 'web', 'prod'], 'front end one'),
    ('dvtest-inv-db1', 1, 'vm', 'stopped', 128, ['dvtest-inv', 'db'], 'database one'),
    ('dvtest-inv-web2', 2, 'vm', 'running', 192, ['dvtest-inv', 'web'], 'front end two'),
    ('dvtest-inv-ct2', 2, 'container', 'running', 64, ['dvtest-inv', 'web', 'ct'], 'a busybox container'),
    ('dvtest-inv-db3', 3, 'vm', 'stopped', 256, ['dvtest-inv', 'db', 'prod'], 'database three'),
    ('dvtest-inv-spare3', 3, 'vm', 'stopped', 128, ['dvtest-inv'], 'spare'),
]

GUESTS_PLAY = """\
- name: The inventory test's guests
  hosts: nodes
  gather_facts: false
  tasks:
    - name: Virtual machines
      debvirt.cluster.guest: "{{ item }}"
      loop: "{{ inv_guests[inventory_hostname].vms | default([]) }}"
      loop_control:
        label: "{{ item.name }}"
    - name: Containers
      debvirt.cluster.container: "{{ item }}"
      loop: "{{ inv_guests[inventory_hostname].containers | default([]) }}"
      loop_control:
        label: "{{ item.name }}"
"""

TAG_WEB_PLAY = """\
- name: What virsh says on each guest's node
  hosts: tag_web
  gather_facts: false
  tasks:
    - name: Ask the guest's node
      ansible.builtin.command: >-
        virsh -c {{ 'lxc' if debvirt_type == 'container' else 'qemu' }}:///system domstate {{ inventory_hostname }}
      delegate_to: "{{ debvirt_node }}"
      register: virsh_state
      changed_when: false
    - name: The inventory's state is libvirt's
      ansible.builtin.assert:
        that:
          - (virsh_state.stdout_lines[0] == 'running') == (debvirt_state == 'running')
          - debvirt_node in groups['nodes']
    - name: Report
      ansible.builtin.debug:
        msg: "dvtest-play {{ inventory_hostname }} {{ debvirt_node }} {{ virsh_state.stdout_lines[0] }}"
"""

CONSTRUCTED = """\
compose:
  dvtest_label: debvirt_description ~ ' on ' ~ debvirt_node
groups:
  dvtest_small: debvirt_memory < 150
  dvtest_big: debvirt_memory > 200
keyed_groups:
  - key: debvirt_node
    prefix: dvtest_placed
"""

# Every guest of every driver on the node: name, driver, state, uuid and leased addresses,
# tab-separated (virsh reads stdin, which must not be the script's).
LIBVIRT_VIEW = r"""for c in qemu lxc; do for d in $(virsh -c $c:///system list --all --name); do
  printf '%s\t%s\t%s\t%s\t%s\n' "$d" "$c" "$(virsh -c $c:///system domstate $d | head -n1)" \
    "$(virsh -c $c:///system domuuid $d | head -n1)" \
    "$(virsh -c $c:///system domifaddr --source lease $d 2>/dev/null | awk '/ipv/ {print $4}' | tr '\n' ' ')"
done; done </dev/null"""

STATES = {'running': 'running', 'shut off': 'stopped', 'paused': 'paused'}


@pytest.fixture(scope='module')
def nodes(lab):
    return lab.nodes[:3]


def quorate(nodes):
    q = nodes[0].quorum()
    return q.quorate and all(n.name in q.text for n in nodes)


def restart_libvirtd(node):
    node.run('systemctl start %s' % LIBVIRTD_UNITS)
    return eventually(lambda: node.ok('virsh -c qemu:///system version && virsh -c lxc:///system version'), 30)


def clean(nodes):
    script = """for c in qemu:///system lxc:///system; do
    for d in $(virsh -c $c list --all --name | grep "^dvtest-inv-"); do
        virsh -c $c destroy "$d" >/dev/null 2>&1; virsh -c $c undefine "$d" >/dev/null 2>&1
    done
done
rm -f /var/log/libvirt/qemu/dvtest-inv-*.serial.log
for net in $(virsh net-list --all --name | grep "^dvtest-inv-"); do
    virsh net-destroy "$net" >/dev/null 2>&1; virsh net-undefine "$net" >/dev/null 2>&1
done
rm -rf %s %s /var/lib/libvirt/dnsmasq/dvtinvbr0.*
""" % (CT_DIR, NODE_DIR)
    for node in nodes:
        node.write('/tmp/dvtest-inv-cleanup.sh', script)
        node.run('sh /tmp/dvtest-inv-cleanup.sh; rm -f /tmp/dvtest-inv-cleanup.sh')


def left_over(nodes):
    listed = ' '.join(n.out('virsh list --all --name; virsh -c lxc:///system list --all --name; virsh net-list --all --name') for n in nodes)
    return [name for name in listed.split() if name.startswith('dvtest-inv-')]


@pytest.fixture(scope='module')
def cluster(lab, nodes, module_cleanup):
    """The three nodes in a quorate cluster with SSH trust (site.yml forms it if not); cleaned
    before and after, the after checked."""
    if not quorate(nodes) or not nodes[0].ok("virsh -c 'qemu+ssh://root@%s/system?no_tty=1' version" % nodes[2].name):
        # The members and the SSH trust between them are what the plugin reads through.
        say('cluster not formed (or no SSH trust): playbooks/site.yml')
        play = lab.playbook('debvirt.cluster.site')
        assert play.ok, play
    assert quorate(nodes), nodes[0].quorum().text

    def after():
        clean(nodes)
        left = left_over(nodes)
        if left:
            raise LabError('dvtest-inv-* objects left: %s' % left)
    module_cleanup.add(after)
    clean(nodes)
    return nodes


@pytest.fixture(scope='module')
def guests(lab, cluster, images, work):
    """The six guests and their networks, defined; what each was given, by name."""
    nodes = cluster
    for node in nodes:
        node.push_images(images)
        # An isolated network of the node's own, with DHCP: the running guests' addresses.
        node.write('/tmp/dvtest-inv-net.xml', NET_XML)
        node.run('virsh net-define /tmp/dvtest-inv-net.xml >/dev/null && virsh net-start %s >/dev/null && rm -f /tmp/dvtest-inv-net.xml' % NET)
    nodes[1].busybox_root(CT_DIR + '/rootfs')
    by_node, given = {}, {}
    for name, i, kind, state, memory, tags, description in GUESTS:
        node = nodes[i - 1]
        given[name] = dict(node=node.name, type=kind, state=state, memory=memory, tags=sorted(tags), description=description)
        spec = {'name': name, 'state': state, 'memory': memory, 'tags': tags, 'description': description,
                'interfaces': [{'network': NET}]}
        if kind == 'vm':
            spec.update(virt_type='qemu', kernel=images + '/vmlinux', initrd=images + '/initrd.img',
                        cmdline='console=ttyS0 no_timer_check', serial_log='/var/log/libvirt/qemu/%s.serial.log' % name)
        else:
            # udhcpc without a script configures nothing, but the lease is what libvirt reports.
            spec.update(uri='lxc:///system', privileged=True, rootfs={'path': CT_DIR + '/rootfs'},
                        command=['/bin/sh', '-c', 'ip link set eth0 up; udhcpc -i eth0 -q -t 20 -n; exec sleep 100000'])
        by_node.setdefault(node.name, {'vms': [], 'containers': []})['vms' if kind == 'vm' else 'containers'].append(spec)
    (work / 'guests.json').write_text(json.dumps({'inv_guests': by_node}))
    (work / 'guests.yml').write_text(GUESTS_PLAY)
    play = lab.playbook(work / 'guests.yml', '-e', '@%s' % (work / 'guests.json'))
    assert play.ok, play
    return given


def leased(node, uri, name):
    # Generous: a guest under software emulation boots slowly on a busy machine.
    return eventually(lambda: '192.168.177.' in node.run('virsh -c %s domifaddr --source lease %s' % (uri, name), check=False).stdout, 180)


def test_the_running_guests_took_a_dhcp_lease(cluster, guests):
    first, second = cluster[0], cluster[1]
    missing = [(n.name, name) for n, uri, name in ((first, 'qemu:///system', 'dvtest-inv-web1'), (second, 'qemu:///system', 'dvtest-inv-web2'),
                                                   (second, 'lxc:///system', 'dvtest-inv-ct2')) if not leased(n, uri, name)]
    assert not missing


def libvirt_view(nodes):
    """What libvirt has on the nodes, every guest (not only this file's)."""
    view = []
    for node in nodes:
        for line in node.out(LIBVIRT_VIEW).splitlines():
            name, driver, state, uuid, addresses = (line.split('\t') + [''] * 5)[:5]
            view.append(dict(node=node.name, name=name, driver=driver, state=state, uuid=uuid, addresses=addresses.split()))
    return view


def plain(obj):
    # ansible-core 2.19 writes inventory strings as {"__ansible_unsafe": "..."}.
    return obj['__ansible_unsafe'] if set(obj) == {'__ansible_unsafe'} else obj


def listing(lab, work, tag, inventory, *options, no_network=False, env=None):
    """ansible-inventory --list: (the listing or None, its messages, rc)."""
    out = work / ('%s.json' % tag)
    if out.exists():
        out.unlink()
    # --output: with -v, ansible's messages go to stdout too.
    argv = ['ansible-inventory', '-i', str(inventory), '--list', '--output', str(out)] + list(options)
    proc = run((['unshare', '--net'] if no_network else []) + argv, env=dict(lab.env, **(env or {})), check=False, timeout=600)
    text = out.read_text() if out.exists() else None
    return (json.loads(text, object_hook=plain) if text else None), proc.stdout + proc.stderr, proc.returncode, text


def problems(what, found, view, given, lab, nodes):
    """Differences of a listing from what libvirt reports and what the guests were given."""
    hv = found['_meta']['hostvars']
    out = []

    def check(cond, msg):
        if not cond:
            out.append(msg)

    def members(group):
        return sorted(found.get(group, {}).get('hosts', []))

    third = nodes[2]
    if what in ('all', 'node'):
        # Every guest libvirt has on the three nodes, nothing else, each where libvirt has it.
        check(sorted(hv) == sorted(d['name'] for d in view), 'hosts %s != libvirt\'s %s' % (sorted(hv), sorted(d['name'] for d in view)))
        for d in view:
            v = hv.get(d['name'], {})
            check(v.get('debvirt_node') == d['node'], '%s: node %s, libvirt %s' % (d['name'], v.get('debvirt_node'), d['node']))
            state = STATES.get(d['state'], d['state'])
            if d['driver'] == 'lxc' and state == 'paused':
                state = 'frozen'
            check(v.get('debvirt_state') == state, '%s: state %s, libvirt %s' % (d['name'], v.get('debvirt_state'), d['state']))
            check(v.get('debvirt_type') == ('container' if d['driver'] == 'lxc' else 'vm'), '%s: type %s' % (d['name'], v.get('debvirt_type')))
            check(v.get('debvirt_uuid') == d['uuid'], '%s: uuid %s, libvirt %s' % (d['name'], v.get('debvirt_uuid'), d['uuid']))
            check(all(a in v.get('debvirt_addresses', []) for a in d['addresses']),
                  '%s: addresses %s, libvirt\'s leases %s' % (d['name'], v.get('debvirt_addresses'), d['addresses']))
            if d['addresses']:
                check(v.get('ansible_host') == d['addresses'][0].split('/')[0], '%s: ansible_host %s' % (d['name'], v.get('ansible_host')))
            if what == 'all':
                uri = v.get('debvirt_uri', '')
                check(uri.startswith('%s+libssh://root@%s.' % (d['driver'], lab.net)), '%s: uri %s' % (d['name'], uri))
    for name, g in given.items():
        if what == 'uris' and name not in hv:
            continue
        v = hv.get(name)
        if v is None:
            out.append('%s missing' % name)
            continue
        # Explicit URIs without a node: the URI's host is the node.
        node = third.address if what == 'uris' and g['node'] == third.name else g['node']
        check(v['debvirt_node'] == node, '%s: node %s' % (name, v['debvirt_node']))
        check((v['debvirt_type'], v['debvirt_state'], v['debvirt_memory']) == (g['type'], g['state'], g['memory']),
              '%s: type/state/memory %s' % (name, (v['debvirt_type'], v['debvirt_state'], v['debvirt_memory'])))
        check(sorted(v['debvirt_tags']) == g['tags'], '%s: tags %s' % (name, v['debvirt_tags']))
        check(v['debvirt_description'] == g['description'], '%s: description %r' % (name, v['debvirt_description']))
        check([i['network'] for i in v['debvirt_interfaces']] == [NET], '%s: interfaces %s' % (name, v['debvirt_interfaces']))
        check((len(v['debvirt_addresses']) > 0) == (g['state'] == 'running'), '%s: addresses %s' % (name, v['debvirt_addresses']))
        check(all(a.startswith('192.168.177.') for a in v['debvirt_addresses']), '%s: addresses %s' % (name, v['debvirt_addresses']))

    if what == 'all':
        first, second = nodes[0].name, nodes[1].name
        expect = {
            'node_' + first: ['dvtest-inv-db1', 'dvtest-inv-web1'],
            'node_' + second: ['dvtest-inv-ct2', 'dvtest-inv-web2'],
            'node_' + third.name: ['dvtest-inv-db3', 'dvtest-inv-spare3'],
            'state_running': ['dvtest-inv-ct2', 'dvtest-inv-web1', 'dvtest-inv-web2'],
            'state_stopped': ['dvtest-inv-db1', 'dvtest-inv-db3', 'dvtest-inv-spare3'],
            'type_vm': ['dvtest-inv-db1', 'dvtest-inv-db3', 'dvtest-inv-spare3', 'dvtest-inv-web1', 'dvtest-inv-web2'],
            'type_container': ['dvtest-inv-ct2'],
            'tag_dvtest_inv': sorted(given),
            'tag_web': ['dvtest-inv-ct2', 'dvtest-inv-web1', 'dvtest-inv-web2'],
            'tag_db': ['dvtest-inv-db1', 'dvtest-inv-db3'],
            'tag_prod': ['dvtest-inv-db3', 'dvtest-inv-web1'],
            'tag_ct': ['dvtest-inv-ct2'],
            # groups / keyed_groups of the configuration
            'dvtest_small': ['dvtest-inv-ct2', 'dvtest-inv-db1', 'dvtest-inv-spare3'],
            'dvtest_placed_' + first: ['dvtest-inv-db1', 'dvtest-inv-web1'],
            'dvtest_placed_' + third.name: ['dvtest-inv-db3', 'dvtest-inv-spare3'],
        }
        for name, g in given.items():
            check(('ansible_host' in hv[name]) == (g['state'] == 'running'), '%s: ansible_host %s' % (name, hv[name].get('ansible_host')))
        # Other guests on the nodes may be in these groups too: only this file's are compared.
        for group, hosts in expect.items():
            got = [h for h in members(group) if h in given]
            check(got == hosts, 'group %s: %s, expected %s' % (group, got, hosts))
        for name, g in given.items():
            check(hv[name].get('dvtest_label') == '%s on %s' % (g['description'], g['node']),
                  '%s: composed dvtest_label %r' % (name, hv[name].get('dvtest_label')))
    elif what == 'uris':
        # filters: tagged dvtest-inv, and running or on the third node (named by its address)
        want = ['dvtest-inv-ct2', 'dvtest-inv-db3', 'dvtest-inv-spare3', 'dvtest-inv-web1', 'dvtest-inv-web2']
        check(sorted(hv) == want, 'hosts %s, expected %s' % (sorted(hv), want))
        group = 'node_' + third.address.replace('.', '_')
        check(members(group) == ['dvtest-inv-db3', 'dvtest-inv-spare3'], '%s: %s' % (group, members(group)))
        check(members('dvtest_big') == ['dvtest-inv-db3'], 'dvtest_big: %s' % members('dvtest_big'))
    elif what == 'node':
        for name, v in hv.items():
            uri = v['debvirt_uri']
            check(uri.startswith(('qemu', 'lxc')) and '+ssh://root@%s.' % lab.net in uri and 'no_tty=1' in uri and 'keyfile' not in uri,
                  '%s: uri %s' % (name, uri))
    return out


# --- from the controller, members from the nodelist -----------------------------------------

@pytest.fixture(scope='module')
def lab_guests_yml(lab, cluster, work):
    path = work / 'lab.guests.yml'
    path.write_text('plugin: debvirt.cluster.guests\nnodelist: %s\nssh_keyfile: %s\nssh_known_hosts: %s\ntimeout: 20\n%s'
                    'cache: true\ncache_plugin: ansible.builtin.jsonfile\ncache_connection: %s\n'
                    % (cluster[0].address, lab.key, lab.known_hosts, CONSTRUCTED, work / 'cache'))
    return path


@pytest.fixture(scope='module')
def cold(lab, work, guests, lab_guests_yml):
    t0 = time.monotonic()
    result = listing(lab, work, 'cold', lab_guests_yml, '--flush-cache', '-vv')
    say('cold listing: %.2f s' % (time.monotonic() - t0))
    return result


def test_nodelist_read_every_member_answered(cold):
    _found, messages, _rc, _text = cold
    assert 'did not answer' not in messages and 'cannot read' not in messages, messages
    assert 'guests read from 6 connections' in messages, messages


def test_every_guest_as_libvirt_has_it_with_groups_and_constructed_vars(lab, cluster, guests, cold):
    found = cold[0]
    assert found is not None, cold[1]
    assert not problems('all', found, libvirt_view(cluster), guests, lab, cluster)


# --- explicit URIs from the controller, with JMESPath filters -------------------------------

@pytest.fixture(scope='module')
def uris(lab, cluster, guests, work):
    query = 'keyfile=%s&known_hosts=%s&known_hosts_verify=normal&sshauth=privkey' % (lab.key, lab.known_hosts)
    lines = ['plugin: debvirt.cluster.guests', 'uris:']
    for node in cluster[:2]:
        for driver in ('qemu', 'lxc'):
            lines.append('  - {uri: "%s+libssh://root@%s/system?%s", node: %s}' % (driver, node.address, query, node.name))
    # Without node: the URI's host is the node.
    lines.append('  - "qemu+libssh://root@%s/system?%s"' % (cluster[2].address, query))
    lines += ['filters:', '  - "contains(debvirt_tags, \'dvtest-inv\')"',
              '  - "debvirt_state == \'running\' || starts_with(debvirt_node, \'%s.\')"' % lab.net]
    path = work / 'uris.guests.yml'
    path.write_text('\n'.join(lines) + '\n' + CONSTRUCTED)
    return listing(lab, work, 'uris', path)


def test_explicit_uris_keep_what_the_filters_keep(lab, cluster, guests, uris):
    assert uris[0] is not None, uris[1]
    assert not problems('uris', uris[0], [], guests, lab, cluster)


def test_explicit_uris_skip_no_member(uris):
    assert 'did not answer' not in uris[1], uris[1]


# --- a play over one of its groups ----------------------------------------------------------

def test_a_play_over_tag_web_agrees_with_virsh_on_the_nodes(lab, cluster, guests, lab_guests_yml, cold, work):
    path = work / 'play.yml'
    path.write_text(TAG_WEB_PLAY)
    play = lab.playbook(path, inventories=[lab_guests_yml])
    lines = sorted(re.findall(r'"(dvtest-play [^"]*)"', play.output))
    expected = ['dvtest-play dvtest-inv-ct2 %s running' % cluster[1].name, 'dvtest-play dvtest-inv-web1 %s running' % cluster[0].name,
                'dvtest-play dvtest-inv-web2 %s running' % cluster[1].name]
    assert play.rc == 0 and lines == expected, play


# --- on a member, over the cluster's SSH trust ----------------------------------------------

@pytest.fixture(scope='module')
def on_node(lab, cluster, guests, work):
    """The plugin run on the first node with nodelist: localhost; (listing, messages).

    The nodes carry no Ansible: ansible-core of the controller's version, installed for the
    nodes' Python (Debian 12's 3.11) from wheels, and the collection, into a scratch directory.
    """
    core = run(['python', '-c', 'from ansible.release import __version__ as v; print(v)'], env=lab.env).stdout.strip()
    bundle = lab.cache / ('inventory-test-ansible-%s' % core)
    if not bundle.is_dir():
        partial = bundle.with_name(bundle.name + '.tmp')
        shutil.rmtree(partial, ignore_errors=True)
        run(['pip', 'install', '-q', '--target', str(partial), '--python-version', '3.11', '--only-binary=:all:',
             '--platform', 'manylinux2014_x86_64', '--implementation', 'cp', 'ansible-core==%s' % core, 'jmespath'], env=lab.env)
        # Scripts with this machine's interpreter in their first line, and ansible-test: not needed.
        shutil.rmtree(partial / 'bin', ignore_errors=True)
        shutil.rmtree(partial / 'ansible_test', ignore_errors=True)
        partial.rename(bundle)
    first = cluster[0]
    lib_tar, coll_tar = work / 'lib.tgz', work / 'collection.tgz'
    with tarfile.open(lib_tar, 'w:gz') as tar:
        tar.add(bundle, arcname='.')
    build = os.environ['DEBVIRT_BUILD']
    with tarfile.open(coll_tar, 'w:gz') as tar:
        tar.add(os.path.join(build, 'ansible_collections'), arcname='ansible_collections',
                filter=lambda info: None if '/tests/output' in info.name else info)
    first.run('rm -rf {d} && mkdir -p {d}/lib'.format(d=NODE_DIR))
    first.put(lib_tar, NODE_DIR + '/lib.tgz')
    first.put(coll_tar, NODE_DIR + '/collection.tgz')
    first.run('cd {d} && tar -C lib -xzf lib.tgz && tar -xzf collection.tgz && rm -f lib.tgz collection.tgz'.format(d=NODE_DIR))
    first.write(NODE_DIR + '/cluster.guests.yml', 'plugin: debvirt.cluster.guests\nnodelist: localhost\n')
    proc = first.run('cd {d} && PYTHONPATH={d}/lib ANSIBLE_COLLECTIONS_PATH={d} python3 -m ansible.cli.inventory -i cluster.guests.yml'
                     ' --list -vv --output listing.json 2>&1'.format(d=NODE_DIR), check=False, timeout=600)
    text = first.run('cat %s/listing.json' % NODE_DIR, check=False).stdout
    return (json.loads(text, object_hook=plain) if proc.returncode == 0 and text else None), proc.stdout


def test_on_a_member_nodelist_localhost_reads_every_member_over_the_ssh_trust(on_node):
    found, messages = on_node
    assert found is not None and 'guests read from 6 connections' in messages and 'did not answer' not in messages, messages


def test_on_a_member_the_same_guests_nodes_states_and_addresses(lab, cluster, guests, on_node):
    assert on_node[0] is not None, on_node[1]
    assert not problems('node', on_node[0], libvirt_view(cluster), guests, lab, cluster)


# --- the cache ------------------------------------------------------------------------------
# The warm runs have no network at all (a namespace of their own, only loopback): a single
# connection to a member would fail and be reported.

@pytest.fixture(scope='module')
def warm(lab, work, lab_guests_yml, cold, on_node):
    t0 = time.monotonic()
    result = listing(lab, work, 'warm', lab_guests_yml, '-vv', no_network=True)
    say('warm listing, no network: %.2f s' % (time.monotonic() - t0))
    return result


def test_warm_cache_without_network_gives_the_same_listing_reading_nothing(cold, warm):
    assert warm[3] == cold[3] and warm[3], warm[1]
    assert 'from the cache, no member read' in warm[1] and 'did not answer' not in warm[1] and 'cannot read' not in warm[1], warm[1]


@pytest.fixture(scope='module')
def flushed(lab, work, lab_guests_yml, cluster, warm):
    return listing(lab, work, 'nonet', lab_guests_yml, '--flush-cache', no_network=True)


def test_a_flushed_cache_without_network_cannot_read_the_nodelist(cluster, flushed):
    assert 'cannot read the corosync nodelist of %s' % cluster[0].address in flushed[1], flushed[1]


def test_a_listing_that_lacked_members_was_not_cached(lab, work, lab_guests_yml, cold, flushed):
    again = listing(lab, work, 'warm2', lab_guests_yml, no_network=True)
    assert again[3] == cold[3], again[1]


# --- members that do not answer -------------------------------------------------------------

@pytest.fixture(scope='module')
def third_down(lab, cluster, work, flushed, module_cleanup):
    """libvirtd (with its sockets) stopped on the third node; the configurations, by strict."""
    third = cluster[2]
    module_cleanup.add(restart_libvirtd, third)
    third.run('systemctl stop %s' % LIBVIRTD_UNITS)
    assert not third.ok('virsh -c qemu:///system version')
    configs = {}
    for strict in ('false', 'true'):
        path = work / ('strict-%s.guests.yml' % strict)
        path.write_text('plugin: debvirt.cluster.guests\nnodelist: %s\nmembers: [%s]\nssh_keyfile: %s\nssh_known_hosts: %s\ntimeout: 10\n'
                        'strict: %s\ncache: true\ncache_plugin: ansible.builtin.jsonfile\ncache_connection: %s\n'
                        % (cluster[0].address, gone(lab), lab.key, lab.known_hosts, strict, work / 'cache-down'))
        configs[strict] = path
    return third, configs


def gone(lab):
    """An address of the lab's network where no node answers."""
    return '%s.99' % lab.net


@pytest.fixture(scope='module')
def down(lab, work, third_down):
    t0 = time.monotonic()
    result = listing(lab, work, 'down', third_down[1]['false'], '-vv')
    say('listing with members down: %.0f s' % (time.monotonic() - t0))
    return result


def test_members_down_are_reported_for_each_driver(lab, third_down, down):
    messages = down[1]
    third = third_down[0].name
    assert messages.count('(node %s) did not answer' % third) == 2, messages
    assert messages.count('(%s) did not answer' % gone(lab)) + messages.count('(node %s) did not answer' % gone(lab)) == 2, messages


def test_the_other_members_guests_are_listed_the_third_skipped(down):
    assert down[0] is not None, down[1]
    listed = sorted(h for h in down[0]['_meta']['hostvars'] if h.startswith('dvtest-inv-'))
    assert listed == ['dvtest-inv-ct2', 'dvtest-inv-db1', 'dvtest-inv-web1', 'dvtest-inv-web2']


def test_the_partial_listing_was_not_cached(work, down):
    cache = work / 'cache-down'
    assert not (list(cache.iterdir()) if cache.exists() else [])


def test_strict_makes_members_down_fatal_naming_them(lab, work, third_down, down):
    _found, messages, rc, _text = listing(lab, work, 'strict', third_down[1]['true'], env={'ANSIBLE_INVENTORY_UNPARSED_FAILED': 'true'})
    assert rc != 0 and 'did not answer' in messages, messages
    assert third_down[0].name in messages or gone(lab) in messages, messages


def test_libvirtd_back_on_the_third_node(third_down, down):
    assert restart_libvirtd(third_down[0])


def test_the_whole_cluster_listed_again_as_libvirt_has_it(lab, work, cluster, guests, lab_guests_yml, third_down):
    back = listing(lab, work, 'back', lab_guests_yml, '--flush-cache')
    assert back[0] is not None, back[1]
    assert not problems('all', back[0], libvirt_view(cluster), guests, lab, cluster)


def test_the_cluster_is_still_quorate_with_its_three_nodes(cluster, third_down):
    assert quorate(cluster), cluster[0].quorum().text
