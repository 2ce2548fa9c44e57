# -*- coding: utf-8 -*-
# Copyright: debvirt.cluster developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Desired against actual, as an ordered list of changes. Pure: nothing here talks to libvirt."""

from __future__ import annotations


class Change:
    """One step of a plan.

    action: what happens ("create", "update", "add", "remove", "start", ...);
    target: what it happens to ("memory", "disk vdb", "guest web01");
    cold:   True when a running guest only sees it after a restart.
    """

    def __init__(self, action, target, before=None, after=None, cold=False, **extra):
        self.action = action
        self.target = target
        self.before = before
        self.after = after
        self.cold = cold
        self.extra = extra

    def as_dict(self):
        out = {"action": self.action, "target": self.target}
        if self.before is not None:
            out["before"] = self.before
        if self.after is not None:
            out["after"] = self.after
        if self.cold:
            out["needs_restart"] = True
        return out

    def __repr__(self):
        return "Change(%s %s: %r -> %r%s)" % (
            self.action, self.target, self.before, self.after, ", cold" if self.cold else "")


class Plan:
    def __init__(self):
        self.changes = []

    def add(self, action, target, before=None, after=None, cold=False, **extra):
        change = Change(action, target, before, after, cold, **extra)
        self.changes.append(change)
        return change

    def compare(self, target, before, after, cold=False, **extra):
        """Add an update when after is managed (not None) and differs from before.

        An empty string asks for a text field to be absent, which is what None reads as.
        """
        if after is not None and after != before and not (after == "" and before is None):
            return self.add("update", target, before, after, cold, **extra)
        return None

    def has(self, *actions):
        return any(c.action in actions for c in self.changes)

    def of(self, *actions):
        return [c for c in self.changes if c.action in actions]

    @property
    def changed(self):
        return bool(self.changes)

    def as_list(self):
        return [c.as_dict() for c in self.changes]


def diff(before, after):
    """Ansible's diff dict; before/after are plain dicts (or {} for absent)."""
    return {"before": before or {}, "after": after or {}}


def run_views(req, actual, before, after):
    """A diff's (before, after) for an object that is started or stopped: the managed views
    given, plus its run state and, where managed, autostart. Absent leaves after empty."""
    if actual is not None:
        before = dict(before, state=actual.state)
        if req.autostart is not None:
            before["autostart"] = actual.autostart
    else:
        before = {}
    if req.state == "absent":
        return before, {}
    after = dict(after, state="running" if req.state == "present" else "stopped")
    if req.autostart is not None:
        after["autostart"] = req.autostart
    return before, after
