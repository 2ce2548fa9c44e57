#!/usr/bin/env bash
# Placement test on the lab: modules debvirt.cluster.guest and .container with node:, on the
# three-node cluster dvlab1..3. Uses only objects named dvtest-pl-*; never changes membership.
#
#  1. a heartbeat guest (tests/images) declared with node: dvlab2, the task run on dvlab1:
#     check mode defines nothing anywhere; the run defines and starts it on dvlab2 only; a
#     rerun and check mode are changed=0
#  2. the same guest declared with node: dvlab3 while it runs: check mode predicts the live
#     move (and the node change in the diff) and moves nothing; the run moves it live (still
#     counting on dvlab3, no second boot, undefined on dvlab2); a rerun is changed=0
#  3. refusals, nothing defined: the same name without node on dvlab1 (it lives on dvlab3), a
#     node that is no member, a container placed on another host than the task's
#  4. state absent with node removes the guest from the member that has it (dvlab3)
#  5. a container created on dvlab2 (node: dvlab2, the task run there) is declared with node:
#     dvlab3 on dvlab3: check mode predicts the restart move; the run stops it cleanly, copies
#     its root directory and starts it on dvlab3 (its counter goes on); a rerun is changed=0
# Prints "N passed, M failed" last; exits non-zero on any failure.

# Checks are functions run through verdict, which shellcheck cannot follow.
# shellcheck disable=SC2317
set -uo pipefail

# shellcheck source=tests/lab/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

A=dvlab1
B=dvlab2
C=dvlab3
HB=dvtest-pl-hb
CT=dvtest-pl-ct
CT_ROOT=/var/lib/dvtest-pl-ct/rootfs

cleanup() {
    local n
    clean_guests dvtest-pl- $A $B $C
    for n in $A $B $C; do node "$n" "rm -rf /var/lib/dvtest-pl-ct" 2>/dev/null || true; done
}
trap 'echo interrupted; lab_finish "placement test"' INT TERM

lab_lock
lab_prepare || lab_finish "placement test"
for n in $A $B $C; do
    node "$n" true || { fail "$n answers over ssh"; lab_finish "placement test"; }
done
if quorate_on $A && [ "$(node $A "grep -c 'name: dvlab[123]$' /etc/corosync/corosync.conf")" = 3 ]; then
    pass "$A, $B and $C form a quorate cluster"
else
    fail "$A, $B and $C form a quorate cluster (playbooks/site.yml forms it)"; lab_finish "placement test"
fi
if trust $A $B && trust $A $C && trust $C $B; then
    pass "the members reach each other's libvirt over the cluster's SSH trust"
else
    fail "the members reach each other's libvirt over the cluster's SSH trust"; lab_finish "placement test"
fi
cleanup
verdict "test guest image on $A, $B and $C" push_images $A $B $C

guest() {  # HOST TAG NODE|"" STATE [ansible options]: the guest module with the heartbeat guest's spec
    # (and GUEST_EXTRA's options)
    local host=$1 tag=$2 where=$3 state=$4; shift 4
    run_module "$host" debvirt.cluster.guest "$tag" "$(python -c 'import json, sys
a = {"name": sys.argv[1], "state": sys.argv[3], "virt_type": "qemu", "memory": 192, "vcpus": 1,
     "kernel": sys.argv[4] + "/vmlinux", "initrd": sys.argv[4] + "/initrd.img", "cmdline": "console=ttyS0",
     "serial_log": "/var/log/libvirt/qemu/%s.serial.log" % sys.argv[1]}
if sys.argv[2]:
    a["node"] = sys.argv[2]
a.update(json.loads(sys.argv[5]))
print(json.dumps(a))' "$HB" "$where" "$state" "$IMAGES" "${GUEST_EXTRA:-"{}"}")" "$@"
}
nowhere() {  # NAME HOST...: defined on none of the hosts
    local name=$1 n; shift
    for n in "$@"; do ! defined_on "$n" "$name" || { echo "  $name is defined on $n"; return 1; }; done
}

# --- 1. created on the node it names -------------------------------------------------------------
guest $A create-check $B running --check
verdict "check mode: a guest declared on $B, run on $A, would be created" changed create-check True
verdict "... and nothing is defined anywhere" nowhere $HB $A $B $C
guest $A create $B running
if changed create True; then pass "created on $B from $A"; else show create; fail "created on $B from $A"; fi
verdict "the result names node $B" [ "$(res create "r.get('node')")" = $B ]
verdict "running on $B, booted" wait_log $B $HB DEBVIRT-TEST-GUEST-UP 60
verdict "defined on $B only" nowhere $HB $A $C
guest $A create-again $B running
verdict "rerun: changed=0" changed create-again False
guest $A create-again-check $B running --check
verdict "check mode rerun: changed=0" changed create-again-check False

# --- 2. moved live to another node -------------------------------------------------------------
wait_log $B $HB "heartbeat 2" 30 >/dev/null
guest $A move-check $C running --check --diff -vvv
verdict "check mode: declared on $C, it would move" changed move-check True
verdict "check mode predicts a live move $B -> $C" \
    [ "$(res move-check "[r['migrated'][k] for k in ('from', 'to', 'mode')]")" = "['$B', '$C', 'live']" ]
verdict "the diff shows the node change" [ "$(res move-check "r['diff']['before'].get('node'), r['diff']['after'].get('node')")" = "('$B', '$C')" ]
verdict "check mode moved nothing" bash -c "[ \"\$($LAB ssh $B virsh domstate $HB | head -n1)\" = running ] && ! $LAB ssh $C virsh dominfo $HB >/dev/null 2>&1"

guest $A move $C running
after_src=$(last_beat $B $HB)
if changed move True; then
    pass "moved $B -> $C ($(res move "r['migrated'].get('mode')"), $(res move "r['migrated'].get('time_elapsed_ms')") ms, downtime $(res move "r['migrated'].get('downtime_ms')") ms)"
else
    show move; fail "moved $B -> $C"
fi
verdict "the result says migrated live from $B to $C" \
    [ "$(res move "[r['migrated'][k] for k in ('from', 'to', 'mode')], r.get('node')")" = "(['$B', '$C', 'live'], '$C')" ]
verdict "running and persistent on $C" bash -c "[ \"\$($LAB ssh $C virsh domstate $HB | head -n1)\" = running ] && $LAB ssh $C virsh dominfo $HB | grep -q '^Persistent: *yes'"
verdict "undefined on $B, never on $A" nowhere $HB $A $B
wait_log $C $HB heartbeat 20 >/dev/null
first=$(first_beat $C $HB)
echo "  heartbeat: $after_src last on $B, $first first on $C"
verdict "the heartbeat goes on on $C from where it was on $B" next_beat "$first" "$after_src"
verdict "no second boot on $C" bash -c "! $LAB ssh $C cat /var/log/libvirt/qemu/$HB.serial.log | grep -q DEBVIRT-TEST-GUEST-UP"
verdict "still counting on $C" counting $C $HB "$first"
guest $A move-again $C running
verdict "rerun: changed=0" changed move-again False

# --- 3. refusals ------------------------------------------------------------------------------------
guest $A dup "" running
verdict "the same name without node on $A is refused, naming $C" failed_with dup "already exists on $C"
verdict "... and nothing is defined on $A" nowhere $HB $A
guest $A nosuch dvtest-pl-nosuch running
verdict "a node that is no member is refused" failed_with nosuch "node dvtest-pl-nosuch is not a member of the cluster"
run_module $A debvirt.cluster.container ct-elsewhere \
    '{"name": "'$CT'", "node": "'$B'", "privileged": true, "rootfs": {"path": "'$CT_ROOT'"}}'
verdict "a container placed on another host than the task's is refused" failed_with ct-elsewhere "node $B is not this host ($A)"
verdict "... and nothing is defined" nowhere $CT $A $B

# --- 4. absent with node: gone wherever it is ---------------------------------------------------
guest $A absent-check $A absent --check
verdict "check mode: absent with node $A would remove it from $C" \
    [ "$(res absent-check "r.get('changed'), r.get('removed_from')")" = "(True, ['$C'])" ]
verdict "... and it still runs on $C" [ "$(state_on $C $HB)" = running ]
# The test guest has no ACPI daemon: it is powered off after a short wait.
GUEST_EXTRA='{"force": true, "shutdown_timeout": 5}' guest $A absent $A absent
verdict "absent with node $A removes it from $C" [ "$(res absent "r.get('changed'), r.get('removed_from')")" = "(True, ['$C'])" ]
verdict "... defined nowhere now" nowhere $HB $A $B $C
guest $A absent-again $A absent
verdict "rerun: changed=0" changed absent-again False

# --- 5. a container moved by its restart move ---------------------------------------------------
verdict "a busybox root directory on $B" busybox_root $B $CT_ROOT
container() {  # HOST TAG NODE [ansible options]
    local host=$1 tag=$2 where=$3; shift 3
    run_module "$host" debvirt.cluster.container "$tag" \
        '{"name": "'$CT'", "node": "'"$where"'", "state": "running", "privileged": true, "memory": 64,
          "rootfs": {"path": "'$CT_ROOT'"}, "command": ["/bin/sh", "/loop.sh"]}' "$@"
}
container $B ct-create $B
if changed ct-create True; then pass "container created and started on $B"; else show ct-create; fail "container created and started on $B"; fi
verdict "... on $B only" bash -c "[ \"\$($LAB ssh $B virsh -c lxc:///system domstate $CT | head -n1)\" = running ] && ! $LAB ssh $C virsh -c lxc:///system dominfo $CT >/dev/null 2>&1"
sleep 2
container $C ct-check $C --check
verdict "check mode on $C: the restart move $B -> $C is predicted" \
    [ "$(res ct-check "r.get('changed'), [r['migrated'][k] for k in ('from', 'to', 'mode')] if 'migrated' in r else r.get('msg')")" = "(True, ['$B', '$C', 'restart'])" ]
verdict "... and it still runs on $B" [ "$(state_on $B $CT lxc:///system)" = running ]
before=$(node $B "cat $CT_ROOT/counter")
container $C ct-move $C
if changed ct-move True; then
    pass "container moved $B -> $C by a restart (down $(res ct-move "r['migrated'].get('downtime_ms')") ms)"
else
    show ct-move; fail "container moved $B -> $C by a restart"
    node $B "grep 'init pid' /run/libvirt/lxc/$CT.xml; tail -n 5 /var/log/libvirt/lxc/$CT.log; journalctl -u libvirtd --since '-2 min' --no-pager | grep -v cgroup.controllers | tail -n 8"
fi
verdict "running on $C, gone from $B with its root directory" bash -c "[ \"\$($LAB ssh $C virsh -c lxc:///system domstate $CT | head -n1)\" = running ] && ! $LAB ssh $B virsh -c lxc:///system dominfo $CT >/dev/null 2>&1 && ! $LAB ssh $B test -e $CT_ROOT"
verdict "it stopped cleanly and started again" [ "$(node $C "tr '\n' ' ' < $CT_ROOT/events")" = "started stopped started " ]
sleep 2
verdict "its counter goes on from $before" beyond "$(node $C "cat $CT_ROOT/counter")" "$before"
container $C ct-again $C
verdict "rerun: changed=0" changed ct-again False

lab_finish "placement test"
