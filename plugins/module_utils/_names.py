# -*- coding: utf-8 -*-
# Copyright: debvirt.cluster developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The names and values that reach libvirt or a path on the host, checked the same way for
every noun and every option that carries one.

Each check raises InvalidSpec naming the option (where, such as "disks[0].volume"), so that
what libvirt or the host would refuse in the real run is refused before anything is touched,
in check mode as well.
"""

from __future__ import annotations

import ipaddress
import os
import re

from ansible_collections.debvirt.cluster.plugins.module_utils._errors import InvalidSpec

# fullmatch everywhere, never match with "$": "$" would let a trailing newline through.
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.+-]{0,62}")
# A volume's name is a file name in a directory pool: libvirt refuses "/", and "." and ".."
# would name the pool's directory or its parent.
_VOLUME = re.compile(r"[A-Za-z0-9_.+-][A-Za-z0-9_.+:@-]{0,254}")
# Linux: at most 15 bytes (IFNAMSIZ - 1), no "/", ":" or blanks, never "." or "..".
_IFNAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,14}")
_LABEL = r"(?!-)[A-Za-z0-9-]{1,63}(?<!-)"
_HOSTNAME = re.compile(r"%s(?:\.%s)*" % (_LABEL, _LABEL))
_MAC = re.compile(r"([0-9a-f]{2}:){5}[0-9a-f]{2}")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
# What XML 1.0 can carry in text and attributes; lxml raises ValueError on the rest, which
# would surface only when the definition is written, after volumes were made.
_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")

# The most CPUs a Linux host can have (x86-64 NR_CPUS), more than any machine type takes.
# libvirt 9.0's LXC driver checks no bound: a definition with 2**31 vCPUs crashed libvirtd.
MAX_CPUS = 8192
# libvirt keeps memory in bytes in a signed 64-bit number and refuses more.
MAX_MEMORY_MIB = (2 ** 63 - 1) // 2 ** 20
# A host name is also the kernel's (sethostname takes at most 64 bytes).
HOST_NAME_MAX = 64


# (lowest, highest, whose limit the highest is) of the numbers guests and containers share.
MEMORY_LIMITS = (1, MAX_MEMORY_MIB, " MiB (libvirt's limit)")
CPU_LIMITS = (1, MAX_CPUS, " (the most CPUs a Linux host has)")
TIMEOUT_LIMITS = (0, None, "")


def _invalid(where, what):
    return "%s: invalid %s" % (where, what) if where else "Invalid %s" % what


def check_name(noun, name, where=None):
    """The name of a guest, container, network, storage pool or fleet, as the modules that
    define them accept it."""
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise InvalidSpec("%s: use letters, digits and _.+- (at most 63 characters, starting with a "
                          "letter or digit)" % _invalid(where, "%s name %r" % (noun, name)))


def check_volume_name(name, where=None):
    if not isinstance(name, str) or not _VOLUME.fullmatch(name) or name in (".", ".."):
        raise InvalidSpec("%s: use letters, digits and _.+-:@ (at most 255 characters, not starting "
                          "with : or @, and not . or ..)" % _invalid(where, "volume name %r" % (name,)))


def check_ifname(name, where):
    """A network interface's name on the host (a bridge) or in a container."""
    if not isinstance(name, str) or not _IFNAME.fullmatch(name):
        raise InvalidSpec("%s: %r is not a Linux interface name (1 to 15 letters, digits and _.-, "
                          "starting with a letter, digit or _)" % (where, name))


def check_hostname(name, where, longest=253):
    if not isinstance(name, str) or len(name) > longest or not _HOSTNAME.fullmatch(name):
        raise InvalidSpec("%s: %r is not a valid host name (dot-separated labels of letters, digits and "
                          "-, at most %d characters)" % (where, name, longest))


def check_address(addr, where):
    """A host name, IPv4 or IPv6 literal, as corosync.conf, ssh's known_hosts and config and
    /etc/hosts take a host: anything else (a newline, a blank, a brace, a '#') could add a
    line, a section or a host pattern to those files."""
    if isinstance(addr, str) and "%" not in addr:
        try:
            ipaddress.ip_address(addr)
            return
        except ValueError:
            pass
    if not isinstance(addr, str) or len(addr) > 253 or not _HOSTNAME.fullmatch(addr):
        raise InvalidSpec("%s: %r is not a host name (dot-separated labels of letters, digits and -) or an "
                          "IPv4 or IPv6 address" % (where, addr))


def is_loopback(addr, names=("localhost",)):
    """Whether addr is a loopback address, or one of names; any other host name may resolve
    anywhere."""
    if addr in names:
        return True
    try:
        return ipaddress.ip_address(addr).is_loopback
    except ValueError:
        return False


def is_mac(text):
    """A MAC address in libvirt's lower-case colon form."""
    return bool(_MAC.fullmatch(text))


def check_mac(mac, where):
    """A guest's or container's own MAC address, returned in libvirt's form."""
    norm = mac.lower() if isinstance(mac, str) else ""
    if not is_mac(norm) or int(norm[:2], 16) & 1:
        raise InvalidSpec("%s: %r is not a unicast MAC address" % (where, mac))
    return norm


def check_nic(nic, where):
    """A guest's or container's interface: its source, a libvirt network or a host bridge, and its
    MAC, returned in libvirt's form (None when not given)."""
    if bool(nic.get("network")) == bool(nic.get("bridge")):
        raise InvalidSpec("%s needs exactly one of network or bridge" % where)
    if nic.get("network"):
        check_name("network", nic["network"], where + ".network")
    else:
        check_ifname(nic["bridge"], where + ".bridge")
    return None if nic.get("mac") is None else check_mac(nic["mac"], where + ".mac")


def check_text(value, where, empty=True):
    """Text that goes into libvirt's XML. The value is not quoted: it may be a secret."""
    if not isinstance(value, str):
        raise InvalidSpec("%s must be text, got %s" % (where, type(value).__name__))
    if not empty and not value.strip():
        raise InvalidSpec("%s must not be empty" % where)
    if _NOT_XML.search(value):
        raise InvalidSpec("%s holds control characters, which libvirt's XML cannot carry" % where)


def check_path(path, where):
    """An absolute path on the host or in a container, as libvirt and the host take it."""
    if not isinstance(path, str) or not os.path.isabs(path):
        raise InvalidSpec("%s must be an absolute path, got %r" % (where, path))
    if _CONTROL.search(path) or _NOT_XML.search(path):
        raise InvalidSpec("%s %r holds control characters" % (where, path))


def check_values(params, limits, texts=(), words=(), paths=()):
    """A request's scalar options and its tags: numbers within their (lowest, highest, why) of
    limits, text that libvirt's XML can carry (words: not empty either), absolute paths."""
    for field, (low, high, why) in limits.items():
        if params.get(field) is not None:
            check_int(params[field], field, low, high, why)
    for field in texts + words:
        if params.get(field) is not None:
            check_text(params[field], field, empty=field not in words)
    for field in paths:
        if params.get(field):  # "" unsets kernel or initrd
            check_path(params[field], field)
    for index, tag in enumerate(params.get("tags") or []):
        check_text(tag, "tags[%d]" % index, empty=False)


def check_int(value, where, low, high=None, why=""):
    """low <= value <= high; why says whose limit high is."""
    if value < low:
        raise InvalidSpec("%s must be at least %d, got %s" % (where, low, value))
    if high is not None and value > high:
        raise InvalidSpec("%s must be at most %d%s, got %s" % (where, high, why, value))


_SIZE_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([KMGTP]?)(i?B?)\s*$", re.IGNORECASE)


def size_bytes(value, where):
    """A size given as bytes or as text such as 10G or 512MiB, in bytes; positive."""
    if isinstance(value, int):
        size = value
    else:
        m = _SIZE_RE.match(str(value))
        if not m:
            raise InvalidSpec("%s: size %r is not a size like 10G or 512MiB" % (where, value))
        size = int(float(m.group(1)) * 1024 ** " KMGTP".index(m.group(2).upper() or " "))
    if size <= 0:
        raise InvalidSpec("%s: size must be positive, got %r" % (where, value))
    return size
