# -*- coding: utf-8 -*-
# Copyright: debvirt.cluster developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Golden files for GuestSpec.to_xml, and the specs' reading side.

Each case is data/<case>-in.xml (a domain as libvirt 9.0 writes it for a virt-install guest),
a spec below, and data/<case>-out.xml (what to_xml must make of it). The spec is built from the
parsed input the way plan_guest() builds it: existing disks and interfaces come from from_xml(),
so their targets and MACs are the ones libvirt gave them.

To regenerate the -out files after an intended change of to_xml, run this file from the
checkout (a run in the build copy would write there, and the next sync would undo it):

    . tests/env.sh && tests/sync-collection.sh >/dev/null
    DEBVIRT_REGEN_GOLDEN=1 PYTHONPATH=$DEBVIRT_BUILD python -m pytest -p no:cacheprovider \
        tests/unit/plugins/module_utils/test__domain.py -k golden

then read `git diff tests/unit/plugins/module_utils/data` before committing: a regenerated file
is only as right as the code that wrote it. cpu-model-out.xml is written by hand (see
test_libvirt_accepts_output) and must not be regenerated while the bug it shows is open.
"""

from __future__ import annotations

import os

import libvirt
import pytest
from lxml import etree

from ansible_collections.debvirt.cluster.plugins.module_utils._domain import (
    DiskSpec,
    DomainXML,
    GraphicsSpec,
    GuestSpec,
    NicSpec,
    mib,
    target_name,
)
from ansible_collections.debvirt.cluster.plugins.module_utils._xml import DEBVIRT_NS, parse

DATA = os.path.join(os.path.dirname(__file__), "data")
REGEN = os.environ.get("DEBVIRT_REGEN_GOLDEN") == "1"
# Hand-written expectations that regeneration must not overwrite with what the code does today.
HAND_WRITTEN = ("cpu-model",)


def _with(disks, target, **fields):
    out = []
    for disk in disks:
        if disk.target == target:
            disk = disk.copy()
            for name, value in fields.items():
                setattr(disk, name, value)
        out.append(disk)
    return out


# case -> spec built from the input's own GuestSpec, as the planner resolves it.
CASES = {
    "memory-vcpus": lambda have: GuestSpec(memory=1024, max_memory=4096, vcpus=2, max_vcpus=4),
    "add-disk": lambda have: GuestSpec(disks=have.disks + [
        DiskSpec(target="vdb", device="disk", bus="virtio", format="qcow2", pool="default",
                 volume="web01-data.qcow2")]),
    "remove-disk": lambda have: GuestSpec(disks=[d for d in have.disks if d.target != "vdb"]),
    # The kept NIC carries its MAC (the planner copies it from libvirt); the new one has none yet.
    "interfaces": lambda have: GuestSpec(interfaces=[have.interfaces[0], NicSpec(network="backend", model="virtio")]),
    "interface-source": lambda have: GuestSpec(interfaces=[
        NicSpec(bridge="br1", model="virtio", mac=have.interfaces[0].mac)]),
    "graphics-none": lambda have: GuestSpec(graphics=GraphicsSpec(type="none")),
    "graphics-vnc": lambda have: GuestSpec(graphics=GraphicsSpec(type="vnc", listen="0.0.0.0", port=5901,
                                                                 password="s3cret")),
    "metadata": lambda have: GuestSpec(description="Web frontend", tags=["prod", "web"]),
    "metadata-replace": lambda have: GuestSpec(description="Web frontend", tags=["web"]),
    "uefi": lambda have: GuestSpec(firmware="uefi"),
    "bios": lambda have: GuestSpec(firmware="bios"),
    "boot-order": lambda have: GuestSpec(disks=_with(_with(have.disks, "vda", boot_order=1), "sda", boot_order=2)),
    "serial-log": lambda have: GuestSpec(serial_log="/var/log/libvirt/qemu/web01-serial.log"),
    "cpu-model": lambda have: GuestSpec(cpu_mode="custom", cpu_model="Haswell-noTSX"),
}


def _read(name):
    with open(os.path.join(DATA, name)) as f:
        return f.read()


def canonical(text):
    """Byte-exact form of a document: no whitespace between elements, attributes in c14n order."""
    root = etree.fromstring(text.encode("utf-8"), etree.XMLParser(remove_blank_text=True))
    return etree.tostring(root, method="c14n")


def render(case):
    domain = DomainXML(parse(_read("%s-in.xml" % case)))
    spec = CASES[case](GuestSpec.from_xml(domain))
    return spec, spec.to_xml(domain).to_string()


def test_every_case_has_both_files():
    files = set(os.listdir(DATA))
    for case in CASES:
        assert "%s-in.xml" % case in files
        assert "%s-out.xml" % case in files or REGEN
    assert {f.rsplit("-", 1)[0] for f in files if f.endswith(".xml")} == set(CASES)


@pytest.mark.parametrize("case", sorted(CASES))
def test_golden(case):
    _spec, out = render(case)
    path = os.path.join(DATA, "%s-out.xml" % case)
    if REGEN and case not in HAND_WRITTEN:
        with open(path, "w") as f:
            f.write(out)
    assert canonical(out) == canonical(_read("%s-out.xml" % case))


# Elements to_xml never manages: they must come out byte for byte as they went in.
UNMANAGED = ("name", "uuid", "features", "clock", "on_poweroff", "on_reboot", "on_crash", "pm",
             "devices/emulator", "devices/controller", "devices/channel", "devices/input",
             "devices/video", "devices/memballoon", "devices/rng", "devices/audio", "devices/console")


@pytest.mark.parametrize("case", sorted(CASES))
def test_unmanaged_parts_survive(case):
    before = parse(_read("%s-in.xml" % case))
    _spec, out = render(case)
    after = parse(out)
    for path in UNMANAGED:
        assert [etree.tostring(n, method="c14n") for n in before.findall(path)] == \
            [etree.tostring(n, method="c14n") for n in after.findall(path)], path
    foreign = "{http://libosinfo.org/xmlns/libvirt/domain/1.0}libosinfo"
    assert etree.tostring(before.find("metadata/" + foreign), method="c14n") == \
        etree.tostring(after.find("metadata/" + foreign), method="c14n")

    def addresses(root, tag, key):
        return {key(n): etree.tostring(n.find("address"), method="c14n")
                for n in root.findall("devices/" + tag) if n.find("address") is not None}

    # A device that is still there keeps the PCI/drive address libvirt gave it.
    for tag, key in (("disk", lambda n: n.find("target").get("dev")),
                     ("interface", lambda n: n.find("mac").get("address"))):
        was, now = addresses(before, tag, key), addresses(after, tag, key)
        for ident in set(was) & set(now):
            assert was[ident] == now[ident], (tag, ident)


@pytest.mark.parametrize("case", sorted(CASES))
def test_libvirt_accepts_output(case, driver_uri):
    """libvirt's own parser (the test driver shares it with the QEMU driver) takes the result.

    The test driver only runs type='test' guests; nothing else in the document is altered.
    """
    _spec, out = render(case)
    root = parse(out)
    root.set("type", "test")
    conn = libvirt.open(driver_uri)
    try:
        dom = conn.defineXML(etree.tostring(root, encoding="unicode"))
        assert dom.name() == "web01"
    except libvirt.libvirtError as e:
        pytest.fail("BUG: libvirt rejects what to_xml wrote for case %s: %s" % (case, e.get_error_message()))
    finally:
        conn.close()


def _managed_subset(spec_value, read_value):
    """read_value restricted to the fields spec_value sets (None means not managed)."""
    if isinstance(spec_value, list):
        return [_managed_subset(s, r) for s, r in zip(spec_value, read_value)]
    if isinstance(spec_value, dict):
        return {k: read_value.get(k) for k in spec_value}
    return read_value


@pytest.mark.parametrize("case", sorted(CASES))
def test_output_reads_back_as_the_spec(case):
    """from_xml(to_xml(spec)) agrees with spec on every managed field: a second plan is empty."""
    spec, out = render(case)
    read = GuestSpec.from_xml(DomainXML(parse(out)))
    wanted = spec.as_dict()
    got = read.as_dict()
    assert set(wanted) <= set(got)
    for field, value in wanted.items():
        if field == "interfaces":
            # A new NIC has no MAC until libvirt assigns one; compare the rest.
            value = [{k: v for k, v in n.items() if k != "mac"} for n in value]
        assert _managed_subset(value, got[field]) == value, field
    if spec.graphics is not None and spec.graphics.password is not None:
        assert read.graphics.password == spec.graphics.password


def test_new_disk_is_written_in_full():
    _spec, out = render("add-disk")
    disk = [d for d in DomainXML(parse(out)).disks if d.target == "vdb"][0]
    assert (disk.type, disk.device, disk.pool, disk.volume, disk.format, disk.bus) == \
        ("volume", "disk", "default", "web01-data.qcow2", "qcow2", "virtio")
    assert disk.node.find("driver").get("name") == "qemu"
    assert disk.node.find("address") is None


def test_new_interface_gets_no_mac_so_libvirt_assigns_one():
    _spec, out = render("interfaces")
    nics = DomainXML(parse(out)).interfaces
    assert [(n.type, n.network, n.bridge, n.mac) for n in nics] == [
        ("network", "default", None, "52:54:00:3a:91:5c"),
        ("network", "backend", None, None),
    ]


def test_boot_order_replaces_os_boot():
    _spec, out = render("boot-order")
    domain = DomainXML(parse(out))
    assert domain.node.find("os/boot") is None
    assert {d.target: d.boot_order for d in domain.disks} == {"vda": 1, "sda": 2, "vdb": None}


def test_metadata_lives_in_our_namespace():
    _spec, out = render("metadata-replace")
    guest = parse(out).find("metadata/{%s}guest" % DEBVIRT_NS)
    assert [(etree.QName(n).localname, n.text) for n in guest] == [
        ("description", "Web frontend"),
        ("created-volume", "default/web01.qcow2"),
        ("tag", "web"),
    ]


def test_to_xml_with_empty_spec_changes_nothing():
    for case in CASES:
        text = _read("%s-in.xml" % case)
        assert canonical(GuestSpec().to_xml(DomainXML(parse(text))).to_string()) == canonical(text)


def test_max_vcpus_alone_keeps_the_running_vcpu_count():
    """Raising only the ceiling must not change how many vCPUs the guest gets.

    The planner reports only "max_vcpus" for this request, so to_xml must keep the count.
    """
    domain = DomainXML(parse(_read("memory-vcpus-in.xml")))
    assert GuestSpec.from_xml(domain).vcpus == 2
    GuestSpec(max_vcpus=8).to_xml(domain)
    assert domain.max_vcpus == 8
    assert GuestSpec.from_xml(domain).vcpus == 2, \
        "BUG: GuestSpec(max_vcpus=8).to_xml turned a 2-vCPU guest into an 8-vCPU guest " \
        "(it wrote <vcpu>8</vcpu> without current='2')"


def test_max_memory_alone_keeps_current_memory():
    domain = DomainXML(parse(_read("memory-vcpus-in.xml")))
    GuestSpec(max_memory=8192).to_xml(domain)
    spec = GuestSpec.from_xml(domain)
    assert (spec.memory, spec.max_memory) == (2048, 8192)


# --- reading ---------------------------------------------------------------------------------
def test_from_xml_reads_every_managed_field():
    spec = GuestSpec.from_xml(DomainXML(parse(_read("interfaces-in.xml"))))
    assert spec.view() == {
        "virt_type": "kvm", "memory": 2048, "max_memory": 2048, "vcpus": 2, "max_vcpus": 2,
        "cpu_mode": "host-passthrough", "machine": "pc-q35-7.2", "firmware": "bios",
        "graphics": {"type": "vnc", "listen": "127.0.0.1"},
        "tags": [],
        "disks": [
            {"target": "vda", "device": "disk", "bus": "virtio", "format": "qcow2", "readonly": False,
             "path": "/var/lib/libvirt/images/web01.qcow2"},
            {"target": "sda", "device": "cdrom", "bus": "sata", "format": "raw", "readonly": True,
             "path": "/var/lib/libvirt/images/debian-12.5.0-amd64-netinst.iso"},
        ],
        "interfaces": [
            {"network": "default", "model": "virtio", "mac": "52:54:00:3a:91:5c"},
            {"bridge": "br0", "model": "e1000e", "mac": "52:54:00:3a:91:5d"},
        ],
    }


def test_from_xml_firmware_and_metadata():
    spec = GuestSpec.from_xml(DomainXML(parse(_read("bios-in.xml"))))
    assert spec.firmware == "uefi"
    spec = GuestSpec.from_xml(DomainXML(parse(_read("metadata-replace-in.xml"))))
    assert (spec.description, spec.tags, spec.created) == ("Old description", ["legacy", "web"], ["default/web01.qcow2"])
    assert "created" not in spec.view()


SEEDED = _read("guest/seeded.xml")


def test_from_xml_units_seed_and_defaults():
    spec = GuestSpec.from_xml(DomainXML(parse(SEEDED)))
    # No currentMemory: the maximum is the current size, in the maximum's unit.
    assert (spec.memory, spec.max_memory, spec.vcpus, spec.max_vcpus) == (2048, 2048, 1, 4)
    assert (spec.cpu_mode, spec.cpu_model) == ("custom", "Haswell")
    assert spec.graphics == GraphicsSpec(type="none")
    assert spec.serial_log == "/var/log/g.log"
    # The seed is bookkeeping, not one of the user's disks.
    assert [d.as_dict() for d in spec.disks] == [
        {"target": "vda", "device": "disk", "bus": "virtio", "format": "raw", "cache": "none",
         "readonly": False, "boot_order": 1, "path": "/dev/vg0/g"}]
    assert spec.seed == {"path": "/var/lib/libvirt/images/g-cidata.iso", "sha256": "abc", "target": "sda"}
    assert spec.view()["cloud_init"] == {"path": "/var/lib/libvirt/images/g-cidata.iso", "sha256": "abc"}
    assert spec.interfaces[0].mac == "52:54:00:ab:cd:ef"
    assert spec.interfaces[0].model is None


def test_host_model_cpu_has_no_model():
    text = SEEDED.replace("<cpu mode='custom' match='exact'>", "<cpu mode='host-model'>")
    spec = GuestSpec.from_xml(DomainXML(parse(text)))
    assert (spec.cpu_mode, spec.cpu_model) == ("host-model", None)


def test_block_and_file_sources_swap_cleanly():
    domain = DomainXML(parse(SEEDED))
    vda = domain.disks[0]
    DiskSpec(target="vda", device="disk", path="/var/lib/libvirt/images/g.raw").write(vda)
    assert (vda.type, vda.file, vda.dev) == ("file", "/var/lib/libvirt/images/g.raw", None)
    DiskSpec(target="vda", device="disk", pool="default", volume="g.qcow2").write(vda)
    assert (vda.type, vda.file, vda.pool, vda.volume) == ("volume", None, "default", "g.qcow2")
    DiskSpec(target="vda", device="disk", path="/dev/vg0/g").write(vda)
    assert (vda.type, vda.dev, vda.pool, vda.volume) == ("block", "/dev/vg0/g", None, None)


def test_seed_disk_survives_a_disk_list_without_it():
    domain = DomainXML(parse(SEEDED))
    have = GuestSpec.from_xml(domain)
    GuestSpec(disks=have.disks).to_xml(domain)
    assert [d.target for d in domain.disks] == ["vda", "sda"]


def test_graphics_spec_hides_the_password():
    spec = GraphicsSpec(type="vnc", listen="127.0.0.1", password="s3cret")
    assert spec.as_dict()["password"] == "********"
    assert "s3cret" not in repr(spec)


def test_graphics_managed_view_compares_only_what_is_asked():
    actual = GraphicsSpec(type="vnc", listen="127.0.0.1", port=5900, password="x")
    assert GraphicsSpec(type="vnc", listen="127.0.0.1").managed_view(actual) == GraphicsSpec(type="vnc", listen="127.0.0.1")
    assert GraphicsSpec(type="none").managed_view(actual) == GraphicsSpec(type="vnc")


@pytest.mark.parametrize("index, name", [(0, "vda"), (1, "vdb"), (25, "vdz"), (26, "vdaa"), (27, "vdab"), (701, "vdzz")])
def test_target_name(index, name):
    assert target_name("vd", index) == name


@pytest.mark.parametrize("value, unit, expected", [
    ("2097152", "KiB", 2048), ("2097152", None, 2048), ("2", "GiB", 2048), ("2048", "MiB", 2048),
    ("2147483648", "b", 2048), ("1000000", "KB", 953),
])
def test_mib(value, unit, expected):
    assert mib(value, unit) == expected


def test_spec_rejects_unknown_fields():
    with pytest.raises(TypeError, match="unknown fields: colour"):
        GuestSpec(colour="red")
