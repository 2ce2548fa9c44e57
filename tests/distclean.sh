#!/usr/bin/env bash
# Remove every cache and every piece of state that the project's tooling and tests make on this
# machine, so that the next `make test` starts as on a machine that never ran them: the venvs,
# the build copy, ansible-test's venvs, the test images, the module's template and image caches,
# container roots and work directories of the tests, the labs (nodes, bridges, state) and their
# templates, LXC's download cache of the Debian template, and the subordinate ID range that the
# integration tests add for root. Debian packages stay installed.
#
#   tests/distclean.sh        (make distclean; make test runs it first)
set -euo pipefail

# shellcheck source=tests/env.sh
. "$(dirname "${BASH_SOURCE[0]}")/env.sh"
# shellcheck source=tests/libvirt-cleanup.sh
. "$DEBVIRT_ROOT/tests/libvirt-cleanup.sh"

say() { printf 'distclean: %s\n' "$*"; }

[ "$(id -u)" = 0 ] || { say "run as root: it removes labs and system caches"; exit 1; }

LAB=$DEBVIRT_ROOT/tests/lab/lab.sh
# The labs the tests build: the default one (also make demo's), the cluster test's pair (and its
# older name dvpair), the bridge test's and the README's second lab.
KNOWN_LABS=(dvlab:/var/lib/debvirt-lab dvlabp:/var/lib/debvirt-lab-p dvpair:/var/lib/debvirt-lab-pair dvbr:/var/lib/debvirt-lab-br
            dvdemo:/var/lib/debvirt-lab-demo)

remove_labs() {
    command -v lxc-ls >/dev/null || return 0
    local lab prefix state first
    local labs=("${KNOWN_LABS[@]}")
    # A lab built with other settings is found by its state directory and the node names in it.
    for state in /var/lib/debvirt-lab*; do
        [ -f "$state/inventory.ini" ] || continue
        first=$(sed -n 's/^\([a-z][a-z0-9]*[a-z]\)[0-9]\+ .*/\1/p' "$state/inventory.ini" | head -1)
        [ -n "$first" ] && labs+=("$first:$state")
    done
    for lab in "${labs[@]}"; do
        prefix=${lab%%:*} state=${lab#*:}
        if [ -d "$state" ] || lxc-ls -1 | grep -qE "^${prefix}[0-9]+\$"; then
            say "removing lab $prefix ($state)"
            DEBVIRT_LAB_PREFIX=$prefix DEBVIRT_LAB_STATE=$state bash "$LAB" down
        fi
    done
    say "removing the lab template (${DEBVIRT_LAB_CACHE:-/var/cache/debvirt-lab})"
    bash "$LAB" purge
}

remove_test_objects() {
    # Guests of earlier runs may hold files below the directories removed next.
    if command -v virsh >/dev/null && virsh -q -c qemu:///system version >/dev/null 2>&1 \
        && virsh -q -c lxc:///system version >/dev/null 2>&1; then
        cleanup_libvirt
    fi
    # Mounts the tests made below their work directories (loop-mounted volumes, fs pools).
    awk '$2 ~ "^/var/(lib/debvirt(-test)?|tmp/dvtest-)" {print $2}' /proc/self/mounts | sort -r |
        while read -r m; do
            say "unmounting $m"
            umount "$m" || umount -l "$m"
        done
}

remove_subids() {
    # What tests/integration/targets/container/tasks/setup.yml adds when root has no range.
    local f
    for f in /etc/subuid /etc/subgid; do
        if [ -f "$f" ] && grep -qx 'root:100000:65536' "$f"; then
            say "removing root's test range from $f"
            sed -i '/^root:100000:65536$/d' "$f"
        fi
    done
}

remove_labs
remove_test_objects
remove_subids
for path in "$DEBVIRT_VENV" "${DEBVIRT_BENCH_VENV:-/var/cache/debvirt-dev/bench-venv}" "$DEBVIRT_BUILD" \
    "$DEBVIRT_TEST_IMAGES" "$DEBVIRT_TEST_DISK" /var/cache/debvirt-test /var/lib/debvirt-test \
    /var/cache/debvirt /var/lib/debvirt ~/.ansible/test /var/cache/lxc/debian; do
    if [ -e "$path" ]; then
        say "removing $path"
        rm -rf "$path"
    fi
done
rm -rf /var/tmp/dvtest-* /tmp/debvirt-labtest.*
say "done: the next make test starts from cold caches"
