"""A local artifact mirror for tests: serves a directory over HTTP and logs every request.

    serve.py --root DIR --port PORT --log FILE --pidfile FILE [--lifetime SECONDS] [--daemon]

Each request is logged as `<client address> <method> <path> <status>`, so tests can count how often
an artifact was downloaded and by whom. It stops by itself after --lifetime seconds (default one
hour) so a failed test run never leaves it behind; `kill $(cat PIDFILE)` stops it earlier.
"""

import argparse
import functools
import http.server
import os
import socket
import sys
import threading
import time


class Handler(http.server.SimpleHTTPRequestHandler):
    log_path = None

    def log_request(self, code="-", size="-"):
        with open(self.log_path, "a", encoding="utf-8") as handle:
            handle.write("%s %s %s %s\n" % (self.client_address[0], self.command, self.path, code))

    def log_message(self, format, *args):  # pylint: disable=redefined-builtin
        pass


def wait_listening(port, child, pidfile, timeout=10.0):
    """True once the child wrote its pid (it does so after binding) and the port answers; False when the child
    died first (for example because another process already holds the port)."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        if os.waitpid(child, os.WNOHANG) != (0, 0):
            return False
        try:
            with open(pidfile, encoding="utf-8") as handle:
                written = handle.read().strip() == str(child)
        except OSError:
            written = False
        if written:
            with socket.socket() as probe:
                if probe.connect_ex(("127.0.0.1", port)) == 0:
                    return True
        time.sleep(0.1)
    return False


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--root", required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--bind", default="0.0.0.0")
    parser.add_argument("--log", required=True)
    parser.add_argument("--pidfile", required=True)
    parser.add_argument("--lifetime", type=int, default=3600)
    parser.add_argument("--daemon", action="store_true", help="return once the server is listening")
    args = parser.parse_args()

    if args.daemon:
        child = os.fork()
        if child > 0:
            if wait_listening(args.port, child, args.pidfile):
                sys.exit(0)
            sys.exit("serve.py: the mirror did not start on port %d (is another process using it?)" % args.port)
    if args.daemon:
        os.setsid()
        devnull = os.open(os.devnull, os.O_RDWR)
        for fd in (0, 1, 2):
            os.dup2(devnull, fd)

    Handler.log_path = os.path.abspath(args.log)
    handler = functools.partial(Handler, directory=os.path.abspath(args.root))
    server = http.server.ThreadingHTTPServer((args.bind, args.port), handler)
    with open(args.pidfile, "w", encoding="utf-8") as handle:
        handle.write(str(os.getpid()))
    threading.Timer(args.lifetime, server.shutdown).start()
    try:
        server.serve_forever()
    finally:
        server.server_close()
        if os.path.exists(args.pidfile):
            os.remove(args.pidfile)


if __name__ == "__main__":
    main()
