# shellcheck shell=bash
# cleanup_libvirt: source it, do not run it. Used by tests/run.sh and tests/distclean.sh.
# Callers define say().

# Removes what earlier (possibly killed) runs left behind, so that a test never trips over a
# guest, network or pool of the same name. Only names starting with dvtest- are touched.
cleanup_libvirt() {
    local uri name pool vol
    for uri in qemu:///system lxc:///system; do
        local v=(virsh -q -c "$uri")
        "${v[@]}" version >/dev/null || { say "libvirtd does not answer on $uri"; return 1; }
        for name in $("${v[@]}" list --all --name | grep '^dvtest-'); do
            say "removing leftover domain $name ($uri)"
            "${v[@]}" destroy "$name" >/dev/null 2>&1 || true
            # The LXC driver rejects the QEMU-only flags; a plain undefine is what it needs.
            "${v[@]}" undefine "$name" --nvram --managed-save --snapshots-metadata \
                >/dev/null 2>&1 || "${v[@]}" undefine "$name" >/dev/null 2>&1 || true
        done
    done
    local v=(virsh -q -c qemu:///system)
    for name in $("${v[@]}" net-list --all --name | grep '^dvtest-'); do
        say "removing leftover network $name"
        "${v[@]}" net-destroy "$name" >/dev/null 2>&1 || true
        "${v[@]}" net-undefine "$name" >/dev/null 2>&1 || true
    done
    for pool in $("${v[@]}" pool-list --all --name); do
        if [[ $pool == dvtest-* ]]; then
            # Volumes can only be listed and deleted in an active pool.
            "${v[@]}" pool-start "$pool" >/dev/null 2>&1 || true
            for vol in $("${v[@]}" vol-list "$pool" 2>/dev/null | awk '{print $1}'); do
                "${v[@]}" vol-delete --pool "$pool" "$vol" >/dev/null 2>&1 || true
            done
            say "removing leftover pool $pool"
            "${v[@]}" pool-destroy "$pool" >/dev/null 2>&1 || true
            "${v[@]}" pool-undefine "$pool" >/dev/null 2>&1 || true
        else
            # dvtest- volumes a test made in a shared pool such as `default`.
            for vol in $("${v[@]}" vol-list "$pool" 2>/dev/null | awk '$1 ~ /^dvtest-/ {print $1}'); do
                say "removing leftover volume $vol in pool $pool"
                "${v[@]}" vol-delete --pool "$pool" "$vol" >/dev/null 2>&1 || true
            done
        fi
    done
    local left
    left=$(
        for uri in qemu:///system lxc:///system; do
            virsh -q -c "$uri" list --all --name
        done
        virsh -q -c qemu:///system net-list --all --name
        virsh -q -c qemu:///system pool-list --all --name
    )
    if grep -q '^dvtest-' <<<"$left"; then
        say "could not remove leftovers: $(grep '^dvtest-' <<<"$left" | tr '\n' ' ')"
        return 1
    fi
}
