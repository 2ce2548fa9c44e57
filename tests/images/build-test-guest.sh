#!/usr/bin/env bash
# Build the tiny test guest (uncompressed kernel + busybox initramfs) that the
# integration tests and benchmarks boot under QEMU/libvirt.
#
# Usage: tests/images/build-test-guest.sh [OUTDIR]
#   OUTDIR defaults to ${DEBVIRT_TEST_IMAGES:-/var/cache/debvirt-test/guest}
#
# Produces OUTDIR/vmlinux and OUTDIR/initrd.img. The guest contract (marker,
# heartbeat, ACPI power-off, kernel command line) is described in README.md
# next to this script; keep the two in sync.
set -euo pipefail

# QEMU runs as libvirt-qemu: everything we create must be world-readable.
umask 022

SELF=$(readlink -f "${BASH_SOURCE[0]}")
OUTDIR=${1:-${DEBVIRT_TEST_IMAGES:-/var/cache/debvirt-test/guest}}

# Modules the guest wants, in the order we would like them loaded. Their
# dependencies are resolved from each module's own .modinfo and loaded first,
# so this list only has to name what the guest uses, not what those need.
WANTED_MODULES=(
    virtio_ring virtio
    virtio_pci_legacy_dev virtio_pci_modern_dev virtio_pci
    virtio_net virtio_blk
    evdev button
)

log() { printf 'build-test-guest: %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

# The stamp is the hash of this script, so any edit here forces a rebuild while
# repeated runs (every test session calls us) cost only a hash.
SCRIPT_SUM=$(sha256sum "$SELF" | cut -d' ' -f1)

is_current() {
    [[ -s $OUTDIR/vmlinux && -s $OUTDIR/initrd.img && -f $OUTDIR/.stamp ]] &&
        [[ $(head -n1 "$OUTDIR/.stamp") == "$SCRIPT_SUM" ]]
}

if is_current; then
    exit 0
fi

mkdir -p "$OUTDIR"
# Parallel test sessions may all find the image missing; only one may build.
exec 9>"$OUTDIR/.lock"
flock 9
if is_current; then
    exit 0
fi

pkg_installed() {
    [[ $(dpkg-query -W -f='${Status}' "$1" 2>/dev/null || true) == "install ok installed" ]]
}

ensure_tools() {
    local missing=() pkg
    # busybox-static, not busybox: the initramfs has no libc to link against.
    pkg_installed busybox-static || missing+=(busybox-static)
    command -v xz >/dev/null || missing+=(xz-utils)
    command -v objcopy >/dev/null || missing+=(binutils)
    command -v cpio >/dev/null || missing+=(cpio)
    ((${#missing[@]} == 0)) && return 0
    ((EUID == 0)) || die "missing packages (need root to install): ${missing[*]}"
    log "installing ${missing[*]}"
    # Wait for the dpkg lock instead of failing: other test setup may be
    # installing packages at the same moment.
    local -a install=(apt-get -o DPkg::Lock::Timeout=600 install -y --no-install-recommends)
    DEBIAN_FRONTEND=noninteractive "${install[@]}" "${missing[@]}" >&2 ||
        { apt-get -o DPkg::Lock::Timeout=600 update >&2 &&
            DEBIAN_FRONTEND=noninteractive "${install[@]}" "${missing[@]}" >&2; } ||
        die "could not install ${missing[*]}"
    for pkg in "${missing[@]}"; do
        pkg_installed "$pkg" || die "package $pkg still not installed"
    done
}

# The versioned package the linux-image-amd64 metapackage currently points to:
# tests then follow Debian's kernel without this script naming a version.
kernel_package() {
    local pkg
    pkg=$(apt-cache depends linux-image-amd64 2>/dev/null |
        awk '$1 == "Depends:" && $2 ~ /^linux-image-[0-9].*-amd64$/ { print $2; exit }') || true
    if [[ -z $pkg ]]; then
        # A fresh machine may not have package lists yet.
        if ((EUID == 0)); then
            apt-get -o DPkg::Lock::Timeout=600 update >&2 || true
        fi
        pkg=$(apt-cache depends linux-image-amd64 2>/dev/null |
            awk '$1 == "Depends:" && $2 ~ /^linux-image-[0-9].*-amd64$/ { print $2; exit }') || true
    fi
    [[ -n $pkg ]] || die "apt-cache cannot resolve linux-image-amd64 to a versioned kernel package"
    printf '%s\n' "$pkg"
}

is_elf() {
    [[ $(head -c 4 "$1" | od -An -tx1 | tr -d ' \n') == 7f454c46 ]]
}

# The bzImage is a small decompressor stub followed by the XZ-compressed ELF
# kernel. Booting that ELF directly (QEMU's PVH entry) skips the in-guest
# decompression, which under TCG costs several seconds on every boot.
extract_vmlinux() {
    local bzimage=$1 out=$2 offset
    local -a offsets
    # The magic can occur more than once (e.g. by chance in the stub); the
    # right one is the first that decompresses to an ELF image.
    mapfile -t offsets < <(LC_ALL=C grep -obUaP '\xfd\x37\x7a\x58\x5a\x00' "$bzimage" | cut -d: -f1)
    ((${#offsets[@]} > 0)) || die "no XZ stream in $bzimage (kernel not XZ-compressed?)"
    for offset in "${offsets[@]}"; do
        tail -c +"$((offset + 1))" "$bzimage" >"$out.xz"
        # --single-stream: the stream is followed by the rest of the bzImage,
        # which xz would otherwise reject as a corrupt second stream.
        if xz -dc --single-stream <"$out.xz" >"$out" 2>/dev/null && is_elf "$out"; then
            rm -f "$out.xz"
            log "vmlinux: XZ payload at offset $offset, $(stat -c %s "$out") bytes"
            return 0
        fi
    done
    rm -f "$out.xz" "$out"
    die "none of the XZ streams in $bzimage (offsets ${offsets[*]}) is an ELF kernel"
}

# Module dependencies from the module itself: the unpacked package has no
# modules.dep (depmod runs at install time, which we never do).
module_deps() {
    local ko=$1 info
    info=$(mktemp)
    objcopy -O binary --only-section=.modinfo "$ko" "$info"
    tr '\0' '\n' <"$info" | sed -n 's/^depends=//p' | tr ',' ' '
    rm -f "$info"
}

declare -A MOD_PATH=() BUILTIN=() VISITED=()
MOD_ORDER=()

index_modules() {
    local moddir=$1 f name
    while IFS= read -r f; do
        name=${f##*/}
        name=${name%%.ko*}
        MOD_PATH[${name//-/_}]=$f
    done < <(find "$moddir/kernel" -name '*.ko*' -type f)
    if [[ -f $moddir/modules.builtin ]]; then
        while IFS= read -r f; do
            name=${f##*/}
            name=${name%%.ko*}
            BUILTIN[${name//-/_}]=1
        done <"$moddir/modules.builtin"
    fi
}

# Depth-first, dependencies before dependants: that is the only order insmod
# (which, unlike modprobe, resolves nothing) accepts.
add_module() {
    local name=${1//-/_} dep deps
    [[ -n ${VISITED[$name]:-} ]] && return 0
    VISITED[$name]=1
    if [[ -n ${BUILTIN[$name]:-} ]]; then
        log "module $name: built into the kernel"
        return 0
    fi
    if [[ -z ${MOD_PATH[$name]:-} ]]; then
        log "module $name: neither built in nor shipped, skipped"
        return 0
    fi
    deps=$(module_deps "${MOD_PATH[$name]}") || die "cannot read .modinfo of ${MOD_PATH[$name]}"
    for dep in $deps; do
        add_module "$dep"
    done
    MOD_ORDER+=("$name")
}

copy_module() {
    local src=$1 dst=$2
    case $src in
        *.ko) cp "$src" "$dst" ;;
        *.ko.xz) xz -dc "$src" >"$dst" ;;
        *.ko.gz) gzip -dc "$src" >"$dst" ;;
        *.ko.zst) command -v zstd >/dev/null || die "zstd needed for $src"
            zstd -qdc "$src" >"$dst" ;;
        *) die "unknown module format: $src" ;;
    esac
}

write_guest_files() {
    local root=$1

    cat >"$root/init" <<'EOF'
#!/bin/sh
# PID 1 of the debvirt test guest. Whatever happens, never exit: PID 1 exiting
# panics the kernel and the test would see a hang instead of an error.
export PATH=/sbin:/bin:/usr/sbin:/usr/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mkdir -p /run /tmp /var/log

# The serial port is the test interface (libvirt logs it to a file); fall back
# to the console so a guest without a UART still says something somewhere.
if (: >/dev/ttyS0) 2>/dev/null; then
    exec </dev/null >/dev/ttyS0 2>&1
else
    exec </dev/null >/dev/console 2>&1
fi

while read -r m; do
    insmod "/lib/modules/$m.ko" || echo "debvirt-test-guest: insmod $m failed"
done </etc/debvirt/modules

# Armed before the marker: a test may ask for an ACPI shutdown the moment it
# sees the marker. acpid opens /dev/input/event* only at start, hence after
# evdev and button are loaded.
acpid -c /etc/acpi -a /etc/acpid.conf -l /run/acpid.log -p /run/acpid.pid ||
    echo "debvirt-test-guest: acpid failed to start"

echo "DEBVIRT-TEST-GUEST-UP"
# With console=ttyS0 the console is the serial port already; one marker there.
if ! grep -qw ttyS0 /sys/class/tty/console/active 2>/dev/null; then
    echo "DEBVIRT-TEST-GUEST-UP" >/dev/console 2>/dev/null
fi

ip link set lo up 2>/dev/null
if [ -e /sys/class/net/eth0 ]; then
    # Keeps running (renewing the lease) so long-lived tests keep their address;
    # its chatter goes to a file, not between the heartbeats.
    udhcpc -i eth0 -s /etc/debvirt/udhcpc.script -b -x hostname:debvirt-test-guest \
        >/run/udhcpc.log 2>&1 &
fi

n=0
while :; do
    n=$((n + 1))
    echo "heartbeat $n"
    # Served over HTTP, so a test can read the counter without the serial log.
    echo "$n" >/run/heartbeat
    sleep 2
done
EOF

    cat >"$root/etc/debvirt/udhcpc.script" <<'EOF'
#!/bin/sh
# udhcpc hook: udhcpc itself only negotiates, configuring is up to us.
case "$1" in
deconfig)
    ip -4 addr flush dev "$interface"
    ip link set "$interface" up
    ;;
bound|renew)
    ip -4 addr flush dev "$interface"
    ip addr add "$ip/${mask:-24}" dev "$interface"
    for r in $router; do
        ip route replace default via "$r" dev "$interface"
        break
    done
    if [ "$1" = bound ]; then
        echo "debvirt-test-guest: $interface $ip/${mask:-24}" >/dev/ttyS0 2>/dev/null
    fi
    if [ ! -e /run/httpd.started ]; then
        httpd -p 80 -h /www && : >/run/httpd.started
    fi
    ;;
esac
exit 0
EOF

    # busybox acpid turns the power-button key into the event string
    # "button/power PWRF 00000080" and runs the action whose key occurs in it.
    cat >"$root/etc/acpid.conf" <<'EOF'
PWRF power
PWRB power
EOF
    cat >"$root/etc/acpi/power" <<'EOF'
#!/bin/sh
# -f: there is no init daemon to signal; PID 1 is a plain shell script.
echo "debvirt-test-guest: ACPI power button, powering off" >/dev/ttyS0 2>/dev/null
exec poweroff -f
EOF

    printf 'DEBVIRT-TEST-GUEST-UP\n' >"$root/www/index.html"
    cat >"$root/www/cgi-bin/heartbeat" <<'EOF'
#!/bin/sh
printf 'Content-Type: text/plain\r\n\r\n'
cat /run/heartbeat 2>/dev/null || echo 0
EOF
    chmod 0755 "$root/init" "$root/etc/debvirt/udhcpc.script" "$root/etc/acpi/power" \
        "$root/www/cgi-bin/heartbeat"
}

build_initramfs() {
    local root=$1 moddir=$2 out=$3 busybox applet name

    mkdir -p "$root"/{bin,sbin,usr/bin,usr/sbin,proc,sys,dev,run,tmp,etc/debvirt,etc/acpi,lib/modules,www/cgi-bin}
    mkdir -p "$root/var/log"
    ln -s ../run "$root/var/run"

    busybox=$(dpkg-query -L busybox-static | grep -E '/bin/busybox$' | head -n1)
    [[ -x $busybox ]] || die "busybox-static installed but its binary was not found"
    cp "$busybox" "$root/bin/busybox"
    # Links made here, not with busybox --install at boot: one step less
    # between kernel start and the marker.
    while IFS= read -r applet; do
        applet=${applet#/}
        [[ $applet == bin/busybox ]] && continue
        [[ -L $root/$applet || -e $root/$applet ]] && continue
        [[ $applet == */* ]] && mkdir -p "$root/${applet%/*}"
        ln -s /bin/busybox "$root/$applet"
    done < <("$root/bin/busybox" --list-full)
    [[ -e $root/bin/sh ]] || ln -s /bin/busybox "$root/bin/sh"

    index_modules "$moddir"
    for name in "${WANTED_MODULES[@]}"; do
        add_module "$name"
    done
    : >"$root/etc/debvirt/modules"
    for name in "${MOD_ORDER[@]}"; do
        copy_module "${MOD_PATH[$name]}" "$root/lib/modules/$name.ko"
        printf '%s\n' "$name" >>"$root/etc/debvirt/modules"
    done
    log "modules, in load order: ${MOD_ORDER[*]:-(none)}"

    write_guest_files "$root"

    # The kernel opens /dev/console for PID 1 before /init can mount devtmpfs.
    # Creating the node needs root; without it /init still redirects itself.
    mknod -m 0600 "$root/dev/console" c 5 1 2>/dev/null ||
        log "could not create dev/console (not root?); kernel will warn, guest still works"

    # Fixed timestamps and order (and gzip -n) make the image byte-identical
    # across rebuilds of the same kernel, so a changed hash means a real change.
    find "$root" -exec touch -h -d @0 {} +
    # GNU cpio rather than busybox's: only it renumbers inodes (--reproducible).
    (cd "$root" && find . -mindepth 1 | LC_ALL=C sort |
        cpio --quiet -o -H newc -R 0:0 --reproducible) | gzip -9n >"$out"
}

main() {
    local work pkg deb moddir kver
    ensure_tools

    work=$(mktemp -d "$OUTDIR/.build.XXXXXX")
    # shellcheck disable=SC2064
    trap "rm -rf '$work'" EXIT

    pkg=$(kernel_package)
    log "kernel package: $pkg"
    mkdir "$work/dl"
    # Running as root, apt would drop to _apt, which cannot write to our
    # private temp directory; the download is verified by apt either way.
    local -a aptopts=()
    ((EUID != 0)) || aptopts=(-o APT::Sandbox::User=root)
    (cd "$work/dl" && apt-get download "${aptopts[@]}" "$pkg" >&2) ||
        die "apt-get download $pkg failed"
    deb=$(find "$work/dl" -name '*.deb' | head -n1)
    [[ -n $deb ]] || die "apt-get download produced no .deb"
    dpkg-deb -x "$deb" "$work/pkg"

    kver=${pkg#linux-image-}
    moddir=$work/pkg/lib/modules/$kver
    [[ -d $moddir ]] || moddir=$(find "$work/pkg/lib/modules" -mindepth 1 -maxdepth 1 -type d | head -n1)
    [[ -d $moddir ]] || die "no modules directory in $deb"
    [[ -f $work/pkg/boot/vmlinuz-$kver ]] || die "no boot/vmlinuz-$kver in $deb"

    extract_vmlinux "$work/pkg/boot/vmlinuz-$kver" "$work/vmlinux"
    build_initramfs "$work/root" "$moddir" "$work/initrd.img"
    log "initrd.img: $(stat -c %s "$work/initrd.img") bytes"

    # Stamp goes first and last: a crash in between leaves no stamp, so the
    # next run rebuilds instead of trusting a half-replaced pair.
    rm -f "$OUTDIR/.stamp"
    chmod 0644 "$work/vmlinux" "$work/initrd.img"
    mv -f "$work/vmlinux" "$OUTDIR/vmlinux"
    mv -f "$work/initrd.img" "$OUTDIR/initrd.img"
    printf '%s %s\n' "$(dpkg-deb -f "$deb" Package)" "$(dpkg-deb -f "$deb" Version)" >"$OUTDIR/kernel.version"
    chmod 0644 "$OUTDIR/kernel.version"
    # QEMU runs as libvirt-qemu and must traverse to the files.
    chmod a+rx "$OUTDIR"
    printf '%s\n' "$SCRIPT_SUM" >"$OUTDIR/.stamp.new"
    mv -f "$OUTDIR/.stamp.new" "$OUTDIR/.stamp"
    log "built $OUTDIR/vmlinux and $OUTDIR/initrd.img"
}

main
