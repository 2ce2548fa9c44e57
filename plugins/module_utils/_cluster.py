# -*- coding: utf-8 -*-
# Copyright: debvirt.cluster developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A corosync cluster seen from one of its members.

The member a module runs on reaches the others over SSH, with the root key and pinned host
keys that role cluster manages (the same trust libvirt's qemu+ssh:// uses). That keeps one
rule true without a shared file system: every change to the nodelist is planned once, from
one reading of every member, and written to every member in the same task.

read_cluster() only reads (corosync's runtime view is _quorum's); plan_member() is pure;
apply_member() is the only writer.
"""

from __future__ import annotations

import ipaddress
import re
import shlex
import socket
from urllib.parse import quote, urlparse, urlunparse

from ansible_collections.debvirt.cluster.plugins.module_utils._corosync import (
    CONF,
    CorosyncConf,
    assign_nodeids,
    check_nodes,
    new_conf,
    validate_cluster_name,
    validate_name,
)
from ansible_collections.debvirt.cluster.plugins.module_utils._errors import DebvirtError, InvalidSpec
from ansible_collections.debvirt.cluster.plugins.module_utils._names import check_address
from ansible_collections.debvirt.cluster.plugins.module_utils._plan import Plan, diff, execute
from ansible_collections.debvirt.cluster.plugins.module_utils._quorum import find_self, quorum_status, wait_for

AUTHKEY = "/etc/corosync/authkey"
CIB_DIR = "/var/lib/pacemaker/cib"
# A removed node's config is kept here, not deleted: it says which cluster the node was in.
REMOVED_SUFFIX = ".debvirt-removed"
_NODEID = re.compile(r"[1-9][0-9]{0,9}")
# What a plan's steps on a member act on; the member is the step's key.
COROSYNC_ON = "corosync on"
CONF_ON = "corosync.conf on"
# ServerAlive: a member that dies in the middle of a command ends it within some 15 s; without it
# the session waited for TCP to give up, about two minutes (a node killed during a join).
SSH_OPTIONS = ["-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=yes", "-o", "ConnectTimeout=5",
               "-o", "ServerAliveInterval=5", "-o", "ServerAliveCountMax=3"]


class ClusterError(DebvirtError):
    """A cluster command failed, or the cluster is not in a state the request can work with."""


# --- running commands here and on the other members -------------------------------------
def install_script(fill, mode):
    """sh -c text that writes stdin through the command fill to the file "$1".

    It is written beside the target under a name of this run's own (mktemp, born 0600, so an
    authkey is never readable by others), given its mode and renamed: a reader never sees half a
    file, and two runs never write into one temporary file.
    """
    return ('t=$(mktemp "$1.debvirt-XXXXXXXX") || exit 1; '
            'if %s > "$t" && chmod %04o "$t" && mv -f "$t" "$1"; then exit 0; fi; rm -f "$t"; exit 1'
            % (fill, mode))


class Shell:
    """Commands on this host (host None) or on another member over SSH."""

    def __init__(self, run_command, user="root"):
        self._run = run_command
        self.user = user

    def argv(self, host, argv):
        """What runs argv on host: argv itself here, ssh with the cluster's options elsewhere."""
        if host is None:
            return argv
        return ["ssh"] + SSH_OPTIONS + ["%s@%s" % (self.user, host), shlex.join(argv)]

    def run(self, host, argv, data=None):
        argv = self.argv(host, argv)
        kwargs = {"binary_data": True, "data": data} if data is not None else {}
        return self._run(argv, **kwargs)

    def check(self, host, argv, what, data=None):
        rc, out, err = self.run(host, argv, data)
        if rc != 0:
            reason = (err or out).strip() or "exit %d" % rc
            raise ClusterError("Failed to %s on %s: %s" % (what, host or "this host", reason))
        return out

    def reachable(self, host):
        return self.run(host, ["true"])[0] == 0

    def read_file(self, host, path):
        """The file's text, or None when it does not exist."""
        rc, out, err = self.run(host, ["sh", "-c", 'test -e "$1" || exit 3; cat "$1"', "sh", path])
        if rc == 3:
            return None
        if rc != 0:
            raise ClusterError("Failed to read %s on %s: %s" % (path, host or "this host", err.strip()))
        return out

    def write_file(self, host, path, data, mode):
        if isinstance(data, str):
            data = data.encode("utf-8")
        self.check(host, ["sh", "-c", install_script("cat", mode), "sh", path], "write %s" % path, data=data)

    def probe(self, host):
        """(reachable, corosync.conf text or None, corosync running) in one round trip."""
        script = ('systemctl is-active --quiet corosync && echo running || echo stopped; '
                  'if test -e "$1"; then echo present; cat "$1"; else echo absent; fi')
        rc, out, err = self.run(host, ["sh", "-c", script, "sh", CONF])
        if rc != 0:
            # 255 is ssh's own failure; anything else is a host that answered strangely.
            if host is not None and rc == 255:
                return False, None, False
            raise ClusterError("Failed to read %s on %s: %s" % (CONF, host or "this host", err.strip()))
        state, _nl, rest = out.partition("\n")
        presence, _nl, text = rest.partition("\n")
        return True, (text if presence == "present" else None), state == "running"

    def unit_active(self, host, unit):
        return self.run(host, ["systemctl", "is-active", "--quiet", unit])[0] == 0


def _in_uri(host):
    """A host as a URI's authority takes it: an IPv6 address in brackets (a name or an IPv4
    address with a port keeps its colon)."""
    try:
        bracket = ipaddress.ip_address(host).version == 6
    except ValueError:
        bracket = False
    return "[%s]" % host if bracket else host


def member_uri(uri, host, transport="ssh", user="root", query=()):
    """The libvirt URI of another member: the same driver and path, over SSH (as user, without a
    terminal), libssh or TLS (the cluster CA's trust). query: more "key=value" parameters, as
    the URI writes them."""
    parsed = urlparse(uri)
    scheme = parsed.scheme.split("+")[0] + "+" + transport
    path = parsed.path or "/system"
    if transport == "tls":
        return urlunparse((scheme, _in_uri(host), path, "", "", ""))
    params = [parsed.query] if parsed.query else []
    # ssh must fail rather than wait at a password prompt nobody sees; libssh never prompts.
    params += (["no_tty=1"] if transport == "ssh" else []) + list(query)
    login = "%s@" % quote(user, safe="") if user else ""
    return urlunparse((scheme, login + _in_uri(host), path, "", "&".join(params), ""))


# --- the request ----------------------------------------------------------------------------
class MemberRequest:
    def __init__(self, name, addresses=None, nodeid=None, state="present", cluster_name=None,
                 force=False, timeout=60, settings=None):
        self.name = name
        self.addresses = addresses or []
        self.nodeid = nodeid
        self.state = state
        self.cluster_name = cluster_name
        self.force = force
        self.timeout = timeout
        self.settings = settings or {}


def request_from_params(p):
    validate_name("node name", p["name"], "name")
    if p.get("cluster_name") is not None:
        validate_cluster_name(p["cluster_name"])
    addresses = list(p.get("addresses") or [])
    if len(addresses) > 8:
        raise InvalidSpec("knet has at most 8 links, got %d addresses" % len(addresses))
    for index, addr in enumerate(addresses):
        check_address(addr, "addresses[%d]" % index)
    if p.get("nodeid") is not None and p["nodeid"] < 1:
        raise InvalidSpec("nodeid must be at least 1, got %s" % p["nodeid"])
    if p.get("timeout", 60) < 1:
        raise InvalidSpec("timeout must be at least 1 second")
    settings = {k: p.get(k) for k in ("token", "token_coefficient", "two_node", "wait_for_all", "qdevice")}
    if settings.get("qdevice") and not settings["qdevice"].get("host"):
        raise InvalidSpec("qdevice needs a host")
    if settings.get("qdevice"):
        check_address(settings["qdevice"]["host"], "qdevice.host")
        breaker = settings["qdevice"].get("tie_breaker")
        if breaker is not None and breaker not in ("lowest", "highest") and not _NODEID.fullmatch(breaker):
            raise InvalidSpec("qdevice.tie_breaker: %r is not lowest, highest or a node id" % (breaker,))
    if settings.get("two_node") and settings.get("qdevice"):
        raise InvalidSpec("two_node and qdevice exclude each other: the QDevice breaks the tie")
    return MemberRequest(p["name"], addresses, p.get("nodeid"), p.get("state", "present"),
                         p.get("cluster_name"), p.get("force", False), p.get("timeout", 60), settings)


# --- reading the cluster ----------------------------------------------------------------------
class Member:
    """One member as read: its address, its conf (None when unreachable), corosync running."""

    def __init__(self, node, host, conf=None, reachable=True, running=False):
        self.node = node
        self.host = host
        self.conf = conf
        self.reachable = reachable
        self.running = running


class Actual:
    def __init__(self, conf, text, me, members, target, quorum):
        self.conf = conf            # this host's corosync.conf
        self.text = text
        self.me = me                # this host's node, None when not in a cluster
        self.members = members      # name -> Member, this host included
        self.target = target        # the node named in the request, as a Member (or None)
        self.quorum = quorum        # runtime quorum as this host sees it


def read_cluster(shell, req):
    text = shell.read_file(None, CONF)
    if text is None:
        raise ClusterError("%s does not exist on this host: is corosync installed? (role "
                           "debvirt.cluster.cluster installs it)" % CONF)
    conf = CorosyncConf.parse(text)
    me = None if conf.is_default() else find_self(conf, shell)
    members = {}
    if me is not None:
        for node in conf.nodes():
            host = None if node["name"] == me["name"] else node["addresses"][0]
            member = Member(node, host)
            if host is None:
                member.conf = conf
                member.running = shell.unit_active(None, "corosync")
            else:
                member.reachable, member_text, member.running = shell.probe(host)
                member.conf = CorosyncConf.parse(member_text) if member_text is not None else None
            members[node["name"]] = member
    target = members.get(req.name)
    if target is None and req.state == "present" and me is not None and req.addresses:
        host = req.addresses[0]
        target = Member({"name": req.name, "nodeid": req.nodeid, "addresses": req.addresses}, host)
        target.reachable, target_text, target.running = shell.probe(host)
        target.conf = CorosyncConf.parse(target_text) if target_text is not None else None
    quorum = quorum_status(shell) if me is not None else None
    return Actual(conf, text, me, members, target, quorum)


def running_guests(libvirt_client_for, host):
    """Names of the guests running on host (None: this host)."""
    client = libvirt_client_for(host)
    try:
        return sorted(dom.name() for dom in client.domains() if client.domain_state(dom) in ("running", "paused"))
    finally:
        client.close()


# --- planning ------------------------------------------------------------------------------------
def nodelist_view(conf):
    if conf is None or conf.is_default():
        return {}
    return {"cluster_name": conf.cluster_name, "config_version": conf.config_version,
            "nodelist": conf.nodes()}


def _synced(member, conf):
    return (member.conf is not None and member.conf.config_version == conf.config_version
            and member.conf.nodes() == conf.nodes() and member.conf.cluster_name == conf.cluster_name)


def plan_member(req, actual, guests=None, hostname=None):
    """(Plan, new conf or None). guests: the target's running guests (for absent), None if unknown."""
    plan = Plan()
    if actual.me is None:
        return _plan_create(plan, req, actual, hostname)
    conf = actual.conf
    if req.cluster_name is not None and req.cluster_name != conf.cluster_name:
        raise ClusterError("Cluster name mismatch: this host is a member of cluster %r, not %r; nothing "
                           "was changed" % (conf.cluster_name, req.cluster_name))
    unreachable = sorted(n for n, m in actual.members.items() if not m.reachable and n != req.name)
    if req.state == "present":
        return _plan_present(plan, req, actual, unreachable)
    return _plan_absent(plan, req, actual, unreachable, guests)


def _plan_create(plan, req, actual, hostname):
    hostname = hostname or socket.gethostname()
    if req.state == "absent":
        # Nothing is a member of a cluster here, so nothing is to be removed.
        return plan, None
    if req.name not in (hostname, hostname.split(".")[0]):
        raise ClusterError("This host (%s) is not a member of a cluster. Run cluster_member through a "
                           "current member to add %s, or on %s itself to create a cluster"
                           % (hostname, req.name, req.name))
    if not req.cluster_name:
        raise InvalidSpec("Creating a cluster on %s needs cluster_name" % req.name)
    if not req.addresses:
        raise InvalidSpec("Creating a cluster on %s needs addresses" % req.name)
    node = {"name": req.name, "nodeid": req.nodeid or 1, "addresses": req.addresses}
    check_nodes([node])
    s = req.settings
    conf = new_conf(req.cluster_name, [node], token=s.get("token"), token_coefficient=s.get("token_coefficient"),
                    two_node=bool(s.get("two_node")), wait_for_all=s.get("wait_for_all"),
                    qdevice=s.get("qdevice"))
    plan.add("create", "cluster", after=req.name, key=req.cluster_name)
    plan.add("add", "node", after=node, key=req.name)
    plan.add("start", COROSYNC_ON, key=req.name)
    return plan, conf


def _plan_present(plan, req, actual, unreachable):
    conf = actual.conf
    current = conf.node(req.name)
    if current is not None:
        if req.addresses and req.addresses != current["addresses"]:
            raise ClusterError("Node %s is a member with addresses %s, not %s: changing a member's "
                               "addresses is not supported; remove it and add it again"
                               % (req.name, ", ".join(current["addresses"]), ", ".join(req.addresses)))
        if req.nodeid is not None and req.nodeid != current["nodeid"]:
            raise ClusterError("Node %s is a member with nodeid %s, not %s" % (req.name, current["nodeid"], req.nodeid))
        target = actual.members[req.name]
        if not target.reachable:
            raise ClusterError("Node %s is a member but unreachable over SSH from this host: cannot check "
                               "that corosync runs there" % req.name)
        # A join that stopped after the members took the node in (the node died, say) left it
        # without the cluster's config, and perhaps without its key: it gets what a join gives it.
        joined = target.conf is not None and not target.conf.is_default()
        _catch_up(plan, actual, conf, skip=() if joined else (req.name,))
        if not joined:
            _hand_over(plan, req.name, target.host)
        elif not target.running:
            plan.add("start", COROSYNC_ON, key=req.name, host=target.host)
        return plan, (conf if plan.on(CONF_ON, "write") else None)

    if not req.addresses:
        raise InvalidSpec("Adding %s to cluster %s needs addresses" % (req.name, conf.cluster_name))
    if unreachable:
        raise ClusterError("Cannot add %s: member(s) %s unreachable over SSH from this host, and every "
                           "member must get the new nodelist; nothing was changed"
                           % (req.name, ", ".join(unreachable)))
    target = actual.target
    if not target.reachable:
        raise ClusterError("Cannot add %s: %s is unreachable over SSH from this host (role cluster sets up "
                           "the trust); nothing was changed" % (req.name, target.host))
    if target.conf is not None and not target.conf.is_default():
        raise ClusterError("%s already belongs to cluster %r (members: %s); remove it from there first. "
                           "Nothing was changed" % (req.name, target.conf.cluster_name,
                                                    ", ".join(n["name"] for n in target.conf.nodes())))
    new_node = {"name": req.name, "nodeid": req.nodeid, "addresses": req.addresses}
    nodes = assign_nodeids(conf.nodes() + [new_node])
    check_nodes(nodes)
    links = len(conf.nodes()[0]["addresses"]) if conf.nodes() else len(req.addresses)
    if len(req.addresses) != links:
        raise InvalidSpec("Cluster %s uses %d link(s): %s needs %d address(es), got %d"
                          % (conf.cluster_name, links, req.name, links, len(req.addresses)))
    new = CorosyncConf.parse(actual.text)
    new.set_nodes(nodes)
    version = max([conf.config_version] + [m.conf.config_version for m in actual.members.values() if m.conf]) + 1
    new.set_config_version(version)
    plan.add("add", "node", after=nodes[-1], key=req.name)
    plan.add("update", "config_version", before=conf.config_version, after=version)
    for name, member in sorted(actual.members.items()):
        plan.add("write", CONF_ON, key=name, host=member.host)
    plan.add("reload", "corosync")
    _hand_over(plan, req.name, target.host)
    return plan, new


def _hand_over(plan, name, host):
    """The end of a join: the new node gets the key and the config, and starts corosync."""
    plan.add("copy", "authkey to", key=name, host=host)
    plan.add("write", CONF_ON, key=name, host=host)
    plan.add("start", COROSYNC_ON, key=name, host=host)


def _catch_up(plan, actual, conf, skip=()):
    """Members whose copy fell behind get the current one, and the running cluster reloads it: an
    earlier run stopped half way (a member died before it got the new nodelist)."""
    for name, member in sorted(actual.members.items()):
        if name not in skip and member.reachable and not _synced(member, conf):
            plan.add("write", CONF_ON, before=member.conf.config_version if member.conf else None,
                     after=conf.config_version, key=name, host=member.host)
    if plan.on(CONF_ON, "write") and actual.members[actual.me["name"]].running:
        plan.add("reload", "corosync")


def _plan_absent(plan, req, actual, unreachable, guests):
    conf = actual.conf
    if conf.node(req.name) is None:
        _catch_up(plan, actual, conf)
        return plan, (conf if plan.on(CONF_ON, "write") else None)
    if req.name == actual.me["name"]:
        raise ClusterError("Cannot remove %s through itself: run cluster_member on another member" % req.name)
    if unreachable:
        raise ClusterError("Cannot remove %s: member(s) %s unreachable over SSH from this host, and every "
                           "member must get the new nodelist; nothing was changed"
                           % (req.name, ", ".join(unreachable)))
    target = actual.members[req.name]
    if guests is None and not req.force:
        raise ClusterError("Cannot check the guests of %s (unreachable); force=true removes it anyway. "
                           "Nothing was changed" % req.name)
    if guests and not req.force:
        raise ClusterError("%s still runs guest(s) %s: migrate or stop them first, or force=true. Nothing "
                           "was changed" % (req.name, ", ".join(guests)))
    remaining = [n for n in conf.nodes() if n["name"] != req.name]
    online = {m["nodeid"] for m in (actual.quorum or {}).get("members", [])}
    remaining_online = [n for n in remaining if n["nodeid"] in online]
    needed = len(remaining) // 2 + 1
    if len(remaining) == 2 and str(conf.quorum().get("two_node", "0")) == "1":
        needed = 1
    if len(remaining_online) < needed:
        raise ClusterError("Removing %s would leave cluster %s without quorum: %d of the %d remaining members "
                           "are online, %d needed. Nothing was changed"
                           % (req.name, conf.cluster_name, len(remaining_online), len(remaining), needed))
    new = CorosyncConf.parse(actual.text)
    new.set_nodes(remaining)
    version = max([conf.config_version] + [m.conf.config_version for m in actual.members.values() if m.conf]) + 1
    new.set_config_version(version)
    if target.reachable:
        plan.add("stop", "pacemaker and corosync on", key=req.name, host=target.host)
        # A removal that stopped half way (a member died before it got the nodelist) may have
        # moved it aside already.
        if target.conf is not None:
            plan.add("move", CONF_ON, key=req.name, field="aside", host=target.host, after=CONF + REMOVED_SUFFIX)
    plan.add("remove", "node", before=conf.node(req.name), key=req.name)
    plan.add("update", "config_version", before=conf.config_version, after=version)
    for name, member in sorted(actual.members.items()):
        if name != req.name:
            plan.add("write", CONF_ON, key=name, host=member.host)
    plan.add("reload", "corosync")
    plan.add("forget", "node", key=req.name, field="in pacemaker")
    return plan, new


# --- applying --------------------------------------------------------------------------------------
def apply_member(shell, req, plan, actual, new):
    for change in plan.changes:
        host = change.extra.get("host")
        action = change.action
        if action == "create":
            _create(shell, new)
        elif action == "write":
            shell.write_file(host, CONF, new.write(), 0o644)
        elif action == "reload":
            shell.check(None, ["corosync-cfgtool", "-R"], "reload corosync.conf in the cluster")
        elif action == "copy":
            key = shell.check(None, ["base64", "-w0", AUTHKEY], "read the authkey")
            # The key travels as base64 on stdin: never on a command line, never in a result.
            shell.check(host, ["sh", "-c", install_script("base64 -d", 0o400), "sh", AUTHKEY],
                        "install the authkey", data=key.encode("ascii"))
            _reset_fresh_node(shell, host, actual.target)
        elif action == "start":
            shell.check(host, ["systemctl", "enable", "--now", "corosync"], "start corosync")
        elif action == "stop":
            shell.check(host, ["systemctl", "disable", "--now", "pacemaker", "corosync"],
                        "stop pacemaker and corosync")
        elif action == "move":
            shell.check(host, ["mv", "-f", CONF, CONF + REMOVED_SUFFIX], "move corosync.conf aside")
        elif action == "forget":
            # Pacemaker keeps a removed node in its CIB as offline; forgetting it is cosmetic,
            # so a failure (pacemaker not running here) is not one of the removal.
            shell.run(None, ["crm_node", "--force", "-R", req.name])
    if plan.on("cluster", "create"):
        wait_for(shell, "cluster %s to be quorate on %s" % (new.cluster_name, req.name),
                 lambda s: s["quorate"], req.timeout)
    elif plan.on(COROSYNC_ON, "start") and actual.me is not None:
        nodeid = (new or actual.conf).node(req.name)["nodeid"]
        wait_for(shell, "%s to join the cluster with quorum" % req.name,
                 lambda s: s["quorate"] and nodeid in {m["nodeid"] for m in s["members"]}, req.timeout)
    elif plan.on("node", "remove"):
        nodeid = actual.conf.node(req.name)["nodeid"]
        wait_for(shell, "%s to leave with the rest quorate" % req.name,
                 lambda s: s["quorate"] and nodeid not in {m["nodeid"] for m in s["members"]}, req.timeout)


def _reset_fresh_node(shell, host, target):
    """A node that ran the package's loopback-only cluster has a pacemaker CIB of that cluster
    (node "node1", cluster-name "debian"); it is set aside, not deleted, before the node joins."""
    shell.run(host, ["systemctl", "stop", "pacemaker", "corosync"])
    shell.run(host, ["sh", "-c", 'd="$1"; ls "$d"/cib* >/dev/null 2>&1 || exit 0; '
                     'mkdir -p "$d.debvirt-before-join" && mv -f "$d"/cib* "$d.debvirt-before-join"/',
                     "sh", CIB_DIR])


def _create(shell, conf):
    if shell.read_file(None, AUTHKEY) is None:
        shell.check(None, ["corosync-keygen", "-k", AUTHKEY], "generate the corosync authkey")
    shell.check(None, ["chmod", "0400", AUTHKEY], "restrict the authkey")
    _reset_fresh_node(shell, None, None)
    shell.write_file(None, CONF, conf.write(), 0o644)
    shell.check(None, ["systemctl", "enable", "--now", "corosync"], "start corosync")


def converge_member(shell, req, check_mode, libvirt_client_for=None):
    actual = read_cluster(shell, req)
    guests = None
    if (req.state == "absent" and actual.me is not None and actual.conf.node(req.name) is not None
            and req.name != actual.me["name"]):
        target = actual.members[req.name]
        if target.reachable and libvirt_client_for is not None:
            try:
                guests = running_guests(libvirt_client_for, target.host)
            except DebvirtError:
                guests = None
    plan, new = plan_member(req, actual, guests)
    execute(plan, check_mode, lambda: apply_member(shell, req, plan, actual, new))
    before = nodelist_view(actual.conf)
    after = nodelist_view(new) if new is not None else before
    return {
        "changed": plan.changed,
        "changes": plan.as_list(),
        "cluster": after,
        "diff": diff(before, after),
    }
