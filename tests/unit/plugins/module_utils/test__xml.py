# -*- coding: utf-8 -*-
# Copyright: debvirt.cluster developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Prop, Flag and XMLObject: the contract the whole domain model stands on."""

from __future__ import annotations

from lxml import etree

from ansible_collections.debvirt.cluster.plugins.module_utils import _xml as x


class Thing(x.XMLObject):
    TAG = "thing"
    kind = x.Prop("@kind")
    name = x.Prop("name")
    size = x.Prop("size", x.INT)
    unit = x.Prop("size/@unit")
    machine = x.Prop("os/type/@machine")
    deep = x.Prop("a/b/c")
    enabled = x.Prop("feature/@enabled", x.YES_NO)
    state = x.Prop("feature/@state", x.ON_OFF)
    note = x.Prop("metadata/dv:guest/dv:note")
    seed = x.Prop("metadata/dv:guest/dv:seed/@path")
    readonly = x.Flag("readonly")
    shared = x.Flag("driver/shareable")


def canon(node):
    return etree.tostring(x.parse(etree.tostring(node)), method="c14n").decode()


def thing(text="<thing/>"):
    return Thing.from_string(text)


def test_missing_values_read_as_none():
    t = thing()
    assert (t.kind, t.name, t.size, t.unit, t.machine, t.deep, t.enabled, t.note, t.seed) == (None,) * 9
    assert t.readonly is False
    # Reading creates nothing.
    assert canon(t.node) == "<thing></thing>"


def test_attribute_on_existing_element_without_the_attribute_is_none():
    t = thing("<thing><size>3</size><os><type>hvm</type></os></thing>")
    assert (t.unit, t.machine) == (None, None)
    assert t.size == 3


def test_text_is_stripped_and_parsed_by_kind():
    t = thing("<thing><name>\n  web01\n</name><size> 42 </size><feature enabled='no' state='on'/></thing>")
    assert t.name == "web01"
    assert t.size == 42
    assert t.enabled is False
    assert t.state is True


def test_attribute_values_are_not_stripped():
    assert thing("<thing kind=' x '/>").kind == " x "


def test_set_creates_the_path():
    t = thing()
    t.deep = "v"
    t.machine = "pc-q35-7.2"
    t.size = 8
    t.unit = "GiB"
    t.kind = "kvm"
    assert canon(t.node) == (
        '<thing kind="kvm"><a><b><c>v</c></b></a><os><type machine="pc-q35-7.2"></type></os>'
        '<size unit="GiB">8</size></thing>')
    assert (t.deep, t.machine, t.size, t.unit, t.kind) == ("v", "pc-q35-7.2", 8, "GiB", "kvm")


def test_set_reuses_existing_elements_and_keeps_their_other_content():
    t = thing("<thing><os><type arch='x86_64'>hvm</type><boot dev='hd'/></os></thing>")
    t.machine = "pc"
    assert canon(t.node) == '<thing><os><type arch="x86_64" machine="pc">hvm</type><boot dev="hd"></boot></os></thing>'


def test_kinds_format_values():
    t = thing()
    t.enabled = True
    t.state = False
    assert t.node.find("feature").attrib == {"enabled": "yes", "state": "off"}
    t.enabled = False
    assert t.node.find("feature").get("enabled") == "no"


def test_set_none_removes_text_element():
    t = thing("<thing><name>x</name><a><b><c>v</c></b></a></thing>")
    t.name = None
    t.deep = None
    # Only the bound element goes; its now-empty parents stay.
    assert canon(t.node) == "<thing><a><b></b></a></thing>"


def test_set_none_removes_only_the_attribute():
    t = thing("<thing kind='kvm'><size unit='KiB'>4</size></thing>")
    t.unit = None
    t.kind = None
    assert canon(t.node) == "<thing><size>4</size></thing>"


def test_set_none_on_missing_path_creates_nothing():
    t = thing()
    t.deep = None
    t.machine = None
    t.note = None
    assert canon(t.node) == "<thing></thing>"


def test_namespaced_paths_create_and_read_in_our_namespace():
    t = thing()
    t.note = "hello"
    t.seed = "/x.iso"
    guest = t.node.find("metadata/{%s}guest" % x.DEBVIRT_NS)
    assert guest is not None
    assert guest.prefix == "dv"
    assert guest.find("{%s}note" % x.DEBVIRT_NS).text == "hello"
    assert guest.find("{%s}seed" % x.DEBVIRT_NS).get("path") == "/x.iso"
    # Both values share one <dv:guest>.
    assert len(t.node.findall("metadata/{%s}guest" % x.DEBVIRT_NS)) == 1
    assert (t.note, t.seed) == ("hello", "/x.iso")


def test_namespace_is_matched_by_uri_not_prefix():
    t = thing("<thing><metadata><x:guest xmlns:x='%s'><x:note>n</x:note></x:guest>"
              "<other:guest xmlns:other='urn:someone:else'><other:note>no</other:note></other:guest>"
              "</metadata></thing>" % x.DEBVIRT_NS)
    assert t.note == "n"
    t.note = None
    assert t.node.find("metadata/{urn:someone:else}guest/{urn:someone:else}note").text == "no"
    assert t.note is None


def test_flag():
    t = thing()
    t.readonly = True
    t.shared = True
    assert canon(t.node) == "<thing><readonly></readonly><driver><shareable></shareable></driver></thing>"
    assert (t.readonly, t.shared) == (True, True)
    t.readonly = True  # idempotent: no second element
    assert len(t.node.findall("readonly")) == 1
    t.readonly = None  # not managed: left alone
    assert t.readonly is True
    t.readonly = False
    t.shared = False
    assert canon(t.node) == "<thing><driver></driver></thing>"
    t.readonly = False  # removing what is not there is fine
    assert t.readonly is False


def test_class_access_returns_the_descriptor():
    assert isinstance(Thing.name, x.Prop)
    assert isinstance(Thing.readonly, x.Flag)
    assert Thing.unit.elem == "size" and Thing.unit.attr == "unit"
    assert Thing.kind.elem == "." and Thing.kind.attr == "kind"


class Part(x.XMLObject):
    TAG = "part"
    id = x.Prop("@id")


def test_xmlobject_new_children_and_add():
    t = Thing()
    assert t.node.tag == "thing"
    t.add("parts", Part()).id = "a"
    t.add("parts", Part()).id = "b"
    assert [p.id for p in t.children("parts/part", Part)] == ["a", "b"]
    assert len(t.node.findall("parts")) == 1
    again = Thing.from_string(t.to_string())
    assert [p.id for p in again.children("parts/part", Part)] == ["a", "b"]


def test_children_wrap_the_live_elements():
    t = thing("<thing><parts><part id='a'/></parts></thing>")
    t.children("parts/part", Part)[0].id = "z"
    assert t.node.find("parts/part").get("id") == "z"


def test_helpers():
    root = x.parse("<r><x/></r>")
    assert x.ensure(root, "x") is root.find("x")
    assert x.ensure(root, "./y/z") is root.find("y/z")
    first = x.append(root, "dv:tag")
    second = x.append(root, "dv:tag")
    assert first is not second
    assert len(root.findall("{%s}tag" % x.DEBVIRT_NS)) == 2
    x.remove(root.find("x"))
    x.remove(None)
    x.remove(root)  # the root has no parent: nothing to do
    assert root.find("x") is None
    assert "<y>" in x.tostring(root)


def test_parse_drops_blank_text_and_accepts_bytes():
    root = x.parse(b"<r>\n  <a/>\n</r>")
    assert root.text is None
    assert etree.tostring(root) == b"<r><a/></r>"
