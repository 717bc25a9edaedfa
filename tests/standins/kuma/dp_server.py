"""DP server of the kuma-cp runtime stand-in (HTTPS on `dpServer.port`; test double, NOT Kuma).

Real Kuma serves bootstrap, xDS and SDS here (kuma.md §2 "dpServer.port ... gRPC/HTTPS for bootstrap, xDS and
SDS").  The stand-in keeps Kuma's bootstrap request (``POST /bootstrap``, field names of kumahq/kuma
`pkg/xds/bootstrap/types/bootstrap_request.go` as sent by `app/kuma-dp/pkg/dataplane/envoy/remote_bootstrap.go`)
and replaces xDS/SDS with its OWN polling protocol (not xDS):

* ``POST /standin/v1/config`` ``{"session"}`` -> the proxy's whole view (mesh mTLS state, CA and own certificate,
  MeshTrafficPermissions, endpoints per `kuma.io/service` of online proxies).  Each poll is a heartbeat.
* ``POST /standin/v1/leave`` ``{"session"}`` -> graceful stop: the Dataplane of a "direct" proxy is deleted
  (kuma.md §3 "Lifecycle": "Deleted on graceful stop").
"""

import base64
import json
import threading
import time
import uuid

import mads
import pki
import resources as R
import tokens as T
from store import NotFound

# kumahq/kuma pkg/xds/bootstrap/generator.go
DP_TOKEN_REQUIRED = ("Dataplane Token is required. Generate token using 'kumactl generate dataplane-token > "
                     "/path/file' and provide it via --dataplane-token-file=/path/file argument to Kuma DP")


class DpError(Exception):
    def __init__(self, status, text):
        super().__init__(text)
        self.status = status
        self.text = text


class DpServer:
    """Sessions of connected proxies on top of an api.ControlPlane."""

    def __init__(self, cp, auth_type="dpToken", idle_timeout=300.0, log=None):
        self.cp = cp
        self.auth_type = auth_type
        self.idle_timeout = idle_timeout
        self.log = log or (lambda message: None)
        self.sessions = {}          # id -> {mesh, name, direct, seen}
        self.lock = threading.RLock()
        self.leaf_cache = {}
        self.stop_event = threading.Event()

    # ------------------------------------------------------------ bootstrap
    def bootstrap(self, request):
        """kuma.md §3 "Direct (recommended): the resource is passed to kuma-dp and created or updated by the CP
        on connect"; "Indirect: the resource is created via the API ... then run `kuma-dp run --name=… --mesh=…`".
        Errors: absent token 422 with Kuma's DpTokenRequired text (generator.go; handler.go writes 422 for it
        and for validation errors); indirect DP not found -> 404 with an empty body (remote_bootstrap.go maps
        that to DpNotFoundErr and retries). As in Kuma, bootstrap only requires a token to be present: it is
        verified when the proxy opens its configuration stream (the xDS stream upstream, the first config poll
        here), and only then is the Dataplane created and counted as connected."""
        proxy_type = request.get("proxyType") or "dataplane"
        if proxy_type != "dataplane":
            raise DpError(422, "the stand-in only serves proxyType dataplane, not %s" % proxy_type)
        raw = request.get("dataplaneResource") or ""
        direct = bool(raw)
        if direct:
            try:
                dataplane = json.loads(raw)
            except ValueError as exc:
                raise DpError(422, "could not parse dataplaneResource: %s" % exc) from None
            if not isinstance(dataplane, dict) or dataplane.get("type") != "Dataplane":
                raise DpError(422, "dataplaneResource must be a Dataplane")
        else:
            try:
                dataplane = self.cp.store.get("Dataplane", request.get("mesh") or "", request.get("name") or "")
            except NotFound:
                raise DpError(404, "") from None
        mesh, name = dataplane.get("mesh") or "", dataplane.get("name") or ""
        bad = []
        if direct:
            try:
                R.validate(R.BY_NAME["Dataplane"], dataplane)
            except R.Violations as exc:
                bad = list(exc.items)
        if not mesh:
            bad = [("mesh", "cannot be empty")] + list(bad)
        if bad:
            raise DpError(422, "; ".join("%s: %s" % item for item in bad))
        if self.auth_type == "dpToken":
            token = (request.get("dataplaneToken") or "").strip()
            if not token:
                raise DpError(422, DP_TOKEN_REQUIRED)
        else:
            token = ""
        try:
            self.cp.store.get("Mesh", "", mesh)
        except NotFound:
            raise DpError(422, "mesh: mesh %s does not exist" % mesh) from None
        session = uuid.uuid4().hex
        with self.lock:
            self.sessions[session] = {"mesh": mesh, "name": name, "direct": direct, "seen": time.monotonic(),
                                      "dataplane": dataplane, "token": token, "proxy_type": proxy_type,
                                      "authenticated": self.auth_type != "dpToken"}
        if self.sessions[session]["authenticated"]:
            self._connect(self.sessions[session])
        # kumahq/kuma types.BootstrapResponse has `bootstrap` (Envoy YAML) and `kumaSidecarConfiguration`;
        # the stand-in sends no Envoy bootstrap, only its session.
        return {"bootstrap": "", "kumaSidecarConfiguration": {"metrics": {"aggregate": []}},
                "standin": {"session": session, "mesh": mesh, "name": name,
                            "pollInterval": 0.2, "version": self.cp.options.version}}

    def _session(self, request):
        with self.lock:
            found = self.sessions.get(request.get("session") or "")
            if found is None:
                raise DpError(401, "unknown session: bootstrap again")
            found["seen"] = time.monotonic()
            return dict(found)

    def _connect(self, session):
        """The Dataplane is created (direct lifecycle) and counted as connected once its stream is authenticated."""
        mesh, name = session["mesh"], session["name"]
        with self.cp.store.transaction():
            if session["direct"]:
                try:
                    current = self.cp.store.get("Dataplane", mesh, name)
                except NotFound:
                    current = None
                self.cp._save(R.BY_NAME["Dataplane"], session["dataplane"], current)  # pylint: disable=protected-access
        session["subscription"] = self.cp.record_connection(mesh, name, True)
        self.log("dataplane %s/%s connected (%s lifecycle)" % (mesh, name, "direct" if session["direct"] else "indirect"))

    def _authenticate(self, session_id):
        """kuma.md §2 "Dataplane token endpoint"/§3 "Token binding": the token must verify with the mesh's signing
        key and bind this Dataplane (name, services). Refused streams get 401; the proxy keeps retrying."""
        with self.lock:
            session = self.sessions.get(session_id)
            if session is None or session["authenticated"]:
                return
        try:
            self.cp.verify_dataplane_token(session["token"], session["dataplane"], session["proxy_type"])
        except T.TokenError as exc:
            self.log("dataplane %s/%s: authentication failed: %s" % (session["mesh"], session["name"], exc))
            raise DpError(401, "authentication failed: %s" % exc) from None
        with self.lock:
            session["authenticated"] = True
        self._connect(session)

    # ------------------------------------------------------------ config
    def config(self, request):
        self._session(request)
        self._authenticate(request.get("session") or "")
        session = self._session(request)
        mesh, name = session["mesh"], session["name"]
        try:
            dataplane = self.cp.store.get("Dataplane", mesh, name)
            mesh_res = self.cp.store.get("Mesh", "", mesh)
        except NotFound:
            raise DpError(404, "") from None
        mtls = self._mtls(mesh_res)
        out = {"mesh": mesh, "name": name, "dataplane": dataplane, "mtls": mtls,
               "meshTrafficPermissions": [dict(p.get("spec") or {}, name=p["name"])
                                          for p in self.cp.store.list("MeshTrafficPermission", mesh)],
               "meshRetries": [dict(p.get("spec") or {}, name=p["name"])
                               for p in self.cp.store.list("MeshRetry", mesh)],
               "meshTimeouts": [dict(p.get("spec") or {}, name=p["name"])
                                for p in self.cp.store.list("MeshTimeout", mesh)],
               "endpoints": self._endpoints(mesh),
               "metrics": mads.prometheus_backend(self.cp.store.list("MeshMetric", mesh))}
        if mtls["enabled"]:
            out["mtls"]["identity"] = self._leaf(mesh, mesh_res, mtls, dataplane)
        return out

    def leave(self, request):
        """kuma.md §3 "On SIGTERM, kuma-dp drains listeners, then exits. A gracefully stopped "direct" DP has its
        Dataplane object deleted by the CP"."""
        session = self._session(request)
        with self.lock:
            self.sessions.pop(request.get("session"), None)
        if not session["authenticated"]:
            return {}
        self.cp.record_connection(session["mesh"], session["name"], False, session.get("subscription"))
        if session["direct"]:
            try:
                self.cp.store.delete("Dataplane", session["mesh"], session["name"])
            except NotFound:
                pass
        self.log("dataplane %s/%s disconnected gracefully" % (session["mesh"], session["name"]))
        return {}

    def online(self):
        with self.lock:
            return {(s["mesh"], s["name"]) for s in self.sessions.values() if s["authenticated"]}

    def _endpoints(self, mesh):
        """Per `kuma.io/service`: inbounds of online proxies of the mesh."""
        online = self.online()
        out = {}
        for dataplane in self.cp.store.list("Dataplane", mesh):
            if (mesh, dataplane["name"]) not in online:
                continue
            net = dataplane.get("networking") or {}
            for inbound in net.get("inbound") or []:
                tags = inbound.get("tags") or {}
                out.setdefault(tags.get("kuma.io/service"), []).append(
                    {"dataplane": dataplane["name"], "address": net.get("advertisedAddress") or net.get("address"),
                     "port": inbound.get("port"), "tags": tags})
        for items in out.values():
            items.sort(key=lambda e: (e["dataplane"], e["port"]))
        return out

    # ------------------------------------------------------------ mTLS
    @staticmethod
    def _mtls(mesh_res):
        """kuma.md §5: `mtls.enabledBackend` names one of `mtls.backends` (type builtin|provided, mode
        STRICT|PERMISSIVE)."""
        mtls = mesh_res.get("mtls") or {}
        enabled = mtls.get("enabledBackend") or ""
        backend = next((b for b in mtls.get("backends") or [] if b.get("name") == enabled), None)
        if not enabled or backend is None:
            return {"enabled": False}
        return {"enabled": True, "backend": enabled, "type": backend.get("type", "builtin"),
                "mode": backend.get("mode") or "STRICT"}

    def _ca(self, mesh, mesh_res, mtls):
        """Builtin CA kept as mesh Secrets `<mesh>.ca-builtin-cert-<backend>` / `...-key-<backend>` (names
        UNCONFIRMED); made with openssl the first time mTLS is on, so it survives restarts on postgres."""
        if mtls["type"] != "builtin":
            raise DpError(422, "the stand-in implements only the builtin mTLS backend, not %s" % mtls["type"])
        cert_name = "%s.ca-builtin-cert-%s" % (mesh, mtls["backend"])
        key_name = "%s.ca-builtin-key-%s" % (mesh, mtls["backend"])
        with self.cp.store.transaction():
            try:
                cert = self.cp.store.get("Secret", mesh, cert_name)["data"]
                key = self.cp.store.get("Secret", mesh, key_name)["data"]
                return base64.b64decode(cert).decode(), base64.b64decode(key).decode()
            except NotFound:
                pass
            backend = next(b for b in (mesh_res.get("mtls") or {}).get("backends") or []
                           if b.get("name") == mtls["backend"])
            bits = int(((backend.get("conf") or {}).get("caCert") or {}).get("RSAbits") or 2048)
            cert, key = pki.new_ca(mesh, bits=bits)
            for secret_name, text in ((cert_name, cert), (key_name, key)):
                self.cp._save(R.BY_NAME["Secret"], {  # pylint: disable=protected-access
                    "type": "Secret", "mesh": mesh, "name": secret_name,
                    "data": base64.b64encode(text.encode()).decode()}, None)
            self.log("generated builtin CA for mesh %s backend %s" % (mesh, mtls["backend"]))
            return cert, key

    def _leaf(self, mesh, mesh_res, mtls, dataplane):
        ca_cert, ca_key = self._ca(mesh, mesh_res, mtls)
        net = dataplane.get("networking") or {}
        tags = {}
        for item in list(net.get("inbound") or []) + ([net["gateway"]] if net.get("gateway") else []):
            for key, value in (item.get("tags") or {}).items():
                tags.setdefault(key, set()).add(value)
        services = sorted(tags.get("kuma.io/service") or {"unknown"})
        key = (mesh, dataplane["name"], ca_cert, json.dumps({k: sorted(v) for k, v in tags.items()}, sort_keys=True))
        with self.lock:
            cached = self.leaf_cache.get(key)
        if cached is None:
            cert, pkey = pki.issue_leaf(ca_cert, ca_key, mesh, services[0], tags)
            cached = {"cert": cert, "key": pkey, "ca": ca_cert,
                      "spiffe": "spiffe://%s/%s" % (mesh, services[0])}
            with self.lock:
                self.leaf_cache[key] = cached
        return cached

    # ------------------------------------------------------------ offline after idle
    def reap(self):
        """kuma.md §2 `metrics.dataplane.idleTimeout` "a DP with no xDS stream is marked Offline" (here: no poll
        for that long)."""
        now = time.monotonic()
        with self.lock:
            gone = [(sid, s) for sid, s in self.sessions.items() if now - s["seen"] > self.idle_timeout]
            for sid, _session in gone:
                del self.sessions[sid]
        for _sid, session in gone:
            if not session["authenticated"]:
                continue
            self.cp.record_connection(session["mesh"], session["name"], False, session.get("subscription"))
            self.log("dataplane %s/%s marked offline after %.1fs without a poll"
                     % (session["mesh"], session["name"], self.idle_timeout))

    def reaper(self):
        while not self.stop_event.wait(min(1.0, self.idle_timeout / 2)):
            try:
                self.reap()
            except Exception as exc:  # pylint: disable=broad-except
                self.log("reaper: %s" % exc)

    def handle(self, method, path, body):
        """(status, content-type, bytes)."""
        try:
            request = json.loads(body.decode() or "{}") if body else {}
            if method != "POST":
                return 405, "text/plain", b"Method Not Allowed"
            if path == "/bootstrap":
                payload = self.bootstrap(request)
            elif path == "/standin/v1/config":
                payload = self.config(request)
            elif path == "/standin/v1/leave":
                payload = self.leave(request)
            else:
                # remote_bootstrap.go: `"404: Page Not Found" // response body of Go HTTP Server`
                return 404, "text/plain", b"404: Page Not Found"
        except DpError as exc:
            return exc.status, "text/plain", exc.text.encode()
        except ValueError as exc:
            return 400, "text/plain", str(exc).encode()
        return 200, "application/json", json.dumps(payload).encode()
