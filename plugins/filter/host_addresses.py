# -*- coding: utf-8 -*-
# Copyright (c) aic.gateway contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
name: host_addresses
short_description: The network addresses of inventory hosts, for firewall sources
version_added: 0.8.0
author: aic.gateway maintainers
description:
  - Takes C(hostvars) and a list of inventory host names and returns one address per host, as a single-host network
    (C(10.0.20.11/32), C(fd00::11/128)), ready for the C(*_firewall_sources) variables.
  - A host's C(ansible_host) wins when it is an IP address; otherwise the default IPv4 address from
    its gathered facts is used. A host with neither fails with a message naming it, so a firewall is
    never rendered open to an unknown source.
  - Lets an inventory say "PostgreSQL accepts the Kong nodes" as C(groups['kong']) instead of
    repeating their addresses.
  - Like the other filters that read several hosts (C(service_gateway), C(service_postgresql), ...), it takes
    C(hostvars) as its input and the host names as its argument.
options:
  _input:
    description: The C(hostvars) magic variable.
    type: dict
    required: true
  hosts:
    description: Inventory host names (a single name is accepted too).
    type: list
    elements: str
    required: true
"""

EXAMPLES = r"""
- name: Open PostgreSQL to the Kong nodes and the Kuma control plane only
  ansible.builtin.set_fact:
    postgresql_firewall_sources: "{{ hostvars | aic.gateway.host_addresses(groups['kong'] + groups['kuma_cp']) }}"
# ['10.0.20.11/32', '10.0.20.12/32', '10.0.30.11/32']
"""

RETURN = r"""
_value:
  description: One single-host network per host, in the input order, duplicates removed.
  type: list
  elements: str
"""

import ipaddress

from ansible.errors import AnsibleFilterError


def _address(name, hostvars):
    hvars = hostvars.get(name)
    if hvars is None:
        raise AnsibleFilterError("host_addresses: %r is not an inventory host" % (name,))
    candidates = [hvars.get("ansible_host")]
    facts = hvars.get("ansible_facts") or {}
    candidates.append((facts.get("default_ipv4") or {}).get("address"))
    candidates.append((hvars.get("ansible_default_ipv4") or {}).get("address"))
    for candidate in candidates:
        if not candidate:
            continue
        try:
            address = ipaddress.ip_address(str(candidate))
        except ValueError:
            continue
        return "%s/%d" % (address, address.max_prefixlen)
    raise AnsibleFilterError(
        "host_addresses: no address for %r: give it an IP address as ansible_host, or gather its facts "
        "before this value is used" % (name,))


def host_addresses(hostvars, hosts):
    if isinstance(hosts, str):
        hosts = [hosts]
    result = []
    for name in hosts or []:
        network = _address(name, hostvars)
        if network not in result:
            result.append(network)
    return result


class FilterModule(object):
    def filters(self):
        return {"host_addresses": host_addresses}
