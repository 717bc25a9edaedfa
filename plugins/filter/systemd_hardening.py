# -*- coding: utf-8 -*-
# Copyright (c) aic.gateway contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
name: systemd_hardening
short_description: The sandboxing lines of a service unit, as far as the host can apply them
version_added: 0.1.0
author: aic.gateway maintainers
description:
  - Returns C([Service]) lines for a unit or drop-in, one per line; every role's hardened unit uses it.
  - Everywhere C(NoNewPrivileges), C(ProtectSystem=strict) (with O(read_write_paths)) and C(ProtectHome).
  - Outside containers also C(PrivateTmp), C(PrivateDevices), C(ProtectKernelTunables),
    C(ProtectKernelModules), C(ProtectControlGroups), C(RestrictNamespaces), C(RestrictAddressFamilies) and
    C(LockPersonality). They need mount namespaces or seccomp filters that an unprivileged container cannot
    set up (the unit then fails with 217/USER there).
options:
  _input:
    description: The host's C(ansible_facts), to tell containers apart (see M(aic.gateway.in_container) filter).
    type: dict
    required: true
  read_write_paths:
    description:
      - Paths the service writes; a leading C(-) makes a path optional (systemd's own syntax).
    type: list
    elements: str
    default: []
  address_families:
    description: Socket families the service may use.
    type: list
    elements: str
    default: [AF_UNIX, AF_INET, AF_INET6]
"""

EXAMPLES = r"""
- name: Write a drop-in with the hardening
  ansible.builtin.copy:
    content: |
      [Service]
      {{ ansible_facts | aic.gateway.systemd_hardening(read_write_paths=['/var/lib/app']) }}
    dest: /etc/systemd/system/app.service.d/hardening.conf
    mode: "0644"
"""

RETURN = r"""
_value:
  description: The lines, joined with newlines.
  type: str
"""

from ansible.errors import AnsibleFilterError

from ansible_collections.aic.gateway.plugins.filter.in_container import in_container


def systemd_hardening(facts, read_write_paths=None, address_families=None):
    families = ["AF_UNIX", "AF_INET", "AF_INET6"] if address_families is None else list(address_families)
    paths = list(read_write_paths or [])
    for path in paths:
        if not str(path).lstrip("-").startswith("/"):
            raise AnsibleFilterError("systemd_hardening: read_write_paths must be absolute, got %r" % path)
    lines = ["NoNewPrivileges=yes", "ProtectSystem=strict", "ProtectHome=yes"]
    if paths:
        lines.append("ReadWritePaths=" + " ".join(paths))
    if not in_container(facts):
        lines += ["PrivateTmp=yes", "PrivateDevices=yes", "ProtectKernelTunables=yes", "ProtectKernelModules=yes",
                  "ProtectControlGroups=yes", "RestrictNamespaces=yes",
                  "RestrictAddressFamilies=" + " ".join(families), "LockPersonality=yes"]
    return "\n".join(lines)


class FilterModule(object):
    def filters(self):
        return {"systemd_hardening": systemd_hardening}
