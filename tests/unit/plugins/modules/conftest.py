# -*- coding: utf-8 -*-
# Copyright: debvirt.cluster developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Running a module's main() in-process against libvirt's test driver."""

from __future__ import annotations

import json
from unittest import mock

import libvirt
import pytest
from ansible.module_utils import _internal
from ansible.module_utils.common import warnings as ansible_warnings
from ansible.module_utils.testing import patch_module_args

TEST_URI = "test:///default"


@pytest.fixture
def module_run(capsys):
    """run(module, args) -> (exit code, parsed result, raw output) of one run of module.main()."""
    def run(module, args):
        # As in the module's own process on a node: importing any controller code (the inventory
        # tests do) marks the process as the controller, and warn() would then print warnings
        # instead of returning them. Ansible also keeps them for the whole process; restored,
        # they reach no later run.
        with mock.patch.object(_internal, "is_controller", False), patch_module_args(args), \
                mock.patch.dict(ansible_warnings._global_warnings):
            with pytest.raises(SystemExit) as e:
                module.main()
        out = capsys.readouterr().out
        return e.value.code, json.loads(out), out
    return run


@pytest.fixture
def default_driver():
    """A connection that keeps test:///default's state from one module run to the next (the driver
    forgets everything when its last connection closes, and a module closes its own); what the
    test made there is removed after it."""
    conn = libvirt.open(TEST_URI)
    yield conn
    for dom in conn.listAllDomains(0):
        if dom.name() != "test":
            if dom.isActive():
                dom.destroy()
            dom.undefine()
    for vol in conn.storagePoolLookupByName("default-pool").listAllVolumes(0):
        vol.delete(0)
    conn.close()
