# -*- coding: utf-8 -*-
# Copyright: debvirt.cluster developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""One run at a time per guest on a host.

A converge reads a definition, plans and defines the result: two runs on the same guest would
each define what they read, and the last would silently win (or both would create its volumes).
The lock is an flock on a file named after the guest's kind and name, in a runtime directory only
its owner can enter; the kernel drops it when the holder exits, however it exits.
"""

from __future__ import annotations

import errno
import fcntl
import os
import stat
import time
from contextlib import contextmanager
from urllib.parse import quote

from ansible_collections.debvirt.cluster.plugins.module_utils._errors import DebvirtError, WaitTimeout

RUN_DIR = "/run/debvirt/locks"
# A converge may build a template or download an image while it holds the lock.
TIMEOUT = 3600
_POLL = 0.2


def lock_dir():
    """root's runtime directory, or the user's own for a run that is not root's."""
    if os.geteuid() == 0:
        return RUN_DIR
    base = os.environ.get("XDG_RUNTIME_DIR") or "/tmp"
    return os.path.join(base, "debvirt-%d-locks" % os.geteuid())


def _private_dir(path):
    """path as a directory that only this user can enter, made so where missing."""
    parent = os.path.dirname(path)
    if not os.path.isdir(parent):
        os.makedirs(parent, mode=0o755, exist_ok=True)
    try:
        os.mkdir(path, 0o700)
    except FileExistsError:
        pass
    st = os.lstat(path)
    if not stat.S_ISDIR(st.st_mode) or st.st_uid != os.geteuid() or st.st_mode & 0o077:
        raise DebvirtError("The lock directory %s is not a directory that only user %d can enter: "
                           "remove it and run again" % (path, os.geteuid()))


@contextmanager
def held(noun, name, directory=None, timeout=TIMEOUT):
    """Hold the lock of the named guest (noun "guest", "container") while the block runs."""
    directory = directory or lock_dir()
    _private_dir(directory)
    path = os.path.join(directory, "%s-%s.lock" % (noun, quote(name, safe="")))
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    try:
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except OSError as e:
                if e.errno not in (errno.EAGAIN, errno.EACCES):
                    raise DebvirtError("Failed to lock %s: %s" % (path, e.strerror)) from None
            if time.monotonic() >= deadline:
                raise WaitTimeout("Timed out after %ss waiting for another run converging %s %s on this "
                                  "host to finish (it holds %s)" % (timeout, noun, name, path))
            time.sleep(_POLL)
        yield
    finally:
        # Closing releases the lock; the file stays, so that no run locks a file another unlinked.
        os.close(fd)
