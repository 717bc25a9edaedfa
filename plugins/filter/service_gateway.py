# -*- coding: utf-8 -*-
# Copyright (c) aic.gateway contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
name: service_gateway
short_description: Kong services, routes and plugins from the services' inventory data
version_added: 0.1.0
author: aic.gateway maintainers (@aic-gateway)
description:
  - Reads the C(gateway) key of every entry of C(service_definitions) on the given hosts and returns the
    Kong entities in the format M(aic.gateway.kong_sync) reads (decK's, C(_format_version "3.0")).
  - One Kong service per declared service, named after the service, with the URL
    C(http://127.0.0.1:<gateway.outbound_port>), the outbound Kong's delegated Kuma data plane opens for it
    (kuma.md section 6), so Kong reaches the service through the mesh. Its C(routes) and C(plugins) are
    Kong's own fields; a route without a name is named after the service (C(<service>-<n>) from the
    second one).
  - A service declared on several hosts must declare the same C(gateway) on each. Two services may not
    share an outbound port or a route name.
  - The consumers, credentials and global plugins of the edge come from the variable C(kong_gateway), merged
    with this output by the filter C(aic.gateway.kong_gateway).
extends_documentation_fragment:
  - aic.gateway.service_hosts
"""

EXAMPLES = r"""
- name: Kong entities of every service that declares a gateway
  ansible.builtin.debug:
    msg: "{{ hostvars | aic.gateway.service_gateway(groups['services'] | default([])) }}"

# With, on the services hosts:
#   service_definitions:
#     - name: core-api
#       mesh: {service: core-api}
#       gateway:
#         outbound_port: 33033
#         routes: [{name: core-api, paths: [/core], strip_path: true}]
#         plugins: [{name: key-auth}, {name: acl, config: {allow: [core-users]}}]
# the result is
#   _format_version: "3.0"
#   services:
#     - name: core-api
#       url: http://127.0.0.1:33033
#       routes: [{name: core-api, paths: [/core], strip_path: true}]
#       plugins: [{name: key-auth}, {name: acl, config: {allow: [core-users]}}]
"""

RETURN = r"""
_value:
  description: A declarative configuration with one C(services) entry per service that declares a gateway.
  type: dict
"""

import copy
from collections.abc import Mapping, Sequence

from ansible.errors import AnsibleFilterError
from ansible.module_utils.six import string_types

GATEWAY_KEYS = frozenset(("outbound_port", "routes", "plugins", "service", "enabled"))
# Fields of the Kong service that the outbound decides (service.url is http://127.0.0.1:<port>).
SERVICE_FIXED = frozenset(("name", "url", "host", "port", "protocol", "routes", "plugins"))
ROUTE_MATCH = ("paths", "hosts", "methods", "headers", "snis")


def _fail(where, message):
    raise AnsibleFilterError("service_definitions: %s: %s" % (where, message))


def _plain(value):
    """A deep copy made of plain dicts and lists (hostvars hands out lazy containers)."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, Sequence) and not isinstance(value, string_types):
        return [_plain(v) for v in value]
    return copy.deepcopy(value)


def _port(value, where):
    if isinstance(value, bool) or not isinstance(value, (int, string_types)) or not str(value).isdigit():
        _fail(where, "gateway.outbound_port must be a port number, got %r" % (value,))
    port = int(value)
    if not 1 <= port <= 65535:
        _fail(where, "gateway.outbound_port %d is not a port (1-65535)" % port)
    return port


def _plugins(value, where):
    if value is None:
        return []
    if not isinstance(value, list):
        _fail(where, "plugins must be a list, got %r" % (value,))
    out = []
    for index, plugin in enumerate(value):
        if not isinstance(plugin, dict) or not isinstance(plugin.get("name"), string_types) or not plugin["name"]:
            _fail(where, "plugins[%d] needs a name (the Kong plugin, for example key-auth)" % index)
        if "service" in plugin or "route" in plugin:
            _fail(where, "plugins[%d] (%s) sits under its service or route already; remove its service/route key"
                  % (index, plugin["name"]))
        out.append(plugin)
    return out


def service_mesh_name(entry):
    """The kuma.io/service tag of a declared service (mesh.service, default its name)."""
    mesh = entry.get("mesh") if isinstance(entry.get("mesh"), Mapping) else {}
    return str(mesh.get("service") or entry["name"])


def collect_gateways(hostvars, hosts):
    """[(name, entry, gateway, where)] of the services that declare a gateway, one per service name."""
    if not isinstance(hosts, Sequence) or isinstance(hosts, string_types):
        raise AnsibleFilterError("service_gateway: the hosts must be a list of inventory host names")
    found = {}
    order = []
    for host in hosts:
        try:
            own = hostvars[host]
        except KeyError:
            raise AnsibleFilterError("service_gateway: %s is not an inventory host" % host)
        definitions = own.get("service_definitions") if isinstance(own, Mapping) else None
        if definitions is None:
            continue
        definitions = _plain(definitions)
        if not isinstance(definitions, list):
            raise AnsibleFilterError("service_definitions on %s must be a list" % host)
        for index, entry in enumerate(definitions):
            where = "%s[%d]" % (host, index)
            if not isinstance(entry, dict) or not isinstance(entry.get("name"), string_types) or not entry["name"]:
                _fail(where, "each service needs a name")
            gateway = entry.get("gateway")
            if gateway is None:
                continue
            where = "%s (%s)" % (entry["name"], host)
            if not isinstance(gateway, dict):
                _fail(where, "gateway must be a mapping")
            if gateway.get("enabled", True) is False:
                continue
            unknown = sorted(set(gateway) - GATEWAY_KEYS)
            if unknown:
                _fail(where, "unknown gateway keys %s (allowed: %s)" % (", ".join(unknown), ", ".join(sorted(GATEWAY_KEYS))))
            name = entry["name"]
            if name in found:
                if found[name][1] != gateway:
                    _fail(where, "declares another gateway than on %s; a service has one gateway" % found[name][2])
                continue
            found[name] = (entry, gateway, host)
            order.append(name)
    return [(name, found[name][0], found[name][1], "%s (%s)" % (name, found[name][2])) for name in order]


def service_gateway(hostvars, hosts):
    """Kong entities (kong_sync format) of the services that declare a gateway."""
    services = []
    ports = {}
    route_names = {}
    for name, _entry, gateway, where in collect_gateways(hostvars, hosts):
        port = _port(gateway.get("outbound_port"), where)
        if port in ports:
            _fail(where, "gateway.outbound_port %d is already the outbound of %s" % (port, ports[port]))
        ports[port] = name
        extra = gateway.get("service") or {}
        if not isinstance(extra, dict):
            _fail(where, "gateway.service must be a mapping of Kong service fields")
        fixed = sorted(set(extra) & SERVICE_FIXED)
        if fixed:
            _fail(where, "gateway.service may not set %s: the service is %s at http://127.0.0.1:%d"
                  % (", ".join(fixed), name, port))
        service = {"name": name, "url": "http://127.0.0.1:%d" % port}
        service.update(extra)
        routes = gateway.get("routes") or []
        if not isinstance(routes, list):
            _fail(where, "gateway.routes must be a list")
        service["routes"] = []
        for index, route in enumerate(routes):
            rwhere = "%s gateway.routes[%d]" % (where, index)
            if not isinstance(route, dict):
                _fail(rwhere, "a route is a mapping of Kong route fields")
            route = dict(route)
            if "service" in route:
                _fail(rwhere, "a route sits under its service already; remove its service key")
            route.setdefault("name", name if index == 0 else "%s-%d" % (name, index + 1))
            if not any(route.get(key) for key in ROUTE_MATCH):
                _fail(rwhere, "route %s matches nothing: set paths, hosts, methods, headers or snis (Kong requires one)"
                      % route["name"])
            if route["name"] in route_names:
                _fail(rwhere, "route name %s is already used by %s" % (route["name"], route_names[route["name"]]))
            route_names[route["name"]] = name
            route["plugins"] = _plugins(route.get("plugins"), rwhere)
            service["routes"].append(route)
        service["plugins"] = _plugins(gateway.get("plugins"), where + " gateway")
        services.append(service)
    return {"_format_version": "3.0", "services": services}


class FilterModule(object):
    def filters(self):
        return {"service_gateway": service_gateway}
