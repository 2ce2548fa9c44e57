# -*- coding: utf-8 -*-
# Copyright: debvirt.cluster developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

from ansible_collections.debvirt.cluster.plugins.module_utils._plan import Change, Plan, converge, diff, execute


def test_compare_adds_only_managed_differences():
    plan = Plan()
    assert plan.compare("memory", 1024, None) is None  # not managed
    assert plan.compare("memory", 1024, 1024) is None
    change = plan.compare("memory", 1024, 2048, cold=True, live=False)
    assert (change.action, change.target, change.before, change.after, change.cold, change.extra) == \
        ("update", "memory", 1024, 2048, True, {"live": False})
    # Falsy values are values: turning autostart off is a change.
    assert plan.compare("autostart", True, False) is not None
    assert plan.changed
    assert plan.has("update") and not plan.has("start", "stop")
    assert [c.target for c in plan.of("update")] == ["memory", "autostart"]


def test_as_dict_leaves_out_what_is_unset_but_keeps_falsy_values():
    assert Change("define", "guest a").as_dict() == {"action": "define", "target": "guest a"}
    assert Change("update", "autostart", True, False).as_dict() == \
        {"action": "update", "target": "autostart", "before": True, "after": False}
    assert Change("update", "memory", 1, 2, cold=True).as_dict()["needs_restart"] is True
    assert "cold" in repr(Change("update", "memory", 1, 2, cold=True))


def test_empty_plan_and_diff():
    plan = Plan()
    assert (plan.changed, plan.as_list()) == (False, [])
    assert diff(None, {"state": "running"}) == {"before": {}, "after": {"state": "running"}}
    assert diff({"a": 1}, None) == {"before": {"a": 1}, "after": {}}


def test_a_step_is_data_and_its_label_is_derived():
    c = Change("update", "disk", "a.qcow2", "b.qcow2", key="vdb", field="source")
    assert (c.action, c.subject, c.key, c.field) == ("update", "disk", "vdb", "source")
    assert c.target == "disk vdb source"
    assert c.is_("disk") and c.is_("disk", "update") and not c.is_("disk", "add")
    assert Change("update", "memory", 1, 2).target == "memory"


def test_plan_on_selects_by_subject_and_action():
    plan = Plan()
    plan.add("add", "disk", None, {}, key="vdb")
    plan.add("update", "memory", 1, 2)
    plan.add("remove", "disk", {}, None, key="vdc")
    assert [c.key for c in plan.on("disk")] == ["vdb", "vdc"]
    assert [c.key for c in plan.on("disk", "remove")] == ["vdc"]


def test_the_gate_applies_only_a_changing_plan_outside_check_mode():
    calls = []
    plan = Plan()
    assert execute(plan, False, lambda: calls.append(1)) == [] and calls == []
    plan.add("start", "guest", key="a")
    assert execute(plan, True, lambda: calls.append(1)) == [] and calls == []
    assert execute(plan, False, lambda: calls.append(1) or ["w"]) == ["w"] and calls == [1]


def test_converge_predicts_in_check_mode_and_reads_back_otherwise():
    plan = Plan()
    plan.add("create", "pool", key="p")

    def views():
        return {}, {"state": "running"}

    def read():
        return {"name": "p", "state": "running", "uuid": "u"}

    checked = converge(plan, True, lambda: None, "pool", "p", views, read)
    assert checked["pool"] == {"name": "p", "state": "running"} and checked["changed"] is True
    assert checked["diff"] == {"before": {}, "after": {"state": "running"}} and "warnings" not in checked
    applied = converge(plan, False, lambda: ["careful"], "pool", "p", views, read, warnings=["w0"])
    assert applied["pool"]["uuid"] == "u" and applied["warnings"] == ["w0", "careful"]
    gone = converge(plan, False, lambda: None, "pool", "p", lambda: ({"state": "running"}, {}), read, absent=True)
    assert gone["pool"] == {}
