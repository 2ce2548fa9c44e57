# -*- coding: utf-8 -*-
# Copyright: debvirt.cluster developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The cluster planner, without any host."""

from __future__ import annotations

import os
import subprocess

import pytest

from ansible_collections.debvirt.cluster.plugins.module_utils._cluster import (
    Actual,
    ClusterError,
    Member,
    MemberRequest,
    Shell,
    install_script,
    member_uri,
    plan_member,
    request_from_params,
)
from ansible_collections.debvirt.cluster.plugins.module_utils._corosync import CorosyncConf
from ansible_collections.debvirt.cluster.plugins.module_utils._errors import InvalidSpec

FIXTURES = os.path.join(os.path.dirname(__file__), "fixtures", "corosync")


def conf(name="three-nodes-tabs.conf"):
    with open(os.path.join(FIXTURES, name)) as f:
        text = f.read()
    return CorosyncConf.parse(text), text


def test_member_uri():
    assert member_uri("qemu:///system", "10.0.0.2") == "qemu+ssh://root@10.0.0.2/system?no_tty=1"
    assert member_uri("lxc:///system", "n2") == "lxc+ssh://root@n2/system?no_tty=1"
    # An IPv6 address in a URI's authority is bracketed, or the port and the address mix.
    assert member_uri("qemu:///system", "fd00::2") == "qemu+ssh://root@[fd00::2]/system?no_tty=1"
    # A name or an IPv4 address with a port keeps its colon; a bracketed address stays as it is.
    assert member_uri("qemu:///system", "n2:2222") == "qemu+ssh://root@n2:2222/system?no_tty=1"
    assert member_uri("qemu:///system", "[fd00::2]") == "qemu+ssh://root@[fd00::2]/system?no_tty=1"


def test_member_uri_with_another_user_libssh_and_more_parameters():
    assert member_uri("lxc:///system", "n2", user="ad min", query=["keyfile=/k"]) == \
        "lxc+ssh://ad%20min@n2/system?no_tty=1&keyfile=/k"
    assert member_uri("qemu:///system", "fd00::2", "libssh", query=["known_hosts=/kh", "sshauth=agent"]) == \
        "qemu+libssh://root@[fd00::2]/system?known_hosts=/kh&sshauth=agent"
    assert member_uri("qemu:///system", "n2", user=None) == "qemu+ssh://n2/system?no_tty=1"
    # The driver's own parameters come first.
    assert member_uri("test:///tmp/a.xml?x=1", "n2") == "test+ssh://root@n2/tmp/a.xml?x=1&no_tty=1"


def test_a_command_on_a_member_gives_up_on_a_peer_that_died():
    argv = Shell(None).argv("10.0.0.2", ["true"])
    options = dict(argv[i + 1].split("=", 1) for i, a in enumerate(argv) if a == "-o")
    assert (options["ServerAliveInterval"], options["ServerAliveCountMax"], options["ConnectTimeout"]) == ("5", "3", "5")
    assert argv[-2:] == ["root@10.0.0.2", "true"]


def actual(online=(1, 2, 3), target=None, unreachable=()):
    c, text = conf()
    members = {}
    for node in c.nodes():
        host = None if node["name"] == "alpha" else node["addresses"][0]
        members[node["name"]] = Member(node, host, c, reachable=node["name"] not in unreachable, running=True)
    quorum = {"quorate": True, "members": [{"nodeid": i, "votes": 1, "name": "", "local": i == 1} for i in online]}
    return Actual(c, text, c.node("alpha"), members, target, quorum)


def fresh_target(name="delta", addr="10.0.0.4", conf_name="package-default.conf"):
    c = conf(conf_name)[0] if conf_name else None
    return Member({"name": name, "nodeid": None, "addresses": [addr]}, addr, c, reachable=True, running=True)


def test_join_plans_every_member_and_bumps_the_version():
    a = actual(target=fresh_target())
    plan, new = plan_member(MemberRequest("delta", ["10.0.0.4"], cluster_name="lab"), a)
    assert [(c.action, c.target) for c in plan.changes] == [
        ("add", "node delta"), ("update", "config_version"),
        ("write", "corosync.conf on alpha"), ("write", "corosync.conf on beta"), ("write", "corosync.conf on gamma"),
        ("reload", "corosync"), ("copy", "authkey to delta"), ("write", "corosync.conf on delta"),
        ("start", "corosync on delta")]
    assert new.config_version == 8
    assert new.node("delta") == {"name": "delta", "nodeid": 4, "addresses": ["10.0.0.4"]}


# Each refusal: the request, how the cluster looks (actual()'s arguments; "target" as
# fresh_target()'s), the guests the node runs, and the error. Nothing is planned before it.
REFUSALS = {
    "node of another cluster": (MemberRequest("delta", ["10.0.0.4"]), {"target": {"conf_name": "qdevice-two-spaces.conf"}},
                                None, ClusterError, "already belongs to cluster 'withqd'"),
    "cluster name mismatch": (MemberRequest("beta", ["10.0.0.2"], cluster_name="other"), {}, None,
                              ClusterError, "Cluster name mismatch"),
    "unreachable member": (MemberRequest("delta", ["10.0.0.4"]), {"target": {}, "unreachable": ("gamma",)}, None,
                           ClusterError, "gamma unreachable"),
    "address used twice": (MemberRequest("delta", ["10.0.0.3"]), {"target": {"addr": "10.0.0.3"}}, None,
                           InvalidSpec, "used twice"),
    "member with other addresses": (MemberRequest("beta", ["10.9.9.9"]), {}, None, ClusterError, "not supported"),
    "removal while guests run": (MemberRequest("gamma", state="absent"), {}, ["web01"],
                                 ClusterError, "still runs guest.s. web01"),
    # gamma goes; of alpha and beta only alpha is online: 1 of 2, 2 needed.
    "removal losing quorum": (MemberRequest("gamma", state="absent"), {"online": (1, 3)}, [],
                              ClusterError, "without quorum"),
    "removal with unknown guests": (MemberRequest("gamma", state="absent"), {}, None,
                                    ClusterError, "Cannot check the guests"),
}


@pytest.mark.parametrize("case", sorted(REFUSALS))
def test_plan_member_refuses(case):
    request, cluster, guests, error, message = REFUSALS[case]
    cluster = dict(cluster)
    if "target" in cluster:
        cluster["target"] = fresh_target(**cluster["target"])
    with pytest.raises(error, match=message):
        plan_member(request, actual(**cluster), guests=guests)


def test_join_of_a_member_is_a_no_op():
    plan, new = plan_member(MemberRequest("beta", ["10.0.0.2"]), actual())
    assert not plan.changed and new is None


def test_remove_forced_with_guests():
    plan, new = plan_member(MemberRequest("gamma", state="absent", force=True), actual(), guests=["web01"])
    assert plan.has("remove") and new.node("gamma") is None


def test_remove_plan():
    plan, new = plan_member(MemberRequest("gamma", state="absent"), actual(), guests=[])
    assert [(c.action, c.target) for c in plan.changes] == [
        ("stop", "pacemaker and corosync on gamma"), ("move", "corosync.conf on gamma aside"),
        ("remove", "node gamma"), ("update", "config_version"),
        ("write", "corosync.conf on alpha"), ("write", "corosync.conf on beta"),
        ("reload", "corosync"), ("forget", "node gamma in pacemaker")]
    assert [n["name"] for n in new.nodes()] == ["alpha", "beta"]
    assert new.config_version == 8


def after_a_death(change, behind=(), fresh=None):
    """actual() after a run that stopped half way: alpha's (this host's) nodelist changed by
    change(conf), the members named in behind still at the old one, fresh a node in the new
    nodelist that still runs the package's default config."""
    old = conf()[0]
    new_conf, _text = conf()
    change(new_conf)
    new_conf.set_config_version(8)
    text = new_conf.write()
    a = actual()
    members = {}
    for node in new_conf.nodes():
        host = None if node["name"] == "alpha" else node["addresses"][0]
        member_conf = conf("package-default.conf")[0] if node["name"] == fresh else (
            old if node["name"] in behind else CorosyncConf.parse(text))
        members[node["name"]] = Member(node, host, member_conf, running=True)
    return Actual(CorosyncConf.parse(text), text, a.me, members, members.get(fresh), a.quorum)


def with_delta(c):
    c.set_nodes(c.nodes() + [{"name": "delta", "nodeid": 4, "addresses": ["10.0.0.4"]}])


def test_a_join_that_stopped_before_the_node_got_its_config_is_finished():
    # delta died after the members took it in: it gets the key, the config and a start, as a join
    # gives them, never only the file beside its running package default.
    a = after_a_death(with_delta, fresh="delta")
    plan, new = plan_member(MemberRequest("delta", ["10.0.0.4"], cluster_name="lab"), a)
    assert [(c.action, c.target) for c in plan.changes] == [
        ("copy", "authkey to delta"), ("write", "corosync.conf on delta"), ("start", "corosync on delta")]
    assert new.node("delta") == {"name": "delta", "nodeid": 4, "addresses": ["10.0.0.4"]}


def test_a_join_rerun_catches_up_a_member_that_missed_the_nodelist():
    a = after_a_death(with_delta, behind=("beta",), fresh="delta")
    plan, new = plan_member(MemberRequest("delta", ["10.0.0.4"], cluster_name="lab"), a)
    assert [(c.action, c.target) for c in plan.changes] == [
        ("write", "corosync.conf on beta"), ("reload", "corosync"),
        ("copy", "authkey to delta"), ("write", "corosync.conf on delta"), ("start", "corosync on delta")]
    assert new.config_version == 8


def test_a_removal_rerun_catches_up_a_member_that_missed_the_nodelist():
    # beta died before it got the nodelist without gamma; this host has it already.
    a = after_a_death(lambda c: c.set_nodes(c.nodes()[:2]), behind=("beta",))
    plan, new = plan_member(MemberRequest("gamma", state="absent"), a)
    assert [(c.action, c.target, c.before, c.after) for c in plan.changes] == [
        ("write", "corosync.conf on beta", 7, 8), ("reload", "corosync", None, None)]
    assert [n["name"] for n in new.nodes()] == ["alpha", "beta"]
    assert not plan_member(MemberRequest("gamma", state="absent"), after_a_death(lambda c: c.set_nodes(c.nodes()[:2])))[0].changed


def test_a_removal_rerun_after_the_node_left_but_before_this_host_wrote_finishes_it():
    # A member died before this host wrote its nodelist: gamma is stopped, its config aside.
    a = actual()
    a.members["gamma"].conf, a.members["gamma"].running = None, False
    plan, new = plan_member(MemberRequest("gamma", state="absent"), a, guests=[])
    assert [(c.action, c.target) for c in plan.changes] == [
        ("stop", "pacemaker and corosync on gamma"), ("remove", "node gamma"), ("update", "config_version"),
        ("write", "corosync.conf on alpha"), ("write", "corosync.conf on beta"),
        ("reload", "corosync"), ("forget", "node gamma in pacemaker")]
    assert [n["name"] for n in new.nodes()] == ["alpha", "beta"]


def test_remove_of_a_non_member_and_of_self():
    plan, _new = plan_member(MemberRequest("zeta", state="absent"), actual())
    assert not plan.changed
    with pytest.raises(ClusterError, match="through itself"):
        plan_member(MemberRequest("alpha", state="absent"), actual(), guests=[])


def test_create_on_a_fresh_host():
    c, text = conf("package-default.conf")
    a = Actual(c, text, None, {}, None, None)
    req = MemberRequest("n1", ["10.1.0.1"], cluster_name="c1", settings={"token": 3000, "two_node": False})
    plan, new = plan_member(req, a, hostname="n1")
    assert [c.action for c in plan.changes] == ["create", "add", "start"]
    assert new.cluster_name == "c1" and new.totem.get("token") == "3000"
    with pytest.raises(ClusterError, match="not a member of a cluster"):
        plan_member(req, a, hostname="other-host")


@pytest.mark.parametrize("params, message", [
    ({"name": "bad name"}, "^name: invalid node name 'bad name'"),
    ({"name": "n1\n}"}, "^name: invalid node name"),
    ({"name": "n1", "addresses": ["10.0.0.1", "10.0.1.1\n}\nnode {"]}, r"^addresses\[1\]: .* is not a host name"),
    ({"name": "n1", "addresses": ["10.0.0.1 #"]}, r"^addresses\[0\]: "),
    ({"name": "n1", "addresses": ["{"]}, r"^addresses\[0\]: "),
    ({"name": "n1", "qdevice": {"host": "q\n"}}, r"^qdevice.host: "),
    ({"name": "n1", "qdevice": {"host": "q", "tie_breaker": "1\n}"}}, r"^qdevice.tie_breaker: "),
    ({"name": "n1", "cluster_name": "x" * 40}, "Invalid cluster name"),
    ({"name": "n1", "nodeid": 0}, "nodeid must be at least 1"),
    ({"name": "n1", "addresses": ["a"] * 9}, "at most 8 links"),
    ({"name": "n1", "two_node": True, "qdevice": {"host": "q"}}, "exclude each other"),
])
def test_bad_input(params, message):
    """Refused before anything is read or written: request_from_params runs before the plan,
    so check mode refuses the same."""
    with pytest.raises(InvalidSpec, match=message):
        request_from_params(params)


@pytest.mark.parametrize("fill, data, mode", [("cat", b"totem {}\n", 0o644), ("base64 -d", b"a2V5", 0o400)])
def test_a_file_is_installed_through_a_temporary_name_of_its_own(tmp_path, fill, data, mode):
    path = tmp_path / "corosync.conf"
    path.write_text("old\n")
    subprocess.run(["sh", "-c", install_script(fill, mode), "sh", str(path)], input=data, check=True)
    assert path.read_bytes() == (b"key" if fill.startswith("base64") else data)
    assert os.stat(path).st_mode & 0o777 == mode
    assert os.listdir(tmp_path) == ["corosync.conf"]


def test_a_failed_install_keeps_the_file_and_leaves_nothing_beside_it(tmp_path):
    path = tmp_path / "authkey"
    path.write_text("old\n")
    proc = subprocess.run(["sh", "-c", install_script("false", 0o400), "sh", str(path)], input=b"", check=False)
    assert proc.returncode != 0
    assert path.read_text() == "old\n" and os.listdir(tmp_path) == ["authkey"]
