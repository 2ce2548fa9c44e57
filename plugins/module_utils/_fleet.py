# -*- coding: utf-8 -*-
# Copyright: debvirt.cluster developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A host's declared set of guests, converged in one call.

Every guest is read, checked and planned before any of them is touched; a guest that was
declared in the same fleet before and is no longer is reported, and removed (its disks kept)
only when purge is asked for.
"""

from __future__ import annotations

from ansible.module_utils.common.arg_spec import ArgumentSpecValidator

from ansible_collections.debvirt.cluster.plugins.module_utils._domain import GuestSpec
from ansible_collections.debvirt.cluster.plugins.module_utils._errors import DebvirtError, InvalidSpec
from ansible_collections.debvirt.cluster.plugins.module_utils._guest import (
    ARGUMENT_SPEC,
    GuestRequest,
    finish,
    prepare,
    read_guest,
    request_from_params,
)

_VALIDATOR = ArgumentSpecValidator(ARGUMENT_SPEC)


def requests_from_params(items, fleet, node=None):
    """(requests, secrets): each item validated as the guest module validates its options.

    An item with a node key belongs to that node only: items for other nodes are left out,
    so one cluster-wide list can be handed to every node.
    """
    requests, secrets = [], set()
    for index, item in enumerate(items):
        item = dict(item)
        owner = item.pop("node", None)
        if owner is not None and node is not None and owner != node:
            continue
        result = _VALIDATOR.validate(item)
        secrets |= result._no_log_values
        if result.error_messages:
            raise InvalidSpec("guests[%d] (%s): %s" % (index, item.get("name", "?"), "; ".join(result.error_messages)))
        req = request_from_params(result.validated_parameters)
        req.spec.fleet = fleet
        requests.append(req)
    names = [r.name for r in requests]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise InvalidSpec("guests declare %s more than once" % ", ".join(dupes))
    return requests, secrets


def undeclared(client, fleet, declared):
    """Guests of this fleet on the host that the list no longer declares."""
    found = []
    for dom in client.domains():
        if dom.name() not in declared:
            actual = read_guest(client, dom.name())
            if actual is not None and actual.spec.fleet == fleet:
                found.append(dom.name())
    return sorted(found)


def converge_fleet(client, requests, fleet, purge, check_mode):
    jobs = [prepare(client, req) for req in requests]
    gone = undeclared(client, fleet, {r.name for r in requests})
    if purge:
        jobs += [prepare(client, GuestRequest(name, GuestSpec(), state="absent")) for name in gone]
    results, warnings = {}, []
    for job in jobs:
        try:
            result = finish(client, job, check_mode)
        except DebvirtError as e:
            raise DebvirtError("guest %s: %s" % (job.req.name, e.msg), guests=results) from None
        warnings += ["guest %s: %s" % (job.req.name, w) for w in result.pop("warnings")]
        results[job.req.name] = result
    changed = {name: r for name, r in results.items() if r["changed"]}
    return {
        "changed": bool(changed),
        "guests": {name: {"changed": r["changed"], "changes": r["changes"],
                          "reboot_required": r["reboot_required"], "state": r["guest"].get("state", "absent")}
                   for name, r in results.items()},
        "undeclared": [] if purge else gone,
        "purged": gone if purge else [],
        "diff": {"before": {n: r["diff"]["before"] for n, r in changed.items()},
                 "after": {n: r["diff"]["after"] for n, r in changed.items()}},
        "warnings": warnings,
    }
