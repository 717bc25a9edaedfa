"""Hardening lines and container detection: what a service unit gets on a VM and in a container."""

from __future__ import annotations

import pytest

from ansible.errors import AnsibleFilterError

from ansible_collections.aic.gateway.plugins.filter.in_container import in_container
from ansible_collections.aic.gateway.plugins.filter.systemd_hardening import systemd_hardening

VM = {"virtualization_role": "guest", "virtualization_type": "kvm"}
PODMAN = {"virtualization_role": "guest", "virtualization_type": "podman"}


@pytest.mark.parametrize("facts,expected", [
    (PODMAN, True), ({"virtualization_role": "guest", "virtualization_type": "lxc"}, True),
    (VM, False), ({"virtualization_role": "host", "virtualization_type": "podman"}, False), ({}, False), (None, False),
])
def test_in_container(facts, expected):
    assert in_container(facts) is expected


def test_a_vm_gets_the_full_sandbox():
    lines = systemd_hardening(VM, read_write_paths=["/var/lib/x", "-/srv/y"]).splitlines()
    assert "ReadWritePaths=/var/lib/x -/srv/y" in lines
    assert "PrivateTmp=yes" in lines and "RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6" in lines
    assert lines[:3] == ["NoNewPrivileges=yes", "ProtectSystem=strict", "ProtectHome=yes"]


def test_a_container_gets_only_what_it_can_set_up():
    assert systemd_hardening(PODMAN).splitlines() == ["NoNewPrivileges=yes", "ProtectSystem=strict", "ProtectHome=yes"]


def test_relative_paths_are_refused():
    with pytest.raises(AnsibleFilterError, match="must be absolute"):
        systemd_hardening(VM, read_write_paths=["var/lib/x"])
