#!/usr/bin/env bash
# The lab tests, as `tests/run.sh lab` runs them: pytest over tests/lab (the test_*.py files, in
# the order conftest.py gives them), on the lab of DEBVIRT_LAB_PREFIX/NET/STATE (built with
# DEBVIRT_LAB_NODES nodes, default 3, if it is not up). Prints pytest's summary line, and the
# totals last: "N passed, M failed".
# Environment: DEBVIRT_LAB_PYTEST_ARGS, extra pytest arguments (e.g. -k EXPR, -x).
set -uo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
STATE=${DEBVIRT_LAB_STATE:-/var/lib/debvirt-lab}
WORK=$(mktemp -d /tmp/debvirt-labtest.XXXXXX)
trap '[ -n "${KEEP_WORK:-}" ] || rm -rf "$WORK"' EXIT

# shellcheck source=tests/env.sh
. "$ROOT/tests/env.sh"
# Held for the whole run, so that no other test of this lab comes between two of these files;
# harness.py sees it held through the variable. The name is harness.py's.
if [ -z "${DEBVIRT_LAB_TEST_LOCKED:-}" ]; then
    lock=/run/$(basename "$STATE")-test.lock
    exec 8>"$lock"
    flock -w 3600 8 || { echo "another lab test holds $lock"; exit 1; }
    export DEBVIRT_LAB_TEST_LOCKED=$lock
fi

cd "$ROOT" || exit 1
# shellcheck disable=SC2086  # word splitting of the extra arguments is intended
python -m pytest tests/lab -p no:cacheprovider -rfEs --junitxml="$WORK/pytest.xml" \
    ${DEBVIRT_LAB_PYTEST_ARGS:-} 2>&1 | tee "$WORK/pytest.out"
summary=$(grep -E '^=+ .* in [0-9.]+s' "$WORK/pytest.out" | tail -n1)
# Counted from pytest's report: a fixture that failed is an error, counted as failed.
read -r PASSED FAILED SKIPPED < <(python - "$WORK/pytest.xml" <<'EOF' 2>/dev/null
import sys
import xml.etree.ElementTree as ET
s = ET.parse(sys.argv[1]).getroot()
s = s if s.tag == "testsuite" else s.find("testsuite")
tests, failures, errors, skipped = (int(s.get(k, 0)) for k in ("tests", "failures", "errors", "skipped"))
print(tests - failures - errors - skipped, failures + errors, skipped)
EOF
) || { PASSED=0; FAILED=1; SKIPPED=0; echo "no pytest report: counted as a failure"; }

# Where the stage's time goes, a file a line (fixtures included): the budget is kept with these.
python - "$WORK/pytest.xml" <<'EOF' 2>/dev/null || true
import collections
import sys
import xml.etree.ElementTree as ET
seconds = collections.OrderedDict()
for case in ET.parse(sys.argv[1]).getroot().iter("testcase"):
    name = case.get("classname", "?").split(".")[-1]
    seconds[name] = seconds.get(name, 0.0) + float(case.get("time", 0))
print("seconds by file: " + ", ".join("%s %.0f" % kv for kv in seconds.items()))
EOF
echo "pytest: ${summary:-no summary line}"
# What could not run here is said, never counted as passed.
[ "$SKIPPED" -eq 0 ] || echo "$SKIPPED skipped (see above)"
echo "$PASSED passed, $FAILED failed"
[ "$FAILED" -eq 0 ]
