# -*- coding: utf-8 -*-
from __future__ import annotations

import copy

import pytest

from ansible.errors import AnsibleFilterError
from ansible_collections.aic.gateway.plugins.filter import kong_gateway as K
from ansible_collections.aic.gateway.plugins.filter.kong_gateway import kong_gateway
from ansible_collections.aic.gateway.plugins.module_utils._kong_state import parse_config

PEM = "-----BEGIN PUBLIC KEY-----\nMIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA\n-----END PUBLIC KEY-----\n"
SERVICES = {"_format_version": "3.0", "services": [{
    "name": "core-api", "url": "http://127.0.0.1:33033",
    "routes": [{"name": "core-api", "paths": ["/core"], "plugins": []},
               {"name": "core-token", "paths": ["/token"], "plugins": [
                   {"name": "oauth2", "config": {"enable_client_credentials": True}}]}],
    "plugins": [{"name": "key-auth"}, {"name": "acl", "config": {"allow": ["core-users"]}}],
}]}
GATEWAY = {
    "consumers": [
        {"username": "mobile-app", "groups": ["core-users"], "keys": ["k-mobile", {"key": "k-mobile-2", "ttl": 60}],
         "rate_limit": {"minute": 5}},
        {"username": "partner", "custom_id": "p-1", "groups": ["core-users", "partners"],
         "jwt": [{"key": "partner-hs", "secret": "s3cret"},
                 {"key": "partner-rs", "algorithm": "RS256", "rsa_public_key": PEM}],
         "oauth2": [{"client_id": "partner-app", "client_secret": "cs3cret"}]},
        {"username": "outsider", "keys": ["k-outsider"]},
    ],
    "plugins": [{"name": "cors", "config": {"origins": ["*"]}},
                {"name": "request-size-limiting", "consumer": "partner", "config": {"allowed_payload_size": 1}}],
    "admin_api": {"path": "/kong-admin", "allow": ["10.0.50.0/24"]},
}


def merged(gateway=None, services=None, **kwargs):
    return kong_gateway(copy.deepcopy(GATEWAY if gateway is None else gateway),
                        copy.deepcopy(SERVICES if services is None else services), **kwargs)


def test_consumers_credentials_groups_and_limits_in_decks_format():
    config = merged()
    assert [c["username"] for c in config["consumers"]] == ["mobile-app", "partner", "outsider"]
    mobile, partner, outsider = config["consumers"]
    assert mobile["keyauth_credentials"] == [{"key": "k-mobile"}, {"key": "k-mobile-2", "ttl": 60}]
    assert mobile["acls"] == [{"group": "core-users"}]
    # the rate limit is the rate-limiting plugin scoped to the consumer
    assert mobile["plugins"] == [{"name": "rate-limiting", "config": {"minute": 5}}]
    assert partner["jwt_secrets"] == [{"key": "partner-hs", "secret": "s3cret", "algorithm": "HS256"},
                                      {"key": "partner-rs", "algorithm": "RS256", "rsa_public_key": PEM}]
    assert partner["oauth2_credentials"] == [{"client_id": "partner-app", "client_secret": "cs3cret", "name": "partner"}]
    assert partner["custom_id"] == "p-1"
    # empty sections are written, so sync mode removes what the inventory no longer has
    assert outsider["jwt_secrets"] == [] and outsider["acls"] == [] and outsider["plugins"] == []


def test_admin_api_route_is_behind_ip_restriction():
    admin = merged()["services"][-1]
    assert admin["name"] == "kong-admin-api" and admin["url"] == "http://127.0.0.1:8001"
    assert admin["routes"][0]["paths"] == ["/kong-admin"]
    assert admin["plugins"][0] == {"name": "ip-restriction", "config": {"allow": ["10.0.50.0/24"]}}


def test_the_result_is_what_kong_sync_reads():
    desired = parse_config(merged())
    kinds = {e.kind for e in desired.entities}
    assert {"services", "routes", "plugins", "consumers", "keyauth_credentials", "jwt_secrets",
            "oauth2_credentials", "acls"} <= kinds


def test_no_gateway_data_gives_empty_sections():
    config = kong_gateway({}, {"_format_version": "3.0", "services": []})
    assert config == {"_format_version": "3.0", "services": [], "consumers": [], "plugins": []}


def test_unknown_acl_group_is_an_error_by_default_or_a_warning(monkeypatch):
    services = copy.deepcopy(SERVICES)
    services["services"][0]["plugins"][1]["config"]["allow"] = ["core-users", "core-admins"]
    with pytest.raises(AnsibleFilterError, match="allows group core-admins, which no consumer .* \\(known groups: core-users, partners\\)"):
        merged(services=services)
    warnings = []
    monkeypatch.setattr(K.display, "warning", warnings.append)
    merged(services=services, unknown_acl_groups="warn")
    assert len(warnings) == 1 and "core-admins" in warnings[0]
    merged(services=services, unknown_acl_groups="ignore")


def bad(path, value):
    gateway = copy.deepcopy(GATEWAY)
    node = gateway
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    return gateway


@pytest.mark.parametrize("gateway, message", [
    (bad(["plugins", 1, "consumer"], "nobody"), "names consumer 'nobody', which kong_gateway.consumers does not declare"),
    (bad(["consumers", 0, "plugins"], [{"name": "key-auth", "consumer": "x"}]), "sits under its consumer"),
    (bad(["consumers", 2, "keys"], ["k-mobile"]), "a key-auth key of consumer outsider is also one of consumer mobile-app"),
    (bad(["consumers", 1, "jwt"], [{"key": "x", "algorithm": "HS256"}]), "needs a secret"),
    (bad(["consumers", 1, "jwt"], [{"key": "x", "algorithm": "RS256", "secret": "s"}]), "needs rsa_public_key"),
    (bad(["consumers", 1, "jwt"], [{"key": "x", "algorithm": "HS1"}]), "not one Kong's jwt plugin knows"),
    (bad(["consumers", 1, "oauth2"], [{"client_id": "x"}]), "needs a client_secret"),
    (bad(["consumers", 0, "rate_limit"], {"policy": "local"}), "needs at least one of second"),
    (bad(["consumers", 0, "keys"], [""]), "is empty"),
    (bad(["consumers", 0, "grups"], ["x"]), "unknown keys grups"),
    (bad(["admin_api", "allow"], []), "must list the addresses"),
    (bad(["plugins"], [{"name": "cors"}, {"name": "cors"}]), "declares cors twice"),
    (bad(["plugins"], [{"name": "cors", "route": "nope"}]), "names route 'nope'"),
    (bad(["consumers"], [{"username": "a"}, {"username": "a"}]), "declared twice"),
])
def test_bad_gateway_data_is_refused_with_the_reason(gateway, message):
    with pytest.raises(AnsibleFilterError, match=message):
        merged(gateway)


def test_secrets_never_appear_in_messages():
    gateway = bad(["consumers", 2, "keys"], ["k-mobile"])
    with pytest.raises(AnsibleFilterError) as err:
        merged(gateway)
    assert "k-mobile" not in str(err.value)


def test_acl_without_authentication_is_refused():
    services = copy.deepcopy(SERVICES)
    services["services"][0]["plugins"] = [{"name": "acl", "config": {"allow": ["core-users"]}}]
    with pytest.raises(AnsibleFilterError, match="route core-api .* acl plugin but no authentication plugin"):
        merged(services=services)
    # a global authentication plugin counts
    gateway = copy.deepcopy(GATEWAY)
    gateway["plugins"].append({"name": "key-auth"})
    merged(gateway, services)


def test_admin_api_through_the_proxy_needs_an_allow_list():
    gateway = copy.deepcopy(GATEWAY)
    del gateway["admin_api"]
    gateway["services"] = [{"name": "admin", "url": "http://localhost:8001",
                            "routes": [{"name": "admin", "paths": ["/admin"]}]}]
    with pytest.raises(AnsibleFilterError, match="service admin exposes Kong's Admin API"):
        merged(gateway)
    gateway["services"][0]["routes"][0]["plugins"] = [{"name": "ip-restriction", "config": {"allow": ["10.0.0.1"]}}]
    merged(gateway)


def test_anonymous_consumer_must_exist():
    services = copy.deepcopy(SERVICES)
    services["services"][0]["plugins"][0]["config"] = {"anonymous": "guest"}
    with pytest.raises(AnsibleFilterError, match="anonymous consumer 'guest'"):
        merged(services=services)


def test_platform_plugins_are_reserved():
    gateway = copy.deepcopy(GATEWAY)
    gateway["plugins"].append({"name": "prometheus"})
    with pytest.raises(AnsibleFilterError, match="global prometheus plugin is the platform's"):
        merged(gateway, reserved_plugins=["prometheus", "zipkin"])
    merged(gateway)


def test_oauth2_apps_without_client_credentials_plugin_warn(monkeypatch):
    services = copy.deepcopy(SERVICES)
    services["services"][0]["routes"][1]["plugins"] = []
    warnings = []
    monkeypatch.setattr(K.display, "warning", warnings.append)
    merged(services=services)
    assert warnings and "enable_client_credentials" in warnings[0]


def test_oauth2_only_where_kong_offers_it():
    """Kong's oauth2 plugin writes tokens at request time: not in DB-less or hybrid mode."""
    with pytest.raises(AnsibleFilterError, match="route core-token: the oauth2 plugin needs a traditional Kong node"):
        merged(oauth2=False)
    services = copy.deepcopy(SERVICES)
    services["services"][0]["routes"][1]["plugins"] = []
    gateway = copy.deepcopy(GATEWAY)
    gateway["consumers"][1]["oauth2"] = []
    merged(gateway, services, oauth2=False)
