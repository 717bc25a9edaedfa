"""Kong Gateway 3.9 Admin API stand-in (test double, NOT Kong).

Run:  python3 tests/standins/kong/admin_api.py --listen 127.0.0.1:8001

Prints "kong stand-in admin API listening on http://HOST:PORT" once ready
(port 0 picks a free port and prints the real one).  See README.md.

With ``--proxy-listen HOST:PORT`` it also serves the proxy (proxy.py, the
plugins of plugins.py) on the same in-memory store, the way a traditional node
with a database serves what its Admin API wrote, and then prints a second line
"kong stand-in proxy listening on http://HOST:PORT".
"""

import argparse
import json
import os
import subprocess
import sys
import threading
import urllib.parse
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from api import AdminAPI, RawBody  # noqa: E402  pylint: disable=wrong-import-position
from store import MemoryStore  # noqa: E402  pylint: disable=wrong-import-position


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"     # keep-alive; Content-Length always sent
    disable_nagle_algorithm = True    # TCP_NODELAY: avoid 40 ms delayed-ACK stalls
    server_version = "kong/3.9.3"
    api = None                        # set by make_server
    node = None                       # node.Node when run by the package node
    verbose = False

    def version_string(self):
        return self.server_version

    def log_message(self, format, *args):  # pylint: disable=redefined-builtin
        if self.verbose:
            super().log_message(format, *args)

    busy = False

    def setup(self):
        super().setup()
        if self.node is not None:
            self.node.connection_opened(self)

    def finish(self):
        try:
            super().finish()
        finally:
            if self.node is not None:
                self.node.connection_closed(self)

    def parse_request(self):
        self.busy = True          # a request line arrived on this connection
        return super().parse_request()

    def _dispatch(self):
        parsed = urllib.parse.urlsplit(self.path)
        query = dict(urllib.parse.parse_qsl(parsed.query, keep_blank_values=True))
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        node = self.node
        if node is not None:
            node.request_started()
        try:
            if getattr(self.api, "wants_client", False):
                # the proxy: client address in, extra response headers out
                status, payload, extra = self.api.handle(
                    self.command, parsed.path, query, self.headers, body,
                    client=self.client_address[0])
            else:
                status, payload = self.api.handle(self.command, parsed.path, query,
                                                  self.headers, body)
                extra = {}
            self._respond(status, payload, extra)
        finally:
            self.busy = False
            if node is not None:
                node.request_finished()

    def _respond(self, status, payload, extra):
        if isinstance(payload, RawBody):
            data, ctype = payload.data, payload.content_type
        else:
            data = b"" if payload is None else json.dumps(payload).encode()
            ctype = "application/json; charset=utf-8"
        self.send_response(status)
        if payload is not None:
            self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        if not getattr(self.api, "wants_client", False):
            self.send_header("X-Kong-Admin-Latency", "0")
        for name, value in extra.items():
            self.send_header(name, value)
        if self.node is not None and self.node.stopping.is_set():
            # graceful stop: finish this request, then close the connection
            # (nginx closes idle keep-alive connections on QUIT)
            self.close_connection = True
            self.send_header("Connection", "close")
        # headers and body leave in one write (what end_headers() does, plus
        # the body) so no Nagle/delayed-ACK interplay slows keep-alive clients
        self._headers_buffer.append(b"\r\n")  # pylint: disable=no-member
        if self.command != "HEAD":
            self._headers_buffer.append(data)  # pylint: disable=no-member
        self.flush_headers()

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _dispatch

    def do_OPTIONS(self):  # pylint: disable=invalid-name
        self.send_response(204)
        self.send_header("Allow", "GET, HEAD, OPTIONS, PATCH, POST, PUT, DELETE")
        self.send_header("Content-Length", "0")
        self.end_headers()


class Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128


def make_server(host="127.0.0.1", port=0, kong_version="3.9.3", verbose=False, store=None,
                api=None, node=None):
    """Create (not start) a server; ``server.api`` is the AdminAPI instance
    (or ``api``: any object with ``handle(method, path, query, headers, body)``,
    used by the package node for the Status API and the proxy)."""
    handler = type("BoundHandler", (Handler,), {"verbose": verbose, "node": node})
    server = Server((host, port), handler)
    real_host, real_port = server.server_address[:2]
    handler.api = api or AdminAPI(store=store or MemoryStore(), kong_version=kong_version,
                                  admin_listen="%s:%d" % (real_host, real_port), node=node)
    handler.server_version = "kong/%s" % kong_version
    server.api = handler.api
    return server


def start_in_thread(host="127.0.0.1", port=0, **kwargs):
    """Start a server in a daemon thread; returns (server, base_url)."""
    server = make_server(host, port, **kwargs)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    real_host, real_port = server.server_address[:2]
    return server, "http://%s:%d" % (real_host, real_port)


def main(argv=None):
    parser = argparse.ArgumentParser(description="Kong 3.9 Admin API stand-in (tests only)")
    parser.add_argument("--listen", default="127.0.0.1:8001", help="HOST:PORT (port 0 = any)")
    parser.add_argument("--kong-version", default="3.9.3")
    parser.add_argument("--verbose", action="store_true", help="log requests to stderr")
    parser.add_argument("--proxy-listen", help="also serve the proxy on HOST:PORT (port 0 = any)")
    args = parser.parse_args(argv)
    host, port = args.listen.rpartition(":")[::2]
    server = make_server(host or "127.0.0.1", int(port), args.kong_version, args.verbose)
    real_host, real_port = server.server_address[:2]
    print("kong stand-in admin API listening on http://%s:%d" % (real_host, real_port),
          flush=True)
    if args.proxy_listen:
        proxy_server = make_proxy(server.api, args.proxy_listen)
        threading.Thread(target=proxy_server.serve_forever, daemon=True).start()
        print("kong stand-in proxy listening on http://%s:%d" % proxy_server.server_address[:2], flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


def make_proxy(api, listen):
    """The proxy of a traditional node in front of ``api``'s store (a database's
    worth of entities written through the Admin API)."""
    import tempfile  # pylint: disable=import-outside-toplevel
    import conf as C  # pylint: disable=import-outside-toplevel
    import node as N  # pylint: disable=import-outside-toplevel
    import proxy  # pylint: disable=import-outside-toplevel
    settings = dict(C.DEFAULT_MAP, database="postgres")
    node = N.Node(tempfile.mkdtemp(prefix="kong-standin-"), settings)
    node.store = api.store
    node.api = api
    host, port = listen.rpartition(":")[::2]
    return proxy.make_server(host or "127.0.0.1", int(port), node)


def spawn(stderr=None, proxy=False):
    """This stand-in in a process of its own on a free loopback port: (process, base URL), or with
    ``proxy`` (process, base URL, proxy URL).

    What scripts/integration and the kong_sync benchmark start; stop it with process.terminate().
    """
    command = [sys.executable, os.path.abspath(__file__), "--listen", "127.0.0.1:0"]
    if proxy:
        command += ["--proxy-listen", "127.0.0.1:0"]
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=stderr, text=True)
    urls = []
    for _line in range(2 if proxy else 1):
        line = proc.stdout.readline()
        if "listening on" not in line:
            proc.kill()
            raise RuntimeError("the Kong stand-in did not start: %r" % line)
        urls.append(line.rsplit(" ", 1)[1].strip())
    return (proc, urls[0], urls[1]) if proxy else (proc, urls[0])


def control(url, action):
    """The test-only extension: `reset` or `reset-stats` (POST), `stats` (GET, returns the counts)."""
    method = "GET" if action == "stats" else "POST"
    request = urllib.request.Request("%s/__standin/%s" % (url, action), method=method,
                                     data=None if method == "GET" else b"")
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.load(response)


if __name__ == "__main__":
    sys.exit(main())
