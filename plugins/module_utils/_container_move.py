# -*- coding: utf-8 -*-
# Copyright: debvirt.cluster developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Moving a container between members: libvirt's LXC driver cannot migrate, so a running
container stops, its root directory is copied, its definition moves (the source's removed, then
the target's made, so that at most one node ever holds it) and it starts on the target.
A failure rolls back only what the move made, and starts the container again where it was."""

from __future__ import annotations

import time

from ansible_collections.debvirt.cluster.plugins.module_utils._errors import DebvirtError
from ansible_collections.debvirt.cluster.plugins.module_utils._transport import MigrationError, copy_tree, where_now

# A step's key says which one and where: "web on node1", "/srv/ct/web to node2".
ROOT = "root directory"


def set_autostart(client, dom, what):
    """Autostart on, read back: libvirt's QEMU driver reports success when it could not make
    the autostart link (a log line is all), and a guest that should come back after a reboot
    would silently not."""
    client.set_autostart(dom, True)
    if not client.autostart(dom):
        raise MigrationError("Failed to set autostart of %s: libvirt did not keep it (its log on that node "
                             "says why)" % what)


def plan_container(req, f, plan, mode):
    if mode == "restart":
        plan.add("stop", "container", key="%s on %s" % (req.name, f.source))
    plan.add("copy", ROOT, key="%s to %s" % (f.rootfs, req.target))
    plan.add("undefine", "container", key="%s on %s" % (req.name, f.source))
    plan.add("define", "container", before=f.source, after=req.target, key=req.name, mode=mode)
    if mode == "restart":
        plan.add("start", "container", key="%s on %s" % (req.name, req.target))
    if not req.keep_source_storage:
        plan.add("delete", ROOT, key="%s on %s" % (f.rootfs, f.source))
    return plan


def apply_container(req, plan, f, clients, shell):
    """Stop, copy the root directory, move the definition and start on the target: downtime as
    measured here."""
    src, tgt = clients[f.source], clients[req.target]
    src_host = f.members.nodes[f.source].host
    tgt_host = f.members.nodes[req.target].host
    started = time.monotonic()
    down = None
    stats = {}
    dom = src.domain(req.name)
    done = set()
    try:
        for change in plan.changes:
            if change.action == "stop":
                down = time.monotonic()
                src.stop_container(dom, req.timeout)
            elif change.action == "copy":
                done.add("copy")
                copy_tree(shell, src_host, tgt_host, f.rootfs, req.timeout)
            elif change.action == "undefine":
                src.undefine_container(dom)
                done.add("undefine")
            elif change.action == "define":
                done.add("define")
                new = tgt.define_container(f.inactive_xml, req.name)
                if f.autostart:
                    set_autostart(tgt, new, "container %s on %s" % (req.name, req.target))
            elif change.action == "start":
                tgt.start(new)
                stats["downtime_ms"] = int((time.monotonic() - down) * 1000)
    except DebvirtError as e:
        where = _roll_back_container(req, f, src, tgt, shell, tgt_host, done, down is not None)
        raise MigrationError("%s. %s" % (e.msg, where), checks=[]) from None
    if plan.on(ROOT, "delete"):
        shell.check(src_host, ["rm", "-rf", "--one-file-system", "--", f.rootfs],
                    "delete the old root directory %s" % f.rootfs)
    stats["time_elapsed_ms"] = int((time.monotonic() - started) * 1000)
    stats["duration_s"] = round(time.monotonic() - started, 3)
    return stats


def _roll_back_container(req, f, src, tgt, shell, tgt_host, done, stopped):
    """Undo the steps done, last first; the source gets its definition back only once the
    target's is proven gone, so that one node holds it whatever failed. Says where it is now."""
    if "define" in done:
        try:
            dom = tgt.domain(req.name)
            if dom is not None:
                if tgt.domain_state(dom) != "stopped":
                    tgt.destroy(dom)
                tgt.undefine_container(dom)
        except DebvirtError as e:
            return ("Whether %s holds a definition of container %s could not be read or it could not be "
                    "removed (%s): so that two nodes never hold it, it was not defined on %s again; its root "
                    "directory is kept there at %s" % (req.target, req.name, e.msg, f.source, f.rootfs))
    if "copy" in done:
        shell.run(tgt_host, ["rm", "-rf", "--one-file-system", "--", f.rootfs])
    note = ""
    if "undefine" in done:
        try:
            back = src.define_container(f.inactive_xml, req.name)
        except DebvirtError as e:
            return ("Container %s is defined on no node now: defining it on %s again failed (%s); its root "
                    "directory is kept at %s there" % (req.name, f.source, e.msg, f.rootfs))
        if f.autostart:
            try:
                set_autostart(src, back, "container %s on %s" % (req.name, f.source))
            except DebvirtError as e:
                note = " (its autostart is off: %s)" % e.msg
    if stopped:
        dom = src.domain(req.name)
        if dom is not None and src.domain_state(dom) == "stopped":
            try:
                src.start(dom)
            except DebvirtError:
                pass
    return where_now(src, req.name, f.source) + note
