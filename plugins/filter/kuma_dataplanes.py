# -*- coding: utf-8 -*-
# Copyright (c) aic.gateway contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
name: kuma_dataplanes
short_description: Check and complete the Kuma Dataplanes declared for one host
version_added: 0.1.0
author: aic.gateway maintainers
description:
  - Takes the Dataplanes a host declares (Kuma's own resource fields under C(networking)) and returns them
    complete, so the file C(kuma-dp) reads is final (no Mustache variables left for C(kuma-dp) to fill).
  - Fills the mesh, the address, the Envoy admin port and the readiness port (distinct per instance on the
    host, kuma.md §7.7), and C(transparentProxying) when the host uses the transparent proxy.
  - Refuses, naming the Dataplane and the rule, what Kuma's validator would refuse (kuma.md §3 "Validation
    rules") and what would clash on the host (duplicate names or ports).
options:
  _input:
    description:
      - List of Dataplanes, each with C(name), optional C(mesh), C(labels), C(networking) (C(address),
        C(advertisedAddress), C(inbound), C(outbound), C(gateway), C(admin) as in Kuma's Dataplane resource),
        C(readiness_port), C(admin_port) and C(env) (extra C(KUMA_*) variables for that C(kuma-dp)).
    type: list
    elements: dict
    required: true
  address:
    description: Address for Dataplanes that do not set C(networking.address).
    type: str
    required: true
  mesh:
    description: Mesh for Dataplanes that do not set one.
    type: str
    default: default
  readiness_port_base:
    description: Readiness port of the first Dataplane; the next ones count up in steps of 2.
    type: int
    default: 9902
  admin_port_base:
    description: Envoy admin port of the first Dataplane; the next ones count up in steps of 2.
    type: int
    default: 9901
  transparent_proxy:
    description: Whether the host runs the transparent proxy (Dataplanes then get C(transparentProxying)).
    type: bool
    default: false
"""

EXAMPLES = r"""
- name: Complete the Dataplanes of a service host
  ansible.builtin.debug:
    msg: "{{ dataplanes | aic.gateway.kuma_dataplanes(address='10.0.0.5') }}"
  vars:
    dataplanes:
      - name: core-api-1
        networking:
          inbound:
            - {port: 20001, servicePort: 8080, tags: {kuma.io/service: core-api, kuma.io/protocol: http}}
"""

RETURN = r"""
_value:
  description:
    - One dict per Dataplane with C(name), C(mesh), C(readiness_port), C(admin_port), C(services) (the
      C(kuma.io/service) values its token is bound to), C(gateway) (bool), C(inbound_ports), C(env) and
      C(resource) (the complete Dataplane).
  type: list
  elements: dict
"""

import copy
import re

from ansible.errors import AnsibleFilterError
from ansible.module_utils.six import string_types

_NAME = re.compile(r"^[a-z0-9]([a-z0-9.-]{0,251}[a-z0-9])?$")
_ENTRY_KEYS = frozenset(("name", "mesh", "labels", "networking", "readiness_port", "admin_port", "env"))
_SERVICE = "kuma.io/service"


def _fail(name, message):
    raise AnsibleFilterError("kuma_dp_dataplanes: Dataplane %r: %s" % (name, message))


def _services_of(name, networking):
    gateway = networking.get("gateway")
    if gateway:
        tags = gateway.get("tags") or {}
        if not tags.get(_SERVICE):
            _fail(name, "networking.gateway.tags needs %s (kuma.md §6)" % _SERVICE)
        return [tags[_SERVICE]]
    services = []
    for index, inbound in enumerate(networking.get("inbound") or []):
        tags = inbound.get("tags") or {}
        if not tags.get(_SERVICE):
            _fail(name, "networking.inbound[%d].tags needs %s" % (index, _SERVICE))
        if tags[_SERVICE] not in services:
            services.append(tags[_SERVICE])
    return services


def _check_networking(name, networking, transparent_proxy):
    address = networking.get("address")
    if address in ("0.0.0.0", "::"):
        _fail(name, "networking.address may not be %s (kuma.md §3)" % address)
    gateway = networking.get("gateway")
    inbound = networking.get("inbound") or []
    outbound = networking.get("outbound") or []
    if gateway is not None:
        if not isinstance(gateway, dict):
            _fail(name, "networking.gateway must be a mapping")
        if gateway.get("type", "DELEGATED") != "DELEGATED":
            _fail(name, "only DELEGATED gateways are supported here (a BUILTIN gateway is configured with MeshGateway)")
        if inbound:
            _fail(name, "a delegated gateway may not have inbounds (kuma.md §6: traffic goes to the gateway directly)")
        if (gateway.get("tags") or {}).get("kuma.io/protocol", "tcp") != "tcp":
            _fail(name, "a gateway's kuma.io/protocol may only be tcp (kuma.md §3)")
    elif not inbound:
        _fail(name, "needs networking.inbound (a service behind it) or networking.gateway")
    for index, item in enumerate(inbound):
        if not isinstance(item.get("port"), int):
            _fail(name, "networking.inbound[%d].port must be a number" % index)
    for index, item in enumerate(outbound):
        if not isinstance(item.get("port"), int):
            _fail(name, "networking.outbound[%d].port must be a number" % index)
        if item.get("backendRef") and item.get("tags"):
            _fail(name, "networking.outbound[%d] has both backendRef and tags (kuma.md §3)" % index)
        if not item.get("backendRef") and not (item.get("tags") or {}).get(_SERVICE):
            _fail(name, "networking.outbound[%d] needs tags with %s or a backendRef" % (index, _SERVICE))
    if transparent_proxy and outbound:
        _fail(name, "with the transparent proxy, outbounds come from the mesh; remove networking.outbound")


def _check_templates(name, value):
    if isinstance(value, dict):
        for item in value.values():
            _check_templates(name, item)
    elif isinstance(value, list):
        for item in value:
            _check_templates(name, item)
    elif isinstance(value, string_types) and "{{" in value:
        _fail(name, "%r looks like a template variable; the Dataplane file must be final (kuma.md §7.17)" % value)


def kuma_dataplanes(entries, address, mesh="default", readiness_port_base=9902, admin_port_base=9901,
                    transparent_proxy=False):
    """The declared Dataplanes of a host, checked and completed."""
    if not isinstance(entries, list):
        raise AnsibleFilterError("kuma_dp_dataplanes must be a list, got %s" % type(entries).__name__)
    result = []
    names = set()
    ports = {}
    for index, entry in enumerate(entries):
        if not isinstance(entry, dict) or not entry.get("name"):
            raise AnsibleFilterError("kuma_dp_dataplanes[%d]: each Dataplane needs a name" % index)
        name = entry["name"]
        unknown = sorted(set(entry) - _ENTRY_KEYS)
        if unknown:
            _fail(name, "unknown keys %s (allowed: %s)" % (", ".join(unknown), ", ".join(sorted(_ENTRY_KEYS))))
        if not isinstance(name, string_types) or not _NAME.match(name):
            _fail(name, "the name must be an RFC 1123 subdomain (lower case letters, digits, '-' and '.')")
        if name in names:
            _fail(name, "declared twice on this host")
        names.add(name)
        networking = copy.deepcopy(entry.get("networking") or {})
        if not isinstance(networking, dict):
            _fail(name, "networking must be a mapping")
        _check_networking(name, networking, transparent_proxy)
        networking.setdefault("address", address)
        readiness = int(entry.get("readiness_port") or readiness_port_base + 2 * index)
        admin = int(entry.get("admin_port") or (networking.get("admin") or {}).get("port") or admin_port_base + 2 * index)
        networking["admin"] = {"port": admin}
        if transparent_proxy:
            networking.setdefault("transparentProxying", {"redirectPortInbound": 15006, "redirectPortOutbound": 15001})
        inbound_ports = [item["port"] for item in networking.get("inbound") or []]
        claimed = [(port, "inbound") for port in inbound_ports]
        claimed += [(item["port"], "outbound") for item in networking.get("outbound") or []]
        claimed += [(readiness, "readiness"), (admin, "Envoy admin")]
        for port, use in claimed:
            if port in ports:
                _fail(name, "port %d (%s) is already used by %s on this host" % (port, use, ports[port]))
            ports[port] = "%s (%s)" % (name, use)
        resource = {"type": "Dataplane", "mesh": entry.get("mesh") or mesh, "name": name}
        if entry.get("labels"):
            resource["labels"] = entry["labels"]
        resource["networking"] = networking
        _check_templates(name, resource)
        result.append({
            "name": name,
            "mesh": resource["mesh"],
            "readiness_port": readiness,
            "admin_port": admin,
            "services": _services_of(name, networking),
            "gateway": "gateway" in networking,
            "inbound_ports": inbound_ports,
            "env": dict(entry.get("env") or {}),
            "resource": resource,
        })
    return result


class FilterModule(object):
    def filters(self):
        return {"kuma_dataplanes": kuma_dataplanes}
