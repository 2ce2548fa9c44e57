# -*- coding: utf-8 -*-
# Copyright: debvirt.cluster developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The import of libvirt and the opening of connections: the one event loop that carries
libvirt's keepalive probes, and an open that gives up on a daemon that never answers. Only
_client uses it; every call on a connection goes through _client's LibvirtClient."""

from __future__ import annotations

import threading
import traceback

from ansible_collections.debvirt.cluster.plugins.module_utils._errors import LibvirtCallError

try:
    import libvirt
except ImportError:
    libvirt = None
    LIBVIRT_IMPORT_ERROR = traceback.format_exc()
else:
    LIBVIRT_IMPORT_ERROR = None

    # libvirt prints every error to stderr unless a handler swallows it; errors reach us as exceptions.
    libvirt.registerErrorHandler(lambda ctx, err: None, None)

# Debian's python3-libvirt has the LXC-specific calls; a build without them only loses a check.
try:
    import libvirt_lxc  # pylint: disable=unused-import  # _client asks through it
except ImportError:
    libvirt_lxc = None

# How long libvirtd may take to answer, by default: to open a connection, and (through libvirt's
# keepalive) for every call after it.
ANSWER_TIMEOUT = 30
# Keepalive probes go out every KEEPALIVE_INTERVAL s; a daemon that misses enough of them in a
# row to span the answer timeout has its connection closed, which fails the call that waits.
KEEPALIVE_INTERVAL = 5

_event_loop_lock = threading.Lock()
_event_loop_started = False


def run_event_loop():
    """libvirt sends keepalive probes from an event loop; a process has one, started once,
    before its first connection (libvirt binds a connection to the loop present at open)."""
    global _event_loop_started
    with _event_loop_lock:
        if _event_loop_started:
            return
        libvirt.virEventRegisterDefaultImpl()

        def loop():
            while True:
                libvirt.virEventRunDefaultImpl()

        threading.Thread(target=loop, name="libvirt-events", daemon=True).start()
        _event_loop_started = True


def open_connection(uri, timeout):
    """libvirt.open(uri), or a LibvirtCallError when the daemon does not answer within timeout s
    (libvirt's own errors are raised as they are, for the client to translate).
    A stopped (SIGSTOP) or hung daemon still accepts the socket and then never answers: the open
    runs in a thread of its own, abandoned when the time is up."""
    out = {}

    def connect():
        try:
            out["conn"] = libvirt.open(uri)
        except BaseException as e:  # handed to the caller's thread, which raises it
            out["error"] = e

    worker = threading.Thread(target=connect, name="libvirt-open", daemon=True)
    worker.start()
    worker.join(timeout)
    if worker.is_alive():
        raise LibvirtCallError("Failed to connect to %s: libvirtd did not answer within %ds (is it hung or "
                               "stopped?)" % (uri, timeout))
    if "error" in out:
        raise out["error"]
    conn = out["conn"]
    try:
        # count + 1 intervals pass before the connection is given up.
        conn.setKeepAlive(KEEPALIVE_INTERVAL, max(1, timeout // KEEPALIVE_INTERVAL - 1))
    except libvirt.libvirtError:
        pass  # a driver that runs in this process (test:///) has no daemon to lose
    return conn
