# -*- coding: utf-8 -*-
# Copyright: debvirt.cluster developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A small declarative model over libvirt's own XML.

An XMLObject wraps one lxml element; its Prop attributes are bound to simple paths relative to
that element ("memory", "os/type/@machine", "@type"). Reading a missing node gives None;
writing None removes it; writing a value creates the elements on the way. Editing happens on
the document libvirt gave us, so whatever it generated (UUID, MACs, PCI addresses) survives.
"""

from __future__ import annotations

import traceback

try:
    from lxml import etree
except ImportError:
    etree = None
    LXML_IMPORT_ERROR = traceback.format_exc()
else:
    LXML_IMPORT_ERROR = None

DEBVIRT_NS = "urn:debvirt:cluster:1"
NAMESPACES = {"dv": DEBVIRT_NS}


def parse(text):
    parser = etree.XMLParser(remove_blank_text=True)
    return etree.fromstring(text.encode("utf-8") if isinstance(text, str) else text, parser)


def tostring(node):
    return etree.tostring(node, pretty_print=True, encoding="unicode")


def quote(text):
    """text made safe for element text or a single-quoted attribute in an XML string."""
    return str(text).replace("&", "&amp;").replace("<", "&lt;").replace("'", "&apos;")


def _qname(step):
    prefix, sep, local = step.partition(":")
    return "{%s}%s" % (NAMESPACES[prefix], local) if sep else step


def ensure(node, path):
    """The element at path below node, created (with its parents) where missing."""
    for step in path.split("/"):
        if step in ("", "."):
            continue
        child = node.find(step, NAMESPACES)
        if child is None:
            child = etree.SubElement(node, _qname(step), nsmap=_nsmap(step))
        node = child
    return node


def _nsmap(step):
    prefix, sep, _local = step.partition(":")
    return {prefix: NAMESPACES[prefix]} if sep else None


def append(node, step):
    """A new element at the end of node's children (ensure() would reuse an existing one)."""
    return etree.SubElement(node, _qname(step), nsmap=_nsmap(step))


def remove(node):
    if node is not None and node.getparent() is not None:
        node.getparent().remove(node)


class Kind:
    """How a value is read from and written to XML text."""

    def __init__(self, parse_, format_):
        self.parse, self.format = parse_, format_


TEXT = Kind(str, str)
INT = Kind(int, str)
YES_NO = Kind(lambda s: s == "yes", lambda v: "yes" if v else "no")
ON_OFF = Kind(lambda s: s == "on", lambda v: "on" if v else "off")


class Prop:
    """A value bound to "elem/path" (its text) or "elem/path/@attr" (an attribute)."""

    def __init__(self, path, kind=TEXT):
        elem, _sep, self.attr = path.partition("@")
        self.elem = elem.rstrip("/") or "."
        self.kind = kind

    def __get__(self, obj, owner=None):
        if obj is None:
            return self
        node = obj.node.find(self.elem, NAMESPACES)
        if node is None:
            return None
        raw = node.get(self.attr) if self.attr else node.text
        return None if raw is None else self.kind.parse(raw.strip() if not self.attr else raw)

    def __set__(self, obj, value):
        if value is None:
            node = obj.node.find(self.elem, NAMESPACES)
            if node is None:
                return
            if self.attr:
                node.attrib.pop(self.attr, None)
            elif node is not obj.node:
                remove(node)
            return
        node = ensure(obj.node, self.elem)
        if self.attr:
            node.set(self.attr, self.kind.format(value))
        else:
            node.text = self.kind.format(value)


class Flag:
    """True when an empty marker element (like <readonly/>) is present."""

    def __init__(self, path):
        self.path = path

    def __get__(self, obj, owner=None):
        if obj is None:
            return self
        return obj.node.find(self.path, NAMESPACES) is not None

    def __set__(self, obj, value):
        if value is None:
            return
        if value:
            ensure(obj.node, self.path)
        else:
            remove(obj.node.find(self.path, NAMESPACES))


class XMLObject:
    TAG = None

    def __init__(self, node=None):
        self.node = etree.Element(self.TAG) if node is None else node

    @classmethod
    def from_string(cls, text):
        return cls(parse(text))

    def to_string(self):
        return tostring(self.node)

    def children(self, path, cls):
        return [cls(n) for n in self.node.findall(path, NAMESPACES)]

    def add(self, path, obj):
        """Append obj's element under path (created where missing) and return obj."""
        ensure(self.node, path).append(obj.node)
        return obj
