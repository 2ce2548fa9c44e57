#!/usr/bin/env bash
# Migration test on the lab: module debvirt.cluster.migration between dvlab1 and dvlab2.
# Uses only those two nodes and only objects named dvtest-mig-*; never changes the cluster's
# membership (another test owns that).
#
#  1. a heartbeat guest (tests/images) moves live dvlab1 -> dvlab2: check mode changes
#     nothing; the move keeps it counting (its serial log on the target goes on from the
#     source's last number, with no second boot marker); persistent on the target, gone from
#     the source; libvirt's total time and downtime reported; a rerun and check mode are
#     changed=0
#  2. refusals leave the guest running where it was: a target without the guest's network,
#     not enough free memory, an unknown target, copy_storage=never for a local disk, and a
#     migration that exceeds its timeout is aborted
#  3. a guest with a local raw disk moves live with copy_storage=all: same data on the target,
#     the source's copy deleted
#  4. a stopped guest with a local disk moves offline: definition and data on the target,
#     nothing left on the source; it boots there
#  5. the heartbeat guest moves back, with the module run on dvlab2
#  6. shared storage: an iSCSI LUN (tgtd on the lab bridge, an iscsi-direct pool on both
#     nodes) stays where it is; the guest moves live with copy_storage=never
#  7. a container moves by a clean stop, a copy of its root directory and a start on dvlab2;
#     the downtime is reported; its counter file goes on where it stopped
#  8. playbooks evacuate and restore: three guests (two running, one stopped) leave dvlab1
#     for dvlab2 and come back; second runs are changed=0
#  9. TLS: role cluster with cluster_tls (only its TLS part, --tags cluster_tls: corosync is
#     not touched) gives the members certificates of one cluster CA; a rerun and check mode
#     are changed=0; key files keep their modes and the CA's key stays on dvlab1; a member
#     that lost its certificates gets new ones from the same CA, check mode first, the others
#     untouched; virsh -c qemu+tls:// works between the members; the heartbeat guest moves
#     live with transport tls and keeps counting, the result says tls, and the migration
#     stream on the wire is a TLS handshake (scenario 1's over ssh is QEMU's plain "QEVM"); a
#     target that does not answer over TLS is refused before anything is touched
# 10. timeouts of copies: an offline move whose disk copy outlasts the timeout is aborted,
#     the target's new volume removed, the guest left stopped on the source with its disk;
#     a container whose root directory copy outlasts it is started again on the source and
#     the partial copy on the target removed
# The cluster's nodelist gives the members when dvlab1 and dvlab2 are in a quorate cluster;
# otherwise they are named explicitly (members:) and the quorum check is skipped.
# Prints "N passed, M failed" last; exits non-zero on any failure.

# Checks are functions run through verdict, which shellcheck cannot follow.
# shellcheck disable=SC2317
set -uo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
LAB=$HERE/lab.sh
STATE=${DEBVIRT_LAB_STATE:-/var/lib/debvirt-lab}
INVENTORY=$STATE/inventory.ini
WORK=$(mktemp -d /tmp/debvirt-migtest.XXXXXX)
A=dvlab1
B=dvlab2
C=dvlab3
POOL=dvtest-mig-pool
POOL_PATH=/var/lib/libvirt/dvtest-mig-pool
IMAGES=/var/cache/debvirt-test/guest
# A userspace iSCSI target of our own on the lab bridge: its own control socket and portal,
# so that it neither meets nor disturbs another tgtd on the machine.
TGT_CONTROL=48
TGT_HOST=10.77.0.1
TGT_PORT=13261
TGT_IQN=iqn.2026-11.test.debvirt:dvtest-mig-san
TGT_IMAGE=/var/tmp/dvtest-mig-san.img
T_START=$SECONDS

PASSED=0
FAILED=0
pass() { PASSED=$((PASSED + 1)); echo "PASS: $*"; }
fail() { FAILED=$((FAILED + 1)); echo "FAIL: $*"; }
verdict() {
    local name=$1; shift
    if "$@"; then pass "$name"; else fail "$name"; fi
}

node() { "$LAB" ssh "$@"; }

cleanup() {
    local n
    for n in $A $B; do
        # Copied first and run with stdin closed: virsh would otherwise eat the rest of the script.
        node "$n" "cat > /tmp/dvtest-mig-cleanup.sh" <<'EOF' 2>/dev/null || true
for d in $(virsh list --all --name | grep -E "^dvtest-(mig|tls)-"); do
    virsh destroy "$d" >/dev/null 2>&1; virsh undefine "$d" >/dev/null 2>&1
done
# Logs outlive their guests (a guest that moved away leaves its log behind).
rm -f /var/log/libvirt/qemu/dvtest-mig-*.serial.log /var/log/libvirt/qemu/dvtest-tls-*.serial.log
if virsh pool-info "$POOL" >/dev/null 2>&1; then
    for v in $(virsh vol-list "$POOL" --name 2>/dev/null); do virsh vol-delete --pool "$POOL" "$v" >/dev/null 2>&1; done
    virsh pool-destroy "$POOL" >/dev/null 2>&1; virsh pool-undefine "$POOL" >/dev/null 2>&1
fi
# An evacuation record of this test's guests, and its drained mark.
if grep -q dvtest-mig- /etc/ansible/facts.d/debvirt_evacuated.fact 2>/dev/null; then
    rm -f /etc/ansible/facts.d/debvirt_evacuated.fact
    crm_attribute --node "$(hostname)" --name debvirt-drained --delete --lifetime forever >/dev/null 2>&1
fi
# The pool's directory holds only this test's volumes.
rm -rf "$POOL_PATH"
for d in $(virsh -c lxc:///system list --all --name | grep -E "^dvtest-(mig|tls)-"); do
    virsh -c lxc:///system destroy "$d" >/dev/null 2>&1; virsh -c lxc:///system undefine "$d" >/dev/null 2>&1
done
rm -rf /var/lib/dvtest-mig-ct /var/lib/dvtest-tls-ct
for p in $(virsh pool-list --all --name | grep "^dvtest-mig-"); do
    virsh pool-destroy "$p" >/dev/null 2>&1; virsh pool-undefine "$p" >/dev/null 2>&1
done
for net in $(virsh net-list --all --name | grep "^dvtest-mig-"); do
    virsh net-destroy "$net" >/dev/null 2>&1; virsh net-undefine "$net" >/dev/null 2>&1
done
true
EOF
        node "$n" "POOL=$POOL POOL_PATH=$POOL_PATH sh /tmp/dvtest-mig-cleanup.sh </dev/null; rm -f /tmp/dvtest-mig-cleanup.sh" 2>/dev/null || true
    done
    # tgtd ignores SIGTERM while it has targets: take ours offline, delete it, then stop tgtd.
    if tgtadm -C "$TGT_CONTROL" --op show --mode sys >/dev/null 2>&1; then
        tgtadm -C "$TGT_CONTROL" --op update --mode sys --name State -v offline
        tgtadm -C "$TGT_CONTROL" --lld iscsi --op delete --mode target --tid 1 --force
        tgtadm -C "$TGT_CONTROL" --op delete --mode system
    fi >/dev/null 2>&1
    rm -f "$TGT_IMAGE" /var/tmp/dvtest-mig-tgtd.log
}
finish() {
    cleanup
    [ -n "${KEEP_WORK:-}" ] || rm -rf "$WORK"
    echo "migration test: $((SECONDS - T_START)) s"
    echo "$PASSED passed, $FAILED failed"
    [ "$FAILED" -eq 0 ]
    exit
}
trap 'echo interrupted; finish' INT TERM

# shellcheck source=tests/env.sh
. "$ROOT/tests/env.sh"
# Lab tests take turns (the cluster test resets the nodes' SSH trust and corosync); when run
# from test.sh, that holds the lock already.
if [ -z "${DEBVIRT_LAB_TEST_LOCKED:-}" ]; then
    exec 8>/run/debvirt-lab-test.lock
    flock -w 3600 8 || { echo "another lab test holds /run/debvirt-lab-test.lock"; exit 1; }
    export DEBVIRT_LAB_TEST_LOCKED=1
fi
"$ROOT/tests/sync-collection.sh" >/dev/null || { fail "copy the collection"; finish; }
export ANSIBLE_FORCE_COLOR=0 ANSIBLE_NOCOLOR=1 ANSIBLE_RETRY_FILES_ENABLED=0 ANSIBLE_PIPELINING=1
export ANSIBLE_STDOUT_CALLBACK=default ANSIBLE_HOST_KEY_CHECKING=1

if [ ! -f "$INVENTORY" ]; then
    "$LAB" up >"$WORK/lab.log" 2>&1 || { tail -n 20 "$WORK/lab.log"; fail "lab up"; finish; }
fi
for n in $A $B; do
    node "$n" true || { fail "$n answers over ssh"; finish; }
done
addr_of() { sed -n "s/^$1 .*ansible_host=\([^ ]*\).*/\1/p" "$INVENTORY"; }
B_ADDR=$(addr_of $B)
[ -s "$IMAGES/vmlinux" ] || "$ROOT/tests/images/build-test-guest.sh" >/dev/null \
    || { fail "build the test guest image"; finish; }

# mig HOST TAG ARGS-JSON [ansible options]: the module on HOST; JSON result in $WORK/TAG.json.
MEMBERS_ARG=
mig() {
    local host=$1 tag=$2 args=$3; shift 3
    if [ -n "$MEMBERS_ARG" ]; then
        # The members' URIs take the driver of the request's (containers: lxc).
        args=$(python -c 'import json,sys; a=json.loads(sys.argv[1]); m=json.loads(sys.argv[2]); d=a.get("uri", "qemu:").split(":")[0]
a.setdefault("members", {k: v.replace("qemu+", d + "+") for k, v in m.items()}); print(json.dumps(a))' \
            "$args" "$MEMBERS_ARG")
    fi
    # -o: one line per host, "host | STATUS => {result}", after any diff.
    ansible "$host" -i "$INVENTORY" -m debvirt.cluster.migration -a "$args" -o "$@" >"$WORK/$tag.out" 2>&1
    python - "$WORK/$tag.out" >"$WORK/$tag.json" <<'EOF'
import json, sys
text = open(sys.argv[1]).read()
lines = [l for l in text.splitlines() if " => {" in l]
try:
    status, _sep, body = lines[-1].partition(" => ")
    result = json.loads(body)
    # The one-line output says FAILED in the status and drops "failed" from the result.
    result["failed"] = "FAILED" in status or "UNREACHABLE" in status
    print(json.dumps(result))
except Exception as e:
    print(json.dumps({"failed": True, "no_result": True, "msg": "no result: %s: %s" % (e, text[-500:])}))
EOF
}
# res TAG EXPR: a Python expression over the result r, printed.
res() { python -c 'import json,sys; r=json.load(open(sys.argv[1])); print(eval(sys.argv[2]))' "$WORK/$1.json" "$2"; }
ok() { [ "$(res "$1" "bool(r.get('$2'))")" = True ]; }
changed() { [ "$(res "$1" "'failed' if r.get('failed') else r.get('changed')")" = "$2" ]; }
# A here-string, not a pipe: grep -q ends early, and pipefail would count that as a failure.
failed_with() { ok "$1" failed && grep -qF -- "$2" <<<"$(res "$1" "r['msg']")"; }
show() { echo "--- $1"; res "$1" "json.dumps(r, indent=1)[:3000]"; echo "---"; }

state_on() { node "$1" "virsh domstate $2 2>/dev/null | head -n1" | tr -d '\r'; }
persistent_on() { grep -q '^Persistent: *yes' <<<"$(node "$1" "virsh dominfo $2 2>/dev/null")"; }
defined_on() { node "$1" "virsh dominfo $2" >/dev/null 2>&1; }
serial() { node "$1" "cat /var/log/libvirt/qemu/$2.serial.log 2>/dev/null"; }
last_beat() { serial "$1" "$2" | sed -n 's/.*heartbeat \([0-9]\+\).*/\1/p' | tail -n1; }
wait_log() {  # HOST GUEST PATTERN TIMEOUT
    local deadline=$((SECONDS + $4))
    while [ $SECONDS -lt "$deadline" ]; do
        grep -q -- "$3" <<<"$(serial "$1" "$2")" && return 0
        sleep 1
    done
    echo "  timed out after $4 s waiting for '$3' in the serial log of $2 on $1"; return 1
}

beyond() { [ -n "$1" ] && [ -n "$2" ] && [ "$1" -gt "$2" ]; }
next_beat() { beyond "$1" "$2" && [ "$1" -le $(($2 + 2)) ]; }
counting() {  # HOST GUEST SINCE: a higher heartbeat within 15 s
    local deadline=$((SECONDS + 15)) now
    while [ "$SECONDS" -lt "$deadline" ]; do
        now=$(last_beat "$1" "$2")
        beyond "$now" "$3" && return 0
        sleep 1
    done
    echo "  no heartbeat after $3 within 15 s"; return 1
}
define_guest_xml() {  # NAME [DISK-PATH] [NETWORK] [DISK-XML]: the domain XML on stdout
    local disk=${4:-} nic=""
    [ -n "${2:-}" ] && disk="<disk type='file' device='disk'><driver name='qemu' type='raw'/><source file='$2'/><target dev='vda' bus='virtio'/></disk>"
    [ -n "${3:-}" ] && nic="<interface type='network'><source network='$3'/><model type='virtio'/></interface>"
    cat <<EOF
<domain type='qemu'>
  <name>$1</name>
  <memory unit='MiB'>192</memory>
  <vcpu>1</vcpu>
  <os>
    <type arch='x86_64'>hvm</type>
    <kernel>$IMAGES/vmlinux</kernel>
    <initrd>$IMAGES/initrd.img</initrd>
    <cmdline>console=ttyS0</cmdline>
  </os>
  <features><acpi/></features>
  <on_poweroff>destroy</on_poweroff>
  <devices>
    $disk
    $nic
    <serial type='pty'><log file='/var/log/libvirt/qemu/$1.serial.log' append='on'/></serial>
    <console type='pty'/>
  </devices>
</domain>
EOF
}
define_guest() {  # HOST NAME [DISK-PATH] [NETWORK] [DISK-XML]
    define_guest_xml "$2" "${3:-}" "${4:-}" "${5:-}" | node "$1" "cat > /tmp/$2.xml && virsh define /tmp/$2.xml >/dev/null && rm -f /tmp/$2.xml"
}
start_guest() { node "$1" "rm -f /var/log/libvirt/qemu/$2.serial.log; virsh start $2" >/dev/null && wait_log "$1" "$2" DEBVIRT-TEST-GUEST-UP 60; }
# A raw volume full of random data, so that a copy can be compared by checksum.
make_volume() {  # HOST NAME MIB
    node "$1" "virsh vol-create-as $POOL $2 ${3}M --format raw >/dev/null && dd if=/dev/urandom of=$POOL_PATH/$2 bs=1M count=$3 conv=notrunc status=none && sha256sum < $POOL_PATH/$2"
}
sha_on() { node "$1" "sha256sum < $POOL_PATH/$2 2>/dev/null"; }
# The first bytes of each migration connection (QEMU's ports 49152-49215) into a node, read on
# the node's veth on this host: a TLS stream opens with a handshake record (16 03), a plain one
# with QEMU's magic "QEVM". Runs in the background until stopped; SNIFF_PID is its process.
SNIFF_PID=
sniff_start() {  # NODE ADDRESS TAG
    python - "$1v0" "$2" >"$WORK/sniff-$3.out" 2>&1 <<'EOF' &
import socket, struct, sys
iface, dst = sys.argv[1], sys.argv[2]
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.ntohs(0x0003))
s.bind((iface, 0))
seen = set()
while True:
    frame = s.recv(65535)
    if frame[12:14] != b"\x08\x00":
        continue
    ip = frame[14:]
    tcp = ip[(ip[0] & 15) * 4:]
    if ip[9] != 6 or socket.inet_ntoa(ip[16:20]) != dst:
        continue
    sport, dport = struct.unpack("!HH", tcp[0:4])
    payload = tcp[(tcp[12] >> 4) * 4:]
    if not 49152 <= dport <= 49215 or not payload or sport in seen:
        continue
    seen.add(sport)
    kind = "tls" if payload[:2] == b"\x16\x03" else "plain" if payload[:4] == b"QEVM" else "other"
    print(dport, kind, payload[:8].hex(), flush=True)
EOF
    SNIFF_PID=$!
    sleep 1
}
sniff_stop() { kill "$SNIFF_PID" 2>/dev/null; wait "$SNIFF_PID" 2>/dev/null; SNIFF_PID=; }
# The kind of the first migration connection the sniffer saw ("tls", "plain", "other" or "").
sniffed() { awk 'NR == 1 {print $2}' "$WORK/sniff-$1.out"; }

# moved_live TAG GUEST ARGS-JSON WHAT: a heartbeat guest moves live $A -> $B (module on $A),
# the stream sniffed on $B's veth; checked: the move, where the guest is, its counting on.
moved_live() {
    local tag=$1 guest=$2 before after_src first
    before=$(last_beat $A "$guest")
    sniff_start $B "$B_ADDR" "$tag"
    mig $A "$tag" "$3"
    after_src=$(last_beat $A "$guest")
    sniff_stop
    if changed "$tag" True; then
        pass "$4 ($(res "$tag" "r['stats']['time_elapsed_ms']") ms, downtime $(res "$tag" "r['stats']['downtime_ms']") ms)"
    else
        show "$tag"; fail "$4"
    fi
    verdict "libvirt's total time and downtime reported" \
        [ "$(res "$tag" "r['stats'].get('time_elapsed_ms', 0) > 0 and r['stats'].get('downtime_ms') is not None")" = True ]
    verdict "running and persistent on $B" bash -c "[ \"\$($LAB ssh $B virsh domstate $guest | head -n1)\" = running ] && $LAB ssh $B virsh dominfo $guest | grep -q '^Persistent: *yes'"
    verdict "undefined on $A" bash -c "! $LAB ssh $A virsh dominfo $guest >/dev/null 2>&1"
    wait_log $B "$guest" "heartbeat" 20 >/dev/null
    first=$(serial $B "$guest" | sed -n 's/.*heartbeat \([0-9]\+\).*/\1/p' | head -n1)
    echo "  heartbeat: $before before, $after_src last on $A, $first first on $B"
    # A restarted guest would count from 1 again; a beat printed while the module returned may
    # be in either log.
    verdict "the heartbeat goes on on $B from where it was on $A" next_beat "$first" "$after_src"
    verdict "no second boot on $B" bash -c "! $LAB ssh $B cat /var/log/libvirt/qemu/$guest.serial.log | grep -q DEBVIRT-TEST-GUEST-UP"
    verdict "still counting on $B" counting $B "$guest" "$first"
}

# --- setup -------------------------------------------------------------------------------------
cleanup
setup_ok=1
for n in $A $B; do
    node "$n" "mkdir -p $IMAGES" || setup_ok=0
    for f in vmlinux initrd.img; do
        node "$n" "cat > $IMAGES/$f.tmp && chmod 0644 $IMAGES/$f.tmp && mv -f $IMAGES/$f.tmp $IMAGES/$f" <"$IMAGES/$f" || setup_ok=0
    done
    node "$n" "virsh pool-define-as $POOL dir --target $POOL_PATH >/dev/null && virsh pool-build $POOL >/dev/null && virsh pool-start $POOL >/dev/null" || setup_ok=0
done
# The network exists on the source only: the guest using it must not move.
node $A "virsh net-define /dev/stdin >/dev/null && virsh net-start dvtest-mig-net >/dev/null" <<'EOF' || setup_ok=0
<network><name>dvtest-mig-net</name><bridge name='dvtmigbr0'/></network>
EOF
verdict "test image, pool $POOL on $A and $B, network dvtest-mig-net on $A only" [ $setup_ok = 1 ]

# Members: the cluster's nodelist where both nodes are in a quorate cluster, else named.
if grep -q '^Quorate: *Yes' <<<"$(node $A 'corosync-quorumtool -s -p 2>/dev/null')" \
    && grep -q "$B" <<<"$(node $A 'cat /etc/corosync/corosync.conf')"; then
    echo "members: from the cluster's nodelist"
else
        # Over SSH for both: the module runs on either node.
    MEMBERS_ARG="{\"$A\": \"qemu+ssh://root@$A/system?no_tty=1\", \"$B\": \"qemu+ssh://root@$B/system?no_tty=1\"}"
    echo "members: named explicitly ($A and $B are not both in a quorate cluster)"
fi
# Another test may be re-creating the trust right now: give it a minute.
trust() {
    local a=$1 b=$2 _
    for _ in $(seq 30); do
        node "$a" "virsh -c 'qemu+ssh://root@$b/system?no_tty=1' version >/dev/null 2>&1" && return 0
        sleep 2
    done
    return 1
}
if ! node $A "virsh -c 'qemu+ssh://root@$B/system?no_tty=1' version >/dev/null 2>&1"; then
    # lab.sh up rewrites root's authorized_keys: the trust is put back the way the product
    # makes it, role cluster with its SSH tag only (corosync is not touched).
    echo "no SSH trust between $A and $B: role cluster --tags cluster_ssh"
    cat >"$WORK/trust.yml" <<'EOF'
- name: SSH trust between the members
  hosts: nodes
  gather_facts: false
  roles:
    - role: debvirt.cluster.cluster
EOF
    ansible-playbook -i "$INVENTORY" "$WORK/trust.yml" --tags cluster_ssh >"$WORK/trust.log" 2>&1 \
        || tail -n 20 "$WORK/trust.log"
fi
if trust $A $B && trust $B $A; then
    pass "$A and $B reach each other's libvirt over the cluster's SSH trust"
else
    fail "$A and $B reach each other's libvirt over the cluster's SSH trust (role cluster sets it up)"
    finish
fi

# --- 1. live migration of a heartbeat guest ------------------------------------------------------
define_guest $A dvtest-mig-hb
verdict "heartbeat guest boots on $A" start_guest $A dvtest-mig-hb
wait_log $A dvtest-mig-hb "heartbeat 2" 30 >/dev/null

mig $A check1 '{"name": "dvtest-mig-hb", "target": "'$B'"}' --check --diff
verdict "check mode predicts the move" changed check1 True
# (The one-line output leaves the diff out; the playbooks show it.)
verdict "check mode plans the move $A -> $B" [ "$(res check1 "[(c['action'], c.get('before'), c.get('after')) for c in r['changes']]")" = "[('migrate', '$A', '$B')]" ]
verdict "check mode reports the checks, all passed or skipped" \
    [ "$(res check1 "all(c['result'] != 'failed' for c in r['checks']) and len(r['checks']) >= 5")" = True ]
verdict "check mode moved nothing" bash -c "[ \"\$($LAB ssh $A virsh domstate dvtest-mig-hb | head -n1)\" = running ] && ! $LAB ssh $B virsh dominfo dvtest-mig-hb >/dev/null 2>&1"

moved_live live1 dvtest-mig-hb '{"name": "dvtest-mig-hb", "target": "'$B'", "max_downtime": 500, "timeout": 120}' \
    "live migration $A -> $B"
verdict "transport ssh: the result says so, the stream on the wire is QEMU's plain one ($(head -n1 "$WORK/sniff-live1.out"))" \
    [ "$(res live1 "r.get('transport')") $(sniffed live1)" = "ssh plain" ]

mig $A rerun1 '{"name": "dvtest-mig-hb", "target": "'$B'"}'
verdict "the same migration again: changed=0" changed rerun1 False
mig $A rerun1c '{"name": "dvtest-mig-hb", "target": "'$B'"}' --check
verdict "check mode again: changed=0" changed rerun1c False

# --- 2. refusals -----------------------------------------------------------------------------------
define_guest $A dvtest-mig-net "" dvtest-mig-net
start_guest $A dvtest-mig-net >/dev/null
mig $A nonet '{"name": "dvtest-mig-net", "target": "'$B'"}'
verdict "refused: $B lacks the guest's network" failed_with nonet "lacks network(s) dvtest-mig-net"
verdict "... and the guest still runs on $A, not on $B" bash -c "[ \"\$($LAB ssh $A virsh domstate dvtest-mig-net | head -n1)\" = running ] && ! $LAB ssh $B virsh dominfo dvtest-mig-net >/dev/null 2>&1"

mig $B nomem '{"name": "dvtest-mig-hb", "target": "'$A'", "min_free_memory": 100000000}'
verdict "refused: not enough free memory on $A" failed_with nomem "memory: guest needs 192 MiB plus"
verdict "... and the guest still runs on $B" [ "$(state_on $B dvtest-mig-hb)" = running ]

mig $A notarget '{"name": "dvtest-mig-hb", "target": "dvtest-mig-nosuch"}'
verdict "refused: a target that is no member" failed_with notarget "not a member"

mig $A notfound '{"name": "dvtest-mig-nosuch", "target": "'$B'"}'
verdict "refused: a guest no member has" failed_with notfound "not defined on any member"

# 1 MiB/s cannot move 192 MiB in 3 s: the job is aborted.
mig $B slow '{"name": "dvtest-mig-hb", "target": "'$A'", "bandwidth": 1, "timeout": 3}'
verdict "a migration over its timeout is aborted with a message" failed_with slow "did not finish within timeout 3s"
verdict "... and the guest still runs on $B, not on $A" bash -c "[ \"\$($LAB ssh $B virsh domstate dvtest-mig-hb | head -n1)\" = running ] && ! $LAB ssh $A virsh dominfo dvtest-mig-hb >/dev/null 2>&1"
verdict "... still counting there" counting $B dvtest-mig-hb "$(last_beat $B dvtest-mig-hb)"

# --- 3. a local disk, copied during the live migration ----------------------------------------
sum=$(make_volume $A dvtest-mig-disk.img 32)
define_guest $A dvtest-mig-disk "$POOL_PATH/dvtest-mig-disk.img"
start_guest $A dvtest-mig-disk >/dev/null
mig $A never '{"name": "dvtest-mig-disk", "target": "'$B'", "copy_storage": "never"}'
verdict "refused: copy_storage=never with a local disk" failed_with never "local disk(s) vda would not follow"
verdict "... and nothing was created on $B" bash -c "[ \"\$($LAB ssh $A virsh domstate dvtest-mig-disk | head -n1)\" = running ] && ! $LAB ssh $B test -e $POOL_PATH/dvtest-mig-disk.img"
mig $A copy '{"name": "dvtest-mig-disk", "target": "'$B'", "copy_storage": "all"}'
if changed copy True; then
    pass "live migration with copy_storage=all ($(res copy "r['stats']['time_elapsed_ms']") ms, downtime $(res copy "r['stats']['downtime_ms']") ms, disk $(res copy "r['stats'].get('disk_total_bytes')") bytes)"
else
    show copy; fail "live migration with copy_storage=all"
fi
verdict "running on $B" [ "$(state_on $B dvtest-mig-disk)" = running ]
verdict "the disk's data on $B is the source's" [ "$(sha_on $B dvtest-mig-disk.img)" = "$sum" ]
verdict "the source's copy is deleted" bash -c "! $LAB ssh $A test -e $POOL_PATH/dvtest-mig-disk.img"
mig $A copy2 '{"name": "dvtest-mig-disk", "target": "'$B'", "copy_storage": "all"}'
verdict "again: changed=0" changed copy2 False

# --- 4. offline -----------------------------------------------------------------------------------
sum=$(make_volume $A dvtest-mig-off.img 16)
define_guest $A dvtest-mig-off "$POOL_PATH/dvtest-mig-off.img"
mig $A offcheck '{"name": "dvtest-mig-off", "target": "'$B'"}' --check
verdict "check mode: an offline move is planned" [ "$(res offcheck "r.get('changed'), r.get('mode')")" = "(True, 'offline')" ]
mig $A livestopped '{"name": "dvtest-mig-off", "target": "'$B'", "mode": "live"}'
verdict "refused: mode live for a stopped guest" failed_with livestopped "mode live needs it running"
mig $A off '{"name": "dvtest-mig-off", "target": "'$B'"}'
if changed off True; then pass "offline migration of a stopped guest"; else show off; fail "offline migration of a stopped guest"; fi
verdict "defined, persistent and stopped on $B" bash -c "$LAB ssh $B virsh dominfo dvtest-mig-off | grep -q '^Persistent: *yes' && [ \"\$($LAB ssh $B virsh domstate dvtest-mig-off | head -n1)\" = 'shut off' ]"
verdict "undefined on $A, its volume gone there" bash -c "! $LAB ssh $A virsh dominfo dvtest-mig-off >/dev/null 2>&1 && ! $LAB ssh $A test -e $POOL_PATH/dvtest-mig-off.img"
verdict "the disk's data on $B is the source's" [ "$(sha_on $B dvtest-mig-off.img)" = "$sum" ]
mig $A off2 '{"name": "dvtest-mig-off", "target": "'$B'"}'
verdict "again: changed=0" changed off2 False
verdict "it boots on $B" start_guest $B dvtest-mig-off

# --- 5. back, driven from the other member ---------------------------------------------------------
node $A "rm -f /var/log/libvirt/qemu/dvtest-mig-hb.serial.log"
mig $B back '{"name": "dvtest-mig-hb", "target": "'$A'"}'
beat=$(last_beat $B dvtest-mig-hb)
if changed back True; then
    pass "live migration $B -> $A run on $B ($(res back "r['stats']['time_elapsed_ms']") ms, downtime $(res back "r['stats']['downtime_ms']") ms)"
else
    show back; fail "live migration $B -> $A run on $B"
fi
wait_log $A dvtest-mig-hb "heartbeat" 20 >/dev/null
first=$(serial $A dvtest-mig-hb | sed -n 's/.*heartbeat \([0-9]\+\).*/\1/p' | head -n1)
verdict "the heartbeat goes on on $A ($beat on $B before, $first first back on $A)" next_beat "$first" "$beat"
verdict "no second boot on $A" bash -c "! $LAB ssh $A cat /var/log/libvirt/qemu/dvtest-mig-hb.serial.log | grep -q DEBVIRT-TEST-GUEST-UP"

# --- 6. shared storage: iSCSI ------------------------------------------------------------------
san_ok=1
if command -v tgtd >/dev/null; then
    truncate -s 64M "$TGT_IMAGE"
    nohup tgtd -f -C "$TGT_CONTROL" --iscsi portal="$TGT_HOST:$TGT_PORT" >/var/tmp/dvtest-mig-tgtd.log 2>&1 &
    for _ in $(seq 50); do tgtadm -C "$TGT_CONTROL" --op show --mode sys >/dev/null 2>&1 && break; sleep 0.1; done
    { tgtadm -C "$TGT_CONTROL" --lld iscsi --op new --mode target --tid 1 -T "$TGT_IQN" \
        && tgtadm -C "$TGT_CONTROL" --lld iscsi --op new --mode logicalunit --tid 1 --lun 1 -b "$TGT_IMAGE" \
        && tgtadm -C "$TGT_CONTROL" --lld iscsi --op bind --mode target --tid 1 -I ALL; } || san_ok=0
    for n in $A $B; do
        node "$n" "cat > /tmp/dvtest-mig-san.xml && virsh pool-define /tmp/dvtest-mig-san.xml >/dev/null && virsh pool-start dvtest-mig-san >/dev/null" <<EOF || san_ok=0
<pool type='iscsi-direct'><name>dvtest-mig-san</name>
  <source><host name='$TGT_HOST' port='$TGT_PORT'/><device path='$TGT_IQN'/>
    <initiator><iqn name='iqn.2026-11.test.debvirt:dvtest-mig-$n'/></initiator></source>
</pool>
EOF
    done
    verdict "tgtd on $TGT_HOST:$TGT_PORT, iscsi-direct pool dvtest-mig-san on $A and $B" [ $san_ok = 1 ]
    define_guest $A dvtest-mig-san "" "" "<disk type='volume' device='disk'><driver name='qemu' type='raw'/><source pool='dvtest-mig-san' volume='unit:0:0:1'/><target dev='vda' bus='virtio'/></disk>"
    verdict "a guest on the iSCSI LUN boots on $A" start_guest $A dvtest-mig-san
    mig $A san '{"name": "dvtest-mig-san", "target": "'$B'", "copy_storage": "never"}'
    if changed san True; then
        pass "live migration on shared iSCSI storage ($(res san "r['stats']['time_elapsed_ms']") ms, downtime $(res san "r['stats']['downtime_ms']") ms)"
    else
        show san; fail "live migration on shared iSCSI storage"
    fi
    verdict "the disk counted as shared, nothing copied" [ "$(res san "[c['detail'] for c in r['checks'] if c['check'] == 'storage'], r['copied_disks']")" = "(['shared: vda (iscsi-direct)'], [])" ]
    verdict "running on $B" [ "$(state_on $B dvtest-mig-san)" = running ]
    verdict "it keeps running there" counting $B dvtest-mig-san 0
else
    echo "SKIP: shared iSCSI storage (no tgtd on this machine: apt-get install tgt)"
fi

# --- 7. a container: stop, copy, start -------------------------------------------------------
CT_ROOT=/var/lib/dvtest-mig-ct/rootfs
ct_ok=1
node $A "mkdir -p $CT_ROOT/bin $CT_ROOT/proc $CT_ROOT/sys $CT_ROOT/dev $CT_ROOT/tmp && cat > $CT_ROOT/bin/busybox && chmod 0755 $CT_ROOT/bin/busybox && for c in sh sleep cat; do ln -sf busybox $CT_ROOT/bin/\$c; done" </bin/busybox || ct_ok=0
node $A "cat > $CT_ROOT/loop.sh" <<'EOF' || ct_ok=0
# PID 1 gets only the signals it handles: a clean stop is SIGTERM, handled here.
trap 'echo stopped >> /events; exit 0' TERM
echo started >> /events
n=$(cat /counter 2>/dev/null || echo 0)
while :; do n=$((n + 1)); echo "$n" > /counter; sleep 1; done
EOF
node $A "cat > /tmp/dvtest-mig-ct.xml && virsh -c lxc:///system define /tmp/dvtest-mig-ct.xml >/dev/null && virsh -c lxc:///system start dvtest-mig-ct >/dev/null" <<EOF || ct_ok=0
<domain type='lxc'>
  <name>dvtest-mig-ct</name>
  <memory unit='MiB'>64</memory>
  <vcpu>1</vcpu>
  <os><type>exe</type><init>/bin/sh</init><initarg>/loop.sh</initarg></os>
  <devices>
    <filesystem type='mount'><source dir='$CT_ROOT'/><target dir='/'/></filesystem>
    <console type='pty'/>
  </devices>
</domain>
EOF
verdict "a busybox container runs on $A" [ $ct_ok = 1 ]
sleep 2
mig $A ctlive '{"name": "dvtest-mig-ct", "target": "'$B'", "uri": "lxc:///system", "mode": "live"}'
verdict "refused: a container cannot move live" failed_with ctlive "libvirt cannot move containers live"
before=$(node $A "cat $CT_ROOT/counter")
mig $A ct '{"name": "dvtest-mig-ct", "target": "'$B'", "uri": "lxc:///system", "timeout": 60}'
if changed ct True; then
    pass "container moved $A -> $B by a restart (down $(res ct "r['stats']['downtime_ms']") ms)"
else
    show ct; fail "container moved $A -> $B by a restart"
fi
verdict "running on $B, gone from $A with its root directory" bash -c "[ \"\$($LAB ssh $B virsh -c lxc:///system domstate dvtest-mig-ct | head -n1)\" = running ] && ! $LAB ssh $A virsh -c lxc:///system dominfo dvtest-mig-ct >/dev/null 2>&1 && ! $LAB ssh $A test -e $CT_ROOT"
verdict "it stopped cleanly and started again" [ "$(node $B "tr '\n' ' ' < $CT_ROOT/events")" = "started stopped started " ]
sleep 2
verdict "its counter goes on from $before" beyond "$(node $B "cat $CT_ROOT/counter")" "$before"
mig $A ct2 '{"name": "dvtest-mig-ct", "target": "'$B'", "uri": "lxc:///system"}'
verdict "again: changed=0" changed ct2 False

# --- 8. evacuate and restore -------------------------------------------------------------------
for i in 1 2 3; do define_guest $A dvtest-mig-ev$i; done
start_guest $A dvtest-mig-ev1 >/dev/null; start_guest $A dvtest-mig-ev2 >/dev/null
EV="{\"evacuate_node\": \"$A\", \"evacuate_targets\": [\"$B\"], \"evacuate_guests\": [\"dvtest-mig-ev1\", \"dvtest-mig-ev2\", \"dvtest-mig-ev3\"]}"
playbook() {  # TAG PLAYBOOK
    ANSIBLE_STDOUT_CALLBACK=default ansible-playbook -i "$INVENTORY" "debvirt.cluster.$2" -e "$EV" >"$WORK/$1.log" 2>&1
}
pb_changed() { awk '/^PLAY RECAP/{r=1; next} r && /ok=/{for(i=1;i<=NF;i++) if ($i ~ /^changed=/) {split($i,a,"="); print a[2]}}' "$WORK/$1.log"; }
states() {  # HOST: "name state" of the three guests, sorted
    # shellcheck disable=SC2016  # expanded by the node's shell
    node "$1" 'for d in dvtest-mig-ev1 dvtest-mig-ev2 dvtest-mig-ev3; do echo "$d $(virsh domstate $d 2>/dev/null | head -n1)"; done'
}
expected="dvtest-mig-ev1 running
dvtest-mig-ev2 running
dvtest-mig-ev3 shut off"
t0=$SECONDS
if playbook evac1 evacuate; then pass "evacuate $A ($((SECONDS - t0)) s)"; else tail -n 30 "$WORK/evac1.log"; fail "evacuate $A"; fi
verdict "the three guests are on $B, running or stopped as before" [ "$(states $B)" = "$expected" ]
verdict "none left on $A" [ "$(node $A 'virsh list --all --name | grep -c "^dvtest-mig-ev"')" = 0 ]
verdict "$A's record lists them" node $A 'grep -c "\"name\": \"dvtest-mig-ev" /etc/ansible/facts.d/debvirt_evacuated.fact | grep -qx 3'
if playbook evac2 evacuate && [ "$(pb_changed evac2)" = 0 ]; then pass "evacuate again: changed=0"; else tail -n 30 "$WORK/evac2.log"; fail "evacuate again: changed=0"; fi
t0=$SECONDS
if playbook rest1 restore; then pass "restore $A ($((SECONDS - t0)) s)"; else tail -n 30 "$WORK/rest1.log"; fail "restore $A"; fi
verdict "the three guests are back on $A as they were" [ "$(states $A)" = "$expected" ]
verdict "the record is gone" node $A '! test -e /etc/ansible/facts.d/debvirt_evacuated.fact'
if playbook rest2 restore && [ "$(pb_changed rest2)" = 0 ]; then pass "restore again: changed=0"; else tail -n 30 "$WORK/rest2.log"; fail "restore again: changed=0"; fi

# --- 9. TLS -------------------------------------------------------------------------------------
# Only the role's TLS part (and its preflight): the cluster's membership is another test's.
cat >"$WORK/tls.yml" <<'EOF'
- name: TLS between the members
  hosts: nodes
  gather_facts: false
  roles:
    - role: debvirt.cluster.cluster
      cluster_tls: true
EOF
tls_role() {  # TAG [ansible-playbook options]
    local tag=$1; shift
    ansible-playbook -i "$INVENTORY" "$WORK/tls.yml" --tags cluster_tls "$@" >"$WORK/$tag.log" 2>&1
}
# recap TAG HOST: the changed= count of HOST in the play recap.
recap() { sed -n "s/^$2 *:.* changed=\([0-9]*\).*/\1/p" "$WORK/$1.log"; }
all_unchanged() { [ "$(recap "$1" "$A")$(recap "$1" "$B")$(recap "$1" "$C")" = 000 ]; }
t0=$SECONDS
if tls_role tls1; then
    pass "role cluster, cluster_tls: true ($((SECONDS - t0)) s; changed $A=$(recap tls1 $A) $B=$(recap tls1 $B) $C=$(recap tls1 $C))"
else
    tail -n 30 "$WORK/tls1.log"; fail "role cluster, cluster_tls: true"
fi
t0=$SECONDS
if tls_role tls2 --diff; then
    verdict "again: changed=0 on every member ($((SECONDS - t0)) s)" all_unchanged tls2
else
    tail -n 30 "$WORK/tls2.log"; fail "role cluster with TLS again"
fi
if tls_role tls2c --check --diff; then
    verdict "check mode: changed=0 on every member" all_unchanged tls2c
else
    tail -n 30 "$WORK/tls2c.log"; fail "role cluster with TLS in check mode"
fi
# shellcheck disable=SC2016  # expanded by the node's shell
modes() { node "$1" 'cd /etc/pki && stat -c "%n %a %U:%G" CA/cacert.pem libvirt/private/serverkey.pem libvirt/private/clientkey.pem qemu/server-key.pem qemu/client-key.pem qemu/server-cert.pem'; }
expected_modes="CA/cacert.pem 644 root:root
libvirt/private/serverkey.pem 600 root:root
libvirt/private/clientkey.pem 600 root:root
qemu/server-key.pem 440 root:libvirt-qemu
qemu/client-key.pem 440 root:libvirt-qemu
qemu/server-cert.pem 644 root:root"
verdict "keys 0600 for libvirt, 0440 for QEMU's group, on $A and $B" [ "$(modes $A)|$(modes $B)" = "$expected_modes|$expected_modes" ]
verdict "the CA's key is on $A only, mode 0400" bash -c "[ \"\$($LAB ssh $A stat -c %a /etc/pki/debvirt-cluster-ca/cakey.pem)\" = 400 ] && ! $LAB ssh $B test -e /etc/pki/debvirt-cluster-ca && ! $LAB ssh $C test -e /etc/pki/debvirt-cluster-ca"
verdict "$B's server certificate names $B and $B_ADDR" \
    node $B "openssl x509 -in /etc/pki/libvirt/servercert.pem -noout -ext subjectAltName | grep -qx ' *DNS:$B, IP Address:$B_ADDR'"
# A member new to TLS: one whose certificates and keys are gone.
ca_sum() { node $A "sha256sum < /etc/pki/debvirt-cluster-ca/cacert.pem"; }
ca_before=$(ca_sum)
node $C "rm -f /etc/pki/libvirt/servercert.pem /etc/pki/libvirt/clientcert.pem /etc/pki/libvirt/private/serverkey.pem /etc/pki/libvirt/private/clientkey.pem /etc/pki/qemu/server-* /etc/pki/qemu/client-*"
tls_role tls3c --check --diff
verdict "check mode: $C would get certificates, nothing else changes, nothing is written" \
    bash -c "[ \"$(recap tls3c $A)$(recap tls3c $B)\" = 00 ] && [ \"$(recap tls3c $C)\" -gt 0 ] && grep -q 'would issue the server certificate of $C' '$WORK/tls3c.log' && ! $LAB ssh $C test -e /etc/pki/libvirt/servercert.pem"
if tls_role tls3; then
    verdict "$C gets certificates from the same CA; $A and $B unchanged" \
        bash -c "[ \"$(recap tls3 $A)$(recap tls3 $B)\" = 00 ] && [ \"$(recap tls3 $C)\" -gt 0 ] && [ \"$ca_before\" = \"\$($LAB ssh $A 'sha256sum < /etc/pki/debvirt-cluster-ca/cacert.pem')\" ] && $LAB ssh $C 'openssl verify -CAfile /etc/pki/CA/cacert.pem /etc/pki/libvirt/servercert.pem /etc/pki/qemu/client-cert.pem' >/dev/null"
else
    tail -n 30 "$WORK/tls3.log"; fail "role cluster issues $C's certificates again"
fi
tls_role tls4
verdict "and then changed=0 again" all_unchanged tls4
verdict "virsh -c qemu+tls://$B/system from $A" [ "$(node $A "virsh -c qemu+tls://$B/system hostname" | tr -d '\r\n')" = $B ]
verdict "virsh -c qemu+tls://$A/system from $C" [ "$(node $C "virsh -c qemu+tls://$A/system hostname" | tr -d '\r\n')" = $A ]

define_guest $A dvtest-tls-hb
verdict "heartbeat guest dvtest-tls-hb boots on $A" start_guest $A dvtest-tls-hb
wait_log $A dvtest-tls-hb "heartbeat 2" 30 >/dev/null
mig $A tlscheck '{"name": "dvtest-tls-hb", "target": "'$B'", "transport": "tls"}' --check
verdict "check mode over TLS: the transport check passed, the move is planned" \
    [ "$(res tlscheck "r.get('changed'), r.get('transport'), [c['result'] for c in r.get('checks', []) if c['check'] == 'transport']")" = "(True, 'tls', ['passed'])" ]
moved_live tls dvtest-tls-hb '{"name": "dvtest-tls-hb", "target": "'$B'", "transport": "tls", "timeout": 120}' \
    "live migration $A -> $B over TLS"
verdict "the result says transport tls" [ "$(res tls "r.get('transport')")" = tls ]
verdict "the migration stream on the wire is TLS ($(head -n1 "$WORK/sniff-tls.out"))" [ "$(sniffed tls)" = tls ]
mig $A tls2 '{"name": "dvtest-tls-hb", "target": "'$B'", "transport": "tls"}'
verdict "again over TLS: changed=0" changed tls2 False
# A target that does not answer over TLS: named here at this machine's bridge address, where
# no libvirtd listens for TLS, as on a cluster set up without cluster_tls.
mig $B notls '{"name": "dvtest-tls-hb", "target": "'$A'", "transport": "tls", "members": {"'$B'": "qemu:///system", "'$A'": "qemu+ssh://root@'$TGT_HOST'/system"}}'
verdict "refused: a target without TLS, with a message naming cluster_tls" failed_with notls "cluster_tls: true"
verdict "... and the guest still runs on $B" [ "$(state_on $B dvtest-tls-hb)" = running ]

# --- 10. copies bounded by the timeout ----------------------------------------------------------
# A sparse 4 GiB volume: no room taken here, but 4 GiB to stream, far more than 2 s allow.
node $A "virsh vol-create-as $POOL dvtest-tls-big.img 4G --format raw >/dev/null"
define_guest $A dvtest-tls-off "$POOL_PATH/dvtest-tls-big.img"
t0=$SECONDS
mig $A offslow '{"name": "dvtest-tls-off", "target": "'$B'", "timeout": 2}'
verdict "an offline move whose disk copy outlasts its timeout is aborted ($((SECONDS - t0)) s)" \
    failed_with offslow "Copying disk vda of guest dvtest-tls-off to $B did not finish within timeout 2s and was aborted"
verdict "... the guest stays defined and stopped on $A with its disk, nothing on $B" \
    bash -c "[ \"\$($LAB ssh $A virsh domstate dvtest-tls-off | head -n1)\" = 'shut off' ] && $LAB ssh $A test -e $POOL_PATH/dvtest-tls-big.img && ! $LAB ssh $B virsh dominfo dvtest-tls-off >/dev/null 2>&1 && ! $LAB ssh $B test -e $POOL_PATH/dvtest-tls-big.img"
verdict "... and the message says where it is" failed_with offslow "Guest dvtest-tls-off is still stopped on $A"

# A container whose root directory holds a sparse 8 GiB file: tar reads all of it.
CT2_ROOT=/var/lib/dvtest-tls-ct/rootfs
ct_ok=1
node $A "mkdir -p $CT2_ROOT/bin $CT2_ROOT/proc $CT2_ROOT/sys $CT2_ROOT/dev $CT2_ROOT/tmp && cat > $CT2_ROOT/bin/busybox && chmod 0755 $CT2_ROOT/bin/busybox && ln -sf busybox $CT2_ROOT/bin/sh && ln -sf busybox $CT2_ROOT/bin/sleep && truncate -s 8G $CT2_ROOT/big" </bin/busybox || ct_ok=0
node $A "cat > /tmp/dvtest-tls-ct.xml && virsh -c lxc:///system define /tmp/dvtest-tls-ct.xml >/dev/null && virsh -c lxc:///system start dvtest-tls-ct >/dev/null" <<EOF || ct_ok=0
<domain type='lxc'>
  <name>dvtest-tls-ct</name>
  <memory unit='MiB'>64</memory>
  <vcpu>1</vcpu>
  <os><type>exe</type><init>/bin/sh</init><initarg>-c</initarg><initarg>trap 'exit 0' TERM; while :; do sleep 1; done</initarg></os>
  <devices>
    <filesystem type='mount'><source dir='$CT2_ROOT'/><target dir='/'/></filesystem>
    <console type='pty'/>
  </devices>
</domain>
EOF
verdict "a container with an 8 GiB (sparse) file runs on $A" [ $ct_ok = 1 ]
t0=$SECONDS
mig $A ctslow '{"name": "dvtest-tls-ct", "target": "'$B'", "uri": "lxc:///system", "timeout": 4}'
verdict "a container move whose copy outlasts its timeout is aborted ($((SECONDS - t0)) s)" \
    failed_with ctslow "Copying root directory $CT2_ROOT to the target did not finish within timeout 4s and was aborted"
verdict "... it runs on $A again, nothing of it is left on $B" \
    bash -c "[ \"\$($LAB ssh $A virsh -c lxc:///system domstate dvtest-tls-ct | head -n1)\" = running ] && ! $LAB ssh $B virsh -c lxc:///system dominfo dvtest-tls-ct >/dev/null 2>&1 && ! $LAB ssh $B test -e /var/lib/dvtest-tls-ct/rootfs/big"

finish
