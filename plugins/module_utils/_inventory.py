# -*- coding: utf-8 -*-
# Copyright: debvirt.cluster developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The cluster-wide view that the guests inventory plugin turns into hosts and groups.

Each member's libvirt is read once per driver (QEMU for virtual machines, LXC for containers),
all members at the same time, every one with a deadline: a node that is down costs the run at
most the timeout, never the TCP timeout of its SSH connection. The records are plain data (no
libvirt objects), so that Ansible's inventory cache can store them as JSON.
"""

from __future__ import annotations

import threading
import time
from urllib.parse import quote, urlparse

from ansible_collections.debvirt.cluster.plugins.module_utils._client import LibvirtClient
from ansible_collections.debvirt.cluster.plugins.module_utils._cluster import member_uri
from ansible_collections.debvirt.cluster.plugins.module_utils._container import CONTAINER
from ansible_collections.debvirt.cluster.plugins.module_utils._corosync import ConfError, CorosyncConf
from ansible_collections.debvirt.cluster.plugins.module_utils._errors import DebvirtError, NotFound
from ansible_collections.debvirt.cluster.plugins.module_utils._guest import GUEST
from ansible_collections.debvirt.cluster.plugins.module_utils._xml import parse

# Each guest type's kind (_kind's descriptor), which names the driver of its URI on a member.
KINDS = {k.type: k for k in (GUEST, CONTAINER)}


class Target:
    """One libvirt connection to read, and the node its guests are reported on."""

    def __init__(self, uri, node=None):
        self.uri = uri
        self.node = node

    def __repr__(self):
        return "Target(%r, %r)" % (self.uri, self.node)


def member_targets(members, types=("vm", "container"), user="root", keyfile=None, known_hosts=None):
    """The URIs that read the given cluster members over SSH.

    A member is the name or address SSH reaches it at, or a (node, address) pair: reached at
    the address, its guests reported on the node.
    """
    if known_hosts:
        # The ssh binary that the plain +ssh transport runs takes no known_hosts file from the
        # URI (libvirt passes that parameter to libssh only), so a given file would be ignored
        # and the host key checked against ~/.ssh/known_hosts instead. libssh reads it, and
        # refuses a host that is missing from it or whose key differs.
        transport = "libssh"
        query = ["known_hosts=%s" % quote(known_hosts, safe="/"), "known_hosts_verify=normal",
                 # Never a password or keyboard prompt: nobody is there to answer it.
                 "sshauth=%s" % ("privkey" if keyfile else "agent,privkey")]
    else:
        transport, query = "ssh", []
    if keyfile:
        query.append("keyfile=%s" % quote(keyfile, safe="/"))
    targets = []
    for member in members:
        node, host = member if isinstance(member, tuple) else (member, member)
        for kind in types:
            uri = member_uri("%s:///system" % KINDS[kind].scheme, host, transport, user, query)
            targets.append(Target(uri, node))
    return targets


def nodelist_members(text):
    """(name, address) of every node in a corosync.conf's nodelist: its first link's address
    is where the others reach it, and its name is what the cluster calls it."""
    conf = CorosyncConf.parse(text)
    members = []
    for node in conf.nodes():
        if not node["addresses"]:
            raise ConfError("corosync.conf: node %s has no ring0_addr" % (node["name"] or node["nodeid"]))
        members.append((node["name"] or node["addresses"][0], node["addresses"][0]))
    if not members:
        raise ConfError("corosync.conf has no nodelist: this host is in no cluster")
    return members


def ssh_argv(host, command, user="root", keyfile=None, known_hosts=None, timeout=30):
    """The ssh command line that runs command on host, with the same key and host keys as the
    URIs of member_targets, and never a prompt."""
    argv = ["ssh", "-o", "BatchMode=yes", "-o", "ConnectTimeout=%d" % max(1, int(timeout))]
    if keyfile:
        argv += ["-i", keyfile, "-o", "IdentitiesOnly=yes"]
    if known_hosts:
        argv += ["-o", "UserKnownHostsFile=%s" % known_hosts, "-o", "StrictHostKeyChecking=yes"]
    if user:
        argv += ["-l", user]
    return argv + ["--", host, command]


def uri_host(uri):
    """The host part of a remote URI, or None for a local one."""
    return urlparse(uri).hostname or None


def _addresses(client, dom, interfaces, active, agent=False):
    """Each interface's addresses ("a.b.c.d/prefix"), in the order of the interfaces; the guest
    agent's only when agent is true: a guest that reports another host's address would have the
    playbook's connection (and its credentials) sent there."""
    found = client.interface_addresses(dom, agent=agent) if active else {}
    out = []
    for nic in interfaces:
        addresses = list(found.get(nic.get("mac"), []))
        static = nic.get("address")
        # A container's static address is configured inside it; libvirt has no lease to show.
        if static and static != "dhcp" and active and static not in addresses:
            addresses.append(static)
        out.append(addresses)
    return out


def _record(client, dom, node, agent=False):
    """One guest as plain data, or None when it vanished while the host was being read."""
    try:
        root = parse(client.domain_xml(dom, inactive=True))
        guest = CONTAINER if root.get("type") == CONTAINER.scheme else GUEST
        kind = guest.type
        spec = guest.spec_from_root(root)
        state = guest.state(client, dom)
        autostart = client.autostart(dom)
        interfaces = []
        for nic in spec.interfaces or []:
            entry = {"mac": nic.mac, "network": nic.network, "bridge": nic.bridge}
            if kind == "container":
                entry["address"] = nic.address
            interfaces.append(entry)
        per_nic = _addresses(client, dom, interfaces, state in ("running", "paused", "frozen"), agent)
    except NotFound:
        return None
    for entry, addresses in zip(interfaces, per_nic):
        entry.pop("address", None)
        entry["addresses"] = addresses
    return {
        "name": dom.name(),
        "uuid": root.findtext("uuid"),
        "type": kind,
        "node": node,
        "uri": client.uri,
        "state": state,
        "autostart": autostart,
        "memory": spec.memory,
        "vcpus": spec.vcpus,
        "tags": list(spec.tags or []),
        "description": spec.description,
        "interfaces": interfaces,
        "addresses": [a for addresses in per_nic for a in addresses],
    }


def read_target(target, client_factory=LibvirtClient, agent=False):
    """Every guest on one libvirt connection, as records; raises DebvirtError when it cannot.
    agent: take addresses from the guest agent too."""
    client = client_factory(target.uri)
    try:
        node = target.node or uri_host(target.uri) or client.hostname()
        records = []
        for dom in client.domains():
            record = _record(client, dom, node, agent)
            if record is not None:
                records.append(record)
        return records
    finally:
        client.close()


def read_targets(targets, timeout=30, client_factory=LibvirtClient, agent=False):
    """(records, failures): the guests of every target that answered in time, and for each
    target that did not, (target, reason).

    Targets are read in parallel; libvirt's calls release the GIL, so the wall time is that of
    the slowest member, not the sum. A thread still stuck after the deadline is left to die
    with the process (it is a daemon): it holds only its own connection.
    """
    results = {}

    def work(index, target):
        try:
            results[index] = ("ok", read_target(target, client_factory, agent))
        except DebvirtError as e:
            results[index] = ("failed", e.msg)
        except Exception as e:  # pylint: disable=broad-except
            # Anything else would be lost in the thread; it is reported as that member's failure.
            results[index] = ("failed", "%s: %s" % (type(e).__name__, e))

    threads = []
    for index, target in enumerate(targets):
        thread = threading.Thread(target=work, args=(index, target), name="debvirt-%s" % target.uri)
        thread.daemon = True
        thread.start()
        threads.append(thread)
    deadline = time.monotonic() + timeout
    for thread in threads:
        thread.join(max(0.0, deadline - time.monotonic()))

    records, failures = [], []
    for index, target in enumerate(targets):
        outcome = results.get(index)
        if outcome is None:
            failures.append((target, "did not answer within %ss" % timeout))
        elif outcome[0] == "failed":
            failures.append((target, outcome[1]))
        else:
            records.extend(outcome[1])
    return records, failures


def deduplicate(records):
    """(records, warnings): one record per guest name.

    A guest defined on two nodes (the source of a migration that kept its definition, a copy
    restored by hand) would otherwise be one inventory host whose variables depend on which
    node answered last. The running one wins; between equals, the first node listed.
    """
    chosen, order, warnings = {}, [], []
    for record in records:
        name = record["name"]
        if name not in chosen:
            chosen[name] = record
            order.append(name)
            continue
        other = chosen[name]
        warnings.append("Guest %s is defined on %s (%s) and on %s (%s): using the one on %s"
                        % (name, other["node"], other["state"], record["node"], record["state"],
                           record["node"] if _rank(record) > _rank(other) else other["node"]))
        if _rank(record) > _rank(other):
            chosen[name] = record
    return [chosen[name] for name in order], warnings


def _rank(record):
    return 1 if record["state"] in ("running", "paused", "frozen") else 0


def host_vars(record):
    """The variables an inventory host gets for one guest."""
    out = {
        "debvirt_node": record["node"],
        "debvirt_uri": record["uri"],
        "debvirt_state": record["state"],
        "debvirt_type": record["type"],
        "debvirt_tags": record["tags"],
        "debvirt_description": record["description"],
        "debvirt_uuid": record["uuid"],
        "debvirt_addresses": record["addresses"],
        "debvirt_interfaces": record["interfaces"],
        "debvirt_autostart": record["autostart"],
        "debvirt_memory": record["memory"],
        "debvirt_vcpus": record["vcpus"],
    }
    address = first_address(record["addresses"])
    if address:
        out["ansible_host"] = address
    return out


def first_address(addresses):
    """The address to reach a guest at: the first IPv4 one, else the first global IPv6 one."""
    bare = [a.split("/", 1)[0] for a in addresses]
    for address in bare:
        if ":" not in address and not address.startswith("127."):
            return address
    for address in bare:
        if ":" in address and not address.lower().startswith("fe80") and address != "::1":
            return address
    return None
