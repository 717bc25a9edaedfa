# -*- coding: utf-8 -*-
# Copyright (c) aic.gateway contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
name: nft_allow_rules
short_description: Turn declared open ports into nftables rules
version_added: 0.1.0
author: aic.gateway maintainers
description:
  - Takes the ports a role opens, as data, and returns one nftables rule per port and address family.
  - Every entry is checked first; a bad port, protocol or source fails with a message naming the owner
    and the entry, before any file changes.
  - Sources given as IPv4 and IPv6 networks become separate C(ip saddr) and C(ip6 saddr) rules.
    No sources means the port is open to every address.
options:
  _input:
    description:
      - List of rules. Each rule is a dict with C(port) (a number, or a range C(8000-8010)),
        C(proto) (C(tcp) or C(udp), default C(tcp)), C(sources) (list of addresses or networks,
        default any) and C(comment).
    type: list
    elements: dict
    required: true
  owner:
    description: Who opens the ports (a role name); used in comments and error messages.
    type: str
    required: true
"""

EXAMPLES = r"""
- name: Render Kong's rules
  ansible.builtin.debug:
    msg: "{{ rules | aic.gateway.nft_allow_rules('kong') }}"
  vars:
    rules:
      - {port: 8000, comment: proxy}
      - {port: 8001, sources: [10.0.0.0/8, "fd00::/8"], comment: admin api}
# ['tcp dport 8000 accept comment "kong: proxy"',
#  'ip saddr { 10.0.0.0/8 } tcp dport 8001 accept comment "kong: admin api"',
#  'ip6 saddr { fd00::/8 } tcp dport 8001 accept comment "kong: admin api"']
"""

RETURN = r"""
_value:
  description: nftables rule statements, in the order of the input.
  type: list
  elements: str
"""

import ipaddress
import re

from ansible.errors import AnsibleFilterError
from ansible.module_utils.common.text.converters import to_text

_OWNER = re.compile(r"^[A-Za-z0-9_.-]+$")
_COMMENT = re.compile(r'^[^"\\\n]*$')
_KNOWN_KEYS = frozenset(("port", "proto", "sources", "comment"))


def _fail(owner, index, message):
    raise AnsibleFilterError("firewall rule %d of '%s': %s" % (index + 1, owner, message))


def _port(owner, index, value):
    text = to_text(value).strip()
    bounds = text.split("-", 1)
    try:
        numbers = [int(b) for b in bounds]
    except ValueError:
        _fail(owner, index, "port %r is not a number or a range like 8000-8010" % (value,))
    if any(n < 1 or n > 65535 for n in numbers):
        _fail(owner, index, "port %r is outside 1-65535" % (value,))
    if len(numbers) == 2 and numbers[0] > numbers[1]:
        _fail(owner, index, "port range %r runs backwards" % (value,))
    return "-".join(str(n) for n in numbers)


def _sources(owner, index, value):
    if value is None:
        return [], []
    if isinstance(value, (str, bytes)):
        value = [value]
    if not isinstance(value, (list, tuple)):
        _fail(owner, index, "sources must be a list of addresses or networks, got %r" % (value,))
    v4, v6 = [], []
    for source in value:
        try:
            network = ipaddress.ip_network(to_text(source).strip(), strict=False)
        except ValueError:
            _fail(owner, index, "source %r is not an IP address or network" % (source,))
        (v4 if network.version == 4 else v6).append(str(network))
    return v4, v6


def nft_allow_rules(rules, owner):
    """Validate declared open ports and return nftables accept rules."""
    owner = to_text(owner)
    if not _OWNER.match(owner):
        raise AnsibleFilterError("firewall owner %r may only contain letters, digits, '_', '.' and '-'" % (owner,))
    if rules is None:
        return []
    if not isinstance(rules, (list, tuple)):
        raise AnsibleFilterError("firewall rules of '%s' must be a list, got %s" % (owner, type(rules).__name__))
    result = []
    for index, rule in enumerate(rules):
        if not isinstance(rule, dict):
            _fail(owner, index, "must be a dict with port, proto, sources and comment, got %r" % (rule,))
        unknown = sorted(set(rule) - _KNOWN_KEYS)
        if unknown:
            _fail(owner, index, "unknown key(s) %s (known: %s)" % (", ".join(unknown), ", ".join(sorted(_KNOWN_KEYS))))
        if "port" not in rule:
            _fail(owner, index, "has no port")
        port = _port(owner, index, rule["port"])
        proto = to_text(rule.get("proto") or "tcp").lower()
        if proto not in ("tcp", "udp"):
            _fail(owner, index, "proto %r is not tcp or udp" % (proto,))
        comment = to_text(rule.get("comment") or "port %s/%s" % (port, proto))
        if not _COMMENT.match(comment):
            _fail(owner, index, "comment %r may not contain quotes, backslashes or newlines" % (comment,))
        match = "%s dport %s accept comment \"%s: %s\"" % (proto, port, owner, comment)
        v4, v6 = _sources(owner, index, rule.get("sources"))
        if not v4 and not v6:
            result.append(match)
        if v4:
            result.append("ip saddr { %s } %s" % (", ".join(v4), match))
        if v6:
            result.append("ip6 saddr { %s } %s" % (", ".join(v6), match))
    return result


class FilterModule(object):
    """aic.gateway firewall filters."""

    def filters(self):
        return {"nft_allow_rules": nft_allow_rules}
