# -*- coding: utf-8 -*-
"""The export side: stable rendering (module_utils/_export.py), kong_export's redaction, the Kong dump's order
independent of ids, and kuma_export's cleaning and layout."""
from __future__ import annotations

import pytest

from ansible_collections.aic.gateway.plugins.module_utils._export import parse, render
from ansible_collections.aic.gateway.plugins.module_utils._kong_state import dump
from ansible_collections.aic.gateway.plugins.module_utils._kuma import KumaError
from ansible_collections.aic.gateway.plugins.modules.kong_export import HEADER, redact
from ansible_collections.aic.gateway.plugins.modules.kuma_export import clean, exported_types, relative_path

PEM = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"


def test_render_is_sorted_indented_and_keeps_pem_as_a_literal_block():
    text = render({"b": [{"z": 1, "a": PEM}], "_format_version": "3.0"}, header=HEADER)
    assert text.startswith(HEADER)
    assert text.index("_format_version") < text.index("b:")
    assert "  - a: |\n      -----BEGIN CERTIFICATE-----\n" in text
    assert parse(text) == {"b": [{"z": 1, "a": PEM}], "_format_version": "3.0"}
    assert render({"a": 1, "b": 2}) == render({"b": 2, "a": 1})


def test_render_json_and_parse_of_garbage():
    assert render({"b": 1, "a": [1]}, "json") == '{\n  "a": [\n    1\n  ],\n  "b": 1\n}\n'
    assert parse("a: [", "yaml") is None
    assert parse("{", "json") is None


def test_redact_masks_credentials_keys_and_secret_plugin_settings():
    config = {
        "_format_version": "3.0",
        "consumers": [{"username": "a", "keyauth_credentials": [{"key": "k1"}],
                       "jwt_secrets": [{"key": "iss", "secret": "s1", "algorithm": "HS256"}],
                       "acls": [{"group": "g"}],
                       "plugins": [{"name": "rate-limiting", "config": {"redis": {"password": "p", "host": "h"},
                                                                        "minute": 5}}]}],
        "services": [{"name": "s", "plugins": [{"name": "openid-connect",
                                                "config": {"client_secret": ["c"], "session_secret": None}}]}],
        "certificates": [{"cert": PEM, "key": "KEY", "snis": [{"name": "x"}]}],
    }
    out, count = redact(config)
    consumer = out["consumers"][0]
    assert consumer["keyauth_credentials"][0]["key"] == "********"
    assert consumer["jwt_secrets"][0] == {"key": "iss", "secret": "********", "algorithm": "HS256"}
    assert consumer["acls"] == [{"group": "g"}]
    assert consumer["plugins"][0]["config"] == {"redis": {"password": "********", "host": "h"}, "minute": 5}
    assert out["services"][0]["plugins"][0]["config"] == {"client_secret": "********", "session_secret": None}
    assert out["certificates"][0]["key"] == "********" and out["certificates"][0]["cert"] == PEM
    assert count == 5
    assert config["consumers"][0]["keyauth_credentials"][0]["key"] == "k1"   # input untouched


def _state(ids):
    """The same configuration with other ids: two routes without names and two scoped plugins of one name."""
    svc, r1, r2, c1, c2, p1, p2 = ids
    return {
        "services": [{"id": svc, "name": "s", "host": "h", "port": 80, "protocol": "http"}],
        "routes": [{"id": r1, "paths": ["/b"], "service": {"id": svc}}, {"id": r2, "paths": ["/a"], "service": {"id": svc}}],
        "consumers": [{"id": c1, "username": "u1"}, {"id": c2, "username": "u2"}],
        "plugins": [{"id": p1, "name": "rate-limiting", "consumer": {"id": c2}, "service": {"id": svc}, "config": {"minute": 2}},
                    {"id": p2, "name": "rate-limiting", "consumer": {"id": c1}, "service": {"id": svc}, "config": {"minute": 1}}],
    }


def test_dump_order_does_not_depend_on_ids():
    first = dump(_state(["1", "2", "3", "4", "5", "6", "7"]))
    second = dump(_state(["9", "8", "7", "6", "5", "4", "3"]))
    assert first == second
    assert [r["paths"] for r in first["services"][0]["routes"]] == [["/a"], ["/b"]]
    assert [p["consumer"] for p in first["plugins"]] == ["u1", "u2"]


def test_kuma_clean_drops_server_fields_and_computed_labels():
    resource = {"type": "MeshTrafficPermission", "mesh": "default", "name": "x", "creationTime": "t",
                "modificationTime": "t", "kri": "kri_mtp_default___x_",
                "labels": {"kuma.io/mesh": "default", "kuma.io/origin": "zone", "team": "a"}, "spec": {"from": []}}
    assert clean(resource) == {"type": "MeshTrafficPermission", "mesh": "default", "name": "x",
                               "labels": {"team": "a"}, "spec": {"from": []}}
    assert "labels" not in clean({"type": "Mesh", "name": "m", "labels": {"kuma.io/env": "universal"}})


def test_kuma_layout():
    assert relative_path({"type": "Mesh", "name": "payments"}) == "payments/Mesh/payments.yaml"
    assert relative_path({"type": "MeshRetry", "mesh": "default", "name": "r"}) == "default/MeshRetry/r.yaml"
    assert relative_path({"type": "HostnameGenerator", "name": "h"}) == "_global/HostnameGenerator/h.yaml"


TYPES = {
    "Mesh": {"scope": "Global"}, "Dataplane": {"scope": "Mesh"}, "Secret": {"scope": "Mesh"},
    "GlobalSecret": {"scope": "Global"}, "Zone": {"scope": "Global"}, "DataplaneInsight": {"scope": "Mesh"},
    "MeshTrafficPermission": {"scope": "Mesh"}, "HostnameGenerator": {"scope": "Global"},
    "MeshGateway": {"scope": "Mesh", "readOnly": True},
}


def _params(**kwargs):
    params = {"types": None, "include_secrets": False, "dataplanes": True}
    params.update(kwargs)
    return params


def test_kuma_types_exported_by_default_and_on_request():
    assert exported_types(TYPES, _params()) == (["Dataplane", "MeshTrafficPermission"], ["HostnameGenerator"])
    assert exported_types(TYPES, _params(dataplanes=False, include_secrets=True)) == (
        ["MeshTrafficPermission", "Secret"], ["GlobalSecret", "HostnameGenerator"])
    assert exported_types(TYPES, _params(types=["MeshTrafficPermission"], dataplanes=False)) == (
        ["MeshTrafficPermission"], [])
    with pytest.raises(KumaError, match="MeshNope"):
        exported_types(TYPES, _params(types=["MeshNope"]))
