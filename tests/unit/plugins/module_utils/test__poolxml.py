# -*- coding: utf-8 -*-
# Copyright: debvirt.cluster developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The pool model's parsing of source hosts; its documents are checked through _pool's specs
in test__pool.py."""

from __future__ import annotations

import pytest

from ansible_collections.debvirt.cluster.plugins.module_utils._poolxml import split_host


@pytest.mark.parametrize("host, expected", [
    ("mon1", ("mon1", None)), ("mon1:6789", ("mon1", 6789)), ("[fd00::1]:3260", ("fd00::1", 3260)),
    ("fd00::1", ("fd00::1", None)),
])
def test_split_host(host, expected):
    assert split_host(host) == expected
