# -*- coding: utf-8 -*-
# Copyright: debvirt.cluster developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The parsers of corosync's tools, on their output as a lab node printed it."""

from __future__ import annotations

from ansible_collections.debvirt.cluster.plugins.module_utils._quorum import parse_links, parse_quorum

# corosync-quorumtool -s -p of a lab node (corosync 3.1.7), 3 of 4 nodes up.
QUORUM = """Quorum information
------------------
Date:             Thu Nov 26 20:30:01 2026
Quorum provider:  corosync_votequorum
Nodes:            3
Node ID:          2
Ring ID:          1.1d
Quorate:          Yes

Votequorum information
----------------------
Expected votes:   4
Highest expected: 4
Total votes:      3
Quorum:           3
Flags:            Quorate

Membership information
----------------------
    Nodeid      Votes    Qdevice Name
         1          1         NR alpha
         2          1         NR beta (local)
         3          1         NR gamma
"""

LINKS = """Local node ID 2, transport knet
nodeid: 1 reachable
   LINK: 0 udp (10.0.0.2->10.0.0.1) enabled connected mtu: 1397

nodeid: 3 reachable
   LINK: 0 udp (10.0.0.2->10.0.0.3) enabled connected mtu: 1397

nodeid: 4 unreachable
   LINK: 0 udp (10.0.0.2->10.0.0.4) enabled disconnected mtu: 1397
"""


def test_parse_quorum():
    q = parse_quorum(QUORUM)
    assert (q["quorate"], q["expected_votes"], q["total_votes"], q["quorum"], q["nodes"], q["node_id"]) == \
        (True, 4, 3, 3, 3, 2)
    assert q["members"] == [
        {"nodeid": 1, "votes": 1, "name": "alpha", "local": False},
        {"nodeid": 2, "votes": 1, "name": "beta", "local": True},
        {"nodeid": 3, "votes": 1, "name": "gamma", "local": False},
    ]


def test_parse_links():
    assert parse_links(LINKS) == {1: {"reachable": True, "links": {0: "connected"}},
                                  3: {"reachable": True, "links": {0: "connected"}},
                                  4: {"reachable": False, "links": {0: "disconnected"}}}
