#!/usr/bin/env bash
# The debvirt lab: several Debian 12 "hosts" on one machine, as privileged
# classic LXC containers with systemd as PID 1, sshd and everything the roles
# install already in place (the nodes have no route to a package mirror).
#
#   lab.sh up [N]     build or repair the lab with N nodes (default: as many as
#                     last time, or DEBVIRT_LAB_NODES, or 3); prints the inventory
#                     path last
#   lab.sh down       remove nodes, bridge and lab state (the template stays)
#   lab.sh status     one line per node
#   lab.sh ssh NODE [CMD...]   ssh into a node with the lab key
#   lab.sh inventory  print the inventory path
#   lab.sh purge      down, and also drop the cached template rootfs
#
# Every node sees the host directory $DEBVIRT_LAB_STATE/shared at
# /srv/debvirt-shared: shared storage for a dir pool on each member.
#
# Environment: DEBVIRT_LAB_STATE (default /var/lib/debvirt-lab),
# DEBVIRT_LAB_CACHE (default /var/cache/debvirt-lab), DEBVIRT_LAB_MIRROR.
# A second lab beside the first (the template is shared):
# DEBVIRT_LAB_PREFIX (node names, default dvlab), DEBVIRT_LAB_NET (first three
# octets, default 10.77.0) and a DEBVIRT_LAB_STATE of its own.
set -euo pipefail

STATE=${DEBVIRT_LAB_STATE:-/var/lib/debvirt-lab}
CACHE=${DEBVIRT_LAB_CACHE:-/var/cache/debvirt-lab}
MIRROR=${DEBVIRT_LAB_MIRROR:-http://deb.debian.org/debian}
PREFIX=${DEBVIRT_LAB_PREFIX:-dvlab}
BRIDGE=${PREFIX}br0
NET=${DEBVIRT_LAB_NET:-10.77.0}
[[ $PREFIX =~ ^[a-z][a-z0-9]{0,7}$ ]] || { echo "DEBVIRT_LAB_PREFIX: 1-8 lowercase letters and digits" >&2; exit 2; }
[[ $NET =~ ^[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}$ ]] || { echo "DEBVIRT_LAB_NET: three octets such as 10.77.0" >&2; exit 2; }
HOST_IP=$NET.1
RELEASE=bookworm
SSH_TIMEOUT=${DEBVIRT_LAB_SSH_TIMEOUT:-90}
BOOT_TIMEOUT=${DEBVIRT_LAB_BOOT_TIMEOUT:-120}

# Everything the roles install, so that a role run on a node finds it present
# and never needs the network. Keep in step with roles/node/defaults/main.yml.
TEMPLATE_PACKAGES=(
    python3 python3-apt
    libvirt-daemon-system libvirt-daemon-driver-qemu libvirt-daemon-driver-lxc
    libvirt-clients qemu-system-x86 qemu-utils qemu-block-extra dnsmasq-base
    python3-libvirt python3-lxml
    corosync pacemaker pacemaker-cli-utils
    openssh-server genisoimage debootstrap
    # Not installed by a role yet, but the shared-storage scenarios need it.
    libvirt-daemon-driver-storage-iscsi-direct
    # Role node installs it when node_bridges asks for a bridge.
    bridge-utils
    dbus iproute2 iputils-ping less procps
)
# Bump when the way the template is prepared changes, so caches get rebuilt.
TEMPLATE_REVISION=2

LXC_PATH=$(lxc-config lxc.lxcpath)
TEMPLATE_DIR=$CACHE/template
TEMPLATE_ROOTFS=$TEMPLATE_DIR/rootfs
TEMPLATE_STAMP=$CACHE/template.stamp
RESTART_LIBVIRTD=()
KEY=$STATE/id_ed25519
# Shared storage: one host directory bind-mounted into every node at the same
# path, so one inode and coherent POSIX locks, as on a cluster file system.
SHARED=$STATE/shared
SHARED_MOUNT=srv/debvirt-shared
KNOWN_HOSTS=$STATE/known_hosts
INVENTORY=$STATE/inventory.ini
SSH_CONFIG=$STATE/ssh_config

log() { printf '[lab %(%H:%M:%S)T] %s\n' -1 "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

node_name() { echo "$PREFIX$1"; }
node_ip() { echo "$NET.$((10 + $1))"; }
node_dir() { echo "$LXC_PATH/$PREFIX$1"; }

# Node indexes that exist as containers, ascending.
existing_nodes() {
    lxc-ls -1 2>/dev/null | sed -n "s/^$PREFIX\([0-9]\+\)\$/\1/p" | sort -n
}

is_running() { [ "$(lxc-info -n "$(node_name "$1")" -sH 2>/dev/null)" = RUNNING ]; }

lab_ssh() {
    local ip=$1; shift
    ssh -i "$KEY" -o UserKnownHostsFile="$KNOWN_HOSTS" -o StrictHostKeyChecking=yes \
        -o IdentitiesOnly=yes -o BatchMode=yes -o ConnectTimeout=3 \
        -o LogLevel=ERROR "root@$ip" "$@"
}

template_wanted_stamp() {
    echo "release=$RELEASE revision=$TEMPLATE_REVISION packages=${TEMPLATE_PACKAGES[*]}"
}

# The lxc-debian template writes a wrong security line without distro-info and
# then silently skips --packages; we install packages ourselves, but still want
# a correct sources.list in the template.
ensure_host_tools() {
    local missing=()
    command -v lxc-create >/dev/null || missing+=(lxc)
    command -v debian-distro-info >/dev/null || missing+=(distro-info)
    command -v debootstrap >/dev/null || missing+=(debootstrap)
    command -v rsync >/dev/null || missing+=(rsync)
    command -v ssh >/dev/null || missing+=(openssh-client)
    command -v ssh-keygen >/dev/null || missing+=(openssh-client)
    if [ ${#missing[@]} -gt 0 ]; then
        log "installing host packages: ${missing[*]}"
        apt-get update -qq >&2
        DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}" >&2
        LXC_PATH=$(lxc-config lxc.lxcpath)
    fi
}

build_template() {
    if [ -f "$TEMPLATE_STAMP" ] && [ "$(cat "$TEMPLATE_STAMP")" = "$(template_wanted_stamp)" ] \
        && [ -x "$TEMPLATE_ROOTFS/usr/sbin/libvirtd" ]; then
        return 0
    fi
    local t0=$SECONDS
    log "building the template rootfs in $TEMPLATE_DIR (one-off, a few minutes)"
    rm -f "$TEMPLATE_STAMP"
    lxc-destroy -P "$CACHE" -n template >/dev/null 2>&1 || true
    rm -rf "$TEMPLATE_DIR"
    mkdir -p "$CACHE"
    # The template container is never started: it only gives us a debootstrapped
    # bookworm with the lxc-debian fixes (inittab, getty, locales) applied.
    MIRROR=$MIRROR lxc-create -P "$CACHE" -n template -t debian -- -r "$RELEASE" >&2 \
        || die "lxc-create of the template failed"
    local root=$TEMPLATE_ROOTFS
    # Services must not start inside the chroot: they would run on the host.
    printf '#!/bin/sh\nexit 101\n' > "$root/usr/sbin/policy-rc.d"
    chmod 0755 "$root/usr/sbin/policy-rc.d"
    cp /etc/resolv.conf "$root/etc/resolv.conf"
    mount -t proc proc "$root/proc"
    # shellcheck disable=SC2064
    trap "umount '$root/proc' 2>/dev/null || true" EXIT
    chroot "$root" env DEBIAN_FRONTEND=noninteractive apt-get update >&2
    chroot "$root" env DEBIAN_FRONTEND=noninteractive apt-get install -y \
        --no-install-recommends "${TEMPLATE_PACKAGES[@]}" >&2
    chroot "$root" apt-get clean
    umount "$root/proc"
    trap - EXIT
    rm -f "$root/usr/sbin/policy-rc.d"
    # Identity is per node: each gets its own machine-id and ssh host keys.
    rm -f "$root"/etc/ssh/ssh_host_*
    : > "$root/etc/machine-id"
    rm -f "$root/var/lib/dbus/machine-id"
    ln -s /etc/machine-id "$root/var/lib/dbus/machine-id"
    # Nodes cannot reach a resolver; a stale one only makes tools wait.
    : > "$root/etc/resolv.conf"
    # Units that only make sense on hardware, or wait for networks that never
    # come, would leave every node "degraded" or slow to boot.
    local unit
    for unit in systemd-networkd-wait-online.service e2scrub_reap.service \
        systemd-timesyncd.service apt-daily.timer apt-daily-upgrade.timer; do
        ln -sf /dev/null "$root/etc/systemd/system/$unit"
    done
    template_wanted_stamp > "$TEMPLATE_STAMP"
    log "template ready in $((SECONDS - t0)) s ($(du -sh "$root" | cut -f1))"
}

ensure_bridge() {
    if ! ip link show "$BRIDGE" >/dev/null 2>&1; then
        ip link add "$BRIDGE" type bridge
    fi
    if ! ip -4 addr show dev "$BRIDGE" | grep -q "inet $HOST_IP/24"; then
        ip addr add "$HOST_IP/24" dev "$BRIDGE"
    fi
    ip link set "$BRIDGE" up
}

ensure_key() {
    mkdir -p "$STATE"
    chmod 0700 "$STATE"
    if [ ! -f "$KEY" ]; then
        ssh-keygen -q -t ed25519 -N '' -C "debvirt-lab" -f "$KEY"
    fi
}

write_config() {
    local i=$1 name ip dir mac cfg
    name=$(node_name "$i"); ip=$(node_ip "$i"); dir=$(node_dir "$i")
    # Locally administered, from the lab's network, so that two labs never share a MAC.
    mac=$(IFS=. read -r a b c <<<"$NET"; printf '02:%02x:%02x:%02x:00:%02x' "$c" "$a" "$b" "$((10 + i))")
    cfg=$(cat <<EOF
# Written by tests/lab/lab.sh; rewritten on every "up".
lxc.include = /usr/share/lxc/config/debian.common.conf
lxc.uts.name = $name
lxc.arch = amd64
lxc.rootfs.path = dir:$dir/rootfs
lxc.tty.max = 4
lxc.pty.max = 1024
# libvirtd, QEMU and corosync need a mostly unconfined, privileged host view.
lxc.apparmor.profile = unconfined
lxc.mount.auto =
lxc.mount.auto = cgroup:rw proc:mixed sys:mixed
lxc.mount.entry = /dev/net/tun dev/net/tun none bind,create=file 0 0
lxc.mount.entry = /dev/fuse dev/fuse none bind,create=file 0 0
lxc.mount.entry = $SHARED $SHARED_MOUNT none bind,create=dir 0 0
lxc.net.0.type = veth
lxc.net.0.link = $BRIDGE
lxc.net.0.flags = up
lxc.net.0.name = eth0
lxc.net.0.hwaddr = $mac
lxc.net.0.veth.pair = ${name}v0
EOF
)
    if [ ! -f "$dir/config" ] || [ "$(cat "$dir/config")" != "$cfg" ]; then
        printf '%s\n' "$cfg" > "$dir/config"
        if is_running "$i"; then
            log "$name: config changed; restarting"
            lxc-stop -n "$name" -t 30 >/dev/null 2>&1 || lxc-stop -n "$name" -k
        fi
    fi
}

# Files that give a node its identity and make it reachable; safe to rewrite.
customize_rootfs() {
    local i=$1 count=$2 name ip root j
    name=$(node_name "$i"); ip=$(node_ip "$i"); root=$(node_dir "$i")/rootfs
    echo "$name" > "$root/etc/hostname"
    {
        echo "127.0.0.1 localhost"
        echo "::1 localhost ip6-localhost ip6-loopback"
        echo "$HOST_IP ${PREFIX}host"
        for j in $(seq 1 "$count"); do
            echo "$(node_ip "$j") $(node_name "$j")"
        done
    } > "$root/etc/hosts"
    cat > "$root/etc/network/interfaces" <<EOF
auto lo
iface lo inet loopback

auto eth0
iface eth0 inet static
    address $ip/24
EOF
    if [ ! -s "$root/etc/machine-id" ]; then
        # libvirt needs distinct hosts for migration, and our role derives
        # host_uuid from this; the containers share the machine's DMI data.
        od -An -N16 -tx1 /dev/urandom | tr -d ' \n' > "$root/etc/machine-id"
        echo >> "$root/etc/machine-id"
    fi
    if ! ls "$root"/etc/ssh/ssh_host_ed25519_key >/dev/null 2>&1; then
        ssh-keygen -A -f "$root" >/dev/null
        sed -i "s/ [^ ]*\$/ root@$name/" "$root"/etc/ssh/ssh_host_*.pub
    fi
    install -d -m 0700 "$root/root/.ssh"
    # Added, not overwritten: the roles keep their own keys in this file (role
    # cluster's trust between the nodes), and "up" must not take them away.
    touch "$root/root/.ssh/authorized_keys"
    chmod 0600 "$root/root/.ssh/authorized_keys"
    grep -qxF "$(cat "$KEY.pub")" "$root/root/.ssh/authorized_keys" \
        || cat "$KEY.pub" >> "$root/root/.ssh/authorized_keys"
    if install_libvirtd_cgroup_workaround "$root" && is_running "$i"; then
        RESTART_LIBVIRTD+=("$i")
    fi
}

# The libvirt LXC driver inside a node fails on this sandbox's hybrid cgroup
# layout: the node sees cgroup2 at /sys/fs/cgroup/unified and no separate
# cpu/cpuacct hierarchies ("Unable to find 'cpuacct' cgroups controller
# mount"), and libvirt's machined registration fails ("NoMachineForPID").
# libvirtd therefore runs in a private mount namespace with a pure cgroup-v1
# tree and without the system bus. This is a quirk of the lab on this kind of
# machine, not something a real host (pure cgroup v2) or the roles need, so it
# lives in a drop-in that the roles never touch. Returns 0 when it changed.
install_libvirtd_cgroup_workaround() {
    local root=$1 changed=1 wrapper dropin
    wrapper=$(cat <<'EOF'
#!/bin/sh
# debvirt lab only, written by tests/lab/lab.sh: see its comment on
# install_libvirtd_cgroup_workaround. Runs in libvirtd's own mount namespace.
set -e
mount -t tmpfs -o mode=0755 debvirt-lab-cgroup /sys/fs/cgroup
for c in cpu cpuacct cpuset memory devices freezer blkio pids; do
    mkdir /sys/fs/cgroup/$c
    mount -t cgroup -o $c cgroup /sys/fs/cgroup/$c
done
mkdir /sys/fs/cgroup/systemd
mount -t cgroup -o none,name=systemd cgroup /sys/fs/cgroup/systemd
mount -t tmpfs -o mode=0755 debvirt-lab-nodbus /run/dbus
exec /usr/sbin/libvirtd "$@"
EOF
)
    dropin=$(cat <<'EOF'
# debvirt lab only, written by tests/lab/lab.sh (hybrid cgroups on the lab host).
[Service]
ExecStart=
ExecStart=/usr/bin/unshare --mount --propagation slave /usr/local/sbin/debvirt-lab-libvirtd $LIBVIRTD_ARGS
EOF
)
    if [ "$(cat "$root/usr/local/sbin/debvirt-lab-libvirtd" 2>/dev/null)" != "$wrapper" ]; then
        printf '%s\n' "$wrapper" > "$root/usr/local/sbin/debvirt-lab-libvirtd"
        chmod 0755 "$root/usr/local/sbin/debvirt-lab-libvirtd"
        changed=0
    fi
    mkdir -p "$root/etc/systemd/system/libvirtd.service.d"
    if [ "$(cat "$root/etc/systemd/system/libvirtd.service.d/debvirt-lab.conf" 2>/dev/null)" != "$dropin" ]; then
        printf '%s\n' "$dropin" > "$root/etc/systemd/system/libvirtd.service.d/debvirt-lab.conf"
        changed=0
    fi
    return $changed
}

create_node() {
    local i=$1 name dir t0=$SECONDS
    name=$(node_name "$i"); dir=$(node_dir "$i")
    log "$name: copying the template rootfs"
    rm -rf "$dir"
    mkdir -p "$dir"
    chmod 0770 "$dir"
    cp -a "$TEMPLATE_ROOTFS" "$dir/rootfs.partial"
    mv "$dir/rootfs.partial" "$dir/rootfs"
    cp "$TEMPLATE_STAMP" "$dir/template.stamp"
    log "$name: rootfs ready in $((SECONDS - t0)) s"
}

destroy_node() {
    local name
    name=$(node_name "$1")
    lxc-stop -n "$name" -k >/dev/null 2>&1 || true
    lxc-destroy -n "$name" >/dev/null 2>&1 || rm -rf "$(node_dir "$1")"
}

write_known_hosts_and_inventory() {
    local count=$1 i name ip root tmp
    tmp=$(mktemp "$STATE/.known_hosts.XXXXXX")
    # Pinned from the keys we generated into the rootfs, never learnt from the
    # network: a node that answers with another key is refused.
    for i in $(seq 1 "$count"); do
        name=$(node_name "$i"); ip=$(node_ip "$i"); root=$(node_dir "$i")/rootfs
        for pub in "$root"/etc/ssh/ssh_host_*_key.pub; do
            echo "$name,$ip $(cut -d' ' -f1,2 "$pub")"
        done
    done > "$tmp"
    mv "$tmp" "$KNOWN_HOSTS"
    {
        echo "# debvirt lab inventory, written by tests/lab/lab.sh"
        echo "[nodes]"
        for i in $(seq 1 "$count"); do
            echo "$(node_name "$i") ansible_host=$(node_ip "$i")"
        done
        echo
        echo "[nodes:vars]"
        echo "ansible_user=root"
        echo "ansible_python_interpreter=/usr/bin/python3"
        echo "ansible_ssh_private_key_file=$KEY"
        echo "ansible_ssh_common_args='-o UserKnownHostsFile=$KNOWN_HOSTS -o StrictHostKeyChecking=yes -o IdentitiesOnly=yes'"
    } > "$INVENTORY"
    {
        echo "# ssh -F $SSH_CONFIG ${PREFIX}1"
        for i in $(seq 1 "$count"); do
            echo "Host $(node_name "$i")"
            echo "    HostName $(node_ip "$i")"
        done
        echo "Host *"
        echo "    User root"
        echo "    IdentityFile $KEY"
        echo "    IdentitiesOnly yes"
        echo "    UserKnownHostsFile $KNOWN_HOSTS"
        echo "    StrictHostKeyChecking yes"
    } > "$SSH_CONFIG"
}

wait_for_node() {
    local i=$1 name ip deadline state
    name=$(node_name "$i"); ip=$(node_ip "$i")
    deadline=$((SECONDS + SSH_TIMEOUT))
    until lab_ssh "$ip" true 2>/dev/null; do
        if [ $SECONDS -ge $deadline ]; then
            die "$name: no ssh on $ip after ${SSH_TIMEOUT}s (lxc-info: $(lxc-info -n "$name" -sH 2>&1))"
        fi
        sleep 1
    done
    # "degraded" is still usable; "starting" is not yet.
    state=$(lab_ssh "$ip" "timeout $BOOT_TIMEOUT systemctl is-system-running --wait" 2>/dev/null || true)
    case $state in
        running) ;;
        degraded) log "$name: systemd is degraded: $(lab_ssh "$ip" 'systemctl --failed --plain --no-legend | cut -d" " -f1 | xargs')" ;;
        *) die "$name: systemd did not finish booting within ${BOOT_TIMEOUT}s (state: ${state:-unknown})" ;;
    esac
    if [[ " ${RESTART_LIBVIRTD[*]} " == *" $i "* ]]; then
        lab_ssh "$ip" "systemctl daemon-reload && systemctl try-restart libvirtd" \
            || die "$name: restarting libvirtd with the lab's cgroup drop-in failed"
    fi
    lab_ssh "$ip" "virsh -c qemu:///system version >/dev/null" \
        || die "$name: libvirtd does not answer on qemu:///system"
    lab_ssh "$ip" "virsh -c lxc:///system version >/dev/null" \
        || die "$name: libvirtd does not answer on lxc:///system"
}

cmd_up() {
    local count=${1:-}
    local t0=$SECONDS existing i
    ensure_host_tools
    existing=$(existing_nodes | xargs)
    # Without a count, the lab keeps the size it was given last, so that "up"
    # also brings back a node that was lost.
    if [ -z "$count" ] && [ -f "$INVENTORY" ]; then
        count=$(grep -c "^${PREFIX}[0-9]* ansible_host=" "$INVENTORY" || true)
        [ "$count" != 0 ] || count=
    fi
    if [ -z "$count" ]; then
        count=$(existing_nodes | tail -n1)
        count=${count:-${DEBVIRT_LAB_NODES:-3}}
    fi
    [[ $count =~ ^[1-9][0-9]?$ ]] || die "node count must be 1..99, got '$count'"
    build_template
    ensure_bridge
    ensure_key
    mkdir -p "$SHARED"
    chmod 0755 "$SHARED"
    for i in $existing; do
        if [ "$i" -gt "$count" ]; then
            log "$(node_name "$i"): beyond $count nodes; removing"
            destroy_node "$i"
        fi
    done
    for i in $(seq 1 "$count"); do
        if [ ! -x "$(node_dir "$i")/rootfs/usr/sbin/libvirtd" ]; then
            create_node "$i"
        elif ! cmp -s "$TEMPLATE_STAMP" "$(node_dir "$i")/template.stamp"; then
            if [ "${DEBVIRT_LAB_REBUILD_STALE:-0}" = 1 ]; then
                log "$(node_name "$i"): built from an older template; rebuilding it"
                destroy_node "$i"
                create_node "$i"
            else
                # Rebuilding would throw away whatever the node holds now.
                log "$(node_name "$i"): built from an older template; 'lab.sh down; lab.sh up' rebuilds it"
            fi
        fi
        write_config "$i"
        customize_rootfs "$i" "$count"
    done
    write_known_hosts_and_inventory "$count"
    for i in $(seq 1 "$count"); do
        if ! is_running "$i"; then
            lxc-start -n "$(node_name "$i")" -d \
                -L "$STATE/$(node_name "$i").console.log" \
                || die "$(node_name "$i"): lxc-start failed; see lxc-start -n $(node_name "$i") -F -l DEBUG"
        fi
    done
    for i in $(seq 1 "$count"); do
        wait_for_node "$i"
        log "$(node_name "$i"): up at $(node_ip "$i")"
    done
    log "lab of $count node(s) ready in $((SECONDS - t0)) s"
    echo "$INVENTORY"
}

cmd_down() {
    local i
    for i in $(existing_nodes); do
        log "$(node_name "$i"): removing"
        destroy_node "$i"
    done
    if ip link show "$BRIDGE" >/dev/null 2>&1; then
        ip link del "$BRIDGE"
    fi
    rm -rf "$STATE"
    log "lab removed (template kept in $CACHE; 'lab.sh purge' drops it)"
}

cmd_purge() {
    cmd_down
    lxc-destroy -P "$CACHE" -n template >/dev/null 2>&1 || true
    rm -rf "$CACHE"
}

cmd_status() {
    local i name ip st ssh_ok virt_ok any=0
    printf '%-8s %-12s %-8s %-4s %s\n' NODE ADDRESS STATE SSH LIBVIRTD
    for i in $(existing_nodes); do
        any=1
        name=$(node_name "$i"); ip=$(node_ip "$i")
        st=$(lxc-info -n "$name" -sH 2>/dev/null || echo '?')
        ssh_ok=no; virt_ok=-
        if [ "$st" = RUNNING ] && [ -f "$KNOWN_HOSTS" ] && lab_ssh "$ip" true 2>/dev/null; then
            ssh_ok=yes
            virt_ok=$(lab_ssh "$ip" "virsh -c qemu:///system version --daemon 2>/dev/null | sed -n 's/^Running against daemon: //p'" || true)
            virt_ok=${virt_ok:-no}
        fi
        printf '%-8s %-12s %-8s %-4s %s\n' "$name" "$ip" "$st" "$ssh_ok" "$virt_ok"
    done
    [ $any = 1 ] || echo "(no lab nodes)"
    [ -f "$INVENTORY" ] && echo "inventory: $INVENTORY"
    return 0
}

cmd_ssh() {
    local node=${1:?usage: lab.sh ssh NODE [CMD...]}; shift
    local i=${node#"$PREFIX"}
    [[ $i =~ ^[0-9]+$ ]] || die "unknown node '$node'"
    lab_ssh "$(node_ip "$i")" "$@"
}

[ "$(id -u)" = 0 ] || die "the lab needs root (containers, bridge)"
action=${1:-}
[ $# -gt 0 ] && shift
case $action in
    up|down|purge)
        # Several sessions may share one lab: serialise changes to it.
        mkdir -p "$(dirname "$STATE")"
        exec 9>"/run/debvirt-lab.lock"
        flock -w 900 9 || die "another lab.sh holds /run/debvirt-lab.lock"
        "cmd_$action" "$@"
        ;;
    status) cmd_status ;;
    ssh) cmd_ssh "$@" ;;
    inventory) [ -f "$INVENTORY" ] || die "no lab: run lab.sh up"; echo "$INVENTORY" ;;
    *) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 2 ;;
esac
