# -*- coding: utf-8 -*-
# Copyright: debvirt.cluster developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""corosync's runtime view from one member: quorum and links as its tools print them, waits on
them, this host's node in the nodelist, and the cluster-wide view cluster_info gives. Only
reads; commands run through the Shell it is given."""

from __future__ import annotations

import re
import socket
import time

from ansible_collections.debvirt.cluster.plugins.module_utils._corosync import CONF, CorosyncConf
from ansible_collections.debvirt.cluster.plugins.module_utils._errors import DebvirtError, WaitTimeout


# --- corosync's runtime view --------------------------------------------------------------
def parse_quorum(text):
    """corosync-quorumtool -s -p output as a dict."""
    out = {"members": []}
    fields = {"Quorate": "quorate", "Expected votes": "expected_votes", "Total votes": "total_votes",
              "Quorum": "quorum", "Nodes": "nodes", "Node ID": "node_id", "Ring ID": "ring_id",
              "Flags": "flags"}
    in_members = False
    for line in text.splitlines():
        if line.startswith("Membership information"):
            in_members = True
            continue
        if in_members:
            parts = line.split()
            if len(parts) >= 3 and parts[0].isdigit():
                # Nodeid Votes [Qdevice] Name [(local)]
                rest = parts[2:]
                if rest and rest[0] in ("NR", "NV", "NMW", "A", "V", "MW") or (rest and "," in rest[0]):
                    rest = rest[1:]
                name = rest[0] if rest else ""
                out["members"].append({"nodeid": int(parts[0]), "votes": int(parts[1]), "name": name,
                                       "local": "(local)" in rest})
            continue
        key, sep, value = line.partition(":")
        if sep and key.strip() in fields:
            value = value.strip()
            field = fields[key.strip()]
            if field == "quorate":
                out[field] = value == "Yes"
            elif field in ("ring_id", "flags"):
                out[field] = value
            else:
                try:
                    out[field] = int(value.split()[0])
                except (ValueError, IndexError):
                    out[field] = None
    out["quorate"] = out.get("quorate", False)
    return out


_NODE_LINE = re.compile(r"^nodeid:?\s+(\d+)(?::)?\s*(\S.*)?$")
_LINK_LINE = re.compile(r"^LINK:?\s+(\d+)\b.*?\b(connected|disconnected)\b", re.I)


def parse_links(text):
    """corosync-cfgtool -n output: {nodeid: {"reachable": bool, "links": {n: "connected"...}}}."""
    out = {}
    current = None
    for line in text.splitlines():
        line = line.strip()
        match = _NODE_LINE.match(line)
        if match:
            current = out.setdefault(int(match.group(1)), {"reachable": "unreachable" not in (match.group(2) or ""),
                                                           "links": {}})
            continue
        match = _LINK_LINE.match(line)
        if match and current is not None:
            current["links"][int(match.group(1))] = match.group(2).lower()
    return out


def quorum_status(shell, host=None):
    """The runtime quorum of the cluster as host's corosync sees it; None when corosync does not
    run there."""
    rc, out, err = shell.run(host, ["corosync-quorumtool", "-s", "-p"])
    # 0: quorate, 2: not quorate; both come with the status printed.
    if rc not in (0, 2) or "Quorum information" not in out:
        return None
    return parse_quorum(out)


def wait_for(shell, what, predicate, timeout, host=None):
    deadline = time.monotonic() + timeout
    status = None
    while True:
        status = quorum_status(shell, host)
        if status is not None and predicate(status):
            return status
        if time.monotonic() >= deadline:
            seen = ("quorate" if status and status["quorate"] else "not quorate") if status else "corosync down"
            members = ", ".join(m["name"] for m in status["members"]) if status else "none"
            raise WaitTimeout("Timed out after %ss waiting for %s (now: %s; members: %s)"
                              % (timeout, what, seen, members))
        time.sleep(1)


# --- this host ----------------------------------------------------------------------------
def local_addresses(shell):
    rc, out, _err = shell.run(None, ["ip", "-o", "addr", "show"])
    found = set()
    if rc == 0:
        for line in out.splitlines():
            parts = line.split()
            if len(parts) > 3 and parts[2] in ("inet", "inet6"):
                found.add(parts[3].split("/")[0])
    return found


def find_self(conf, shell, hostname=None):
    """This host's node in conf: by address first (names may be aliases), then by name."""
    addrs = local_addresses(shell)
    nodes = conf.nodes()
    for node in nodes:
        if any(a in addrs for a in node["addresses"]):
            return node
    hostname = hostname or socket.gethostname()
    for node in nodes:
        if node["name"] in (hostname, hostname.split(".")[0]):
            return node
    return None


# --- the cluster-wide view ------------------------------------------------------------------------
def cluster_info(shell, libvirt_client_for=None):
    """Name, quorum, members with ids, addresses, link status and guests, from this member."""
    text = shell.read_file(None, CONF)
    conf = CorosyncConf.parse(text) if text is not None else None
    if conf is None or conf.is_default():
        return {"member": False, "cluster_name": None, "config_version": None, "quorum": None,
                "members": [], "warnings": []}
    me = find_self(conf, shell)
    quorum = quorum_status(shell)
    rc, out, _err = shell.run(None, ["corosync-cfgtool", "-n"])
    links = parse_links(out) if rc == 0 else {}
    online = {m["nodeid"]: m for m in (quorum or {}).get("members", [])}
    warnings = []
    members = []
    for node in conf.nodes():
        local = me is not None and node["name"] == me["name"]
        seen = online.get(node["nodeid"])
        entry = {
            "name": node["name"],
            "nodeid": node["nodeid"],
            "addresses": node["addresses"],
            "local": local,
            "online": seen is not None,
            "votes": seen["votes"] if seen else 0,
        }
        if local:
            entry["links"] = {str(i): "local" for i in range(len(node["addresses"]))}
        else:
            found = links.get(node["nodeid"], {})
            entry["links"] = {str(i): found.get("links", {}).get(i, "disconnected")
                              for i in range(len(node["addresses"]))}
        entry["guests"] = None
        if libvirt_client_for is not None and (local or seen is not None):
            try:
                entry["guests"] = _guests(libvirt_client_for, None if local else node["addresses"][0])
            except DebvirtError as e:
                warnings.append("Guests of %s unknown: %s" % (node["name"], e.msg))
        members.append(entry)
    q = None
    if quorum is not None:
        q = {k: quorum.get(k) for k in ("quorate", "expected_votes", "total_votes", "quorum", "node_id")}
        q["nodes"] = quorum.get("nodes")
    return {"member": me is not None, "cluster_name": conf.cluster_name, "config_version": conf.config_version,
            "local_node": me["name"] if me else None, "quorum": q, "members": members, "warnings": warnings}


def _guests(libvirt_client_for, host):
    client = libvirt_client_for(host)
    try:
        return sorted(({"name": dom.name(), "state": client.domain_state(dom)} for dom in client.domains()),
                      key=lambda g: g["name"])
    finally:
        client.close()
