# -*- coding: utf-8 -*-
# Copyright (c) aic.gateway contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
name: service_definitions
short_description: Check and complete the backend services a host declares
version_added: 0.1.0
author: aic.gateway maintainers
description:
  - Takes a host's C(service_definitions) (see the role aic.gateway.service) and returns them complete, with
    every default filled, or fails naming the service and the rule before anything changes on the host.
  - Refuses unknown keys (at every level, checked with the logic of the C(unknown_keys) filter), duplicate
    names, ports used twice on the host (instance ports, data plane inbound and outbound ports), an artifact
    without what its type needs, unknown command placeholders and environment variables that clash.
  - The keys C(gateway) and C(mesh.allow_from) belong to other filters (C(service_gateway),
    C(service_mesh_policies)); they are accepted here and passed through unchecked.
options:
  _input:
    description: The list of service definitions.
    type: list
    elements: dict
    required: true
  address:
    description: Listen address of the instances of services that do not set C(address).
    type: str
    default: 127.0.0.1
"""

EXAMPLES = r"""
- name: Check the services of this host before anything changes
  ansible.builtin.set_fact:
    planned: "{{ service_definitions | aic.gateway.service_definitions }}"
"""

RETURN = r"""
_value:
  description:
    - One dict per service with every key of the data model filled (C(instances) 1, C(address), C(user)
      C(aic-<name>), C(environment) and C(secret_environment) as string maps, C(health) with C(path), C(status)
      and C(timeout) or null, C(database) or null, C(mesh) with C(service), C(protocol), C(inbound_port) and
      C(outbound) or null, C(firewall_sources), C(read_write_paths)), plus C(ports) (the instance ports).
  type: list
  elements: dict
"""

import copy
import re
from collections.abc import Mapping

from ansible.errors import AnsibleFilterError
from ansible.module_utils.six import string_types

from ansible_collections.aic.gateway.plugins.filter.unknown_keys import unknown_keys

# The data model (ARCHITECTURE/issue 8). None: anything is accepted below that key.
REFERENCE = {
    "name": None, "user": None, "command": None, "port": None, "instances": None, "address": None,
    "environment": None, "secret_environment": None, "firewall_sources": None, "read_write_paths": None,
    "artifact": {"type": None, "url": None, "path": None, "name": None, "version": None, "checksum": None,
                 "checksum_url": None, "filename": None, "requirements": None, "strip_components": None,
                 "registry": None, "pip_args": None},
    "health": {"path": None, "status": None, "timeout": None},
    "database": {"name": None, "user": None, "password": None, "sources": None},
    "mesh": {"service": None, "protocol": None, "inbound_port": None, "outbound": None, "allow_from": None},
    "gateway": None,
}
TYPES = ("wheel", "source", "archive", "npm", "binary", "package")
PLACEHOLDERS = ("port", "instance", "address", "home", "data", "release", "venv")
PROTOCOLS = ("tcp", "http", "http2", "grpc")
RESERVED_ENV = ("SERVICE_NAME", "SERVICE_PORT", "SERVICE_ADDRESS", "SERVICE_INSTANCE")
_NAME = re.compile(r"^[a-z][a-z0-9-]{0,27}[a-z0-9]$")
_ENV = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_PG_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
_PLACEHOLDER = re.compile(r"\{([a-z_]+)\}")
_VERSION = re.compile(r"^[A-Za-z0-9][A-Za-z0-9.+_~-]*$")


def fail(name, message):
    raise AnsibleFilterError("service_definitions: service %r: %s" % (name, message))


def _port(name, what, value):
    if isinstance(value, bool) or not isinstance(value, int) or not 0 < value < 65536:
        fail(name, "%s must be a TCP port number (1-65535), got %r" % (what, value))
    return value


def _string_map(name, what, value):
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        fail(name, "%s must be a mapping of variable names to values" % what)
    result = {}
    for key, item in value.items():
        if not isinstance(key, string_types) or not _ENV.match(key):
            fail(name, "%s: %r is not a valid environment variable name" % (what, key))
        if key in RESERVED_ENV:
            fail(name, "%s: %s is set by the role for each instance" % (what, key))
        if isinstance(item, (Mapping, list)):
            fail(name, "%s: %s must be a string or number, got a %s" % (what, key, type(item).__name__))
        text = "" if item is None else (str(item).lower() if isinstance(item, bool) else str(item))
        if "\n" in text:
            fail(name, "%s: %s may not contain a line break" % (what, key))
        result[key] = text
    return result


def _string_list(name, what, value):
    if value is None:
        return []
    if isinstance(value, string_types) or not isinstance(value, list):
        fail(name, "%s must be a list" % what)
    return [str(item) for item in value]


def _artifact(name, value):
    if not isinstance(value, Mapping):
        fail(name, "artifact is required: a mapping with type (%s) and its source" % ", ".join(TYPES))
    artifact = dict(value)
    kind = artifact.get("type")
    if kind not in TYPES:
        fail(name, "artifact.type must be one of %s, got %r" % (", ".join(TYPES), kind))
    for key in ("url", "path", "name", "version", "checksum", "checksum_url", "filename", "registry"):
        artifact[key] = "" if artifact.get(key) is None else str(artifact[key])
    sources = [key for key in ("url", "path", "name") if artifact[key]]
    if kind == "package":
        if not artifact["name"] or artifact["url"] or artifact["path"]:
            fail(name, "artifact type package needs name (the OS package) and no url or path")
    elif kind == "npm":
        if len(sources) != 1:
            fail(name, "artifact type npm needs exactly one of url or path (a package tarball) or name "
                       "(a registry package), got %s" % (", ".join(sources) or "none"))
    elif len(sources) != 1 or artifact["name"]:
        fail(name, "artifact type %s needs exactly one of url or path, got %s" % (kind, ", ".join(sources) or "none"))
    if kind != "package" and not artifact["version"]:
        fail(name, "artifact.version is required (it names the release directory and the cache entry)")
    if artifact["version"] and not _VERSION.match(artifact["version"]):
        fail(name, "artifact.version %r may contain only letters, digits and . + _ ~ -" % artifact["version"])
    if artifact["url"] and not (artifact["checksum"] or artifact["checksum_url"]):
        fail(name, "artifact.url needs artifact.checksum ('sha256:<hex>') or artifact.checksum_url")
    if artifact["checksum"] and not re.match(r"^(sha256:)?[0-9A-Fa-f]{64}$", artifact["checksum"]):
        fail(name, "artifact.checksum must be 'sha256:<64 hex digits>', got %r" % artifact["checksum"])
    if kind == "wheel" and not (artifact["url"] or artifact["path"]).endswith(".whl"):
        fail(name, "artifact type wheel needs a .whl file")
    artifact["requirements"] = str(artifact.get("requirements") or "requirements.txt")
    strip = artifact.get("strip_components", 0)
    if isinstance(strip, bool) or not isinstance(strip, int) or strip < 0:
        fail(name, "artifact.strip_components must be a number >= 0")
    artifact["strip_components"] = strip
    artifact["pip_args"] = _string_list(name, "artifact.pip_args", artifact.get("pip_args"))
    return artifact


def _health(name, value):
    if value is None:
        return None
    if not isinstance(value, Mapping):
        fail(name, "health must be a mapping with path, status and timeout")
    path = value.get("path")
    if not isinstance(path, string_types) or not path.startswith("/"):
        fail(name, "health.path must start with '/', got %r" % (path,))
    status = value.get("status", 200)
    timeout = value.get("timeout", 60)
    if isinstance(status, bool) or not isinstance(status, int) or not 100 <= status <= 599:
        fail(name, "health.status must be an HTTP status code, got %r" % (status,))
    if isinstance(timeout, bool) or not isinstance(timeout, int) or timeout <= 0:
        fail(name, "health.timeout must be a number of seconds > 0, got %r" % (timeout,))
    return {"path": path, "status": status, "timeout": timeout}


def _database(name, value):
    if value is None:
        return None
    if not isinstance(value, Mapping):
        fail(name, "database must be a mapping with name, user and password")
    result = {}
    for key in ("name", "user"):
        item = value.get(key)
        if not isinstance(item, string_types) or not _PG_NAME.match(item):
            fail(name, "database.%s must be a PostgreSQL name (lower case letters, digits, _), got %r" % (key, item))
        result[key] = item
    password = value.get("password")
    if not isinstance(password, string_types) or not password:
        fail(name, "database.password is required (from a vault)")
    result["password"] = password
    result["sources"] = _string_list(name, "database.sources", value.get("sources"))
    return result


def _mesh(name, value):
    if value is None:
        return None
    if not isinstance(value, Mapping):
        fail(name, "mesh must be a mapping with inbound_port and optional service, protocol, outbound")
    service = value.get("service") or name
    if not isinstance(service, string_types) or not re.match(r"^[A-Za-z0-9_.-]+$", service):
        fail(name, "mesh.service %r is not a valid kuma.io/service value" % (service,))
    protocol = value.get("protocol") or "http"
    if protocol not in PROTOCOLS:
        fail(name, "mesh.protocol must be one of %s, got %r" % (", ".join(PROTOCOLS), protocol))
    outbound = []
    for index, item in enumerate(value.get("outbound") or []):
        if not isinstance(item, Mapping) or sorted(item) != ["port", "service"]:
            fail(name, "mesh.outbound[%d] must be {service: <kuma.io/service>, port: <local port>}" % index)
        outbound.append({"service": str(item["service"]), "port": _port(name, "mesh.outbound[%d].port" % index, item["port"])})
    result = {"service": service, "protocol": protocol,
              "inbound_port": _port(name, "mesh.inbound_port", value.get("inbound_port")), "outbound": outbound}
    if "allow_from" in value:
        result["allow_from"] = value["allow_from"]
    return result


def _command(name, value):
    if not isinstance(value, string_types) or not value.strip():
        fail(name, "command (the ExecStart line) is required")
    unknown = sorted(set(_PLACEHOLDER.findall(value)) - set(PLACEHOLDERS))
    if unknown:
        fail(name, "command has unknown placeholders %s (known: %s)"
             % (", ".join("{%s}" % item for item in unknown), ", ".join("{%s}" % item for item in PLACEHOLDERS)))
    return value.strip()


def check_one(entry, address):
    """One service definition, checked and completed."""
    name = entry.get("name")
    if not isinstance(name, string_types) or not _NAME.match(name):
        raise AnsibleFilterError(
            "service_definitions: every service needs a name of 2-29 lower case letters, digits and '-', "
            "starting with a letter (it names the unit, the user and the Dataplane), got %r" % (name,))
    unknown = unknown_keys(entry, REFERENCE)
    if unknown:
        fail(name, "unknown keys %s" % ", ".join(unknown))
    instances = entry.get("instances", 1)
    if isinstance(instances, bool) or not isinstance(instances, int) or not 1 <= instances <= 64:
        fail(name, "instances must be a number from 1 to 64, got %r" % (instances,))
    port = _port(name, "port", entry.get("port"))
    _port(name, "port + instances - 1", port + instances - 1)
    result = {
        "name": name,
        "user": str(entry.get("user") or "aic-" + name),
        "artifact": _artifact(name, entry.get("artifact")),
        "command": _command(name, entry.get("command")),
        "port": port,
        "instances": instances,
        "ports": [port + index for index in range(instances)],
        "address": str(entry.get("address") or address),
        "environment": _string_map(name, "environment", entry.get("environment")),
        "secret_environment": _string_map(name, "secret_environment", entry.get("secret_environment")),
        "health": _health(name, entry.get("health")),
        "database": _database(name, entry.get("database")),
        "mesh": _mesh(name, entry.get("mesh")),
        "firewall_sources": _string_list(name, "firewall_sources", entry.get("firewall_sources")),
        "read_write_paths": _string_list(name, "read_write_paths", entry.get("read_write_paths")),
    }
    if not re.match(r"^[a-z_][a-z0-9_-]{0,31}$", result["user"]):
        fail(name, "user %r is not a valid system user name" % result["user"])
    both = sorted(set(result["environment"]) & set(result["secret_environment"]))
    if both:
        fail(name, "%s set in both environment and secret_environment" % ", ".join(both))
    for path in result["read_write_paths"]:
        if not path.lstrip("-").startswith("/"):
            fail(name, "read_write_paths must be absolute, got %r" % path)
    if result["firewall_sources"] and result["address"] in ("127.0.0.1", "::1", "localhost"):
        fail(name, "firewall_sources opens the port, but the instances listen on %s only; set address "
                   "(for example 0.0.0.0)" % result["address"])
    if result["mesh"] and result["mesh"]["inbound_port"] + instances - 1 > 65535:
        fail(name, "mesh.inbound_port + instances - 1 is not a TCP port")
    if "gateway" in entry:
        result["gateway"] = copy.deepcopy(entry["gateway"])
    return result


def service_definitions(entries, address="127.0.0.1"):
    """The service definitions of a host, checked and completed."""
    if entries is None:
        return []
    if not isinstance(entries, list):
        raise AnsibleFilterError("service_definitions must be a list, got %s" % type(entries).__name__)
    result = []
    names = set()
    ports = {}
    for index, entry in enumerate(entries):
        if not isinstance(entry, Mapping):
            raise AnsibleFilterError("service_definitions[%d] must be a mapping, got %r" % (index, entry))
        service = check_one(entry, address)
        name = service["name"]
        if name in names:
            fail(name, "declared twice on this host")
        names.add(name)
        claimed = [(item, "instance %d" % number) for number, item in enumerate(service["ports"])]
        if service["mesh"]:
            claimed += [(service["mesh"]["inbound_port"] + number, "mesh inbound %d" % number)
                        for number in range(service["instances"])]
            claimed += [(item["port"], "mesh outbound to %s" % item["service"]) for item in service["mesh"]["outbound"]]
        for item, use in claimed:
            if item in ports:
                fail(name, "port %d (%s) is already used by %s on this host" % (item, use, ports[item]))
            ports[item] = "%s (%s)" % (name, use)
        result.append(service)
    return result


class FilterModule(object):
    def filters(self):
        return {"service_definitions": service_definitions}
