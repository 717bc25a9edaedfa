# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The Kuma client and comparison engine, against the kuma-cp stand-in running in a thread
(facts: ../shared/reference/kuma.md)."""
from __future__ import annotations

import base64
import json
import os
import stat
import sys
import time

import pytest

from ansible_collections.aic.gateway.plugins.module_utils import _kuma
from ansible_collections.aic.gateway.plugins.module_utils._kuma import (
    KumaClient, KumaError, build_resource, check_scope, contains, dataplane_online, decode_jwt, describe_error,
    differences, normalize_tags, parse_duration, token_mismatch, view, write_private_file,
)

STANDIN = os.path.join(os.path.dirname(__file__), "..", "..", "..", "standins", "kuma")


def _params(url, **extra):
    params = dict(api_url=url, token=None, token_file=None, headers={}, validate_certs=True, ca_path=None,
                  client_cert=None, client_key=None, timeout=5, retries=0)
    params.update(extra)
    return params


STANDIN_MODULES = ("cp_api", "api", "resources", "tokens", "store")


def _load_cp_api():
    """The stand-in's cp_api, with its own `api`, `store`, ... (the Kong stand-in has modules of the same
    names): they are loaded fresh and the previous ones put back afterwards."""
    saved = dict((name, sys.modules.pop(name)) for name in STANDIN_MODULES if name in sys.modules)
    sys.path.insert(0, os.path.abspath(STANDIN))
    try:
        import cp_api  # pylint: disable=import-outside-toplevel,import-error
    finally:
        sys.path.pop(0)
        for name in STANDIN_MODULES:
            sys.modules.pop(name, None)
        sys.modules.update(saved)
    return cp_api


@pytest.fixture(scope="module")
def standin():
    cp_api = _load_cp_api()
    server, url, diag, _diag_url = cp_api.start_in_thread(diagnostics=False)
    yield server, url, cp_api
    server.shutdown()
    assert diag is None


@pytest.fixture()
def kuma(standin):
    server, url, cp_api = standin
    cp_api.control(url, "reset")
    return KumaClient(_params(url)), server.cp


# ---- compare engine ---------------------------------------------------------------------------------

def test_contains_ignores_server_fields_defaults_and_computed_labels():
    actual = {"type": "MeshTrace", "name": "t", "mesh": "default", "creationTime": "x", "kri": "k",
              "labels": {"kuma.io/mesh": "default", "team": "a"},
              "spec": {"default": {"backends": [{"type": "Zipkin", "zipkin": {"url": "u", "apiVersion": "httpJson"}}]}}}
    desired = {"type": "MeshTrace", "name": "t", "mesh": "default", "labels": {"team": "a"},
               "spec": {"default": {"backends": [{"type": "Zipkin", "zipkin": {"url": "u"}}]}}}
    assert contains(desired, actual)
    assert not contains(dict(desired, labels={"team": "b"}), actual)


def test_contains_lists_are_element_wise_and_same_length():
    assert contains({"a": [{"x": 1}, {"y": 2}]}, {"a": [{"x": 1, "z": 0}, {"y": 2}]})
    assert not contains({"a": [{"x": 1}]}, {"a": [{"x": 1}, {"y": 2}]})
    assert not contains({"a": [{"y": 2}, {"x": 1}]}, {"a": [{"x": 1}, {"y": 2}]})
    assert contains({"a": []}, {}) and contains({"a": None}, {})


def test_contains_does_not_confuse_bools_and_ints():
    assert not contains({"a": True}, {"a": 1})
    assert contains({"a": False}, {"a": False})


def test_differences_name_the_paths():
    assert differences({"spec": {"a": 1, "b": 2}, "labels": {"x": "1"}}, {"spec": {"a": 1, "b": 3}}) == \
        ["spec.b", "labels"]


def test_view_strips_server_fields_and_computed_labels_and_masks_secrets():
    shown = view({"type": "Secret", "mesh": "m", "name": "s", "data": "c2VjcmV0", "creationTime": "t",
                  "modificationTime": "t", "kri": "k", "labels": {"kuma.io/mesh": "m", "kuma.io/origin": "zone"}})
    assert shown == {"type": "Secret", "mesh": "m", "name": "s", "data": _kuma.MASK}
    assert view(None) == {}


def test_build_resource_nests_spec_for_new_types_only():
    assert build_resource("MeshTimeout", "t", "m", None, {"to": []}) == \
        {"type": "MeshTimeout", "name": "t", "mesh": "m", "spec": {"to": []}}
    assert build_resource("Dataplane", "d", "m", {"a": "b"}, {"networking": {}}) == \
        {"type": "Dataplane", "name": "d", "mesh": "m", "labels": {"a": "b"}, "networking": {}}
    with pytest.raises(KumaError):
        build_resource("Secret", "s", "m", None, {"name": "other"})


def test_scope_checked_before_any_request_for_known_types():
    with pytest.raises(KumaError, match="global resource type"):
        check_scope("Mesh", "default")
    with pytest.raises(KumaError, match="set the mesh"):
        check_scope("MeshTrafficPermission", None)
    check_scope("SomethingNew", None)            # unknown here: discovery decides
    with pytest.raises(KumaError, match="set the mesh"):
        check_scope("SomethingNew", None, "Mesh")


# ---- error quoting ------------------------------------------------------------------------------------

def test_error_quotes_detail_and_invalid_parameters():
    body = {"type": "/std-errors", "status": 400, "title": "Could not process a resource",
            "detail": "Resource is not valid",
            "invalid_parameters": [{"field": "labels[\"kuma.io/origin\"]", "reason": "the origin label must be set to 'zone'"}],
            "details": "Resource is not valid",
            "causes": [{"field": "labels[\"kuma.io/origin\"]", "message": "the origin label must be set to 'zone'"}]}
    msg = describe_error("PUT", "/meshes/default/meshtimeouts/t", 400, body)
    assert msg == ("Kuma API PUT /meshes/default/meshtimeouts/t answered 400: Could not process a resource: "
                   "Resource is not valid (labels[\"kuma.io/origin\"]: the origin label must be set to 'zone')")


def test_error_falls_back_to_legacy_fields():
    msg = describe_error("PUT", "/p", 400, {"details": "bad", "causes": [{"field": "f", "message": "why"}]})
    assert msg == "Kuma API PUT /p answered 400: bad (f: why)"
    assert describe_error("GET", "/p", 502, None).endswith("502: no body")


def test_server_errors_are_quoted(kuma):
    client = kuma[0]
    with pytest.raises(KumaError) as info:
        client.call("PUT", "/meshes/default/meshtimeouts/t",
                    {"type": "MeshTimeout", "name": "other", "mesh": "default", "spec": {}})
    assert info.value.status == 400
    assert "name: name from the URL has to be the same as in body" in str(info.value)
    assert client.requests == [{"method": "PUT", "path": "/meshes/default/meshtimeouts/t", "status": 400}]


# ---- client: retries, discovery, pagination, auth ------------------------------------------------------

def test_retries_connection_errors_with_backoff():
    sleeps = []
    client = KumaClient(_params("http://127.0.0.1:9", retries=2), sleep=sleeps.append)
    with pytest.raises(KumaError, match="unreachable"):
        client.get("/")
    assert sleeps == [0.5, 1.0]
    assert client.requests == [{"method": "GET", "path": "/", "status": "error"}]


def test_discovery_is_cached_and_names_known_types(kuma):
    client = kuma[0]
    assert client.resource_path("MeshTrafficPermission", "a", "default") == "/meshes/default/meshtrafficpermissions/a"
    assert client.resource_path("Mesh", "default") == "/meshes/default"
    with pytest.raises(KumaError) as info:
        client.resource_type("MeshTraficPermission")
    assert "MeshTrafficPermission" in str(info.value)
    assert [r["path"] for r in client.requests] == ["/_resources"]


def test_pagination_follows_next_until_null(kuma):
    client = kuma[0]
    for index in range(5):
        client.call("PUT", "/meshes/default/meshtimeouts/t%d" % index,
                    {"type": "MeshTimeout", "name": "t%d" % index, "mesh": "default", "spec": {}})
    items = client.list("/meshes/default/meshtimeouts", size=2)
    names = [i["name"] for i in items]
    assert len(names) == len(set(names)) == 7    # 5 + the two default MeshTimeouts of the mesh
    assert len([r for r in client.requests if r["method"] == "GET"]) == 4


def test_check_mode_records_writes_without_making_them(standin):
    _server, url, cp_api = standin
    cp_api.control(url, "reset")
    client = KumaClient(_params(url), check_mode=True)
    assert client.write("DELETE", "/meshes/default") == (None, None)
    assert client.requests == [{"method": "DELETE", "path": "/meshes/default", "status": "check_mode"}]
    assert KumaClient(_params(url)).get("/meshes/default") is not None


def test_token_file_is_sent_as_bearer(kuma, tmp_path):
    _client, cp = kuma
    path = tmp_path / "admin"
    path.write_text(cp.admin_token() + "\n")
    client = KumaClient(_params(kuma[0].base, token_file=str(path)))
    assert client.headers["Authorization"] == "Bearer " + cp.admin_token()
    assert client.call("GET", "/who-am-i")[1]["name"] == "mesh-system:admin"
    bad = KumaClient(_params(kuma[0].base, token="nope"))
    with pytest.raises(KumaError, match="401: Unauthorized: Invalid authentication data"):
        bad.call("GET", "/who-am-i")
    with pytest.raises(KumaError, match="cannot be read"):
        KumaClient(_params(kuma[0].base, token_file=str(tmp_path / "missing")))


def test_text_plain_token_answer(kuma):
    token = kuma[0].call("POST", "/tokens/dataplane", {"mesh": "default", "name": "dp-1"})[1]
    header, claims = decode_jwt(token)
    assert "kid" in header
    assert claims["Name"] == "dp-1" and claims["Mesh"] == "default" and "exp" in claims and "jti" in claims


# ---- tokens -------------------------------------------------------------------------------------------

def _jwt(claims):
    def part(obj):
        return base64.urlsafe_b64encode(json.dumps(obj).encode()).rstrip(b"=").decode()
    return "%s.%s.sig" % (part({"alg": "RS256", "kid": "1"}), part(claims))


def test_decode_jwt_without_verifying():
    assert decode_jwt(_jwt({"Name": "a"}))[1] == {"Name": "a"}
    for bad in ("", "abc", "a.b.c"):
        with pytest.raises(ValueError):
            decode_jwt(bad)


def test_token_claims_decide_reuse():
    now = 1000000
    claims = {"Name": "dp", "Mesh": "m", "Tags": {"kuma.io/service": ["b", "a"]}, "Type": "dataplane",
              "iat": now - 100, "exp": now + 3600}
    tags = {"kuma.io/service": ["a", "b"]}
    assert token_mismatch(claims, "m", "dp", tags, "dataplane", 600, now) is None
    assert "mesh" in token_mismatch(claims, "other", "dp", tags, "dataplane", 600, now)
    assert "name" in token_mismatch(claims, "m", "dp2", tags, "dataplane", 600, now)
    assert "tags" in token_mismatch(claims, "m", "dp", {"kuma.io/service": "a"}, "dataplane", 600, now)
    assert "type" in token_mismatch(claims, "m", "dp", tags, "ingress", 600, now)
    assert "expires within" in token_mismatch(claims, "m", "dp", tags, "dataplane", 7200, now)
    assert "expired" in token_mismatch(dict(claims, exp=now - 1), "m", "dp", tags, "dataplane", 0, now)
    no_type = dict(claims)
    del no_type["Type"]
    assert token_mismatch(no_type, "m", "dp", tags, "dataplane", 600, now) is None


def test_normalize_tags_accepts_strings():
    assert normalize_tags({"kuma.io/service": "web", "v": ["2", "1"]}) == {"kuma.io/service": ["web"], "v": ["1", "2"]}
    assert normalize_tags(None) == {}


def test_parse_duration():
    assert parse_duration("720h") == 720 * 3600
    assert parse_duration("1h30m") == 5400
    assert parse_duration("90") == 90
    assert parse_duration(45) == 45
    with pytest.raises(ValueError):
        parse_duration("soon")


def test_write_private_file_is_0600_and_atomic(tmp_path):
    path = tmp_path / "token"
    path.write_text("old")
    os.chmod(str(path), 0o644)
    write_private_file(str(path), "new\n")
    assert path.read_text() == "new\n"
    assert stat.S_IMODE(os.stat(str(path)).st_mode) == 0o600
    assert os.listdir(str(tmp_path)) == ["token"]


# ---- dataplane online -----------------------------------------------------------------------------------

def test_online_from_the_last_subscription():
    assert not dataplane_online({})
    assert dataplane_online({"dataplaneInsight": {"subscriptions": [
        {"connectTime": "a", "disconnectTime": "b"}, {"connectTime": "c"}]}})
    assert not dataplane_online({"dataplaneInsight": {"subscriptions": [
        {"connectTime": "c"}, {"connectTime": "a", "disconnectTime": "b"}]}})


def test_online_through_the_standin_overview(kuma, standin):
    client = kuma[0]
    url = standin[1]
    client.call("PUT", "/meshes/default/dataplanes/dp-1", {
        "type": "Dataplane", "mesh": "default", "name": "dp-1",
        "networking": {"address": "10.0.0.1", "inbound": [{"port": 1, "tags": {"kuma.io/service": "s"}}]}})
    overview = client.list("/meshes/default/dataplanes/_overview")
    assert [dataplane_online(o) for o in overview] == [False]
    standin[2].control(url, "connection", {"mesh": "default", "name": "dp-1", "connected": True})
    assert [dataplane_online(o) for o in client.list("/meshes/default/dataplanes/_overview")] == [True]
    assert time.time() > 0
