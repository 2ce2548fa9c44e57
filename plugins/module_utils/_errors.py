# -*- coding: utf-8 -*-
# Copyright: debvirt.cluster developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The one exception tree of the collection; only a module's main() turns these into fail_json."""

from __future__ import annotations


class DebvirtError(Exception):
    """Base of every error the collection raises on purpose."""

    def __init__(self, msg, **details):
        super().__init__(msg)
        self.msg = msg
        self.details = details


class InvalidSpec(DebvirtError):
    """The user's input cannot be satisfied; raised before anything is touched."""


class NotFound(DebvirtError):
    """libvirt said the object does not exist (and nothing else)."""


class LibvirtCallError(DebvirtError):
    """Any other libvirt failure, already phrased as 'Failed to <verb> <object>: <reason>'."""


class WaitTimeout(DebvirtError):
    """A wait ran out of time; the message says what it waited for."""
