"""Live migration: debvirt.cluster.migration against a raw `virsh migrate --live`.

Usage:  make bench          (or: . tests/env.sh && python bench/migration.py)

Environment:
  ROUNDS               rounds (default 3); each round moves the guest there and back with
                       each side, so every side makes 2 x ROUNDS migrations
  TRANSPORT            ssh (default) or tls: the module's transport option, and for virsh
                       qemu+tls:// with --tls (the cluster set up with cluster_tls: true)
  DEBVIRT_LAB_STATE    the lab's state directory (default /var/lib/debvirt-lab)
  DEBVIRT_TEST_IMAGES  where the test guest's vmlinux and initrd.img are

Needs the lab (tests/lab/lab.sh up) with dvlab1 and dvlab2 in one cluster (role cluster: the
SSH trust between them); skipped with a message otherwise. One heartbeat guest of 256 MiB,
dvtest-mig-bench, moves between the same two nodes in the same run; the sides alternate which
one goes first. For each migration it records libvirt's own figures for the completed job
(domjobinfo --completed on the destination: total time and downtime) and the wall time of the
command (for the module: the whole ansible call, with its start-up, the members' lookup and the
preflight). Medians, the ratio module / virsh, and the raw figures go to stdout and
bench/results/<UTC time>-migration.txt.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
LAB = ROOT / "tests" / "lab" / "lab.sh"
STATE = Path(os.environ.get("DEBVIRT_LAB_STATE") or "/var/lib/debvirt-lab")
INVENTORY = STATE / "inventory.ini"
IMAGES = Path(os.environ.get("DEBVIRT_TEST_IMAGES") or "/var/cache/debvirt-test/guest")
ROUNDS = int(os.environ.get("ROUNDS") or 3)
TRANSPORT = os.environ.get("TRANSPORT") or "ssh"
GUEST = "dvtest-mig-bench"
NODES = {"dvlab1": "10.77.0.11", "dvlab2": "10.77.0.12"}
LOG = "/var/log/libvirt/qemu/%s.serial.log" % GUEST

DOMAIN = """<domain type='qemu'>
  <name>%(name)s</name>
  <memory unit='MiB'>256</memory>
  <vcpu>1</vcpu>
  <os>
    <type arch='x86_64'>hvm</type>
    <kernel>%(images)s/vmlinux</kernel>
    <initrd>%(images)s/initrd.img</initrd>
    <cmdline>console=ttyS0</cmdline>
  </os>
  <features><acpi/></features>
  <devices>
    <serial type='pty'><log file='%(log)s' append='on'/></serial>
    <console type='pty'/>
  </devices>
</domain>
"""


def log(msg):
    print("[bench %s] %s" % (time.strftime("%H:%M:%S"), msg), file=sys.stderr, flush=True)


def node(host, command, data=None, check=True):
    proc = subprocess.run([str(LAB), "ssh", host, command], input=data, capture_output=True,
                          text=isinstance(data, str) or data is None, check=False)
    if check and proc.returncode != 0:
        raise RuntimeError("%s: %s failed: %s" % (host, command, proc.stderr.strip()))
    return proc


def where():
    for host in NODES:
        if node(host, "virsh domstate %s" % GUEST, check=False).stdout.strip().startswith("running"):
            return host
    return None


def cleanup():
    for host in NODES:
        node(host, "virsh destroy %s; virsh undefine %s; rm -f %s" % (GUEST, GUEST, LOG), check=False)


def setup():
    for host in NODES:
        node(host, "mkdir -p %s" % IMAGES)
        for name in ("vmlinux", "initrd.img"):
            with open(IMAGES / name, "rb") as f:
                node(host, "cat > %s/%s.tmp && chmod 0644 %s/%s.tmp && mv -f %s/%s.tmp %s/%s"
                     % ((IMAGES, name) * 4), data=f.read())
    node("dvlab1", "cat > /tmp/%s.xml && virsh define /tmp/%s.xml && virsh start %s" % (GUEST, GUEST, GUEST),
         data=DOMAIN % {"name": GUEST, "images": IMAGES, "log": LOG})
    deadline = time.monotonic() + 60
    while "heartbeat" not in node("dvlab1", "cat %s" % LOG, check=False).stdout:
        if time.monotonic() > deadline:
            raise RuntimeError("the guest did not boot within 60 s")
        time.sleep(1)


def completed_job(host):
    """libvirt's figures for the migration that just ended, from the destination."""
    out = node(host, "virsh domjobinfo --completed %s" % GUEST).stdout
    fields = {}
    for line in out.splitlines():
        key, _sep, value = line.partition(":")
        fields[key.strip()] = value.strip()

    def ms(key):
        match = re.match(r"(\d+)", fields.get(key, ""))
        return int(match.group(1)) if match else None
    return ms("Time elapsed"), ms("Total downtime")


def via_module(source, target):
    args = json.dumps({"name": GUEST, "target": target, "transport": TRANSPORT})
    t0 = time.monotonic()
    proc = subprocess.run(["ansible", source, "-i", str(INVENTORY), "-m", "debvirt.cluster.migration",
                           "-a", args, "-o"], capture_output=True, text=True, check=False,
                          env=dict(os.environ, ANSIBLE_STDOUT_CALLBACK="default", ANSIBLE_NOCOLOR="1"))
    wall = time.monotonic() - t0
    lines = [line for line in proc.stdout.splitlines() if " => {" in line]
    result = json.loads(lines[-1].split(" => ", 1)[1]) if lines else {"failed": True, "msg": proc.stderr}
    if result.get("failed") or not result.get("changed"):
        raise RuntimeError("module %s -> %s: %s" % (source, target, result.get("msg") or result))
    stats = result["stats"]
    return stats["time_elapsed_ms"], stats["downtime_ms"], wall


def dest_uri(target):
    return "qemu+tls://%s/system" % target if TRANSPORT == "tls" else "qemu+ssh://root@%s/system?no_tty=1" % target


def via_virsh(source, target):
    cmd = ("virsh migrate --live --persistent --undefinesource %s '%s' --migrateuri tcp://%s%s"
           % (GUEST, dest_uri(target), NODES[target], " --tls" if TRANSPORT == "tls" else ""))
    t0 = time.monotonic()
    node(source, cmd)
    wall = time.monotonic() - t0
    elapsed, downtime = completed_job(target)
    return elapsed, downtime, wall


def median(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def report(runs):
    lines = ["live migration of a 256 MiB TCG guest between dvlab1 and dvlab2 over %s, %d rounds "
             "(%d migrations a side)" % (TRANSPORT, ROUNDS, len(runs["module"])), ""]
    lines.append("%-26s %12s %12s %10s" % ("median", "module", "virsh", "ratio"))
    for i, label in enumerate(("total time, libvirt (ms)", "downtime, libvirt (ms)", "wall time (s)")):
        a = median([r[i] for r in runs["module"]])
        b = median([r[i] for r in runs["virsh"]])
        ratio = "%.2f" % (a / b) if a is not None and b else "-"
        fmt = "%12.2f" if i == 2 else "%12.0f"
        lines.append("%-26s %s %s %10s" % (label, fmt % a if a is not None else "%12s" % "-",
                                           fmt % b if b is not None else "%12s" % "-", ratio))
    lines.append("")
    lines.append("raw (direction, total ms, downtime ms, wall s):")
    for side in ("module", "virsh"):
        lines.append("  %s: %s" % (side, "; ".join("%s %s %s %.2f" % (d, t, dt, w)
                                                   for (t, dt, w, d) in runs[side])))
    return "\n".join(lines)


def main():
    if TRANSPORT not in ("ssh", "tls"):
        print("TRANSPORT must be ssh or tls, not %s" % TRANSPORT)
        return 2
    if not INVENTORY.exists():
        print("skipped: no lab (tests/lab/lab.sh up)")
        return 0
    # The lab's tests reset the nodes' SSH trust and corosync: take turns with them.
    if not os.environ.get("DEBVIRT_LAB_TEST_LOCKED"):
        lock = open("/run/debvirt-lab-test.lock", "w")  # pylint: disable=consider-using-with
        log("waiting for /run/debvirt-lab-test.lock (lab tests take turns)")
        fcntl.flock(lock, fcntl.LOCK_EX)
    trust = node("dvlab1", "virsh -c '%s' version" % dest_uri("dvlab2"), check=False)
    if trust.returncode != 0:
        print("skipped: dvlab1 cannot reach dvlab2's libvirt over %s (role cluster sets it up%s)"
              % (TRANSPORT, ", with cluster_tls: true" if TRANSPORT == "tls" else ""))
        return 0
    runs = {"module": [], "virsh": []}
    cleanup()
    try:
        setup()
        for round_no in range(ROUNDS):
            sides = ["module", "virsh"] if round_no % 2 == 0 else ["virsh", "module"]
            for side in sides:
                for source, target in (("dvlab1", "dvlab2"), ("dvlab2", "dvlab1")):
                    if where() != source:
                        raise RuntimeError("the guest is not running on %s" % source)
                    run = via_module if side == "module" else via_virsh
                    elapsed, downtime, wall = run(source, target)
                    runs[side].append((elapsed, downtime, wall, "%s>%s" % (source[-1], target[-1])))
                    log("round %d %-6s %s -> %s: %s ms, downtime %s ms, wall %.2f s"
                        % (round_no + 1, side, source, target, elapsed, downtime, wall))
        beats = node(where() or "dvlab1", "cat %s" % LOG, check=False).stdout
        restarted = beats.count("DEBVIRT-TEST-GUEST-UP") > 1
    finally:
        cleanup()
    text = report(runs)
    if restarted:
        text += "\nWARNING: the guest booted more than once"
    print(text)
    results = HERE / "results"
    results.mkdir(exist_ok=True)
    suffix = "-migration-tls.txt" if TRANSPORT == "tls" else "-migration.txt"
    path = results / time.strftime("%Y%m%dT%H%M%SZ" + suffix, time.gmtime())
    path.write_text(text + "\n")
    print("written to %s" % path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
