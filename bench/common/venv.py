"""The venv of the `ansible` package from PyPI, which carries community.libvirt.

Benchmarks compare debvirt.cluster against community.libvirt there. It is kept apart from the
project's venv on purpose: the `ansible` package pulls its own ansible-core, which must not
replace the one the project tests with.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

BENCH_VENV = Path(os.environ.get("DEBVIRT_BENCH_VENV") or "/var/cache/debvirt-dev/bench-venv")
BENCH_ANSIBLE = os.environ.get("DEBVIRT_BENCH_ANSIBLE") or "ansible==12.*"


def ensure_bench_venv(log) -> Path:
    """The venv's bin directory; the venv is created (about a minute) when missing or stale."""
    py = BENCH_VENV / "bin" / "python"
    # The real interpreter, not this venv's: a venv made from a venv's python breaks when the
    # outer one is rebuilt.
    base = getattr(sys, "_base_executable", sys.executable)
    want = f"{BENCH_ANSIBLE} libvirt-python lxml | {sys.version.split()[0]}"
    stamp = BENCH_VENV / ".dvbench-stamp"
    have = stamp.read_text().strip() if stamp.exists() else ""
    if have == want and subprocess.run(
            [str(py), "-c", "import ansible_collections.community.libvirt, libvirt, lxml"],
            capture_output=True, check=False).returncode == 0:
        return py.parent
    log(f"creating {BENCH_VENV} with {BENCH_ANSIBLE} (once; takes about a minute)")
    stamp.unlink(missing_ok=True)
    subprocess.run([base, "-m", "venv", "--clear", str(BENCH_VENV)], check=True)
    subprocess.run([str(py), "-m", "pip", "install", "-q", BENCH_ANSIBLE, "libvirt-python",
                    "lxml"], check=True)
    stamp.write_text(want + "\n")
    return py.parent


def python_of(bin_dir: Path, code: str) -> str:
    """What code prints when run by the python of a venv's bin directory."""
    return subprocess.run([str(bin_dir / "python"), "-c", code], capture_output=True, text=True,
                          check=True).stdout.strip()


CORE_VERSION = "from ansible.release import __version__ as v; print(v)"
COMMUNITY_LIBVIRT_VERSION = (
    "import json, pathlib, ansible_collections.community.libvirt as m; "
    "print(json.loads((pathlib.Path(list(m.__path__)[0]) / 'MANIFEST.json')"
    ".read_text())['collection_info']['version'])")
