# -*- coding: utf-8 -*-
# Copyright: debvirt.cluster developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Volumes: validation, image headers, the import record, planner tables, and create / grow /
clone / delete against libvirt's test driver. Imports and downloads run for real in the volume
integration target (the test driver has no upload streams)."""

from __future__ import annotations

import hashlib
import struct

import pytest

from ansible_collections.debvirt.cluster.plugins.modules.volume import ARGUMENT_SPEC
from ansible_collections.debvirt.cluster.tests.unit.helpers import module_params
from ansible_collections.debvirt.cluster.plugins.module_utils import _volume as V
from ansible_collections.debvirt.cluster.plugins.module_utils._errors import InvalidSpec

SHA = "sha256:" + "ab" * 32
POOL = "default-pool"


def req(name="v.qcow2", pool=POOL, cache_dir="/nonexistent-debvirt-cache", **kw):
    return V.volume_request_from_params(module_params(ARGUMENT_SPEC, name=name, pool=pool, cache_dir=cache_dir, **kw))


# --- validation ------------------------------------------------------------------------------
@pytest.mark.parametrize("kw, message", [
    ({"name": "a/b"}, "Invalid volume name 'a/b'"),
    ({"name": "../x.qcow2"}, "Invalid volume name '../x.qcow2'"),
    ({"name": ".."}, "Invalid volume name '..'"),
    ({"name": "."}, "Invalid volume name '.'"),
    ({"name": "x.qcow2\n"}, "Invalid volume name"),
    ({"pool": "my pool"}, "Invalid storage pool name 'my pool'"),
    ({"clone_from": "../base.qcow2"}, "clone_from: invalid storage pool name '..'"),
    ({"clone_from": "other/.."}, "clone_from: invalid volume name '..'"),
    ({"clone_from": ".."}, "clone_from: invalid volume name '..'"),
    ({"capacity": "ten"}, "is not a size"),
    ({"capacity": "1M", "allocation": "2M"}, "allocation is larger than capacity"),
    ({"import_from": "/x", "clone_from": "y"}, "exclude each other"),
    ({"import_from": "/x", "checksum": "sha256:xyz"}, "is not ALGORITHM:HEX"),
    ({"import_from": "/x", "checksum": "sha256:abcd"}, "is not ALGORITHM:HEX"),
    ({"import_from": "/x", "checksum": "crc:" + "ab" * 32}, "is not ALGORITHM:HEX"),
    ({"checksum": SHA}, "checksum verifies import_from and needs it"),
    ({"import_from": "https://example.org/i.qcow2"}, "give checksum"),
    ({"import_from": "relative.qcow2"}, "absolute path or an http(s) URL"),
    ({"linked": True}, "linked makes an overlay of clone_from"),
    ({"clone_from": "b", "linked": True, "format": "raw"}, "format raw cannot be one"),
    ({"wipe": True}, "use it with state=absent"),
])
def test_bad_requests_are_refused(kw, message):
    with pytest.raises(InvalidSpec) as e:
        req(**kw)
    assert message in e.value.msg


def test_sizes_round_up_to_sectors_and_checksums_normalise():
    r = req(capacity="1000", import_from="/x", checksum="sha256:" + "AB" * 32)
    assert r.capacity == 1024
    assert r.checksum == SHA
    assert req(capacity="1G").capacity == 1024 ** 3


def test_clone_from_in_another_pool():
    assert req(clone_from="other/base.qcow2").clone_from == ("other", "base.qcow2")
    assert req(clone_from="base.qcow2").clone_from == (POOL, "base.qcow2")


# --- image files and the import record -------------------------------------------------------
def test_image_info_reads_a_qcow2_header_and_a_raw_size(tmp_path):
    qcow2 = tmp_path / "i.qcow2"
    qcow2.write_bytes(b"QFI\xfb" + struct.pack(">I", 3) + b"\0" * 16 + struct.pack(">Q", 50331648) + b"\0" * 64)
    assert V.image_info(str(qcow2), None) == ("qcow2", 50331648)
    assert V.image_info(str(qcow2), "raw") == ("raw", qcow2.stat().st_size)
    raw = tmp_path / "i.raw"
    raw.write_bytes(b"x" * 4096)
    assert V.image_info(str(raw), None) == ("raw", 4096)


def test_file_digest_and_cache_path(tmp_path):
    f = tmp_path / "f"
    f.write_bytes(b"debvirt")
    assert V.file_digest(str(f), "sha256") == "sha256:" + hashlib.sha256(b"debvirt").hexdigest()
    assert V.file_digest(str(f), "md5") == "md5:" + hashlib.md5(b"debvirt").hexdigest()
    assert V.cache_path("/c", SHA) == "/c/sha256-" + "ab" * 32


def test_the_import_record_is_written_and_forgotten(tmp_path):
    cache = str(tmp_path / "cache")
    assert V.read_provenance(cache) == {}
    V.write_provenance(cache, "/p/a.qcow2", {"checksum": SHA, "source": "/x"})
    V.write_provenance(cache, "/p/b.qcow2", {"checksum": SHA, "source": "/y"})
    assert set(V.read_provenance(cache)) == {"/p/a.qcow2", "/p/b.qcow2"}
    V.write_provenance(cache, "/p/a.qcow2", None)
    assert set(V.read_provenance(cache)) == {"/p/b.qcow2"}
    V.write_provenance(cache, "/p/never.qcow2", None)
    (tmp_path / "cache" / "volumes.json").write_text("not json")
    assert V.read_provenance(cache) == {}


# --- planning --------------------------------------------------------------------------------
def vol(capacity=67108864, fmt="qcow2", backing=None, allocation=200704):
    xml = V.VolumeXML.from_string(V.new_volume_xml("v.qcow2", capacity, fmt, allocation, backing))
    xml.path = "/default-pool/v.qcow2"
    return V.ActualVolume(None, xml)


def facts(**kw):
    f = V.VolumeFacts()
    for k, v in kw.items():
        setattr(f, k, v)
    return f


BASE = vol(capacity=33554432)
BASE.xml.path = "/default-pool/base.qcow2"


@pytest.mark.parametrize("r, act, f, expected", [
    (req(capacity="64M"), None, facts(), [("create", "volume default-pool/v.qcow2")]),
    (req(capacity="64M"), vol(), facts(), []),
    (req(), vol(), facts(), []),
    (req(capacity="96M"), vol(), facts(), [("update", "capacity", 67108864, 100663296)]),
    (req(capacity="32M", allow_shrink=True), vol(), facts(), [("update", "capacity", 67108864, 33554432)]),
    (req(import_from="/i.qcow2", checksum=SHA), None, facts(source_capacity=1000),
     [("import", "volume default-pool/v.qcow2", None, "/i.qcow2")]),
    (req(import_from="/i.qcow2", checksum=SHA, capacity="1M"), None, facts(source_capacity=1000),
     [("import", "volume default-pool/v.qcow2", None, "/i.qcow2"), ("update", "capacity", 1000, 1048576)]),
    (req(import_from="https://h/i.qcow2", checksum=SHA), None, facts(download=True),
     [("download", "https://h/i.qcow2", None, SHA), ("import", "volume default-pool/v.qcow2", None, "https://h/i.qcow2")]),
    # an existing imported volume is never imported again
    (req(import_from="https://h/i.qcow2", checksum=SHA), vol(), facts(), []),
    (req(clone_from="base.qcow2", linked=True), None, facts(base=BASE),
     [("clone", "volume default-pool/v.qcow2", None, "default-pool/base.qcow2 (linked)")]),
    (req(clone_from="base.qcow2", linked=True), vol(backing=(BASE.xml.path, "qcow2")), facts(base=BASE), []),
    (req(state="absent"), vol(), facts(), [("delete", "volume default-pool/v.qcow2")]),
    (req(state="absent", wipe=True), vol(), facts(), [("wipe", "volume default-pool/v.qcow2"),
                                                      ("delete", "volume default-pool/v.qcow2")]),
    (req(state="absent"), None, facts(), []),
])
def test_plan_volume(r, act, f, expected):
    got = [(c.action, c.target, c.before, c.after) for c in V.plan_volume(r, act, f).changes]
    assert [g[:len(e)] for g, e in zip(got, expected)] == expected and len(got) == len(expected)


def test_views_for_the_diff():
    f = facts(base=BASE)
    assert V.volume_view(req(clone_from="base.qcow2", linked=True, capacity="64M"), None, f) == (
        {}, {"format": "qcow2", "capacity": 67108864, "backing_store": "/default-pool/base.qcow2"})
    assert V.volume_view(req(capacity="96M"), vol(), facts()) == (
        {"format": "qcow2", "capacity": 67108864}, {"format": "qcow2", "capacity": 100663296})
    before, after = V.volume_view(req(import_from="/i", checksum=SHA), vol(), facts(provenance={"checksum": SHA}))
    assert before == after == {"format": "qcow2", "capacity": 67108864, "checksum": SHA}
    assert V.volume_view(req(state="absent"), vol(), facts())[1] == {}


# --- against libvirt's test driver -----------------------------------------------------------
def converge(client, r):
    act, f = V.inspect_volume(client, r)
    plan = V.plan_volume(r, act, f)
    V.apply_volume(client, r, plan, act, f)
    return plan


def test_create_grow_clone_delete(client):
    plan = converge(client, req(capacity="64M"))
    assert [c.action for c in plan.changes] == ["create"]
    assert converge(client, req(capacity="64M")).changes == []
    # The test driver cannot resize: growing is planned here and run in the integration target.
    act, f = V.inspect_volume(client, req(capacity="96M"))
    assert [(c.action, c.before, c.after) for c in V.plan_volume(req(capacity="96M"), act, f).changes] == [
        ("update", 67108864, 100663296)]
    assert act.xml.capacity == 67108864 and act.xml.format == "qcow2"
    full = converge(client, req(name="copy.qcow2", clone_from="v.qcow2", capacity="80M"))
    assert [c.action for c in full.changes] == ["clone"]
    copy, _f = V.inspect_volume(client, req(name="copy.qcow2"))
    assert copy.xml.capacity == 83886080 and copy.xml.backing_path is None
    assert [c.action for c in converge(client, req(name="copy.qcow2", state="absent")).changes] == ["delete"]
    assert V.read_volume(client, client.pool(POOL), "copy.qcow2") is None


def test_refusals_on_an_existing_volume(client):
    converge(client, req(capacity="64M"))
    for kw, message in (({"capacity": "32M"}, "allow_shrink"),
                        ({"format": "raw"}, "is qcow2, not raw"),
                        ({"clone_from": "nope.qcow2"}, "clone_from default-pool/nope.qcow2 does not exist")):
        with pytest.raises(InvalidSpec) as e:
            V.inspect_volume(client, req(**kw))
        assert message in e.value.msg


def test_missing_things_are_clear_errors(client):
    with pytest.raises(InvalidSpec) as e:
        V.inspect_volume(client, req(pool="nope"))
    assert "Storage pool nope does not exist" in e.value.msg
    with pytest.raises(InvalidSpec) as e:
        V.inspect_volume(client, req())
    assert "give capacity" in e.value.msg
    with pytest.raises(InvalidSpec) as e:
        V.inspect_volume(client, req(import_from="/nonexistent/debvirt.img"))
    assert "is not a file on the host" in e.value.msg
    # absent in a missing pool: nothing to do
    act, f = V.inspect_volume(client, req(pool="nope", state="absent"))
    assert act is None and V.plan_volume(req(pool="nope", state="absent"), act, f).changes == []


def test_a_volume_that_a_guest_uses_is_not_deleted(client):
    converge(client, req(capacity="1M"))
    client.define("<domain type='test'><name>dvuser</name><memory unit='MiB'>64</memory><os><type>hvm</type>"
                  "</os><devices><disk type='volume' device='disk'><source pool='default-pool' volume='v.qcow2'/>"
                  "<target dev='vda'/></disk></devices></domain>", "dvuser")
    with pytest.raises(InvalidSpec) as e:
        V.inspect_volume(client, req(state="absent"))
    assert e.value.msg == "Volume default-pool/v.qcow2 is a disk of guests dvuser: detach it first"


def test_a_volume_that_a_stopped_container_has_as_its_root_is_not_deleted(client):
    converge(client, req(capacity="1M"))
    path = V.read_volume(client, client.pool(POOL), "v.qcow2").xml.path
    client.define("<domain type='test'><name>ct</name><memory unit='MiB'>64</memory><os><type>hvm</type></os>"
                  "<devices><filesystem type='file'><source file='%s'/><target dir='/'/></filesystem></devices>"
                  "</domain>" % path, "ct")
    with pytest.raises(InvalidSpec) as e:
        V.inspect_volume(client, req(state="absent"))
    assert e.value.msg == "Volume default-pool/v.qcow2 is a disk of guests ct: detach it first"
    assert V.read_volume(client, client.pool(POOL), "v.qcow2") is not None
