# -*- coding: utf-8 -*-
# Copyright: debvirt.cluster developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Moving a container between members: libvirt's LXC driver cannot migrate, so a running
container stops, its root directory is copied, and it is defined (and started) on the target.
A failure rolls back only what the move made, and starts the container again where it was."""

from __future__ import annotations

import time

from ansible_collections.debvirt.cluster.plugins.module_utils._errors import DebvirtError
from ansible_collections.debvirt.cluster.plugins.module_utils._transport import MigrationError, copy_tree, where_now

# A step's key says which one and where: "web on node1", "/srv/ct/web to node2".
ROOT = "root directory"


def plan_container(req, f, plan, mode):
    if mode == "restart":
        plan.add("stop", "container", key="%s on %s" % (req.name, f.source))
    plan.add("copy", ROOT, key="%s to %s" % (f.rootfs, req.target))
    plan.add("define", "container", before=f.source, after=req.target, key=req.name, mode=mode)
    if mode == "restart":
        plan.add("start", "container", key="%s on %s" % (req.name, req.target))
    plan.add("undefine", "container", key="%s on %s" % (req.name, f.source))
    if not req.keep_source_storage:
        plan.add("delete", ROOT, key="%s on %s" % (f.rootfs, f.source))
    return plan


def apply_container(req, plan, f, clients, shell):
    """Stop, copy the root directory, define and start on the target: downtime as measured here."""
    src, tgt = clients[f.source], clients[req.target]
    src_host = f.members.nodes[f.source].host
    tgt_host = f.members.nodes[req.target].host
    started = time.monotonic()
    down = None
    stats = {}
    dom = src.domain(req.name)
    copied = defined = False
    try:
        for change in plan.changes:
            if change.action == "stop":
                down = time.monotonic()
                src.stop_container(dom, req.timeout)
            elif change.action == "copy":
                copied = True
                copy_tree(shell, src_host, tgt_host, f.rootfs, req.timeout)
            elif change.action == "define":
                new = tgt.define_container(f.inactive_xml, req.name)
                defined = True
                if f.autostart:
                    tgt.set_autostart(new, True)
            elif change.action == "start":
                tgt.start(new)
                stats["downtime_ms"] = int((time.monotonic() - down) * 1000)
            elif change.action == "undefine":
                src.undefine_container(dom)
    except DebvirtError as e:
        _roll_back_container(req, f, src, tgt, shell, tgt_host, copied, defined, down is not None)
        raise MigrationError("%s. %s" % (e.msg, where_now(src, req.name, f.source)), checks=[])
    if plan.on(ROOT, "delete"):
        shell.check(src_host, ["rm", "-rf", "--one-file-system", "--", f.rootfs],
                    "delete the old root directory %s" % f.rootfs)
    stats["time_elapsed_ms"] = int((time.monotonic() - started) * 1000)
    stats["duration_s"] = round(time.monotonic() - started, 3)
    return stats


def _roll_back_container(req, f, src, tgt, shell, tgt_host, copied, defined, stopped):
    if defined:
        dom = tgt.domain(req.name)
        if dom is not None:
            for step in (lambda: tgt.destroy(dom), lambda: tgt.undefine_container(dom)):
                try:
                    step()
                except DebvirtError:
                    pass
    if copied:
        shell.run(tgt_host, ["rm", "-rf", "--one-file-system", "--", f.rootfs])
    if stopped:
        dom = src.domain(req.name)
        if dom is not None and src.domain_state(dom) == "stopped":
            try:
                src.start(dom)
            except DebvirtError:
                pass
