"""Shared by every scenario's testinfra tests."""

import os
import subprocess
import sys

import pytest
import testinfra
import testinfra.backend
from testinfra.backend.podman import PodmanBackend

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "_shared", "connection_plugins"))
from podman import nsenter_popen, nsenter_target  # noqa: E402  pylint: disable=wrong-import-position


class NsenterBackend(PodmanBackend):
    """testinfra's podman backend, running each command with nsenter like the scenarios' connection plugin.

    `podman exec` costs about 150 ms of podman, conmon and runc per command; nsenter a few. Falls back to
    podman exec where nsenter cannot be used (not root, AIC_PODMAN_CONNECTION=exec, container not running).
    """

    def _inspect(self):
        return subprocess.run(["podman", "inspect", "--format", "{{.State.Pid}} {{.Id}}", self.name],
                              check=True, capture_output=True, text=True).stdout

    def run(self, command, *args, **kwargs):
        target = None if self.user else nsenter_target(self.name, self._inspect)
        if target is None:
            return super().run(command, *args, **kwargs)
        cmd = self.get_command(command, *args)
        proc = nsenter_popen(target, ["/bin/sh", "-c", cmd], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE)
        stdout, stderr = proc.communicate()
        return self.result(proc.returncode, self.encode(cmd), stdout, stderr)


# Every podman:// host, also those the tests open with testinfra.get_host("podman://<name>").
testinfra.backend.BACKENDS["podman"] = __name__ + ".NsenterBackend"


@pytest.fixture
def host(_testinfra_host):
    """The host under test, reached with nsenter (or `podman exec`) instead of one Ansible run per command.

    Molecule hands testinfra its Ansible inventory; testinfra has no native mapping for the
    containers.podman connection and would run every command through Ansible (about a second each).
    """
    name = getattr(_testinfra_host.backend, "host", None)
    if not name:
        return _testinfra_host
    return testinfra.get_host("podman://" + name)
