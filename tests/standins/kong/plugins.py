"""Proxy-side plugin runtime of the Kong 3.9 stand-in (test double, NOT Kong).

Runs, per proxied request, the enabled plugins that apply to it, in Kong's
priority order (highest first; priorities from schemas.py, kong.md §5
"prometheus (priority 13)", the others from memory of
kong/plugins/<name>/handler.lua: zipkin 100000, jwt 1450, key-auth 1250,
ip-restriction 990, acl 950, rate-limiting 910).

Scoping (from memory of kong/runloop/plugins_iterator.lua, UNCONFIRMED in
detail): for each plugin name the most specific enabled instance wins, in the
order route+service+consumer, route+consumer, service+consumer,
route+service, consumer, route, service, global.  The consumer used is the
one authenticated *so far*, so consumer-scoped instances only apply to
plugins that run after the authentication plugin (lower priority), as in
Kong.  The log phase (prometheus, zipkin) runs for every collected plugin,
also when an earlier plugin ended the request.

Only the plugins below have runtime behaviour; others (cors, oauth2,
basic-auth, hmac-auth, request-transformer) are accepted by the Admin API
and do nothing on the proxy.
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

    def __init__(self, node, method, path, query, headers, body, client_ip, route, service):
        self.node = node
        self.store = node.store
        self.method = method
        self.path = path
        self.query = dict(query)
        self.headers = dict(headers.items())   # what goes upstream
        self.body = body
        self.client_ip = client_ip
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
def _consumer_headers(ctx, consumer, credential, anonymous=False):
    """Upstream headers set by the auth plugins (Kong kong/constants.lua HEADERS;
    from memory of key-auth/jwt handler.lua `set_consumer`)."""
    ctx.consumer, ctx.credential = consumer, credential
    for name, value in (("X-Consumer-ID", consumer and consumer["id"]),
                        ("X-Consumer-Custom-ID", consumer and consumer.get("custom_id")),
                        ("X-Consumer-Username", consumer and consumer.get("username"))):
        if value:
            ctx.set_header(name, value)
        else:
            ctx.clear_header(name)
    if credential:
        ctx.set_header("X-Credential-Identifier", credential["id"])
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
    `key_in_body=false`".  Messages from memory of Kong 3.x
    kong/plugins/key-auth/handler.lua (UNCONFIRMED): no key -> 401 "No API key
    found in request"; unknown key -> 401 "Unauthorized" (2.x said "Invalid
    authentication credentials"); both with `WWW-Authenticate: Key realm="kong"`
    (or `realm`)."""
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
    realm = {"WWW-Authenticate": 'Key realm="%s"' % (conf.get("realm") or "kong")}
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


def _b64d(text):
    text = text + "=" * (-len(text) % 4)
    return base64.urlsafe_b64decode(text.encode())


def jwt(ctx, conf):
    """kong.md §5 jwt "`uri_param_names=["jwt"]`, `cookie_names=[]`,
    `header_names=["authorization"]`, `key_claim_name="iss"`,
    `secret_is_base64=false`", "`claims_to_verify` (exp|nbf)".  HS256/384/512
    only (RS*/ES*/... -> 401 "Invalid algorithm" in the stand-in).  Statuses and
    messages from memory of Kong 3.x kong/plugins/jwt/handler.lua (UNCONFIRMED;
    pre-3.x Kong answered 403 for the last three): no token 401 "Unauthorized",
    several 401 "Multiple tokens provided", undecodable 401 "Bad token; ...",
    claim missing 401 "No mandatory 'iss' in claims", no credential 401 "No
    credentials found for given 'iss'", bad signature 401 "Invalid signature",
    claims 401 `{"exp":"token expired"}` / `{"nbf":"token not valid yet"}`."""
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
            if low[:7].lower() == "bearer ":
                tokens.add(low[7:].strip())
    if not tokens:
        return _anonymous(ctx, conf, _error(401, "Unauthorized"))
    if len(tokens) > 1:
        return _anonymous(ctx, conf, _error(401, "Multiple tokens provided"))
    token = tokens.pop()
    try:
        head_b64, claims_b64, sig_b64 = token.split(".")
        header = json.loads(_b64d(head_b64))
        claims = json.loads(_b64d(claims_b64))
        signature = _b64d(sig_b64)
        if not isinstance(header, dict) or not isinstance(claims, dict):
            raise ValueError("invalid JSON")
    except (ValueError, UnicodeDecodeError, TypeError) as exc:
        return _anonymous(ctx, conf, _error(401, "Bad token; %s" % exc))
    claim = conf.get("key_claim_name") or "iss"
    key = claims.get(claim) or header.get(claim)
    if not key:
        return _anonymous(ctx, conf, _error(401, "No mandatory '%s' in claims" % claim))
    cred = ctx.store.find_by_unique("jwt_secrets", "key", key)
    if cred is None:
        return _anonymous(ctx, conf, _error(401, "No credentials found for given '%s'" % claim))
    alg = cred.get("algorithm") or "HS256"
    if header.get("alg") != alg or alg not in JWT_ALGS:
        return _anonymous(ctx, conf, _error(401, "Invalid algorithm"))
    secret = (cred.get("secret") or "").encode()
    if conf.get("secret_is_base64"):
        try:
            secret = base64.b64decode(secret)
        except ValueError:
            return _anonymous(ctx, conf, _error(401, "Invalid key/secret"))
    expected = hmac.new(secret, ("%s.%s" % (head_b64, claims_b64)).encode(),
                        JWT_ALGS[alg]).digest()
    if not hmac.compare_digest(expected, signature):
        return _anonymous(ctx, conf, _error(401, "Invalid signature"))
    errors = {}
    now = time.time()
    for name in conf.get("claims_to_verify") or []:
        value = claims.get(name)
        if value is None:
            errors[name] = "must be a number"
        elif not isinstance(value, (int, float)):
            errors[name] = "must be a number"
        elif name == "exp" and value <= now:
            errors[name] = "token expired"
        elif name == "nbf" and value > now:
            errors[name] = "token not valid yet"
    if errors:
        return _anonymous(ctx, conf, Exit(401, errors))
    if (conf.get("maximum_expiration") or 0) > 0 and \
            claims.get("exp", now) - now > conf["maximum_expiration"]:
        return _anonymous(ctx, conf, Exit(401, {"exp": "exceeds maximum allowed expiration"}))
    _consumer_headers(ctx, ctx.store.get("consumers", cred["consumer"]["id"]), cred)
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
    checked first, then allow.  Default 403 with message "IP address not
    allowed: <client ip>" (from memory of Kong 3.x handler.lua `do_exit`,
    UNCONFIRMED; pre-3.x Kong said "Your IP address is not allowed")."""
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
    identifiers fall back to the client IP."""
    now = time.time()
    ident = _rl_identifier(ctx, conf)
    scope = ((ctx.route or {}).get("id"), (ctx.service or {}).get("id"), ident)
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
ACCESS = {"key-auth": key_auth, "jwt": jwt, "acl": acl, "ip-restriction": ip_restriction,
          "rate-limiting": rate_limiting, "zipkin": zipkin_access}
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
