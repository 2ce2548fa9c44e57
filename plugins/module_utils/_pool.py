# -*- coding: utf-8 -*-
# Copyright: debvirt.cluster developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Storage pools: read them, check the request, plan, apply.

read_pool() and inspect_pool() only read; plan_pool() is pure; apply_pool() is the only writer.
libvirt cannot change a pool's definition in place: a new definition reaches an active pool
only through a stop and a start, which is refused while a running guest has a disk in it.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re

from ansible_collections.debvirt.cluster.plugins.module_utils._domain import DomainXML, Spec
from ansible_collections.debvirt.cluster.plugins.module_utils._errors import InvalidSpec, NotFound
from ansible_collections.debvirt.cluster.plugins.module_utils._names import check_name
from ansible_collections.debvirt.cluster.plugins.module_utils._plan import Plan, converge
from ansible_collections.debvirt.cluster.plugins.module_utils._poolxml import PoolXML, VolumeXML, split_host
from ansible_collections.debvirt.cluster.plugins.module_utils._runstate import Defined, Request, listed, plan_run_state, views
from ansible_collections.debvirt.cluster.plugins.module_utils._usage import Scope, in_pool, phrase, users
from ansible_collections.debvirt.cluster.plugins.module_utils._xml import ensure, parse, quote, remove, tostring

POOL_TYPES = ("dir", "fs", "logical", "netfs", "iscsi", "iscsi-direct", "rbd", "zfs")
POOL_RUNNING = 2  # VIR_STORAGE_POOL_RUNNING

# What each type needs and accepts, checked before anything is touched.
_REQUIRED = {
    "dir": ("target",),
    "fs": ("target", "devices"),
    "logical": ("name",),
    "netfs": ("target", "hosts", "dir"),
    "iscsi": ("target", "hosts", "devices"),
    "iscsi-direct": ("hosts", "devices", "initiator"),
    "rbd": ("hosts", "name"),
    "zfs": ("name",),
}
_ALLOWED = {
    "dir": ("target", "permissions"),
    "fs": ("target", "permissions", "devices", "format"),
    "logical": ("target", "devices", "name", "format"),
    "netfs": ("target", "permissions", "hosts", "dir", "format"),
    "iscsi": ("target", "hosts", "devices", "initiator", "auth"),
    "iscsi-direct": ("hosts", "devices", "initiator", "auth"),
    "rbd": ("hosts", "name", "auth"),
    "zfs": ("target", "devices", "name"),
}
# Types whose build step makes something (a directory, a file system, a volume group):
# the others have nothing to build.
BUILDABLE = ("dir", "fs", "netfs", "logical")
# Where a build may format a device; libvirt is asked never to overwrite one.
FORMATTING = ("fs", "logical")
_AUTH_TYPES = {"iscsi": "chap", "iscsi-direct": "chap", "rbd": "ceph"}
# What the plan's steps act on, besides the pool's fields and autostart.
POOL = "storage pool"
VOLUMES = "volumes of storage pool"
DATA = "data of storage pool"
SECRET = "secret"


# --- the spec --------------------------------------------------------------------------------
# A spec field and the PoolXML property it is written to, in the order a new document gets them.
_XML_FIELDS = (("target", "target"), ("mode", "mode"), ("owner", "owner"), ("group", "group"),
               ("devices", "devices"), ("hosts", "hosts"), ("dir", "source_dir"), ("name", "source_name"),
               ("format", "source_format"), ("initiator", "initiator"))


class PoolSpec(Spec):
    FIELDS = ("type", "target", "mode", "owner", "group", "devices", "hosts", "dir", "name",
              "format", "initiator", "auth")
    # A change of any of these needs the pool stopped and started to take effect.
    COMPARED = FIELDS[1:]

    @classmethod
    def from_xml(cls, pool):
        auth = None
        if pool.auth_type:
            auth = {"type": pool.auth_type, "username": pool.auth_username,
                    "usage": pool.auth_usage, "uuid": pool.auth_uuid}
        mode = pool.mode
        return cls(type=pool.type, target=pool.target,
                   mode="%04o" % int(mode, 8) if mode else None,
                   owner=pool.owner, group=pool.group,
                   devices=pool.devices or None, hosts=pool.hosts or None, dir=pool.source_dir,
                   name=pool.source_name, format=pool.source_format, initiator=pool.initiator,
                   auth=auth)

    def to_xml(self, pool):
        """Write the managed fields into pool (libvirt's own document or a new one)."""
        pool.type = self.type
        for field, prop in _XML_FIELDS:
            if getattr(self, field) is not None:
                setattr(pool, prop, getattr(self, field))
        if self.auth is not None:
            remove(pool.node.find("source/auth"))
            pool.auth_type = self.auth["type"]
            pool.auth_username = self.auth["username"]
            pool.auth_usage = self.auth["usage"]
        return pool


# PBKDF2 with a random salt: the digest sits in the secret's description, which anyone who
# may list secrets reads; an unsalted fast hash of a password would let them try a dictionary.
DIGEST_SCHEME = "pbkdf2-sha256"
DIGEST_ROUNDS = 600000


def secret_digest(value, salt=None, rounds=DIGEST_ROUNDS):
    """The text kept in a secret's description to tell, later, whether its value changed:
    scheme:rounds:salt:hash, hex, with no blanks. A new random salt unless one is given."""
    salt = os.urandom(16) if salt is None else salt
    derived = hashlib.pbkdf2_hmac("sha256", value.encode("utf-8"), salt, rounds)
    return "%s:%d:%s:%s" % (DIGEST_SCHEME, rounds, salt.hex(), derived.hex())


def secret_matches(value, digest):
    """Whether digest (as secret_digest wrote it) is of value. Anything else, such as the unsalted
    sha256:<hex> of earlier releases, does not match: that secret is rewritten once."""
    parts = (digest or "").split(":")
    if len(parts) != 4 or parts[0] != DIGEST_SCHEME or not parts[1].isdigit():
        return False
    try:
        salt = bytes.fromhex(parts[2])
    except ValueError:
        return False
    rounds = int(parts[1])
    if not salt or not 1 <= rounds <= 10 * DIGEST_ROUNDS:  # a description we did not write is no work order
        return False
    return hmac.compare_digest(secret_digest(value, salt, rounds), digest)


class SecretSpec:
    """A libvirt secret that holds a pool's password or Ceph key, known by its usage name.

    The value itself is never read back (the secret is private); a salted, slow digest of it is
    kept in the secret's description so that a changed value is noticed and an unchanged one is
    not rewritten.
    """

    def __init__(self, usage_type, usage, value):
        self.usage_type = usage_type
        self.usage = usage
        self.value = value
        self._digest = None

    @property
    def digest(self):
        # Made only when the secret is written: a rerun with the same value only compares.
        if self._digest is None:
            self._digest = secret_digest(self.value)
        return self._digest

    def matches(self, description):
        """Whether a secret with this description holds this value."""
        words = (description or "").split()
        return bool(words) and secret_matches(self.value, words[-1])

    def to_xml(self):
        usage = "<name>%s</name>" if self.usage_type == "ceph" else "<target>%s</target>"
        return ("<secret ephemeral='no' private='yes'><description>debvirt %s</description>"
                "<usage type='%s'>%s</usage></secret>"
                % (self.digest, self.usage_type, usage % quote(self.usage)))


class PoolRequest(Request):
    def __init__(self, name, spec, state="present", autostart=None, build=True, delete_data=False,
                 secret=None):
        super().__init__(name, spec, state, autostart)
        self.build = build
        self.delete_data = delete_data
        self.secret = secret


def request_from_params(params):
    """Validate what needs no host and build the request; raises InvalidSpec."""
    p = params
    name = p["name"]
    check_name("storage pool", name)
    state = p.get("state") or "present"
    ptype = p.get("type")
    if state == "absent":
        return PoolRequest(name, PoolSpec(type=ptype), state, delete_data=bool(p.get("delete_data")))
    if ptype is None:
        raise InvalidSpec("type is required to define storage pool %s" % name)
    source = dict(p.get("source") or {})
    given = {k: v for k, v in source.items() if v not in (None, [])}
    if p.get("target") is not None:
        given["target"] = p["target"]
    if p.get("permissions"):
        given["permissions"] = p["permissions"]
    extra = [k for k in given if k not in _ALLOWED[ptype]]
    if extra:
        raise InvalidSpec("A pool of type %s does not take %s" % (ptype, ", ".join(_label(k) for k in extra)))
    for key in ("target", "dir"):
        if given.get(key) is not None and not given[key].startswith("/"):
            raise InvalidSpec("%s must be an absolute path, got %r" % (_label(key), given[key]))
    for host in given.get("hosts") or []:
        try:
            split_host(host)
        except ValueError:
            raise InvalidSpec("source.hosts: %r is not a host name or address with an optional :port"
                              % host) from None
    perms = given.get("permissions") or {}
    mode = perms.get("mode")
    if mode is not None:
        if not re.match(r"^0?[0-7]{3,4}$", str(mode)):
            raise InvalidSpec("permissions.mode %r is not an octal mode like 0755" % mode)
        mode = "%04o" % int(str(mode), 8)
    auth, secret = _auth_from_params(name, ptype, given.get("auth"))
    spec = PoolSpec(type=ptype, target=given.get("target"), mode=mode, owner=perms.get("owner"),
                    group=perms.get("group"), devices=given.get("devices"), hosts=given.get("hosts"),
                    dir=given.get("dir"), name=given.get("name"), format=given.get("format"),
                    initiator=given.get("initiator"), auth=auth)
    return PoolRequest(name, spec, state, autostart=p.get("autostart"),
                       build=p.get("build", True), delete_data=bool(p.get("delete_data")), secret=secret)


def _label(key):
    return key if key in ("target", "permissions") else "source.%s" % key


def _auth_from_params(name, ptype, auth):
    if not auth:
        return None, None
    if not auth.get("username") or not auth.get("secret"):
        raise InvalidSpec("source.auth needs username and secret")
    usage_type = "ceph" if ptype == "rbd" else "iscsi"
    usage = auth.get("usage") or "debvirt-pool-%s" % name
    spec = {"type": _AUTH_TYPES[ptype], "username": auth["username"], "usage": usage, "uuid": None}
    return spec, SecretSpec(usage_type, usage, auth["secret"])


# --- reading ---------------------------------------------------------------------------------
class ActualPool(Defined):
    SPEC = PoolSpec

    def __init__(self, pool, xml, state, autostart, persistent, info):
        super().__init__(pool, xml, state == POOL_RUNNING, autostart, persistent)
        self.pool = pool
        _state, self.capacity, self.allocation, self.available = info


def read_pool(client, name):
    pool = client.pool(name)
    if pool is None:
        return None
    info = client.pool_info(pool)
    return ActualPool(pool, PoolXML(parse(client.pool_xml(pool, inactive=True))), info[0],
                      client.pool_autostart(pool), client.pool_persistent(pool), info)


class PoolFacts:
    def __init__(self):
        self.users = []  # running guests with a disk in the pool
        self.secret = None  # the existing secret's (handle, digest), or None
        self.secret_change = None  # "create" / "update" / None


def guests_using(client, uses, running_only=True):
    """Names of guests with a disk for which uses(disk) is true (of running guests only, or all)."""
    users = []
    for dom in client.domains():
        try:
            if running_only and client.domain_state(dom) not in ("running", "paused"):
                continue
            xml = DomainXML(parse(client.domain_xml(dom, inactive=not running_only)))
        except NotFound:
            continue  # undefined while we looked: it uses nothing any more
        if any(uses(disk) for disk in xml.disks):
            users.append(dom.name())
    return sorted(users)


def inspect_pool(client, req, actual, usage=None):
    """Read what the planner needs from the host; raises InvalidSpec before anything is touched.
    usage: the _usage.Scope whose domains must not use data to delete (None: this host's drivers)."""
    facts = PoolFacts()
    paths = set()
    if actual is not None and actual.active:
        paths = {client.call("read the path of", "a volume of storage pool %s" % req.name, v.path)
                 for v in client.volumes(actual.pool)}
        facts.users = guests_using(client, in_pool(req.name, paths, actual.spec.target))
    if actual is not None and req.state == "absent" and req.delete_data:
        with (usage or Scope()).connections(client) as clients:
            found = users(clients, in_pool(req.name, paths, actual.spec.target))
        if found:
            raise InvalidSpec("Cannot delete the data of storage pool %s: it holds disks of %s, running or "
                              "not. Remove them (or detach those disks) first, or leave delete_data out to "
                              "keep the data; nothing was changed" % (req.name, phrase(found)),
                              users=[str(u) for u in found])
    if req.secret is not None:
        secret = client.secret_by_usage(req.secret.usage_type, req.secret.usage)
        if secret is None:
            facts.secret_change = "create"
        else:
            desc = parse(client.secret_xml(secret)).findtext("description") or ""
            facts.secret = secret
            if not req.secret.matches(desc):
                facts.secret_change = "update"
    if actual is None and req.state != "absent":
        missing = [k for k in _REQUIRED[req.spec.type] if getattr(req.spec, k) is None]
        if missing:
            raise InvalidSpec("A pool of type %s needs %s" % (req.spec.type, ", ".join(_label(k) for k in missing)))
    if actual is not None and req.state != "absent" and req.spec.type != actual.spec.type:
        raise InvalidSpec("Storage pool %s is of type %s, not %s: libvirt cannot change a pool's type; "
                          "remove the pool first" % (req.name, actual.spec.type, req.spec.type))
    return facts


# --- planning --------------------------------------------------------------------------------
def managed_view(spec, desired):
    """spec restricted to the fields desired manages."""
    out = {}
    for field in PoolSpec.FIELDS:
        if getattr(desired, field) is not None:
            value = getattr(spec, field)
            if field == "auth" and value is not None:
                value = {k: v for k, v in value.items() if k != "uuid"}
            out[field] = value
    return out


def plan_pool(req, actual, facts):
    plan = Plan()
    name = req.name
    if req.state == "absent":
        if actual is None:
            return plan
        if actual.active:
            if req.delete_data:
                plan.add("delete", VOLUMES, key=name)
            plan.add("stop", POOL, "running", "stopped", key=name)
        if req.delete_data:
            plan.add("delete", DATA, key=name)
        if actual.persistent:
            plan.add("undefine", POOL, key=name)
        return plan

    desired = req.spec
    if facts.secret_change:
        plan.add(facts.secret_change, SECRET, key=req.secret.usage)
    if actual is None:
        plan.add("define", POOL, after=managed_view(desired, desired), key=name)
        if req.build and desired.type in BUILDABLE:
            plan.add("build", POOL, key=name)
    else:
        before = managed_view(actual.spec, desired)
        after = managed_view(desired, desired)
        for field in after:
            plan.compare(field, before.get(field), after[field], cold=actual.active)
        if not actual.persistent and not plan.changed:
            plan.add("define", POOL, after=after, key=name)
    plan_run_state(plan, req, actual, POOL)
    return plan


def check_users(req, plan, facts):
    """A stop or restart of a pool that running guests use would pull their disks away."""
    stopping = plan.on(POOL, "stop", "restart")
    if stopping and facts.users:
        why = "restart it to apply %s" % ", ".join(c.target for c in plan.changes if c.cold) \
            if plan.on(POOL, "restart") else "stop it"
        raise InvalidSpec("Cannot %s: storage pool %s holds disks of running guests: %s. Stop them "
                          "first." % (why, req.name, ", ".join(facts.users)), guests=facts.users)


# --- applying --------------------------------------------------------------------------------
def apply_pool(client, req, plan, actual, facts):
    """Carry out the plan, in a fixed order; the only function here that writes."""
    pool = actual.pool if actual is not None else None
    if req.state == "absent":
        if plan.on(VOLUMES, "delete"):
            for vol in client.volumes(pool):
                client.delete_volume(vol)
        if plan.on(POOL, "stop"):
            client.stop_pool(pool)
        if plan.on(DATA, "delete"):
            client.delete_pool(pool)
        if plan.on(POOL, "undefine"):
            client.undefine_pool(pool)
        return
    if plan.on(SECRET):
        _write_secret(client, req.secret, facts.secret)
    if plan.on(POOL, "define") or any(c.subject in PoolSpec.COMPARED for c in plan.of("update")):
        base = actual.xml if actual is not None else PoolXML()
        base.name = req.name
        pool = client.define_pool(req.spec.to_xml(base).to_string(), req.name)
    if plan.on(POOL, "build"):
        client.build_pool(pool, no_overwrite=req.spec.type in FORMATTING)
    if plan.on(POOL, "stop", "restart"):
        client.stop_pool(pool)
    if plan.on(POOL, "start", "restart"):
        if req.build and req.spec.type in BUILDABLE and not plan.on(POOL, "build"):
            # A pool defined elsewhere may never have been built (its directory missing);
            # building is harmless for a directory, and a formatted device is left alone.
            client.build_pool(pool, no_overwrite=req.spec.type in FORMATTING)
        client.start_pool(pool)
    for change in plan.on("autostart"):
        client.set_pool_autostart(pool, change.after)


def _write_secret(client, spec, existing):
    if existing is None:
        xml = spec.to_xml()
    else:
        # Keep the secret's UUID, which pools and guests may refer to; only the digest changes.
        node = parse(client.secret_xml(existing))
        ensure(node, "description").text = "debvirt %s" % spec.digest
        xml = tostring(node)
    secret = client.define_secret(xml, spec.usage)
    client.set_secret_value(secret, spec.value)


# --- results ---------------------------------------------------------------------------------
def view(req, actual):
    """(before, after) for the diff."""
    return views(req, actual, managed_view, managed_view(req.spec, req.spec))


def describe(client, actual, volumes=False):
    out = actual.describe(capacity=actual.capacity, allocation=actual.allocation, available=actual.available)
    if volumes and actual.active:
        out["volumes"] = sorted((describe_volume(client, v) for v in client.volumes(actual.pool)),
                                key=lambda v: v["name"])
    return out


def describe_volume(client, vol):
    xml = VolumeXML(parse(client.volume_xml(vol)))
    out = {"name": vol.name(), "path": xml.path, "format": xml.format,
           "capacity": xml.capacity, "allocation": xml.allocation}
    if xml.backing_path:
        out["backing_store"] = xml.backing_path
    return out


def list_pools(client, names=None, volumes=True):
    return listed(client, client.pools(), names, read_pool, lambda actual: describe(client, actual, volumes=volumes))


def converge_pool(client, req, check_mode, usage=None):
    actual = read_pool(client, req.name)
    facts = inspect_pool(client, req, actual, usage)
    plan = plan_pool(req, actual, facts)
    check_users(req, plan, facts)
    return converge(plan, check_mode, lambda: apply_pool(client, req, plan, actual, facts), "pool", req.name,
                    lambda: view(req, actual), lambda: describe(client, read_pool(client, req.name)),
                    absent=req.state == "absent")
