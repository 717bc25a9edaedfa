"""`kuma-dp` runtime stand-in (test double, NOT Kuma): `run`, `version`.  See README.md.

The proxy itself (Envoy's job) is done in-process by plain TCP forwarding; the `envoy` binary is only looked up
and asked for `--version` (kuma.md §3 `--binary-path`, §7.15).  Logs go to stderr.
"""

import argparse
import itertools
import json
import os
import re
import selectors
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import yaml  # noqa: E402  pylint: disable=wrong-import-position

import buildinfo  # noqa: E402  pylint: disable=wrong-import-position
import mtp  # noqa: E402  pylint: disable=wrong-import-position
import tokens as T  # noqa: E402  pylint: disable=wrong-import-position

# Envoy's RBAC filter denial: HTTP 403 with body "RBAC: access denied" (Istio docs, e.g. istio.io security
# tasks: `curl ... productpage ... -> RBAC: access denied`); header set UNCONFIRMED.
RBAC_BODY = b"RBAC: access denied"
ENVOY_VERSION_RE = re.compile(r"version:\s*[0-9a-f]+/(\d+)\.(\d+)\.(\d+)")


def log(message, level="info"):
    sys.stderr.write("%s\t%s\tkuma-dp\t%s\n" % (time.strftime("%Y-%m-%dT%H:%M:%S"), level.upper(), message))
    sys.stderr.flush()


class Fatal(Exception):
    """kuma-dp exits 1 with this message."""


def render(template, variables):
    """kuma.md §3 "it is a **Mustache** template (`{{ var }}`)"; a missing variable renders empty (Mustache's
    default; Kuma's setting UNCONFIRMED)."""
    return re.sub(r"{{\s*([A-Za-z0-9_.-]+)\s*}}", lambda m: variables.get(m.group(1), ""), template)


def envoy_lookup(configured):
    """kuma.md §3 `--binary-path` "Lookup order: the given path or `$PATH` -> `./envoy` in the cwd -> next to the
    kuma-dp executable"."""
    candidates = [configured, os.path.join(os.getcwd(), "envoy"),
                  os.path.join(os.path.dirname(os.path.abspath(sys.argv[0])), "envoy")]
    for candidate in candidates:
        found = shutil.which(candidate)
        if found:
            return found
    raise Fatal("could not find binary in any of the following paths: %s" % candidates)


def envoy_check(path):
    """kuma.md §0 "kuma-dp accepts only an Envoy with the same major.minor; any patch of that minor is OK
    (semver `~`)"."""
    try:
        out = subprocess.run([path, "--version"], capture_output=True, text=True, timeout=30, check=True).stdout
    except (OSError, subprocess.SubprocessError) as exc:
        raise Fatal("failed to get Envoy version: %s" % exc) from None
    match = ENVOY_VERSION_RE.search(out)
    if not match:
        raise Fatal("failed to get Envoy version: unable to parse %r" % out.strip())
    current = "%s.%s.%s" % match.groups()
    expected = buildinfo.envoy_version()
    if current.split(".")[:2] != expected.split(".")[:2]:
        raise Fatal("Envoy version incompatible: expected ~%s, current %s (%s); use the envoy binary of the same "
                    "Kuma release" % (expected, current, path))
    return current


class Proxy:
    def __init__(self, args):
        self.args = args
        self.state = {"ready": False, "terminating": False}
        self.config = None
        self.session = None
        self.stop = threading.Event()
        self.work = args.work_dir or tempfile.mkdtemp(prefix="kuma-dp-")
        self.listeners = []
        self.rr = itertools.count()
        self.tls = None            # (fingerprint, server ctx, client ctx)
        self.lock = threading.Lock()
        self.stats = {}            # (cluster, stat) -> value, see metrics_text()
        self.metrics_server = None

    # ------------------------------------------------------------ metrics
    def count(self, cluster, stat, delta=1):
        with self.lock:
            self.stats[(cluster, stat)] = self.stats.get((cluster, stat), 0) + delta

    def metrics_text(self):
        """Envoy's cluster statistics in Envoy's Prometheus form: `cluster.<name>.<stat>` becomes
        `envoy_cluster_<stat>{envoy_cluster_name="<name>"}` (envoyproxy.io docs "Cluster statistics":
        upstream_cx_total Counter, upstream_cx_active Gauge, upstream_cx_connect_fail Counter; Envoy's
        `/stats/prometheus` output). The stand-in counts TCP connections per outbound service, per inbound
        (`localhost_<servicePort>`), and reports `envoy_server_live 1`."""
        kinds = {"upstream_cx_total": "counter", "upstream_cx_connect_fail": "counter",
                 "upstream_cx_active": "gauge"}
        with self.lock:
            stats = dict(self.stats)
        lines = ["# TYPE envoy_server_live gauge", "envoy_server_live 1"]
        for stat, kind in sorted(kinds.items()):
            lines.append("# TYPE envoy_cluster_%s %s" % (stat, kind))
            for (cluster, name), value in sorted(stats.items()):
                if name == stat:
                    lines.append('envoy_cluster_%s{envoy_cluster_name="%s"} %d' % (stat, cluster, value))
        return "\n".join(lines) + "\n"

    def serve_metrics(self, address):
        """kuma.md §6 MeshMetric `backends: [{type: Prometheus, prometheus: {port, path}}]`: the data plane serves
        its metrics on that port and path of its address (real kuma-dp merges Envoy's stats there)."""
        backend = (self.config or {}).get("metrics")
        if not backend or self.metrics_server is not None:
            return
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format, *args):  # pylint: disable=redefined-builtin
                return

            def do_GET(self):  # pylint: disable=invalid-name
                if self.path.split("?")[0] == backend["path"]:
                    status, body = 200, proxy.metrics_text().encode()
                else:
                    status, body = 404, b""
                self.send_response(status)
                self.send_header("Content-Type", "text/plain; version=0.0.4")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        try:
            server = ThreadingHTTPServer((address, backend["port"]), Handler)
        except OSError as exc:
            log("cannot serve metrics on %s:%d: %s" % (address, backend["port"], exc), "error")
            return
        server.daemon_threads = True
        threading.Thread(target=server.serve_forever, daemon=True).start()
        self.metrics_server = server
        log("serving metrics on %s:%d%s" % (address, backend["port"], backend["path"]))

    # ------------------------------------------------------------ CP client
    def cp_context(self):
        """kuma.md §7.5 "kuma-dp and kumactl no longer silently skip TLS verification": `--ca-cert-file` (or
        KUMA_CONTROL_PLANE_CA_CERT), else the system trust store; `--skip-verify` only when asked."""
        context = ssl.create_default_context()
        if self.args.skip_verify:
            log("[WARNING] --skip-verify: the identity of the control plane is not verified")
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        elif self.args.ca_cert:
            context.load_verify_locations(cadata=self.args.ca_cert)
        return context

    def post(self, path, body, timeout=10):
        request = urllib.request.Request(self.args.cp_address.rstrip("/") + path, data=json.dumps(body).encode(),
                                         method="POST", headers={"Content-Type": "application/json",
                                                                 "Accept": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=timeout, context=self.cp_ctx) as response:
                return response.status, response.read()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read()

    def bootstrap(self, dataplane, token):
        """remote_bootstrap.go: POST /bootstrap; a 4xx is "Invalid request: <body>" and is not retried; 404 with
        an empty body is "Dataplane entity not found" (retried); connection errors are retried every
        `--cp-retry-backoff` (3s) for up to 5m (kuma.md §3 "retries with 3s backoff for up to 5m, then exits")."""
        request = {"mesh": self.args.mesh or "", "name": self.args.name or "", "proxyType": self.args.proxy_type,
                   "dataplaneToken": token, "dataplaneResource": json.dumps(dataplane) if dataplane else "",
                   "version": {"kumaDp": {"version": buildinfo.version()},
                               "envoy": {"version": self.envoy_version, "kumaDpCompatible": True}}}
        deadline = time.monotonic() + self.args.retry_max
        while True:
            log("trying to fetch bootstrap configuration from the Control Plane")
            try:
                status, body = self.post("/bootstrap", request)
            except (OSError, urllib.error.URLError) as exc:
                reason = getattr(exc, "reason", exc)
                if isinstance(reason, ssl.SSLCertVerificationError):
                    raise Fatal("request to bootstrap server failed: %s (pass the CP certificate with "
                                "--ca-cert-file)" % reason) from None
                status, body = None, str(reason).encode()
            if status == 200:
                return json.loads(body)
            text = body.decode(errors="replace")
            if status == 404 and not text:
                log("Dataplane entity not found. If you are running on Universal please create a Dataplane entity "
                    "on kuma-cp before starting kuma-dp or pass it to kuma-dp run --dataplane-file=/file.")
            elif status is not None and 400 <= status < 500:
                raise Fatal("Failed to generate Envoy bootstrap config. Invalid request: %s" % text)
            else:
                log("could not fetch bootstrap configuration: %s" % (text or status), "error")
            if time.monotonic() > deadline or self.stop.wait(self.args.retry_backoff):
                raise Fatal("Failed to generate Envoy bootstrap config. could not reach the control plane: %s"
                            % (text or status))

    # ------------------------------------------------------------ mTLS material
    def tls_contexts(self):
        identity = (self.config or {}).get("mtls", {}).get("identity")
        if not identity:
            return None
        fingerprint = identity["cert"]
        with self.lock:
            if self.tls and self.tls[0] == fingerprint:
                return self.tls
            paths = {}
            for name in ("cert", "key", "ca"):
                paths[name] = os.path.join(self.work, "mesh-%s.pem" % name)
                fd = os.open(paths[name], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
                with os.fdopen(fd, "w", encoding="ascii") as handle:
                    handle.write(identity[name])
            server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            server.load_cert_chain(paths["cert"], paths["key"])
            server.load_verify_locations(paths["ca"])
            server.verify_mode = ssl.CERT_REQUIRED
            client = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
            client.check_hostname = False
            client.load_cert_chain(paths["cert"], paths["key"])
            client.load_verify_locations(paths["ca"])
            self.tls = (fingerprint, server, client)
            return self.tls

    # ------------------------------------------------------------ listeners
    def listen(self, address, port, handler, what):
        sock = socket.socket(socket.AF_INET6 if ":" in address else socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((address, port))
        except OSError as exc:
            raise Fatal("cannot listen on %s:%d for %s: %s" % (address, port, what, exc)) from None
        sock.listen(128)
        sock.settimeout(0.5)
        self.listeners.append(sock)
        threading.Thread(target=self._accept, args=(sock, handler), daemon=True).start()
        log("listening on %s:%d (%s)" % (address, port, what))

    def _accept(self, sock, handler):
        while not self.stop.is_set():
            try:
                conn, peer = sock.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            conn.settimeout(None)
            threading.Thread(target=handler, args=(conn, peer), daemon=True).start()

    @staticmethod
    def pipe(left, right):
        """Copy bytes both ways in ONE thread: an OpenSSL connection must never be read and written from two
        threads at once (two copying threads crashed the process under load), so both sockets are polled
        here and each write completes before the next read. Either side ending ends both."""
        sockets = (left, right)
        peer = {left: right, right: left}
        selector = selectors.DefaultSelector()
        try:
            for sock in sockets:
                sock.setblocking(False)
                selector.register(sock, selectors.EVENT_READ)
            while True:
                ready = [sock for sock in sockets if isinstance(sock, ssl.SSLSocket) and sock.pending()]
                if not ready:
                    ready = [key.fileobj for key, _mask in selector.select(timeout=300)]
                    if not ready:
                        return  # idle for 5 minutes
                for sock in ready:
                    try:
                        data = sock.recv(65536)
                    except (ssl.SSLWantReadError, ssl.SSLWantWriteError, BlockingIOError, InterruptedError):
                        continue
                    if not data:
                        return
                    target = peer[sock]
                    target.setblocking(True)
                    target.sendall(data)
                    target.setblocking(False)
        except (OSError, ValueError):
            return
        finally:
            selector.close()
            for sock in sockets:
                try:
                    sock.close()
                except OSError:
                    pass

    def inbound_handler(self, inbound):
        def handle(conn, _peer):
            config = self.config or {}
            mtls = config.get("mtls") or {}
            source = None
            if mtls.get("enabled"):
                tls = self.tls_contexts()
                plain = False
                if mtls.get("mode") == "PERMISSIVE":
                    try:
                        plain = conn.recv(1, socket.MSG_PEEK) != b"\x16"
                    except OSError:
                        conn.close()
                        return
                if not plain:
                    try:
                        conn = tls[1].wrap_socket(conn, server_side=True)
                    except (ssl.SSLError, OSError) as exc:
                        log("inbound %s: TLS handshake failed: %s" % (inbound["port"], exc), "debug")
                        conn.close()
                        return
                    source = peer_identity(conn.getpeercert())
                if source is not None:
                    verdict = mtp.decide(config.get("meshTrafficPermissions") or [], config.get("dataplane") or {},
                                         inbound, source)
                    if verdict != "Allow":
                        self.deny(conn, inbound)
                        return
            cluster = "localhost_%d" % (inbound.get("servicePort") or inbound["port"])
            try:
                upstream = socket.create_connection((inbound.get("serviceAddress") or "127.0.0.1",
                                                     inbound.get("servicePort") or inbound["port"]), timeout=5)
                upstream.settimeout(None)
            except OSError as exc:
                self.count(cluster, "upstream_cx_connect_fail")
                log("inbound %s: application unreachable: %s" % (inbound["port"], exc), "error")
                conn.close()
                return
            self.counted_pipe(cluster, conn, upstream)
        return handle

    def counted_pipe(self, cluster, conn, upstream):
        self.count(cluster, "upstream_cx_total")
        self.count(cluster, "upstream_cx_active")
        try:
            self.pipe(conn, upstream)
        finally:
            self.count(cluster, "upstream_cx_active", -1)

    @staticmethod
    def deny(conn, inbound):
        """kuma.md §5 denial: HTTP inbounds answer 403 with Envoy's RBAC body; TCP connections are closed."""
        if (inbound.get("tags") or {}).get("kuma.io/protocol") in ("http", "http2"):
            try:
                conn.settimeout(2)
                data = b""
                while b"\r\n\r\n" not in data and len(data) < 65536:
                    chunk = conn.recv(4096)
                    if not chunk:
                        break
                    data += chunk
                conn.sendall(b"HTTP/1.1 403 Forbidden\r\ncontent-length: %d\r\ncontent-type: text/plain\r\n"
                             b"server: envoy\r\nconnection: close\r\n\r\n%s" % (len(RBAC_BODY), RBAC_BODY))
            except OSError:
                pass
        try:
            conn.close()
        except OSError:
            pass

    def outbound_handler(self, outbound):
        service = (outbound.get("tags") or {}).get("kuma.io/service") or (outbound.get("backendRef") or {}).get("name")

        def handle(conn, _peer):
            config = self.config or {}
            endpoints = (config.get("endpoints") or {}).get(service) or []
            if not endpoints:
                log("outbound %s: no endpoints for service %s" % (outbound["port"], service), "debug")
                conn.close()
                return
            protocol = (endpoints[0].get("tags") or {}).get("kuma.io/protocol", "tcp")
            proxy_type = "Gateway" if ((config.get("dataplane") or {}).get("networking") or {}).get("gateway") \
                else "Sidecar"
            attempts, backoff = retry_plan(config.get("meshRetries") or [], service, protocol, proxy_type)
            connect_timeout = _seconds(most_specific(config.get("meshTimeouts") or [], service, proxy_type)
                                       .get("connectionTimeout"), 5.0)
            upstream = None
            for attempt in range(attempts):
                config = self.config or {}
                endpoints = (config.get("endpoints") or {}).get(service) or endpoints
                target = endpoints[next(self.rr) % len(endpoints)]
                try:
                    # MeshTimeout connectionTimeout covers the TCP connect and the TLS handshake (Envoy's
                    # connect_timeout); a handshake that hangs is a failed connect and is retried.
                    upstream = socket.create_connection((target["address"], target["port"]), timeout=connect_timeout)
                    if (config.get("mtls") or {}).get("enabled"):
                        upstream = self.tls_contexts()[2].wrap_socket(upstream)
                    upstream.settimeout(None)
                    break
                except (OSError, ssl.SSLError) as exc:
                    upstream = None
                    self.count(service, "upstream_cx_connect_fail")
                    where = "%s:%s" % (target["address"], target["port"])
                    log("outbound %s: %s unreachable (attempt %d of %d): %s"
                        % (outbound["port"], where, attempt + 1, attempts, exc), "error")
                    if attempt + 1 < attempts:
                        time.sleep(next(backoff))
            if upstream is None:
                conn.close()
                return
            self.counted_pipe(service, conn, upstream)
        return handle

    # ------------------------------------------------------------ readiness
    def readiness(self):
        """kumahq/kuma app/kuma-dp/pkg/dataplane/readiness/component.go: `/ready` -> 200 "READY", 503
        "NOT_READY" / "TERMINATING", text/plain, `x-powered-by: kuma-dp`."""
        state = self.state

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format, *args):  # pylint: disable=redefined-builtin
                return

            def do_GET(self):  # pylint: disable=invalid-name
                if not self.path.startswith("/ready"):
                    self.send_error(404)
                    return
                if state["terminating"]:
                    status, body = 503, b"TERMINATING"
                elif state["ready"]:
                    status, body = 200, b"READY"
                else:
                    status, body = 503, b"NOT_READY"
                self.send_response(status)
                self.send_header("content-type", "text/plain")
                self.send_header("content-length", str(len(body)))
                self.send_header("cache-control", "no-cache, max-age=0")
                self.send_header("x-powered-by", "kuma-dp")
                self.end_headers()
                self.wfile.write(body)

        port = int(os.environ.get("KUMA_READINESS_PORT", "9902"))
        try:
            server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        except OSError as exc:
            raise Fatal("readiness reporter: cannot listen on 127.0.0.1:%d: %s (each kuma-dp on a host needs its "
                        "own KUMA_READINESS_PORT)" % (port, exc)) from None
        server.daemon_threads = True
        threading.Thread(target=server.serve_forever, daemon=True).start()
        log("starting readiness reporter addr=127.0.0.1:%d" % port)
        return server

    # ------------------------------------------------------------ main loop
    def poll(self):
        status, body = self.post("/standin/v1/config", {"session": self.session}, timeout=5)
        if status != 200:
            raise Fatal("config poll answered %s: %s" % (status, body.decode(errors="replace")))
        new = json.loads(body)
        if self.config is None or new.get("mtls", {}).get("enabled") != self.config.get("mtls", {}).get("enabled"):
            log("mesh %s mTLS %s" % (new["mesh"], "on" if new.get("mtls", {}).get("enabled") else "off"))
        self.config = new

    def run(self, dataplane, token):
        self.cp_ctx = self.cp_context()  # pylint: disable=attribute-defined-outside-init
        reporter = self.readiness()
        try:
            boot = self.bootstrap(dataplane, token)
            self.session = boot["standin"]["session"]
            self.poll_interval = float(boot["standin"].get("pollInterval") or 1.0)  # pylint: disable=attribute-defined-outside-init
            log("received bootstrap configuration for %s/%s" % (boot["standin"]["mesh"], boot["standin"]["name"]))
            # As Envoy's xDS stream upstream: a refused stream (a token that does not verify) is logged and
            # retried; the proxy stays up and never ready (kuma.md §2 "Dataplane token endpoint").
            while True:
                try:
                    self.poll()
                    break
                except Fatal as exc:
                    log("configuration stream to the control plane closed: %s" % exc, "warning")
                except (OSError, ValueError, urllib.error.URLError) as exc:
                    log("control plane unreachable: %s" % exc, "error")
                if self.stop.wait(self.args.retry_backoff):
                    return 0
            net = (self.config.get("dataplane") or {}).get("networking") or {}
            for inbound in net.get("inbound") or []:
                self.listen(net["address"] if net.get("address") not in ("localhost",) else "127.0.0.1",
                            inbound["port"], self.inbound_handler(inbound), "inbound %s" %
                            (inbound.get("tags") or {}).get("kuma.io/service"))
            for outbound in net.get("outbound") or []:
                self.listen(outbound.get("address") or "127.0.0.1", outbound["port"], self.outbound_handler(outbound),
                            "outbound %s" % ((outbound.get("tags") or {}).get("kuma.io/service")
                                             or (outbound.get("backendRef") or {}).get("name")))
            self.serve_metrics(net["address"] if net.get("address") not in ("localhost",) else "127.0.0.1")
            self.state["ready"] = True
            log("starting Kuma DP version=%s" % buildinfo.version())
            while not self.stop.wait(self.poll_interval):
                try:
                    self.poll()
                    self.serve_metrics(net["address"] if net.get("address") not in ("localhost",) else "127.0.0.1")
                    self.state["ready"] = True
                except Fatal as exc:
                    self.state["ready"] = False
                    log("%s; bootstrapping again" % exc, "error")
                    try:
                        boot = self.bootstrap(dataplane, token)
                        self.session = boot["standin"]["session"]
                    except Fatal as again:
                        log(str(again), "error")
                except (OSError, ValueError, urllib.error.URLError) as exc:
                    self.state["ready"] = False
                    log("control plane unreachable: %s" % exc, "error")
            self.state["terminating"] = True
            log("Kuma DP caught an exit signal. Draining Envoy connections")
            try:
                self.post("/standin/v1/leave", {"session": self.session}, timeout=5)
            except (OSError, urllib.error.URLError) as exc:
                log("could not deregister: %s" % exc, "error")
            for sock in self.listeners:
                sock.close()
            if self.metrics_server is not None:
                self.metrics_server.shutdown()
                self.metrics_server.server_close()
            log("stopping Kuma DP")
            return 0
        finally:
            reporter.shutdown()
            reporter.server_close()


def _seconds(text, default):
    match = re.match(r"^(\d+(?:\.\d+)?)(ms|s|m)$", str(text or ""))
    if not match:
        return default
    return float(match.group(1)) * {"ms": 0.001, "s": 1.0, "m": 60.0}[match.group(2)]


def most_specific(policies, service, proxy_type="Sidecar"):
    """The `default` of the most specific `to[]` entry for `service` among new-style policies (MeshService
    over Mesh, later over earlier), skipping policies whose top-level targetRef names other `proxyTypes`
    (kuma.md §4 "New-style policy examples"). Stand-in simplification of Kuma's merge of all matches."""
    best = None
    for spec in policies:
        kinds = (spec.get("targetRef") or {}).get("proxyTypes")
        if kinds and proxy_type not in kinds:
            continue
        for entry in spec.get("to") or []:
            ref = entry.get("targetRef") or {}
            if ref.get("kind") == "Mesh":
                rank = 0
            elif ref.get("kind") == "MeshService" and ref.get("name") == service:
                rank = 1
            else:
                continue
            if best is None or rank >= best[0]:
                best = (rank, entry.get("default") or {})
    return best[1] if best else {}


def retry_plan(retries, service, protocol, proxy_type="Sidecar"):
    """How often an outbound tries to connect, and the pauses between tries, from the mesh's MeshRetry
    policies (kuma.md §4 "MeshRetry": `to[]` by `Mesh` or `MeshService`, `http.numRetries` with
    `backOff.baseInterval/maxInterval`, `tcp.maxConnectAttempt`; every Mesh gets `mesh-retry-all-<mesh>`,
    kuma.md §2 "Defaults created with each Mesh"). Envoy retries a failed connect or TLS handshake
    ("connect-failure" is part of "5xx"). Stand-in simplification: the most specific `to[]` entry wins
    (MeshService over Mesh, later over earlier) instead of Kuma's merge, and only connects are retried (a
    request is never replayed once bytes were forwarded); tcp attempts use the http backoff defaults."""
    conf = most_specific(retries, service, proxy_type)
    http = conf.get("http") or {}
    if protocol in ("http", "http2", "grpc"):
        attempts = 1 + int(http.get("numRetries", 0) or 0)
    else:
        attempts = int((conf.get("tcp") or {}).get("maxConnectAttempt", 1) or 1)
    back_off = http.get("backOff") or {}
    base = _seconds(back_off.get("baseInterval"), 0.025)
    ceiling = _seconds(back_off.get("maxInterval"), base * 10)

    def pauses():
        pause = base
        while True:
            yield min(pause, ceiling)
            pause *= 2
    return max(1, attempts), pauses()


def peer_identity(cert):
    """URI SANs of the peer: spiffe://<mesh>/<service> and kuma://<tag>/<value>."""
    spiffe, tags = [], {}
    for kind, value in (cert or {}).get("subjectAltName", ()):
        if kind != "URI":
            continue
        if value.startswith("spiffe://"):
            spiffe.append(value)
        elif value.startswith("kuma://"):
            key, _sep, val = value[len("kuma://"):].rpartition("/")
            tags.setdefault(key, set()).add(val)
    for sid in spiffe:
        tags.setdefault("kuma.io/service", set()).add(sid.rsplit("/", 1)[-1])
    return {"spiffe": spiffe, "tags": tags}


def env_default(name, default=None):
    return os.environ.get(name, default)


def parser():
    top = argparse.ArgumentParser(prog="kuma-dp",
                                  description="Dataplane manager for Envoy-based Service Mesh (stand-in)")
    sub = top.add_subparsers(dest="command")
    run = sub.add_parser("run", help="Launch Dataplane (Envoy)")
    run.add_argument("--cp-address", default=env_default("KUMA_CONTROL_PLANE_URL", "https://localhost:5678"))
    run.add_argument("--ca-cert-file", default=env_default("KUMA_CONTROL_PLANE_CA_CERT_FILE", ""))
    run.add_argument("--skip-verify", action="store_true",
                     default=env_default("KUMA_CONTROL_PLANE_TLS_SKIP_VERIFY", "").lower() in ("1", "true"))
    run.add_argument("--dataplane-token-file", default=env_default("KUMA_DATAPLANE_RUNTIME_TOKEN_PATH", ""))
    run.add_argument("--dataplane-token", default=env_default("KUMA_DATAPLANE_RUNTIME_TOKEN", ""))
    run.add_argument("-d", "--dataplane-file", default=env_default("KUMA_DATAPLANE_RUNTIME_RESOURCE_PATH", ""))
    run.add_argument("--dataplane", default=env_default("KUMA_DATAPLANE_RUNTIME_RESOURCE", ""))
    run.add_argument("-v", "--dataplane-var", action="append", default=[])
    run.add_argument("--name", default=env_default("KUMA_DATAPLANE_NAME", ""))
    run.add_argument("--mesh", default=env_default("KUMA_DATAPLANE_MESH", ""))
    run.add_argument("--proxy-type", default=env_default("KUMA_DATAPLANE_PROXY_TYPE", "dataplane"))
    run.add_argument("--binary-path", default=env_default("KUMA_DATAPLANE_RUNTIME_BINARY_PATH", "envoy"))
    run.add_argument("--dns-coredns-path", default=env_default("KUMA_DNS_CORE_DNS_BINARY_PATH", "coredns"))
    run.add_argument("--dns-enabled", default=env_default("KUMA_DNS_ENABLED", "true"))
    run.add_argument("--drain-time", default=env_default("KUMA_DATAPLANE_DRAIN_TIME", "30s"))
    run.add_argument("--work-dir", "--config-dir", default=env_default("KUMA_DATAPLANE_RUNTIME_WORK_DIR", ""))
    run.add_argument("--concurrency", default=env_default("KUMA_DATAPLANE_RUNTIME_CONCURRENCY", "0"))
    run.add_argument("--envoy-log-level", default=env_default("KUMA_DATAPLANE_RUNTIME_ENVOY_LOG_LEVEL", ""))
    run.add_argument("--log-level", default="info")
    ver = sub.add_parser("version", help="Print version")
    ver.add_argument("-a", "--detailed", action="store_true")
    return top


def load_dataplane(args):
    """kuma.md §3 `--dataplane-file`/`--dataplane` (YAML or JSON, Mustache template) and `--dataplane-var`."""
    variables = {}
    for item in args.dataplane_var:
        for pair in item.split(","):
            key, sep, value = pair.partition("=")
            if not sep:
                raise Fatal('invalid argument "%s" for "-v, --dataplane-var" flag: %s must be formatted as key=value'
                            % (item, pair))
            variables[key] = value
    if args.dataplane_file:
        try:
            with open(args.dataplane_file, encoding="utf-8") as handle:
                template = handle.read()
        except OSError as exc:
            raise Fatal("failed to read policy: %s" % exc) from None
    elif args.dataplane:
        template = args.dataplane
    else:
        return None
    try:
        data = yaml.safe_load(render(template, variables))
    except yaml.YAMLError as exc:
        raise Fatal("failed to read policy: %s" % exc) from None
    if not isinstance(data, dict) or data.get("type") != "Dataplane":
        raise Fatal('invalid proxy resource type "%s", expected Dataplane' % (data or {}).get("type")
                    if isinstance(data, dict) else "failed to read policy: not a resource")
    # app/kuma-dp/cmd/run.go
    if args.name or args.mesh:
        raise Fatal("--name and --mesh cannot be specified when a dataplane definition is provided, mesh and name "
                    "will be read from the dataplane definition")
    return data


def cmd_run(args):
    proxy = None
    try:
        if args.proxy_type not in ("dataplane", "ingress", "egress"):
            raise Fatal('invalid proxy type "%s"' % args.proxy_type)
        dataplane = load_dataplane(args)
        token = args.dataplane_token
        if not token and args.dataplane_token_file:
            try:
                with open(args.dataplane_token_file, encoding="utf-8") as handle:
                    token = handle.read()
            except OSError as exc:
                raise Fatal("dataplane token is invalid, in Kubernetes you must mount a serviceAccount token, in "
                            "universal you must start your proxy with a generated token.: %s" % exc) from None
        args.ca_cert = os.environ.get("KUMA_CONTROL_PLANE_CA_CERT", "")
        if not args.ca_cert and args.ca_cert_file:
            try:
                with open(args.ca_cert_file, encoding="utf-8") as handle:
                    args.ca_cert = handle.read()
            except OSError as exc:
                raise Fatal("could not read certificate file %s: %s" % (args.ca_cert_file, exc)) from None
        args.retry_backoff = T.parse_duration(os.environ.get("KUMA_CONTROL_PLANE_RETRY_BACKOFF", "3s"))
        args.retry_max = T.parse_duration(os.environ.get("KUMA_CONTROL_PLANE_RETRY_MAX_DURATION", "5m"))
        envoy = envoy_lookup(args.binary_path)
        proxy = Proxy(args)
        proxy.envoy_version = envoy_check(envoy)  # pylint: disable=attribute-defined-outside-init
        log("fetched Envoy version %s (%s)" % (proxy.envoy_version, envoy))

        def on_signal(signum, _frame):
            log("stop signal received (%s)" % signal.Signals(signum).name)
            proxy.stop.set()

        signal.signal(signal.SIGTERM, on_signal)
        signal.signal(signal.SIGINT, on_signal)
        return proxy.run(dataplane, token.strip())
    except Fatal as exc:
        log(str(exc), "error")
        sys.stderr.write("Error: %s\n" % exc)
        return 1
    except ValueError as exc:
        log(str(exc), "error")
        return 1
    finally:
        if proxy is not None and not args.work_dir:
            shutil.rmtree(proxy.work, ignore_errors=True)


def main(argv=None):
    args = parser().parse_args(argv)
    if args.command == "run":
        return cmd_run(args)
    if args.command == "version":
        print(buildinfo.detailed() if args.detailed else "Kuma: %s" % buildinfo.version())
        return 0
    parser().print_help(sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
