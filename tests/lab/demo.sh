#!/usr/bin/env bash
# The collection on a few Debian hosts, end to end: role node on all of them,
# role cluster forms them into one corosync/pacemaker cluster, the tiny test
# guest "demo" runs on the first one, and the cluster's status is printed.
#   INVENTORY=my-hosts.ini tests/lab/demo.sh   your own hosts (group "nodes")
#   tests/lab/demo.sh                          the lab: 3 nodes (tests/lab/lab.sh up 3)
# Safe to repeat: a second run reports changed=0. Prints how long each step took.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
# shellcheck source=tests/env.sh
. "$ROOT/tests/env.sh"

declare -A took=()
t0=$SECONDS
if [ -n "${INVENTORY:-}" ]; then
    inventory=$INVENTORY
else
    # An existing lab keeps its size; a new one gets 3 nodes.
    size=()
    [ -f "${DEBVIRT_LAB_STATE:-/var/lib/debvirt-lab}/inventory.ini" ] || size=(3)
    inventory=$("$HERE/lab.sh" up "${size[@]}" | tail -n1)
fi
took[lab]=$((SECONDS - t0))
"$ROOT/tests/sync-collection.sh" >/dev/null
if [ ! -s "$DEBVIRT_TEST_IMAGES/vmlinux" ] || [ ! -s "$DEBVIRT_TEST_IMAGES/initrd.img" ]; then
    "$ROOT/tests/images/build-test-guest.sh"
fi

t0=$SECONDS
ansible-playbook -i "$inventory" debvirt.cluster.site
took[site]=$((SECONDS - t0))
t0=$SECONDS
ansible-playbook -i "$inventory" debvirt.cluster.demo
took[guest]=$((SECONDS - t0))

echo "=== cluster status (cluster_info on the first node)"
# One line per host ("host | SUCCESS => {...}"): the JSON is what follows "=> ".
ansible 'nodes[0]' -i "$inventory" -m debvirt.cluster.cluster_info -o 2>/dev/null \
    | sed 's/^[^>]*=> //' | python -c '
import json, sys
r = json.load(sys.stdin)
if r.get("failed"):
    sys.exit("cluster_info failed: %s" % r.get("msg"))
q = r["quorum"] or {}
print("cluster %s: %s, %s of %s expected votes (quorum %s)" % (
    r["cluster_name"], "quorate" if q.get("quorate") else "NOT quorate",
    q.get("total_votes"), q.get("expected_votes"), q.get("quorum")))
for m in r["members"]:
    guests = ", ".join("%s (%s)" % (g["name"], g["state"]) for g in m["guests"] or []) or "-"
    links = " ".join("link%s %s" % kv for kv in sorted(m["links"].items()))
    print("  %-8s id %-2s %-15s %-7s %-16s guests: %s" % (
        m["name"], m["nodeid"], ",".join(m["addresses"]), "online" if m["online"] else "OFFLINE",
        links, guests))
'
echo "=== serial console of demo (first node)"
ansible 'nodes[0]' -i "$inventory" -m ansible.builtin.command \
    -a 'tail -n 3 /var/log/libvirt/qemu/demo-serial.log'
echo "timings: lab ${took[lab]} s, node + cluster (site.yml) ${took[site]} s, guest ${took[guest]} s"
