#!/usr/bin/env bash
# Run test stages against a fresh copy of the collection:
#
#   tests/run.sh STAGE...     stages: sanity units integration lab, or all (= all four)
#
# Every requested stage runs even when an earlier one failed, so one run shows every
# problem. The exit status is non-zero if any stage failed; the last line counts stages as
# "N passed, M failed". Assumes tests/setup-host.sh has run (`make` does that).
#
# Environment: DEBVIRT_SANITY_ARGS, DEBVIRT_INTEGRATION_ARGS, DEBVIRT_UNITS_ARGS: extra
# arguments for ansible-test sanity / ansible-test integration / pytest (e.g. target names,
# --test NAME, -k EXPR).
set -uo pipefail

# shellcheck source=tests/env.sh
. "$(dirname "${BASH_SOURCE[0]}")/env.sh"

ALL_STAGES=(sanity units integration lab)
# The controller Python; ansible-core 2.19 supports no newer one on Debian 12.
PYTHON_VERSION=3.11

usage() {
    printf 'usage: %s STAGE...\n  stages: %s all\n' "$0" "${ALL_STAGES[*]}" >&2
    exit 2
}

say() { printf 'run: %s\n' "$*"; }

collection() {
    "$DEBVIRT_ROOT/tests/sync-collection.sh" >/dev/null
    cd "$DEBVIRT_COLLECTION"
}

# ansible-test bootstraps pip in each venv it creates with a get-pip script from a host that
# cannot be reached here. A stand-in that seeds pip from the interpreter's own ensurepip and
# then lets that pip install the pinned version from the package index does the same job.
seed_get_pip() {
    local versions v cache=~/.ansible/test/cache
    versions=$(python - <<EOF
import types
from ansible_test._internal.python_requirements import get_venv_packages
# It reads only .version of its PythonConfig argument.
print(get_venv_packages(types.SimpleNamespace(version='$PYTHON_VERSION'))['pip'])
EOF
    ) || return 1
    [ -n "$versions" ] || { say "cannot find the pip version that ansible-test pins"; return 1; }
    mkdir -p "$cache"
    for v in $versions; do
        local f="$cache/get_pip_${v//./_}.py"
        local marker="# debvirt stand-in for get-pip.py, v1"
        if [ -f "$f" ] && [ "$(head -1 "$f")" = "$marker" ]; then
            continue
        fi
        cat >"$f.tmp" <<EOF
$marker
# get-pip.py cannot be downloaded here; ansible-test runs this in a venv created without pip.
import subprocess
import sys

args = [a for a in sys.argv[1:] if a not in ('--no-setuptools', '--no-wheel')]
subprocess.check_call([sys.executable, '-m', 'ensurepip', '--default-pip'])
# Python 3.11's ensurepip also brings setuptools, which get-pip.py was asked to leave out.
if '--no-setuptools' in sys.argv:
    subprocess.check_call([sys.executable, '-m', 'pip', 'uninstall', '-q', '-y', 'setuptools'])
subprocess.check_call([sys.executable, '-m', 'pip', 'install', '-q'] + args)
EOF
        mv "$f.tmp" "$f"
        say "seeded $f"
    done
}

stage_sanity() {
    seed_get_pip || return 1
    collection
    # shellcheck disable=SC2086 # word splitting of the extra arguments is intended
    ansible-test sanity --local --python "$PYTHON_VERSION" --color no ${DEBVIRT_SANITY_ARGS:-}
}

stage_units() {
    collection
    [ -d tests/unit ] || { say "no tests/unit directory"; return 1; }
    local rc=0
    # shellcheck disable=SC2086
    PYTHONPATH="$DEBVIRT_BUILD${PYTHONPATH:+:$PYTHONPATH}" \
        python -m pytest tests/unit -q -p no:cacheprovider ${DEBVIRT_UNITS_ARGS:-} || rc=$?
    if [ $rc = 5 ]; then
        say "pytest collected no tests: that is a failure, not a pass"
    fi
    return $rc
}

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

stage_integration() {
    cleanup_libvirt || return 1
    collection
    if ! compgen -G 'tests/integration/targets/*/' >/dev/null; then
        say "no integration targets in tests/integration/targets: nothing to test is a failure"
        return 1
    fi
    # --allow-destructive: the targets define guests, networks and pools on this machine's
    # libvirtd, which is what this dedicated test machine is for.
    # shellcheck disable=SC2086
    ansible-test integration --local --python "$PYTHON_VERSION" -v --color no \
        --allow-destructive ${DEBVIRT_INTEGRATION_ARGS:-}
}

stage_lab() {
    local script="$DEBVIRT_ROOT/tests/lab/test.sh"
    if [ ! -f "$script" ]; then
        say "tests/lab/test.sh does not exist yet: the lab stage cannot run"
        return 1
    fi
    # The lab plays use the collection through ANSIBLE_COLLECTIONS_PATH: bring the copy
    # there up to date with the checkout.
    "$DEBVIRT_ROOT/tests/sync-collection.sh" >/dev/null || return 1
    bash "$script"
}

[ $# -gt 0 ] || usage
stages=()
for arg in "$@"; do
    case "$arg" in
        all) stages+=("${ALL_STAGES[@]}") ;;
        sanity | units | integration | lab) stages+=("$arg") ;;
        *) printf 'unknown stage: %s\n' "$arg" >&2; usage ;;
    esac
done

now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", b - a }'; }

results=()
passed=0
failed=0
for stage in "${stages[@]}"; do
    printf '\n==================== stage: %s ====================\n' "$stage"
    t0=$(now)
    # A subshell per stage: a stage's cd, variables and errexit stay its own, and a failing
    # command ends only that stage.
    (
        set -e
        "stage_$stage"
    )
    rc=$?
    secs=$(elapsed "$t0" "$(now)")
    if [ $rc = 0 ]; then
        result=passed
        passed=$((passed + 1))
    else
        result="FAILED (exit $rc)"
        failed=$((failed + 1))
    fi
    printf -- '-------------------- %s: %s in %s s\n' "$stage" "$result" "$secs"
    results+=("$(printf '%-12s %-18s %8s' "$stage" "$result" "$secs")")
done

printf '\n%-12s %-18s %8s\n' stage result seconds
printf '%s\n' "${results[@]}"
printf '%d passed, %d failed\n' "$passed" "$failed"
[ "$failed" = 0 ]
