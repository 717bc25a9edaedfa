"""Proxy-side plugin runtime of the Kong 3.9 stand-in (test double, NOT Kong).

Runs, per proxied request, the enabled plugins that apply to it, in Kong's
priority order (highest first; priorities from schemas.py, kong.md §5
"prometheus (priority 13)", the others from memory of
kong/plugins/<name>/handler.lua: zipkin 100000, jwt 1450, oauth2 1400, key-auth 1250,
ip-restriction 990, acl 950, rate-limiting 910).

Scoping (from memory of kong/runloop/plugins_iterator.lua, UNCONFIRMED in
detail): for each plugin name the most specific enabled instance wins, in the
order route+service+consumer, route+consumer, service+consumer,
route+service, consumer, route, service, global.  The consumer used is the
one authenticated *so far*, so consumer-scoped instances only apply to
plugins that run after the authentication plugin (lower priority), as in
Kong.  The log phase (prometheus, zipkin) runs for every collected plugin,
also when an earlier plugin ended the request.

Only the plugins below have runtime behaviour; others (cors, basic-auth,
hmac-auth, request-transformer) are accepted by the Admin API and do nothing
on the proxy.  The authentication plugins (key-auth, jwt, oauth2), acl,
ip-restriction and rate-limiting were checked against Kong 3.x's
kong/plugins/<name>/handler.lua (oauth2: access.lua) found in Kong/kong with
the search tool; each function's docstring says what it follows.
"""

import base64
import hashlib
import hmac
import ipaddress
import json
import os
import random
import threading
import time
import urllib.parse
import urllib.request
import uuid

import conf as C
import schemas as S


class Exit(Exception):
    """A plugin ends the request (kong.response.exit / kong.response.error)."""

    def __init__(self, status, body, headers=None):
        super().__init__(status)
        self.status = status
        self.body = body
        self.headers = headers or {}


def _error(status, message, headers=None):
    # kong.response.error(status, message) -> {"message": message}
    return Exit(status, {"message": message}, headers)


class Ctx:
    """One proxied request as the plugins see it."""

    def __init__(self, node, method, path, query, headers, body, client_ip, route, service, peer_ip=None):
        self.node = node
        self.store = node.store
        self.method = method
        self.path = path
        self.query = dict(query)
        self.headers = dict(headers.items())   # what goes upstream
        self.body = body
        self.client_ip = client_ip                 # kong.client.get_forwarded_ip() (after real_ip)
        self.peer_ip = peer_ip or client_ip        # kong.client.get_ip(): the address directly connecting
        self.route = route
        self.service = service
        self.consumer = None
        self.credential = None
        self.response_headers = {}
        self.status = None
        self.source = "kong"          # "service" once the upstream answered
        self.started = time.time()
        self.ended = None
        self.conf_cache = {}

    def header(self, name):
        low = name.lower()
        for key, value in self.headers.items():
            if key.lower() == low:
                return value
        return None

    def set_header(self, name, value):
        self.clear_header(name)
        self.headers[name] = value

    def clear_header(self, name):
        low = name.lower()
        for key in [k for k in self.headers if k.lower() == low]:
            del self.headers[key]


# ------------------------------------------------------------------ scoping
def loaded(node, name):
    """kong.md §2 "`plugins=bundled`. Accepts `bundled,custom1`, a list of names
    only, or `off`. Loading a plugin does not enable it."."""
    names = C.as_list(node.conf.get("plugins"))
    return "bundled" in names or name in names


def _ref(value):
    return value.get("id") if isinstance(value, dict) else None


def resolve(ctx, name):
    """The instance of plugin ``name`` that applies to ``ctx`` (or None)."""
    route_id = ctx.route["id"] if ctx.route else None
    service_id = ctx.service["id"] if ctx.service else None
    consumer_id = ctx.consumer["id"] if ctx.consumer else None
    best, best_rank = None, None
    combos = [(route_id, service_id, consumer_id), (route_id, None, consumer_id),
              (None, service_id, consumer_id), (route_id, service_id, None),
              (None, None, consumer_id), (route_id, None, None), (None, service_id, None),
              (None, None, None)]
    for plugin in ctx.store.iter_all("plugins"):
        if plugin.get("name") != name or not plugin.get("enabled", True):
            continue
        scope = (_ref(plugin.get("route")), _ref(plugin.get("service")),
                 _ref(plugin.get("consumer")))
        if scope not in combos:
            continue      # scoped to another route/service/consumer
        rank = combos.index(scope)
        if best_rank is None or rank < best_rank:
            best, best_rank = plugin, rank
    return best


# ----------------------------------------------------------------- helpers
def _consumer_headers(ctx, consumer, credential, anonymous=False, identifier=None):
    """Upstream headers set by the auth plugins (Kong kong/constants.lua HEADERS;
    key-auth, jwt and oauth2 `set_consumer` in Kong 3.x): X-Credential-Identifier
    is the credential's id (key-auth), its key (jwt) or its client_id (oauth2),
    passed as ``identifier``."""
    ctx.consumer, ctx.credential = consumer, credential
    for name, value in (("X-Consumer-ID", consumer and consumer["id"]),
                        ("X-Consumer-Custom-ID", consumer and consumer.get("custom_id")),
                        ("X-Consumer-Username", consumer and consumer.get("username"))):
        if value:
            ctx.set_header(name, value)
        else:
            ctx.clear_header(name)
    if credential:
        ctx.set_header("X-Credential-Identifier", identifier or credential["id"])
        ctx.clear_header("X-Anonymous-Consumer")
    else:
        ctx.clear_header("X-Credential-Identifier")
        if anonymous:
            ctx.set_header("X-Anonymous-Consumer", "true")


def _anonymous(ctx, conf, failure):
    """`anonymous`: a consumer id or username used when authentication fails."""
    if not conf.get("anonymous"):
        raise failure
    if ctx.consumer is not None:
        return
    anon = ctx.store.get("consumers", conf["anonymous"]) or ctx.store.find_by_unique(
        "consumers", "username", conf["anonymous"])
    if anon is None:
        # UNCONFIRMED text (from memory of kong/plugins/key-auth/handler.lua)
        raise _error(500, "An unexpected error occurred")
    _consumer_headers(ctx, anon, None, anonymous=True)


# ---------------------------------------------------------------- key-auth
def key_auth(ctx, conf):
    """kong.md §5 key-auth "`key_names=["apikey"]`, `hide_credentials=false`,
    `anonymous=null`, `key_in_header=true`, `key_in_query=true`,
    `key_in_body=false`".  Statuses, messages and headers from Kong 3.x
    kong/plugins/key-auth/handler.lua (the revision with `realm`): no key -> 401
    "No API key found in request", unknown key -> 401 "Unauthorized", both with
    `WWW-Authenticate: Key` (`Key realm="<realm>"` when `realm` is set);
    X-Credential-Identifier is the credential's id."""
    if ctx.consumer is not None and conf.get("anonymous") and ctx.credential:
        return   # already authenticated by another plugin (logical OR)
    key, found_in = None, None
    form = None
    for name in conf.get("key_names") or ["apikey"]:
        if conf.get("key_in_header", True) and ctx.header(name):
            key, found_in = ctx.header(name), ("header", name)
        elif conf.get("key_in_query", True) and name in ctx.query:
            key, found_in = ctx.query[name], ("query", name)
        elif conf.get("key_in_body", False) and ctx.body:
            if form is None:
                try:
                    form = json.loads(ctx.body) if (ctx.header("Content-Type") or "").startswith(
                        "application/json") else dict(urllib.parse.parse_qsl(ctx.body.decode()))
                except (ValueError, UnicodeDecodeError):
                    form = {}
            if isinstance(form, dict) and form.get(name):
                key, found_in = str(form[name]), ("body", name)
        if key:
            break
    realm = {"WWW-Authenticate": 'Key realm="%s"' % conf["realm"] if conf.get("realm") else "Key"}
    if not key:
        return _anonymous(ctx, conf, _error(401, "No API key found in request", realm))
    cred = ctx.store.find_by_unique("keyauth_credentials", "key", key)
    if cred is None:
        return _anonymous(ctx, conf, _error(401, "Unauthorized", realm))
    consumer = ctx.store.get("consumers", cred["consumer"]["id"])
    if conf.get("hide_credentials"):
        where, name = found_in
        if where == "header":
            ctx.clear_header(name)
        elif where == "query":
            ctx.query.pop(name, None)
        elif isinstance(form, dict):
            form.pop(name, None)
            ctx.body = urllib.parse.urlencode(form).encode()
    _consumer_headers(ctx, consumer, cred)
    return None


# --------------------------------------------------------------------- jwt
JWT_ALGS = {"HS256": hashlib.sha256, "HS384": hashlib.sha384, "HS512": hashlib.sha512}
# RSASSA-PKCS1-v1_5 (RFC 8017 §8.2): the DER DigestInfo prefix of each hash.
JWT_RSA = {"RS256": ("sha256", "3031300d060960864801650304020105000420"),
           "RS384": ("sha384", "3041300d060960864801650304020205000430"),
           "RS512": ("sha512", "3051300d060960864801650304020305000440")}
# What Kong's jwt_parser.lua `alg_verify` knows; a token with another alg is
# "Bad token; invalid alg".  ES*, PS* and EdDSA are known to Kong but not
# verified by the stand-in (their tokens get 401 "Invalid signature").
JWT_KNOWN = tuple(JWT_ALGS) + tuple(JWT_RSA) + ("ES256", "ES384", "ES512", "PS256", "PS384", "PS512", "EdDSA")


def _b64d(text):
    text = text + "=" * (-len(text) % 4)
    return base64.urlsafe_b64decode(text.encode())


def _der(data, pos):
    """One DER element at ``pos``: (tag, content, next position)."""
    tag, length = data[pos], data[pos + 1]
    pos += 2
    if length & 0x80:
        count = length & 0x7F
        length = int.from_bytes(data[pos:pos + count], "big")
        pos += count
    return tag, data[pos:pos + length], pos + length


def rsa_public_numbers(pem):
    """(n, e) of a PEM RSA public key: SubjectPublicKeyInfo ("BEGIN PUBLIC KEY",
    what Kong's jwt credential `rsa_public_key` holds) or PKCS#1 ("BEGIN RSA
    PUBLIC KEY").  Pure Python: the stand-in runs on Debian's python3 without
    the cryptography package."""
    lines = [line.strip() for line in pem.strip().splitlines()]
    der = base64.b64decode("".join(line for line in lines if line and not line.startswith("-----")))
    _tag, body, _end = _der(der, 0)
    if "BEGIN RSA PUBLIC KEY" not in pem:
        _tag, _algorithm, pos = _der(body, 0)
        tag, bits, _end = _der(body, pos)
        if tag != 0x03:
            raise ValueError("not a SubjectPublicKeyInfo")
        _tag, body, _end = _der(bits[1:], 0)
    _tag, modulus, pos = _der(body, 0)
    _tag, exponent, _end = _der(body, pos)
    return int.from_bytes(modulus, "big"), int.from_bytes(exponent, "big")


def rsa_verify(pem, data, signature, alg):
    """RS256/RS384/RS512 (RSASSA-PKCS1-v1_5, RFC 7518 §3.3): what Kong's
    jwt_parser.lua does with openssl `pkey:verify(signature, digest)`."""
    hashname, prefix = JWT_RSA[alg]
    modulus, exponent = rsa_public_numbers(pem)
    size = (modulus.bit_length() + 7) // 8
    if len(signature) != size:
        return False
    decoded = pow(int.from_bytes(signature, "big"), exponent, modulus).to_bytes(size, "big")
    digest_info = bytes.fromhex(prefix) + hashlib.new(hashname, data).digest()
    if size < len(digest_info) + 11:
        return False
    expected = b"\x00\x01" + b"\xff" * (size - len(digest_info) - 3) + b"\x00" + digest_info
    return hmac.compare_digest(decoded, expected)


def _jwt_tokens(ctx, conf):
    """kong/plugins/jwt/handler.lua `retrieve_tokens`: the distinct tokens of
    the query (`uri_param_names`), cookies (`cookie_names`) and headers
    (`header_names`, `[Bb]earer <token>`)."""
    tokens = set()
    for name in conf.get("uri_param_names") or []:
        if ctx.query.get(name):
            tokens.add(ctx.query[name])
    cookies = ctx.header("Cookie") or ""
    for part in cookies.split(";"):
        name, _sep, value = part.strip().partition("=")
        if name in (conf.get("cookie_names") or []) and value:
            tokens.add(value)
    for name in conf.get("header_names") or ["authorization"]:
        value = ctx.header(name)
        if value:
            low = value.strip()
            if low[:7].lower() == "bearer " and low[7:].strip():
                tokens.add(low[7:].strip())
    return tokens


def jwt(ctx, conf):
    """kong.md §5 jwt "`uri_param_names=["jwt"]`, `cookie_names=[]`,
    `header_names=["authorization"]`, `key_claim_name="iss"`,
    `secret_is_base64=false`", "`claims_to_verify` (exp|nbf)",
    "`maximum_expiration=0`".  Follows Kong 3.x kong/plugins/jwt/handler.lua
    (the revision with `realm`) and jwt_parser.lua: every failure is 401 with
    `WWW-Authenticate: Bearer` (no token) or `Bearer error="invalid_token"`
    (`Bearer realm="<realm>" ...` with `realm`); no token "Unauthorized",
    several "Multiple tokens provided", undecodable "Bad token; invalid JSON",
    an alg the parser does not know "Bad token; invalid alg", claim missing
    "No mandatory 'iss' in claims", empty "Invalid 'iss' in claims", no
    credential "No credentials found for given 'iss'", alg other than the
    credential's "Invalid algorithm", bad signature "Invalid signature"; the
    claims checks answer the errors table itself: `{"exp":"token expired"}`,
    `{"nbf":"token not valid yet"}`, `{"exp":"must be a number"}` (claim
    missing or not a number), `{"exp":"exceeds maximum allowed expiration"}`.
    HS256/384/512 use the credential's `secret`, RS256/384/512 its
    `rsa_public_key` (PEM); ES*, PS* and EdDSA are not verified by the stand-in.
    X-Credential-Identifier is the credential's key."""
    base = 'Bearer realm="%s"' % conf["realm"] if conf.get("realm") else "Bearer"
    invalid = {"WWW-Authenticate": base + ' error="invalid_token"'}

    def fail(message=None, errors=None, headers=None):
        return _anonymous(ctx, conf, Exit(401, errors if errors else {"message": message},
                                          headers or invalid))

    tokens = _jwt_tokens(ctx, conf)
    if not tokens:
        return fail("Unauthorized", headers={"WWW-Authenticate": base})
    if len(tokens) > 1:
        return fail("Multiple tokens provided")
    token = tokens.pop()
    parts = token.split(".", 2)
    try:
        head_b64, claims_b64, sig_b64 = (parts + ["", ""])[:3]
        header = json.loads(_b64d(head_b64))
        claims = json.loads(_b64d(claims_b64))
        signature = _b64d(sig_b64)
        if not isinstance(header, dict) or not isinstance(claims, dict):
            raise ValueError("invalid JSON")
    except (ValueError, UnicodeDecodeError, TypeError):
        return fail("Bad token; invalid JSON")
    if not isinstance(header.get("alg"), str) or header["alg"] not in JWT_KNOWN:
        return fail("Bad token; invalid alg")
    claim = conf.get("key_claim_name") or "iss"
    key = claims.get(claim) if claims.get(claim) is not None else header.get(claim)
    if key is None:
        return fail("No mandatory '%s' in claims" % claim)
    if key == "":
        return fail("Invalid '%s' in claims" % claim)
    cred = ctx.store.find_by_unique("jwt_secrets", "key", key)
    if cred is None:
        return fail("No credentials found for given '%s'" % claim)
    alg = cred.get("algorithm") or "HS256"
    if header["alg"] != alg:
        return fail("Invalid algorithm")
    secret = cred.get("secret") if alg.startswith("HS") else cred.get("rsa_public_key")
    if secret and conf.get("secret_is_base64"):
        try:
            secret = _b64d(secret).decode("latin-1")
        except (ValueError, UnicodeDecodeError):
            secret = None
    if not secret:
        return fail("Invalid key/secret")
    signed = ("%s.%s" % (head_b64, claims_b64)).encode()
    if alg in JWT_ALGS:
        good = hmac.compare_digest(hmac.new(secret.encode("latin-1"), signed, JWT_ALGS[alg]).digest(), signature)
    elif alg in JWT_RSA:
        try:
            good = rsa_verify(secret, signed, signature, alg)
        except (ValueError, IndexError):
            good = False
    else:
        good = False
    if not good:
        return fail("Invalid signature")
    errors = {}
    now = time.time()
    for name in conf.get("claims_to_verify") or []:
        value = claims.get(name)
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            errors[name] = "must be a number"
        elif name == "exp" and value <= now:
            errors[name] = "token expired"
        elif name == "nbf" and value > now:
            errors[name] = "token not valid yet"
    if errors:
        return fail(errors=errors)
    if (conf.get("maximum_expiration") or 0) > 0:
        exp = claims.get("exp")
        if not isinstance(exp, (int, float)) or exp - now > conf["maximum_expiration"]:
            return fail(errors={"exp": "exceeds maximum allowed expiration"})
    consumer = ctx.store.get("consumers", cred["consumer"]["id"])
    if consumer is None:
        return fail("Could not find consumer for '%s=%s'" % (claim, key), headers={})
    _consumer_headers(ctx, consumer, cred, identifier=cred.get("key"))
    return None


# ------------------------------------------------------------------ oauth2
_TOKENS_LOCK = threading.Lock()


def _token_store(store):
    """Tokens live in the store, as Kong keeps them in its database
    (`oauth2_tokens`), so every node of a cluster accepts them.  Not exposed by
    the stand-in's Admin API."""
    with _TOKENS_LOCK:
        if "oauth2_tokens" not in getattr(store, "_config", {}):
            store.configure("oauth2_tokens", unique=[("access_token",)], foreign=["credential"])
    return store


def _form(ctx):
    """kong/plugins/oauth2/access.lua `retrieve_parameters`: the query merged
    with a form-urlencoded or JSON body on POST/PUT/PATCH."""
    params = dict(ctx.query)
    if ctx.method in ("POST", "PUT", "PATCH") and ctx.body:
        try:
            if (ctx.header("Content-Type") or "").startswith("application/json"):
                body = json.loads(ctx.body)
            else:
                body = dict(urllib.parse.parse_qsl(ctx.body.decode()))
        except (ValueError, UnicodeDecodeError):
            body = {}
        if isinstance(body, dict):
            params.update(body)
    return params


def _https(ctx, conf):
    """kong/tools/http.lua `check_https(trusted_ip, allow_terminated)`: the
    proxy's scheme is https, or `accept_http_if_already_terminated` and the
    request comes from a `trusted_ips` address with `X-Forwarded-Proto: https`.
    kong/plugins/oauth2/access.lua calls it as
    `check_https(kong.ip.is_trusted(kong.client.get_ip()), ...)`, and
    kong/pdk/client.lua `get_ip()` is `ngx.var.realip_remote_addr or
    ngx.var.remote_addr`: the address directly connecting (the load balancer),
    not the forwarded client address. The stand-in proxy is plain HTTP."""
    if not conf.get("accept_http_if_already_terminated"):
        return False
    trusted = C.as_list(ctx.node.conf.get("trusted_ips"))
    if trusted and not _ip_in(ctx.peer_ip, trusted):
        return False
    return (ctx.header("X-Forwarded-Proto") or "").lower() == "https"


def _oauth2_token(ctx, conf):
    """kong/plugins/oauth2/access.lua `issue_token`, client-credentials grant
    only (authorization_code, password and refresh_token answer
    unsupported_grant_type in the stand-in): no HTTPS 400 access_denied "You
    must use HTTPS"; grant_type not enabled 400 unsupported_grant_type "Invalid
    grant_type"; unknown client or wrong secret 400 invalid_client "Invalid
    client authentication" (401 with `WWW-Authenticate: Basic
    realm="OAuth2.0"` when the credentials came in a Basic Authorization
    header); `provision_key` is only checked when `authenticated_userid` is
    sent; else 200 `{access_token, token_type: "bearer", expires_in}` (no
    refresh token for this grant).  Headers `cache-control: no-store`,
    `pragma: no-cache`."""
    params = _form(ctx)
    headers = {"Cache-Control": "no-store", "Pragma": "no-cache"}
    grant = params.get("grant_type")
    error, status = None, 400
    if not _https(ctx, conf):
        error = {"error": "access_denied", "error_description": "You must use HTTPS"}
    elif not (conf.get("enable_client_credentials") and grant == "client_credentials"):
        error = {"error": "unsupported_grant_type", "error_description": "Invalid grant_type"}
    else:
        client_id, client_secret, basic = params.get("client_id"), params.get("client_secret"), False
        if not (client_id and client_secret):
            auth = ctx.header(conf.get("auth_header_name") or "authorization") or ""
            if auth[:6].lower() == "basic ":
                basic = True
                try:
                    client_id, _sep, client_secret = base64.b64decode(auth[6:].strip()).decode().partition(":")
                except (ValueError, UnicodeDecodeError):
                    client_id = client_secret = None
        cred = ctx.store.find_by_unique("oauth2_credentials", "client_id", client_id) if client_id else None
        if cred is None or not _secret_matches(cred, client_secret):
            error = {"error": "invalid_client", "error_description": "Invalid client authentication"}
            if basic:
                status = 401
                headers["WWW-Authenticate"] = 'Basic realm="OAuth2.0"'
        elif params.get("authenticated_userid") and params.get("provision_key") != conf.get("provision_key"):
            error = {"error": "invalid_provision_key", "error_description": "Invalid provision_key"}
    if error:
        if params.get("state"):
            error["state"] = params["state"]
        raise Exit(status, error, headers)
    expires = int(conf.get("token_expiration") or 0)
    token = {"id": str(uuid.uuid4()), "access_token": _hexid(16), "credential": {"id": cred["id"]},
             "service": None if conf.get("global_credentials") else {"id": ctx.service["id"]},
             "authenticated_userid": params.get("authenticated_userid"), "scope": params.get("scope"),
             "expires_in": expires, "created_at": int(time.time())}
    _token_store(ctx.store).insert("oauth2_tokens", token)
    body = {"access_token": token["access_token"], "token_type": "bearer"}
    if expires > 0:
        body["expires_in"] = expires
    if params.get("state"):
        body["state"] = params["state"]
    raise Exit(200, body, headers)


def _secret_matches(cred, secret):
    """Plain `client_secret`, or a `hash_secret` one ($pbkdf2-sha512$..., the
    stand-in Admin API's hashing)."""
    stored = cred.get("client_secret") or ""
    if not secret:
        return False
    if cred.get("hash_secret") and stored.startswith("$pbkdf2-sha512$"):
        _alg, _name, params, salt, digest = stored.split("$")
        iterations = int(params.split(",")[0].split("=")[1])
        raw_salt = base64.b64decode(salt + "=" * (-len(salt) % 4))
        size = len(base64.b64decode(digest + "=" * (-len(digest) % 4)))
        mine = hashlib.pbkdf2_hmac("sha512", secret.encode(), raw_salt, iterations, size)
        return hmac.compare_digest(base64.b64encode(mine).decode().rstrip("="), digest)
    return hmac.compare_digest(stored.encode(), secret.encode())


def oauth2(ctx, conf):
    """kong.md §5 oauth2 "`token_expiration=7200`", "`enable_client_credentials`
    ... all false", "`global_credentials=false`", "`auth_header_name=
    "authorization"`".  Kong 3.x kong/plugins/oauth2/access.lua `execute`: a
    path ending in /oauth2/token is the token endpoint (POST only, else 405
    invalid_method), see _oauth2_token; /oauth2/authorize is not implemented
    (405 in the stand-in).  Other requests need `Authorization: Bearer <token>`
    (or `access_token` in the query or body): missing 401 `{"error":
    "invalid_request", "error_description": "The access token is missing"}`
    with `WWW-Authenticate: Bearer realm="service"`; unknown, expired or issued
    for another service 401 `{"error": "invalid_token", "error_description":
    "The access token is invalid or has expired"}` with `Bearer
    realm="service" error="invalid_token" error_description="..."`.  Sets the
    consumer headers (X-Credential-Identifier = client_id) and
    X-Authenticated-Scope / X-Authenticated-UserId."""
    path = ctx.path.rstrip("/")
    for endpoint, label in (("/oauth2/token", "token"), ("/oauth2/authorize", "authorization")):
        if path.endswith(endpoint):
            if ctx.method != "POST" or label == "authorization":
                description = "The HTTP method %s is invalid for the %s endpoint" % (ctx.method, label)
                raise Exit(405, {"error": "invalid_method", "error_description": description},
                           {"WWW-Authenticate": 'Bearer realm="service" error="invalid_method" '
                                                'error_description="%s"' % description})
            return _oauth2_token(ctx, conf)
    if conf.get("anonymous") and ctx.credential:
        return None
    access_token = None
    auth = ctx.header(conf.get("auth_header_name") or "authorization")
    if auth:
        parts = auth.split()
        if len(parts) == 2 and parts[0].lower() in ("bearer", "token"):
            access_token = parts[1]
    else:
        access_token = _form(ctx).get("access_token")
    if not access_token:
        return _anonymous(ctx, conf, Exit(401, {"error": "invalid_request",
                                                "error_description": "The access token is missing"},
                                          {"WWW-Authenticate": 'Bearer realm="service"'}))
    invalid = Exit(401, {"error": "invalid_token",
                         "error_description": "The access token is invalid or has expired"},
                   {"WWW-Authenticate": 'Bearer realm="service" error="invalid_token" '
                                        'error_description="The access token is invalid or has expired"'})
    token = _token_store(ctx.store).find_by_unique("oauth2_tokens", "access_token", access_token)
    if token is None:
        return _anonymous(ctx, conf, invalid)
    service = _ref(token.get("service"))
    if (service and service != ctx.service["id"]) or (not service and not conf.get("global_credentials")):
        return _anonymous(ctx, conf, invalid)
    if token["expires_in"] > 0 and time.time() - token["created_at"] > token["expires_in"]:
        return _anonymous(ctx, conf, invalid)
    cred = ctx.store.get("oauth2_credentials", token["credential"]["id"])
    consumer = cred and ctx.store.get("consumers", cred["consumer"]["id"])
    if consumer is None:
        return _anonymous(ctx, conf, invalid)
    if conf.get("hide_credentials") and auth:
        ctx.clear_header(conf.get("auth_header_name") or "authorization")
    _consumer_headers(ctx, consumer, cred, identifier=cred.get("client_id"))
    for name, value in (("X-Authenticated-Scope", token.get("scope")),
                        ("X-Authenticated-UserId", token.get("authenticated_userid"))):
        if value:
            ctx.set_header(name, value)
        else:
            ctx.clear_header(name)
    return None


# ---------------------------------------------------------------------- acl
def acl(ctx, conf):
    """kong.md §5 acl "`allow` or `deny`: exactly one is required",
    "`hide_groups_header=false`".  403 `{"message":"You cannot consume this
    service"}` (Kong kong/plugins/acl/handler.lua, seen in pre-3.x revisions);
    no consumer -> 401 "Unauthorized" (from memory, UNCONFIRMED).  Groups come
    from the consumer's `acls` credentials.  X-Consumer-Groups is the
    ", "-joined group list (UNCONFIRMED separator)."""
    if ctx.consumer is None:
        raise _error(401, "Unauthorized")
    groups = []
    for acl_id in ctx.store.referencing("acls", "consumer", ctx.consumer["id"]):
        row = ctx.store.get("acls", acl_id)
        if row:
            groups.append(row["group"])
    if conf.get("allow"):
        blocked = not set(groups) & set(conf["allow"])
    else:
        blocked = bool(set(groups) & set(conf.get("deny") or []))
    if blocked:
        raise _error(403, "You cannot consume this service")
    if not conf.get("hide_groups_header") and groups:
        ctx.set_header("X-Consumer-Groups", ", ".join(groups))


# ---------------------------------------------------------- ip-restriction
def _ip_in(ip, cidrs):
    try:
        addr = ipaddress.ip_address(ip)
    except ValueError:
        return False
    for cidr in cidrs or []:
        try:
            if addr in ipaddress.ip_network(cidr, strict=False):
                return True
        except ValueError:
            continue
    return False


def ip_restriction(ctx, conf):
    """kong.md §5 ip-restriction "`allow` and/or `deny` (IP or CIDR arrays, at
    least one), `status` (number, optional), `message` (optional)".  Deny is
    checked first, then allow.  Kong 3.x kong/plugins/ip-restriction/handler.lua:
    `status = conf.status or 403`, message `conf.message` or "IP address not
    allowed: <address>" through kong.response.error (so `{"message": ...}`);
    one 3.x revision formats `ngx.var.remote_addr` (used here), an older one the
    binary address (which revision 3.9.3 ships is UNCONFIRMED)."""
    blocked = False
    if conf.get("deny") and _ip_in(ctx.client_ip, conf["deny"]):
        blocked = True
    elif conf.get("allow") and not _ip_in(ctx.client_ip, conf["allow"]):
        blocked = True
    if blocked:
        raise _error(conf.get("status") or 403,
                     conf.get("message") or "IP address not allowed: %s" % ctx.client_ip)


# ------------------------------------------------------------ rate-limiting
PERIODS = (("second", 1), ("minute", 60), ("hour", 3600), ("day", 86400),
           ("month", 2592000), ("year", 31536000))   # month/year: fixed lengths (stand-in)
_rl_lock = threading.Lock()
_rl_counters = {}


def _rl_identifier(ctx, conf):
    by = conf.get("limit_by") or "consumer"
    ident = None
    if by == "consumer":
        ident = (ctx.consumer or {}).get("id") or (ctx.credential or {}).get("id")
    elif by == "credential":
        ident = (ctx.credential or {}).get("id")
    elif by == "service":
        ident = (ctx.service or {}).get("id")
    elif by == "header":
        ident = ctx.header(conf.get("header_name") or "")
    elif by == "path":
        ident = ctx.path if ctx.path == conf.get("path") else None
    return ident or ctx.client_ip


def rate_limiting(ctx, conf):
    """kong.md §5 rate-limiting "`limit_by="consumer"`
    (consumer|credential|ip|service|header|path)", "`hide_client_headers=false`,
    `error_code=429`, `error_message="API rate limit exceeded"`".  Policy
    `local` semantics for every policy (per node process, fixed windows).
    Headers from memory of kong/plugins/rate-limiting/handler.lua (UNCONFIRMED):
    `X-RateLimit-Limit-<Period>`, `X-RateLimit-Remaining-<Period>`,
    `RateLimit-Limit`, `RateLimit-Remaining`, `RateLimit-Reset` (of the
    period with the fewest remaining), `Retry-After` when blocked;
    identifiers fall back to the client IP.  Checked against Kong
    kong/plugins/rate-limiting/handler.lua: 429 `{"message":"API rate limit
    exceeded"}`, the consumer identifier is the consumer's id, else the
    credential's, else the forwarded client IP; counters are per plugin scope
    (see below), not per requested route."""
    now = time.time()
    ident = _rl_identifier(ctx, conf)
    # Kong rate-limiting/policies/init.lua `get_local_key`: "ratelimit:<route_id>:
    # <service_id>:<identifier>:<period_date>:<period>" with the ids of the
    # *plugin's* scope (conf.route_id / conf.service_id, an empty UUID when
    # unset), so a consumer- or global-scoped limit counts across every route.
    plugin = getattr(ctx, "plugin", None) or {}
    scope = (_ref(plugin.get("route")), _ref(plugin.get("service")), ident)
    headers, blocked = {}, []
    usage = []
    with _rl_lock:
        for period, length in PERIODS:
            limit = conf.get(period)
            if limit is None:
                continue
            start = int(now // length * length)
            key = scope + (period, start)
            used = _rl_counters.get(key, 0)
            reset = max(1, int(start + length - now + 0.999))
            usage.append([period, limit, used, reset, key])
            if used >= limit:
                blocked.append(reset)
        if not blocked:
            for row in usage:
                _rl_counters[row[4]] = row[2] = row[2] + 1
        if len(_rl_counters) > 100000:
            _rl_counters.clear()
    if not conf.get("hide_client_headers") and usage:
        tightest = None
        for period, limit, used, reset, _key in usage:
            remaining = max(0, limit - used)
            headers["X-RateLimit-Limit-%s" % period.capitalize()] = str(limit)
            headers["X-RateLimit-Remaining-%s" % period.capitalize()] = str(remaining)
            if tightest is None or remaining < tightest[1]:
                tightest = (limit, remaining, reset)
        headers["RateLimit-Limit"] = str(tightest[0])
        headers["RateLimit-Remaining"] = str(tightest[1])
        headers["RateLimit-Reset"] = str(tightest[2])
    if blocked:
        headers["Retry-After"] = str(max(blocked))
        raise Exit(conf.get("error_code") or 429,
                   {"message": conf.get("error_message") or "API rate limit exceeded"}, headers)
    ctx.response_headers.update(headers)


# --------------------------------------------------------------- prometheus
def prometheus_log(ctx, conf):
    """kong.md §5 prometheus: "Per-request metrics need an enabled plugin
    instance, because they are recorded in the plugin's log phase";
    "`kong_http_requests_total{service,route,code,source,workspace,consumer}`
    (status_code_metrics)".  Label values from memory of exporter.lua
    (UNCONFIRMED): service name (else host), route name (else id), consumer
    username only with `per_consumer`, source "service" when the upstream
    answered, "kong" when Kong (a plugin, no route) did.  Latency histograms are
    not recorded."""
    if not conf.get("status_code_metrics"):
        return
    service = ctx.service and (ctx.service.get("name") or ctx.service.get("host")) or ""
    route = ctx.route and (ctx.route.get("name") or ctx.route["id"]) or ""
    consumer = ""
    if conf.get("per_consumer") and ctx.consumer:
        consumer = ctx.consumer.get("username") or ctx.consumer["id"]
    key = (service, route, str(ctx.status), ctx.source, consumer)
    with ctx.node.counter_lock:
        ctx.node.proxy_metrics[key] = ctx.node.proxy_metrics.get(key, 0) + 1


# ------------------------------------------------------------------- zipkin
def _hexid(nbytes):
    return os.urandom(nbytes).hex()


def zipkin_access(ctx, conf):
    """kong.md §5 zipkin "`http_endpoint` (url), `sample_ratio=0.001` (0..1),
    `local_service_name="kong"`", "`traceid_byte_count=16` (8|16)",
    "`header_type="preserve"`", "`http_span_name="method"`".  B3 multi-header
    propagation only (X-B3-TraceId/SpanId/ParentSpanId/Sampled); an incoming
    trace id and sampling decision are honoured, else sampled with
    `sample_ratio`.  One SERVER span per request (Kong also reports proxy /
    balancer child spans: not imitated)."""
    incoming = ctx.header("X-B3-TraceId")
    sampled_in = ctx.header("X-B3-Sampled")
    trace_id = incoming or _hexid(conf.get("traceid_byte_count") or 16)
    parent = ctx.header("X-B3-SpanId") if incoming else None
    if sampled_in in ("1", "true", "d"):
        sampled = True
    elif sampled_in in ("0", "false"):
        sampled = False
    else:
        ratio = conf.get("sample_ratio")
        sampled = random.random() < (0.001 if ratio is None else ratio)
    span_id = _hexid(8)
    ctx.zipkin = {"trace_id": trace_id, "span_id": span_id, "parent": parent,
                  "sampled": sampled, "start": ctx.started}
    ctx.set_header("X-B3-TraceId", trace_id)
    ctx.set_header("X-B3-SpanId", span_id)
    if parent:
        ctx.set_header("X-B3-ParentSpanId", parent)
    else:
        ctx.clear_header("X-B3-ParentSpanId")
    ctx.set_header("X-B3-Sampled", "1" if sampled else "0")
    if conf.get("http_response_header_for_traceid"):
        ctx.response_headers[conf["http_response_header_for_traceid"]] = trace_id


def zipkin_log(ctx, conf):
    """Zipkin JSON v2 span list POSTed to `http_endpoint` from a background
    thread; failures are only logged, never fail the request."""
    state = getattr(ctx, "zipkin", None)
    if not state or not state["sampled"] or not conf.get("http_endpoint"):
        return
    name = ctx.method if conf.get("http_span_name") != "method_path" else \
        "%s %s" % (ctx.method, ctx.path)
    span = {
        "traceId": state["trace_id"], "id": state["span_id"], "name": name,
        "kind": "SERVER",
        "timestamp": int(state["start"] * 1_000_000),
        "duration": max(1, int(((ctx.ended or time.time()) - state["start"]) * 1_000_000)),
        "localEndpoint": {"serviceName": conf.get("local_service_name") or "kong"},
        "remoteEndpoint": {"ipv4": ctx.client_ip},
        "tags": {"http.method": ctx.method, "http.path": ctx.path,
                 "http.status_code": str(ctx.status), "lc": "kong"},
    }
    if state["parent"]:
        span["parentId"] = state["parent"]
    for tag in conf.get("static_tags") or []:
        span["tags"][tag.get("name")] = tag.get("value")
    data = json.dumps([span]).encode()
    timeout = ((conf.get("connect_timeout") or 2000) + (conf.get("send_timeout") or 5000)) / 1000

    def send():
        req = urllib.request.Request(conf["http_endpoint"], data=data, method="POST",
                                     headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=timeout) as resp:
                resp.read()
        except Exception as exc:  # pylint: disable=broad-except
            log = getattr(ctx.node, "log", None)
            if log:
                log("error", "[zipkin] failed to send spans to %s: %s"
                    % (conf["http_endpoint"], exc))

    threading.Thread(target=send, daemon=True).start()


# ----------------------------------------------------------------- runner
ACCESS = {"key-auth": key_auth, "jwt": jwt, "oauth2": oauth2, "acl": acl,
          "ip-restriction": ip_restriction, "rate-limiting": rate_limiting, "zipkin": zipkin_access}
LOG = {"prometheus": prometheus_log, "zipkin": zipkin_log}
RUNTIME = sorted(set(ACCESS) | set(LOG), key=lambda n: -S.PLUGINS[n].priority)


def access(ctx):
    """Access phase: returns the plugins collected for the log phase; raises
    Exit when a plugin ends the request (after collection stops)."""
    collected = []
    names = [n for n in RUNTIME if loaded(ctx.node, n)]
    try:
        for name in names:
            plugin = resolve(ctx, name)
            if plugin is None:
                continue
            collected.append((name, plugin.get("config") or {}))
            if name in ACCESS:
                ctx.plugin = plugin
                ACCESS[name](ctx, plugin.get("config") or {})
    except Exit:
        # the plugins not reached still log (e.g. prometheus counts the 401)
        seen = {n for n, _config in collected}
        for name in names:
            if name in LOG and name not in seen:
                plugin = resolve(ctx, name)
                if plugin is not None:
                    collected.append((name, plugin.get("config") or {}))
        ctx.collected = collected
        raise
    ctx.collected = collected
    return collected


def global_loggers(ctx):
    """Log-phase plugins configured globally (for requests no route matched)."""
    out = []
    for name in LOG:
        if loaded(ctx.node, name):
            plugin = resolve(ctx, name)
            if plugin is not None:
                out.append((name, plugin.get("config") or {}))
    return out


def log(ctx):
    ctx.ended = time.time()
    for name, conf in getattr(ctx, "collected", []):
        if name in LOG:
            try:
                LOG[name](ctx, conf)
            except Exception:  # pylint: disable=broad-except
                pass
