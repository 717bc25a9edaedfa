# -*- coding: utf-8 -*-
# Copyright (c) aic.gateway contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
name: in_container
short_description: Whether the facts describe a host that is a container
version_added: 0.1.0
author: aic.gateway maintainers
description:
  - True when the host is a virtualization guest of a container type (podman, docker, lxc,
    systemd-nspawn, containerd, openvz or a generic container). Roles use it to skip what a container
    cannot do (set the clock, write C(/proc/sys), set up mount namespaces for systemd sandboxing).
options:
  _input:
    description: The host's C(ansible_facts).
    type: dict
    required: true
"""

EXAMPLES = r"""
- name: Start chrony outside containers only
  ansible.builtin.systemd_service:
    name: chrony
    state: started
  when: not (ansible_facts | aic.gateway.in_container)
"""

RETURN = r"""
_value:
  description: Whether the host is a container.
  type: bool
"""

CONTAINER_TYPES = frozenset(("container", "podman", "docker", "lxc", "systemd-nspawn", "containerd", "openvz"))


def in_container(facts):
    facts = facts or {}
    return facts.get("virtualization_role") == "guest" and facts.get("virtualization_type") in CONTAINER_TYPES


class FilterModule(object):
    def filters(self):
        return {"in_container": in_container}
