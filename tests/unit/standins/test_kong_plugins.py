"""Proxy plugins of the Kong stand-in node (tests/standins/kong/plugins.py).

In-process: a DB-less node.Node loaded from a declarative config, its proxy
and Status API on free loopback ports, in front of an echo backend.  Each
test docstring cites the kong.md fact (or marks the behaviour UNCONFIRMED as
plugins.py does).
"""

import json
import time

from .kong_helpers import Echo, jwt_token, request, stand_in_modules, wait_for

stand_in_modules()
import plugins as P  # noqa: E402  pylint: disable=wrong-import-position,import-error


KEY_AUTH = """\
_format_version: "3.0"
services:
  - name: svc
    url: ECHO
    routes:
      - name: r
        paths: [/k]
        plugins:
          - name: key-auth
            config: {hide_credentials: %s}
consumers:
  - username: alice
    custom_id: a-1
    keyauth_credentials:
      - key: alice-key
"""


def test_key_auth_401_then_200_with_consumer_headers(gateway, echo):
    """kong.md §5 key-auth "`key_names=["apikey"]`, ... `key_in_header=true`,
    `key_in_query=true`"; messages "No API key found in request" / "Unauthorized"
    and `WWW-Authenticate: Key` from Kong 3.x kong/plugins/key-auth/handler.lua
    (plugins.key_auth); upstream gets X-Consumer-ID, X-Consumer-Username,
    X-Credential-Identifier."""
    gw = gateway(KEY_AUTH % "false")
    status, body, headers = gw.get("/k")
    assert (status, body) == (401, {"message": "No API key found in request"})
    assert headers["WWW-Authenticate"] == "Key"
    status, body, headers = gw.get("/k", {"apikey": "wrong"})
    assert (status, body) == (401, {"message": "Unauthorized"})
    assert headers["WWW-Authenticate"] == "Key"
    assert echo.requests == []
    status, body, headers = gw.get("/k/x", {"apikey": "alice-key"})
    assert status == 200 and headers["X-Echo"] == "yes"
    alice = gw.node.store.find_by_unique("consumers", "username", "alice")
    cred = gw.node.store.find_by_unique("keyauth_credentials", "key", "alice-key")
    sent = body["headers"]
    assert sent["X-Consumer-Username"] == "alice"
    assert sent["X-Consumer-ID"] == alice["id"]
    assert sent["X-Consumer-Custom-ID"] == "a-1"
    assert sent["X-Credential-Identifier"] == cred["id"]
    assert {k.lower(): v for k, v in sent.items()}["apikey"] == "alice-key"  # not hidden
    status, body, _headers = gw.get("/k?apikey=alice-key&x=1")
    assert status == 200 and "apikey=alice-key" in body["path"]


def test_key_auth_hide_credentials_and_key_names(gateway):
    """kong.md §5 key-auth "`hide_credentials=false`" (true strips the key from the
    upstream request)."""
    gw = gateway(KEY_AUTH % "true")
    status, body, _headers = gw.get("/k?apikey=alice-key&x=1")
    assert status == 200 and body["path"] == "/?x=1"
    status, body, _headers = gw.get("/k", {"apikey": "alice-key"})
    assert status == 200 and "apikey" not in {k.lower() for k in body["headers"]}


def test_key_auth_anonymous(gateway):
    """kong.md §5 key-auth "`anonymous=null`": with a consumer set, failed
    authentication proceeds as that consumer (X-Anonymous-Consumer: true)."""
    gw = gateway("""\
_format_version: "3.0"
services:
  - name: svc
    url: ECHO
    routes:
      - name: r
        paths: [/k]
        plugins:
          - name: key-auth
            config: {anonymous: guest}
consumers:
  - username: guest
""")
    status, body, _headers = gw.get("/k")
    assert status == 200
    assert body["headers"]["X-Consumer-Username"] == "guest"
    assert body["headers"]["X-Anonymous-Consumer"] == "true"


JWT = """\
_format_version: "3.0"
services:
  - name: svc
    url: ECHO
    routes:
      - name: r
        paths: [/j]
        plugins:
          - name: jwt
            config: {claims_to_verify: [exp, nbf], cookie_names: [tok]}
consumers:
  - username: bob
    jwt_secrets:
      - key: bob-iss
        secret: s3cret
      - key: bob-512
        secret: c2VjcmV0LTUxMg==
        algorithm: HS512
"""


def test_jwt_hs256_sources_and_failures(gateway):
    """kong.md §5 jwt "`uri_param_names=["jwt"]`, `cookie_names=[]`,
    `header_names=["authorization"]`, `key_claim_name="iss"`", "`claims_to_verify`
    (exp|nbf)"; 401 bodies as plugins.jwt documents (UNCONFIRMED 3.x)."""
    gw = gateway(JWT)
    future, past = int(time.time()) + 600, int(time.time()) - 10
    good = jwt_token({"iss": "bob-iss", "exp": future, "nbf": past}, b"s3cret")
    status, body, _headers = gw.get("/j", {"Authorization": "Bearer " + good})
    assert status == 200, body
    assert body["headers"]["X-Consumer-Username"] == "bob"
    assert gw.get("/j?jwt=" + good)[0] == 200
    assert gw.get("/j", {"Cookie": "a=b; tok=" + good})[0] == 200
    assert gw.get("/j")[:2] == (401, {"message": "Unauthorized"})
    cases = [
        (jwt_token({"iss": "bob-iss", "exp": future}, b"other"), {"message": "Invalid signature"}),
        # a claim listed in claims_to_verify but absent (UNCONFIRMED text)
        (jwt_token({"iss": "bob-iss", "exp": future}, b"s3cret"), {"nbf": "must be a number"}),
        (jwt_token({"iss": "nobody", "exp": future}, b"s3cret"),
         {"message": "No credentials found for given 'iss'"}),
        (jwt_token({"exp": future}, b"s3cret"), {"message": "No mandatory 'iss' in claims"}),
        (jwt_token({"iss": "bob-iss", "exp": 1000, "nbf": past}, b"s3cret"), {"exp": "token expired"}),
        (jwt_token({"iss": "bob-iss", "exp": future, "nbf": future}, b"s3cret"),
         {"nbf": "token not valid yet"}),
        (jwt_token({"iss": "bob-iss", "exp": future}, b"s3cret", "HS384"),
         {"message": "Invalid algorithm"}),
    ]
    for token, expected in cases:
        status, body, _headers = gw.get("/j", {"Authorization": "Bearer " + token})
        assert (status, body) == (401, expected), token
    status, body, _headers = gw.get("/j", {"Authorization": "Bearer x.y"})
    assert status == 401 and body["message"].startswith("Bad token")


def test_jwt_hs512_secret_is_base64(gateway):
    """kong.md §5 jwt "`secret_is_base64=false`" (true: the credential secret is
    base64-decoded before verifying); HS512."""
    gw = gateway(JWT.replace("claims_to_verify: [exp, nbf], ", "secret_is_base64: true, "))
    token = jwt_token({"iss": "bob-512"}, b"secret-512", "HS512")
    assert gw.get("/j", {"Authorization": "Bearer " + token})[0] == 200


ACL = """\
_format_version: "3.0"
services:
  - name: svc
    url: ECHO
    routes:
      - name: admin
        paths: [/admin]
        plugins:
          - name: key-auth
          - name: acl
            config: {allow: [admins]}
      - name: public
        paths: [/public]
        plugins:
          - name: key-auth
          - name: acl
            config: {deny: [banned], hide_groups_header: true}
      - name: noauth
        paths: [/noauth]
        plugins:
          - name: acl
            config: {allow: [admins]}
consumers:
  - username: alice
    keyauth_credentials: [{key: ka}]
    acls: [{group: admins}, {group: dev}]
  - username: eve
    keyauth_credentials: [{key: ke}]
    acls: [{group: banned}]
"""


def test_acl_allow_deny_and_groups_header(gateway):
    """kong.md §5 acl "`allow` or `deny`", "`hide_groups_header=false`"; 403
    `{"message":"You cannot consume this service"}` (Kong
    kong/plugins/acl/handler.lua)."""
    gw = gateway(ACL)
    status, body, _headers = gw.get("/admin", {"apikey": "ka"})
    assert status == 200 and body["headers"]["X-Consumer-Groups"] == "admins, dev"
    assert gw.get("/admin", {"apikey": "ke"})[:2] == (
        403, {"message": "You cannot consume this service"})
    status, body, _headers = gw.get("/public", {"apikey": "ka"})
    assert status == 200 and "X-Consumer-Groups" not in body["headers"]
    assert gw.get("/public", {"apikey": "ke"})[0] == 403
    assert gw.get("/noauth")[:2] == (401, {"message": "Unauthorized"})


RATE = """\
_format_version: "3.0"
services:
  - name: svc
    url: ECHO
    routes:
      - name: r
        paths: [/rl]
        plugins:
          - name: rate-limiting
            config: {minute: 3, hour: 100, limit_by: ip, policy: local}
      - name: hidden
        paths: [/hidden]
        plugins:
          - name: rate-limiting
            config: {minute: 1, policy: local, hide_client_headers: true,
                     error_message: slow down, error_code: 503}
"""


def test_rate_limiting_local_headers_and_429(gateway):
    """kong.md §5 rate-limiting "`policy="local"`", "`hide_client_headers=false`,
    `error_code=429`, `error_message="API rate limit exceeded"`"; header names
    UNCONFIRMED (plugins.rate_limiting)."""
    gw = gateway(RATE)
    for remaining in (2, 1, 0):
        status, _body, headers = gw.get("/rl")
        assert status == 200
        assert headers["X-RateLimit-Limit-Minute"] == "3"
        assert headers["X-RateLimit-Remaining-Minute"] == str(remaining)
        assert headers["X-RateLimit-Limit-Hour"] == "100"
        assert headers["RateLimit-Limit"] == "3"
        assert headers["RateLimit-Remaining"] == str(remaining)
        assert 1 <= int(headers["RateLimit-Reset"]) <= 60
    status, body, headers = gw.get("/rl")
    assert (status, body) == (429, {"message": "API rate limit exceeded"})
    assert headers["X-RateLimit-Remaining-Minute"] == "0"
    assert int(headers["Retry-After"]) >= 1
    assert gw.get("/hidden")[0] == 200
    status, body, headers = gw.get("/hidden")
    assert (status, body) == (503, {"message": "slow down"})
    assert "X-RateLimit-Limit-Minute" not in headers and "RateLimit-Limit" not in headers


def test_rate_limiting_by_consumer(gateway):
    """kong.md §5 rate-limiting "`limit_by="consumer"`": each consumer has its own
    counter."""
    gw = gateway("""\
_format_version: "3.0"
services:
  - name: svc
    url: ECHO
    routes:
      - name: r
        paths: [/rl]
        plugins:
          - name: key-auth
          - name: rate-limiting
            config: {second: 1, minute: 1}
consumers:
  - username: a
    keyauth_credentials: [{key: ka}]
  - username: b
    keyauth_credentials: [{key: kb}]
""")
    assert gw.get("/rl", {"apikey": "ka"})[0] == 200
    assert gw.get("/rl", {"apikey": "kb"})[0] == 200
    assert gw.get("/rl", {"apikey": "ka"})[0] == 429


def test_ip_restriction(gateway):
    """kong.md §5 ip-restriction "`allow` and/or `deny` (IP or CIDR arrays, at least
    one), `status` (number, optional), `message` (optional)"; default 403 "IP
    address not allowed: <ip>" (UNCONFIRMED 3.x text)."""
    gw = gateway("""\
_format_version: "3.0"
services:
  - name: svc
    url: ECHO
    routes:
      - {name: a, paths: [/allowed], plugins: [{name: ip-restriction, config: {allow: [127.0.0.0/8]}}]}
      - {name: d, paths: [/denied], plugins: [{name: ip-restriction, config: {deny: [127.0.0.1]}}]}
      - {name: o, paths: [/other], plugins: [{name: ip-restriction,
         config: {allow: [10.0.0.0/8], status: 401, message: go away}}]}
""")
    assert gw.get("/allowed")[0] == 200
    assert gw.get("/denied")[:2] == (403, {"message": "IP address not allowed: 127.0.0.1"})
    assert gw.get("/other")[:2] == (401, {"message": "go away"})


def test_plugin_scoping_most_specific_wins(gateway):
    """Kong plugins iterator (kong/runloop/plugins_iterator.lua, UNCONFIRMED detail):
    per plugin name the most specific instance applies: consumer+route over route
    over service over global; consumer-scoped instances apply after
    authentication; disabled instances do not run."""
    gw = gateway("""\
_format_version: "3.0"
services:
  - name: svc
    url: ECHO
    plugins:
      - name: rate-limiting
        config: {minute: 50}
    routes:
      - name: r1
        paths: [/one]
        plugins:
          - name: rate-limiting
            config: {minute: 7}
          - name: key-auth
            config: {anonymous: anon}
      - name: r2
        paths: [/two]
      - name: r3
        paths: [/three]
        plugins:
          - name: rate-limiting
            enabled: false
            config: {minute: 1}
  - name: other
    url: ECHO
    routes:
      - name: r4
        paths: [/four]
plugins:
  - name: rate-limiting
    config: {minute: 99}
consumers:
  - username: anon
  - username: vip
    keyauth_credentials: [{key: kv}]
    plugins:
      - name: rate-limiting
        config: {minute: 1000}
""")

    def limit(*args):
        return gw.get(*args)[2]["X-RateLimit-Limit-Minute"]

    assert limit("/one") == "7"
    assert limit("/one", {"apikey": "kv"}) == "1000"
    assert limit("/two") == "50"
    assert limit("/three") == "50"
    assert limit("/four") == "99"


def test_plugins_not_loaded_do_not_run(gateway):
    """kong.md §2 "`plugins=bundled` ... Loading a plugin does not enable it": a
    plugin missing from `plugins` does not run."""
    gw = gateway(KEY_AUTH % "false", plugins="prometheus")
    assert gw.get("/k")[0] == 200


def test_prometheus_request_counters(gateway):
    """kong.md §5 prometheus "Per-request metrics need an enabled plugin instance";
    "`kong_http_requests_total{service,route,code,source,workspace,consumer}`
    (status_code_metrics)"; served at the Status API `/metrics`, next to the
    node-level metrics; counters are per node process."""
    gw = gateway("""\
_format_version: "3.0"
services:
  - name: svc
    url: ECHO
    routes:
      - name: r
        paths: [/p]
        plugins:
          - name: key-auth
consumers:
  - username: alice
    keyauth_credentials: [{key: ka}]
plugins:
  - name: prometheus
    config: {status_code_metrics: true, per_consumer: true}
""")
    for _i in range(3):
        gw.get("/p", {"apikey": "ka"})
    gw.get("/p")
    gw.get("/nowhere")
    status, text, _headers = request("GET", gw.status + "/metrics")
    assert status == 200
    assert ('kong_http_requests_total{service="svc",route="r",code="200",source="service",'
            'workspace="default",consumer="alice"} 3') in text
    assert ('kong_http_requests_total{service="svc",route="r",code="401",source="kong",'
            'workspace="default",consumer=""} 1') in text
    # no route matched: counted by the global instance (UNCONFIRMED labels)
    assert ('kong_http_requests_total{service="",route="",code="404",source="kong",'
            'workspace="default",consumer=""} 1') in text
    assert "kong_node_info{" in text


def test_prometheus_without_status_code_metrics(gateway):
    """kong.md §5 prometheus "`status_code_metrics` ... default **false**": no
    kong_http_requests_total samples."""
    gw = gateway(KEY_AUTH.replace("- name: key-auth\n            config: {hide_credentials: %s}",
                                  "- name: prometheus"))
    assert gw.get("/k")[0] == 200
    text = request("GET", gw.status + "/metrics")[1]
    assert "kong_http_requests_total{" not in text


def test_zipkin_spans_and_b3(gateway, echo):
    """kong.md §5 zipkin "`http_endpoint` (url), `sample_ratio=0.001` (0..1),
    `local_service_name="kong"`"; B3 propagation (plugins.zipkin_access); spans
    POSTed asynchronously as Zipkin JSON v2."""
    collector = Echo()
    try:
        gw = gateway("""\
_format_version: "3.0"
services:
  - name: svc
    url: ECHO
    routes:
      - {name: r, paths: [/z]}
plugins:
  - name: zipkin
    config: {http_endpoint: "%s/api/v2/spans", sample_ratio: 1, local_service_name: edge}
""" % collector.url)
        status, body, _headers = gw.get("/z/a")
        assert status == 200
        sent = body["headers"]
        assert len(sent["X-B3-TraceId"]) == 32 and len(sent["X-B3-SpanId"]) == 16
        assert sent["X-B3-Sampled"] == "1"
        assert wait_for(lambda: len(collector.requests) == 1, 5)
        post = collector.requests[0]
        assert post["method"] == "POST" and post["path"] == "/api/v2/spans"
        span = json.loads(post["body"])[0]
        assert span["traceId"] == sent["X-B3-TraceId"] and span["id"] == sent["X-B3-SpanId"]
        assert span["name"] == "GET" and span["kind"] == "SERVER"
        assert span["localEndpoint"] == {"serviceName": "edge"}
        assert span["tags"]["http.method"] == "GET"
        assert span["tags"]["http.path"] == "/z/a"
        assert span["tags"]["http.status_code"] == "200"
        assert span["timestamp"] > 1e15 and span["duration"] >= 1
        # incoming B3 ids are honoured; Sampled=0 -> no span
        status, body, _headers = gw.get("/z", {"X-B3-TraceId": "a" * 32, "X-B3-SpanId": "b" * 16,
                                        "X-B3-Sampled": "0"})
        sent = body["headers"]
        assert sent["X-B3-TraceId"] == "a" * 32 and sent["X-B3-ParentSpanId"] == "b" * 16
        assert sent["X-B3-Sampled"] == "0"
        time.sleep(0.3)
        assert len(collector.requests) == 1
    finally:
        collector.close()


def test_zipkin_unreachable_collector_never_fails_requests(gateway):
    """Zipkin reporting is asynchronous: an unreachable `http_endpoint` does not
    affect the proxied request."""
    gw = gateway("""\
_format_version: "3.0"
services:
  - {name: svc, url: ECHO, routes: [{name: r, paths: [/z]}]}
plugins:
  - name: zipkin
    config: {http_endpoint: "http://127.0.0.1:9/spans", sample_ratio: 1}
""")
    assert gw.get("/z")[0] == 200


def test_runtime_order_is_kong_priority():
    """kong.md §5 "prometheus (priority 13)"; the other priorities from memory of
    Kong handler.lua files (UNCONFIRMED): zipkin 100000 > jwt 1450 > oauth2 1400 > key-auth 1250 >
    ip-restriction 990 > acl 950 > rate-limiting 910 > prometheus 13."""
    assert P.RUNTIME == ["zipkin", "jwt", "oauth2", "key-auth", "ip-restriction", "acl",
                         "rate-limiting", "prometheus"]
