# -*- coding: utf-8 -*-
# Copyright: debvirt.cluster developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A kind's scalar options, each declared once.

One Option yields the module's argument spec entry, the checks of its value, the request's spec
field, the plan's comparison and the binding to the definition's XML. An OptionGroup holds
options that the plan compares together, in the order it lists their changes.
"""

from __future__ import annotations

from ansible_collections.debvirt.cluster.plugins.module_utils import _names
from ansible_collections.debvirt.cluster.plugins.module_utils._xml import TEXT, Prop


class Option:
    """One option.

    name:    the module option, the spec field, the plan step's subject and the XML model's attribute;
    spec:    its argument spec entry, or None for bookkeeping that is no user's option (a fleet's name);
    xpath:   where the definition holds it, bound as a Prop of the XML model (with conv); without
             one, the XML model has its own property of that name, or with xml=False the spec's
             to_xml writes it;
    check:   how a given value is checked: "text" (may be empty), "word" (may not), "path", or
             (low, high, why) for a number;
    clear:   an empty string asks for it to be absent from the definition;
    request: the request's value made from the option's (sorted tags, ...);
    cold:    a running guest sees a change only after its restart; live: it is applied to it at once;
    compared: False where the plan compares it in its own way.
    """

    def __init__(self, name, spec, xpath=None, conv=TEXT, check=None, clear=False, request=None,
                 cold=False, live=False, compared=True, xml=True):
        self.name = name
        self.spec = spec
        self.xpath = xpath
        self.conv = conv
        self.check = check
        self.clear = clear
        self.request = request
        self.cold = cold
        self.live = live
        self.compared = compared
        self.xml = xml


class OptionGroup:
    def __init__(self, *options):
        self.options = options

    def __iter__(self):
        return iter(self.options)

    def __add__(self, other):
        return OptionGroup(*(self.options + other.options))

    def argument_spec(self):
        return {o.name: dict(o.spec) for o in self.options if o.spec is not None}

    def bind(self, xml_class):
        """Give the XML model a Prop for each option that names its XPath."""
        for option in self.options:
            if option.xpath is not None:
                setattr(xml_class, option.name, Prop(option.xpath, option.conv))
        return xml_class

    def check(self, params):
        """Check the given values; raises InvalidSpec naming the first bad one."""
        limits = {o.name: o.check for o in self.options if isinstance(o.check, tuple)}
        named = {kind: tuple(o.name for o in self.options if o.check == kind) for kind in ("text", "word", "path")}
        _names.check_values(params, limits, texts=named["text"], words=named["word"], paths=named["path"])

    def fields(self, params):
        """The spec's fields from the module's params: None where an option is not given."""
        out = {}
        for option in self.options:
            if option.spec is None:
                continue
            value = params.get(option.name)
            out[option.name] = option.request(value) if value is not None and option.request else value
        return out

    def read(self, xml):
        return {o.name: getattr(xml, o.name) for o in self.options if o.xml}

    def write(self, spec, xml):
        """Write the managed (not None) fields of spec into xml."""
        for option in self.options:
            value = getattr(spec, option.name)
            if option.xml and value is not None:
                setattr(xml, option.name, value or None if option.clear else value)

    def compare(self, plan, have, desired, running):
        """A plan step for each compared option that desired manages and that differs."""
        for option in self.options:
            if option.compared:
                plan.compare(option.name, getattr(have, option.name), getattr(desired, option.name),
                             cold=running and option.cold, **({"live": running} if option.live else {}))
