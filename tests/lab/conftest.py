# -*- coding: utf-8 -*-
# Copyright: debvirt.cluster developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Fixtures of the lab tests (README.md beside this file lists them)."""

from __future__ import annotations

import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

# pylint: disable=wrong-import-position  # found through the path set just above
from harness import ROOT, Lab, LabError, ensure_images, run, say  # noqa: E402

# The order the files run in when pytest is given several: role node first, then the cluster
# test (it leaves the three-node cluster the others start from); files not named here last.
ORDER = ('test_roles', 'test_cluster', 'test_migration', 'test_placement', 'test_fleet', 'test_ownership', 'test_faults', 'test_inventory',
         'test_upgrade', 'test_bridges')


def pytest_configure(config):
    # The tooling's environment (venv on PATH, ANSIBLE_COLLECTIONS_PATH, the build copy), as
    # the stages get it, so that `pytest tests/lab/test_x.py` works from a plain shell too.
    out = run(['bash', '-c', '. "$0" && env -0', str(ROOT / 'tests/env.sh')]).stdout
    for entry in out.split('\0'):
        key, _sep, value = entry.partition('=')
        if key.startswith(('DEBVIRT_', 'ANSIBLE_', 'LIBVIRT_', 'PIP_')) or key in ('PATH', 'VIRTUAL_ENV'):
            os.environ[key] = value
    # A test wants nodes as the current template makes them; what an older lab holds is disposable.
    os.environ['DEBVIRT_LAB_REBUILD_STALE'] = '1'


def pytest_collection_modifyitems(session, config, items):
    def rank(item):
        name = item.module.__name__.rsplit('.', 1)[-1]
        return ORDER.index(name) if name in ORDER else len(ORDER)
    items.sort(key=rank)  # stable: each file keeps its own order


class Cleanup:
    """Finalizers run last-in first-out; all run, and any that failed fail the teardown."""

    def __init__(self):
        self._steps = []

    def add(self, fn, *args, **kwargs):
        self._steps.append((fn, args, kwargs))

    def run(self):
        errors = []
        while self._steps:
            fn, args, kwargs = self._steps.pop()
            try:
                fn(*args, **kwargs)
            except Exception as e:  # pylint: disable=broad-exception-caught  # reported below, after the rest ran
                errors.append('%s: %s' % (getattr(fn, '__qualname__', fn), e))
        if errors:
            raise LabError('cleanup failed:\n' + '\n'.join(errors))


@pytest.fixture(scope='session')
def lab():
    """The lab of DEBVIRT_LAB_PREFIX/NET/STATE, its test lock held, up, the collection copied."""
    the_lab = Lab.from_env()
    the_lab.lock()
    try:
        run([str(ROOT / 'tests/sync-collection.sh')])
        # A lab someone brought up keeps its size; a missing one gets DEBVIRT_LAB_NODES nodes.
        the_lab.up(None if the_lab.exists() else int(os.environ.get('DEBVIRT_LAB_NODES', '3')))
        say('lab: %s' % ' '.join(map(str, the_lab.nodes)))
        yield the_lab
    finally:
        the_lab.release()


@pytest.fixture(scope='session')
def images():
    """The test guest's directory on this machine (built once); node.push_images() copies it."""
    return ensure_images()


@pytest.fixture(scope='module')
def work(tmp_path_factory, request):
    """A scratch directory of the test file."""
    return tmp_path_factory.mktemp(request.module.__name__.rsplit('.', 1)[-1])


@pytest.fixture
def cleanup():
    steps = Cleanup()
    yield steps
    steps.run()


@pytest.fixture(scope='module')
def module_cleanup():
    steps = Cleanup()
    yield steps
    steps.run()


@pytest.fixture(scope='module')
def side_lab(module_cleanup):
    """side_lab(Lab, count): another lab locked and brought up; taken down after the file."""
    def make(other, count):
        other.lock()
        module_cleanup.add(other.release)
        module_cleanup.add(other.down)
        other.up(count)
        return other
    return make
