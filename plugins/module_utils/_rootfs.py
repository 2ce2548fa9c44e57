# -*- coding: utf-8 -*-
# Copyright: debvirt.cluster developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Containers' root filesystems on the host: Debian templates, image tarballs, ID shifting and
the few configuration files written into a rootfs (hostname, network addressing).

This works on the host's own filesystem, so the tasks that use it run on the host itself.
Nothing here decides anything: _container plans, and calls these only when applying.
"""

from __future__ import annotations

import errno
import hashlib
import ipaddress
import os
import platform
import re
import secrets
import shutil
import stat
import struct
import subprocess
import tempfile
from urllib.parse import urlparse

from ansible_collections.debvirt.cluster.plugins.module_utils._errors import DebvirtError, InvalidSpec

TEMPLATE_DIR = "/var/cache/debvirt/templates"
IMAGE_DIR = "/var/cache/debvirt/images"
CONTAINER_DIR = "/var/lib/debvirt/containers"
MOUNTINFO = "/proc/self/mountinfo"
DEBIAN_MIRROR = "http://deb.debian.org/debian"
# minbase lacks an init and Debian's network configuration, which a system container needs.
DEBIAN_INCLUDE = ("systemd-sysv", "ifupdown", "isc-dhcp-client", "iproute2", "netbase")
CHECKSUM_ALGORITHMS = ("sha256", "sha384", "sha512")
_ARCHES = {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "armhf", "i686": "i386",
           "ppc64le": "ppc64el", "s390x": "s390x"}

HOSTNAME_FILE = "etc/hostname"
IFUPDOWN_FILE = "etc/network/interfaces"
NETWORKD_DIR = "etc/systemd/network"
NETWORKD_WANTS = "etc/systemd/system/multi-user.target.wants/systemd-networkd.service"
NETWORKD_UNIT = "/lib/systemd/system/systemd-networkd.service"
_HEADER = "# Written by debvirt.cluster for container %s; edits here are overwritten.\n"


def host_arch():
    return _ARCHES.get(platform.machine(), platform.machine())


def template_path(release, arch):
    return os.path.join(TEMPLATE_DIR, "debian-%s-%s" % (release, arch))


def is_url(source):
    return urlparse(source).scheme in ("http", "https")


def parse_checksum(value, where="rootfs.checksum"):
    """(algorithm, hex digest); raises InvalidSpec."""
    algo, sep, digest = (value or "").partition(":")
    algo = algo.lower()
    if not sep or algo not in CHECKSUM_ALGORITHMS:
        raise InvalidSpec("%s %r is not ALGORITHM:HEX with one of %s"
                          % (where, value, ", ".join(CHECKSUM_ALGORITHMS)))
    digest = digest.lower()
    if not re.match(r"^[0-9a-f]{%d}$" % (hashlib.new(algo).digest_size * 2), digest):
        raise InvalidSpec("%s: %r is not a %s digest" % (where, digest, algo))
    return algo, digest


def file_digest(path, algo):
    h = hashlib.new(algo)
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def image_cache_path(url, checksum):
    algo, digest = parse_checksum(checksum)
    base = os.path.basename(urlparse(url).path) or "image"
    # Named by content, so a changed checksum means a new download and equal images share one file.
    return os.path.join(IMAGE_DIR, "%s-%s-%s" % (algo, digest[:32], base))


def non_empty_dir(path):
    try:
        return bool(os.listdir(path))
    except OSError:
        return False


def _partial_dir(parent, name):
    """A new directory beside where name is made, under a name of this run's own, mode 0755."""
    partial = tempfile.mkdtemp(dir=parent, prefix="%s.partial-" % name)
    os.chmod(partial, 0o755)
    return partial


# --- running tools ---------------------------------------------------------------------------
def _run(argv, what):
    try:
        proc = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, check=False)
    except OSError as e:
        raise DebvirtError("Failed to %s: cannot run %s: %s" % (what, argv[0], e)) from None
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).decode("utf-8", "replace").strip().splitlines()[-5:]
        raise DebvirtError("Failed to %s (%s exited %d): %s"
                           % (what, argv[0], proc.returncode, " / ".join(tail)))


# --- making a rootfs -------------------------------------------------------------------------
def build_template(release, arch, mirror):
    """Debootstrap a Debian release into the template cache, once; returns its path."""
    final = template_path(release, arch)
    if os.path.isdir(final):
        return final
    os.makedirs(TEMPLATE_DIR, mode=0o755, exist_ok=True)
    partial = _partial_dir(TEMPLATE_DIR, ".%s" % os.path.basename(final))
    try:
        _run(["debootstrap", "--variant=minbase", "--arch=" + arch,
              "--include=" + ",".join(DEBIAN_INCLUDE), release, partial, mirror or DEBIAN_MIRROR],
             "build the Debian %s template with debootstrap" % release)
        try:
            os.rename(partial, final)
        except OSError:
            # Another run finished the same template first; theirs is as good as ours.
            if not os.path.isdir(final):
                raise
    finally:
        shutil.rmtree(partial, ignore_errors=True)
    return final


def fetch_image(source, checksum, timeout=120):
    """A local path of the image: the given file, or the cached download of a URL."""
    if not is_url(source):
        if checksum:
            _verify(source, checksum)
        return source
    cached = image_cache_path(source, checksum)
    if os.path.exists(cached):
        return cached
    # Imported here: only a download needs it, and it pulls in much of ansible's module_utils.
    from ansible.module_utils.urls import open_url

    os.makedirs(IMAGE_DIR, mode=0o755, exist_ok=True)
    fd, part = tempfile.mkstemp(dir=IMAGE_DIR, prefix=".%s.part-" % os.path.basename(cached))
    try:
        try:
            os.fchmod(fd, 0o644)
            with os.fdopen(fd, "wb") as out:
                shutil.copyfileobj(open_url(source, timeout=timeout), out, 1 << 20)
        except Exception as e:  # open_url raises several unrelated types for one failure: a download that did not happen
            raise DebvirtError("Failed to download %s: %s" % (source, e)) from None
        _verify(part, checksum, source)
        os.rename(part, cached)
    finally:
        if os.path.exists(part):
            os.unlink(part)
    return cached


def _verify(path, checksum, label=None):
    algo, digest = parse_checksum(checksum)
    actual = file_digest(path, algo)
    if actual != digest:
        raise DebvirtError("Checksum mismatch for %s: expected %s:%s, got %s:%s"
                           % (label or path, algo, digest, algo, actual))


def create_rootfs(path, template=None, image=None, idmap=None):
    """Fill path from a template directory or an image tarball, shifted into idmap.

    The tree is built beside path and renamed into place at the end, so path never holds a
    half-made rootfs, and an existing non-empty path is never touched.
    """
    if non_empty_dir(path):
        raise DebvirtError("Root filesystem %s already exists; it is never overwritten" % path)
    parent = os.path.dirname(path.rstrip("/"))
    os.makedirs(parent, mode=0o755, exist_ok=True)
    partial = _partial_dir(parent, os.path.basename(path.rstrip("/")))
    try:
        if template is not None:
            _run(["cp", "-a", "--reflink=auto", template + "/.", partial],
                 "copy the template %s to %s" % (template, path))
        else:
            _run(["tar", "--numeric-owner", "--xattrs", "--xattrs-include=*", "-xpf", image, "-C", partial],
                 "unpack %s into %s" % (image, path))
        if idmap is not None:
            shift_ids(partial, idmap["uid"], idmap["gid"], idmap["count"])
        if os.path.isdir(path):
            os.rmdir(path)  # empty, as checked above
        os.rename(partial, path)
    finally:
        shutil.rmtree(partial, ignore_errors=True)


def mount_points(path):
    """The mount points at path or below it, as real paths."""
    real = os.path.realpath(path)
    below = real.rstrip("/") + "/"
    with open(MOUNTINFO, encoding="utf-8", errors="surrogateescape") as f:
        points = [_unescape(line.split()[4]) for line in f if line.strip()]
    return sorted(p for p in points if p == real or p.startswith(below))


def _unescape(field):
    # mountinfo writes space, tab, newline and backslash in a path as octal escapes.
    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), field)


def remove_tree(path, mounts=()):
    """Delete path and what is below it on its own file system; returns what was left: mount
    points and directories of other file systems, with all below them."""
    real = os.path.realpath(path)
    if real in mounts:
        return [real]
    left = []
    _remove_below(real, os.lstat(real).st_dev, set(mounts), left)
    if not left:
        os.rmdir(real)
    return left


def _remove_below(directory, dev, mounts, left):
    with os.scandir(directory) as it:
        entries = list(it)
    for entry in entries:
        if entry.path in mounts:
            left.append(entry.path)
        elif entry.is_dir(follow_symlinks=False):
            if entry.stat(follow_symlinks=False).st_dev != dev:
                left.append(entry.path)
                continue
            before = len(left)
            _remove_below(entry.path, dev, mounts, left)
            if len(left) == before:
                os.rmdir(entry.path)
        else:
            os.unlink(entry.path)


def remove_rootfs(path):
    """Delete a root filesystem directory without crossing into anything mounted in it."""
    left = remove_tree(path, mount_points(path))
    if left:
        raise DebvirtError("The root filesystem %s was deleted but for %s: another file system is mounted "
                           "there, and nothing in it was touched" % (path, ", ".join(sorted(left))))
    parent = os.path.dirname(path.rstrip("/"))
    if os.path.dirname(parent) == CONTAINER_DIR and not os.listdir(parent):
        os.rmdir(parent)


# --- user namespaces -------------------------------------------------------------------------
def shift_ids(root, uid, gid, count):
    """Move every owner in the tree from 0..count-1 to uid.. and gid.., as the container sees it."""
    seen = set()  # a hard-linked file is shifted once, not once per name
    _shift(root, uid, gid, count, seen)
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            _shift(os.path.join(dirpath, name), uid, gid, count, seen)


_SETID = stat.S_ISUID | stat.S_ISGID
_CAPS = "security.capability"


def _shift(path, uid, gid, count, seen):
    st = os.lstat(path)
    if st.st_nlink > 1 and not stat.S_ISDIR(st.st_mode):
        if (st.st_dev, st.st_ino) in seen:
            return
        seen.add((st.st_dev, st.st_ino))
    if st.st_uid >= count or st.st_gid >= count:
        raise DebvirtError("%s is owned by %d:%d, outside the container's %d mapped IDs"
                           % (path, st.st_uid, st.st_gid, count))
    caps = None
    if stat.S_ISREG(st.st_mode):
        try:
            caps = os.getxattr(path, _CAPS, follow_symlinks=False)
        except OSError:
            caps = None
    os.chown(path, st.st_uid + uid, st.st_gid + gid, follow_symlinks=False)
    # chown clears set-ID bits and file capabilities even for root: put them back.
    if not stat.S_ISLNK(st.st_mode) and st.st_mode & _SETID:
        os.chmod(path, stat.S_IMODE(st.st_mode))
    if caps:
        os.setxattr(path, _CAPS, namespaced_caps(caps, uid), follow_symlinks=False)


def namespaced_caps(raw, rootid):
    """File capabilities as a version 3 xattr owned by the container's root.

    Version 2 capabilities only count in the host's user namespace; the kernel honours a
    version 3 one in a namespace whose root is rootid.
    """
    if len(raw) < 20:
        return raw
    magic = struct.unpack("<I", raw[:4])[0]
    revision = magic & 0xFF000000
    if revision not in (0x02000000, 0x03000000):
        return raw
    return struct.pack("<I", (magic & 0x00FFFFFF) | 0x03000000) + raw[4:20] + struct.pack("<I", rootid)


def read_subids(path):
    """root's subordinate ranges from /etc/subuid or /etc/subgid: [(start, count)]."""
    ranges = []
    try:
        with open(path) as f:
            lines = f.read().splitlines()
    except OSError:
        return ranges
    for line in lines:
        parts = line.strip().split(":")
        if len(parts) == 3 and parts[0] in ("root", "0") and parts[1].isdigit() and parts[2].isdigit():
            ranges.append((int(parts[1]), int(parts[2])))
    return ranges


def covered(ranges, start, count):
    return any(s <= start and start + count <= s + c for s, c in ranges)


# --- files in the rootfs ---------------------------------------------------------------------
def network_format(root):
    """How the rootfs configures its network: "ifupdown", "networkd" or None."""
    def has(*rels):
        return any(os.path.lexists(os.path.join(root, r)) for r in rels)
    if has("sbin/ifup", "usr/sbin/ifup"):
        return "ifupdown"
    if has("lib/systemd/systemd-networkd", "usr/lib/systemd/systemd-networkd"):
        return "networkd"
    return None


def render_files(name, hostname, nics, fmt):
    """{path in the rootfs: content} for the managed files; ("link", target) is a symlink."""
    files = {}
    if hostname is not None:
        files[HOSTNAME_FILE] = hostname + "\n"
    addressed = [n for n in nics or [] if n.address is not None]
    if not addressed:
        return files
    if fmt == "ifupdown":
        text = _HEADER % name + "source /etc/network/interfaces.d/*\n\nauto lo\niface lo inet loopback\n"
        for nic in addressed:
            text += "\nauto %s\n" % nic.dev + _ifupdown_stanza(nic)
        files[IFUPDOWN_FILE] = text
    elif fmt == "networkd":
        for nic in addressed:
            files["%s/50-debvirt-%s.network" % (NETWORKD_DIR, nic.dev)] = _networkd_unit(name, nic)
        files[NETWORKD_WANTS] = ("link", NETWORKD_UNIT)
    return files


def _ifupdown_stanza(nic):
    if nic.address == "dhcp":
        return "iface %s inet dhcp\n" % nic.dev
    family = "inet6" if ipaddress.ip_interface(nic.address).version == 6 else "inet"
    text = "iface %s %s static\n    address %s\n" % (nic.dev, family, nic.address)
    if nic.gateway:
        text += "    gateway %s\n" % nic.gateway
    return text


def _networkd_unit(name, nic):
    text = _HEADER % name + "[Match]\nName=%s\n\n[Network]\n" % nic.dev
    if nic.address == "dhcp":
        return text + "DHCP=yes\n"
    text += "Address=%s\n" % nic.address
    if nic.gateway:
        text += "Gateway=%s\n" % nic.gateway
    return text


# Every edit walks the rootfs one directory file descriptor at a time and never follows a
# symlink: the container may run meanwhile, and its root can swap a directory for a link to the
# host between a check by path and a write by path.
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


def _open_root(root):
    # The root itself is followed: its path is the host's (rootfs.path may be a link the
    # administrator made), out of the container's reach; only what lies below it is not.
    return os.open(root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)


def _open_dir(root, rel_dir, owner=None):
    """A descriptor of directory rel_dir in root, reached without following any symlink; with
    owner (uid, gid), missing directories are made, mode 0755, owned by it."""
    parts = [p for p in rel_dir.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise DebvirtError("%s in the root filesystem %s leads outside it; not writing it" % (rel_dir, root))
    fd = _open_root(root)
    try:
        for depth, part in enumerate(parts, 1):
            made = False
            if owner is not None:
                try:
                    os.mkdir(part, 0o755, dir_fd=fd)
                    made = True
                except FileExistsError:
                    pass
            try:
                sub = os.open(part, _DIR_FLAGS, dir_fd=fd)
            except OSError as e:
                if e.errno in (errno.ELOOP, errno.ENOTDIR) and _is_link(part, fd):
                    raise DebvirtError("%s in the root filesystem %s leads outside it (a symlink); not writing it"
                                       % ("/".join(parts[:depth]), root)) from None
                raise
            os.close(fd)
            fd = sub
            if made:
                os.fchown(fd, *owner)
                os.fchmod(fd, 0o755)
    except BaseException:
        os.close(fd)
        raise
    return fd


def _is_link(name, dir_fd):
    try:
        return stat.S_ISLNK(os.lstat(name, dir_fd=dir_fd).st_mode)
    except OSError:
        return False


def read_files(root, rels):
    """The current content of each rel (None when missing); symlinks as ("link", target).
    A directory on the way that is a symlink raises, as a write there would."""
    out = {}
    for rel in rels:
        try:
            fd = _open_dir(root, os.path.dirname(rel))
        except (FileNotFoundError, NotADirectoryError):
            out[rel] = None
            continue
        try:
            out[rel] = _read_leaf(os.path.basename(rel), fd)
        finally:
            os.close(fd)
    return out


def _read_leaf(name, dir_fd):
    try:
        if _is_link(name, dir_fd):
            return ("link", os.readlink(name, dir_fd=dir_fd))
        fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, dir_fd=dir_fd)
    except OSError:
        return None
    with os.fdopen(fd, encoding="utf-8", errors="replace") as f:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return None
        return f.read()


def write_files(root, files):
    """Write files into the rootfs, owned like its root directory (the container's root)."""
    fd = _open_root(root)
    try:
        st = os.fstat(fd)
    finally:
        os.close(fd)
    for rel, content in sorted(files.items()):
        try:
            dir_fd = _makedirs(root, os.path.dirname(rel), st)
            try:
                _replace(os.path.basename(rel), content, dir_fd, st)
            finally:
                os.close(dir_fd)
        except OSError as e:
            raise DebvirtError("Failed to write %s in the root filesystem %s: %s" % (rel, root, e.strerror)) from None


def _replace(name, content, dir_fd, st):
    if isinstance(content, tuple):
        tmp = _new_symlink(content[1], dir_fd)
        try:
            os.chown(tmp, st.st_uid, st.st_gid, dir_fd=dir_fd, follow_symlinks=False)
        except BaseException:
            os.unlink(tmp, dir_fd=dir_fd)
            raise
    else:
        tmp = _new_file(content, dir_fd, st)
    try:
        # rename() replaces a symlink at the name instead of writing through it.
        os.rename(tmp, name, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
    except BaseException:
        os.unlink(tmp, dir_fd=dir_fd)
        raise


def _temp_name():
    return ".debvirt-%s.tmp" % secrets.token_hex(8)


def _new_file(content, dir_fd, st):
    """A new file holding content in the directory of dir_fd, under a name no other run has;
    its name. Born 0600 and given its final mode only once written and owned."""
    while True:
        name = _temp_name()
        try:
            fd = os.open(name, os.O_CREAT | os.O_EXCL | os.O_WRONLY | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600,
                         dir_fd=dir_fd)
            break
        except FileExistsError:
            continue
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(content)
            f.flush()
            os.fchown(fd, st.st_uid, st.st_gid)
            os.fchmod(fd, 0o644)
    except BaseException:
        os.unlink(name, dir_fd=dir_fd)
        raise
    return name


def _new_symlink(target, dir_fd):
    """A symlink to target in the directory of dir_fd, under a name no other run has; its name."""
    while True:
        name = _temp_name()
        try:
            os.symlink(target, name, dir_fd=dir_fd)
            return name
        except FileExistsError:
            continue


def _makedirs(root, rel_dir, st):
    """A descriptor of rel_dir in root, made where missing and owned like st."""
    return _open_dir(root, rel_dir, (st.st_uid, st.st_gid))
