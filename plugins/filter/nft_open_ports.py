# -*- coding: utf-8 -*-
# Copyright (c) aic.gateway contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
name: nft_open_ports
short_description: What a host's aic.gateway firewall opens, read back from C(nft list chain)
version_added: 0.1.0
author: aic.gateway maintainers
description:
  - "The reverse of C(aic.gateway.nft_allow_rules) for reports: takes the text of
    C(nft list chain inet aic_gateway allowed) and returns one entry per rule comment, with the ports of
    every rule carrying that comment, for example C(kuma_dp: kuma-dp inbound :20001,20002)."
  - Several rules for one port (IPv4 and IPv6 sources, several source sets) give the port once.
    Entries are sorted by comment. Rules without a port or comment are left out.
options:
  _input:
    description: The output of C(nft list chain inet aic_gateway allowed); empty when the chain is missing.
    type: str
    required: true
"""

EXAMPLES = r"""
- name: Print what the firewall opens
  ansible.builtin.debug:
    msg: "{{ chain.stdout | aic.gateway.nft_open_ports | join(', ') }}"
"""

RETURN = r"""
_value:
  description: "One string per rule comment, for example C(['kong: kong proxy :8000', 'node_exporter: metrics :9100'])."
  type: list
  elements: str
"""

import re

RULE = re.compile(r'dport (\{[^}]*\}|\d+(?:-\d+)?) .*comment "([^"]+)"')


def nft_open_ports(chain):
    """['<comment> :<port>,<port>', ...] from `nft list chain` text, one entry per comment."""
    by_comment = {}
    for port, comment in RULE.findall(chain or ""):
        port = port.strip("{} ").replace(" ", "")
        ports = by_comment.setdefault(comment, [])
        if port not in ports:
            ports.append(port)
    return ["%s :%s" % (comment, ",".join(ports)) for comment, ports in sorted(by_comment.items())]


class FilterModule(object):
    def filters(self):
        return {"nft_open_ports": nft_open_ports}
