#!/usr/bin/env bash
# Inventory test on the lab: the debvirt.cluster.guests inventory plugin over the 3-node cluster.
# Uses only objects named dvtest-inv-* (guests, a network per node, a container root directory,
# a scratch directory on dvlab1); never changes the cluster's membership.
#
#  1. five guests across dvlab1..3 (test-image VMs: two running with a DHCP lease on a network
#     of their node, three shut off; a busybox container running on dvlab2, leased too), with
#     tags and descriptions
#  2. from the controller, members from dvlab1's corosync nodelist (lab key, pinned host keys):
#     every guest libvirt has on the three nodes is a host, with the node, state, type, uuid
#     and addresses libvirt reports, and the tags and description it was given; standard groups
#     (node, state, type, tag) and constructed ones (compose, groups, keyed_groups)
#  3. from the controller with explicit URIs and JMESPath filters: only what the filters keep
#  4. a play over one of its groups asks virsh on each guest's node and agrees
#  5. on dvlab1 itself, nodelist: localhost, over the SSH trust role cluster set up: the same
#     guests, nodes, states and addresses
#  6. the cache: a second run answers from it with the lab out of reach (no network at all)
#  7. libvirtd stopped on dvlab3 and an address where no node answers: both reported and
#     skipped, the others listed, nothing cached; fatal with strict: true; libvirtd restarted
# Ends with no dvtest-inv-* object left, libvirtd running on every node, the cluster quorate.
# Prints "N passed, M failed" last; exits non-zero on any failure.

# Checks are functions run through verdict, which shellcheck cannot follow.
# shellcheck disable=SC2317
set -uo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
LAB=$HERE/lab.sh
STATE=${DEBVIRT_LAB_STATE:-/var/lib/debvirt-lab}
INVENTORY=$STATE/inventory.ini
KEY=$STATE/id_ed25519
KNOWN=$STATE/known_hosts
NODES=(dvlab1 dvlab2 dvlab3)
declare -A ADDR=([dvlab1]=10.77.0.11 [dvlab2]=10.77.0.12 [dvlab3]=10.77.0.13)
# No node has this address: a member that is down.
GONE=10.77.0.99
WORK=$(mktemp -d /tmp/debvirt-invtest.XXXXXX)
IMAGES=/var/cache/debvirt-test/guest
CT_DIR=/var/lib/dvtest-inv-ct
# ansible-core and the collection for the run on dvlab1 (the nodes have no Ansible).
NODE_DIR=/tmp/dvtest-inv-ansible
T_START=$SECONDS
STOPPED_LIBVIRTD=

PASSED=0
FAILED=0
pass() { PASSED=$((PASSED + 1)); echo "PASS: $*"; }
fail() { FAILED=$((FAILED + 1)); echo "FAIL: $*"; }
verdict() {
    local name=$1; shift
    if "$@"; then pass "$name"; else fail "$name"; fi
}

node() { "$LAB" ssh "$@"; }

libvirtd_units="libvirtd.socket libvirtd-ro.socket libvirtd-admin.socket libvirtd.service"
restart_libvirtd() {
    local _
    # shellcheck disable=SC2086  # a list of units
    node "$1" "systemctl start $libvirtd_units"
    for _ in $(seq 30); do
        node "$1" "virsh -c qemu:///system version >/dev/null 2>&1 && virsh -c lxc:///system version >/dev/null 2>&1" && return 0
        sleep 1
    done
    return 1
}

cleanup() {
    local n
    if [ -n "$STOPPED_LIBVIRTD" ]; then
        restart_libvirtd "$STOPPED_LIBVIRTD" || echo "libvirtd on $STOPPED_LIBVIRTD did not come back"
        STOPPED_LIBVIRTD=
    fi
    for n in "${NODES[@]}"; do
        # Copied first and run with stdin closed: virsh would otherwise eat the rest of the script.
        node "$n" "cat > /tmp/dvtest-inv-cleanup.sh" <<'EOF' 2>/dev/null || true
for c in qemu:///system lxc:///system; do
    for d in $(virsh -c $c list --all --name | grep "^dvtest-inv-"); do
        virsh -c $c destroy "$d" >/dev/null 2>&1; virsh -c $c undefine "$d" >/dev/null 2>&1
    done
done
rm -f /var/log/libvirt/qemu/dvtest-inv-*.serial.log
for net in $(virsh net-list --all --name | grep "^dvtest-inv-"); do
    virsh net-destroy "$net" >/dev/null 2>&1; virsh net-undefine "$net" >/dev/null 2>&1
done
rm -rf /var/lib/dvtest-inv-ct /tmp/dvtest-inv-ansible /var/lib/libvirt/dnsmasq/dvtinvbr0.*
true
EOF
        node "$n" "sh /tmp/dvtest-inv-cleanup.sh </dev/null; rm -f /tmp/dvtest-inv-cleanup.sh" 2>/dev/null || true
    done
}
finish() {
    cleanup
    local left
    left=$(for n in "${NODES[@]}"; do node "$n" 'virsh list --all --name; virsh -c lxc:///system list --all --name; virsh net-list --all --name' 2>/dev/null; done | grep -c '^dvtest-inv-')
    if [ "$left" = 0 ]; then pass "cleanup: no dvtest-inv-* guest or network left"; else fail "cleanup: $left dvtest-inv-* objects left"; fi
    if quorate; then pass "the cluster is quorate with its 3 nodes"; else fail "the cluster is quorate with its 3 nodes"; fi
    [ -n "${KEEP_WORK:-}" ] || rm -rf "$WORK"
    echo "inventory test: $((SECONDS - T_START)) s"
    echo "$PASSED passed, $FAILED failed"
    [ "$FAILED" -eq 0 ]
    exit
}
trap 'echo interrupted; finish' INT TERM

quorate() {
    local q
    q=$(node dvlab1 'corosync-quorumtool -s' 2>/dev/null)
    grep -q '^Quorate: *Yes' <<<"$q" && [ "$(grep -c 'dvlab[123]' <<<"$q")" -ge 3 ]
}

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
for n in "${NODES[@]}"; do
    node "$n" true || { fail "$n answers over ssh"; finish; }
done
if ! quorate || ! node dvlab1 "virsh -c 'qemu+ssh://root@dvlab3/system?no_tty=1' version >/dev/null 2>&1"; then
    # The members and the SSH trust between them are what the plugin reads through.
    echo "cluster not formed (or no SSH trust): playbooks/site.yml"
    ansible-playbook -i "$INVENTORY" "$ROOT/playbooks/site.yml" >"$WORK/site.log" 2>&1 || tail -n 20 "$WORK/site.log"
fi
verdict "dvlab1..3 form a quorate cluster" quorate
[ -s "$IMAGES/vmlinux" ] || "$ROOT/tests/images/build-test-guest.sh" >/dev/null \
    || { fail "build the test guest image"; finish; }

# --- 1. the guests --------------------------------------------------------------------------------
cleanup
setup_ok=1
for n in "${NODES[@]}"; do
    node "$n" "mkdir -p $IMAGES" || setup_ok=0
    for f in vmlinux initrd.img; do
        node "$n" "cat > $IMAGES/$f.tmp && chmod 0644 $IMAGES/$f.tmp && mv -f $IMAGES/$f.tmp $IMAGES/$f" <"$IMAGES/$f" || setup_ok=0
    done
    # An isolated network of the node's own, with DHCP: the running guests' addresses.
    node "$n" "cat > /tmp/dvtest-inv-net.xml && virsh net-define /tmp/dvtest-inv-net.xml >/dev/null && virsh net-start dvtest-inv-net >/dev/null && rm -f /tmp/dvtest-inv-net.xml" <<'EOF' || setup_ok=0
<network><name>dvtest-inv-net</name><bridge name='dvtinvbr0'/>
  <ip address='192.168.177.1' netmask='255.255.255.0'><dhcp><range start='192.168.177.100' end='192.168.177.200'/></dhcp></ip>
</network>
EOF
done
# The container: busybox, asking for a lease (udhcpc without a script configures nothing, but
# the lease is what libvirt reports), then idle.
node dvlab2 "mkdir -p $CT_DIR/rootfs/bin $CT_DIR/rootfs/proc $CT_DIR/rootfs/sys $CT_DIR/rootfs/dev $CT_DIR/rootfs/tmp $CT_DIR/rootfs/etc && cat > $CT_DIR/rootfs/bin/busybox && chmod 0755 $CT_DIR/rootfs/bin/busybox && for c in sh sleep udhcpc ip; do ln -sf busybox $CT_DIR/rootfs/bin/\$c; done" </bin/busybox || setup_ok=0
verdict "test image, network dvtest-inv-net on every node, a busybox root on dvlab2" [ $setup_ok = 1 ]

# What each guest is given, and so what the inventory must show: name node type state memory
# tags (comma-separated) description.
GUESTS="dvtest-inv-web1 dvlab1 vm running 192 dvtest-inv,web,prod front end one
dvtest-inv-db1 dvlab1 vm stopped 128 dvtest-inv,db database one
dvtest-inv-web2 dvlab2 vm running 192 dvtest-inv,web front end two
dvtest-inv-ct2 dvlab2 container running 64 dvtest-inv,web,ct a busybox container
dvtest-inv-db3 dvlab3 vm stopped 256 dvtest-inv,db,prod database three
dvtest-inv-spare3 dvlab3 vm stopped 128 dvtest-inv spare"
python - "$GUESTS" "$IMAGES" "$CT_DIR" >"$WORK/guests.json" <<'EOF'
import json, sys
by_node = {}
for line in sys.argv[1].splitlines():
    name, node, kind, state, memory, tags, description = line.split(" ", 6)
    spec = {"name": name, "state": state, "memory": int(memory), "tags": tags.split(","),
            "description": description, "interfaces": [{"network": "dvtest-inv-net"}]}
    if kind == "vm":
        spec.update(virt_type="qemu", kernel=sys.argv[2] + "/vmlinux", initrd=sys.argv[2] + "/initrd.img",
                    cmdline="console=ttyS0 no_timer_check",
                    serial_log="/var/log/libvirt/qemu/%s.serial.log" % name)
    else:
        spec.update(uri="lxc:///system", privileged=True, rootfs={"path": sys.argv[3] + "/rootfs"},
                    command=["/bin/sh", "-c", "ip link set eth0 up; udhcpc -i eth0 -q -t 20 -n; exec sleep 100000"])
    by_node.setdefault(node, {"vms": [], "containers": []})["vms" if kind == "vm" else "containers"].append(spec)
print(json.dumps({"inv_guests": by_node}))
EOF
cat >"$WORK/guests.yml" <<'EOF'
- name: The inventory test's guests
  hosts: nodes
  gather_facts: false
  tasks:
    - name: Virtual machines
      debvirt.cluster.guest: "{{ item }}"
      loop: "{{ inv_guests[inventory_hostname].vms | default([]) }}"
      loop_control:
        label: "{{ item.name }}"
    - name: Containers
      debvirt.cluster.container: "{{ item }}"
      loop: "{{ inv_guests[inventory_hostname].containers | default([]) }}"
      loop_control:
        label: "{{ item.name }}"
EOF
if ansible-playbook -i "$INVENTORY" "$WORK/guests.yml" -e "@$WORK/guests.json" >"$WORK/guests.log" 2>&1; then
    pass "six guests defined across the three nodes (three running)"
else
    tail -n 30 "$WORK/guests.log"; fail "six guests defined across the three nodes"; finish
fi
leased() {  # NODE URI NAME: an address of the guest's lease within 60 s
    local _
    for _ in $(seq 60); do
        node "$1" "virsh -c $2 domifaddr --source lease $3 2>/dev/null" | grep -q 192.168.177. && return 0
        sleep 1
    done
    echo "  no lease for $3 on $1 within 60 s"; return 1
}
if leased dvlab1 qemu:///system dvtest-inv-web1 && leased dvlab2 qemu:///system dvtest-inv-web2 \
    && leased dvlab2 lxc:///system dvtest-inv-ct2; then
    pass "the running guests (two VMs, the container) took a DHCP lease"
else
    fail "the running guests took a DHCP lease"
fi

# What libvirt has on every node, every guest (not only this test's): name, driver, state,
# uuid and leased addresses, one JSON object a line.
libvirt_view() {
    local n
    for n in "${NODES[@]}"; do
        # shellcheck disable=SC2016  # expanded by the node's shell
        node "$n" 'for c in qemu lxc; do for d in $(virsh -c $c:///system list --all --name); do
            printf "{\"node\": \"%s\", \"name\": \"%s\", \"driver\": \"%s\", \"state\": \"%s\", \"uuid\": \"%s\", \"addresses\": \"%s\"}\n" \
              "$(hostname)" "$d" "$c" "$(virsh -c $c:///system domstate $d | head -n1)" "$(virsh -c $c:///system domuuid $d | head -n1)" \
              "$(virsh -c $c:///system domifaddr --source lease $d 2>/dev/null | awk "/ipv/ {print \$4}" | tr "\n" " ")"
        done; done </dev/null'
    done
}
libvirt_view >"$WORK/libvirt.jsonl"

# check.py WHAT LISTING [ARGS]: checks of a listing (ansible-inventory --list) against what was
# given and what libvirt reports; prints "ok" or the differences.
cat >"$WORK/check.py" <<'EOF'
import json, sys


def plain(obj):
    # ansible-core 2.19 writes inventory strings as {"__ansible_unsafe": "..."}.
    return obj["__ansible_unsafe"] if set(obj) == {"__ansible_unsafe"} else obj


what, listing = sys.argv[1], json.load(open(sys.argv[2]), object_hook=plain)
work = sys.argv[3]
hv = listing["_meta"]["hostvars"]
libvirt = [json.loads(l) for l in open(work + "/libvirt.jsonl") if l.strip()]
given = {}
for line in open(work + "/guests.txt"):
    name, node, kind, state, memory, tags, description = line.rstrip("\n").split(" ", 6)
    given[name] = dict(node=node, type=kind, state=state, memory=int(memory), tags=sorted(tags.split(",")),
                       description=description)
ours = sorted(given)
problems = []


def members(group):
    return sorted(listing.get(group, {}).get("hosts", []))


def check(cond, msg):
    if not cond:
        problems.append(msg)


STATE = {"running": "running", "shut off": "stopped", "paused": "paused"}
if what in ("all", "node"):
    # Every guest libvirt has on the three nodes, nothing else, each where libvirt has it.
    check(sorted(hv) == sorted(d["name"] for d in libvirt),
          "hosts %s != libvirt's %s" % (sorted(hv), sorted(d["name"] for d in libvirt)))
    for d in libvirt:
        v = hv.get(d["name"], {})
        check(v.get("debvirt_node") == d["node"], "%s: node %s, libvirt %s" % (d["name"], v.get("debvirt_node"), d["node"]))
        state = STATE.get(d["state"], d["state"])
        if d["driver"] == "lxc" and state == "paused":
            state = "frozen"
        check(v.get("debvirt_state") == state, "%s: state %s, libvirt %s" % (d["name"], v.get("debvirt_state"), d["state"]))
        check(v.get("debvirt_type") == ("container" if d["driver"] == "lxc" else "vm"), "%s: type %s" % (d["name"], v.get("debvirt_type")))
        check(v.get("debvirt_uuid") == d["uuid"], "%s: uuid %s, libvirt %s" % (d["name"], v.get("debvirt_uuid"), d["uuid"]))
        leases = d["addresses"].split()
        check(all(a in v.get("debvirt_addresses", []) for a in leases),
              "%s: addresses %s, libvirt's leases %s" % (d["name"], v.get("debvirt_addresses"), leases))
        if leases:
            check(v.get("ansible_host") == leases[0].split("/")[0], "%s: ansible_host %s" % (d["name"], v.get("ansible_host")))
        if what == "all":
            uri = v.get("debvirt_uri", "")
            check(uri.startswith(("qemu" if d["driver"] == "qemu" else "lxc") + "+libssh://root@10.77.0."), "%s: uri %s" % (d["name"], uri))
for name, g in given.items():
    if what == "uris" and name not in hv:
        continue
    v = hv.get(name)
    if v is None:
        problems.append("%s missing" % name)
        continue
    check(v["debvirt_node"] == (g["node"] if what != "uris" or g["node"] != "dvlab3" else "10.77.0.13"),
          "%s: node %s" % (name, v["debvirt_node"]))
    check((v["debvirt_type"], v["debvirt_state"], v["debvirt_memory"]) == (g["type"], g["state"], g["memory"]),
          "%s: type/state/memory %s" % (name, (v["debvirt_type"], v["debvirt_state"], v["debvirt_memory"])))
    check(sorted(v["debvirt_tags"]) == g["tags"], "%s: tags %s" % (name, v["debvirt_tags"]))
    check(v["debvirt_description"] == g["description"], "%s: description %r" % (name, v["debvirt_description"]))
    check([i["network"] for i in v["debvirt_interfaces"]] == ["dvtest-inv-net"], "%s: interfaces %s" % (name, v["debvirt_interfaces"]))
    check((len(v["debvirt_addresses"]) > 0) == (g["state"] == "running"), "%s: addresses %s" % (name, v["debvirt_addresses"]))
    check(all(a.startswith("192.168.177.") for a in v["debvirt_addresses"]), "%s: addresses %s" % (name, v["debvirt_addresses"]))

if what == "all":
    ours_in = lambda group: [h for h in members(group) if h in given]
    expect = {
        "node_dvlab1": ["dvtest-inv-db1", "dvtest-inv-web1"],
        "node_dvlab2": ["dvtest-inv-ct2", "dvtest-inv-web2"],
        "node_dvlab3": ["dvtest-inv-db3", "dvtest-inv-spare3"],
        "state_running": ["dvtest-inv-ct2", "dvtest-inv-web1", "dvtest-inv-web2"],
        "state_stopped": ["dvtest-inv-db1", "dvtest-inv-db3", "dvtest-inv-spare3"],
        "type_vm": ["dvtest-inv-db1", "dvtest-inv-db3", "dvtest-inv-spare3", "dvtest-inv-web1", "dvtest-inv-web2"],
        "type_container": ["dvtest-inv-ct2"],
        "tag_dvtest_inv": ours,
        "tag_web": ["dvtest-inv-ct2", "dvtest-inv-web1", "dvtest-inv-web2"],
        "tag_db": ["dvtest-inv-db1", "dvtest-inv-db3"],
        "tag_prod": ["dvtest-inv-db3", "dvtest-inv-web1"],
        "tag_ct": ["dvtest-inv-ct2"],
        # groups / keyed_groups of the configuration
        "dvtest_small": ["dvtest-inv-ct2", "dvtest-inv-db1", "dvtest-inv-spare3"],
        "dvtest_placed_dvlab1": ["dvtest-inv-db1", "dvtest-inv-web1"],
        "dvtest_placed_dvlab3": ["dvtest-inv-db3", "dvtest-inv-spare3"],
    }
    for name, g in given.items():
        check(("ansible_host" in hv[name]) == (g["state"] == "running"), "%s: ansible_host %s" % (name, hv[name].get("ansible_host")))
    # Other guests on the nodes may be in these groups too: only this test's are compared.
    for group, hosts in expect.items():
        got = ours_in(group)
        check(got == hosts, "group %s: %s, expected %s" % (group, got, hosts))
    for name, g in given.items():
        check(hv[name].get("dvtest_label") == "%s on %s" % (g["description"], g["node"]),
              "%s: composed dvtest_label %r" % (name, hv[name].get("dvtest_label")))
elif what == "uris":
    # filters: tagged dvtest-inv, and running or on dvlab3
    want = ["dvtest-inv-ct2", "dvtest-inv-db3", "dvtest-inv-spare3", "dvtest-inv-web1", "dvtest-inv-web2"]
    check(sorted(hv) == want, "hosts %s, expected %s" % (sorted(hv), want))
    check(members("node_10_77_0_13") == ["dvtest-inv-db3", "dvtest-inv-spare3"], "node_10_77_0_13: %s" % members("node_10_77_0_13"))
    check(members("dvtest_big") == ["dvtest-inv-db3"], "dvtest_big: %s" % members("dvtest_big"))
elif what == "node":
    for name, v in hv.items():
        uri = v["debvirt_uri"]
        check(uri.startswith(("qemu", "lxc")) and "+ssh://root@10.77.0." in uri and "no_tty=1" in uri and "keyfile" not in uri,
              "%s: uri %s" % (name, uri))
print("ok" if not problems else "\n".join(problems))
EOF
printf '%s\n' "$GUESTS" >"$WORK/guests.txt"
checked() {  # WHAT LISTING-FILE: the listing passes check.py
    local out
    out=$(python "$WORK/check.py" "$1" "$2" "$WORK" 2>&1)
    [ "$out" = ok ] && return 0
    head -n 30 <<<"$out" | sed 's/^/  /'; return 1
}

# --- 2. from the controller, members from the nodelist --------------------------------------------
constructed() {
    cat <<'EOF'
compose:
  dvtest_label: debvirt_description ~ ' on ' ~ debvirt_node
groups:
  dvtest_small: debvirt_memory < 150
  dvtest_big: debvirt_memory > 200
keyed_groups:
  - key: debvirt_node
    prefix: dvtest_placed
EOF
}
{
    echo "plugin: debvirt.cluster.guests"
    echo "nodelist: ${ADDR[dvlab1]}"
    echo "ssh_keyfile: $KEY"
    echo "ssh_known_hosts: $KNOWN"
    echo "timeout: 20"
    constructed
    echo "cache: true"
    echo "cache_plugin: ansible.builtin.jsonfile"
    echo "cache_connection: $WORK/cache"
} >"$WORK/lab.guests.yml"
list() {  # TAG INVENTORY [options]: ansible-inventory --list into TAG.json, its messages in TAG.err
    local tag=$1 inv=$2; shift 2
    rm -f "$WORK/$tag.json"
    # --output: with -v, ansible's messages go to stdout too.
    ansible-inventory -i "$inv" --list --output "$WORK/$tag.json" "$@" >"$WORK/$tag.err" 2>&1
}
t0=$(date +%s.%N)
list cold "$WORK/lab.guests.yml" --flush-cache -vv
cold_s=$(python -c "import sys; print('%.2f' % ($(date +%s.%N) - $t0))")
if ! grep -q 'did not answer\|cannot read' "$WORK/cold.err" && grep -q 'guests read from 6 connections' "$WORK/cold.err"; then
    pass "nodelist of dvlab1 read, 6 connections (3 members x qemu, lxc) in $cold_s s: $(grep -o '[0-9]* guests read from.*' "$WORK/cold.err")"
else
    sed 's/^/  /' "$WORK/cold.err" | tail -n 15; fail "nodelist of dvlab1 read, every member answered"
fi
verdict "every guest libvirt has on the 3 nodes, with libvirt's node, state, type, uuid and leases; tags, descriptions, groups (node, state, type, tag) and compose/groups/keyed_groups as given" checked all "$WORK/cold.json"

# --- 3. explicit URIs from the controller, with JMESPath filters ----------------------------------
{
    echo "plugin: debvirt.cluster.guests"
    echo "uris:"
    for n in dvlab1 dvlab2; do
        for d in qemu lxc; do
            echo "  - {uri: \"$d+libssh://root@${ADDR[$n]}/system?keyfile=$KEY&known_hosts=$KNOWN&known_hosts_verify=normal&sshauth=privkey\", node: $n}"
        done
    done
    # Without node: the URI's host is the node.
    echo "  - \"qemu+libssh://root@${ADDR[dvlab3]}/system?keyfile=$KEY&known_hosts=$KNOWN&known_hosts_verify=normal&sshauth=privkey\""
    echo "filters:"
    echo "  - \"contains(debvirt_tags, 'dvtest-inv')\""
    echo "  - \"debvirt_state == 'running' || starts_with(debvirt_node, '10.77.0.')\""
    constructed
} >"$WORK/uris.guests.yml"
list uris "$WORK/uris.guests.yml"
verdict "explicit URIs: the guests the JMESPath filters keep, node from the URI's host where none is given" checked uris "$WORK/uris.json"
verdict "... and no member skipped" bash -c "! grep -q 'did not answer' $WORK/uris.err"

# --- 4. a play over one of its groups agrees with virsh on the nodes -----------------------------
cat >"$WORK/play.yml" <<'EOF'
- name: What virsh says on each guest's node
  hosts: tag_web
  gather_facts: false
  tasks:
    - name: Ask the guest's node
      ansible.builtin.command: >-
        virsh -c {{ 'lxc' if debvirt_type == 'container' else 'qemu' }}:///system domstate {{ inventory_hostname }}
      delegate_to: "{{ debvirt_node }}"
      register: virsh_state
      changed_when: false
    - name: The inventory's state is libvirt's
      ansible.builtin.assert:
        that:
          - (virsh_state.stdout_lines[0] == 'running') == (debvirt_state == 'running')
          - debvirt_node in groups['nodes']
    - name: Report
      ansible.builtin.debug:
        msg: "dvtest-play {{ inventory_hostname }} {{ debvirt_node }} {{ virsh_state.stdout_lines[0] }}"
EOF
ansible-playbook -i "$INVENTORY" -i "$WORK/lab.guests.yml" "$WORK/play.yml" >"$WORK/play.log" 2>&1
play_rc=$?
play_lines=$(grep -o '"dvtest-play [^"]*"' "$WORK/play.log" | tr -d '"' | sort)
expected_play="dvtest-play dvtest-inv-ct2 dvlab2 running
dvtest-play dvtest-inv-web1 dvlab1 running
dvtest-play dvtest-inv-web2 dvlab2 running"
if [ $play_rc = 0 ] && [ "$play_lines" = "$expected_play" ]; then
    pass "a play over tag_web ran on its 3 guests, and virsh on their nodes agrees"
else
    tail -n 30 "$WORK/play.log"; fail "a play over tag_web agrees with virsh on the nodes"
fi

# --- 5. on a member, over the cluster's SSH trust -------------------------------------------------
# The nodes carry no Ansible: ansible-core of the controller's version, installed for the
# nodes' Python (Debian 12's 3.11) from wheels, and the collection, into a scratch directory.
core=$(python -c 'from ansible.release import __version__ as v; print(v)')
bundle=${DEBVIRT_LAB_CACHE:-/var/cache/debvirt-lab}/inventory-test-ansible-$core
if [ ! -d "$bundle" ]; then
    rm -rf "$bundle.tmp"
    if pip install -q --target "$bundle.tmp" --python-version 3.11 --only-binary=:all: \
        --platform manylinux2014_x86_64 --implementation cp "ansible-core==$core" jmespath >"$WORK/pip.log" 2>&1; then
        # Scripts with this machine's interpreter in their first line, and ansible-test: not needed.
        rm -rf "$bundle.tmp/bin" "$bundle.tmp/ansible_test"
        mv "$bundle.tmp" "$bundle"
    else
        tail -n 5 "$WORK/pip.log"
    fi
fi
node_ok=1
tar -C "$bundle" -czf - . | node dvlab1 "rm -rf $NODE_DIR && mkdir -p $NODE_DIR/lib && tar -C $NODE_DIR/lib -xzf -" || node_ok=0
tar -C "$DEBVIRT_BUILD" --exclude=tests/output -czf - ansible_collections | node dvlab1 "tar -C $NODE_DIR -xzf -" || node_ok=0
{ echo "plugin: debvirt.cluster.guests"; echo "nodelist: localhost"; } | node dvlab1 "cat > $NODE_DIR/cluster.guests.yml" || node_ok=0
node dvlab1 "cd $NODE_DIR && PYTHONPATH=$NODE_DIR/lib ANSIBLE_COLLECTIONS_PATH=$NODE_DIR python3 -m ansible.cli.inventory -i cluster.guests.yml --list -vv --output listing.json 2>&1" >"$WORK/onnode.err" || node_ok=0
node dvlab1 "cat $NODE_DIR/listing.json" >"$WORK/onnode.json" || node_ok=0
if [ $node_ok = 1 ] && grep -q 'guests read from 6 connections' "$WORK/onnode.err" && ! grep -q 'did not answer' "$WORK/onnode.err"; then
    pass "on dvlab1, nodelist: localhost: the 3 members read over the cluster's SSH trust (qemu+ssh, lxc+ssh, no key given)"
else
    tail -n 15 "$WORK/onnode.err"; fail "on dvlab1, nodelist: localhost, over the cluster's SSH trust"
fi
verdict "... the same guests, nodes, states, types, uuids, addresses, tags and descriptions" checked node "$WORK/onnode.json"

# --- 6. the cache --------------------------------------------------------------------------------
# The warm run has no network at all (a namespace of its own, only loopback): a single
# connection to a member would fail and be reported.
t0=$(date +%s.%N)
unshare --net ansible-inventory -i "$WORK/lab.guests.yml" --list -vv --output "$WORK/warm.json" >"$WORK/warm.err" 2>&1
warm_s=$(python -c "import sys; print('%.2f' % ($(date +%s.%N) - $t0))")
if cmp -s "$WORK/warm.json" "$WORK/cold.json" && grep -q 'from the cache, no member read' "$WORK/warm.err" \
    && ! grep -q 'did not answer\|cannot read' "$WORK/warm.err"; then
    pass "warm cache, without any network: the same listing, nothing read ($warm_s s; cold $cold_s s)"
else
    diff "$WORK/cold.json" "$WORK/warm.json" | head -n 10; tail -n 5 "$WORK/warm.err"; fail "warm cache answers without reading"
fi
unshare --net ansible-inventory -i "$WORK/lab.guests.yml" --list --flush-cache --output "$WORK/nonet.json" >"$WORK/nonet.err" 2>&1
verdict "... while a flushed cache in the same namespace cannot read the nodelist (so the warm run read nothing)" \
    grep -q "cannot read the corosync nodelist of ${ADDR[dvlab1]}" "$WORK/nonet.err"
# The flush above failed to read: it must not have replaced the cached listing.
unshare --net ansible-inventory -i "$WORK/lab.guests.yml" --list --output "$WORK/warm2.json" >/dev/null 2>&1
verdict "... and a listing that lacked members was not cached" cmp -s "$WORK/warm2.json" "$WORK/cold.json"

# --- 7. members that do not answer ------------------------------------------------------------------
for strict in false true; do
    {
        echo "plugin: debvirt.cluster.guests"
        echo "nodelist: ${ADDR[dvlab1]}"
        echo "members: [$GONE]"
        echo "ssh_keyfile: $KEY"
        echo "ssh_known_hosts: $KNOWN"
        echo "timeout: 10"
        echo "strict: $strict"
        echo "cache: true"
        echo "cache_plugin: ansible.builtin.jsonfile"
        echo "cache_connection: $WORK/cache-down"
    } >"$WORK/strict-$strict.guests.yml"
done
# shellcheck disable=SC2086  # a list of units
if node dvlab3 "systemctl stop $libvirtd_units" && ! node dvlab3 "virsh -c qemu:///system version" >/dev/null 2>&1; then
    STOPPED_LIBVIRTD=dvlab3
    pass "libvirtd stopped on dvlab3 (with its sockets)"
else
    fail "libvirtd stopped on dvlab3"
fi
t0=$SECONDS
list down "$WORK/strict-false.guests.yml" -vv
down_s=$((SECONDS - t0))
dvlab3_warned=$(grep -c "(node dvlab3) did not answer" "$WORK/down.err")
gone_warned=$(grep -c "($GONE) did not answer\|(node $GONE) did not answer" "$WORK/down.err")
verdict "dvlab3 without libvirtd: reported for its 2 drivers ($dvlab3_warned), $GONE for its 2 ($gone_warned), in $down_s s" \
    [ "$dvlab3_warned" = 2 ] && [ "$gone_warned" = 2 ]
grep 'did not answer' "$WORK/down.err" | head -n 2 | cut -c1-220 | sed 's/^/  /'
down_hosts=$(python -c 'import json,sys; print(" ".join(sorted(h for h in json.load(open(sys.argv[1]))["_meta"]["hostvars"] if h.startswith("dvtest-inv-"))))' "$WORK/down.json" 2>&1)
verdict "... the guests of dvlab1 and dvlab2 are listed, dvlab3's skipped" \
    [ "$down_hosts" = "dvtest-inv-ct2 dvtest-inv-db1 dvtest-inv-web1 dvtest-inv-web2" ]
verdict "... and that partial listing was not cached" bash -c "! ls $WORK/cache-down/* >/dev/null 2>&1"
ANSIBLE_INVENTORY_UNPARSED_FAILED=true list strict "$WORK/strict-true.guests.yml"
strict_rc=$?
verdict "with strict: true it is fatal (rc $strict_rc), naming the member" \
    bash -c "[ $strict_rc != 0 ] && grep -q 'did not answer' $WORK/strict.err && grep -q 'dvlab3\|$GONE' $WORK/strict.err"
if restart_libvirtd dvlab3; then STOPPED_LIBVIRTD=; pass "libvirtd back on dvlab3"; else fail "libvirtd back on dvlab3"; fi
list back "$WORK/lab.guests.yml" --flush-cache
libvirt_view >"$WORK/libvirt.jsonl"
verdict "the whole cluster listed again, as libvirt has it" checked all "$WORK/back.json"

finish
