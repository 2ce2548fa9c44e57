# shellcheck shell=bash
# Helpers the lab tests share; source it, do not run it:
#   . "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
# It sets HERE, ROOT, LAB, STATE, INVENTORY, IMAGES and an empty WORK directory, and counts
# PASSED and FAILED. A test defines cleanup() and calls lab_finish NAME at its end.

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
LAB=$HERE/lab.sh
STATE=${DEBVIRT_LAB_STATE:-/var/lib/debvirt-lab}
INVENTORY=$STATE/inventory.ini
IMAGES=${DEBVIRT_TEST_IMAGES:-/var/cache/debvirt-test/guest}
WORK=$(mktemp -d "/tmp/debvirt-$(basename "$0" .sh).XXXXXX")
T_START=$SECONDS

PASSED=0
FAILED=0
pass() { PASSED=$((PASSED + 1)); echo "PASS: $*"; }
fail() { FAILED=$((FAILED + 1)); echo "FAIL: $*"; }
verdict() {  # NAME COMMAND...: pass when the command succeeds
    local name=$1; shift
    if "$@"; then pass "$name"; else fail "$name"; fi
}

node() { "$LAB" ssh "$@"; }

# lab_finish NAME: clean up, report, exit non-zero on any failure.
lab_finish() {
    declare -F cleanup >/dev/null && cleanup
    [ -n "${KEEP_WORK:-}" ] || rm -rf "$WORK"
    echo "$1: $((SECONDS - T_START)) s"
    echo "$PASSED passed, $FAILED failed"
    [ "$FAILED" -eq 0 ]
    exit
}

# Tests of one lab take turns (the cluster test resets the nodes' SSH trust and corosync); when
# run from test.sh, that holds the lock already. One lock per lab, named as harness.py names it.
lab_lock() {
    [ -n "${DEBVIRT_LAB_TEST_LOCKED:-}" ] && return 0
    local lock
    lock=/run/$(basename "$STATE")-test.lock
    exec 8>"$lock"
    flock -w 3600 8 || { echo "another lab test holds $lock"; exit 1; }
    export DEBVIRT_LAB_TEST_LOCKED=$lock
    # The time a test reports is its own, not its wait for the others.
    echo "lab test lock taken after $((SECONDS - T_START)) s"
    T_START=$SECONDS
}

# lab_prepare: the collection copied, Ansible's output made parseable, the lab up.
lab_prepare() {
    # shellcheck source=tests/env.sh
    . "$ROOT/tests/env.sh"
    "$ROOT/tests/sync-collection.sh" >/dev/null || { fail "copy the collection"; return 1; }
    export ANSIBLE_FORCE_COLOR=0 ANSIBLE_NOCOLOR=1 ANSIBLE_RETRY_FILES_ENABLED=0 ANSIBLE_PIPELINING=1
    export ANSIBLE_STDOUT_CALLBACK=default ANSIBLE_HOST_KEY_CHECKING=1
    if [ ! -f "$INVENTORY" ]; then
        "$LAB" up >"$WORK/lab.log" 2>&1 || { tail -n 20 "$WORK/lab.log"; fail "lab up"; return 1; }
    fi
}

# --- module results ------------------------------------------------------------------------------
# run_module HOST MODULE TAG ARGS-JSON [ansible options]: the result as JSON in $WORK/TAG.json.
# -vvv keeps the diff in the result (the default callback drops it below that).
run_module() {
    local host=$1 module=$2 tag=$3 args=$4; shift 4
    # -o: one line per host, "host | STATUS => {result}".
    ansible "$host" -i "$INVENTORY" -m "$module" -a "$args" -o "$@" >"$WORK/$tag.out" 2>&1
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

# --- guests on the nodes ----------------------------------------------------------------------------
# clean_guests PREFIX NODE...: every virtual machine and container named PREFIX* destroyed and
# undefined on the nodes, with the serial logs that outlive them (a guest that moved away leaves
# its log behind). Nothing else of a test is touched.
clean_guests() {
    local prefix=$1 n; shift
    for n in "$@"; do
        # Copied first and run with stdin closed: virsh would otherwise eat the rest of the script.
        node "$n" "cat > /tmp/$prefix-clean.sh" <<'EOF' 2>/dev/null || true
for uri in qemu:///system lxc:///system; do
    for d in $(virsh -c $uri list --all --name | grep "^$1"); do
        virsh -c $uri destroy "$d" >/dev/null 2>&1; virsh -c $uri undefine "$d" >/dev/null 2>&1
    done
done
rm -f /var/log/libvirt/qemu/"$1"*.serial.log
EOF
        node "$n" "sh /tmp/$prefix-clean.sh $prefix </dev/null; rm -f /tmp/$prefix-clean.sh" 2>/dev/null || true
    done
}

# busybox_root HOST DIR: a container root directory on HOST with busybox and /loop.sh, which
# counts seconds in /counter (going on from its last value) and logs start and clean stop to /events.
busybox_root() {
    node "$1" "mkdir -p $2/bin $2/proc $2/sys $2/dev $2/tmp && cat > $2/bin/busybox && chmod 0755 $2/bin/busybox && for c in sh sleep cat; do ln -sf busybox $2/bin/\$c; done" </bin/busybox || return 1
    node "$1" "cat > $2/loop.sh" <<'EOF'
# PID 1 gets only the signals it handles: a clean stop is SIGTERM, handled here.
trap 'echo stopped >> /events; exit 0' TERM
echo started >> /events
n=$(cat /counter 2>/dev/null || echo 0)
while :; do n=$((n + 1)); echo "$n" > /counter; sleep 1; done
EOF
}

state_on() { node "$1" "virsh ${3:+-c $3} domstate $2 2>/dev/null | head -n1" | tr -d '\r'; }
defined_on() { node "$1" "virsh ${3:+-c $3} dominfo $2" >/dev/null 2>&1; }
persistent_on() { grep -q '^Persistent: *yes' <<<"$(node "$1" "virsh dominfo $2 2>/dev/null")"; }

# The test guest (tests/images: a kernel and a busybox initramfs that prints a boot marker and
# a heartbeat every 2 s on its serial port) onto the nodes named.
push_images() {
    local n f
    [ -s "$IMAGES/vmlinux" ] || "$ROOT/tests/images/build-test-guest.sh" >/dev/null || return 1
    for n in "$@"; do
        node "$n" "mkdir -p $IMAGES" || return 1
        for f in vmlinux initrd.img; do
            node "$n" "cat > $IMAGES/$f.tmp && chmod 0644 $IMAGES/$f.tmp && mv -f $IMAGES/$f.tmp $IMAGES/$f" \
                <"$IMAGES/$f" || return 1
        done
    done
}
serial() { node "$1" "cat /var/log/libvirt/qemu/$2.serial.log 2>/dev/null"; }
last_beat() { serial "$1" "$2" | sed -n 's/.*heartbeat \([0-9]\+\).*/\1/p' | tail -n1; }
first_beat() { serial "$1" "$2" | sed -n 's/.*heartbeat \([0-9]\+\).*/\1/p' | head -n1; }
wait_log() {  # HOST GUEST PATTERN TIMEOUT
    local deadline=$((SECONDS + $4))
    while [ $SECONDS -lt "$deadline" ]; do
        grep -q -- "$3" <<<"$(serial "$1" "$2")" && return 0
        sleep 1
    done
    echo "  timed out after $4 s waiting for '$3' in the serial log of $2 on $1"; return 1
}
beyond() { [ -n "$1" ] && [ -n "$2" ] && [ "$1" -gt "$2" ]; }
# A restarted guest would count from 1 again; a beat printed while the module returned may be
# in either node's log.
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

# --- the cluster ----------------------------------------------------------------------------------
quorate_on() { grep -q '^Quorate: *Yes' <<<"$(node "$1" 'corosync-quorumtool -s -p 2>/dev/null')"; }
# trust A B: A reaches B's libvirt over the cluster's SSH trust (another test may be re-creating
# it right now: a minute's grace).
trust() {
    local _
    for _ in $(seq 30); do
        node "$1" "virsh -c 'qemu+ssh://root@$2/system?no_tty=1' version >/dev/null 2>&1" && return 0
        sleep 2
    done
    return 1
}
