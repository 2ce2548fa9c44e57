#!/usr/bin/env bash
# Role test on the lab: role node through playbooks/site.yml, on the lab's
# nodes (a lab that is up is reused as it is; otherwise one of
# DEBVIRT_LAB_NODES nodes, default 3, is built), then the other lab tests
# (tests/lab/{cluster,migration,placement,inventory,upgrade,bridge}-test.sh),
# counted in the same totals.
#
#  1. the managed files are put back as the packages left them (a fresh node)
#  2. check mode on that fresh state: succeeds, predicts changes, changes nothing
#  3. apply: succeeds        4. apply again: changed=0 on every host
#  5. check mode again: changed=0
#  6. libvirtd enabled, running and answering; host UUIDs distinct per node and
#     as recorded in the local fact; virt_type qemu (the lab has no /dev/kvm)
#  7. bad input fails early with a clear message (node_virt_type=kvm here,
#     a malformed node_host_uuid)
# Prints "N passed, M failed" last; exits non-zero on any failure.
set -uo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
LAB=$HERE/lab.sh
# A test wants nodes as the current template makes them; what an older lab holds is disposable.
export DEBVIRT_LAB_REBUILD_STALE=1
STATE=${DEBVIRT_LAB_STATE:-/var/lib/debvirt-lab}
CACHE=${DEBVIRT_LAB_CACHE:-/var/cache/debvirt-lab}
TEMPLATE_ROOTFS=$CACHE/template/rootfs
WORK=$(mktemp -d /tmp/debvirt-labtest.XXXXXX)
trap '[ -n "${KEEP_WORK:-}" ] || rm -rf "$WORK"' EXIT

PASSED=0
FAILED=0
pass() { PASSED=$((PASSED + 1)); echo "PASS: $*"; }
fail() { FAILED=$((FAILED + 1)); echo "FAIL: $*"; }
# verdict NAME CMD...: the test NAME passes when CMD succeeds.
verdict() {
    local name=$1; shift
    if "$@"; then pass "$name"; else fail "$name"; fi
}
SKIPPED=0
finish() {
    # What could not run here is said, never counted as passed.
    [ "$SKIPPED" -eq 0 ] || echo "$SKIPPED skipped (see the SKIP lines above)"
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
command -v ansible-playbook >/dev/null \
    || { fail "no ansible-playbook in $DEBVIRT_VENV (run tests/setup-host.sh)"; finish; }
"$ROOT/tests/sync-collection.sh" >/dev/null \
    || { fail "could not copy the collection to $DEBVIRT_BUILD"; finish; }

# A lab someone else brought up keeps its size; only a missing one is built.
lab_size=()
[ -f "$STATE/inventory.ini" ] || lab_size=("${DEBVIRT_LAB_NODES:-3}")
if ! "$LAB" up "${lab_size[@]}" >"$WORK/lab.log" 2>&1; then
    tail -n 20 "$WORK/lab.log"
    fail "lab up"
    finish
fi
pass "lab up"
INVENTORY=$STATE/inventory.ini
mapfile -t NODES < <(sed -n 's/^\(dvlab[0-9]\+\) .*/\1/p' "$INVENTORY")
echo "nodes: ${NODES[*]}"

export ANSIBLE_FORCE_COLOR=0 ANSIBLE_NOCOLOR=1 ANSIBLE_STDOUT_CALLBACK=default
export ANSIBLE_RETRY_FILES_ENABLED=0 ANSIBLE_PIPELINING=1

node() { "$LAB" ssh "$@"; }

# Runs site.yml; output in $WORK/$1.log, wall time in $WORK/$1.time.
run_site() {
    local tag=$1 t0 rc; shift
    t0=$EPOCHREALTIME
    ansible-playbook -i "$INVENTORY" debvirt.cluster.site "$@" >"$WORK/$tag.log" 2>&1
    rc=$?
    awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f\n", b - a }' >"$WORK/$tag.time"
    return $rc
}

# "host changed" lines from the PLAY RECAP of a run.
recap() { awk '/^PLAY RECAP/{r=1; next} r && /ok=/{for(i=1;i<=NF;i++) if ($i ~ /^changed=/) {split($i,a,"="); print $1, a[2]}}' "$WORK/$1.log"; }

all_changed_zero() {
    local n=0 host changed
    while read -r host changed; do
        n=$((n + 1))
        [ "$changed" = 0 ] || { echo "  $host: changed=$changed"; return 1; }
    done < <(recap "$1")
    [ "$n" -eq "${#NODES[@]}" ]
}

all_changed_some() {
    local n=0 host changed
    while read -r host changed; do
        [ "$changed" -gt 0 ] && n=$((n + 1))
    done < <(recap "$1")
    [ "$n" -eq "${#NODES[@]}" ]
}

show_log() { echo "--- $1.log (tail)"; tail -n "${2:-30}" "$WORK/$1.log"; echo "---"; }

MANAGED="/etc/libvirt/libvirtd.conf /etc/default/libvirtd /etc/ansible/facts.d/debvirt.fact"
fingerprint() { node "$1" "md5sum $MANAGED 2>&1; systemctl is-enabled libvirtd; systemctl is-active libvirtd"; }

# 1. Fresh state: the files the role manages as the packages installed them, and no guest
#    "demo" that tests/lab/demo.sh left (the upgrade test refuses to move guests it does not own).
fresh_ok=1
for n in "${NODES[@]}"; do
    node "$n" 'virsh destroy demo; virsh undefine demo' >/dev/null 2>&1
    if ! { node "$n" 'cat > /etc/libvirt/libvirtd.conf' <"$TEMPLATE_ROOTFS/etc/libvirt/libvirtd.conf" \
        && node "$n" 'cat > /etc/default/libvirtd' <"$TEMPLATE_ROOTFS/etc/default/libvirtd" \
        && node "$n" 'rm -f /etc/ansible/facts.d/debvirt.fact; rmdir /etc/ansible/facts.d /etc/ansible 2>/dev/null; systemctl restart libvirtd'; }; then
        fresh_ok=0
    fi
    fingerprint "$n" >"$WORK/before.$n"
done
verdict "nodes reset to a fresh state" [ $fresh_ok = 1 ]

# 2. Check mode on the fresh state.
if run_site check1 --check --diff; then
    pass "check mode on fresh nodes succeeds ($(cat "$WORK/check1.time") s)"
else
    show_log check1; fail "check mode on fresh nodes succeeds"
fi
all_changed_some check1 || recap check1
verdict "check mode predicts changes on every node" all_changed_some check1
verdict "check mode shows the host_uuid diff" grep -q '^+host_uuid = "' "$WORK/check1.log"
unchanged=1
for n in "${NODES[@]}"; do
    fingerprint "$n" >"$WORK/after.$n"
    cmp -s "$WORK/before.$n" "$WORK/after.$n" || { unchanged=0; diff "$WORK/before.$n" "$WORK/after.$n"; }
done
verdict "check mode changed nothing" [ $unchanged = 1 ]

# 3. Apply.
if run_site apply1; then
    pass "first run succeeds ($(cat "$WORK/apply1.time") s)"
else
    show_log apply1 40; fail "first run succeeds"
fi
verdict "warns that guests use software emulation" grep -q 'WARNING: KVM is not usable' "$WORK/apply1.log"

# 4. Apply again.
if run_site apply2 && all_changed_zero apply2; then
    pass "second run reports changed=0 on every node ($(cat "$WORK/apply2.time") s)"
else
    show_log apply2 60; fail "second run reports changed=0 on every node"
fi

# 5. Check mode again.
if run_site check2 --check --diff && all_changed_zero check2; then
    pass "check mode after apply reports changed=0"
else
    show_log check2 40; fail "check mode after apply reports changed=0"
fi

# 6. The result on the nodes.
declare -A UUIDS=()
for n in "${NODES[@]}"; do
    if node "$n" 'systemctl is-enabled libvirtd && systemctl is-active libvirtd' >/dev/null \
        && node "$n" 'virsh -c qemu:///system version' >/dev/null; then
        pass "$n: libvirtd enabled, running and answering"
    else
        fail "$n: libvirtd enabled, running and answering"
    fi
    uuid=$(node "$n" "virsh -c qemu:///system capabilities | sed -n 's:.*<uuid>\(.*\)</uuid>.*:\1:p' | head -n1")
    fact=$(node "$n" "python3 -c 'import json; f = json.load(open(\"/etc/ansible/facts.d/debvirt.fact\")); print(f[\"host_uuid\"], f[\"virt_type\"])'")
    if [ -n "$uuid" ] && [ "$fact" = "$uuid qemu" ]; then
        pass "$n: libvirt host UUID $uuid is the recorded one; virt_type qemu"
    else
        fail "$n: libvirt host UUID '$uuid' vs fact '$fact'"
    fi
    UUIDS[$uuid]=$n
done
if [ "${#UUIDS[@]}" -eq "${#NODES[@]}" ]; then
    pass "host UUIDs differ between the ${#NODES[@]} nodes"
else
    fail "host UUIDs differ between the ${#NODES[@]} nodes (${!UUIDS[*]})"
fi

# 7. Bad input stops the role in preflight, with a message that says why.
if run_site badkvm -e node_virt_type=kvm; then
    fail "node_virt_type=kvm without KVM fails"
elif grep -q 'node_virt_type is kvm, but on' "$WORK/badkvm.log"; then
    pass "node_virt_type=kvm without KVM fails with a clear message"
else
    show_log badkvm; fail "node_virt_type=kvm without KVM fails with a clear message"
fi
if run_site baduuid -e node_host_uuid=11111111-1111-1111-1111-111111111111; then
    fail "a same-digit node_host_uuid fails"
elif grep -q 'node_host_uuid must be a UUID' "$WORK/baduuid.log" \
    && ! grep -q 'changed=[1-9]' "$WORK/baduuid.log"; then
    pass "a same-digit node_host_uuid fails before changing anything"
else
    show_log baduuid; fail "a same-digit node_host_uuid fails before changing anything"
fi

echo "timings: check on fresh $(cat "$WORK/check1.time") s, first run $(cat "$WORK/apply1.time") s, second run $(cat "$WORK/apply2.time") s (${#NODES[@]} nodes)"

# 8. The other lab tests, each its own script so that it also runs alone; their
#    verdicts count here too. The cluster test comes first (it leaves the
#    3-node cluster the others start from); the bridge test brings up a
#    one-node lab of its own.
for t in cluster migration placement inventory upgrade bridge; do
    echo "=== $t test"
    bash "$HERE/$t-test.sh" 2>&1 | tee "$WORK/$t-test.out"
    counts=$(tail -n1 "$WORK/$t-test.out")
    if [[ $counts =~ ^([0-9]+)\ passed,\ ([0-9]+)\ failed(,\ ([0-9]+)\ skipped)?$ ]]; then
        PASSED=$((PASSED + BASH_REMATCH[1])); FAILED=$((FAILED + BASH_REMATCH[2]))
        SKIPPED=$((SKIPPED + ${BASH_REMATCH[4]:-0}))
    else
        fail "$t test ran to the end"
    fi
done
finish
