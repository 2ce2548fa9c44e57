# -*- coding: utf-8 -*-
# Copyright: debvirt.cluster developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The lifecycle every guest kind shares: run-state planning, the steps that define, the gate."""

from __future__ import annotations

import pytest

from ansible_collections.debvirt.cluster.plugins.module_utils import _kind
from ansible_collections.debvirt.cluster.plugins.module_utils._container import CONTAINER
from ansible_collections.debvirt.cluster.plugins.module_utils._domain import GuestSpec, NicSpec
from ansible_collections.debvirt.cluster.plugins.module_utils._errors import InvalidSpec
from ansible_collections.debvirt.cluster.plugins.module_utils._guest import GUEST
from ansible_collections.debvirt.cluster.plugins.module_utils._plan import Change, Plan


class Req:
    def __init__(self, state, restart=False, name="one"):
        self.name, self.state, self.restart = name, state, restart


class Now:
    def __init__(self, state):
        self.state = state


@pytest.mark.parametrize("kind, now, want, expected", [
    (GUEST, "stopped", "running", [("start", "guest one")]),
    (GUEST, "paused", "running", [("resume", "guest one")]),
    (GUEST, "running", "paused", [("pause", "guest one")]),
    (GUEST, "crashed", "stopped", [("stop", "guest one")]),
    (GUEST, "running", "running", []),
    (CONTAINER, "frozen", "running", [("thaw", "container one")]),
    (CONTAINER, "running", "frozen", [("freeze", "container one")]),
    (CONTAINER, "frozen", "stopped", [("stop", "container one")]),
    (CONTAINER, "stopped", "present", []),
])
def test_run_state_steps_use_each_kinds_words(kind, now, want, expected):
    plan = Plan()
    kind.plan_state(plan, Req(want), Now(now))
    assert [(c.action, c.target) for c in plan.changes] == expected
    assert all(c.is_(kind.noun) and c.key == "one" for c in plan.changes)


def test_a_paused_start_is_marked_as_data_for_both_kinds():
    for kind in (GUEST, CONTAINER):
        plan = Plan()
        kind.plan_state(plan, Req(kind.paused), None)
        assert [(c.action, c.extra) for c in plan.changes] == [("start", {"paused": True})]


def test_a_restart_is_planned_only_for_a_cold_change_on_a_running_one_that_asks():
    plan = Plan()
    plan.add("update", "command", ["/a"], ["/b"], cold=True)
    GUEST.plan_state(plan, Req("running", restart=True), Now("running"))
    assert plan.changes[-1].target == "guest one" and plan.changes[-1].action == "restart"
    plan = Plan()
    plan.add("update", "command", ["/a"], ["/b"], cold=True)
    GUEST.plan_state(plan, Req("running"), Now("running"))
    assert len(plan.changes) == 1


@pytest.mark.parametrize("kind, change, defines", [
    (GUEST, Change("update", "memory", 1, 2), True),
    (GUEST, Change("create", "volume", key="pool/vol"), False),
    (GUEST, Change("update", "autostart", False, True), False),
    (GUEST, Change("define", "guest", key="one"), True),
    (GUEST, Change("start", "guest", key="one"), False),
    (GUEST, Change("create", "cloud-init seed", key="/x.iso"), True),
    (CONTAINER, Change("create", "template", key="/t"), False),
    (CONTAINER, Change("create", "rootfs", key="/r"), False),
    (CONTAINER, Change("update", "rootfs", "/a", "/b"), True),
    (CONTAINER, Change("write", "/etc/hostname"), False),
    (CONTAINER, Change("freeze", "container", key="one"), False),
    (CONTAINER, Change("update", "mount", "/a", "/b", key="/srv", field="source"), True),
])
def test_which_steps_rewrite_the_definition(kind, change, defines):
    assert kind.defines(change) is defines


def test_a_stop_clears_a_pending_restart_for_a_guest_only():
    plan = Plan()
    plan.add("update", "command", ["/a"], ["/b"], cold=True)
    plan.add("stop", "x", key="one")
    assert GUEST.reboot_required(plan) is False
    assert CONTAINER.reboot_required(plan) is True


class Counted(_kind.Kind):
    """A kind whose steps only count: the lifecycle's skeleton, with nothing of libvirt."""

    noun, type = "thing", "thing"

    def __init__(self, state):
        self.applied = 0
        self.actual = FakeActual(state)

    def read(self, client, name):
        return self.actual

    def inspect(self, client, req, actual):
        return Facts()

    def plan_spec(self, plan, req, desired, actual, facts, running):
        plan.compare("memory", actual.spec.memory, desired.memory, live=running)

    def apply(self, client, req, plan, desired, actual, facts):
        self.applied += 1
        return ["applied"]

    def describe(self, client, actual, details=False):
        return {"name": "one", "memory": actual.spec.memory, "state": actual.state}


class Facts:
    warnings = ["inspected"]


class FakeActual:
    def __init__(self, state):
        self.spec = GuestSpec(memory=512)
        self.state = state
        self.autostart = False
        self.active = state == "running"


class Request:
    name, state, restart, autostart = "one", "present", False, None

    def __init__(self, memory):
        self.spec = GuestSpec(memory=memory)


@pytest.mark.parametrize("check_mode", [True, False])
def test_the_result_comes_through_the_one_gate(check_mode):
    kind = Counted("running")
    result = kind.converge(None, Request(1024), check_mode)
    assert kind.applied == (0 if check_mode else 1)
    assert result["changed"] is True
    assert result["changes"] == [{"action": "update", "target": "memory", "before": 512, "after": 1024}]
    assert result["diff"] == {"before": {"memory": 512, "state": "running"},
                              "after": {"memory": 1024, "state": "running"}}
    assert result["warnings"] == ["inspected"] + ([] if check_mode else ["applied"])
    assert result["reboot_required"] is False
    assert result["thing"] == ({"memory": 1024, "state": "running", "name": "one"} if check_mode
                               else {"name": "one", "memory": 512, "state": "running"})


def test_nothing_to_change_applies_nothing_and_keeps_a_warnings_list():
    kind = Counted("stopped")
    result = kind.converge(None, Request(512), False)
    assert kind.applied == 0
    assert result["changed"] is False and result["changes"] == []
    assert result["warnings"] == ["inspected"]


@pytest.mark.parametrize("nic, local, msg", [
    (NicSpec(network="nope"), True, "^Network nope does not exist \\(define it first"),
    (NicSpec(network="nope"), False, "^Network nope does not exist \\(define it first"),
    (NicSpec(bridge="debvirt-nope0"), True, "^Bridge debvirt-nope0 does not exist on the host$"),
])
def test_an_interface_on_what_the_host_lacks_is_refused(client, nic, local, msg):
    with pytest.raises(InvalidSpec, match=msg):
        _kind.inspect_interfaces(client, [NicSpec(network="default"), nic], local)


def test_a_remote_hosts_bridges_are_not_looked_for_here(client):
    nics = [NicSpec(network="default"), NicSpec(bridge="debvirt-nope0")]
    with pytest.raises(InvalidSpec, match="^Bridge debvirt-nope0"):
        _kind.inspect_interfaces(client, nics, local=True)
    # The same request against another host: its bridges are not this machine's to judge.
    _kind.inspect_interfaces(client, nics, local=False)
