"""Helpers for the Kong stand-in package tests (tests/standins/kong)."""

import base64
import hashlib
import hmac
import json
import os
import sys
import threading
import socket
import subprocess
import time
import urllib.error
import urllib.request

STANDIN = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", "standins", "kong"))
PACKAGE = os.path.join(STANDIN, "package")
# The package runs on Debian's interpreter (Depends: python3, python3-psycopg2,
# python3-yaml), so the CLI is exercised with it, not with the test venv.
PYTHON = "/usr/bin/python3" if os.path.exists("/usr/bin/python3") else "python3"


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def kong(*args, env=None, cwd=None, cli=None, timeout=60):
    """Run the stand-in `kong` CLI; returns CompletedProcess (text)."""
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("KONG_")}
    full_env.update(env or {})
    return subprocess.run([PYTHON, cli or os.path.join(STANDIN, "cli.py")] + list(args),
                          capture_output=True, text=True, env=full_env, cwd=cwd,
                          timeout=timeout, check=False)


def write_conf(path, **keys):
    with open(path, "w", encoding="utf-8") as fh:
        for key, value in keys.items():
            fh.write("%s = %s\n" % (key, value))
    return str(path)


def http(method, url, body=None, timeout=5):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method)
    if data is not None:
        req.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return resp.status, resp.read().decode(), dict(resp.headers)
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode(), dict(exc.headers)


def wait_for(predicate, timeout=10.0):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return predicate()


def node_ports():
    return {"proxy": free_port(), "admin": free_port(), "status": free_port()}


def listen_keys(ports):
    return {"proxy_listen": "127.0.0.1:%d" % ports["proxy"],
            "admin_listen": "127.0.0.1:%d" % ports["admin"],
            "status_listen": "127.0.0.1:%d" % ports["status"]}


class Echo:
    """A backend that answers every request with what it received, as JSON:
    {"method", "path", "headers", "body"}; ``requests`` keeps them all.
    ``delay`` (seconds) slows every answer down (graceful-stop tests)."""

    def __init__(self, delay=0.0):
        import http.server as hs  # pylint: disable=import-outside-toplevel
        import threading  # pylint: disable=import-outside-toplevel
        echo = self
        self.requests = []
        self.delay = delay

        class Handler(hs.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _any(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length).decode() if length else ""
                seen = {"method": self.command, "path": self.path,
                        "headers": dict(self.headers.items()), "body": body}
                echo.requests.append(seen)
                if echo.delay:
                    time.sleep(echo.delay)
                data = json.dumps(seen).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.send_header("X-Echo", "yes")
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _any

            def log_message(self, *_args):
                pass

        self.server = hs.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.url = "http://127.0.0.1:%d" % self.port
        threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def request(method, url, headers=None, body=None, timeout=10):
    """(status, parsed JSON or text, headers) with arbitrary request headers."""
    data = body.encode() if isinstance(body, str) else body
    req = urllib.request.Request(url, data=data, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            status, raw, hdrs = resp.status, resp.read().decode(), resp.headers
    except urllib.error.HTTPError as exc:
        status, raw, hdrs = exc.code, exc.read().decode(), exc.headers
    try:
        return status, json.loads(raw), hdrs
    except ValueError:
        return status, raw, hdrs


def stand_in_modules():
    """The Kong stand-in's own modules (tests/standins/kong), importable from the in-process tests."""
    if STANDIN not in sys.path:
        sys.path.insert(0, STANDIN)


class Gateway:
    """A DB-less stand-in node loaded from a declarative config: its proxy and Status API on free loopback
    ports, in process (the fixture `gateway` in conftest.py makes these)."""

    def __init__(self, tmp_path, declarative, **conf):
        stand_in_modules()
        # pylint: disable=import-outside-toplevel,import-error
        import conf as C
        import node as N
        import proxy
        import status_api
        from api import AdminAPI
        settings = dict(C.DEFAULT_MAP, database="off", prefix=str(tmp_path),
                        declarative_config_string=declarative)
        settings.update(conf)
        self.node = N.Node(str(tmp_path), settings)
        self.node.open_store()
        self.node.api = AdminAPI(store=self.node.store, conf=settings, node=self.node)
        self.node.load_declarative()
        self.servers = [proxy.make_server("127.0.0.1", 0, self.node),
                        status_api.make_server("127.0.0.1", 0, self.node)]
        for server in self.servers:
            threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
        self.proxy = "http://127.0.0.1:%d" % self.servers[0].server_address[1]
        self.status = "http://127.0.0.1:%d" % self.servers[1].server_address[1]

    def get(self, path, headers=None, method="GET", body=None):
        return request(method, self.proxy + path, headers=headers, body=body)

    def close(self):
        for server in self.servers:
            server.shutdown()
            server.server_close()


def b64url(raw):
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def jwt_token(claims, key, alg="HS256"):
    """A signed JWT: `key` is the HMAC secret (bytes) for HS*, an RSA private key for RS*."""
    head = b64url(json.dumps({"alg": alg, "typ": "JWT"}).encode())
    body = b64url(json.dumps(claims).encode())
    signed = ("%s.%s" % (head, body)).encode()
    if alg.startswith("HS"):
        digest = {"HS256": hashlib.sha256, "HS384": hashlib.sha384, "HS512": hashlib.sha512}[alg]
        sig = hmac.new(key, signed, digest).digest()
    else:
        # pylint: disable=import-outside-toplevel
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric import padding
        sig = key.sign(signed, padding.PKCS1v15(), {"RS256": hashes.SHA256(), "RS512": hashes.SHA512()}[alg])
    return "%s.%s.%s" % (head, body, b64url(sig))
