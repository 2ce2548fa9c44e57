#!/usr/bin/env bash
# Rolling-upgrade test on the lab: playbook debvirt.cluster.rolling_upgrade on dvlab1..3.
# Uses only objects named dvtest-ru-*; reboots every node, one at a time, under the lab test
# lock; ends with every node up, the cluster quorate with 3 votes and nothing of its own left.
#
# The nodes have no package mirror, so the test brings the upgrade: a package
# dvtest-ru-marker built here with dpkg-deb, version 1 installed on every node, newer versions
# in a flat repository copied onto each node and named by a sources.list.d entry. For the
# test's duration an apt.conf.d drop-in makes apt read that source only, with index lists of
# its own: the nodes' own sources point at a mirror they cannot reach, and their stale lists
# offer upgrades that could never be downloaded. The nodes are containers, whose boot_id is
# the machine's kernel's: the playbook is told to watch PID 1's start time instead.
#
#  1. check mode reports the upgrade and changes nothing: no guest moved, no package, no reboot
#  2. the upgrade to version 2: every node at version 2 and rebooted; the nodes were done one
#     at a time (the play's results never interleave nodes; each node's upgrade and reboot
#     come after the previous node's); the running guests were live-moved and kept counting
#     across their node's reboot (no second boot, no gap in the heartbeat); every guest ends
#     where it started, in the state it had; the cluster stayed quorate throughout (sampled)
#  3. a rerun with nothing to upgrade is changed=0: no guest moves, no reboot; check mode too
#  4. a failure: version 3 is broken for dvlab2 only. dvlab1 is upgraded; the play stops at
#     dvlab2 with a message that says so; dvlab2 stays drained (its guest runs elsewhere, the
#     record and the pacemaker mark say so) at version 2; dvlab3 is untouched
#  5. resume: with the package mended, a rerun skips dvlab1 (nothing pending), finishes
#     dvlab2 (its guest comes back) and upgrades dvlab3
#  6. a node drained by hand (evacuate.yml) with an upgrade pending is upgraded and rebooted
#     but stays drained; restore.yml brings its guest back
#  7. rolling_upgrade_force on one node (rolling_upgrade_hosts): evacuated, rebooted and
#     restored with nothing to upgrade; the other nodes untouched
#  8. with dvlab3's corosync stopped, forcing dvlab1 through the cycle is refused (its reboot
#     would cost quorum) before anything is touched
# Prints "N passed, M failed" last; exits non-zero on any failure.

# Checks are functions run through verdict, which shellcheck cannot follow.
# shellcheck disable=SC2317
set -uo pipefail

# shellcheck source=tests/lab/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
NODES="dvlab1 dvlab2 dvlab3"
PKG=dvtest-ru-marker
REPO=/var/lib/dvtest-ru-repo
LISTS=/var/lib/dvtest-ru-lists
RECORD=/etc/ansible/facts.d/debvirt_evacuated.fact
# The start of PID 1 in clock ticks since the kernel booted: new on every boot of a container.
BOOT_TIME_COMMAND="cut -d' ' -f22 /proc/1/stat"
# g1 and g2 run (and print a heartbeat), g3 is defined but stopped.
declare -A HOME_OF=([dvtest-ru-g1]=dvlab1 [dvtest-ru-g2]=dvlab2 [dvtest-ru-g3]=dvlab3)
declare -A STATE_OF=([dvtest-ru-g1]=running [dvtest-ru-g2]=running [dvtest-ru-g3]="shut off")
GUESTS="dvtest-ru-g1 dvtest-ru-g2 dvtest-ru-g3"
SAMPLER=
LEAVING=
STOPPED=

# all_of CMD...: every command (a string, evaluated in this shell) succeeds.
all_of() {
    local c
    for c in "$@"; do eval "$c" || { echo "  not so: $c"; return 1; }; done
}

stop_sampler() {
    [ -n "$SAMPLER" ] || return 0
    kill "$SAMPLER" 2>/dev/null; wait "$SAMPLER" 2>/dev/null; SAMPLER=
}

# Every node up, libvirtd running, the cluster quorate with 3 votes: how the lab is left.
lab_whole() {
    local n deadline=$((SECONDS + 90))
    while [ "$SECONDS" -lt "$deadline" ]; do
        for n in $NODES; do
            node "$n" 'systemctl is-active -q libvirtd && corosync-quorumtool -s 2>/dev/null | grep -q "^Total votes: *3$" && corosync-quorumtool -s | grep -q "^Quorate: *Yes"' 2>/dev/null || continue 2
        done
        return 0
    done
    echo "  after 90 s not every node is up with libvirtd and a quorate 3-vote cluster"; return 1
}

cleanup() {
    local n
    stop_sampler
    clean_guests dvtest-ru- dvlab1 dvlab2 dvlab3
    for n in $NODES; do
        # An evacuation record of this test's guests with its drained mark, the package, its
        # repository and the apt configuration that points at it.
        node "$n" "if grep -q dvtest-ru- $RECORD 2>/dev/null; then rm -f $RECORD; crm_attribute --node \$(hostname) --name debvirt-drained --delete --lifetime forever >/dev/null 2>&1; fi
dpkg -P $PKG >/dev/null 2>&1; rm -rf /etc/apt/sources.list.d/dvtest-ru.list /etc/apt/apt.conf.d/99dvtest-ru $REPO $LISTS" </dev/null 2>/dev/null || true
    done
    # Section 8 takes dvlab3 out of the cluster for a moment.
    [ -z "$STOPPED" ] || node dvlab3 'systemctl start corosync pacemaker' || true
    STOPPED=
    [ -z "$LEAVING" ] || verdict "the lab is left whole: every node up, libvirtd running, quorate with 3 votes" lab_whole
}
finish() { LEAVING=1; lab_finish "upgrade test"; }
trap 'echo interrupted; finish' INT TERM

# Lab tests take turns, and this one reboots every node.
lab_lock
lab_prepare || finish
for n in $NODES; do
    node "$n" true || { fail "$n answers over ssh"; finish; }
done
command -v dpkg-scanpackages >/dev/null || apt-get install -y -q dpkg-dev >/dev/null \
    || { fail "install dpkg-dev (dpkg-scanpackages)"; finish; }
cleanup
verdict "the cluster is whole before the test" lab_whole || finish

# The playbook empties each node of every guest, and a reboot stops whatever stays: the test
# does neither to guests it does not own.
foreign=$(for n in $NODES; do
    node "$n" 'virsh list --all --name; virsh -c lxc:///system list --all --name' 2>/dev/null \
        | grep -v -e '^dvtest-ru-' -e '^$' | sed "s/^/$n: /"
done)
if [ -n "$foreign" ]; then
    echo "$foreign"
    fail "the lab nodes hold no guests of others (the rolling upgrade would move or stop them)"
    finish
fi

# --- the package and its repositories -----------------------------------------------------------
# build VERSION [broken]: $WORK/debs/dvtest-ru-marker_VERSION_all.deb (or under broken/)
build() {
    local v=$1 out=$WORK/debs d=$WORK/pkg
    rm -rf "$d"; mkdir -p "$d/DEBIAN" "$d/usr/share/$PKG"
    cat >"$d/DEBIAN/control" <<EOF
Package: $PKG
Version: $v
Architecture: all
Maintainer: debvirt tests <root@localhost>
Section: misc
Priority: optional
Description: debvirt rolling-upgrade test marker
 Carries nothing but its version, in /usr/share/$PKG/version.
EOF
    echo "$v" >"$d/usr/share/$PKG/version"
    if [ "${2:-}" = broken ]; then
        out=$WORK/debs/broken
        printf '#!/bin/sh\necho "%s %s refuses to install (a test of a failed upgrade)" >&2\nexit 1\n' "$PKG" "$v" >"$d/DEBIAN/preinst"
        chmod 0755 "$d/DEBIAN/preinst"
    fi
    mkdir -p "$out"
    dpkg-deb --root-owner-group -Zgzip -b "$d" "$out/${PKG}_${v}_all.deb" >/dev/null
}
# publish NODE DEB...: the node's repository holds exactly these packages.
publish() {
    local n=$1 r=$WORK/repo-$1; shift
    rm -rf "$r"; mkdir -p "$r"; cp "$@" "$r/"
    (cd "$r" && dpkg-scanpackages -m . /dev/null 2>/dev/null >Packages) || return 1
    tar -C "$r" -cf - . | node "$n" "rm -rf $REPO && mkdir -p $REPO && tar -C $REPO -xf -"
}
version_on() { node "$1" "dpkg-query -W -f '\${Version} \${db:Status-Abbrev}' $PKG 2>/dev/null" | tr -d ' '; }
versions() { local n; for n in $NODES; do printf '%s=%s ' "$n" "$(version_on "$n")"; done; }

build 1; build 2; build 3; build 3 broken; build 4
setup_ok=1
for n in $NODES; do
    node "$n" "cat > /tmp/$PKG.deb && dpkg -i /tmp/$PKG.deb >/dev/null && rm -f /tmp/$PKG.deb" <"$WORK/debs/${PKG}_1_all.deb" || setup_ok=0
    publish "$n" "$WORK/debs/${PKG}_2_all.deb" || setup_ok=0
    node "$n" "echo 'deb [trusted=yes] file:$REPO ./' > /etc/apt/sources.list.d/dvtest-ru.list && mkdir -p $LISTS/partial && cat > /etc/apt/apt.conf.d/99dvtest-ru" <<EOF || setup_ok=0
// The lab has no mirror: only the test's repository, with lists of its own (upgrade-test.sh).
Dir::Etc::SourceList "/dev/null";
Dir::State::Lists "$LISTS/";
EOF
done
push_images dvlab1 dvlab2 dvlab3 || setup_ok=0
verdict "$PKG 1 on every node, version 2 in its repository, apt reading only that ($(versions))" \
    [ "$setup_ok$(versions)" = "1dvlab1=1ii dvlab2=1ii dvlab3=1ii " ]

# --- the guests ----------------------------------------------------------------------------------
define_guest() {  # HOST NAME
    node "$1" "cat > /tmp/$2.xml && virsh define /tmp/$2.xml >/dev/null && rm -f /tmp/$2.xml" <<EOF
<domain type='qemu'>
  <name>$2</name>
  <memory unit='MiB'>192</memory>
  <vcpu>1</vcpu>
  <os>
    <type arch='x86_64'>hvm</type>
    <kernel>$IMAGES/vmlinux</kernel>
    <initrd>$IMAGES/initrd.img</initrd>
    <cmdline>console=ttyS0 no_timer_check</cmdline>
  </os>
  <features><acpi/></features>
  <on_poweroff>destroy</on_poweroff>
  <devices>
    <serial type='pty'><log file='/var/log/libvirt/qemu/$2.serial.log' append='on'/></serial>
    <console type='pty'/>
  </devices>
</domain>
EOF
}
where() {  # "guest node state" for every guest, wherever it is
    local n
    for n in $NODES; do
        # shellcheck disable=SC2016  # expanded by the node's shell
        node "$n" 'for d in $(virsh list --all --name | grep "^dvtest-ru-"); do echo "$d $(hostname) $(virsh domstate $d | head -n1)"; done'
    done | sort
}
at_home() {
    local g expected=""
    for g in $GUESTS; do expected+="$g ${HOME_OF[$g]} ${STATE_OF[$g]}"$'\n'; done
    [ "$(where)" = "${expected%$'\n'}" ] || { echo "  guests: $(where | tr '\n' ';')"; return 1; }
}
guests_ok=1
for g in $GUESTS; do define_guest "${HOME_OF[$g]}" "$g" || guests_ok=0; done
for g in dvtest-ru-g1 dvtest-ru-g2; do
    node "${HOME_OF[$g]}" "virsh start $g" >/dev/null || guests_ok=0
done
for g in dvtest-ru-g1 dvtest-ru-g2; do wait_log "${HOME_OF[$g]}" "$g" "heartbeat 2" 90 || guests_ok=0; done
verdict "guests: g1 on dvlab1 and g2 on dvlab2 running and counting, g3 on dvlab3 stopped" \
    all_of "[ $guests_ok = 1 ]" at_home

none_drained() {
    local n
    for n in $NODES; do
        if node "$n" "test -e $RECORD"; then echo "  $n has $RECORD"; return 1; fi
    done
}

# --- what the nodes and the play say ------------------------------------------------------------
boot_of() { node "$1" "$BOOT_TIME_COMMAND" 2>/dev/null; }
boots() { local n; for n in $NODES; do printf '%s=%s ' "$n" "$(boot_of "$n")"; done; }
# boot_wall NODE: when its PID 1 started, in seconds since the epoch (the kernel is shared, so
# the machine's boot time plus PID 1's start ticks).
boot_wall() {
    local btime ticks
    btime=$(awk '/^btime/{print $2}' /proc/stat)
    ticks=$(boot_of "$1")
    echo $((btime + ticks / $(getconf CLK_TCK)))
}
# upgraded_at NODE VERSION: when dpkg installed that version, in seconds since the epoch.
upgraded_at() {
    local line
    line=$(node "$1" "grep ' status installed $PKG:all $2\$' /var/log/dpkg.log | tail -n1")
    [ -n "$line" ] && date -d "$(cut -d' ' -f1,2 <<<"$line")" +%s
}
playbook() {  # TAG [options]
    local tag=$1; shift
    ansible-playbook -i "$INVENTORY" debvirt.cluster.rolling_upgrade \
        -e "rolling_upgrade_boot_time_command=\"$BOOT_TIME_COMMAND\"" "$@" >"$WORK/$tag.log" 2>&1
}
recap() {  # TAG HOST FIELD: a number from the play recap
    awk -v h="$2" -v f="$3" '/^PLAY RECAP/{r=1; next} r && $1 == h {for(i=1;i<=NF;i++) if (index($i, f "=") == 1) {split($i,a,"="); print a[2]}}' "$WORK/$1.log"
}
changed_total() { local n s=0; for n in $NODES; do s=$((s + $(recap "$1" "$n" changed))); done; echo $s; }
# The order in which the play reported results: one node name a line, runs folded.
result_order() { sed -n 's/^\(ok\|changed\|fatal\|skipping\): \[\([^]]*\)\].*/\2/p' "$WORK/$1.log" | sed 's/ -> .*//' | uniq | tr '\n' ' '; }

# A sampler records, every 2 s, each node's quorum view and where the running guests count.
sample() {
    local n
    while :; do
        for n in $NODES; do
            # shellcheck disable=SC2016  # expanded by the node's shell
            echo "$(date +%s) $n $(timeout 5 "$LAB" ssh "$n" 'q=$(corosync-quorumtool -s 2>/dev/null | sed -n "s/^Quorate: *//p"); b=$(cut -d" " -f22 /proc/1/stat); g=""
for d in $(virsh list --name 2>/dev/null | grep "^dvtest-ru-"); do g="$g $d:$(sed -n "s/.*heartbeat \([0-9]\+\).*/\1/p" /var/log/libvirt/qemu/$d.serial.log | tail -n1)"; done
echo "quorate=${q:-none} boot=$b$g"' 2>/dev/null || echo down)"
        done
        sleep 2
    done
}
start_sampler() { : >"$WORK/samples-$1"; sample >>"$WORK/samples-$1" 2>/dev/null & SAMPLER=$!; }

# quorum_held TAG: in every round of samples at least two nodes saw a quorate cluster.
quorum_held() {
    python - "$WORK/samples-$1" <<'EOF'
import sys
rounds, current = [], {}
for line in open(sys.argv[1]):
    f = line.split()
    if len(f) < 3:
        continue
    if f[1] in current:
        rounds.append(current); current = {}
    current[f[1]] = "quorate=Yes" in f
rounds.append(current)
# The sampler may be stopped half-way through a round.
rounds = [r for r in rounds if len(r) == 3]
bad = [r for r in rounds if sum(r.values()) < 2]
print("  %d rounds of samples, %d with fewer than two quorate nodes" % (len(rounds), len(bad)))
sys.exit(1 if bad or len(rounds) < 5 else 0)
EOF
}
# corosync_history SINCE NODE...: corosync's own log on every node, from SINCE (epoch seconds):
# no node ever saw a membership without quorum, at most one node was out at any time, and
# the nodes left (and came back) in the order given.
corosync_history() {
    local since=$1 n; shift
    for n in $NODES; do
        node "$n" "corosync-quorumtool -l | awk '\$1 ~ /^[0-9]+\$/ {print \"ID\", \$1, \$3}'; journalctl -u corosync --since @$since --no-pager -o short-unix | grep -e 'QUORUM\] Members\[' -e 'non-primary'" | sed "s/^/$n /"
    done | python -c '
import re, sys
expected = sys.argv[1:]
names, events, bad = {}, [], []
for line in sys.stdin:
    f = line.split()
    if f[1] == "ID":
        names[f[2]] = f[3]; continue
    if "non-primary" in line:
        bad.append(line.strip()); continue
    m = re.search(r"Members\[\d+\]: ([\d ]+)", line)
    if m:
        events.append((float(f[1]), f[0], m.group(1).split()))
events.sort()
everyone = set(names)
out_seq = []
for t, seen_by, members in events:
    if members == [k for k, v in names.items() if v == seen_by]:
        continue    # a node that just started, before it joined: its own view, not the cluster
    out = sorted(everyone - set(members))
    if len(out) > 1 or 2 * len(members) <= len(everyone):
        bad.append("%s saw members %s at %d" % (seen_by, " ".join(members), t))
    label = " ".join(names[k] for k in out)
    if out and (not out_seq or out_seq[-1] != label):
        out_seq.append(label)
    if not out and out_seq and out_seq[-1] != "":
        out_seq.append("")
order = [x for x in out_seq if x]
print("  corosync: nodes out one at a time: %s; problems: %s" % (" ".join(order) or "none", bad or "none"))
sys.exit(0 if not bad and order == expected else 1)
' "$@"
}
# counted_across_reboot TAG GUEST HOME: samples taken just before and just after HOME's reboot
# (its PID 1 changed) find the guest running on another node, its heartbeat higher after.
counted_across_reboot() {
    python - "$WORK/samples-$1" "$2" "$3" <<'EOF'
import sys
path, guest, home = sys.argv[1:]
seen = []                 # (time, node, beat) of each sighting of the guest
last_old = change = None  # the last sample of home's old boot, the first of its new one
boot = None
for line in open(path):
    f = line.split()
    if len(f) < 3:
        continue
    t, n = int(f[0]), f[1]
    for item in f[2:]:
        name, _sep, beat = item.partition(":")
        if name == guest and beat:
            seen.append((t, n, int(beat)))
    b = [x for x in f if x.startswith("boot=")]
    if n == home and b and change is None:
        if boot is not None and b[0] != boot:
            change = t
        else:
            last_old = t
        boot = b[0]
if change is None:
    print("  no reboot of %s seen by the sampler" % home); sys.exit(1)
before = [w for w in seen if w[0] <= last_old]
after = [w for w in seen if w[0] >= change]
if not before or not after:
    print("  %s not seen around %s's reboot" % (guest, home)); sys.exit(1)
b, a = before[-1], after[0]
print("  %s: heartbeat %d on %s before %s's reboot, %d on %s after" % (guest, b[2], b[1], home, a[2], a[1]))
# Seen on the node before it was emptied is fine: the guest then counted on through the move too.
sys.exit(0 if a[1] != home and a[2] > b[2] else 1)
EOF
}
# one_boot GUEST: across every node's serial log, a single boot and no gap in the heartbeat.
one_boot() {
    local n
    for n in $NODES; do serial "$n" "$1" || true; done | python -c '
import re, sys
text = sys.stdin.read()
boots = text.count("DEBVIRT-TEST-GUEST-UP")
beats = sorted(set(int(b) for b in re.findall(r"heartbeat (\d+)", text)))
gaps = [(x, y) for x, y in zip(beats, beats[1:]) if y - x > 2]
print("  %s: %d boot(s), heartbeats %s..%s, gaps %s" % (sys.argv[1], boots, beats[:1], beats[-1:], gaps))
sys.exit(0 if boots == 1 and beats and not gaps else 1)
' "$1"
}
# serial_order VERSION NODE...: each node's upgrade, then its reboot, come after the previous
# node's reboot.
serial_order() {
    local version=$1 prev=0 n u r; shift
    for n in "$@"; do
        u=$(upgraded_at "$n" "$version"); r=$(boot_wall "$n")
        echo "  $n: upgraded at $(date -d "@${u:-0}" +%T), rebooted at $(date -d "@$r" +%T)"
        [ -n "$u" ] && [ "$u" -ge "$prev" ] && [ "$r" -ge "$u" ] || return 1
        prev=$r
    done
}

# --- 1. check mode ---------------------------------------------------------------------------------
boots0=$(boots)
t0=$SECONDS
playbook check --check --diff
verdict "check mode runs ($((SECONDS - t0)) s)" grep -q "^PLAY RECAP" "$WORK/check.log"
verdict "check mode plans the whole cycle on every node ($(changed_total check) changed)" all_of \
    "[ '$(recap check dvlab1 failed)$(recap check dvlab2 failed)$(recap check dvlab3 failed)' = 000 ]" \
    "[ $(grep -c "package(s) to upgrade ($PKG)\"" "$WORK/check.log") = 3 ]" "[ $(changed_total check) -ge 6 ]"
verdict "check mode changed nothing: versions, boots, guests" all_of \
    "[ '$(versions)' = 'dvlab1=1ii dvlab2=1ii dvlab3=1ii ' ]" "[ '$(boots)' = '$boots0' ]" at_home

# --- 2. the upgrade -------------------------------------------------------------------------------
start_sampler run
since=$(date +%s)
t0=$SECONDS
if playbook run; then pass "rolling upgrade to version 2 ($((SECONDS - t0)) s)"; else tail -n 40 "$WORK/run.log"; fail "rolling upgrade to version 2"; fi
sleep 4; stop_sampler
verdict "every node at version 2 ($(versions))" [ "$(versions)" = "dvlab1=2ii dvlab2=2ii dvlab3=2ii " ]
boots1=$(boots)
verdict "every node rebooted" python -c 'import sys; a=sys.argv[1].split(); b=sys.argv[2].split(); sys.exit(0 if all(x != y for x, y in zip(a, b)) and len(a) == 3 else 1)' "$boots0" "$boots1"
verdict "the play's results come node by node ($(result_order run))" [ "$(result_order run)" = "dvlab1 dvlab2 dvlab3 " ]
verdict "each node's upgrade and reboot came after the previous node's reboot" serial_order 2 dvlab1 dvlab2 dvlab3
verdict "the cluster stayed quorate throughout (two nodes quorate in every sample)" quorum_held run
verdict "corosync's log: one node out at a time, in order, never without quorum" corosync_history "$since" dvlab1 dvlab2 dvlab3
verdict "g1 kept counting on another node across dvlab1's reboot" counted_across_reboot run dvtest-ru-g1 dvlab1
verdict "g2 kept counting on another node across dvlab2's reboot" counted_across_reboot run dvtest-ru-g2 dvlab2
verdict "g1: one boot, no gap in its heartbeat" one_boot dvtest-ru-g1
verdict "g2: one boot, no gap in its heartbeat" one_boot dvtest-ru-g2
verdict "every guest is back where it started, in its state" at_home
verdict "no node is left drained" none_drained

# --- 3. nothing to upgrade -----------------------------------------------------------------------
t0=$SECONDS
playbook rerun
verdict "a rerun with nothing to upgrade: changed=0 ($((SECONDS - t0)) s)" \
    [ "$(changed_total rerun):$(grep -c 'nothing to upgrade; left as it is' "$WORK/rerun.log")" = "0:3" ]
verdict "... no reboot, no guest moved" all_of "[ '$(boots)' = '$boots1' ]" at_home
playbook recheck --check
verdict "check mode with nothing to upgrade: changed=0" [ "$(changed_total recheck)" = 0 ]

# --- 4. a failure on the second node ---------------------------------------------------------------
publish dvlab1 "$WORK/debs/${PKG}_3_all.deb"
publish dvlab2 "$WORK/debs/broken/${PKG}_3_all.deb"
publish dvlab3 "$WORK/debs/${PKG}_3_all.deb"
start_sampler fail
since=$(date +%s)
t0=$SECONDS
playbook fail; rc=$?
sleep 4; stop_sampler
boots2=$(boots)
verdict "the play fails ($((SECONDS - t0)) s)" [ "$rc" -ne 0 ]
verdict "... with a message that it stopped at dvlab2, which stays drained" all_of \
    "grep -q 'Rolling upgrade stopped at dvlab2: task .Upgrade its packages. failed' $WORK/fail.log" \
    "grep -q 'dvlab2 stays drained, its guests where the evacuation put them: dvtest-ru-g2 on dvlab[13] (recorded' $WORK/fail.log"
python -c 'import json, sys
for line in open(sys.argv[1]):
    if line.startswith("fatal: [dvlab2]") and "Rolling upgrade stopped" in line:
        print("  " + json.loads(line.split(" => ", 1)[1])["msg"].replace("\n", " "))' "$WORK/fail.log"
verdict "dvlab1 upgraded to 3 and rebooted; dvlab2 and dvlab3 at 2, not rebooted ($(versions))" all_of \
    "[ '$(versions)' = 'dvlab1=3ii dvlab2=2ii dvlab3=2ii ' ]" \
    "[ '$(cut -d' ' -f2- <<<"$boots2")' = '$(cut -d' ' -f2- <<<"$boots1")' ]" \
    "[ '$(cut -d' ' -f1 <<<"$boots2")' != '$(cut -d' ' -f1 <<<"$boots1")' ]"
verdict "dvlab3 untouched: no task ran there" all_of "! grep -q '\[dvlab3\]' $WORK/fail.log"
g2_at=$(where | awk '$1 == "dvtest-ru-g2" {print $2 " " $3 " " $4}')
verdict "dvlab2 drained: g2 runs on another node ($g2_at), g1 and g3 at home" all_of \
    "[[ '$g2_at' =~ ^dvlab[13]\ running ]]" \
    "[ '$(where | grep -v dvtest-ru-g2 | tr '\n' ';')' = 'dvtest-ru-g1 dvlab1 running;dvtest-ru-g3 dvlab3 shut off;' ]"
verdict "... its record names g2 and the rolling upgrade, its pacemaker mark is set" \
    node dvlab2 "grep -q '\"by\": \"rolling_upgrade\"' $RECORD && grep -q '\"name\": \"dvtest-ru-g2\"' $RECORD && [ \"\$(crm_attribute --node dvlab2 --name debvirt-drained --query --quiet --lifetime forever)\" = true ]"
verdict "the cluster stayed quorate throughout" quorum_held fail
verdict "corosync's log: only dvlab1 went out, never without quorum" corosync_history "$since" dvlab1

# --- 5. resume --------------------------------------------------------------------------------------
publish dvlab2 "$WORK/debs/${PKG}_3_all.deb"
start_sampler resume
since=$(date +%s)
t0=$SECONDS
if playbook resume; then pass "the rerun finishes the upgrade ($((SECONDS - t0)) s)"; else tail -n 40 "$WORK/resume.log"; fail "the rerun finishes the upgrade"; fi
sleep 4; stop_sampler
boots3=$(boots)
verdict "every node at version 3 ($(versions))" [ "$(versions)" = "dvlab1=3ii dvlab2=3ii dvlab3=3ii " ]
verdict "dvlab1 was left as it was: nothing to upgrade, no reboot" all_of \
    "grep -q 'dvlab1: nothing to upgrade; left as it is' $WORK/resume.log" \
    "[ '$(cut -d' ' -f1 <<<"$boots3")' = '$(cut -d' ' -f1 <<<"$boots2")' ]"
verdict "dvlab2 and dvlab3 upgraded and rebooted, one after the other" serial_order 3 dvlab2 dvlab3
verdict "g2 kept counting across dvlab2's reboot" counted_across_reboot resume dvtest-ru-g2 dvlab2
verdict "every guest is back where it started, in its state" at_home
verdict "g1 and g2: one boot each, no gap in the heartbeat" all_of "one_boot dvtest-ru-g1" "one_boot dvtest-ru-g2"
verdict "no node is left drained" none_drained
verdict "the cluster stayed quorate throughout" quorum_held resume
verdict "corosync's log: dvlab2 then dvlab3 went out, never without quorum" corosync_history "$since" dvlab2 dvlab3

# --- 6. a node drained by hand stays drained ----------------------------------------------------
# evacuate.yml empties dvlab3 (its stopped guest moves offline); version 4 is for dvlab3 alone.
publish dvlab3 "$WORK/debs/${PKG}_4_all.deb"
if ansible-playbook -i "$INVENTORY" debvirt.cluster.evacuate -e evacuate_node=dvlab3 >"$WORK/evacuate.log" 2>&1; then
    pass "evacuate.yml drains dvlab3 by hand"
else
    tail -n 30 "$WORK/evacuate.log"; fail "evacuate.yml drains dvlab3 by hand"
fi
boot3=$(boot_of dvlab3)
playbook byhand -e rolling_upgrade_hosts=dvlab3
verdict "the rolling upgrade of a node drained by hand upgrades it and reboots it ($(version_on dvlab3))" \
    all_of "[ '$(version_on dvlab3)' = 4ii ]" "[ '$(boot_of dvlab3)' != '$boot3' ]"
verdict "... and leaves it drained, as it says: g3 still away, the record still by evacuate" all_of \
    "grep -q 'dvlab3: 1 package(s) to upgrade ($PKG); drained by hand before, it stays drained' $WORK/byhand.log" \
    "where | grep -q '^dvtest-ru-g3 dvlab[12] shut off\$'" \
    "node dvlab3 'grep -q by.:..evacuate $RECORD'"
if ansible-playbook -i "$INVENTORY" debvirt.cluster.restore -e evacuate_node=dvlab3 >"$WORK/restore.log" 2>&1; then
    pass "restore.yml brings g3 back"
else
    tail -n 30 "$WORK/restore.log"; fail "restore.yml brings g3 back"
fi

# --- 7. forced ------------------------------------------------------------------------------------
boots4=$(boots)
t0=$SECONDS
playbook force -e rolling_upgrade_hosts=dvlab1 -e rolling_upgrade_force=true
verdict "forced on dvlab1 alone ($((SECONDS - t0)) s): nothing to upgrade, still evacuated and rebooted" all_of \
    "grep -q 'dvlab1: nothing to upgrade; forced' $WORK/force.log" \
    "[ '$(cut -d' ' -f1 <<<"$(boots)")' != '$(cut -d' ' -f1 <<<"$boots4")' ]" \
    "[ '$(cut -d' ' -f2- <<<"$(boots)")' = '$(cut -d' ' -f2- <<<"$boots4")' ]"
verdict "every guest is back where it started, in its state" at_home
verdict "g1: one boot, no gap in its heartbeat" one_boot dvtest-ru-g1
verdict "no node is left drained" none_drained

# --- 8. a reboot that would cost quorum is refused -------------------------------------------------
two_votes() {
    local _
    for _ in $(seq 30); do
        grep -q '^Total votes: *2$' <<<"$(node dvlab1 'corosync-quorumtool -s 2>/dev/null')" && return 0
        sleep 1
    done
    return 1
}
STOPPED=1
node dvlab3 'systemctl stop pacemaker corosync'
verdict "dvlab3 out of the cluster: 2 votes of 3 left" two_votes
boots5=$(boots)
playbook noquorum -e rolling_upgrade_hosts=dvlab1 -e rolling_upgrade_force=true; rc=$?
verdict "forcing dvlab1 down then is refused, before anything is touched" all_of "[ $rc -ne 0 ]" \
    "grep -q 'Rolling upgrade stopped at dvlab1: task .The cluster must stay quorate while the node is down. failed: Not taking dvlab1 down: the cluster would lose quorum without it (2 votes present, 2 needed). Bring the missing members back first. Nothing was changed on it.' $WORK/noquorum.log"
verdict "... dvlab1 not rebooted, no guest moved, nothing drained" all_of \
    "[ '$(cut -d' ' -f1-2 <<<"$(boots)")' = '$(cut -d' ' -f1-2 <<<"$boots5")' ]" at_home none_drained
node dvlab3 'systemctl start corosync pacemaker'
STOPPED=

finish
