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


class LiveXMLClient(LibvirtClient):
    """The test driver keeps one definition of a pool or network, no inactive one: read the live
    XML where the modules ask for the inactive. That a change reaches both is checked on the real
    daemon (integration targets storage_pool and network)."""

    def pool_xml(self, pool, inactive=True):
        return super().pool_xml(pool, inactive=False)

    def network_xml(self, net, inactive=True):
        return super().network_xml(net, inactive=False)


@pytest.fixture
def live_client(driver_uri):
    c = LiveXMLClient(driver_uri)
    yield c
    c.close()
