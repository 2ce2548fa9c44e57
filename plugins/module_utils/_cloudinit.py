# -*- coding: utf-8 -*-
# Copyright: debvirt.cluster developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""NoCloud seed images for cloud-init, made with the host's ISO tool (genisoimage or xorriso)."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import tempfile

from ansible_collections.debvirt.cluster.plugins.module_utils._errors import DebvirtError

_TOOLS = (("genisoimage",), ("xorrisofs",), ("xorriso", "-as", "mkisofs"), ("mkisofs",))


def seed_files(name, user_data=None, meta_data=None, network_config=None):
    """The files of a seed, as text; dicts become YAML (as JSON, which YAML reads)."""
    def render(value, header=""):
        if isinstance(value, (dict, list)):
            return header + json.dumps(value, indent=2, sort_keys=True) + "\n"
        return value

    files = {
        "meta-data": render(meta_data) if meta_data is not None
        else "instance-id: %s\nlocal-hostname: %s\n" % (name, name),
        "user-data": render(user_data, "#cloud-config\n") if user_data is not None else "#cloud-config\n{}\n",
    }
    if network_config is not None:
        files["network-config"] = render(network_config)
    return files


def digest(files):
    """A digest of the content, not of the ISO: the ISO carries timestamps."""
    h = hashlib.sha256()
    for fname in sorted(files):
        h.update(fname.encode() + b"\0" + files[fname].encode() + b"\0")
    return h.hexdigest()


def write_seed(path, files):
    tool = next((t for t in _TOOLS if shutil.which(t[0])), None)
    if tool is None:
        raise DebvirtError("Failed to build the cloud-init seed %s: no ISO tool on the host "
                           "(install genisoimage or xorriso)" % path)
    workdir = tempfile.mkdtemp(prefix="debvirt-seed-")
    tmp = None
    try:
        for fname, content in files.items():
            with open(os.path.join(workdir, fname), "w") as f:
                f.write(content)
        # The seed may hold secrets: its file is born 0600 under a name of this run's own, and
        # libvirt hands it to QEMU's user when the guest starts.
        fd, tmp = tempfile.mkstemp(dir=os.path.dirname(path), prefix=".%s." % os.path.basename(path))
        os.close(fd)
        cmd = list(tool) + ["-quiet", "-output", tmp, "-volid", "cidata", "-joliet", "-rock"]
        cmd += [os.path.join(workdir, fname) for fname in sorted(files)]
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            raise DebvirtError("Failed to build the cloud-init seed %s: %s" % (path, proc.stderr.strip()))
        os.rename(tmp, path)
        tmp = None
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
        if tmp is not None and os.path.exists(tmp):
            os.unlink(tmp)
