# -*- coding: utf-8 -*-
# Copyright: debvirt.cluster developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Volumes in storage pools: read them, check the request, plan, apply.

A volume is created once, then only grown. Its content comes from nothing (a new empty
image), from an image (a local file or a URL, verified by checksum and cached), or from
another volume (a full copy, or a qcow2 overlay that keeps the base as its backing store).
An existing volume is never overwritten: a request that contradicts it is an error.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import struct
import tempfile

from ansible_collections.debvirt.cluster.plugins.module_utils._errors import InvalidSpec
from ansible_collections.debvirt.cluster.plugins.module_utils._names import check_name, check_volume_name, size_bytes
from ansible_collections.debvirt.cluster.plugins.module_utils._plan import Plan, converge
from ansible_collections.debvirt.cluster.plugins.module_utils._pool import POOL_RUNNING, describe_volume, guests_using
from ansible_collections.debvirt.cluster.plugins.module_utils._poolxml import VolumeXML
from ansible_collections.debvirt.cluster.plugins.module_utils._usage import Scope, phrase, users, volume_is
from ansible_collections.debvirt.cluster.plugins.module_utils._xml import parse

DEFAULT_CACHE = "/var/cache/debvirt/images"
_PROVENANCE = "volumes.json"
VOLUME = "volume"


def new_volume_xml(name, capacity, fmt, allocation=None, backing=None):
    xml = VolumeXML()
    xml.name = name
    xml.capacity, xml.capacity_unit = capacity, "bytes"
    xml.allocation, xml.allocation_unit = allocation or 0, "bytes"
    xml.format = fmt
    if backing is not None:
        xml.backing_path, xml.backing_format = backing
    return xml.to_string()


def round_up(size):
    """qemu-img rounds image sizes up to whole sectors; comparing rounded sizes converges."""
    return -(-size // 512) * 512


class VolumeRequest:
    def __init__(self, name, pool, state="present", capacity=None, allocation=None, format=None,
                 import_from=None, checksum=None, cache_dir=DEFAULT_CACHE, clone_from=None,
                 linked=False, allow_shrink=False, wipe=False, validate_certs=True, timeout=60):
        self.name = name
        self.pool = pool
        self.state = state
        self.capacity = capacity
        self.allocation = allocation
        self.format = format
        self.import_from = import_from
        self.checksum = checksum
        self.cache_dir = cache_dir
        self.clone_from = clone_from  # (pool, volume)
        self.linked = linked
        self.allow_shrink = allow_shrink
        self.wipe = wipe
        self.validate_certs = validate_certs
        self.timeout = timeout

    @property
    def is_url(self):
        return bool(self.import_from) and re.match(r"^https?://", self.import_from) is not None


def volume_request_from_params(params):
    p = params
    name, pool = p["name"], p["pool"]
    check_volume_name(name)
    check_name("storage pool", pool)
    state = p.get("state") or "present"
    capacity = round_up(size_bytes(p["capacity"], "capacity")) if p.get("capacity") is not None else None
    allocation = size_bytes(p["allocation"], "allocation") if p.get("allocation") is not None else None
    if allocation is not None and capacity is not None and allocation > capacity:
        raise InvalidSpec("allocation is larger than capacity")
    src, clone = p.get("import_from"), p.get("clone_from")
    if src and clone:
        raise InvalidSpec("import_from and clone_from exclude each other")
    checksum = p.get("checksum")
    if checksum is not None:
        algo, _sep, digest = checksum.partition(":")
        if algo not in hashlib.algorithms_guaranteed or not re.match(r"^[0-9a-fA-F]+$", digest) or \
                len(digest) != hashlib.new(algo).digest_size * 2:
            raise InvalidSpec("checksum %r is not ALGORITHM:HEX, such as sha256:<64 hex digits>" % checksum)
        checksum = "%s:%s" % (algo, digest.lower())
        if not src:
            raise InvalidSpec("checksum verifies import_from and needs it")
    req = VolumeRequest(name, pool, state, capacity=capacity, allocation=allocation,
                        format=p.get("format"), import_from=src, checksum=checksum,
                        cache_dir=p.get("cache_dir") or DEFAULT_CACHE,
                        clone_from=_split_volume(pool, clone) if clone else None,
                        linked=bool(p.get("linked")), allow_shrink=bool(p.get("allow_shrink")),
                        wipe=bool(p.get("wipe")), validate_certs=p.get("validate_certs", True),
                        timeout=p.get("timeout") or 60)
    if req.is_url and checksum is None:
        raise InvalidSpec("import_from %s is a URL: give checksum, so that the download is verified "
                          "and cached" % src)
    if src and not req.is_url and not src.startswith("/"):
        raise InvalidSpec("import_from must be an absolute path or an http(s) URL, got %r" % src)
    if req.linked and not clone:
        raise InvalidSpec("linked makes an overlay of clone_from and needs it")
    if req.linked and req.format not in (None, "qcow2"):
        raise InvalidSpec("A linked clone is a qcow2 overlay; format %s cannot be one" % req.format)
    if req.wipe and state != "absent":
        raise InvalidSpec("wipe overwrites a volume's data before it is deleted: use it with state=absent")
    return req


def _split_volume(pool, ref):
    if "/" in ref:
        pool, _sep, ref = ref.partition("/")
        check_name("storage pool", pool, "clone_from")
    check_volume_name(ref, "clone_from")
    return pool, ref


class ActualVolume:
    def __init__(self, vol, xml):
        self.vol = vol
        self.xml = xml

    def view(self):
        out = {"format": self.xml.format, "capacity": self.xml.capacity}
        if self.xml.backing_path:
            out["backing_store"] = self.xml.backing_path
        return out


class VolumeFacts:
    def __init__(self):
        self.pool = None
        self.source_size = None  # bytes to upload
        self.source_capacity = None  # the image's virtual size, where it can be read
        self.source_format = None  # the image's format, from its header where not given
        self.source_path = None  # the local file or the cached download
        self.download = False
        self.base = None  # ActualVolume of clone_from
        self.provenance = None  # what an earlier import of this volume recorded
        self.users = []
        self.dependents = []


def read_volume(client, pool, name):
    vol = client.volume(pool, name)
    if vol is None:
        return None
    return ActualVolume(vol, VolumeXML(parse(client.volume_xml(vol))))


def inspect_volume(client, req, usage=None):
    """(actual, facts): read-only; raises InvalidSpec before anything is touched. usage: the
    _usage.Scope whose domains must not use a volume to delete (None: this host's drivers)."""
    facts = VolumeFacts()
    pool = client.pool(req.pool)
    if pool is None:
        if req.state == "absent":
            return None, facts
        raise InvalidSpec("Storage pool %s does not exist (define it first, e.g. with "
                          "debvirt.cluster.storage_pool)" % req.pool)
    if client.pool_info(pool)[0] != POOL_RUNNING:
        raise InvalidSpec("Storage pool %s is not active: start it first" % req.pool)
    facts.pool = pool
    actual = read_volume(client, pool, req.name)
    if req.state == "absent":
        if actual is not None:
            with (usage or Scope()).connections(client) as clients:
                facts.users = users(clients, volume_is(req.pool, req.name, actual.xml.path))
            facts.dependents = [v.name() for v in client.volumes(pool) if v.name() != req.name and
                                VolumeXML(parse(client.volume_xml(v))).backing_path == actual.xml.path]
            if facts.users:
                raise InvalidSpec("Volume %s/%s is a disk of %s: detach it first"
                                  % (req.pool, req.name, phrase(facts.users)),
                                  users=[str(u) for u in facts.users])
            if facts.dependents:
                raise InvalidSpec("Volume %s/%s is the backing store of %s: delete those first"
                                  % (req.pool, req.name, ", ".join(facts.dependents)))
        return actual, facts

    if req.clone_from is not None:
        base_pool = pool if req.clone_from[0] == req.pool else client.pool(req.clone_from[0])
        base = read_volume(client, base_pool, req.clone_from[1]) if base_pool is not None else None
        if base is None:
            raise InvalidSpec("clone_from %s/%s does not exist" % req.clone_from)
        facts.base = base
    if req.import_from is not None:
        _inspect_source(req, facts, actual)

    if actual is None:
        if req.import_from is None and req.clone_from is None and req.capacity is None:
            raise InvalidSpec("Volume %s does not exist in pool %s: give capacity (or import_from, "
                              "or clone_from) to create it" % (req.name, req.pool))
        return actual, facts

    # An existing volume: whatever the request says about its content must agree with it.
    have = actual.xml
    where = "Volume %s/%s" % (req.pool, req.name)
    if req.format is not None and have.format != req.format:
        raise InvalidSpec("%s is %s, not %s: it is not converted or overwritten" % (where, have.format, req.format))
    if req.capacity is not None and req.capacity < round_up(have.capacity or 0) and not req.allow_shrink:
        raise InvalidSpec("%s has %d bytes, more than capacity %d: shrinking loses data and is done only "
                          "with allow_shrink: true" % (where, have.capacity, req.capacity))
    if req.capacity is not None and req.capacity < (have.allocation or 0) and req.allow_shrink:
        raise InvalidSpec("%s has %d bytes allocated: libvirt cannot shrink it below that (to %d)"
                          % (where, have.allocation, req.capacity))
    if req.clone_from is not None and req.linked and have.backing_path != facts.base.xml.path:
        raise InvalidSpec("%s exists with backing store %s, not %s: it is not overwritten"
                          % (where, have.backing_path or "(none)", facts.base.xml.path))
    if req.checksum is not None:
        record = read_provenance(req.cache_dir).get(have.path or "")
        facts.provenance = record
        if record is None:
            if have.path and os.path.isfile(have.path):
                found = file_digest(have.path, req.checksum.split(":")[0])
                if found != req.checksum:
                    raise InvalidSpec("%s exists and its content (%s) does not match checksum %s: it is "
                                      "not overwritten; delete it first to import again"
                                      % (where, found, req.checksum))
        elif record["checksum"] != req.checksum:
            raise InvalidSpec("%s was imported from %s (%s), not %s: it is not overwritten; delete it "
                              "first to import again" % (where, record.get("source"), record["checksum"],
                                                         req.checksum))
    return actual, facts


def _inspect_source(req, facts, actual):
    if req.is_url:
        cached = cache_path(req.cache_dir, req.checksum)
        if os.path.isfile(cached):
            facts.source_path = cached
        else:
            facts.download = actual is None
    else:
        if not os.path.isfile(req.import_from):
            raise InvalidSpec("import_from %s is not a file on the host" % req.import_from)
        facts.source_path = req.import_from
        if req.checksum is not None and actual is None:
            found = file_digest(req.import_from, req.checksum.split(":")[0])
            if found != req.checksum:
                raise InvalidSpec("%s does not match checksum: it is %s, expected %s"
                                  % (req.import_from, found, req.checksum))
    if facts.source_path:
        facts.source_size = os.path.getsize(facts.source_path)
        facts.source_format, facts.source_capacity = image_info(facts.source_path, req.format)
    else:
        facts.source_format = req.format


def cache_path(cache_dir, checksum):
    algo, _sep, digest = checksum.partition(":")
    return os.path.join(cache_dir, "%s-%s" % (algo, digest))


def file_digest(path, algo):
    h = hashlib.new(algo)
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return "%s:%s" % (algo, h.hexdigest())


def image_info(path, fmt):
    """(format, guest-visible size) of an image file, from a qcow2 header or the file size."""
    with open(path, "rb") as f:
        header = f.read(32)
    if header[:4] == b"QFI\xfb" and fmt in (None, "qcow2"):
        return "qcow2", struct.unpack(">Q", header[24:32])[0]
    return fmt or "raw", os.path.getsize(path)


def read_provenance(cache_dir):
    try:
        with open(os.path.join(cache_dir, _PROVENANCE)) as f:
            return json.load(f)
    except (OSError, ValueError):
        return {}


def write_provenance(cache_dir, path, record):
    """Remember what an import wrote, so that a rerun compares checksums without reading the volume.

    record None forgets the path (its volume was deleted).
    """
    records = read_provenance(cache_dir)
    if record is None and path not in records:
        return
    if record is None:
        del records[path]
    else:
        records[path] = record
    os.makedirs(cache_dir, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=cache_dir, prefix=".%s." % _PROVENANCE)
    try:
        os.fchmod(fd, 0o644)
        with os.fdopen(fd, "w") as f:
            json.dump(records, f, indent=1, sort_keys=True)
        os.replace(tmp, os.path.join(cache_dir, _PROVENANCE))
    except BaseException:
        os.unlink(tmp)
        raise


def plan_volume(req, actual, facts):
    plan = Plan()
    key = "%s/%s" % (req.pool, req.name)
    if req.state == "absent":
        if actual is not None:
            if req.wipe:
                plan.add("wipe", VOLUME, key=key)
            plan.add("delete", VOLUME, before=actual.view(), key=key)
        return plan
    if actual is None:
        if facts.download:
            # The step acts on the URL, which is all its label shows.
            plan.add("download", req.import_from, after=req.checksum)
        if req.import_from is not None:
            plan.add("import", VOLUME, after=req.import_from, key=key)
            if req.capacity is not None and (facts.source_capacity is None or
                                             req.capacity > round_up(facts.source_capacity)):
                plan.add("update", "capacity", facts.source_capacity, req.capacity)
        elif req.clone_from is not None:
            plan.add("clone", VOLUME, after="%s/%s%s" % (req.clone_from + (" (linked)" if req.linked else "",)),
                     key=key)
        else:
            plan.add("create", VOLUME, after=desired_view(req, None, facts), key=key)
        return plan
    plan.compare("capacity", actual.xml.capacity, req.capacity
                 if req.capacity is not None and req.capacity != round_up(actual.xml.capacity) else None)
    return plan


def desired_view(req, actual, facts):
    out = actual.view() if actual is not None else {}
    if actual is None:
        if req.clone_from is not None:
            base = facts.base.xml
            out["format"] = "qcow2" if req.linked else (req.format or base.format)
            out["capacity"] = max(req.capacity or 0, base.capacity or 0)
            if req.linked:
                out["backing_store"] = base.path
        elif req.import_from is not None:
            if facts.source_format:
                out["format"] = facts.source_format
            cap = facts.source_capacity
            if req.capacity is not None:
                cap = max(req.capacity, cap or 0)
            if cap is not None:
                out["capacity"] = cap
        else:
            out["format"] = req.format or "qcow2"
            out["capacity"] = req.capacity
    elif req.capacity is not None:
        out["capacity"] = max(req.capacity, actual.xml.capacity) if not req.allow_shrink else req.capacity
        if out["capacity"] == round_up(actual.xml.capacity):
            out["capacity"] = actual.xml.capacity
    if req.import_from is not None:
        out["checksum"] = req.checksum
    return out


def apply_volume(client, req, plan, actual, facts):
    """The only function here that writes."""
    pool = facts.pool
    if req.state == "absent":
        if plan.on(VOLUME, "wipe"):
            client.wipe_volume(actual.vol)
        if plan.on(VOLUME, "delete"):
            path = actual.xml.path
            client.delete_volume(actual.vol)
            if path:
                write_provenance(req.cache_dir, path, None)
        return
    if plan.of("download"):
        facts.source_path = download(req)
        facts.source_size = os.path.getsize(facts.source_path)
        facts.source_format, facts.source_capacity = image_info(facts.source_path, req.format)
    if plan.on(VOLUME, "import"):
        fmt = facts.source_format
        vol = client.create_volume(pool, new_volume_xml(req.name, facts.source_size, fmt), req.name)
        try:
            client.upload_volume(vol, facts.source_path, facts.source_size)
        except Exception:
            # A half-written volume would pass for a good one on the next run.
            client.delete_volume(vol)
            raise
        client.refresh_pool(pool)
        vol = client.volume(pool, req.name)
        if req.checksum:
            path = VolumeXML(parse(client.volume_xml(vol))).path
            write_provenance(req.cache_dir, path, {"checksum": req.checksum, "source": req.import_from})
        if req.capacity is not None and req.capacity > client.volume_info(vol)[1]:
            client.resize_volume(vol, req.capacity)
    elif plan.on(VOLUME, "clone"):
        base = facts.base.xml
        if req.linked:
            xml = new_volume_xml(req.name, max(req.capacity or 0, base.capacity), "qcow2",
                                 backing=(base.path, base.format))
            client.create_volume(pool, xml, req.name)
        else:
            xml = new_volume_xml(req.name, max(req.capacity or 0, base.capacity), req.format or base.format)
            client.clone_volume(pool, xml, facts.base.vol, req.name)
    elif plan.on(VOLUME, "create"):
        client.create_volume(pool, new_volume_xml(req.name, req.capacity, req.format or "qcow2",
                                                  allocation=req.allocation), req.name)
    elif plan.on("capacity"):
        client.resize_volume(actual.vol, req.capacity, shrink=req.capacity < actual.xml.capacity)


def download(req):
    """Fetch import_from into the cache, verified before it gets its final name."""
    from ansible.module_utils.urls import open_url

    from ansible_collections.debvirt.cluster.plugins.module_utils._errors import DebvirtError

    os.makedirs(req.cache_dir, exist_ok=True)
    final = cache_path(req.cache_dir, req.checksum)
    algo = req.checksum.split(":")[0]
    fd, tmp = tempfile.mkstemp(dir=req.cache_dir, prefix=".download-")
    try:
        h = hashlib.new(algo)
        try:
            resp = open_url(req.import_from, timeout=req.timeout, validate_certs=req.validate_certs)
            with os.fdopen(fd, "wb") as out:
                for block in iter(lambda: resp.read(1 << 20), b""):
                    h.update(block)
                    out.write(block)
        except Exception as e:  # urllib raises many kinds; all mean the same to the user
            raise DebvirtError("Failed to download %s: %s" % (req.import_from, e)) from None
        found = "%s:%s" % (algo, h.hexdigest())
        if found != req.checksum:
            raise DebvirtError("Downloaded %s does not match checksum: it is %s, expected %s"
                               % (req.import_from, found, req.checksum))
        shutil.move(tmp, final)
        tmp = None
    finally:
        if tmp is not None and os.path.exists(tmp):
            os.unlink(tmp)
    return final


def volume_view(req, actual, facts):
    before = actual.view() if actual is not None else {}
    if actual is not None and req.checksum and facts.provenance:
        before["checksum"] = facts.provenance["checksum"]
    elif actual is not None and req.checksum:
        before["checksum"] = req.checksum  # verified against the content above
    if req.state == "absent":
        return before, {}
    return before, desired_view(req, actual, facts)


def converge_volume(client, req, check_mode, usage=None):
    actual, facts = inspect_volume(client, req, usage)
    plan = plan_volume(req, actual, facts)
    warnings = []
    if plan.on("capacity") and actual is not None:
        running = guests_using(client, volume_is(req.pool, req.name, actual.xml.path))
        if running:
            warnings.append("Running guests %s see the new size of %s only after a block resize or a "
                            "restart" % (", ".join(running), req.name))
    # Taken before applying: a download teaches the real run what check mode cannot know, and
    # both must show the same diff.
    views = volume_view(req, actual, facts)
    out = converge(plan, check_mode, lambda: apply_volume(client, req, plan, actual, facts), "volume", req.name,
                   lambda: views, lambda: describe_volume(client, client.volume(facts.pool, req.name)),
                   absent=req.state == "absent" or facts.pool is None, warnings=warnings)
    if out["volume"]:
        out["volume"]["pool"] = req.pool
    return out
