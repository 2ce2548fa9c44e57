# -*- coding: utf-8 -*-
# Copyright: debvirt.cluster developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations


class ModuleDocFragment:
    # An info module: it only reads.
    DOCUMENTATION = r"""
attributes:
  check_mode:
    support: full
    details: It only reads.
  diff_mode:
    support: N/A
  platform:
    platforms: debian
"""

    # Its selection by name (debvirt.cluster.info.names); matches INFO_NAMES in
    # module_utils/_module.py.
    NAMES = r"""
options:
  name:
    description: Only the objects of these names; all of them when not given.
    type: list
    elements: str
"""

    # Its selection by tags (debvirt.cluster.info.tags); matches INFO_TAGS in
    # module_utils/_module.py.
    TAGS = r"""
options:
  tags:
    description: Only the guests that carry all of these tags.
    type: list
    elements: str
"""
