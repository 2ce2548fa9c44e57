# -*- coding: utf-8 -*-
# Copyright: debvirt.cluster developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Containers without libvirt: the XML model on libvirt's own LXC documents, request
validation, and the planner as tables of (request, actual) -> changes."""

from __future__ import annotations

import os

import pytest

from ansible_collections.debvirt.cluster.plugins.module_utils import _container as ct
from ansible_collections.debvirt.cluster.plugins.module_utils import _lxc, _rootfs
from ansible_collections.debvirt.cluster.plugins.module_utils._errors import InvalidSpec
from ansible_collections.debvirt.cluster.plugins.module_utils._xml import parse

DATA = os.path.join(os.path.dirname(__file__), "data", "container")


def load(name):
    with open(os.path.join(DATA, name)) as f:
        return ct.ContainerXML(parse(f.read()))


def params(**kw):
    base = dict(name="ct1", uri="lxc:///system", state="present", autostart=None, rootfs=None, privileged=None,
                idmap=None, command=None, memory=None, vcpus=None, cpu_shares=None, interfaces=None,
                hostname=None, mounts=None, description=None, tags=None, restart=False, force=False,
                shutdown_timeout=60, remove_storage=False)
    base.update(kw)
    return base


class FakeDom:
    def name(self):
        return "ct1"


def actual(state="running", xml="container-lxc-in.xml", autostart=False):
    return ct.Actual(FakeDom(), load(xml), state, autostart)


def facts(**kw):
    f = ct.Facts()
    f.rootfs = "/var/lib/debvirt/containers/ct1/rootfs"
    f.rootfs_exists = True
    f.net_format = "ifupdown"
    f.idmap = {"uid": 100000, "gid": 100000, "count": 65536}
    for key, value in kw.items():
        setattr(f, key, value)
    return f


def in_sync_files(a):
    """The files as they are when the rootfs already says what the definition says."""
    from ansible_collections.debvirt.cluster.plugins.module_utils import _rootfs
    return _rootfs.render_files("ct1", a.spec.hostname, a.spec.interfaces, "ifupdown")


def plan_for(p, a=None, f=None):
    req = ct.request_from_params(params(**p))
    if f is None:
        f = facts(files=in_sync_files(a) if a else {})
    return ct.plan_container(req, a, f)


def targets(plan):
    return [(c.action, c.target) for c in plan.changes]


# --- the XML model ---------------------------------------------------------------------------
def test_from_xml_reads_every_managed_field():
    spec = ct.ContainerSpec.from_xml(load("container-lxc-in.xml"))
    assert spec.view() == {
        "memory": 512, "vcpus": 1, "cpu_shares": 512, "command": ["/sbin/init"], "privileged": False,
        "idmap": {"uid": 100000, "gid": 100000, "count": 65536},
        "rootfs": "/var/lib/debvirt/containers/ct1/rootfs",
        "mounts": [{"source": "/srv/share", "target": "/mnt/share", "readonly": True}],
        "interfaces": [{"network": "default", "mac": "52:54:00:42:b8:0a", "dev": "eth0", "address": "dhcp"}],
        "hostname": "ct1", "tags": ["web"],
    }
    assert spec.created == {"source": "debian bookworm", "created": True, "path": "/var/lib/debvirt/containers/ct1/rootfs"}


def test_to_xml_changes_only_managed_fields_and_keeps_what_libvirt_generated():
    xml = load("container-lxc-in.xml")
    spec = ct.ContainerSpec(memory=256, vcpus=2, command=["/bin/sh", "-c", "sleep 1"],
                            mounts=[_lxc.MountSpec(source="/srv/data", target="/data", readonly=False)])
    out = spec.to_xml(xml)
    again = ct.ContainerSpec.from_xml(ct.ContainerXML(parse(out.to_string())))
    assert again.memory == 256 and again.vcpus == 2
    assert out.quota == 200000 and out.period == 100000
    assert again.command == ["/bin/sh", "-c", "sleep 1"]
    assert [m.target for m in again.mounts] == ["/data"]
    # untouched: uuid, MAC, idmap, rootfs, metadata, libvirt's own elements
    assert out.uuid == "b5521463-3955-45d0-ad27-eef5c200b5f1"
    assert again.interfaces[0].mac == "52:54:00:42:b8:0a"
    assert again.idmap == {"uid": 100000, "gid": 100000, "count": 65536}
    assert again.rootfs == "/var/lib/debvirt/containers/ct1/rootfs"
    assert out.node.find("resource/partition").text == "/machine"
    assert out.node.find("features/privnet") is not None
    # libvirt wants initarg right after init
    assert [n.tag for n in out.node.find("os")] == ["type", "init", "initarg", "initarg"]


def test_a_spec_written_into_what_it_was_read_from_is_the_same_document():
    xml = load("container-lxc-in.xml")
    before = xml.to_string()
    spec = ct.ContainerSpec.from_xml(xml)
    assert spec.to_xml(load("container-lxc-in.xml")).to_string() == before


def test_new_container_document():
    xml = ct.ContainerXML(parse(ct.NEW_CONTAINER))
    spec = ct.ContainerSpec(memory=64, vcpus=1, command=["/sbin/init"], privileged=False,
                            idmap={"uid": 200000, "gid": 300000, "count": 1000}, rootfs="/r",
                            mounts=[], interfaces=[_lxc.ContainerNicSpec(bridge="br0", dev="eth0", address="dhcp")],
                            hostname="h", created={"source": "image /x.tar", "created": True})
    out = spec.to_xml(xml)
    assert out.virt_type == "lxc"
    assert (out.uid_target, out.gid_target, out.uid_count) == (200000, 300000, 1000)
    assert out.node.find("devices/interface/guest").get("dev") == "eth0"
    assert out.addresses() == {"eth0": ("dhcp", None)}
    assert out.rootfs_created is True
    priv = ct.ContainerSpec(privileged=True).to_xml(out)
    assert priv.node.find("idmap") is None


# --- validation ------------------------------------------------------------------------------
@pytest.mark.parametrize("p, msg", [
    (dict(name="bad name"), "Invalid container name"),
    (dict(memory=0), "memory must be at least 1"),
    (dict(cpu_shares=1), "cpu_shares must be at least 2"),
    (dict(command=["sleep"]), "absolute path"),
    (dict(command=[]), "absolute path"),
    (dict(rootfs={"path": "relative"}), "rootfs.path must be an absolute path"),
    (dict(rootfs={"image": "/a.tar", "debian": "bookworm"}), "at most one source"),
    (dict(rootfs={"image": "http://x/a.tar"}), "give rootfs.checksum"),
    (dict(rootfs={"image": "a.tar"}), "URL or an absolute path"),
    (dict(rootfs={"image": "/a.tar", "checksum": "sha256:abc"}), "is not a sha256 digest"),
    (dict(rootfs={"checksum": "sha256:" + "0" * 64}), "belongs to rootfs.image"),
    (dict(rootfs={"debian": "Book Worm"}), "not a Debian release"),
    (dict(privileged=True, idmap={"uid": 100000}), "do not give idmap"),
    (dict(idmap={"uid": 0}), "maps the container's root to the host's root"),
    (dict(idmap={"uid": 100000, "count": 0}), "idmap.count must be at least 1"),
    (dict(hostname="-bad"), "not a valid host name"),
    (dict(interfaces=[{"network": "a", "bridge": "b"}]), "exactly one of network or bridge"),
    (dict(interfaces=[{"network": "a", "mac": "01:00:00:00:00:01"}]), "not a unicast MAC"),
    (dict(interfaces=[{"network": "a", "address": "10.0.0.1"}]), "needs a prefix length"),
    (dict(interfaces=[{"network": "a", "address": "dhcp", "gateway": "10.0.0.1"}]), "gateway needs a static"),
    (dict(interfaces=[{"network": "a", "address": "10.0.0.2/24", "gateway": "fe80::1"}]), "different IP versions"),
    (dict(interfaces=[{"network": "a", "name": "eth0"}, {"network": "b", "name": "eth0"}]), "same name"),
    (dict(mounts=[{"source": "/a", "target": "/"}]), "other than /"),
    (dict(mounts=[{"source": "/a", "target": "/m"}, {"source": "/b", "target": "/m/"}]), "same target"),
])
def test_bad_input_is_refused_before_anything_else(p, msg):
    with pytest.raises(InvalidSpec) as e:
        ct.request_from_params(params(**p))
    assert msg in e.value.msg


# What libvirt, the kernel or the host refuses only in the real run (or, for 2**31 vCPUs, what
# crashed libvirtd 9.0), refused before anything is read; each message names the option.
@pytest.mark.parametrize("p, msg", [
    (dict(rootfs={"pool": "p", "volume": "../root.img"}),
     "rootfs.volume: invalid volume name '../root.img': use letters, digits and _.+-:@"),
    (dict(rootfs={"pool": "p", "volume": "a/root.img"}), "rootfs.volume: invalid volume name 'a/root.img'"),
    (dict(rootfs={"pool": "my pool", "volume": "root.img"}), "rootfs.pool: invalid storage pool name 'my pool'"),
    (dict(rootfs={"path": "/srv/ct\n1"}), "rootfs.path '/srv/ct\\n1' holds control characters"),
    (dict(rootfs={"image": "/srv/img\x00.tar"}), "rootfs.image '/srv/img\\x00.tar' holds control characters"),
    (dict(rootfs={"debian": "bookworm\n"}), "rootfs.debian 'bookworm\\n' is not a Debian release name"),
    (dict(rootfs={"debian": "bookworm", "mirror": "ftp://ftp.debian.org/debian"}),
     "rootfs.mirror 'ftp://ftp.debian.org/debian' is not an http(s):// or file:// URL of a Debian mirror"),
    (dict(rootfs={"debian": "bookworm", "mirror": "--keyring=/tmp/k"}), "rootfs.mirror '--keyring=/tmp/k' is not an"),
    (dict(interfaces=[{"network": "a b"}]), "interfaces[0].network: invalid network name 'a b'"),
    (dict(interfaces=[{"network": "default"}, {"bridge": "../../tmp"}]),
     "interfaces[1].bridge: '../../tmp' is not a Linux interface name"),
    (dict(interfaces=[{"network": "default", "name": "a-name-too-long0"}]),
     "interfaces[0].name: 'a-name-too-long0' is not a Linux interface name"),
    (dict(interfaces=[{"network": "default", "name": "eth0\n"}]), "interfaces[0].name: 'eth0\\n' is not a Linux"),
    (dict(interfaces=[{"network": "default", "mac": "52:54:00:00:00:01\n"}]),
     "interfaces[0].mac: '52:54:00:00:00:01\\n' is not a unicast MAC address"),
    # The old check let a trailing newline through, into /etc/hostname.
    (dict(hostname="ct1\n"), "hostname: 'ct1\\n' is not a valid host name"),
    (dict(hostname="a." * 32 + "a"), "at most 64 characters"),
    (dict(mounts=[{"source": "srv/data", "target": "/data"}]), "mounts[0].source must be an absolute path, got 'srv/data'"),
    (dict(mounts=[{"source": "/srv/data", "target": "data"}]), "mounts[0].target must be an absolute path, got 'data'"),
    (dict(mounts=[{"source": "/srv/data", "target": "/data\x01"}]), "mounts[0].target '/data\\x01' holds control characters"),
    (dict(command=["/bin/sh", "-c", "echo \x00"]), "command[2] holds control characters"),
    (dict(vcpus=2 ** 31), "vcpus must be at most 8192 (the most CPUs a Linux host has), got 2147483648"),
    (dict(memory=2 ** 50), "memory must be at most 8796093022207 MiB (libvirt's limit)"),
    (dict(cpu_shares=262145), "cpu_shares must be at most 262144, got 262145"),
    (dict(shutdown_timeout=-5), "shutdown_timeout must be at least 0, got -5"),
    (dict(description="\x1b[1m"), "description holds control characters"),
    (dict(tags=["web", " "]), "tags[1] must not be empty"),
])
def test_what_libvirt_refuses_is_refused_first(p, msg):
    with pytest.raises(InvalidSpec) as e:
        ct.request_from_params(params(**p))
    assert msg in e.value.msg


def test_values_libvirt_takes_pass():
    req = ct.request_from_params(params(
        rootfs={"debian": "trixie", "mirror": "http://192.0.2.1:3142/debian", "path": "/srv/ct1/rootfs"},
        memory=2 ** 43 - 1, vcpus=8192, cpu_shares=262144, shutdown_timeout=0, hostname="a" * 63,
        command=["/bin/sh", "-c", "echo 'hi there'\n"], description="line\nline", tags=["web", "gr\u00fcn"],
        interfaces=[{"network": "default", "name": "_lan0"}, {"bridge": "br0.100", "name": "wan.1"}],
        mounts=[{"source": "/srv/my data", "target": "/data"}]))
    assert req.source["mirror"] == "http://192.0.2.1:3142/debian"
    assert [n.dev for n in req.spec.interfaces] == ["_lan0", "wan.1"]
    vol = ct.request_from_params(params(rootfs={"pool": "p-1", "volume": "ct1:root@2.img"}))
    assert vol.spec.rootfs_volume == "p-1/ct1:root@2.img"


def test_idmap_gid_defaults_to_uid_and_count_to_65536():
    req = ct.request_from_params(params(idmap={"uid": 100000, "gid": None, "count": None}))
    assert req.spec.idmap == {"uid": 100000, "gid": 100000, "count": 65536}


def test_system_and_application_containers():
    assert ct.request_from_params(params()).system
    assert ct.request_from_params(params(command=["/sbin/init"])).system
    assert not ct.request_from_params(params(command=["/bin/sleep", "1"])).system


# --- planning --------------------------------------------------------------------------------
def test_new_system_container_from_debian():
    f = facts(rootfs_exists=False, files={}, create_rootfs="debian bookworm",
              build_template="/var/cache/debvirt/templates/debian-bookworm-amd64")
    plan, desired = plan_for(dict(rootfs={"debian": "bookworm"}, state="running",
                                  interfaces=[{"network": "default", "address": "dhcp"}]), None, f)
    assert targets(plan) == [
        ("create", "template /var/cache/debvirt/templates/debian-bookworm-amd64"),
        ("create", "rootfs /var/lib/debvirt/containers/ct1/rootfs"),
        ("define", "container ct1"),
        ("write", "/etc/hostname"),
        ("write", "network configuration"),
        ("start", "container ct1"),
    ]
    assert desired.hostname == "ct1"
    assert desired.idmap == f.idmap and desired.privileged is False
    assert desired.memory == 512 and desired.vcpus == 1
    assert desired.interfaces[0].dev == "eth0"
    assert desired.created == {"source": "debian bookworm", "created": True, "path": "/var/lib/debvirt/containers/ct1/rootfs"}


def test_new_application_container_writes_no_hostname():
    f = facts(rootfs_exists=False, files={}, create_rootfs="image /x.tar.gz", net_format=None)
    plan, desired = plan_for(dict(rootfs={"image": "/x.tar.gz"}, command=["/bin/sleep", "9"]), None, f)
    assert targets(plan) == [("create", "rootfs /var/lib/debvirt/containers/ct1/rootfs"), ("define", "container ct1")]
    assert desired.hostname is None


def test_an_image_whose_format_is_unknown_still_gets_its_addresses():
    f = facts(rootfs_exists=False, files={}, create_rootfs="image /x.tar.gz", net_format=None)
    plan = plan_for(dict(rootfs={"image": "/x.tar.gz"}, command=["/bin/sleep", "9"],
                         interfaces=[{"network": "default", "address": "dhcp"}]), None, f)[0]
    assert ("write", "network configuration") in targets(plan)


def test_same_request_again_plans_nothing():
    a = actual()
    p = dict(memory=512, vcpus=1, cpu_shares=512, command=["/sbin/init"], hostname="ct1", tags=["web"],
             rootfs={"path": "/var/lib/debvirt/containers/ct1/rootfs"},
             mounts=[{"source": "/srv/share", "target": "/mnt/share", "readonly": True}],
             interfaces=[{"network": "default", "address": "dhcp"}], state="running")
    plan, desired = plan_for(p, a)
    assert plan.changes == []
    assert desired.interfaces[0].mac == "52:54:00:42:b8:0a"
    before, after = ct.CONTAINER.view(ct.request_from_params(params(**p)), a, desired)
    assert before == after


@pytest.mark.parametrize("memory, live", [(256, True), (1024, False)])
def test_memory_lowers_live_and_rises_at_restart(memory, live):
    plan = plan_for(dict(memory=memory), actual())[0]
    (change,) = plan.changes
    assert change.target == "memory"
    assert change.extra.get("live", False) is live
    assert change.cold is not live


def test_cpu_limits_apply_live():
    plan = plan_for(dict(vcpus=2, cpu_shares=1024), actual())[0]
    assert [(c.target, c.extra.get("live"), c.cold) for c in plan.changes] == [
        ("vcpus", True, False), ("cpu_shares", True, False)]


def test_stopped_container_changes_need_no_restart():
    plan = plan_for(dict(memory=1024, command=["/bin/sh"]), actual(state="stopped"))[0]
    assert not ct.CONTAINER.reboot_required(plan)


def test_address_change_keeps_the_mac_and_waits_for_a_restart():
    a = actual()
    plan, desired = plan_for(dict(interfaces=[{"network": "default", "address": "10.0.0.5/24",
                                               "gateway": "10.0.0.1"}]), a)
    assert targets(plan) == [("update", "interface 52:54:00:42:b8:0a address"),
                             ("update", "interface 52:54:00:42:b8:0a gateway"),
                             ("write", "network configuration")]
    assert all(c.cold for c in plan.changes)
    assert desired.interfaces[0].mac == "52:54:00:42:b8:0a"
    assert ct.CONTAINER.reboot_required(plan)


def test_interfaces_are_added_removed_and_named():
    plan, desired = plan_for(dict(interfaces=[{"bridge": "br0"}, {"network": "default"}]), actual())
    # the network one is the existing eth0 (matched by source); the bridge one is new
    assert targets(plan) == [("add", "interface eth1")]
    assert [n.dev for n in desired.interfaces] == ["eth1", "eth0"]
    plan = plan_for(dict(interfaces=[]), actual())[0]
    assert targets(plan) == [("remove", "interface 52:54:00:42:b8:0a")]


def test_mounts():
    plan = plan_for(dict(mounts=[{"source": "/srv/share", "target": "/mnt/share", "readonly": False},
                                 {"source": "/srv/b", "target": "/b"}]), actual())[0]
    assert targets(plan) == [("update", "mount /mnt/share readonly"), ("add", "mount /b")]
    plan = plan_for(dict(mounts=[]), actual())[0]
    assert targets(plan) == [("remove", "mount /mnt/share")]


def test_drift_in_the_rootfs_files_is_rewritten():
    a = actual()
    files = in_sync_files(a)
    files["etc/hostname"] = "other\n"
    plan = plan_for(dict(hostname="ct1"), a, facts(files=files))[0]
    assert targets(plan) == [("write", "/etc/hostname")]


@pytest.mark.parametrize("now, want, actions", [
    ("stopped", "running", ["start"]),
    ("running", "frozen", ["freeze"]),
    ("frozen", "running", ["thaw"]),
    ("stopped", "frozen", ["start"]),
    ("frozen", "stopped", ["stop"]),
    ("running", "present", []),
    ("frozen", "frozen", []),
])
def test_run_states(now, want, actions):
    plan = plan_for(dict(state=want), actual(state=now))[0]
    assert [c.action for c in plan.changes] == actions


def test_restart_applies_cold_changes():
    plan = plan_for(dict(memory=2048, restart=True), actual())[0]
    assert [c.action for c in plan.changes] == ["update", "restart"]
    assert not ct.CONTAINER.reboot_required(plan)


def test_absent_keeps_the_rootfs_unless_asked_and_only_its_own():
    f = facts()
    plan = plan_for(dict(state="absent"), actual(), f)[0]
    assert targets(plan) == [("stop", "container ct1"), ("undefine", "container ct1")]
    plan = plan_for(dict(state="absent", remove_storage=True), actual(state="stopped"), f)[0]
    assert targets(plan) == [("undefine", "container ct1"), ("delete", "rootfs /var/lib/debvirt/containers/ct1/rootfs")]
    plan = plan_for(dict(state="absent", remove_storage=True), None, f)[0]
    assert plan.changes == []


@pytest.mark.parametrize("created", [
    {"source": "directory", "created": False, "path": None},
    # made by the module, at another path than the one it has now
    {"source": "debian bookworm", "created": True, "path": "/var/lib/debvirt/containers/old/rootfs"},
    # made before the module recorded where
    {"source": "debian bookworm", "created": True, "path": None},
])
def test_remove_storage_keeps_a_rootfs_the_module_did_not_make_there(created):
    given = actual(state="stopped")
    given.spec.created = created
    plan = plan_for(dict(state="absent", remove_storage=True), given, facts())[0]
    assert targets(plan) == [("undefine", "container ct1")]


def test_the_id_map_of_an_existing_container_never_changes(monkeypatch):
    class Client:
        uri = "lxc:///system"
    req = ct.request_from_params(params(privileged=True))
    with pytest.raises(InvalidSpec) as e:
        ct.CONTAINER.inspect(Client(), req, actual())
    assert "changing its ID map" in e.value.msg


def test_inspect_needs_a_local_uri():
    class Client:
        uri = "lxc+ssh://host/system"
    with pytest.raises(InvalidSpec) as e:
        ct.CONTAINER.inspect(Client(), ct.request_from_params(params()), None)
    assert "local URI" in e.value.msg


def test_inspect_refuses_a_map_outside_the_subordinate_ranges(tmp_path, monkeypatch):
    (tmp_path / "subuid").write_text("root:100000:65536\n")
    (tmp_path / "subgid").write_text("root:100000:65536\n")
    monkeypatch.setattr(ct, "SUBUID", str(tmp_path / "subuid"))
    monkeypatch.setattr(ct, "SUBGID", str(tmp_path / "subgid"))
    assert ct._inspect_new_map(ct.ContainerSpec()) == {"uid": 100000, "gid": 100000, "count": 65536}
    with pytest.raises(InvalidSpec) as e:
        ct._inspect_new_map(ct.ContainerSpec(idmap={"uid": 150000, "gid": 100000, "count": 65536}))
    assert "uids 150000-215535 are not a subordinate range of root" in e.value.msg
    (tmp_path / "subuid").write_text("")
    with pytest.raises(InvalidSpec) as e:
        ct._inspect_new_map(ct.ContainerSpec())
    assert "node role" in e.value.msg


# --- a root filesystem in a volume -----------------------------------------------------------
class PoolClient:
    """Just enough of LibvirtClient for inspect() on a volume: one active pool, one raw volume."""

    uri = "lxc:///system"

    class Vol:
        def XMLDesc(self, flags):
            return "<volume><target><format type='raw'/></target></volume>"

        def path(self):
            return "/pool/root.img"

    def pool(self, name):
        return name if name == "p" else None

    def pool_info(self, pool):
        return (2, 1 << 30, 0, 1 << 30)

    def volume(self, pool, name):
        return self.Vol() if name == "root.img" else None

    def network(self, name):
        return name

    @staticmethod
    def call(verb, obj, func, *args):
        return func(*args)


def test_volume_rootfs_is_privileged_only_and_exists():
    client = PoolClient()
    req = ct.request_from_params(params(rootfs={"pool": "p", "volume": "root.img"}, privileged=True))
    f = ct.CONTAINER.inspect(client, req, None)
    assert (f.rootfs, f.rootfs_exists, f.volume) == ("/pool/root.img", True, True)
    plan, desired = ct.plan_container(req, None, f)
    assert targets(plan) == [("define", "container ct1")]
    assert desired.hostname is None
    out = desired.to_xml(ct.ContainerXML(parse(ct.NEW_CONTAINER)))
    root = out.filesystems[0]
    assert (root.type, root.file, root.target) == ("file", "/pool/root.img", "/")
    assert root.node.find("driver").get("type") == "loop"
    again = ct.ContainerSpec.from_xml(ct.ContainerXML(parse(out.to_string())))
    assert (again.rootfs, again.rootfs_volume) == ("/pool/root.img", "p/root.img")
    for p, msg in ((dict(rootfs={"pool": "p", "volume": "root.img"}), "needs privileged: true"),
                   (dict(rootfs={"pool": "p", "volume": "x"}, privileged=True), "does not exist in pool p"),
                   (dict(rootfs={"pool": "q", "volume": "x"}, privileged=True), "Storage pool q does not exist"),
                   (dict(rootfs={"pool": "p", "volume": "root.img"}, privileged=True, hostname="h"),
                    "not one")):
        with pytest.raises(InvalidSpec) as e:
            ct.CONTAINER.inspect(client, ct.request_from_params(params(**p)), None)
        assert msg in e.value.msg
    for p, msg in ((dict(rootfs={"volume": "x"}), "go together"),
                   (dict(rootfs={"pool": "p", "volume": "x", "debian": "bookworm"}), "at most one source"),
                   (dict(rootfs={"pool": "p", "volume": "x", "path": "/r"}), "give one")):
        with pytest.raises(InvalidSpec) as e:
            ct.request_from_params(params(**p))
        assert msg in e.value.msg


class LocalClient:
    uri = "lxc:///system"


def made_at(tmp_path, moved=False):
    """A stopped container whose rootfs this module made in tmp_path (then, moved: given a new path)."""
    rootfs = tmp_path / "ct1" / "rootfs"
    (rootfs / "sbin").mkdir(parents=True)
    given = actual(state="stopped")
    given.spec.created = dict(given.spec.created, path=str(rootfs))
    given.spec.rootfs = str(tmp_path / "elsewhere") if moved else str(rootfs)
    if moved:
        (tmp_path / "elsewhere" / "sbin").mkdir(parents=True)
    return given


def test_inspect_refuses_to_remove_a_rootfs_with_a_mount_in_it(tmp_path, monkeypatch):
    given = made_at(tmp_path)
    (tmp_path / "mountinfo").write_text("22 1 0:21 / %s/proc rw - proc proc rw\n" % given.spec.rootfs)
    monkeypatch.setattr(_rootfs, "MOUNTINFO", str(tmp_path / "mountinfo"))
    req = ct.request_from_params(params(state="absent", remove_storage=True))
    with pytest.raises(InvalidSpec) as e:
        ct.CONTAINER.inspect(LocalClient(), req, given)
    assert e.value.msg == ("The root filesystem %s of container ct1 has %s/proc mounted in it: unmount it first (its "
                           "removal never crosses into another file system); nothing was changed"
                           % (given.spec.rootfs, given.spec.rootfs))


def test_inspect_proves_the_rootfs_is_the_one_made_there(tmp_path, monkeypatch):
    (tmp_path / "mountinfo").write_text("22 1 0:21 / / rw - ext4 /dev/sda1 rw\n")
    monkeypatch.setattr(_rootfs, "MOUNTINFO", str(tmp_path / "mountinfo"))
    req = ct.request_from_params(params(state="absent", remove_storage=True))
    given = made_at(tmp_path)
    f = ct.CONTAINER.inspect(LocalClient(), req, given)
    assert (f.rootfs_exists, f.warnings) == (True, [])
    assert targets(ct.plan_container(req, given, f)[0])[-1] == ("delete", "rootfs %s" % given.spec.rootfs)
    moved = made_at(tmp_path / "2", moved=True)
    f = ct.CONTAINER.inspect(LocalClient(), req, moved)
    assert targets(ct.plan_container(req, moved, f)[0]) == [("undefine", "container ct1")]
    assert f.warnings == ["The root filesystem %s of container ct1 is kept: this module made one at %s, and "
                          "deletes only that; delete it by hand if it is no longer needed"
                          % (moved.spec.rootfs, moved.spec.created["path"])]


class StartingClient:
    """The client calls a container start makes; lost: what container_init_lost says, in turn."""

    def __init__(self, *lost):
        self.lost, self.calls = list(lost), []

    def start(self, dom):
        self.calls.append("start")

    def destroy(self, dom):
        self.calls.append("destroy")

    def suspend(self, dom):
        self.calls.append("suspend")

    def container_init_lost(self, dom):
        self.calls.append("init?")
        return self.lost.pop(0)


class Named:
    def name(self):
        return "dvtest-ct"


@pytest.mark.parametrize("lost, calls", [
    ((False,), ["start", "init?"]),
    # The start after which libvirt never learned the init PID is undone and made again, once.
    ((True, False), ["start", "init?", "destroy", "start", "init?"]),
])
def test_a_start_is_done_once_libvirt_knows_the_init_pid(lost, calls):
    client = StartingClient(*lost)
    ct.ContainerKind().start(client, Named())
    assert client.calls == calls


def test_a_second_lost_init_pid_is_an_error_saying_so():
    client = StartingClient(True, True)
    with pytest.raises(ct.DebvirtError, match="^Container dvtest-ct started, twice, but libvirt did not learn"):
        ct.ContainerKind().start(client, Named())
    assert client.calls == ["start", "init?", "destroy", "start", "init?"]
