# -*- coding: utf-8 -*-
# Copyright: debvirt.cluster developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A system or application container through libvirt's LXC driver: what its lifecycle (_kind)
does differently from a virtual machine's.

read_container() and CONTAINER.inspect() only read; plan_container() is pure; CONTAINER.apply() is the
only writer, to libvirt and to the container's root filesystem (through _rootfs). The request
(its options and their checks) is _container_request's.
"""

from __future__ import annotations

import os
import shutil

from ansible_collections.debvirt.cluster.plugins.module_utils import _kind, _rootfs
from ansible_collections.debvirt.cluster.plugins.module_utils._client import is_local
from ansible_collections.debvirt.cluster.plugins.module_utils._errors import (
    DebvirtError,
    InvalidSpec,
    WaitTimeout,
)
from ansible_collections.debvirt.cluster.plugins.module_utils._container_request import (
    ARGUMENT_SPEC,
    DEFAULT_ID_COUNT,
    ContainerRequest,
    request_from_params,
)
from ansible_collections.debvirt.cluster.plugins.module_utils._lxc import (
    BOOKKEEPING,
    CFS_PERIOD,
    META,
    NEW_CONTAINER,
    RESOURCES,
    SYSTEM_INIT,
    ContainerSpec,
    ContainerXML,
)
from ansible_collections.debvirt.cluster.plugins.module_utils._xml import parse

# Used only when a container is created; an existing one keeps what it has.
CREATE_DEFAULTS = {"memory": 512, "vcpus": 1}
SUBUID, SUBGID = "/etc/subuid", "/etc/subgid"


def default_rootfs(name):
    return os.path.join(_rootfs.CONTAINER_DIR, name, "rootfs")


# --- reading ---------------------------------------------------------------------------------
class Actual(_kind.Actual):
    SPEC = ContainerSpec
    ACTIVE = ("running", "frozen")


def read_container(client, name):
    return CONTAINER.read(client, name)


class Facts:
    """What inspect() learnt from the host for the planner."""

    def __init__(self):
        self.rootfs = None  # the path: given, the container's own, or the default
        self.rootfs_exists = False
        self.volume = False  # the rootfs is a volume, not a directory on the host
        self.create_rootfs = None  # the source description when the rootfs is to be made
        self.build_template = None  # the template path when it is to be built first
        self.idmap = None  # the ID map a new container gets
        self.net_format = None
        self.files = {}  # path in the rootfs -> its current content
        self.warnings = []


def _inspect_volume(client, req, actual, facts):
    src = req.source
    privileged = actual.spec.privileged if actual is not None else bool(req.spec.privileged)
    if not privileged:
        # Measured on libvirt 9.0: its controller cannot set up a loop-mounted root inside a
        # user namespace ("Failed to create /run/libvirt/lxc/<name>.root: Permission denied").
        raise InvalidSpec("A root filesystem in a volume needs privileged: true: libvirt's LXC driver "
                          "cannot start an unprivileged container on a loop-mounted volume")
    pool = client.pool(src["pool"])
    if pool is None:
        raise InvalidSpec("Storage pool %s does not exist (for volume %s)" % (src["pool"], src["volume"]))
    if client.pool_info(pool)[0] != 2:  # VIR_STORAGE_POOL_RUNNING
        raise InvalidSpec("Storage pool %s is not active: start it first" % src["pool"])
    vol = client.volume(pool, src["volume"])
    if vol is None:
        raise InvalidSpec("Volume %s does not exist in pool %s: make it (with a filesystem holding the "
                          "root filesystem) first" % (src["volume"], src["pool"]))
    fmt = parse(client.call("read", "volume %s" % src["volume"], vol.XMLDesc, 0)).find("target/format")
    if fmt is not None and fmt.get("type") not in ("raw", None):
        raise InvalidSpec("Volume %s/%s is %s: a container's root filesystem must be a raw volume"
                          % (src["pool"], src["volume"], fmt.get("type")))
    facts.rootfs = client.call("read the path of", "volume %s" % src["volume"], vol.path)
    _volume_facts(req, facts)


def _inspect_volume_kept(req, actual, facts):
    facts.rootfs = actual.spec.rootfs
    _volume_facts(req, facts)


def _volume_facts(req, facts):
    facts.rootfs_exists = True
    facts.volume = True
    if req.spec.hostname is not None or any(n.address is not None for n in req.spec.interfaces or []):
        raise InvalidSpec("hostname and interfaces[].address are written into a root filesystem "
                          "directory; a root filesystem in a volume is not one")


def _inspect_directory(req, actual, facts):
    spec = req.spec
    rootfs = facts.rootfs = spec.rootfs or (actual.spec.rootfs if actual else None) or default_rootfs(req.name)
    facts.rootfs_exists = _rootfs.non_empty_dir(rootfs)
    if not facts.rootfs_exists:
        _inspect_source(req, rootfs, facts)
    command = spec.command or (actual.spec.command if actual else SYSTEM_INIT)
    if facts.rootfs_exists and not os.path.lexists(os.path.join(rootfs, command[0].lstrip("/"))):
        raise InvalidSpec("%s does not exist in the root filesystem %s" % (command[0], rootfs))
    if facts.rootfs_exists and actual is None and not spec.privileged:
        owner = os.stat(rootfs).st_uid
        if owner != facts.idmap["uid"]:
            facts.warnings.append(
                "The root filesystem %s is owned by UID %d, not by the container's root (host UID %d): "
                "an unprivileged container cannot write it. Create it with rootfs.image or "
                "rootfs.debian, or chown it into the ID map" % (rootfs, owner, facts.idmap["uid"]))
    if facts.rootfs_exists:
        facts.net_format = _rootfs.network_format(rootfs)
    elif req.source["kind"] == "debian":
        facts.net_format = "ifupdown"  # the template includes it
    addressed = any(n.address is not None for n in spec.interfaces or [])
    if addressed and facts.rootfs_exists and facts.net_format is None:
        raise InvalidSpec("interfaces[].address needs ifupdown or systemd-networkd in the root "
                          "filesystem %s, and it has neither" % rootfs)
    if facts.rootfs_exists:
        facts.files = _rootfs.read_files(rootfs, _managed_paths(rootfs, facts.net_format))


def _managed_paths(rootfs, fmt):
    paths = [_rootfs.HOSTNAME_FILE, _rootfs.IFUPDOWN_FILE, _rootfs.NETWORKD_WANTS]
    netdir = os.path.join(rootfs, _rootfs.NETWORKD_DIR)
    if fmt == "networkd" and os.path.isdir(netdir):
        paths += ["%s/%s" % (_rootfs.NETWORKD_DIR, f) for f in os.listdir(netdir) if f.startswith("50-debvirt-")]
    return paths


def _inspect_existing_map(req, actual):
    have, spec = actual.spec, req.spec
    if spec.privileged is not None and spec.privileged != have.privileged or \
            spec.idmap is not None and spec.idmap != have.idmap:
        raise InvalidSpec(
            "Container %s is %s; changing its ID map would leave its root filesystem owned by the "
            "old one. Create a new container instead" % (
                req.name, "privileged" if have.privileged else "mapped to host UID %d" % have.idmap["uid"]))


def _inspect_new_map(spec):
    if spec.privileged:
        return None
    uids, gids = _rootfs.read_subids(SUBUID), _rootfs.read_subids(SUBGID)
    if spec.idmap is None:
        if not uids or not gids:
            raise InvalidSpec(
                "An unprivileged container needs a subordinate ID range for root in %s and %s, and "
                "there is none: run the debvirt.cluster.node role (it adds one), give idmap, or set "
                "privileged: true" % (SUBUID, SUBGID))
        count = min(DEFAULT_ID_COUNT, uids[0][1], gids[0][1])
        return {"uid": uids[0][0], "gid": gids[0][0], "count": count}
    for kind, ranges, path in (("uid", uids, SUBUID), ("gid", gids, SUBGID)):
        start, count = spec.idmap[kind], spec.idmap["count"]
        if not _rootfs.covered(ranges, start, count):
            have = ", ".join("%d-%d" % (s, s + c - 1) for s, c in ranges) or "none"
            raise InvalidSpec("idmap %ss %d-%d are not a subordinate range of root in %s (root has: %s)"
                              % (kind, start, start + count - 1, path, have))
    return dict(spec.idmap)


def _inspect_source(req, path, facts):
    source = req.source
    kind = source["kind"]
    if kind == "directory":
        raise InvalidSpec("Root filesystem %s does not exist (or is empty) and no source to create it "
                          "is given: set rootfs.image or rootfs.debian" % path)
    if kind == "debian":
        template = _rootfs.template_path(source["release"], source["arch"])
        if not os.path.isdir(template):
            if shutil.which("debootstrap") is None:
                raise InvalidSpec("Building the Debian %s template needs debootstrap (Debian package "
                                  "debootstrap)" % source["release"])
            facts.build_template = template
        facts.create_rootfs = "debian %s" % source["release"]
    else:
        image = source["image"]
        if not _rootfs.is_url(image) and not os.path.isfile(image):
            raise InvalidSpec("rootfs.image %s does not exist on the host" % image)
        facts.create_rootfs = "image %s" % image


def owns_rootfs(spec):
    """Whether the root filesystem is a directory this module made, where it made it: a path
    changed since, or a definition that never recorded where, is not proof enough to delete."""
    created = spec.created
    if not (created and created["created"] and created.get("path") and spec.rootfs) or spec.rootfs_volume:
        return False
    return os.path.normpath(created["path"]) == os.path.normpath(spec.rootfs)


def _inspect_removal(req, actual, facts):
    spec = actual.spec
    if not spec.rootfs or spec.rootfs_volume:
        return
    facts.rootfs_exists = os.path.isdir(spec.rootfs)
    if not facts.rootfs_exists:
        return
    created = spec.created
    if not owns_rootfs(spec):
        if created and created["created"]:
            made = ("at %s" % created["path"]) if created.get("path") else "without recording where"
            facts.warnings.append("The root filesystem %s of container %s is kept: this module made one %s, "
                                  "and deletes only that; delete it by hand if it is no longer needed"
                                  % (spec.rootfs, req.name, made))
        return
    mounted = _rootfs.mount_points(spec.rootfs)
    if mounted:
        raise InvalidSpec("The root filesystem %s of container %s has %s mounted in it: unmount %s first "
                          "(its removal never crosses into another file system); nothing was changed"
                          % (spec.rootfs, req.name, ", ".join(mounted), "them" if len(mounted) > 1 else "it"))


# --- planning --------------------------------------------------------------------------------
def plan_container(req, actual, facts):
    """(plan, desired): the ordered changes, and the full desired spec (MACs, names resolved)."""
    return CONTAINER.plan(req, actual, facts)


def _new_container_defaults(req, desired, facts):
    for field, value in CREATE_DEFAULTS.items():
        if getattr(desired, field) is None:
            setattr(desired, field, value)
    if desired.command is None:
        desired.command = list(SYSTEM_INIT)
    desired.privileged = bool(desired.privileged)
    if not desired.privileged:
        desired.idmap = facts.idmap
    if desired.hostname is None and req.system and not facts.volume:
        desired.hostname = req.name
    desired.mounts = desired.mounts or []
    desired.interfaces = _resolve_nics(desired.interfaces or [], [], None, False)


def _plan_definition(plan, desired, actual, running):
    have = actual.spec
    # The LXC driver cannot raise a running container's memory above what it started with.
    hot_memory = desired.memory is not None and have.memory is not None and desired.memory <= have.memory
    plan.compare("memory", have.memory, desired.memory, cold=running and not hot_memory, live=running and hot_memory)
    RESOURCES.compare(plan, have, desired, running)
    plan.compare("rootfs", have.rootfs, desired.rootfs, cold=running)
    plan.compare("rootfs_volume", have.rootfs_volume, desired.rootfs_volume, cold=running)
    META.compare(plan, have, desired, running)
    BOOKKEEPING.compare(plan, have, desired, running)
    desired.privileged, desired.idmap = None, None  # inspect() refused any change to them
    if desired.mounts is not None:
        _plan_mounts(plan, desired.mounts, have.mounts, running)
    if desired.interfaces is not None:
        desired.interfaces = _resolve_nics(desired.interfaces, have.interfaces, plan, running)


def _plan_mounts(plan, wanted, have, running):
    by_target = {m.target: m for m in have}
    for want in wanted:
        match = by_target.pop(want.target, None)
        if match is None:
            plan.add("add", "mount", None, want.as_dict(), cold=running, key=want.target)
            continue
        if want.source != match.source:
            plan.add("update", "mount", match.source, want.source, cold=running, key=want.target, field="source")
        if want.readonly is None:
            want.readonly = match.readonly
        elif bool(want.readonly) != bool(match.readonly):
            plan.add("update", "mount", bool(match.readonly), bool(want.readonly), cold=running,
                     key=want.target, field="readonly")
    for gone in by_target.values():
        plan.add("remove", "mount", gone.as_dict(), None, cold=running, key=gone.target)


def _resolve_nics(wanted, have, plan, running):
    """Match desired interfaces to existing ones: by MAC, by name, by source, then in order.

    Like a guest's, an interface without a MAC in the request keeps the one libvirt gave it. Every
    change waits for a restart: the container's network configuration is read at its boot.
    """
    remaining = list(have)
    pairs = [None] * len(wanted)
    rules = (lambda w, h: w.mac is not None and w.mac == h.mac,
             lambda w, h: w.mac is None and w.dev is not None and w.dev == h.dev,
             lambda w, h: w.mac is None and w.dev is None and w.source() == h.source(),
             lambda w, h: w.mac is None and w.dev is None)
    for rule in rules:
        for i, want in enumerate(wanted):
            if pairs[i] is None:
                pairs[i] = next((h for h in remaining if rule(want, h)), None)
                if pairs[i] is not None:
                    remaining.remove(pairs[i])
    used = {h.dev for h in have if h.dev} | {w.dev for w in wanted if w.dev}
    resolved = []
    for want, match in zip(wanted, pairs):
        if match is None:
            new = want.copy()
            new.dev = new.dev or _free_dev(used)
            used.add(new.dev)
            resolved.append(new)
            if plan is not None:
                plan.add("add", "interface", None, new.as_dict(), cold=running, key=new.dev)
            continue
        merged = match.copy()
        key = match.mac or match.dev
        if want.source() != match.source():
            plan.add("update", "interface", "%s %s" % match.source(), "%s %s" % want.source(), cold=running,
                     key=key, field="source")
            merged.network, merged.bridge = want.network, want.bridge
        if want.dev is not None and want.dev != match.dev:
            plan.add("update", "interface", match.dev, want.dev, cold=running, key=key, field="name")
            merged.dev = want.dev
        if want.address is not None:
            # Addressing is managed as a whole: a static address without gateway has none.
            for field in ("address", "gateway"):
                if getattr(want, field) != getattr(match, field):
                    plan.add("update", "interface", getattr(match, field), getattr(want, field),
                             cold=running, key=key, field=field)
            merged.address, merged.gateway = want.address, want.gateway
        if merged.dev is None:
            merged.dev = _free_dev(used)
            used.add(merged.dev)
        resolved.append(merged)
    for gone in remaining:
        plan.add("remove", "interface", gone.as_dict(), None, cold=running, key=gone.mac or gone.dev)
    return resolved


def _free_dev(used):
    i = 0
    while "eth%d" % i in used:
        i += 1
    return "eth%d" % i


def _plan_files(plan, req, desired, actual, facts, running):
    """Hostname and addressing live in the rootfs, in Debian's own files: compare their content."""
    hostname = desired.hostname if desired.hostname is not None else None
    nics = desired.interfaces if desired.interfaces is not None else []
    want = _rootfs.render_files(req.name, hostname, nics, facts.net_format)
    addressed = any(n.address is not None for n in nics)
    if facts.net_format is None and addressed:
        # An image not unpacked yet: its format is known only then.
        plan.add("write", "network configuration", cold=running)
    if hostname is not None and facts.files.get(_rootfs.HOSTNAME_FILE) != want[_rootfs.HOSTNAME_FILE]:
        plan.add("write", "/" + _rootfs.HOSTNAME_FILE, cold=running)
    net = {k: v for k, v in want.items() if k != _rootfs.HOSTNAME_FILE}
    if net and any(facts.files.get(k) != v for k, v in net.items()):
        plan.add("write", "network configuration", cold=running)


# --- applying --------------------------------------------------------------------------------
def _write_files(req, desired, facts):
    rootfs = facts.rootfs
    fmt = facts.net_format or _rootfs.network_format(rootfs)
    nics = desired.interfaces if desired.interfaces is not None else []
    if fmt is None and any(n.address is not None for n in nics):
        raise DebvirtError("The root filesystem %s has neither ifupdown nor systemd-networkd: cannot "
                           "write its addresses" % rootfs)
    files = _rootfs.render_files(req.name, desired.hostname, nics, fmt)
    current = _rootfs.read_files(rootfs, list(files))
    _rootfs.write_files(rootfs, {k: v for k, v in files.items() if current.get(k) != v})


# --- the kind ----------------------------------------------------------------------------------
class ContainerKind(_kind.Kind):
    """A system or application container (libvirt's LXC driver).

    Its root filesystem is read and written here, so a container is converged on its own host
    only; placement moves it here first when it lives on another member.
    """

    noun, type, scheme = "container", "container", "lxc"
    paused, resume, pause = "frozen", "thaw", "freeze"
    local_only = True
    argument_spec = ARGUMENT_SPEC
    Actual = Actual
    XML = ContainerXML
    Request = ContainerRequest

    request_from_params = staticmethod(request_from_params)

    def inspect(self, client, req, actual):
        """Check the request against the host, read-only; raises InvalidSpec before anything is touched."""
        facts = Facts()
        spec = req.spec
        if req.state == "absent":
            if actual is not None and req.remove_storage:
                _inspect_removal(req, actual, facts)
            return facts
        if not is_local(client.uri):
            raise InvalidSpec("A container's root filesystem lives on its host: run the task on the host "
                              "with a local URI such as lxc:///system, not %s" % client.uri)
        if actual is not None:
            _inspect_existing_map(req, actual)
        else:
            facts.idmap = _inspect_new_map(spec)
        if req.source["kind"] == "volume":
            _inspect_volume(client, req, actual, facts)
        elif actual is not None and actual.spec.rootfs_volume and spec.rootfs is None:
            _inspect_volume_kept(req, actual, facts)
        else:
            _inspect_directory(req, actual, facts)
        # Only a local URI gets this far: the bridges are this host's.
        _kind.inspect_interfaces(client, spec.interfaces, local=True)
        for mount in spec.mounts or []:
            if not os.path.exists(mount.source):
                raise InvalidSpec("Mount source %s does not exist on the host" % mount.source)
        return facts

    def apply_live(self, client, dom, plan, desired):
        for change in plan.changes:
            if not change.extra.get("live"):
                continue
            if change.is_("memory"):
                client.set_memory_live(dom, desired.memory * 1024)
            elif change.is_("vcpus"):
                client.set_container_cpu_live(dom, quota=desired.vcpus * CFS_PERIOD, period=CFS_PERIOD)
            elif change.is_("cpu_shares"):
                client.set_container_cpu_live(dom, shares=desired.cpu_shares)
        return []

    def stop(self, client, dom, req):
        if client.domain_state(dom) == "paused":
            client.resume(dom)
        try:
            client.stop_container(dom, req.shutdown_timeout)
        except (WaitTimeout, DebvirtError) as e:
            if not req.force:
                raise type(e)("%s; set force: true to stop it forcibly" % e.msg) from None
            if client.domain_state(dom) != "stopped":
                client.destroy(dom)

    def lookup(self, client, name):
        return client.container(name)

    def check_type(self, client, name, xml):
        if xml.virt_type != "lxc":
            raise InvalidSpec("%s on %s is not a container (its type is %s)" % (name, client.uri, xml.virt_type))

    def plan_removal(self, plan, req, actual, facts):
        if req.remove_storage and facts.rootfs_exists and owns_rootfs(actual.spec):
            plan.add("delete", "rootfs", key=actual.spec.rootfs)

    def plan_spec(self, plan, req, desired, actual, facts, running):
        if facts.build_template:
            plan.add("create", "template", key=facts.build_template)
        if actual is None or desired.rootfs is not None:
            desired.rootfs = facts.rootfs
        if facts.create_rootfs:
            plan.add("create", "rootfs", after=facts.create_rootfs, key=facts.rootfs)
            desired.created = {"source": facts.create_rootfs, "created": True, "path": facts.rootfs}
        elif actual is None:
            source = "volume %s" % desired.rootfs_volume if facts.volume else "directory"
            desired.created = {"source": source, "created": False}
        if actual is None:
            _new_container_defaults(req, desired, facts)
            plan.add("define", self.noun, key=req.name)
        else:
            _plan_definition(plan, desired, actual, running)
        _plan_files(plan, req, desired, actual, facts, running)

    def prepare_apply(self, client, req, plan, desired, actual, facts):
        if facts.create_rootfs:
            source = req.source
            template = image = None
            if source["kind"] == "debian":
                template = _rootfs.build_template(source["release"], source["arch"], source["mirror"])
            else:
                image = _rootfs.fetch_image(source["image"], source["checksum"])
            idmap = desired.idmap if actual is None else actual.spec.idmap
            _rootfs.create_rootfs(facts.rootfs, template=template, image=image, idmap=idmap)
        if plan.has("write"):
            _write_files(req, desired, facts)

    def defines(self, change):
        return super().defines(change) and change.action != "write" and not change.is_("template") \
            and not change.is_("rootfs", "create")

    def new_xml(self):
        return ContainerXML(parse(NEW_CONTAINER))

    def define(self, client, xml, name):
        return client.define_container(xml, name)

    def start(self, client, dom, paused=False):
        client.start(dom)
        if client.container_init_lost(dom):
            # Only this start made it: forced off (the container is seconds old) and made again.
            client.destroy(dom)
            client.start(dom)
            if client.container_init_lost(dom):
                raise DebvirtError("Container %s started, twice, but libvirt did not learn the process ID of its "
                                   "init either time, without which it cannot stop it cleanly; it runs now: "
                                   "see the container's log in /var/log/libvirt/lxc" % dom.name())
        if paused:
            client.suspend(dom)

    def remove(self, client, plan, actual):
        client.undefine_container(actual.dom)
        if plan.on("rootfs", "delete"):
            _rootfs.remove_rootfs(actual.spec.rootfs)

    def kept(self, before, actual):
        # The ID map is fixed at creation: inspect() refused a request to change it.
        return {f: before[f] for f in ("privileged", "idmap") if actual is not None and f in before}

    def describe_more(self, client, actual, out, details):
        """details: the interfaces' addresses."""
        out["kind"] = "container"
        out.setdefault("tags", [])
        if details:
            self.add_addresses(client, actual, out, actual.state == "running")

    def predict_moved(self, target, source, req):
        # The move copies the root filesystem, so what the container holds is known only after it.
        return None


CONTAINER = ContainerKind()


def list_containers(client, names=None, tags=None):
    """Every container on the host, or those named, or those carrying all the given tags."""
    return CONTAINER.list(client, names, tags)
