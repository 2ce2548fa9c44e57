# -*- coding: utf-8 -*-
# Copyright: debvirt.cluster developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""converge() end to end against libvirt's test driver (a private copy of test:///default's objects).

The test driver defines, starts and stops guests, makes volumes in its pool `default-pool` and
has a network `default`, but cannot hot-plug devices: those changes must end up as warnings
and "needs restart", never as failures.
"""

from __future__ import annotations

import os
from unittest import mock

import libvirt
import pytest

from ansible_collections.debvirt.cluster.plugins.module_utils import _cloudinit
from ansible_collections.debvirt.cluster.plugins.module_utils._client import LibvirtClient
from ansible_collections.debvirt.cluster.plugins.module_utils._errors import (
    InvalidSpec,
    LibvirtCallError,
    NotFound,
    WaitTimeout,
)
from ansible_collections.debvirt.cluster.plugins.module_utils._guest import (
    GUEST,
    list_guests,
    read_guest,
    request_from_params,
)

MIB = 1024 * 1024
KVM_WARNING = "KVM is not available on this host: guest runs under QEMU emulation (TCG), which is much slower"
WEB01 = {
    "name": "web01", "memory": 512, "max_memory": 1024, "vcpus": 1, "max_vcpus": 2, "state": "running",
    "disks": [{"pool": "default-pool", "volume": "web01.qcow2", "size": "1G"}],
    "interfaces": [{"network": "default"}],
}


def run(client, params, check_mode=False):
    return GUEST.converge(client, request_from_params(params), check_mode)


def world(client):
    """Everything a run could change, to prove that one did not."""
    pool = client.pool("default-pool")
    return {
        "domains": {d.name(): (client.domain_state(d), client.domain_xml(d)) for d in client.domains()},
        "volumes": sorted(pool.listVolumes()),
    }


def actions(result):
    return [(c["action"], c["target"], c.get("needs_restart", False)) for c in result["changes"]]


@pytest.fixture
def web01(client):
    """web01 created and running, as the first converge leaves it."""
    result = run(client, WEB01)
    assert result["changed"]
    return read_guest(client, "web01")


def test_create(client):
    result = run(client, WEB01)
    assert actions(result) == [
        ("create", "volume default-pool/web01.qcow2", False),
        ("define", "guest web01", False),
        ("start", "guest web01", False),
    ]
    assert result["changed"] is True
    assert result["reboot_required"] is False
    assert result["warnings"] == [KVM_WARNING]

    pool = client.pool("default-pool")
    vol = client.volume(pool, "web01.qcow2")
    assert client.volume_info(vol)[1] == 1024 * MIB
    assert "<format type='qcow2'/>" in vol.XMLDesc(0)

    actual = read_guest(client, "web01")
    assert actual.state == "running"
    assert actual.spec.created == ["default-pool/web01.qcow2"]
    guest = result["guest"]
    assert (guest["name"], guest["state"], guest["memory"], guest["max_memory"], guest["virt_type"]) == \
        ("web01", "running", 512, 1024, "qemu")
    assert guest["uuid"] == actual.xml.uuid
    mac = guest["interfaces"][0]["mac"]
    assert mac == actual.spec.interfaces[0].mac and mac.startswith("52:54:00:")
    assert result["diff"]["before"] == {}
    assert result["diff"]["after"]["state"] == "running"


def test_check_mode_predicts_and_changes_nothing(client):
    before = world(client)
    predicted = run(client, WEB01, check_mode=True)
    assert world(client) == before
    assert predicted["changed"] is True
    assert predicted["guest"]["name"] == "web01"
    real = run(client, WEB01)
    assert predicted["changes"] == real["changes"]
    assert predicted["diff"]["after"]["memory"] == real["diff"]["after"]["memory"]


def test_second_run_changes_nothing(client, web01):
    before = world(client)
    for check_mode in (True, False):
        again = run(client, WEB01, check_mode=check_mode)
        assert (again["changed"], again["changes"], again["reboot_required"]) == (False, [], False)
        assert again["diff"]["before"] == again["diff"]["after"]
        assert again["warnings"] == []
    assert world(client) == before


def test_update_in_check_mode_then_for_real(client, web01):
    params = dict(WEB01, memory=768, vcpus=2, description="web server", tags=["web"])
    before = world(client)
    predicted = run(client, params, check_mode=True)
    assert world(client) == before
    real = run(client, params)
    assert predicted["changes"] == real["changes"]
    assert actions(real) == [("update", "memory", False), ("update", "vcpus", False),
                             ("update", "description", False), ("update", "tags", False)]
    assert real["warnings"] == []
    dom = client.domain("web01")
    live = read_guest(client, "web01")
    assert (live.spec.memory, live.spec.vcpus, live.spec.description, live.spec.tags) == (768, 2, "web server", ["web"])
    # Applied to the running guest too, not only to its next boot.
    assert "<currentMemory unit='KiB'>786432</currentMemory>" in client.domain_xml(dom, inactive=False)
    assert run(client, params)["changed"] is False


def test_cold_change_waits_for_restart(client, web01):
    dom = client.domain("web01")
    result = run(client, dict(WEB01, memory=2048, max_memory=2048))
    assert actions(result) == [("update", "max_memory", True), ("update", "memory", True)]
    assert result["reboot_required"] is True
    assert read_guest(client, "web01").spec.memory == 2048
    assert "<memory unit='KiB'>1048576</memory>" in client.domain_xml(dom, inactive=False)


def test_restart_applies_cold_changes(client, web01):
    old_id = client.domain("web01").ID()
    result = run(client, dict(WEB01, memory=2048, max_memory=2048, restart=True))
    assert actions(result)[-1] == ("restart", "guest web01", False)
    assert result["reboot_required"] is False
    dom = client.domain("web01")
    assert client.domain_state(dom) == "running"
    assert dom.ID() != old_id
    assert "<memory unit='KiB'>2097152</memory>" in client.domain_xml(dom, inactive=False)


def test_hotplug_failure_is_a_warning_and_marks_the_change_cold(client, web01):
    data = {"pool": "default-pool", "volume": "data.raw", "size": "16M", "format": "raw"}
    params = dict(WEB01, disks=WEB01["disks"] + [data], interfaces=[{"network": "default"}, {"network": "default"}])
    predicted = run(client, params, check_mode=True)
    assert [c.get("needs_restart", False) for c in predicted["changes"]] == [False, False, False]
    result = run(client, params)
    assert actions(result) == [
        ("create", "volume default-pool/data.raw", False),
        ("add", "disk vdb", True),
        ("add", "interface on network default", True),
    ]
    assert result["reboot_required"] is True
    assert len(result["warnings"]) == 2
    assert result["warnings"][0].startswith("disk vdb could not be applied live (Failed to hot-plug disk vdb into guest "
                                            "web01: this function is not supported")
    assert result["warnings"][0].endswith("it applies at the next restart")
    assert "interface on network default could not be applied live" in result["warnings"][1]
    # The persistent definition has both; a second run has nothing left to do.
    actual = read_guest(client, "web01")
    assert [d.target for d in actual.spec.disks] == ["vda", "vdb"]
    assert len({n.mac for n in actual.spec.interfaces}) == 2
    assert actual.spec.created == ["default-pool/data.raw", "default-pool/web01.qcow2"]
    assert run(client, params)["changed"] is False


def test_hot_unplug_failure_is_a_warning(client, web01):
    result = run(client, dict(WEB01, disks=[]))
    assert actions(result) == [("remove", "disk vda", True)]
    assert "Failed to hot-unplug disk vda from guest web01" in result["warnings"][0]
    assert read_guest(client, "web01").spec.disks == []


def test_states(client, web01):
    steps = [("paused", [("pause", "guest web01", False)], "paused"),
             ("running", [("resume", "guest web01", False)], "running"),
             ("stopped", [("stop", "guest web01", False)], "stopped"),
             ("present", [], "stopped"),
             ("running", [("start", "guest web01", False)], "running")]
    for state, expected, after in steps:
        result = run(client, dict(WEB01, state=state))
        assert actions(result) == expected, state
        assert client.domain_state(client.domain("web01")) == after
        assert result["guest"]["state"] == after


def test_shutdown_timeout_without_force_says_what_to_do(client, web01, monkeypatch):
    # A guest that ignores the ACPI request; the test driver's own guests always obey it.
    monkeypatch.setattr(client, "shutdown", mock.Mock())
    with pytest.raises(WaitTimeout, match=r"^Timed out after 0s waiting for guest web01 to shut down \(ACPI\).*; "
                                          r"set force: true to power it off$"):
        run(client, dict(WEB01, state="stopped", shutdown_timeout=0))
    result = run(client, dict(WEB01, state="stopped", shutdown_timeout=0, force=True))
    assert actions(result) == [("stop", "guest web01", False)]
    assert client.domain_state(client.domain("web01")) == "stopped"


def test_autostart(client, web01):
    result = run(client, dict(WEB01, autostart=True))
    assert actions(result) == [("update", "autostart", False)]
    assert client.autostart(client.domain("web01")) is True
    assert result["diff"]["before"]["autostart"] is False and result["diff"]["after"]["autostart"] is True


def test_absent_keeps_storage_unless_asked(client, web01):
    before = world(client)
    predicted = run(client, {"name": "web01", "state": "absent", "remove_storage": True}, check_mode=True)
    assert world(client) == before
    assert actions(predicted) == [("stop", "guest web01", False), ("undefine", "guest web01", False),
                                  ("delete", "volume default-pool/web01.qcow2", False)]
    result = run(client, {"name": "web01", "state": "absent"})
    assert actions(result) == [("stop", "guest web01", False), ("undefine", "guest web01", False)]
    assert (result["guest"], result["reboot_required"]) == ({}, False)
    assert client.domain("web01") is None
    assert world(client)["volumes"] == ["web01.qcow2"]
    assert run(client, {"name": "web01", "state": "absent", "remove_storage": True})["changed"] is False


def test_absent_with_remove_storage_deletes_only_created_volumes(client):
    pool = client.pool("default-pool")
    client.create_volume(pool, "<volume><name>keep.qcow2</name><capacity>1048576</capacity>"
                               "<target><format type='qcow2'/></target></volume>", "keep.qcow2")
    params = dict(WEB01, disks=WEB01["disks"] + [{"pool": "default-pool", "volume": "keep.qcow2"}])
    created = run(client, params)
    assert actions(created)[0] == ("create", "volume default-pool/web01.qcow2", False)
    assert read_guest(client, "web01").spec.created == ["default-pool/web01.qcow2"]
    result = run(client, {"name": "web01", "state": "absent", "remove_storage": True})
    assert actions(result) == [("stop", "guest web01", False), ("undefine", "guest web01", False),
                               ("delete", "volume default-pool/web01.qcow2", False)]
    assert client.domain("web01") is None
    assert sorted(pool.listVolumes()) == ["keep.qcow2"]


REMOVE = {"name": "web01", "state": "absent", "remove_storage": True, "shutdown_timeout": 0, "force": True}
WEB02_ON_WEB01S_VOLUME = {"name": "web02", "memory": 256, "disks": [{"pool": "default-pool", "volume": "web01.qcow2"}]}


def test_remove_storage_keeps_a_volume_detached_and_given_to_another_guest(client, web01):
    run(client, dict(WEB01, state="stopped", disks=[], shutdown_timeout=0, force=True))
    run(client, WEB02_ON_WEB01S_VOLUME)
    warning = ("Volume default-pool/web01.qcow2, made for guest web01, is kept: it is no longer one of its "
               "disks; it is a disk of guests web02")
    predicted = run(client, REMOVE, check_mode=True)
    assert (actions(predicted), predicted["warnings"]) == ([("undefine", "guest web01", False)], [warning])
    result = run(client, REMOVE)
    assert (actions(result), result["warnings"]) == ([("undefine", "guest web01", False)], [warning])
    assert client.domain("web01") is None
    assert world(client)["volumes"] == ["web01.qcow2"]


def test_remove_storage_keeps_a_volume_that_another_guest_shares(client, web01):
    run(client, WEB02_ON_WEB01S_VOLUME)
    result = run(client, REMOVE)
    assert actions(result) == [("stop", "guest web01", False), ("undefine", "guest web01", False)]
    assert result["warnings"] == ["Volume default-pool/web01.qcow2, made for guest web01, is kept: it is a disk "
                                  "of guests web02"]
    assert world(client)["volumes"] == ["web01.qcow2"]


def test_remove_storage_keeps_a_detached_volume_nobody_uses(client, web01):
    run(client, dict(WEB01, state="stopped", disks=[], shutdown_timeout=0, force=True))
    result = run(client, REMOVE)
    assert actions(result) == [("undefine", "guest web01", False)]
    assert result["warnings"] == ["Volume default-pool/web01.qcow2, made for guest web01, is kept: it is no "
                                  "longer one of its disks"]
    assert world(client)["volumes"] == ["web01.qcow2"]


def test_remove_storage_keeps_the_base_of_another_volume(client, web01):
    pool = client.pool("default-pool")
    client.create_volume(pool, "<volume><name>overlay.qcow2</name><capacity>1048576</capacity><target>"
                               "<format type='qcow2'/></target><backingStore><path>/default-pool/web01.qcow2"
                               "</path><format type='qcow2'/></backingStore></volume>", "overlay.qcow2")
    result = run(client, REMOVE)
    assert "delete" not in [a for a, _t, _r in actions(result)]
    assert result["warnings"] == ["Volume default-pool/web01.qcow2, made for guest web01, is kept: it is the "
                                  "backing store of overlay.qcow2"]


def test_absent_guest_that_does_not_exist(client):
    result = run(client, {"name": "ghost", "state": "absent", "remove_storage": True})
    assert (result["changed"], result["changes"], result["guest"]) == (False, [], {})


@pytest.mark.parametrize("params, message", [
    ({"disks": [{"pool": "nope", "volume": "a.qcow2", "size": "1G"}]},
     "^Storage pool nope does not exist \\(for volume a.qcow2\\)$"),
    ({"disks": [{"pool": "default-pool", "volume": "a.qcow2"}]},
     "^Volume a.qcow2 does not exist in pool default-pool: give size to create it$"),
    ({"disks": [{"pool": "default-pool", "volume": "a.qcow2", "size": "1P"}]},
     "^Volume a.qcow2 of 1125899906842624 bytes is larger than pool default-pool \\(107374182400 bytes in all\\)$"),
    ({"disks": [{"path": "/nonexistent/debvirt/a.qcow2"}]}, "^Disk /nonexistent/debvirt/a.qcow2 does not exist on the host$"),
    ({"interfaces": [{"network": "nope"}]}, "^Network nope does not exist \\(define it first"),
    ({"interfaces": [{"bridge": "debvirt-nope0"}]}, "^Bridge debvirt-nope0 does not exist on the host$"),
    ({"kernel": "/nonexistent/debvirt/vmlinuz"}, "^kernel /nonexistent/debvirt/vmlinuz does not exist on the host$"),
    ({"virt_type": "kvm"}, "^This host cannot run kvm guests$"),
])
def test_bad_requests_touch_nothing(client, params, message):
    refused_whole(client, params, message)


def refused_whole(client, params, message):
    """Refused in check mode and in the real run alike, and nothing made by either."""
    # A volume that could be created comes first: it must not be created either.
    request = dict({"name": "web01", "state": "running", "interfaces": [{"network": "default"}]}, **params)
    request["disks"] = [{"pool": "default-pool", "volume": "ok.qcow2", "size": "1M"}] + params.get("disks", [])
    before = world(client)
    for check_mode in (True, False):
        with pytest.raises(InvalidSpec, match=message):
            run(client, request, check_mode)
        assert world(client) == before


@pytest.mark.parametrize("params, message", [
    # The issue's own case: check mode used to predict volume default-pool/../x.qcow2 and a define.
    ({"disks": [{"pool": "default-pool", "volume": "../x.qcow2", "size": "64MiB"}]},
     r"^disks\[1\]\.volume: invalid volume name '\.\./x\.qcow2'"),
    ({"disks": [{"pool": "default-pool", "volume": "sub/x.qcow2", "size": "64MiB"}]},
     r"^disks\[1\]\.volume: invalid volume name 'sub/x\.qcow2'"),
    ({"graphics": {"type": "vnc", "password": "123456789"}}, r"^graphics\.password is longer than the 8 characters"),
    ({"interfaces": [{"bridge": "../../../tmp"}]}, r"^interfaces\[0\]\.bridge: '\.\./\.\./\.\./tmp' is not a Linux"),
    ({"serial_log": "/nonexistent/debvirt/serial.log"},
     r"^serial_log /nonexistent/debvirt/serial\.log: its directory /nonexistent/debvirt does not exist on the host$"),
    ({"serial_log": "/"}, r"^serial_log / is a directory on the host: give the path of a file$"),
    ({"cloud_init": {"path": "/nonexistent/debvirt/seed.iso"}},
     r"^cloud_init\.path /nonexistent/debvirt/seed\.iso: its directory /nonexistent/debvirt does not exist"),
])
def test_what_libvirt_or_the_host_refuses_later_is_refused_first(client, params, message):
    refused_whole(client, params, message)


def test_a_seed_path_that_is_a_directory_is_refused(client, tmp_path):
    refused_whole(client, {"cloud_init": {"path": str(tmp_path)}},
                  "^cloud_init\\.path %s is a directory on the host" % tmp_path)


@pytest.mark.parametrize("link", [False, True])
def test_a_file_at_the_seed_path_the_module_did_not_make_is_refused(client, tmp_path, link):
    foreign = tmp_path / "notes.txt"
    foreign.write_text("someone else's\n")
    path = tmp_path / "seed.iso"
    if link:
        os.symlink(str(foreign), path)
    else:
        path = foreign
    refused_whole(client, {"cloud_init": {"path": str(path)}},
                  "^Refusing to overwrite %s, the cloud-init seed path of guest web01: %s"
                  % (path, "it is a symlink" if link else "it is not an ISO image"))
    assert foreign.read_text() == "someone else's\n"
    assert os.path.islink(path) is link


needs_iso_tool = pytest.mark.skipif(not any(_cloudinit.shutil.which(t[0]) for t in _cloudinit._TOOLS),
                                    reason="no ISO tool (genisoimage or xorriso) on this host")


@needs_iso_tool
def test_remove_storage_deletes_its_own_seed_and_keeps_someone_elses(client, tmp_path):
    path = tmp_path / "seed.iso"
    seeded = dict(WEB01, cloud_init={"path": str(path)})
    run(client, seeded)
    assert run(client, seeded)["changed"] is False  # its own seed, rewritten only when it changes
    result = run(client, REMOVE)
    assert ("delete", "cloud-init seed %s" % path, False) in actions(result)
    assert not path.exists()
    run(client, seeded)
    path.write_text("someone else's now\n")
    warning = ("The cloud-init seed %s of guest web01 is kept: it is not an ISO image, so not a seed the module "
               "made; the module deletes only a seed it made" % path)
    for check_mode in (True, False):
        result = run(client, REMOVE, check_mode)
        assert "cloud-init seed %s" % path not in [c["target"] for c in result["changes"]]
        assert result["warnings"] == [warning]
    assert client.domain("web01") is None
    assert path.read_text() == "someone else's now\n"


@pytest.fixture
def qemu_host(client, monkeypatch):
    """The test driver answering for the host what Debian 12's libvirt 9.0 with QEMU 7.2 answers
    (data/host/): the test driver itself lists no machine types and has no domain capabilities."""
    def data(name):
        with open(os.path.join(os.path.dirname(__file__), "data", "host", name)) as f:
            return f.read()
    caps, domcaps = data("qemu-7.2-capabilities.xml"), data("qemu-7.2-domcapabilities-qemu.xml")
    monkeypatch.setattr(client, "capabilities", lambda: caps)
    monkeypatch.setattr(client, "domain_capabilities", lambda virt_type: domcaps if virt_type == "qemu" else None)
    return client


@pytest.mark.parametrize("params, message", [
    # libvirt: "XML error: No PCI buses available", at define.
    ({"machine": "nonesuch"}, r"^machine 'nonesuch' is not a machine type of this host \(virsh capabilities lists them"),
    # libvirt: "Maximum CPUs greater than specified machine type limit 255", at define.
    ({"vcpus": 256}, r"^vcpus 256 is more than machine type pc-i440fx-7\.2 takes \(255\)$"),
    ({"machine": "pc", "max_vcpus": 300, "vcpus": 2}, r"^max_vcpus 300 is more than machine type pc-i440fx-7\.2 takes \(255\)$"),
    ({"machine": "q35", "vcpus": 289}, r"^vcpus 289 is more than machine type pc-q35-7\.2 takes \(288\)$"),
    # libvirt: "Unknown CPU model Haswell-v1", at start.
    ({"cpu_model": "Haswell-v1"},
     r"^cpu_model 'Haswell-v1' is not a CPU model libvirt knows for qemu guests on this host \(virsh domcapabilities"),
])
def test_what_the_hosts_qemu_refuses_is_refused_first(qemu_host, params, message):
    refused_whole(qemu_host, dict(params, virt_type="qemu"), message)


def test_what_the_hosts_qemu_takes_passes(qemu_host):
    result = run(qemu_host, {"name": "web01", "virt_type": "qemu", "machine": "q35", "max_vcpus": 288, "vcpus": 2,
                             "cpu_model": "Haswell"}, check_mode=True)
    assert result["diff"]["after"]["machine"] == "q35"
    assert (result["diff"]["after"]["max_vcpus"], result["diff"]["after"]["cpu_model"]) == (288, "Haswell")
    assert run(qemu_host, {"name": "web01", "virt_type": "qemu", "vcpus": 255}, check_mode=True)["changed"]


def test_an_existing_guests_machine_bounds_its_vcpus(qemu_host, web01):
    # web01 on the test driver has no machine type: only the one asked for bounds it.
    assert run(qemu_host, dict(WEB01, max_vcpus=300), check_mode=True)["changed"]
    with pytest.raises(InvalidSpec, match=r"^max_vcpus 300 is more than machine type pc-q35-7\.2 takes \(288\)$"):
        run(qemu_host, dict(WEB01, max_vcpus=300, machine="q35"), check_mode=True)


def test_inactive_pool_is_refused(client):
    client.pool("default-pool").destroy()
    with pytest.raises(InvalidSpec, match="^Storage pool default-pool is not active: start it first$"):
        run(client, WEB01)


def test_existing_path_disk_and_existing_volume(client, tmp_path):
    image = tmp_path / "disk.qcow2"
    image.write_bytes(b"")
    pool = client.pool("default-pool")
    client.create_volume(pool, "<volume><name>raw.img</name><capacity>1048576</capacity>"
                               "<target><format type='raw'/></target></volume>", "raw.img")
    params = {"name": "web02", "disks": [{"path": str(image)}, {"pool": "default-pool", "volume": "raw.img"}]}
    result = run(client, params)
    assert actions(result) == [("define", "guest web02", False)]
    # The existing volume's own format, not a guess from its name.
    assert [(d["target"], d["format"]) for d in result["guest"]["disks"]] == [("vda", "qcow2"), ("vdb", "raw")]
    assert read_guest(client, "web02").spec.created == []
    assert run(client, params)["changed"] is False


def test_connection_failure_is_an_error_not_a_create(client):
    bogus = LibvirtClient("test:///nonexistent-debvirt-file.xml")
    with pytest.raises(LibvirtCallError, match="^Failed to connect to test:///nonexistent-debvirt-file.xml: ") as e:
        GUEST.converge(bogus, request_from_params(WEB01), True)
    assert not isinstance(e.value, NotFound)


def test_define_failure_names_verb_and_guest(client, monkeypatch):
    err = libvirt.libvirtError("injected")
    err.err = (libvirt.VIR_ERR_XML_ERROR, libvirt.VIR_FROM_DOMAIN, "XML error: injected", libvirt.VIR_ERR_ERROR,
               None, None, None, -1, -1)
    monkeypatch.setattr(client.conn, "defineXML", mock.Mock(side_effect=err))
    with pytest.raises(LibvirtCallError, match="^Failed to define guest web01: XML error: injected$"):
        run(client, {"name": "web01"})


def test_list_guests(client, web01):
    run(client, {"name": "db01", "tags": ["db", "prod"], "memory": 256})
    run(client, {"name": "web01", "tags": ["prod", "web"]})
    names = [g["name"] for g in list_guests(client)]
    assert names == ["db01", "test", "web01"]
    assert [g["name"] for g in list_guests(client, tags=["prod"])] == ["db01", "web01"]
    assert [g["name"] for g in list_guests(client, tags=["prod", "web"])] == ["web01"]
    assert [g["name"] for g in list_guests(client, names=["db01", "nope"])] == ["db01"]
    web = list_guests(client, names=["web01"])[0]
    # The test driver makes up a DHCP lease for every running guest's NIC.
    assert [a.startswith("192.168.122.") and a.endswith("/24") for a in web["interfaces"][0]["addresses"]] == [True]
    # The test driver reports made-up sizes; that they are there is what matters.
    assert web["disks"][0]["capacity"] > 0 and web["disks"][0]["allocation"] >= 0
    assert list_guests(client, names=["db01"])[0]["interfaces"] == []
    test = list_guests(client, names=["test"])[0]
    assert test["interfaces"][0]["addresses"] == ["192.168.122.3/24"]


def test_switching_a_virt_install_guest_to_a_custom_cpu(client):
    """virt-install writes host-passthrough with migratable='on'; libvirt refuses that attribute on
    any other mode, so to_xml must drop it when it changes the mode."""
    client.define("<domain type='qemu'><name>vi01</name><memory unit='MiB'>512</memory>"
                  "<os><type arch='x86_64' machine='pc-q35-7.2'>hvm</type></os>"
                  "<cpu mode='host-passthrough' check='none' migratable='on'/></domain>", "vi01")
    try:
        result = run(client, {"name": "vi01", "cpu_model": "Haswell-noTSX"})
    except LibvirtCallError as e:
        pytest.fail("BUG: %s" % e.msg)
    assert actions(result) == [("update", "cpu_mode", False), ("update", "cpu_model", False)]
