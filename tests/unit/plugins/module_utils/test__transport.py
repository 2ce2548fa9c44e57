# -*- coding: utf-8 -*-
# Copyright: debvirt.cluster developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Transport of a migration (SSH or TLS), where the guest is, and the time bounds of its copies.
The TLS probe talks to real libvirt: test:///default answers, a TLS URI without a listener does
not."""

from __future__ import annotations

from unittest import mock

import libvirt
import pytest

from ansible_collections.debvirt.cluster.plugins.module_utils._client import LibvirtClient
from ansible_collections.debvirt.cluster.plugins.module_utils._cluster import Shell, member_uri
from ansible_collections.debvirt.cluster.plugins.module_utils._errors import InvalidSpec, WaitTimeout
from ansible_collections.debvirt.cluster.plugins.module_utils._migration import (
    MigrationRequest,
    converge_migration,
    request_from_params,
)
from ansible_collections.debvirt.cluster.plugins.module_utils._migration_facts import Disk
from ansible_collections.debvirt.cluster.plugins.module_utils._transport import (
    MigrationError,
    Node,
    copy_disk,
    copy_tree,
    Members,
    find_source,
    locate,
    locate_all,
    members_of,
    probe_tls,
    read_members,
    where_now,
)

BASE = dict(name="web", target="b", mode="auto", copy_storage="auto", timeout=600, max_downtime=None,
            bandwidth=None, min_free_memory=0, keep_source_storage=False, members=None,
            migrate_address=None)
DEAD_TLS_HOST = "127.0.0.1"
# The TLS probe of a target that does not answer: a URI no libvirt driver serves fails as a
# connection to a target without TLS does, whatever this machine's libvirtd listens on.
NO_DRIVER = "dvtest-nodriver:///system"


def test_transport_defaults_to_ssh():
    assert request_from_params(dict(BASE)).transport == "ssh"
    assert request_from_params(dict(BASE, transport="tls")).transport == "tls"


def test_an_unknown_transport_is_refused():
    with pytest.raises(InvalidSpec, match="transport must be one of ssh, tls, got tcp"):
        request_from_params(dict(BASE, transport="tcp"))


@pytest.mark.parametrize("uri, host, expected", [
    ("qemu:///system", "10.0.0.2", "qemu+tls://10.0.0.2/system"),
    ("lxc:///system", "node2", "lxc+tls://node2/system"),
    ("qemu+ssh://root@node2/system?no_tty=1", "node2", "qemu+tls://node2/system"),
    ("qemu://", "node2", "qemu+tls://node2/system"),
    ("qemu:///system", "fd00::2", "qemu+tls://[fd00::2]/system"),
])
def test_tls_uri(uri, host, expected):
    assert member_uri(uri, host, "tls") == expected


def test_members_given_are_reached_over_tls_except_this_host():
    req = MigrationRequest("web", "b", transport="tls",
                           members={"a": "qemu:///system", "b": "qemu+ssh://root@node2/system?no_tty=1"})
    nodes = read_members(None, "qemu:///system", req).nodes
    assert (nodes["a"].uri, nodes["b"].uri) == ("qemu:///system", "qemu+tls://node2/system")


def test_members_given_keep_their_uris_over_ssh():
    given = {"a": "qemu:///system", "b": "qemu+ssh://root@node2/system?no_tty=1"}
    nodes = read_members(None, "qemu:///system", MigrationRequest("web", "b", members=given)).nodes
    assert nodes["b"].uri == given["b"]


# --- where guests are -------------------------------------------------------------------------
GUEST = "<domain type='test'><name>%s</name><memory unit='MiB'>64</memory><os><type>hvm</type></os></domain>"


class Listed(LibvirtClient):
    """A member's test driver that counts what it is asked."""

    def __init__(self, uri, log):
        super().__init__(uri)
        self.log = log

    def domains(self):
        self.log.append(("list", self.uri))
        return super().domains()

    def domain(self, name):
        self.log.append(("look up", self.uri))
        return super().domain(name)

    def close(self):
        self.log.append(("close", self.uri))
        super().close()


@pytest.fixture
def three(tmp_path):
    """Members a (this host), b, c (offline) and d (no libvirt answers), b and a with guests."""
    uris = {}
    for name, guests in (("a", ["web"]), ("b", ["web", "db", "other"]), ("c", ["db"])):
        path = tmp_path / ("%s.xml" % name)
        path.write_text("<node>%s</node>" % "".join(GUEST % g for g in guests))
        uris[name] = "test://%s" % path
    uris["d"] = NO_DRIVER
    nodes = {n: Node(n, uri, "10.0.0.%d" % i, n != "c", None if n == "a" else n)
             for i, (n, uri) in enumerate(sorted(uris.items()), 1)}
    return Members(nodes, True, "corosync")


def test_locate_all_lists_each_member_once_for_many_names(three):
    log = []
    found, unknown, clients = locate_all(three, lambda uri: Listed(uri, log), {"web", "db", "gone"})
    assert found == {"web": {"a": "running", "b": "running"}, "db": {"b": "running"}}
    assert unknown == ["c", "d"]
    assert sorted(clients) == ["a", "b"]
    assert [what for what, _uri in log] == ["list", "list", "list", "close"]  # d's failed listing is closed
    assert ("look up", three.nodes["a"].uri) not in log
    for client in clients.values():
        client.close()


def test_locate_is_the_one_name_view_and_others_leave_this_host_out(three):
    found, unknown, clients = locate(three.others(), LibvirtClient, "web")
    assert (found, unknown, sorted(clients)) == ({"b": "running"}, ["c", "d"], ["b"])
    for client in clients.values():
        client.close()


def test_members_of_a_host_in_no_cluster_is_none():
    # Exit 3 of the read: corosync.conf does not exist.
    assert members_of(Shell(lambda argv, **kw: (3, "", "")), "qemu:///system") is None


class Opened:
    """client_for that records every URI the move asks for."""

    def __init__(self, answer=None):
        self.uris = []
        self.answer = answer

    def __call__(self, uri):
        self.uris.append(uri)
        return LibvirtClient(self.answer or uri)


def test_the_tls_probe_passes_when_the_target_answers():
    opened = Opened(answer="test:///default")
    check = probe_tls(opened, "qemu:///system", Node("b", "qemu+tls://10.0.0.2/system", "10.0.0.2"))
    assert opened.uris == ["qemu+tls://10.0.0.2/system"]
    assert check == {"check": "transport", "result": "passed", "detail": "tls: b answers at qemu+tls://10.0.0.2/system"}


def test_a_target_without_tls_stops_the_move_before_anything_is_asked():
    opened = Opened(answer=NO_DRIVER)
    req = MigrationRequest("web", "b", transport="tls",
                           members={"a": "test:///default", "b": "qemu+ssh://root@%s/system" % DEAD_TLS_HOST})
    with pytest.raises(MigrationError) as e:
        converge_migration(None, "qemu:///system", opened, req, check_mode=True)
    # Only the probe: no member was asked where the guest is, nothing was read or changed.
    assert opened.uris == ["qemu+tls://127.0.0.1/system"]
    assert "b does not answer at qemu+tls://127.0.0.1/system" in e.value.msg
    assert "cluster_tls: true" in e.value.msg and "Nothing was changed" in e.value.msg
    assert [c["result"] for c in e.value.details["checks"]] == ["failed"]


def test_tls_needs_the_target_address():
    with pytest.raises(MigrationError, match="needs the target's host name or address: b has none"):
        probe_tls(Opened(), "qemu:///system", Node("b", "qemu:///system", None))


# --- copies bounded by the timeout ---------------------------------------------------------------
class StuckCopy:
    """A source whose copy runs out of time, as LibvirtClient.copy_volume_to reports it."""

    def __init__(self):
        self.deadline = None

    def volume_by_path(self, path):
        return path

    def copy_volume_to(self, vol, dest, dest_vol, size, deadline=None):
        self.deadline = deadline
        raise WaitTimeout("Gave up copying volume %s: the time allowed ran out" % vol)


class Target:
    def pool(self, name):
        return name

    def volume(self, pool, name):
        return name


def test_a_disk_copy_out_of_time_names_the_disk_and_the_timeout():
    src = StuckCopy()
    disk = Disk("vda", "/p/web.img", False, "local", "dir", "web.img", False, 1, 1, "raw")
    with pytest.raises(MigrationError, match="Copying disk vda of guest web to b did not finish within timeout 5s"):
        copy_disk(MigrationRequest("web", "b", timeout=5), src, Target(), disk, 123.0)
    assert src.deadline == 123.0


@pytest.mark.parametrize("rc, message", [
    (124, "did not finish within timeout 7s and was aborted"),
    (137, "did not finish within timeout 7s and was aborted"),
    (2, "Failed to copy /var/lib/ct to the target: tar: broken"),
])
def test_a_root_directory_copy_is_bounded_by_timeout(rc, message):
    calls = []

    def run_command(argv, **kwargs):
        calls.append(argv)
        return rc, "", "tar: broken"

    with pytest.raises(MigrationError, match=message):
        copy_tree(Shell(run_command), "10.0.0.1", "10.0.0.2", "/var/lib/ct", 7)
    assert calls[0][:4] == ["timeout", "--kill-after=10", "7", "bash"]


def test_a_root_directory_copy_in_time_passes():
    seen = []
    copy_tree(Shell(lambda argv, **kw: seen.append(argv) or (0, "", "")), None, "10.0.0.2", "/var/lib/ct", 60)
    assert "tar -C /var/lib/ct -cpf -" in seen[0][-1]


def test_a_refusal_over_tls_lists_the_transport_check_first(tmp_path):
    # Over TLS, host a is the test driver's stock host (guest "test" runs there), host b an
    # empty one where it would not fit with the memory asked to stay free.
    empty = tmp_path / "empty.xml"
    empty.write_text("<node/>")
    hosts = {"qemu+tls://a.example/system": "test:///default", "qemu+tls://b.example/system": "test://%s" % empty}
    opened = []

    def client_for(uri):
        opened.append(uri)
        return LibvirtClient(hosts[uri])

    req = MigrationRequest("test", "b", transport="tls", min_free_memory=10 ** 9,
                           members={"a": "qemu+ssh://root@a.example/system", "b": "qemu+ssh://root@b.example/system"})
    with pytest.raises(MigrationError, match="memory: guest needs") as e:
        converge_migration(None, "qemu:///system", client_for, req, check_mode=True)
    assert opened[0] == "qemu+tls://b.example/system"
    assert set(opened) == set(hosts)
    checks = e.value.details["checks"]
    assert (checks[0]["check"], checks[0]["result"]) == ("transport", "passed")
    assert {"check": "memory", "result": "failed"}.items() <= next(c for c in checks if c["check"] == "memory").items()


# --- where the guest is ----------------------------------------------------------------------------
@pytest.mark.parametrize("found, target, expected", [
    ({"a": "running"}, "b", "a"),
    ({"a": "stopped"}, "b", "a"),
    ({"a": "stopped", "b": "running"}, "b", "b"),      # runs on the target: nothing to do
    ({"a": "stopped", "b": "stopped"}, "b", "b"),      # defined on both, stopped: the target has it
    ({"a": "paused"}, "b", "a"),
])
def test_find_source(found, target, expected):
    assert find_source(found, target, "web", []) == expected


@pytest.mark.parametrize("found, message", [
    ({}, "not defined on any member"),
    ({"a": "running", "c": "running"}, "runs on several nodes (a, c)"),
    ({"a": "stopped", "c": "stopped"}, "defined on several nodes (a, c)"),
])
def test_find_source_refuses(found, message):
    with pytest.raises(MigrationError, match=message.replace("(", r"\(").replace(")", r"\)")):
        find_source(found, "b", "web", [])


def test_not_found_names_the_members_not_asked():
    with pytest.raises(MigrationError, match="not asked .*: c"):
        find_source({}, "b", "web", ["c"])


def test_where_now_asks_again_over_a_new_connection_when_the_old_one_was_lost(driver_uri, monkeypatch):
    # libvirtd restarted under the move: the first connection is gone, the daemon answers anew.
    src = LibvirtClient(driver_uri)
    monkeypatch.setattr(src.conn, "lookupByName", mock.Mock(side_effect=libvirt.libvirtError("client socket is closed")))
    assert where_now(src, "test", "a") == "Guest test is still running on a"
    src.close()


def test_where_now_says_so_when_the_source_does_not_answer():
    assert where_now(LibvirtClient("test:///nonexistent-debvirt-file.xml"), "web", "a") == (
        "Where guest web is now could not be read from a")
