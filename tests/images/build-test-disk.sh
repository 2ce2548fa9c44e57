#!/usr/bin/env bash
# Build a disk image that boots the test guest by itself: the tiny test guest (see README.md),
# but from a disk through the BIOS and extlinux instead of QEMU's direct kernel boot, so that a
# test can prove a guest boots from a volume (a linked clone of this image, for instance).
#
#   tests/images/build-test-disk.sh [OUTDIR]
#
# OUTDIR defaults to ${DEBVIRT_TEST_DISK:-/var/cache/debvirt-test/disk}. It writes boot.qcow2
# (about 11 MB, a 48 MiB disk) and boot.qcow2.sha256. The image is one ext4 file system without a
# partition table; extlinux sits in its boot block, which SeaBIOS runs like an MBR. The kernel is
# the bzImage of the same Debian package the test guest's initrd was built for (its modules are
# in that initrd). Needs root (a loop mount), and may apt-get install extlinux.
# It exits at once when the image exists and was built by this version of the script.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
guest=${DEBVIRT_TEST_IMAGES:-/var/cache/debvirt-test/guest}
out=${1:-${DEBVIRT_TEST_DISK:-/var/cache/debvirt-test/disk}}
stamp=$(sha256sum "${BASH_SOURCE[0]}" | cut -d' ' -f1)

die() { printf 'build-test-disk: %s\n' "$*" >&2; exit 1; }

[ "$(id -u)" = 0 ] || die "needs root (it loop-mounts the image)"
mkdir -p "$out"
exec 9>"$out/.lock"
flock 9
if [ -f "$out/boot.qcow2" ] && [ "$(cat "$out/.stamp" 2>/dev/null)" = "$stamp" ]; then
    exit 0
fi

# The test guest comes first: its initrd carries the kernel's modules.
[ -f "$guest/initrd.img" ] || "$here/build-test-guest.sh" "$guest"
read -r pkg version < "$guest/kernel.version"
command -v extlinux >/dev/null || apt-get install -y -q extlinux >/dev/null

work=$(mktemp -d)
cleanup() {
    mountpoint -q "$work/mnt" && umount "$work/mnt"
    rm -rf "$work"
}
trap cleanup EXIT

(cd "$work" && apt-get download "$pkg=$version" >/dev/null 2>&1) || die "apt-get download $pkg=$version failed"
dpkg-deb --fsys-tarfile "$work"/*.deb | tar -x -C "$work" --wildcards './boot/vmlinuz-*'
kernel=$(ls "$work"/boot/vmlinuz-*)

# extlinux 6.04 cannot boot from ext4 with the 64bit or metadata_csum features.
truncate -s 48M "$work/disk.raw"
mkfs.ext4 -q -F -O ^64bit,^metadata_csum -L dvboot "$work/disk.raw"
mkdir "$work/mnt"
mount -o loop "$work/disk.raw" "$work/mnt"
cp "$kernel" "$work/mnt/vmlinuz"
cp "$guest/initrd.img" "$work/mnt/initrd.img"
mkdir -p "$work/mnt/boot/extlinux"
cat > "$work/mnt/boot/extlinux/extlinux.conf" <<'EOF'
DEFAULT linux
TIMEOUT 1
SERIAL 0 115200
LABEL linux
  KERNEL /vmlinuz
  INITRD /initrd.img
  APPEND console=ttyS0 no_timer_check
EOF
extlinux --install "$work/mnt/boot/extlinux" >/dev/null 2>&1
umount "$work/mnt"

qemu-img convert -O qcow2 "$work/disk.raw" "$out/boot.qcow2.tmp"
chmod 0644 "$out/boot.qcow2.tmp"
mv "$out/boot.qcow2.tmp" "$out/boot.qcow2"
(cd "$out" && sha256sum boot.qcow2 > boot.qcow2.sha256)
printf '%s\n' "$stamp" > "$out/.stamp"
