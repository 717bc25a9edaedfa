# -*- coding: utf-8 -*-
# Copyright (c) aic.gateway contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""One client and one comparison engine for every Kong module (private to this collection).

Facts this file relies on (../shared/reference/kong.md, section 4 unless noted):
  * PUT /X/{uuid} is an upsert that answers 200 for create and update, so every write here is
    idempotent (PUT to an id chosen up front, PATCH, DELETE) and safe to retry.
  * PATCH merges nested records (plugin config) and replaces arrays; DELETE answers 204 even when absent.
  * Lists page with size<=1000 and a relative `next`; tag filters `a,b` mean AND.
  * Responses carry explicit nulls; created_at/updated_at change on their own; the service `url`
    shorthand is write-only; rate-limiting echoes deprecated shorthand fields (drift trap).
  * basic-auth passwords are stored as SHA1(password + consumer_id).
"""

from __future__ import annotations

import base64
import copy
import hashlib
import json
import re
import threading
import time
import uuid

from ansible.module_utils.six.moves.urllib.error import HTTPError, URLError
from ansible.module_utils.six.moves.urllib.parse import quote, urlencode, urlsplit
from ansible.module_utils.urls import Request, make_context

MASK = "********"


def kong_argument_spec():
    """Connection options, documented in the aic.gateway.kong doc fragment."""
    return dict(
        admin_url=dict(type="str", default="http://127.0.0.1:8001", aliases=["kong_admin_url"]),
        admin_token=dict(type="str", no_log=True),
        # admin_headers/admin_retries, not headers/retries: routes have a `headers` field and services a
        # `retries` field (entity_module_spec refuses such clashes).
        admin_headers=dict(type="dict", default={}),
        workspace=dict(type="str"),
        validate_certs=dict(type="bool", default=True),
        ca_path=dict(type="path"),
        client_cert=dict(type="path"),
        client_key=dict(type="path", no_log=False),
        timeout=dict(type="int", default=30),
        admin_retries=dict(type="int", default=3),
    )


class KongError(Exception):
    """A failed Admin API call, with Kong's own error body."""

    def __init__(self, message, status=None, body=None, method=None, path=None):
        super(KongError, self).__init__(message)
        self.status = status
        self.body = body
        self.method = method
        self.path = path

    def to_result(self):
        return dict(msg=str(self), status=self.status, kong_error=self.body, method=self.method, path=self.path)


# ----------------------------------------------------------------------------------------------------
# HTTP client
# ----------------------------------------------------------------------------------------------------

RETRY_STATUSES = frozenset((429, 500, 502, 503, 504))


class KongClient(object):
    """Admin API client on ansible.module_utils.urls. Records every request it makes or would make."""

    def __init__(self, params, check_mode=False, sleep=time.sleep, opener=None):
        self.base = params["admin_url"].rstrip("/")
        if params.get("workspace"):
            self.base += "/" + quote(params["workspace"], safe="")
        self.headers = {"Accept": "application/json"}
        self.headers.update(params.get("admin_headers") or {})
        if params.get("admin_token"):
            self.headers["Kong-Admin-Token"] = params["admin_token"]
        if opener is None:
            # One Request with one TLS context for the whole run: building the context per request
            # (what open_url does) costs ~25 ms, ten times the request itself on a local Admin API.
            context = make_context(cafile=params.get("ca_path"), validate_certs=params.get("validate_certs", True),
                                   client_cert=params.get("client_cert"), client_key=params.get("client_key"))
            request = Request(follow_redirects="none", context=context, use_netrc=False)
            opener = request.open
        self.timeout = params.get("timeout", 30)
        self.retries = max(0, params.get("admin_retries", 3))
        self.check_mode = check_mode
        self.sleep = sleep
        self.opener = opener
        self.requests = []
        self.counts = {"read": 0, "write": 0, "validate": 0}
        self._lock = threading.Lock()
        self._info = None

    # -- low level ---------------------------------------------------------------------------------
    def _record(self, method, path, status, body=None):
        entry = {"method": method, "path": path, "status": status}
        if body is not None:
            entry["body"] = body
        with self._lock:
            self.requests.append(entry)
            if method == "GET":
                self.counts["read"] += 1
            elif path.startswith("/schemas/") and path.endswith("/validate"):
                self.counts["validate"] += 1
            else:
                self.counts["write"] += 1

    def call(self, method, path, body=None, ok=(200, 201, 204), record_body=None):
        """One request with retries. Returns (status, parsed JSON or None). Raises KongError."""
        url = self.base + path
        data = None
        headers = dict(self.headers)
        if body is not None:
            data = json.dumps(body)
            headers["Content-Type"] = "application/json"
        attempt = 0
        while True:
            status, payload, error = self._once(method, url, data, headers)
            retry = error is not None or status in RETRY_STATUSES
            if not retry or attempt >= self.retries:
                break
            self.sleep(0.5 * (2 ** attempt))
            attempt += 1
        self._record(method, path, status if error is None else "error", record_body)
        if error is not None:
            raise KongError("Kong Admin API at %s is unreachable (%s %s): %s" % (self.base, method, path, error),
                            method=method, path=path)
        if status not in ok:
            raise KongError(describe_error(method, path, status, payload), status=status, body=payload,
                            method=method, path=path)
        return status, payload

    def _once(self, method, url, data, headers):
        try:
            response = self.opener(method, url, data=data, headers=headers, timeout=self.timeout)
            raw = response.read()
            return response.getcode(), _parse(raw), None
        except HTTPError as exc:
            try:
                raw = exc.read()
            except Exception:  # pylint: disable=broad-except
                raw = b""
            return exc.code, _parse(raw), None
        except (URLError, OSError, ValueError) as exc:
            return None, None, getattr(exc, "reason", exc)

    # -- helpers -----------------------------------------------------------------------------------
    def get(self, path):
        """GET an entity; None when Kong answers 404."""
        status, payload = self.call("GET", path, ok=(200, 404))
        return None if status == 404 else payload

    def write(self, method, path, body=None, record_body=None):
        """A write; in check mode it is only recorded. Returns Kong's answer (None in check mode)."""
        if self.check_mode:
            self._record(method, path, "check_mode", record_body)
            return None
        return self.call(method, path, body, record_body=record_body)[1]

    def list(self, path, tags=None, size=1000):
        """Every element of a collection, following `next` (a relative path) page by page."""
        query = {"size": size}
        if tags:
            query["tags"] = ",".join(tags)
        nested = path.count("/") > 1
        url = path + "?" + urlencode(query)
        items = []
        while url:
            payload = self.call("GET", url)[1] or {}
            items.extend(payload.get("data") or [])
            nxt = payload.get("next")
            if not nxt:
                break
            url = _relative(nxt)
            if nested and "size=" not in url:
                # kong.md: on nested collections `next` omits size and tags: re-append size.
                url += ("&" if "?" in url else "?") + "size=%d" % size
        return items

    def info(self):
        """Kong's answer to GET / (version, edition, plugins, configuration), read once per run."""
        if self._info is None:
            self._info = self.call("GET", "/")[1] or {}
        return self._info


def _parse(raw):
    if not raw:
        return None
    try:
        return json.loads(raw)
    except ValueError:
        return {"message": raw.decode("utf-8", "replace")[:500]}


def _relative(nxt):
    parts = urlsplit(nxt)
    return parts.path + ("?" + parts.query if parts.query else "")


def describe_error(method, path, status, payload):
    """A failure message that quotes Kong's own error."""
    if isinstance(payload, dict):
        detail = payload.get("message") or json.dumps(payload, sort_keys=True)
        name = payload.get("name")
        if name and name not in detail:
            detail = "%s: %s" % (name, detail)
    else:
        detail = "no body"
    return "Kong Admin API %s %s answered %s: %s" % (method, path, status, detail)


# ----------------------------------------------------------------------------------------------------
# Entity kinds: paths, identities, defaults (Kong 3.9, kong.md section 4 "Defaults returned after create")
# ----------------------------------------------------------------------------------------------------

HEALTHCHECKS_DEFAULT = {
    "active": {
        "type": "http", "timeout": 1, "concurrency": 10, "http_path": "/", "https_sni": None,
        "https_verify_certificate": True, "headers": None,
        "healthy": {"interval": 0, "http_statuses": [200, 302], "successes": 0},
        "unhealthy": {"interval": 0, "http_statuses": [429, 404, 500, 501, 502, 503, 504, 505],
                      "tcp_failures": 0, "timeouts": 0, "http_failures": 0},
    },
    "passive": {
        "type": "http",
        "healthy": {"http_statuses": [200, 201, 202, 203, 204, 205, 206, 207, 208, 226,
                                      300, 301, 302, 303, 304, 305, 306, 307, 308], "successes": 0},
        "unhealthy": {"http_statuses": [429, 500, 503], "tcp_failures": 0, "timeouts": 0, "http_failures": 0},
    },
    "threshold": 0,
}


class Kind(object):
    """What the engine knows about one entity kind."""

    def __init__(self, name, path, key, defaults, sets=(), parent=None, nested=None, foreign=None, secrets=(),
                 generated=(), pem=(), label=None, result=None):
        self.name = name            # Kong's DAO name, also the section name in the declarative format
        self.path = path            # top-level collection path
        self.key = key              # endpoint key (lookup by name), or None
        self.defaults = defaults    # fields Kong fills on create (compared when absent from the desired)
        self.sets = frozenset(sets)  # compared order-insensitively
        self.parent = parent        # (foreign field, parent kind) for kinds written under their parent
        self.nested = nested        # path segment under the parent (credentials, targets)
        # foreign keys (field -> kind); a nested kind's parent is one
        self.foreign = dict(foreign or ({parent[0]: parent[1]} if parent else {}))
        self.secrets = frozenset(secrets)
        self.generated = frozenset(generated)
        self.pem = frozenset(pem)   # PEM text, compared without template whitespace
        self.label = label or name
        self.result = result or name[:-1]  # the module's return key

    def entity_path(self, entity_id, parent_id=None):
        if self.parent and self.nested:
            return "/%s/%s/%s/%s" % (KINDS[self.parent[1]].path, parent_id, self.nested, entity_id)
        return "/%s/%s" % (self.path, entity_id)


KINDS = {}


def _kind(*args, **kwargs):
    kind = Kind(*args, **kwargs)
    KINDS[kind.name] = kind
    return kind


_kind("services", "services", "name", dict(
    name=None, retries=5, protocol="http", host=None, port=80, path=None, connect_timeout=60000,
    write_timeout=60000, read_timeout=60000, tags=None, client_certificate=None, tls_verify=None,
    tls_verify_depth=None, ca_certificates=None, enabled=True), sets=("tags", "ca_certificates"))
_kind("routes", "routes", "name", dict(
    name=None, protocols=["http", "https"], methods=None, hosts=None, paths=None, headers=None, snis=None,
    sources=None, destinations=None, https_redirect_status_code=426, regex_priority=0, strip_path=True,
    path_handling="v0", preserve_host=False, request_buffering=True, response_buffering=True, tags=None,
    service=None), sets=("tags", "protocols", "methods", "snis", "sources", "destinations"),
    foreign={"service": "services"})
_kind("consumers", "consumers", "username", dict(username=None, custom_id=None, tags=None), sets=("tags",))
_kind("plugins", "plugins", "instance_name", dict(
    name=None, instance_name=None, service=None, route=None, consumer=None, config=None, protocols=None,
    enabled=True, tags=None), sets=("tags", "protocols"),
    foreign={"service": "services", "route": "routes", "consumer": "consumers"})
_kind("upstreams", "upstreams", "name", dict(
    name=None, algorithm="round-robin", hash_on="none", hash_fallback="none", hash_on_header=None,
    hash_fallback_header=None, hash_on_cookie=None, hash_on_cookie_path="/", hash_on_query_arg=None,
    hash_fallback_query_arg=None, hash_on_uri_capture=None, hash_fallback_uri_capture=None, slots=10000,
    healthchecks=HEALTHCHECKS_DEFAULT, tags=None, host_header=None, client_certificate=None,
    use_srv_name=False), sets=("tags",))
_kind("targets", "targets", "target", dict(target=None, weight=100, tags=None), sets=("tags",),
      parent=("upstream", "upstreams"), nested="targets")
_kind("certificates", "certificates", None,
      dict(cert=None, key=None, cert_alt=None, key_alt=None, snis=None, tags=None),
      sets=("tags", "snis"), secrets=("key", "key_alt"), pem=("cert", "key", "cert_alt", "key_alt"))
_kind("ca_certificates", "ca_certificates", None, dict(cert=None, cert_digest=None, tags=None), sets=("tags",),
      pem=("cert",), result="ca_certificate")
_kind("keyauth_credentials", "key-auths", "key", dict(key=None, ttl=None, tags=None), sets=("tags",),
      parent=("consumer", "consumers"), nested="key-auth", secrets=("key",), generated=("key",),
      label="key-auth", result="credential")
_kind("basicauth_credentials", "basic-auths", "username", dict(username=None, password=None, tags=None),
      sets=("tags",), parent=("consumer", "consumers"), nested="basic-auth", secrets=("password",),
      label="basic-auth", result="credential")
_kind("jwt_secrets", "jwts", "key", dict(key=None, secret=None, algorithm="HS256", rsa_public_key=None,
                                         tags=None), sets=("tags",), parent=("consumer", "consumers"),
      nested="jwt", secrets=("secret",), generated=("key", "secret"), label="jwt", result="credential")
_kind("hmacauth_credentials", "hmac-auths", "username", dict(username=None, secret=None, tags=None),
      sets=("tags",), parent=("consumer", "consumers"), nested="hmac-auth", secrets=("secret",),
      generated=("secret",), label="hmac-auth", result="credential")
_kind("oauth2_credentials", "oauth2", "client_id", dict(
    name=None, client_id=None, client_secret=None, hash_secret=False, redirect_uris=None,
    client_type="confidential", tags=None), sets=("tags",), parent=("consumer", "consumers"), nested="oauth2",
    secrets=("client_secret",), generated=("client_id", "client_secret"), label="oauth2", result="credential")
_kind("acls", "acls", None, dict(group=None, tags=None), sets=("tags",), parent=("consumer", "consumers"),
      nested="acls", label="acl", result="credential")

CREDENTIAL_KINDS = ("keyauth_credentials", "basicauth_credentials", "jwt_secrets", "hmacauth_credentials",
                    "oauth2_credentials", "acls")
CREDENTIAL_TYPES = {KINDS[k].label: k for k in CREDENTIAL_KINDS}
# Foreign keys each kind may carry (field -> kind); plugins may be scoped to any of three.
FOREIGN = {name: kind.foreign for name, kind in KINDS.items() if kind.foreign}
# Write order: parents before children (deletes run in the reverse order).
LEVELS = (
    ("services", "consumers", "upstreams", "certificates", "ca_certificates"),
    ("routes", "targets") + CREDENTIAL_KINDS,
    ("plugins",),
)
ALL_KINDS = tuple(k for level in LEVELS for k in level)
IGNORED = frozenset(("id", "created_at", "updated_at"))
UUID_RE = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")


def is_uuid(value):
    return isinstance(value, str) and bool(UUID_RE.match(value))


def new_id():
    return str(uuid.uuid4())


# ----------------------------------------------------------------------------------------------------
# Normalisation and comparison
# ----------------------------------------------------------------------------------------------------

def split_url(url):
    """The write-only service `url` shorthand as protocol/host/port/path (kong.md section 4)."""
    parts = urlsplit(url)
    if not parts.scheme or not parts.hostname:
        raise ValueError("url %r is not an absolute URL (scheme://host[:port][/path])" % url)
    default_port = {"https": 443, "grpcs": 443, "tls": 443}.get(parts.scheme, 80)
    return dict(protocol=parts.scheme, host=parts.hostname, port=parts.port or default_port,
                path=parts.path or None)


def normalize_target(target):
    """`host` means `host:8000` (kong.md: target port defaults to 8000)."""
    if target is None:
        return None
    if target.startswith("["):
        return target if "]:" in target else target + ":8000"
    if target.count(":") == 1:
        return target
    if target.count(":") > 1:  # bare IPv6 address
        return "[%s]:8000" % target
    return target + ":8000"


def cert_digest(pem):
    """SHA-256 of the first certificate's DER bytes, hex (what Kong stores as cert_digest)."""
    match = re.search(r"-----BEGIN CERTIFICATE-----(.*?)-----END CERTIFICATE-----", pem or "", re.S)
    if not match:
        raise ValueError("not a PEM certificate (no BEGIN CERTIFICATE block)")
    der = base64.b64decode("".join(match.group(1).split()))
    return hashlib.sha256(der).hexdigest()


def basic_auth_hash(password, consumer_id):
    """kong.md: basic-auth password stored as SHA1(password + consumer_id)."""
    return hashlib.sha1((password + consumer_id).encode("utf-8")).hexdigest()


def pem_text(value):
    """A PEM block without the whitespace templates add or drop (line ends, indentation, blank lines)."""
    if not isinstance(value, str):
        return value
    return "\n".join(line.strip() for line in value.strip().splitlines() if line.strip())


def _empty(value):
    return value is None or value == [] or value == {}


def contains(desired, actual, sets=(), path=""):
    """True when every field of `desired` equals the same field of `actual`.

    Absent and null are equal; an empty list equals null (decK does the same for tags); the fields in
    `sets` (dotted paths) compare order-insensitively. Fields only in `actual` are ignored, so fields a
    newer Kong adds, or deprecated shorthands it echoes, never show as drift.
    """
    if isinstance(desired, dict):
        if _empty(desired):
            return _empty(actual)
        if not isinstance(actual, dict):
            return False
        for key, value in desired.items():
            sub = path + "." + key if path else key
            if not contains(value, actual.get(key), sets, sub):
                return False
        return True
    if isinstance(desired, list) or desired is None:
        if _empty(desired) or _empty(actual):
            return _empty(desired) and _empty(actual)
        if not isinstance(actual, list) or len(desired) != len(actual):
            return False
        if path in sets:
            return sorted(map(_sort_key, desired)) == sorted(map(_sort_key, actual))
        return all(contains(d, a, sets, path) for d, a in zip(desired, actual))
    if isinstance(desired, bool) or isinstance(actual, bool):
        return desired is actual
    return desired == actual


def _sort_key(value):
    return json.dumps(value, sort_keys=True)


def deep_merge(base, override):
    """`override` over `base`, recursing into dicts (how Kong's PATCH merges records)."""
    if not isinstance(base, dict) or not isinstance(override, dict):
        return copy.deepcopy(override)
    merged = copy.deepcopy(base)
    for key, value in override.items():
        merged[key] = deep_merge(merged.get(key), value) if isinstance(value, dict) else copy.deepcopy(value)
    return merged


# ---- plugin schemas (fetched once per plugin name from GET /schemas/plugins/{name}) ----------------

class SchemaCache(object):
    def __init__(self, client):
        self.client = client
        self.cache = {}
        self._lock = threading.Lock()

    def plugin(self, name):
        with self._lock:
            if name not in self.cache:
                schema = self.client.get("/schemas/plugins/%s" % quote(name, safe=""))
                if schema is None:
                    raise KongError("Kong does not know the plugin %r (GET /schemas/plugins/%s answered 404); "
                                    "is it in the node's `plugins` setting?" % (name, name))
                self.cache[name] = schema
            return self.cache[name]


def _schema_fields(schema):
    for item in schema.get("fields") or []:
        for name, spec in item.items():
            yield name, spec


def schema_field(schema, name):
    for field, spec in _schema_fields(schema):
        if field == name:
            return spec
    return None


def fill_record(spec, value):
    """Fill a record's defaults from Kong's schema JSON, recursively; unknown keys are kept as given.

    A field Kong generates (``auto``, for example the oauth2 plugin's ``provision_key``, kong.md section 4
    "Drift traps") is left out when not given, so Kong generates it on create and keeps it afterwards.
    """
    value = dict(value or {})
    for name, sub in _schema_fields(spec):
        if sub.get("auto") and name not in value:
            continue
        if sub.get("type") == "record" and sub.get("fields"):
            if name in value and value[name] is None:
                continue
            inner = value.get(name)
            if inner is None and "default" in sub and sub["default"] is None:
                value[name] = None
                continue
            value[name] = fill_record(sub, inner if inner is not None else sub.get("default"))
        elif name not in value:
            value[name] = copy.deepcopy(sub.get("default"))
    return value


def set_paths(spec, prefix=""):
    """Dotted paths of the set-typed fields in a schema record."""
    paths = set()
    for name, sub in _schema_fields(spec):
        path = prefix + name
        if sub.get("type") == "set":
            paths.add(path)
        elif sub.get("type") == "record":
            paths |= set_paths(sub, path + ".")
    return paths


# ---- one entity: fill, compare, mask ------------------------------------------------------------

class Engine(object):
    """Compares desired entities with Kong's, with one policy for defaults, sets and secrets."""

    def __init__(self, client, update_secrets="always"):
        self.client = client
        self.schemas = SchemaCache(client)
        self.update_secrets = update_secrets

    def fill(self, kind, fields, partial=False):
        """The desired entity as Kong would store it.

        `partial` (per-entity modules): only the given fields are desired; the others keep their value.
        Otherwise (declarative sync) every known field not given takes Kong's default.
        """
        spec = KINDS[kind]
        fields = dict(fields)
        if kind == "services" and fields.get("url"):
            fields.update(split_url(fields.pop("url")))
        fields.pop("url", None)
        if kind == "targets" and fields.get("target"):
            fields["target"] = normalize_target(fields["target"])
        if kind == "ca_certificates" and fields.get("cert"):
            fields["cert_digest"] = cert_digest(fields["cert"])
        if kind == "plugins" and fields.get("name"):
            schema = self.schemas.plugin(fields["name"])
            config_spec = schema_field(schema, "config") or {}
            if "config" in fields or not partial:
                fields["config"] = fill_record(config_spec, fields.get("config"))
            if not partial and "protocols" not in fields:
                fields["protocols"] = copy.deepcopy((schema_field(schema, "protocols") or {}).get("default"))
        if kind == "upstreams" and fields.get("healthchecks") is not None:
            fields["healthchecks"] = deep_merge(HEALTHCHECKS_DEFAULT, fields["healthchecks"])
        if partial:
            return fields
        filled = copy.deepcopy(spec.defaults)
        filled.update(fields)
        return filled

    def set_fields(self, kind, fields):
        paths = set(KINDS[kind].sets)
        if kind == "plugins" and fields.get("name"):
            config_spec = schema_field(self.schemas.plugin(fields["name"]), "config") or {}
            paths |= set_paths(config_spec, "config.")
        return paths

    def secrets_to_compare(self, kind, desired, actual):
        """Secret fields that take part in the comparison, per the update_secrets policy."""
        spec = KINDS[kind]
        if actual is None:
            return set(spec.secrets)
        if self.update_secrets == "on_create":
            return set()
        return set(k for k in spec.secrets if desired.get(k) is not None)

    def changed_fields(self, kind, desired, actual):
        """Top-level field names whose desired value differs from Kong's (foreign keys excluded)."""
        spec = KINDS[kind]
        sets = self.set_fields(kind, desired)
        compare_secrets = self.secrets_to_compare(kind, desired, actual)
        changed = []
        for field, value in desired.items():
            if field in IGNORED or field in FOREIGN.get(kind, {}):
                continue
            if field in spec.secrets:
                if field not in compare_secrets or value is None:
                    continue
                if kind == "basicauth_credentials" and field == "password":
                    if basic_auth_hash(value, (actual.get("consumer") or {}).get("id", "")) != actual.get(field):
                        changed.append(field)
                    continue
                if kind == "oauth2_credentials" and actual.get("hash_secret"):
                    changed.append(field)  # hashed with a salt: cannot be compared, so it is rewritten
                    continue
            if field in spec.generated and value is None:
                continue  # Kong generated it; keep what it made
            if field in spec.pem:
                if pem_text(value) != pem_text(actual.get(field)):
                    changed.append(field)
                continue
            if not contains({field: value}, {field: actual.get(field)}, sets):
                changed.append(field)
        return changed

    def view(self, kind, entity, refs=None, changed=()):
        """An entity as shown in --diff: no ids or timestamps, secrets masked, foreign keys by name.

        A secret in `changed` shows as masked and changed, so a secret-only change is visible.
        """
        if entity is None:
            return {}
        spec = KINDS[kind]
        shown = {}
        for field, value in entity.items():
            if field in IGNORED:
                continue
            if field in spec.secrets and value is not None:
                value = MASK + (" (changed)" if field in changed else "")
            shown[field] = value
        for field, label in (refs or {}).items():
            shown[field] = label
        return shown


# ----------------------------------------------------------------------------------------------------
# Per-entity modules
# ----------------------------------------------------------------------------------------------------

def entity_module_spec(**fields):
    spec = kong_argument_spec()
    clash = sorted(set(spec) & set(fields))
    if clash:  # an entity field must never replace a connection option (kong_route author)
        raise ValueError("entity options %s clash with the connection options" % ", ".join(clash))
    spec.update(fields)
    spec["state"] = dict(type="str", default="present", choices=["present", "absent"])
    return spec


def masked(kind, body):
    """`body` with the kind's secrets masked (None stays None)."""
    if body is None:
        return None
    spec = KINDS[kind]
    return {k: (MASK if k in spec.secrets and v is not None else v) for k, v in (body or {}).items()}


class EntityRunner(object):
    """The whole flow of a per-entity module: find, compare, write (or plan), report.

    `lookup()` returns Kong's entity or None; `desired` holds only the fields the task gave
    (None values dropped); `foreign` maps foreign fields to ids ({"service": {"id": ...}}).
    """

    def __init__(self, module, kind, update_secrets="always"):
        self.module = module
        self.kind = kind
        self.spec = KINDS[kind]
        self.client = KongClient(module.params, check_mode=module.check_mode)
        self.engine = Engine(self.client, update_secrets=update_secrets)

    def fail(self, exc):
        if isinstance(exc, KongError):
            self.module.fail_json(requests=self.client.requests, **exc.to_result())
        self.module.fail_json(msg=str(exc), requests=self.client.requests)

    def finish(self, converge):
        """Exit with what `converge()` returns; a KongError or ValueError fails with its message."""
        try:
            result = converge()
        except (KongError, ValueError) as exc:
            self.fail(exc)
        self.module.exit_json(**result)

    def by_key(self, value):
        """A lookup of this kind's entity by its endpoint key (name, username, ...)."""
        path = "/%s/%s" % (self.spec.path, quote(str(value), safe=""))
        return lambda: self.client.get(path)

    def resolve(self, kind, ref, required=True):
        """An id for a reference given as id or endpoint key (name, username, ...)."""
        if ref is None:
            return None
        path = "/%s/%s" % (KINDS[kind].path, quote(str(ref), safe=""))
        found = self.client.get(path)
        if found is None:
            if not required:
                return None
            raise KongError("%s %r does not exist in Kong (GET %s answered 404)" % (kind[:-1], ref, path))
        return found["id"]

    def run(self, lookup, desired, foreign=None, write_path=None, create_path=None, refs=None, extra=None,
            create_requires=()):
        """Converge one entity. `write_path(id)` and `create_path(new_id)` default to the kind's paths.

        `create_requires` lists the options of which at least one must be set to create the entity.
        """
        state = self.module.params["state"]
        foreign = foreign or {}
        actual = lookup()
        write_path = write_path or self.spec.entity_path
        create_path = create_path or write_path
        result = dict(changed=False, requests=self.client.requests)
        if extra:
            result.update(extra)
        if state == "absent":
            if actual is not None:
                self.client.write("DELETE", write_path(actual["id"]))
                result["changed"] = True
            result["diff"] = dict(before=self.engine.view(self.kind, actual, refs), after={})
            result[self.spec.result] = None
            return result
        filled = self.engine.fill(self.kind, desired, partial=True)
        if actual is None:
            if create_requires and not any(self.module.params.get(o) is not None for o in create_requires):
                raise ValueError("%s does not exist yet: set %s to create it"
                                 % (self.spec.result, " or ".join(create_requires)))
            entity_id = new_id()
            body = dict(filled)
            body.update(foreign)
            answer = self.client.write("PUT", create_path(entity_id), body, record_body=masked(self.kind, body))
            result["changed"] = True
            if answer is None:  # check mode: what Kong would store, the task's secrets masked
                after = masked(self.kind, dict(self.engine.fill(self.kind, dict(filled, **foreign)), id=entity_id))
            else:
                after = answer
            result["diff"] = dict(before={}, after=self.engine.view(self.kind, after, refs))
            result[self.spec.result] = after
            return result
        changed = self.engine.changed_fields(self.kind, filled, actual)
        changed += [f for f, v in foreign.items() if (actual.get(f) or {}).get("id") != (v or {}).get("id")]
        after = actual
        if changed:
            body = {f: (foreign[f] if f in foreign else filled[f]) for f in changed}
            answer = self.client.write("PATCH", write_path(actual["id"]), body,
                                       record_body=masked(self.kind, body))
            after = answer if answer is not None else masked(self.kind, deep_merge(actual, body))
            result["changed"] = True
        result["changed_fields"] = sorted(changed)
        result["diff"] = dict(before=self.engine.view(self.kind, actual, refs),
                              after=self.engine.view(self.kind, after, refs, changed=changed))
        result[self.spec.result] = after
        return result


def given(params, names, ids=()):
    """The task's fields that were set (None means 'not given'); `ids` are references written {"id": ...}."""
    fields = {name: params[name] for name in names if params.get(name) is not None}
    for name in ids:
        if params.get(name) is not None:
            fields[name] = {"id": params[name]}
    return fields
