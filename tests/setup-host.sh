#!/usr/bin/env bash
# Make this Debian 12 machine ready for every test stage: packages, the controller venv,
# running libvirt daemons (QEMU and LXC drivers), the `default` network and the test guest
# image. Safe to re-run, also after a run that was interrupted or left things behind; a
# second run on a ready machine only checks and takes a few seconds.
set -euo pipefail

# shellcheck source=tests/env.sh
. "$(dirname "${BASH_SOURCE[0]}")/env.sh"

log() { printf 'setup-host: %s\n' "$*"; }
die() { printf 'setup-host: ERROR: %s\n' "$*" >&2; exit 1; }

[ "$(id -u)" = 0 ] || die "run as root: it installs packages and starts libvirtd"

PACKAGES=(
    libvirt-daemon-system libvirt-daemon-driver-lxc libvirt-daemon-driver-qemu libvirt-clients
    # Only "Suggested" by libvirt-daemon, but the iSCSI shared-storage tests need it.
    libvirt-daemon-driver-storage-iscsi-direct
    qemu-system-x86 qemu-utils qemu-block-extra dnsmasq-base
    libvirt-dev python3-libvirt python3-lxml python3-venv
    genisoimage xorriso busybox-static ovmf
    lxc debootstrap distro-info tgt
    corosync pacemaker pacemaker-cli-utils
    rsync
    # Without it ansible-test silently skips its shellcheck sanity test.
    shellcheck
)

# Set when this run installed a libvirt daemon package: a libvirtd that was already running
# would not see drivers installed after its start.
LIBVIRT_PACKAGES_CHANGED=0

install_packages() {
    local missing=() p
    for p in "${PACKAGES[@]}"; do
        dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null | grep -qx installed \
            || missing+=("$p")
    done
    if [ ${#missing[@]} -eq 0 ]; then
        log "all ${#PACKAGES[@]} packages are installed"
        return
    fi
    log "installing: ${missing[*]}"
    # Another apt run (a developer's, or a lab build) may hold the lock for a while.
    local apt=(apt-get -q -y -o DPkg::Lock::Timeout=600)
    local updated=0
    if ! find /var/lib/apt/lists -maxdepth 1 -name '*_Packages*' -mmin -60 2>/dev/null | grep -q .; then
        "${apt[@]}" update
        updated=1
    fi
    if ! "${apt[@]}" install "${missing[@]}"; then
        # Lists younger than an hour can still name versions the mirror has dropped.
        [ $updated = 1 ] && die "apt-get install failed"
        log "install failed with the current package lists; updating them and retrying"
        "${apt[@]}" update
        "${apt[@]}" install "${missing[@]}" || die "apt-get install failed"
    fi
    case " ${missing[*]}" in
        *" libvirt-daemon"*) LIBVIRT_PACKAGES_CHANGED=1 ;;
    esac
}

setup_venv() {
    local py real want have stamp="$DEBVIRT_VENV/.debvirt-stamp"
    # python3.11 is the newest Python that ansible-core 2.19 supports as a controller.
    py=$(PATH=${PATH#"$DEBVIRT_VENV/bin:"} command -v python3.11) \
        || die "python3.11 is not on PATH"
    # pyenv puts a shim on PATH; the venv must point at the real interpreter.
    real=$("$py" -c 'import sys; print(sys.executable)') || die "$py does not run"
    want="$(sha256sum "$DEBVIRT_ROOT/requirements.txt" | cut -d' ' -f1) $("$real" -c 'import sys; print(sys.version)' | head -1)"
    have=$(cat "$stamp" 2>/dev/null || true)
    if [ "$have" = "$want" ] && "$DEBVIRT_VENV/bin/python" -c 'import ansible, libvirt, lxml' 2>/dev/null; then
        log "venv $DEBVIRT_VENV is up to date"
        return
    fi
    # Rebuild from scratch when the interpreter changed or the venv is broken; a venv whose
    # only change is requirements.txt is updated in place (keeps pip's wheel cache useful).
    if [ "${have#* }" != "${want#* }" ] || ! "$DEBVIRT_VENV/bin/python" -c '' 2>/dev/null; then
        log "creating venv $DEBVIRT_VENV with $real"
        mkdir -p "$(dirname "$DEBVIRT_VENV")"
        "$real" -m venv --clear "$DEBVIRT_VENV"
    fi
    log "installing requirements.txt into the venv"
    rm -f "$stamp"
    "$DEBVIRT_VENV/bin/python" -m pip install -q -r "$DEBVIRT_ROOT/requirements.txt" \
        || die "pip install -r requirements.txt failed"
    printf '%s\n' "$want" >"$stamp"
}

# The daemon named by a pidfile is running. Never look a daemon up by process name: the
# lab's containers run their own libvirtd, visible in this machine's process list.
pidfile_running() {
    local pidfile=$1 name=$2 pid exe
    pid=$(cat "$pidfile" 2>/dev/null) || return 1
    [[ $pid =~ ^[0-9]+$ ]] && kill -0 "$pid" 2>/dev/null || return 1
    exe=$(readlink "/proc/$pid/exe" 2>/dev/null) || return 1
    # "(deleted)" means the binary was upgraded under it; treat it as running, the caller
    # decides about restarting.
    case "$exe" in */"$name" | */"$name (deleted)") return 0 ;; esac
    return 1
}

stop_pidfile() {
    local pidfile=$1 name=$2 pid i
    pidfile_running "$pidfile" "$name" || return 0
    pid=$(cat "$pidfile")
    log "stopping $name (pid $pid)"
    kill -TERM "$pid"
    for ((i = 0; i < 300; i++)); do
        kill -0 "$pid" 2>/dev/null || return 0
        sleep 0.1
    done
    die "$name (pid $pid) did not stop within 30 s"
}

# Whether libvirtd with this pid can run LXC domains: on this machine's hybrid cgroup layout
# the LXC driver fails while cgroup2 is mounted at /sys/fs/cgroup/unified in its namespace.
libvirtd_lxc_capable() {
    ! grep -q ' /sys/fs/cgroup/unified ' "/proc/$1/mountinfo" 2>/dev/null
}

start_libvirtd_direct() {
    local d
    for d in virtlogd virtlockd; do
        if pidfile_running "/run/$d.pid" "$d"; then
            continue
        fi
        log "starting $d"
        rm -f "/run/$d.pid"
        "$d" -d
    done

    local pidfile=/run/libvirtd.pid restart=""
    if pidfile_running $pidfile libvirtd; then
        local pid exe
        pid=$(cat $pidfile)
        exe=$(readlink "/proc/$pid/exe")
        if [ "$LIBVIRT_PACKAGES_CHANGED" = 1 ]; then
            restart="libvirt packages were installed after it started"
        elif [[ $exe == *"(deleted)" ]]; then
            restart="its binary was upgraded"
        elif ! libvirtd_lxc_capable "$pid"; then
            restart="it was started without the cgroup workaround the LXC driver needs"
        fi
        if [ -z "$restart" ]; then
            log "libvirtd is running (pid $pid)"
            return
        fi
        log "restarting libvirtd: $restart"
        # Running QEMU guests and LXC containers survive this; libvirtd reconnects to them.
        stop_pidfile $pidfile libvirtd
    fi

    rm -f $pidfile
    mkdir -p /var/log/libvirt
    # Without systemd nothing collects the daemon's messages; keep warnings and errors in a
    # file so that a failing start can be diagnosed.
    export LIBVIRT_LOG_OUTPUTS="3:file:/var/log/libvirt/libvirtd.log"
    if mountpoint -q /sys/fs/cgroup/unified; then
        log "starting libvirtd in a mount namespace without /sys/fs/cgroup/unified (LXC driver)"
        # libvirtd mounts things (fs pools) and the host mounts things (loop devices, test
        # images) that the other side must see, as on a systemd host whose / is shared. Share
        # only the root mount: the machine's other mounts keep their propagation.
        if [ "$(findmnt -n -o PROPAGATION /)" = private ]; then
            mount --make-shared /
        fi
        # The cgroup2 mount is made private in the new namespace before it is unmounted, so
        # the unmount cannot propagate back to the host.
        unshare -m --propagation unchanged sh -c \
            'mount --make-private /sys/fs/cgroup/unified && umount /sys/fs/cgroup/unified && exec libvirtd -d'
    else
        log "starting libvirtd"
        libvirtd -d
    fi
}

start_daemons() {
    if [ -d /run/systemd/system ]; then
        # A real host: systemd owns the daemons and pure cgroup v2 needs no workaround.
        systemctl start virtlogd.socket virtlockd.socket libvirtd.service
        if [ "$LIBVIRT_PACKAGES_CHANGED" = 1 ]; then
            systemctl restart libvirtd.service
        fi
    else
        start_libvirtd_direct
    fi

    local i err=""
    for ((i = 0; i < 60; i++)); do
        if err=$(virsh -c qemu:///system version 2>&1 >/dev/null) \
            && err=$(virsh -c lxc:///system version 2>&1 >/dev/null); then
            log "libvirtd answers on qemu:///system and lxc:///system"
            return
        fi
        sleep 1
    done
    die "libvirtd did not answer on qemu:///system and lxc:///system within 60 s: $err
  (see /var/log/libvirt/libvirtd.log)"
}

ensure_default_network() {
    local v=(virsh -q -c qemu:///system)
    if ! "${v[@]}" net-info default >/dev/null 2>&1; then
        log "defining the libvirt network 'default'"
        "${v[@]}" net-define /usr/share/libvirt/networks/default.xml >/dev/null
    fi
    "${v[@]}" net-autostart default >/dev/null
    local active
    active=$("${v[@]}" net-info default | awk '$1 == "Active:" {print $2}')
    # An active network whose dnsmasq died (killed with a previous libvirtd, say) hands out
    # no addresses; restart it rather than trust libvirt's bookkeeping.
    if [ "$active" = yes ] && ! pidfile_running /run/libvirt/network/default.pid dnsmasq; then
        log "network 'default' is active but its dnsmasq is not running; restarting it"
        "${v[@]}" net-destroy default >/dev/null
        active=no
    fi
    if [ "$active" != yes ]; then
        log "starting the libvirt network 'default'"
        "${v[@]}" net-start default >/dev/null
    fi
    pidfile_running /run/libvirt/network/default.pid dnsmasq \
        || die "network 'default' is active but its dnsmasq is not running"
    log "network 'default' is active with dnsmasq (pid $(cat /run/libvirt/network/default.pid))"
}

# A short-lived container with the host's / as its root proves the LXC driver works (cgroups,
# namespaces) in under a second; far cheaper to learn here than from a failing test.
check_lxc() {
    local name=dvtest-setup-lxc-check v=(virsh -q -c lxc:///system)
    "${v[@]}" destroy "$name" >/dev/null 2>&1 || true
    local xml
    xml=$(mktemp)
    cat >"$xml" <<EOF
<domain type='lxc'>
  <name>$name</name>
  <memory unit='MiB'>64</memory>
  <os>
    <type>exe</type>
    <init>/bin/sh</init>
    <initarg>-c</initarg>
    <initarg>sleep 30</initarg>
  </os>
  <devices><console type='pty'/></devices>
</domain>
EOF
    local out
    if ! out=$("${v[@]}" create "$xml" 2>&1); then
        rm -f "$xml"
        die "the LXC driver cannot start a container: $out"
    fi
    rm -f "$xml"
    "${v[@]}" destroy "$name" >/dev/null
    log "the LXC driver starts containers"
}

build_test_images() {
    # Built here, not by the targets: ansible-test runs a target from a copy of its own folder only.
    log "building the test guest image into $DEBVIRT_TEST_IMAGES"
    bash "$DEBVIRT_ROOT/tests/images/build-test-guest.sh"
    log "building the bootable test disk into $DEBVIRT_TEST_DISK"
    bash "$DEBVIRT_ROOT/tests/images/build-test-disk.sh" "$DEBVIRT_TEST_DISK"
}

start=$SECONDS
install_packages
setup_venv
start_daemons
ensure_default_network
check_lxc
build_test_images
log "ready in $((SECONDS - start)) s"
