"""Edge security on the Kong stand-in's proxy (tests/standins/kong/plugins.py): key-auth, jwt (HS256 and
RS256), oauth2 client credentials, acl, rate-limiting per consumer and ip-restriction, as the gateway
layer (playbooks/gateway.yml) configures them.

In-process, like test_kong_plugins.py: a DB-less node loaded from a declarative config, its proxy in front
of an echo backend. Each docstring names the Kong source file the behaviour follows (found in Kong/kong
with the search tool) or the kong.md fact.
"""

import base64
import time
import urllib.parse

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from .kong_helpers import b64url as b64, jwt_token as token, stand_in_modules

stand_in_modules()
import plugins as P  # noqa: E402  pylint: disable=wrong-import-position,import-error


def public_pem(key):
    return key.public_key().public_bytes(serialization.Encoding.PEM,
                                         serialization.PublicFormat.SubjectPublicKeyInfo).decode()


@pytest.fixture(scope="module")
def rsa_keys():
    return rsa.generate_private_key(public_exponent=65537, key_size=2048), \
        rsa.generate_private_key(public_exponent=65537, key_size=2048)


def jwt_config(pem):
    indented = "\n".join("          " + line for line in pem.strip().splitlines())
    return """\
_format_version: "3.0"
services:
  - name: svc
    url: ECHO
    routes:
      - name: j
        paths: [/j]
        plugins:
          - name: jwt
            config: {claims_to_verify: [exp]}
      - name: m
        paths: [/m]
        plugins:
          - name: jwt
            config: {maximum_expiration: 60, claims_to_verify: [exp], realm: edge}
consumers:
  - username: hs
    jwt_secrets:
      - {key: hs-iss, secret: hs-secret}
  - username: rs
    jwt_secrets:
      - key: rs-iss
        algorithm: RS256
        rsa_public_key: |
%s
""" % indented


def test_jwt_rs256_and_hs256_verified_with_exp(gateway, rsa_keys):
    """Kong 3.x kong/plugins/jwt/handler.lua + jwt_parser.lua: RS256 checks the signature against the
    credential's rsa_public_key (RSASSA-PKCS1-v1_5), HS256 against its secret; with
    `claims_to_verify: [exp]` an expired token is 401 `{"exp": "token expired"}` and a missing exp
    `{"exp": "must be a number"}`; failures carry `WWW-Authenticate: Bearer error="invalid_token"`,
    no token `Bearer`; X-Credential-Identifier is the credential's key."""
    good_key, other_key = rsa_keys
    gw = gateway(jwt_config(public_pem(good_key)))
    future, past = int(time.time()) + 600, int(time.time()) - 10
    for tok, user in ((token({"iss": "hs-iss", "exp": future}, b"hs-secret"), "hs"),
                      (token({"iss": "rs-iss", "exp": future}, good_key, "RS256"), "rs")):
        status, body, _headers = gw.get("/j", {"Authorization": "Bearer " + tok})
        assert status == 200, body
        assert body["headers"]["X-Consumer-Username"] == user
        assert body["headers"]["X-Credential-Identifier"] == user + "-iss"
    cases = [
        (token({"iss": "rs-iss", "exp": future}, other_key, "RS256"), {"message": "Invalid signature"}),
        (token({"iss": "rs-iss", "exp": past}, good_key, "RS256"), {"exp": "token expired"}),
        (token({"iss": "hs-iss", "exp": past}, b"hs-secret"), {"exp": "token expired"}),
        (token({"iss": "hs-iss"}, b"hs-secret"), {"exp": "must be a number"}),
        (token({"iss": "rs-iss", "exp": future}, b"hs-secret"), {"message": "Invalid algorithm"}),
        (token({"iss": "", "exp": future}, b"hs-secret"), {"message": "Invalid 'iss' in claims"}),
        ("a.b.c", {"message": "Bad token; invalid JSON"}),
        (b64(b'{"alg":"none"}') + "." + b64(b'{"iss":"hs-iss"}') + ".", {"message": "Bad token; invalid alg"}),
    ]
    for tok, expected in cases:
        status, body, headers = gw.get("/j", {"Authorization": "Bearer " + tok})
        assert (status, body) == (401, expected), tok
        assert headers["WWW-Authenticate"] == 'Bearer error="invalid_token"'
    status, body, headers = gw.get("/j")
    assert (status, body, headers["WWW-Authenticate"]) == (401, {"message": "Unauthorized"}, "Bearer")


def test_jwt_maximum_expiration_and_realm(gateway, rsa_keys):
    """jwt_parser.lua `check_maximum_expiration`: exp missing or further than maximum_expiration ->
    401 `{"exp": "exceeds maximum allowed expiration"}`; handler.lua: `realm` goes into
    WWW-Authenticate."""
    gw = gateway(jwt_config(public_pem(rsa_keys[0])))
    far = token({"iss": "hs-iss", "exp": int(time.time()) + 3600}, b"hs-secret")
    status, body, headers = gw.get("/m", {"Authorization": "Bearer " + far})
    assert (status, body) == (401, {"exp": "exceeds maximum allowed expiration"})
    assert headers["WWW-Authenticate"] == 'Bearer realm="edge" error="invalid_token"'
    near = token({"iss": "hs-iss", "exp": int(time.time()) + 30}, b"hs-secret")
    assert gw.get("/m", {"Authorization": "Bearer " + near})[0] == 200


def test_rsa_public_key_formats(rsa_keys):
    """The stand-in's pure-Python RS256 check reads SubjectPublicKeyInfo and PKCS#1 PEM keys."""
    key = rsa_keys[0]
    numbers = key.public_key().public_numbers()
    pkcs1 = key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.PKCS1).decode()
    assert P.rsa_public_numbers(public_pem(key)) == (numbers.n, numbers.e)
    assert P.rsa_public_numbers(pkcs1) == (numbers.n, numbers.e)
    sig = key.sign(b"data", padding.PKCS1v15(), hashes.SHA512())
    assert P.rsa_verify(pkcs1, b"data", sig, "RS512")
    assert not P.rsa_verify(pkcs1, b"other", sig, "RS512")


OAUTH = """\
_format_version: "3.0"
services:
  - name: svc
    url: ECHO
    routes:
      - name: o
        paths: [/o]
        plugins:
          - name: oauth2
            config: {enable_client_credentials: true, accept_http_if_already_terminated: true}
          - name: acl
            config: {allow: [apps]}
  - name: other
    url: ECHO
    routes:
      - name: other
        paths: [/other]
        plugins:
          - name: oauth2
            config: {enable_client_credentials: true, accept_http_if_already_terminated: true}
consumers:
  - username: app
    acls: [{group: apps}]
    oauth2_credentials:
      - {name: app, client_id: app-id, client_secret: app-secret}
"""
HTTPS = {"X-Forwarded-Proto": "https", "Content-Type": "application/x-www-form-urlencoded"}


def form(**fields):
    return urllib.parse.urlencode(fields).encode()


def test_oauth2_client_credentials_flow(gateway):
    """Kong 3.x kong/plugins/oauth2/access.lua: POST <route>/oauth2/token with
    grant_type=client_credentials, client_id and client_secret (no provision_key without
    authenticated_userid) -> 200 {access_token, token_type: bearer, expires_in: 7200}; the token is
    then accepted as `Authorization: Bearer` on the same service, with the consumer's headers
    (X-Credential-Identifier = client_id); the acl plugin sees the consumer."""
    gw = gateway(OAUTH)
    status, body, headers = gw.get("/o/oauth2/token", HTTPS, "POST",
                                   form(grant_type="client_credentials", client_id="app-id", client_secret="app-secret"))
    assert status == 200, body
    assert body["token_type"] == "bearer" and body["expires_in"] == 7200 and "refresh_token" not in body
    assert headers["Cache-Control"] == "no-store"
    bearer = {"Authorization": "Bearer " + body["access_token"]}
    status, echoed, _headers = gw.get("/o/x", bearer)
    assert status == 200
    assert echoed["headers"]["X-Consumer-Username"] == "app"
    assert echoed["headers"]["X-Credential-Identifier"] == "app-id"
    # a token is bound to the service it was issued for (global_credentials=false)
    status, body, _headers = gw.get("/other", bearer)
    assert (status, body["error"]) == (401, "invalid_token")
    # Basic credentials work too
    basic = dict(HTTPS, Authorization="Basic " + base64.b64encode(b"app-id:app-secret").decode())
    assert gw.get("/o/oauth2/token", basic, "POST", form(grant_type="client_credentials"))[0] == 200


def test_oauth2_behind_a_load_balancer_trusts_the_peer_not_the_forwarded_client(gateway):
    """kong/plugins/oauth2/access.lua `check_https(kong.ip.is_trusted(kong.client.get_ip()), ...)`, and
    kong/pdk/client.lua `get_ip()` = `ngx.var.realip_remote_addr or ngx.var.remote_addr`: the address
    directly connecting decides whether X-Forwarded-Proto is believed, not the client address real_ip_header
    gives (found by the site scenario: the client's own address was checked and the token refused)."""
    grant = form(grant_type="client_credentials", client_id="app-id", client_secret="app-secret")
    behind = dict(HTTPS, **{"X-Forwarded-For": "203.0.113.9"})
    gw = gateway(OAUTH, trusted_ips="127.0.0.1", real_ip_header="X-Forwarded-For")
    status, body, _headers = gw.get("/o/oauth2/token", behind, "POST", grant)
    assert status == 200, body
    untrusted = gateway(OAUTH, trusted_ips="192.0.2.0/24", real_ip_header="X-Forwarded-For")
    status, body, _headers = untrusted.get("/o/oauth2/token", behind, "POST", grant)
    assert (status, body["error_description"]) == (400, "You must use HTTPS")


def test_oauth2_refusals(gateway):
    """access.lua: plain HTTP without X-Forwarded-Proto 400 access_denied "You must use HTTPS"; wrong
    secret 400 invalid_client (401 + `WWW-Authenticate: Basic realm="OAuth2.0"` with Basic
    credentials); other grants 400 unsupported_grant_type; GET on the token endpoint 405; no token
    401 invalid_request "The access token is missing"; unknown token 401 invalid_token."""
    gw = gateway(OAUTH)
    plain = {"Content-Type": "application/x-www-form-urlencoded"}
    grant = form(grant_type="client_credentials", client_id="app-id", client_secret="app-secret")
    status, body, _headers = gw.get("/o/oauth2/token", plain, "POST", grant)
    assert (status, body) == (400, {"error": "access_denied", "error_description": "You must use HTTPS"})
    status, body, _headers = gw.get("/o/oauth2/token", HTTPS, "POST",
                                    form(grant_type="client_credentials", client_id="app-id", client_secret="no"))
    assert (status, body["error"]) == (400, "invalid_client")
    basic = dict(HTTPS, Authorization="Basic " + base64.b64encode(b"app-id:no").decode())
    status, body, headers = gw.get("/o/oauth2/token", basic, "POST", form(grant_type="client_credentials"))
    assert (status, headers["WWW-Authenticate"]) == (401, 'Basic realm="OAuth2.0"')
    status, body, _headers = gw.get("/o/oauth2/token", HTTPS, "POST", form(grant_type="password"))
    assert (status, body["error"]) == (400, "unsupported_grant_type")
    assert gw.get("/o/oauth2/token", HTTPS)[0] == 405
    status, body, headers = gw.get("/o/x")
    assert (status, body["error_description"]) == (401, "The access token is missing")
    assert headers["WWW-Authenticate"] == 'Bearer realm="service"'
    status, body, _headers = gw.get("/o/x", {"Authorization": "Bearer nope"})
    assert (status, body["error"]) == (401, "invalid_token")


EDGE = """\
_format_version: "3.0"
services:
  - name: svc
    url: ECHO
    routes:
      - {name: a, paths: [/a], plugins: [{name: key-auth}, {name: acl, config: {allow: [core-users]}}]}
      - {name: b, paths: [/b], plugins: [{name: key-auth}]}
      - name: admin
        paths: [/admin]
        plugins:
          - {name: ip-restriction, config: {allow: [10.0.50.0/24]}}
consumers:
  - username: limited
    keyauth_credentials: [{key: k-limited}]
    acls: [{group: core-users}]
    plugins:
      - {name: rate-limiting, config: {year: 2}}
  - username: outsider
    keyauth_credentials: [{key: k-outsider}]
"""


def test_consumer_rate_limit_counts_across_routes(gateway):
    """Kong rate-limiting policies `get_local_key` uses the plugin's own route/service ids: a limit
    scoped to a consumer counts that consumer's requests on every route; the 3rd of a limit of 2 is
    429 `{"message": "API rate limit exceeded"}` (handler.lua). Other consumers are not limited."""
    gw = gateway(EDGE)
    key = {"apikey": "k-limited"}
    assert gw.get("/a", key)[0] == 200
    assert gw.get("/b", key)[0] == 200
    status, body, headers = gw.get("/a", key)
    assert (status, body) == (429, {"message": "API rate limit exceeded"})
    assert headers["X-RateLimit-Remaining-Year"] == "0"
    assert gw.get("/b", {"apikey": "k-outsider"})[0] == 200


def test_acl_refuses_a_consumer_outside_the_group(gateway):
    """Kong 3.x kong/plugins/acl/handler.lua: an authenticated consumer with no group of the allow
    list -> 403 `{"message": "You cannot consume this service"}`."""
    gw = gateway(EDGE)
    status, body, _headers = gw.get("/a", {"apikey": "k-outsider"})
    assert (status, body) == (403, {"message": "You cannot consume this service"})


def test_ip_restriction_on_an_admin_route(gateway):
    """Kong 3.x kong/plugins/ip-restriction/handler.lua: a client outside `allow` -> 403
    `{"message": "IP address not allowed: <address>"}`; `status` and `message` replace them."""
    gw = gateway(EDGE)
    status, body, _headers = gw.get("/admin")
    assert (status, body) == (403, {"message": "IP address not allowed: 127.0.0.1"})
    gw2 = gateway(EDGE.replace("config: {allow: [10.0.50.0/24]}", "config: {deny: [127.0.0.1], status: 401, message: go away}"))
    assert gw2.get("/admin")[:2] == (401, {"message": "go away"})
