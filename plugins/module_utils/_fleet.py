# -*- coding: utf-8 -*-
# Copyright: debvirt.cluster developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A host's declared set of virtual machines and containers, converged in one call.

Every item is validated, read, checked and planned before any of them is touched; a guest that
was declared in the same fleet before and is no longer is reported, and removed (its disks or
root filesystem kept) only when purge is asked for.
"""

from __future__ import annotations

from contextlib import ExitStack

from ansible.module_utils.common.arg_spec import ArgumentSpecValidator
from ansible.module_utils.errors import UnsupportedError

from ansible_collections.debvirt.cluster.plugins.module_utils._container import CONTAINER
from ansible_collections.debvirt.cluster.plugins.module_utils._errors import DebvirtError, InvalidSpec
from ansible_collections.debvirt.cluster.plugins.module_utils._guest import GUEST
from ansible_collections.debvirt.cluster.plugins.module_utils._lock import held
from ansible_collections.debvirt.cluster.plugins.module_utils._names import check_name
from ansible_collections.debvirt.cluster.plugins.module_utils._placement import PlacementError, finish_placed

# An item's type -> its kind (_kind's descriptor), and the validator of its options.
KINDS = {k.type: k for k in (GUEST, CONTAINER)}
VALIDATORS = {k.type: ArgumentSpecValidator(k.argument_spec) for k in KINDS.values()}


class Item:
    """One declared guest: its kind, its request, and the node it is declared for (None: this host)."""

    def __init__(self, kind, req, owner=None):
        self.kind = kind
        self.req = req
        self.owner = owner

    @property
    def name(self):
        return self.req.name


def _message(error):
    # The validator names an unknown option without saying what is wrong with it; AnsibleModule
    # adds that, and so does the fleet for each item.
    if isinstance(error, UnsupportedError):
        return "unsupported option %s" % error
    return str(error)


def _validate(item):
    """(type, kind, validation result) of an item without its node key; kind and result are None
    for an unknown type."""
    type_ = item.pop("type", None) or GUEST.type
    kind = KINDS.get(type_)
    return type_, kind, VALIDATORS[type_].validate(item) if kind is not None else None


def secrets_of(items):
    """The values of the items' no_log options, as their modules' own specs find them.

    The fleet module hides them from the invocation log, written before it validates anything;
    an item that is not a dict has none to give (AnsibleModule refuses it).
    """
    secrets = set()
    for item in items or ():
        if isinstance(item, dict):
            item = dict(item)
            item.pop("node", None)
            result = _validate(item)[2]
            if result is not None:
                secrets |= result._no_log_values
    return secrets


def items_from_params(items, fleet, node=None, secrets=None, declared=None):
    """The items, each validated as the module of its type validates its options.

    An item with a node key belongs to that node only: items for other nodes are left out,
    so one cluster-wide list can be handed to every node. They are validated all the same, so
    that a bad item stops every node before any of them changes anything. Raises InvalidSpec
    naming the item.

    secrets, a set, receives the values of every item's no_log options before any item is
    refused: the report of a failure must hide them all, not only those of the items before it.
    declared, a set, receives every item's name, other nodes' included: a guest declared anywhere
    in the list is never purged, wherever it runs now.
    """
    secrets = set() if secrets is None else secrets
    declared = set() if declared is None else declared
    checked = []
    for index, item in enumerate(items):
        item = dict(item)
        owner = item.pop("node", None)
        type_, kind, result = _validate(item)
        if result is not None:
            secrets |= result._no_log_values
        checked.append(("guests[%d] (%s)" % (index, item.get("name", "?")), owner, type_, kind, result))
    check_name("fleet", fleet)
    out, names = [], []
    for where, owner, type_, kind, result in checked:
        if kind is None:
            raise InvalidSpec("%s: type must be one of %s, got %r" % (where, ", ".join(KINDS), type_))
        if result.error_messages:
            raise InvalidSpec("%s: %s" % (where, "; ".join(_message(e) for e in result.errors.errors)))
        try:
            req = kind.request_from_params(result.validated_parameters)
        except InvalidSpec as e:
            raise InvalidSpec("%s: %s" % (where, e.msg)) from None
        names.append(req.name)
        if owner is not None and node is not None and owner != node:
            continue
        req.spec.fleet = fleet
        out.append(Item(kind, req, owner))
    # One name, one guest in the cluster: the inventory and the reports know guests by name alone.
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise InvalidSpec("guests declare %s more than once" % ", ".join(dupes))
    declared.update(names)
    return out


def undeclared(client, kind, fleet, declared):
    """Names of this kind's guests of this fleet on the host that the list no longer declares."""
    found = []
    for dom in client.domains():
        if dom.name() in declared:
            continue
        try:
            actual = kind.read(client, dom.name())
        except InvalidSpec:
            continue  # not of this kind: a URI may have both (the test driver does)
        if actual is not None and actual.spec.fleet == fleet:
            found.append(dom.name())
    return sorted(found)


def _scan(clients, items, fleet, purge, declared):
    """(kind, name) of every undeclared member, and the warnings of kinds that could not be read.

    A kind the list declares must be readable. One it does not declare is looked at too, since
    members of it may have been dropped; where its driver cannot be reached, that is a warning
    (an error with purge, which could not do what it was asked).
    """
    found, warnings = [], []
    for kind in KINDS.values():
        try:
            names = undeclared(clients[kind.type], kind, fleet, declared)
        except DebvirtError as e:
            if purge or any(i.kind is kind for i in items):
                raise
            warnings.append("%ss of fleet %s were not looked for: %s" % (kind.noun, fleet, e.msg))
            continue
        found += [(kind, name) for name in names]
    return found, warnings


def _prepare(clients, kind, req):
    try:
        return kind.prepare(clients[kind.type], req)
    except DebvirtError as e:
        raise type(e)("%s %s: %s" % (kind.noun, req.name, e.msg), **e.details) from None


def _placed(clients, cluster, items, jobs):
    """Where a cluster holds the items that are missing here: {index: Placement} of those to move
    here, {name: member} of those left where they are, and warnings. Raises before anything is
    touched when an item that names no node exists on another member."""
    moves, left, warnings = {}, {}, []
    for kind in KINDS.values():
        missing = {job.req.name: n for n, (k, job) in enumerate(jobs) if k is kind and job.actual is None}
        where = cluster.elsewhere(clients[kind.type], set(missing)) if missing else None
        if where is None:
            continue
        found, unknown = where
        if unknown:
            asked = (", ".join(unknown), kind.noun, ", ".join(sorted(missing)))
            warnings.append("Members %s could not be asked for the %ss this list creates here (%s): a name is "
                            "unique only among those that answered" % asked)
        for name in sorted(found):
            index = missing[name]
            job = jobs[index][1]
            members = sorted(found[name])
            if items[index].owner is None:
                raise PlacementError(
                    "%s %s: it exists on %s and the list names no node for it: a name is unique in the "
                    "cluster, so it is not created here. Nothing was changed; give it node: %s to keep "
                    "it there, or the node it belongs on" % (kind.noun, name, ", ".join(members), members[0]))
            if cluster.drained():
                left[name] = members[0]
                warnings.append("%s %s is declared for this node and is on %s while this node is drained: "
                                "left there (restore.yml brings it back)" % (kind.noun, name, ", ".join(members)))
                continue
            moves[index] = cluster.place_here(kind, clients[kind.type], job.req)
    return moves, left, warnings


def converge_fleet(clients, items, fleet, purge, check_mode, declared=None, cluster=None, shell=None):
    """The module result; clients maps each kind's name to the LibvirtClient of its URI.

    declared names every guest of the cluster-wide list (items alone when None). cluster, a
    _placement.FleetCluster, makes the fleet one of the cluster: an item missing here that another
    member has is moved here (through shell), or left there while this node is drained; it is
    never created a second time. Each item's lock is held throughout, as the guest and container
    modules hold it: taken in one order, so that two fleets never wait on each other."""
    with ExitStack() as locks:
        for noun, name in sorted({(i.kind.noun, i.name) for i in items}):
            locks.enter_context(held(noun, name))
        return _converge(clients, items, fleet, purge, check_mode, declared, cluster, shell)


def _converge(clients, items, fleet, purge, check_mode, declared, cluster, shell):
    declared = {i.name for i in items} if declared is None else declared
    jobs = [(i.kind, _prepare(clients, i.kind, i.req)) for i in items]
    moves, left, warnings = _placed(clients, cluster, items, jobs) if cluster is not None else ({}, {}, [])
    gone, scan_warnings = _scan(clients, items, fleet, purge, declared)
    warnings += scan_warnings
    if purge:
        jobs += [(kind, _prepare(clients, kind, kind.absent(name))) for kind, name in gone]
    results = {}
    for index, (kind, job) in enumerate(jobs):
        name = job.req.name
        if name in left:
            continue
        try:
            if index in moves:
                result = finish_placed(kind, moves[index], job.req, check_mode, shell)
            else:
                result = kind.finish(clients[kind.type], job, check_mode)
        except DebvirtError as e:
            raise DebvirtError("%s %s: %s" % (kind.noun, name, e.msg), guests=results) from None
        warnings += ["%s %s: %s" % (kind.noun, name, w) for w in result.pop("warnings")]
        results[name] = dict(result, type=kind.type, state=result[kind.noun].get("state", "absent"))
    changed = {name: r for name, r in results.items() if r["changed"]}
    gone_names = sorted(name for _kind, name in gone)
    return {
        "changed": bool(changed),
        "guests": {name: dict({k: r[k] for k in ("type", "changed", "changes", "reboot_required", "state")},
                              **({"migrated": r["migrated"]} if "migrated" in r else {}))
                   for name, r in results.items()},
        "undeclared": [] if purge else gone_names,
        "purged": gone_names if purge else [],
        "elsewhere": left,
        "diff": {"before": {n: r["diff"]["before"] for n, r in changed.items()},
                 "after": {n: r["diff"]["after"] for n, r in changed.items()}},
        "warnings": warnings,
    }
