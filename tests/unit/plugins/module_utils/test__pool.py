# -*- coding: utf-8 -*-
# Copyright: debvirt.cluster developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Storage pools: validation, the XML of every pool type, planner tables, and convergence
against libvirt's test driver (whose parser is libvirt's own)."""

from __future__ import annotations

import hashlib
import os

import pytest

from ansible_collections.debvirt.cluster.plugins.modules.storage_pool import ARGUMENT_SPEC
from ansible_collections.debvirt.cluster.tests.unit.helpers import module_params
from ansible_collections.debvirt.cluster.plugins.module_utils import _pool as P
from ansible_collections.debvirt.cluster.plugins.module_utils._errors import InvalidSpec
from ansible_collections.debvirt.cluster.plugins.module_utils._xml import parse

DATA = os.path.join(os.path.dirname(__file__), "data", "pool")
PREFIX = "u-pool-"

# Every type, with the parameters it needs; the reason says why the type is not run for real on
# the development machine, where only dir and fs pools (and iscsi-direct against tgtd) work.
TYPES = {
    "dir": ({"target": "/srv/images"}, None),
    "fs": ({"target": "/srv/fast", "source": {"devices": ["/dev/sdb"], "format": "ext4"}}, None),
    "logical": ({"source": {"name": "vg0", "devices": ["/dev/sdb"], "format": "lvm2"}, "target": "/dev/vg0"},
                "no device-mapper in the sandbox kernel: LVM volumes cannot be created"),
    "netfs": ({"target": "/mnt/nfs", "source": {"hosts": ["nfs.example.org"], "dir": "/export", "format": "nfs"}},
              "no NFS client in the sandbox kernel"),
    "iscsi": ({"target": "/dev/disk/by-path", "source": {"hosts": ["10.0.0.1:3260"],
                                                         "devices": ["iqn.2026-11.org.example:t1"]}},
              "no kernel iSCSI initiator in the sandbox"),
    "iscsi-direct": ({"source": {"hosts": ["10.0.0.1"], "devices": ["iqn.2026-11.org.example:t1"],
                                 "initiator": "iqn.2026-11.org.example:init"}}, None),
    "rbd": ({"source": {"name": "rbdpool", "hosts": ["mon1", "mon2:6789"],
                        "auth": {"username": "libvirt", "secret": "AQBkZXZ2aXJ0a2V5PT0=", "usage": None}}},
            "no Ceph cluster in the sandbox"),
    "zfs": ({"source": {"name": "tank", "devices": ["/dev/sdc"]}}, "no ZFS in the sandbox kernel"),
}


def params(name, **kw):
    return module_params(ARGUMENT_SPEC, name=name, **kw)


# --- validation ------------------------------------------------------------------------------
@pytest.mark.parametrize("kw, message", [
    ({"name": "bad name", "type": "dir", "target": "/x"}, "Invalid storage pool name"),
    ({"type": None}, "type is required"),
    ({"type": "dir", "target": "relative"}, "target must be an absolute path"),
    ({"type": "dir", "target": "/x", "source": {"name": "x"}}, "A pool of type dir does not take source.name"),
    ({"type": "rbd", "source": {"name": "p", "hosts": ["m"], "dir": "/x"}}, "does not take source.dir"),
    ({"type": "dir", "target": "/x", "permissions": {"mode": "888"}}, "is not an octal mode"),
    ({"type": "rbd", "source": {"name": "p", "hosts": ["m"], "auth": {"username": "u", "secret": ""}}},
     "source.auth needs username and secret"),
    ({"type": "netfs", "target": "/x", "source": {"hosts": ["h:notaport"], "dir": "/e"}}, "is not a host name"),
])
def test_bad_requests_are_refused_before_anything_is_touched(kw, message):
    p = params("u-pool-bad")
    p.update(kw)
    with pytest.raises(InvalidSpec) as e:
        P.request_from_params(p)
    assert message in e.value.msg


def test_absent_needs_no_type():
    req = P.request_from_params(params("u-pool-x", state="absent"))
    assert req.state == "absent" and req.spec.type is None


def test_mode_is_normalised_to_four_octal_digits():
    req = P.request_from_params(params("u-pool-x", type="dir", target="/x", permissions={"mode": "750"}))
    assert req.spec.mode == "0750"


def test_auth_becomes_a_secret_referred_to_by_usage_and_its_value_never_in_the_spec():
    req = P.request_from_params(params("u-pool-r", type="rbd", **TYPES["rbd"][0]))
    assert req.spec.auth == {"type": "ceph", "username": "libvirt", "usage": "debvirt-pool-u-pool-r", "uuid": None}
    assert "AQBk" not in repr(req.spec.as_dict())
    assert req.secret.usage_type == "ceph"
    assert req.secret.digest.startswith("pbkdf2-sha256:600000:")
    xml = parse(req.secret.to_xml())
    assert xml.get("private") == "yes"
    assert xml.findtext("usage/name") == "debvirt-pool-u-pool-r"
    assert req.secret.value not in req.secret.to_xml()


def test_a_secrets_digest_is_salted_slow_and_checked_against_its_own_salt():
    first, second = P.secret_digest("pw"), P.secret_digest("pw")
    scheme, rounds, salt, derived = first.split(":")
    assert (scheme, rounds, len(salt), len(derived)) == ("pbkdf2-sha256", "600000", 32, 64)
    assert first != second  # a fresh salt each time: equal passwords give unequal digests
    assert "pw" not in first and hashlib.sha256(b"pw").hexdigest() not in first
    assert P.secret_matches("pw", first) and P.secret_matches("pw", second)
    assert not P.secret_matches("pw2", first)
    assert P.secret_digest("pw", bytes(16), 1000) == P.secret_digest("pw", bytes(16), 1000)


@pytest.mark.parametrize("stored", [
    "sha256:" + hashlib.sha256(b"pw").hexdigest(),  # earlier releases: rewritten once
    "", "pbkdf2-sha256", "pbkdf2-sha256:600000:zz:00", "pbkdf2-sha256:x:00:00", "pbkdf2-sha256:600000::00",
    "pbkdf2-sha256:0:%s:00" % ("00" * 16), "pbkdf2-sha256:999999999:%s:00" % ("00" * 16),
    "md5:1:00:00",
])
def test_a_digest_in_another_form_does_not_match(stored):
    assert not P.secret_matches("pw", stored)


class _SecretClient:
    """What inspect_pool asks of a host about a secret: it exists with this description."""

    def __init__(self, description):
        self.description = description

    def secret_by_usage(self, usage_type, usage):
        return None if self.description is None else object()

    def secret_xml(self, secret):
        return "<secret><description>%s</description></secret>" % self.description


@pytest.mark.parametrize("description, change", [
    (None, "create"),
    ("debvirt %s" % P.secret_digest("AQBkZXZ2aXJ0a2V5PT0="), None),
    ("debvirt %s" % P.secret_digest("another key"), "update"),
    ("debvirt sha256:%s" % hashlib.sha256(b"AQBkZXZ2aXJ0a2V5PT0=").hexdigest(), "update"),
    ("written by hand", "update"),
])
def test_an_unchanged_secret_is_left_and_a_changed_or_old_one_rewritten(description, change):
    req = P.request_from_params(params("u-pool-r", type="rbd", **TYPES["rbd"][0]))
    req.state = "absent"  # only the secret is looked at: no pool to create
    facts = P.inspect_pool(_SecretClient(description), req, None)
    assert facts.secret_change == change
    if description is not None:
        # The description a write leaves is the one the next run finds unchanged.
        assert P.secret_matches(req.secret.value, parse(req.secret.to_xml()).findtext("description").split()[-1])


def test_iscsi_auth_is_chap_with_an_iscsi_secret():
    p = params("u-pool-i", type="iscsi-direct", **TYPES["iscsi-direct"][0])
    p["source"] = dict(p["source"], auth={"username": "u", "secret": "pw", "usage": "chap-t1"})
    req = P.request_from_params(p)
    assert req.spec.auth["type"] == "chap"
    assert parse(req.secret.to_xml()).findtext("usage/target") == "chap-t1"


# --- XML -------------------------------------------------------------------------------------
def test_redefinition_edits_libvirts_own_document():
    """Golden file: only the managed fields change; UUID and unmanaged permissions stay."""
    with open(os.path.join(DATA, "dir-redefine-in.xml")) as f:
        xml = P.PoolXML.from_string(f.read())
    with open(os.path.join(DATA, "dir-redefine-out.xml")) as f:
        expected = f.read()
    spec = P.PoolSpec(type="dir", target="/srv/images2", mode="0750")
    assert spec.to_xml(xml).to_string() == expected


def test_from_xml_reads_every_field():
    xml = P.PoolXML.from_string(
        "<pool type='rbd'><name>c</name><source><host name='mon1'/><host name='mon2' port='6789'/>"
        "<name>rbd</name><auth type='ceph' username='libvirt'><secret uuid='0d8d1a5c-0000-4000-8000-"
        "000000000001'/></auth></source></pool>")
    spec = P.PoolSpec.from_xml(xml)
    assert spec.hosts == ["mon1", "mon2:6789"]
    assert spec.name == "rbd"
    assert spec.auth == {"type": "ceph", "username": "libvirt", "usage": None,
                         "uuid": "0d8d1a5c-0000-4000-8000-000000000001"}
    assert spec.devices is None and spec.target is None


# --- planning --------------------------------------------------------------------------------
def actual(xml, active=True, autostart=False, persistent=True):
    return P.ActualPool(None, P.PoolXML.from_string(xml), 2 if active else 0, autostart, persistent,
                        (2 if active else 0, 100, 10, 90))


DIR = "<pool type='dir'><name>p</name><target><path>/srv/a</path></target></pool>"


def plan_of(req, act, facts=None):
    return [(c.action, c.target, c.before, c.after, c.cold)
            for c in P.plan_pool(req, act, facts or P.PoolFacts()).changes]


@pytest.mark.parametrize("kw, act, expected", [
    # a new pool: define, build, start, autostart
    ({"type": "dir", "target": "/srv/a", "autostart": True}, None,
     [("define", "storage pool p", None, {"type": "dir", "target": "/srv/a"}, False),
      ("build", "storage pool p", None, None, False),
      ("start", "storage pool p", "stopped", "running", False),
      ("update", "autostart", None, True, False)]),
    # a new pool without build
    ({"type": "rbd", "source": {"name": "r", "hosts": ["m"]}, "build": False, "state": "stopped"}, None,
     [("define", "storage pool p", None, {"type": "rbd", "hosts": ["m"], "name": "r"}, False)]),
    # the same: nothing
    ({"type": "dir", "target": "/srv/a"}, actual(DIR), []),
    # unmanaged fields are not compared
    ({"type": "dir"}, actual(DIR), []),
    # a new target on a running pool: redefine, restart
    ({"type": "dir", "target": "/srv/b"}, actual(DIR),
     [("update", "target", "/srv/a", "/srv/b", True), ("restart", "storage pool p", "running", "running", False)]),
    # a new target on a stopped pool, kept stopped: only redefine
    ({"type": "dir", "target": "/srv/b", "state": "stopped"}, actual(DIR, active=False),
     [("update", "target", "/srv/a", "/srv/b", False)]),
    # start, stop
    ({"type": "dir"}, actual(DIR, active=False), [("start", "storage pool p", "stopped", "running", False)]),
    ({"type": "dir", "state": "stopped"}, actual(DIR), [("stop", "storage pool p", "running", "stopped", False)]),
    # autostart only when asked and different
    ({"type": "dir", "autostart": True}, actual(DIR, autostart=True), []),
    ({"type": "dir", "autostart": False}, actual(DIR, autostart=True), [("update", "autostart", True, False, False)]),
    # absent keeps data unless asked
    ({"state": "absent"}, actual(DIR),
     [("stop", "storage pool p", "running", "stopped", False), ("undefine", "storage pool p", None, None, False)]),
    ({"state": "absent", "delete_data": True}, actual(DIR),
     [("delete", "volumes of storage pool p", None, None, False),
      ("stop", "storage pool p", "running", "stopped", False),
      ("delete", "data of storage pool p", None, None, False),
      ("undefine", "storage pool p", None, None, False)]),
    ({"state": "absent"}, None, []),
    # a transient pool becomes persistent
    ({"type": "dir", "target": "/srv/a"}, actual(DIR, persistent=False),
     [("define", "storage pool p", None, {"type": "dir", "target": "/srv/a"}, False)]),
])
def test_plan_pool(kw, act, expected):
    req = P.request_from_params(params("p", **kw))
    assert plan_of(req, act) == expected


def test_a_changed_secret_is_rewritten_first():
    req = P.request_from_params(params("p", type="rbd", source={"name": "r", "hosts": ["m"],
                                                                "auth": {"username": "u", "secret": "k"}}))
    facts = P.PoolFacts()
    facts.secret_change = "update"
    assert plan_of(req, None, facts)[0] == ("update", "secret debvirt-pool-p", None, None, False)


def test_restart_and_stop_are_refused_while_running_guests_use_the_pool():
    req = P.request_from_params(params("p", type="dir", target="/srv/b"))
    facts = P.PoolFacts()
    facts.users = ["web01", "web02"]
    plan = P.plan_pool(req, actual(DIR), facts)
    with pytest.raises(InvalidSpec) as e:
        P.check_users(req, plan, facts)
    assert "holds disks of running guests: web01, web02" in e.value.msg
    assert "restart it to apply target" in e.value.msg
    # a change that needs no restart is fine
    P.check_users(req, P.plan_pool(P.request_from_params(params("p", type="dir", autostart=True)),
                                   actual(DIR), facts), facts)


def test_view_shows_only_managed_fields_and_state():
    req = P.request_from_params(params("p", type="dir", target="/srv/b", autostart=True))
    before, after = P.view(req, actual(DIR))
    assert before == {"type": "dir", "target": "/srv/a", "state": "running", "autostart": False}
    assert after == {"type": "dir", "target": "/srv/b", "state": "running", "autostart": True}


# --- against libvirt's test driver -----------------------------------------------------------
def _ids():
    return ["%s%s" % (t, "" if why is None else " (real run impossible here: %s)" % why)
            for t, (_p, why) in TYPES.items()]


@pytest.mark.parametrize("ptype", list(TYPES), ids=_ids())
def test_every_type_converges_through_libvirts_parser(live_client, ptype):
    """What the module writes, libvirt's parser reads back as the same spec: a second plan is empty."""
    kw, _why = TYPES[ptype]
    # build=False: the test driver builds nothing and refuses the no-overwrite flag; building is
    # planned in the tables above and run for real by the integration tests (dir, fs).
    req = P.request_from_params(params(PREFIX + ptype, type=ptype, state="stopped", build=False, **kw))
    req.secret = None  # the test driver has no secrets; the secret's own planning is tested above
    assert P.read_pool(live_client, req.name) is None
    plan = P.plan_pool(req, None, P.PoolFacts())
    P.apply_pool(live_client, req, plan, None, P.PoolFacts())
    act = P.read_pool(live_client, req.name)
    assert act is not None and act.spec.type == ptype
    assert P.plan_pool(req, act, P.PoolFacts()).changes == []
    for field in ("target", "devices", "hosts", "dir", "name", "format", "initiator"):
        if getattr(req.spec, field) is not None:
            assert getattr(act.spec, field) == getattr(req.spec, field), field


def test_apply_redefines_keeping_the_uuid(live_client):
    # A stopped pool: the test driver keeps a running pool's new definition aside and does not
    # bring it in on restart, unlike libvirtd (the integration tests restart real pools).
    name = PREFIX + "redefine"
    req = P.request_from_params(params(name, type="dir", target="/srv/a", autostart=True, state="stopped"))
    P.apply_pool(live_client, req, P.plan_pool(req, None, P.PoolFacts()), None, P.PoolFacts())
    first = P.read_pool(live_client, name)
    assert not first.active and first.autostart
    req2 = P.request_from_params(params(name, type="dir", target="/srv/b", state="stopped"))
    plan = P.plan_pool(req2, first, P.PoolFacts())
    assert [(c.action, c.target) for c in plan.changes] == [("update", "target")]
    P.apply_pool(live_client, req2, plan, first, P.PoolFacts())
    second = P.read_pool(live_client, name)
    assert second.spec.target == "/srv/b"
    assert second.xml.uuid == first.xml.uuid
    assert second.autostart
    assert P.plan_pool(req2, second, P.PoolFacts()).changes == []


def test_absent_undefines_and_info_lists(live_client):
    name = PREFIX + "gone"
    req = P.request_from_params(params(name, type="dir", target="/srv/g"))
    P.apply_pool(live_client, req, P.plan_pool(req, None, P.PoolFacts()), None, P.PoolFacts())
    listed = P.list_pools(live_client, [name])
    assert [p["name"] for p in listed] == [name]
    assert listed[0]["state"] == "running" and listed[0]["volumes"] == []
    gone = P.request_from_params(params(name, state="absent"))
    act = P.read_pool(live_client, name)
    P.apply_pool(live_client, gone, P.plan_pool(gone, act, P.PoolFacts()), act, P.PoolFacts())
    assert P.read_pool(live_client, name) is None


def test_a_type_change_is_refused(live_client):
    name = PREFIX + "retype"
    req = P.request_from_params(params(name, type="dir", target="/srv/r"))
    P.apply_pool(live_client, req, P.plan_pool(req, None, P.PoolFacts()), None, P.PoolFacts())
    other = P.request_from_params(params(name, type="fs", target="/srv/r", source={"devices": ["/dev/sdz"]}))
    with pytest.raises(InvalidSpec) as e:
        P.inspect_pool(live_client, other, P.read_pool(live_client, name))
    assert "cannot change a pool's type" in e.value.msg


def test_a_new_pool_missing_required_fields_is_refused(live_client):
    req = P.request_from_params(params(PREFIX + "nofs", type="fs", target="/srv/x"))
    with pytest.raises(InvalidSpec) as e:
        P.inspect_pool(live_client, req, None)
    assert e.value.msg == "A pool of type fs needs source.devices"


def test_converge_predicts_in_check_mode_and_applies_outside_it(live_client):
    """One gate: check mode plans and predicts the pool, defining nothing; the real run makes the
    same changes and returns the pool as libvirt reads it back; then nothing is left to do."""
    req = P.request_from_params(params(PREFIX + "gate", type="dir", target="/srv/gate", state="stopped",
                                       build=False))
    checked = P.converge_pool(live_client, req, True)
    assert checked["changed"] and [(c["action"], c["target"]) for c in checked["changes"]] == [
        ("define", "storage pool %sgate" % PREFIX)]
    assert checked["pool"] == {"name": req.name, "type": "dir", "target": "/srv/gate", "state": "stopped"}
    assert P.read_pool(live_client, req.name) is None
    applied = P.converge_pool(live_client, req, False)
    assert (applied["changes"], applied["diff"]) == (checked["changes"], checked["diff"])
    assert applied["pool"]["uuid"] and applied["pool"]["persistent"] and applied["pool"]["state"] == "stopped"
    again = P.converge_pool(live_client, req, False)
    assert (again["changed"], again["changes"]) == (False, [])


@pytest.mark.parametrize("device", [
    "<disk type='volume' device='disk'><source pool='default-pool' volume='a.qcow2'/><target dev='vda'/></disk>",
    # as a container's root filesystem in a volume is written
    "<filesystem type='file'><source file='/default-pool/a.raw'/><target dir='/'/></filesystem>",
])
@pytest.mark.parametrize("check_mode", [True, False])
def test_delete_data_is_refused_while_a_stopped_domain_uses_the_pool(live_client, device, check_mode):
    live_client.define("<domain type='test'><name>user</name><memory unit='MiB'>64</memory><os><type>hvm</type></os>"
                       "<devices>%s</devices></domain>" % device, "user")
    req = P.request_from_params(params("default-pool", state="absent", delete_data=True))
    with pytest.raises(InvalidSpec) as e:
        P.converge_pool(live_client, req, check_mode)
    assert e.value.msg == ("Cannot delete the data of storage pool default-pool: it holds disks of guests user, "
                           "running or not. Remove them (or detach those disks) first, or leave delete_data out "
                           "to keep the data; nothing was changed")
    assert e.value.details == {"users": ["guest user"]}
    assert P.read_pool(live_client, "default-pool").active
    # Without delete_data the pool goes and its data stays: no guest loses a disk.
    assert P.converge_pool(live_client, P.request_from_params(params("default-pool", state="absent")), True)["changed"]
