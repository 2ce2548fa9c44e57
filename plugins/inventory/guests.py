# -*- coding: utf-8 -*-
# Copyright: debvirt.cluster developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
name: guests
short_description: The virtual machines and containers of a debvirt cluster as inventory hosts
version_added: 0.1.0
description:
  - Reads the libvirt of every cluster member and makes each guest (a QEMU/KVM virtual machine
    or an LXC container) an inventory host, named after the guest.
  - Members are read over the SSH trust that the P(debvirt.cluster.cluster#role) role sets up
    (O(members)), or through libvirt URIs given as they are (O(uris)). All members are read at
    the same time; the run takes as long as the slowest member, at most O(timeout).
  - A member that does not answer, or a O(nodelist) that cannot be read, is reported with a
    warning and skipped, unless O(strict) is set. A listing that lacks a member is not written
    to the cache.
  - "Each host gets these variables: C(debvirt_node) (the member it is defined on),
    C(debvirt_uri), C(debvirt_state) (V(running), V(stopped), V(paused), V(crashed), or
    V(frozen) for a container), C(debvirt_type) (V(vm) or V(container)), C(debvirt_tags),
    C(debvirt_description), C(debvirt_uuid), C(debvirt_addresses) (V(address/prefix) from
    the DHCP leases of libvirt networks, the QEMU guest agent's with O(use_agent_addresses),
    and a container's static address), C(debvirt_interfaces) (MAC, network or bridge,
    addresses), C(debvirt_autostart),
    C(debvirt_memory) (MiB) and C(debvirt_vcpus)."
  - C(ansible_host) is set to the first IPv4 address of the guest, or else its first global
    IPv6 address, when it has one. Those come from libvirt's DHCP leases (and a container's
    static address) unless O(use_agent_addresses) is set.
  - "Each host is put in these groups: C(node_<member>), C(state_<state>), C(type_vm) or
    C(type_container), and C(tag_<tag>) for each of its tags. Characters that are not valid in
    a group name (a dot in a member's name, say) become C(_)."
  - O(compose), O(groups) and O(keyed_groups) are Ansible's standard constructed options and take
    Jinja2 expressions, as in every other inventory plugin, or JMESPath expressions with
    O(expressions=jmespath). O(filters) is this plugin's own and always takes JMESPath.
  - A guest defined on two members (the source of a migration that kept its definition) is
    listed once, from the member where it runs, with a warning.
  - The configuration file's name must end in C(guests.yml) or C(guests.yaml).
author:
  - debvirt.cluster developers (@debvirt)
requirements:
  - libvirt-python on the controller (PyPI C(libvirt-python), which builds against Debian's
    C(libvirt-dev); or Debian's C(python3-libvirt) for C(/usr/bin/python3))
  - lxml on the controller
  - jmespath on the controller, for O(filters)
extends_documentation_fragment:
  - constructed
  - inventory_cache
options:
  plugin:
    description: The name of this plugin; it marks the file as its configuration.
    required: true
    type: str
    choices: [debvirt.cluster.guests]
  members:
    description:
      - Cluster members to read, by the name or address that SSH reaches them at.
      - Each member is read through C(qemu+ssh://<ssh_user>@<member>/system) for virtual machines
        and C(lxc+ssh://<ssh_user>@<member>/system) for containers (see O(types)), which run the
        C(ssh) command with the controller user's C(~/.ssh/config); on a cluster member that is
        the SSH trust of the P(debvirt.cluster.cluster#role) role. The URIs ask SSH never to
        prompt (C(no_tty=1)), so a member without key-based access fails at once.
      - With O(ssh_known_hosts), the URIs use libvirt's C(libssh) transport instead
        (C(qemu+libssh://), C(lxc+libssh://)), since the C(ssh) command cannot be given another
        known_hosts file through a URI.
      - C(debvirt_node) of its guests is the member as written here.
    type: list
    elements: str
    default: []
  nodelist:
    description:
      - Read the members from a cluster's corosync nodelist, in addition to O(members).
      - V(localhost) reads C(/etc/corosync/corosync.conf) of the host the inventory runs on, a
        cluster member. Any other value is a member reached over SSH (as O(ssh_user), with
        O(ssh_keyfile) and O(ssh_known_hosts)), whose C(/etc/corosync/corosync.conf) is read.
      - Each node of the nodelist is read at its first ring address, as O(members) are, and its
        guests get the node's name in the nodelist as C(debvirt_node).
      - The nodelist is read only when the listing is read; a cached listing needs neither.
    type: str
  uris:
    description:
      - libvirt URIs to read as they are, in addition to O(members).
      - An entry is either a URI or a mapping with C(uri) and C(node), the name to report as the
        guests' C(debvirt_node).
      - Without C(node), the node is the URI's host, or for a local URI the host name that
        libvirt reports.
      - On any URI, a domain of type C(lxc) is a container and every other domain a virtual
        machine.
    type: list
    elements: raw
    default: []
  types:
    description:
      - Which drivers to read on each of O(members). Leave out V(container) for members that
        have no LXC driver, or each run warns that it cannot connect to it.
    type: list
    elements: str
    choices: [vm, container]
    default: [vm, container]
  ssh_user:
    description: The user that O(members) are reached as.
    type: str
    default: root
  ssh_keyfile:
    description:
      - The private key for O(members), passed to libvirt as the C(keyfile) parameter of the URI.
      - Without it, SSH uses the controller user's keys and C(~/.ssh/config).
    type: path
  ssh_known_hosts:
    description:
      - A known_hosts file for O(members), passed to libvirt as the C(known_hosts) parameter of
        the URI, with the C(libssh) transport (see O(members)). A member whose host key is not
        in it, or differs, does not answer.
    type: path
  use_agent_addresses:
    description:
      - Also take each running guest's addresses from the QEMU guest agent, after its DHCP
        leases; a guest on a bridge, which has no lease in libvirt, then gets C(ansible_host)
        too.
      - The agent runs inside the guest and reports whatever the guest tells it. A compromised
        guest can name another host's address, and the playbooks that run against the guest
        then connect there, with their credentials. Set this only for guests you trust as much
        as the hosts in the inventory.
      - Off, the agent is not asked at all; C(debvirt_addresses) and C(debvirt_interfaces) hold
        the leases and static addresses only.
    type: bool
    default: false
  timeout:
    description:
      - Seconds to wait for all members. A member that has not answered by then is skipped
        (reported, or fatal with O(strict)).
      - Reading O(nodelist) over SSH, which comes first, has a timeout of its own of the same
        length.
    type: int
    default: 30
  filters:
    description:
      - JMESPath expressions evaluated against each host's C(debvirt_*) variables and
        C(ansible_host), before O(compose) runs. A guest becomes a host only when every
        expression is true in JMESPath's sense (not null, false, an empty string, list or
        object).
      - "Examples: V(debvirt_state == 'running'), V(contains(debvirt_tags, 'web')),
        V(debvirt_type == 'vm' && debvirt_memory >= `2048`)."
      - These are JMESPath, as in the C(community.general.json_query) filter, whatever
        O(expressions) says.
    type: list
    elements: str
    default: []
  expressions:
    description:
      - The language of O(compose), O(groups) and of the C(key) of each O(keyed_groups) entry.
      - V(jinja2) is Ansible's usual one, with all of Ansible's filters and tests.
      - V(jmespath) evaluates them as O(filters) are, against each host's C(debvirt_*) variables
        and C(ansible_host) only. A O(groups) entry holds when its expression is true in
        JMESPath's sense; a O(compose) entry that is null sets nothing. O(keyed_groups) keeps its
        other keys (C(prefix), C(separator), C(default_value), ...) as they are.
    type: str
    choices: [jinja2, jmespath]
    default: jinja2
  strict:
    description:
      - Makes a member that does not answer fatal, instead of a warning.
      - Also makes errors in O(compose), O(groups) and O(keyed_groups) fatal instead of skipping
        the entry.
"""

EXAMPLES = r"""
# cluster.guests.yml: every guest of three members, over the SSH trust
plugin: debvirt.cluster.guests
members: [node1, node2, node3]

# Run on a cluster member: the members are those of its corosync nodelist, reached over the
# SSH trust that role debvirt.cluster.cluster set up
plugin: debvirt.cluster.guests
nodelist: localhost

# From a controller: the nodelist of node1, every member reached with this key and these
# pinned host keys
plugin: debvirt.cluster.guests
nodelist: node1.example.com
ssh_keyfile: ~/.ssh/id_ed25519_cluster
ssh_known_hosts: ~/.ssh/known_hosts_cluster

# Only running virtual machines tagged web, reached as the cluster role's key,
# with the results kept for ten minutes
plugin: debvirt.cluster.guests
members: [node1.example.com, node2.example.com]
types: [vm]
ssh_keyfile: /root/.ssh/id_ed25519
filters:
  - "debvirt_state == 'running'"
  - "contains(debvirt_tags, 'web')"
cache: true
cache_plugin: ansible.builtin.jsonfile
cache_connection: ~/.cache/debvirt-inventory
cache_timeout: 600

# Given URIs, with the standard constructed options (Jinja2)
plugin: debvirt.cluster.guests
uris:
  - qemu:///system
  - {uri: "qemu+ssh://root@10.0.0.12/system", node: node2}
compose:
  ansible_user: "'debian'"
groups:
  big: debvirt_memory >= 4096
keyed_groups:
  - key: debvirt_description
    prefix: role

# The same constructed options in JMESPath
plugin: debvirt.cluster.guests
members: [node1, node2]
expressions: jmespath
compose:
  ansible_user: "'debian'"
  first_mac: "debvirt_interfaces[0].mac"
groups:
  big: "debvirt_memory >= `4096`"
  web: "contains(debvirt_tags, 'web')"
keyed_groups:
  - key: debvirt_description
    prefix: role
"""

import hashlib
import subprocess
import time

from ansible.errors import AnsibleError, AnsibleParserError
from ansible.inventory.group import to_safe_group_name
from ansible.module_utils.common.text.converters import to_native
from ansible.plugins.inventory import BaseInventoryPlugin, Cacheable, Constructable
from ansible.utils.display import Display

from ansible_collections.debvirt.cluster.plugins.module_utils._client import LIBVIRT_IMPORT_ERROR
from ansible_collections.debvirt.cluster.plugins.module_utils._errors import DebvirtError
from ansible_collections.debvirt.cluster.plugins.module_utils._inventory import (
    Target,
    deduplicate,
    host_vars,
    member_targets,
    nodelist_members,
    read_targets,
    ssh_argv,
)
from ansible_collections.debvirt.cluster.plugins.module_utils._xml import LXML_IMPORT_ERROR

try:
    import jmespath
except ImportError:
    jmespath = None

display = Display()

# Bumped when the records change shape, so that a cache written by an older version is not used.
# 2: the agent's addresses only with use_agent_addresses; a format-1 listing may hold them.
CACHE_FORMAT = 2
COROSYNC_CONF = "/etc/corosync/corosync.conf"


class InventoryModule(BaseInventoryPlugin, Constructable, Cacheable):
    NAME = "debvirt.cluster.guests"

    def verify_file(self, path):
        return super().verify_file(path) and path.endswith(("guests.yml", "guests.yaml"))

    def parse(self, inventory, loader, path, cache=True):
        super().parse(inventory, loader, path, cache)
        self._read_config_data(path)
        # Bad configuration is reported before any member is contacted.
        filters = self._filters()
        targets = self._targets()
        nodelist = self.get_option("nodelist")
        if not targets and not nodelist:
            raise AnsibleParserError("Nothing to read: give members, uris, nodelist, or several of them")

        use_cache = self.get_option("cache")
        key = "%s_%s" % (self.get_cache_key(path), self._sources_digest(targets, nodelist))
        records = None
        if use_cache and cache:
            try:
                cached = self._cache[key]
            except KeyError:
                cached = None
            if isinstance(cached, dict) and cached.get("format") == CACHE_FORMAT:
                records = cached["records"]
                display.vv("debvirt.cluster.guests: %d guests from the cache, no member read"
                           % len(records))
        if records is None:
            records, complete = self._read(targets, nodelist)
            # A partial view is not kept: the next run tries the missing members again.
            if use_cache and complete:
                self._cache[key] = {"format": CACHE_FORMAT, "records": records}
        self._populate(records, filters)

    # --- configuration ----------------------------------------------------------------------
    def _filters(self):
        expressions = self.get_option("filters") or []
        if self.get_option("expressions") == "jmespath":
            # Compiled here so that a bad one is reported before any member is contacted.
            for where, expression in self._constructed_expressions():
                self._jmespath(expression, where)
        if expressions and jmespath is None:
            raise AnsibleError("The filters of the debvirt.cluster.guests inventory need the Python "
                               "library jmespath on the controller (pip install jmespath; Debian: "
                               "python3-jmespath)")
        compiled = []
        for index, expression in enumerate(expressions):
            try:
                compiled.append(jmespath.compile(expression))
            except jmespath.exceptions.JMESPathError as e:
                raise AnsibleParserError("filters[%d] %r is not a valid JMESPath expression: %s"
                                         % (index, expression, to_native(e)))
        return compiled

    def _constructed_expressions(self):
        for name, expression in (self.get_option("compose") or {}).items():
            yield "compose.%s" % name, expression
        for name, expression in (self.get_option("groups") or {}).items():
            yield "groups.%s" % name, expression
        for index, keyed in enumerate(self.get_option("keyed_groups") or []):
            if isinstance(keyed, dict):
                yield "keyed_groups[%d].key" % index, keyed.get("key")

    def _jmespath(self, expression, where):
        if jmespath is None:
            raise AnsibleError("expressions: jmespath needs the Python library jmespath on the "
                               "controller (pip install jmespath; Debian: python3-jmespath)")
        if not isinstance(expression, str):
            raise AnsibleParserError("%s must be a JMESPath expression, got %r" % (where, expression))
        try:
            return jmespath.compile(expression)
        except jmespath.exceptions.JMESPathError as e:
            raise AnsibleParserError("%s %r is not a valid JMESPath expression: %s"
                                     % (where, expression, to_native(e)))

    def _compose(self, template, variables, disable_lookups=...):
        # Ansible's keyed_groups evaluates its keys here; with jmespath, JMESPath does.
        if self.get_option("expressions") == "jmespath":
            return self._jmespath(template, "keyed_groups key").search(variables)
        return super()._compose(template, variables)

    def _ssh(self):
        return {"user": self.get_option("ssh_user"), "keyfile": self.get_option("ssh_keyfile"),
                "known_hosts": self.get_option("ssh_known_hosts")}

    def _targets(self, members=None):
        targets = member_targets(self.get_option("members") if members is None else members,
                                 types=self.get_option("types"), **self._ssh())
        if members is not None:
            return targets
        for index, entry in enumerate(self.get_option("uris") or []):
            if isinstance(entry, str):
                targets.append(Target(entry))
            elif isinstance(entry, dict) and isinstance(entry.get("uri"), str) and set(entry) <= {"uri", "node"}:
                node = entry.get("node")
                targets.append(Target(entry["uri"], str(node) if node is not None else None))
            else:
                raise AnsibleParserError("uris[%d] must be a URI or a mapping with uri and an optional "
                                         "node, got %r" % (index, entry))
        return targets

    def _sources_digest(self, targets, nodelist):
        # Part of the cache key: a changed list of members must not be answered from the old one.
        # The nodelist's members are not known before it is read, so its source stands for them,
        # with what they are reached by.
        lines = ["%s %s" % (t.uri, t.node) for t in targets]
        if self.get_option("use_agent_addresses"):
            lines.append("agent")
        if nodelist:
            lines.append("nodelist %s %r %r" % (nodelist, self.get_option("types"), sorted(self._ssh().items())))
        return hashlib.sha256("\n".join(lines).encode("utf-8")).hexdigest()[:12]

    # --- reading ------------------------------------------------------------------------------
    def _nodelist(self, source):
        """(node, address) of the members in source's corosync nodelist."""
        try:
            if source == "localhost":
                with open(COROSYNC_CONF, encoding="utf-8") as f:
                    text = f.read()
            else:
                timeout = self.get_option("timeout")
                argv = ssh_argv(source, "cat %s" % COROSYNC_CONF, timeout=timeout, **self._ssh())
                try:
                    proc = subprocess.run(argv, capture_output=True, text=True, timeout=timeout,
                                          stdin=subprocess.DEVNULL, check=False)
                except subprocess.TimeoutExpired:
                    raise DebvirtError("did not answer within %ss" % timeout)
                if proc.returncode != 0:
                    raise DebvirtError("ssh exited with %d: %s" % (proc.returncode, proc.stderr.strip()))
                text = proc.stdout
            return nodelist_members(text)
        except (OSError, DebvirtError) as e:
            message = "debvirt.cluster.guests: cannot read the corosync nodelist of %s: %s" % (
                source, getattr(e, "msg", None) or to_native(e))
            if self.get_option("strict"):
                raise AnsibleError(message)
            display.warning("%s; only the other members and URIs are read" % message)
            return None

    def _read(self, targets, nodelist):
        if LIBVIRT_IMPORT_ERROR:
            raise AnsibleError("The debvirt.cluster.guests inventory needs libvirt-python on the "
                               "controller: pip install libvirt-python (it builds against Debian's "
                               "libvirt-dev), or Debian's python3-libvirt for /usr/bin/python3. "
                               "Import error: %s" % LIBVIRT_IMPORT_ERROR.strip().splitlines()[-1])
        if LXML_IMPORT_ERROR:
            raise AnsibleError("The debvirt.cluster.guests inventory needs lxml on the controller: "
                               "pip install lxml, or Debian's python3-lxml for /usr/bin/python3")
        started = time.monotonic()
        complete = True
        if nodelist:
            members = self._nodelist(nodelist)
            complete = members is not None
            known = set(t.uri for t in targets)
            # A member both named and in the nodelist is read once.
            targets = targets + [t for t in self._targets(members or []) if t.uri not in known]
        records, failures = read_targets(targets, timeout=self.get_option("timeout"),
                                         agent=self.get_option("use_agent_addresses"))
        for target, reason in failures:
            message = "debvirt.cluster.guests: %s (node %s) did not answer: %s" % (
                target.uri, target.node or "?", reason)
            if self.get_option("strict"):
                raise AnsibleError(message)
            display.warning("%s; its guests are left out" % message)
        display.vv("debvirt.cluster.guests: %d guests read from %d connections in %.2f s"
                   % (len(records), len(targets) - len(failures), time.monotonic() - started))
        return records, complete and not failures

    # --- hosts and groups ---------------------------------------------------------------------
    def _populate(self, records, filters):
        records, warnings = deduplicate(records)
        for warning in warnings:
            display.warning("debvirt.cluster.guests: %s" % warning)
        strict = self.get_option("strict")
        for record in records:
            variables = host_vars(record)
            if not all(_truthy(f.search(variables)) for f in filters):
                continue
            host = record["name"]
            self.inventory.add_host(host)
            for name, value in variables.items():
                self.inventory.set_variable(host, name, value)
            for group in _standard_groups(record):
                self.inventory.add_child(self.inventory.add_group(group), host)
            if self.get_option("expressions") == "jmespath":
                self._jmespath_constructed(host, variables, strict)
            else:
                self._set_composite_vars(self.get_option("compose"), variables, host, strict=strict)
                self._add_host_to_composed_groups(self.get_option("groups"), variables, host, strict=strict)
                self._add_host_to_keyed_groups(self.get_option("keyed_groups"), variables, host, strict=strict)

    def _jmespath_constructed(self, host, variables, strict):
        # Against the plugin's own variables only, as filters are: the host's other variables
        # carry Ansible's types, which JMESPath's type checks do not know.
        for name, expression in (self.get_option("compose") or {}).items():
            value = self._jmespath_search(expression, variables, "compose.%s" % name, host, strict)
            if value is not None:
                self.inventory.set_variable(host, name, value)
        for name, expression in (self.get_option("groups") or {}).items():
            if _truthy(self._jmespath_search(expression, variables, "groups.%s" % name, host, strict)):
                self.inventory.add_child(self.inventory.add_group(self._sanitize_group_name(name)), host)
        self._add_host_to_keyed_groups(self.get_option("keyed_groups"), variables, host, strict=strict,
                                       fetch_hostvars=False)

    def _jmespath_search(self, expression, variables, where, host, strict):
        try:
            return self._jmespath(expression, where).search(variables)
        except (jmespath.exceptions.JMESPathError, TypeError, ValueError) as e:
            # A type error in one guest's data skips the entry for that guest, as Ansible does
            # with a failing Jinja2 expression. (jmespath lets Python's TypeError out of some
            # comparisons, such as a number with a string.)
            if strict:
                raise AnsibleError("%s for host %s: %s" % (where, host, to_native(e)))
            return None


def _truthy(value):
    # JMESPath's notion of false; unlike Python's, the number 0 is true.
    return not (value is None or value is False or value in ("", [], {}))


def _group(prefix, value):
    # Forced, so that the names do not depend on the user's TRANSFORM_INVALID_GROUP_CHARS.
    return to_safe_group_name("%s_%s" % (prefix, value), force=True, silent=True)


def _standard_groups(record):
    groups = [_group("node", record["node"]), _group("state", record["state"]), _group("type", record["type"])]
    groups.extend(_group("tag", tag) for tag in record["tags"])
    return groups
