"""The lab (tests/lab/lab.sh) as benchmarks use it: commands on its nodes, and its test lock."""

from __future__ import annotations

import fcntl
import os
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
LAB = ROOT / "tests" / "lab" / "lab.sh"
STATE = Path(os.environ.get("DEBVIRT_LAB_STATE") or "/var/lib/debvirt-lab")
INVENTORY = STATE / "inventory.ini"
LOCK = "/run/debvirt-lab-test.lock"


class LabError(Exception):
    pass


def node(host, command, data=None, check=True):
    """command run by the shell of a lab node; data (str or bytes) is its standard input."""
    proc = subprocess.run([str(LAB), "ssh", host, command], input=data, capture_output=True,
                          text=isinstance(data, str) or data is None, check=False)
    if check and proc.returncode != 0:
        raise LabError("%s: %s failed: %s" % (host, command[:80], proc.stderr.strip()))
    return proc


def take_lab_lock(log):
    """Wait for the lab test lock, held until the process ends; a no-op under a lab test that
    holds it already (DEBVIRT_LAB_TEST_LOCKED)."""
    if os.environ.get("DEBVIRT_LAB_TEST_LOCKED"):
        return None
    lock = open(LOCK, "w")  # pylint: disable=consider-using-with
    log("waiting for %s (lab tests take turns)" % LOCK)
    fcntl.flock(lock, fcntl.LOCK_EX)
    return lock
