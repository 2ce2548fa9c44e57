# -*- coding: utf-8 -*-
# Copyright: debvirt.cluster developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

from ansible_collections.debvirt.cluster.plugins.module_utils._plan import Change, Plan, diff


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
