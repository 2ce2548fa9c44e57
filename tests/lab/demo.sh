#!/usr/bin/env bash
# The collection on a few Debian hosts: role node on all of them, then the tiny
# test guest "demo" on the first one.
#   INVENTORY=my-hosts.ini tests/lab/demo.sh   your own hosts (group "nodes")
#   tests/lab/demo.sh                          the lab (tests/lab/lab.sh up)
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
# shellcheck source=tests/env.sh
. "$ROOT/tests/env.sh"

if [ -n "${INVENTORY:-}" ]; then
    inventory=$INVENTORY
else
    inventory=$("$HERE/lab.sh" up | tail -n1)
fi
"$ROOT/tests/sync-collection.sh" >/dev/null
if [ ! -s "$DEBVIRT_TEST_IMAGES/vmlinux" ] || [ ! -s "$DEBVIRT_TEST_IMAGES/initrd.img" ]; then
    "$ROOT/tests/images/build-test-guest.sh"
fi

ansible-playbook -i "$inventory" debvirt.cluster.site
ansible-playbook -i "$inventory" debvirt.cluster.demo

echo "=== guests per node"
ansible nodes -i "$inventory" -m ansible.builtin.command \
    -a 'virsh -c qemu:///system list --all --name'
echo "=== serial console of demo (first node)"
ansible 'nodes[0]' -i "$inventory" -m ansible.builtin.command \
    -a 'tail -n 3 /var/log/libvirt/qemu/demo-serial.log'
