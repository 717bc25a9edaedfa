"""A small load generator for the rolling-upgrade test: counts every request and every failure.

    python3 loadgen.py --url http://127.0.0.1/echo/hello.txt --expect "hello" --out /tmp/load.json [--workers 4]
        [--header 'apikey: KEY'] [--post-json '{"name": "load-{n}"}']

Each worker sends requests one after another on a keep-alive connection (a new connection after an
error or when the server closes one). A request fails when the connection fails, the status is not
200 or the body lacks --expect; failures are not retried, so the count is what clients would see.
The totals are written to --out every second and when SIGTERM or SIGINT stops it.
With --post-json each request is a POST of that JSON with {n} replaced by a number unique to the request;
the numbers of the requests that succeeded are listed in the output (`acknowledged`), so a test can check
that every write the clients were told succeeded is stored, and stored once.
"""

import argparse
import http.client
import json
import os
import signal
import sys
import threading
import time
import urllib.parse


class Counter:
    def __init__(self):
        self.lock = threading.Lock()
        self.sent = 0
        self.failed = 0
        self.errors = {}
        self.acknowledged = []
        self.next_number = 0

    def number(self):
        with self.lock:
            self.next_number += 1
            return self.next_number

    def add(self, error=None, number=None):
        with self.lock:
            self.sent += 1
            if error:
                self.failed += 1
                self.errors[error] = self.errors.get(error, 0) + 1
            elif number is not None:
                self.acknowledged.append(number)

    def snapshot(self, started, running):
        with self.lock:
            return {"sent": self.sent, "failed": self.failed, "errors": dict(self.errors),
                    "seconds": round(time.time() - started, 1), "running": running,
                    "acknowledged": sorted(self.acknowledged)}


def worker(url, expect, counter, stop, timeout, headers=None, post_json=None):
    parts = urllib.parse.urlsplit(url)
    path = parts.path + ("?" + parts.query if parts.query else "")
    conn = None
    while not stop.is_set():
        try:
            if conn is None:
                conn = http.client.HTTPConnection(parts.hostname, parts.port or 80, timeout=timeout)
            number = None
            if post_json:
                number = counter.number()
                conn.request("POST", path, body=post_json.replace("{n}", str(number)).encode(),
                             headers=dict(headers or {}, **{"Content-Type": "application/json"}))
            else:
                conn.request("GET", path, headers=headers or {})
            response = conn.getresponse()
            body = response.read().decode("utf-8", "replace")
            if response.status not in (200, 201):
                counter.add("status %d" % response.status)
            elif expect not in body:
                counter.add("unexpected body")
            else:
                counter.add(number=number)
            if response.getheader("connection", "").lower() == "close":
                conn.close()
                conn = None
        except (OSError, http.client.HTTPException) as exc:
            counter.add(type(exc).__name__)
            if conn is not None:
                conn.close()
            conn = None
            time.sleep(0.05)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", required=True)
    parser.add_argument("--expect", default="")
    parser.add_argument("--out", required=True)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--timeout", type=float, default=10.0)
    parser.add_argument("--header", action="append", default=[], help="'Name: value', repeatable")
    parser.add_argument("--post-json", default="", help="POST this JSON; {n} becomes a number unique to the request")
    args = parser.parse_args()
    headers = dict(h.split(":", 1) for h in args.header)
    headers = {k.strip(): v.strip() for k, v in headers.items()}

    counter = Counter()
    stop = threading.Event()
    started = time.time()

    def write(running):
        with open(args.out + ".tmp", "w", encoding="utf-8") as handle:
            json.dump(counter.snapshot(started, running), handle)

        os.replace(args.out + ".tmp", args.out)

    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    worker_args = (args.url, args.expect, counter, stop, args.timeout, headers, args.post_json)
    threads = [threading.Thread(target=worker, args=worker_args, daemon=True)
               for _i in range(args.workers)]
    for thread in threads:
        thread.start()
    while not stop.wait(1.0):
        write(True)
    for thread in threads:
        thread.join(args.timeout + 1)
    write(False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
