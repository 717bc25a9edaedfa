# -*- coding: utf-8 -*-
from __future__ import annotations

import pytest

from ansible.errors import AnsibleFilterError
from ansible_collections.aic.gateway.plugins.filter.kuma_dataplanes import kuma_dataplanes
from ansible_collections.aic.gateway.plugins.filter.service_dataplanes import service_dataplanes

CORE = {
    "name": "core-api",
    "artifact": {"type": "wheel", "path": "/tmp/core_api-1.0.0-py3-none-any.whl", "version": "1.0.0"},
    "command": "{venv}/bin/core-api --port {port}",
    "port": 8080,
    "instances": 2,
    "mesh": {"inbound_port": 20001, "outbound": [{"service": "ai-service", "port": 33101}], "allow_from": ["kong"]},
}
AI = {
    "name": "ai-service",
    "artifact": {"type": "binary", "path": "/tmp/ai", "version": "1"},
    "command": "{release}/ai",
    "port": 8090,
    "address": "0.0.0.0",
    "mesh": {"service": "ai", "protocol": "http2", "inbound_port": 20011},
}
PLAIN = {"name": "cron-like", "artifact": {"type": "binary", "path": "/tmp/c", "version": "1"},
         "command": "{release}/c", "port": 8100}


def test_one_dataplane_per_service_one_inbound_per_instance():
    core, ai = service_dataplanes([CORE, AI, PLAIN], host="app1.example.internal")
    assert core == {
        "name": "core-api-app1.example.internal",
        "labels": {"app": "core-api"},
        "networking": {
            "inbound": [
                {"port": 20001, "servicePort": 8080, "serviceAddress": "127.0.0.1",
                 "tags": {"kuma.io/service": "core-api", "kuma.io/protocol": "http"}},
                {"port": 20002, "servicePort": 8081, "serviceAddress": "127.0.0.1",
                 "tags": {"kuma.io/service": "core-api", "kuma.io/protocol": "http"}},
            ],
            "outbound": [{"port": 33101, "tags": {"kuma.io/service": "ai-service"}}],
        },
    }
    # A service listening on every address is still reached on loopback by its own data plane.
    assert ai["networking"]["inbound"] == [{"port": 20011, "servicePort": 8090, "serviceAddress": "127.0.0.1",
                                            "tags": {"kuma.io/service": "ai", "kuma.io/protocol": "http2"}}]
    assert "outbound" not in ai["networking"]


def test_transparent_proxy_drops_outbounds():
    (core,) = service_dataplanes([CORE], host="app1", transparent_proxy=True)
    assert "outbound" not in core["networking"]


def test_host_names_become_dataplane_name_parts():
    (core,) = service_dataplanes([CORE], host="App_1")
    assert core["name"] == "core-api-app-1"
    with pytest.raises(AnsibleFilterError, match="no usable Dataplane name"):
        service_dataplanes([CORE], host="__")


def test_no_services_no_dataplanes():
    assert service_dataplanes([], host="app1") == []
    assert service_dataplanes(None, host="app1") == []


def test_invalid_definitions_are_refused():
    with pytest.raises(AnsibleFilterError, match="unknown keys mesh.inbound"):
        service_dataplanes([dict(CORE, mesh={"inbound": 1, "inbound_port": 2})], host="app1")


def test_the_output_is_accepted_by_kuma_dp_next_to_the_hosts_own_dataplanes():
    own = [{"name": "legacy-1", "networking": {"inbound": [
        {"port": 20100, "servicePort": 9000, "tags": {"kuma.io/service": "legacy"}}]}}]
    planned = kuma_dataplanes(own + service_dataplanes([CORE, AI], host="app1"), address="10.0.0.5")
    assert [item["name"] for item in planned] == ["legacy-1", "core-api-app1", "ai-service-app1"]
    assert planned[1]["services"] == ["core-api"] and planned[1]["inbound_ports"] == [20001, 20002]
    assert planned[1]["resource"]["networking"]["address"] == "10.0.0.5"
    # Distinct readiness and admin ports for every kuma-dp of the host (kuma.md §7.7).
    assert len({item["readiness_port"] for item in planned}) == 3


def test_a_clash_with_the_hosts_own_dataplanes_is_refused_by_kuma_dp():
    own = [{"name": "legacy-1", "networking": {"inbound": [
        {"port": 20001, "servicePort": 9000, "tags": {"kuma.io/service": "legacy"}}]}}]
    with pytest.raises(AnsibleFilterError, match="port 20001 .* already used by legacy-1"):
        kuma_dataplanes(own + service_dataplanes([CORE], host="app1"), address="10.0.0.5")
