# -*- coding: utf-8 -*-
# Copyright: debvirt.cluster developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

import gc

import pytest

# The stock objects of test:///default that the tests use, as libvirt 9.0 reports them.
#
# test:///default keeps one state per process for as long as any connection to it is open, and
# a domain, pool or volume object holds its connection open (a failed test's traceback keeps
# them alive for a while): what one test file leaves there, the next one finds. A connection
# to a file URI instead gets its own copy of the file's objects, so a test that only needs the
# stock objects cannot see another test's, whatever the order.
DEFAULT_NODE = """\
<node>
  <domain type='test'>
    <name>test</name>
    <uuid>6695eb01-f6a4-8304-79aa-97f2502e193f</uuid>
    <memory unit='KiB'>8388608</memory>
    <currentMemory unit='KiB'>2097152</currentMemory>
    <vcpu placement='static'>2</vcpu>
    <os><type>hvm</type></os>
    <devices>
      <disk type='file' device='disk'>
        <source file='/guest/diskimage1'/>
        <target dev='vda' bus='virtio'/>
      </disk>
      <interface type='network'>
        <mac address='aa:bb:cc:dd:ee:ff'/>
        <source network='default'/>
        <target dev='testnet0'/>
      </interface>
      <memballoon model='virtio'/>
    </devices>
  </domain>
  <network>
    <name>default</name>
    <uuid>dd8fe884-6c02-601e-7551-cca97df1c5df</uuid>
    <forward mode='nat'/>
    <bridge name='virbr0' stp='on' delay='0'/>
    <ip address='192.168.122.1' netmask='255.255.255.0'>
      <dhcp>
        <range start='192.168.122.2' end='192.168.122.254'/>
      </dhcp>
    </ip>
  </network>
  <pool type='dir'>
    <name>default-pool</name>
    <uuid>dfe224cb-28fb-8dd0-c4b2-64eb3f0f4566</uuid>
    <target><path>/default-pool</path></target>
  </pool>
</node>
"""


@pytest.fixture
def driver_uri(tmp_path):
    """A test driver URI with test:///default's stock objects, private to each connection.

    Two connections to it do not share state either: a test whose code under test opens its own
    connection, and that needs to see the result of it from another, needs test:///default.
    """
    path = tmp_path / "test-driver.xml"
    path.write_text(DEFAULT_NODE)
    return "test://%s" % path


# libvirt-python builds a libvirtError by reading libvirt's last error after the failed call
# returned, and allocating it can run the cyclic garbage collector. If that frees a domain,
# pool or connection an earlier test left in a reference cycle (a traceback's frames, say),
# its finalizer calls libvirt, which clears the last error: a "not found" then arrives with no
# error code and LibvirtClient.find() takes it for a failure. Collecting before each test frees
# those objects where nothing is waiting for an error.
#
# Freezing what the imports made keeps the collection before each test cheap: without it, the
# suite takes five times as long, scanning Ansible's modules again and again.
@pytest.fixture(scope="session", autouse=True)
def _freeze_what_the_imports_made():
    gc.collect()
    gc.freeze()
    yield
    gc.unfreeze()


@pytest.fixture(autouse=True)
def _collect_garbage_first():
    gc.collect()
