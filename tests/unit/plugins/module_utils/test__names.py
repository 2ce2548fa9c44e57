# -*- coding: utf-8 -*-
# Copyright: debvirt.cluster developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The shared checks of names and values: tables of what each refuses, with its message, and of
what it lets through. The modules' own tables (test__guest, test__container, test__fleet,
test__volume) show the same checks naming their options."""

from __future__ import annotations

import pytest

from ansible_collections.debvirt.cluster.plugins.module_utils import _names as N
from ansible_collections.debvirt.cluster.plugins.module_utils._errors import InvalidSpec


def refused(func, *args):
    with pytest.raises(InvalidSpec) as e:
        func(*args)
    return e.value.msg


VOLUME_RULE = "use letters, digits and _.+-:@ (at most 255 characters, not starting with : or @, and not . or ..)"


@pytest.mark.parametrize("name", ["../x.qcow2", "a/b", "/abs.qcow2", ".", "..", "", ":a", "@a", "a b", "a\n",
                                  "x" * 256, "\u00e9.qcow2", None])
def test_volume_names_refused(name):
    assert refused(N.check_volume_name, name, "disks[0].volume") == \
        "disks[0].volume: invalid volume name %r: %s" % (name, VOLUME_RULE)


def test_volume_name_message_without_an_option():
    assert refused(N.check_volume_name, "a/b") == "Invalid volume name 'a/b': " + VOLUME_RULE


@pytest.mark.parametrize("name", ["x.qcow2", "web01-root.qcow2", "..x", "a:b@c", "-a", "_", "x" * 255, "A+B.raw"])
def test_volume_names_accepted(name):
    N.check_volume_name(name, "volume")


@pytest.mark.parametrize("name", ["a b", "a/b", "", "-a", ".a", "a" * 64, "a\n", None])
def test_object_names_refused(name):
    assert refused(N.check_name, "storage pool", name, "disks[1].pool") == \
        ("disks[1].pool: invalid storage pool name %r: use letters, digits and _.+- (at most 63 characters, "
         "starting with a letter or digit)" % (name,))


@pytest.mark.parametrize("name", ["", "a" * 16, "a/b", "../../tmp", "a b", ".", "..", "-x", ".x", "br0\n", "br:0",
                                  "\u00e9t0", None])
def test_interface_names_refused(name):
    assert refused(N.check_ifname, name, "interfaces[0].bridge") == \
        ("interfaces[0].bridge: %r is not a Linux interface name (1 to 15 letters, digits and _.-, "
         "starting with a letter, digit or _)" % (name,))


@pytest.mark.parametrize("name", ["br0", "virbr0", "br-lan", "br0.100", "_x", "0br", "a" * 15])
def test_interface_names_accepted(name):
    N.check_ifname(name, "bridge")


@pytest.mark.parametrize("name, longest", [
    ("-a", 253), ("a-", 253), ("a..b", 253), ("a_b", 253), ("a" * 64, 253), ("ct1\n", 253), ("", 253),
    (".a", 253), ("a b", 253), ("a." * 32 + "a", 64), (None, 253),
])
def test_host_names_refused(name, longest):
    assert refused(N.check_hostname, name, "hostname", longest) == \
        ("hostname: %r is not a valid host name (dot-separated labels of letters, digits and -, at most %d "
         "characters)" % (name, longest))


@pytest.mark.parametrize("name", ["ct1", "web-01.example.org", "a" * 63, "0", "localhost"])
def test_host_names_accepted(name):
    N.check_hostname(name, "hostname", 64)


ADDRESS_RULE = "is not a host name (dot-separated labels of letters, digits and -) or an IPv4 or IPv6 address"


@pytest.mark.parametrize("addr", ["10.0.0.1\n}", "10.0.0.1\nnode {", "a b", "10.0.0.1 ", "{", "}", "#x", "x#y",
                                  "node1\n", "", "fe80::1%eth0\n", "fe80::1%eth0", "[::1]", "a,b", "*", "-a",
                                  "x" * 254, None, 1])
def test_addresses_refused(addr):
    assert refused(N.check_address, addr, "addresses[0]") == "addresses[0]: %r %s" % (addr, ADDRESS_RULE)


@pytest.mark.parametrize("addr", ["10.0.0.1", "2001:db8::1", "::1", "::ffff:10.0.0.1", "node1", "n1.example.org",
                                  "localhost"])
def test_addresses_accepted(addr):
    N.check_address(addr, "addresses[0]")


@pytest.mark.parametrize("mac", ["01:00:5e:00:00:01", "52:54:00:00:00:01\n", "52:54:00:00:01", "52-54-00-00-00-01",
                                 "52:54:00:zz:00:01", None])
def test_macs_refused(mac):
    assert refused(N.check_mac, mac, "interfaces[0].mac") == \
        "interfaces[0].mac: %r is not a unicast MAC address" % (mac,)


def test_mac_is_returned_in_libvirts_form():
    assert N.check_mac("52:54:00:AB:CD:EF", "mac") == "52:54:00:ab:cd:ef"


@pytest.mark.parametrize("nic, message", [
    ({}, "interfaces[2] needs exactly one of network or bridge"),
    ({"network": "default", "bridge": "br0"}, "interfaces[2] needs exactly one of network or bridge"),
    ({"network": "my net"}, "interfaces[2].network: invalid network name 'my net'"),
    ({"bridge": "a/b"}, "interfaces[2].bridge: 'a/b' is not a Linux interface name"),
    ({"bridge": "br0", "mac": "ff:ff:ff:ff:ff:ff"}, "interfaces[2].mac: 'ff:ff:ff:ff:ff:ff' is not a unicast MAC"),
])
def test_interfaces_refused(nic, message):
    assert refused(N.check_nic, nic, "interfaces[2]").startswith(message)


def test_interfaces_accepted():
    assert N.check_nic({"network": "default"}, "interfaces[0]") is None
    assert N.check_nic({"bridge": "br0.100", "mac": "52:54:00:AA:00:01"}, "interfaces[0]") == "52:54:00:aa:00:01"


@pytest.mark.parametrize("value, empty, message", [
    ("a\x01b", True, "description holds control characters, which libvirt's XML cannot carry"),
    ("\x00", True, "description holds control characters, which libvirt's XML cannot carry"),
    ("\ufffe", True, "description holds control characters, which libvirt's XML cannot carry"),
    ("", False, "description must not be empty"),
    ("  ", False, "description must not be empty"),
    (5, True, "description must be text, got int"),
])
def test_text_refused(value, empty, message):
    assert refused(N.check_text, value, "description", empty) == message


def test_text_refused_does_not_quote_a_secret():
    assert "s3cr\x07t" not in refused(N.check_text, "s3cr\x07t", "graphics.password")


@pytest.mark.parametrize("value", ["", "line one\nline two\ttabbed\r", "gr\u00f6\u00dfe \u2603 \U0001f600"])
def test_text_accepted(value):
    N.check_text(value, "description")


@pytest.mark.parametrize("path, message", [
    ("relative.qcow2", "disks[0].path must be an absolute path, got 'relative.qcow2'"),
    ("", "disks[0].path must be an absolute path, got ''"),
    (None, "disks[0].path must be an absolute path, got None"),
    ("/srv/a\nb", "disks[0].path '/srv/a\\nb' holds control characters"),
    ("/srv/a\x00b", "disks[0].path '/srv/a\\x00b' holds control characters"),
])
def test_paths_refused(path, message):
    assert refused(N.check_path, path, "disks[0].path") == message


@pytest.mark.parametrize("path", ["/srv/a b.qcow2", "/dev/sdb", "/var/lib/libvirt/images/../x.iso", "/"])
def test_paths_accepted(path):
    N.check_path(path, "disks[0].path")


@pytest.mark.parametrize("value, low, high, why, message", [
    (0, 1, None, "", "vcpus must be at least 1, got 0"),
    (-1, 0, None, "", "vcpus must be at least 0, got -1"),
    (8193, 1, 8192, " (the most CPUs a Linux host has)", "vcpus must be at most 8192 (the most CPUs a Linux host has), got 8193"),
])
def test_numbers_refused(value, low, high, why, message):
    assert refused(N.check_int, value, "vcpus", low, high, why) == message


def test_limits_are_those_libvirt_and_linux_keep():
    assert N.MAX_MEMORY_MIB * 2 ** 20 <= 2 ** 63 - 1 < (N.MAX_MEMORY_MIB + 1) * 2 ** 20
    limits = {"memory": N.MEMORY_LIMITS, "vcpus": N.CPU_LIMITS, "other": N.CPU_LIMITS}
    N.check_values({"memory": N.MAX_MEMORY_MIB, "vcpus": N.MAX_CPUS, "other": None}, limits)
    assert refused(N.check_values, {"memory": N.MAX_MEMORY_MIB + 1}, limits) == \
        "memory must be at most %d MiB (libvirt's limit), got %d" % (N.MAX_MEMORY_MIB, N.MAX_MEMORY_MIB + 1)


@pytest.mark.parametrize("params, message", [
    ({"description": "a\x01"}, "description holds control characters, which libvirt's XML cannot carry"),
    ({"machine": ""}, "machine must not be empty"),
    ({"kernel": "vmlinuz"}, "kernel must be an absolute path, got 'vmlinuz'"),
    ({"tags": ["web", ""]}, "tags[1] must not be empty"),
    ({"tags": ["a\x1b[31m"]}, "tags[0] holds control characters, which libvirt's XML cannot carry"),
])
def test_values_refused(params, message):
    assert refused(N.check_values, params, {}, ("description",), ("machine",), ("kernel",)) == message


def test_values_accepted():
    N.check_values({"description": "", "machine": "q35", "kernel": "", "tags": ["web", "prod eu"]}, {},
                   ("description",), ("machine",), ("kernel",))
    N.check_values({"tags": None, "description": None, "machine": None, "kernel": None}, {},
                   ("description",), ("machine",), ("kernel",))


@pytest.mark.parametrize("value, size", [(512, 512), ("10G", 10 * 1024 ** 3), ("512MiB", 512 * 1024 ** 2),
                                         ("1.5K", 1536), (" 3 TB ", 3 * 1024 ** 4)])
def test_sizes_in_bytes(value, size):
    assert N.size_bytes(value, "capacity") == size


@pytest.mark.parametrize("value", ["ten", "10X", "", 0, -1, "0G"])
def test_sizes_refused(value):
    with pytest.raises(InvalidSpec, match="^capacity: size"):
        N.size_bytes(value, "capacity")
