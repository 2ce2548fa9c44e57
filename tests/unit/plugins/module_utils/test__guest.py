# -*- coding: utf-8 -*-
# Copyright: debvirt.cluster developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""request_from_params() and plan_guest(): pure functions, tested without libvirt.

The planner tables give (request, actual guest, facts) and the expected changes as
(action, target, cold) triples, in order. Facts are built by hand: they are what inspect()
would have learnt from the host.
"""

from __future__ import annotations

import os

import pytest

from ansible_collections.debvirt.cluster.plugins.module_utils._domain import NEW_DOMAIN, DomainXML
from ansible_collections.debvirt.cluster.plugins.module_utils._errors import InvalidSpec
from ansible_collections.debvirt.cluster.plugins.module_utils._guest import (
    GUEST,
    Actual,
    Facts,
    plan_guest,
    request_from_params,
)
from ansible_collections.debvirt.cluster.plugins.module_utils._xml import parse

GIB = 1024 ** 3

# A running guest as libvirt reports it: vda is a volume this collection created, vdb a volume
# it did not, sda an installer ISO; two NICs with libvirt's MACs.
with open(os.path.join(os.path.dirname(__file__), "data", "guest", "running.xml")) as _f:
    ACTUAL_XML = _f.read()

VDA = {"pool": "default-pool", "volume": "web01.qcow2"}
VDB = {"pool": "default-pool", "volume": "data.qcow2"}
SDA = {"path": "/srv/iso/debian.iso", "device": "cdrom"}
DISKS = [VDA, VDB, SDA]
NICS = [{"network": "default"}, {"bridge": "br0"}]
LABEL = "guest web01"
# The same guest with a cloud-init seed at sda instead of the installer ISO.
SEEDED_XML = ACTUAL_XML.replace(
    "<dv:tag>prod</dv:tag>", "<dv:cloud-init path='/srv/web01-cidata.iso' sha256='ab'/>"
).replace("/srv/iso/debian.iso", "/srv/web01-cidata.iso")


def make_actual(state="running", xml=ACTUAL_XML, autostart=False):
    return Actual(None, DomainXML(parse(xml)), state, autostart)


def make_facts(**values):
    facts = Facts()
    for name, value in values.items():
        assert hasattr(facts, name), name
        setattr(facts, name, value)
    return facts


def run_plan(params, actual_state="running", facts=None, xml=ACTUAL_XML, autostart=False):
    req = request_from_params(dict({"name": "web01"}, **params))
    actual = None if actual_state is None else make_actual(actual_state, xml, autostart)
    plan, desired = plan_guest(req, actual, facts or Facts())
    return req, actual, plan, desired


def summary(plan):
    return [(c.action, c.target, c.cold) for c in plan.changes]


def fake_define(desired, actual, machine=None):
    """What libvirt would hand back after defining desired: MACs for new NICs, machine aliases resolved."""
    base = actual.xml if actual is not None else DomainXML(parse(NEW_DOMAIN))
    base.name = "web01"
    domain = DomainXML(parse(desired.to_xml(base).to_string()))
    if machine is not None:
        domain.machine = machine
    for i, nic in enumerate(domain.interfaces):
        if nic.mac is None:
            nic.mac = "52:54:00:ff:00:%02x" % i
    return domain


NEW_VOLUME = make_facts(
    new_volumes=[("default-pool", "web01.qcow2", 10 * GIB, "qcow2")],
    volume_formats={("volume", "default-pool", "web01.qcow2"): "qcow2"},
    virt_type="kvm",
)
CREATE = {"memory": 1024, "disks": [dict(VDA, size="10G")], "interfaces": [{"network": "default"}]}

# (id, params, actual state or None for "no such guest", facts, expected changes)
PLANS = [
    ("create", CREATE, None, NEW_VOLUME, [
        ("create", "volume default-pool/web01.qcow2", False), ("define", LABEL, False)]),
    ("create-running", dict(CREATE, state="running"), None, NEW_VOLUME, [
        ("create", "volume default-pool/web01.qcow2", False), ("define", LABEL, False), ("start", LABEL, False)]),
    ("create-paused", {"state": "paused"}, None, None, [("define", LABEL, False), ("start", LABEL, False)]),
    ("create-autostart", {"autostart": True}, None, None, [("define", LABEL, False), ("update", "autostart", False)]),
    ("create-absent", {"state": "absent"}, None, None, []),
    ("noop-name-only", {}, "running", None, []),
    ("noop-full-spec", {"memory": 2048, "max_memory": 4096, "vcpus": 2, "max_vcpus": 4, "machine": "pc-q35-7.2",
                        "cpu_mode": "host-passthrough", "firmware": "bios", "tags": ["web", "prod", "web"],
                        "graphics": {"type": "vnc"}, "disks": DISKS, "interfaces": NICS, "autostart": False},
     "running", None, []),
    ("noop-macs-given", {"interfaces": [{"network": "default", "mac": "52:54:00:AA:00:01"},
                                        {"bridge": "br0", "mac": "52:54:00:aa:00:02"}]}, "running", None, []),
    ("noop-nic-order", {"interfaces": [{"bridge": "br0"}, {"network": "default"}]}, "running", None, []),
    ("noop-disk-fields", {"disks": [dict(VDA, format="qcow2", bus="virtio", size="50G"), VDB, dict(SDA, readonly=True)]},
     "running", None, []),
    ("noop-disk-order", {"disks": [SDA, VDB, VDA]}, "running", None, []),
    ("hot-memory", {"memory": 3072}, "running", None, [("update", "memory", False)]),
    ("hot-memory-down", {"memory": 1024}, "running", None, [("update", "memory", False)]),
    ("cold-memory", {"memory": 8192}, "running", None, [("update", "max_memory", True), ("update", "memory", True)]),
    ("memory-stopped", {"memory": 8192}, "stopped", None, [("update", "max_memory", False), ("update", "memory", False)]),
    ("cold-max-memory", {"max_memory": 8192}, "running", None, [("update", "max_memory", True)]),
    ("hot-vcpus", {"vcpus": 4}, "running", None, [("update", "vcpus", False)]),
    ("cold-vcpus", {"vcpus": 6}, "running", None, [("update", "max_vcpus", True), ("update", "vcpus", True)]),
    ("disk-add-virtio", {"disks": DISKS + [{"pool": "default-pool", "volume": "extra.qcow2"}]}, "running",
     make_facts(volume_formats={("volume", "default-pool", "extra.qcow2"): "qcow2"}), [("add", "disk vdc", False)]),
    ("disk-add-sata", {"disks": DISKS + [{"path": "/srv/extra.raw", "bus": "sata"}]}, "running", None,
     [("add", "disk sdb", True)]),
    ("disk-add-sata-stopped", {"disks": DISKS + [{"path": "/srv/extra.raw", "bus": "sata"}]}, "stopped", None,
     [("add", "disk sdb", False)]),
    ("disk-add-scsi", {"disks": DISKS + [{"path": "/srv/extra.raw", "bus": "scsi"}]}, "running", None,
     [("add", "disk sdb", False)]),
    ("cdrom-add", {"disks": DISKS + [{"path": "/srv/iso/tools.iso", "device": "cdrom"}]}, "running", None,
     [("add", "disk sdb", True)]),
    ("disk-add-new-volume", {"disks": DISKS + [{"pool": "default-pool", "volume": "new.qcow2", "size": "1G"}]}, "running",
     make_facts(new_volumes=[("default-pool", "new.qcow2", GIB, "qcow2")],
                volume_formats={("volume", "default-pool", "new.qcow2"): "qcow2"}),
     [("create", "volume default-pool/new.qcow2", False), ("add", "disk vdc", False)]),
    ("disk-remove-virtio", {"disks": [VDA, SDA]}, "running", None, [("remove", "disk vdb", False)]),
    ("disk-remove-cdrom", {"disks": [VDA, VDB]}, "running", None, [("remove", "disk sda", True)]),
    ("disk-remove-all", {"disks": []}, "stopped", None,
     [("remove", "disk vda", False), ("remove", "disk vdb", False), ("remove", "disk sda", False)]),
    ("disk-target-new-source", {"disks": [VDA, {"target": "vdb", "pool": "default-pool", "volume": "other.qcow2"}, SDA]},
     "running", None, [("update", "disk vdb source", True)]),
    ("disk-cache", {"disks": [dict(VDA, cache="none"), VDB, SDA]}, "running", None, [("update", "disk vda cache", True)]),
    ("disk-boot-order", {"disks": [dict(VDA, boot_order=1), VDB, SDA]}, "stopped", None,
     [("update", "disk vda boot_order", False)]),
    ("nic-source-positional", {"interfaces": [{"network": "default"}, {"network": "backend"}]}, "running", None,
     [("update", "interface 52:54:00:aa:00:02 source", True)]),
    ("nic-remove", {"interfaces": [{"network": "default"}]}, "running", None,
     [("remove", "interface 52:54:00:aa:00:02", False)]),
    ("nic-add", {"interfaces": NICS + [{"network": "backend"}]}, "running", None,
     [("add", "interface on network backend", False)]),
    ("nic-model", {"interfaces": [{"network": "default", "model": "e1000e"}, {"bridge": "br0"}]}, "running", None,
     [("update", "interface 52:54:00:aa:00:01 model", True)]),
    ("nic-new-mac", {"interfaces": [{"network": "default", "mac": "52:54:00:aa:00:09"}, {"bridge": "br0"}]}, "running",
     None, [("add", "interface on network default", False), ("remove", "interface 52:54:00:aa:00:01", False)]),
    ("graphics-same", {"graphics": {"type": "vnc", "listen": "127.0.0.1"}}, "running", None, []),
    ("graphics-none", {"graphics": {"type": "none"}}, "running", None, [("update", "graphics", True)]),
    ("graphics-listen", {"graphics": {"type": "vnc", "listen": "0.0.0.0"}}, "running", None, [("update", "graphics", True)]),
    ("graphics-port", {"graphics": {"type": "vnc", "port": 5901}}, "running", None, [("update", "graphics", True)]),
    ("description", {"description": "Web frontend"}, "running", None, [("update", "description", False)]),
    ("tags", {"tags": ["db"]}, "running", None, [("update", "tags", False)]),
    ("tags-none-left", {"tags": []}, "running", None, [("update", "tags", False)]),
    ("machine-alias-same", {"machine": "q35"}, "running", make_facts(machine="pc-q35-7.2"), []),
    ("machine-alias-other", {"machine": "pc"}, "running", make_facts(machine="pc-i440fx-7.2"),
     [("update", "machine", True)]),
    ("firmware", {"firmware": "uefi"}, "stopped", None, [("update", "firmware", False)]),
    ("cpu-model", {"cpu_model": "Haswell"}, "running", None, [("update", "cpu_mode", True), ("update", "cpu_model", True)]),
    ("virt-type", {"virt_type": "qemu"}, "running", None, [("update", "virt_type", True)]),
    ("kernel", {"kernel": "/boot/vmlinuz", "cmdline": "console=ttyS0"}, "running", None,
     [("update", "kernel", True), ("update", "cmdline", True)]),
    ("serial-log", {"serial_log": "/var/log/web01.log"}, "running", None, [("update", "serial_log", True)]),
    ("autostart-same", {"autostart": False}, "running", None, []),
    ("autostart", {"autostart": True}, "running", None, [("update", "autostart", False)]),
]


@pytest.mark.parametrize("params, actual_state, facts, expected", [p[1:] for p in PLANS], ids=[p[0] for p in PLANS])
def test_plan(params, actual_state, facts, expected):
    _req, _actual, plan, _desired = run_plan(params, actual_state, facts)
    assert summary(plan) == expected


@pytest.mark.parametrize("params, actual_state, facts", [p[1:4] for p in PLANS if p[2] is not None],
                         ids=[p[0] for p in PLANS if p[2] is not None])
def test_applying_the_plan_converges(params, actual_state, facts):
    """Apply a plan (to_xml as apply_guest does), read it back: the second plan is empty."""
    req, actual, plan, desired = run_plan(params, actual_state, facts)
    after = Actual(None, fake_define(desired, actual, facts and facts.machine), actual.state, bool(req.autostart))
    if plan.has("start", "resume"):
        after.state = "running"
    elif plan.has("stop"):
        after.state = "stopped"
    elif plan.has("pause"):
        after.state = "paused"
    # The volumes exist now: inspect() would report their formats and nothing new to create.
    again_facts = make_facts(volume_formats=dict(facts.volume_formats) if facts else {},
                             machine=facts.machine if facts else None)
    again, _desired = plan_guest(req, after, again_facts)
    assert summary(again) == []


@pytest.mark.parametrize("params, facts", [
    (CREATE, NEW_VOLUME),
    ({"memory": 512, "vcpus": 2, "interfaces": NICS + [{"network": "default", "mac": "52:54:00:12:34:56"}],
      "graphics": {"type": "vnc"}, "tags": ["b", "a"], "description": "x", "firmware": "uefi",
      "machine": "q35", "cpu_mode": "host-model",
      "disks": [{"path": "/srv/a.qcow2"}, {"path": "/srv/b.iso", "device": "cdrom"}, {"path": "/dev/vg/c", "bus": "sata"}]},
     make_facts(virt_type="qemu", machine="pc-q35-7.2")),
], ids=["volume-and-network", "everything"])
def test_created_guest_converges(params, facts):
    req, _actual, plan, desired = run_plan(params, None, facts)
    assert plan.has("define")
    created = Actual(None, fake_define(desired, None, facts.machine), "stopped", False)
    again, _desired = plan_guest(req, created, make_facts(volume_formats=dict(facts.volume_formats), machine=facts.machine))
    assert summary(again) == []


def test_create_fills_defaults_and_records_created_volumes():
    _req, _actual, _plan, desired = run_plan(CREATE, None, NEW_VOLUME)
    assert (desired.virt_type, desired.memory, desired.max_memory, desired.vcpus, desired.max_vcpus) == \
        ("kvm", 1024, 1024, 1, 1)
    assert [d.as_dict() for d in desired.disks] == [
        {"target": "vda", "device": "disk", "bus": "virtio", "format": "qcow2", "pool": "default-pool",
         "volume": "web01.qcow2"}]
    assert desired.interfaces[0].model == "virtio"
    assert desired.created == ["default-pool/web01.qcow2"]


def test_new_volume_on_existing_guest_is_added_to_created():
    facts = make_facts(new_volumes=[("default-pool", "new.qcow2", GIB, "qcow2")])
    new = {"pool": "default-pool", "volume": "new.qcow2", "size": "1G"}
    _req, _actual, _plan, desired = run_plan({"disks": DISKS + [new]}, "running", facts)
    assert desired.created == ["default-pool/new.qcow2", "default-pool/web01.qcow2"]


def test_hot_changes_are_marked_live_and_cold_ones_not():
    _req, _actual, plan, _desired = run_plan({"memory": 3072, "vcpus": 3}, "running")
    assert [(c.target, c.extra.get("live"), c.cold) for c in plan.changes] == [("memory", True, False), ("vcpus", True, False)]
    _req, _actual, plan, _desired = run_plan({"memory": 3072}, "stopped")
    assert [(c.target, c.extra.get("live"), c.cold) for c in plan.changes] == [("memory", False, False)]
    _req, _actual, plan, _desired = run_plan({"disks": [VDA, SDA]}, "running")
    assert plan.changes[0].extra == {"live": True}


def test_kept_interfaces_keep_their_macs():
    _req, actual, _plan, desired = run_plan({"interfaces": [{"bridge": "br0"}, {"network": "default"}]})
    assert [(n.bridge, n.network, n.mac) for n in desired.interfaces] == [
        ("br0", None, "52:54:00:aa:00:02"), (None, "default", "52:54:00:aa:00:01")]
    domain = fake_define(desired, actual)
    assert sorted(i.mac for i in domain.interfaces) == ["52:54:00:aa:00:01", "52:54:00:aa:00:02"]


def test_positional_match_keeps_the_mac_and_the_address():
    _req, actual, _plan, desired = run_plan({"interfaces": [{"network": "default"}, {"network": "backend"}]})
    assert [(n.network, n.mac) for n in desired.interfaces] == [
        ("default", "52:54:00:aa:00:01"), ("backend", "52:54:00:aa:00:02")]
    nic = fake_define(desired, actual).interfaces[1]
    assert (nic.type, nic.network, nic.bridge) == ("network", "backend", None)
    assert nic.node.find("address").get("bus") == "0x02"


def test_new_disks_get_free_targets_and_defaults():
    params = {"disks": DISKS + [{"pool": "default-pool", "volume": "x.raw"}, {"path": "/srv/y.qcow2"},
                                {"path": "/srv/z.iso", "device": "cdrom"}]}
    facts = make_facts(volume_formats={("volume", "default-pool", "x.raw"): "raw"})
    _req, _actual, _plan, desired = run_plan(params, "stopped", facts)
    assert [(d.target, d.bus, d.format, d.readonly) for d in desired.disks[3:]] == [
        ("vdc", "virtio", "raw", None), ("vdd", "virtio", "qcow2", None), ("sdb", "sata", "raw", True)]
    assert all(d.size is None for d in desired.disks)


def test_change_details_for_the_diff():
    _req, _actual, plan, _desired = run_plan({"memory": 8192, "interfaces": [{"network": "default"}]})
    assert plan.as_list() == [
        {"action": "update", "target": "max_memory", "before": 4096, "after": 8192, "needs_restart": True},
        {"action": "update", "target": "memory", "before": 2048, "after": 8192, "needs_restart": True},
        {"action": "remove", "target": "interface 52:54:00:aa:00:02",
         "before": {"bridge": "br0", "model": "virtio", "mac": "52:54:00:aa:00:02"}},
    ]


# --- state ------------------------------------------------------------------------------------
STATES = [
    ("running", "stopped", [("start", LABEL)]),
    ("running", "paused", [("resume", LABEL)]),
    ("running", "running", []),
    ("running", "crashed", []),
    ("paused", "stopped", [("start", LABEL)]),
    ("paused", "running", [("pause", LABEL)]),
    ("paused", "paused", []),
    ("stopped", "running", [("stop", LABEL)]),
    ("stopped", "paused", [("stop", LABEL)]),
    ("stopped", "crashed", [("stop", LABEL)]),
    ("stopped", "stopped", []),
    ("present", "running", []),
    ("present", "paused", []),
    ("present", "stopped", []),
    ("absent", "running", [("stop", LABEL), ("undefine", LABEL)]),
    ("absent", "paused", [("stop", LABEL), ("undefine", LABEL)]),
    ("absent", "stopped", [("undefine", LABEL)]),
    ("absent", None, []),
]


@pytest.mark.parametrize("state, actual_state, expected", STATES)
def test_state_transitions(state, actual_state, expected):
    _req, _actual, plan, desired = run_plan({"state": state}, actual_state)
    assert [(c.action, c.target) for c in plan.changes] == expected
    assert (desired is None) == (state == "absent")


def test_start_paused_is_flagged():
    _req, _actual, plan, _desired = run_plan({"state": "paused"}, "stopped")
    assert plan.changes[0].extra == {"paused": True}


@pytest.mark.parametrize("actual_state, prefix", [("running", [("stop", LABEL)]), ("stopped", [])])
def test_absent_with_remove_storage_deletes_only_created_volumes(actual_state, prefix):
    removable = make_facts(removable=["default-pool/web01.qcow2"])
    _req, _actual, plan, _desired = run_plan({"state": "absent", "remove_storage": True, "disks": DISKS}, actual_state,
                                             removable)
    assert [(c.action, c.target) for c in plan.changes] == prefix + [
        ("undefine", LABEL), ("delete", "volume default-pool/web01.qcow2")]
    # What inspect() did not prove unused is kept, whatever the guest's bookkeeping says it made.
    _req, _actual, plan, _desired = run_plan({"state": "absent", "remove_storage": True}, actual_state)
    assert [(c.action, c.target) for c in plan.changes] == prefix + [("undefine", LABEL)]


def test_absent_with_remove_storage_deletes_the_seed():
    xml = ACTUAL_XML.replace("<dv:tag>prod</dv:tag>", "<dv:cloud-init path='/srv/web01-cidata.iso' sha256='ab'/>")
    _req, _actual, plan, _desired = run_plan({"state": "absent", "remove_storage": True}, "stopped", xml=xml,
                                             facts=make_facts(removable=["default-pool/web01.qcow2"],
                                                              removable_seed="/srv/web01-cidata.iso"))
    assert [(c.action, c.target) for c in plan.changes] == [
        ("undefine", LABEL), ("delete", "volume default-pool/web01.qcow2"), ("delete", "cloud-init seed /srv/web01-cidata.iso")]


def test_absent_keeps_a_seed_inspect_did_not_prove_ours():
    xml = ACTUAL_XML.replace("<dv:tag>prod</dv:tag>", "<dv:cloud-init path='/srv/web01-cidata.iso' sha256='ab'/>")
    _req, _actual, plan, _desired = run_plan({"state": "absent", "remove_storage": True}, "stopped", xml=xml)
    assert [(c.action, c.target) for c in plan.changes] == [("undefine", LABEL)]


def test_absent_keeps_storage_unless_asked():
    _req, _actual, plan, _desired = run_plan({"state": "absent"}, "stopped")
    assert not plan.has("delete")


# --- restart ----------------------------------------------------------------------------------
RESTARTS = [
    # (params, actual state, expected tail of the plan, reboot_required)
    ({"memory": 8192, "restart": True}, "running", [("update", "memory", True), ("restart", LABEL, False)], False),
    ({"memory": 8192, "restart": True, "state": "running"}, "running",
     [("update", "memory", True), ("restart", LABEL, False)], False),
    ({"memory": 8192}, "running", [("update", "memory", True)], True),
    ({"memory": 3072, "restart": True}, "running", [("update", "memory", False)], False),
    ({"description": "x", "restart": True}, "running", [("update", "description", False)], False),
    ({"memory": 8192, "restart": True, "state": "running"}, "stopped",
     [("update", "memory", False), ("start", LABEL, False)], False),
    ({"memory": 8192, "restart": True}, "paused", [("update", "memory", True)], True),
]


@pytest.mark.parametrize("params, actual_state, tail, rebooted", RESTARTS)
def test_restart_only_for_cold_changes_when_asked(params, actual_state, tail, rebooted):
    _req, _actual, plan, _desired = run_plan(params, actual_state)
    assert summary(plan)[-len(tail):] == tail
    assert plan.has("restart") == any(a == "restart" for a, _t, _c in tail)
    assert GUEST.reboot_required(plan) is rebooted


# --- the diff ---------------------------------------------------------------------------------
def test_view_shows_managed_fields_and_state():
    req, actual, _plan, desired = run_plan({"memory": 3072, "interfaces": [{"network": "default"}], "autostart": True})
    before, after = GUEST.view(req, actual, desired)
    assert before == {"memory": 2048, "state": "running", "autostart": False,
                      "interfaces": [{"network": "default", "model": "virtio", "mac": "52:54:00:aa:00:01"},
                                     {"bridge": "br0", "model": "virtio", "mac": "52:54:00:aa:00:02"}]}
    assert after == {"memory": 3072, "state": "running", "autostart": True,
                     "interfaces": [{"network": "default", "model": "virtio", "mac": "52:54:00:aa:00:01"}]}


def test_view_of_create_shows_the_whole_guest_and_absent_nothing():
    req, actual, _plan, desired = run_plan(CREATE, None, NEW_VOLUME)
    before, after = GUEST.view(req, actual, desired)
    assert before == {}
    assert after["state"] == "stopped"
    assert after["max_memory"] == 1024
    assert "created" not in after
    req, actual, _plan, desired = run_plan({"state": "absent"}, "running")
    assert GUEST.view(req, actual, desired) == ({"state": "running"}, {})


def test_view_hides_the_vnc_password():
    req, actual, _plan, desired = run_plan({"graphics": {"type": "vnc", "password": "s3cret"}})
    _before, after = GUEST.view(req, actual, desired)
    assert after["graphics"]["password"] == "********"


# --- cloud-init seed ----------------------------------------------------------------------------
def seed_facts(path, sha256="ab"):
    return make_facts(seed={"path": str(path), "sha256": sha256, "files": {"user-data": "#cloud-config\n{}\n"}})


def test_seed_of_a_new_guest(tmp_path):
    path = tmp_path / "web01-cidata.iso"
    _req, _actual, plan, desired = run_plan({"disks": [{"path": "/srv/web01.qcow2"}], "cloud_init": {}}, None,
                                            seed_facts(path))
    assert summary(plan) == [("define", LABEL, False), ("create", "cloud-init seed %s" % path, False)]
    # The seed takes the first free SATA target, beside the user's virtio disk.
    assert (desired.seed["path"], desired.seed["target"]) == (str(path), "sda")


@pytest.mark.parametrize("sha256, exists, expected", [
    ("ab", True, []),
    ("cd", True, [("update", "cloud-init seed %s", True)]),
    ("ab", False, [("update", "cloud-init seed %s", True)]),
])
def test_seed_of_an_existing_guest(tmp_path, sha256, exists, expected):
    path = tmp_path / "web01-cidata.iso"
    if exists:
        path.write_bytes(b"iso")
    xml = SEEDED_XML.replace("/srv/web01-cidata.iso", str(path))
    _req, actual, plan, desired = run_plan({"cloud_init": {}}, "running", seed_facts(path, sha256), xml=xml)
    assert summary(plan) == [(a, t % path, c) for a, t, c in expected]
    assert desired.seed["target"] == "sda"
    assert [d.target for d in fake_define(desired, actual).disks] == ["vda", "vdb", "sda"]


# --- bugs -------------------------------------------------------------------------------------
def test_changing_the_vnc_password_is_planned():
    xml = ACTUAL_XML.replace("listen='127.0.0.1'>", "listen='127.0.0.1' passwd='old-pass'>")
    _req, _actual, plan, _desired = run_plan({"graphics": {"type": "vnc", "password": "new-pass"}}, xml=xml)
    assert summary(plan) == [("update", "graphics", True)], \
        "BUG: a new VNC password is never applied: GraphicsSpec.__eq__ compares as_dict(), which masks both passwords"


@pytest.mark.parametrize("field", ["description", "kernel", "initrd", "cmdline"])
def test_empty_string_converges(field):
    """"" clears a field (to_xml writes `value or None`); the guest then has none, so no change."""
    params = {field: ""}
    if field == "initrd":
        params["kernel"] = ""
    req, actual, _plan, desired = run_plan(params)
    after = Actual(None, fake_define(desired, actual), "running", False)
    assert getattr(after.spec, field) is None
    again, _desired = plan_guest(req, after, Facts())
    assert summary(again) == [], "BUG: %s '' plans 'update %s None -> \"\"' on every run" % (field, field)


@pytest.mark.parametrize("vcpu", ["<vcpu placement='static' current='2'>4</vcpu>", "<vcpu placement='static'>2</vcpu>"],
                         ids=["with-current", "without-current"])
def test_max_vcpus_alone_plans_what_happens(vcpu):
    """Raising only max_vcpus must not change the vCPU count behind the plan's back.

    libvirt leaves out current= when every vCPU is online, which is how most guests look.
    """
    xml = ACTUAL_XML.replace("<vcpu placement='static' current='2'>4</vcpu>", vcpu)
    req, actual, plan, desired = run_plan({"max_vcpus": 8}, xml=xml)
    assert summary(plan) == [("update", "max_vcpus", True)]
    after = fake_define(desired, actual)
    assert make_actual(xml=after.to_string()).spec.vcpus == 2, \
        "BUG: the plan says only max_vcpus -> 8, but the guest is defined with 8 vCPUs online"


def test_new_cdrom_does_not_take_the_seed_target():
    """The cloud-init seed sits at sda and is not one of the user's disks; a new cdrom needs sdb."""
    req, actual, plan, desired = run_plan({"disks": [VDA, VDB, {"path": "/srv/iso/tools.iso", "device": "cdrom"}]},
                                          xml=SEEDED_XML)
    assert actual.spec.seed["path"] == "/srv/web01-cidata.iso"
    after = fake_define(desired, actual)
    assert sorted((d.target, d.path) for d in after.disks if d.device == "cdrom") == [
        ("sda", "/srv/web01-cidata.iso"), ("sdb", "/srv/iso/tools.iso")], \
        "BUG: the new cdrom got target sda and to_xml overwrote the cloud-init seed disk with it"
    assert summary(plan) == [("add", "disk sdb", True)]


# --- request_from_params ----------------------------------------------------------------------
INVALID = [
    ({"name": ""}, "Invalid guest name ''"),
    ({"name": "-web"}, "Invalid guest name '-web'"),
    ({"name": "web 01"}, "Invalid guest name 'web 01'"),
    ({"name": "web/01"}, "Invalid guest name"),
    ({"name": "a" * 64}, "at most 63 characters"),
    ({"name": None}, "Invalid guest name None"),
    ({"disks": [{"path": "/a.qcow2", "pool": "p", "volume": "v"}]}, r"disks\[0\] needs exactly one of path or pool \(with volume\)"),
    ({"disks": [{}]}, r"disks\[0\] needs exactly one of path or pool"),
    ({"disks": [{"path": "/a"}, {"pool": "default-pool"}]}, r"disks\[1\]: pool default-pool needs volume \(the volume's name\)"),
    ({"disks": [{"path": "/a", "volume": "v"}]}, r"disks\[0\]: volume v needs pool"),
    ({"disks": [{"path": "/a", "size": "10G"}]}, r"disks\[0\]: size creates a volume and needs pool and volume"),
    ({"disks": [{"pool": "p", "volume": "v", "size": "ten gigs"}]}, r"disks\[0\]: size 'ten gigs' is not a size like 10G or 512MiB"),
    ({"disks": [{"pool": "p", "volume": "v", "size": "10X"}]}, "is not a size like"),
    ({"disks": [{"pool": "p", "volume": "v", "size": "0"}]}, r"disks\[0\]: size must be positive, got '0'"),
    ({"disks": [{"pool": "p", "volume": "v", "size": -5}]}, "size must be positive, got -5"),
    ({"disks": [{"path": "/a", "target": "xyz"}]}, r"disks\[0\]: target 'xyz' is not a disk name like vdb or sdc"),
    ({"memory": 4096, "max_memory": 2048}, r"memory \(4096 MiB\) is larger than max_memory \(2048 MiB\)"),
    ({"vcpus": 8, "max_vcpus": 4}, r"vcpus \(8\) is larger than max_vcpus \(4\)"),
    ({"memory": 0}, "memory must be at least 1, got 0"),
    ({"max_vcpus": -1}, "max_vcpus must be at least 1, got -1"),
    ({"cpu_model": "Haswell", "cpu_mode": "host-model"}, "cpu_model 'Haswell' needs cpu_mode custom, not host-model"),
    ({"cpu_model": "Haswell", "cpu_mode": "host-passthrough"}, "needs cpu_mode custom, not host-passthrough"),
    ({"cpu_mode": "custom"}, "cpu_mode custom needs cpu_model"),
    ({"initrd": "/boot/initrd.img"}, r"initrd and cmdline need kernel \(direct kernel boot\)"),
    ({"cmdline": "console=ttyS0"}, "initrd and cmdline need kernel"),
    ({"interfaces": [{"network": "default", "mac": "52:54:00:zz:00:01"}]},
     r"interfaces\[0\]\.mac: '52:54:00:zz:00:01' is not a unicast MAC address"),
    ({"interfaces": [{"network": "default", "mac": "52:54:00:00:01"}]}, "is not a unicast MAC address"),
    ({"interfaces": [{"network": "default"}, {"network": "default", "mac": "01:00:5e:00:00:01"}]},
     r"interfaces\[1\]\.mac: '01:00:5e:00:00:01' is not a unicast MAC address"),
    ({"interfaces": [{"network": "default", "bridge": "br0"}]}, r"interfaces\[0\] needs exactly one of network or bridge"),
    ({"interfaces": [{}]}, r"interfaces\[0\] needs exactly one of network or bridge"),
    ({"disks": [{"path": "/a.qcow2"}, {"path": "/b.qcow2"}, {"path": "/a.qcow2"}]},
     "disks list the same source more than once: /a.qcow2$"),
    ({"disks": [{"pool": "p", "volume": "v"}, {"pool": "p", "volume": "v", "size": "1G"}]},
     "disks list the same source more than once: p/v$"),
    ({"disks": [{"path": "/a", "target": "vdb"}, {"path": "/b", "target": "vdb"}]}, "disks list the same target more than once"),
    ({"interfaces": [{"network": "default", "mac": "52:54:00:00:00:01"}, {"bridge": "br0", "mac": "52:54:00:00:00:01"}]},
     "interfaces list the same MAC more than once"),
    # The same MAC in two spellings is still the same MAC.
    ({"interfaces": [{"network": "default", "mac": "52:54:00:AB:00:01"}, {"bridge": "br0", "mac": "52:54:00:ab:00:01"}]},
     "interfaces list the same MAC more than once"),
]

# What libvirt or the host refuses only in the real run (after new volumes were made), refused
# here before anything is read; each message names the option.
LIBVIRT_REFUSES = [
    ({"disks": [{"pool": "p", "volume": "../x.qcow2", "size": "64MiB"}]},
     r"^disks\[0\]\.volume: invalid volume name '\.\./x\.qcow2': use letters, digits and _\.\+-:@"),
    ({"disks": [{"path": "/a"}, {"pool": "p", "volume": "sub/x.qcow2", "size": "1G"}]},
     r"^disks\[1\]\.volume: invalid volume name 'sub/x\.qcow2'"),
    ({"disks": [{"pool": "p", "volume": ".."}]}, r"^disks\[0\]\.volume: invalid volume name '\.\.'"),
    ({"disks": [{"pool": "my pool", "volume": "x.qcow2"}]}, r"^disks\[0\]\.pool: invalid storage pool name 'my pool'"),
    ({"disks": [{"path": "images/a.qcow2"}]}, r"^disks\[0\]\.path must be an absolute path, got 'images/a\.qcow2'$"),
    ({"disks": [{"path": "/a\x00.qcow2"}]}, r"^disks\[0\]\.path '/a\\x00\.qcow2' holds control characters$"),
    ({"disks": [{"path": "/a", "boot_order": 0}]}, r"^disks\[0\]\.boot_order must be at least 1, got 0$"),
    ({"disks": [{"path": "/a", "boot_order": 1}, {"path": "/b"}, {"path": "/c", "boot_order": 1}]},
     r"^disks\[2\]\.boot_order 1 is already that of disks\[0\]$"),
    ({"interfaces": [{"network": "a/b"}]}, r"^interfaces\[0\]\.network: invalid network name 'a/b'"),
    ({"interfaces": [{"network": "default"}, {"bridge": "../../../tmp"}]},
     r"^interfaces\[1\]\.bridge: '\.\./\.\./\.\./tmp' is not a Linux interface name"),
    ({"interfaces": [{"bridge": "a-bridge-too-long"}]}, r"^interfaces\[0\]\.bridge: 'a-bridge-too-long' is not a Linux"),
    ({"interfaces": [{"network": "default", "model": "e1000 e"}]},
     r"^interfaces\[0\]\.model: 'e1000 e' is not a NIC model name such as virtio or e1000e$"),
    ({"graphics": {"type": "vnc", "password": "123456789"}},
     r"^graphics\.password is longer than the 8 characters libvirt takes for a VNC console \(SPICE has no such limit\)$"),
    # libvirt counts bytes: five two-byte characters are ten.
    ({"graphics": {"type": "vnc", "password": "\u00e9\u00e9\u00e9\u00e9\u00e9"}}, r"^graphics\.password is longer than"),
    ({"graphics": {"type": "spice", "password": "bad\x07"}}, r"^graphics\.password holds control characters"),
    ({"graphics": {"type": "vnc", "port": 80}}, r"^graphics\.port must be at least 5900, got 80$"),
    ({"graphics": {"type": "vnc", "port": 70000}},
     r"^graphics\.port must be at most 65535 for vnc \(libvirt's range\), got 70000$"),
    ({"graphics": {"type": "spice", "port": 0}}, r"^graphics\.port must be at least 1, got 0$"),
    ({"graphics": {"type": "vnc", "listen": "no such host"}}, r"^graphics\.listen: 'no such host' is not a valid host name"),
    ({"memory": 2 ** 43}, r"^memory must be at most 8796093022207 MiB \(libvirt's limit\), got 8796093022208$"),
    ({"max_memory": 2 ** 60}, r"^max_memory must be at most 8796093022207 MiB"),
    ({"vcpus": 2 ** 31}, r"^vcpus must be at most 8192 \(the most CPUs a Linux host has\), got 2147483648$"),
    ({"max_vcpus": 8193}, r"^max_vcpus must be at most 8192"),
    ({"shutdown_timeout": -1}, r"^shutdown_timeout must be at least 0, got -1$"),
    ({"kernel": "vmlinuz"}, r"^kernel must be an absolute path, got 'vmlinuz'$"),
    ({"kernel": "/k", "initrd": "initrd.img"}, r"^initrd must be an absolute path, got 'initrd\.img'$"),
    ({"serial_log": "serial.log"}, r"^serial_log must be an absolute path, got 'serial\.log'$"),
    ({"machine": ""}, r"^machine must not be empty$"),
    ({"cpu_model": "Has\x00well"}, r"^cpu_model holds control characters"),
    ({"kernel": "/k", "cmdline": "console=ttyS0\x1b"}, r"^cmdline holds control characters"),
    ({"description": "bell\x07"}, r"^description holds control characters, which libvirt's XML cannot carry$"),
    ({"tags": ["web", ""]}, r"^tags\[1\] must not be empty$"),
    ({"tags": ["\x01"]}, r"^tags\[0\] holds control characters"),
    ({"cloud_init": {"path": "seed.iso"}}, r"^cloud_init\.path must be an absolute path, got 'seed\.iso'$"),
    ({"cloud_init": {"path": "/srv/seeds/"}}, r"^cloud_init\.path /srv/seeds/ names a directory: give the path of the seed file$"),
    ({"cloud_init": {"user_data": 5}}, r"^cloud_init\.user_data must be text or a dict, got int$"),
    ({"cloud_init": {"path": "/srv/seed.iso"}, "disks": [{"path": "/a"}, {"path": "/srv//seed.iso"}]},
     r"^cloud_init\.path /srv/seed\.iso is disks\[1\]\.path too: the seed would overwrite that disk$"),
    # The default seed path is the guest's name's.
    ({"cloud_init": {}, "disks": [{"path": "/var/lib/libvirt/images/web01-cidata.iso"}]},
     r"^cloud_init\.path /var/lib/libvirt/images/web01-cidata\.iso is disks\[0\]\.path too"),
]


@pytest.mark.parametrize("params, message", INVALID, ids=[str(n) for n in range(len(INVALID))])
def test_invalid_requests(params, message):
    with pytest.raises(InvalidSpec, match=message):
        request_from_params(dict({"name": "web01"}, **params))


@pytest.mark.parametrize("params, message", LIBVIRT_REFUSES, ids=[str(n) for n in range(len(LIBVIRT_REFUSES))])
def test_what_libvirt_refuses_is_refused_first(params, message):
    with pytest.raises(InvalidSpec, match=message):
        request_from_params(dict({"name": "web01"}, **params))


def test_values_libvirt_takes_pass():
    req = request_from_params({
        "name": "web01", "memory": 2 ** 43 - 1, "max_memory": 2 ** 43 - 1, "vcpus": 8192, "max_vcpus": 8192,
        "shutdown_timeout": 0, "machine": "pc-q35-7.2", "cpu_model": "Haswell",
        "kernel": "/boot/vmlinuz", "initrd": "/boot/initrd.img", "cmdline": "console=ttyS0 quiet",
        "serial_log": "/var/log/libvirt/qemu/web01-serial.log",
        "description": "Web server\n\tsecond line, gr\u00f6\u00dfer", "tags": ["web", "eu west"],
        "disks": [{"pool": "default-pool", "volume": "web01:root@v2.qcow2", "size": "1G", "boot_order": 1},
                  {"pool": "p_2", "volume": "..data", "boot_order": 2}, {"path": "/srv/iso/a b.iso", "device": "cdrom"}],
        "interfaces": [{"network": "default", "model": "e1000e"}, {"bridge": "br0.100", "model": "virtio"}],
        "graphics": {"type": "vnc", "listen": "::1", "port": 5900, "password": "12345678"},
        "cloud_init": {"path": "/srv/seeds/web01.iso", "user_data": "#cloud-config\n", "meta_data": {"a": 1},
                       "network_config": {"version": 2}},
    })
    assert [d.volume for d in req.spec.disks[:2]] == ["web01:root@v2.qcow2", "..data"]
    assert req.spec.graphics.password == "12345678"
    spice = {"type": "spice", "listen": "localhost", "port": 5000, "password": "a SPICE password may be long"}
    spice = request_from_params({"name": "web01", "graphics": spice})
    assert spice.spec.graphics.port == 5000
    # Empty strings remove kernel, initrd and cmdline; they are not paths.
    assert request_from_params({"name": "web01", "kernel": "", "initrd": "", "cmdline": ""}).spec.kernel == ""


@pytest.mark.parametrize("name", ["web01\n", "web01\r\n"])
def test_name_with_trailing_newline_is_rejected(name):
    """libvirt refuses the name only at define, after new volumes were already created."""
    with pytest.raises(InvalidSpec, match="Invalid guest name"):
        request_from_params({"name": name})


def test_mac_with_trailing_newline_is_rejected():
    with pytest.raises(InvalidSpec, match="is not a unicast MAC address"):
        request_from_params({"name": "web01", "interfaces": [{"network": "default", "mac": "52:54:00:00:00:01\n"}]})


@pytest.mark.parametrize("name", ["a", "web01", "Web-01.example_com+x", "0" + "a" * 62])
def test_valid_names(name):
    assert request_from_params({"name": name}).name == name


@pytest.mark.parametrize("size, expected", [
    ("10G", 10 * GIB), ("10GiB", 10 * GIB), ("10g", 10 * GIB), ("512M", 512 * 1024 ** 2), ("512MiB", 512 * 1024 ** 2),
    ("1.5G", 3 * GIB // 2), (" 2 T ", 2 * 1024 ** 4), ("4096", 4096), ("1024K", 1024 ** 2), (1024, 1024),
])
def test_sizes(size, expected):
    req = request_from_params({"name": "web01", "disks": [{"pool": "p", "volume": "v", "size": size}]})
    assert req.spec.disks[0].size == expected


def test_request_normalises_and_keeps_unset_fields_unmanaged():
    req = request_from_params({
        "name": "web01", "cpu_model": "Haswell", "tags": ["web", "prod", "web"], "virt_type": "auto",
        "graphics": {"type": "vnc"}, "interfaces": [{"network": "default", "mac": "52:54:00:AB:CD:EF"}],
        "disks": [{"path": "/a.qcow2"}], "state": None,
    })
    assert req.spec.cpu_mode == "custom"
    assert req.spec.tags == ["prod", "web"]
    assert req.spec.virt_type is None
    assert req.virt_type == "auto"
    assert req.spec.graphics.as_dict() == {"type": "vnc", "listen": "127.0.0.1"}
    assert req.spec.interfaces[0].mac == "52:54:00:ab:cd:ef"
    assert req.spec.disks[0].as_dict() == {"device": "disk", "path": "/a.qcow2"}
    assert (req.state, req.restart, req.force, req.remove_storage, req.shutdown_timeout) == ("present", False, False, False, 120)
    assert req.spec.memory is None and req.spec.interfaces is not None
    assert request_from_params({"name": "web01"}).spec.as_dict() == {}


def test_graphics_none_and_explicit_virt_type():
    req = request_from_params({"name": "web01", "graphics": {"type": "none", "listen": "0.0.0.0"}, "virt_type": "qemu"})
    assert req.spec.graphics.as_dict() == {"type": "none"}
    assert (req.spec.virt_type, req.virt_type) == ("qemu", "qemu")


@pytest.mark.parametrize("graphics, warned", [
    ({"type": "vnc", "listen": "0.0.0.0"}, True),
    ({"type": "spice", "listen": "10.0.0.5"}, True),
    ({"type": "vnc", "listen": "::"}, True),
    ({"type": "vnc", "listen": "console.example.org"}, True),
    ({"type": "vnc", "listen": "0.0.0.0", "password": ""}, True),
    ({"type": "vnc", "listen": "0.0.0.0", "password": "s3cret"}, False),
    ({"type": "vnc", "listen": "0.0.0.0", "insecure_ok": True}, False),
    ({"type": "vnc"}, False),
    ({"type": "vnc", "listen": "::1"}, False),
    ({"type": "spice", "listen": "127.0.0.2"}, False),
    ({"type": "vnc", "listen": "localhost"}, False),
    ({"type": "none", "listen": "0.0.0.0"}, False),
])
def test_an_open_console_without_a_password_is_warned_of(graphics, warned):
    req = request_from_params({"name": "web01", "graphics": graphics})
    if warned:
        assert req.console_warning.startswith("The %s console of guest web01 listens on %s without a password"
                                              % (graphics["type"], graphics["listen"]))
        assert "graphics.insecure_ok" in req.console_warning
    else:
        assert req.console_warning is None
    assert "insecure_ok" not in req.spec.graphics.as_dict()
    assert request_from_params({"name": "web01"}).console_warning is None
