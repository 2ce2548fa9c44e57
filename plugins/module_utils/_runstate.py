# -*- coding: utf-8 -*-
# Copyright: debvirt.cluster developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What storage pools and networks share: libvirt defines them, starts and stops them and
starts them at boot (autostart), and a new definition reaches an active one only through a
restart. Only listed() reads, through the reader it is given; the rest is pure."""

from __future__ import annotations

from ansible_collections.debvirt.cluster.plugins.module_utils._plan import run_views


class Request:
    """What a task asks of a pool or network: its name, the managed spec, its run state and
    autostart (None: not managed)."""

    def __init__(self, name, spec, state="present", autostart=None):
        self.name = name
        self.spec = spec
        self.state = state
        self.autostart = autostart


class Defined:
    """A pool or network as read: its libvirt handle, its XML, the spec read from that, whether it
    is active, starts at boot and is persistent (defined, not only running)."""

    SPEC = None

    def __init__(self, handle, xml, active, autostart, persistent):
        self.handle = handle
        self.xml = xml
        self.spec = self.SPEC.from_xml(xml)
        self.active = active
        self.autostart = autostart
        self.persistent = persistent

    @property
    def state(self):
        return "running" if self.active else "stopped"

    def describe(self, **more):
        """What every result and info module shows of it: more, then its spec."""
        out = {"name": self.handle.name(), "uuid": self.xml.uuid, "state": self.state,
               "autostart": self.autostart, "persistent": self.persistent}
        out.update(more)
        out.update(self.spec.as_dict())
        return out


def listed(client, handles, names, read, describe):
    """describe(actual) of each object read (read(client, name)) among handles, only those named
    when names are given, sorted by name; one undefined while we looked is left out."""
    found = []
    for handle in handles:
        if names and handle.name() not in names:
            continue
        actual = read(client, handle.name())
        if actual is not None:
            found.append(describe(actual))
    return sorted(found, key=lambda o: o["name"])


def plan_run_state(plan, req, actual, subject):
    """Add the start, stop or restart (when a change before it is cold) that brings actual to
    req.state, then the autostart update."""
    want_active = req.state == "present"
    now_active = actual is not None and actual.active
    if want_active and not now_active:
        plan.add("start", subject, "stopped", "running", key=req.name)
    elif not want_active and now_active:
        plan.add("stop", subject, "running", "stopped", key=req.name)
    elif now_active and any(c.cold for c in plan.changes):
        plan.add("restart", subject, "running", "running", key=req.name)
    if req.autostart is not None and (actual is None or actual.autostart != req.autostart):
        plan.add("update", "autostart", actual.autostart if actual else None, req.autostart)


def views(req, actual, managed_view, after):
    """A diff's (before, after): before restricted to what req manages (all of it when req
    removes the object), with the run state of both."""
    before = {}
    if actual is not None:
        before = managed_view(actual.spec, req.spec) if req.state != "absent" else actual.spec.as_dict()
    return run_views(req, actual, before, after)
