# -*- coding: utf-8 -*-
# Copyright: debvirt.cluster developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The AnsibleModule wrapper every module of the collection runs through."""

from __future__ import annotations

from ansible.module_utils.basic import AnsibleModule, missing_required_lib
from ansible.module_utils.common.parameters import remove_values

from ansible_collections.debvirt.cluster.plugins.module_utils._client import (
    LIBVIRT_IMPORT_ERROR,
    LibvirtClient,
)
from ansible_collections.debvirt.cluster.plugins.module_utils._errors import DebvirtError
from ansible_collections.debvirt.cluster.plugins.module_utils._xml import LXML_IMPORT_ERROR

# Matches doc_fragments/libvirt.py.
LIBVIRT_ARGS = dict(
    uri=dict(type="str", default="qemu:///system"),
    connect_timeout=dict(type="int", default=30),
)


class LibvirtModule(AnsibleModule):
    def __init__(self, argument_spec, secrets=None, **kwargs):
        """secrets(params) -> the secret values the spec cannot see (inside a list of dicts
        without suboptions); they are hidden from the log and the result like no_log options."""
        # AnsibleModule logs the invocation from its own __init__: the hook must be in place first.
        self._secrets = secrets
        spec = dict(LIBVIRT_ARGS)
        spec.update(argument_spec)
        super().__init__(argument_spec=spec, **kwargs)
        self.requires()
        self._client = None
        # 0 would give up every connection at once, and libvirt takes no negative keepalive.
        if self.params["connect_timeout"] < 1:
            self.fail_json(msg="connect_timeout must be at least 1 second, got %d; nothing was changed"
                           % self.params["connect_timeout"])

    def log(self, msg, log_args=None):
        # The invocation is logged before main() runs, masked with only the secrets AnsibleModule
        # knew when it built the message and the arguments: mask both again with the hook's.
        if self._secrets is not None:
            self.no_log_values.update(self._secrets(self.params))
            msg = remove_values(msg, self.no_log_values)
            log_args = {k: remove_values(v, self.no_log_values) for k, v in (log_args or {}).items()}
        super().log(msg, log_args=log_args)

    def requires(self):
        if LIBVIRT_IMPORT_ERROR:
            self.fail_json(msg=missing_required_lib("libvirt-python (Debian: python3-libvirt)"),
                           exception=LIBVIRT_IMPORT_ERROR)
        if LXML_IMPORT_ERROR:
            self.fail_json(msg=missing_required_lib("lxml (Debian: python3-lxml)"),
                           exception=LXML_IMPORT_ERROR)

    @property
    def client(self):
        if self._client is None:
            self._client = self.client_for(self.params["uri"])
        return self._client

    def client_for(self, uri):
        """A client of another URI (another member, another driver) with this task's timeout."""
        return LibvirtClient(uri, self.params["connect_timeout"])

    def run(self, func):
        """exit_json with func()'s result, or fail_json with the message of a DebvirtError."""
        try:
            result = func()
        except DebvirtError as e:
            self.fail_json(msg=e.msg, **e.details)
        finally:
            if self._client is not None:
                self._client.close()
        for warning in result.pop("warnings", []):
            self.warn(warning)
        self.exit_json(**result)


# These match doc_fragments/info.py NAMES and TAGS.
INFO_NAMES = dict(
    name=dict(type="list", elements="str"),
)
INFO_TAGS = dict(
    tags=dict(type="list", elements="str"),
)


def run_info(argument_spec, read):
    """Run an info module: it supports check mode, changes nothing, and returns read(module)."""
    module = LibvirtModule(argument_spec, supports_check_mode=True)
    module.run(lambda: dict(read(module), changed=False))
