# -*- coding: utf-8 -*-
# Copyright: debvirt.cluster developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

import pytest
import yaml
from ansible import constants as C
from ansible.inventory.data import InventoryData
from ansible.parsing.dataloader import DataLoader
from ansible.plugins.loader import fragment_loader
from ansible.utils.plugin_docs import get_docstring

from ansible_collections.debvirt.cluster.plugins.inventory import guests

NAME = "debvirt.cluster.guests"


def _register_options():
    # What the plugin loader does when it loads a plugin by name. Loading by name would need
    # Ansible's collection finder, which cannot be installed once the tests have imported
    # ansible_collections as a plain namespace package (as every other unit test here does).
    doc = get_docstring(guests.__file__, fragment_loader, verbose=False, ignore_errors=False)[0]
    C.config.initialize_plugin_configuration_definitions("inventory", NAME, doc["options"])


_register_options()


class Warnings:
    def __init__(self):
        self.messages = []
        self.verbose = []

    def warning(self, msg, *args, **kwargs):
        self.messages.append(msg)

    def vv(self, msg, *args, **kwargs):
        self.verbose.append(msg)


@pytest.fixture
def warnings(monkeypatch):
    collected = Warnings()
    monkeypatch.setattr(guests, "display", collected)
    return collected.messages


@pytest.fixture
def inventory(tmp_path):
    """inventory(config, cache=True): the InventoryData that one run of the plugin builds."""
    def run(config, cache=True, name="test.guests.yml"):
        path = tmp_path / name
        path.write_text(yaml.safe_dump(dict({"plugin": NAME}, **config)))
        plugin = guests.InventoryModule()
        plugin._load_name = NAME
        assert plugin.verify_file(str(path))
        data = InventoryData()
        plugin.parse(data, DataLoader(), str(path), cache=cache)
        # As the inventory manager does after parse(): this is when the cache is written (and
        # without a cache plugin there is nothing to write, which it learns the same way).
        try:
            plugin.update_cache_if_changed()
        except AttributeError:
            pass
        return data
    return run
