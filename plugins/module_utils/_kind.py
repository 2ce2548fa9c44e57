# -*- coding: utf-8 -*-
# Copyright: debvirt.cluster developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""One lifecycle for every kind of guest: read, inspect, plan, apply, and the module result.

A kind (a virtual machine in _guest, a container in _container) is one Kind instance: its noun,
its options and the few steps that differ between kinds. Placement, the fleet and the inventory
take that instance as data; nothing here or below imports a kind.

read() and inspect() only read; plan() is pure; apply() is the only writer, and it runs only
through _plan's one check-mode gate.
"""

from __future__ import annotations

import os

from ansible_collections.debvirt.cluster.plugins.module_utils._errors import InvalidSpec
from ansible_collections.debvirt.cluster.plugins.module_utils._names import TIMEOUT_LIMITS
from ansible_collections.debvirt.cluster.plugins.module_utils._options import Option, OptionGroup
from ansible_collections.debvirt.cluster.plugins.module_utils._plan import Plan, converge as converge_plan
from ansible_collections.debvirt.cluster.plugins.module_utils._xml import parse


def lifecycle_options(states, shutdown_timeout):
    """The options every kind has beside its definition's: which one, and what to do with it."""
    return OptionGroup(
        Option("name", dict(type="str", required=True)),
        Option("state", dict(type="str", choices=list(states), default="present")),
        Option("autostart", dict(type="bool")),
        Option("restart", dict(type="bool", default=False)),
        Option("force", dict(type="bool", default=False)),
        Option("shutdown_timeout", dict(type="int", default=shutdown_timeout), check=TIMEOUT_LIMITS),
        Option("remove_storage", dict(type="bool", default=False)),
    )


class Request:
    """What the user asked for: the spec plus what is not part of the definition."""

    def __init__(self, name, spec, state="present", autostart=None, restart=False, force=False,
                 shutdown_timeout=None, remove_storage=False):
        self.name = name
        self.spec = spec
        self.state = state
        self.autostart = autostart
        self.restart = restart
        self.force = force
        self.shutdown_timeout = shutdown_timeout
        self.remove_storage = remove_storage
        self.usage = None  # _usage.Scope of remove_storage's proof of disuse; None: this host's drivers


def request_params(params):
    """Request's keyword arguments from the module's params, but shutdown_timeout (a kind's own)."""
    p = params
    return dict(state=p.get("state") or "present", autostart=p.get("autostart"), restart=bool(p.get("restart")),
                force=bool(p.get("force")), remove_storage=bool(p.get("remove_storage")))


def inspect_interfaces(client, interfaces, local):
    """Every network the interfaces name exists; so does every bridge, where the task runs on the
    host itself and can look (a remote URI's bridges are the remote host's)."""
    for nic in interfaces or []:
        if nic.network is not None and client.network(nic.network) is None:
            raise InvalidSpec("Network %s does not exist (define it first, e.g. with "
                              "debvirt.cluster.network)" % nic.network)
        if nic.bridge is not None and local and not os.path.isdir("/sys/class/net/%s/bridge" % nic.bridge):
            raise InvalidSpec("Bridge %s does not exist on the host" % nic.bridge)


class Actual:
    """An existing guest as libvirt has it: the persistent definition and the run state.

    A kind's subclass names its spec (SPEC) and the states in which it is active (ACTIVE).
    """

    SPEC = None
    ACTIVE = ("running", "paused")

    def __init__(self, dom, xml, state, autostart):
        self.dom = dom
        self.xml = xml
        self.spec = self.SPEC.from_xml(xml)
        self.state = state
        self.autostart = autostart

    @property
    def active(self):
        return self.state in self.ACTIVE


class Job:
    """One request with what was read and planned for it."""

    def __init__(self, req, actual, facts, plan, desired):
        self.req, self.actual, self.facts, self.plan, self.desired = req, actual, facts, plan, desired


class Kind:
    """A kind of guest. Subclasses set the data and implement the steps marked as theirs."""

    noun = None  # what messages, labels and the module result call one: "guest", "container"
    type = None  # the value of a fleet item's type, and the inventory's type: "vm", "container"
    scheme = None  # the libvirt driver of a member's URI for this kind: "qemu", "lxc"
    paused = "paused"  # what a suspended one's state is called
    resume, pause = "resume", "pause"  # the plan's actions between running and paused
    local_only = False  # converged (and created) only on the host the task runs on
    rebooted_by = ("restart",)  # planned actions after which no restart is pending
    argument_spec = None
    Request = Request
    Actual = Actual
    XML = None  # the XML model of its definition

    # --- the kind's own steps ----------------------------------------------------------------
    def request_from_params(self, params):
        raise NotImplementedError

    def absent(self, name):
        """A request to remove the one named, its storage kept."""
        return self.Request(name, self.Actual.SPEC(), state="absent")

    def lookup(self, client, name):
        """The libvirt domain, or None."""
        raise NotImplementedError

    def check_type(self, client, name, xml):
        """Raise InvalidSpec when the domain read is of another kind."""

    def inspect(self, client, req, actual):
        raise NotImplementedError

    def plan_spec(self, plan, req, desired, actual, facts, running):
        """Plan everything but removal, autostart and the run state (desired is a copy to resolve)."""
        raise NotImplementedError

    def plan_removal(self, plan, req, actual, facts):
        """What state absent deletes beyond the definition."""

    def remove(self, client, plan, actual):
        """Undefine it and delete what plan_removal planned."""
        raise NotImplementedError

    def prepare_apply(self, client, req, plan, desired, actual, facts):
        """What must exist before the definition is written (volumes, files)."""

    def defines(self, change):
        """Whether the step changes the persistent definition."""
        return not change.is_("autostart") and not self.runs(change)

    def define(self, client, xml, name):
        raise NotImplementedError

    def apply_live(self, client, dom, plan, desired):
        """Bring a running one in line with the new definition where that works live; warnings."""
        return []

    def start(self, client, dom, paused=False):
        client.start(dom, paused=paused)

    def stop(self, client, dom, req):
        raise NotImplementedError

    def managed_extra(self, req):
        """Fields the diff shows that are not the spec's."""
        return set()

    def describe_more(self, client, actual, out, details):
        """Add what describe() shows for this kind alone."""

    # --- reading -----------------------------------------------------------------------------
    def read(self, client, name):
        dom = self.lookup(client, name)
        if dom is None:
            return None
        xml = self.XML(parse(client.domain_xml(dom, inactive=True)))
        self.check_type(client, name, xml)
        return self.Actual(dom, xml, self.state(client, dom), client.autostart(dom))

    def state(self, client, dom):
        state = client.domain_state(dom)
        return self.paused if state == "paused" else state

    def spec_from_root(self, root):
        """The spec of a definition already parsed (the inventory reads many at once)."""
        return self.Actual.SPEC.from_xml(self.XML(root))

    # --- planning ----------------------------------------------------------------------------
    def plan(self, req, actual, facts):
        """(plan, desired): the ordered changes, and the full desired spec (names, MACs resolved)."""
        plan = Plan()
        if req.state == "absent":
            if actual is not None:
                if actual.active:
                    plan.add("stop", self.noun, actual.state, "stopped", key=req.name)
                plan.add("undefine", self.noun, key=req.name)
                self.plan_removal(plan, req, actual, facts)
            return plan, None
        desired = req.spec.copy()
        self.plan_spec(plan, req, desired, actual, facts, actual is not None and actual.active)
        if req.autostart is not None and (actual is None or actual.autostart != req.autostart):
            plan.add("update", "autostart", actual.autostart if actual else None, req.autostart)
        self.plan_state(plan, req, actual)
        return plan, desired

    def plan_state(self, plan, req, actual):
        now = actual.state if actual is not None else "stopped"
        if now == "crashed":
            now = "running"  # libvirt keeps a crashed guest's process until it is destroyed
        want, name = req.state, req.name
        if want == "running" and now == "stopped":
            plan.add("start", self.noun, now, want, key=name)
        elif want == "running" and now == self.paused:
            plan.add(self.resume, self.noun, now, want, key=name)
        elif want == self.paused and now == "stopped":
            plan.add("start", self.noun, now, want, key=name, paused=True)
        elif want == self.paused and now == "running":
            plan.add(self.pause, self.noun, now, want, key=name)
        elif want == "stopped" and now in ("running", self.paused):
            plan.add("stop", self.noun, now, want, key=name)
        cold = any(c.cold for c in plan.changes)
        if cold and req.restart and want in ("running", "present") and now == "running":
            plan.add("restart", self.noun, "running", "running", key=name)

    def runs(self, change):
        """Whether the step changes the run state."""
        return change.is_(self.noun, "start", self.resume, self.pause, "stop", "restart")

    def reboot_required(self, plan):
        return any(c.cold for c in plan.changes) and not plan.has(*self.rebooted_by)

    # --- applying ----------------------------------------------------------------------------
    def apply(self, client, req, plan, desired, actual, facts):
        """Carry out the plan; returns warnings. Called only through _plan's gate."""
        if req.state == "absent":
            if plan.on(self.noun, "stop"):
                self.stop(client, actual.dom, req)
            self.remove(client, plan, actual)
            return []
        warnings = []
        dom = actual.dom if actual is not None else None
        self.prepare_apply(client, req, plan, desired, actual, facts)
        if any(self.defines(c) for c in plan.changes):
            base = actual.xml if actual is not None else self.new_xml()
            base.name = req.name
            dom = self.define(client, desired.to_xml(base).to_string(), req.name)
            if actual is not None and actual.active:
                warnings += self.apply_live(client, dom, plan, desired)
        for change in plan.changes:
            if change.is_("autostart"):
                client.set_autostart(dom, change.after)
            elif not change.is_(self.noun):
                continue
            elif change.action == "start":
                self.start(client, dom, paused=change.extra.get("paused", False))
            elif change.action == self.resume:
                client.resume(dom)
            elif change.action == self.pause:
                client.suspend(dom)
            elif change.action == "stop":
                self.stop(client, dom, req)
            elif change.action == "restart":
                self.stop(client, dom, req)
                client.start(dom)
        return warnings

    def new_xml(self):
        raise NotImplementedError

    # --- results -----------------------------------------------------------------------------
    def view(self, req, actual, desired):
        """(before, after) for the diff: the managed fields and the state."""
        managed = set(req.spec.view()) | {"state"} | self.managed_extra(req)
        before = {}
        if actual is not None:
            before = {k: v for k, v in actual.spec.view().items() if k in managed}
            before["state"] = actual.state
            if req.autostart is not None:
                before["autostart"] = actual.autostart
        if req.state == "absent":
            return before, {}
        after = {k: v for k, v in desired.view().items() if k in managed or actual is None}
        after.update(self.kept(before, actual))
        after["state"] = req.state if req.state != "present" else (actual.state if actual else "stopped")
        if req.autostart is not None:
            after["autostart"] = req.autostart
        return before, after

    def kept(self, before, actual):
        """Fields of the diff's before that a request cannot change, so after shows them as they are."""
        return {}

    def describe(self, client, actual, details=False):
        """The guest as a result: name, uuid, state, autostart and its spec.

        details adds what costs a call per device (the interfaces' addresses, ...).
        """
        out = {"name": actual.dom.name(), "uuid": actual.xml.uuid, "state": actual.state,
               "autostart": actual.autostart}
        out.update(actual.spec.view())
        self.describe_more(client, actual, out, details)
        return out

    @staticmethod
    def add_addresses(client, actual, out, active):
        """Each interface's addresses, from DHCP leases or the guest agent, while it runs."""
        addresses = client.interface_addresses(actual.dom) if active else {}
        for nic in out.get("interfaces", []):
            nic["addresses"] = addresses.get(nic.get("mac"), [])

    def list(self, client, names=None, tags=None):
        """Every one on the host, or those named, or those carrying all the given tags."""
        found = []
        for dom in client.domains():
            if names and dom.name() not in names:
                continue
            try:
                actual = self.read(client, dom.name())
            except InvalidSpec:
                continue  # of another kind, on a URI that has both
            if actual is None:  # undefined while we listed
                continue
            if tags and not set(tags) <= set(actual.spec.tags or []):
                continue
            found.append(self.describe(client, actual, details=True))
        return sorted(found, key=lambda g: g["name"])

    # --- end to end --------------------------------------------------------------------------
    def prepare(self, client, req):
        """Read, check and plan one; raises before anything is touched."""
        actual = self.read(client, req.name)
        facts = self.inspect(client, req, actual)
        plan, desired = self.plan(req, actual, facts)
        return Job(req, actual, facts, plan, desired)

    def finish(self, client, job, check_mode):
        """Apply a prepared job (unless check mode) and return its module result (without 'failed')."""
        req, plan = job.req, job.plan

        def describe():
            # Unchanged, it is as it was read: a fleet's rerun reads every guest once.
            return self.describe(client, self.read(client, req.name) if plan.changed else job.actual)

        out = converge_plan(
            plan, check_mode, lambda: self.apply(client, req, plan, job.desired, job.actual, job.facts),
            self.noun, req.name, lambda: self.view(req, job.actual, job.desired), describe,
            absent=req.state == "absent", warnings=job.facts.warnings)
        # After apply: a change that could not be made live waits for the restart.
        out["reboot_required"] = self.reboot_required(plan) and req.state != "absent"
        out.setdefault("warnings", [])
        return out

    def converge(self, client, req, check_mode):
        """One guest, end to end. Returns the module result (without 'failed')."""
        return self.finish(client, self.prepare(client, req), check_mode)

    def predict_moved(self, target, source, req):
        """The check-mode result of converging on target the one that source defines now: what
        the task does on the node it names once the move has brought the definition there.
        None when that cannot be told before the move."""
        actual = self.read(source, req.name)
        facts = self.inspect(target, req, actual)
        plan, desired = self.plan(req, actual, facts)
        return self.finish(target, Job(req, actual, facts, plan, desired), True)
