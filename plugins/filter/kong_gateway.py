# -*- coding: utf-8 -*-
# Copyright (c) aic.gateway contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
name: kong_gateway
short_description: The edge's whole Kong configuration, checked, from kong_gateway and the services' gateways
version_added: 0.1.0
author: aic.gateway maintainers (@aic-gateway)
description:
  - Merges the edge-wide data of the variable C(kong_gateway) (consumers with their credentials, ACL groups
    and rate limits, global plugins, an Admin API route, extra services) with the output of the filter
    C(aic.gateway.service_gateway) into one configuration in the format M(aic.gateway.kong_sync) reads.
  - "Checks the references before anything is applied, with one message naming the entity: a plugin or an
    C(anonymous) setting that names an unknown consumer, an C(acl) allow list with a group no consumer is
    in (an error by default, see O(unknown_acl_groups)), an C(acl) plugin on a route without an
    authentication plugin (Kong would answer 401 to everyone), credentials that two consumers share, a jwt
    credential without its secret or public key, and a service that points at Kong's Admin API on loopback
    without an C(ip-restriction) allow list."
  - Every consumer, credential and plugin section is written even when empty, so that M(aic.gateway.kong_sync)
    in C(sync) mode removes what the inventory no longer declares (within its C(select_tags)).
options:
  _input:
    description:
      - The C(kong_gateway) variable.
      - "C(consumers): list of C(username) (required), C(custom_id), C(tags), C(groups) (ACL groups),
        C(keys) (key-auth keys, strings or C({key, ttl, tags})), C(jwt) (list of C({key, algorithm, secret})
        for HS256/HS384/HS512 or C({key, algorithm, rsa_public_key}) for RS256 and the other asymmetric
        algorithms; C(key) is what the token's C(iss) claim carries), C(oauth2) (list of C({client_id,
        client_secret, name, redirect_uris, hash_secret}) for the client-credentials grant), C(rate_limit)
        (the C(rate-limiting) plugin's config, scoped to the consumer) and C(plugins) (other plugins scoped
        to the consumer)."
      - C(plugins) are global plugins (a C(service), C(route) or C(consumer) key scopes one, by name).
      - "C(admin_api): C({path, allow, port, plugins, name}) exposes Kong's Admin API (loopback port
        C(port), default 8001) on the proxy under C(path), behind an C(ip-restriction) plugin that allows
        only C(allow) (required), plus C(plugins) (for example key-auth and an acl group of admins)."
      - C(services) are extra Kong services in decK's format, for upstreams outside the mesh.
    type: dict
    required: true
  services:
    description: The output of the filter C(aic.gateway.service_gateway).
    type: dict
    required: true
  unknown_acl_groups:
    description: What an C(acl) allow list that names a group no consumer is in does.
    type: str
    choices: [error, warn, ignore]
    default: error
  reserved_plugins:
    description:
      - Names of global plugins something else manages (the kong role's platform plugins, prometheus and
        zipkin, in DB mode); declaring one of them as a global plugin here is refused.
    type: list
    elements: str
    default: []
  admin_ports:
    description: The ports of Kong's Admin API; a loopback service URL on one of them must carry an allow list.
    type: list
    elements: int
    default: [8001, 8444]
  oauth2:
    description:
      - Whether the cluster can run Kong's C(oauth2) plugin, which writes its tokens to the database at request
        time; Kong does not offer it on DB-less nodes nor in hybrid mode. V(false) refuses an oauth2 plugin.
    type: bool
    default: true
"""

EXAMPLES = r"""
- name: The edge's configuration, applied once per cluster
  aic.gateway.kong_sync:
    admin_url: http://127.0.0.1:8001
    config: "{{ kong_gateway | aic.gateway.kong_gateway(hostvars | aic.gateway.service_gateway(groups['services'])) }}"
    mode: sync
    select_tags: [aic-gateway-edge]
  no_log: true
  run_once: true
  vars:
    kong_gateway:
      consumers:
        - username: mobile-app
          groups: [core-users]
          keys: ["{{ vault_mobile_app_api_key }}"]
          rate_limit: {minute: 600}
        - username: partner
          groups: [core-users]
          jwt:
            - {key: partner-hs, algorithm: HS256, secret: "{{ vault_partner_jwt_secret }}"}
            - {key: partner-rs, algorithm: RS256, rsa_public_key: "{{ lookup('file', 'partner.pub') }}"}
          oauth2:
            - {client_id: partner-app, client_secret: "{{ vault_partner_client_secret }}"}
      plugins:
        - {name: cors, config: {origins: ["https://app.example.com"]}}
      admin_api:
        path: /kong-admin
        allow: [10.0.50.0/24]
"""

RETURN = r"""
_value:
  description: A declarative configuration with C(services), C(consumers) and C(plugins).
  type: dict
"""

import copy
import re
from collections.abc import Mapping, Sequence
from urllib.parse import urlsplit

from ansible.errors import AnsibleFilterError
from ansible.module_utils.six import string_types
from ansible.utils.display import Display

display = Display()

TOP_KEYS = frozenset(("consumers", "plugins", "admin_api", "services"))
CONSUMER_KEYS = frozenset(("username", "custom_id", "tags", "groups", "keys", "jwt", "oauth2", "rate_limit",
                           "plugins"))
ADMIN_KEYS = frozenset(("path", "allow", "port", "plugins", "name"))
JWT_KEYS = frozenset(("key", "algorithm", "secret", "rsa_public_key", "tags"))
OAUTH2_KEYS = frozenset(("client_id", "client_secret", "name", "redirect_uris", "hash_secret", "client_type", "tags"))
JWT_HMAC = ("HS256", "HS384", "HS512")
JWT_ASYMMETRIC = ("RS256", "RS384", "RS512", "ES256", "ES384", "ES512", "PS256", "PS384", "PS512", "EdDSA")
# Plugins that authenticate a consumer (the acl plugin needs one of them before it, kong.md section 5 acl).
AUTH_PLUGINS = frozenset(("key-auth", "jwt", "oauth2", "basic-auth", "hmac-auth", "ldap-auth", "session",
                          "openid-connect", "mtls-auth", "key-auth-enc", "jwt-signer"))
RATE_PERIODS = ("second", "minute", "hour", "day", "month", "year")
LOOPBACK = ("127.0.0.1", "localhost", "::1", "[::1]")
UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$", re.I)


def _fail(message):
    raise AnsibleFilterError("kong_gateway: %s; nothing was applied" % message)


def _plain(value):
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, Sequence) and not isinstance(value, string_types):
        return [_plain(v) for v in value]
    return copy.deepcopy(value)


def _list(value, where):
    if value is None:
        return []
    if not isinstance(value, list):
        _fail("%s must be a list" % where)
    return value


def _check_keys(value, allowed, where):
    if not isinstance(value, dict):
        _fail("%s must be a mapping" % where)
    unknown = sorted(set(value) - allowed)
    if unknown:
        _fail("%s: unknown keys %s (allowed: %s)" % (where, ", ".join(unknown), ", ".join(sorted(allowed))))


def _secret(value):
    return isinstance(value, string_types) and value.strip() != ""


class _Seen(object):
    """Credentials must be unique across consumers (Kong's unique constraints)."""

    def __init__(self, what):
        self.what = what
        self.owner = {}

    def add(self, value, consumer):
        if value in self.owner:
            # the value is a secret: name the consumers, not the value
            _fail("%s of consumer %s is also one of consumer %s" % (self.what, consumer, self.owner[value]))
        self.owner[value] = consumer


def _consumer(raw, index, seen):
    where = "kong_gateway.consumers[%d]" % index
    _check_keys(raw, CONSUMER_KEYS, where)
    username = raw.get("username")
    if not isinstance(username, string_types) or not username:
        _fail("%s needs a username" % where)
    where = "consumer %s" % username
    consumer = {"username": username}
    for field in ("custom_id", "tags"):
        if raw.get(field) is not None:
            consumer[field] = raw[field]
    keys = []
    for k, item in enumerate(_list(raw.get("keys"), where + " keys")):
        item = {"key": item} if isinstance(item, string_types) else item
        _check_keys(item, frozenset(("key", "ttl", "tags")), "%s keys[%d]" % (where, k))
        if not _secret(item.get("key")):
            _fail("%s keys[%d] is empty (give the key, from a vault)" % (where, k))
        seen["key"].add(item["key"], username)
        keys.append(item)
    consumer["keyauth_credentials"] = keys
    jwts = []
    for k, item in enumerate(_list(raw.get("jwt"), where + " jwt")):
        jwhere = "%s jwt[%d]" % (where, k)
        _check_keys(item, JWT_KEYS, jwhere)
        if not isinstance(item.get("key"), string_types) or not item["key"]:
            _fail("%s needs a key (the value of the token's iss claim)" % jwhere)
        item = dict(item)
        algorithm = item.setdefault("algorithm", "HS256")
        if algorithm in JWT_HMAC:
            if not _secret(item.get("secret")):
                _fail("%s (%s) needs a secret" % (jwhere, algorithm))
            if item.get("rsa_public_key"):
                _fail("%s (%s) takes a secret, not an rsa_public_key" % (jwhere, algorithm))
        elif algorithm in JWT_ASYMMETRIC:
            pem = item.get("rsa_public_key")
            if not isinstance(pem, string_types) or "-----BEGIN PUBLIC KEY-----" not in pem:
                _fail("%s (%s) needs rsa_public_key, a PEM public key (-----BEGIN PUBLIC KEY-----)" % (jwhere, algorithm))
        else:
            _fail("%s: algorithm %s is not one Kong's jwt plugin knows (%s)"
                  % (jwhere, algorithm, ", ".join(JWT_HMAC + JWT_ASYMMETRIC)))
        seen["jwt"].add(item["key"], username)
        jwts.append(item)
    consumer["jwt_secrets"] = jwts
    apps = []
    for k, item in enumerate(_list(raw.get("oauth2"), where + " oauth2")):
        owhere = "%s oauth2[%d]" % (where, k)
        _check_keys(item, OAUTH2_KEYS, owhere)
        if not isinstance(item.get("client_id"), string_types) or not item["client_id"]:
            _fail("%s needs a client_id" % owhere)
        if not _secret(item.get("client_secret")):
            _fail("%s (%s) needs a client_secret (from a vault)" % (owhere, item["client_id"]))
        item = dict(item)
        item.setdefault("name", username)
        seen["oauth2"].add(item["client_id"], username)
        apps.append(item)
    consumer["oauth2_credentials"] = apps
    groups = _list(raw.get("groups"), where + " groups")
    for group in groups:
        if not isinstance(group, string_types) or not group:
            _fail("%s groups must be names" % where)
    if len(set(groups)) != len(groups):
        _fail("%s lists a group twice" % where)
    consumer["acls"] = [{"group": group} for group in groups]
    plugins = []
    for k, plugin in enumerate(_list(raw.get("plugins"), where + " plugins")):
        if not isinstance(plugin, dict) or not plugin.get("name"):
            _fail("%s plugins[%d] needs a name" % (where, k))
        if "consumer" in plugin:
            _fail("%s plugins[%d] (%s) sits under its consumer already; remove its consumer key"
                  % (where, k, plugin["name"]))
        plugins.append(plugin)
    limit = raw.get("rate_limit")
    if limit is not None:
        if not isinstance(limit, dict) or not any(limit.get(p) for p in RATE_PERIODS):
            _fail("%s rate_limit needs at least one of %s (the rate-limiting plugin's config)"
                  % (where, ", ".join(RATE_PERIODS)))
        if any(p["name"] == "rate-limiting" for p in plugins):
            _fail("%s has rate_limit and a rate-limiting plugin; keep one" % where)
        plugins.append({"name": "rate-limiting", "config": dict(limit)})
    names = [p["name"] for p in plugins if not p.get("instance_name")]
    if len(set(names)) != len(names):
        _fail("%s has the same plugin twice" % where)
    consumer["plugins"] = plugins
    return consumer


def _admin_service(admin):
    _check_keys(admin, ADMIN_KEYS, "kong_gateway.admin_api")
    path = admin.get("path")
    if not isinstance(path, string_types) or not path.startswith("/"):
        _fail("kong_gateway.admin_api.path must be a path starting with / (where the Admin API is exposed)")
    allow = admin.get("allow")
    if not isinstance(allow, list) or not allow:
        _fail("kong_gateway.admin_api.allow must list the addresses (IP or CIDR) allowed to reach the Admin API")
    name = admin.get("name") or "kong-admin-api"
    port = admin.get("port") or 8001
    plugins = [{"name": "ip-restriction", "config": {"allow": list(allow)}}]
    for plugin in _list(admin.get("plugins"), "kong_gateway.admin_api.plugins"):
        if not isinstance(plugin, dict) or not plugin.get("name"):
            _fail("kong_gateway.admin_api.plugins entries need a name")
        if plugin["name"] == "ip-restriction":
            _fail("kong_gateway.admin_api.plugins: the ip-restriction plugin comes from admin_api.allow")
        plugins.append(plugin)
    return {"name": name, "url": "http://127.0.0.1:%s" % port,
            "routes": [{"name": name, "paths": [path], "strip_path": True, "plugins": []}],
            "plugins": plugins}


def _plugin_places(config):
    """(where, plugin, scope) of every plugin, scope = (service name, route name) it applies to."""
    for service in config["services"]:
        for plugin in service.get("plugins") or []:
            yield "service %s" % service["name"], plugin, (service["name"], None)
        for route in service.get("routes") or []:
            for plugin in route.get("plugins") or []:
                yield "route %s" % route.get("name"), plugin, (service["name"], route.get("name"))
    for consumer in config["consumers"]:
        for plugin in consumer.get("plugins") or []:
            yield "consumer %s" % consumer["username"], plugin, (None, None)
    for plugin in config["plugins"]:
        yield "global plugin %s" % plugin.get("name"), plugin, (plugin.get("service"), plugin.get("route"))


def _is_admin_url(service, admin_ports):
    url = service.get("url")
    if url:
        parts = urlsplit(url)
        host, port = parts.hostname, parts.port
    else:
        host, port = service.get("host"), service.get("port")
    try:
        return host in LOOPBACK and int(port) in [int(p) for p in admin_ports]
    except (TypeError, ValueError):
        return False


def _check(config, unknown_acl_groups, admin_ports, oauth2=True):
    consumers = {}
    for consumer in config["consumers"]:
        consumers[consumer["username"]] = consumer
        if consumer.get("custom_id"):
            consumers[consumer["custom_id"]] = consumer
    groups = set(acl["group"] for c in config["consumers"] for acl in c["acls"])
    global_plugins = [p for p in config["plugins"] if not p.get("service") and not p.get("route") and not p.get("consumer")]
    oauth2_client_credentials = False
    for where, plugin, _scope in _plugin_places(config):
        ref = plugin.get("consumer")
        if ref is not None and ref not in consumers and not (isinstance(ref, string_types) and UUID.match(ref)):
            _fail("%s (%s) names consumer %r, which kong_gateway.consumers does not declare"
                  % (where, plugin["name"], ref))
        conf = plugin.get("config") or {}
        anonymous = conf.get("anonymous")
        if anonymous and plugin["name"] in AUTH_PLUGINS and anonymous not in consumers and not UUID.match(str(anonymous)):
            _fail("%s (%s) uses anonymous consumer %r, which kong_gateway.consumers does not declare"
                  % (where, plugin["name"], anonymous))
        if plugin["name"] == "oauth2" and not oauth2:
            _fail("%s: the oauth2 plugin needs a traditional Kong node with a database (it writes its tokens at "
                  "request time; Kong does not offer it in DB-less or hybrid mode); use jwt or key-auth there" % where)
        if plugin["name"] == "oauth2" and conf.get("enable_client_credentials"):
            oauth2_client_credentials = True
        if plugin["name"] == "acl":
            allow = conf.get("allow") or []
            missing = [g for g in allow if g not in groups]
            if missing and unknown_acl_groups != "ignore":
                message = ("%s: the acl plugin allows group %s, which no consumer of kong_gateway.consumers is in "
                           "(known groups: %s)" % (where, ", ".join(missing), ", ".join(sorted(groups)) or "none"))
                if unknown_acl_groups == "error":
                    _fail(message)
                display.warning("kong_gateway: " + message)
    if not oauth2_client_credentials and any(c["oauth2_credentials"] for c in config["consumers"]):
        display.warning("kong_gateway: consumers have oauth2 applications but no oauth2 plugin sets "
                        "enable_client_credentials: true, so their client credentials cannot get a token")
    # every route's effective plugins: global + service + route (+ global ones scoped to it)
    for service in config["services"]:
        service_plugins = [p["name"] for p in service.get("plugins") or []]
        scoped = [p["name"] for p in config["plugins"] if p.get("service") == service["name"] and not p.get("route")]
        for route in service.get("routes") or []:
            names = set(service_plugins + scoped + [p["name"] for p in global_plugins])
            names |= set(p["name"] for p in route.get("plugins") or [])
            names |= set(p["name"] for p in config["plugins"] if p.get("route") == route.get("name"))
            if "acl" in names and not names & AUTH_PLUGINS:
                _fail("route %s (service %s) has the acl plugin but no authentication plugin (%s), so Kong would "
                      "answer 401 to every request" % (route.get("name"), service["name"], ", ".join(sorted(AUTH_PLUGINS)[:4]) + ", ..."))
        if _is_admin_url(service, admin_ports):
            def restricted(plugins):
                return any(p["name"] == "ip-restriction" and (p.get("config") or {}).get("allow") for p in plugins)
            routes = service.get("routes") or []
            guarded = restricted(service.get("plugins") or []) or restricted(global_plugins) or \
                restricted([p for p in config["plugins"] if p.get("service") == service["name"]])
            if not guarded and not (routes and all(restricted(r.get("plugins") or []) for r in routes)):
                _fail("service %s exposes Kong's Admin API (%s) through the proxy without an ip-restriction allow "
                      "list; use kong_gateway.admin_api (allow: [...]) or add the ip-restriction plugin"
                      % (service["name"], service.get("url") or "%s:%s" % (service.get("host"), service.get("port"))))


def kong_gateway(gateway, services, unknown_acl_groups="error", reserved_plugins=None, admin_ports=(8001, 8444),
                 oauth2=True):
    """One kong_sync configuration from kong_gateway and the service_gateway output, references checked."""
    gateway = _plain(gateway or {})
    services = _plain(services or {})
    if unknown_acl_groups not in ("error", "warn", "ignore"):
        _fail("unknown_acl_groups must be error, warn or ignore")
    _check_keys(gateway, TOP_KEYS, "kong_gateway")
    if not isinstance(services, dict) or str(services.get("_format_version", "3.0")) != "3.0":
        _fail("the services argument must be the output of aic.gateway.service_gateway")
    config = {"_format_version": "3.0", "services": [], "consumers": [], "plugins": []}
    config["services"] = _list(services.get("services"), "the services' gateways") + \
        _list(gateway.get("services"), "kong_gateway.services")
    if gateway.get("admin_api"):
        config["services"].append(_admin_service(gateway["admin_api"]))
    names = {}
    for service in config["services"]:
        if not isinstance(service, dict) or not service.get("name"):
            _fail("every service needs a name (kong_gateway.services)")
        if service["name"] in names:
            _fail("two services are named %s" % service["name"])
        names[service["name"]] = True
        service.setdefault("routes", [])
        service.setdefault("plugins", [])
    seen = {"key": _Seen("a key-auth key"), "jwt": _Seen("jwt key"), "oauth2": _Seen("oauth2 client_id")}
    usernames = set()
    for index, raw in enumerate(_list(gateway.get("consumers"), "kong_gateway.consumers")):
        consumer = _consumer(raw, index, seen)
        if consumer["username"] in usernames:
            _fail("consumer %s is declared twice" % consumer["username"])
        usernames.add(consumer["username"])
        config["consumers"].append(consumer)
    reserved = set(reserved_plugins or ())
    globals_seen = set()
    for index, plugin in enumerate(_list(gateway.get("plugins"), "kong_gateway.plugins")):
        if not isinstance(plugin, dict) or not plugin.get("name"):
            _fail("kong_gateway.plugins[%d] needs a name" % index)
        scope = (plugin["name"], plugin.get("service"), plugin.get("route"), plugin.get("consumer"),
                 plugin.get("instance_name"))
        if scope in globals_seen:
            _fail("kong_gateway.plugins declares %s twice for the same scope" % plugin["name"])
        globals_seen.add(scope)
        if plugin["name"] in reserved and not (plugin.get("service") or plugin.get("route") or plugin.get("consumer")):
            _fail("kong_gateway.plugins[%d]: the global %s plugin is the platform's (the kong role applies it); "
                  "configure it with the kong role's variables instead" % (index, plugin["name"]))
        route_names = set(r.get("name") for s in config["services"] for r in s["routes"])
        for field in ("service", "route"):
            ref = plugin.get(field)
            known = names if field == "service" else route_names
            if ref is not None and ref not in known and not (isinstance(ref, string_types) and UUID.match(ref)):
                _fail("kong_gateway.plugins[%d] (%s) names %s %r, which is not declared" % (index, plugin["name"], field, ref))
        config["plugins"].append(plugin)
    _check(config, unknown_acl_groups, admin_ports, oauth2)
    return config


class FilterModule(object):
    def filters(self):
        return {"kong_gateway": kong_gateway}
