# -*- coding: utf-8 -*-
# Copyright: debvirt.cluster developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

import libvirt
import pytest

from ansible_collections.debvirt.cluster.plugins.module_utils._client import LibvirtClient

TEST_URI = "test:///default"


def reset_test_driver(conn):
    """Put the stock objects back the way the test driver starts.

    The driver keeps one state per process for as long as any connection to it is open, and
    every domain or volume object holds its connection open (a failed test's traceback keeps
    them alive for a while), so closing is not enough to give the next test a fresh driver.
    """
    for dom in conn.listAllDomains(0):
        if dom.name() == "test":
            continue
        if dom.isActive():
            dom.destroy()
        dom.undefine()
    pool = conn.storagePoolLookupByName("default-pool")
    if not pool.isActive():
        pool.create(0)
    for vol in pool.listAllVolumes(0):
        vol.delete(0)
    net = conn.networkLookupByName("default")
    if not net.isActive():
        net.create()
    test = conn.lookupByName("test")
    state = test.state()[0]
    if state == libvirt.VIR_DOMAIN_PAUSED:
        test.resume()
    elif state != libvirt.VIR_DOMAIN_RUNNING:
        test.create()


@pytest.fixture
def client():
    """A client of libvirt's test driver holding only the driver's stock objects."""
    c = LibvirtClient(TEST_URI)
    assert [d.name() for d in c.domains()] == ["test"], "a previous test left guests in the test driver"
    yield c
    reset_test_driver(c.conn)
    c.close()
