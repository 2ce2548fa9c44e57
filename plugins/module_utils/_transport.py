# -*- coding: utf-8 -*-
# Copyright: debvirt.cluster developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""How a move reaches the members: who they are and their libvirt URIs (over SSH or TLS), the
check that the target answers over TLS, where the guest is now, and the copies of disks and
root directories from member to member, each bounded by the move's timeout."""

from __future__ import annotations

import shlex
from urllib.parse import urlparse

from ansible_collections.debvirt.cluster.plugins.module_utils._cluster import member_uri
from ansible_collections.debvirt.cluster.plugins.module_utils._errors import DebvirtError, NotFound, WaitTimeout
from ansible_collections.debvirt.cluster.plugins.module_utils._quorum import cluster_info

# Exit status of coreutils' timeout(1) when the time ran out (and when it had to kill).
TIMED_OUT = (124, 137)


class MigrationError(DebvirtError):
    """A move cannot be made, or failed; the message says where the guest is now."""


# --- the members ----------------------------------------------------------------------------
class Node:
    def __init__(self, name, uri, address, online=None, host=None):
        self.name = name
        self.uri = uri
        self.address = address
        self.online = online  # None: not known (members given explicitly)
        self.host = host      # where its commands run over SSH; None: this host


class Members:
    def __init__(self, nodes, quorate, source):
        self.nodes = nodes          # name -> Node
        self.quorate = quorate      # None when not known
        self.source = source        # "corosync" or "given"

    def others(self):
        """The members but this host."""
        return Members({n: m for n, m in self.nodes.items() if m.host is not None}, self.quorate, self.source)


def read_members(shell, uri, req=None):
    """The nodes to ask: the local corosync nodelist, or the members the request names. Without
    a request, the nodelist's members over SSH."""
    tls = req is not None and req.transport == "tls"
    if req is not None and req.members is not None:
        nodes = {}
        for name, member in req.members.items():
            host = urlparse(member).hostname
            nodes[name] = Node(name, member_uri(member, host, "tls") if tls and host else member, host, host=host)
        return Members(nodes, None, "given")
    info = cluster_info(shell, None)
    if not info["member"]:
        raise MigrationError("This host is not a member of a cluster (no nodelist naming it in "
                             "/etc/corosync/corosync.conf): run the migration on a member, or name "
                             "the members explicitly")
    nodes = {}
    for m in info["members"]:
        address = m["addresses"][0]
        remote = member_uri(uri, address, "tls" if tls else "ssh")
        nodes[m["name"]] = Node(m["name"], uri if m["local"] else remote, address,
                                m["online"], None if m["local"] else address)
    quorate = bool((info["quorum"] or {}).get("quorate"))
    return Members(nodes, quorate, "corosync")


def members_of(shell, uri):
    """The cluster's members, their URIs of uri's driver; None when this host is in none."""
    try:
        return read_members(shell, uri)
    except MigrationError:
        # Without members given, read_members refuses only a host that no nodelist names.
        return None


def locate_all(members, client_for, names):
    """Where each of the names is defined: ({name: {node: state}} of those found, [nodes that
    could not be asked], {node: client}), from one listing a member."""
    found, unknown, clients = {}, [], {}
    for node in members.nodes.values():
        if node.online is False:
            unknown.append(node.name)
            continue
        client = client_for(node.uri)
        try:
            on_node = _states(client, names)
        except DebvirtError:
            client.close()
            unknown.append(node.name)
            continue
        clients[node.name] = client
        for name, state in on_node.items():
            found.setdefault(name, {})[node.name] = state
    return found, sorted(unknown), clients


def _states(client, names):
    out = {}
    for dom in client.domains():
        if dom.name() in names:
            try:
                out[dom.name()] = client.domain_state(dom)
            except NotFound:
                continue  # undefined while we looked
    return out


def locate(members, client_for, name):
    """({node: state} where the guest is defined, [nodes that could not be asked], {node: client})."""
    found, unknown, clients = locate_all(members, client_for, {name})
    return found.get(name, {}), unknown, clients


def find_source(found, target, name, unknown):
    """The node the guest is on: where it runs, else the one node that defines it."""
    running = sorted(n for n, s in found.items() if s in ("running", "paused"))
    if len(running) > 1:
        raise MigrationError("Guest %s runs on several nodes (%s): resolve that before moving it"
                             % (name, ", ".join(running)))
    if running:
        return running[0]
    if not found:
        hint = "; not asked (offline or unreachable): %s" % ", ".join(unknown) if unknown else ""
        raise MigrationError("Guest %s is not defined on any member%s" % (name, hint))
    if len(found) > 1:
        if target in found:
            return target
        raise MigrationError("Guest %s is stopped and defined on several nodes (%s): cannot tell which "
                             "one to move" % (name, ", ".join(sorted(found))))
    return next(iter(found))


def where_now(src, name, source):
    state = None
    # A connection lost to a restart of libvirtd is opened again once: the daemon is likely back.
    for _attempt in range(2):
        try:
            dom = src.domain(name)
            state = src.domain_state(dom) if dom is not None else None
            break
        except DebvirtError:
            src.close()
    if state is None:
        return "Where guest %s is now could not be read from %s" % (name, source)
    return "Guest %s is still %s on %s" % (name, state, source)


# --- the copies -----------------------------------------------------------------------------
def copy_disk(req, src, tgt, d, deadline):
    vol = tgt.volume(tgt.pool(d.pool), d.volume)
    try:
        # Length 0: the whole file as it is (for qcow2 the image file, not its capacity).
        src.copy_volume_to(src.volume_by_path(d.path), tgt, vol, 0, deadline)
    except WaitTimeout:
        raise MigrationError("Copying disk %s of guest %s to %s did not finish within timeout %ss and was "
                             "aborted" % (d.target, req.name, req.target, req.timeout)) from None


def copy_tree(shell, src_host, tgt_host, path, timeout):
    # Straight from node to node when both are other members would need trust between them for
    # this host's key too; the stream passes through this host, which has both.
    def at(host, argv):
        return shlex.join(shell.argv(host, argv))
    tar = ["--numeric-owner", "--xattrs", "--acls"]
    read = at(src_host, ["tar", "-C", path, "-cpf", "-"] + tar + ["."])
    write = at(tgt_host, ["sh", "-c", 'mkdir -p "$1" && exec tar -C "$1" -xpf - ' + " ".join(tar), "sh", path])
    # timeout(1) signals its whole process group, so both ssh ends go too.
    rc, out, err = shell.run(None, ["timeout", "--kill-after=10", str(timeout), "bash", "-c",
                                    "set -o pipefail; %s | %s" % (read, write)])
    if rc in TIMED_OUT:
        raise MigrationError("Copying root directory %s to the target did not finish within timeout %ss "
                             "and was aborted" % (path, timeout))
    if rc != 0:
        raise MigrationError("Failed to copy %s to the target: %s" % (path, (err or out).strip() or "exit %d" % rc))


# --- the transport check ----------------------------------------------------------------------
def probe_tls(client_for, uri, node):
    """The transport check: the target's libvirt answers over TLS, asked before anything else."""
    if not node.address:
        raise MigrationError("Transport tls needs the target's host name or address: %s has none (give its "
                             "URI in members with the host); nothing was changed" % node.name)
    probe = member_uri(uri, node.address, "tls")
    client = client_for(probe)
    try:
        client.hostname()
    except DebvirtError as e:
        detail = "%s does not answer at %s: %s" % (node.name, probe, e.msg)
        raise MigrationError(
            "Cannot move over TLS: %s. Transport tls needs the cluster set up with cluster_tls: true (role "
            "debvirt.cluster.cluster gives every member certificates of the cluster's CA and starts libvirtd's "
            "TLS listener); transport ssh needs neither. Nothing was changed" % detail,
            checks=[{"check": "transport", "result": "failed", "detail": detail}]) from None
    finally:
        client.close()
    return {"check": "transport", "result": "passed", "detail": "tls: %s answers at %s" % (node.name, probe)}
