"""aic-echo: the tiny HTTP service the `service` scenario deploys (a test fixture, not an example service).

GET /health answers 200 once started; GET /info reports the instance, its process, its version, the
non-secret settings it was given and only digests of the secret ones. Every start, first health answer and
stop is appended to $EVENTS_FILE, so a test can see the order in which instances were restarted.
"""

import argparse
import hashlib
import json
import os
import signal
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

VERSION = "@VERSION@"
INSTANCE = os.environ.get("SERVICE_INSTANCE", "?")


def event(what):
    path = os.environ.get("EVENTS_FILE")
    if path:
        with open(path, "a", encoding="utf-8") as handle:
            handle.write("%.6f %s %s %s %d\n" % (time.time(), os.environ.get("SERVICE_NAME", "?"), what, INSTANCE, os.getpid()))


def digest(name):
    value = os.environ.get(name)
    return hashlib.sha256(value.encode()).hexdigest() if value is not None else None


class Handler(BaseHTTPRequestHandler):
    healthy = False

    def log_message(self, *args):  # keep the journal quiet
        pass

    def answer(self, status, body):
        data = json.dumps(body, sort_keys=True).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        if self.path == "/health":
            if not Handler.healthy:
                Handler.healthy = True
                event("healthy")
            self.answer(200, {"status": "UP"})
        elif self.path == "/info":
            self.answer(200, {
                "instance": INSTANCE, "pid": os.getpid(), "version": VERSION, "cwd": os.getcwd(),
                "greeting": os.environ.get("GREETING"), "label": os.environ.get("INSTANCE_LABEL"),
                "address": os.environ.get("SERVICE_ADDRESS"), "port": os.environ.get("SERVICE_PORT"),
                "pg": {key: os.environ.get(key) for key in ("PGHOST", "PGPORT", "PGDATABASE", "PGUSER", "PGSSLMODE")},
                "sha256": {key: digest(key) for key in ("ECHO_TOKEN", "PGPASSWORD", "DATABASE_URL")},
            })
        else:
            self.answer(404, {"error": "not found"})


def main(argv=None):
    parser = argparse.ArgumentParser(prog="aic-echo")
    parser.add_argument("--port", type=int, default=int(os.environ.get("SERVICE_PORT", "8080")))
    parser.add_argument("--bind", default=os.environ.get("SERVICE_ADDRESS", "127.0.0.1"))
    args = parser.parse_args(argv)
    event("start")
    # A slow start, so that a restart that does not wait for health would show in the event order.
    time.sleep(float(os.environ.get("STARTUP_DELAY", "0")))
    server = ThreadingHTTPServer((args.bind, args.port), Handler)

    def stop(_signum, _frame):
        event("stop")
        sys.exit(0)

    signal.signal(signal.SIGTERM, stop)
    server.serve_forever()


if __name__ == "__main__":
    main()
