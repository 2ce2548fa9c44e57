# -*- coding: utf-8 -*-
# Copyright: debvirt.cluster developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What a move's checks look at, read before anything is touched: the guest's definition, its
disks and their pools on the source, and on the target its networks, pools, volumes, free
memory and CPU. Only reads (a shared-storage probe writes one file of its own and removes it);
_migration's preflight() judges what is read here.
"""

from __future__ import annotations

from ansible_collections.debvirt.cluster.plugins.module_utils._domain import mib
from ansible_collections.debvirt.cluster.plugins.module_utils._errors import DebvirtError
from ansible_collections.debvirt.cluster.plugins.module_utils._transport import MigrationError
from ansible_collections.debvirt.cluster.plugins.module_utils._xml import parse, tostring

# Pool types whose volumes every member reaches under the same name: the disk stays put.
SHARED_POOL_TYPES = ("iscsi", "iscsi-direct", "netfs", "rbd", "gluster")
# Pool types that may be a shared file system mounted at the same path on every member (libvirt
# cannot tell): a probe file decides, so that a shared disk is never copied onto itself.
PROBED_POOL_TYPES = ("dir", "fs")


class Disk:
    def __init__(self, target, path, readonly, pool=None, pool_type=None, volume=None, shared=False,
                 capacity=None, allocation=None, fmt=None, cache=None):
        self.target = target
        self.path = path
        self.readonly = readonly
        self.pool = pool
        self.pool_type = pool_type
        self.volume = volume
        self.shared = shared
        self.capacity = capacity
        self.allocation = allocation
        self.format = fmt
        self.cache = cache
        # True when a probe found the pool's directory to be the same one on the target.
        self.same_file = False
        # On the target: None (pool missing), {"exists": bool, "used_by": guest or None, "path": ...}
        self.on_target = None


class Facts:
    def __init__(self):
        self.members = None
        self.source = None
        self.state = None
        self.found = {}
        self.unknown = []
        self.memory_kib = 0
        self.networks = []             # networks the guest's interfaces use
        self.target_networks = {}      # name -> active
        self.disks = []
        self.target_pools = {}         # name -> {"active": bool, "path": str}
        self.source_pool_paths = {}    # name -> path
        self.target_free = None        # bytes
        self.cpu = None                # (compatible or None, detail)
        self.autostart = False
        self.inactive_xml = None
        self.container = False
        self.rootfs = None             # a container's root directory
        self.rootfs_problem = None     # why it cannot be copied, if it cannot
        self.rootfs_on_target = False  # the target has that directory, not empty


def _text(node, path):
    found = node.find(path)
    return None if found is None else found.text


def read_facts(req, members, clients, found, unknown, source, shell=None):
    """Everything preflight() needs, read from the source's and the target's libvirt (and, for a
    container's root directory, the target's file system through shell)."""
    f = Facts()
    f.members, f.found, f.unknown, f.source = members, found, unknown, source
    f.state = found[source]
    src = clients[source]
    dom = src.domain(req.name)
    f.autostart = src.autostart(dom)
    f.inactive_xml = src.domain_xml(dom, inactive=True)
    active = f.state in ("running", "paused")
    root = parse(src.domain_xml(dom, inactive=not active))
    memory = root.find("memory")
    f.memory_kib = _kib(memory)
    f.networks = sorted({i.find("source").get("network") for i in root.findall("devices/interface[@type='network']")
                         if i.find("source") is not None})
    tgt = clients.get(req.target)
    if tgt is None:
        return f
    if root.get("type") == "lxc":
        _read_rootfs(f, root, shell, members.nodes[req.target].host)
    for net in f.networks:
        handle = tgt.network(net)
        f.target_networks[net] = None if handle is None else tgt.network_active(handle)
    for disk in root.findall("devices/disk"):
        d = _read_disk(src, disk, f)
        if d is not None:
            f.disks.append(d)
    shared_dirs = {}
    for d in f.disks:
        if d.shared or d.pool is None:
            continue
        if d.pool not in f.target_pools:
            pool = tgt.pool(d.pool)
            f.target_pools[d.pool] = None if pool is None else {
                "active": tgt.pool_info(pool)[0] == 2,
                "path": _text(parse(tgt.pool_xml(pool)), "target/path")}
        info = f.target_pools[d.pool]
        if info is None or not info["active"]:
            continue
        path = f.source_pool_paths.get(d.pool)
        if d.pool_type in PROBED_POOL_TYPES and path and info["path"] == path:
            if path not in shared_dirs:
                shared_dirs[path] = _same_directory(shell, members.nodes[source].host,
                                                    members.nodes[req.target].host, path, req.target)
            if shared_dirs[path]:
                d.shared = d.same_file = True
                continue
        vol = tgt.volume(tgt.pool(d.pool), d.volume)
        d.on_target = {"exists": vol is not None, "used_by": _user_of(tgt, d.path) if vol is not None else None}
    f.target_free = tgt.free_memory()
    f.cpu = _compare_cpu(tgt, root)
    return f


def _same_directory(shell, src_host, tgt_host, path, target):
    """Whether path is one directory on both nodes (a shared file system): a file with a random
    name made in it on the source, looked for on the target, removed again. Libvirt has no such
    notion, and comparing device and inode numbers says nothing across hosts."""
    if shell is None:
        raise MigrationError("Cannot tell whether %s is shared storage: no shell to reach the members"
                             % path)
    rc, out, err = shell.run(src_host, ["mktemp", "-p", path, ".debvirt-probe.XXXXXXXXXX"])
    probe = out.strip()
    if rc != 0 or not probe:
        raise MigrationError("Cannot tell whether %s is shared storage: making a probe file in it on the "
                             "source failed: %s" % (path, (err or out).strip() or "exit %d" % rc))
    try:
        rc, out, err = shell.run(tgt_host, ["sh", "-c", 'test -e "$1" && exit 0; test -d "$2" && exit 1; '
                                            "exit 2", "sh", probe, path])
    finally:
        shell.run(src_host, ["rm", "-f", "--", probe])
    if rc not in (0, 1):
        raise MigrationError("Cannot tell whether %s is shared storage: looking for the probe file on %s "
                             "failed: %s" % (path, target, (err or out).strip() or "exit %d" % rc))
    return rc == 0


def _read_rootfs(f, root, shell, target_host):
    f.container = True
    fs = next((x for x in root.findall("devices/filesystem") if x.find("target") is not None
               and x.find("target").get("dir") == "/"), None)
    source = fs.find("source") if fs is not None else None
    if fs is None or fs.get("type", "mount") != "mount" or source is None or not source.get("dir"):
        f.rootfs_problem = ("its root file system is not a directory (an image or a volume): only "
                            "directories are copied")
        return
    f.rootfs = source.get("dir")
    if shell is not None:
        rc = shell.run(target_host, ["sh", "-c", 'test -d "$1" && test -n "$(ls -A "$1")"', "sh", f.rootfs])[0]
        f.rootfs_on_target = rc == 0


def _kib(node):
    if node is None or not node.text:
        return 0
    return mib(node.text, node.get("unit")) * 1024


def _read_disk(src, disk, f):
    source = disk.find("source")
    target = disk.find("target").get("dev")
    readonly = disk.find("readonly") is not None
    dtype = disk.get("type")
    if source is None or disk.get("device") in ("cdrom", "floppy") and not source.attrib:
        return None
    if dtype == "network":
        return Disk(target, source.get("name"), readonly, shared=True, pool_type="network")
    pool = vol = None
    if dtype == "volume":
        pool = src.pool(source.get("pool"))
        vol = src.volume(pool, source.get("volume")) if pool is not None else None
    else:
        path = source.get("file") or source.get("dev")
        vol = src.volume_by_path(path) if path else None
        pool = src.volume_pool(vol) if vol is not None else None
    if pool is None or vol is None:
        return Disk(target, source.get("file") or source.get("dev") or source.get("volume"), readonly)
    driver = disk.find("driver")
    pool_root = parse(src.pool_xml(pool))
    pool_type = pool_root.get("type")
    f.source_pool_paths[pool.name()] = _text(pool_root, "target/path")
    _vtype, capacity, allocation = src.volume_info(vol)
    fmt = parse(src.volume_xml(vol)).find("target/format")
    return Disk(target, vol.path(), readonly, pool.name(), pool_type, vol.name(),
                pool_type in SHARED_POOL_TYPES, capacity, allocation,
                fmt.get("type") if fmt is not None else None, driver.get("cache") if driver is not None else None)


def _user_of(client, path):
    """The target's guest whose definition uses path, if any."""
    for dom in client.domains():
        root = parse(client.domain_xml(dom, inactive=True))
        for source in root.findall("devices/disk/source"):
            if path in (source.get("file"), source.get("dev")):
                return dom.name()
    return None


def _compare_cpu(tgt, root):
    cpu = root.find("cpu")
    if cpu is None:
        return None, "the guest has no CPU model: the hypervisor's default, the same everywhere"
    if cpu.get("mode") in ("host-passthrough", "maximum"):
        return None, ("CPU mode %s is not comparable: the nodes must have the same CPU"
                      % cpu.get("mode"))
    if cpu.find("model") is None:
        return None, "the guest names no CPU model"
    ostype = root.find("os/type")
    try:
        ok = tgt.compare_cpu(tostring(cpu), ostype.get("arch"), ostype.get("machine"), root.get("type"))
    except DebvirtError as e:
        return False, e.msg
    model = cpu.find("model").text
    return ok, ("%s runs on the target's %s hypervisor" % (model, root.get("type")) if ok else
                "the target's %s hypervisor cannot provide CPU %s" % (root.get("type"), model))
