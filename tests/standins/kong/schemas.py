"""Entity and plugin schemas for the Kong 3.9 Admin API stand-in.

Schemas are written in Kong's own field-definition vocabulary (type, required,
default, one_of, elements, fields, between, ...), so ``GET /schemas/...`` can
return them in Kong's JSON shape and defaults there equal what create fills
(kong.md §4 "GET /schemas/{entity} and GET /schemas/plugins/{name}: defaults
and field types").

Sources (see README for what is UNCONFIRMED):
  kong.md §4 "Defaults returned after create", kong.md §5 (plugins),
  Kong/kong kong/db/schema/entities/*.lua, kong/db/schema/typedefs.lua,
  kong/plugins/<name>/{schema,daos}.lua, kong/db/schema/init.lua (messages).
"""

import copy
import re
import uuid

# ---------------------------------------------------------------------------
# Messages (Kong kong/db/schema/init.lua `validation_errors`)
# ---------------------------------------------------------------------------
REQUIRED = "required field missing"
UNKNOWN = "unknown field"
TYPE_NAMES = {
    "string": "a string", "integer": "an integer", "number": "a number",
    "boolean": "a boolean", "array": "an array", "set": "a set",
    "record": "a record", "map": "a map", "foreign": "a record",
}

PROTOCOLS = ["grpc", "grpcs", "http", "https", "tcp", "tls",
             "tls_passthrough", "udp", "ws", "wss"]
HTTP_METHODS_RE = re.compile(r"^[A-Z]+$")
UUID_RE = re.compile(
    r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
HOST_RE = re.compile(r"^[A-Za-z0-9_.\-\[\]:]+$")


def is_uuid(value):
    return isinstance(value, str) and bool(UUID_RE.match(value))


def new_id():
    return str(uuid.uuid4())


def _tag_validator(value):
    # kong.md §4 "Tags may contain no `,`, no `/`, and no non-printable ASCII."
    for ch in value:
        if ch in ",/" or (ord(ch) < 128 and not 0x20 <= ord(ch) <= 0x7e):
            return ("invalid tag '%s': expected printable ascii (except `,` and `/`) "
                    "or valid utf-8 sequences" % value)
    return None


def _host_validator(value):
    if not value or not HOST_RE.match(value):
        return "invalid value: %s" % value
    return None


def _method_validator(value):
    if not HTTP_METHODS_RE.match(value):
        return "invalid value: %s" % value
    return None


def _route_path_validator(value):
    if not (value.startswith("/") or value.startswith("~/")):
        return "should start with: / (fixed path) or ~/ (regex path)"
    return None


def _target_validator(value):
    if not value or " " in value or not HOST_RE.match(value):
        return "Invalid target ('%s'); not a valid hostname or ip address" % value
    return None


def _url_validator(value):
    if not re.match(r"^[a-zA-Z][a-zA-Z0-9+.\-]*://[^/\s]+", value):
        return "missing host in url"
    return None


# ---------------------------------------------------------------------------
# typedefs (Kong kong/db/schema/typedefs.lua)
# ---------------------------------------------------------------------------
def T(**kw):
    return kw


UUID = T(type="string", uuid=True, auto=True)
TS_S = T(type="integer", timestamp=True, auto=True)      # auto_timestamp_s
TS_MS = T(type="number", timestamp=True, auto=True)      # auto_timestamp_ms
TAGS = T(type="set", elements=T(type="string", required=True, custom=_tag_validator))
NAME = T(type="string", unique=True)
PORT = T(type="integer", between=[0, 65535])
PATH = T(type="string", starts_with="/")
HOST = T(type="string", custom=_host_validator)
PROTOCOL = T(type="string", one_of=PROTOCOLS)
HEADER_NAME = T(type="string")
STR_ARRAY = T(type="array", elements=T(type="string"))


def foreign(ref, **kw):
    return dict(type="foreign", reference=ref, **kw)


def plugin_protocols(default):
    return T(type="set", required=True, default=list(default),
             elements=T(type="string", one_of=PROTOCOLS))


# ---------------------------------------------------------------------------
# Entities
# ---------------------------------------------------------------------------
class Entity:
    """Metadata for one Kong entity (one DAO)."""

    def __init__(self, name, fields, path, endpoint_key=None, unique=(),
                 checks=None, nested_path=None, cascade_parent=None,
                 no_updated_at=False):
        self.name = name              # DB table name, also /tags entity_name
        self.fields = fields          # list of (field_name, definition)
        self.path = path              # top-level collection path segment
        self.endpoint_key = endpoint_key
        self.unique = list(unique)    # list of tuples
        self.checks = checks          # callable(entity) -> errors dict
        self.nested_path = nested_path  # e.g. "key-auth" under /consumers/{c}
        self.cascade_parent = cascade_parent
        self.no_updated_at = no_updated_at
        self.field_map = dict(fields)
        for fname, fdef in fields:
            if fdef.get("unique") and (fname,) not in self.unique:
                self.unique.append((fname,))

    def foreign_fields(self):
        return [n for n, d in self.fields if d["type"] == "foreign"]


def _route_checks(e):
    """kong/db/schema/entities/routes_subschemas.lua (traditional router)."""
    errs = {}
    protocols = e.get("protocols") or []

    def nonempty(f):
        v = e.get(f)
        return v not in (None, [], {})

    ent = []
    if "https" in protocols or "http" in protocols:
        need = ["methods", "hosts", "headers", "paths"]
        if "https" in protocols:
            need.append("snis")
        if not any(nonempty(f) for f in need):
            ent.append("must set one of %s when 'protocols' is '%s'" % (
                ", ".join("'%s'" % f for f in need),
                "https" if "https" in protocols else "http"))
    elif "grpc" in protocols or "grpcs" in protocols:
        need = ["hosts", "headers", "paths"]
        if not any(nonempty(f) for f in need):
            ent.append("must set one of %s when 'protocols' is 'grpc' or 'grpcs'"
                       % ", ".join("'%s'" % f for f in need))
    elif any(p in protocols for p in ("tcp", "tls", "udp", "tls_passthrough")):
        need = ["sources", "destinations", "snis"]
        if not any(nonempty(f) for f in need):
            ent.append("must set one of %s when 'protocols' is 'tcp', 'tls', "
                       "'tls_passthrough' or 'udp'" % ", ".join("'%s'" % f for f in need))
    if nonempty("snis") and not any(p in protocols for p in
                                    ("https", "grpcs", "tls", "tls_passthrough")):
        ent.append("'snis' can only be set when 'protocols' is 'grpcs', 'https', "
                   "'tls' or 'tls_passthrough'")
    if ent:
        errs["@entity"] = ent
    return errs


def _conditional_null(e, if_field, values, then_field, negate=False, errs=None):
    """Kong `conditional` entity check with then_match {eq = null}."""
    errs = {} if errs is None else errs
    hit = (e.get(if_field) not in values) if negate else (e.get(if_field) in values)
    if hit and e.get(then_field) is not None:
        errs[then_field] = "value must be null"
        errs.setdefault("@entity", []).append(
            "failed conditional validation given value of field '%s'" % if_field)
    return errs


def _service_checks(e):
    """kong/db/schema/entities/services.lua entity_checks."""
    errs = _conditional_null(e, "protocol", ("tcp", "tls", "grpc", "grpcs"), "path")
    for f in ("client_certificate", "tls_verify", "ca_certificates"):
        _conditional_null(e, "protocol", ("https",), f, negate=True, errs=errs)
    if "@entity" in errs:
        errs["@entity"] = errs["@entity"][:1]
    return errs


def _consumer_checks(e):
    # kong/db/schema/entities/consumers.lua: at_least_one_of {custom_id, username}
    if e.get("username") is None and e.get("custom_id") is None:
        return {"@entity": ["at least one of these fields must be non-empty: "
                            "'custom_id', 'username'"]}
    return {}


def _upstream_checks(e):
    errs = {}
    if e.get("hash_on") == "header" and not e.get("hash_on_header"):
        errs["hash_on_header"] = REQUIRED
    if e.get("hash_fallback") == "header" and not e.get("hash_fallback_header"):
        errs["hash_fallback_header"] = REQUIRED
    if "cookie" in (e.get("hash_on"), e.get("hash_fallback")) and not e.get("hash_on_cookie"):
        errs["hash_on_cookie"] = REQUIRED
    if e.get("hash_on") == "none" and e.get("hash_fallback") not in (None, "none"):
        errs["hash_fallback"] = "expected one of: none"
    if errs:
        errs.setdefault("@entity", []).append(
            "failed conditional validation given value of field 'hash_on'")
    return errs


def _certificate_checks(e):
    # kong/db/schema/entities/certificates.lua: all_or_none_of {cert_alt, key_alt}
    if (e.get("cert_alt") is None) != (e.get("key_alt") is None):
        return {"@entity": ["all or none of these fields must be set: "
                            "'cert_alt', 'key_alt'"]}
    return {}


JWT_ASYMMETRIC = ("RS256", "RS384", "RS512", "ES256", "ES384", "ES512",
                  "PS256", "PS384", "PS512", "EdDSA")


def _jwt_checks(e):
    # kong/plugins/jwt/daos.lua: conditional algorithm -> rsa_public_key required
    if e.get("algorithm") in JWT_ASYMMETRIC and not e.get("rsa_public_key"):
        return {"rsa_public_key": REQUIRED,
                "@entity": ["failed conditional validation given value of field 'algorithm'"]}
    return {}


HEALTHCHECKS_FIELDS = [
    ("active", T(type="record", fields=[
        ("type", T(type="string", default="http", one_of=["tcp", "http", "https", "grpc", "grpcs"])),
        ("timeout", T(type="number", default=1, between=[0, 65535])),
        ("concurrency", T(type="integer", default=10, between=[1, 2147483648])),
        ("http_path", T(type="string", default="/", starts_with="/")),
        ("https_sni", T(type="string")),
        ("https_verify_certificate", T(type="boolean", default=True)),
        ("headers", T(type="map", keys=T(type="string"), values=STR_ARRAY)),
        ("healthy", T(type="record", fields=[
            ("interval", T(type="number", default=0, between=[0, 65535])),
            ("http_statuses", T(type="array", default=[200, 302],
                                elements=T(type="integer", between=[100, 999]))),
            ("successes", T(type="integer", default=0, between=[0, 255])),
        ])),
        ("unhealthy", T(type="record", fields=[
            ("interval", T(type="number", default=0, between=[0, 65535])),
            ("http_statuses", T(type="array", default=[429, 404, 500, 501, 502, 503, 504, 505],
                                elements=T(type="integer", between=[100, 999]))),
            ("tcp_failures", T(type="integer", default=0, between=[0, 255])),
            ("timeouts", T(type="integer", default=0, between=[0, 255])),
            ("http_failures", T(type="integer", default=0, between=[0, 255])),
        ])),
    ])),
    ("passive", T(type="record", fields=[
        ("type", T(type="string", default="http", one_of=["tcp", "http", "https", "grpc", "grpcs"])),
        ("healthy", T(type="record", fields=[
            ("http_statuses", T(type="array", default=[
                200, 201, 202, 203, 204, 205, 206, 207, 208, 226,
                300, 301, 302, 303, 304, 305, 306, 307, 308],
                elements=T(type="integer", between=[100, 999]))),
            ("successes", T(type="integer", default=0, between=[0, 255])),
        ])),
        ("unhealthy", T(type="record", fields=[
            ("http_statuses", T(type="array", default=[429, 500, 503],
                                elements=T(type="integer", between=[100, 999]))),
            ("tcp_failures", T(type="integer", default=0, between=[0, 255])),
            ("timeouts", T(type="integer", default=0, between=[0, 255])),
            ("http_failures", T(type="integer", default=0, between=[0, 255])),
        ])),
    ])),
    ("threshold", T(type="number", default=0, between=[0, 100])),
]

HASH_ON = ["none", "consumer", "ip", "header", "cookie", "path", "query_arg", "uri_capture"]


def _cred(name, path, nested, endpoint_key, middle, checks=None, unique=()):
    fields = [("id", UUID), ("created_at", TS_S),
              ("consumer", foreign("consumers", required=True, on_delete="cascade"))]
    fields += middle
    fields.append(("tags", TAGS))
    return Entity(name, fields, path, endpoint_key, unique=unique, checks=checks,
                  nested_path=nested, cascade_parent="consumer", no_updated_at=True)


ENTITIES = {}


def _register(entity):
    ENTITIES[entity.name] = entity


_register(Entity("services", [
    ("id", UUID), ("created_at", TS_S), ("updated_at", TS_S), ("name", NAME),
    ("retries", T(type="integer", default=5, between=[0, 32767])),
    ("protocol", T(type="string", required=True, default="http", one_of=PROTOCOLS)),
    ("host", dict(HOST, required=True)),
    ("port", dict(PORT, required=True, default=80)),
    ("path", PATH),
    ("connect_timeout", T(type="integer", default=60000, between=[1, 2147483646])),
    ("write_timeout", T(type="integer", default=60000, between=[1, 2147483646])),
    ("read_timeout", T(type="integer", default=60000, between=[1, 2147483646])),
    ("tags", TAGS),
    ("client_certificate", foreign("certificates")),
    ("tls_verify", T(type="boolean")),
    ("tls_verify_depth", T(type="integer", between=[0, 64])),
    ("ca_certificates", T(type="array", elements=T(type="string", uuid=True))),
    ("enabled", T(type="boolean", required=True, default=True)),
], "services", "name", checks=_service_checks))

_register(Entity("routes", [
    ("id", UUID), ("created_at", TS_S), ("updated_at", TS_S), ("name", NAME),
    ("protocols", T(type="set", len_min=1, required=True, default=["http", "https"],
                    elements=PROTOCOL)),
    ("methods", T(type="set", elements=T(type="string", custom=_method_validator))),
    ("hosts", T(type="array", elements=T(type="string", custom=_host_validator))),
    ("paths", T(type="array", elements=T(type="string", custom=_route_path_validator))),
    ("headers", T(type="map", keys=T(type="string"), values=STR_ARRAY)),
    ("https_redirect_status_code", T(type="integer", required=True, default=426,
                                     one_of=[426, 301, 302, 307, 308])),
    ("regex_priority", T(type="integer", default=0)),
    ("strip_path", T(type="boolean", required=True, default=True)),
    ("path_handling", T(type="string", default="v0", one_of=["v0", "v1"])),
    ("preserve_host", T(type="boolean", required=True, default=False)),
    ("request_buffering", T(type="boolean", required=True, default=True)),
    ("response_buffering", T(type="boolean", required=True, default=True)),
    ("snis", T(type="set", elements=T(type="string"))),
    ("sources", T(type="set", elements=T(type="record", fields=[
        ("ip", T(type="string")), ("port", PORT)]))),
    ("destinations", T(type="set", elements=T(type="record", fields=[
        ("ip", T(type="string")), ("port", PORT)]))),
    ("tags", TAGS),
    ("service", foreign("services")),
], "routes", "name", checks=_route_checks))

_register(Entity("consumers", [
    ("id", UUID), ("created_at", TS_S), ("updated_at", TS_S),
    ("username", T(type="string", unique=True)),
    ("custom_id", T(type="string", unique=True)),
    ("tags", TAGS),
], "consumers", "username", checks=_consumer_checks))

_register(Entity("plugins", [
    ("id", UUID), ("name", T(type="string", required=True)),
    ("instance_name", T(type="string", unique=True)),
    ("created_at", TS_S), ("updated_at", TS_S),
    ("route", foreign("routes", on_delete="cascade")),
    ("service", foreign("services", on_delete="cascade")),
    ("consumer", foreign("consumers", on_delete="cascade")),
    ("config", T(type="record", required=True, abstract=True, fields=[])),
    ("protocols", plugin_protocols(["grpc", "grpcs", "http", "https"])),
    ("enabled", T(type="boolean", required=True, default=True)),
    ("tags", TAGS),
], "plugins", "instance_name", unique=[("name", "route", "service", "consumer")]))

_register(Entity("upstreams", [
    ("id", UUID), ("created_at", TS_S), ("updated_at", TS_S),
    ("name", T(type="string", required=True, unique=True, custom=_host_validator)),
    ("algorithm", T(type="string", default="round-robin",
                    one_of=["consistent-hashing", "least-connections", "round-robin", "latency"])),
    ("hash_on", T(type="string", default="none", one_of=HASH_ON)),
    ("hash_fallback", T(type="string", default="none", one_of=HASH_ON)),
    ("hash_on_header", HEADER_NAME), ("hash_fallback_header", HEADER_NAME),
    ("hash_on_cookie", T(type="string")),
    ("hash_on_cookie_path", dict(PATH, default="/")),
    ("hash_on_query_arg", T(type="string")), ("hash_fallback_query_arg", T(type="string")),
    ("hash_on_uri_capture", T(type="string")), ("hash_fallback_uri_capture", T(type="string")),
    ("slots", T(type="integer", default=10000, between=[10, 65536])),
    ("healthchecks", T(type="record", default=None, fields=HEALTHCHECKS_FIELDS)),
    ("tags", TAGS),
    ("host_header", T(type="string", custom=_host_validator)),
    ("client_certificate", foreign("certificates")),
    ("use_srv_name", T(type="boolean", default=False)),
], "upstreams", "name", checks=_upstream_checks))

_register(Entity("targets", [
    ("id", UUID), ("created_at", TS_MS), ("updated_at", TS_MS),
    ("upstream", foreign("upstreams", required=True, on_delete="cascade")),
    ("target", T(type="string", required=True, custom=_target_validator)),
    ("weight", T(type="integer", default=100, between=[0, 65535])),
    ("tags", TAGS),
], "targets", "target", unique=[("upstream", "target")], cascade_parent="upstream"))

_register(Entity("certificates", [
    ("id", UUID), ("created_at", TS_S), ("updated_at", TS_S),
    ("cert", T(type="string", required=True)), ("key", T(type="string", required=True)),
    ("cert_alt", T(type="string")), ("key_alt", T(type="string")),
    ("tags", TAGS),
], "certificates", None, checks=_certificate_checks))

_register(Entity("snis", [
    ("id", UUID), ("name", T(type="string", required=True, unique=True, custom=_host_validator)),
    ("created_at", TS_S), ("updated_at", TS_S), ("tags", TAGS),
    # snis.lua declares no on_delete; the Postgres migration uses ON DELETE
    # CASCADE (UNCONFIRMED, see README)
    ("certificate", foreign("certificates", required=True, on_delete="cascade")),
], "snis", "name", cascade_parent="certificate"))

_register(Entity("ca_certificates", [
    ("id", UUID), ("created_at", TS_S), ("updated_at", TS_S),
    ("cert", T(type="string", required=True)),
    ("cert_digest", T(type="string", unique=True)),
    ("tags", TAGS),
], "ca_certificates", None))

_register(_cred("keyauth_credentials", "key-auths", "key-auth", "key", [
    ("key", T(type="string", required=False, unique=True, auto=True)),
]))
_register(_cred("basicauth_credentials", "basic-auths", "basic-auth", "username", [
    ("username", T(type="string", required=True, unique=True)),
    ("password", T(type="string", required=True)),
]))
_register(_cred("jwt_secrets", "jwts", "jwt", "key", [
    ("key", T(type="string", required=False, unique=True, auto=True)),
    ("secret", T(type="string", auto=True)),
    ("rsa_public_key", T(type="string")),
    ("algorithm", T(type="string", default="HS256", one_of=[
        "HS256", "HS384", "HS512", "RS256", "RS384", "RS512", "ES256", "ES384",
        "ES512", "PS256", "PS384", "PS512", "EdDSA"])),
], checks=_jwt_checks))
_register(_cred("hmacauth_credentials", "hmac-auths", "hmac-auth", "username", [
    ("username", T(type="string", required=True, unique=True)),
    ("secret", T(type="string", auto=True)),
]))
_register(_cred("oauth2_credentials", "oauth2", "oauth2", "client_id", [
    ("name", T(type="string", required=True)),
    ("client_id", T(type="string", required=False, unique=True, auto=True)),
    ("client_secret", T(type="string", auto=True)),
    ("hash_secret", T(type="boolean", required=True, default=False)),
    ("redirect_uris", T(type="array", elements=T(type="string", custom=_url_validator))),
    ("client_type", T(type="string", required=True, default="confidential",
                      one_of=["confidential", "public"])),
]))
_register(_cred("acls", "acls", "acls", None, [
    ("group", T(type="string", required=True)),
], unique=[("consumer", "group")]))

BY_PATH = {e.path: e for e in ENTITIES.values()}
BY_NESTED = {e.nested_path: e for e in ENTITIES.values() if e.nested_path}
CREDENTIALS = [e for e in ENTITIES.values() if e.cascade_parent == "consumer"]


# ---------------------------------------------------------------------------
# Plugins (kong.md §5; Kong kong/plugins/<name>/schema.lua)
# ---------------------------------------------------------------------------
QUEUE = T(type="record", required=True, fields=[
    ("max_batch_size", T(type="integer", default=1, between=[1, 1000000])),
    ("max_coalescing_delay", T(type="number", default=1, between=[0, 3600])),
    ("max_entries", T(type="integer", default=10000, between=[1, 1000000])),
    ("max_bytes", T(type="integer")),
    ("max_retry_time", T(type="number", default=60)),
    ("initial_retry_delay", T(type="number", default=0.01, between=[0.001, 1000000])),
    ("max_retry_delay", T(type="number", default=60, between=[0.001, 1000000])),
    ("concurrency_limit", T(type="integer", default=1, one_of=[-1, 1])),
])

REDIS = T(type="record", required=True, fields=[
    ("host", HOST), ("port", dict(PORT, default=6379)),
    ("timeout", T(type="integer", default=2000, between=[0, 2147483646])),
    ("username", T(type="string")), ("password", T(type="string", len_min=0)),
    ("database", T(type="integer", default=0)),
    ("ssl", T(type="boolean", required=False, default=False)),
    ("ssl_verify", T(type="boolean", required=False, default=False)),
    ("server_name", HOST),
])

PROPAGATION_FORMATS = ["w3c", "datadog", "b3", "b3-single", "jaeger", "ot", "aws", "gcp", "instana"]


def _rl_checks(config):
    errs = []
    periods = ["second", "minute", "hour", "day", "month", "year"]
    if all(config.get(p) is None for p in periods):
        errs.append("at least one of these fields must be non-empty: %s"
                    % ", ".join("'config.%s'" % p for p in periods))
    fields = {}
    if config.get("policy") == "redis":
        redis = config.get("redis") or {}
        for f in ("host", "port", "timeout"):
            if redis.get(f) is None:
                fields.setdefault("redis", {})[f] = REQUIRED
                errs.append("failed conditional validation given value of field 'config.policy'")
    if config.get("limit_by") == "header" and not config.get("header_name"):
        fields["header_name"] = REQUIRED
        errs.append("failed conditional validation given value of field 'config.limit_by'")
    if config.get("limit_by") == "path" and not config.get("path"):
        fields["path"] = REQUIRED
        errs.append("failed conditional validation given value of field 'config.limit_by'")
    return errs, fields


def _acl_checks(config):
    allow, deny = config.get("allow"), config.get("deny")
    if allow not in (None, []) and deny not in (None, []):
        return ["only one of these fields can be non-empty: 'config.allow', 'config.deny'"], {}
    if allow in (None, []) and deny in (None, []):
        return ["at least one of these fields must be non-empty: 'config.allow', 'config.deny'"], {}
    return [], {}


def _ipr_checks(config):
    if config.get("allow") in (None, []) and config.get("deny") in (None, []):
        return ["at least one of these fields must be non-empty: 'config.allow', 'config.deny'"], {}
    return [], {}


def _jwt_plugin_checks(config):
    if (config.get("maximum_expiration") or 0) > 0 and \
            "exp" not in (config.get("claims_to_verify") or []):
        return ["failed conditional validation given value of field "
                "'config.maximum_expiration'"], {"claims_to_verify": "must contain 'exp'"}
    return [], {}


def _oauth2_checks(config):
    flows = ("enable_authorization_code", "enable_implicit_grant",
             "enable_client_credentials", "enable_password_grant")
    errs = []
    if not any(config.get(f) for f in flows):
        errs.append("at least one of these fields must be true: %s" % ", ".join(flows))
    fields = {}
    if config.get("mandatory_scope") and not config.get("scopes"):
        fields["scopes"] = REQUIRED
        errs.append("failed conditional validation given value of field 'config.mandatory_scope'")
    return errs, fields


class Plugin:
    def __init__(self, name, priority, config_fields, checks=None, no_consumer=False,
                 protocols=("grpc", "grpcs", "http", "https"), shorthands=None):
        self.name = name
        self.priority = priority
        self.config_fields = config_fields
        self.checks = checks
        self.no_consumer = no_consumer
        self.protocols = list(protocols)
        # shorthand name -> path inside config (read: echoed; write: translated)
        self.shorthands = shorthands or {}


_RL_SHORTHANDS = {"redis_" + f: ("redis", f) for f in (
    "host", "port", "password", "username", "ssl", "ssl_verify", "server_name",
    "timeout", "database")}

PLUGINS = {}


def _plugin(p):
    PLUGINS[p.name] = p


_plugin(Plugin("prometheus", 13, [
    (f, T(type="boolean", default=False)) for f in (
        "per_consumer", "status_code_metrics", "ai_metrics", "latency_metrics",
        "bandwidth_metrics", "upstream_health_metrics")
]))

_plugin(Plugin("zipkin", 100000, [
    ("local_service_name", T(type="string", required=True, default="kong")),
    ("http_endpoint", T(type="string", custom=_url_validator)),
    ("sample_ratio", T(type="number", default=0.001, between=[0, 1])),
    ("default_service_name", T(type="string")),
    ("include_credential", T(type="boolean", required=True, default=True)),
    ("traceid_byte_count", T(type="integer", required=True, default=16, one_of=[8, 16])),
    ("header_type", T(type="string", required=True, default="preserve", one_of=[
        "preserve", "ignore", "b3", "b3-single", "w3c", "jaeger", "ot", "aws",
        "datadog", "gcp"])),
    ("default_header_type", T(type="string", required=True, default="b3", one_of=[
        "b3", "b3-single", "w3c", "jaeger", "ot", "aws", "datadog", "gcp"])),
    ("tags_header", T(type="string", required=True, default="Zipkin-Tags")),
    ("static_tags", T(type="array", elements=T(type="record", fields=[
        ("name", T(type="string", required=True)),
        ("value", T(type="string", required=True))]))),
    ("http_span_name", T(type="string", required=True, default="method",
                         one_of=["method", "method_path"])),
    ("connect_timeout", T(type="integer", default=2000, between=[0, 2147483646])),
    ("send_timeout", T(type="integer", default=5000, between=[0, 2147483646])),
    ("read_timeout", T(type="integer", default=5000, between=[0, 2147483646])),
    ("http_response_header_for_traceid", T(type="string")),
    ("phase_duration_flavor", T(type="string", required=True, default="annotations",
                                one_of=["annotations", "tags"])),
    ("queue", QUEUE),
    ("propagation", T(type="record", required=True, fields=[
        ("extract", T(type="array", elements=T(type="string", one_of=PROPAGATION_FORMATS))),
        ("clear", T(type="array", elements=T(type="string"))),
        ("inject", T(type="array", elements=T(
            type="string", one_of=["preserve"] + PROPAGATION_FORMATS))),
        ("default_format", T(type="string", required=True, default="b3",
                             one_of=PROPAGATION_FORMATS)),
    ])),
]))

_plugin(Plugin("rate-limiting", 910, [
    ("second", T(type="number", gt=0)), ("minute", T(type="number", gt=0)),
    ("hour", T(type="number", gt=0)), ("day", T(type="number", gt=0)),
    ("month", T(type="number", gt=0)), ("year", T(type="number", gt=0)),
    ("limit_by", T(type="string", default="consumer", one_of=[
        "consumer", "credential", "ip", "service", "header", "path", "consumer-group"])),
    ("header_name", HEADER_NAME),
    ("path", PATH),
    ("policy", T(type="string", default="local", one_of=["local", "cluster", "redis"])),
    ("fault_tolerant", T(type="boolean", required=True, default=True)),
    ("redis", REDIS),
    ("hide_client_headers", T(type="boolean", required=True, default=False)),
    ("error_code", T(type="number", default=429, gt=0)),
    ("error_message", T(type="string", default="API rate limit exceeded")),
    ("sync_rate", T(type="number", required=True, default=-1)),
], checks=_rl_checks, shorthands=_RL_SHORTHANDS))

_plugin(Plugin("key-auth", 1250, [
    ("key_names", T(type="array", required=True, default=["apikey"],
                    elements=T(type="string"))),
    ("hide_credentials", T(type="boolean", required=True, default=False)),
    ("anonymous", T(type="string")),
    ("key_in_header", T(type="boolean", required=True, default=True)),
    ("key_in_query", T(type="boolean", required=True, default=True)),
    ("key_in_body", T(type="boolean", required=True, default=False)),
    ("run_on_preflight", T(type="boolean", required=True, default=True)),
    ("realm", T(type="string")),
], no_consumer=True))

_plugin(Plugin("jwt", 1450, [
    ("uri_param_names", T(type="set", default=["jwt"], elements=T(type="string"))),
    ("cookie_names", T(type="set", default=[], elements=T(type="string"))),
    ("key_claim_name", T(type="string", default="iss")),
    ("secret_is_base64", T(type="boolean", required=True, default=False)),
    ("claims_to_verify", T(type="set", elements=T(type="string", one_of=["exp", "nbf"]))),
    ("anonymous", T(type="string")),
    ("run_on_preflight", T(type="boolean", required=True, default=True)),
    ("maximum_expiration", T(type="number", default=0, between=[0, 31536000])),
    ("header_names", T(type="set", default=["authorization"], elements=T(type="string"))),
    ("realm", T(type="string")),
], checks=_jwt_plugin_checks, no_consumer=True))

_plugin(Plugin("oauth2", 1400, [
    ("scopes", T(type="array", elements=T(type="string"))),
    ("mandatory_scope", T(type="boolean", required=True, default=False)),
    ("provision_key", T(type="string", unique=True, auto=True, required=True)),
    ("token_expiration", T(type="number", required=True, default=7200)),
    ("enable_authorization_code", T(type="boolean", required=True, default=False)),
    ("enable_implicit_grant", T(type="boolean", required=True, default=False)),
    ("enable_client_credentials", T(type="boolean", required=True, default=False)),
    ("enable_password_grant", T(type="boolean", required=True, default=False)),
    ("hide_credentials", T(type="boolean", required=True, default=False)),
    ("accept_http_if_already_terminated", T(type="boolean", required=False, default=False)),
    ("anonymous", T(type="string")),
    ("global_credentials", T(type="boolean", required=True, default=False)),
    ("auth_header_name", T(type="string", default="authorization")),
    ("refresh_token_ttl", T(type="number", required=True, default=1209600,
                            between=[0, 100000000])),
    ("reuse_refresh_token", T(type="boolean", required=True, default=False)),
    ("persistent_refresh_token", T(type="boolean", required=True, default=False)),
    ("pkce", T(type="string", default="lax", one_of=["none", "lax", "strict"])),
    ("realm", T(type="string")),
], checks=_oauth2_checks, no_consumer=True))

_plugin(Plugin("acl", 950, [
    ("allow", T(type="array", elements=T(type="string"))),
    ("deny", T(type="array", elements=T(type="string"))),
    ("hide_groups_header", T(type="boolean", required=True, default=False)),
    ("always_use_authenticated_groups", T(type="boolean", required=True, default=False)),
    ("include_consumer_groups", T(type="boolean", required=False, default=False)),
], checks=_acl_checks, no_consumer=True))

_plugin(Plugin("ip-restriction", 990, [
    ("allow", T(type="array", elements=T(type="string"))),
    ("deny", T(type="array", elements=T(type="string"))),
    ("status", T(type="number")),
    ("message", T(type="string")),
], checks=_ipr_checks, protocols=("grpc", "grpcs", "http", "https", "tcp", "tls")))

_plugin(Plugin("cors", 2000, [
    ("origins", T(type="array", elements=T(type="string"))),
    ("headers", T(type="array", elements=T(type="string"))),
    ("exposed_headers", T(type="array", elements=T(type="string"))),
    ("methods", T(type="array", default=[
        "GET", "HEAD", "PUT", "PATCH", "POST", "DELETE", "OPTIONS", "TRACE", "CONNECT"],
        elements=T(type="string", one_of=[
            "GET", "HEAD", "PUT", "PATCH", "POST", "DELETE", "OPTIONS", "TRACE", "CONNECT"]))),
    ("max_age", T(type="number")),
    ("credentials", T(type="boolean", required=True, default=False)),
    ("private_network", T(type="boolean", required=True, default=False)),
    ("preflight_continue", T(type="boolean", required=True, default=False)),
    ("allow_origin_absent", T(type="boolean", required=True, default=True)),
], no_consumer=True))

_plugin(Plugin("basic-auth", 1100, [
    ("anonymous", T(type="string")),
    ("hide_credentials", T(type="boolean", required=True, default=False)),
    ("realm", T(type="string", required=True, default="service")),
], no_consumer=True))

_plugin(Plugin("hmac-auth", 1030, [
    ("hide_credentials", T(type="boolean", required=True, default=False)),
    ("clock_skew", T(type="number", default=300, gt=0)),
    ("anonymous", T(type="string")),
    ("validate_request_body", T(type="boolean", required=True, default=False)),
    ("enforce_headers", T(type="array", default=[], elements=T(type="string"))),
    ("algorithms", T(type="array", default=[
        "hmac-sha1", "hmac-sha256", "hmac-sha384", "hmac-sha512"],
        elements=T(type="string", one_of=[
            "hmac-sha1", "hmac-sha256", "hmac-sha384", "hmac-sha512"]))),
    ("realm", T(type="string")),
], no_consumer=True))


def _rt_section(with_uri=False):
    fields = [
        ("body", T(type="array", default=[], required=True, elements=T(type="string"))),
        ("headers", T(type="array", default=[], required=True, elements=T(type="string"))),
        ("querystring", T(type="array", default=[], required=True, elements=T(type="string"))),
    ]
    if with_uri:
        fields.append(("uri", T(type="string")))
    return T(type="record", required=True, fields=fields)


_plugin(Plugin("request-transformer", 801, [
    ("http_method", T(type="string")),
    ("remove", _rt_section()),
    ("rename", _rt_section()),
    ("replace", _rt_section(with_uri=True)),
    ("add", _rt_section()),
    ("append", _rt_section()),
]))


def plugin_entity_fields(plugin):
    """The per-plugin view of the plugins entity (config made concrete)."""
    out = []
    for fname, fdef in ENTITIES["plugins"].fields:
        if fname == "config":
            fdef = T(type="record", required=True, fields=plugin.config_fields)
        elif fname == "protocols":
            fdef = plugin_protocols(plugin.protocols)
        elif fname == "consumer" and plugin.no_consumer:
            fdef = dict(fdef, eq=None)
        out.append((fname, fdef))
    return out


# ---------------------------------------------------------------------------
# Generic engine: defaults, validation, JSON view, error messages
# ---------------------------------------------------------------------------
def record_defaults(fields):
    return fill_defaults(fields, {})


def fill_defaults(fields, data, fill_missing_records=True):
    """Return a new dict with every schema field present (nulls=true)."""
    out = {}
    for fname, fdef in fields:
        if fname in data:
            value = data[fname]
            if fdef["type"] == "record" and isinstance(value, dict) and fdef.get("fields"):
                value = fill_defaults(fdef["fields"], value, fill_missing_records)
            elif fdef["type"] in ("array", "set") and isinstance(value, list) and \
                    fdef.get("elements", {}).get("type") == "record":
                value = [fill_defaults(fdef["elements"]["fields"], v)
                         if isinstance(v, dict) else v for v in value]
            out[fname] = value
        elif "default" in fdef and fdef["default"] is not None:
            out[fname] = copy.deepcopy(fdef["default"])
        elif fdef["type"] == "record" and fdef.get("fields") and fill_missing_records:
            out[fname] = fill_defaults(fdef["fields"], {}, fill_missing_records)
        else:
            out[fname] = None
    for key, value in data.items():  # unknown fields are kept so validation sees them
        if key not in out:
            out[key] = value
    return out


def _check_type(fdef, value):
    typ = fdef["type"]
    if typ == "string":
        return isinstance(value, str)
    if typ == "integer":
        return isinstance(value, int) and not isinstance(value, bool) or \
            (isinstance(value, float) and value.is_integer())
    if typ == "number":
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if typ == "boolean":
        return isinstance(value, bool)
    if typ in ("array", "set"):
        return isinstance(value, list)
    if typ in ("record", "map", "foreign"):
        return isinstance(value, dict)
    return True


def _fmt_num(n):
    if isinstance(n, float) and n.is_integer():
        n = int(n)
    return str(n)


def validate_value(fdef, value):
    """Return an error (string, list or dict) or None."""
    if value is None:
        return None
    if not _check_type(fdef, value):
        return "expected %s" % TYPE_NAMES.get(fdef["type"], fdef["type"])
    typ = fdef["type"]
    if "eq" in fdef and value != fdef["eq"]:
        return "value must be null" if fdef["eq"] is None else "value must be %s" % fdef["eq"]
    if fdef.get("uuid") and not is_uuid(value):
        return "expected a valid UUID"
    if "one_of" in fdef and value not in fdef["one_of"]:
        return "expected one of: %s" % ", ".join(_fmt_num(v) for v in fdef["one_of"])
    if "between" in fdef:
        lo, hi = fdef["between"]
        if not lo <= value <= hi:
            return "value should be between %s and %s" % (_fmt_num(lo), _fmt_num(hi))
    if "gt" in fdef and not value > fdef["gt"]:
        return "value must be greater than %s" % _fmt_num(fdef["gt"])
    if typ == "string":
        if fdef.get("len_min", 1) > len(value):
            return "length must be at least %d" % fdef.get("len_min", 1)
        if "starts_with" in fdef and not value.startswith(fdef["starts_with"]):
            return "should start with: %s" % fdef["starts_with"]
    if typ in ("array", "set"):
        if "len_min" in fdef and len(value) < fdef["len_min"]:
            return "length must be at least %d" % fdef["len_min"]
        elem = fdef.get("elements")
        if elem:
            errs = [None] * len(value)
            bad = False
            for i, item in enumerate(value):
                err = REQUIRED if item is None else validate_value(elem, item)
                if err is not None:
                    errs[i] = err
                    bad = True
            if bad:
                while errs and errs[-1] is None:
                    errs.pop()
                return errs
    if typ == "record" and fdef.get("fields") is not None:
        errs = validate_fields(fdef["fields"], value)
        return errs or None
    if typ == "foreign":
        if set(value) - {"id"} or "id" not in value:
            return {k: UNKNOWN for k in value if k != "id"} or {"id": REQUIRED}
        if not is_uuid(value["id"]):
            return {"id": "expected a valid UUID"}
    if typ == "map":
        errs = {}
        for k, v in value.items():
            err = validate_value(fdef.get("values", {"type": "any"}), v)
            if err:
                errs[k] = err
        return errs or None
    custom = fdef.get("custom")
    if custom:
        return custom(value)
    return None


def validate_fields(fields, data):
    """Validate a record; unknown keys, required and type checks."""
    errs = {}
    fmap = dict(fields)
    for key in data:
        if key not in fmap:
            errs[key] = UNKNOWN
    for fname, fdef in fields:
        value = data.get(fname)
        if value is None:
            if fdef.get("required"):
                errs[fname] = REQUIRED
            continue
        err = validate_value(fdef, value)
        if err:
            errs[fname] = err
    return errs


def flatten_errors(errs, prefix=""):
    """Messages for Kong's 'N schema violations (...)' text."""
    out = []
    for key in sorted(errs, key=str):
        val = errs[key]
        if key == "@entity":
            out.extend(val if isinstance(val, list) else [val])
            continue
        name = prefix + str(key)
        if isinstance(val, dict):
            out.extend(flatten_errors(val, name + "."))
        elif isinstance(val, list):
            for item in val:
                if isinstance(item, dict):
                    out.extend(flatten_errors(item, name + "."))
                elif item is not None:
                    out.append("%s: %s" % (name, item))
        else:
            out.append("%s: %s" % (name, val))
    return out


def schema_violation_message(errs):
    msgs = flatten_errors(errs)
    if len(msgs) == 1:
        return "schema violation (%s)" % msgs[0]
    return "%d schema violations (%s)" % (len(msgs), "; ".join(msgs))


def normalize_sets(fields, data):
    """Remove duplicates from set-typed values (Kong `set` semantics)."""
    for fname, fdef in fields:
        value = data.get(fname)
        if fdef["type"] == "set" and isinstance(value, list):
            seen, out = [], []
            for item in value:
                if item not in seen:
                    seen.append(item)
                    out.append(item)
            data[fname] = out
        elif fdef["type"] == "record" and isinstance(value, dict) and fdef.get("fields"):
            normalize_sets(fdef["fields"], value)


def field_json(fdef):
    """Kong's JSON shape for one field definition."""
    out = {}
    for key, value in fdef.items():
        if key in ("custom", "abstract"):
            continue
        if key == "fields":
            out["fields"] = [{n: field_json(d)} for n, d in value]
        elif key == "elements" or key in ("keys", "values"):
            out[key] = field_json(value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def fields_json(fields):
    return [{n: field_json(d)} for n, d in fields]


# healthchecks' default record is the record filled with its defaults
ENTITIES["upstreams"].field_map["healthchecks"]["default"] = record_defaults(HEALTHCHECKS_FIELDS)
for _f in ENTITIES["upstreams"].fields:
    if _f[0] == "healthchecks":
        _f[1]["default"] = ENTITIES["upstreams"].field_map["healthchecks"]["default"]
