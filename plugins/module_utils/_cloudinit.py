# -*- coding: utf-8 -*-
# Copyright: debvirt.cluster developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""NoCloud seed images for cloud-init, made with the host's ISO tool (genisoimage or xorriso)."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import stat
import subprocess
import tempfile

from ansible_collections.debvirt.cluster.plugins.module_utils._errors import DebvirtError

_TOOLS = (("genisoimage",), ("xorrisofs",), ("xorriso", "-as", "mkisofs"), ("mkisofs",))
# ECMA-119 8.4: the primary volume descriptor is logical sector 16 of 2048 bytes; its application
# identifier is byte positions 575 to 702 (counted from 1), padded with spaces.
_PVD_OFFSET = 16 * 2048
_APP_ID = slice(574, 702)
_VOLUME_ID = slice(40, 72)
_MARK = "DEBVIRT.CLUSTER SEED "


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


def mark(name):
    """The application identifier of our seed for guest name. xorriso upper-cases the field and
    keeps only ISO 9660's a-characters, so the guest is named by a digest, in capitals."""
    return _MARK + hashlib.sha256(name.encode()).hexdigest()[:32].upper()


def why_not_ours(path, name, recorded=False):
    """None when path is free or holds the seed made for guest name; else why the module may
    neither overwrite nor delete what is there. recorded: the guest's own definition names path
    as its seed."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return None
    except OSError as e:
        return "it cannot be examined (%s)" % e.strerror
    if stat.S_ISLNK(st.st_mode):
        return "it is a symlink"
    if stat.S_ISDIR(st.st_mode):
        return "it is a directory"
    if not stat.S_ISREG(st.st_mode):
        return "it is not a regular file"
    try:
        # O_NONBLOCK: should a FIFO be swapped in since lstat, opening it must not hang.
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as e:
        return "it cannot be read (%s)" % e.strerror
    with os.fdopen(fd, "rb") as f:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return "it is not a regular file"
        f.seek(_PVD_OFFSET)
        pvd = f.read(2048)
    if pvd[:6] != b"\x01CD001":
        return "it is not an ISO image, so not a seed the module made"
    app_id = pvd[_APP_ID].decode("ascii", "replace").strip()
    if app_id == mark(name):
        return None
    # Seeds of releases before the mark carry none; the guest's definition, which only the module
    # writes, naming this path vouches for an unmarked cidata ISO there.
    if recorded and not app_id and pvd[_VOLUME_ID].decode("ascii", "replace").strip().lower() == "cidata":
        return None
    if app_id.startswith(_MARK):
        return "it is the cloud-init seed of another guest"
    return "it does not carry the mark of a seed the module made"


def check_ours(path, name, doing, error=DebvirtError, recorded=False):
    """Raise error unless path is free or holds guest name's own seed; doing: "overwrite" or
    "delete". Planning passes InvalidSpec: nothing is touched yet."""
    why = why_not_ours(path, name, recorded)
    if why is not None:
        raise error("Refusing to %s %s, the cloud-init seed path of guest %s: %s. The module never "
                    "touches a file it did not make; move it away or give another cloud_init.path"
                    % (doing, path, name, why))


def remove_seed(path, name, recorded=True):
    """Delete guest name's seed at path, if there is one; anything else there is refused."""
    check_ours(path, name, "delete", recorded=recorded)
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


def write_seed(path, files, name, recorded=False):
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
        cmd = list(tool) + ["-quiet", "-output", tmp, "-volid", "cidata", "-A", mark(name), "-joliet", "-rock"]
        cmd += [os.path.join(workdir, fname) for fname in sorted(files)]
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            raise DebvirtError("Failed to build the cloud-init seed %s: %s" % (path, proc.stderr.strip()))
        # Checked again just before: planning saw the path a while ago. rename() replaces a
        # symlink rather than writing through it.
        check_ours(path, name, "overwrite", recorded=recorded)
        os.rename(tmp, path)
        tmp = None
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
        if tmp is not None and os.path.exists(tmp):
            os.unlink(tmp)
