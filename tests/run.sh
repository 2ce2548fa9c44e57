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
# shellcheck source=tests/libvirt-cleanup.sh
. "$(dirname "${BASH_SOURCE[0]}")/libvirt-cleanup.sh"

ALL_STAGES=(sanity units integration lab)
# The controller Python; ansible-core 2.19 supports no newer one on Debian 12.
PYTHON_VERSION=3.11

usage() {
    printf 'usage: %s STAGE...\n  stages: %s all\n' "$0" "${ALL_STAGES[*]}" >&2
    exit 2
}

say() { printf 'run: %s\n' "$*"; }
now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", b - a }'; }

# What failed in a stage's output, a line each (ansible's failed task with its message, pytest's
# and the lab's FAILED lines): printed again under the summary so that the end of a long run
# says why, not only that, it failed. A failure ansible was told to ignore is not one.
failures() {
    awk '
        function flush() { if (held != "") printf "%s", held; held = "" }
        /^(TASK|PLAY|RUNNING HANDLER) / { flush(); task = substr($0, 1, index($0, "]")); next }
        /^(fatal|failed): / { held = held "  " task " " substr($0, 1, 400) "\n"; next }
        /\.\.\.ignoring/ { held = ""; next }
        /^FAILED - RETRYING/ { next }
        /^(FAILED|ERROR) |^FAIL: |^ERROR: / { print "  " substr($0, 1, 400); next }
        END { flush() }
    ' "$1" | tail -12
}

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

stage_integration() {
    # The targets and the cleanup use this machine's libvirtd and the dvtest- names: two runs
    # at once would remove each other's guests.
    exec 7>/run/debvirt-integration.lock
    flock -w 3600 7 || { say "another integration run holds /run/debvirt-integration.lock"; return 1; }
    cleanup_libvirt || return 1
    collection
    if ! compgen -G 'tests/integration/targets/*/' >/dev/null; then
        say "no integration targets in tests/integration/targets: nothing to test is a failure"
        return 1
    fi
    # --allow-destructive: the targets define guests, networks and pools on this machine's
    # libvirtd, which is what this dedicated test machine is for.
    local it=(ansible-test integration --local --python "$PYTHON_VERSION" --color no --allow-destructive)
    local targets target rc=0 t0 results=() failed=0
    # shellcheck disable=SC2086
    targets=$("${it[@]}" --list-targets ${DEBVIRT_INTEGRATION_ARGS:-}) || return 1
    [ -n "$targets" ] || { say "no integration target matches: nothing to test is a failure"; return 1; }
    # One ansible-test run a target: a failed target never hides the ones after it, and each
    # gets its own line in the summary. DEBVIRT_INTEGRATION_ARGS chose the targets above; given
    # again here, the targets it names would run inside every target's run.
    for target in $targets; do
        t0=$(now)
        if "${it[@]}" -v "$target"; then
            results+=("$(printf '  %-20s %-8s %6s s' "$target" passed "$(elapsed "$t0" "$(now)")")")
        else
            results+=("$(printf '  %-20s %-8s %6s s' "$target" FAILED "$(elapsed "$t0" "$(now)")")")
            failed=$((failed + 1))
            rc=1
        fi
    done
    say "integration targets:"
    printf '%s\n' "${results[@]}"
    say "$(( $(wc -w <<<"$targets") - failed )) targets passed, $failed failed"
    return $rc
}

# Building the lab (template, nodes) mostly waits on downloads, unpacking and boots: when other
# stages come first, it runs beside them and the lab stage picks up a lab that is up.
start_lab_early() {
    LAB_EARLY_LOG=$(mktemp)
    say "building the lab in the background while the other stages run"
    { bash "$DEBVIRT_ROOT/tests/lab/lab.sh" up </dev/null >"$LAB_EARLY_LOG" 2>&1; echo $? >"$LAB_EARLY_LOG.rc"; } &
    LAB_EARLY_PID=$!
}

stage_lab() {
    local script="$DEBVIRT_ROOT/tests/lab/test.sh"
    if [ ! -f "$script" ]; then
        say "tests/lab/test.sh does not exist yet: the lab stage cannot run"
        return 1
    fi
    if [ -n "$LAB_EARLY_LOG" ]; then
        # A failed early build is not the stage's verdict: the tests bring the lab up again
        # and fail there, with the error in their own output, if it still cannot be built.
        cat "$LAB_EARLY_LOG"
        [ "$(cat "$LAB_EARLY_LOG.rc")" = 0 ] || say "the background lab build failed; the tests try again"
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

results=()
why=()
passed=0
failed=0
log=$(mktemp)
LAB_EARLY_LOG=
trap 'rm -f "$log" ${LAB_EARLY_LOG:+"$LAB_EARLY_LOG" "$LAB_EARLY_LOG.rc"}' EXIT
if [ ${#stages[@]} -gt 1 ] && [ "${stages[-1]}" = lab ] && [ -f "$DEBVIRT_ROOT/tests/lab/lab.sh" ]; then
    start_lab_early
fi
for stage in "${stages[@]}"; do
    printf '\n==================== stage: %s ====================\n' "$stage"
    t0=$(now)
    # The stage's time includes what it still waits for of the early build.
    [ "$stage" != lab ] || [ -z "${LAB_EARLY_PID:-}" ] || wait "$LAB_EARLY_PID" || true
    # A subshell per stage: a stage's cd, variables and errexit stay its own, and a failing
    # command ends only that stage.
    (
        set -e
        "stage_$stage"
    ) 2>&1 | tee "$log"
    rc=${PIPESTATUS[0]}
    secs=$(elapsed "$t0" "$(now)")
    if [ "$rc" = 0 ]; then
        result=passed
        passed=$((passed + 1))
    else
        result="FAILED (exit $rc)"
        failed=$((failed + 1))
        why+=("$stage failed:" "$(failures "$log")")
    fi
    printf -- '-------------------- %s: %s in %s s\n' "$stage" "$result" "$secs"
    results+=("$(printf '%-12s %-18s %8s' "$stage" "$result" "$secs")")
done

printf '\n%-12s %-18s %8s\n' stage result seconds
printf '%s\n' "${results[@]}"
[ ${#why[@]} = 0 ] || printf '%s\n' "${why[@]}"
printf '%d passed, %d failed\n' "$passed" "$failed"
[ "$failed" = 0 ]
