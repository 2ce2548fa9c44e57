# -*- coding: utf-8 -*-
# Copyright: debvirt.cluster developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The names libvirt objects may have, checked the same way for every noun."""

from __future__ import annotations

import re

from ansible_collections.debvirt.cluster.plugins.module_utils._errors import InvalidSpec

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.+-]{0,62}")
_MAC = re.compile(r"([0-9a-f]{2}:){5}[0-9a-f]{2}")


def check_name(noun, name):
    # fullmatch, not match with $: "$" would let a trailing newline through.
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise InvalidSpec("Invalid %s name %r: use letters, digits and _.+- (at most 63 "
                          "characters, starting with a letter or digit)" % (noun, name))


def is_mac(text):
    """A MAC address in libvirt's lower-case colon form."""
    return bool(_MAC.fullmatch(text))
