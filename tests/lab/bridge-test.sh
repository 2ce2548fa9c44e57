#!/usr/bin/env bash
# Bridge test: role debvirt.cluster.node's node_bridges on a one-node lab of its own (node dvbr1
# at 10.80.0.11 on bridge dvbrbr0, state in /var/lib/debvirt-lab-br), so that it never meets
# the shared cluster lab; it needs no lab test lock and removes its lab at the end (the cached
# template stays). Every role run goes through a small playbook with that lab's inventory.
#
#  1. bad input fails before anything changes: an unknown port, vids without vlan_aware,
#     duplicate names, a rollback due too early, an interface managed by systemd-networkd
#  2. check mode predicts the change (diff of /etc/network/interfaces) and changes nothing, also
#     with a libvirt network declared on the bridge it has yet to make
#  3. apply moves the host address from eth0 to bridge vmbr0 over eth0 (VLAN-aware with vids
#     2-4094 where the kernel filters VLANs on bridges, which "bridge vlan show" must show;
#     where it cannot, the role must refuse vlan_aware, and the plain bridge is applied); the
#     node answers over SSH, no rollback stays armed; a rerun and check mode are changed=0; after
#     a reboot the node comes back the same way, and the role changes nothing
#  4. a declaration that makes the node unreachable (another subnet) is rolled back by the
#     armed timer: the role fails saying so, the node answers on its old address, its file is
#     the one from before; then a failing step (a gateway that does not answer) is rolled back
#     at once, with the same checks; a rerun of the good declaration is changed=0
#  5. a libvirt network in bridge mode on vmbr0 (role variable node_networks, module
#     debvirt.cluster.network): created, rerun changed=0; a tiny guest on it gets an address
#     from a DHCP server on the node's LAN and answers HTTP from the lab host, through vmbr0;
#     a change that would re-create vmbr0 under the guest is refused, with nothing changed
# Prints "N passed, M failed" last (", K skipped" when a scenario cannot run on this kernel);
# exits non-zero on any failure.

# Checks are functions run through verdict, which shellcheck cannot follow.
# shellcheck disable=SC2317
set -uo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
LAB=$HERE/lab.sh
export DEBVIRT_LAB_PREFIX=${DEBVIRT_BRIDGE_LAB_PREFIX:-dvbr}
export DEBVIRT_LAB_NET=${DEBVIRT_BRIDGE_LAB_NET:-10.80.0}
export DEBVIRT_LAB_STATE=${DEBVIRT_BRIDGE_LAB_STATE:-/var/lib/debvirt-lab-br}
case $DEBVIRT_LAB_PREFIX in dvlab*) echo "the bridge test must not use the shared lab's names (dvlab*)"; exit 2 ;; esac
INVENTORY=$DEBVIRT_LAB_STATE/inventory.ini
N=${DEBVIRT_LAB_PREFIX}1
NODE_IP=$DEBVIRT_LAB_NET.11
# Documentation addresses (RFC 5737): no other lab of this machine uses them.
BAD_NET=192.0.2
IMAGES=/var/cache/debvirt-test/guest
GUEST=dvtest-br-guest
NET=dvtest-br-net
DHCP_FIRST=$DEBVIRT_LAB_NET.50
WORK=$(mktemp -d /tmp/debvirt-brtest.XXXXXX)
T_START=$SECONDS

PASSED=0
FAILED=0
SKIPPED=0
pass() { PASSED=$((PASSED + 1)); echo "PASS: $*"; }
fail() { FAILED=$((FAILED + 1)); echo "FAIL: $*"; }
skip() { SKIPPED=$((SKIPPED + 1)); echo "SKIP: $*"; }
verdict() {
    local name=$1; shift
    if "$@"; then pass "$name"; else fail "$name"; fi
}

node() { "$LAB" ssh "$N" "$@"; }

finish() {
    # The lab is this test's own: removing it removes every object the test made.
    if [ -z "${KEEP_LAB:-}" ]; then
        "$LAB" down >"$WORK/lab-down.log" 2>&1 || { tail -n 5 "$WORK/lab-down.log"; fail "lab down"; }
    fi
    [ -n "${KEEP_WORK:-}" ] || rm -rf "$WORK"
    echo "bridge test: $((SECONDS - T_START)) s"
    if [ "$SKIPPED" -gt 0 ]; then
        echo "$PASSED passed, $FAILED failed, $SKIPPED skipped"
    else
        echo "$PASSED passed, $FAILED failed"
    fi
    [ "$FAILED" -eq 0 ]
    exit
}
trap 'echo interrupted; finish' INT TERM

# shellcheck source=tests/env.sh
. "$ROOT/tests/env.sh"
"$ROOT/tests/sync-collection.sh" >/dev/null || { fail "copy the collection"; finish; }
export ANSIBLE_FORCE_COLOR=0 ANSIBLE_NOCOLOR=1 ANSIBLE_RETRY_FILES_ENABLED=0
export ANSIBLE_STDOUT_CALLBACK=default ANSIBLE_HOST_KEY_CHECKING=1

t0=$SECONDS
# From scratch: a lab an interrupted run left behind may hold a bridge already.
"$LAB" down >"$WORK/lab.log" 2>&1
"$LAB" up 1 >>"$WORK/lab.log" 2>&1 || { tail -n 20 "$WORK/lab.log"; fail "lab up"; finish; }
echo "lab of one node up in $((SECONDS - t0)) s"
node true || { fail "$N answers over ssh"; finish; }

cat >"$WORK/play.yml" <<'EOF'
- name: Role node with the bridges of the test
  hosts: nodes
  gather_facts: false
  roles:
    - role: debvirt.cluster.node
EOF

# vars TAG YAML: the role variables of run TAG (the bridge-independent ones added).
vars() {
    {
        echo "node_virt_type: qemu"
        echo "node_bridges_rollback_after: 70"
        echo "node_bridges_confirm_timeout: 15"
        cat
    } >"$WORK/$1.vars.yml"
}
# play TAG [ansible-playbook options]: run the role with $WORK/TAG.vars.yml; output in TAG.out.
play() {
    local tag=$1; shift
    local t=$SECONDS
    ansible-playbook -i "$INVENTORY" "$WORK/play.yml" -e "@$WORK/$tag.vars.yml" "$@" \
        >"$WORK/$tag.out" 2>&1
    echo $? >"$WORK/$tag.rc"
    echo "  ($tag: $((SECONDS - t)) s)"
}
rc_of() { cat "$WORK/$1.rc"; }
recap() { sed -n "s/^$N *: .*$2=\([0-9]*\).*/\1/p" "$WORK/$1.out" | tail -n1; }
succeeded() { [ "$(rc_of "$1")" = 0 ] && [ "$(recap "$1" failed)" = 0 ] && [ "$(recap "$1" unreachable)" = 0 ]; }
changed_is() { succeeded "$1" && [ "$(recap "$1" changed)" = "$2" ]; }
changed_some() { succeeded "$1" && [ "$(recap "$1" changed)" -gt 0 ]; }
failed_with() { [ "$(rc_of "$1")" != 0 ] && grep -qF -- "$2" "$WORK/$1.out"; }
show() { echo "--- $1 (last lines)"; grep -v '^skipping\|^$' "$WORK/$1.out" | tail -n "${2:-25}"; echo "---"; }
check() {  # NAME CMD...: verdict, and the run's output when it fails
    local name=$1 tag=$2; shift 2
    if "$@"; then pass "$name"; else fail "$name"; show "$tag"; fi
}

interfaces() { node cat /etc/network/interfaces; }
same_file() { [ "$(interfaces)" = "$(cat "$1")" ]; }
no_link() { ! node ip link show "$1" >/dev/null 2>&1; }
addr_on() { node ip -o -4 addr show dev "$1" | grep -q " $2/"; }
master_of() { node "basename \$(readlink -f /sys/class/net/$1/master) 2>/dev/null"; }
no_timer() { ! node "systemctl list-timers --all --no-legend" | grep -q debvirt-bridge; }
# For the checks that run in bash -c.
export LAB N
export -f node interfaces addr_on master_of

# --- baseline: the role without bridges, so that later runs only show bridge changes ----------
vars base </dev/null
play base
verdict "baseline run of role node" succeeded base || show base
interfaces >"$WORK/interfaces.0"

# --- 1. bad input fails before anything changes -----------------------------------------------
vars unknown <<'EOF'
node_bridges:
  - {name: vmbr0, ports: [eth9]}
EOF
play unknown
check "refused: an unknown port" unknown failed_with unknown "port eth9 does not exist on the host"
vars vids <<'EOF'
node_bridges:
  - {name: vmbr0, ports: [eth0], vids: "10-20"}
EOF
play vids
check "refused: vids without vlan_aware" vids failed_with vids "vids (10-20) are only for a VLAN-aware bridge"
vars dup <<'EOF'
node_bridges:
  - {name: vmbr0, ports: [eth0]}
  - {name: vmbr0, ports: []}
EOF
play dup
check "refused: a bridge declared twice" dup failed_with dup "vmbr0 is declared 2 times"
vars timing <<'EOF'
node_bridges:
  - {name: vmbr0, ports: [eth0]}
node_bridges_rollback_after: 30
EOF
play timing
check "refused: a rollback due before the change can be confirmed" timing \
    failed_with timing "node_bridges_rollback_after (30 s) must be at least"
vars badtype <<'EOF'
node_bridges:
  - {name: vmbr0, ports: [eth0], stp: maybe, colour: blue}
EOF
play badtype
check "refused by the argument spec: a bad type and an unknown option" badtype \
    bash -c "grep -qF 'colour' '$WORK/badtype.out' && [ \"\$(cat '$WORK/badtype.rc')\" != 0 ]"
# A port that systemd-networkd manages: a veth (this kernel has no dummy links) with a .network
# file of its own.
networkd_ready=0
if node "ip link add dvtestbr0 type veth peer name dvtestbr1 && mkdir -p /etc/systemd/network \
        && printf '[Match]\nName=dvtestbr0\n[Network]\nAddress=192.0.2.1/24\n' >/etc/systemd/network/dvtest-br.network \
        && systemctl start systemd-networkd" >/dev/null 2>&1; then
    for _ in $(seq 1 15); do
        node "networkctl list --no-legend dvtestbr0" 2>/dev/null | grep -Eqw 'configuring|configured' && { networkd_ready=1; break; }
        sleep 1
    done
fi
if [ $networkd_ready = 1 ]; then
    vars networkd <<'EOF'
node_bridges:
  - {name: vmbr9, ports: [dvtestbr0]}
EOF
    play networkd
    check "refused: a port managed by systemd-networkd" networkd \
        failed_with networkd "port dvtestbr0 is managed by systemd-networkd"
else
    fail "set up a port managed by systemd-networkd"
fi
node "systemctl stop systemd-networkd.socket systemd-networkd; rm -f /etc/systemd/network/dvtest-br.network; ip link del dvtestbr0" >/dev/null 2>&1
verdict "... and after the refusals the interfaces file is unchanged" same_file "$WORK/interfaces.0"
verdict "... no bridge vmbr0 was made" no_link vmbr0
verdict "... and eth0 still has the node's address" addr_on eth0 "$NODE_IP"

# --- 2./3. check mode, apply, rerun --------------------------------------------------------------
VLAN=false
if node "unshare --net sh -c 'ip link add dvprobe0 type bridge vlan_filtering 1'" >/dev/null 2>&1; then
    VLAN=true
else
    vars vlan <<'EOF'
node_bridges:
  - {name: vmbr0, ports: [eth0], vlan_aware: true}
EOF
    play vlan
    check "refused: vlan_aware on a kernel without bridge VLAN filtering" vlan \
        failed_with vlan "this kernel cannot filter VLANs on bridges"
    verdict "... and nothing changed" same_file "$WORK/interfaces.0"
    skip "a VLAN-aware bridge with vids 2-4094: this kernel has no CONFIG_BRIDGE_VLAN_FILTERING"
fi
vars good <<EOF
node_bridges:
  - name: vmbr0
    ports: [eth0]
    vlan_aware: $VLAN
EOF

cp "$WORK/good.vars.yml" "$WORK/check1.vars.yml"
play check1 --check --diff
check "check mode reports the change" check1 changed_some check1
check "... and says what it would do" check1 \
    grep -qF "new bridge vmbr0 over eth0, taking over the addresses of eth0" "$WORK/check1.out"
check "... with the diff of /etc/network/interfaces" check1 \
    bash -c "grep -qx -- '-iface eth0 inet static' '$WORK/check1.out' && grep -qx -- '+iface eth0 inet manual' '$WORK/check1.out' && grep -qx -- '+iface vmbr0 inet static' '$WORK/check1.out' && grep -qx -- '+    bridge-ports eth0' '$WORK/check1.out'"
vars checknet <<EOF
node_bridges:
  - name: vmbr0
    ports: [eth0]
    vlan_aware: $VLAN
node_networks:
  - {name: $NET, mode: bridge, bridge: vmbr0}
EOF
play checknet --check
check "check mode with a libvirt network on the bridge still to be made: no failure" checknet \
    succeeded checknet
check "... it says the network would be made once the bridge exists" checknet \
    grep -qF "network $NET would be made on bridge vmbr0 once node_bridges has created it" "$WORK/checknet.out"
verdict "... and changes nothing" same_file "$WORK/interfaces.0"
verdict "... makes no bridge" no_link vmbr0

cp "$WORK/good.vars.yml" "$WORK/apply.vars.yml"
play apply --diff
check "apply: the bridge is made" apply changed_some apply
check "... and --diff shows the file's change" apply \
    bash -c "grep -qx -- '+iface vmbr0 inet static' '$WORK/apply.out' && grep -qx -- '-iface eth0 inet static' '$WORK/apply.out'"
verdict "... the node answers over SSH on $NODE_IP" node true
verdict "... vmbr0 has the node's address" addr_on vmbr0 "$NODE_IP"
verdict "... eth0 has it no more" bash -c "! node ip -o -4 addr show dev eth0 | grep -q inet"
verdict "... eth0 is a port of vmbr0" [ "$(master_of eth0)" = vmbr0 ]
verdict "... the file has eth0 manual and vmbr0 with the address" bash -c \
    "interfaces | grep -qx 'iface eth0 inet manual' && interfaces | grep -qx 'iface vmbr0 inet static' && interfaces | grep -qx '    address $NODE_IP/24'"
verdict "... ifupdown knows vmbr0 as up" bash -c "node cat /run/network/ifstate | grep -qx 'vmbr0=vmbr0'"
verdict "... no rollback is left armed" no_timer
verdict "... the old file is kept as the backup" bash -c \
    "[ \"\$(node cat /var/lib/debvirt/bridge/interfaces.before)\" = \"\$(cat $WORK/interfaces.0)\" ]"
if [ "$VLAN" = true ]; then
    verdict "... vmbr0 filters VLANs" [ "$(node cat /sys/class/net/vmbr0/bridge/vlan_filtering)" = 1 ]
    verdict "... bridge vlan show lists 2-4094 on eth0 and vmbr0" bash -c \
        "node bridge vlan show | tr -s ' \t' ' ' > '$WORK/vlans'; grep -q '^eth0 .*2-4094\|^eth0 .*4094' '$WORK/vlans' && grep -q '^vmbr0 .*4094' '$WORK/vlans' || { cat '$WORK/vlans'; false; }"
fi
interfaces >"$WORK/interfaces.1"
cp "$WORK/good.vars.yml" "$WORK/rerun.vars.yml"
play rerun --diff
check "rerun: changed=0" rerun changed_is rerun 0
cp "$WORK/good.vars.yml" "$WORK/check2.vars.yml"
play check2 --check --diff
check "check mode again: changed=0" check2 changed_is check2 0
# What ifupdown brings up at boot is the file alone. /run is new after a reboot: the helper's
# state there from the apply shows whether it really happened.
node "test -e /run/debvirt-bridge/apply.log && systemctl reboot" >/dev/null 2>&1
sleep 3
for _ in $(seq 1 60); do node true 2>/dev/null && break; sleep 1; done
node "systemctl is-system-running --wait" >/dev/null 2>&1
verdict "after a reboot the node answers, with its address on vmbr0 over eth0" bash -c \
    "! node test -e /run/debvirt-bridge/apply.log && addr_on vmbr0 $NODE_IP && [ \"\$(master_of eth0)\" = vmbr0 ]"
cp "$WORK/good.vars.yml" "$WORK/reboot.vars.yml"
play reboot
check "... and the role changes nothing there" reboot changed_is reboot 0

# --- 4. rollbacks -------------------------------------------------------------------------------
vars unreach <<EOF
node_bridges:
  - name: vmbr0
    ports: [eth0]
    vlan_aware: $VLAN
    address: $BAD_NET.11/24
EOF
play unreach
check "unreachable after the change: the role fails saying the rollback restored the network" unreach \
    failed_with unreach "The rollback restored the previous /etc/network/interfaces"
verdict "... the node answers on $NODE_IP" node true
verdict "... its interfaces file is the one from before" same_file "$WORK/interfaces.1"
verdict "... vmbr0 has $NODE_IP again and not $BAD_NET.11" bash -c \
    "addr_on vmbr0 $NODE_IP && ! addr_on vmbr0 $BAD_NET.11"
verdict "... no rollback is left armed" no_timer

vars nogw <<EOF
node_bridges:
  - name: vmbr0
    ports: [eth0]
    vlan_aware: $VLAN
    address: $NODE_IP/24
    gateway: $DEBVIRT_LAB_NET.254
EOF
play nogw
check "a failing step (the gateway does not answer) is rolled back at once" nogw \
    failed_with nogw "the gateway $DEBVIRT_LAB_NET.254 does not answer on vmbr0"
check "... and the role says the rollback restored the network" nogw \
    failed_with nogw "The rollback restored the previous /etc/network/interfaces"
verdict "... the node answers" node true
verdict "... its interfaces file is the one from before" same_file "$WORK/interfaces.1"
verdict "... no default route is left" bash -c "[ -z \"\$(node ip route show default)\" ]"
cp "$WORK/good.vars.yml" "$WORK/rerun2.vars.yml"
play rerun2
check "the good declaration again: changed=0" rerun2 changed_is rerun2 0

# --- 5. a libvirt network in bridge mode, and a guest on it ------------------------------------
vars net <<EOF
node_bridges:
  - name: vmbr0
    ports: [eth0]
    vlan_aware: $VLAN
node_networks:
  - {name: $NET, mode: bridge, bridge: vmbr0}
EOF
play net --diff
check "a libvirt network in bridge mode on vmbr0 is made" net changed_some net
verdict "... active, on bridge vmbr0" bash -c \
    "node virsh net-info $NET | grep -q '^Active: *yes' && node virsh net-info $NET | grep -q '^Bridge: *vmbr0'"
cp "$WORK/net.vars.yml" "$WORK/net2.vars.yml"
play net2
check "... rerun: changed=0" net2 changed_is net2 0

guest_ok=1
node "mkdir -p $IMAGES" || guest_ok=0
for f in vmlinux initrd.img; do
    [ -s "$IMAGES/$f" ] || "$ROOT/tests/images/build-test-guest.sh" >/dev/null 2>&1 || guest_ok=0
    node "cat > $IMAGES/$f.tmp && mv -f $IMAGES/$f.tmp $IMAGES/$f" <"$IMAGES/$f" || guest_ok=0
done
# A DHCP server on the node's LAN (the lab bridge, through vmbr0), as a site's would be.
node "dnsmasq --port=0 --interface=vmbr0 --bind-interfaces --dhcp-range=$DHCP_FIRST,$DEBVIRT_LAB_NET.59,255.255.255.0,10m \
    --dhcp-leasefile=/run/dvtest-br.leases --pid-file=/run/dvtest-br-dnsmasq.pid" || guest_ok=0
node "cat > /tmp/$GUEST.xml && virsh define /tmp/$GUEST.xml >/dev/null && rm -f /tmp/$GUEST.xml && virsh start $GUEST >/dev/null" <<EOF || guest_ok=0
<domain type='qemu'>
  <name>$GUEST</name>
  <memory unit='MiB'>128</memory>
  <vcpu>1</vcpu>
  <os>
    <type arch='x86_64'>hvm</type>
    <kernel>$IMAGES/vmlinux</kernel>
    <initrd>$IMAGES/initrd.img</initrd>
    <cmdline>console=ttyS0</cmdline>
  </os>
  <features><acpi/></features>
  <devices>
    <interface type='network'><source network='$NET'/><model type='virtio'/></interface>
    <serial type='pty'><log file='/var/log/libvirt/qemu/$GUEST.serial.log' append='off'/></serial>
    <console type='pty'/>
  </devices>
</domain>
EOF
if [ $guest_ok = 1 ]; then
    pass "a guest on network $NET starts"
    guest_ip=
    for _ in $(seq 1 90); do
        guest_ip=$(node "cat /var/log/libvirt/qemu/$GUEST.serial.log 2>/dev/null" | sed -n 's/.*debvirt-test-guest: eth0 \([0-9.]*\)\/.*/\1/p' | tail -n1)
        [ -n "$guest_ip" ] && break
        sleep 1
    done
    verdict "... its NIC is a port of vmbr0" bash -c \
        "node ls /sys/class/net/vmbr0/brif/ | grep -q '^vnet'"
    if [ -n "$guest_ip" ]; then
        pass "... it gets a lease ($guest_ip) from the DHCP server on the LAN, through vmbr0"
        verdict "... and answers HTTP from the lab host at $guest_ip" bash -c \
            "curl -s --max-time 5 http://$guest_ip/ | grep -q DEBVIRT-TEST-GUEST-UP"
    else
        fail "... it gets a lease from the DHCP server on the LAN, through vmbr0"
        node "tail -n 20 /var/log/libvirt/qemu/$GUEST.serial.log"
    fi
    # Re-creating the bridge would leave the guest's NIC detached for good.
    interfaces >"$WORK/interfaces.2"
    vars inuse <<EOF
node_bridges:
  - name: vmbr0
    ports: [eth0]
    vlan_aware: $VLAN
    stp: true
EOF
    play inuse
    check "refused: changing vmbr0 while the guest's NIC is on it" inuse \
        failed_with inuse "would take it down and re-create it, but other interfaces are attached to it (vnet"
    verdict "... nothing changed" same_file "$WORK/interfaces.2"
    if [ -n "$guest_ip" ]; then
        verdict "... and the guest still answers" bash -c \
            "curl -s --max-time 5 http://$guest_ip/ | grep -q DEBVIRT-TEST-GUEST-UP"
    fi
else
    fail "a guest on network $NET starts"
fi
node "virsh destroy $GUEST; virsh undefine $GUEST; kill \$(cat /run/dvtest-br-dnsmasq.pid)" >/dev/null 2>&1

finish
