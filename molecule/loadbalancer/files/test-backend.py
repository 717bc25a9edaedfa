"""A TEST BACKEND for the loadbalancer scenario, not Kong: it only imitates Kong's two ports.

Usage: python3 test-backend.py NAME ADDRESS. Port 8000 answers every request with NAME (the proxy
port); port 8007 answers /status/ready with 200 {"message":"ready"}, or 503 {"message":"draining"}
while /var/lib/test-backend/NAME.draining exists (Kong's Status API). GET /slow on 8000 answers after 3 s.
"""

import http.server
import os
import sys
import threading
import time

NAME, ADDRESS = sys.argv[1], sys.argv[2]
FLAG = "/var/lib/test-backend/%s.draining" % NAME


class Proxy(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        if self.path.startswith("/slow"):
            time.sleep(3)
        body = (NAME + "\n").encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


class Status(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        if self.path != "/status/ready":
            code, body = 404, b'{"message":"Not found"}'
        elif os.path.exists(FLAG):
            code, body = 503, b'{"message":"draining"}'
        else:
            code, body = 200, b'{"message":"ready"}'
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


servers = [http.server.ThreadingHTTPServer((ADDRESS, 8000), Proxy),
           http.server.ThreadingHTTPServer((ADDRESS, 8007), Status)]
for server in servers[1:]:
    threading.Thread(target=server.serve_forever, daemon=True).start()
servers[0].serve_forever()
