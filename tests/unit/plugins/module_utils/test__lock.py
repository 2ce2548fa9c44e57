# -*- coding: utf-8 -*-
# Copyright: debvirt.cluster developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The per-guest lock: held in a scratch directory, raced from threads (flock excludes two open
files of one process as it does two processes)."""

from __future__ import annotations

import os
import threading

import pytest

from ansible_collections.debvirt.cluster.plugins.module_utils import _lock, _placement
from ansible_collections.debvirt.cluster.plugins.module_utils._client import LibvirtClient
from ansible_collections.debvirt.cluster.plugins.module_utils._errors import DebvirtError, WaitTimeout
from ansible_collections.debvirt.cluster.plugins.module_utils._guest import GUEST


@pytest.fixture
def locks(tmp_path, monkeypatch):
    directory = str(tmp_path / "locks")
    monkeypatch.setattr(_lock, "lock_dir", lambda: directory)
    return directory


def test_a_second_holder_waits_and_says_for_what(locks):
    with _lock.held("guest", "web01"):
        with pytest.raises(WaitTimeout) as e:
            with _lock.held("guest", "web01", timeout=0.3):
                pytest.fail("two holders at once")
        assert e.value.msg == ("Timed out after 0.3s waiting for another run converging guest web01 on this host to "
                               "finish (it holds %s/guest-web01.lock)" % locks)
        # Another guest, or a container of the same name, is not held up.
        with _lock.held("guest", "web02", timeout=0.3), _lock.held("container", "web01", timeout=0.3):
            pass
    with _lock.held("guest", "web01", timeout=0.3):
        pass
    assert os.stat(locks).st_mode & 0o777 == 0o700
    assert os.stat(os.path.join(locks, "guest-web01.lock")).st_mode & 0o777 == 0o600


def test_a_directory_others_can_enter_is_refused(tmp_path):
    shared = tmp_path / "shared"
    shared.mkdir(mode=0o755)
    os.chmod(shared, 0o755)
    with pytest.raises(DebvirtError) as e:
        with _lock.held("guest", "web01", directory=str(shared)):
            pytest.fail("locked in a directory others can write")
    assert "is not a directory that only user" in e.value.msg


def test_the_lock_is_released_when_the_block_fails(locks):
    with pytest.raises(RuntimeError):
        with _lock.held("guest", "web01"):
            raise RuntimeError("apply failed")
    with _lock.held("guest", "web01", timeout=0.3):
        pass


class Module:
    """What converge_module reads of an AnsibleModule."""

    def __init__(self, client, params):
        self.client, self.params, self.check_mode = client, dict(params, node=None), False

    def run_command(self, *args, **kwargs):
        raise AssertionError("no command runs off a cluster")

    def client_for(self, uri):
        return LibvirtClient(uri)


def test_a_converge_waits_for_the_one_in_progress_and_then_changes_nothing(locks, driver_uri, monkeypatch):
    monkeypatch.setattr(_placement, "members_of", lambda shell, uri: None)
    client = LibvirtClient(driver_uri)
    params = {"name": "web01", "memory": 256,
              "disks": [{"pool": "default-pool", "volume": "web01.qcow2", "size": "1M"}]}
    results = []
    second = threading.Thread(target=lambda: results.append(_placement.converge_module(GUEST, Module(client, params))))
    try:
        with _lock.held("guest", "web01"):
            second.start()
            second.join(0.5)
            # Blocked on the lock before it read anything: it defines nothing meanwhile.
            assert second.is_alive() and client.domain("web01") is None
            # The first run, holding the lock: what converge_module does inside it.
            first = _placement.converge_placed(GUEST, client, GUEST.request_from_params(dict(params)), None, False,
                                               None, LibvirtClient)
        second.join(10)
        assert first["changed"] and [c["action"] for c in first["changes"]] == ["create", "define"]
        assert [(r["changed"], r["changes"]) for r in results] == [(False, [])]
        assert sorted(client.pool("default-pool").listVolumes()) == ["web01.qcow2"]
    finally:
        client.close()
