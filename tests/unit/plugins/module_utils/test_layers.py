# -*- coding: utf-8 -*-
# Copyright: debvirt.cluster developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Imports run one way: modules -> kinds -> cluster layer -> client and XML model. Read from the
source files themselves, so that an import that goes up fails here before it tangles a file."""

from __future__ import annotations

import ast
import os

import pytest

PLUGINS = os.path.join(os.path.dirname(__file__), "..", "..", "..", "..", "plugins")
PACKAGE = "ansible_collections.debvirt.cluster.plugins.module_utils"

# Lowest first. A file may import from its own layer and the ones before it.
LAYERS = (
    ("client and XML model", (
        "_errors", "_names", "_xml", "_options", "_plan", "_runstate", "_connection", "_client", "_domain",
        "_lxc", "_netxml", "_poolxml", "_cloudinit", "_interfaces", "_rootfs")),
    ("cluster layer", ("_usage", "_lock", "_corosync", "_quorum", "_cluster", "_transport")),
    ("kinds", (
        "_kind", "_guest_request", "_container_request", "_guest", "_container", "_pool", "_volume", "_network",
        "_container_move", "_migration_facts", "_migration", "_placement", "_fleet", "_inventory", "_module")),
)
LAYER = {name: (rank, layer) for rank, (layer, names) in enumerate(LAYERS) for name in names}


def module_utils():
    folder = os.path.join(PLUGINS, "module_utils")
    return sorted(f[:-3] for f in os.listdir(folder) if f.startswith("_") and f.endswith(".py") and f != "__init__.py")


def imports(name):
    """Every module the file of that module_utils name imports, by its full name."""
    path = os.path.join(PLUGINS, "module_utils", name + ".py")
    with open(path) as f:
        tree = ast.parse(f.read(), path)
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module == PACKAGE:
            found.update("%s.%s" % (PACKAGE, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
    return found


def test_every_module_utils_file_has_a_layer():
    assert [name for name in module_utils() if name not in LAYER] == []


def test_the_layers_name_only_files_that_exist():
    assert sorted(set(LAYER) - set(module_utils())) == []


@pytest.mark.parametrize("name", module_utils())
def test_no_import_goes_up(name):
    rank, layer = LAYER[name]
    ours = sorted(m[len(PACKAGE) + 1:] for m in imports(name) if m.startswith(PACKAGE + "."))
    upward = ["%s (%s)" % (other, LAYER[other][1]) for other in ours if LAYER[other][0] > rank]
    assert upward == [], "%s, in the %s, imports from above it" % (name, layer)


@pytest.mark.parametrize("name", module_utils())
def test_module_utils_never_import_a_plugin(name):
    plugins = "ansible_collections.debvirt.cluster.plugins."
    assert sorted(m for m in imports(name) if m.startswith(plugins) and not m.startswith(PACKAGE + ".")) == []


def test_only_connection_imports_libvirt():
    assert [name for name in module_utils() if "libvirt" in {m.split(".")[0] for m in imports(name)}] == ["_connection"]
