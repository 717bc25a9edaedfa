"""Hybrid mode of the Kong 3.9 stand-in node (test double, NOT Kong).

kong.md §7: CP "`role=control_plane`, `cluster_cert`, `cluster_cert_key`, a
database, and `admin_listen` plus `cluster_listen` (8005)"; DP
"`role=data_plane`, `database=off`, ... `cluster_control_plane=<cp>:8005`,
`cluster_cert`, `cluster_cert_key`"; "`shared` mode requires the **identical**
cert/key on CP and DP, and uses SNI `kong_clustering`"; "In `shared` mode the
DP automatically adds `cluster_cert` to `lua_ssl_trusted_certificate`".

**Stand-in protocol** (real Kong speaks a WebSocket protocol, `/v1/outlet`
with a compressed full config push, or RPC in newer versions; none of that is
imitated):

    DP -> CP  TLS (mutual; SNI kong_clustering; both sides present cluster_cert)
              GET /v1/standin/config?node_id=&hostname=&version=&config_hash=
    CP -> DP  200 {"config_hash": "<md5>", "config": <declarative config>}
              304 when config_hash is the CP's current hash
              403 {"message": ...} for an incompatible DP version

The DP polls every second (``KONG_STANDIN_SYNC_INTERVAL`` seconds when set;
a stand-in-only variable), applies a changed config through dbless.apply (so
it is cached in ``<prefix>/dbless.lmdb``) and keeps serving what it has while
the CP is unreachable.  With ``cluster_mtls=shared`` the CP accepts only a
client certificate identical to its own ``cluster_cert``: anything else fails
the TLS handshake (the CP logs it) or gets 401.  ``cluster_mtls=pki`` verifies
against ``cluster_ca_cert`` instead (no CN checks).

The CP keeps the data-plane list in memory (real Kong: the
``clustering_data_planes`` table), so each CP node lists the DPs that poll
*it*, and entries vanish on a CP restart until the DPs poll again.
"""

import base64
import http.client
import json
import os
import re
import socket
import ssl
import subprocess
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import conf as C
import declarative as D
import dbless

SNI = "kong_clustering"       # kong.md §7 "uses SNI `kong_clustering`"
PATH = "/v1/standin/config"


def pem_file(prefix, value, name):
    """kong.md §2 "`cluster_cert`, `cluster_cert_key` ... Each takes a path, PEM
    content, or base64": content is written to ``<prefix>/ssl/<name>``."""
    if not value:
        return None
    value = str(value).strip()
    if os.path.isfile(value):
        return value
    if "-----BEGIN" not in value:
        try:
            value = base64.b64decode(value).decode()
        except ValueError:
            return value      # let ssl report the missing file
    path = os.path.join(prefix, "ssl", name)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", encoding="ascii") as fh:
        fh.write(value.replace("\\n", "\n") + "\n")
    os.chmod(path, 0o600)
    return path


def cert_der(path):
    with open(path, encoding="ascii") as fh:
        text = fh.read()
    block = re.search(r"-----BEGIN CERTIFICATE-----.*?-----END CERTIFICATE-----", text, re.S)
    if not block:
        raise ValueError("no certificate in %s" % path)
    return ssl.PEM_cert_to_DER_cert(block.group(0))


def cert_expiry(path):
    try:
        out = subprocess.run(["openssl", "x509", "-noout", "-enddate", "-in", path],
                             capture_output=True, text=True, timeout=10, check=True).stdout
        return int(ssl.cert_time_to_seconds(out.strip().split("=", 1)[1]))
    except (OSError, subprocess.SubprocessError, ValueError, IndexError):
        return None


def tls_files(node):
    conf = node.conf
    cert = pem_file(node.prefix, conf.get("cluster_cert"), "cluster.crt")
    key = pem_file(node.prefix, conf.get("cluster_cert_key"), "cluster.key")
    if not cert or not key:
        raise RuntimeError('cluster_cert and cluster_cert_key must be specified when role = "%s"'
                           % conf.get("role"))
    for path in (cert, key):
        if not os.path.isfile(path):
            raise RuntimeError("failed to read %s: no such file" % path)
    ca = cert
    if conf.get("cluster_mtls") == "pki":
        ca = pem_file(node.prefix, conf.get("cluster_ca_cert"), "cluster_ca.crt")
    return cert, key, ca


def version_compatible(cp_version, dp_version):
    """kong.md §7 "a self-managed CP accepts DPs of the same major version only,
    and refuses DPs with a newer minor version (older minors and newer patches
    are fine)"."""
    try:
        cp = [int(x) for x in re.findall(r"\d+", cp_version)[:2]]
        dp = [int(x) for x in re.findall(r"\d+", dp_version)[:2]]
    except ValueError:
        return False
    return len(cp) == 2 and len(dp) == 2 and cp[0] == dp[0] and dp[1] <= cp[1]


# ------------------------------------------------------------ control plane
class ControlPlane:
    def __init__(self, node):
        self.node = node
        self.cert, self.key, self.ca = tls_files(node)
        self.der = cert_der(self.cert)
        self.expiry = cert_expiry(self.cert)
        self.data_planes = {}
        self.lock = threading.Lock()

    def context(self):
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        ctx.load_cert_chain(self.cert, self.key)
        ctx.verify_mode = ssl.CERT_REQUIRED
        ctx.load_verify_locations(self.ca)
        return ctx

    def make_servers(self):
        servers = []
        for entry in C.parse_listen(self.node.conf.get("cluster_listen")):
            servers.append(self._server(entry["host"], entry["port"]))
        return servers

    def config(self):
        data = D.export(self.node.store)
        return data, dbless.config_hash(data)

    def _server(self, host, port):
        cp = self
        ctx = self.context()

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def setup(self):
                try:
                    self.request.do_handshake()
                except (ssl.SSLError, OSError) as exc:
                    cp.node.log("error", "[clustering] TLS handshake with data plane %s "
                                         "failed: %s" % (self.client_address[0], exc))
                    raise
                super().setup()

            def log_message(self, *_args):
                pass

            def _json(self, status, body):
                data = b"" if body is None else json.dumps(body).encode()
                self.send_response(status)
                if body is not None:
                    self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self):  # pylint: disable=invalid-name
                parsed = urllib.parse.urlsplit(self.path)
                if parsed.path != PATH:
                    return self._json(404, {"message": "Not found"})
                peer = self.request.getpeercert(binary_form=True)
                if cp.node.conf.get("cluster_mtls") != "pki" and peer != cp.der:
                    # kong.md §7 "`shared` mode requires the **identical** cert/key"
                    cp.node.log("error", "[clustering] data plane %s presented a certificate "
                                         "that is not the shared cluster_cert"
                                % self.client_address[0])
                    return self._json(401, {"message": "data plane presented incorrect "
                                                       "client certificate"})
                query = dict(urllib.parse.parse_qsl(parsed.query))
                status = cp.seen(query, self.client_address[0])
                if status != "normal":
                    return self._json(403, {"message": "data plane version %s is incompatible "
                                                       "with control plane version %s"
                                            % (query.get("version"), cp.node.version)})
                data, digest = cp.config()
                if query.get("config_hash") == digest:
                    return self._json(304, None)
                return self._json(200, {"config_hash": digest, "config": data})

        server = ThreadingHTTPServer((host, port), Handler, bind_and_activate=False)
        server.daemon_threads = True
        server.allow_reuse_address = True
        server.server_bind()
        server.server_activate()
        server.socket = ctx.wrap_socket(server.socket, server_side=True,
                                        do_handshake_on_connect=False)
        server.handle_error = lambda *_a: None   # handshake failures are logged above
        return server

    def seen(self, query, ip_addr):
        dp_version = query.get("version") or ""
        status = "normal" if version_compatible(self.node.version, dp_version) else \
            "kong_version_incompatible"
        with self.lock:
            now = int(time.time())
            entry = self.data_planes.get(query.get("node_id"))
            if entry is None:
                entry = {"id": query.get("node_id"), "created_at": now}
                self.data_planes[entry["id"]] = entry
            entry.update({"hostname": query.get("hostname"), "ip": ip_addr,
                          "version": dp_version, "sync_status": status,
                          "config_hash": query.get("config_hash") or "0" * 32,
                          "last_seen": now, "updated_at": now, "labels": {},
                          "cert_details": {"expiry_timestamp": self.expiry}})
        return status

    def admin(self, method, segs, _query):
        """kong.md §4 "`GET /clustering/data-planes` (CP only)"; entries purged after
        `cluster_data_plane_purge_delay` (kong.md §7).  Field set UNCONFIRMED."""
        if segs != ["data-planes"]:
            return 404, {"message": "Not found"}
        if method != "GET":
            return 405, {"message": "Method not allowed"}
        purge = int(self.node.conf.get("cluster_data_plane_purge_delay") or 1209600)
        now = int(time.time())
        with self.lock:
            for key in [k for k, v in self.data_planes.items() if now - v["last_seen"] > purge]:
                del self.data_planes[key]
            rows = sorted((dict(v) for v in self.data_planes.values()),
                          key=lambda r: r["created_at"])
        return 200, {"data": rows, "next": None}


# --------------------------------------------------------------- data plane
class _Conn(http.client.HTTPSConnection):
    def connect(self):
        http.client.HTTPConnection.connect(self)   # pylint: disable=non-parent-init-called
        self.sock = self._context.wrap_socket(  # pylint: disable=no-member
            self.sock, server_hostname=SNI)


class DataPlane:
    def __init__(self, node):
        self.node = node
        self.cert, self.key, self.ca = tls_files(node)
        self.der = cert_der(self.cert)
        self.interval = float(os.environ.get("KONG_STANDIN_SYNC_INTERVAL") or 1.0)
        self.last_error = None
        self.connected = False
        self.stop = threading.Event()

    def context(self):
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        ctx.load_cert_chain(self.cert, self.key)
        ctx.load_verify_locations(self.ca)
        ctx.check_hostname = False        # shared mode: the peer must be the shared cert
        ctx.verify_mode = ssl.CERT_REQUIRED
        return ctx

    def start(self):
        threading.Thread(target=self.run, daemon=True, name="dp-sync").start()

    def run(self):
        while not self.stop.is_set():
            try:
                self.sync_once()
                if not self.connected:
                    self.node.log("notice", "[clustering] connected to control plane %s"
                                  % self.node.conf.get("cluster_control_plane"))
                self.connected, self.last_error = True, None
            except Exception as exc:  # pylint: disable=broad-except
                text = str(exc) or exc.__class__.__name__
                if text != self.last_error:
                    self.node.log("error", "[clustering] connection to control plane %s "
                                           "broken: %s (retrying)"
                                  % (self.node.conf.get("cluster_control_plane"), text))
                self.connected, self.last_error = False, text
            self.stop.wait(self.interval)

    def sync_once(self):
        address = self.node.conf.get("cluster_control_plane") or "127.0.0.1:8005"
        host, _sep, port = address.rpartition(":")
        query = urllib.parse.urlencode({
            "node_id": self.node.api.node_id, "hostname": socket.gethostname(),
            "version": self.node.version, "config_hash": self.node.config_hash or ""})
        conn = _Conn(host.strip("[]"), int(port), context=self.context(), timeout=10)
        try:
            conn.request("GET", PATH + "?" + query)
            if self.node.conf.get("cluster_mtls") != "pki" and \
                    conn.sock.getpeercert(binary_form=True) != self.der:
                raise RuntimeError("control plane certificate is not the shared cluster_cert")
            resp = conn.getresponse()
            body = resp.read()
        finally:
            conn.close()
        if resp.status == 304:
            return
        if resp.status != 200:
            raise RuntimeError("control plane answered %d: %s"
                               % (resp.status, body.decode("utf-8", "replace")[:200]))
        payload = json.loads(body)
        if payload["config_hash"] != self.node.config_hash:
            dbless.apply(self.node, payload["config"])
            self.node.log("notice", "[clustering] received config %s from the control plane"
                          % payload["config_hash"])


def node_id(prefix):
    """A node id kept in ``<prefix>/node.id`` so a restarted DP keeps its
    identity (UNCONFIRMED: where/whether Kong persists it)."""
    path = os.path.join(prefix, "node.id")
    try:
        with open(path, encoding="ascii") as fh:
            value = fh.read().strip()
            if value:
                return value
    except OSError:
        pass
    import uuid  # pylint: disable=import-outside-toplevel
    value = str(uuid.uuid4())
    try:
        with open(path, "w", encoding="ascii") as fh:
            fh.write(value + "\n")
    except OSError:
        pass
    return value
