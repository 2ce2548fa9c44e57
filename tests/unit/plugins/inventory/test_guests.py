# -*- coding: utf-8 -*-
# Copyright: debvirt.cluster developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The guests inventory plugin, in-process, against libvirt's test driver.

Two "members" are test driver files (data/node-*.xml): each connection to a file URI gets its
own copy of the file's domains, so these tests share no state. One test uses test:///default,
where the state is shared, and puts it back the way it found it.
"""

from __future__ import annotations

import os
import time

import libvirt
import pytest
from ansible.errors import AnsibleError, AnsibleParserError

from ansible_collections.debvirt.cluster.plugins.inventory import guests
from ansible_collections.debvirt.cluster.plugins.module_utils import _client, _inventory

DATA = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data")
NODE_A = "test://%s/node-a.xml" % DATA
NODE_B = "test://%s/node-b.xml" % DATA
# A local socket that does not exist: the connection fails at once, as a member that is down.
DOWN = "qemu+unix:///system?socket=/nonexistent/debvirt-test/libvirt-sock"
TWO_NODES = {"uris": [{"uri": NODE_A, "node": "node-a"}, {"uri": NODE_B, "node": "node-b"}]}


def hostvars(data, host):
    return data.get_host(host).get_vars()


def members_of(data, group):
    return sorted(h.name for h in data.groups[group].get_hosts()) if group in data.groups else []


@pytest.fixture
def opens(monkeypatch):
    """The URIs that libvirt connections were opened to."""
    seen = []
    real = _client.libvirt.open

    def counting_open(uri):
        seen.append(uri)
        return real(uri)
    monkeypatch.setattr(_client.libvirt, "open", counting_open)
    return seen


def test_hosts_and_variables(inventory, warnings):
    data = inventory(TWO_NODES)
    assert sorted(data.hosts) == ["app01", "ct01", "db01", "web01"]
    web = hostvars(data, "web01")
    assert {k: v for k, v in web.items() if k.startswith(("debvirt_", "ansible_host"))} == {
        "debvirt_node": "node-a",
        "debvirt_uri": NODE_A,
        "debvirt_state": "running",
        "debvirt_type": "vm",
        "debvirt_tags": ["prod", "web"],
        "debvirt_description": "front end",
        "debvirt_uuid": "11111111-1111-4111-8111-111111111111",
        # The test driver invents this lease for every interface of a running guest.
        "debvirt_addresses": ["192.168.0.1/24"],
        "debvirt_interfaces": [{"mac": "52:54:00:00:0a:01", "network": None, "bridge": "br0",
                                "addresses": ["192.168.0.1/24"]}],
        "debvirt_autostart": False,
        "debvirt_memory": 2048,
        "debvirt_vcpus": 2,
        "ansible_host": "192.168.0.1",
    }
    db = hostvars(data, "db01")
    assert db["debvirt_state"] == "stopped"
    assert db["debvirt_addresses"] == []
    assert "ansible_host" not in db
    ct = hostvars(data, "ct01")
    assert ct["debvirt_type"] == "container"
    assert ct["debvirt_tags"] == ["web"]
    # Its lease, then the static address the container module recorded for eth0.
    assert ct["debvirt_addresses"] == ["192.168.0.1/24", "10.0.0.5/24"]
    assert hostvars(data, "app01")["debvirt_node"] == "node-b"


@pytest.fixture
def agent_says(monkeypatch):
    """Guests whose DHCP lease source reports what leases holds (nothing: a guest on a bridge),
    and whose guest agent reports another address: what a guest that lies would have it say."""
    leases = []
    asked = []

    def interface_addresses(dom, source, flags=0):
        asked.append(source)
        if source == libvirt.VIR_DOMAIN_INTERFACE_ADDRESSES_SRC_AGENT:
            addrs = [{"type": 0, "addr": "203.0.113.7", "prefix": 24}]
        else:
            addrs = [{"type": 0, "addr": a, "prefix": 24} for a in leases]
        return {"eth0": {"hwaddr": "52:54:00:00:0a:01", "addrs": addrs}} if addrs else {}
    monkeypatch.setattr(libvirt.virDomain, "interfaceAddresses", interface_addresses)
    agent_says.leases, agent_says.asked = leases, asked
    return agent_says


def test_agent_addresses_only_when_asked(inventory, warnings, agent_says):
    web = hostvars(inventory(TWO_NODES, cache=False), "web01")
    assert "ansible_host" not in web
    assert web["debvirt_addresses"] == [] and web["debvirt_interfaces"][0]["addresses"] == []
    assert libvirt.VIR_DOMAIN_INTERFACE_ADDRESSES_SRC_AGENT not in agent_says.asked
    web = hostvars(inventory(dict(TWO_NODES, use_agent_addresses=True), cache=False), "web01")
    assert web["ansible_host"] == "203.0.113.7"
    assert web["debvirt_addresses"] == ["203.0.113.7/24"]


def test_a_lease_comes_before_the_agents_address(inventory, warnings, agent_says):
    agent_says.leases.append("192.168.0.9")
    web = hostvars(inventory(TWO_NODES, cache=False), "web01")
    assert (web["ansible_host"], web["debvirt_addresses"]) == ("192.168.0.9", ["192.168.0.9/24"])
    web = hostvars(inventory(dict(TWO_NODES, use_agent_addresses=True), cache=False), "web01")
    assert (web["ansible_host"], web["debvirt_addresses"]) == ("192.168.0.9", ["192.168.0.9/24", "203.0.113.7/24"])


def test_the_agent_option_is_part_of_the_cache_key(inventory, opens, tmp_path, warnings, agent_says):
    cached = dict(TWO_NODES, cache=True, cache_plugin="jsonfile", cache_connection=str(tmp_path / "cache"))
    assert "ansible_host" not in hostvars(inventory(cached), "web01")
    assert hostvars(inventory(dict(cached, use_agent_addresses=True)), "web01")["ansible_host"] == "203.0.113.7"


def test_standard_groups(inventory, warnings):
    data = inventory(TWO_NODES)
    assert members_of(data, "node_node_a") == ["ct01", "db01", "web01"]
    assert members_of(data, "node_node_b") == ["app01"]
    assert members_of(data, "state_running") == ["app01", "ct01", "web01"]
    assert members_of(data, "state_stopped") == ["db01"]
    assert members_of(data, "type_vm") == ["app01", "db01", "web01"]
    assert members_of(data, "type_container") == ["ct01"]
    assert members_of(data, "tag_web") == ["ct01", "web01"]
    assert members_of(data, "tag_prod") == ["db01", "web01"]
    assert members_of(data, "tag_app_v2") == ["app01"]  # the dot is not valid in a group name


def test_guest_on_two_nodes_is_listed_once_from_where_it_runs(inventory, warnings):
    data = inventory(TWO_NODES)
    assert hostvars(data, "web01")["debvirt_node"] == "node-a"
    assert members_of(data, "node_node_b") == ["app01"]
    assert any("web01 is defined on node-a (running) and on node-b (stopped): using the one on node-a"
               in w for w in warnings)
    # The same with the nodes the other way round: still the running one.
    data = inventory({"uris": list(reversed(TWO_NODES["uris"]))})
    assert hostvars(data, "web01")["debvirt_node"] == "node-a"


def test_compose_groups_keyed_groups_are_jinja(inventory, warnings):
    data = inventory(dict(TWO_NODES,
                          compose={"ansible_user": "'admin'", "size": "debvirt_memory * 2"},
                          groups={"big": "debvirt_memory >= 1024", "web_and_up": "'web' in debvirt_tags and debvirt_state == 'running'"},
                          keyed_groups=[{"key": "debvirt_type", "prefix": "kind"},
                                        {"key": "debvirt_tags", "prefix": "label", "separator": "-"}]))
    assert hostvars(data, "web01")["ansible_user"] == "admin"
    assert hostvars(data, "db01")["size"] == 1024
    assert members_of(data, "big") == ["app01", "web01"]
    assert members_of(data, "web_and_up") == ["ct01", "web01"]
    assert members_of(data, "kind_vm") == ["app01", "db01", "web01"]
    assert members_of(data, "kind_container") == ["ct01"]
    assert members_of(data, "label_web") == ["ct01", "web01"]  # "-" is made "_" by Ansible


def test_compose_groups_keyed_groups_in_jmespath(inventory, warnings):
    data = inventory(dict(TWO_NODES, expressions="jmespath",
                          compose={"ansible_user": "'admin'", "first_mac": "debvirt_interfaces[0].mac",
                                   "nothing": "debvirt_no_such_variable"},
                          groups={"big": "debvirt_memory >= `1024`",
                                  "web_and_up": "contains(debvirt_tags, 'web') && debvirt_state == 'running'",
                                  "bad": "debvirt_memory > 'x'"},
                          keyed_groups=[{"key": "debvirt_type", "prefix": "kind"},
                                        {"key": "debvirt_tags[?@ != 'prod']", "prefix": "label"},
                                        {"key": "debvirt_description", "prefix": "about", "default_value": "none"}]))
    assert hostvars(data, "web01")["ansible_user"] == "admin"
    assert hostvars(data, "web01")["first_mac"] == "52:54:00:00:0a:01"
    # A null result sets nothing; app01 has no interface.
    assert "first_mac" not in hostvars(data, "app01")
    assert "nothing" not in hostvars(data, "web01")
    assert members_of(data, "big") == ["app01", "web01"]
    assert members_of(data, "web_and_up") == ["ct01", "web01"]
    # A type error skips the entry for that host, as a failing Jinja2 expression does.
    assert members_of(data, "bad") == []
    assert members_of(data, "kind_vm") == ["app01", "db01", "web01"]
    assert members_of(data, "kind_container") == ["ct01"]
    assert members_of(data, "label_web") == ["ct01", "web01"]
    assert members_of(data, "label_prod") == []
    assert members_of(data, "about_front_end") == ["web01"]
    assert members_of(data, "about_none") == ["app01", "ct01", "db01"]
    with pytest.raises(AnsibleError, match=r"groups.bad for host"):
        inventory(dict(TWO_NODES, expressions="jmespath", strict=True, groups={"bad": "debvirt_memory > 'x'"}))


@pytest.mark.parametrize("config, message", [
    ({"compose": {"x": "debvirt_tags[?"}}, r"compose.x 'debvirt_tags\[\?' is not a valid JMESPath expression"),
    ({"groups": {"g": "a =="}}, r"groups.g 'a ==' is not a valid JMESPath expression"),
    ({"keyed_groups": [{"key": "]"}]}, r"keyed_groups\[0\].key '\]' is not a valid JMESPath expression"),
    ({"keyed_groups": [{"prefix": "p"}]}, r"keyed_groups\[0\].key must be a JMESPath expression, got None"),
])
def test_bad_jmespath_constructed_fails_before_any_connection(inventory, opens, config, message):
    with pytest.raises(AnsibleParserError, match=message):
        inventory(dict(TWO_NODES, expressions="jmespath", **config))
    assert opens == []


def test_filters_are_jmespath(inventory, warnings):
    data = inventory(dict(TWO_NODES, filters=["debvirt_state == 'running'", "contains(debvirt_tags, 'web')"]))
    assert sorted(data.hosts) == ["ct01", "web01"]
    assert members_of(data, "state_stopped") == []
    data = inventory(dict(TWO_NODES, filters=["debvirt_type == 'vm' && debvirt_memory >= `1024`"]))
    assert sorted(data.hosts) == ["app01", "web01"]
    # JMESPath's false: an empty list drops a host (app01 has no interface, db01 is off)...
    data = inventory(dict(TWO_NODES, filters=["debvirt_addresses"]))
    assert sorted(data.hosts) == ["ct01", "web01"]
    # ... but, unlike Python's, the number 0 is true.
    data = inventory(dict(TWO_NODES, filters=["length(debvirt_addresses)"]))
    assert sorted(data.hosts) == ["app01", "ct01", "db01", "web01"]


def test_bad_filter_fails_before_any_connection(inventory, opens):
    with pytest.raises(AnsibleParserError, match=r"filters\[1\] .* is not a valid JMESPath expression"):
        inventory(dict(TWO_NODES, filters=["debvirt_state", "debvirt_state == "]))
    assert opens == []


def test_warm_cache_opens_no_connection(inventory, opens, tmp_path, warnings):
    config = dict(TWO_NODES, cache=True, cache_plugin="jsonfile",
                  cache_connection=str(tmp_path / "cache"))
    first = inventory(config)
    assert sorted(opens) == sorted([NODE_A, NODE_B])
    del opens[:]
    second = inventory(config)  # a new plugin, as a new ansible-inventory run has
    assert opens == []
    assert sorted(second.hosts) == sorted(first.hosts)
    assert hostvars(second, "web01") == hostvars(first, "web01")
    assert members_of(second, "tag_web") == ["ct01", "web01"]
    # Filters and groups apply to the cached guests: changing them needs no refresh.
    third = inventory(dict(config, filters=["debvirt_type == 'container'"]))
    assert opens == [] and sorted(third.hosts) == ["ct01"]
    # --flush-cache (cache=False) reads the members again and refreshes the cache.
    inventory(config, cache=False)
    assert sorted(opens) == sorted([NODE_A, NODE_B])


def test_cache_key_follows_the_members(inventory, opens, tmp_path, warnings):
    config = dict(TWO_NODES, cache=True, cache_plugin="jsonfile",
                  cache_connection=str(tmp_path / "cache"))
    inventory(config)
    del opens[:]
    data = inventory(dict(config, uris=[{"uri": NODE_B, "node": "node-b"}]))
    assert opens == [NODE_B]
    assert sorted(data.hosts) == ["app01", "web01"]


def test_without_cache_every_run_reads(inventory, opens, warnings):
    inventory(TWO_NODES)
    inventory(TWO_NODES)
    assert len(opens) == 4


def test_member_that_does_not_answer_is_a_warning(inventory, warnings):
    data = inventory({"uris": [{"uri": NODE_A, "node": "node-a"}, {"uri": DOWN, "node": "node-down"}]})
    assert sorted(data.hosts) == ["ct01", "db01", "web01"]
    assert len(warnings) == 1
    assert DOWN in warnings[0] and "node-down" in warnings[0] and "Failed to connect to" in warnings[0]
    assert "node_node_down" not in data.groups


def test_listing_that_lacks_a_member_is_not_cached(inventory, opens, tmp_path, warnings):
    config = {"uris": [NODE_A, DOWN], "cache": True, "cache_plugin": "jsonfile",
              "cache_connection": str(tmp_path / "cache")}
    inventory(config)
    del opens[:]
    data = inventory(config)
    assert sorted(opens) == sorted([NODE_A, DOWN])
    assert sorted(data.hosts) == ["ct01", "db01", "web01"]


def test_member_that_does_not_answer_is_fatal_when_strict(inventory, warnings):
    with pytest.raises(AnsibleError, match="node-down.*did not answer: Failed to connect to"):
        inventory({"strict": True, "uris": [{"uri": NODE_A, "node": "node-a"}, {"uri": DOWN, "node": "node-down"}]})


def test_unanswered_after_the_timeout_is_skipped():
    def slow(uri):
        if uri == "slow":
            time.sleep(5)
        return _client.LibvirtClient(NODE_A)

    started = time.monotonic()
    records, failures = _inventory.read_targets(
        [_inventory.Target("slow", "n1"), _inventory.Target(NODE_A, "n2")], timeout=0.5, client_factory=slow)
    assert time.monotonic() - started < 3
    assert sorted(r["name"] for r in records) == ["ct01", "db01", "web01"]
    assert [(t.node, reason) for t, reason in failures] == [("n1", "did not answer within 0.5s")]


def test_member_uris():
    # Without a known_hosts file: the ssh command, with the user's ~/.ssh/config (on a member,
    # the cluster role's SSH trust).
    targets = _inventory.member_targets(["node1", "10.0.0.2"], keyfile="/root/.ssh/id_ed25519")
    assert [(t.uri, t.node) for t in targets] == [
        ("qemu+ssh://root@node1/system?no_tty=1&keyfile=/root/.ssh/id_ed25519", "node1"),
        ("lxc+ssh://root@node1/system?no_tty=1&keyfile=/root/.ssh/id_ed25519", "node1"),
        ("qemu+ssh://root@10.0.0.2/system?no_tty=1&keyfile=/root/.ssh/id_ed25519", "10.0.0.2"),
        ("lxc+ssh://root@10.0.0.2/system?no_tty=1&keyfile=/root/.ssh/id_ed25519", "10.0.0.2"),
    ]
    assert [t.uri for t in _inventory.member_targets(["n1"], types=["vm"], user="admin")] == [
        "qemu+ssh://admin@n1/system?no_tty=1"]
    # A port stays a port; an IPv6 address is bracketed.
    assert [t.uri for t in _inventory.member_targets(["n1:2222", "fd00::1"], types=["vm"])] == [
        "qemu+ssh://root@n1:2222/system?no_tty=1", "qemu+ssh://root@[fd00::1]/system?no_tty=1"]


def test_member_uris_with_known_hosts_use_libssh():
    # The ssh command ignores a known_hosts parameter; libssh checks the host key against it.
    targets = _inventory.member_targets([("node1", "10.0.0.1"), ("node6", "fd00::6")], types=["vm", "container"],
                                        keyfile="/root/.ssh/id_ed25519", known_hosts="/etc/debvirt/known hosts")
    query = "known_hosts=/etc/debvirt/known%20hosts&known_hosts_verify=normal&sshauth=privkey&keyfile=/root/.ssh/id_ed25519"
    assert [(t.uri, t.node) for t in targets] == [
        ("qemu+libssh://root@10.0.0.1/system?" + query, "node1"),
        ("lxc+libssh://root@10.0.0.1/system?" + query, "node1"),
        ("qemu+libssh://root@[fd00::6]/system?" + query, "node6"),
        ("lxc+libssh://root@[fd00::6]/system?" + query, "node6"),
    ]
    # Without a key file, the agent's keys; never a password prompt.
    assert [t.uri for t in _inventory.member_targets(["n1"], types=["vm"], known_hosts="/kh")] == [
        "qemu+libssh://root@n1/system?known_hosts=/kh&known_hosts_verify=normal&sshauth=agent,privkey"]


COROSYNC = """totem {
    version: 2
    cluster_name: lab
}
nodelist {
    node {
        name: node1
        nodeid: 1
        ring0_addr: 10.0.0.1
        ring1_addr: 10.1.0.1
    }
    node {
        name: node2
        nodeid: 2
        ring0_addr: 10.0.0.2
    }
}
"""


def test_nodelist_members():
    assert _inventory.nodelist_members(COROSYNC) == [("node1", "10.0.0.1"), ("node2", "10.0.0.2")]
    with pytest.raises(_inventory.ConfError, match="no nodelist"):
        _inventory.nodelist_members("totem {\n    version: 2\n}\n")


def test_ssh_argv():
    assert _inventory.ssh_argv("node1", "cat /f", keyfile="/k", known_hosts="/kh", timeout=5) == [
        "ssh", "-o", "BatchMode=yes", "-o", "ConnectTimeout=5", "-i", "/k", "-o", "IdentitiesOnly=yes",
        "-o", "UserKnownHostsFile=/kh", "-o", "StrictHostKeyChecking=yes", "-l", "root", "--", "node1", "cat /f"]
    assert _inventory.ssh_argv("node1", "true", user=None) == [
        "ssh", "-o", "BatchMode=yes", "-o", "ConnectTimeout=30", "--", "node1", "true"]


@pytest.fixture
def fake_read(monkeypatch):
    """The (uri, node) pairs the plugin would read; nothing is connected to."""
    read = []

    def fake(targets, timeout, agent=False):
        read.extend((t.uri, t.node) for t in targets)
        return [], []
    monkeypatch.setattr(guests, "read_targets", fake)
    return read


@pytest.fixture
def fake_ssh(monkeypatch):
    """fake_ssh.calls: the ssh command lines run; fake_ssh.answer: (rc, stdout, stderr)."""
    class Ssh:
        calls = []
        answer = (0, COROSYNC, "")

        def run(self, argv, **kwargs):
            self.calls.append(argv)
            rc, out, err = self.answer
            return guests.subprocess.CompletedProcess(argv, rc, out, err)
    ssh = Ssh()
    ssh.calls = []
    monkeypatch.setattr(guests.subprocess, "run", ssh.run)
    return ssh


def test_nodelist_of_this_host(inventory, fake_read, monkeypatch, tmp_path, warnings):
    conf = tmp_path / "corosync.conf"
    conf.write_text(COROSYNC)
    monkeypatch.setattr(guests, "COROSYNC_CONF", str(conf))
    inventory({"nodelist": "localhost", "types": ["vm"], "members": ["10.0.0.2"]})
    # Reached at their first ring address, reported under their names; the member that is
    # also named is read once, under the name given.
    assert fake_read == [("qemu+ssh://root@10.0.0.2/system?no_tty=1", "10.0.0.2"),
                         ("qemu+ssh://root@10.0.0.1/system?no_tty=1", "node1")]
    assert warnings == []


def test_nodelist_of_a_member_over_ssh(inventory, fake_read, fake_ssh, warnings):
    inventory({"nodelist": "seed", "types": ["vm"], "ssh_keyfile": "/k", "ssh_known_hosts": "/kh", "timeout": 9})
    assert fake_ssh.calls == [_inventory.ssh_argv("seed", "cat /etc/corosync/corosync.conf", keyfile="/k",
                                                  known_hosts="/kh", timeout=9)]
    query = "known_hosts=/kh&known_hosts_verify=normal&sshauth=privkey&keyfile=/k"
    assert fake_read == [("qemu+libssh://root@10.0.0.1/system?" + query, "node1"),
                         ("qemu+libssh://root@10.0.0.2/system?" + query, "node2")]


def test_nodelist_is_not_read_from_a_warm_cache(inventory, fake_read, fake_ssh, tmp_path, warnings):
    config = {"nodelist": "seed", "types": ["vm"], "cache": True, "cache_plugin": "jsonfile",
              "cache_connection": str(tmp_path / "cache")}
    inventory(config)
    inventory(config)
    assert len(fake_ssh.calls) == 1
    assert len(fake_read) == 2
    assert guests.display.verbose[-1] == "debvirt.cluster.guests: 0 guests from the cache, no member read"
    # Another seed is another listing.
    inventory(dict(config, nodelist="seed2"))
    assert len(fake_ssh.calls) == 2


def test_unreadable_nodelist_is_a_warning_and_not_cached(inventory, fake_read, fake_ssh, tmp_path, warnings):
    fake_ssh.answer = (255, "", "ssh: connect to host seed port 22: Connection refused")
    config = {"nodelist": "seed", "uris": [NODE_A], "cache": True, "cache_plugin": "jsonfile",
              "cache_connection": str(tmp_path / "cache")}
    inventory(config)
    assert warnings == ["debvirt.cluster.guests: cannot read the corosync nodelist of seed: ssh exited with 255: "
                        "ssh: connect to host seed port 22: Connection refused; only the other members and "
                        "URIs are read"]
    assert fake_read == [(NODE_A, None)]
    inventory(config)
    assert len(fake_ssh.calls) == 2


def test_unreadable_nodelist_is_fatal_when_strict(inventory, fake_read, fake_ssh, warnings):
    fake_ssh.answer = (0, "nodelist {\n", "")
    with pytest.raises(AnsibleError, match="cannot read the corosync nodelist of seed: corosync.conf: section "
                                           "'nodelist' is not closed"):
        inventory({"nodelist": "seed", "strict": True})
    assert fake_read == []


def test_members_option_makes_ssh_uris(inventory, fake_read, warnings):
    inventory({"members": ["node1"], "types": ["vm"], "ssh_keyfile": "/k", "uris": ["qemu:///system"],
               "timeout": 7})
    assert fake_read == [("qemu+ssh://root@node1/system?no_tty=1&keyfile=/k", "node1"), ("qemu:///system", None)]


def test_node_of_a_uri_without_one():
    assert _inventory.uri_host("qemu+ssh://root@node7:2222/system") == "node7"
    assert _inventory.uri_host("qemu:///system") is None
    # A local URI's node is the host name libvirt reports.
    records = _inventory.read_target(_inventory.Target(NODE_B))
    assert {r["node"] for r in records} == {_client.LibvirtClient(NODE_B).hostname()}


def test_default_driver(inventory, warnings):
    """test:///default, with guests defined the way the guest module writes tags."""
    held = libvirt.open("test:///default")  # keeps the driver's state alive across connections
    try:
        for name, tags in (("dv-inv-a", ["blue"]), ("dv-inv-b", ["blue", "green"])):
            meta = "".join("<dv:tag>%s</dv:tag>" % t for t in tags)
            held.defineXML("<domain type='test'><name>%s</name><memory>65536</memory><os><type>hvm</type></os>"
                           "<metadata><dv:guest xmlns:dv='urn:debvirt:cluster:1'>%s</dv:guest></metadata>"
                           "</domain>" % (name, meta))
        held.lookupByName("dv-inv-b").create()
        data = inventory({"uris": ["test:///default"]})
        assert sorted(data.hosts) == ["dv-inv-a", "dv-inv-b", "test"]
        assert members_of(data, "tag_blue") == ["dv-inv-a", "dv-inv-b"]
        assert members_of(data, "tag_green") == ["dv-inv-b"]
        assert members_of(data, "state_stopped") == ["dv-inv-a"]
        assert members_of(data, "state_running") == ["dv-inv-b", "test"]
        assert hostvars(data, "dv-inv-b")["debvirt_uri"] == "test:///default"
    finally:
        for name in ("dv-inv-a", "dv-inv-b"):
            dom = held.lookupByName(name)
            if dom.isActive():
                dom.destroy()
            dom.undefine()
        held.close()


def test_missing_libvirt_is_a_clear_error(inventory, monkeypatch, warnings):
    monkeypatch.setattr(guests, "LIBVIRT_IMPORT_ERROR",
                        "Traceback (most recent call last):\nModuleNotFoundError: No module named 'libvirt'\n")
    with pytest.raises(AnsibleError, match="needs libvirt-python on the controller.*No module named 'libvirt'"):
        inventory(TWO_NODES)


def test_missing_jmespath_is_a_clear_error(inventory, monkeypatch, warnings):
    monkeypatch.setattr(guests, "jmespath", None)
    assert sorted(inventory(TWO_NODES).hosts) == ["app01", "ct01", "db01", "web01"]  # not needed without filters
    with pytest.raises(AnsibleError, match="need the Python library jmespath"):
        inventory(dict(TWO_NODES, filters=["debvirt_tags"]))


@pytest.mark.parametrize("config, message", [
    ({}, "Nothing to read: give members, uris, nodelist"),
    ({"uris": [{"node": "n1"}]}, r"uris\[0\] must be a URI or a mapping"),
    ({"uris": [{"uri": NODE_A, "nodes": "n1"}]}, r"uris\[0\] must be a URI or a mapping"),
])
def test_bad_configuration(inventory, opens, config, message):
    with pytest.raises(AnsibleParserError, match=message):
        inventory(config)
    assert opens == []


def test_configuration_file_name(tmp_path):
    plugin = guests.InventoryModule()
    for name, ok in (("cluster.guests.yml", True), ("guests.yaml", True), ("hosts.yml", False),
                     ("guests.json", False)):
        path = tmp_path / name
        path.write_text("plugin: debvirt.cluster.guests\n")
        assert plugin.verify_file(str(path)) is ok, name
