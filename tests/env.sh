# shellcheck shell=bash
# Common environment of the test tooling; source it, do not run it.
#   . tests/env.sh
# Every path that the setup, the stages and the Makefile share is defined here once, so that
# overriding one variable (e.g. DEBVIRT_VENV) moves it for all of them.

# Derived from this file's location so that any clone (CI clones into a fresh folder) works.
DEBVIRT_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
export DEBVIRT_ROOT

# Outside the checkout on purpose: ansible-test scans the collection tree, and a venv or a
# build copy inside it would be scanned (and copied into itself) too.
export DEBVIRT_VENV="${DEBVIRT_VENV:-/var/cache/debvirt-dev/venv}"
export DEBVIRT_BUILD="${DEBVIRT_BUILD:-/var/tmp/debvirt-build}"
export DEBVIRT_TEST_IMAGES="${DEBVIRT_TEST_IMAGES:-/var/cache/debvirt-test/guest}"
export DEBVIRT_TEST_DISK="${DEBVIRT_TEST_DISK:-/var/cache/debvirt-test/disk}"

# ansible-test only accepts a collection at .../ansible_collections/<namespace>/<name>.
export DEBVIRT_COLLECTION="$DEBVIRT_BUILD/ansible_collections/debvirt/cluster"

# The controller's Python and ansible come from the venv, never from pyenv's shims or Debian's
# /usr/bin/python3 (which lacks ansible-core, and whose python3-libvirt the venv cannot see).
# Re-sourcing must not grow PATH, and the venv must come first even if it was on PATH already.
_debvirt_path=":$PATH:"
_debvirt_path=${_debvirt_path//":$DEBVIRT_VENV/bin:"/:}
_debvirt_path=${_debvirt_path#:}
PATH="$DEBVIRT_VENV/bin:${_debvirt_path%:}"
unset _debvirt_path
export PATH
export VIRTUAL_ENV="$DEBVIRT_VENV"

export ANSIBLE_COLLECTIONS_PATH="$DEBVIRT_BUILD"
# Tests talk to the system daemons; a user-session URI would be a different, empty libvirt.
export LIBVIRT_DEFAULT_URI="${LIBVIRT_DEFAULT_URI:-qemu:///system}"
# pip's self-update check and apt's prompts would only stall a non-interactive run.
export PIP_DISABLE_PIP_VERSION_CHECK=1
export DEBIAN_FRONTEND=noninteractive
