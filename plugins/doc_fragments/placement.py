# -*- coding: utf-8 -*-
# Copyright: debvirt.cluster developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations


class ModuleDocFragment:
    DOCUMENTATION = r"""
options:
  node:
    description:
      - The cluster member the guest belongs on, by its name in the corosync nodelist. The task
        runs on any member (with a local O(uri)) and reaches the others over the cluster's SSH
        trust, as M(debvirt.cluster.migration) does.
      - When another member has the guest, it is moved to O(node) first, with the migration
        module's checks (live when it runs, offline when it is stopped; a container by a clean
        stop, a copy of its root directory and a start) and then converged there. The result's
        RV(migrated) says so; check mode predicts the move and touches nothing; the diff shows
        the C(node) change.
      - With O(state=absent), the guest is removed from every member that defines it, wherever
        it runs. A name is unique in the cluster, so the node it was declared on does not
        matter any more. The result's RV(removed_from) names them.
      - Without O(node), the guest is managed on this host. On a cluster member, creating a
        guest whose name another member already uses is refused, naming that member (the other
        members are asked only when the guest does not exist here). O(state=absent) without
        O(node) removes it from this host only.
      - On a host that is not a cluster member, O(node) is an error.
    type: str
notes:
  - A member that is offline or does not answer cannot be asked for a name; the task warns
    and goes on, since one member down must not stop every other task of the cluster.
"""
