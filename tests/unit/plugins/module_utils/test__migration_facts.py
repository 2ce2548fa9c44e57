# -*- coding: utf-8 -*-
# Copyright: debvirt.cluster developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The probe for shared storage, against a shell that answers as two nodes would."""

from __future__ import annotations

import pytest

from ansible_collections.debvirt.cluster.plugins.module_utils._migration_facts import _same_directory
from ansible_collections.debvirt.cluster.plugins.module_utils._transport import MigrationError


class Nodes:
    """Two nodes' directories as sets of paths; run_command as Shell passes it, over "ssh"."""

    def __init__(self, shared, reachable=True):
        self.files = {"a": set(), "b": set()}
        if shared:
            self.files["b"] = self.files["a"]
        self.reachable = reachable
        self.made = []

    def run(self, host, argv):
        node = host or "a"
        if argv[0] == "mktemp":
            path = "%s/%s" % (argv[2], argv[3].replace("XXXXXXXXXX", "k2Jx9QzT1r"))
            self.files[node].add(path)
            self.made.append(path)
            return 0, path + "\n", ""
        if argv[0] == "rm":
            self.files[node].discard(argv[-1])
            return 0, "", ""
        if not self.reachable:
            return 255, "", "ssh: connect to host b port 22: No route to host"
        return (0 if argv[-2] in self.files[node] else 1), "", ""


@pytest.mark.parametrize("shared", [True, False])
def test_the_probe_tells_one_directory_from_two(shared):
    nodes = Nodes(shared)
    assert _same_directory(nodes, None, "b", "/srv/pool", "b") is shared
    assert nodes.made and not nodes.files["a"], "the probe file is left"


def test_a_probe_that_cannot_look_refuses():
    nodes = Nodes(True, reachable=False)
    with pytest.raises(MigrationError, match="looking for the probe file on b failed: ssh: connect"):
        _same_directory(nodes, None, "b", "/srv/pool", "b")
    assert not nodes.files["a"]
