"""kuma-cp HTTP API stand-in (test double, NOT Kuma).

Run:  python3 tests/standins/kuma/cp_api.py --listen 127.0.0.1:5681 [--diagnostics-listen 127.0.0.1:5680]
                                            [--admin-token-file PATH]

Prints "kuma-cp stand-in API listening on http://HOST:PORT" and then
"kuma-cp stand-in diagnostics listening on http://HOST:PORT" once ready (port 0 picks a free
port and prints the real one).  In-memory store only.  See README.md.
"""

import argparse
import json
import os
import subprocess
import sys
import threading
import urllib.error
import urllib.parse
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from api import ControlPlane, Options, Text, VERSION  # noqa: E402  pylint: disable=wrong-import-position
from store import MemoryStore  # noqa: E402  pylint: disable=wrong-import-position


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    server_version = "kuma-cp-standin"
    cp = None                 # set by make_servers
    diagnostics = False       # True on the diagnostics listener
    verbose = False

    def version_string(self):
        return self.server_version

    def log_message(self, format, *args):  # pylint: disable=redefined-builtin
        if self.verbose:
            super().log_message(format, *args)

    def _dispatch(self):
        parsed = urllib.parse.urlsplit(self.path)
        query = dict(urllib.parse.parse_qsl(parsed.query, keep_blank_values=True))
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        if self.diagnostics:
            status, payload = self.cp.handle_diagnostics(self.command, parsed.path)
        else:
            status, payload = self.cp.handle(self.command, parsed.path, query, self.headers, body,
                                             client=self.client_address[0])
        if isinstance(payload, Text):
            data, ctype = payload.encode(), "text/plain; charset=utf-8"
        elif payload is None:
            data, ctype = b"", None
        else:
            # kuma.md §4 "The response is sent as `application/json`"
            data, ctype = json.dumps(payload).encode(), "application/json"
        self.send_response(status)
        if ctype:
            self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = _dispatch


class Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 64


def _handler(cp, diagnostics, verbose):
    return type("BoundHandler", (Handler,), {"cp": cp, "diagnostics": diagnostics, "verbose": verbose})


def make_servers(api=("127.0.0.1", 0), diagnostics=("127.0.0.1", 0), options=None, store=None, verbose=False):
    """Create (not start) the API server and the diagnostics server (None when ``diagnostics`` is None);
    ``server.cp`` is the ControlPlane."""
    cp = ControlPlane(store=store or MemoryStore(), options=options or Options())
    api_server = Server(api, _handler(cp, False, verbose))
    api_server.cp = cp
    diag_server = None
    if diagnostics is not None:
        diag_server = Server(diagnostics, _handler(cp, True, verbose))
        diag_server.cp = cp
    return api_server, diag_server


def _url(server):
    host, port = server.server_address[:2]
    return "http://%s:%d" % (host, port)


def start_in_thread(options=None, diagnostics=True):
    """Both servers in daemon threads on free loopback ports: (api_server, api_url, diag_server, diag_url)."""
    api_server, diag_server = make_servers(options=options,
                                           diagnostics=("127.0.0.1", 0) if diagnostics else None)
    for server in (api_server, diag_server):
        if server is not None:
            threading.Thread(target=server.serve_forever, daemon=True).start()
    return api_server, _url(api_server), diag_server, (_url(diag_server) if diag_server else None)


def _hostport(text):
    host, port = text.rpartition(":")[::2]
    return (host.strip("[]") or "127.0.0.1", int(port))


def _env_bool(name, default):
    value = os.environ.get(name)
    if value is None:
        return default
    return value.strip().lower() in ("1", "true", "yes", "on")


def options_from_env(args):
    """kuma.md §2 "Config precedence: env vars (`KUMA_*`) override YAML"; the env names of "Key config"."""
    return Options(
        zone=os.environ.get("KUMA_MULTIZONE_ZONE_NAME", "default"),
        localhost_is_admin=_env_bool("KUMA_API_SERVER_AUTHN_LOCALHOST_IS_ADMIN", True),
        bootstrap_admin_token=_env_bool("KUMA_API_SERVER_AUTHN_TOKENS_BOOTSTRAP_ADMIN_TOKEN", True),
        read_only=_env_bool("KUMA_API_SERVER_READ_ONLY", False),
        unsafe_delete=_env_bool("KUMA_STORE_UNSAFE_DELETE", False),
        skip_mesh_creation=_env_bool("KUMA_DEFAULTS_SKIP_MESH_CREATION", False),
        version=args.kuma_version)


def write_admin_token(cp, path):
    """Stand-in convenience: the token kuma.md §2 says to read with
    `curl http://localhost:5681/global-secrets/admin-user-token | jq -r .data | base64 -d`, written to PATH (0600)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="ascii") as fh:
        fh.write(cp.admin_token() + "\n")
    os.chmod(path, 0o600)


def main(argv=None):
    parser = argparse.ArgumentParser(description="kuma-cp %s HTTP API stand-in (tests only)" % VERSION)
    parser.add_argument("--listen", default="127.0.0.1:5681", help="API HOST:PORT (port 0 = any)")
    parser.add_argument("--diagnostics-listen", default="127.0.0.1:5680",
                        help="diagnostics HOST:PORT for /ready, /healthy, /metrics ('' = off)")
    parser.add_argument("--admin-token-file", help="write the admin user token there (mode 0600)")
    parser.add_argument("--kuma-version", default=VERSION)
    parser.add_argument("--verbose", action="store_true", help="log requests to stderr")
    args = parser.parse_args(argv)
    diag = _hostport(args.diagnostics_listen) if args.diagnostics_listen else None
    api_server, diag_server = make_servers(_hostport(args.listen), diag, options_from_env(args), verbose=args.verbose)
    if args.admin_token_file:
        write_admin_token(api_server.cp, args.admin_token_file)
    print("kuma-cp stand-in API listening on %s" % _url(api_server), flush=True)
    if diag_server is not None:
        threading.Thread(target=diag_server.serve_forever, daemon=True).start()
        print("kuma-cp stand-in diagnostics listening on %s" % _url(diag_server), flush=True)
    try:
        api_server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        api_server.server_close()
        if diag_server is not None:
            diag_server.server_close()
    return 0


def spawn(stderr=None, extra_args=(), env=None):
    """This stand-in in a process of its own on free loopback ports: (process, api URL, diagnostics URL).
    Stop it with process.terminate()."""
    cmd = [sys.executable, os.path.abspath(__file__), "--listen", "127.0.0.1:0",
           "--diagnostics-listen", "127.0.0.1:0"] + list(extra_args)
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=stderr, text=True, env=env)
    urls = []
    for _line_number in range(2):
        line = proc.stdout.readline()
        if "listening on" not in line:
            proc.kill()
            raise RuntimeError("the kuma-cp stand-in did not start: %r" % line)
        urls.append(line.rsplit(" ", 1)[1].strip())
    return proc, urls[0], urls[1]


def control(url, action, body=None):
    """The test-only extension: `reset`, `verify-dataplane-token` ({token, dataplane, proxyType}),
    `connection` ({mesh, name, connected}); returns (status, JSON)."""
    data = json.dumps(body or {}).encode()
    request = urllib.request.Request("%s/__standin/%s" % (url, action), data=data, method="POST",
                                     headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.load(response)
    except urllib.error.HTTPError as exc:
        return exc.code, json.load(exc)


if __name__ == "__main__":
    sys.exit(main())
