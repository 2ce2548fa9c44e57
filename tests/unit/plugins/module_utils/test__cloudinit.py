# -*- coding: utf-8 -*-
# Copyright: debvirt.cluster developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Cloud-init seeds on a scratch directory: the mark that proves a seed is ours, and the files
at a seed path that are never overwritten or deleted (someone else's, a symlink, a FIFO)."""

from __future__ import annotations

import os
import shutil

import pytest

from ansible_collections.debvirt.cluster.plugins.module_utils import _cloudinit
from ansible_collections.debvirt.cluster.plugins.module_utils._errors import DebvirtError, InvalidSpec

FILES = _cloudinit.seed_files("web01", {"users": []})
TOOLS = [t for t in _cloudinit._TOOLS if shutil.which(t[0])]
needs_tool = pytest.mark.skipif(not TOOLS, reason="no ISO tool (genisoimage or xorriso) on this host")


def fake_iso(path, app_id, volume_id=""):
    """The first 34 KiB of an ISO 9660 image: only its primary volume descriptor matters here."""
    pvd = bytearray(2048)
    pvd[0:6] = b"\x01CD001"
    pvd[40:72] = volume_id.encode().ljust(32)
    pvd[574:702] = app_id.encode().ljust(128)
    path.write_bytes(bytes(16 * 2048) + bytes(pvd))


def left_in(directory):
    return sorted(os.listdir(directory))


@needs_tool
@pytest.mark.parametrize("tool", TOOLS, ids=lambda t: t[0])
def test_each_tool_marks_the_seed_with_its_guest(tmp_path, monkeypatch, tool):
    monkeypatch.setattr(_cloudinit, "_TOOLS", (tool,))
    path = tmp_path / "web01-cidata.iso"
    _cloudinit.write_seed(str(path), FILES, "web01")
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    assert _cloudinit.why_not_ours(str(path), "web01") is None
    assert _cloudinit.why_not_ours(str(path), "web02") == "it is the cloud-init seed of another guest"
    # The mark sits where ECMA-119 puts the application identifier, whichever tool wrote it.
    with open(path, "rb") as f:
        f.seek(32768 + 574)
        assert f.read(128).decode().strip() == _cloudinit.mark("web01")


@needs_tool
def test_our_own_seed_is_rewritten_and_removed(tmp_path):
    path = tmp_path / "web01-cidata.iso"
    _cloudinit.write_seed(str(path), FILES, "web01")
    first = path.read_bytes()
    _cloudinit.write_seed(str(path), _cloudinit.seed_files("web01", {"users": ["ops"]}), "web01")
    assert path.read_bytes() != first
    assert left_in(tmp_path) == ["web01-cidata.iso"]
    _cloudinit.remove_seed(str(path), "web01")
    assert left_in(tmp_path) == []
    _cloudinit.remove_seed(str(path), "web01")  # gone already: nothing to do


def test_the_mark_names_the_guest_in_what_iso_tools_keep():
    mark = _cloudinit.mark("Web_01.example")
    assert mark == mark.upper() and len(mark) <= 128
    assert mark != _cloudinit.mark("web_01.example")


def test_a_free_path_and_our_own_seed_are_fine(tmp_path):
    assert _cloudinit.why_not_ours(str(tmp_path / "none.iso"), "web01") is None
    fake_iso(tmp_path / "seed.iso", _cloudinit.mark("web01"))
    _cloudinit.check_ours(str(tmp_path / "seed.iso"), "web01", "overwrite")


@pytest.mark.parametrize("make, why", [
    (lambda p: p.write_text("the admin's notes\n"), "it is not an ISO image, so not a seed the module made"),
    (lambda p: fake_iso(p, "GENISOIMAGE ISO 9660/HFS FILESYSTEM CREATOR"),
     "it does not carry the mark of a seed the module made"),
    (lambda p: fake_iso(p, _cloudinit.mark("web02")), "it is the cloud-init seed of another guest"),
    (os.mkfifo, "it is not a regular file"),
    (lambda p: p.mkdir(), "it is a directory"),
])
def test_what_is_not_ours(tmp_path, make, why):
    path = tmp_path / "web01-cidata.iso"
    make(path)
    assert _cloudinit.why_not_ours(str(path), "web01") == why


@needs_tool
def test_someone_elses_file_is_neither_overwritten_nor_deleted(tmp_path):
    path = tmp_path / "web01-cidata.iso"
    path.write_bytes(b"an image of someone else's\n")
    with pytest.raises(DebvirtError) as e:
        _cloudinit.write_seed(str(path), FILES, "web01")
    assert e.value.msg == (
        "Refusing to overwrite %s, the cloud-init seed path of guest web01: it is not an ISO image, so not a seed "
        "the module made. The module never touches a file it did not make; move it away or give another "
        "cloud_init.path" % path)
    with pytest.raises(DebvirtError, match="^Refusing to delete %s, .*it is not an ISO image" % path):
        _cloudinit.remove_seed(str(path), "web01")
    assert path.read_bytes() == b"an image of someone else's\n"
    assert left_in(tmp_path) == ["web01-cidata.iso"]  # no temporary file left behind


@needs_tool
def test_another_guests_seed_is_neither_overwritten_nor_deleted(tmp_path):
    path = tmp_path / "seed.iso"
    _cloudinit.write_seed(str(path), FILES, "web02")
    before = path.read_bytes()
    with pytest.raises(DebvirtError, match="it is the cloud-init seed of another guest"):
        _cloudinit.write_seed(str(path), FILES, "web01")
    with pytest.raises(DebvirtError, match="it is the cloud-init seed of another guest"):
        _cloudinit.remove_seed(str(path), "web01")
    assert path.read_bytes() == before


@needs_tool
@pytest.mark.parametrize("target", ["victim", "our-seed.iso"])
def test_a_symlink_at_the_seed_path_is_refused(tmp_path, target):
    """Even a link to a seed of ours: the link itself is not something the module made."""
    victim = tmp_path / target
    if target == "victim":
        victim.write_text("keep\n")
    else:
        _cloudinit.write_seed(str(victim), FILES, "web01")
    before = victim.read_bytes()
    path = tmp_path / "web01-cidata.iso"
    os.symlink(str(victim), path)
    for call in (lambda: _cloudinit.write_seed(str(path), FILES, "web01"),
                 lambda: _cloudinit.remove_seed(str(path), "web01")):
        with pytest.raises(DebvirtError, match="it is a symlink"):
            call()
    assert os.readlink(path) == str(victim)
    assert victim.read_bytes() == before
    assert left_in(tmp_path) == sorted([target, "web01-cidata.iso"])


def test_planning_raises_invalid_spec(tmp_path):
    path = tmp_path / "seed.iso"
    path.write_text("x")
    with pytest.raises(InvalidSpec, match="^Refusing to overwrite"):
        _cloudinit.check_ours(str(path), "web01", "overwrite", InvalidSpec)


@needs_tool
def test_a_file_put_there_after_planning_is_still_refused(tmp_path, monkeypatch):
    """Planning saw a free path; someone's file arrived while the ISO was built."""
    path = tmp_path / "web01-cidata.iso"
    run = _cloudinit.subprocess.run

    def build_then_intrude(cmd, **kwargs):
        proc = run(cmd, check=False, **{k: v for k, v in kwargs.items() if k != "check"})
        path.write_text("arrived meanwhile\n")
        return proc

    monkeypatch.setattr(_cloudinit.subprocess, "run", build_then_intrude)
    with pytest.raises(DebvirtError, match="Refusing to overwrite"):
        _cloudinit.write_seed(str(path), FILES, "web01")
    assert path.read_text() == "arrived meanwhile\n"
    assert left_in(tmp_path) == ["web01-cidata.iso"]


@pytest.mark.parametrize("volume_id, recorded, why", [
    ("CIDATA", True, None),
    ("CIDATA", False, "it does not carry the mark of a seed the module made"),
    ("INSTALLER", True, "it does not carry the mark of a seed the module made"),
])
def test_an_unmarked_seed_of_an_earlier_release_is_ours_where_the_guest_names_it(tmp_path, volume_id, recorded, why):
    path = tmp_path / "web01-cidata.iso"
    fake_iso(path, "", volume_id)
    assert _cloudinit.why_not_ours(str(path), "web01", recorded) == why
