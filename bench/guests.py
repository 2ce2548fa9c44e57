"""Converge N guests with debvirt.cluster (a guest loop, and role guests) and community.libvirt.

Usage:  make bench [N=20]          (or: . tests/env.sh && python bench/guests.py)

Environment:
  N                     guests per side (default 20)
  SIDES                 which sides to run, comma-separated, of guest (a loop of
                        debvirt.cluster.guest), community (community.libvirt.virt) and fleet
                        (role debvirt.cluster.guests: one debvirt.cluster.fleet call);
                        default all three
  ROUNDS                how many times to measure each side (default 1); the table shows
                        the median, the raw figures follow it
  DEBVIRT_BENCH_VENV    the venv of the `ansible` package that carries community.libvirt
                        (default /var/cache/debvirt-dev/bench-venv; created when missing)
  DEBVIRT_BENCH_ANSIBLE pip requirement for that venv (default ansible==12.*)
  LIBVIRT_DEFAULT_URI   the libvirt to use (default qemu:///system)
  DEBVIRT_TEST_IMAGES   where the test guest's vmlinux and initrd.img are

See bench/README.md for what is measured and how to read it.
"""

from __future__ import annotations

import difflib
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
from dataclasses import dataclass, field
from pathlib import Path

from common.venv import BENCH_VENV, COMMUNITY_LIBVIRT_VERSION, CORE_VERSION, ensure_bench_venv, python_of

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
PREFIX = "dvbench-"
MARKER = b"DEBVIRT-TEST-GUEST-UP"
LOG_DIR = Path("/var/log/libvirt/qemu")

N = int(os.environ.get("N") or 20)
SIDE_KEYS = ("guest", "community", "fleet")
SIDES = [k.strip() for k in (os.environ.get("SIDES") or ",".join(SIDE_KEYS)).split(",") if k.strip()]
ROUNDS = int(os.environ.get("ROUNDS") or 1)
URI = os.environ.get("LIBVIRT_DEFAULT_URI") or "qemu:///system"
IMAGES = Path(os.environ.get("DEBVIRT_TEST_IMAGES") or "/var/cache/debvirt-test/guest")
# The debvirt side runs the ansible-core of the venv this script runs in (make bench runs it
# with the project venv's python); DEBVIRT_VENV wins when it is set, as tests/env.sh does.
DEBVIRT_BIN = Path(os.environ["DEBVIRT_VENV"]) / "bin" if os.environ.get("DEBVIRT_VENV") \
    else Path(sys.executable).parent

# One spec for every side. The serial log is not part of the comparison as such: it lets the
# benchmark see every guest really boot, and wait for the boots to finish before the rerun.
SPEC_VARS = {
    "bench_uri": URI,
    "bench_memory": 128,
    "bench_vcpus": 1,
    "bench_kernel": str(IMAGES / "vmlinux"),
    "bench_initrd": str(IMAGES / "initrd.img"),
    # no_timer_check: on a loaded machine a TCG guest's kernel can miss its IO-APIC timer
    # check and panic ("IO-APIC + timer doesn't work!"); seen in 4 of 120 boots here.
    "bench_cmdline": "console=ttyS0 no_timer_check",
    "bench_log_dir": str(LOG_DIR),
}

PLAY_HEAD = """\
- name: {title}
  hosts: localhost
  connection: local
  gather_facts: false
  vars:
    # Each side's modules run under its own venv's python, which has libvirt-python and lxml.
    ansible_python_interpreter: "{{{{ ansible_playbook_python }}}}"
  {body}:
"""

# One task looped over the guests: a module call per guest.
DEBVIRT_PLAYBOOK = PLAY_HEAD.format(title="dvbench debvirt.cluster.guest", body="tasks") + """\
    - name: Guest defined and running
      debvirt.cluster.guest:
        name: "{{ guest }}"
        uri: "{{ bench_uri }}"
        state: running
        virt_type: qemu
        memory: "{{ bench_memory }}"
        vcpus: "{{ bench_vcpus }}"
        kernel: "{{ bench_kernel }}"
        initrd: "{{ bench_initrd }}"
        cmdline: "{{ bench_cmdline }}"
        serial_log: "{{ bench_log_dir }}/{{ guest }}.serial.log"
      loop: "{{ bench_guests }}"
      loop_control:
        loop_var: guest
"""

# community.libvirt's documented idiom: define from a template, then a state task.
COMMUNITY_PLAYBOOK = PLAY_HEAD.format(title="dvbench community.libvirt.virt", body="tasks") + """\
    - name: Guest defined
      community.libvirt.virt:
        command: define
        xml: "{{ lookup('ansible.builtin.template', 'domain.xml.j2') }}"
        uri: "{{ bench_uri }}"
      loop: "{{ bench_guests }}"
      loop_control:
        loop_var: guest
    - name: Guest running
      community.libvirt.virt:
        name: "{{ guest }}"
        state: running
        uri: "{{ bench_uri }}"
      loop: "{{ bench_guests }}"
      loop_control:
        loop_var: guest
"""

# The bulk path of issue 7, as a user writes it: the guest options as data (host_vars), and
# role guests, which converges them in one debvirt.cluster.fleet call. bench_specs holds the
# spec above once per guest, already expanded, as an inventory would.
FLEET_PLAYBOOK = PLAY_HEAD.format(title="dvbench debvirt.cluster.guests", body="roles") + """\
    - role: debvirt.cluster.guests
      vars:
        guests_list: "{{ bench_specs }}"
        guests_uri: "{{ bench_uri }}"
"""

# The domain that debvirt.cluster.guest defines for the spec above, written out by hand as a
# community.libvirt user must. What libvirt fills in by itself (machine type, CPU model,
# emulator, controllers, PCI addresses, memballoon) is left to it on both sides; the script
# checks at the end that both sides got the same definition.
DOMAIN_TEMPLATE = """\
<domain type='qemu'>
  <name>{{ guest }}</name>
  <memory unit='MiB'>{{ bench_memory }}</memory>
  <vcpu>{{ bench_vcpus }}</vcpu>
  <os>
    <type arch='x86_64'>hvm</type>
    <kernel>{{ bench_kernel }}</kernel>
    <initrd>{{ bench_initrd }}</initrd>
    <cmdline>{{ bench_cmdline }}</cmdline>
  </os>
  <features>
    <acpi/>
    <apic/>
  </features>
  <devices>
    <serial type='pty'>
      <log file='{{ bench_log_dir }}/{{ guest }}.serial.log' append='on'/>
    </serial>
    <console type='pty'/>
    <rng model='virtio'>
      <backend model='random'>/dev/urandom</backend>
    </rng>
  </devices>
</domain>
"""

# The recap counts a looped task once however many items changed; this callback counts items,
# and the guests inside a fleet call's result, and times each task, into the JSON file named by
# DVBENCH_TALLY.
TALLY_CALLBACK = '''\
from __future__ import annotations

import json
import os
import time

from ansible.plugins.callback import CallbackBase


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "aggregate"
    CALLBACK_NAME = "dvbench_tally"
    CALLBACK_NEEDS_ENABLED = True

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._tasks = []
        self._started = None

    def v2_playbook_on_task_start(self, task, is_conditional):
        self._started = time.monotonic()
        self._tasks.append({"name": task.get_name(), "action": task.action, "seconds": None,
                            "items": 0, "changed": 0, "failed": 0,
                            "guests": 0, "guests_changed": 0})

    def _count(self, result, failed):
        # ansible-core 2.19 renamed _result to result; older cores only have _result.
        res = getattr(result, "result", None)
        if res is None:
            res = result._result
        entry = self._tasks[-1]
        entry["seconds"] = time.monotonic() - self._started
        items = res.get("results") if isinstance(res.get("results"), list) else [res]
        for item in items:
            entry["items"] += 1
            entry["changed"] += bool(item.get("changed"))
            entry["failed"] += bool(failed and item is res or item.get("failed"))
            guests = item.get("guests")
            if isinstance(guests, dict):
                entry["guests"] += len(guests)
                entry["guests_changed"] += sum(bool(g.get("changed")) for g in guests.values())

    def v2_runner_on_ok(self, result):
        self._count(result, False)

    def v2_runner_on_failed(self, result, ignore_errors=False):
        self._count(result, True)

    def v2_runner_on_unreachable(self, result):
        self._count(result, True)

    def v2_playbook_on_stats(self, stats):
        with open(os.environ["DVBENCH_TALLY"], "w", encoding="utf-8") as f:
            json.dump(self._tasks, f)
'''


class BenchError(Exception):
    pass


@dataclass
class Run:
    seconds: float
    tasks: list[dict]
    ok: bool
    load: str
    cpu: float

    def _calls(self) -> list[dict]:
        # A role's argument check runs on the controller: no module call, nothing to change.
        return [t for t in self.tasks if not t.get("action", "").endswith("validate_argument_spec")]

    @property
    def items(self) -> int:
        return sum(t["items"] for t in self._calls())

    @property
    def changed(self) -> int:
        return sum(t["changed"] for t in self._calls())

    @property
    def guests(self) -> int:
        return sum(t.get("guests", 0) for t in self.tasks)

    @property
    def guests_changed(self) -> int:
        return sum(t.get("guests_changed", 0) for t in self.tasks)


@dataclass
class Side:
    key: str
    title: str
    short: str
    prefix: str
    bin_dir: Path
    collections_path: str
    playbook: str
    converge: list[Run] = field(default_factory=list)
    rerun: list[Run] = field(default_factory=list)
    definition: str | None = None
    notes: list[str] = field(default_factory=list)

    def names(self) -> list[str]:
        return [f"{self.prefix}{i}" for i in range(1, N + 1)]

    def play_vars(self) -> dict:
        names = self.names()
        if self.key != "fleet":
            return SPEC_VARS | {"bench_guests": names}
        # The loop's task options with each guest's values filled in: the list a user keeps in
        # host_vars. Rendering it here keeps templating of N items out of the fleet's time.
        specs = [{"name": name, "state": "running", "virt_type": "qemu",
                  "memory": SPEC_VARS["bench_memory"], "vcpus": SPEC_VARS["bench_vcpus"],
                  "kernel": SPEC_VARS["bench_kernel"], "initrd": SPEC_VARS["bench_initrd"],
                  "cmdline": SPEC_VARS["bench_cmdline"],
                  "serial_log": f"{SPEC_VARS['bench_log_dir']}/{name}.serial.log"}
                 for name in names]
        return SPEC_VARS | {"bench_specs": specs}


def sh(*cmd: str, check: bool = True, **kw) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, check=check, text=True, capture_output=True, **kw)


def virsh(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    return sh("virsh", "-q", "-c", URI, *args, check=check)


def log(msg: str) -> None:
    print(f"bench: {msg}", file=sys.stderr, flush=True)


def bench_domains() -> list[str]:
    out = virsh("list", "--all", "--name").stdout
    return [n for n in out.split() if n.startswith(PREFIX)]


def cleanup() -> None:
    """Remove every dvbench-* domain and its logs, whoever left them."""
    for name in bench_domains():
        virsh("destroy", name, check=False)
        # A bench domain has no NVRAM, snapshots or managed save, but a half-finished run of
        # some future version might: these flags make undefine succeed in any case.
        if virsh("undefine", "--managed-save", "--snapshots-metadata", "--nvram", name,
                 check=False).returncode != 0:
            virsh("undefine", name, check=False)
    left = bench_domains()
    # Stale serial logs would show the boot marker of an earlier guest (the logs append).
    for path in LOG_DIR.glob(f"{PREFIX}*.log"):
        path.unlink(missing_ok=True)
    if left:
        raise BenchError(f"could not remove domains: {' '.join(left)}")


def versions() -> dict[str, str]:
    core, coll = CORE_VERSION, COMMUNITY_LIBVIRT_VERSION
    git = sh("git", "-C", str(ROOT), "describe", "--always", "--dirty", check=False)
    virsh_v = virsh("version", check=False).stdout
    lib = re.search(r"Using library: libvirt (\S+)", virsh_v)
    qemu = re.search(r"Running hypervisor: QEMU (\S+)", virsh_v)
    return {
        "debvirt ansible-core": python_of(DEBVIRT_BIN, core),
        "community ansible-core": python_of(BENCH_VENV / "bin", core),
        "community.libvirt": python_of(BENCH_VENV / "bin", coll),
        "debvirt.cluster": f"{git.stdout.strip() or '?'} (the working tree when the run began)",
        "libvirt": lib.group(1) if lib else "?",
        "QEMU": qemu.group(1) if qemu else "?",
        "CPUs": str(os.cpu_count()),
    }


def kill_group(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        return
    proc.wait()
    # Members outlive the leader for a moment; the cleanup must not race a dying module.
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            os.killpg(proc.pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.1)


def run_playbook(side: Side, work: Path, label: str) -> Run:
    tally = work / f"{side.key}-{label}.json"
    out = work / f"{side.key}-{label}.log"
    env = dict(os.environ)
    env.update({
        "PATH": f"{side.bin_dir}:{env.get('PATH', '')}",
        "VIRTUAL_ENV": str(side.bin_dir.parent),
        # Only this side's collections: debvirt's build copy, or none beyond what the
        # `ansible` package carries (so ~/.ansible/collections cannot shadow community.libvirt).
        "ANSIBLE_COLLECTIONS_PATH": side.collections_path,
        # The same (empty) configuration for both sides, whatever ansible.cfg lies around.
        "ANSIBLE_CONFIG": str(work / "ansible.cfg"),
        "ANSIBLE_CALLBACK_PLUGINS": str(work / "callback_plugins"),
        "ANSIBLE_CALLBACKS_ENABLED": "dvbench_tally",
        "ANSIBLE_LOCALHOST_WARNING": "false",
        "ANSIBLE_INVENTORY_UNPARSED_WARNING": "false",
        "ANSIBLE_NOCOLOR": "1",
        "DVBENCH_TALLY": str(tally),
    })
    cmd = [str(side.bin_dir / "ansible-playbook"), "-e", f"@{work / 'vars.json'}",
           str(work / f"{side.key}.yml")]
    load = loadavg().split()[0]
    # CPU time of ansible-playbook and everything it ran (workers, modules): the cost of the
    # tool itself, which other work on a shared machine barely disturbs, unlike
    # wall time. libvirtd's and QEMU's share is not in it; that work is the same on both sides.
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    with out.open("w") as f:
        started = time.monotonic()
        # Its own process group, so that an interrupted benchmark can stop ansible's workers
        # and modules too: killing ansible-playbook alone let a worker define a guest after
        # the cleanup had run.
        proc = subprocess.Popen(cmd, cwd=work, env=env, stdout=f, stderr=subprocess.STDOUT,
                                start_new_session=True)
        try:
            rc = proc.wait()
        except BaseException:
            kill_group(proc)
            raise
        seconds = time.monotonic() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    tasks = json.loads(tally.read_text()) if tally.exists() else []
    ok = rc == 0 and all(t["failed"] == 0 for t in tasks)
    if not ok:
        tail = out.read_text().splitlines()[-30:]
        log(f"{side.title} {label} failed (rc {rc}); end of its output:\n  " + "\n  ".join(tail))
    return Run(seconds, tasks, ok, load, cpu)


def wait_booted(side: Side, timeout: float) -> list[str]:
    """Wait until every guest printed the test image's marker; return what it saw otherwise.

    Not timed. It proves that the guests really run, and lets the boots finish before the
    rerun, so that the rerun measures the modules and not N guests booting under TCG beside
    them. A guest that does not boot is reported, not fatal: the module's work (a defined,
    running domain) is done either way, and on a loaded machine a TCG boot can fail.
    """
    pending = set(side.names())
    deadline = time.monotonic() + timeout
    while pending and time.monotonic() < deadline:
        for name in sorted(pending):
            try:
                if MARKER in (LOG_DIR / f"{name}.serial.log").read_bytes():
                    pending.discard(name)
            except FileNotFoundError:
                pass
        time.sleep(0.5)
    notes = []
    for name in sorted(pending):
        state = virsh("domstate", "--reason", name, check=False).stdout.strip() or "?"
        try:
            lines = (LOG_DIR / f"{name}.serial.log").read_text(errors="replace").splitlines()
        except FileNotFoundError:
            lines = []
        last = lines[-1].strip() if lines else "(no serial output)"
        notes.append(f"{name} printed no {MARKER.decode()} within {timeout:.0f} s "
                     f"(state: {state}; {len(lines)} serial lines, last: {last})")
    return notes


def check_running(side: Side) -> None:
    out = virsh("list", "--state-running", "--name").stdout.split()
    missing = sorted(set(side.names()) - set(out))
    if missing:
        raise BenchError(f"{side.title}: not running after the rerun: {' '.join(missing)}")


def definition(side: Side) -> str:
    """The persistent definition of the side's first guest, with what must differ masked."""
    xml = virsh("dumpxml", "--inactive", f"{side.prefix}1").stdout
    xml = re.sub(r"<uuid>[^<]*</uuid>", "<uuid/>", xml)
    # The fleet records which fleet a guest belongs to, so that purging never touches others;
    # any other metadata it wrote would remain and show in the comparison.
    xml = re.sub(r"\s*<dv:fleet>[^<]*</dv:fleet>", "", xml)
    xml = re.sub(r"\s*<dv:guest [^>]*>\s*</dv:guest>", "", xml)
    xml = re.sub(r"\s*<metadata>\s*</metadata>", "", xml)
    return xml.replace(side.prefix, PREFIX + "X-")


def measure(side: Side, work: Path, round_no: int) -> None:
    cleanup()
    log(f"round {round_no}: {side.title}: converge {N} guests")
    first = run_playbook(side, work, f"r{round_no}-converge")
    side.converge.append(first)
    if not first.ok:
        raise BenchError(f"{side.title}: the first converge failed")
    side.notes += [f"round {round_no}: {n}" for n in wait_booted(side, timeout=60 + 6 * N)]
    log(f"round {round_no}: {side.title}: no-op rerun")
    again = run_playbook(side, work, f"r{round_no}-rerun")
    side.rerun.append(again)
    if not again.ok:
        raise BenchError(f"{side.title}: the rerun failed")
    check_running(side)
    side.definition = side.definition or definition(side)
    cleanup()


def fmt_s(runs: list[Run], attr: str = "seconds") -> str:
    return f"{statistics.median(getattr(r, attr) for r in runs):.1f} s" if runs else "-"


def fmt_ratio(a: list[Run], b: list[Run], attr: str = "seconds") -> str:
    if not a or not b:
        return "-"
    mid_a = statistics.median(getattr(r, attr) for r in a)
    mid_b = statistics.median(getattr(r, attr) for r in b)
    return f"{mid_a / mid_b:.2f}"


def fmt_changed(runs: list[Run]) -> str:
    if not runs:
        return "-"
    # A fleet call reports each guest inside one item; its guests are what can change.
    counts = sorted({(r.changed, r.items, r.guests_changed, r.guests) for r in runs})
    return ", ".join(f"{gc}/{g} guests in {c}/{i} calls" if g else f"{c}/{i} items"
                     for c, i, gc, g in counts)


def fmt_tasks(run: Run) -> str:
    def name(t: dict) -> str:
        if t.get("action", "").endswith("validate_argument_spec"):
            return "argument check"
        return t["name"].split(" : ", 1)[-1]

    return "; ".join(f"{name(t)} {t['seconds'] or 0:.1f} s, {t['changed']}/{t['items']} changed"
                     + (f" ({t['guests_changed']}/{t['guests']} guests)" if t.get("guests") else "")
                     for t in run.tasks)


# Each ratio is left / right; below 1 means the left side is cheaper.
RATIOS = (("guest", "community"), ("fleet", "community"), ("fleet", "guest"))


def report(sides: dict[str, Side], info: dict[str, str], load: tuple[str, str]) -> str:
    shown = [sides[k] for k in SIDE_KEYS if k in sides]
    ratios = [(sides[a], sides[b]) for a, b in RATIOS if a in sides and b in sides]

    def row(label: str, runs_of, attr: str | None = None) -> tuple[str, ...]:
        if attr is None:
            return (label, *(fmt_changed(runs_of(s)) for s in shown), *[""] * len(ratios))
        return (label, *(fmt_s(runs_of(s), attr) for s in shown),
                *(fmt_ratio(runs_of(a), runs_of(b), attr) for a, b in ratios))

    rows = [
        ("", *(s.title for s in shown), *(f"ratio {a.short}/{b.short}" for a, b in ratios)),
        row("time, converge", lambda s: s.converge, "seconds"),
        row("time, no-op rerun", lambda s: s.rerun, "seconds"),
        row("CPU, converge", lambda s: s.converge, "cpu"),
        row("CPU, no-op rerun", lambda s: s.rerun, "cpu"),
        row("changed, converge", lambda s: s.converge),
        row("changed, no-op rerun", lambda s: s.rerun),
    ]
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = [
        f"Converge {N} guests (qemu, 128 MiB, 1 vCPU, direct kernel boot, no disks), "
        f"{ROUNDS} round(s), medians.",
        "Time: wall time of ansible-playbook. CPU: CPU time of ansible-playbook and all it ran.",
        "",
    ]
    for r in rows:
        lines.append("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip())
    lines += ["", "Every run (load = 1-min load average at its start; items = module calls):"]
    for side in shown:
        for label, runs in (("converge", side.converge), ("rerun", side.rerun)):
            for i, run in enumerate(runs, 1):
                lines.append(f"  {side.title:18} {label:8} round {i}: {run.seconds:5.1f} s, "
                             f"CPU {run.cpu:5.1f} s, load {run.load:5}  ({fmt_tasks(run)})")
    defined = [s for s in shown if s.definition]
    if len(defined) > 1:
        ref = defined[0]
        lines += ["", f"Same persistent definition as {ref.title} (uuid, name and fleet "
                      f"membership masked):"]
        for other in defined[1:]:
            same = other.definition == ref.definition
            lines.append(f"  {other.title}: {'yes' if same else 'NO (see below)'}")
        for other in defined[1:]:
            if other.definition != ref.definition:
                lines += difflib.unified_diff(ref.definition.splitlines(),
                                              other.definition.splitlines(),
                                              ref.key, other.key, lineterm="")
    notes = [n for s in shown for n in s.notes]
    if notes:
        lines += ["", "Guests that did not boot (the rerun ran anyway):"]
        lines += [f"  {n}" for n in notes]
    lines += ["", f"Load average before / after: {load[0]} / {load[1]}"]
    lines += [f"{k}: {v}" for k, v in info.items()]
    return "\n".join(lines) + "\n"


def loadavg() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def terminated(*_) -> None:
    log("terminated; removing the dvbench-* guests")
    sys.exit(143)


def main() -> int:
    if N < 1 or ROUNDS < 1:
        raise BenchError("N and ROUNDS must be at least 1")
    unknown = sorted(set(SIDES) - set(SIDE_KEYS))
    if unknown or not SIDES:
        raise BenchError(f"SIDES: unknown {' '.join(unknown) or '(none given)'}; "
                         f"choose from {','.join(SIDE_KEYS)}")
    # SIGTERM (a CI timeout, a killed make) must still reach the cleanup in `finally`.
    signal.signal(signal.SIGTERM, terminated)
    if virsh("version", check=False).returncode != 0:
        raise BenchError(f"libvirt at {URI} does not answer; run `make setup`")
    sh(str(ROOT / "tests" / "images" / "build-test-guest.sh"), str(IMAGES))
    ensure_bench_venv(log)
    info = versions()

    every = {
        "guest": Side("guest", "debvirt guest loop", "guest-loop", f"{PREFIX}a-", DEBVIRT_BIN,
                      "", DEBVIRT_PLAYBOOK),
        "community": Side("community", "community.libvirt", "community", f"{PREFIX}b-",
                          BENCH_VENV / "bin", "", COMMUNITY_PLAYBOOK),
        "fleet": Side("fleet", "debvirt fleet", "fleet", f"{PREFIX}c-", DEBVIRT_BIN,
                      "", FLEET_PLAYBOOK),
    }
    sides = {k: every[k] for k in SIDE_KEYS if k in SIDES}
    load_before = loadavg()
    failed = None
    with tempfile.TemporaryDirectory(prefix="dvbench-") as tmp:
        work = Path(tmp)
        # A private copy of the working tree rather than the shared $DEBVIRT_BUILD: other runs
        # on this machine re-sync or remove that one, and one measurement must see one tree.
        build = Path(sh(str(ROOT / "tests" / "sync-collection.sh"),
                        env=dict(os.environ, DEBVIRT_BUILD=str(work / "build"))).stdout.strip())
        empty = work / "no-collections"
        empty.mkdir()
        for side in sides.values():
            side.collections_path = str(empty if side.key == "community" else build.parents[2])
        (work / "ansible.cfg").write_text("[defaults]\n")
        (work / "callback_plugins").mkdir()
        (work / "callback_plugins" / "dvbench_tally.py").write_text(TALLY_CALLBACK)
        (work / "domain.xml.j2").write_text(DOMAIN_TEMPLATE)
        for side in sides.values():
            (work / f"{side.key}.yml").write_text(side.playbook)
        try:
            for round_no in range(1, ROUNDS + 1):
                # Rotate who goes first, so that no side always meets a warmer cache.
                keys = list(sides)
                shift = (round_no - 1) % len(keys)
                for key in keys[shift:] + keys[:shift]:
                    side = sides[key]
                    (work / "vars.json").write_text(json.dumps(side.play_vars()))
                    measure(side, work, round_no)
        except BenchError as e:
            failed = str(e)
        finally:
            try:
                cleanup()
            except BenchError as e:
                failed = failed or str(e)

    text = report(sides, info, (load_before, loadavg()))
    if failed:
        text += f"\nINCOMPLETE: {failed}\n"
    results = HERE / "results"
    results.mkdir(exist_ok=True)
    path = results / time.strftime("%Y%m%dT%H%M%SZ.txt", time.gmtime())
    path.write_text(text)
    print(text, end="")
    print(f"(written to {path.relative_to(ROOT)})")
    return 1 if failed else 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except BenchError as e:
        log(f"ERROR: {e}")
        sys.exit(1)
    except subprocess.CalledProcessError as e:
        log(f"ERROR: {' '.join(map(str, e.cmd))} failed:\n{e.stderr or ''}")
        sys.exit(1)
