"""Request handling of the kuma-cp stand-in HTTP API (test double, NOT Kuma).

``ControlPlane.handle(method, path, query, headers, body, client)`` returns ``(status, payload)``
where payload is a dict/list (sent as application/json), a ``Text`` (text/plain) or None.
Facts are cited as ``kuma.md §N "<quote>"`` (/work/shared/reference/kuma.md); see README.md.
"""

import base64
import copy
import datetime
import ipaddress
import json
import socket
import threading
import urllib.parse
import uuid

import resources as R
import tokens as T
from store import MemoryStore, NotFound

VERSION = "2.14.3"          # kuma.md §0 "2.14.x | 2.14.3 ... `latest: true`"
ADMIN_GROUP = "mesh-system:admin"
ADMIN_USER = "mesh-system:admin"
# UNCONFIRMED: the identity Kuma gives a request without a token when localhost is not admin
ANONYMOUS = {"name": "mesh-system:anonymous", "groups": ["mesh-system:unauthenticated"]}
PROXY_HEADERS = ("x-forwarded-for", "x-forwarded-host", "x-forwarded-proto", "x-real-ip", "forwarded")
MAX_PAGE = 1000


class Text(str):
    """A text/plain response body (the dataplane token, /metrics)."""


class HttpError(Exception):
    def __init__(self, status, title, detail, invalid=None):
        super().__init__(detail)
        self.status = status
        self.title = title
        self.detail = detail
        self.invalid = invalid or []

    def body(self):
        """kuma.md §4 "Error body (AIP-193 style plus legacy fields)"."""
        out = {"type": "/std-errors", "status": self.status, "title": self.title,
               "detail": self.detail}
        if self.invalid:
            out["invalid_parameters"] = [{"field": f, "reason": r} for f, r in self.invalid]
        out["details"] = self.detail
        if self.invalid:
            out["causes"] = [{"field": f, "message": r} for f, r in self.invalid]
        return out


def not_found(title="Could not retrieve a resource"):
    """kuma.md §4 "A 404 looks like {... "title":"Could not retrieve a resource","detail":"Not found" ...}"."""
    return HttpError(404, title, "Not found")


def invalid(items, title="Could not process a resource"):
    """kuma.md §4 "Error body" example: 400 "Could not process a resource" / "Resource is not valid"."""
    return HttpError(400, title, "Resource is not valid", items)


def now_rfc3339():
    """Go time.Time JSON form (RFC 3339, UTC); sub-second precision UNCONFIRMED."""
    return datetime.datetime.now(datetime.timezone.utc).isoformat().replace("+00:00", "Z")


def _is_loopback_host(host):
    if not host:
        return False
    host = host.strip()
    if host.startswith("["):
        host = host[1:host.find("]")] if "]" in host else host[1:]
    elif host.count(":") == 1:
        host = host.split(":")[0]
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class Options:
    """The kuma-cp config keys the stand-in honours (kuma.md §2 "Key config")."""

    def __init__(self, **kw):
        self.zone = kw.get("zone", "default")                              # multizone.zone.name
        self.localhost_is_admin = kw.get("localhost_is_admin", True)       # apiServer.authn.localhostIsAdmin
        self.bootstrap_admin_token = kw.get("bootstrap_admin_token", True)  # ...tokens.bootstrapAdminToken
        self.read_only = kw.get("read_only", False)                        # apiServer.readOnly
        self.unsafe_delete = kw.get("unsafe_delete", False)                # store.unsafeDelete
        self.skip_mesh_creation = kw.get("skip_mesh_creation", False)      # defaults.skipMeshCreation
        self.version = kw.get("version", VERSION)


class ControlPlane:
    """The API behaviour; storage goes through ``store`` (a store.Store)."""

    def __init__(self, store=None, options=None):
        self.store = store or MemoryStore()
        self.options = options or Options()
        self.instance_id = "%s-%s" % (socket.gethostname(), uuid.uuid4().hex[:4])
        self.cluster_id = str(uuid.uuid4())
        self.counts = {}
        self.counts_lock = threading.Lock()
        self.bootstrap()

    # ------------------------------------------------------------ bootstrap
    def bootstrap(self):
        """kuma.md §2 "Admin user token: created on first start as GlobalSecret `admin-user-token`";
        §2 "defaults.skipMeshCreation ... the `default` mesh is created at boot"."""
        with self.store.transaction():
            self._ensure_global_secret("user-token-signing-key-1", T.new_signing_key())
            if self.options.bootstrap_admin_token:
                try:
                    self.store.get("GlobalSecret", "", "admin-user-token")
                except NotFound:
                    token = self.issue_user_token(ADMIN_USER, [ADMIN_GROUP], T.TEN_YEARS)
                    self._ensure_global_secret("admin-user-token", base64.b64encode(token.encode()).decode())
            if not self.options.skip_mesh_creation:
                try:
                    self.store.get("Mesh", "", "default")
                except NotFound:
                    self._save(R.BY_NAME["Mesh"], {"type": "Mesh", "name": "default"}, None)

    def _ensure_global_secret(self, name, data):
        try:
            self.store.get("GlobalSecret", "", name)
        except NotFound:
            self._save(R.BY_NAME["GlobalSecret"], {"type": "GlobalSecret", "name": name, "data": data}, None)

    def admin_token(self):
        secret = self.store.get("GlobalSecret", "", "admin-user-token")
        return base64.b64decode(secret["data"]).decode()

    def reset(self):
        self.store.reset()
        self.bootstrap()

    # ------------------------------------------------------------ tokens
    def _signing_key(self, rtype, mesh, prefix):
        """Highest serial wins (kuma.md §2 "Rotation: add a key with a higher serial")."""
        best = None
        for secret in self.store.list(rtype, mesh if rtype == "Secret" else None):
            tail = secret["name"][len(prefix):]
            if secret["name"].startswith(prefix) and tail.isdigit():
                if best is None or int(tail) > best[0]:
                    best = (int(tail), secret["data"])
        return best

    def _key_lookup(self, rtype, mesh, prefix):
        def lookup(kid):
            try:
                return self.store.get(rtype, mesh, prefix + kid)["data"]
            except NotFound:
                return None
        return lookup

    def issue_user_token(self, name, groups, valid_for):
        serial, key = self._signing_key("GlobalSecret", "", "user-token-signing-key-")
        claims = dict(T.registered_claims(valid_for), Name=name, Groups=list(groups))
        return T.sign(claims, key, serial)

    def verify_user_token(self, token):
        try:
            revoked = T.revoked_jtis(self.store.get("GlobalSecret", "", "user-token-revocations")["data"])
        except NotFound:
            revoked = frozenset()
        return T.verify(token, self._key_lookup("GlobalSecret", "", "user-token-signing-key-"), revoked)

    def issue_dataplane_token(self, mesh, name="", tags=None, proxy_type="dataplane", valid_for=T.TEN_YEARS):
        found = self._signing_key("Secret", mesh, "dataplane-token-signing-key-%s-" % mesh)
        if found is None:
            raise invalid([("mesh", "there is no signing key in the Control Plane for mesh %s" % mesh)])
        claims = dict(T.registered_claims(valid_for), Name=name or "", Mesh=mesh,
                      Tags=tags or {}, Type=proxy_type or "dataplane")
        return T.sign(claims, found[1], found[0])

    def verify_dataplane_token(self, token, dataplane, proxy_type="dataplane"):
        """What the future kuma-dp stand-in's DP server calls: signature with the mesh's signing key
        (so a deleted key or a CP restart with the memory store invalidates tokens, kuma.md §7 item 2),
        expiry, revocation Secret, then the name/tags/mesh binding.  Returns the claims or raises
        tokens.TokenError."""
        claims = T.decode(token)[1]
        mesh = claims.get("Mesh") or ""
        try:
            revoked = T.revoked_jtis(self.store.get("Secret", mesh, "dataplane-token-revocations-%s" % mesh)["data"])
        except NotFound:
            revoked = frozenset()
        claims = T.verify(token, self._key_lookup("Secret", mesh, "dataplane-token-signing-key-%s-" % mesh), revoked)
        T.check_dataplane_binding(claims, dataplane, proxy_type)
        return claims

    # ------------------------------------------------------------ auth
    def identify(self, headers, client):
        """kuma.md §2 "Auth for API clients": `Authorization: Bearer <token>`; "An invalid token gives 401
        "Invalid authentication data""; "Localhost is admin (default true) ... only **direct** loopback
        counts: loopback RemoteAddr and Host, no proxy headers, and a matching Origin if present"."""
        auth = headers.get("Authorization") or ""
        if auth.lower().startswith("bearer "):
            try:
                claims = self.verify_user_token(auth[7:].strip())
            except T.TokenError:
                raise HttpError(401, "Unauthorized", "Invalid authentication data") from None
            return {"name": claims.get("Name"), "groups": claims.get("Groups") or []}
        if self.options.localhost_is_admin and self._direct_loopback(headers, client):
            return {"name": ADMIN_USER, "groups": [ADMIN_GROUP]}
        return dict(ANONYMOUS)

    @staticmethod
    def _direct_loopback(headers, client):
        if not _is_loopback_host(client) or not _is_loopback_host(headers.get("Host")):
            return False
        if any(headers.get(name) for name in PROXY_HEADERS):
            return False
        origin = headers.get("Origin")
        if origin:
            return _is_loopback_host(urllib.parse.urlsplit(origin).netloc)
        return True

    @staticmethod
    def require_admin(user, what):
        """kuma.md §2 "Access control (OSS, static)": admin resources and token generation default to
        `mesh-system:admin`.  403 "Access Denied" (kuma.md §4 status table); detail text UNCONFIRMED."""
        if ADMIN_GROUP not in (user.get("groups") or []) and user.get("name") != ADMIN_USER:
            raise HttpError(403, "Access Denied", "user \"%s\" cannot access %s" % (user.get("name"), what))

    # ------------------------------------------------------------ entry points
    def handle(self, method, path, query, headers, body, client="127.0.0.1"):
        try:
            status, payload = self._route(method, path.rstrip("/") or "/", query, headers, body, client)
        except HttpError as exc:
            status, payload = exc.status, exc.body()
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            # malformed input the stand-in did not anticipate: an error body, not a dropped connection
            status, payload = 500, HttpError(500, "Internal Server Error", "%s: %s" % (type(exc).__name__, exc)).body()
        with self.counts_lock:
            key = (method, str(status))
            self.counts[key] = self.counts.get(key, 0) + 1
        return status, payload

    def handle_diagnostics(self, method, path):
        """kuma.md §2 "Ports summary": 5680 "diagnostics: `/ready` (200 or 503), `/healthy`, `/metrics`".
        Bodies UNCONFIRMED (empty for /ready and /healthy)."""
        if method != "GET":
            return 405, None
        if path in ("/ready", "/healthy"):
            return 200, Text("")
        if path == "/metrics":
            return 200, Text(self.metrics())
        return 404, Text("404 page not found\n")

    def metrics(self):
        """Minimal Prometheus text.  Metric names are UNCONFIRMED (Kuma's CP exports many Go/gRPC/xDS series;
        `resources_count{resource_type}` and `cp_info` are from memory)."""
        lines = ["# HELP cp_info Static information about the CP instance",
                 "# TYPE cp_info gauge",
                 'cp_info{instance_id="%s",cluster_id="%s",product="Kuma",version="%s"} 1'
                 % (self.instance_id, self.cluster_id, self.options.version),
                 "# HELP resources_count Number of resources by type",
                 "# TYPE resources_count gauge"]
        for rtype in sorted(R.TYPES.values(), key=lambda t: t.name):
            lines.append('resources_count{resource_type="%s"} %d' % (rtype.name, len(self.store.list(rtype.name))))
        lines += ["# HELP api_server_http_requests_total API requests by method and status (stand-in)",
                  "# TYPE api_server_http_requests_total counter"]
        with self.counts_lock:
            for (method, code), count in sorted(self.counts.items()):
                lines.append('api_server_http_requests_total{method="%s",code="%s"} %d' % (method, code, count))
        return "\n".join(lines) + "\n"

    # ------------------------------------------------------------ routing
    def _route(self, method, path, query, headers, body, client):
        parts = [urllib.parse.unquote(p) for p in path.split("/") if p]
        if parts and parts[0] == "__standin":
            return self._standin(method, parts[1:], body)
        user = self.identify(headers, client)
        if not parts:
            return self._only(method, "GET"), self.index()
        head = parts[0]
        if len(parts) == 1 and head in ("_resources", "config", "who-am-i"):
            self._only(method, "GET")
            if head == "_resources":
                return 200, {"resources": sorted((t.describe(self.options.read_only) for t in R.TYPES.values()),
                                                 key=lambda d: d["name"])}
            if head == "config":
                return 200, self.config()
            return 200, {"name": user["name"], "groups": user["groups"]}
        if head == "tokens" and len(parts) == 2:
            self._only(method, "POST")
            return self._token(parts[1], user, body)
        ctx = (method, query, headers, body, user)
        if head == "meshes" and len(parts) >= 3:
            mesh = parts[1]
            if parts[2] == "dataplanes" and (len(parts) in (4, 5)) and parts[-1] == "_overview":
                self._only(method, "GET")
                return self._overview(mesh, parts[3] if len(parts) == 5 else None, query, headers)
            if parts[2] == "dataplanes+insights" and len(parts) in (3, 4):
                self._only(method, "GET")
                return self._overview(mesh, parts[3] if len(parts) == 4 else None, query, headers)
            rtype = R.TYPES.get(parts[2])
            if rtype is None or not rtype.mesh_scoped or len(parts) > 4:
                raise not_found()
            return self._collection(rtype, mesh, parts[3] if len(parts) == 4 else None, ctx)
        rtype = R.TYPES.get(head)
        if rtype is None or len(parts) > 2:
            raise not_found()
        if rtype.mesh_scoped:
            if len(parts) != 1:
                raise not_found()
            self._only(method, "GET")
            return self._list(rtype, None, query, headers, user)
        return self._collection(rtype, "", parts[1] if len(parts) == 2 else None, ctx)

    @staticmethod
    def _only(method, allowed):
        if method != allowed:
            raise HttpError(405, "Method not Allowed", "Method not Allowed")
        return 200

    def _collection(self, rtype, mesh, name, ctx):
        method, query, headers, body, user = ctx
        if name is None:
            self._only(method, "GET")
            return self._list(rtype, mesh, query, headers, user)
        if method == "GET":
            return self._get(rtype, mesh, name, user)
        if method == "PUT":
            return self._put(rtype, mesh, name, body, user)
        if method == "DELETE":
            return self._delete(rtype, mesh, name, user)
        raise HttpError(405, "Method not Allowed", "Method not Allowed")

    # ------------------------------------------------------------ index, config
    def index(self):
        """kuma.md §4 "`GET /` | Index, no auth: {"hostname","product":"Kuma","version":"2.14.3","instanceId",
        "clusterId","gui":"/gui"}"."""
        return {"hostname": socket.gethostname(), "product": "Kuma", "version": self.options.version,
                "instanceId": self.instance_id, "clusterId": self.cluster_id, "gui": "/gui"}

    def config(self):
        """kuma.md §2 "The effective config ... served at `GET :5681/config`" (only the keys the stand-in honours)."""
        opts = self.options
        return {"environment": "universal", "mode": "zone",
                "store": {"type": "memory", "unsafeDelete": opts.unsafe_delete},
                "apiServer": {"readOnly": opts.read_only, "http": {"port": 5681},
                              "authn": {"type": "tokens", "localhostIsAdmin": opts.localhost_is_admin,
                                        "tokens": {"bootstrapAdminToken": opts.bootstrap_admin_token}}},
                "multizone": {"zone": {"name": opts.zone}},
                "defaults": {"skipMeshCreation": opts.skip_mesh_creation},
                "diagnostics": {"serverPort": 5680}}

    # ------------------------------------------------------------ CRUD
    def _check_access(self, rtype, user):
        if rtype.admin_only:
            self.require_admin(user, "%s resources" % rtype.name)

    def _get(self, rtype, mesh, name, user):
        self._check_access(rtype, user)
        try:
            return 200, self.store.get(rtype.name, mesh, name)
        except NotFound:
            raise not_found() from None

    def _put(self, rtype, mesh, name, raw, user):
        """kuma.md §4 "PUT = upsert.  201 when created, 200 when updated"; "2.10+: the body is `{}`";
        "The body **must** carry `type`, `name` and, for mesh-scoped resources, `mesh`, all matching the URL";
        "An unknown mesh gives 400 "Mesh is not found" with invalid parameter `mesh`"."""
        if self.options.read_only:
            raise HttpError(405, "Method not Allowed", "Method not Allowed")
        self._check_access(rtype, user)
        try:
            body = json.loads(raw.decode() if raw else "")
        except ValueError as exc:
            raise HttpError(400, "Could not process a resource", "Could not parse body: %s" % exc) from None
        if not isinstance(body, dict):
            raise invalid([("", "body must be an object")])
        bad = []
        if body.get("name") != name:
            bad.append(("name", "name from the URL has to be the same as in body"))
        if body.get("type") != rtype.name:
            bad.append(("type", "type from the URL has to be the same as in body"))
        if rtype.mesh_scoped and body.get("mesh") != mesh:
            bad.append(("mesh", "mesh from the URL has to be the same as in body"))
        if bad:
            raise invalid(bad)
        with self.store.transaction():
            if rtype.mesh_scoped:
                try:
                    self.store.get("Mesh", "", mesh)
                except NotFound:
                    raise invalid([("mesh", "Mesh is not found")]) from None
            try:
                current = self.store.get(rtype.name, mesh, name)
            except NotFound:
                current = None
            try:
                R.validate(rtype, body, current)
            except R.Violations as exc:
                raise invalid(exc.items) from None
            self._save(rtype, body, current)
        return (200 if current else 201), {}

    def _save(self, rtype, body, current):
        """Server fields: creationTime (kept on update), modificationTime, computed labels, kri,
        schema defaults (kuma.md §4 "Server-added content to ignore when diffing")."""
        resource = copy.deepcopy(body)
        for field in ("creationTime", "modificationTime", "kri", "snis", "status"):
            resource.pop(field, None)
        R.apply_defaults(rtype, resource)
        labels = dict(resource.get("labels") or {})
        labels.update(R.computed_labels(rtype, resource, self.options.zone))
        if labels:
            resource["labels"] = labels
        else:
            resource.pop("labels", None)
        stamp = now_rfc3339()
        ordered = {"type": rtype.name}
        if rtype.mesh_scoped:
            ordered["mesh"] = resource["mesh"]
        ordered["name"] = resource["name"]
        ordered["creationTime"] = current["creationTime"] if current else stamp
        ordered["modificationTime"] = stamp
        if "labels" in resource:
            ordered["labels"] = resource["labels"]
        kri = R.kri(rtype, resource)
        if kri:
            ordered["kri"] = kri
        for key, value in resource.items():
            if key not in ordered and key not in ("type", "mesh", "name"):
                ordered[key] = value
        if current:
            self.store.update(ordered)
        else:
            self.store.create(ordered)
            if rtype.name == "Mesh":
                self._mesh_defaults(ordered)

    def _mesh_defaults(self, mesh):
        """kuma.md §2 "Defaults created with each Mesh (universal)"; "Skip creation with Mesh
        `skipCreatingInitialPolicies: ['*']`" (type names in the list also skip that type: UNCONFIRMED).
        The signing key is created even when policies are skipped (UNCONFIRMED)."""
        name = mesh["name"]
        secret = R.BY_NAME["Secret"]
        self._save(secret, {"type": "Secret", "mesh": name, "name": "dataplane-token-signing-key-%s-1" % name,
                            "data": T.new_signing_key()}, None)
        skip = mesh.get("skipCreatingInitialPolicies") or []
        for type_name, policy_name, spec in R.mesh_default_policies(name):
            if "*" in skip or type_name in skip:
                continue
            self._save(R.BY_NAME[type_name], {"type": type_name, "mesh": name, "name": policy_name,
                                              "spec": spec}, None)

    def _delete(self, rtype, mesh, name, user):
        """kuma.md §4 "DELETE: 200 with body `{}` (2.10+); 404 if absent"; "Deleting a Mesh that still has
        Dataplanes gives 400 "unable to delete mesh, there are still some dataplanes attached", unless
        `KUMA_STORE_UNSAFE_DELETE` is set"; "Mesh-scoped secrets are removed by owner reference" (here every
        mesh-scoped resource goes with its Mesh).  The 404 title is UNCONFIRMED."""
        if self.options.read_only:
            raise HttpError(405, "Method not Allowed", "Method not Allowed")
        self._check_access(rtype, user)
        with self.store.transaction():
            try:
                self.store.get(rtype.name, mesh, name)
            except NotFound:
                raise not_found("Could not delete a resource") from None
            if rtype.name == "Mesh":
                if self.store.list("Dataplane", name) and not self.options.unsafe_delete:
                    raise invalid([("mesh", "unable to delete mesh, there are still some dataplanes attached")],
                                  title="Could not delete a resource")
                self.store.delete_mesh_scoped(name)
            self.store.delete(rtype.name, mesh, name)
        return 200, {}

    # ------------------------------------------------------------ lists
    @staticmethod
    def _page(query):
        """kuma.md §4 "List and pagination": "Query `size` defaults to 100, maximum 1000; a value ≤0 or
        non-numeric gives 400 "Invalid page size". `offset` is an opaque string".  Over 1000 is refused the
        same way here (UNCONFIRMED: Kuma might clamp); a bad offset gives 400 "Invalid offset" (UNCONFIRMED)."""
        raw = query.get("size", "100")
        try:
            size = int(raw)
        except ValueError:
            size = 0
        if size <= 0 or size > MAX_PAGE:
            raise HttpError(400, "Could not list resources", "Invalid page size", [("size", "Invalid page size")])
        raw = query.get("offset", "") or "0"
        if not raw.isdigit():
            raise HttpError(400, "Could not list resources", "Invalid offset", [("offset", "Invalid offset")])
        return size, int(raw)

    @staticmethod
    def _filters(rtype, query):
        """kuma.md §4 "Filters": `?name=<substring>`; `?filter[labels.<key>]=<value>` exact, ANDed; "Anything
        else gives 400 "filters are only supported on labels""; dataplanes `?tag=k:v`, `?gateway=...`."""
        checks = []
        name = query.get("name")
        if name:
            checks.append(lambda r: name in r["name"])
        for key, value in query.items():
            if key.startswith("filter["):
                if not (key.startswith("filter[labels.") and key.endswith("]")):
                    raise HttpError(400, "Could not list resources", "filters are only supported on labels",
                                    [(key, "filters are only supported on labels")])
                label = key[len("filter[labels."):-1]
                checks.append(lambda r, k=label, v=value: (r.get("labels") or {}).get(k) == v)
        if rtype.name == "Dataplane":
            tag = query.get("tag")
            if tag:
                tkey, tval = tag.partition(":")[::2]
                checks.append(lambda r: any((i.get("tags") or {}).get(tkey) == tval
                                            for i in _dp_tag_sets(r)))
            gateway = query.get("gateway")
            if gateway:
                checks.append(lambda r: _gateway_matches(r, gateway))
        return checks

    def _paged(self, items, query, headers, path):
        size, offset = self._page(query)
        page = items[offset:offset + size]
        nxt = None
        if offset + size < len(items):
            params = dict(query)
            params.update({"offset": str(offset + size), "size": str(size)})
            nxt = "http://%s%s?%s" % (headers.get("Host") or "localhost:5681", path, urllib.parse.urlencode(params))
        return 200, {"total": len(items), "items": page, "next": nxt}

    def _list(self, rtype, mesh, query, headers, user):
        """kuma.md §4 "Response: {"total":N,"items":[…],"next":"http(s)://host/path?offset=…&size=…"|null}".
        Query parameters other than offset/size are kept in `next` (UNCONFIRMED).  A list in an unknown mesh is
        an empty list (UNCONFIRMED)."""
        self._check_access(rtype, user)
        checks = self._filters(rtype, query)
        items = [r for r in self.store.list(rtype.name, mesh) if all(check(r) for check in checks)]
        if mesh:
            path = "/meshes/%s/%s" % (mesh, rtype.path)
        else:
            path = "/" + rtype.path
        return self._paged(items, query, headers, path)

    # ------------------------------------------------------------ dataplane overview
    def _overview_of(self, dataplane):
        """kuma.md §4 "`/meshes/{mesh}/dataplanes/{name}/_overview` ... Dataplane plus DataplaneInsight
        (subscriptions with connect/disconnect times): the way to check a DP is online".  Exact shape
        UNCONFIRMED: {type: DataplaneOverview, mesh, name, creationTime, modificationTime, labels,
        dataplane: {networking}, dataplaneInsight: {subscriptions: [...]}}."""
        try:
            insight = self.store.get("DataplaneInsight", dataplane["mesh"], dataplane["name"])
        except NotFound:
            insight = {"subscriptions": []}
        out = {k: dataplane[k] for k in ("type", "mesh", "name", "creationTime", "modificationTime", "labels")
               if k in dataplane}
        out["type"] = "DataplaneOverview"
        out["dataplane"] = {k: v for k, v in dataplane.items() if k not in R.META_FIELDS}
        out["dataplaneInsight"] = {"subscriptions": insight.get("subscriptions", [])}
        return out

    def _overview(self, mesh, name, query, headers):
        if name is not None:
            try:
                return 200, self._overview_of(self.store.get("Dataplane", mesh, name))
            except NotFound:
                raise not_found() from None
        checks = self._filters(R.BY_NAME["Dataplane"], query)
        items = [self._overview_of(r) for r in self.store.list("Dataplane", mesh) if all(c(r) for c in checks)]
        return self._paged(items, query, headers, "/meshes/%s/dataplanes/_overview" % mesh)

    def record_connection(self, mesh, name, connected, subscription=None):
        """Open (connected=True; returns the new subscription's id) or close a DP's configuration stream
        subscription: the one with id ``subscription`` (each stream has its own), else the last open one."""
        with self.store.transaction():
            try:
                insight = self.store.get("DataplaneInsight", mesh, name)
                exists = True
            except NotFound:
                insight = {"type": "DataplaneInsight", "mesh": mesh, "name": name, "subscriptions": []}
                exists = False
            subs = insight["subscriptions"]
            stamp = now_rfc3339()
            new_id = None
            if connected:
                new_id = str(uuid.uuid4())
                subs.append({"id": new_id, "controlPlaneInstanceId": self.instance_id,
                             "connectTime": stamp, "status": {"lastUpdateTime": stamp},
                             "version": {"kumaDp": {"version": self.options.version}}})
            else:
                for sub in reversed(subs):
                    if "disconnectTime" not in sub and subscription in (None, sub.get("id")):
                        sub["disconnectTime"] = stamp
                        break
            del subs[:-5]
            if exists:
                self.store.update(insight)
            else:
                self.store.create(insight)
            return new_id

    # ------------------------------------------------------------ tokens endpoint
    def _token(self, kind, user, raw):
        """kuma.md §2 "Dataplane token endpoint" and "User tokens: `POST /tokens/user` with body
        {"name","groups":[],"validFor":"24h"}"."""
        if kind not in ("dataplane", "user"):
            raise not_found()
        self.require_admin(user, "generate %s token" % kind)
        try:
            body = json.loads(raw.decode() if raw else "{}")
        except ValueError as exc:
            raise HttpError(400, "Could not process the request", "Could not parse body: %s" % exc) from None
        if not isinstance(body, dict):
            raise invalid([("", "body must be an object")], title="Could not process the request")
        bad = []
        valid_for = T.TEN_YEARS
        if body.get("validFor"):
            try:
                valid_for = T.parse_duration(body["validFor"])
            except (ValueError, TypeError):
                bad.append(("validFor", "invalid duration"))
        if kind == "user":
            if not body.get("name"):
                bad.append(("name", "cannot be empty"))
            if bad:
                raise invalid(bad, title="Could not issue a token")
            return 200, Text(self.issue_user_token(body["name"], body.get("groups") or [], valid_for))
        mesh = body.get("mesh") or ""
        if not mesh:
            bad.append(("mesh", "cannot be empty"))   # kuma.md §2 "400 `mesh: cannot be empty`"
        tags = body.get("tags") or {}
        if not (isinstance(tags, dict) and all(isinstance(v, list) and all(isinstance(i, str) for i in v)
                                               for v in tags.values())):
            bad.append(("tags", "must be a map of string to list of strings"))
        proxy_type = body.get("type") or "dataplane"
        if proxy_type not in ("dataplane", "ingress", "egress"):
            bad.append(("type", "must be one of dataplane, ingress, egress"))
        if bad:
            raise invalid(bad, title="Could not issue a token")
        token = self.issue_dataplane_token(mesh, body.get("name") or "", tags, proxy_type, valid_for)
        return 200, Text(token)

    # ------------------------------------------------------------ test-only extension
    def _standin(self, method, parts, raw):
        """`POST /__standin/reset`; `POST /__standin/verify-dataplane-token` {token, dataplane, proxyType}
        -> 200 {"valid": true, "claims"} or 403 {"valid": false, "reason"}; `POST /__standin/connection`
        {mesh, name, connected}.  Not Kuma."""
        if method != "POST" or len(parts) != 1:
            raise not_found()
        body = json.loads(raw.decode()) if raw else {}
        if parts[0] == "reset":
            self.reset()
            return 200, {}
        if parts[0] == "verify-dataplane-token":
            try:
                claims = self.verify_dataplane_token(body.get("token") or "", body.get("dataplane") or {},
                                                     body.get("proxyType") or "dataplane")
            except T.TokenError as exc:
                return 403, {"valid": False, "reason": str(exc)}
            return 200, {"valid": True, "claims": claims}
        if parts[0] == "connection":
            self.record_connection(body["mesh"], body["name"], bool(body.get("connected")))
            return 200, {}
        raise not_found()


def _dp_tag_sets(dataplane):
    net = dataplane.get("networking") or {}
    sets = list(net.get("inbound") or [])
    if net.get("gateway"):
        sets.append(net["gateway"])
    return sets


def _gateway_matches(dataplane, wanted):
    gateway = (dataplane.get("networking") or {}).get("gateway")
    if wanted == "false":
        return not gateway
    if not gateway:
        return False
    if wanted == "true":
        return True
    return gateway.get("type", "DELEGATED").lower() == wanted.lower()
