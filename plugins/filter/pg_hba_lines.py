# -*- coding: utf-8 -*-
# Copyright (c) aic.gateway contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
name: pg_hba_lines
short_description: Turn structured client authentication rules into pg_hba.conf lines
version_added: 0.1.0
author: aic.gateway maintainers
description:
  - Checks every entry first and fails naming the entry and the problem, so a typo never reaches a
    live C(pg_hba.conf).
  - Network entries use C(scram-sha-256) only. With O(tls) true, C(host) entries become C(hostssl), so
    no password travels in clear text.
options:
  _input:
    description:
      - List of entries, each a dict with C(type) (C(local), C(host), C(hostssl)), C(databases) and
        C(users) (lists or single names, C(all) allowed), C(sources) (list of addresses or networks, for
        network types) and C(method) (C(scram-sha-256); C(peer) for C(local)), and an optional C(comment).
    type: list
    elements: dict
    required: true
  tls:
    description: Whether the server has TLS on; network entries then require it.
    type: bool
    default: false
"""

EXAMPLES = r"""
- name: Render the rules
  ansible.builtin.debug:
    msg: "{{ rules | aic.gateway.pg_hba_lines(tls=true) }}"
  vars:
    rules:
      - {type: host, databases: [kong], users: [kong], sources: [10.0.20.0/24], comment: kong nodes}
# ['# kong nodes', 'hostssl  kong  kong  10.0.20.0/24  scram-sha-256']
"""

RETURN = r"""
_value:
  description: C(pg_hba.conf) lines, comments included, in the order of the input.
  type: list
  elements: str
"""

import ipaddress
import re

from ansible.errors import AnsibleFilterError
from ansible.module_utils.common.text.converters import to_text

_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_$.-]{0,62}$")
_KEYS = frozenset(("type", "databases", "users", "sources", "method", "comment"))
_METHODS = {"local": ("peer", "scram-sha-256"), "host": ("scram-sha-256",), "hostssl": ("scram-sha-256",)}


def _fail(index, message):
    raise AnsibleFilterError("pg_hba entry %d: %s" % (index + 1, message))


def _names(index, entry, key):
    value = entry.get(key)
    if value is None or value == [] or value == "":
        _fail(index, "%s is empty (use 'all' to mean every %s)" % (key, key[:-1]))
    if isinstance(value, (str, bytes)):
        value = [value]
    names = []
    for name in value:
        name = to_text(name).strip()
        if name != "all" and not _NAME.match(name) and not (name.startswith("+") and _NAME.match(name[1:])):
            _fail(index, "%s name %r is not a valid PostgreSQL name" % (key[:-1], name))
        names.append(name)
    return ",".join(names)


def pg_hba_lines(entries, tls=False):
    """Validate structured pg_hba entries and render them."""
    if entries is None:
        return []
    if not isinstance(entries, (list, tuple)):
        raise AnsibleFilterError("pg_hba entries must be a list, got %s" % type(entries).__name__)
    lines = []
    for index, entry in enumerate(entries):
        if not isinstance(entry, dict):
            _fail(index, "must be a dict with type, databases, users, sources and method, got %r" % (entry,))
        unknown = sorted(set(entry) - _KEYS)
        if unknown:
            _fail(index, "unknown key(s) %s (known: %s)" % (", ".join(unknown), ", ".join(sorted(_KEYS))))
        kind = to_text(entry.get("type") or "host")
        if kind not in _METHODS:
            _fail(index, "type %r is not one of local, host, hostssl" % (kind,))
        if kind == "host" and tls:
            kind = "hostssl"
        method = to_text(entry.get("method") or ("peer" if kind == "local" else "scram-sha-256"))
        if method not in _METHODS[kind]:
            _fail(index, "method %r is not allowed for %s (allowed: %s)" % (method, kind, ", ".join(_METHODS[kind])))
        databases = _names(index, entry, "databases")
        users = _names(index, entry, "users")
        comment = entry.get("comment")
        if comment:
            lines.append("# %s" % to_text(comment).replace("\n", " "))
        if kind == "local":
            if entry.get("sources"):
                _fail(index, "a local entry takes no sources")
            lines.append("%s  %s  %s  %s" % (kind, databases, users, method))
            continue
        sources = entry.get("sources")
        if isinstance(sources, (str, bytes)):
            sources = [sources]
        if not sources:
            _fail(index, "a %s entry needs sources (addresses or networks)" % kind)
        for source in sources:
            try:
                network = ipaddress.ip_network(to_text(source).strip(), strict=False)
            except ValueError:
                _fail(index, "source %r is not an IP address or network" % (source,))
            lines.append("%s  %s  %s  %s  %s" % (kind, databases, users, network, method))
    return lines


class FilterModule(object):
    """aic.gateway PostgreSQL filters."""

    def filters(self):
        return {"pg_hba_lines": pg_hba_lines}
