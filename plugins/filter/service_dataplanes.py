# -*- coding: utf-8 -*-
# Copyright (c) aic.gateway contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
name: service_dataplanes
short_description: The Kuma Dataplanes of a host's backend services, as kuma_dp_dataplanes entries
version_added: 0.1.0
author: aic.gateway maintainers
description:
  - Turns a host's C(service_definitions) (checked by the C(service_definitions) filter) into entries of
    C(kuma_dp_dataplanes) for the role aic.gateway.kuma_dp, which runs one C(kuma-dp) per entry.
  - One Dataplane per service with a C(mesh) key, named C(<service>-<host>); one inbound per instance I,
    listening on C(mesh.inbound_port + I) and forwarding to the instance at C(127.0.0.1:port + I) (the
    instance's own address when it listens elsewhere), tagged C(kuma.io/service) (C(mesh.service), default
    the name) and C(kuma.io/protocol) (C(mesh.protocol), default C(http)).
  - One outbound per C(mesh.outbound) entry, C(127.0.0.1:<port>) to that service; none with the transparent
    proxy (the mesh supplies them then).
  - Services without C(mesh) get no Dataplane.
options:
  _input:
    description: The host's service definitions.
    type: list
    elements: dict
    required: true
  host:
    description: The host's name (C(inventory_hostname)); part of every Dataplane's name.
    type: str
    required: true
  transparent_proxy:
    description: Whether the host runs Kuma's transparent proxy (no outbounds then).
    type: bool
    default: false
"""

EXAMPLES = r"""
- name: Show the Dataplanes the services of this host get
  ansible.builtin.debug:
    msg: "{{ service_definitions | aic.gateway.service_dataplanes(host=inventory_hostname) }}"
"""

RETURN = r"""
_value:
  description: C(kuma_dp_dataplanes) entries (C(name), C(labels), C(networking)).
  type: list
  elements: dict
"""

import re

from ansible.errors import AnsibleFilterError

from ansible_collections.aic.gateway.plugins.filter.service_definitions import service_definitions


def _dns_label(host):
    label = re.sub(r"[^a-z0-9.-]+", "-", str(host).lower()).strip("-.")
    if not label:
        raise AnsibleFilterError("service_dataplanes: host %r gives no usable Dataplane name" % (host,))
    return label


def service_dataplanes(definitions, host, transparent_proxy=False):
    """kuma_dp_dataplanes entries for the services of one host."""
    result = []
    for service in service_definitions(definitions):
        mesh = service["mesh"]
        if not mesh:
            continue
        target = "127.0.0.1" if service["address"] in ("0.0.0.0", "::", "localhost") else service["address"]
        tags = {"kuma.io/service": mesh["service"], "kuma.io/protocol": mesh["protocol"]}
        networking = {"inbound": [
            {"port": mesh["inbound_port"] + index, "servicePort": port, "serviceAddress": target, "tags": dict(tags)}
            for index, port in enumerate(service["ports"])]}
        if mesh["outbound"] and not transparent_proxy:
            networking["outbound"] = [{"port": item["port"], "tags": {"kuma.io/service": item["service"]}}
                                      for item in mesh["outbound"]]
        result.append({
            "name": "%s-%s" % (service["name"], _dns_label(host)),
            "labels": {"app": service["name"]},
            "networking": networking,
        })
    return result


class FilterModule(object):
    def filters(self):
        return {"service_dataplanes": service_dataplanes}
