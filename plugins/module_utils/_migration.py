# -*- coding: utf-8 -*-
# Copyright: debvirt.cluster developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Moving a guest between cluster members.

read_facts() (in _migration_facts) only reads, from the source's and the target's libvirt
(_transport finds the members and the guest); preflight() and plan_migration() are pure;
apply_migration() (and, for a container, _container_move's apply_container()) is the only
writer. Every check runs before
anything is touched, so a refused move leaves the guest where it was, as it was.
"""

from __future__ import annotations

import threading
import time

from ansible_collections.debvirt.cluster.plugins.module_utils._container_move import (
    apply_container,
    plan_container,
    set_autostart,
)
from ansible_collections.debvirt.cluster.plugins.module_utils._errors import DebvirtError, InvalidSpec
from ansible_collections.debvirt.cluster.plugins.module_utils._migration_facts import read_facts
from ansible_collections.debvirt.cluster.plugins.module_utils._plan import Plan, diff, execute
from ansible_collections.debvirt.cluster.plugins.module_utils._transport import (
    Members,
    MigrationError,
    Node,
    copy_disk,
    find_source,
    locate,
    probe_tls,
    read_members,
    where_now,
)

# What _placement, the modules and the tests take from here, besides what is defined here.
__all__ = ["Members", "MigrationError", "MigrationRequest", "Node", "apply_container", "apply_migration",
           "converge_migration", "find_source", "locate", "plan_migration", "read_facts", "read_members",
           "request_from_params", "resolve_mode"]

MODES = ("auto", "live", "offline")
COPY_STORAGE = ("auto", "never", "all")
TRANSPORTS = ("ssh", "tls")
# Cache modes that keep no copy of the disk in the host's memory: what libvirt asks of a disk on
# shared storage before it moves the guest live.
UNCACHED = ("none", "directsync")


class MigrationRequest:
    def __init__(self, name, target, mode="auto", copy_storage="auto", timeout=600, max_downtime=None,
                 bandwidth=None, min_free_memory=0, keep_source_storage=False, members=None,
                 migrate_address=None, transport="ssh"):
        self.name = name
        self.target = target
        self.mode = mode
        self.copy_storage = copy_storage
        self.timeout = timeout
        self.max_downtime = max_downtime
        self.bandwidth = bandwidth
        self.min_free_memory = min_free_memory
        self.keep_source_storage = keep_source_storage
        self.members = members
        self.migrate_address = migrate_address
        self.transport = transport


def request_from_params(p):
    for field in ("timeout",):
        if p[field] < 1:
            raise InvalidSpec("%s must be at least 1, got %s" % (field, p[field]))
    for field in ("max_downtime", "bandwidth", "min_free_memory"):
        if p.get(field) is not None and p[field] < 0:
            raise InvalidSpec("%s must not be negative, got %s" % (field, p[field]))
    transport = p.get("transport") or "ssh"
    if transport not in TRANSPORTS:
        raise InvalidSpec("transport must be one of %s, got %s" % (", ".join(TRANSPORTS), transport))
    members = p.get("members")
    if members is not None:
        if not members:
            raise InvalidSpec("members must name at least the source and the target")
        if p["target"] not in members:
            raise InvalidSpec("target %s is not one of the members given (%s)"
                              % (p["target"], ", ".join(sorted(members))))
    return MigrationRequest(p["name"], p["target"], p["mode"], p["copy_storage"], p["timeout"],
                            p.get("max_downtime"), p.get("bandwidth"), p.get("min_free_memory") or 0,
                            p.get("keep_source_storage", False), members, p.get("migrate_address"), transport)


# --- planning -----------------------------------------------------------------------------------
def resolve_mode(req, state, container=False):
    if req.mode == "auto":
        if state in ("running", "paused"):
            # libvirt's LXC driver has no migration: a container moves by a clean restart.
            return "restart" if container else "live"
        return "offline"
    return req.mode


def preflight(req, f):
    """[(check, "passed"|"failed"|"skipped", detail)] for moving to req.target."""
    checks = []

    def check(name, ok, detail):
        checks.append({"check": name, "result": {True: "passed", False: "failed", None: "skipped"}[ok],
                       "detail": detail})

    members = f.members
    mode = resolve_mode(req, f.state, f.container)
    node = members.nodes.get(req.target)
    if node is None:
        check("target is a member", False, "%s is not a member (members: %s)"
              % (req.target, ", ".join(sorted(members.nodes))))
        return checks
    if members.source == "given":
        check("target is a quorate member", None, "members given explicitly: quorum not checked")
    else:
        ok = bool(members.quorate and node.online)
        check("target is a quorate member", ok,
              "%s is online in a quorate cluster" % req.target if ok else
              "%s is %s; the cluster is %s" % (req.target, "online" if node.online else "offline",
                                               "quorate" if members.quorate else "not quorate"))
    if req.target in f.unknown:
        check("target answers", False, "the target's libvirt could not be reached at %s" % node.uri)
        return checks
    if f.container and req.mode == "live":
        check("mode", False, "%s is a container: libvirt cannot move containers live (mode auto stops it, "
              "copies its root directory and starts it on %s)" % (req.name, req.target))
    elif req.mode == "live" and f.state not in ("running", "paused"):
        check("mode", False, "guest %s is %s on %s: mode live needs it running (offline or auto moves "
              "its definition)" % (req.name, f.state, f.source))
    elif req.mode == "offline" and f.state in ("running", "paused"):
        check("mode", False, "guest %s runs on %s: mode offline needs it stopped (live or auto moves "
              "it running)" % (req.name, f.source))
    else:
        check("mode", True, "%s migration of a %s %s" % (mode, f.state, "container" if f.container else "guest"))
    if mode == "live" and not (req.migrate_address or node.address):
        check("migration address", False, "no address for %s: give migrate_address" % req.target)
    missing = [n for n, active in f.target_networks.items() if active is None]
    inactive = [n for n, active in f.target_networks.items() if active is False]
    if missing or (mode == "live" and inactive):
        parts = []
        if missing:
            parts.append("lacks network(s) %s" % ", ".join(missing))
        if mode == "live" and inactive:
            parts.append("has network(s) %s but not running" % ", ".join(inactive))
        check("networks", False, "%s %s, which guest %s uses" % (req.target, " and ".join(parts), req.name))
    else:
        check("networks", True, "present: %s" % (", ".join(f.networks) or "none used"))
    if f.container:
        _check_rootfs(req, f, check)
    else:
        _check_storage(req, f, mode, check)
    need = f.memory_kib * 1024 + req.min_free_memory * 1024 ** 2
    if f.target_free is None:
        check("memory", False, "free memory of %s unknown" % req.target)
    elif mode == "offline":
        check("memory", None, "a stopped guest needs no memory to move (%d MiB to start it; %d MiB free)"
              % (f.memory_kib // 1024, f.target_free // 1024 ** 2))
    else:
        check("memory", f.target_free >= need,
              "guest needs %d MiB%s, %s has %d MiB free"
              % (f.memory_kib // 1024,
                 " plus %d MiB kept free" % req.min_free_memory if req.min_free_memory else "",
                 req.target, f.target_free // 1024 ** 2))
    if f.cpu is not None and not f.container:
        ok, detail = f.cpu
        check("cpu", ok, detail)
    return checks


def _check_rootfs(req, f, check):
    if f.rootfs_problem:
        check("storage", False, f.rootfs_problem)
    elif f.rootfs_on_target:
        check("storage", False, "%s already has a non-empty %s: it would be overwritten" % (req.target, f.rootfs))
    else:
        check("storage", True, "root directory %s copied to %s" % (f.rootfs, req.target))


def _check_storage(req, f, mode, check):
    local = [d for d in f.disks if not d.shared]
    if not local:
        shared = ", ".join("%s (%s%s)" % (d.target, d.pool_type, ", the same file on both nodes" if d.same_file else "")
                           for d in f.disks)
        check("storage", True, "shared: %s" % (shared or "no disks"))
        return
    if req.copy_storage == "never":
        check("storage", False, "local disk(s) %s would not follow the guest: copy_storage never; "
              "copy_storage auto or all copies them" % ", ".join(d.target for d in local))
        return
    problems = []
    for d in local:
        if d.pool is None:
            problems.append("%s (%s) is in no storage pool of the source, so no pool can receive it"
                            % (d.target, d.path))
            continue
        pool = f.target_pools.get(d.pool)
        if pool is None:
            problems.append("%s: %s lacks storage pool %s" % (d.target, req.target, d.pool))
        elif not pool["active"]:
            problems.append("%s: storage pool %s on %s is not running" % (d.target, d.pool, req.target))
        elif pool["path"] != f.source_pool_paths.get(d.pool):
            problems.append("%s: pool %s is at %s on %s but at %s here: the disk's path would change"
                            % (d.target, d.pool, pool["path"], req.target, f.source_pool_paths.get(d.pool)))
        elif d.on_target and d.on_target["exists"]:
            if d.on_target["used_by"]:
                problems.append("%s: volume %s in pool %s on %s belongs to guest %s"
                                % (d.target, d.volume, d.pool, req.target, d.on_target["used_by"]))
            elif req.copy_storage != "all":
                problems.append("%s: volume %s already exists in pool %s on %s; copy_storage all "
                                "overwrites it" % (d.target, d.volume, d.pool, req.target))
        if mode == "live" and d.readonly:
            problems.append("%s is a read-only local disk: libvirt copies only writable disks "
                            "during a live migration" % d.target)
    if problems:
        check("storage", False, "; ".join(problems))
    else:
        check("storage", True, "local disk(s) %s copied to %s"
              % (", ".join("%s (pool %s)" % (d.target, d.pool) for d in local), req.target))


def plan_migration(req, f):
    """(Plan, checks); raises MigrationError naming every failed check."""
    plan = Plan()
    if f.source == req.target:
        return plan, []
    checks = preflight(req, f)
    failed = [c for c in checks if c["result"] == "failed"]
    if failed:
        raise MigrationError("Cannot move guest %s from %s to %s: %s. Nothing was changed; the guest "
                             "stays %s on %s" % (req.name, f.source, req.target,
                                                 "; ".join("%s: %s" % (c["check"], c["detail"]) for c in failed),
                                                 f.state, f.source), checks=checks)
    mode = resolve_mode(req, f.state, f.container)
    if f.container:
        return plan_container(req, f, plan, mode), checks
    for d in f.disks:
        if d.shared:
            continue
        if not (d.on_target and d.on_target["exists"]):
            plan.add("create", "volume", key="%s in pool %s on %s" % (d.volume, d.pool, req.target), disk=d)
        if mode == "offline":
            plan.add("copy", "disk", key="%s to %s" % (d.target, req.target), disk=d)
    plan.add("migrate" if mode == "live" else "define", "guest", before=f.source, after=req.target,
             key=req.name, mode=mode)
    if mode == "offline":
        plan.add("undefine", "guest", key="%s on %s" % (req.name, f.source))
    if not req.keep_source_storage:
        for d in f.disks:
            if not d.shared:
                plan.add("delete", "volume", key="%s in pool %s on %s" % (d.volume, d.pool, f.source), disk=d)
    return plan, checks


# --- applying ---------------------------------------------------------------------------------------
def apply_migration(req, plan, f, clients):
    """Stats of the move: {"time_elapsed_ms", "downtime_ms", ...} as libvirt measured them.

    A failure before the guest is on the target undoes what the move made there; once the guest
    runs on the target (or, offline, is defined there only) nothing is undone: its volumes there
    are its disks now, and the error says so."""
    src, tgt = clients[f.source], clients[req.target]
    node = f.members.nodes[req.target]
    created, copy_disks, stats = [], [], {}
    started = time.monotonic()
    deadline = None
    moved = False
    try:
        for change in plan.changes:
            d = change.extra.get("disk")
            if change.action == "create":
                created.append(_create_volume(tgt, d))
                copy_disks.append(d.target)
            elif change.action == "copy":
                # The timeout bounds the copies together, as it bounds a live move as a whole.
                deadline = deadline or time.monotonic() + req.timeout
                copy_disk(req, src, tgt, d, deadline)
            elif change.action == "migrate":
                if req.copy_storage == "all":
                    copy_disks = [x.target for x in f.disks if not x.shared]
                new = _migrate_live(req, f, src, tgt, req.migrate_address or node.address, copy_disks)
                moved = True
                if f.autostart:
                    set_autostart(tgt, new, "guest %s on %s" % (req.name, req.target))
                stats = _job_stats(tgt, new)
            elif change.action == "define":
                dom = tgt.define(f.inactive_xml, req.name)
                if f.autostart:
                    set_autostart(tgt, dom, "guest %s on %s" % (req.name, req.target))
            elif change.action == "undefine":
                src.undefine(src.domain(req.name), nvram=False)
                moved = True
    except DebvirtError as e:
        if moved:
            raise MigrationError("%s. %s" % (e.msg, _kept(req, f, plan)), checks=[]) from None
        raise MigrationError("%s. %s" % (e.msg, _roll_back(req, src, tgt, created, plan, f.source)),
                             checks=[]) from None
    for change in plan.on("volume", "delete"):
        path = change.extra["disk"].path
        try:
            vol = src.volume_by_path(path)
            if vol is not None:
                src.delete_volume(vol)
        except DebvirtError as e:
            raise MigrationError("%s. Guest %s is on %s now and stays there; its old volume %s on %s is "
                                 "left: delete it once checked" % (e.msg, req.name, req.target, path, f.source),
                                 checks=[]) from None
    stats["duration_s"] = round(time.monotonic() - started, 3)
    return stats


def _kept(req, f, plan):
    old = [c.extra["disk"].path for c in plan.on("volume", "delete")]
    return ("Guest %s is on %s now and stays there: nothing was rolled back, its volumes on %s are its "
            "disks%s" % (req.name, req.target, req.target,
                         "; its old volumes on %s were kept (%s): delete them once checked"
                         % (f.source, ", ".join(old)) if old else ""))


def _create_volume(tgt, d):
    xml = ("<volume><name>%s</name><capacity unit='bytes'>%d</capacity>"
           "<target><format type='%s'/></target></volume>" % (d.volume, d.capacity, d.format or "raw"))
    return tgt.create_volume(tgt.pool(d.pool), xml, d.volume)


def _roll_back(req, src, tgt, created, plan, source):
    """Undo what the move made on the target, unless the guest runs there after all (a live
    move that failed at its very end): then its volumes there are its disks."""
    try:
        dom = tgt.domain(req.name)
        state = tgt.domain_state(dom) if dom is not None else None
    except DebvirtError as e:
        return ("Nothing was rolled back: whether guest %s runs on %s could not be read (%s). %s"
                % (req.name, req.target, e.msg, where_now(src, req.name, source)))
    if state in ("running", "paused"):
        return ("Guest %s runs on %s after all: nothing was rolled back, the volumes there are its disks"
                % (req.name, req.target))
    left = []
    for vol in created:
        try:
            tgt.delete_volume(vol)
        except DebvirtError:
            left.append(vol.name())
    if dom is not None and plan.on("guest", "define"):
        try:
            tgt.undefine(dom, nvram=False)
        except DebvirtError:
            left.append("the definition of %s" % req.name)
    undone = (" (not removed from %s: %s)" % (req.target, ", ".join(left))) if left else ""
    return "%s%s" % (where_now(src, req.name, source), undone)


def _migrate_live(req, f, src, tgt, address, copy_disks):
    """The guest's domain on the target, where it runs once this returns."""
    dom = src.domain(req.name)
    if req.max_downtime:
        src.set_max_downtime(dom, req.max_downtime)
    outcome = {}

    def run():
        try:
            outcome["dom"] = src.migrate_live(dom, tgt, "tcp://%s" % address, f.inactive_xml,
                                              req.bandwidth, copy_disks, tls=req.transport == "tls",
                                              unsafe=_proven_shared(f, copy_disks))
        except DebvirtError as e:
            outcome["error"] = e

    worker = threading.Thread(target=run, daemon=True)
    worker.start()
    deadline = time.monotonic() + req.timeout
    aborted = False
    while worker.is_alive():
        worker.join(0.2)
        if worker.is_alive() and not aborted and time.monotonic() >= deadline:
            aborted = True
            src.abort_job(dom)
    worker.join(60)
    if aborted and "dom" not in outcome:
        raise MigrationError("Migration of guest %s to %s did not finish within timeout %ss and was "
                             "aborted" % (req.name, req.target, req.timeout))
    if "error" in outcome:
        raise outcome["error"]
    if worker.is_alive():
        raise MigrationError("Migration of guest %s to %s did not end a minute after it was aborted"
                             % (req.name, req.target))
    return outcome["dom"]


def _proven_shared(f, copy_disks):
    """Whether libvirt's own test of shared storage, which knows shared file systems by name
    only, may be skipped: every disk it would look at is in a directory the probe found shared
    and keeps no host cache, which libvirt asks of any shared disk. Else libvirt judges."""
    looked_at = [d for d in f.disks if not d.readonly and d.pool_type != "network" and d.target not in copy_disks]
    return bool(looked_at) and all(d.same_file and d.cache in UNCACHED for d in looked_at)


def _job_stats(tgt, dom):
    job = tgt.job_stats(dom, completed=True)
    stats = {"time_elapsed_ms": job.get("time_elapsed"), "downtime_ms": job.get("downtime"),
             "data_total_bytes": job.get("data_total") or job.get("memory_total")}
    if job.get("disk_total"):
        stats["disk_total_bytes"] = job.get("disk_total")
    return stats


# --- the whole move ------------------------------------------------------------------------------
def converge_migration(shell, uri, client_for, req, check_mode):
    members = read_members(shell, uri, req)
    if req.target not in members.nodes:
        raise MigrationError("Target %s is not a member of the cluster (members: %s); nothing was changed"
                             % (req.target, ", ".join(sorted(members.nodes))))
    transport_check = probe_tls(client_for, uri, members.nodes[req.target]) if req.transport == "tls" else None
    found, unknown, clients = locate(members, client_for, req.name)
    try:
        source = find_source(found, req.target, req.name, unknown)
        result = {"name": req.name, "target": req.target, "source": source, "transport": req.transport,
                  "warnings": []}
        extra = sorted(n for n in found if n != source)
        if extra:
            result["warnings"].append("Guest %s is also defined (stopped) on %s" % (req.name, ", ".join(extra)))
        if source == req.target:
            result.update(changed=False, mode=None, checks=[], changes=[], stats={},
                          diff=diff({"node": source}, {"node": source}))
            return result
        facts = read_facts(req, members, clients, found, unknown, source, shell)
        first = [transport_check] if transport_check else []
        try:
            plan, checks = plan_migration(req, facts)
        except MigrationError as e:
            e.details["checks"] = first + e.details.get("checks", [])
            raise
        checks = first + checks
        result.update(changed=plan.changed, mode=resolve_mode(req, facts.state, facts.container), checks=checks,
                      changes=plan.as_list(), copied_disks=[d.target for d in facts.disks if not d.shared],
                      diff=diff({"node": source}, {"node": req.target}), stats={})

        def apply():
            if facts.container:
                result["stats"] = apply_container(req, plan, facts, clients, shell)
            else:
                result["stats"] = apply_migration(req, plan, facts, clients)

        execute(plan, check_mode, apply)
        return result
    finally:
        for client in clients.values():
            client.close()
