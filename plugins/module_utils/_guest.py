# -*- coding: utf-8 -*-
# Copyright: debvirt.cluster developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A virtual machine: what its lifecycle (_kind) does differently from a container's.

read_guest() and GUEST.inspect() only read; plan_guest() is pure; GUEST.apply() is the only writer.
The request (its options and their checks) is _guest_request's.
"""

from __future__ import annotations

import copy
import os
import time

from ansible_collections.debvirt.cluster.plugins.module_utils import _cloudinit, _kind, _usage
from ansible_collections.debvirt.cluster.plugins.module_utils._client import is_local
from ansible_collections.debvirt.cluster.plugins.module_utils._domain import (
    HOTPLUG_BUSES,
    MACHINE,
    META,
    NEW_DOMAIN,
    DiskSpec,
    DomainXML,
    GuestSpec,
    target_name,
    _BUS_PREFIX,
)
from ansible_collections.debvirt.cluster.plugins.module_utils._errors import (
    DebvirtError,
    InvalidSpec,
    LibvirtCallError,
    WaitTimeout,
)
from ansible_collections.debvirt.cluster.plugins.module_utils._guest_request import (
    ARGUMENT_SPEC,
    GuestRequest,
    request_from_params,
    seed_path,
)
from ansible_collections.debvirt.cluster.plugins.module_utils._xml import parse, quote, tostring

SHUTDOWN_RESEND = 10
# Used only when a guest is created; an existing guest keeps what it has.
CREATE_DEFAULTS = {"memory": 1024, "vcpus": 1}


# --- reading ---------------------------------------------------------------------------------
class Actual(_kind.Actual):
    SPEC = GuestSpec


def read_guest(client, name):
    return GUEST.read(client, name)


class Facts:
    """What inspect() learnt from the host for the planner."""

    def __init__(self):
        self.new_volumes = []  # (pool, volume, size, format)
        self.volume_formats = {}  # disk key -> the format of the existing volume
        self.seed = None  # {"path", "sha256", "files", "recorded": the definition names path as its seed}
        self.virt_type = None
        self.machine = None  # the canonical name of the requested machine type
        self.removable = []  # "pool/volume" that remove_storage deletes: made for it, still its own
        self.removable_seed = None  # the seed's path, when remove_storage may delete it
        self.warnings = []


def _inspect_file_path(option, path):
    """A file the guest's run writes: its directory must be there, and it must not be one."""
    if os.path.isdir(path):
        raise InvalidSpec("%s %s is a directory on the host: give the path of a file" % (option, path))
    parent = os.path.dirname(path)
    if not os.path.isdir(parent):
        raise InvalidSpec("%s %s: its directory %s does not exist on the host" % (option, path, parent))


def _inspect_volume(client, disk, attached, facts):
    pool = client.pool(disk.pool)
    if pool is None:
        raise InvalidSpec("Storage pool %s does not exist (for volume %s)" % (disk.pool, disk.volume))
    state, capacity, _allocation, _available = client.pool_info(pool)
    if state != 2:  # VIR_STORAGE_POOL_RUNNING
        raise InvalidSpec("Storage pool %s is not active: start it first" % disk.pool)
    vol = client.volume(pool, disk.volume)
    if vol is not None:
        fmt = parse(client.call("read", "volume %s" % disk.volume, vol.XMLDesc, 0)).find("target/format")
        if fmt is not None:
            facts.volume_formats[disk.key()] = fmt.get("type")
        return
    if attached:
        return
    if disk.size is None:
        raise InvalidSpec("Volume %s does not exist in pool %s: give size to create it"
                          % (disk.volume, disk.pool))
    if disk.size > capacity:
        # Volumes are created sparse, so only a disk larger than the whole pool is impossible.
        raise InvalidSpec("Volume %s of %d bytes is larger than pool %s (%d bytes in all)"
                          % (disk.volume, disk.size, disk.pool, capacity))
    fmt = disk.format or "qcow2"
    facts.new_volumes.append((disk.pool, disk.volume, disk.size, fmt))
    facts.volume_formats[disk.key()] = fmt


def _virt_type(client, req, facts):
    if req.virt_type in ("kvm", "qemu"):
        if client.domain_capabilities(req.virt_type) is None:
            raise InvalidSpec("This host cannot run %s guests" % req.virt_type)
        return req.virt_type
    if client.domain_capabilities("kvm") is not None:
        return "kvm"
    facts.warnings.append("KVM is not available on this host: guest runs under QEMU emulation (TCG), "
                          "which is much slower")
    return "qemu"


def _machines(client):
    """{machine type: (canonical name, most vCPUs)} as the host's capabilities list them."""
    out = {}
    for node in parse(client.capabilities()).iterfind("guest/arch//machine"):
        most = node.get("maxCpus")
        out[node.text] = (node.get("canonical") or node.text, int(most) if most else None)
    return out


def _inspect_machine(client, req, actual, facts):
    """The machine type exists, and takes the vCPUs asked for: libvirt refuses the definition
    otherwise, after new volumes were made."""
    spec = req.spec
    if spec.machine is None and spec.vcpus is None and spec.max_vcpus is None:
        return
    machines = _machines(client)
    if spec.machine is not None:
        if machines and spec.machine not in machines:
            raise InvalidSpec("machine %r is not a machine type of this host (virsh capabilities lists "
                              "them, such as pc and q35)" % spec.machine)
        facts.machine = machines.get(spec.machine, (spec.machine, None))[0]
    if actual is not None:
        machine = facts.machine or actual.spec.machine
    else:
        machine = facts.machine or _default_machine(client, facts.virt_type)
    most = machines.get(machine, (None, None))[1]
    have = actual.spec.max_vcpus if actual is not None else None
    top = spec.max_vcpus or max(spec.vcpus or 0, have or 1)
    if most is not None and top > most:
        raise InvalidSpec("%s %d is more than machine type %s takes (%d)"
                          % ("max_vcpus" if spec.max_vcpus else "vcpus", top, machine, most))


def _default_machine(client, virt_type):
    caps = client.domain_capabilities(virt_type) if virt_type else None
    return parse(caps).findtext("machine") if caps else None


def _inspect_cpu_model(client, req, actual, facts):
    """libvirt defines a guest with any CPU model name, and refuses to start it with one it does not know."""
    model = req.spec.cpu_model
    if model is None or (actual is not None and actual.spec.cpu_model == model):
        return
    virt_type = facts.virt_type or actual.spec.virt_type
    caps = client.domain_capabilities(virt_type)
    models = [n.text for n in parse(caps).iterfind("cpu/mode[@name='custom']/model")] if caps else []
    if models and model not in models:
        raise InvalidSpec("cpu_model %r is not a CPU model libvirt knows for %s guests on this host "
                          "(virsh domcapabilities lists them)" % (model, virt_type))


def _inspect_removal(client, clients, req, actual, facts):
    """Which volumes made for the guest remove_storage may delete: those that are still its disks
    and that no other domain of clients uses (any member's, in a cluster); the others are kept with
    a warning naming who has them."""
    disks = actual.spec.disks
    for ref in actual.spec.created or []:
        pool_name, vol_name = ref.split("/", 1)
        pool = client.pool(pool_name)
        vol = client.volume(pool, vol_name) if pool is not None else None
        if vol is None:
            continue  # deleted already: nothing to prove
        path = client.call("read the path of", "volume %s" % ref, vol.path)
        uses = _usage.volume_is(pool_name, vol_name, path)
        users = _usage.users(clients, uses, skip=(client.uri, req.name))
        backed = sorted(v.name() for v in client.volumes(pool)
                        if parse(client.volume_xml(v)).findtext("backingStore/path") == path)
        why = []
        if not any(uses(_usage.Source(d.pool, d.volume, d.path)) for d in disks):
            why.append("it is no longer one of its disks")
        if users:
            why.append("it is a disk of %s" % _usage.phrase(users))
        if backed:
            why.append("it is the backing store of %s" % ", ".join(backed))
        if why:
            facts.warnings.append("Volume %s, made for guest %s, is kept: %s" % (ref, req.name, "; ".join(why)))
        else:
            facts.removable.append(ref)
    seed = actual.spec.seed
    if seed:
        why = _cloudinit.why_not_ours(seed["path"], req.name, recorded=True)
        if why:
            facts.warnings.append("The cloud-init seed %s of guest %s is kept: %s; the module deletes only "
                                  "a seed it made" % (seed["path"], req.name, why))
        else:
            facts.removable_seed = seed["path"]


# --- planning --------------------------------------------------------------------------------
def plan_guest(req, actual, facts):
    """(plan, desired): the ordered changes, and the full desired spec (targets and MACs resolved)."""
    return GUEST.plan(req, actual, facts)


def _new_guest_defaults(desired, facts):
    desired.virt_type = desired.virt_type or facts.virt_type
    for field, value in CREATE_DEFAULTS.items():
        if getattr(desired, field) is None:
            setattr(desired, field, value)
    desired.max_memory = desired.max_memory or desired.memory
    desired.max_vcpus = desired.max_vcpus or desired.vcpus
    desired.disks = _resolve_disks(desired.disks or [], [], facts, None)[0]
    for nic in desired.interfaces or []:
        nic.model = nic.model or "virtio"


def _plan_definition(plan, desired, actual, facts, running):
    have = actual.spec
    # Raising memory or vCPUs above the current maximum raises the maximum too.
    if desired.max_memory is None and desired.memory is not None and desired.memory > have.max_memory:
        desired.max_memory = desired.memory
    if desired.max_vcpus is None and desired.vcpus is not None and desired.vcpus > have.max_vcpus:
        desired.max_vcpus = desired.vcpus
    plan.compare("max_memory", have.max_memory, desired.max_memory, cold=running)
    plan.compare("max_vcpus", have.max_vcpus, desired.max_vcpus, cold=running)
    hot_memory = desired.max_memory in (None, have.max_memory)
    hot_vcpus = desired.max_vcpus in (None, have.max_vcpus)
    plan.compare("memory", have.memory, desired.memory, cold=running and not hot_memory, live=running and hot_memory)
    plan.compare("vcpus", have.vcpus, desired.vcpus, cold=running and not hot_vcpus, live=running and hot_vcpus)
    if facts.machine is not None:
        desired.machine = facts.machine
    MACHINE.compare(plan, have, desired, running)
    if desired.graphics is not None:
        before = desired.graphics.managed_view(have.graphics)
        if before != desired.graphics:
            plan.add("update", "graphics", before.as_dict(), desired.graphics.as_dict(), cold=running)
    META.compare(plan, have, desired, running)
    if desired.disks is not None:
        desired.disks, changes = _resolve_disks(desired.disks, have.disks, facts, have.seed)
        for action, target, field, before, after, hot in changes:
            plan.add(action, "disk", before, after, cold=running and not hot, key=target, field=field,
                     live=running and hot)
    if desired.interfaces is not None:
        desired.interfaces = _resolve_nics(desired.interfaces, have.interfaces, plan, running)


def _plan_seed(plan, desired, actual, facts, running):
    have = actual.spec if actual is not None else None
    disks = desired.disks if desired.disks is not None else have.disks
    desired.seed = dict(facts.seed)
    desired.seed["target"] = (have and have.seed and have.seed["target"]) or \
        _free_target("sd", [d.target for d in disks])
    before = have.seed["sha256"] if have and have.seed else None
    if before != desired.seed["sha256"] or not os.path.exists(desired.seed["path"]):
        plan.add("update" if before else "create", "cloud-init seed", before, desired.seed["sha256"],
                 cold=running, key=desired.seed["path"])


def _free_target(prefix, used):
    i = 0
    while target_name(prefix, i) in used:
        i += 1
    return target_name(prefix, i)


def _resolve_disks(wanted, have, facts, seed):
    """Match desired disks to existing ones; returns (resolved disks, changes).

    A disk is the same disk when its target (if given) or its source matches. Fields the user
    did not set keep libvirt's values; new disks get defaults and the next free target.
    """
    remaining = list(have)
    used = {d.target for d in have}
    if seed:
        used.add(seed.get("target"))
    resolved, changes = [], []
    for want in wanted:
        match = next((d for d in remaining if want.target and d.target == want.target), None) \
            or next((d for d in remaining if d.key() == want.key()), None)
        if match is None:
            new = want.copy()
            new.device = new.device or "disk"
            new.bus = new.bus or ("sata" if new.device == "cdrom" else "virtio")
            new.format = new.format or facts.volume_formats.get(want.key()) or (
                "qcow2" if (new.path or "").endswith(".qcow2") else "raw")
            if new.device == "cdrom" and new.readonly is None:
                new.readonly = True
            new.target = new.target or _free_target(_BUS_PREFIX.get(new.bus, "sd"), used)
            used.add(new.target)
            new.size = None
            resolved.append(new)
            hot = new.bus in HOTPLUG_BUSES and new.device == "disk"
            changes.append(("add", new.target, None, None, _disk_view(new), hot))
            continue
        remaining.remove(match)
        merged = match.copy()
        if want.key() != match.key():
            merged.path, merged.pool, merged.volume = want.path, want.pool, want.volume
            changes.append(("update", match.target, "source", _source(match), _source(want), False))
        for field in DiskSpec.COMPARED:
            value = getattr(want, field)
            if value is not None and value != getattr(match, field):
                changes.append(("update", match.target, field, getattr(match, field), value, False))
                setattr(merged, field, value)
        resolved.append(merged)
    for gone in remaining:
        hot = gone.bus in HOTPLUG_BUSES and gone.device == "disk"
        changes.append(("remove", gone.target, None, _disk_view(gone), None, hot))
    return resolved, changes


def _source(disk):
    return disk.path if disk.pool is None else "%s/%s" % (disk.pool, disk.volume)


def _disk_view(disk):
    view = disk.as_dict()
    view.pop("size", None)
    return view


def _resolve_nics(wanted, have, plan, running):
    """Match desired interfaces to existing ones: by MAC, then by source, then in order.

    An interface without a MAC in the request keeps the MAC libvirt gave it.
    """
    remaining = list(have)
    pairs = [None] * len(wanted)
    rules = (lambda w, h: w.mac is not None and w.mac == h.mac,
             lambda w, h: w.mac is None and w.source() == h.source(),
             lambda w, h: w.mac is None)
    for rule in rules:
        for i, want in enumerate(wanted):
            if pairs[i] is None:
                pairs[i] = next((h for h in remaining if rule(want, h)), None)
                if pairs[i] is not None:
                    remaining.remove(pairs[i])
    resolved = []
    for want, match in zip(wanted, pairs):
        if match is None:
            new = want.copy()
            new.model = new.model or "virtio"
            resolved.append(new)
            plan.add("add", "interface", None, new.as_dict(), key="on %s %s" % want.source(), live=running)
            continue
        merged = match.copy()
        if want.source() != match.source():
            plan.add("update", "interface", "%s %s" % match.source(), "%s %s" % want.source(), cold=running,
                     key=match.mac, field="source")
            merged.network, merged.bridge = want.network, want.bridge
        if want.model is not None and want.model != match.model:
            plan.add("update", "interface", match.model, want.model, cold=running, key=match.mac, field="model")
            merged.model = want.model
        resolved.append(merged)
    for gone in remaining:
        plan.add("remove", "interface", gone.as_dict(), None, key=gone.mac, live=running)
    return resolved


# --- applying --------------------------------------------------------------------------------
def _device_xml(node):
    node = copy.deepcopy(node)
    for child in node.findall("address") + node.findall("alias"):
        node.remove(child)
    return tostring(node)


# --- the kind ----------------------------------------------------------------------------------
class GuestKind(_kind.Kind):
    """A virtual machine (QEMU/KVM)."""

    noun, type, scheme = "guest", "vm", "qemu"
    rebooted_by = ("restart", "stop")
    argument_spec = ARGUMENT_SPEC
    Actual = Actual
    XML = DomainXML
    Request = GuestRequest

    request_from_params = staticmethod(request_from_params)

    def inspect(self, client, req, actual):
        """Check the request against the host, read-only; raises InvalidSpec before anything is touched."""
        facts = Facts()
        if req.state == "absent":
            if actual is not None and req.remove_storage:
                with (req.usage or _usage.Scope()).connections(client) as clients:
                    _inspect_removal(client, clients, req, actual, facts)
            return facts
        spec = req.spec
        if req.console_warning:
            facts.warnings.append(req.console_warning)
        local = is_local(client.uri)
        known = {d.key() for d in actual.spec.disks} if actual else set()
        for disk in spec.disks or []:
            if disk.pool is not None:
                _inspect_volume(client, disk, disk.key() in known, facts)
            elif local and not os.path.exists(disk.path):
                raise InvalidSpec("Disk %s does not exist on the host" % disk.path)
        _kind.inspect_interfaces(client, spec.interfaces, local)
        for field in ("kernel", "initrd"):
            path = getattr(spec, field)
            if path and local and not os.path.exists(path):
                raise InvalidSpec("%s %s does not exist on the host" % (field, path))
        if spec.serial_log and local:
            _inspect_file_path("serial_log", spec.serial_log)
        if actual is None:
            facts.virt_type = _virt_type(client, req, facts)
        _inspect_machine(client, req, actual, facts)
        _inspect_cpu_model(client, req, actual, facts)
        if req.cloud_init is not None:
            if not local:
                raise InvalidSpec("cloud_init writes its seed on the host itself: run the task on the "
                                  "host with a local URI, not %s" % client.uri)
            ci = req.cloud_init
            files = _cloudinit.seed_files(req.name, ci.get("user_data"), ci.get("meta_data"),
                                          ci.get("network_config"))
            path = seed_path(req.name, ci)
            _inspect_file_path("cloud_init.path", path)
            recorded = bool(actual and actual.spec.seed and actual.spec.seed["path"] == path)
            _cloudinit.check_ours(path, req.name, "overwrite", InvalidSpec, recorded)
            facts.seed = {"path": path, "sha256": _cloudinit.digest(files), "files": files, "recorded": recorded}
        return facts

    def apply_live(self, client, dom, plan, desired):
        """Bring the running guest in line with what was just defined, where that can be done live."""
        warnings = []
        live = DomainXML(parse(client.domain_xml(dom, inactive=False)))
        persistent = DomainXML(parse(client.domain_xml(dom, inactive=True)))
        attached = {i.mac for i in live.interfaces}
        for change in plan.changes:
            if not change.extra.get("live"):
                continue
            try:
                if change.is_("memory"):
                    client.set_memory_live(dom, desired.memory * 1024)
                elif change.is_("vcpus"):
                    client.set_vcpus_live(dom, desired.vcpus)
                elif change.is_("disk", "add"):
                    node = next(d for d in persistent.disks if d.target == change.key)
                    client.attach_live(dom, _device_xml(node.node), change.target)
                elif change.is_("disk", "remove"):
                    node = next(d for d in live.disks if d.target == change.key)
                    client.detach_live(dom, _device_xml(node.node), change.target)
                elif change.is_("interface", "add"):
                    node = next(i for i in persistent.interfaces if i.mac not in attached)
                    attached.add(node.mac)
                    client.attach_live(dom, _device_xml(node.node), "interface %s" % node.mac)
                elif change.is_("interface", "remove"):
                    node = next(i for i in live.interfaces if (i.mac or "").lower() == change.key)
                    client.detach_live(dom, _device_xml(node.node), change.target)
            except (LibvirtCallError, StopIteration) as e:
                # The persistent definition already has the change: it takes effect at the next boot.
                change.cold = True
                warnings.append("%s could not be applied live (%s); it applies at the next restart"
                                % (change.target, e))
        return warnings

    def stop(self, client, dom, req):
        if client.domain_state(dom) == "paused":
            client.resume(dom)
        deadline = time.monotonic() + req.shutdown_timeout
        while client.domain_state(dom) != "stopped":
            left = deadline - time.monotonic()
            if left <= 0:
                if not req.force:
                    raise WaitTimeout("Timed out after %ss waiting for guest %s to shut down (ACPI); "
                                      "set force: true to power it off" % (req.shutdown_timeout, dom.name()))
                client.destroy(dom)
                return
            try:
                # A guest still booting drops the ACPI event, so it is sent again while we wait.
                client.shutdown(dom)
            except LibvirtCallError:
                if client.domain_state(dom) == "stopped":
                    return
                raise
            try:
                client.wait_state(dom, "stopped", min(SHUTDOWN_RESEND, left), "shut down (ACPI)")
            except WaitTimeout:
                pass

    def lookup(self, client, name):
        return client.domain(name)

    def defines(self, change):
        return super().defines(change) and not change.is_("volume")

    def new_xml(self):
        return DomainXML(parse(NEW_DOMAIN))

    def define(self, client, xml, name):
        return client.define(xml, name)

    def plan_spec(self, plan, req, desired, actual, facts, running):
        for pool, vol, size, fmt in facts.new_volumes:
            plan.add("create", "volume", after="%d bytes, %s" % (size, fmt), key="%s/%s" % (pool, vol))
        if actual is None:
            _new_guest_defaults(desired, facts)
            plan.add("define", self.noun, key=req.name)
        else:
            _plan_definition(plan, desired, actual, facts, running)
        if facts.seed:
            _plan_seed(plan, desired, actual, facts, running)
        if facts.new_volumes:
            desired.created = sorted(set((actual.spec.created if actual else []) +
                                         ["%s/%s" % (p, v) for p, v, _s, _f in facts.new_volumes]))

    def plan_removal(self, plan, req, actual, facts):
        if req.remove_storage:
            for vol in facts.removable:
                plan.add("delete", "volume", key=vol)
            if facts.removable_seed:
                plan.add("delete", "cloud-init seed", key=facts.removable_seed)

    def prepare_apply(self, client, req, plan, desired, actual, facts):
        for pool, vol, size, fmt in facts.new_volumes:
            xml = ("<volume><name>%s</name><capacity unit='bytes'>%d</capacity><allocation>0</allocation>"
                   "<target><format type='%s'/></target></volume>") % (quote(vol), size, fmt)
            client.create_volume(client.pool(pool), xml, vol)
        if plan.on("cloud-init seed"):
            _cloudinit.write_seed(facts.seed["path"], facts.seed["files"], req.name, facts.seed["recorded"])

    def remove(self, client, plan, actual):
        client.undefine(actual.dom, nvram=actual.spec.firmware == "uefi")
        for change in plan.of("delete"):
            if change.is_("cloud-init seed"):
                _cloudinit.remove_seed(change.key, actual.dom.name())
                continue
            pool_name, vol_name = change.key.split("/", 1)
            pool = client.pool(pool_name)
            vol = client.volume(pool, vol_name) if pool is not None else None
            if vol is not None:
                client.delete_volume(vol)

    def managed_extra(self, req):
        return {"cloud_init"} if req.cloud_init is not None else set()

    def describe_more(self, client, actual, out, details):
        """details: disk capacity and allocation, and the interfaces' addresses from DHCP leases
        or the guest agent."""
        if not details:
            return
        for disk in out.get("disks", []):
            sizes = client.block_info(actual.dom, disk["target"])
            if sizes:
                disk["capacity"], disk["allocation"] = sizes
        self.add_addresses(client, actual, out, actual.active)


GUEST = GuestKind()


def list_guests(client, names=None, tags=None):
    """Every guest on the host, or those named, or those carrying all the given tags."""
    return GUEST.list(client, names, tags)


__all__ = ["GuestRequest", "request_from_params", "plan_guest", "read_guest", "list_guests",
           "GUEST", "DebvirtError"]
