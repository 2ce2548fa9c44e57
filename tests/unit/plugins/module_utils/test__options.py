# -*- coding: utf-8 -*-
# Copyright: debvirt.cluster developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""One declaration per option: its spec entry, check, request field, comparison and XML binding."""

from __future__ import annotations

import pytest

from ansible_collections.debvirt.cluster.plugins.module_utils._domain import GuestSpec
from ansible_collections.debvirt.cluster.plugins.module_utils._errors import InvalidSpec
from ansible_collections.debvirt.cluster.plugins.module_utils._options import Option, OptionGroup
from ansible_collections.debvirt.cluster.plugins.module_utils._plan import Plan
from ansible_collections.debvirt.cluster.plugins.module_utils._xml import INT, XMLObject, parse


class ThingXML(XMLObject):
    TAG = "thing"


GROUP = OptionGroup(
    Option("size", dict(type="int"), "size", INT, check=(1, 10, " (the limit)"), live=True),
    Option("note", dict(type="str"), "meta/note", check="text", clear=True),
    Option("kernel", dict(type="path"), "os/kernel", check="path", cold=True),
    Option("tags", dict(type="list", elements="str"), request=lambda tags: sorted(set(tags)), xml=False),
    Option("owner", None, "meta/@owner"),
)
GROUP.bind(ThingXML)


class Thing:
    def __init__(self, **values):
        for name in ("size", "note", "kernel", "tags", "owner"):
            setattr(self, name, values.get(name))


def test_the_argument_spec_leaves_out_bookkeeping():
    assert GROUP.argument_spec() == {"size": {"type": "int"}, "note": {"type": "str"}, "kernel": {"type": "path"},
                                     "tags": {"type": "list", "elements": "str"}}


def test_the_request_takes_given_values_and_none_for_the_rest():
    assert GROUP.fields({"size": 3, "tags": ["b", "a", "b"]}) == \
        {"size": 3, "note": None, "kernel": None, "tags": ["a", "b"]}


@pytest.mark.parametrize("params, message", [
    ({"size": 11}, "^size must be at most 10 \\(the limit\\), got 11$"),
    ({"size": 0}, "^size must be at least 1, got 0$"),
    ({"kernel": "vmlinuz"}, "kernel"),
    ({"note": "a\x00b"}, "note"),
])
def test_values_are_checked_as_declared(params, message):
    with pytest.raises(InvalidSpec, match=message):
        GROUP.check(params)


def test_an_empty_text_clears_it_and_an_absent_one_is_left_alone():
    xml = ThingXML(parse("<thing><size>2</size><meta owner='x'><note>old</note></meta></thing>"))
    assert GROUP.read(xml) == {"size": 2, "note": "old", "kernel": None, "owner": "x"}
    GROUP.write(Thing(size=4, note="", kernel="/boot/k"), xml)
    assert GROUP.read(xml) == {"size": 4, "note": None, "kernel": "/boot/k", "owner": "x"}
    assert xml.node.find("meta/note") is None and xml.node.find("meta") is not None


def test_the_plan_compares_in_declaration_order_with_each_options_restart_needs():
    plan = Plan()
    GROUP.compare(plan, Thing(size=1, note="a", kernel="/k1", owner="x"),
                  Thing(size=2, note="b", kernel="/k2", tags=["t"], owner="y"), running=True)
    assert [(c.target, c.cold, c.extra) for c in plan.changes] == [
        ("size", False, {"live": True}), ("note", False, {}), ("kernel", True, {}), ("tags", False, {}),
        ("owner", False, {})]


def test_a_stopped_one_needs_no_restart():
    plan = Plan()
    GROUP.compare(plan, Thing(size=1, kernel="/k1"), Thing(size=2, kernel="/k2"), running=False)
    assert [(c.target, c.cold, c.extra) for c in plan.changes] == \
        [("size", False, {"live": False}), ("kernel", False, {})]


def test_a_guests_options_round_trip_through_its_definition():
    from ansible_collections.debvirt.cluster.plugins.module_utils._domain import NEW_DOMAIN, DomainXML
    spec = GuestSpec(memory=2048, max_memory=4096, cpu_mode="custom", cpu_model="Haswell", firmware="uefi",
                     cmdline="console=ttyS0", description="web", tags=["b", "a"], fleet="f1")
    back = GuestSpec.from_xml(spec.to_xml(DomainXML(parse(NEW_DOMAIN))))
    assert (back.memory, back.max_memory, back.cpu_mode, back.cpu_model, back.firmware, back.cmdline,
            back.description, back.tags, back.fleet) == \
        (2048, 4096, "custom", "Haswell", "uefi", "console=ttyS0", "web", ["a", "b"], "f1")
