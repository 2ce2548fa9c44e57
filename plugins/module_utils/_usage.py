# -*- coding: utf-8 -*-
# Copyright: debvirt.cluster developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Who uses a piece of storage: the proof of disuse that comes before a deletion.

A domain uses storage when its definition (or, while it runs, its live configuration) names it
in a disk or a filesystem: by pool and volume, or by path. Every defined domain counts, running
or not, and every connection given is asked: the QEMU and the LXC driver of this host today,
every member's once the cluster layer hands them over. A connection that cannot be read is an
error, never "unused".
"""

from __future__ import annotations

import os
from contextlib import contextmanager

from ansible_collections.debvirt.cluster.plugins.module_utils._client import LibvirtClient
from ansible_collections.debvirt.cluster.plugins.module_utils._errors import NotFound
from ansible_collections.debvirt.cluster.plugins.module_utils._xml import parse

# The drivers of one host that can hold storage of the same pools.
HOST_DRIVERS = ("qemu:///system", "lxc:///system")


class Source:
    """What one disk or filesystem of a domain refers to. A uses() predicate below reads only
    pool, volume and path, which a guest's DiskSpec has too."""

    def __init__(self, pool=None, volume=None, path=None):
        self.pool, self.volume = pool, volume
        self.path = os.path.normpath(path) if path else None


class User:
    """A domain that uses the storage asked about."""

    def __init__(self, uri, noun, name):
        self.uri, self.noun, self.name = uri, noun, name

    def __str__(self):
        return "%s %s" % (self.noun, self.name)


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
    for client in clients:
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
                found.append(User(client.uri, client.noun, name))
    return sorted(found, key=lambda u: (u.noun, u.name, u.uri))


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
    """"guests a, b and containers c" for a message."""
    parts = []
    for noun in sorted({u.noun for u in found}):
        names = [u.name for u in found if u.noun == noun]
        parts.append("%ss %s" % (noun, ", ".join(names)))
    return " and ".join(parts)


@contextmanager
def host_connections(client, client_for=LibvirtClient):
    """client with the host's other driver: a volume of a pool is a QEMU guest's disk or a
    container's root filesystem alike. Another URI (a remote one, a test driver) is asked alone."""
    if client.uri not in HOST_DRIVERS:
        yield [client]
        return
    others = [client_for(uri) for uri in HOST_DRIVERS if uri != client.uri]
    try:
        yield [client] + others
    finally:
        for other in others:
            other.close()
