# -*- coding: utf-8 -*-
# Copyright: debvirt.cluster developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

import pytest

from ansible_collections.debvirt.cluster.plugins.module_utils._client import LibvirtClient


@pytest.fixture
def client(driver_uri):
    """A client of libvirt's test driver holding only the driver's stock objects, its own copy."""
    c = LibvirtClient(driver_uri)
    assert [d.name() for d in c.domains()] == ["test"], "the test driver does not start with its stock guest only"
    yield c
    c.close()
