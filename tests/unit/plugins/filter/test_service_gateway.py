# -*- coding: utf-8 -*-
from __future__ import annotations

import pytest

from ansible.errors import AnsibleFilterError
from ansible_collections.aic.gateway.plugins.filter.service_gateway import service_gateway
from ansible_collections.aic.gateway.plugins.filter.service_kong_outbounds import service_kong_outbounds

CORE = {
    "name": "core-api",
    "port": 8080,
    "mesh": {"service": "core-api", "inbound_port": 20001},
    "gateway": {
        "outbound_port": 33033,
        "routes": [{"name": "core-api", "paths": ["/core"], "strip_path": True}],
        "plugins": [{"name": "key-auth"}, {"name": "acl", "config": {"allow": ["core-users"]}}],
    },
}
AI = {
    "name": "ai-service",
    "mesh": {"service": "ai"},
    "gateway": {"outbound_port": 33101, "routes": [{"paths": ["/ai"]}, {"paths": ["/ai-v2"]}],
                "service": {"read_timeout": 120000}},
}
NO_GATEWAY = {"name": "worker", "port": 9000}


def hostvars(**hosts):
    return {host: {"service_definitions": defs} for host, defs in hosts.items()}


def test_one_kong_service_per_declared_service_through_the_outbound():
    config = service_gateway(hostvars(svc1=[CORE, NO_GATEWAY], svc2=[CORE, AI]), ["svc1", "svc2"])
    assert config["_format_version"] == "3.0"
    core, ai = config["services"]
    assert core == {
        "name": "core-api", "url": "http://127.0.0.1:33033",
        "routes": [{"name": "core-api", "paths": ["/core"], "strip_path": True, "plugins": []}],
        "plugins": [{"name": "key-auth"}, {"name": "acl", "config": {"allow": ["core-users"]}}],
    }
    # unnamed routes are named after the service; extra Kong service fields pass through
    assert [r["name"] for r in ai["routes"]] == ["ai-service", "ai-service-2"]
    assert ai["read_timeout"] == 120000 and ai["url"] == "http://127.0.0.1:33101"


def test_hosts_without_definitions_and_unlisted_hosts_are_ignored():
    assert service_gateway({"svc1": {}, "other": {"service_definitions": [CORE]}}, ["svc1"])["services"] == []


def test_the_input_is_not_modified():
    service_gateway(hostvars(svc1=[AI]), ["svc1"])
    assert "name" not in AI["gateway"]["routes"][0]


def test_outbounds_for_kongs_delegated_data_plane():
    outbounds = service_kong_outbounds(hostvars(svc1=[AI, NO_GATEWAY], svc2=[CORE, AI]), ["svc1", "svc2"])
    assert outbounds == [{"port": 33033, "tags": {"kuma.io/service": "core-api"}},
                         {"port": 33101, "tags": {"kuma.io/service": "ai"}}]


def test_disabled_gateway_is_skipped():
    off = dict(CORE, gateway=dict(CORE["gateway"], enabled=False))
    assert service_gateway(hostvars(svc1=[off]), ["svc1"])["services"] == []
    assert service_kong_outbounds(hostvars(svc1=[off]), ["svc1"]) == []


@pytest.mark.parametrize("gateway, message", [
    ({"routes": []}, "outbound_port must be a port number"),
    ({"outbound_port": 70000}, "is not a port"),
    ({"outbound_port": 1, "rotues": []}, "unknown gateway keys rotues"),
    ({"outbound_port": 1, "routes": [{"name": "x"}]}, "matches nothing"),
    ({"outbound_port": 1, "routes": [{"paths": ["/x"], "service": "y"}]}, "sits under its service"),
    ({"outbound_port": 1, "plugins": [{"config": {}}]}, "needs a name"),
    ({"outbound_port": 1, "service": {"url": "http://x"}}, "may not set url"),
])
def test_bad_gateways_are_refused_with_the_reason(gateway, message):
    with pytest.raises(AnsibleFilterError, match=message):
        service_gateway(hostvars(svc1=[{"name": "x", "gateway": gateway}]), ["svc1"])


def test_clashes_between_services_are_refused():
    clash = dict(AI, gateway=dict(AI["gateway"], outbound_port=33033))
    with pytest.raises(AnsibleFilterError, match="already the outbound of core-api"):
        service_gateway(hostvars(svc1=[CORE, clash]), ["svc1"])
    with pytest.raises(AnsibleFilterError, match="already the outbound of core-api"):
        service_kong_outbounds(hostvars(svc1=[CORE, clash]), ["svc1"])
    same_route = {"name": "other", "gateway": {"outbound_port": 1, "routes": [{"name": "core-api", "paths": ["/o"]}]}}
    with pytest.raises(AnsibleFilterError, match="route name core-api is already used by core-api"):
        service_gateway(hostvars(svc1=[CORE, same_route]), ["svc1"])
    other = dict(CORE, gateway=dict(CORE["gateway"], outbound_port=1))
    with pytest.raises(AnsibleFilterError, match="another gateway than on svc1"):
        service_gateway(hostvars(svc1=[CORE], svc2=[other]), ["svc1", "svc2"])


def test_unknown_host_is_refused():
    with pytest.raises(AnsibleFilterError, match="not an inventory host"):
        service_gateway({}, ["ghost"])
