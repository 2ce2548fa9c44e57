# -*- coding: utf-8 -*-
# Copyright: debvirt.cluster developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Desired against actual, as an ordered list of changes. Pure: nothing here talks to libvirt."""

from __future__ import annotations


class Change:
    """One step of a plan, as data.

    action:  the operation ("create", "update", "add", "remove", "start", ...);
    subject: the kind of thing it acts on ("memory", "disk", "guest", "autostart", ...);
    key:     which one of them, where there are several ("vdb", "web01"), else None;
    field:   the attribute an update changes ("source"), else None;
    cold:    True when a running guest only sees it after a restart;
    extra:   what the applier needs beyond before/after (a parsed device, a host).

    Appliers dispatch on action, subject, key and field; `target` is the human label the
    result shows ("disk vdb source"), derived from them and never parsed back.
    """

    def __init__(self, action, subject, before=None, after=None, cold=False, key=None, field=None,
                 **extra):
        self.action = action
        self.subject = subject
        self.key = key
        self.field = field
        self.before = before
        self.after = after
        self.cold = cold
        self.extra = extra

    @property
    def target(self):
        return " ".join(str(part) for part in (self.subject, self.key, self.field) if part not in (None, ""))

    def is_(self, subject, *actions):
        """True for a step on subject (with one of actions, when any are given)."""
        return self.subject == subject and (not actions or self.action in actions)

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

    def add(self, action, subject, before=None, after=None, cold=False, key=None, field=None, **extra):
        change = Change(action, subject, before, after, cold, key, field, **extra)
        self.changes.append(change)
        return change

    def compare(self, subject, before, after, cold=False, key=None, field=None, **extra):
        """Add an update when after is managed (not None) and differs from before.

        An empty string asks for a text field to be absent, which is what None reads as.
        """
        if after is not None and after != before and not (after == "" and before is None):
            return self.add("update", subject, before, after, cold, key, field, **extra)
        return None

    def has(self, *actions):
        return any(c.action in actions for c in self.changes)

    def of(self, *actions):
        return [c for c in self.changes if c.action in actions]

    def on(self, subject, *actions):
        """The steps on subject (with one of actions, when any are given), in plan order."""
        return [c for c in self.changes if c.is_(subject, *actions)]

    @property
    def changed(self):
        return bool(self.changes)

    def as_list(self):
        return [c.as_dict() for c in self.changes]


def execute(plan, check_mode, apply):
    """The collection's one check-mode gate: apply() runs only when the plan changes something
    and this is not check mode. Returns the warnings apply() gives (a list, or None)."""
    if not plan.changed or check_mode:
        return []
    return list(apply() or [])


def converge(plan, check_mode, apply, noun, name, views, describe, absent=False, warnings=(), **extra):
    """Run a plan through the gate and build the module result every converging module returns:
    changed, changes, the object (predicted in check mode and when absent, read back otherwise)
    and the diff. views() gives the diff's (before, after); describe() reads the object back."""
    done = execute(plan, check_mode, apply)
    before, after = views()
    if check_mode or absent:
        obj = dict(after, name=name) if after else {}
    else:
        obj = describe()
    out = {"changed": plan.changed, "changes": plan.as_list(), noun: obj, "diff": diff(before, after)}
    out.update(extra)
    if warnings or done:
        out["warnings"] = list(warnings) + done
    return out


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
