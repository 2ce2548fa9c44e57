# -*- coding: utf-8 -*-
# Copyright: debvirt.cluster developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What pools and networks share: the run-state steps that end their plans, as a table."""

from __future__ import annotations

import pytest

from ansible_collections.debvirt.cluster.plugins.module_utils._plan import Plan
from ansible_collections.debvirt.cluster.plugins.module_utils._runstate import Request, plan_run_state


class Actual:
    def __init__(self, active, autostart=False):
        self.active = active
        self.autostart = autostart


@pytest.mark.parametrize("state, autostart, actual, cold, expected", [
    ("present", None, None, False, [("start", "thing t", "stopped", "running")]),
    ("stopped", None, None, False, []),
    ("present", None, Actual(True), False, []),
    ("present", None, Actual(True), True, [("restart", "thing t", "running", "running")]),
    ("present", None, Actual(False), True, [("start", "thing t", "stopped", "running")]),
    ("stopped", None, Actual(True), True, [("stop", "thing t", "running", "stopped")]),
    ("stopped", True, Actual(False, autostart=False), False, [("update", "autostart", False, True)]),
    ("present", True, None, False, [("start", "thing t", "stopped", "running"), ("update", "autostart", None, True)]),
    ("present", False, Actual(True, autostart=False), False, []),
])
def test_run_state_steps(state, autostart, actual, cold, expected):
    plan = Plan()
    if cold:
        plan.add("update", "target", "/a", "/b", cold=True)
    plan_run_state(plan, Request("t", None, state, autostart), actual, "thing")
    steps = [(c.action, c.target, c.before, c.after) for c in plan.changes if not c.cold]
    assert steps == expected
    assert all(c.key == "t" for c in plan.changes if c.subject == "thing")
