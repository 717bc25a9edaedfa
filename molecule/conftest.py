"""Shared by every scenario's testinfra tests."""

import pytest
import testinfra


@pytest.fixture
def host(_testinfra_host):
    """The host under test, reached with `podman exec` instead of one Ansible run per command.

    Molecule hands testinfra its Ansible inventory; testinfra has no native mapping for the
    containers.podman connection and would run every command through Ansible (about a second each).
    """
    name = getattr(_testinfra_host.backend, "host", None)
    if not name:
        return _testinfra_host
    return testinfra.get_host("podman://" + name)
