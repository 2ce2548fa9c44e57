# -*- coding: utf-8 -*-
# Copyright: debvirt.cluster developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""corosync.conf as a model: parse, read and edit, write.

The format (corosync.conf(5)) is nested sections ``name {`` ... ``}`` holding ``key: value``
lines and ``#`` comments. Every parsed line keeps its original text, so writing a file that was
not edited gives it back byte for byte, comments and indentation included; only the entries
an edit touches are written anew, indented like their siblings. Pure Python, no I/O.
"""

from __future__ import annotations

import re

from ansible_collections.debvirt.cluster.plugins.module_utils._errors import InvalidSpec
from ansible_collections.debvirt.cluster.plugins.module_utils._names import check_address, is_loopback

CONF = "/etc/corosync/corosync.conf"
# A link per ring address: knet allows links 0..7.
MAX_LINKS = 8
# fullmatch: "$" would let a trailing newline into the nodelist.
_NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
_CLUSTER_NAME_RE = re.compile(r"[A-Za-z0-9_-]{1,32}")


class ConfError(InvalidSpec):
    """corosync.conf text that does not parse."""


class Pair:
    def __init__(self, key, value, raw=None):
        self.key = key
        self.value = value
        self.raw = raw


class Comment:
    """A comment or a blank line, kept as it was."""

    def __init__(self, raw):
        self.raw = raw


class Section:
    def __init__(self, name, items=None, open_raw=None, close_raw=None):
        self.name = name
        self.items = items if items is not None else []
        self.open_raw = open_raw
        self.close_raw = close_raw

    # --- reading --------------------------------------------------------------------------
    def sections(self, name=None):
        return [i for i in self.items if isinstance(i, Section) and (name is None or i.name == name)]

    def section(self, name):
        found = self.sections(name)
        return found[0] if found else None

    def pairs(self):
        return [i for i in self.items if isinstance(i, Pair)]

    def get(self, key, default=None):
        # corosync takes the last of repeated keys.
        value = default
        for item in self.pairs():
            if item.key == key:
                value = item.value
        return value

    def as_dict(self):
        """Keys and values, sub-sections as dicts (repeated sections as lists)."""
        out = {}
        for item in self.items:
            if isinstance(item, Pair):
                out[item.key] = item.value
            elif isinstance(item, Section):
                sub = item.as_dict()
                if item.name in out:
                    if not isinstance(out[item.name], list):
                        out[item.name] = [out[item.name]]
                    out[item.name].append(sub)
                else:
                    out[item.name] = sub
        return out

    # --- editing --------------------------------------------------------------------------
    def set(self, key, value):
        """Set key to value (a str, or None to remove it). True when something changed."""
        found = [i for i in self.pairs() if i.key == key]
        if value is None:
            if not found:
                return False
            self.items = [i for i in self.items if not (isinstance(i, Pair) and i.key == key)]
            return True
        value = str(value)
        if found and found[-1].value == value and len(found) == 1:
            return False
        if found:
            for extra in found[:-1]:
                self.items.remove(extra)
            pair = found[-1]
            pair.value = value
            # An edited line keeps its place and its indentation.
            pair.raw = "%s%s: %s" % (_indent_of(pair.raw), key, value) if pair.raw is not None else None
            return True
        # New keys go after the last key, before sub-sections, as corosync's own files have them.
        index = 0
        for pos, item in enumerate(self.items):
            if isinstance(item, Pair):
                index = pos + 1
        self.items.insert(index, Pair(key, value))
        return True

    def ensure_section(self, name):
        found = self.section(name)
        if found is None:
            found = Section(name)
            self.items.append(found)
        return found

    def remove(self, item):
        self.items.remove(item)


class CorosyncConf:
    """A whole corosync.conf."""

    def __init__(self, root, trailing_newline=True):
        self.root = root
        self.trailing_newline = trailing_newline

    # --- parse and write ------------------------------------------------------------------
    @classmethod
    def parse(cls, text):
        root = Section(None)
        stack = [root]
        lines = text.split("\n")
        trailing = text.endswith("\n")
        if trailing:
            lines = lines[:-1]
        for number, raw in enumerate(lines, 1):
            line = raw.strip()
            if not line or line.startswith("#"):
                stack[-1].items.append(Comment(raw))
            elif line.endswith("{"):
                name = line[:-1].strip()
                if not name or ":" in name or " " in name:
                    raise ConfError("corosync.conf line %d: bad section start %r" % (number, line))
                section = Section(name, open_raw=raw)
                stack[-1].items.append(section)
                stack.append(section)
            elif line == "}":
                if len(stack) == 1:
                    raise ConfError("corosync.conf line %d: '}' without an open section" % number)
                stack.pop().close_raw = raw
            elif ":" in line:
                key, _sep, value = line.partition(":")
                key = key.strip()
                if not key or " " in key:
                    raise ConfError("corosync.conf line %d: bad key in %r" % (number, line))
                stack[-1].items.append(Pair(key, value.strip(), raw))
            else:
                raise ConfError("corosync.conf line %d: expected 'key: value', 'name {' or '}', got %r"
                                % (number, line))
        if len(stack) > 1:
            raise ConfError("corosync.conf: section %r is not closed" % stack[-1].name)
        return cls(root, trailing_newline=trailing or not text)

    def write(self):
        lines = []
        _write_items(self.root, 0, lines, None)
        text = "\n".join(lines)
        return text + "\n" if self.trailing_newline and lines else text

    # --- the parts a cluster is made of ---------------------------------------------------
    @property
    def totem(self):
        return self.root.section("totem")

    @property
    def cluster_name(self):
        return self.totem.get("cluster_name") if self.totem else None

    @property
    def config_version(self):
        value = self.totem.get("config_version") if self.totem else None
        try:
            return int(value) if value is not None else 0
        except ValueError:
            raise ConfError("corosync.conf: config_version %r is not a number" % value) from None

    def set_config_version(self, version):
        return self.root.ensure_section("totem").set("config_version", version)

    def nodes(self):
        """The nodelist as dicts: name, nodeid (int), addresses (ring0_addr, ring1_addr, ... in
        link order)."""
        nodelist = self.root.section("nodelist")
        out = []
        for node in nodelist.sections("node") if nodelist else []:
            entry = {"name": node.get("name"), "nodeid": _int_or_none(node.get("nodeid")), "addresses": []}
            for link in range(MAX_LINKS):
                addr = node.get("ring%d_addr" % link)
                if addr is None:
                    break
                entry["addresses"].append(addr)
            out.append(entry)
        return out

    def node(self, name):
        for node in self.nodes():
            if node["name"] == name:
                return node
        return None

    def set_nodes(self, nodes):
        """Make the nodelist exactly nodes (dicts as nodes() gives them), keeping what each kept
        node section holds beyond those fields (votes, comments). True when it changed."""
        nodelist = self.root.ensure_section("nodelist")
        existing = {n.get("name"): n for n in nodelist.sections("node")}
        wanted_names = [n["name"] for n in nodes]
        changed = False
        for name, section in existing.items():
            if name not in wanted_names:
                nodelist.remove(section)
                changed = True
        for node in nodes:
            section = existing.get(node["name"])
            if section is None:
                section = Section("node")
                nodelist.items.append(section)
                changed = True
            changed |= section.set("name", node["name"])
            changed |= section.set("nodeid", node["nodeid"])
            for link in range(MAX_LINKS):
                addr = node["addresses"][link] if link < len(node["addresses"]) else None
                changed |= section.set("ring%d_addr" % link, addr)
        return changed

    def quorum(self):
        section = self.root.section("quorum")
        return section.as_dict() if section else {}

    def is_default(self):
        """The config a freshly installed package brings: no node outside loopback. Such a host
        belongs to no cluster yet."""
        for node in self.nodes():
            for addr in node["addresses"]:
                if not is_loopback(addr, ("localhost", "localhost.localdomain")):
                    return False
        return True


def _int_or_none(value):
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _indent_of(raw):
    return raw[:len(raw) - len(raw.lstrip())]


def _write_items(section, depth, lines, parent_unit):
    # New lines are indented like their siblings; without any, one unit deeper than the
    # parent, the unit being what the file already uses (a tab in Debian's, 4 spaces in ours).
    sibling = None
    for item in section.items:
        raw = item.open_raw if isinstance(item, Section) else item.raw
        if raw is not None and raw.strip() and not isinstance(item, Comment):
            sibling = _indent_of(raw)
            break
    unit = parent_unit or _guess_unit(section) or "    "
    indent = sibling if sibling is not None else unit * depth
    for item in section.items:
        if isinstance(item, Comment):
            lines.append(item.raw)
        elif isinstance(item, Pair):
            lines.append(item.raw if item.raw is not None else "%s%s: %s" % (indent, item.key, item.value))
        else:
            lines.append(item.open_raw if item.open_raw is not None else "%s%s {" % (indent, item.name))
            _write_items(item, depth + 1, lines, unit)
            lines.append(item.close_raw if item.close_raw is not None else "%s}" % indent)


def _guess_unit(section):
    """The indentation step of a parsed file: that of its first indented line."""
    for item in section.items:
        if isinstance(item, Section):
            for child in item.items:
                raw = child.open_raw if isinstance(child, Section) else child.raw
                if raw and raw.strip() and not isinstance(child, Comment):
                    found = _indent_of(raw)
                    if found:
                        return found
    return None


# --- a new cluster's config ---------------------------------------------------------------
def validate_name(kind, name, where=None):
    if not isinstance(name, str) or not _NAME_RE.fullmatch(name):
        raise InvalidSpec("%s %s %r: use letters, digits and _.- (at most 64 characters, starting with a "
                          "letter or digit)" % (where + ": invalid" if where else "Invalid", kind, name))


def validate_cluster_name(name):
    # DLM and the cluster's lock names take at most 32 of these characters.
    if not isinstance(name, str) or not _CLUSTER_NAME_RE.fullmatch(name):
        raise InvalidSpec("Invalid cluster name %r: use at most 32 letters, digits, _ and -" % name)


def new_conf(cluster_name, nodes, token=None, token_coefficient=None, crypto_cipher="aes256",
             crypto_hash="sha256", two_node=False, wait_for_all=None, qdevice=None,
             link_count=None):
    """The corosync.conf of a new cluster. nodes as nodes() gives them; qdevice a dict with
    host, algorithm, tie_breaker (or None)."""
    validate_cluster_name(cluster_name)
    if not nodes:
        raise InvalidSpec("A cluster needs at least one node")
    conf = CorosyncConf.parse(
        "# Managed by debvirt.cluster: membership changes go through debvirt.cluster.cluster_member,\n"
        "# which writes the same nodelist to every member and bumps config_version.\n")
    totem = conf.root.ensure_section("totem")
    totem.set("version", 2)
    totem.set("cluster_name", cluster_name)
    totem.set("config_version", 1)
    totem.set("transport", "knet")
    totem.set("crypto_cipher", crypto_cipher)
    totem.set("crypto_hash", crypto_hash)
    if token is not None:
        totem.set("token", token)
    if token_coefficient is not None:
        totem.set("token_coefficient", token_coefficient)
    links = link_count or max(len(n["addresses"]) for n in nodes)
    for link in range(links):
        interface = Section("interface")
        interface.set("linknumber", link)
        totem.items.append(interface)
    logging = conf.root.ensure_section("logging")
    logging.set("to_logfile", "yes")
    logging.set("logfile", "/var/log/corosync/corosync.log")
    logging.set("to_syslog", "yes")
    logging.set("timestamp", "on")
    quorum = conf.root.ensure_section("quorum")
    quorum.set("provider", "corosync_votequorum")
    if two_node:
        quorum.set("two_node", 1)
    if wait_for_all is not None:
        quorum.set("wait_for_all", int(bool(wait_for_all)))
    if qdevice:
        device = quorum.ensure_section("device")
        device.set("model", "net")
        device.set("votes", 1)
        net = device.ensure_section("net")
        net.set("host", qdevice["host"])
        net.set("algorithm", qdevice.get("algorithm") or "ffsplit")
        if qdevice.get("tie_breaker"):
            net.set("tie_breaker", qdevice["tie_breaker"])
    conf.set_nodes(nodes)
    # A blank line before each section, as people write these files.
    spaced = []
    for item in conf.root.items:
        if isinstance(item, Section):
            spaced.append(Comment(""))
        spaced.append(item)
    conf.root.items = spaced
    return conf


def check_nodes(nodes):
    """Names, ids and addresses unique; every node with the same number of links."""
    seen_names, seen_ids, seen_addrs = set(), set(), set()
    links = None
    for node in nodes:
        validate_name("node name", node["name"])
        if node["name"] in seen_names:
            raise InvalidSpec("Node %s is listed twice" % node["name"])
        seen_names.add(node["name"])
        if node.get("nodeid") is not None:
            if node["nodeid"] < 1:
                raise InvalidSpec("Node %s: nodeid must be at least 1" % node["name"])
            if node["nodeid"] in seen_ids:
                raise InvalidSpec("Node %s: nodeid %s is taken" % (node["name"], node["nodeid"]))
            seen_ids.add(node["nodeid"])
        if not node["addresses"]:
            raise InvalidSpec("Node %s has no address" % node["name"])
        for link, addr in enumerate(node["addresses"]):
            check_address(addr, "Node %s: ring%d_addr" % (node["name"], link))
            if addr in seen_addrs:
                raise InvalidSpec("Address %s is used twice (node %s)" % (addr, node["name"]))
            seen_addrs.add(addr)
        count = len(node["addresses"])
        if links is None:
            links = count
        elif count != links:
            raise InvalidSpec("Node %s has %d link address(es), the others %d: every node needs one "
                              "address per link" % (node["name"], count, links))


def assign_nodeids(nodes, taken=()):
    """Fill in missing nodeids with the lowest free ones."""
    used = set(taken) | {n["nodeid"] for n in nodes if n.get("nodeid") is not None}
    out = []
    for node in nodes:
        node = dict(node)
        if node.get("nodeid") is None:
            nodeid = 1
            while nodeid in used:
                nodeid += 1
            node["nodeid"] = nodeid
            used.add(nodeid)
        out.append(node)
    return out
