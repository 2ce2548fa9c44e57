# -*- coding: utf-8 -*-
# Copyright: debvirt.cluster developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Root filesystem helpers on a scratch directory: ID shifting, capabilities, Debian's
network files, writes that a symlink in the rootfs cannot lead out of it."""

from __future__ import annotations

import os
import struct

import pytest

from ansible_collections.debvirt.cluster.plugins.module_utils import _rootfs
from ansible_collections.debvirt.cluster.plugins.module_utils._lxc import ContainerNicSpec
from ansible_collections.debvirt.cluster.plugins.module_utils._errors import DebvirtError, InvalidSpec

root_only = pytest.mark.skipif(os.geteuid() != 0, reason="chown to other IDs needs root")


def nic(dev, address, gateway=None):
    return ContainerNicSpec(network="default", dev=dev, address=address, gateway=gateway)


def test_ifupdown_file():
    nics = [nic("eth0", "dhcp"), nic("eth1", "192.0.2.5/24", "192.0.2.1"), nic("eth2", None)]
    files = _rootfs.render_files("ct1", "web", nics, "ifupdown")
    assert files["etc/hostname"] == "web\n"
    text = files["etc/network/interfaces"]
    assert "auto lo\niface lo inet loopback\n" in text
    assert "auto eth0\niface eth0 inet dhcp\n" in text
    assert "auto eth1\niface eth1 inet static\n    address 192.0.2.5/24\n    gateway 192.0.2.1\n" in text
    assert "eth2" not in text
    assert "source /etc/network/interfaces.d/*" in text


def test_networkd_files():
    files = _rootfs.render_files("ct1", None, [nic("eth0", "2001:db8::5/64", "2001:db8::1")], "networkd")
    assert files["etc/systemd/network/50-debvirt-eth0.network"].endswith(
        "[Match]\nName=eth0\n\n[Network]\nAddress=2001:db8::5/64\nGateway=2001:db8::1\n")
    assert files[_rootfs.NETWORKD_WANTS] == ("link", _rootfs.NETWORKD_UNIT)
    assert "etc/hostname" not in files


def test_no_addresses_no_network_files():
    assert _rootfs.render_files("ct1", None, [nic("eth0", None)], "ifupdown") == {}


def test_checksums(host_files):
    assert _rootfs.parse_checksum("SHA256:" + "A" * 64) == ("sha256", "a" * 64)
    for bad in ("md5:" + "0" * 32, "sha256", "sha256:xyz"):
        with pytest.raises(InvalidSpec):
            _rootfs.parse_checksum(bad)
    one = _rootfs.image_cache_path("http://h/a/img.tar.xz", "sha256:" + "1" * 64)
    assert one == str(host_files / "image_dir" / ("sha256-" + "1" * 32 + "-img.tar.xz"))


def test_subordinate_ranges(tmp_path):
    f = tmp_path / "subuid"
    f.write_text("alice:100000:65536\nroot:200000:131072\n0:400000:10\nbad line\n")
    ranges = _rootfs.read_subids(str(f))
    assert ranges == [(200000, 131072), (400000, 10)]
    assert _rootfs.covered(ranges, 200000, 65536)
    assert _rootfs.covered(ranges, 265536, 65536)
    assert not _rootfs.covered(ranges, 300000, 65536)
    assert _rootfs.read_subids(str(tmp_path / "missing")) == []


def test_namespaced_caps():
    v2 = struct.pack("<IIIII", 0x02000001, 0x2000, 0, 0, 0)
    v3 = _rootfs.namespaced_caps(v2, 100000)
    assert len(v3) == 24
    assert struct.unpack("<I", v3[:4])[0] == 0x03000001
    assert v3[4:20] == v2[4:20]
    assert struct.unpack("<I", v3[20:])[0] == 100000
    assert _rootfs.namespaced_caps(v3, 5)[20:] == struct.pack("<I", 5)


@root_only
def test_shift_ids_keeps_setid_bits_hard_links_and_symlinks(tmp_path):
    root = tmp_path / "r"
    (root / "bin").mkdir(parents=True)
    tool = root / "bin" / "tool"
    tool.write_text("x")
    os.chmod(tool, 0o4755)
    os.link(tool, root / "bin" / "alias")
    os.symlink("tool", root / "bin" / "link")
    os.chown(root / "bin", 0, 5)
    _rootfs.shift_ids(str(root), 100000, 200000, 65536)
    st = os.lstat(tool)
    assert (st.st_uid, st.st_gid) == (100000, 200000)
    assert st.st_mode & 0o7777 == 0o4755
    assert os.lstat(root / "bin").st_gid == 200005
    assert os.lstat(root / "bin" / "link").st_uid == 100000
    assert os.lstat(root).st_uid == 100000


@root_only
def test_shift_ids_refuses_owners_outside_the_map(tmp_path):
    (tmp_path / "f").write_text("x")
    os.chown(tmp_path / "f", 70000, 0)
    with pytest.raises(DebvirtError) as e:
        _rootfs.shift_ids(str(tmp_path), 100000, 100000, 65536)
    assert "outside the container's 65536 mapped IDs" in e.value.msg


def test_write_files_and_read_them_back(tmp_path):
    files = _rootfs.render_files("ct1", "web", [nic("eth0", "dhcp")], "networkd")
    _rootfs.write_files(str(tmp_path), files)
    assert _rootfs.read_files(str(tmp_path), list(files)) == files
    assert oct(os.stat(tmp_path / "etc" / "hostname").st_mode & 0o777) == "0o644"


def test_a_symlink_in_the_rootfs_cannot_lead_a_write_out(tmp_path):
    outside = tmp_path / "host-etc"
    outside.mkdir()
    root = tmp_path / "r"
    root.mkdir()
    os.symlink(str(outside), root / "etc")
    with pytest.raises(DebvirtError) as e:
        _rootfs.write_files(str(root), {"etc/hostname": "x\n"})
    assert "leads outside it" in e.value.msg
    assert not (outside / "hostname").exists()


def test_a_symlinked_file_is_replaced_not_written_through(tmp_path):
    target = tmp_path / "victim"
    target.write_text("keep\n")
    root = tmp_path / "r"
    (root / "etc").mkdir(parents=True)
    os.symlink(str(target), root / "etc" / "hostname")
    _rootfs.write_files(str(root), {"etc/hostname": "web\n"})
    assert target.read_text() == "keep\n"
    assert (root / "etc" / "hostname").read_text() == "web\n"


def test_create_rootfs_never_overwrites(tmp_path):
    path = tmp_path / "rootfs"
    path.mkdir()
    (path / "keep").write_text("x")
    with pytest.raises(DebvirtError) as e:
        _rootfs.create_rootfs(str(path), template=str(tmp_path))
    assert "never overwritten" in e.value.msg


def test_create_rootfs_from_a_template_into_an_empty_directory(tmp_path):
    template = tmp_path / "template"
    (template / "etc").mkdir(parents=True)
    (template / "etc" / "os-release").write_text("ID=debian\n")
    path = tmp_path / "ct" / "rootfs"
    _rootfs.create_rootfs(str(path), template=str(template))
    assert (path / "etc" / "os-release").read_text() == "ID=debian\n"
    assert sorted(os.listdir(tmp_path / "ct")) == ["rootfs"]


def test_network_format(tmp_path):
    assert _rootfs.network_format(str(tmp_path)) is None
    (tmp_path / "lib" / "systemd").mkdir(parents=True)
    (tmp_path / "lib" / "systemd" / "systemd-networkd").write_text("")
    assert _rootfs.network_format(str(tmp_path)) == "networkd"
    (tmp_path / "sbin").mkdir()
    (tmp_path / "sbin" / "ifup").write_text("")
    assert _rootfs.network_format(str(tmp_path)) == "ifupdown"


def mountinfo(tmp_path, *points):
    lines = ["22 1 0:21 / %s rw,relatime shared:1 - ext4 /dev/sda1 rw" % p.replace(" ", "\\040") for p in points]
    path = tmp_path / "mountinfo"
    path.write_text("\n".join(lines) + "\n")
    return str(path)


def test_mount_points_at_and_below_a_path(tmp_path, monkeypatch):
    root = tmp_path / "ct" / "rootfs"
    monkeypatch.setattr(_rootfs, "MOUNTINFO", mountinfo(tmp_path, "/", str(root) + "-other", str(root / "my data"),
                                                        str(root), str(tmp_path / "ct")))
    assert _rootfs.mount_points(str(root)) == [str(root), str(root / "my data")]


def test_remove_tree_never_enters_a_mount_point_nor_follows_a_symlink(tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "keep").write_text("x")
    root = tmp_path / "rootfs"
    (root / "srv" / "mounted").mkdir(parents=True)
    (root / "srv" / "mounted" / "keep").write_text("x")
    (root / "etc").mkdir()
    (root / "etc" / "hostname").write_text("x")
    os.symlink(str(outside), root / "etc" / "link")
    left = _rootfs.remove_tree(str(root), {str(root / "srv" / "mounted")})
    assert left == [str(root / "srv" / "mounted")]
    assert (root / "srv" / "mounted" / "keep").exists() and (outside / "keep").exists()
    assert sorted(os.listdir(root)) == ["srv"] and os.listdir(root / "srv") == ["mounted"]
    assert _rootfs.remove_tree(str(root), {str(root)}) == [str(root)]
    assert _rootfs.remove_tree(str(root)) == [] and not root.exists()


def test_remove_rootfs_refuses_to_cross_into_a_mount(tmp_path, monkeypatch):
    root = tmp_path / "rootfs"
    (root / "proc").mkdir(parents=True)
    (root / "proc" / "keep").write_text("x")
    monkeypatch.setattr(_rootfs, "MOUNTINFO", mountinfo(tmp_path, str(root / "proc")))
    with pytest.raises(DebvirtError) as e:
        _rootfs.remove_rootfs(str(root))
    assert e.value.msg == ("The root filesystem %s was deleted but for %s: another file system is mounted there, "
                           "and nothing in it was touched" % (root, root / "proc"))
    assert (root / "proc" / "keep").exists()


def test_writes_leave_no_temporary_file(tmp_path):
    _rootfs.write_files(str(tmp_path), _rootfs.render_files("ct1", "web", [nic("eth0", "dhcp")], "networkd"))
    names = [n for _d, dirs, files in os.walk(tmp_path) for n in dirs + files]
    assert not [n for n in names if n.startswith(".debvirt-")]
    assert os.path.islink(tmp_path / _rootfs.NETWORKD_WANTS)


# --- a hostile container: directories swapped for symlinks ----------------------------------
NETWORKD = _rootfs.render_files("ct1", "web", [nic("eth0", "dhcp")], "networkd")


def hostile(tmp_path):
    """A rootfs, and a "host" directory beside it that the container would like written."""
    host = tmp_path / "host"
    host.mkdir()
    (host / "keep").write_text("host\n")
    root = tmp_path / "rootfs"
    (root / "etc").mkdir(parents=True)
    return root, host


def host_untouched(host):
    return sorted(os.listdir(host)) == ["keep"] and (host / "keep").read_text() == "host\n"


@pytest.mark.parametrize("link, target", [
    ("etc/systemd", "host"),  # out of the rootfs, two levels down
    ("etc/systemd", "rootfs/srv"),  # into the rootfs itself: a link is refused all the same
    ("etc", "host"),
])
def test_a_directory_that_is_a_symlink_is_refused(tmp_path, link, target):
    root, host = hostile(tmp_path)
    (root / "srv").mkdir()
    if (root / link).is_dir():
        (root / link).rmdir()
    os.symlink(str(tmp_path / target), root / link)
    with pytest.raises(DebvirtError) as e:
        _rootfs.write_files(str(root), NETWORKD)
    assert e.value.msg == "%s in the root filesystem %s leads outside it (a symlink); not writing it" % (link, root)
    # Reading refuses too: what a link leads to must not reach a diff either.
    with pytest.raises(DebvirtError, match="leads outside it"):
        _rootfs.read_files(str(root), list(NETWORKD))
    assert host_untouched(host)
    assert os.listdir(root / "srv") == []


def test_a_swap_after_the_directory_was_made_is_refused(tmp_path, monkeypatch):
    """The container swaps the directory the module just made for a symlink to the host."""
    root, host = hostile(tmp_path)
    mkdir = os.mkdir

    def made_then_swapped(name, mode=0o777, *, dir_fd=None):
        mkdir(name, mode, dir_fd=dir_fd)
        if name == "network":
            os.rename(name, "network.moved", src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
            os.symlink(str(host), name, dir_fd=dir_fd)

    monkeypatch.setattr(os, "mkdir", made_then_swapped)
    with pytest.raises(DebvirtError, match="^etc/systemd/network in the root filesystem .* leads outside it"):
        _rootfs.write_files(str(root), NETWORKD)
    assert host_untouched(host)


def test_a_swap_after_the_directory_was_opened_changes_nothing_on_the_host(tmp_path, monkeypatch):
    """Once the walk holds a directory, a swap by name redirects nothing: the write lands in the
    directory itself, wherever the container moved it inside its root."""
    root, host = hostile(tmp_path)
    replace = _rootfs._replace

    def swap_then_replace(name, content, dir_fd, st):
        if not os.path.islink(root / "etc"):
            os.rename(root / "etc", root / "etc.moved")
            os.symlink(str(host), root / "etc")
        replace(name, content, dir_fd, st)

    monkeypatch.setattr(_rootfs, "_replace", swap_then_replace)
    _rootfs.write_files(str(root), {"etc/hostname": "web\n"})
    assert host_untouched(host)
    assert (root / "etc.moved" / "hostname").read_text() == "web\n"


def test_a_symlink_at_the_leaf_is_read_as_a_link_and_replaced(tmp_path):
    root, host = hostile(tmp_path)
    os.symlink(str(host / "keep"), root / "etc" / "hostname")
    assert _rootfs.read_files(str(root), ["etc/hostname", "etc/missing/x"]) == {
        "etc/hostname": ("link", str(host / "keep")), "etc/missing/x": None}
    _rootfs.write_files(str(root), {"etc/hostname": "web\n"})
    assert host_untouched(host)
    assert not os.path.islink(root / "etc" / "hostname")


def test_a_fifo_at_the_leaf_reads_as_missing_without_blocking(tmp_path):
    root, _host = hostile(tmp_path)
    os.mkfifo(root / "etc" / "hostname")
    assert _rootfs.read_files(str(root), ["etc/hostname"]) == {"etc/hostname": None}


def test_a_file_where_a_directory_belongs_fails_cleanly(tmp_path):
    root, _host = hostile(tmp_path)
    (root / "etc" / "systemd").write_text("not a directory\n")
    assert _rootfs.read_files(str(root), ["etc/systemd/network/x"]) == {"etc/systemd/network/x": None}
    with pytest.raises(DebvirtError, match="^Failed to write etc/systemd/network/.* in the root filesystem"):
        _rootfs.write_files(str(root), NETWORKD)


@root_only
def test_new_directories_and_files_are_owned_like_the_root(tmp_path):
    root, _host = hostile(tmp_path)
    os.chown(root, 100000, 100000)
    umask = os.umask(0o077)
    try:
        _rootfs.write_files(str(root), NETWORKD)
    finally:
        os.umask(umask)
    for rel in ["etc/systemd", "etc/systemd/network", "etc/systemd/network/50-debvirt-eth0.network",
                _rootfs.NETWORKD_WANTS]:
        got = os.lstat(root / rel)
        assert (got.st_uid, got.st_gid) == (100000, 100000), rel
    assert oct(os.stat(root / "etc" / "systemd" / "network").st_mode & 0o777) == "0o755"
    assert oct(os.stat(root / "etc" / "hostname").st_mode & 0o777) == "0o644"
