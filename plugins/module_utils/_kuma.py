# -*- coding: utf-8 -*-
# Copyright (c) aic.gateway contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""One client and one comparison engine for every Kuma module (private to this collection).

Facts this file relies on (../shared/reference/kuma.md):
  * section 2 "Auth for API clients": `Authorization: Bearer <admin user token>`; localhost is admin.
  * section 2 "Dataplane token endpoint": POST /tokens/dataplane answers a text/plain JWT; tokens are
    never stored by Kuma. Claims (kumahq/kuma pkg/tokens/builtin/issuer/token.go, DataplaneClaims):
    Name, Mesh, Tags (map of string lists), Type, plus the registered claims (jti, iat, nbf, exp).
  * section 4: GET /_resources describes every type (name, scope, readOnly, path); PUT is an upsert
    (201 created / 200 updated, body {} or {"warnings": [...]}); DELETE 200 / 404; lists are
    {total, items, next} with `next` an absolute URL or null; the error body has detail/title +
    invalid_parameters[].field/reason and the legacy details + causes[].field/message.
  * section 4 "GET response shapes": legacy types keep the spec at top level, new types nest `spec`;
    server-added content (timestamps, kri, snis, status, computed labels, schema defaults) is not drift.
"""

from __future__ import annotations

import base64
import binascii
import copy
import json
import os
import re
import time

from ansible.module_utils.six.moves.urllib.error import HTTPError, URLError
from ansible.module_utils.six.moves.urllib.parse import quote, urlencode, urlsplit
from ansible.module_utils.urls import Request, make_context

MASK = "********"

# Fields Kuma adds to every resource it returns (kuma.md section 4 "Server-added content").
SERVER_FIELDS = ("creationTime", "modificationTime", "kri", "snis", "status")
META_FIELDS = ("type", "mesh", "name", "labels") + SERVER_FIELDS
# Labels Kuma computes itself (kuma.md section 4, pkg/core/resources/labels/compute.go).
COMPUTED_LABELS = ("kuma.io/mesh", "kuma.io/origin", "kuma.io/zone", "kuma.io/env", "kuma.io/proxy-type",
                   "kuma.io/display-name", "kuma.io/managed-by", "kuma.io/policy-role", "k8s.kuma.io/namespace")
SECRET_TYPES = ("Secret", "GlobalSecret")

# Proto-based ("legacy") types keep their spec at the top level of the resource (kuma.md section 4
# "GET response shapes"); every other type (Mesh* policies, MeshService, HostnameGenerator, ...) nests
# it under `spec`. /_resources does not say which shape a type has, so this list decides.
LEGACY_TYPES = frozenset((
    "Mesh", "Dataplane", "Secret", "GlobalSecret", "Zone", "ZoneIngress", "ZoneEgress", "MeshGateway",
    "MeshGatewayRoute", "ExternalService", "ProxyTemplate", "TrafficPermission", "TrafficRoute", "Retry",
    "Timeout", "HealthCheck", "CircuitBreaker", "RateLimit", "FaultInjection", "TrafficLog", "TrafficTrace",
    "VirtualOutbound", "DataplaneInsight", "ZoneInsight", "ZoneIngressInsight", "ZoneEgressInsight",
    "MeshInsight", "ServiceInsight",
))
# Scope of the well-known types (kuma.md section 4 "Paths" / "Global resources"), so a wrong `mesh`
# is refused before any request; other types are checked against GET /_resources.
KNOWN_GLOBAL = frozenset(("Mesh", "GlobalSecret", "Zone", "ZoneIngress", "ZoneEgress", "HostnameGenerator"))
KNOWN_MESH_SCOPED = frozenset((
    "Dataplane", "Secret", "MeshGateway", "MeshGatewayRoute", "ExternalService", "ProxyTemplate",
    "TrafficPermission", "TrafficRoute", "Retry", "Timeout", "HealthCheck", "CircuitBreaker", "RateLimit",
    "FaultInjection", "TrafficLog", "TrafficTrace", "VirtualOutbound", "MeshTrafficPermission", "MeshTimeout",
    "MeshRetry", "MeshCircuitBreaker", "MeshRateLimit", "MeshHealthCheck", "MeshTrace", "MeshMetric",
    "MeshAccessLog", "MeshHTTPRoute", "MeshTCPRoute", "MeshLoadBalancingStrategy", "MeshFaultInjection",
    "MeshPassthrough", "MeshProxyPatch", "MeshTLS", "MeshService", "MeshExternalService",
    "MeshMultiZoneService", "MeshIdentity", "MeshTrust",
))

# kuma.md section 4 status table: 503 unavailable; 429 is a proxy's or a load balancer's.
RETRY_STATUSES = frozenset((429, 503))


def kuma_argument_spec():
    """Connection options, documented in the aic.gateway.kuma doc fragment."""
    return dict(
        api_url=dict(type="str", default="http://127.0.0.1:5681", aliases=["kuma_api_url"]),
        token=dict(type="str", no_log=True),
        token_file=dict(type="path"),
        headers=dict(type="dict", default={}),
        validate_certs=dict(type="bool", default=True),
        ca_path=dict(type="path"),
        client_cert=dict(type="path"),
        client_key=dict(type="path", no_log=False),
        timeout=dict(type="int", default=30),
        retries=dict(type="int", default=3),
    )


def module_spec(**options):
    """The connection options plus a module's own (refuses a clash)."""
    spec = kuma_argument_spec()
    clash = sorted(set(spec) & set(options))
    if clash:
        raise ValueError("module options %s clash with the connection options" % ", ".join(clash))
    spec.update(options)
    return spec


CONNECTION_EXCLUSIVE = [("token", "token_file")]


class KumaError(Exception):
    """A failed API call (with Kuma's own error body) or a refusal before any write."""

    def __init__(self, message, status=None, body=None, method=None, path=None):
        super(KumaError, self).__init__(message)
        self.status = status
        self.body = body
        self.method = method
        self.path = path

    def to_result(self):
        return dict(msg=str(self), status=self.status, kuma_error=self.body, method=self.method, api_path=self.path)


def describe_error(method, path, status, payload):
    """A failure message that quotes Kuma's own error: detail (or title) and every field's reason."""
    if isinstance(payload, dict):
        detail = payload.get("detail") or payload.get("details") or payload.get("title") or payload.get("message")
        title = payload.get("title")
        if title and detail and title != detail:
            detail = "%s: %s" % (title, detail)
        reasons = ["%s: %s" % (item.get("field") or "(body)", item.get("reason"))
                   for item in payload.get("invalid_parameters") or [] if isinstance(item, dict)]
        if not reasons:
            reasons = ["%s: %s" % (item.get("field") or "(body)", item.get("message"))
                       for item in payload.get("causes") or [] if isinstance(item, dict)]
        if detail is None:
            detail = json.dumps(payload, sort_keys=True)
        if reasons:
            detail += " (" + "; ".join(reasons) + ")"
    elif payload:
        detail = str(payload)[:500]
    else:
        detail = "no body"
    return "Kuma API %s %s answered %s: %s" % (method, path, status, detail)


def _parse(raw, content_type):
    if not raw:
        return None
    text = raw.decode("utf-8", "replace")
    if "json" in (content_type or "") or text[:1] in ("{", "["):
        try:
            return json.loads(text)
        except ValueError:
            pass
    return text


def _relative(nxt):
    parts = urlsplit(nxt)
    return parts.path + ("?" + parts.query if parts.query else "")


def read_token_file(path):
    """The admin user token from a file on the module's host (e.g. written by the kuma_cp role)."""
    try:
        with open(path, "r") as handle:
            token = handle.read().strip()
    except (IOError, OSError) as exc:
        raise KumaError("token_file %s cannot be read: %s" % (path, exc))
    if not token:
        raise KumaError("token_file %s is empty" % path)
    return token


class KumaClient(object):
    """kuma-cp HTTP API client on ansible.module_utils.urls (open_url's Request, one TLS context per run).

    Records every request it makes or, in check mode, every write it would make.
    """

    def __init__(self, params, check_mode=False, sleep=time.sleep, opener=None):
        self.base = params["api_url"].rstrip("/")
        self.headers = {"Accept": "application/json"}
        self.headers.update(params.get("headers") or {})
        token = params.get("token")
        if not token and params.get("token_file"):
            token = read_token_file(params["token_file"])
        if token:
            self.headers["Authorization"] = "Bearer " + token
        if opener is None:
            context = make_context(cafile=params.get("ca_path"), validate_certs=params.get("validate_certs", True),
                                   client_cert=params.get("client_cert"), client_key=params.get("client_key"))
            opener = Request(follow_redirects="none", context=context, use_netrc=False).open
        self.timeout = params.get("timeout", 30)
        self.retries = max(0, params.get("retries", 3) or 0)
        self.check_mode = check_mode
        self.sleep = sleep
        self.opener = opener
        self.requests = []
        self._types = None

    # -- low level ---------------------------------------------------------------------------------
    def _record(self, method, path, status):
        self.requests.append({"method": method, "path": path, "status": status})

    def call(self, method, path, body=None, ok=(200, 201)):
        """One request with retries (connection error, 429, 503). Returns (status, payload)."""
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
        self._record(method, path, status if error is None else "error")
        if error is not None:
            raise KumaError("Kuma API at %s is unreachable (%s %s): %s" % (self.base, method, path, error),
                            method=method, path=path)
        if status not in ok:
            raise KumaError(describe_error(method, path, status, payload), status=status, body=payload,
                            method=method, path=path)
        return status, payload

    def _once(self, method, url, data, headers):
        try:
            response = self.opener(method, url, data=data, headers=headers, timeout=self.timeout)
            raw = response.read()
            return response.getcode(), _parse(raw, response.headers.get("Content-Type")), None
        except HTTPError as exc:
            try:
                raw = exc.read()
            except Exception:  # pylint: disable=broad-except
                raw = b""
            return exc.code, _parse(raw, exc.headers.get("Content-Type") if exc.headers else None), None
        except (URLError, OSError, ValueError) as exc:
            return None, None, getattr(exc, "reason", exc)

    # -- helpers -----------------------------------------------------------------------------------
    def get(self, path):
        """GET one resource; None on 404."""
        status, payload = self.call("GET", path, ok=(200, 404))
        return None if status == 404 else payload

    def write(self, method, path, body=None):
        """A write; in check mode only recorded (returns (None, None))."""
        if self.check_mode:
            self._record(method, path, "check_mode")
            return None, None
        return self.call(method, path, body)

    def list(self, path, query=None, size=1000):
        """Every item of a list, following `next` until it is null."""
        params = dict(query or {})
        params["size"] = size
        url = path + "?" + urlencode(sorted(params.items()))
        items = []
        while url:
            payload = self.call("GET", url)[1] or {}
            items.extend(payload.get("items") or [])
            nxt = payload.get("next")
            url = _relative(nxt) if nxt else None
        return items

    def index(self):
        return self.call("GET", "/")[1] or {}

    # -- discovery ---------------------------------------------------------------------------------
    def types(self):
        """{type name: description from GET /_resources}, read once per run."""
        if self._types is None:
            payload = self.call("GET", "/_resources")[1] or {}
            items = payload.get("resources") if isinstance(payload, dict) else payload
            self._types = dict((item["name"], item) for item in items or [] if isinstance(item, dict))
        return self._types

    def resource_type(self, name):
        """Description of one type (path, scope, readOnly); KumaError naming the known types otherwise."""
        types = self.types()
        if name not in types:
            raise KumaError("Kuma at %s does not know the resource type %r; known types: %s"
                            % (self.base, name, ", ".join(sorted(types))))
        return types[name]

    def resource_path(self, type_name, name=None, mesh=None):
        info = self.resource_type(type_name)
        if info.get("scope") == "Mesh":
            path = "/meshes/%s/%s" % (quote(mesh or "", safe=""), info["path"])
        else:
            path = "/" + info["path"]
        if name is not None:
            path += "/" + quote(name, safe="")
        return path


# ----------------------------------------------------------------------------------------------------
# Resources: shape, comparison, view
# ----------------------------------------------------------------------------------------------------

def new_style(type_name):
    """True when the type nests its spec under `spec` (see LEGACY_TYPES)."""
    return type_name not in LEGACY_TYPES


def check_scope(type_name, mesh, scope=None):
    """Refuse `mesh` for a global type and require it for a mesh-scoped one.

    `scope` is the discovery answer; without it only the well-known types are checked (before any request).
    """
    if scope is None:
        if type_name in KNOWN_GLOBAL:
            scope = "Global"
        elif type_name in KNOWN_MESH_SCOPED:
            scope = "Mesh"
        else:
            return
    if scope == "Global" and mesh:
        raise KumaError("%s is a global resource type: it takes no mesh (got mesh %r)" % (type_name, mesh))
    if scope == "Mesh" and not mesh:
        raise KumaError("%s is a mesh-scoped resource type: set the mesh" % type_name)


def contains(desired, actual):
    """True when `desired` is contained in `actual`.

    Keys absent from `desired` are ignored (server defaults, computed fields); a null desired value equals an
    absent one; lists compare element-wise (same length, each element contained); bools are not ints.
    """
    if isinstance(desired, dict):
        if not desired:
            return actual in (None, {}) or isinstance(actual, dict)
        if not isinstance(actual, dict):
            return False
        return all(contains(value, actual.get(key)) for key, value in desired.items())
    if isinstance(desired, list):
        if not isinstance(actual, list) or len(desired) != len(actual):
            return not desired and not actual
        return all(contains(d, a) for d, a in zip(desired, actual))
    if desired is None:
        return actual is None or actual == {} or actual == []
    if isinstance(desired, bool) or isinstance(actual, bool):
        return desired is actual
    return desired == actual


def differences(desired, actual, prefix=""):
    """Dotted paths where `desired` is not contained in `actual` (for messages and `changed_fields`)."""
    if isinstance(desired, dict) and isinstance(actual, dict) and desired:
        out = []
        for key, value in desired.items():
            out.extend(differences(value, actual.get(key), prefix + "." + key if prefix else key))
        return out
    return [] if contains(desired, actual) else [prefix or "(resource)"]


def comparable(resource):
    """A desired resource as compared: no server fields, only user labels."""
    out = dict((k, v) for k, v in resource.items() if k not in SERVER_FIELDS)
    return out


def view(resource):
    """A resource as shown in --diff and returned: no server fields or computed labels, secret data masked."""
    if resource is None:
        return {}
    shown = {}
    for key, value in resource.items():
        if key in SERVER_FIELDS:
            continue
        if key == "labels":
            value = dict((k, v) for k, v in (value or {}).items() if k not in COMPUTED_LABELS)
            if not value:
                continue
        shown[key] = value
    return mask_secret(shown)


def mask_secret(resource):
    """`data` of a Secret or GlobalSecret masked (anything else unchanged)."""
    if resource is None:
        return None
    if resource.get("type") in SECRET_TYPES and resource.get("data") is not None:
        resource = dict(resource)
        resource["data"] = MASK
    return resource


def build_resource(type_name, name, mesh=None, labels=None, spec=None):
    """A resource body from its parts; legacy types take `spec`'s keys at top level."""
    body = {"type": type_name, "name": name}
    if mesh:
        body["mesh"] = mesh
    if labels:
        body["labels"] = dict(labels)
    if spec is not None:
        if new_style(type_name):
            body["spec"] = copy.deepcopy(spec)
        else:
            for key, value in spec.items():
                if key in ("type", "name", "mesh", "labels"):
                    raise KumaError("spec of %s cannot hold %r" % (type_name, key))
                body[key] = copy.deepcopy(value)
    return body


def upsert(client, path, desired, actual, result):
    """PUT `desired` when it is absent or not contained in `actual`; fill `result`. Returns True on a write."""
    if actual is not None and contains(comparable(desired), actual):
        result["changed_fields"] = []
        return False
    if actual is not None:
        result["changed_fields"] = sorted(set(p.split(".")[0] for p in differences(comparable(desired), actual)))
    status, payload = client.write("PUT", path, desired)
    result["changed"] = True
    result["created"] = actual is None
    if status is not None and isinstance(payload, dict) and payload.get("warnings"):
        result.setdefault("kuma_warnings", []).extend(payload["warnings"])
    return True


def planned(desired, actual):
    """What the resource would look like after a PUT of `desired` (check mode): desired plus server fields."""
    after = copy.deepcopy(desired)
    if actual:
        labels = dict((k, v) for k, v in (actual.get("labels") or {}).items() if k in COMPUTED_LABELS)
        if labels:
            after["labels"] = dict(labels, **(after.get("labels") or {}))
    return after


# ----------------------------------------------------------------------------------------------------
# Dataplane tokens
# ----------------------------------------------------------------------------------------------------

DURATION = re.compile(r"(\d+(?:\.\d+)?)(ns|us|\u00b5s|ms|s|m|h|d)")
UNITS = {"ns": 1e-9, "us": 1e-6, u"\u00b5s": 1e-6, "ms": 1e-3, "s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(value):
    """Seconds from a Go duration (`720h`, `1h30m`), a number of seconds, or `<n>d`. ValueError otherwise."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    text = str(value).strip()
    if re.match(r"^\d+(\.\d+)?$", text):
        return float(text)
    pos, total = 0, 0.0
    for match in DURATION.finditer(text):
        if match.start() != pos:
            break
        total += float(match.group(1)) * UNITS[match.group(2)]
        pos = match.end()
    if not text or pos != len(text):
        raise ValueError("%r is not a duration (Go form such as 720h or 1h30m, or seconds)" % value)
    return total


def _unb64url(text):
    return base64.urlsafe_b64decode(str(text) + "=" * (-len(text) % 4))


def decode_jwt(token):
    """(header, claims) of a JWT WITHOUT verifying it; ValueError when it is not a JWT."""
    try:
        head, body = token.strip().split(".")[:2]
        header = json.loads(_unb64url(head).decode("utf-8"))
        claims = json.loads(_unb64url(body).decode("utf-8"))
    except (ValueError, TypeError, binascii.Error, UnicodeDecodeError) as exc:
        raise ValueError("not a JWT: %s" % exc)
    if not isinstance(claims, dict) or not isinstance(header, dict):
        raise ValueError("not a JWT: header or claims are not objects")
    return header, claims


def normalize_tags(tags):
    """{tag: sorted list of values}; a plain string value becomes a one-element list."""
    out = {}
    for key, value in (tags or {}).items():
        if value is None:
            continue
        values = [value] if isinstance(value, str) else list(value)
        out[str(key)] = sorted(str(v) for v in values)
    return out


def token_mismatch(claims, mesh, name, tags, proxy_type, renew_before, now=None):
    """Why an existing token's claims do not fit, or None when it can be kept."""
    now = time.time() if now is None else now
    reasons = []
    if (claims.get("Mesh") or "") != mesh:
        reasons.append("mesh %r, wanted %r" % (claims.get("Mesh"), mesh))
    if (claims.get("Name") or "") != (name or ""):
        reasons.append("name %r, wanted %r" % (claims.get("Name") or "", name or ""))
    if normalize_tags(claims.get("Tags")) != normalize_tags(tags):
        reasons.append("tags %s, wanted %s" % (json.dumps(normalize_tags(claims.get("Tags")), sort_keys=True),
                                               json.dumps(normalize_tags(tags), sort_keys=True)))
    if (claims.get("Type") or "dataplane") != proxy_type:
        reasons.append("type %r, wanted %r" % (claims.get("Type") or "dataplane", proxy_type))
    exp = claims.get("exp")
    if isinstance(exp, (int, float)) and not isinstance(exp, bool):
        if exp <= now:
            reasons.append("expired")
        elif exp - now <= renew_before:
            reasons.append("expires within %ds (renew_before)" % int(renew_before))
    return "; ".join(reasons) or None


def public_claims(claims):
    """The claims shown in results and diffs (never the token itself)."""
    keys = ("Name", "Mesh", "Tags", "Type", "exp", "iat", "nbf", "jti")
    return dict((k, claims[k]) for k in keys if k in claims)


def write_private_file(path, content):
    """Write `content` to `path` atomically with mode 0600 (temporary file in the same directory + rename)."""
    directory = os.path.dirname(os.path.abspath(path))
    tmp = os.path.join(directory, ".%s.%d.tmp" % (os.path.basename(path), os.getpid()))
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(content)
        os.chmod(tmp, 0o600)
        os.rename(tmp, path)
    except Exception:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


# ----------------------------------------------------------------------------------------------------
# Dataplane overview
# ----------------------------------------------------------------------------------------------------

def dataplane_online(overview):
    """Online = the last subscription has a connectTime and no disconnectTime (kuma.md section 4)."""
    insight = overview.get("dataplaneInsight") or {}
    subs = insight.get("subscriptions") or []
    if not subs:
        return False
    last = subs[-1]
    return bool(last.get("connectTime")) and not last.get("disconnectTime")


def dataplane_summary(overview):
    """One line per Dataplane for kuma_info."""
    dataplane = overview.get("dataplane") or {}
    networking = dataplane.get("networking") or {}
    subs = (overview.get("dataplaneInsight") or {}).get("subscriptions") or []
    last = subs[-1] if subs else {}
    services = [(i.get("tags") or {}).get("kuma.io/service") for i in networking.get("inbound") or []]
    if networking.get("gateway"):
        services.append((networking["gateway"].get("tags") or {}).get("kuma.io/service"))
    return {
        "mesh": overview.get("mesh"),
        "name": overview.get("name"),
        "online": dataplane_online(overview),
        "address": networking.get("address"),
        "services": [s for s in services if s],
        "gateway": (networking.get("gateway") or {}).get("type", "DELEGATED") if networking.get("gateway") else None,
        "connect_time": last.get("connectTime"),
        "disconnect_time": last.get("disconnectTime"),
        "labels": dict((k, v) for k, v in (overview.get("labels") or {}).items()),
    }


# ----------------------------------------------------------------------------------------------------
# Module glue
# ----------------------------------------------------------------------------------------------------

def run(module, converge):
    """Exit with what `converge(client)` returns; KumaError/ValueError fail with the requests made so far."""
    client = None
    try:
        client = KumaClient(module.params, check_mode=module.check_mode)
        result = converge(client)
    except (KumaError, ValueError) as exc:
        requests = client.requests if client is not None else []
        if isinstance(exc, KumaError):
            module.fail_json(requests=requests, **exc.to_result())
        module.fail_json(msg=str(exc), requests=requests)
    for warning in result.get("kuma_warnings") or []:
        module.warn("Kuma: %s" % warning)
    module.exit_json(**result)
