# -*- coding: utf-8 -*-
# Copyright: debvirt.cluster developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

import gc
import os
import sys
from urllib.parse import parse_qs, urlparse

import libvirt
import pytest

from ansible_collections.debvirt.cluster.plugins.module_utils import _container, _lock, _rootfs

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


# --- hermetic: nothing of this machine's own state --------------------------------------------
# What the collection reads of the host it runs on. A unit test that read the real ones would
# pass or fail with whatever the roles, an earlier run or a lab left there (a new machine has no
# subordinate IDs for root, no cached templates, no corosync.conf).
MACHINE_PATHS = ("/etc/subuid", "/etc/subgid", "/etc/corosync", "/etc/libvirt", "/etc/network",
                 "/var/cache/debvirt", "/var/lib/debvirt", "/var/lib/libvirt", "/var/lib/pacemaker",
                 "/run/libvirt")
# The drivers of this machine's libvirtd; test:// and URIs that cannot reach a daemon are fine.
DAEMON_DRIVERS = ("qemu", "lxc", "network", "storage")


class _Guard:
    active = False


def _machine_path(path):
    if isinstance(path, bytes):
        path = os.fsdecode(path)
    if not isinstance(path, str):
        return None
    path = os.path.normpath(os.path.join(os.getcwd(), path)) if not os.path.isabs(path) else os.path.normpath(path)
    return next((p for p in MACHINE_PATHS if path == p or path.startswith(p + "/")), None)


def _refuse_machine_reads(event, args):
    # An audit hook cannot be removed, so it stays installed and only acts inside a test.
    if not _Guard.active or event not in ("open", "os.listdir", "os.scandir"):
        return
    if args and _machine_path(args[0]):
        _Guard.active = False  # the failure report itself may read files
        raise AssertionError("a unit test read %s of this machine: give it a tmp_path copy through a "
                             "fixture (see host_files in tests/unit/conftest.py)" % args[0])


sys.addaudithook(_refuse_machine_reads)


def _reaches_a_daemon(uri):
    parsed = urlparse(uri or "")
    if parsed.scheme.split("+")[0] not in DAEMON_DRIVERS:
        return False
    socket = parse_qs(parsed.query).get("socket", [None])[0]
    return socket is None or os.path.exists(socket)


@pytest.fixture(autouse=True)
def host_files(tmp_path_factory, monkeypatch):
    """The host paths the collection reads, as a host after role node has them, in a tmp dir.

    A subordinate ID range for root in subuid/subgid, empty template, image and container
    directories. A test that wants another state writes these files. (corosync.conf names a
    member's file too, so the tests that read it locally point it at their own copy.)
    """
    root = tmp_path_factory.mktemp("host")
    (root / "subuid").write_text("root:100000:65536\n")
    (root / "subgid").write_text("root:100000:65536\n")
    monkeypatch.setattr(_container, "SUBUID", str(root / "subuid"))
    monkeypatch.setattr(_container, "SUBGID", str(root / "subgid"))
    for name in ("TEMPLATE_DIR", "IMAGE_DIR", "CONTAINER_DIR"):
        monkeypatch.setattr(_rootfs, name, str(root / name.lower()))
    # The guests' locks: root's runtime directory is this machine's, shared with real runs.
    monkeypatch.setattr(_lock, "RUN_DIR", str(root / "locks"))

    def refuse(real):
        def open_(uri=None, *args):
            if _reaches_a_daemon(uri):
                raise AssertionError("a unit test connected to this machine's libvirtd (%s): use "
                                     "driver_uri or test:///default" % uri)
            return real(uri, *args)
        return open_

    for name in ("open", "openReadOnly", "openAuth"):
        monkeypatch.setattr(libvirt, name, refuse(getattr(libvirt, name)))
    _Guard.active = True
    yield root
    _Guard.active = False
