#!/usr/bin/env bash
# Cluster test on the lab: role cluster and the modules cluster_member and
# cluster_info on real corosync 3 and pacemaker, in Debian hosts with systemd.
#
#  1. the first three nodes are put back to what the packages installed
#     (corosync's loopback-only default, no authkey, no cluster SSH trust)
#  2. check mode on that: predicts changes, changes nothing
#  3. the role forms a quorate 3-node cluster: same nodelist and authkey (0400)
#     everywhere, pacemaker online on all, SSH trust for virsh qemu+ssh://
#  4. a second run and check mode report changed=0
#  5. cluster_info agrees with corosync-quorumtool on every node
#  6. a fourth node (dvlab4, added to the lab for the test) joins: check mode
#     shows the nodelist diff and writes nothing; the role joins it; 4 votes
#  7. removing a node that runs a guest is refused, nothing changes
#  8. a node is removed (dvlab3): the rest stay quorate with 3 votes
#  9. a removal that would cost the rest their quorum is refused
# 10. a node of another cluster, and a cluster-name mismatch, are refused
#     with nothing changed
# 11. the lab is put back: dvlab4 removed through cluster_member, dvlab3
#     rejoins through the role, dvlab4 dropped from the lab
# 12. a two-node cluster (two_node, a cluster property) on a lab of its own
# Prints "N passed, M failed" last; exits non-zero on any failure.

# Most checks are functions run through verdict, which shellcheck cannot follow.
# shellcheck disable=SC2317
set -uo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
LAB=$HERE/lab.sh
STATE=${DEBVIRT_LAB_STATE:-/var/lib/debvirt-lab}
CACHE=${DEBVIRT_LAB_CACHE:-/var/cache/debvirt-lab}
TEMPLATE_ROOTFS=$CACHE/template/rootfs
INVENTORY=$STATE/inventory.ini
WORK=$(mktemp -d /tmp/debvirt-clustertest.XXXXXX)
trap '[ -n "${KEEP_WORK:-}" ] || rm -rf "$WORK"' EXIT
T_START=$SECONDS

PASSED=0
FAILED=0
pass() { PASSED=$((PASSED + 1)); echo "PASS: $*"; }
fail() { FAILED=$((FAILED + 1)); echo "FAIL: $*"; }
verdict() {
    local name=$1; shift
    if "$@"; then pass "$name"; else fail "$name"; fi
}
finish() {
    echo "cluster test: $((SECONDS - T_START)) s"
    echo "$PASSED passed, $FAILED failed"
    [ "$FAILED" -eq 0 ]
    exit
}

# shellcheck source=tests/env.sh
. "$ROOT/tests/env.sh"
# Lab tests reset nodes, restart daemons and change the cluster: two at once
# would break each other, so they take turns (tests of other parts of the lab
# should take this lock too). A test run by another holds it already.
if [ -z "${DEBVIRT_LAB_TEST_LOCKED:-}" ]; then
    exec 8>/run/debvirt-lab-test.lock
    flock -w 3600 8 || { echo "another lab test holds /run/debvirt-lab-test.lock"; exit 1; }
    export DEBVIRT_LAB_TEST_LOCKED=1
fi
"$ROOT/tests/sync-collection.sh" >/dev/null || { fail "copy the collection"; finish; }
export ANSIBLE_FORCE_COLOR=0 ANSIBLE_NOCOLOR=1 ANSIBLE_STDOUT_CALLBACK=default
export ANSIBLE_RETRY_FILES_ENABLED=0 ANSIBLE_PIPELINING=1 ANSIBLE_HOST_KEY_CHECKING=1

node() { "$LAB" ssh "$@"; }
lab_nodes() { sed -n 's/^\(dvlab[0-9]\+\) .*/\1/p' "$INVENTORY"; }

lab_up() {
    if ! "$LAB" up "$1" >"$WORK/lab-$1.log" 2>&1; then
        tail -n 20 "$WORK/lab-$1.log"; return 1
    fi
}

# The role on the hosts of group "nodes" that the inventory has now.
cat >"$WORK/cluster.yml" <<'EOF'
- name: The cluster
  hosts: nodes
  gather_facts: false
  roles:
    - role: debvirt.cluster.cluster
      vars:
        # The demo's name, so that the lab stays usable for tests/lab/demo.sh.
        cluster_name: debvirt
        cluster_token: 3000
        cluster_quorum_timeout: 60
EOF

run_role() {
    local tag=$1 t0 rc; shift
    t0=$EPOCHREALTIME
    ansible-playbook -i "$INVENTORY" "$WORK/cluster.yml" "$@" >"$WORK/$tag.log" 2>&1
    rc=$?
    awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f\n", b - a }' >"$WORK/$tag.time"
    return $rc
}

# member HOST ARGS-JSON [ansible options]: cluster_member on HOST; output in $WORK/member.log
member() {
    local host=$1 args=$2; shift 2
    ansible "$host" -i "$INVENTORY" -m debvirt.cluster.cluster_member -a "$args" "$@" >"$WORK/member.log" 2>&1
}

recap() { awk '/^PLAY RECAP/{r=1; next} r && /ok=/{for(i=1;i<=NF;i++) if ($i ~ /^changed=/) {split($i,a,"="); print $1, a[2]}}' "$WORK/$1.log"; }
all_changed_zero() {
    local n=0 host changed
    while read -r host changed; do
        n=$((n + 1))
        [ "$changed" = 0 ] || { echo "  $host: changed=$changed"; return 1; }
    done < <(recap "$1")
    [ "$n" -gt 0 ]
}
show_log() { echo "--- $1 (tail)"; tail -n "${2:-30}" "$WORK/$1"; echo "---"; }

# What a node's cluster state is, for "nothing changed" checks.
fingerprint() {
    node "$1" 'md5sum /etc/corosync/corosync.conf /etc/corosync/authkey 2>&1; systemctl is-active corosync;
               corosync-cmapctl -g totem.config_version 2>&1' 2>&1
}
fingerprints() { local n; for n in "$@"; do echo "== $n"; fingerprint "$n"; done; }

# "quorate expected total nodeids" from corosync-quorumtool on a node.
quorumtool() {
    node "$1" 'corosync-quorumtool -s -p' | awk '
        /^Quorate:/ {q = ($2 == "Yes") ? "true" : "false"}
        /^Expected votes:/ {e = $3}
        /^Total votes:/ {t = $3}
        /^Membership information/ {m = 1; next}
        m && $1 ~ /^[0-9]+$/ {ids = ids (ids ? "," : "") $1}
        END {print q, e, t, ids}'
}

# The same four from cluster_info run on the node.
cluster_info_summary() {
    # One line per host, "host | SUCCESS => {...}": the result is what follows "=> ".
    ansible "$1" -i "$INVENTORY" -m debvirt.cluster.cluster_info -a 'guests=false' -o 2>/dev/null \
        | sed 's/^[^>]*=> //' | python -c '
import json, sys
res = json.load(sys.stdin)
q = res["quorum"]
ids = sorted(m["nodeid"] for m in res["members"] if m["online"])
print(str(q["quorate"]).lower(), q["expected_votes"], q["total_votes"], ",".join(map(str, ids)))'
}

info_agrees_everywhere() {
    local n a b ok=0
    for n in "$@"; do
        a=$(quorumtool "$n"); b=$(cluster_info_summary "$n")
        b_sorted=$b
        a_sorted="$(cut -d' ' -f1-3 <<<"$a") $(cut -d' ' -f4 <<<"$a" | tr , '\n' | sort -n | paste -sd,)"
        if [ "$a_sorted" != "$b_sorted" ] || [ -z "$a" ]; then
            echo "  $n: corosync-quorumtool '$a_sorted', cluster_info '$b_sorted'"; ok=1
        fi
    done
    return "$ok"
}

quorate_with() {  # quorate_with VOTES NODE...
    local votes=$1 n; shift
    for n in "$@"; do
        [ "$(quorumtool "$n" | cut -d' ' -f1,3)" = "true $votes" ] || { echo "  $n: $(quorumtool "$n")"; return 1; }
    done
}

same_everywhere() {  # same_everywhere FILE NODE...
    local file=$1 n; shift
    for n in "$@"; do node "$n" "md5sum < $file"; done | sort -u | wc -l | grep -qx 1
}

# Back to what the packages installed: the loopback-only default config, no
# authkey, a CIB of the default cluster, no cluster SSH trust. Lab nodes come
# from a template that ran no cluster, so its files are the reference.
reset_node() {
    local n=$1
    node "$n" 'systemctl stop pacemaker corosync; rm -f /etc/corosync/authkey /etc/corosync/corosync.conf.debvirt-removed;
               rm -rf /var/lib/pacemaker/cib/* /var/lib/pacemaker/cib.debvirt-before-join;
               rm -f /root/.ssh/id_debvirt_cluster /root/.ssh/id_debvirt_cluster.pub /root/.ssh/known_hosts /root/.ssh/config;
               sed -i "/debvirt.cluster: members of/,/debvirt.cluster: members of/d; / debvirt-cluster@/d" /root/.ssh/authorized_keys' \
        && node "$n" 'cat > /etc/corosync/corosync.conf' <"$TEMPLATE_ROOTFS/etc/corosync/corosync.conf" \
        && node "$n" 'systemctl enable --now corosync pacemaker'
}

# --- 1. fresh nodes -------------------------------------------------------------------------
have=$(lab_nodes 2>/dev/null | wc -l)
if [ "$have" -lt 3 ] || [ "$have" -gt 3 ]; then
    lab_up 3 || { fail "lab of 3 nodes"; finish; }
fi
THREE=(dvlab1 dvlab2 dvlab3)
ok=1
for n in "${THREE[@]}"; do node "$n" 'virsh -q destroy dvtest-busy; virsh -q undefine dvtest-busy' >/dev/null 2>&1; reset_node "$n" || ok=0; done
verdict "three nodes reset to the packages' default" [ $ok = 1 ]
fingerprints "${THREE[@]}" >"$WORK/fresh.fp"

# --- 2. check mode on fresh nodes ---------------------------------------------------------------
if run_role check1 --check --diff; then pass "check mode on fresh nodes succeeds"; else show_log check1.log; fail "check mode on fresh nodes succeeds"; fi
verdict "check mode predicts the cluster" grep -q 'would join cluster debvirt' "$WORK/check1.log"
fingerprints "${THREE[@]}" >"$WORK/check1.fp"
verdict "check mode changed nothing" cmp -s "$WORK/fresh.fp" "$WORK/check1.fp"

# --- 3. form ------------------------------------------------------------------------------------------
if run_role form; then pass "the role forms the cluster ($(cat "$WORK/form.time") s)"; else show_log form.log 40; fail "the role forms the cluster"; fi
FORM_TIME=$(cat "$WORK/form.time")
verdict "3 nodes quorate with 3 votes on every node" quorate_with 3 "${THREE[@]}"
verdict "same corosync.conf on every node" same_everywhere /etc/corosync/corosync.conf "${THREE[@]}"
verdict "same authkey on every node" same_everywhere /etc/corosync/authkey "${THREE[@]}"
modes=$(for n in "${THREE[@]}"; do node "$n" 'stat -c %a /etc/corosync/authkey'; done | sort -u | xargs)
verdict "authkey mode 0400 everywhere ($modes)" [ "$modes" = 400 ]
verdict "knet, aes256, sha256, token 3000" node dvlab1 'corosync-cmapctl totem | grep -q "totem.crypto_cipher (str) = aes256" && corosync-cmapctl totem | grep -q "totem.crypto_hash (str) = sha256" && corosync-cmapctl totem | grep -q "totem.transport (str) = knet" && corosync-cmapctl totem | grep -q "totem.token (u32) = 3000"'
key_head=$(node dvlab1 'base64 -w0 /etc/corosync/authkey' | cut -c1-24)
verdict "the authkey is in no Ansible output" bash -c "[ -n '$key_head' ] && ! grep -qF '$key_head' '$WORK/form.log'"
pm_ok=1
for n in "${THREE[@]}"; do
    for _ in $(seq 30); do
        node "$n" 'crm_mon -1 2>/dev/null | grep -q "Online: \[ dvlab1 dvlab2 dvlab3 \]"' && break
        sleep 2
    done
    node "$n" 'crm_mon -1 2>/dev/null | grep -q "Online: \[ dvlab1 dvlab2 dvlab3 \]"' || { pm_ok=0; echo "  $n: $(node "$n" 'crm_mon -1 2>&1 | grep -E "Online|DC"')"; }
done
verdict "pacemaker sees all 3 nodes online on every node" [ $pm_ok = 1 ]
trust_ok=1
for a in "${THREE[@]}"; do
    for b in "${THREE[@]}"; do
        [ "$a" = "$b" ] && continue
        node "$a" "virsh -c qemu+ssh://root@$b/system hostname" 2>&1 | grep -qx "$b" || { trust_ok=0; echo "  $a -> $b failed"; }
    done
done
verdict "virsh qemu+ssh:// works from each node to each other" [ $trust_ok = 1 ]
verdict "host keys are pinned, not ignored" node dvlab1 "grep -q '^dvlab2,10.77.0.12 ssh-ed25519 ' /root/.ssh/known_hosts && ! grep -qi 'StrictHostKeyChecking no' /root/.ssh/config"

# --- 4. idempotence ------------------------------------------------------------------------------
if run_role again && all_changed_zero again; then pass "second run changed=0 ($(cat "$WORK/again.time") s)"; else show_log again.log 40; fail "second run changed=0"; fi
if run_role check2 --check --diff && all_changed_zero check2; then pass "check mode after apply changed=0"; else show_log check2.log; fail "check mode after apply changed=0"; fi

# --- 5. cluster_info ----------------------------------------------------------------------------------
verdict "cluster_info agrees with corosync-quorumtool on every node" info_agrees_everywhere "${THREE[@]}"

# --- 6. a fourth node joins ------------------------------------------------------------------------
if lab_up 4; then pass "lab grows to 4 nodes"; else fail "lab grows to 4 nodes"; finish; fi
FOUR=(dvlab1 dvlab2 dvlab3 dvlab4)
reset_node dvlab4 >/dev/null 2>&1
# Planning a join reads the new node over SSH, so the trust (tag cluster_ssh)
# has to be there before check mode can show the join.
run_role trust4 --tags cluster_ssh || { show_log trust4.log; fail "SSH trust for dvlab4"; }
fingerprints "${FOUR[@]}" >"$WORK/before4.fp"
if run_role join4 --check --diff; then pass "check mode with a fourth node succeeds"; else show_log join4.log; fail "check mode with a fourth node succeeds"; fi
verdict "check mode shows dvlab4 added to the nodelist" grep -q '"name": "dvlab4"' "$WORK/join4.log"
fingerprints "${FOUR[@]}" | grep -v known_hosts >"$WORK/after4.fp"
verdict "check mode did not touch corosync" cmp -s <(grep -v known_hosts "$WORK/before4.fp") "$WORK/after4.fp"
if run_role join4b; then pass "the role joins dvlab4 ($(cat "$WORK/join4b.time") s)"; else show_log join4b.log 40; fail "the role joins dvlab4"; fi
verdict "4 nodes quorate with 4 votes on every node" quorate_with 4 "${FOUR[@]}"
verdict "same corosync.conf on the 4 nodes" same_everywhere /etc/corosync/corosync.conf "${FOUR[@]}"
verdict "config_version bumped to 4" node dvlab4 'corosync-cmapctl -g totem.config_version | grep -q "= 4$"'
verdict "cluster_info agrees with corosync-quorumtool on the 4 nodes" info_agrees_everywhere "${FOUR[@]}"

# --- 7. a node with a guest ----------------------------------------------------------------------------
node dvlab3 "cat > /tmp/dvtest-busy.xml" <<'EOF'
<domain type='qemu'>
  <name>dvtest-busy</name>
  <memory unit='MiB'>32</memory>
  <vcpu>1</vcpu>
  <os><type arch='x86_64'>hvm</type></os>
  <features><acpi/></features>
</domain>
EOF
node dvlab3 'virsh -q define /tmp/dvtest-busy.xml && virsh -q start dvtest-busy' >/dev/null
guests_seen() {
    ansible dvlab1 -i "$INVENTORY" -m debvirt.cluster.cluster_info -o 2>/dev/null | sed 's/^[^>]*=> //' \
        | python -c '
import json, sys
members = {m["name"]: m for m in json.load(sys.stdin)["members"]}
sys.exit(0 if {"name": "dvtest-busy", "state": "running"} in (members["dvlab3"]["guests"] or []) else 1)'
}
verdict "cluster_info on dvlab1 lists the guest running on dvlab3 (through its libvirt)" guests_seen
fingerprints "${FOUR[@]}" >"$WORK/busy-before.fp"
if member dvlab1 '{"name": "dvlab3", "state": "absent"}'; then
    fail "removing dvlab3 while it runs a guest is refused"
elif grep -q 'still runs guest(s) dvtest-busy' "$WORK/member.log"; then
    pass "removing dvlab3 while it runs a guest is refused"
else
    show_log member.log; fail "removing dvlab3 while it runs a guest is refused with a clear message"
fi
fingerprints "${FOUR[@]}" >"$WORK/busy-after.fp"
verdict "... and nothing changed" cmp -s "$WORK/busy-before.fp" "$WORK/busy-after.fp"
node dvlab3 'virsh -q destroy dvtest-busy; virsh -q undefine dvtest-busy' >/dev/null

# --- 8. remove a node --------------------------------------------------------------------------------------
member dvlab1 '{"name": "dvlab3", "state": "absent"}' --check --diff
verdict "check mode reports the removal" grep -q '"action": "remove"' "$WORK/member.log"
fingerprints "${FOUR[@]}" >"$WORK/rm-check.fp"
verdict "... and changes nothing" cmp -s "$WORK/busy-after.fp" "$WORK/rm-check.fp"
REST=(dvlab1 dvlab2 dvlab4)
if member dvlab1 '{"name": "dvlab3", "state": "absent"}'; then pass "dvlab3 removed"; else show_log member.log; fail "dvlab3 removed"; fi
verdict "the rest stay quorate with 3 votes" quorate_with 3 "${REST[@]}"
verdict "expected votes are 3 on the rest" bash -c "for n in ${REST[*]}; do '$LAB' ssh \$n 'corosync-quorumtool -s' | grep -q '^Expected votes: *3$' || exit 1; done"
verdict "dvlab3 stopped, its config moved aside" node dvlab3 '! systemctl is-active --quiet corosync && test -f /etc/corosync/corosync.conf.debvirt-removed && ! test -e /etc/corosync/corosync.conf'
verdict "same corosync.conf on the rest" same_everywhere /etc/corosync/corosync.conf "${REST[@]}"
if member dvlab1 '{"name": "dvlab3", "state": "absent"}' && grep -q '"changed": false' "$WORK/member.log"; then
    pass "removing it again changes nothing"
else
    show_log member.log; fail "removing it again changes nothing"
fi
verdict "cluster_info agrees with corosync-quorumtool on the rest" info_agrees_everywhere "${REST[@]}"

# --- 9. quorum guard --------------------------------------------------------------------------------------
node dvlab4 'systemctl stop pacemaker corosync'
fingerprints dvlab1 dvlab2 >"$WORK/q-before.fp"
# force: guests (other tests' too) must not be what stops it here; quorum must.
if member dvlab1 '{"name": "dvlab2", "state": "absent", "force": true}'; then
    fail "removing dvlab2 while dvlab4 is down is refused"
elif grep -q 'without quorum' "$WORK/member.log"; then
    pass "removing dvlab2 while dvlab4 is down is refused (would lose quorum)"
else
    show_log member.log; fail "removing dvlab2 while dvlab4 is down is refused with a clear message"
fi
fingerprints dvlab1 dvlab2 >"$WORK/q-after.fp"
verdict "... and nothing changed" cmp -s "$WORK/q-before.fp" "$WORK/q-after.fp"
node dvlab4 'systemctl start corosync pacemaker'
verdict "dvlab4 back: 3 votes" bash -c "for i in \$(seq 30); do '$LAB' ssh dvlab1 'corosync-quorumtool -s' | grep -q '^Total votes: *3$' && exit 0; sleep 1; done; exit 1"

# --- 10. another cluster, a wrong name --------------------------------------------------------------------
node dvlab3 'mv /etc/corosync/corosync.conf.debvirt-removed /root/dvtest-old-corosync.conf; cat > /etc/corosync/corosync.conf' <"$TEMPLATE_ROOTFS/etc/corosync/corosync.conf"
if member dvlab3 '{"name": "dvlab3", "addresses": ["10.77.0.13"], "cluster_name": "other"}'; then
    pass "dvlab3 forms a cluster of its own, \"other\""
else
    show_log member.log; fail "dvlab3 forms a cluster of its own, \"other\""
fi
fingerprints "${FOUR[@]}" >"$WORK/other-before.fp"
if member dvlab1 '{"name": "dvlab3", "addresses": ["10.77.0.13"], "cluster_name": "debvirt"}'; then
    fail "adding a node of another cluster is refused"
elif grep -q "already belongs to cluster 'other'" "$WORK/member.log"; then
    pass "adding a node of another cluster is refused"
else
    show_log member.log; fail "adding a node of another cluster is refused with a clear message"
fi
if member dvlab1 '{"name": "dvlab4", "addresses": ["10.77.0.14"], "cluster_name": "wrong"}'; then
    fail "a cluster-name mismatch is refused"
elif grep -q "Cluster name mismatch" "$WORK/member.log"; then
    pass "a cluster-name mismatch is refused"
else
    show_log member.log; fail "a cluster-name mismatch is refused with a clear message"
fi
fingerprints "${FOUR[@]}" >"$WORK/other-after.fp"
verdict "... and nothing changed on any node" cmp -s "$WORK/other-before.fp" "$WORK/other-after.fp"
if member dvlab1 '{"name": "dvlab9", "addresses": ["not an address", "x"], "nodeid": 0}'; then
    fail "bad input is refused"
elif grep -q "nodeid must be at least 1" "$WORK/member.log"; then
    pass "bad input is refused before anything is read"
else
    show_log member.log; fail "bad input is refused with a clear message"
fi

# --- 11. back to three ----------------------------------------------------------------------------------------
if member dvlab1 '{"name": "dvlab4", "state": "absent"}'; then pass "dvlab4 removed"; else show_log member.log; fail "dvlab4 removed"; fi
reset_node dvlab3 >/dev/null 2>&1
lab_up 3 || fail "lab back to 3 nodes"
if run_role rejoin; then pass "a removed node (dvlab3) joins again through the role"; else show_log rejoin.log 40; fail "a removed node joins again"; fi
verdict "3 nodes quorate with 3 votes" quorate_with 3 "${THREE[@]}"
verdict "cluster_info agrees with corosync-quorumtool, 3 nodes" info_agrees_everywhere "${THREE[@]}"
# --- 12. a two-node cluster, on a lab of its own ---------------------------------------------------------
# two_node keeps one node quorate when the other stops; cluster properties are
# set only where listed, once. A lab of its own (names, bridge, network) leaves
# the three-node cluster above alone.
PAIR_ENV=(DEBVIRT_LAB_PREFIX=dvpair DEBVIRT_LAB_NET=10.79.0 DEBVIRT_LAB_STATE=/var/lib/debvirt-lab-pair)
pair() { env "${PAIR_ENV[@]}" "$LAB" "$@"; }
cat >"$WORK/pair.yml" <<'EOF'
- name: Two-node cluster
  hosts: nodes
  gather_facts: false
  roles:
    - role: debvirt.cluster.cluster
      vars:
        cluster_name: pair
        cluster_two_node: true
        cluster_quorum_timeout: 60
        cluster_pacemaker_properties:
          stonith-enabled: false
EOF
PAIR_TIME=-
if pair up 2 >"$WORK/pair-lab.log" 2>&1; then
    PAIR_INV=/var/lib/debvirt-lab-pair/inventory.ini
    t0=$SECONDS
    if ansible-playbook -i "$PAIR_INV" "$WORK/pair.yml" >"$WORK/pair1.log" 2>&1; then
        PAIR_TIME=$((SECONDS - t0))
        pass "a two-node cluster forms ($PAIR_TIME s)"
    else
        show_log pair1.log; fail "a two-node cluster forms"
    fi
    verdict "two_node and wait_for_all are on" bash -c "env ${PAIR_ENV[*]} '$LAB' ssh dvpair1 'corosync-quorumtool -s' | grep -q '^Flags: *2Node Quorate WaitForAll'"
    verdict "stonith-enabled is false, as asked" bash -c "env ${PAIR_ENV[*]} '$LAB' ssh dvpair1 'crm_attribute --type crm_config --name stonith-enabled --query --quiet' | grep -qx false"
    if ansible-playbook -i "$PAIR_INV" "$WORK/pair.yml" >"$WORK/pair2.log" 2>&1 && all_changed_zero pair2; then
        pass "second run of the two-node cluster changed=0"
    else
        show_log pair2.log; fail "second run of the two-node cluster changed=0"
    fi
    pair ssh dvpair2 'systemctl stop pacemaker corosync'
    verdict "one node of two stays quorate when the other stops" bash -c "sleep 3; env ${PAIR_ENV[*]} '$LAB' ssh dvpair1 'corosync-quorumtool -s' | grep -q '^Quorate: *Yes'"
else
    tail -n 20 "$WORK/pair-lab.log"; fail "a lab of two nodes for the two-node cluster"
fi
pair down >/dev/null 2>&1 || true

echo "timings: form a 3-node cluster ${FORM_TIME} s; second run $(cat "$WORK/again.time") s; join of dvlab4 $(cat "$WORK/join4b.time") s; two-node cluster $PAIR_TIME s"
finish
