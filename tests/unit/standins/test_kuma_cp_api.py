"""Fidelity tests for the kuma-cp HTTP API stand-in (tests/standins/kuma).

Every test docstring cites the fact it checks in /work/shared/reference/kuma.md
(section + quote); stand-in choices are marked as such.
"""

import base64
import json
import os
import stat
import sys
import urllib.error
import urllib.request

import pytest

STANDIN = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", "standins", "kuma"))
# The Kong stand-in tests of the same pytest run import modules with the same top-level names (api, store,
# ...) from tests/standins/kong: import the Kuma ones with Kuma's directory first and put the others back.
SHARED_NAMES = ("api", "cp_api", "resources", "store", "tokens")
SAVED = {name: sys.modules.pop(name) for name in SHARED_NAMES if name in sys.modules}
sys.path.insert(0, STANDIN)
try:
    import api as kuma_api  # noqa: E402  pylint: disable=wrong-import-position,import-error
    import cp_api  # noqa: E402  pylint: disable=wrong-import-position,import-error
finally:
    sys.path[:] = [entry for entry in sys.path if entry != STANDIN]
    for shared in SHARED_NAMES:
        sys.modules.pop(shared, None)
    sys.modules.update(SAVED)


@pytest.fixture(scope="module")
def servers():
    api_server, url, diag_server, diag_url = cp_api.start_in_thread()
    yield url, diag_url, api_server.cp
    for server in (api_server, diag_server):
        server.shutdown()
        server.server_close()


@pytest.fixture()
def kuma(servers):
    """Client bound to a freshly reset stand-in."""
    url = servers[0]
    cp_api.control(url, "reset")
    return Client(url)


class Client:
    def __init__(self, base, headers=None):
        self.base = base
        self.headers = headers or {}

    def call(self, method, path, body=None, headers=None):
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.base + path, data=data, method=method)
        for key, value in dict(self.headers, **(headers or {})).items():
            req.add_header(key, value)
        if data is not None:
            req.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(req) as resp:
                status, text, ctype = resp.status, resp.read(), resp.headers.get("Content-Type", "")
        except urllib.error.HTTPError as exc:
            status, text, ctype = exc.code, exc.read(), exc.headers.get("Content-Type", "")
        if ctype.startswith("application/json"):
            return status, json.loads(text)
        return status, text.decode()

    def ok(self, method, path, body=None, status=200):
        code, out = self.call(method, path, body)
        assert code == status, (code, out)
        return out


def mesh(name, **spec):
    return dict({"type": "Mesh", "name": name}, **spec)


def builtin(name):
    return {"name": name, "type": "builtin"}


def dataplane(name, service="backend", mesh_name="default"):
    return {"type": "Dataplane", "mesh": mesh_name, "name": name,
            "networking": {"address": "10.0.0.2",
                           "inbound": [{"port": 8000, "servicePort": 80, "tags": {"kuma.io/service": service}}]}}


def mtp(name, mesh_name="default"):
    return {"type": "MeshTrafficPermission", "mesh": mesh_name, "name": name,
            "spec": {"from": [{"targetRef": {"kind": "Mesh"}, "default": {"action": "Allow"}}]}}


# ------------------------------------------------------------------ process, index, discovery
def test_cli_prints_real_ports_and_writes_admin_token(tmp_path):
    """Brief: one documented command; `--admin-token-file` writes the token kuma.md §2 says to read from
    GlobalSecret `admin-user-token` (stand-in convenience), mode 0600."""
    token_file = tmp_path / "admin-token"
    proc, url, diag = cp_api.spawn(extra_args=["--admin-token-file", str(token_file)])
    try:
        assert url.startswith("http://127.0.0.1:") and diag.startswith("http://127.0.0.1:")
        assert stat.S_IMODE(os.stat(token_file).st_mode) == 0o600
        secret = Client(url).ok("GET", "/global-secrets/admin-user-token")
        assert base64.b64decode(secret["data"]).decode() == token_file.read_text().strip()
    finally:
        proc.terminate()
        proc.wait(5)


def test_index(kuma):
    """kuma.md §4 "`GET /` | Index, no auth: {"hostname","product":"Kuma","version":"2.14.3","instanceId",
    "clusterId","gui":"/gui"}"."""
    out = kuma.ok("GET", "/")
    assert out["product"] == "Kuma" and out["version"] == "2.14.3" and out["gui"] == "/gui"
    assert {"hostname", "instanceId", "clusterId"} <= set(out)


def test_resource_discovery(kuma):
    """kuma.md §4 "`GET /_resources` | List of resource types with `name`, `scope` (Global/Mesh), `readOnly`,
    `path`, ..., `policy{…}`"."""
    found = {r["name"]: r for r in kuma.ok("GET", "/_resources")["resources"]}
    assert found["Mesh"]["scope"] == "Global" and found["Mesh"]["path"] == "meshes"
    assert found["GlobalSecret"]["path"] == "global-secrets"
    assert found["MeshTrafficPermission"]["scope"] == "Mesh"
    assert found["MeshTrafficPermission"]["path"] == "meshtrafficpermissions"
    assert found["MeshTrafficPermission"]["policy"]["isTargetRef"] is True
    assert found["Dataplane"]["path"] == "dataplanes" and "policy" not in found["Dataplane"]
    assert found["TrafficPermission"]["path"] == "traffic-permissions"


# ------------------------------------------------------------------ PUT / GET / DELETE
def test_put_creates_201_then_updates_200_keeping_server_fields(kuma):
    """kuma.md §4 "PUT = upsert. 201 when created, 200 when updated"; "2.10+: the body is `{}`";
    server-added `creationTime`, `modificationTime`, computed labels ("`kuma.io/mesh`, `kuma.io/origin: zone`,
    `kuma.io/zone: <zone>` and `kuma.io/env: universal`") survive an update."""
    assert kuma.ok("PUT", "/meshes/default/meshtrafficpermissions/allow-all", mtp("allow-all"), 201) == {}
    first = kuma.ok("GET", "/meshes/default/meshtrafficpermissions/allow-all")
    assert first["spec"]["from"][0]["default"]["action"] == "Allow"
    assert first["labels"] == {"kuma.io/mesh": "default", "kuma.io/origin": "zone",
                               "kuma.io/zone": "default", "kuma.io/env": "universal"}
    assert first["kri"] == "kri_mtp_default___allow-all_"
    body = mtp("allow-all")
    body["labels"] = {"team": "a"}
    body["spec"]["from"][0]["default"]["action"] = "Deny"
    assert kuma.ok("PUT", "/meshes/default/meshtrafficpermissions/allow-all", body, 200) == {}
    second = kuma.ok("GET", "/meshes/default/meshtrafficpermissions/allow-all")
    assert second["creationTime"] == first["creationTime"]
    assert second["modificationTime"] >= first["modificationTime"]
    assert second["labels"]["team"] == "a" and second["labels"]["kuma.io/mesh"] == "default"
    assert second["spec"]["from"][0]["default"]["action"] == "Deny"


def test_legacy_shape_has_spec_at_top_level(kuma):
    """kuma.md §4 "Legacy resources (Mesh, Dataplane, Secret, GlobalSecret, …) put the spec fields at top level";
    "plus `kuma.io/proxy-type` on Dataplanes"."""
    kuma.ok("PUT", "/meshes/default/dataplanes/dp-1", dataplane("dp-1"), 201)
    out = kuma.ok("GET", "/meshes/default/dataplanes/dp-1")
    assert out["networking"]["address"] == "10.0.0.2" and "spec" not in out
    assert out["labels"]["kuma.io/proxy-type"] == "sidecar"
    assert out["kri"].startswith("kri_dp_")


def test_global_secret_roundtrip(kuma):
    """kuma.md §4 "A secret looks like {"type":"GlobalSecret","name":"gs-1","creationTime":…,"data":"<base64>"}"."""
    data = base64.b64encode(b"s3cret").decode()
    kuma.ok("PUT", "/global-secrets/gs-1", {"type": "GlobalSecret", "name": "gs-1", "data": data}, 201)
    out = kuma.ok("GET", "/global-secrets/gs-1")
    assert out["data"] == data and "mesh" not in out and "labels" not in out


def test_delete_then_404(kuma):
    """kuma.md §4 "DELETE: 200 with body `{}` (2.10+); 404 if absent"; "GET of a missing resource gives 404"."""
    kuma.ok("PUT", "/meshes/default/meshtrafficpermissions/x", mtp("x"), 201)
    assert kuma.ok("DELETE", "/meshes/default/meshtrafficpermissions/x") == {}
    assert kuma.call("DELETE", "/meshes/default/meshtrafficpermissions/x")[0] == 404
    assert kuma.call("GET", "/meshes/default/meshtrafficpermissions/x")[0] == 404


def test_404_body(kuma):
    """kuma.md §4 "A 404 looks like {"type":"/std-errors","status":404,"title":"Could not retrieve a resource",
    "detail":"Not found","details":"Not found"}"."""
    code, out = kuma.call("GET", "/meshes/nope")
    assert code == 404
    assert out == {"type": "/std-errors", "status": 404, "title": "Could not retrieve a resource",
                   "detail": "Not found", "details": "Not found"}


def test_url_body_mismatch_400(kuma):
    """kuma.md §4 "Otherwise 400 with violations "name from the URL has to be the same as in body", "type from
    the URL…", "mesh from the URL…""; error body with `invalid_parameters` and legacy `causes`."""
    body = mtp("other", mesh_name="other-mesh")
    body["type"] = "MeshTimeout"
    code, out = kuma.call("PUT", "/meshes/default/meshtrafficpermissions/mine", body)
    assert code == 400
    assert out["title"] == "Could not process a resource" and out["detail"] == "Resource is not valid"
    assert out["details"] == "Resource is not valid"
    reasons = {p["field"]: p["reason"] for p in out["invalid_parameters"]}
    assert reasons["name"] == "name from the URL has to be the same as in body"
    assert reasons["type"].startswith("type from the URL")
    assert reasons["mesh"].startswith("mesh from the URL")
    assert out["causes"] == [{"field": p["field"], "message": p["reason"]} for p in out["invalid_parameters"]]


def test_unknown_mesh_400(kuma):
    """kuma.md §4 "An unknown mesh gives 400 "Mesh is not found" with invalid parameter `mesh`"."""
    code, out = kuma.call("PUT", "/meshes/ghost/meshtrafficpermissions/a", mtp("a", "ghost"))
    assert code == 400
    assert {"field": "mesh", "reason": "Mesh is not found"} in out["invalid_parameters"]


def test_validation_error_lists_fields(kuma):
    """kuma.md §4 "Error body" (400, `invalid_parameters[].{field,reason}`); §3 Dataplane rules "Delegated gateway:
    no `inbound`"; §5 "Since 2.10, names must be RFC-1123 subdomains".  Reason texts are stand-in wording."""
    body = dataplane("Bad_Name")
    body["networking"]["gateway"] = {"type": "DELEGATED", "tags": {"kuma.io/service": "kong"}}
    code, out = kuma.call("PUT", "/meshes/default/dataplanes/Bad_Name", body)
    assert code == 400
    fields = [p["field"] for p in out["invalid_parameters"]]
    assert "name" in fields and "networking.inbound" in fields


def test_mesh_name_over_63_rejected(kuma):
    """kuma.md §5 "Mesh names over 63 characters are rejected"."""
    name = "m" * 64
    assert kuma.call("PUT", "/meshes/" + name, mesh(name))[0] == 400


def test_schema_defaults_added(kuma):
    """kuma.md §4 "GET therefore returns fields you did not send (e.g. MeshTrace zipkin `apiVersion`,
    `traceId128bit`, `sharedSpanContext`)"; "MeshTrace `apiVersion: httpJson`, `sharedSpanContext: true`"."""
    body = {"type": "MeshTrace", "mesh": "default", "name": "default",
            "spec": {"default": {"backends": [{"type": "Zipkin", "zipkin": {"url": "http://z:9411/api/v2/spans"}}]}}}
    kuma.ok("PUT", "/meshes/default/meshtraces/default", body, 201)
    zipkin = kuma.ok("GET", "/meshes/default/meshtraces/default")["spec"]["default"]["backends"][0]["zipkin"]
    assert zipkin["apiVersion"] == "httpJson" and zipkin["sharedSpanContext"] is True and "traceId128bit" in zipkin


def test_mesh_metrics_backend_defaults(kuma):
    """kuma.md §4 "Mesh `metrics` prometheus backends get defaults: `port 5670`, `path /metrics`,
    `tags kuma.io/service: dataplane-metrics`"."""
    body = mesh("obs", metrics={"enabledBackend": "p", "backends": [{"name": "p", "type": "prometheus"}]})
    kuma.ok("PUT", "/meshes/obs", body, 201)
    conf = kuma.ok("GET", "/meshes/obs")["metrics"]["backends"][0]["conf"]
    assert conf["port"] == 5670 and conf["path"] == "/metrics"
    assert conf["tags"] == {"kuma.io/service": "dataplane-metrics"}


# ------------------------------------------------------------------ lists
def test_pagination_follows_next(kuma):
    """kuma.md §4 "Response: {"total":N,"items":[…],"next":"http(s)://host/path?offset=…&size=…"|null}.
    Follow `next` until it is null"."""
    for index in range(5):
        kuma.ok("PUT", "/meshes/default/meshtrafficpermissions/p%d" % index, mtp("p%d" % index), 201)
    page = kuma.ok("GET", "/meshes/default/meshtrafficpermissions?size=2")
    names, pages = [], 0
    while True:
        pages += 1
        assert page["total"] == 5
        names += [item["name"] for item in page["items"]]
        if page["next"] is None:
            break
        assert "offset=" in page["next"] and "size=2" in page["next"]
        with urllib.request.urlopen(page["next"]) as resp:
            page = json.load(resp)
    assert pages == 3 and names == ["p0", "p1", "p2", "p3", "p4"]


@pytest.mark.parametrize("size", ["0", "-1", "abc"])
def test_invalid_page_size(kuma, size):
    """kuma.md §4 "a value ≤0 or non-numeric gives 400 "Invalid page size""."""
    code, out = kuma.call("GET", "/meshes?size=" + size)
    assert code == 400 and out["detail"] == "Invalid page size"


def test_filters(kuma):
    """kuma.md §4 "Filters: `?name=<substring>`; `?filter[labels.<key>]=<value>`: exact match only ... Anything
    else gives 400 "filters are only supported on labels""."""
    kuma.ok("PUT", "/meshes/default/dataplanes/web-1", dataplane("web-1", "web"), 201)
    body = dataplane("api-1", "api")
    body["labels"] = {"team": "x"}
    kuma.ok("PUT", "/meshes/default/dataplanes/api-1", body, 201)
    assert [i["name"] for i in kuma.ok("GET", "/meshes/default/dataplanes?name=web")["items"]] == ["web-1"]
    labelled = kuma.ok("GET", "/meshes/default/dataplanes?filter%5Blabels.team%5D=x")["items"]
    assert [i["name"] for i in labelled] == ["api-1"]
    tagged = kuma.ok("GET", "/meshes/default/dataplanes?tag=kuma.io/service:web")["items"]
    assert [i["name"] for i in tagged] == ["web-1"]
    code, out = kuma.call("GET", "/meshes/default/dataplanes?filter%5Bspec.x%5D=1")
    assert code == 400 and out["detail"] == "filters are only supported on labels"


def test_cross_mesh_list(kuma):
    """kuma.md §4 "`GET /{plural}` | list across all meshes"."""
    kuma.ok("PUT", "/meshes/second", mesh("second"), 201)
    kuma.ok("PUT", "/meshes/default/meshtrafficpermissions/a", mtp("a"), 201)
    kuma.ok("PUT", "/meshes/second/meshtrafficpermissions/b", mtp("b", "second"), 201)
    items = kuma.ok("GET", "/meshtrafficpermissions")["items"]
    assert [(i["mesh"], i["name"]) for i in items] == [("default", "a"), ("second", "b")]


# ------------------------------------------------------------------ Mesh
def test_default_mesh_and_its_defaults(kuma):
    """kuma.md §2 "the `default` mesh is created at boot"; "Defaults created with each Mesh": Secret
    `dataplane-token-signing-key-<mesh>-1`, MeshTimeouts `mesh-timeout-all-<mesh>` and
    `mesh-gateways-timeout-all-<mesh>`, MeshCircuitBreaker `mesh-circuit-breaker-all-<mesh>`, MeshRetry
    `mesh-retry-all-<mesh>`; "**No** TrafficPermission or MeshTrafficPermission"."""
    kuma.ok("GET", "/meshes/default")
    kuma.ok("PUT", "/meshes/shop", mesh("shop"), 201)
    kuma.ok("GET", "/meshes/shop/secrets/dataplane-token-signing-key-shop-1")
    timeouts = {i["name"] for i in kuma.ok("GET", "/meshes/shop/meshtimeouts")["items"]}
    assert timeouts == {"mesh-timeout-all-shop", "mesh-gateways-timeout-all-shop"}
    kuma.ok("GET", "/meshes/shop/meshcircuitbreakers/mesh-circuit-breaker-all-shop")
    kuma.ok("GET", "/meshes/shop/meshretries/mesh-retry-all-shop")
    assert kuma.ok("GET", "/meshes/shop/meshtrafficpermissions")["total"] == 0
    assert kuma.ok("GET", "/meshes/shop/traffic-permissions")["total"] == 0


def test_skip_creating_initial_policies(kuma):
    """kuma.md §2 "Skip creation with Mesh `skipCreatingInitialPolicies: ['*']`"."""
    kuma.ok("PUT", "/meshes/bare", mesh("bare", skipCreatingInitialPolicies=["*"]), 201)
    assert kuma.ok("GET", "/meshes/bare/meshtimeouts")["total"] == 0
    assert kuma.ok("GET", "/meshes/bare/meshretries")["total"] == 0


def test_mtls_ca_change_refused_while_enabled(kuma):
    """kuma.md §5 "Changing `mtls.enabledBackend` while mTLS is on is rejected: "Changing CA when mTLS is
    enabled is forbidden. Disable mTLS first and then change the CA"".  Disabling first, then switching, works."""
    on_1 = mesh("sec", mtls={"enabledBackend": "ca-1", "backends": [builtin("ca-1"), builtin("ca-2")]})
    kuma.ok("PUT", "/meshes/sec", on_1, 201)
    on_2 = mesh("sec", mtls={"enabledBackend": "ca-2", "backends": [builtin("ca-1"), builtin("ca-2")]})
    code, out = kuma.call("PUT", "/meshes/sec", on_2)
    assert code == 400
    assert ("Changing CA when mTLS is enabled is forbidden. Disable mTLS first and then change the CA"
            in [p["reason"] for p in out["invalid_parameters"]])
    assert kuma.ok("GET", "/meshes/sec")["mtls"]["enabledBackend"] == "ca-1"
    kuma.ok("PUT", "/meshes/sec", mesh("sec", mtls={"backends": [builtin("ca-1"), builtin("ca-2")]}), 200)
    kuma.ok("PUT", "/meshes/sec", on_2, 200)


def test_mesh_delete_refused_with_dataplanes(kuma):
    """kuma.md §4 "Deleting a Mesh that still has Dataplanes gives 400 "unable to delete mesh, there are still
    some dataplanes attached""; "Mesh-scoped secrets are removed by owner reference"."""
    kuma.ok("PUT", "/meshes/tmp", mesh("tmp"), 201)
    kuma.ok("PUT", "/meshes/tmp/dataplanes/dp", dataplane("dp", mesh_name="tmp"), 201)
    code, out = kuma.call("DELETE", "/meshes/tmp")
    assert code == 400
    assert "unable to delete mesh, there are still some dataplanes attached" in json.dumps(out)
    kuma.ok("DELETE", "/meshes/tmp/dataplanes/dp")
    kuma.ok("DELETE", "/meshes/tmp")
    assert kuma.call("GET", "/meshes/tmp/secrets/dataplane-token-signing-key-tmp-1")[0] == 404


# ------------------------------------------------------------------ tokens
def dp_token(kuma, **body):
    code, token = kuma.call("POST", "/tokens/dataplane", body)
    assert code == 200, token
    return token


def test_dataplane_token_issue_and_verify(kuma, servers):
    """kuma.md §2 "Dataplane token endpoint": `POST /tokens/dataplane`, "Response: `text/plain` raw JWT";
    §3 "Token binding: if the token has tags, a DP must carry **all** of its `kuma.io/service` values in that
    list; with `name`, the DP name must match".  Verification is the stand-in's `/__standin/verify-dataplane-token`."""
    token = dp_token(kuma, name="dp-1", mesh="default", tags={"kuma.io/service": ["backend"]}, validFor="720h")
    assert token.count(".") == 2 and not token.startswith("{")
    url = servers[0]
    code, out = cp_api.control(url, "verify-dataplane-token", {"token": token, "dataplane": dataplane("dp-1")})
    assert code == 200 and out["valid"] and out["claims"]["Mesh"] == "default"
    code, out = cp_api.control(url, "verify-dataplane-token", {"token": token, "dataplane": dataplane("dp-2")})
    assert code == 403 and not out["valid"]
    code, out = cp_api.control(url, "verify-dataplane-token",
                               {"token": token, "dataplane": dataplane("dp-1", service="other")})
    assert code == 403
    forged = token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB")
    code, out = cp_api.control(url, "verify-dataplane-token", {"token": forged, "dataplane": dataplane("dp-1")})
    assert code == 403 and "signature is invalid" in out["reason"]


def test_dataplane_token_needs_mesh(kuma):
    """kuma.md §2 "`mesh` — required, else 400 `mesh: cannot be empty`"."""
    code, out = kuma.call("POST", "/tokens/dataplane", {"name": "dp-1"})
    assert code == 400
    assert {"field": "mesh", "reason": "cannot be empty"} in out["invalid_parameters"]


def test_dataplane_token_dies_with_signing_key_and_revocation(kuma, servers):
    """kuma.md §2 "Rotation: add a key with a higher serial, reissue tokens, delete the old key"; "Revocation:
    Secret `dataplane-token-revocations-<mesh>` holding comma-separated JTIs, base64-encoded"."""
    url = servers[0]
    cp = servers[2]
    token = dp_token(kuma, mesh="default")
    jti = kuma_api.T.decode(token)[1]["jti"]
    check = {"token": token, "dataplane": dataplane("any")}
    assert cp_api.control(url, "verify-dataplane-token", check)[0] == 200
    revocations = {"type": "Secret", "mesh": "default", "name": "dataplane-token-revocations-default",
                   "data": base64.b64encode(jti.encode()).decode()}
    kuma.ok("PUT", "/meshes/default/secrets/dataplane-token-revocations-default", revocations, 201)
    assert cp_api.control(url, "verify-dataplane-token", check)[0] == 403
    kuma.ok("DELETE", "/meshes/default/secrets/dataplane-token-revocations-default")
    new_key = {"type": "Secret", "mesh": "default", "name": "dataplane-token-signing-key-default-2",
               "data": kuma_api.T.new_signing_key()}
    kuma.ok("PUT", "/meshes/default/secrets/dataplane-token-signing-key-default-2", new_key, 201)
    token_2 = dp_token(kuma, mesh="default")
    assert kuma_api.T.decode(token_2)[0]["kid"] == "2"
    kuma.ok("DELETE", "/meshes/default/secrets/dataplane-token-signing-key-default-1")
    assert cp_api.control(url, "verify-dataplane-token", check)[0] == 403
    assert cp.verify_dataplane_token(token_2, dataplane("any"))["Mesh"] == "default"


# ------------------------------------------------------------------ auth
def not_direct_loopback(kuma):
    """A client that is not direct loopback: kuma.md §2 "only **direct** loopback counts: loopback RemoteAddr
    and Host, no proxy headers"."""
    return Client(kuma.base, {"X-Forwarded-For": "203.0.113.9"})


def test_localhost_is_admin(kuma):
    """kuma.md §2 "Localhost is admin (default true): requests from loopback count as admin"; `GET /who-am-i`."""
    assert kuma.ok("GET", "/who-am-i")["groups"] == ["mesh-system:admin"]
    kuma.ok("GET", "/global-secrets/admin-user-token")


def test_non_loopback_without_token_refused_admin_only(kuma):
    """kuma.md §2 "Only `Secret` and `GlobalSecret` (`ws.admin_only`), token generation ... are restricted";
    §4 "403 | "Access Denied""."""
    remote = not_direct_loopback(kuma)
    code, out = remote.call("GET", "/global-secrets/admin-user-token")
    assert code == 403 and out["title"] == "Access Denied"
    assert remote.call("POST", "/tokens/dataplane", {"mesh": "default"})[0] == 403
    assert remote.call("GET", "/meshes/default/secrets")[0] == 403
    other_host = Client(kuma.base, {"Host": "cp.example.com:5681"})
    assert other_host.call("GET", "/global-secrets/admin-user-token")[0] == 403
    evil_origin = Client(kuma.base, {"Origin": "http://evil.example.com"})
    assert evil_origin.call("GET", "/global-secrets/admin-user-token")[0] == 403


def test_mesh_crud_not_access_controlled(kuma):
    """kuma.md §2 "**Mesh, Dataplane and policy CRUD is NOT access-controlled.** Any client that can reach 5681
    can create, modify or delete them, even unauthenticated"."""
    remote = not_direct_loopback(kuma)
    assert remote.call("PUT", "/meshes/open", mesh("open"))[0] == 201
    assert remote.call("GET", "/meshes/open")[0] == 200


def test_admin_token_grants_admin_and_bad_token_401(kuma, servers):
    """kuma.md §2 "Use it as the header `Authorization: Bearer <token>`"; "An invalid token gives 401
    "Invalid authentication data""."""
    token = servers[2].admin_token()
    remote = Client(kuma.base, {"X-Forwarded-For": "203.0.113.9", "Authorization": "Bearer " + token})
    assert remote.ok("GET", "/who-am-i") == {"name": "mesh-system:admin", "groups": ["mesh-system:admin"]}
    assert remote.call("GET", "/global-secrets/admin-user-token")[0] == 200
    bad = Client(kuma.base, {"Authorization": "Bearer " + token[:-3] + "xyz"})
    code, out = bad.call("GET", "/meshes")
    assert code == 401 and out["detail"] == "Invalid authentication data"


def test_localhost_is_admin_false(tmp_path):
    """kuma.md §2 "Afterwards you may set `KUMA_API_SERVER_AUTHN_LOCALHOST_IS_ADMIN=false`": loopback without a
    token is then not admin; the token still is."""
    token_file = tmp_path / "t"
    env = dict(os.environ, KUMA_API_SERVER_AUTHN_LOCALHOST_IS_ADMIN="false")
    proc, url, _diag = cp_api.spawn(extra_args=["--admin-token-file", str(token_file)], env=env)
    try:
        assert Client(url).call("GET", "/global-secrets/admin-user-token")[0] == 403
        admin = Client(url, {"Authorization": "Bearer " + token_file.read_text().strip()})
        assert admin.call("GET", "/global-secrets/admin-user-token")[0] == 200
    finally:
        proc.terminate()
        proc.wait(5)


def test_user_token_revocation(kuma):
    """kuma.md §2 "User tokens: `POST /tokens/user` with body {"name","groups":[],"validFor":"24h"}. Revoke by
    listing JTIs (comma-separated, base64-encoded) in GlobalSecret `user-token-revocations`"."""
    code, token = kuma.call("POST", "/tokens/user", {"name": "ops", "groups": ["mesh-system:admin"], "validFor": "24h"})
    assert code == 200
    user = Client(kuma.base, {"Authorization": "Bearer " + token})
    assert user.ok("GET", "/who-am-i")["name"] == "ops"
    jti = kuma_api.T.decode(token)[1]["jti"]
    kuma.ok("PUT", "/global-secrets/user-token-revocations",
            {"type": "GlobalSecret", "name": "user-token-revocations", "data": base64.b64encode(jti.encode()).decode()}, 201)
    assert user.call("GET", "/who-am-i")[0] == 401


# ------------------------------------------------------------------ dataplane online, diagnostics
def test_dataplane_overview_online(kuma, servers):
    """kuma.md §4 "`/meshes/{mesh}/dataplanes/{name}/_overview` ... Dataplane plus DataplaneInsight (subscriptions
    with connect/disconnect times): the way to check a DP is online".  Connections are fed by the stand-in
    extension `/__standin/connection` (what a kuma-dp stand-in will call)."""
    kuma.ok("PUT", "/meshes/default/dataplanes/dp-1", dataplane("dp-1"), 201)
    assert kuma.ok("GET", "/meshes/default/dataplanes/dp-1/_overview")["dataplaneInsight"]["subscriptions"] == []
    cp_api.control(servers[0], "connection", {"mesh": "default", "name": "dp-1", "connected": True})
    subs = kuma.ok("GET", "/meshes/default/dataplanes/dp-1/_overview")["dataplaneInsight"]["subscriptions"]
    assert subs[-1]["connectTime"] and "disconnectTime" not in subs[-1]
    cp_api.control(servers[0], "connection", {"mesh": "default", "name": "dp-1", "connected": False})
    listed = kuma.ok("GET", "/meshes/default/dataplanes/_overview")["items"]
    assert listed[0]["dataplane"]["networking"]["address"] == "10.0.0.2"
    assert "disconnectTime" in listed[0]["dataplaneInsight"]["subscriptions"][-1]


def test_diagnostics_ready_and_metrics(servers):
    """kuma.md §2 "Ports summary": "5680 | diagnostics: `/ready` (200 or 503), `/healthy`, `/metrics`"; the API
    port does not serve `/ready` ("There is no `5680 = HTTP API` port")."""
    diag = Client(servers[1])
    assert diag.call("GET", "/ready")[0] == 200
    assert diag.call("GET", "/healthy")[0] == 200
    code, text = diag.call("GET", "/metrics")
    assert code == 200 and 'resources_count{resource_type="Mesh"}' in text
    assert Client(servers[0]).call("GET", "/ready")[0] == 404


def test_read_only_mode_405(tmp_path):
    """kuma.md §4 "Read-only types get 405 "Method not Allowed" ... any write when `apiServer.readOnly=true`"."""
    env = dict(os.environ, KUMA_API_SERVER_READ_ONLY="true")
    proc, url, _diag = cp_api.spawn(env=env)
    try:
        code, out = Client(url).call("PUT", "/meshes/x", mesh("x"))
        assert code == 405 and out["detail"] == "Method not Allowed"
    finally:
        proc.terminate()
        proc.wait(5)


def test_malformed_body_gets_an_error_body(kuma):
    """Stand-in robustness: a body that is not JSON is a 400 with Kuma's error body, not a dropped connection."""
    req = urllib.request.Request(kuma.base + "/meshes/x", data=b"{not json", method="PUT")
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(req)  # pylint: disable=consider-using-with
    assert err.value.code == 400 and json.loads(err.value.read())["type"] == "/std-errors"
