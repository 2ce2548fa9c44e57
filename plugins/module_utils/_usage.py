# -*- coding: utf-8 -*-
# Copyright: debvirt.cluster developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Who uses a piece of storage: the proof of disuse that comes before a deletion.

A domain uses storage when its definition (or, while it runs, its live configuration) names it
in a disk or a filesystem: by pool and volume, or by path. Every defined domain counts, running
or not, and every connection of the Scope is asked: this host's QEMU and LXC drivers and, when
the host is a cluster member, every other member's two. A volume of a pool local to this host
is named on another member only if its path is shared, which cannot be told from here: every
member is asked for every deletion. A connection that cannot be read, and a member that is
offline, are errors, never "unused".
"""

from __future__ import annotations

import os
from contextlib import contextmanager

from ansible_collections.debvirt.cluster.plugins.module_utils._client import LibvirtClient, is_local
from ansible_collections.debvirt.cluster.plugins.module_utils._cluster import Shell, member_uri
from ansible_collections.debvirt.cluster.plugins.module_utils._errors import DebvirtError, NotFound
from ansible_collections.debvirt.cluster.plugins.module_utils._transport import members_of
from ansible_collections.debvirt.cluster.plugins.module_utils._xml import parse

# The drivers of one host that can hold storage of the same pools.
HOST_DRIVERS = ("qemu:///system", "lxc:///system")
REMEDY = ("Nothing was changed: bring it back, or remove it from the cluster first (cluster_member "
          "state=absent)")


class UsageUnknown(DebvirtError):
    """Who uses the storage cannot be told: nothing may be deleted."""


class Source:
    """What one disk or filesystem of a domain refers to. A uses() predicate below reads only
    pool, volume and path, which a guest's DiskSpec has too."""

    def __init__(self, pool=None, volume=None, path=None):
        self.pool, self.volume = pool, volume
        self.path = os.path.normpath(path) if path else None


class User:
    """A domain that uses the storage asked about, on a member (None: this host)."""

    def __init__(self, uri, noun, name, member=None):
        self.uri, self.noun, self.name, self.member = uri, noun, name, member

    def __str__(self):
        return "%s %s%s" % (self.noun, self.name, " on member %s" % self.member if self.member else "")


class Connections:
    """The clients a Scope asks about one client's storage, each with the member it belongs to
    (None: this host), opened at the first question: a plan that deletes nothing never asks."""

    def __init__(self, scope, client):
        self.scope, self.client = scope, client
        self.asked = None  # [(client, member)]

    def pairs(self):
        if self.asked is None:
            self.asked = [(self.client, None)] + self._others()
        return list(self.asked)

    def __iter__(self):
        return iter([client for client, _member in self.pairs()])

    def _others(self):
        scope, client = self.scope, self.client
        if client.uri not in scope.drivers and is_local(client.uri):
            return []  # a test driver, a session: asked alone
        cluster = scope.members()
        others = sorted(cluster.others().nodes.values(), key=lambda n: n.name) if cluster else []
        wanted = [(d, None) for d in scope.drivers] + [(member_uri(d, n.host), n) for n in others for d in scope.drivers]
        if client.uri not in [uri for uri, _node in wanted]:
            return []  # a host outside this cluster: asked alone
        for node in others:
            if node.online is False:
                raise UsageUnknown("Member %s is offline in the cluster: whether its guests or containers use "
                                   "the storage cannot be asked, and a deletion needs every member's answer. %s"
                                   % (node.name, REMEDY))
        return [(scope.client_for(uri), node.name if node else None) for uri, node in wanted if uri != client.uri]

    def close(self):
        for other, _member in (self.asked or [])[1:]:
            other.close()


class Scope:
    """Where the users of storage are looked for. members() gives the cluster's members
    (_transport.Members), or None off a cluster; it is called only when a deletion is planned,
    since it costs a read of corosync's view. drivers are this host's; a member's are the same
    drivers at its address (member_uri), opened through client_for, the module's own, so that
    its connect_timeout and keepalive hold for every member."""

    def __init__(self, client_for=LibvirtClient, members=None, drivers=HOST_DRIVERS):
        self.client_for = client_for
        self.members = members or (lambda: None)
        self.drivers = drivers

    @classmethod
    def of(cls, module):
        """The Scope of a LibvirtModule: this host, and its cluster's members if it is in one."""
        shell = Shell(module.run_command)
        return cls(module.client_for, lambda: members_of(shell, HOST_DRIVERS[0]))

    @contextmanager
    def connections(self, client):
        """client with this host's other drivers and every other member's, opened when first
        asked and closed after. A URI that is none of those (a test driver, a host outside the
        cluster) is asked alone."""
        conns = Connections(self, client)
        try:
            yield conns
        finally:
            conns.close()


def sources(root):
    """The storage a domain's XML (a parsed <domain>) refers to, backing stores included
    (libvirt shows a running disk's chain in its live configuration)."""
    out = []
    for node in root.xpath("devices/disk//source | devices/filesystem/source"):
        path = node.get("file") or node.get("dev") or node.get("dir")
        out.append(Source(node.get("pool"), node.get("volume"), path))
    return out


def users(clients, uses, skip=None):
    """Every domain of the connections with a disk or filesystem s for which uses(s) is true.

    skip is (uri, name) of the domain asking, which is not a user of its own storage.
    """
    found = []
    asked = clients.pairs() if isinstance(clients, Connections) else [(c, None) for c in clients]
    for client, member in asked:
        try:
            found += _users_of(client, uses, skip, member)
        except DebvirtError as e:
            if member is None:
                raise
            raise UsageUnknown("Member %s could not be asked whether its guests or containers use the storage, "
                               "and a deletion needs every member's answer: %s. %s" % (member, e.msg, REMEDY)) from None
    return sorted(found, key=lambda u: (u.member or "", u.noun, u.name, u.uri))


def _users_of(client, uses, skip, member):
    found = []
    for dom in client.domains():
        name = dom.name()
        if skip == (client.uri, name):
            continue
        try:
            xmls = [client.domain_xml(dom, inactive=True)]
            if client.domain_state(dom) != "stopped":
                # A hot-plugged disk is in the live configuration only.
                xmls.append(client.domain_xml(dom, inactive=False))
        except NotFound:
            continue  # undefined while we looked: it uses nothing any more
        if any(uses(s) for xml in xmls for s in sources(parse(xml))):
            found.append(User(client.uri, client.noun, name, member))
    return found


def volume_is(pool, volume, path):
    """uses() for one volume, named in its pool or by its path (path None when unknown)."""
    path = os.path.normpath(path) if path else None
    return lambda s: (s.pool == pool and s.volume == volume) or (path is not None and s.path == path)


def in_pool(pool, paths, target):
    """uses() for any volume of a pool: named in it, one of its volumes' paths, or below its target."""
    paths = {os.path.normpath(p) for p in paths if p}
    below = os.path.normpath(target).rstrip("/") + "/" if target else None
    return lambda s: s.pool == pool or (s.path is not None and (
        s.path in paths or (below is not None and s.path.startswith(below))))


def phrase(found):
    """"guests a, b and containers c and guests d on member n2" for a message."""
    parts = []
    for member in sorted({u.member for u in found}, key=lambda m: m or ""):
        on = [u for u in found if u.member == member]
        for noun in sorted({u.noun for u in on}):
            names = [u.name for u in on if u.noun == noun]
            parts.append("%ss %s%s" % (noun, ", ".join(names), " on member %s" % member if member else ""))
    return " and ".join(parts)
