# -*- coding: utf-8 -*-
from __future__ import annotations

import pytest

from ansible.errors import AnsibleFilterError
from ansible_collections.aic.gateway.plugins.filter.kuma_dataplanes import kuma_dataplanes

CORE = {"name": "core-api-1", "networking": {"inbound": [
    {"port": 20001, "servicePort": 8080, "tags": {"kuma.io/service": "core-api", "kuma.io/protocol": "http"}}]}}
KONG = {"name": "kong-1", "networking": {"gateway": {"type": "DELEGATED", "tags": {"kuma.io/service": "kong"}},
                                         "outbound": [{"port": 33033, "tags": {"kuma.io/service": "core-api"}}]}}


def test_completes_address_mesh_and_ports():
    first, second = kuma_dataplanes([CORE, KONG], address="10.0.0.5")
    assert first["resource"] == {
        "type": "Dataplane", "mesh": "default", "name": "core-api-1",
        "networking": {"address": "10.0.0.5", "admin": {"port": 9901}, "inbound": CORE["networking"]["inbound"]}}
    assert (first["readiness_port"], first["admin_port"]) == (9902, 9901)
    # kuma.md §7.7: every kuma-dp on a host needs its own readiness and admin port.
    assert (second["readiness_port"], second["admin_port"]) == (9904, 9903)
    assert first["services"] == ["core-api"] and second["services"] == ["kong"]
    assert second["gateway"] and not first["gateway"]
    assert first["inbound_ports"] == [20001] and second["inbound_ports"] == []


def test_the_input_is_not_modified():
    kuma_dataplanes([CORE], address="10.0.0.5")
    assert "address" not in CORE["networking"]


def test_delegated_gateway_with_inbound_is_refused():
    bad = {"name": "kong-1", "networking": {"gateway": {"tags": {"kuma.io/service": "kong"}},
                                            "inbound": CORE["networking"]["inbound"]}}
    with pytest.raises(AnsibleFilterError, match="delegated gateway may not have inbounds"):
        kuma_dataplanes([bad], address="10.0.0.5")


@pytest.mark.parametrize("entry, message", [
    ({"name": "Core_API", "networking": CORE["networking"]}, "RFC 1123"),
    ({"name": "x", "networking": {"address": "0.0.0.0", "inbound": CORE["networking"]["inbound"]}}, "may not be 0.0.0.0"),
    ({"name": "x", "networking": {}}, "needs networking.inbound"),
    ({"name": "x", "networking": {"inbound": [{"port": 1, "servicePort": 2, "tags": {"version": "1"}}]}}, "needs kuma.io/service"),
    ({"name": "x", "networking": {"inbound": CORE["networking"]["inbound"],
                                  "outbound": [{"port": 1, "tags": {"kuma.io/service": "a"}, "backendRef": {"name": "a"}}]}},
     "both backendRef and tags"),
    ({"name": "x", "netwerking": {}}, "unknown keys netwerking"),
    ({"name": "x", "networking": {"inbound": [{"port": 1, "servicePort": 2, "tags": {"kuma.io/service": "{{ svc }}"}}]}},
     "template variable"),
])
def test_bad_dataplanes_are_refused_with_the_reason(entry, message):
    with pytest.raises(AnsibleFilterError, match=message):
        kuma_dataplanes([entry], address="10.0.0.5")


def test_duplicate_names_and_ports_are_refused():
    with pytest.raises(AnsibleFilterError, match="declared twice"):
        kuma_dataplanes([CORE, CORE], address="10.0.0.5")
    clash = {"name": "other", "networking": {"inbound": [
        {"port": 20001, "servicePort": 9000, "tags": {"kuma.io/service": "other"}}]}}
    with pytest.raises(AnsibleFilterError, match=r"port 20001 \(inbound\) is already used by core-api-1"):
        kuma_dataplanes([CORE, clash], address="10.0.0.5")


def test_transparent_proxy_adds_redirect_ports_and_refuses_outbounds():
    (done,) = kuma_dataplanes([CORE], address="10.0.0.5", transparent_proxy=True)
    assert done["resource"]["networking"]["transparentProxying"] == {"redirectPortInbound": 15006,
                                                                     "redirectPortOutbound": 15001}
    with pytest.raises(AnsibleFilterError, match="transparent proxy"):
        kuma_dataplanes([KONG], address="10.0.0.5", transparent_proxy=True)
