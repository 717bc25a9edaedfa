"""Fidelity tests for the Kong 3.9 Admin API stand-in (tests/standins/kong).

Every test docstring cites the fact it checks in /work/shared/reference/kong.md
(or the Kong source path when the fact sheet is silent).
"""

import hashlib
import json
import os
import subprocess
import sys
import urllib.error
import urllib.request

import pytest

STANDIN = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", "standins", "kong"))
if STANDIN not in sys.path:
    sys.path.insert(0, STANDIN)

import admin_api  # noqa: E402  pylint: disable=wrong-import-position,import-error

UUID = "6f1bd6e5-0a4c-4d6b-9d0e-2f1f8e3f0c11"


@pytest.fixture(scope="module")
def server():
    srv, base = admin_api.start_in_thread("127.0.0.1", 0)
    yield base
    srv.shutdown()
    srv.server_close()


@pytest.fixture()
def kong(server):
    """Client bound to a freshly wiped stand-in."""
    client = Client(server)
    client.call("POST", "/__standin/reset")
    return client


class Client:
    def __init__(self, base):
        self.base = base

    def call(self, method, path, body=None, raw=None, ctype="application/json"):
        data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
        req = urllib.request.Request(self.base + path, data=data, method=method)
        if data is not None:
            req.add_header("Content-Type", ctype)
        try:
            with urllib.request.urlopen(req) as resp:
                text = resp.read()
                return resp.status, (json.loads(text) if text else None)
        except urllib.error.HTTPError as exc:
            text = exc.read()
            return exc.code, (json.loads(text) if text else None)

    def ok(self, method, path, body=None, status=None):
        code, out = self.call(method, path, body)
        expected = status or {"POST": 201, "DELETE": 204}.get(method, 200)
        assert code == expected, (code, out)
        return out


# ------------------------------------------------------------------ process
def test_cli_prints_real_port_for_port_zero():
    """Brief: `--listen 127.0.0.1:0` prints "kong stand-in admin API listening on http://HOST:PORT"."""
    proc = subprocess.Popen([sys.executable, os.path.join(STANDIN, "admin_api.py"),
                             "--listen", "127.0.0.1:0"], stdout=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline().strip()
        assert line.startswith("kong stand-in admin API listening on http://127.0.0.1:")
        port = int(line.rsplit(":", 1)[1])
        assert port > 0
        code, info = Client("http://127.0.0.1:%d" % port).call("GET", "/")
        assert code == 200 and info["version"] == "3.9.3"
    finally:
        proc.terminate()
        proc.wait(5)


# ------------------------------------------------------------------ services
def test_service_defaults_and_url_shorthand(kong):
    """kong.md §4 "Service": "`retries:5, protocol:"http", host, port:80` (443 when created via an
    `https://` url)", "The `url` shorthand is write-only and never returned", explicit nulls."""
    svc = kong.ok("POST", "/services", {"name": "s1", "url": "https://example.com/v1"})
    assert (svc["protocol"], svc["host"], svc["port"], svc["path"]) == ("https", "example.com", 443, "/v1")
    assert "url" not in svc
    assert svc["retries"] == 5 and svc["enabled"] is True
    assert svc["connect_timeout"] == svc["read_timeout"] == svc["write_timeout"] == 60000
    for key in ("tags", "client_certificate", "tls_verify", "tls_verify_depth", "ca_certificates"):
        assert key in svc and svc[key] is None
    assert isinstance(svc["created_at"], int) and isinstance(svc["updated_at"], int)
    plain = kong.ok("POST", "/services", {"host": "h.example"})
    assert plain["port"] == 80 and plain["protocol"] == "http" and plain["name"] is None


def test_client_supplied_id_is_kept(kong):
    """Brief / kong.md §4 "PUT `/X/{uuid-or-endpoint_key}`": clients may supply `id`."""
    svc = kong.ok("POST", "/services", {"id": UUID, "host": "a"})
    assert svc["id"] == UUID
    assert kong.ok("GET", "/services/" + UUID)["id"] == UUID


def test_get_missing_and_delete_missing(kong):
    """kong.md §4 "GET entity | 200, or 404 {"message":"Not found"}" and
    "DELETE | **204 even if the entity does not exist**"."""
    assert kong.call("GET", "/services/nope") == (404, {"message": "Not found"})
    assert kong.call("DELETE", "/services/nope") == (204, None)
    assert kong.call("DELETE", "/services/" + UUID) == (204, None)


def test_bad_json(kong):
    """kong.md §4 "Bad JSON | 400 {"message":"Cannot parse JSON body"}"."""
    assert kong.call("POST", "/services", raw=b"{nope") == (400, {"message": "Cannot parse JSON body"})


def test_schema_violation_messages(kong):
    """kong.md §4 "Error body": "schema violation (name: required field missing)" shape and
    "2 schema violations (host: required field missing; path: should start with: /)"."""
    code, err = kong.call("POST", "/services", {"path": "nope"})
    assert code == 400
    assert err == {"code": 2, "name": "schema violation",
                   "message": "2 schema violations (host: required field missing; "
                              "path: should start with: /)",
                   "fields": {"host": "required field missing", "path": "should start with: /"}}
    code, err = kong.call("POST", "/plugins", {"config": {}})
    assert err["message"] == "schema violation (name: required field missing)"
    code, err = kong.call("POST", "/services", {"host": "a", "retries": "x", "enabled": 1,
                                                "protocol": "ftp", "bogus": 1})
    assert err["fields"] == {"retries": "expected an integer", "enabled": "expected a boolean",
                             "protocol": "expected one of: grpc, grpcs, http, https, tcp, tls, "
                                         "tls_passthrough, udp, ws, wss",
                             "bogus": "unknown field"}
    assert err["message"].startswith("4 schema violations (")


def test_unique_violation_service_name(kong):
    """kong.md §4 "Unique conflict (same name ...) | **409**" with code 5 message format."""
    kong.ok("POST", "/services", {"name": "dup", "host": "a"})
    code, err = kong.call("POST", "/services", {"name": "dup", "host": "b"})
    assert code == 409
    assert err == {"code": 5, "name": "unique constraint violation",
                   "message": "UNIQUE violation detected on '{name=\"dup\"}'",
                   "fields": {"name": "dup"}}


def test_put_upsert_and_full_replacement(kong):
    """kong.md §4 "PUT ... **upsert, 200 for both create and update**", "PUT is full replacement:
    omitted fields revert to defaults or null", "PUT with a non-UUID key calls `upsert_by_<endpoint_key>`"."""
    created = kong.ok("PUT", "/services/svc", {"host": "a", "retries": 9, "path": "/p"})
    assert created["name"] == "svc" and created["retries"] == 9
    replaced = kong.ok("PUT", "/services/svc", {"host": "b"})
    assert replaced["id"] == created["id"] and replaced["retries"] == 5 and replaced["path"] is None
    assert replaced["created_at"] == created["created_at"]
    by_uuid = kong.ok("PUT", "/services/" + UUID, {"host": "c"})
    assert by_uuid["id"] == UUID
    route = kong.ok("PUT", "/routes/r", {"paths": ["/x"], "hosts": ["h"]})
    route = kong.ok("PUT", "/routes/r", {"paths": ["/x"]})
    assert route["hosts"] is None and route["methods"] is None


def test_put_body_repeating_url_param(kong):
    """kong.md §4 "A body that repeats the URL parameter's name (e.g. a `routes` key in the body of
    PUT /routes/{x}) gives 400"."""
    code, err = kong.call("PUT", "/routes/r", {"routes": "r", "paths": ["/"]})
    assert code == 400 and err["fields"]["routes"] == "unknown field"


def test_patch_merges_records_replaces_arrays_null_clears(kong):
    """kong.md §4 "PATCH merges nested non-abstract `record` fields (e.g. plugin `config`) ...;
    arrays are replaced. Sending `null` clears a field"; "PATCH | ... 404 if missing"."""
    plugin = kong.ok("POST", "/plugins", {"name": "cors", "config": {"origins": ["a", "b"],
                                                                     "max_age": 10}})
    patched = kong.ok("PATCH", "/plugins/" + plugin["id"], {"config": {"origins": ["c"]}})
    assert patched["config"]["origins"] == ["c"] and patched["config"]["max_age"] == 10
    patched = kong.ok("PATCH", "/plugins/" + plugin["id"], {"config": {"max_age": None}})
    assert patched["config"]["max_age"] is None and patched["config"]["origins"] == ["c"]
    svc = kong.ok("POST", "/services", {"name": "s", "host": "a", "path": "/p"})
    assert kong.ok("PATCH", "/services/s", {"path": None})["path"] is None
    assert kong.ok("PATCH", "/services/s", {"retries": 1})["id"] == svc["id"]
    assert kong.call("PATCH", "/services/none", {"retries": 1}) == (404, {"message": "Not found"})


# -------------------------------------------------------------------- routes
def test_route_defaults_nested_create_and_service_link(kong):
    """kong.md §4 "Route": "`protocols:["http","https"], https_redirect_status_code:426, strip_path:true,
    preserve_host:false, request_buffering:true, response_buffering:true`", "`regex_priority:0,
    path_handling:"v0"`"; table "/services/{s}/routes", "/routes/{r}/service"."""
    svc = kong.ok("POST", "/services", {"name": "s", "host": "a"})
    route = kong.ok("POST", "/services/s/routes", {"paths": ["/a"]})
    assert route["service"] == {"id": svc["id"]}
    expect = {"protocols": ["http", "https"], "https_redirect_status_code": 426, "strip_path": True,
              "preserve_host": False, "request_buffering": True, "response_buffering": True,
              "regex_priority": 0, "path_handling": "v0", "methods": None, "hosts": None,
              "headers": None, "snis": None, "sources": None, "destinations": None, "tags": None}
    assert {k: route[k] for k in expect} == expect
    assert kong.ok("GET", "/routes/%s/service" % route["id"])["id"] == svc["id"]
    listed = kong.ok("GET", "/services/s/routes")
    assert [r["id"] for r in listed["data"]] == [route["id"]]


def test_route_requires_matching_attribute_and_path_prefix(kong):
    """Kong kong/db/schema/entities/routes_subschemas.lua: "must set one of 'methods', 'hosts',
    'headers', 'paths', 'snis' when 'protocols' is 'https'" (kong.md §4 Error body, entity-level)."""
    code, err = kong.call("POST", "/routes", {"protocols": ["http", "https"]})
    assert code == 400 and err["fields"]["@entity"] == [
        "must set one of 'methods', 'hosts', 'headers', 'paths', 'snis' when 'protocols' is 'https'"]
    code, err = kong.call("POST", "/routes", {"paths": ["nope"]})
    assert code == 400 and err["fields"]["paths"] == [
        "should start with: / (fixed path) or ~/ (regex path)"]


def test_foreign_key_missing_reference(kong):
    """kong.md §4 "Foreign key, invalid reference: message "the foreign key '{id="…"}' does not
    reference an existing 'services' entity.", `fields:{service:{id:…}}`"."""
    code, err = kong.call("POST", "/routes", {"paths": ["/"], "service": {"id": UUID}})
    assert code == 400
    assert err == {"code": 4, "name": "foreign key violation",
                   "message": "the foreign key '{id=\"%s\"}' does not reference an existing "
                              "'services' entity." % UUID,
                   "fields": {"service": {"id": UUID}}}


def test_delete_restricted_and_cascades(kong):
    """kong.md §4 "DELETE a service that routes reference | **400** foreign key violation" with
    fields {"@referenced_by":"routes"}; Kong plugins.lua/daos.lua `on_delete = "cascade"` for
    plugins (service, route, consumer) and credentials (consumer); targets.lua upstream cascade."""
    kong.ok("POST", "/services", {"name": "s", "host": "a"})
    route = kong.ok("POST", "/services/s/routes", {"paths": ["/"]})
    code, err = kong.call("DELETE", "/services/s")
    assert code == 400 and err["fields"] == {"@referenced_by": "routes"}
    assert err["message"] == "an existing 'routes' entity references this 'services' entity"
    rplug = kong.ok("POST", "/routes/%s/plugins" % route["id"], {"name": "cors"})
    splug = kong.ok("POST", "/services/s/plugins", {"name": "prometheus"})
    kong.ok("DELETE", "/routes/" + route["id"])
    assert kong.call("GET", "/plugins/" + rplug["id"])[0] == 404
    kong.ok("DELETE", "/services/s")
    assert kong.call("GET", "/plugins/" + splug["id"])[0] == 404
    kong.ok("POST", "/consumers", {"username": "c"})
    cred = kong.ok("POST", "/consumers/c/key-auth", {})
    cplug = kong.ok("POST", "/consumers/c/plugins", {"name": "rate-limiting", "config": {"second": 1}})
    kong.ok("DELETE", "/consumers/c")
    assert kong.call("GET", "/key-auths/" + cred["id"])[0] == 404
    assert kong.call("GET", "/plugins/" + cplug["id"])[0] == 404
    kong.ok("POST", "/upstreams", {"name": "u"})
    tgt = kong.ok("POST", "/upstreams/u/targets", {"target": "a"})
    kong.ok("DELETE", "/upstreams/u")
    kong.ok("POST", "/upstreams", {"name": "u"})
    assert kong.call("GET", "/upstreams/u/targets/" + tgt["id"])[0] == 404


# ------------------------------------------------------------------ consumers
def test_consumers_require_username_or_custom_id_and_filter(kong):
    """kong.md §4 "Consumer": "At least one of username/custom_id is required"; table
    "`GET /consumers?custom_id=X` filter"; unique consumers.username/custom_id."""
    code, err = kong.call("POST", "/consumers", {})
    assert code == 400 and err["fields"]["@entity"] == [
        "at least one of these fields must be non-empty: 'custom_id', 'username'"]
    cons = kong.ok("POST", "/consumers", {"custom_id": "x1"})
    assert kong.ok("GET", "/consumers?custom_id=x1")["data"][0]["id"] == cons["id"]
    assert kong.call("POST", "/consumers", {"custom_id": "x1"})[0] == 409


# -------------------------------------------------------------- pagination
def test_pagination_and_next_links(kong):
    """kong.md §4 "Pagination and tags": size default 100, opaque offset, `next` relative path or
    null, "Empty collection: `{"data":[],"next":null}`"."""
    assert kong.ok("GET", "/services") == {"data": [], "next": None}
    for i in range(5):
        kong.ok("POST", "/services", {"name": "s%d" % i, "host": "h", "tags": ["t"]})
    page = kong.ok("GET", "/services?size=2&tags=t")
    assert len(page["data"]) == 2 and page["offset"]
    assert page["next"] == "/services?offset=%s&size=2&tags=t" % page["offset"]
    seen = [s["name"] for s in page["data"]]
    while page["next"]:
        page = kong.ok("GET", page["next"])
        seen += [s["name"] for s in page["data"]]
    assert seen == ["s%d" % i for i in range(5)] and "offset" not in page
    assert len(kong.ok("GET", "/services")["data"]) == 5


def test_invalid_size_and_offset(kong):
    """kong.md §4 "size must be an integer between 1 and 1000" (code 9); error table
    "7 | invalid offset | 400"."""
    for size in ("0", "1001", "abc"):
        code, err = kong.call("GET", "/services?size=" + size)
        assert code == 400 and err["code"] == 9
        assert err["message"] == "size must be an integer between 1 and 1000"
    code, err = kong.call("GET", "/services?offset=%%%%")
    assert code == 400 and err["code"] == 7


def test_nested_next_omits_size_and_tags(kong):
    """kong.md §4 "*DERIVED:* on **nested** collections `next` omits `size` and `tags`" and
    "Tag filters are ignored on foreign-key (nested) endpoints"."""
    kong.ok("POST", "/services", {"name": "s", "host": "h"})
    for i in range(3):
        kong.ok("POST", "/services/s/routes", {"paths": ["/%d" % i]})
    page = kong.ok("GET", "/services/s/routes?size=2&tags=nomatch")
    assert len(page["data"]) == 2
    assert page["next"] == "/services/s/routes?offset=%s" % page["offset"]


def test_tag_filters(kong):
    """kong.md §4 "`?tags=a,b` is AND; `?tags=a/b` is OR. Mixing the two is a 400" with
    "invalid option (tags: invalid filter syntax)"; tags may not contain `,` or `/`."""
    kong.ok("POST", "/consumers", {"username": "ab", "tags": ["a", "b"]})
    kong.ok("POST", "/consumers", {"username": "a", "tags": ["a"]})
    kong.ok("POST", "/consumers", {"username": "c", "tags": ["c"]})

    def names(query):
        return sorted(c["username"] for c in kong.ok("GET", "/consumers?tags=" + query)["data"])

    assert names("a,b") == ["ab"]
    assert names("b/c") == ["ab", "c"]
    code, err = kong.call("GET", "/consumers?tags=a,b/c")
    assert code == 400 and err["message"] == "invalid option (tags: invalid filter syntax)"
    code, err = kong.call("POST", "/consumers", {"username": "z", "tags": ["x,y"]})
    assert code == 400 and "tags" in err["fields"]


def test_tags_endpoint(kong):
    """kong.md §4 table "tags | /tags, /tags/{tag} | read-only index"."""
    svc = kong.ok("POST", "/services", {"host": "h", "tags": ["x", "y"]})
    kong.ok("POST", "/consumers", {"username": "u", "tags": ["y"]})
    data = kong.ok("GET", "/tags")["data"]
    assert {"entity_name": "services", "entity_id": svc["id"], "tag": "x"} in data
    assert len(data) == 3
    assert len(kong.ok("GET", "/tags/y")["data"]) == 2
    page = kong.ok("GET", "/tags?size=2")
    assert len(page["data"]) == 2 and page["next"]


# -------------------------------------------------------------------- plugins
def test_plugin_defaults_and_unknown_plugin(kong):
    """kong.md §4 "Plugin": "`protocols` default `["grpc","grpcs","http","https"]`; ip-restriction
    defaults also include `tcp`/`tls`", `config:{…all schema defaults…}`; kong.md §5 key-auth defaults."""
    plug = kong.ok("POST", "/plugins", {"name": "key-auth"})
    assert plug["protocols"] == ["grpc", "grpcs", "http", "https"] and plug["enabled"] is True
    assert plug["config"] == {"key_names": ["apikey"], "hide_credentials": False, "anonymous": None,
                              "key_in_header": True, "key_in_query": True, "key_in_body": False,
                              "run_on_preflight": True, "realm": None}
    assert plug["instance_name"] is None and plug["route"] is None
    ipr = kong.ok("POST", "/plugins", {"name": "ip-restriction", "config": {"allow": ["10.0.0.0/8"]}})
    assert ipr["protocols"] == ["grpc", "grpcs", "http", "https", "tcp", "tls"]
    code, err = kong.call("POST", "/plugins", {"name": "nope"})
    assert code == 400 and err["fields"] == {
        "name": "plugin 'nope' not enabled; add it to the 'plugins' configuration property"}


def test_plugin_unique_scope_and_instance_name(kong):
    """kong.md §4 "Unique violation" example message "UNIQUE violation detected on
    '{consumer=null,name="basic-auth",route=null,service={id="…"}}'"; "`PUT /plugins/{instance_name}`
    is an idempotent create-or-update keyed by name; the id is preserved"."""
    svc = kong.ok("POST", "/services", {"name": "s", "host": "h"})
    kong.ok("POST", "/services/s/plugins", {"name": "basic-auth"})
    code, err = kong.call("POST", "/plugins", {"name": "basic-auth", "service": {"id": svc["id"]}})
    assert code == 409
    assert err["message"] == ("UNIQUE violation detected on '{consumer=null,name=\"basic-auth\","
                              "route=null,service={id=\"%s\"}}'" % svc["id"])
    first = kong.ok("PUT", "/plugins/my-cors", {"name": "cors"})
    again = kong.ok("PUT", "/plugins/my-cors", {"name": "cors", "config": {"max_age": 5}})
    assert first["id"] == again["id"] and again["instance_name"] == "my-cors"
    assert kong.ok("GET", "/plugins/my-cors")["config"]["max_age"] == 5


def test_rate_limiting_shorthand_drift_trap(kong):
    """kong.md §4 "Drift traps": "rate-limiting returns both `config.redis.host` and the legacy
    `config.redis_host`"; kong.md §5 rate-limiting defaults (policy local, fault_tolerant true...)."""
    plug = kong.ok("POST", "/plugins", {"name": "rate-limiting",
                                        "config": {"minute": 10, "policy": "redis", "redis_host": "r"}})
    cfg = plug["config"]
    assert cfg["redis"]["host"] == "r" and cfg["redis_host"] == "r" and cfg["redis_port"] == 6379
    assert cfg["limit_by"] == "consumer" and cfg["fault_tolerant"] is True
    assert cfg["error_code"] == 429 and cfg["error_message"] == "API rate limit exceeded"
    assert cfg["sync_rate"] == -1 and cfg["hide_client_headers"] is False
    got = kong.ok("GET", "/plugins/" + plug["id"])["config"]
    assert got["redis_host"] == "r"
    code, err = kong.call("POST", "/plugins", {"name": "rate-limiting", "config": {}})
    assert code == 400 and "at least one of these fields must be non-empty" in err["message"]


def test_acl_exactly_one_of_and_no_consumer(kong):
    """kong.md §5 acl "`allow` or `deny`: exactly one is required"; key-auth "Cannot be scoped to a
    consumer (`no_consumer`)"."""
    code, err = kong.call("POST", "/plugins", {"name": "acl", "config": {"allow": ["a"], "deny": ["b"]}})
    assert code == 400 and "only one of these fields can be non-empty" in err["message"]
    code, err = kong.call("POST", "/plugins", {"name": "acl", "config": {}})
    assert code == 400 and "at least one of these fields must be non-empty" in err["message"]
    cons = kong.ok("POST", "/consumers", {"username": "c"})
    code, err = kong.call("POST", "/plugins", {"name": "key-auth", "consumer": {"id": cons["id"]}})
    assert code == 400 and err["fields"] == {"consumer": "value must be null"}


def test_oauth2_plugin_provision_key_and_other_defaults(kong):
    """kong.md §5 oauth2 "`provision_key` (auto-generated, unique), `token_expiration=7200`", zipkin
    "`sample_ratio=0.001`", prometheus flags "all default **false**", cors methods default."""
    oauth = kong.ok("POST", "/plugins", {"name": "oauth2", "config": {"enable_client_credentials": True}})
    assert len(oauth["config"]["provision_key"]) == 32 and oauth["config"]["token_expiration"] == 7200
    assert oauth["config"]["pkce"] == "lax"
    zipkin = kong.ok("POST", "/plugins", {"name": "zipkin"})["config"]
    assert zipkin["sample_ratio"] == 0.001 and zipkin["header_type"] == "preserve"
    assert zipkin["queue"]["max_batch_size"] == 1 and zipkin["propagation"]["default_format"] == "b3"
    prom = kong.ok("POST", "/plugins", {"name": "prometheus"})["config"]
    assert set(prom.values()) == {False}
    cors = kong.ok("POST", "/plugins", {"name": "cors"})["config"]
    assert cors["methods"][0] == "GET" and cors["credentials"] is False


# ---------------------------------------------------------------- credentials
def test_credentials_generated_values_and_lookup(kong):
    """kong.md §4 table: key-auth "`key` auto-generated", jwt "`key` and `secret` auto-generated;
    `algorithm` default HS256", hmac "`secret` auto-generated", oauth2 "`client_id` and
    `client_secret` auto; `hash_secret=false` default; `client_type` default confidential";
    "Credentials: have `created_at` but **no `updated_at`**"."""
    cons = kong.ok("POST", "/consumers", {"username": "c"})
    ka = kong.ok("POST", "/consumers/c/key-auth", {})
    assert len(ka["key"]) == 32 and ka["consumer"] == {"id": cons["id"]} and "updated_at" not in ka
    assert kong.ok("GET", "/key-auths/" + ka["key"])["id"] == ka["id"]
    assert kong.ok("GET", "/consumers/c/key-auth/" + ka["key"])["id"] == ka["id"]
    jwt = kong.ok("POST", "/consumers/c/jwt", {})
    assert jwt["algorithm"] == "HS256" and jwt["key"] and jwt["secret"] and jwt["rsa_public_key"] is None
    code, err = kong.call("POST", "/consumers/c/jwt", {"algorithm": "RS256"})
    assert code == 400 and err["fields"]["rsa_public_key"] == "required field missing"
    hmac = kong.ok("POST", "/consumers/c/hmac-auth", {"username": "h"})
    assert len(hmac["secret"]) == 32
    oauth = kong.ok("POST", "/consumers/c/oauth2", {"name": "app"})
    assert oauth["hash_secret"] is False and oauth["client_type"] == "confidential"
    assert oauth["client_id"] and oauth["client_secret"]
    assert kong.ok("GET", "/oauth2/" + oauth["client_id"])["id"] == oauth["id"]
    assert kong.call("POST", "/consumers/c/key-auth", {"key": ka["key"]})[0] == 409
    other = kong.ok("POST", "/consumers", {"username": "d"})
    assert other and kong.call("GET", "/consumers/d/key-auth/" + ka["key"])[0] == 404


def test_basic_auth_password_hash(kong):
    """kong.md §4 table "**password stored as SHA1(password+consumer_id)**; GET returns the hash";
    Kong kong/plugins/basic-auth/crypto.lua `sha1(password .. consumer_id)` hex."""
    cons = kong.ok("POST", "/consumers", {"username": "c"})
    cred = kong.ok("POST", "/consumers/c/basic-auth", {"username": "bob", "password": "pw"})
    assert cred["password"] == hashlib.sha1(("pw" + cons["id"]).encode()).hexdigest()
    assert kong.ok("GET", "/basic-auths/bob")["password"] == cred["password"]
    assert kong.call("POST", "/consumers/c/basic-auth", {"username": "bob", "password": "x"})[0] == 409


def test_acls_group_lookup_and_unique(kong):
    """kong.md §4 table "acls | /acls, /consumers/{c}/acls, /consumers/{c}/acls/{group} | ...
    unique (consumer, group)"."""
    kong.ok("POST", "/consumers", {"username": "c"})
    acl = kong.ok("POST", "/consumers/c/acls", {"group": "admins"})
    assert kong.ok("GET", "/consumers/c/acls/admins")["id"] == acl["id"]
    assert kong.ok("GET", "/acls/" + acl["id"])["group"] == "admins"
    assert kong.call("POST", "/consumers/c/acls", {"group": "admins"})[0] == 409
    kong.ok("DELETE", "/consumers/c/acls/admins")
    assert kong.call("GET", "/acls/" + acl["id"])[0] == 404


# ---------------------------------------------------------- upstreams/targets
def test_upstream_defaults_and_healthchecks(kong):
    """kong.md §4 "Upstream": "`algorithm:"round-robin"`, `hash_on:"none"`, `hash_fallback:"none"`,
    `hash_on_cookie_path:"/"`, `slots:10000`", "`healthchecks` carries a large default record (active/
    passive, probing disabled with interval 0)", "`use_srv_name:false`"; Kong upstreams.lua."""
    ups = kong.ok("POST", "/upstreams", {"name": "u"})
    assert (ups["algorithm"], ups["hash_on"], ups["hash_fallback"], ups["hash_on_cookie_path"],
            ups["slots"], ups["use_srv_name"], ups["host_header"]) == (
        "round-robin", "none", "none", "/", 10000, False, None)
    hc = ups["healthchecks"]
    assert hc["active"]["healthy"] == {"interval": 0, "http_statuses": [200, 302], "successes": 0}
    assert hc["passive"]["unhealthy"]["http_statuses"] == [429, 500, 503]
    assert hc["threshold"] == 0 and hc["active"]["concurrency"] == 10
    schema = kong.ok("GET", "/schemas/upstreams")
    hc_field = [f["healthchecks"] for f in schema["fields"] if "healthchecks" in f][0]
    assert hc_field["default"] == hc


def test_targets(kong):
    """kong.md §4 table "targets": "`target` port defaults to **8000** when omitted; duplicate POST gives
    409; PUT/PATCH/GET/DELETE on /upstreams/{u}/targets/{t}"; "Target: `weight:100`; `created_at` and
    `updated_at` are **float milliseconds**"; Kong kong/api/routes/targets.lua disables /targets."""
    kong.ok("POST", "/upstreams", {"name": "u"})
    tgt = kong.ok("POST", "/upstreams/u/targets", {"target": "10.0.0.1"})
    assert tgt["target"] == "10.0.0.1:8000" and tgt["weight"] == 100
    assert isinstance(tgt["created_at"], float)
    assert kong.call("POST", "/upstreams/u/targets", {"target": "10.0.0.1:8000"})[0] == 409
    assert kong.ok("GET", "/upstreams/u/targets/10.0.0.1:8000")["id"] == tgt["id"]
    assert kong.ok("PATCH", "/upstreams/u/targets/" + tgt["id"], {"weight": 5})["weight"] == 5
    put = kong.ok("PUT", "/upstreams/u/targets/10.0.0.2:80", {})
    assert put["target"] == "10.0.0.2:80" and put["weight"] == 100
    assert len(kong.ok("GET", "/upstreams/u/targets")["data"]) == 2
    assert kong.call("GET", "/targets")[0] == 404
    kong.ok("DELETE", "/upstreams/u/targets/10.0.0.2:80")
    assert len(kong.ok("GET", "/upstreams/u/targets")["data"]) == 1


# --------------------------------------------------------------- certificates
@pytest.fixture(scope="module")
def pems(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("pki")

    def gen(name, ca):
        ext = "basicConstraints=critical,CA:TRUE" if ca else "basicConstraints=CA:FALSE"
        subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                        "ec_paramgen_curve:prime256v1", "-nodes", "-days", "30",
                        "-subj", "/CN=" + name, "-addext", ext,
                        "-keyout", str(tmp / (name + ".key")), "-out", str(tmp / (name + ".crt"))],
                       check=True, capture_output=True)
        return (tmp / (name + ".crt")).read_text(), (tmp / (name + ".key")).read_text()
    return {"ca": gen("ca", True), "leaf": gen("leaf", False), "other": gen("other", False)}


def test_certificates_and_snis(kong, pems):
    """kong.md §4 table "certificates": "GET /certificates/{id or sni} includes `snis` list; PUT
    /certificates/{sni} creates with that SNI; /certificates/{c}/snis"; snis "`certificate` required"."""
    cert, key = pems["leaf"]
    created = kong.ok("POST", "/certificates", {"cert": cert, "key": key, "snis": ["b.test", "a.test"]})
    assert created["snis"] == ["a.test", "b.test"] and created["cert_alt"] is None
    assert kong.ok("GET", "/certificates/a.test")["id"] == created["id"]
    assert kong.ok("GET", "/snis/b.test")["certificate"] == {"id": created["id"]}
    assert len(kong.ok("GET", "/certificates/%s/snis" % created["id"])["data"]) == 2
    put = kong.ok("PUT", "/certificates/c.test", {"cert": cert, "key": key})
    assert put["snis"] == ["c.test"] and put["id"] != created["id"]
    code, err = kong.call("POST", "/certificates", {"cert": cert, "key": key, "snis": ["a.test"]})
    assert code == 400 and "already associated with existing certificate" in err["message"]
    code, err = kong.call("POST", "/certificates", {"cert": "nope", "key": key})
    assert code == 400 and "cert" in err["fields"]
    code, err = kong.call("POST", "/certificates", {"cert": cert, "key": pems["other"][1]})
    assert code == 400 and err["fields"]["@entity"] == ["certificate does not match key"]
    kong.ok("DELETE", "/certificates/" + created["id"])
    assert kong.call("GET", "/snis/a.test")[0] == 404


def test_ca_certificates(kong, pems):
    """kong.md §4 table "ca_certificates | ... one cert per entity, must be CA and not expired;
    `cert_digest` computed"; unique cert_digest."""
    cert = pems["ca"][0]
    ca = kong.ok("POST", "/ca_certificates", {"cert": cert})
    der = subprocess.run(["openssl", "x509", "-outform", "DER"], input=cert.encode(),
                         capture_output=True, check=True).stdout
    assert ca["cert_digest"] == hashlib.sha256(der).hexdigest()
    assert kong.call("POST", "/ca_certificates", {"cert": cert})[0] == 409
    code, err = kong.call("POST", "/ca_certificates", {"cert": pems["leaf"][0]})
    assert code == 400 and "CA" in err["message"]


# ----------------------------------------------------------- schemas & info
def test_schema_endpoints_match_create_defaults(kong):
    """kong.md §4 "`GET /schemas/{entity}` and `GET /schemas/plugins/{name}`: defaults and field
    types"; "`POST /schemas/{entity}/validate` ... Returns 200 `{"message":"schema validation
    successful"}` or 400 schema violation"."""
    schema = kong.ok("GET", "/schemas/plugins/rate-limiting")
    config = [f["config"] for f in schema["fields"] if "config" in f][0]
    names = [list(f)[0] for f in config["fields"]]
    assert "redis" in names and "redis_host" not in names
    defaults = {list(f)[0]: list(f.values())[0].get("default") for f in config["fields"]}
    created = kong.ok("POST", "/plugins", {"name": "rate-limiting", "config": {"hour": 1}})["config"]
    for name, default in defaults.items():
        if default is not None:
            assert created[name] == default, name
    svc_schema = kong.ok("GET", "/schemas/services")
    retries = [f["retries"] for f in svc_schema["fields"] if "retries" in f][0]
    assert retries == {"type": "integer", "default": 5, "between": [0, 32767]}
    assert kong.ok("POST", "/schemas/services/validate", {"host": "a"}, status=200) == {
        "message": "schema validation successful"}
    assert kong.call("POST", "/schemas/services/validate", {})[0] == 400
    assert kong.ok("POST", "/schemas/plugins/validate", {"name": "cors"}, status=200)["message"] == \
        "schema validation successful"
    assert kong.call("POST", "/schemas/plugins/validate", {"name": "acl", "config": {}})[0] == 400
    assert kong.ok("GET", "/services")["data"] == [] and len(kong.ok("GET", "/plugins")["data"]) == 1


def test_root_status_enabled(kong):
    """kong.md §4 "`GET /` returns `{tagline, version, edition ...}`", "`GET /status` returns
    `{memory{...}, server{...}, database{reachable}}`"; table "`/plugins/enabled`"."""
    kong.ok("POST", "/plugins", {"name": "prometheus"})
    info = kong.ok("GET", "/")
    assert info["tagline"] == "Welcome to kong" and info["edition"] == "community"
    assert info["version"] == "3.9.3" and info["configuration"]["database"] == "postgres"
    assert info["plugins"]["available_on_server"]["prometheus"]["priority"] == 13
    assert info["plugins"]["enabled_in_cluster"] == ["prometheus"]
    assert set(info["pids"]) == {"master", "workers"} and "node_id" in info
    status = kong.ok("GET", "/status")
    assert status["database"] == {"reachable": True} and "total_requests" in status["server"]
    assert "key-auth" in kong.ok("GET", "/plugins/enabled")["enabled_plugins"]


def test_standin_stats_extension(kong):
    """NOT Kong: README "/__standin/ extension" (request counts per method, reset)."""
    kong.ok("POST", "/__standin/reset-stats", status=200)
    kong.ok("GET", "/services")
    kong.ok("POST", "/consumers", {"username": "x"})
    kong.ok("PATCH", "/consumers/x", {"custom_id": "y"})
    kong.ok("DELETE", "/consumers/x")
    expected = {"GET": 1, "POST": 1, "PUT": 0, "PATCH": 1, "DELETE": 1, "VALIDATE": 0}
    assert kong.ok("GET", "/__standin/stats") == expected
