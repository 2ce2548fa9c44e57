"""Inventory of a cluster's guests: debvirt.cluster.guests against community.libvirt.libvirt.

Usage:  make bench          (or: . tests/env.sh && python bench/inventory.py)

Environment:
  N                     guests to define across the lab's three nodes (default 50)
  RUNNING               how many of them run (default 3, one a node; TCG guests cost CPU)
  ROUNDS                rounds (default 3); the table shows medians, the raw figures follow
  DEBVIRT_LAB_STATE     the lab's state directory (default /var/lib/debvirt-lab)
  DEBVIRT_TEST_IMAGES   where the test guest's vmlinux and initrd.img are
  DEBVIRT_BENCH_VENV, DEBVIRT_BENCH_ANSIBLE   the venv of the `ansible` package (see guests.py)

Needs the lab (tests/lab/lab.sh up, three nodes); skipped with a message otherwise. Defines N
guests dvbench-inv-1..N round robin on dvlab1..3 (RUNNING of them started), then in every
round times `ansible-inventory --list` over the three nodes with
  - debvirt.cluster.guests, cache flushed (cold) and then from its cache (warm);
  - community.libvirt.libvirt, one inventory source a node (it reads one URI and has no cache).
Both read the nodes' QEMU driver through the same libssh URIs with the lab's key and pinned host
keys. Checks that each lists the same N guests, prints medians and ratios, writes them to
bench/results/<UTC time>-inventory.txt, and removes the guests at the end (also on failure or
SIGTERM). Takes the lab test lock while it runs.
"""

from __future__ import annotations

import json
import os
import re
import resource
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common.lab import INVENTORY, STATE, LabError, node, take_lab_lock
from common.venv import BENCH_VENV, COMMUNITY_LIBVIRT_VERSION, CORE_VERSION, ensure_bench_venv, python_of

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
KEY = STATE / "id_ed25519"
KNOWN_HOSTS = STATE / "known_hosts"
IMAGES = Path(os.environ.get("DEBVIRT_TEST_IMAGES") or "/var/cache/debvirt-test/guest")
N = int(os.environ.get("N") or 50)
RUNNING = int(os.environ.get("RUNNING") or 3)
ROUNDS = int(os.environ.get("ROUNDS") or 3)
PREFIX = "dvbench-inv-"
NODES = {"dvlab1": "10.77.0.11", "dvlab2": "10.77.0.12", "dvlab3": "10.77.0.13"}
# The debvirt side runs the ansible-core of the venv this script runs in (make bench runs it
# with the project venv's python); DEBVIRT_VENV wins when it is set, as tests/env.sh does.
DEBVIRT_BIN = Path(os.environ["DEBVIRT_VENV"]) / "bin" if os.environ.get("DEBVIRT_VENV") \
    else Path(sys.executable).parent

# The test image's guest, with the metadata the guest module writes: a tag and a description.
DOMAIN = """<domain type='qemu'>
  <name>%(name)s</name>
  <metadata>
    <dv:guest xmlns:dv='urn:debvirt:cluster:1'>
      <dv:description>bench guest %(index)d</dv:description><dv:tag>bench</dv:tag><dv:tag>%(parity)s</dv:tag>
    </dv:guest>
  </metadata>
  <memory unit='MiB'>96</memory>
  <vcpu>1</vcpu>
  <os>
    <type arch='x86_64'>hvm</type>
    <kernel>%(images)s/vmlinux</kernel>
    <initrd>%(images)s/initrd.img</initrd>
    <cmdline>console=ttyS0 no_timer_check</cmdline>
  </os>
  <features><acpi/></features>
  <devices>
    <serial type='pty'/>
    <console type='pty'/>
  </devices>
</domain>
"""


class BenchError(Exception):
    pass


def log(msg):
    print("[bench %s] %s" % (time.strftime("%H:%M:%S"), msg), file=sys.stderr, flush=True)


def placement():
    """{node: [(index, name)]}, round robin."""
    hosts = list(NODES)
    out = {h: [] for h in hosts}
    for i in range(1, N + 1):
        out[hosts[(i - 1) % len(hosts)]].append((i, "%s%d" % (PREFIX, i)))
    return out


def cleanup():
    script = ("for d in $(virsh list --all --name | grep '^%s'); do virsh destroy $d >/dev/null 2>&1; "
              "virsh undefine $d >/dev/null 2>&1; done; rm -rf /tmp/dvbench-inv-xml; "
              "virsh list --all --name | grep -c '^%s'" % (PREFIX, PREFIX))
    left = 0
    for host in NODES:
        proc = node(host, script, check=False)
        left += int((proc.stdout.strip() or "0").splitlines()[-1])
    if left:
        raise BenchError("%d %s* guests could not be removed" % (left, PREFIX))


def setup():
    for host, guests in placement().items():
        node(host, "mkdir -p %s /tmp/dvbench-inv-xml" % IMAGES)
        for name in ("vmlinux", "initrd.img"):
            with open(IMAGES / name, "rb") as f:
                node(host, "cat > %s/%s.tmp && chmod 0644 %s/%s.tmp && mv -f %s/%s.tmp %s/%s"
                     % ((IMAGES, name) * 4), data=f.read())
        # One ssh a node: the definitions as a shell archive of here-documents.
        parts = []
        for index, name in guests:
            xml = DOMAIN % {"name": name, "index": index, "images": IMAGES,
                            "parity": "even" if index % 2 == 0 else "odd"}
            parts.append("cat > /tmp/dvbench-inv-xml/%s.xml <<'XML'\n%sXML\nvirsh define "
                         "/tmp/dvbench-inv-xml/%s.xml >/dev/null || exit 1" % (name, xml, name))
        node(host, "sh -s", data="\n".join(parts) + "\nrm -rf /tmp/dvbench-inv-xml\n")
    running = ["%s%d" % (PREFIX, i) for i in range(1, min(RUNNING, N) + 1)]
    for i, name in enumerate(running):
        node(list(NODES)[i % len(NODES)], "virsh start %s >/dev/null" % name)
    return running


def libvirt_names():
    names = []
    for host in NODES:
        names += [n for n in node(host, "virsh list --all --name").stdout.split() if n.startswith(PREFIX)]
    return sorted(names)


def uri(address):
    # libssh: the only transport that takes a known_hosts file from the URI (the ssh command
    # would check ~/.ssh/known_hosts, where the lab's nodes are not).
    return ("qemu+libssh://root@%s/system?keyfile=%s&known_hosts=%s&known_hosts_verify=normal&sshauth=privkey"
            % (address, KEY, KNOWN_HOSTS))


def write_sources(work):
    debvirt = work / "debvirt"
    debvirt.mkdir()
    (debvirt / "lab.guests.yml").write_text(
        "plugin: debvirt.cluster.guests\n"
        "members: [%s]\n"
        # community.libvirt reads the QEMU driver only: so does this side.
        "types: [vm]\n"
        "ssh_keyfile: %s\n"
        "ssh_known_hosts: %s\n"
        "cache: true\n"
        "cache_plugin: ansible.builtin.jsonfile\n"
        "cache_connection: %s\n" % (", ".join(NODES.values()), KEY, KNOWN_HOSTS, work / "cache"))
    community = work / "community"
    community.mkdir()
    for host, address in NODES.items():
        (community / ("%s.libvirt.yml" % host)).write_text(
            "plugin: community.libvirt.libvirt\nuri: \"%s\"\ninventory_hostname: name\n" % uri(address))
    return debvirt, community


def list_inventory(bin_dir, collections, source, work, *extra):
    """(wall s, CPU s, hosts, the plugin's own read time in s or None) of one
    ansible-inventory --list."""
    env = dict(os.environ)
    env.update({
        "PATH": "%s:%s" % (bin_dir, env.get("PATH", "")),
        "VIRTUAL_ENV": str(bin_dir.parent),
        "ANSIBLE_COLLECTIONS_PATH": str(collections),
        # The same (empty) configuration for both sides, whatever ansible.cfg lies around.
        "ANSIBLE_CONFIG": str(work / "ansible.cfg"),
        # A source that fails must fail the run, not leave a short listing.
        "ANSIBLE_INVENTORY_UNPARSED_FAILED": "true",
        "ANSIBLE_NOCOLOR": "1",
    })
    listing = work / "listing.json"
    listing.unlink(missing_ok=True)
    # -vv: debvirt's plugin says how long its reading took; the listing goes to a file, since
    # ansible's messages share stdout with it.
    cmd = [str(bin_dir / "ansible-inventory"), "-i", str(source), "--list", "-vv", "--output", str(listing), *extra]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.monotonic()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=work, check=False)
    wall = time.monotonic() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    if proc.returncode != 0 or "did not answer" in proc.stdout + proc.stderr:
        raise BenchError("%s failed (rc %d): %s" % (" ".join(cmd[1:]), proc.returncode,
                                                    (proc.stdout + proc.stderr)[-1500:]))
    hosts = sorted(h for h in json.loads(listing.read_text())["_meta"]["hostvars"] if h.startswith(PREFIX))
    read = re.search(r"guests read from \d+ connections in ([0-9.]+) s", proc.stdout)
    return wall, cpu, hosts, float(read.group(1)) if read else None


def median(values):
    return statistics.median(values) if values else float("nan")


SIDES = (("debvirt-cold", "debvirt.cluster.guests, cache flushed"),
         ("debvirt-warm", "debvirt.cluster.guests, from its cache"),
         ("community", "community.libvirt.libvirt, 3 sources"))
RATIOS = (("debvirt-cold", "community"), ("debvirt-warm", "community"), ("debvirt-warm", "debvirt-cold"))


def report(runs, reads, info, running, same):
    lines = ["ansible-inventory --list over the lab's 3 nodes, %d guests (%d running), %d round(s), medians"
             % (N, len(running), ROUNDS), ""]
    lines.append("%-42s %10s %10s" % ("", "wall (s)", "CPU (s)"))
    for key, title in SIDES:
        lines.append("%-42s %10.2f %10.2f" % (title, median([r[0] for r in runs[key]]),
                                              median([r[1] for r in runs[key]])))
    lines.append("")
    for a, b in RATIOS:
        wall = median([r[0] for r in runs[a]]) / median([r[0] for r in runs[b]])
        cpu = median([r[1] for r in runs[a]]) / median([r[1] for r in runs[b]])
        lines.append("ratio %-36s %10.2f %10.2f" % ("%s / %s" % (a, b), wall, cpu))
    lines.append("")
    lines.append("debvirt's reading of the 3 nodes, cold (its own measure, in the -vv output): median %.2f s"
                 % median(reads))
    lines.append("same %d hosts on every side and in libvirt: %s" % (N, "yes" if same else "NO"))
    lines.append("")
    lines.append("every run (wall s / CPU s):")
    for key, _title in SIDES:
        lines.append("  %-13s %s" % (key, "; ".join("%.2f / %.2f" % (w, c) for w, c in runs[key])))
    lines.append("")
    lines += ["%s: %s" % (k, v) for k, v in info.items()]
    return "\n".join(lines) + "\n"


def terminated(*_):
    log("terminated; removing the %s* guests" % PREFIX)
    sys.exit(143)


def main():
    if not INVENTORY.exists():
        print("skipped: no lab (tests/lab/lab.sh up)")
        return 0
    if N < 1 or ROUNDS < 1:
        raise BenchError("N and ROUNDS must be at least 1")
    signal.signal(signal.SIGTERM, terminated)
    # The lab's tests reset the nodes' SSH trust and corosync, and reboot nodes: take turns.
    _lock = take_lab_lock(log)  # held until main() returns
    for host in NODES:
        if node(host, "virsh version", check=False).returncode != 0:
            print("skipped: %s does not answer (tests/lab/lab.sh up)" % host)
            return 0
    subprocess.run([str(ROOT / "tests" / "images" / "build-test-guest.sh"), str(IMAGES)], check=True,
                   capture_output=True)
    community_bin = ensure_bench_venv(log)
    info = {
        "debvirt ansible-core": python_of(DEBVIRT_BIN, CORE_VERSION),
        "community ansible-core": python_of(community_bin, CORE_VERSION),
        "community.libvirt": python_of(community_bin, COMMUNITY_LIBVIRT_VERSION),
        "libvirt (nodes)": node("dvlab1", "virsh version --daemon | sed -n 's/^Running against daemon: *//p'").stdout.strip(),
        "CPUs": str(os.cpu_count()),
        "venv of community.libvirt": str(BENCH_VENV),
    }
    runs = {key: [] for key, _title in SIDES}
    reads = []
    same = True
    text = None
    with tempfile.TemporaryDirectory(prefix="dvbench-inv-") as tmp:
        work = Path(tmp)
        # A private copy of the working tree: other runs re-sync or remove the shared one.
        build = Path(subprocess.run([str(ROOT / "tests" / "sync-collection.sh")], capture_output=True, text=True,
                                    check=True, env=dict(os.environ, DEBVIRT_BUILD=str(work / "build"))).stdout.strip())
        empty = work / "no-collections"
        empty.mkdir()
        (work / "ansible.cfg").write_text("[defaults]\n")
        debvirt_src, community_src = write_sources(work)
        cleanup()
        try:
            log("defining %d guests on %s (%d running)" % (N, ", ".join(NODES), RUNNING))
            running = setup()
            expected = libvirt_names()
            if len(expected) != N:
                raise BenchError("libvirt has %d %s* guests, not %d" % (len(expected), PREFIX, N))
            for round_no in range(1, ROUNDS + 1):
                # The side that goes first alternates, so that none always meets warmer nodes.
                order = ["debvirt", "community"] if round_no % 2 else ["community", "debvirt"]
                for side in order:
                    if side == "debvirt":
                        cold = list_inventory(DEBVIRT_BIN, build.parents[2], debvirt_src, work, "--flush-cache")
                        warm = list_inventory(DEBVIRT_BIN, build.parents[2], debvirt_src, work)
                        results = (("debvirt-cold", cold), ("debvirt-warm", warm))
                    else:
                        results = (("community", list_inventory(community_bin, empty, community_src, work)),)
                    for key, (wall, cpu, hosts, read) in results:
                        runs[key].append((wall, cpu))
                        if read is not None:
                            reads.append(read)
                        same = same and hosts == expected
                        log("round %d %-13s %.2f s wall, %.2f s CPU, %d hosts" % (round_no, key, wall, cpu, len(hosts)))
            text = report(runs, reads, info, running, same)
        finally:
            cleanup()
    print(text, end="")
    results = HERE / "results"
    results.mkdir(exist_ok=True)
    path = results / time.strftime("%Y%m%dT%H%M%SZ-inventory.txt", time.gmtime())
    path.write_text(text)
    print("(written to %s)" % path.relative_to(ROOT))
    return 0 if same else 1


if __name__ == "__main__":
    try:
        sys.exit(main())
    except (BenchError, LabError) as e:
        log("ERROR: %s" % e)
        sys.exit(1)
