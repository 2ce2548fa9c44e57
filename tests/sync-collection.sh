#!/usr/bin/env bash
# Mirror the checkout to $DEBVIRT_BUILD/ansible_collections/debvirt/cluster and print that path.
#
# ansible-test insists on that layout and does not accept a symlink, while the repository
# root stays the collection root. The copy is exact (what is in the working tree, committed
# or not, minus what .gitignore ignores), so that tests see uncommitted work.
#
# .git is not copied: with it, ansible-test would list files with `git ls-files` and skip new
# files a developer has not `git add`ed yet; without it, it takes every file in the copy,
# which is exactly the working tree because the copy is exact.
set -euo pipefail

# shellcheck source=tests/env.sh
. "$(dirname "${BASH_SOURCE[0]}")/env.sh"

mkdir -p "$DEBVIRT_COLLECTION"
# --delete-excluded is deliberately not used: it would wipe tests/output in the copy, where
# ansible-test leaves the results of the last run for inspection.
rsync -a --delete \
    --exclude=/.git \
    --exclude=/tests/output \
    --exclude=/bench/results \
    --exclude=__pycache__ \
    --filter=':- .gitignore' \
    "$DEBVIRT_ROOT/" "$DEBVIRT_COLLECTION/"
printf '%s\n' "$DEBVIRT_COLLECTION"
