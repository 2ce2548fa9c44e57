#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: debvirt.cluster developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A test helper of the container target, not part of the collection.

A module round trip leaves libvirt's LXC driver most of a second to learn a new container's
init PID; this starts a container and stops it through LibvirtClient.stop_container with
nothing in between, round after round, where libvirt may still refuse to stop it."""

from __future__ import annotations

DOCUMENTATION = r"""
module: dvtest_stop_race
short_description: Start a container and stop it at once, again and again (a test helper)
description:
  - Starts the stopped container O(name) and stops it at once with the collection's clean stop,
    O(rounds) times; fails at the first stop that fails.
options:
  name:
    description: An existing, stopped container.
    type: str
    required: true
  uri:
    description: The libvirt connection URI.
    type: str
    default: lxc:///system
  rounds:
    description: How many times to start and stop it.
    type: int
    default: 20
  timeout:
    description: The timeout of each stop, in seconds.
    type: float
    default: 5
author: debvirt.cluster developers
"""

RETURN = r"""
rounds:
  description: Rounds done, each a start and a clean stop.
  type: int
  returned: always
refused_rounds:
  description: Rounds in which libvirt refused at least one request to stop the container.
  type: int
  returned: always
refusals:
  description: How often libvirt gave each refusal, by "code/domain: message".
  type: dict
  returned: always
longest_stop_s:
  description: The longest stop, in seconds.
  type: float
  returned: always
"""

import time

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.debvirt.cluster.plugins.module_utils._client import LibvirtClient
from ansible_collections.debvirt.cluster.plugins.module_utils._errors import DebvirtError

try:
    import libvirt
except ImportError:
    libvirt = None


def _name(prefix, value):
    names = [n for n in dir(libvirt) if n.startswith(prefix) and getattr(libvirt, n) == value]
    return names[0] if len(names) == 1 else str(value)


class CountingDomain:
    """The domain, with every refused request to stop it counted (and still raised)."""

    def __init__(self, dom, refusals):
        self._dom = dom
        self.refusals = refusals
        self.refused = False

    def shutdownFlags(self, flags):
        try:
            return self._dom.shutdownFlags(flags)
        except libvirt.libvirtError as e:
            key = "%s/%s: %s" % (_name("VIR_ERR_", e.get_error_code()), _name("VIR_FROM_", e.get_error_domain()),
                                 e.get_error_message())
            self.refusals[key] = self.refusals.get(key, 0) + 1
            self.refused = True
            raise

    def __getattr__(self, name):
        return getattr(self._dom, name)


def main():
    module = AnsibleModule(dict(name=dict(type="str", required=True),
                                uri=dict(type="str", default="lxc:///system"),
                                rounds=dict(type="int", default=20),
                                timeout=dict(type="float", default=5)))
    p = module.params
    client = LibvirtClient(p["uri"])
    result = dict(changed=False, rounds=0, refused_rounds=0, refusals={}, longest_stop_s=0.0)
    try:
        dom = client.domain(p["name"])
        if dom is None:
            module.fail_json(msg="No container %s" % p["name"], **result)
        for n in range(1, p["rounds"] + 1):
            client.start(dom)
            result["changed"] = True
            counted = CountingDomain(dom, result["refusals"])
            began = time.monotonic()
            client.stop_container(counted, p["timeout"])
            took = time.monotonic() - began
            result["longest_stop_s"] = round(max(result["longest_stop_s"], took), 3)
            state = client.domain_state(dom)
            if state != "stopped":
                module.fail_json(msg="Round %d: the stop returned but container %s is %s" % (n, p["name"], state),
                                 **result)
            result["rounds"] = n
            result["refused_rounds"] += counted.refused
    except DebvirtError as e:
        module.fail_json(msg="Round %d: %s" % (result["rounds"] + 1, e.msg), **result)
    finally:
        client.close()
    module.exit_json(**result)


if __name__ == "__main__":
    main()
