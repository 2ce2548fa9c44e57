# -*- coding: utf-8 -*-
# Copyright: debvirt.cluster developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What several unit test files share and pytest fixtures cannot give (plain functions)."""

from __future__ import annotations


def module_params(argument_spec, **given):
    """A module's params as AnsibleModule hands them over: every top-level option, its default
    where it has one; built from the module's own spec so that a test sees an option it adds."""
    params = {name: option.get("default") for name, option in argument_spec.items()}
    unknown = set(given) - set(params)
    assert not unknown, "not options of the module: %s" % sorted(unknown)
    params.update(given)
    return params
