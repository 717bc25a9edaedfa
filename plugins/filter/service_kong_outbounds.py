# -*- coding: utf-8 -*-
# Copyright (c) aic.gateway contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
name: service_kong_outbounds
short_description: The outbounds of Kong's delegated data plane, from the services' inventory data
version_added: 0.1.0
author: aic.gateway maintainers (@aic-gateway)
description:
  - For every service of C(service_definitions) on the given hosts that declares C(gateway.outbound_port),
    the outbound entry of Kong's delegated-gateway Dataplane (kuma.md section 6), C({port, tags}) with the
    service's C(kuma.io/service) tag (C(mesh.service), default the service's name), sorted by port.
  - Use it as the C(networking.outbound) of Kong's entry in C(kuma_dp_dataplanes), so the data plane beside
    Kong opens exactly the ports the Kong services of the filter C(aic.gateway.service_gateway) point at.
extends_documentation_fragment:
  - aic.gateway.service_hosts
"""

EXAMPLES = r"""
# group_vars/kong: Kong's delegated data plane with one outbound per service behind Kong
kuma_dp_dataplanes:
  - name: "kong-{{ inventory_hostname_short }}"
    networking:
      gateway: {type: DELEGATED, tags: {kuma.io/service: kong}}
      outbound: "{{ hostvars | aic.gateway.service_kong_outbounds(groups['services'] | default([])) }}"
"""

RETURN = r"""
_value:
  description: "Outbound entries, for example C([{port: 33033, tags: {kuma.io/service: core-api}}])."
  type: list
  elements: dict
"""

from ansible_collections.aic.gateway.plugins.filter.service_gateway import (
    _fail, _port, collect_gateways, service_mesh_name,
)


def service_kong_outbounds(hostvars, hosts):
    """Outbounds of Kong's delegated data plane, one per service that declares a gateway."""
    outbounds = {}
    for name, entry, gateway, where in collect_gateways(hostvars, hosts):
        port = _port(gateway.get("outbound_port"), where)
        if port in outbounds:
            _fail(where, "gateway.outbound_port %d is already the outbound of %s" % (port, outbounds[port][1]))
        outbounds[port] = ({"port": port, "tags": {"kuma.io/service": service_mesh_name(entry)}}, name)
    return [outbounds[port][0] for port in sorted(outbounds)]


class FilterModule(object):
    def filters(self):
        return {"service_kong_outbounds": service_kong_outbounds}
