# -*- coding: utf-8 -*-
# Copyright: debvirt.cluster developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Linux bridges in Debian's /etc/network/interfaces: a parser, a planner and a renderer.

Both entry points are pure functions of their inputs, so that check mode can predict exactly
what a real run writes:

- ``bridge_problems(bridges, interfaces_text, probe_text)``: every reason not to touch the
  host, as sentences, all at once;
- ``bridge_plan(interfaces_text, bridges, probe_text)``: the new file and the interfaces to
  take down (with the old file) and bring up (with the new one).

The file is edited, never regenerated: stanzas that no bridge concerns stay byte for byte,
comments and all. ``probe_text`` is what ``debvirt-bridge probe`` (role node) printed on the
host. Input that cannot be planned raises InvalidSpec.
"""

from __future__ import annotations

import ipaddress
import re

from ansible.module_utils.parsing.convert_bool import boolean

from ansible_collections.debvirt.cluster.plugins.module_utils._errors import InvalidSpec

# Words that start a stanza in interfaces(5) (ifupdown 0.8); "allow-*" too.
_STANZA_WORDS = frozenset(('iface', 'mapping', 'auto', 'rename', 'source', 'source-directory',
                           'no-auto-down', 'no-scripts'))
# The kernel's limit (IFNAMSIZ - 1) and the characters ifupdown and iproute2 take in a name.
_IFNAME = re.compile(r'^[A-Za-z0-9_][A-Za-z0-9_.-]{0,14}$')
# Options of a bridge stanza that the role writes; the rest belongs to the user.
_MANAGED = frozenset(('bridge-ports', 'bridge-stp', 'bridge-fd', 'bridge-vlan-aware', 'mtu'))
# A stanza's addresses and routes, which address and gateway replace.
_L3_OPTIONS = frozenset(('address', 'netmask', 'gateway', 'broadcast', 'network', 'pointopoint',
                         'metric', 'scope'))
# Options that describe the port's link, not its addresses: they stay on the port.
_LINK_OPTIONS = frozenset(('mtu', 'hwaddress'))
_VLAN_HOOK = re.compile(r'^bridge vlan add dev \S+ vid \S+( self)?$')
DEFAULT_VIDS = '2-4094'
DEFAULTS = {'ports': [], 'vlan_aware': False, 'vids': None, 'address': None, 'gateway': None,
            'stp': False, 'forward_delay': 0, 'mtu': None}


def _key(word):
    # ifupdown reads bridge_ports and bridge-ports alike.
    return word.replace('_', '-').lower()


class Stanza:
    """An iface stanza: its head line, option lines and the blank or comment lines after them."""

    def __init__(self, name, family, method, head, options, tail):
        self.name = name
        self.family = family
        self.method = method
        self.head = head
        # (key, value, raw physical lines)
        self.options = options
        self.tail = tail

    def text_lines(self):
        lines = [self.head]
        for opt in self.options:
            lines.extend(opt[2])
        return lines + self.tail

    def indent(self):
        for opt in self.options:
            first = opt[2][0]
            return first[:len(first) - len(first.lstrip())] or '    '
        return '    '


class Document:
    """/etc/network/interfaces as a list of blocks: Stanza objects and plain lists of lines."""

    def __init__(self, text):
        self.trailing_newline = text.endswith('\n') or not text
        self.blocks = []
        current = None
        for logical, raw in _logical_lines(text):
            words = logical.split()
            first = words[0] if words else ''
            starts = first in _STANZA_WORDS or first.startswith('allow-')
            if starts and first == 'iface' and len(words) >= 4:
                current = Stanza(words[1], words[2], words[3], '\n'.join(raw), [], [])
                self.blocks.append(current)
            elif starts:
                current = None
                self.blocks.append(raw)
            elif current is not None and words and not first.startswith('#'):
                # Comments and blank lines inside a stanza's options stay where they were.
                current.options.extend(('#', '', [line]) for line in current.tail)
                current.tail = []
                current.options.append((_key(first), logical.strip()[len(first):].strip(), raw))
            elif current is not None:
                current.tail.extend(raw)
            else:
                self.blocks.append(raw)

    def stanzas(self, name=None, family=None):
        return [b for b in self.blocks if isinstance(b, Stanza)
                and (name is None or b.name == name) and (family is None or b.family == family)]

    def auto_names(self):
        names = set()
        for block in self.blocks:
            if isinstance(block, list) and block:
                words = block[0].split()
                if words and (words[0] == 'auto' or words[0].startswith('allow-')):
                    names.update(words[1:])
        return names

    def render(self):
        lines = []
        for block in self.blocks:
            lines.extend(block.text_lines() if isinstance(block, Stanza) else block)
        text = '\n'.join(lines)
        return text + '\n' if self.trailing_newline and lines else text


def _logical_lines(text):
    """Yield (logical line, [physical lines]): a trailing backslash continues a line."""
    raw = []
    parts = []
    for line in text.splitlines():
        raw.append(line)
        if line.endswith('\\') and not line.lstrip().startswith('#'):
            parts.append(line[:-1])
            continue
        parts.append(line)
        yield ' '.join(parts), raw
        raw, parts = [], []
    if raw:
        yield ' '.join(parts), raw


def parse_probe(text):
    """What ``debvirt-bridge probe`` printed, as a dict of sets and maps."""
    probe = {'links': {}, 'masters': {}, 'brif': {}, 'ifquery': set(), 'ifstate': set(),
             'nm': {}, 'networkd': {}, 'ifupdown': False, 'vlan_filtering': False}
    for line in (text or '').splitlines():
        words = line.split()
        if not words:
            continue
        kind, args = words[0], words[1:]
        if kind == 'link' and len(args) >= 2:
            probe['links'][args[0]] = args[1]
        elif kind == 'master' and len(args) == 2:
            probe['masters'][args[0]] = args[1]
            probe['brif'].setdefault(args[1], set()).add(args[0])
        elif kind in ('ifquery', 'ifstate') and args:
            probe[kind].add(args[0])
        elif kind in ('nm', 'networkd') and args:
            probe[kind][args[0]] = ' '.join(args[1:])
        elif kind in ('ifupdown', 'vlan_filtering') and args:
            probe[kind] = args[0] == 'yes'
    return probe


def _normalize(bridges):
    """Defaults filled in and types made plain; what cannot be converted is left for the checks."""
    if not isinstance(bridges, list):
        raise InvalidSpec('node_bridges must be a list of bridges, got %s' % type(bridges).__name__)
    result = []
    for item in bridges:
        if not isinstance(item, dict):
            raise InvalidSpec('each item of node_bridges must be a dict, got %r' % (item,))
        bridge = dict(DEFAULTS)
        bridge.update((k, v) for k, v in item.items() if v is not None)
        ports = bridge['ports']
        # As role argument validation does: "eth0,eth1" is a list too.
        bridge['ports'] = [p.strip() for p in ports.split(',') if p.strip()] \
            if isinstance(ports, str) else [str(p) for p in ports]
        for key in ('vlan_aware', 'stp'):
            try:
                bridge[key] = boolean(bridge[key], strict=True)
            except TypeError:
                pass
        for key in ('forward_delay', 'mtu'):
            if isinstance(bridge[key], str) and bridge[key].strip().isdigit():
                bridge[key] = int(bridge[key])
        if isinstance(bridge['vids'], (list, tuple)):
            bridge['vids'] = ' '.join(str(v) for v in bridge['vids'])
        elif bridge['vids'] is not None:
            bridge['vids'] = str(bridge['vids'])
        if bridge['vlan_aware'] is True and not bridge['vids']:
            bridge['vids'] = DEFAULT_VIDS
        result.append(bridge)
    return result


def _vids_problem(vids):
    """None when vids is a valid list of VLAN ids and ranges ("2-4094", "10 20-30"), else why."""
    tokens = str(vids).replace(',', ' ').split()
    if not tokens:
        return 'is empty'
    for token in tokens:
        match = re.match(r'^(\d+)(?:-(\d+))?$', token)
        if not match:
            return "has '%s', which is neither a VLAN id nor a range such as 2-4094" % token
        low = int(match.group(1))
        high = int(match.group(2) or low)
        if not 1 <= low <= high <= 4094:
            return "has '%s': VLAN ids go from 1 to 4094, low to high" % token
    return None


def _vids_words(vids):
    return str(vids).replace(',', ' ').split()


def _input_problems(bridges):
    problems = []
    names = [b.get('name') for b in bridges]
    owner = {}
    for name in sorted(set(n for n in names if names.count(n) > 1), key=str):
        problems.append('node_bridges: %s is declared %d times' % (name, names.count(name)))
    for bridge in bridges:
        name = bridge.get('name')
        label = 'bridge %s' % name
        if not name or not _IFNAME.match(str(name)) or name == 'lo':
            problems.append("node_bridges: '%s' is not a valid interface name (1 to 15 letters, "
                            "digits, '_', '.' or '-'; not lo)" % (name,))
            continue
        for port in bridge['ports']:
            if not _IFNAME.match(str(port)) or port == 'lo':
                problems.append("%s: port '%s' is not a valid interface name" % (label, port))
            elif port in names:
                problems.append('%s: port %s is itself a declared bridge; bridges in bridges are '
                                'not supported' % (label, port))
            elif port in owner and owner[port] != name:
                problems.append('%s: port %s is already a port of bridge %s' % (label, port, owner[port]))
            owner.setdefault(port, name)
        if len(set(bridge['ports'])) != len(bridge['ports']):
            problems.append('%s: a port is listed twice in %s' % (label, bridge['ports']))
        if bridge.get('vids') and not bridge['vlan_aware']:
            problems.append('%s: vids (%s) are only for a VLAN-aware bridge; set vlan_aware: true '
                            'or drop vids' % (label, bridge['vids']))
        elif bridge.get('vids'):
            why = _vids_problem(bridge['vids'])
            if why:
                problems.append('%s: vids %s' % (label, why))
        address = bridge.get('address')
        network = None
        if address:
            try:
                iface = ipaddress.IPv4Interface(str(address))
            except ValueError:
                iface = None
            if iface is None or '/' not in str(address):
                problems.append("%s: address '%s' is not an IPv4 address with a prefix length, such "
                                "as 192.0.2.10/24" % (label, address))
            elif iface.ip in (iface.network.network_address, iface.network.broadcast_address) \
                    and iface.network.prefixlen < 31:
                problems.append('%s: address %s is the network or broadcast address of %s'
                                % (label, address, iface.network))
            else:
                network = iface
        gateway = bridge.get('gateway')
        if gateway and not address:
            problems.append('%s: gateway %s needs an address too; without address the bridge takes '
                            "over its port's configuration, gateway included" % (label, gateway))
        elif gateway:
            try:
                gw = ipaddress.IPv4Address(str(gateway))
            except ValueError:
                problems.append("%s: gateway '%s' is not an IPv4 address" % (label, gateway))
            else:
                if network is not None and gw == network.ip:
                    problems.append('%s: gateway %s is the bridge\'s own address' % (label, gateway))
        for key in ('vlan_aware', 'stp'):
            if not isinstance(bridge[key], bool):
                problems.append('%s: %s must be true or false, got %r' % (label, key, bridge[key]))
        delay = bridge['forward_delay']
        if not isinstance(delay, int) or isinstance(delay, bool) or not 0 <= delay <= 30:
            problems.append('%s: forward_delay must be 0 to 30 seconds, got %r' % (label, delay))
        mtu = bridge['mtu']
        if mtu is not None and (not isinstance(mtu, int) or isinstance(mtu, bool)
                                or not 68 <= mtu <= 65535):
            problems.append('%s: mtu must be 68 to 65535, got %r' % (label, mtu))
    return problems


def _manager_problem(probe, name):
    state = probe['nm'].get(name)
    if state is not None and 'unmanaged' not in state:
        return 'NetworkManager (device state: %s)' % state
    state = probe['networkd'].get(name)
    if state and state not in ('unmanaged', '-'):
        return 'systemd-networkd (setup state: %s)' % state
    return None


def _owner_problems(label, what, iface, doc, probe):
    """Another file, or another network manager, has the interface: never guess, refuse."""
    problems = []
    if iface in probe['ifquery'] and not doc.stanzas(iface):
        problems.append('%s: %s is configured in a file that /etc/network/interfaces sources; only '
                        'stanzas in /etc/network/interfaces itself are edited, so move it there '
                        'first' % (label, what))
    manager = _manager_problem(probe, iface)
    if manager:
        problems.append('%s: %s is managed by %s; refusing to configure it through ifupdown as '
                        'well' % (label, what, manager))
    return problems


def _host_problems(bridges, doc, probe):
    problems = []
    if not probe['ifupdown']:
        problems.append('the host has no ifupdown (ifup): node_bridges configures bridges in '
                        '/etc/network/interfaces and does not take over a network managed otherwise')
        return problems
    links = probe['links']
    for bridge in bridges:
        name = bridge['name']
        label = 'bridge %s' % name
        if name in links and links[name] != 'bridge':
            problems.append('%s: the host has an interface %s that is not a bridge' % (label, name))
        elif name in links and not doc.stanzas(name) and name not in probe['ifquery']:
            problems.append('%s: the host has a bridge %s that /etc/network/interfaces does not '
                            'configure (made by libvirt, a container engine or by hand?); '
                            'refusing to take it over' % (label, name))
        problems.extend(_owner_problems(label, name, name, doc, probe))
        if bridge['vlan_aware'] and not probe['vlan_filtering']:
            problems.append('%s: this kernel cannot filter VLANs on bridges (no '
                            'CONFIG_BRIDGE_VLAN_FILTERING), so vlan_aware cannot work here' % label)
        for port in bridge['ports']:
            parent = port.rsplit('.', 1)[0] if '.' in port else None
            if port not in links and not (parent and parent in links):
                problems.append('%s: port %s does not exist on the host (it has: %s)'
                                % (label, port, ', '.join(sorted(n for n in links if n != 'lo'))))
                continue
            master = probe['masters'].get(port)
            if master and master != name:
                problems.append('%s: port %s is already a port of %s' % (label, port, master))
            if links.get(port) == 'bridge':
                problems.append('%s: port %s is a bridge; bridges in bridges are not supported'
                                % (label, port))
            problems.extend(_owner_problems(label, 'port ' + port, port, doc, probe))
            for stanza in doc.stanzas(port):
                if any(opt[0] == 'bridge-ports' for opt in stanza.options):
                    problems.append('%s: port %s is configured as a bridge in '
                                    '/etc/network/interfaces' % (label, port))
                    break
    return problems


def bridge_problems(bridges, interfaces_text='', probe_text=None):
    """Every reason not to go on, as sentences; [] when the declaration can be applied.

    Without probe_text only the declaration itself is checked.
    """
    bridges = _normalize(bridges)
    problems = _input_problems(bridges)
    if problems or probe_text is None:
        return problems
    return _host_problems(bridges, Document(interfaces_text or ''), parse_probe(probe_text))


def _bridge_options(bridge, indent):
    ports = ' '.join(bridge['ports']) or 'none'
    opts = [('bridge-ports', ports), ('bridge-stp', 'on' if bridge['stp'] else 'off'),
            ('bridge-fd', str(bridge['forward_delay']))]
    if bridge['vlan_aware']:
        opts.append(('bridge-vlan-aware', 'yes'))
    if bridge['mtu']:
        opts.append(('mtu', str(bridge['mtu'])))
    if bridge['vlan_aware']:
        # bridge-utils only switches filtering on; the VLANs that may pass are added here.
        for vid in _vids_words(bridge['vids']):
            for port in bridge['ports']:
                opts.append(('post-up', 'bridge vlan add dev %s vid %s' % (port, vid)))
            opts.append(('post-up', 'bridge vlan add dev %s vid %s self' % (bridge['name'], vid)))
    return [(key, value, ['%s%s %s' % (indent, key, value)]) for key, value in opts]


def _is_managed(option):
    return option[0] in _MANAGED or (option[0] == 'post-up' and _VLAN_HOOK.match(option[1]))


def _block_lines(block):
    return block.text_lines() if isinstance(block, Stanza) else block


def _place(doc, blocks, index):
    """Insert new blocks at index, with one blank line between them and what is around them."""
    if index > 0:
        before = doc.blocks[index - 1]
        lines = _block_lines(before)
        if lines and lines[-1].strip():
            if isinstance(before, Stanza):
                before.tail.append('')
            else:
                blocks = [['']] + blocks
    last = blocks[-1]
    if index < len(doc.blocks) and isinstance(last, Stanza):
        last.tail = ['']
    doc.blocks[index:index] = blocks


def _auto_index(doc, stanza):
    """Where a stanza starts, counting an "auto NAME" line right before it."""
    index = doc.blocks.index(stanza)
    if index > 0:
        before = doc.blocks[index - 1]
        if isinstance(before, list) and len(before) == 1 and before[0].split()[:1] == ['auto'] \
                and stanza.name in before[0].split()[1:]:
            return index - 1
    return index


def _plan_one(doc, bridge, auto_names):
    """Edit doc for one bridge; returns a sentence saying what changes for it, or None."""
    name = bridge['name']
    old_bridge = doc.stanzas(name)
    old_text = [s.text_lines() for s in old_bridge]
    port_stanzas = [s for p in bridge['ports'] for s in doc.stanzas(p)]
    known = port_stanzas + old_bridge
    indent = known[0].indent() if known else '    '

    # Where the bridge's addresses come from: the declaration, else the port it takes over,
    # else what the bridge has already (a rerun), else none.
    moved = [s for s in port_stanzas if s.method not in ('manual', 'none')]
    l3 = {}
    if bridge['address']:
        opts = [('address', bridge['address'])]
        if bridge['gateway']:
            opts.append(('gateway', bridge['gateway']))
        # The bridge's other settings (DNS, hooks) stay.
        kept = [o for s in old_bridge if s.family == 'inet' for o in s.options
                if not _is_managed(o) and o[0] not in _L3_OPTIONS]
        l3['inet'] = ('static', [(k, v, ['%s%s %s' % (indent, k, v)]) for k, v in opts] + kept)
    elif moved:
        for s in moved:
            l3.setdefault(s.family, (s.method, [o for o in s.options
                                                if o[0] not in _LINK_OPTIONS]))
    else:
        for s in old_bridge:
            l3[s.family] = (s.method, [o for o in s.options if not _is_managed(o)])

    # Ports: one manual inet stanza each, keeping what describes the link. A new one goes
    # after the previous port, else before the bridge, else at the end.
    anchor = None
    for port in bridge['ports']:
        stanzas = doc.stanzas(port)
        link_opts = [o for s in stanzas for o in s.options if o[0] in _LINK_OPTIONS]
        if bridge['mtu']:
            link_opts = [o for o in link_opts if o[0] != 'mtu']
        if stanzas:
            first = stanzas[0]
            for extra in stanzas[1:]:
                first.tail.extend(extra.tail)
                doc.blocks.remove(extra)
            if first.family != 'inet' or first.method != 'manual':
                first.head = 'iface %s inet manual' % port
                first.family, first.method = 'inet', 'manual'
            first.options = link_opts
            anchor = first
            continue
        new = Stanza(port, 'inet', 'manual', 'iface %s inet manual' % port, [], [])
        if anchor is not None:
            index = doc.blocks.index(anchor) + 1
        elif old_bridge:
            index = _auto_index(doc, old_bridge[0])
        else:
            index = len(doc.blocks)
        _place(doc, [new], index)
        anchor = new

    # The bridge: its inet stanza carries the bridge options; other families only addresses.
    families = ['inet'] + sorted(f for f in l3 if f != 'inet')
    for s in old_bridge:
        if s.family not in families:
            families.append(s.family)
            l3[s.family] = (s.method, s.options)
    for family in families:
        method, opts = l3.get(family, ('manual', []))
        opts = [(k, v, [indent + line.lstrip() for line in raw]) for k, v, raw in opts]
        if family == 'inet':
            opts = opts + _bridge_options(bridge, indent)
        existing = doc.stanzas(name, family)
        if existing:
            stanza = existing[0]
            if stanza.method != method:
                stanza.head = 'iface %s %s %s' % (name, family, method)
                stanza.method = method
            stanza.options = opts
        else:
            stanza = Stanza(name, family, method, 'iface %s %s %s' % (name, family, method), opts, [])
            blocks = [stanza]
            if name not in auto_names and family == 'inet':
                blocks = [['auto %s' % name], stanza]
                auto_names.add(name)
            index = doc.blocks.index(anchor) + 1 if anchor is not None else len(doc.blocks)
            _place(doc, blocks, index)
        anchor = stanza

    if [s.text_lines() for s in doc.stanzas(name)] == old_text and not moved:
        return None
    if not old_bridge:
        what = 'new bridge %s over %s' % (name, ' '.join(bridge['ports']) or 'no port')
    else:
        what = 'bridge %s changes' % name
    if bridge['address']:
        what += ', address %s' % bridge['address']
    elif moved:
        what += ', taking over the addresses of %s' % ', '.join(sorted({s.name for s in moved}))
    return what


def bridge_plan(interfaces_text, bridges, probe_text=None):
    """The edited /etc/network/interfaces and how to get there.

    Returns a dict: content (the new file), changed (file or live state differs), reasons
    (sentences), down (interfaces to take down with the old file, in order), up (to bring up
    with the new one, in order), delete (bridges that did not exist before) and bridges
    (name: ports), in_use (bridge: other interfaces on it, such as guests', for bridges that
    would go down), created (bridges that do not exist yet), and helper_plan: all that as the
    lines debvirt-bridge arm reads.
    """
    text = interfaces_text or ''
    bridges = _normalize(bridges)
    problems = _input_problems(bridges)
    if problems:
        raise InvalidSpec('node_bridges: ' + '; '.join(problems))
    probe = parse_probe(probe_text)
    old = Document(text)
    doc = Document(text)
    auto_names = doc.auto_names()
    reasons, down, up, delete = [], [], [], []
    in_use = {}
    for bridge in bridges:
        name = bridge['name']
        what = _plan_one(doc, bridge, auto_names)
        live_ok = probe_text is None or (
            probe['links'].get(name) == 'bridge' and name in probe['ifstate']
            and all(probe['masters'].get(p) == name for p in bridge['ports']))
        if what is None and not live_ok:
            what = 'bridge %s is configured but not up' % name
        if what is None:
            continue
        reasons.append(what)
        # Guests' interfaces on a bridge that is taken down would not come back with it.
        others = sorted(probe['brif'].get(name, set()) - set(bridge['ports']))
        if others:
            in_use[name] = others
        for iface in [name] + bridge['ports']:
            if old.stanzas(iface) and iface not in down:
                down.append(iface)
        up.extend(p for p in bridge['ports'] if p not in up)
        up.append(name)
        if not old.stanzas(name):
            delete.append(name)
    declared = set(b['name'] for b in bridges)
    content = doc.render()
    # What debvirt-bridge arm reads on stdin.
    helper = ['down %s' % ' '.join(down), 'up %s' % ' '.join(up), 'delete %s' % ' '.join(delete)]
    helper.extend(' '.join(['bridge', b['name']] + b['ports']) for b in bridges)
    return {
        'helper_plan': '\n'.join(line.rstrip() for line in helper) + '\n',
        'content': content,
        'changed': bool(reasons),
        'file_changed': content != text,
        'reasons': reasons,
        'down': down,
        'up': up,
        'delete': delete,
        'in_use': in_use,
        # Bridges this plan brings into existence: a check mode run cannot look at them yet.
        'created': [name for name in up if name in declared
                    and (probe_text is None or probe['links'].get(name) != 'bridge')],
        'bridges': dict((b['name'], b['ports']) for b in bridges),
    }
