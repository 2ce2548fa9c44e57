# -*- coding: utf-8 -*-
# Copyright: debvirt.cluster developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The corosync.conf model: parse, read, edit, write; round trips of real files."""

from __future__ import annotations

import os

import pytest

from ansible_collections.debvirt.cluster.plugins.module_utils._corosync import (
    ConfError,
    CorosyncConf,
    assign_nodeids,
    check_nodes,
    new_conf,
)
from ansible_collections.debvirt.cluster.plugins.module_utils._errors import InvalidSpec

FIXTURES = os.path.join(os.path.dirname(__file__), "fixtures", "corosync")
ALL = sorted(f for f in os.listdir(FIXTURES) if f.endswith(".conf"))


def fixture(name):
    with open(os.path.join(FIXTURES, name)) as f:
        return f.read()


@pytest.mark.parametrize("name", ALL)
def test_round_trip_is_byte_exact(name):
    text = fixture(name)
    assert CorosyncConf.parse(text).write() == text


def test_reads_the_parts():
    conf = CorosyncConf.parse(fixture("three-nodes-tabs.conf"))
    assert conf.cluster_name == "lab"
    assert conf.config_version == 7
    assert conf.totem.get("token") == "3000"
    assert conf.nodes() == [
        {"name": "alpha", "nodeid": 1, "addresses": ["10.0.0.1"]},
        {"name": "beta", "nodeid": 2, "addresses": ["10.0.0.2"]},
        {"name": "gamma", "nodeid": 3, "addresses": ["10.0.0.3"]},
    ]
    assert conf.quorum() == {"provider": "corosync_votequorum"}
    assert not conf.is_default()


def test_two_links_and_two_node():
    conf = CorosyncConf.parse(fixture("two-nodes-two-links.conf"))
    assert conf.config_version == 0
    assert conf.node("right") == {"name": "right", "nodeid": 2, "addresses": ["192.168.10.2", "172.16.0.2"]}
    assert conf.quorum() == {"provider": "corosync_votequorum", "two_node": "1", "wait_for_all": "1"}


def test_qdevice_nested_sections():
    conf = CorosyncConf.parse(fixture("qdevice-two-spaces.conf"))
    assert conf.quorum()["device"]["net"] == {"host": "qnetd.example.org", "algorithm": "ffsplit"}


def test_package_default_belongs_to_no_cluster():
    assert CorosyncConf.parse(fixture("package-default.conf")).is_default()
    assert CorosyncConf.parse("").is_default()


def test_add_node_keeps_everything_else_and_indents_like_siblings():
    text = fixture("three-nodes-tabs.conf")
    conf = CorosyncConf.parse(text)
    nodes = conf.nodes() + [{"name": "delta", "nodeid": 4, "addresses": ["10.0.0.4"]}]
    assert conf.set_nodes(nodes)
    assert conf.set_config_version(8)
    out = conf.write()
    assert "\tnode {\n\t\tname: delta\n\t\tnodeid: 4\n\t\tring0_addr: 10.0.0.4\n\t}\n}\n" in out
    assert "\tconfig_version: 8\n" in out
    assert "# moved racks in May" in out and "# a slower token for a busy bridge" in out
    # Only the two edits differ from the original.
    changed = [line for line in out.splitlines() if line not in text.splitlines()]
    assert changed == ["\tconfig_version: 8", "\t\tname: delta", "\t\tnodeid: 4",
                       "\t\tring0_addr: 10.0.0.4"]
    again = CorosyncConf.parse(out)
    assert again.nodes() == nodes
    assert again.write() == out


def test_remove_node_drops_its_section_and_comments():
    conf = CorosyncConf.parse(fixture("three-nodes-tabs.conf"))
    assert conf.set_nodes([n for n in conf.nodes() if n["name"] != "gamma"])
    out = conf.write()
    assert "gamma" not in out and "moved racks" not in out
    assert [n["name"] for n in CorosyncConf.parse(out).nodes()] == ["alpha", "beta"]


def test_set_nodes_unchanged_is_a_no_op():
    text = fixture("two-nodes-two-links.conf")
    conf = CorosyncConf.parse(text)
    assert not conf.set_nodes(conf.nodes())
    assert conf.write() == text


def test_config_version_added_where_missing():
    conf = CorosyncConf.parse(fixture("two-nodes-two-links.conf"))
    conf.set_config_version(1)
    assert "    crypto_hash: sha256\n    config_version: 1\n    interface {" in conf.write()


def test_set_value_and_remove_key():
    conf = CorosyncConf.parse(fixture("qdevice-two-spaces.conf"))
    assert not conf.totem.set("transport", "knet")
    assert conf.totem.set("token", 5000)
    assert conf.totem.set("crypto_hash", None)
    out = conf.write()
    assert "  token: 5000\n" in out and "crypto_hash" not in out


def test_repeated_key_last_wins_and_set_collapses():
    conf = CorosyncConf.parse("totem {\n token: 1000\n token: 2000\n}\n")
    assert conf.totem.get("token") == "2000"
    assert conf.totem.set("token", 2000)
    assert conf.write() == "totem {\n token: 2000\n}\n"


@pytest.mark.parametrize("text, where", [
    ("totem {\n version: 2\n", "not closed"),
    ("}\n", "without an open section"),
    ("totem {\n just words\n}\n", "line 2"),
    ("totem {\n config_version: x\n}\n", "not a number"),
])
def test_parse_errors_say_where(text, where):
    with pytest.raises(ConfError, match=where):
        CorosyncConf.parse(text).config_version


def test_new_conf_is_knet_encrypted_and_parses_back():
    nodes = [{"name": "n1", "nodeid": 1, "addresses": ["10.1.0.1", "10.2.0.1"]},
             {"name": "n2", "nodeid": 2, "addresses": ["10.1.0.2", "10.2.0.2"]}]
    conf = new_conf("c1", nodes, token=3000, two_node=True, wait_for_all=True)
    again = CorosyncConf.parse(conf.write())
    assert again.write() == conf.write()
    totem = again.totem.as_dict()
    assert totem["transport"] == "knet"
    assert (totem["crypto_cipher"], totem["crypto_hash"]) == ("aes256", "sha256")
    assert totem["token"] == "3000" and totem["config_version"] == "1"
    assert totem["interface"] == [{"linknumber": "0"}, {"linknumber": "1"}]
    assert again.quorum() == {"provider": "corosync_votequorum", "two_node": "1", "wait_for_all": "1"}
    assert again.nodes() == nodes
    assert "\n    node {\n        name: n1\n" in conf.write()


def test_new_conf_with_qdevice():
    conf = new_conf("c1", [{"name": "n1", "nodeid": 1, "addresses": ["10.1.0.1"]}],
                    qdevice={"host": "10.9.9.9", "algorithm": "lms", "tie_breaker": "lowest"})
    assert conf.quorum()["device"] == {"model": "net", "votes": "1",
                                       "net": {"host": "10.9.9.9", "algorithm": "lms", "tie_breaker": "lowest"}}


@pytest.mark.parametrize("name", ["", "a b", "x" * 33, "dots.not.allowed", "c1\n"])
def test_bad_cluster_names(name):
    with pytest.raises(InvalidSpec, match="cluster name"):
        new_conf(name, [{"name": "n1", "nodeid": 1, "addresses": ["10.1.0.1"]}])


@pytest.mark.parametrize("nodes, message", [
    ([{"name": "a", "addresses": ["1.1.1.1"]}, {"name": "a", "addresses": ["1.1.1.2"]}], "listed twice"),
    ([{"name": "a", "nodeid": 1, "addresses": ["1.1.1.1"]}, {"name": "b", "nodeid": 1, "addresses": ["1.1.1.2"]}],
     "taken"),
    ([{"name": "a", "addresses": ["1.1.1.1"]}, {"name": "b", "addresses": ["1.1.1.1"]}], "used twice"),
    ([{"name": "a", "addresses": ["1.1.1.1", "2.2.2.1"]}, {"name": "b", "addresses": ["1.1.1.2"]}],
     "one address per link"),
    ([{"name": "a", "addresses": []}], "no address"),
    ([{"name": "-a", "addresses": ["1.1.1.1"]}], "Invalid node name"),
    ([{"name": "a\n", "addresses": ["1.1.1.1"]}], "Invalid node name"),
    ([{"name": "a", "addresses": ["1.1.1.1", "1.1.1.2\n}"]}], "Node a: ring1_addr: .* is not a host name"),
])
def test_check_nodes(nodes, message):
    with pytest.raises(InvalidSpec, match=message):
        check_nodes(nodes)


def test_assign_nodeids_fills_the_lowest_free():
    nodes = [{"name": "a", "nodeid": 2, "addresses": ["x"]}, {"name": "b", "addresses": ["y"]},
             {"name": "c", "addresses": ["z"]}]
    assert [n["nodeid"] for n in assign_nodeids(nodes, taken=[3])] == [2, 1, 4]
