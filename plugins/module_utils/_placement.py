# -*- coding: utf-8 -*-
# Copyright: debvirt.cluster developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Which cluster member a guest or container lives on, for the guest and container modules.

A task that names a node manages the guest on that member's libvirt, moving it there first
(with the migration module's own preflight, plan and apply) when another member has it. A task
without a node manages it on this host, and refuses to create it when another member has a
guest of that name: names are unique in the cluster. Off a cluster nothing of this applies.

place() only reads and raises before anything is touched; move() is the only writer here; the
kind's own converge then runs against the chosen member.

A kind is _kind's descriptor, taken as data: its noun, local_only (it can only be created or
converged on this host), converge(client, req, check_mode) -> the module result, and
predict_moved(target, source, req) -> the check-mode result of converging on target what source
defines now, or None when that cannot be told before the move.
"""

from __future__ import annotations

import json

from ansible_collections.debvirt.cluster.plugins.module_utils._client import is_local
from ansible_collections.debvirt.cluster.plugins.module_utils._cluster import Shell
from ansible_collections.debvirt.cluster.plugins.module_utils._errors import DebvirtError, InvalidSpec
from ansible_collections.debvirt.cluster.plugins.module_utils._lock import held
from ansible_collections.debvirt.cluster.plugins.module_utils._migration import (
    MigrationRequest,
    apply_container,
    apply_migration,
    find_source,
    plan_migration,
    read_facts,
    resolve_mode,
)
from ansible_collections.debvirt.cluster.plugins.module_utils._plan import diff, execute
from ansible_collections.debvirt.cluster.plugins.module_utils._transport import locate, locate_all, members_of
from ansible_collections.debvirt.cluster.plugins.module_utils._usage import Scope


class PlacementError(DebvirtError):
    """The cluster's view forbids the request (a name taken elsewhere, a node that is no member)."""


class Placement:
    def __init__(self, client):
        self.client = client    # the libvirt to converge on
        self.node = None        # its member name, when the task named one
        self.local = None       # this host's member name
        self.source = None      # where the guest is now, when it moves
        self.move = None        # (MigrationRequest, Facts, Plan) of that move
        self.remove_on = None   # members that define it, for state absent with a node
        self.clients = {}       # member -> client, this host's own included
        self.warnings = []
        self._opened = []

    def open(self, client_for, uri):
        client = client_for(uri)
        self._opened.append(client)
        return client

    def close(self):
        for client in self._opened:
            client.close()


def _close(clients):
    for client in clients.values():
        client.close()


def _unasked(kind, name, unknown):
    if not unknown:
        return []
    return ["Members %s could not be asked whether they have a %s named %s: its name is unique "
            "only among those that answered" % (", ".join(unknown), kind, name)]


def place(shell, client, client_for, kind, name, node, absent, members):
    """Where the task acts. members() reads the cluster (None off a cluster): called only when needed,
    so that an existing guest without a node costs no more than it did before clusters."""
    p = Placement(client)
    if node is None:
        if absent or not is_local(client.uri) or client.domain(name) is not None:
            return p
        cluster = members()
        if cluster is None:
            return p
        found, unknown, opened = locate(cluster.others(), client_for, name)
        _close(opened)
        if found:
            where = sorted(found)
            raise PlacementError(
                "A %s named %s already exists on %s: a name is unique in the cluster. Nothing was "
                "changed; give node: %s to manage that one, or node: <member> to move it there"
                % (kind.noun, name, ", ".join(where), where[0]))
        p.warnings = _unasked(kind.noun, name, unknown)
        return p

    if not is_local(client.uri):
        raise InvalidSpec("node places the %s through this host's cluster membership: give a local uri, "
                          "not %s" % (kind.noun, client.uri))
    cluster = members()
    if cluster is None:
        raise PlacementError("node %s needs this host to be a cluster member, and no nodelist in "
                             "/etc/corosync/corosync.conf names it: leave node out to manage the %s "
                             "on this host" % (node, kind.noun))
    if node not in cluster.nodes:
        raise InvalidSpec("node %s is not a member of the cluster (members: %s)"
                          % (node, ", ".join(sorted(cluster.nodes))))
    p.node = node
    p.local = next(n for n, m in cluster.nodes.items() if m.host is None)
    target = cluster.nodes[node]
    if kind.local_only and not absent and target.host is not None:
        raise InvalidSpec("node %s is not this host (%s): a %s's root filesystem is read and written on "
                          "its own host, so run the task there (for example with delegate_to: %s)"
                          % (node, p.local, kind.noun, node))

    def client_of(uri):
        # This host's own connection, and one connection a member, however often it is asked.
        for n, c in p.clients.items():
            if cluster.nodes[n].uri == uri:
                return c
        return client if uri == client.uri else p.open(client_for, uri)

    if absent:
        found, unknown, p.clients = locate(cluster, client_of, name)
        p.remove_on = sorted(found)
        p.warnings = _unasked(kind.noun, name, unknown)
        return p
    if target.online is False:
        raise PlacementError("node %s is offline in the cluster: the %s cannot be placed there"
                             % (node, kind.noun))
    p.client = client_of(target.uri)
    p.clients[node] = p.client
    if p.client.domain(name) is not None:
        return p
    found, unknown, p.clients = locate(cluster, client_of, name)
    if not found:
        p.warnings = _unasked(kind.noun, name, unknown)
        return p
    p.source = find_source(found, node, name, unknown)
    req = MigrationRequest(name, node)
    facts = read_facts(req, cluster, p.clients, found, unknown, p.source, shell)
    plan, _checks = plan_migration(req, facts)
    p.move = (req, facts, plan)
    return p


def move(p, shell):
    """Carry out the planned move; returns libvirt's (or, for a container, this host's) measures."""
    req, facts, plan = p.move
    if facts.container:
        return apply_container(req, plan, facts, p.clients, shell)
    return apply_migration(req, plan, facts, p.clients)


def migrated(p, stats):
    req, facts, plan = p.move
    out = {"from": p.source, "to": p.node, "mode": resolve_mode(req, facts.state, facts.container),
           "changes": plan.as_list()}
    for key in ("time_elapsed_ms", "downtime_ms"):
        if stats.get(key) is not None:
            out[key] = stats[key]
    return out


def _with_node(result, before_node, after_node):
    views = result.get("diff") or diff({}, {})
    before, after = dict(views["before"]), dict(views["after"])
    if before_node and before:
        before["node"] = before_node
    if after_node and after:
        after["node"] = after_node
    result["diff"] = diff(before, after)
    return result


def _remove(kind, p, req, check_mode):
    remote = [n for n in p.remove_on if n != p.local]
    if kind.local_only and remote and req.remove_storage:
        raise InvalidSpec("%s %s is defined on %s: its root filesystem is deleted only on its own host, so "
                          "run a task with remove_storage there (delegate_to: %s); nothing was changed"
                          % (kind.noun, req.name, ", ".join(remote), remote[0]))
    result = {"changed": False, "changes": [], "reboot_required": False, kind.noun: {},
              "diff": diff({}, {}), "warnings": list(p.warnings), "removed_from": []}
    before = {}
    for n in p.remove_on:
        one = kind.converge(p.clients[n], req, check_mode)
        result["warnings"] += ["%s: %s" % (n, w) for w in one.pop("warnings", [])]
        if one["changed"]:
            result["changed"] = True
            result["removed_from"].append(n)
            result["changes"] += [dict(c, node=n) for c in one["changes"]]
            before = dict(one["diff"]["before"], node=", ".join(result["removed_from"]))
    result["diff"] = diff(before, {})
    return result


def converge_placed(kind, client, req, node, check_mode, shell, client_for):
    """The kind's converge, on the member placement chooses. Returns the module result."""
    p = place(shell, client, client_for, kind, req.name, node, req.state == "absent",
              lambda: members_of(shell, client.uri))
    return finish_placed(kind, p, req, check_mode, shell)


def finish_placed(kind, p, req, check_mode, shell):
    """Carry out what place() decided: remove, move then converge, or converge. Returns the
    module result."""
    try:
        if p.remove_on is not None:
            return _remove(kind, p, req, check_mode)
        if p.move is None:
            result = kind.converge(p.client, req, check_mode)
            result = _with_node(result, p.node, p.node)
        else:
            # Planned against the definition that moves, checked against the target: a request
            # the target cannot satisfy fails here, before the guest has moved.
            predicted = kind.predict_moved(p.client, p.clients[p.source], req)
            stats = {}
            execute(p.move[2], check_mode, lambda: stats.update(move(p, shell)))
            if check_mode:
                result = predicted or {"changed": True, "changes": [], "reboot_required": False,
                                       kind.noun: {"name": req.name},
                                       "diff": diff({"name": req.name}, {"name": req.name}), "warnings": []}
            else:
                result = kind.converge(p.client, req, False)
            result["migrated"] = migrated(p, stats)
            result["changes"] = result["migrated"]["changes"] + result["changes"]
            result["changed"] = True
            result = _with_node(result, p.source, p.node)
        if p.node is not None:
            result["node"] = p.node
        result["warnings"] = p.warnings + result.get("warnings", [])
        return result
    finally:
        p.close()


# What playbooks/tasks/evacuate.yml leaves on a node it drained, and restore.yml removes.
DRAINED_RECORD = "/etc/ansible/facts.d/debvirt_evacuated.fact"


class FleetCluster:
    """The cluster as a fleet on this host sees it: read only when an item is missing here, and
    then once, one listing a member, however many items are missing."""

    def __init__(self, shell, client_for, drained_record=DRAINED_RECORD):
        self.shell = shell
        self.client_for = client_for
        self.drained_record = drained_record
        self._members = {}
        self._drained = None

    def members(self, uri):
        if uri not in self._members:
            self._members[uri] = members_of(self.shell, uri)
        return self._members[uri]

    def elsewhere(self, client, names):
        """({name: {member: state}} of those names the other members define, [members not asked]),
        or None when this host is in no cluster."""
        cluster = self.members(client.uri)
        if cluster is None:
            return None
        found, unknown, opened = locate_all(cluster.others(), self.client_for, names)
        _close(opened)
        return found, unknown

    def drained(self):
        """This host was emptied by evacuate.yml and not restored yet (read once a run)."""
        if self._drained is None:
            try:
                with open(self.drained_record) as f:
                    self._drained = bool(json.load(f).get("drained"))
            except FileNotFoundError:
                self._drained = False
            except (OSError, ValueError) as e:
                raise PlacementError("Cannot read %s, the record of whether this node is drained: %s"
                                     % (self.drained_record, e)) from None
        return self._drained

    def place_here(self, kind, client, req):
        """place() for a guest declared for this host and defined on another member: its move here."""
        cluster = self.members(client.uri)
        here = next(n for n, m in cluster.nodes.items() if m.host is None)
        return place(self.shell, client, self.client_for, kind, req.name, here, False, lambda: cluster)


def converge_module(kind, module):
    """What the guest and container modules run: the request made from the module's params,
    converged on the member placement chooses, one run at a time for the guest on this host."""
    req = kind.request_from_params(module.params)
    req.usage = Scope.of(module)
    with held(kind.noun, req.name):
        return converge_placed(kind, module.client, req, module.params["node"], module.check_mode,
                               Shell(module.run_command), module.client_for)
