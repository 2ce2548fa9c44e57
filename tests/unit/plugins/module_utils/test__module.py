# -*- coding: utf-8 -*-
# Copyright: debvirt.cluster developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The options every module takes from LibvirtModule, checked before anything is touched."""

from __future__ import annotations

import json
from unittest import mock

import pytest
from ansible.module_utils import _internal
from ansible.module_utils.testing import patch_module_args

from ansible_collections.debvirt.cluster.plugins.module_utils import _module
from ansible_collections.debvirt.cluster.plugins.modules import guest, storage_pool, volume


def run(module, args, capsys):
    with mock.patch.object(_internal, "is_controller", False), patch_module_args(args):
        with pytest.raises(SystemExit) as e:
            module.main()
    return e.value.code, json.loads(capsys.readouterr().out)


@pytest.mark.parametrize("module, args", [
    (guest, {"name": "dvtest-x", "state": "absent"}),
    (volume, {"name": "x.qcow2", "pool": "default-pool", "state": "absent"}),
    (storage_pool, {"name": "default-pool", "state": "absent", "delete_data": True}),
])
@pytest.mark.parametrize("timeout", [0, -5])
@pytest.mark.parametrize("check_mode", [True, False])
def test_a_connect_timeout_below_one_second_is_refused_before_any_connection(capsys, module, args, timeout, check_mode):
    opened = mock.Mock(side_effect=AssertionError("a connection was opened"))
    with mock.patch.object(_module, "LibvirtClient", opened):
        rc, result = run(module, dict(args, uri="test:///default", connect_timeout=timeout,
                                      _ansible_check_mode=check_mode), capsys)
    assert (rc, result["failed"]) == (1, True)
    assert result["msg"] == "connect_timeout must be at least 1 second, got %d; nothing was changed" % timeout
    assert not opened.called


def test_one_second_is_enough(capsys):
    rc, result = run(volume, {"name": "x.qcow2", "pool": "default-pool", "state": "absent",
                              "uri": "test:///default", "connect_timeout": 1}, capsys)
    assert (rc, result["changed"]) == (0, False), result
