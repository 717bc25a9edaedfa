"""core-api: a small JSON HTTP API with its own PostgreSQL database.

An example backend service of the aic.gateway collection, deployed by roles/service as a wheel.
Endpoints:
  GET  /            service name, instance and version
  GET  /health      200 when the database answers, 503 otherwise
  GET  /items       the latest items (``?limit=N``, at most 1000)
  POST /items       ``{"name": "..."}`` -> 201 and the stored row
  GET  /items/<id>  one item, 404 when there is none
  POST /classify    forwards the body to the AI service's /predict (AI_SERVICE_URL, through the mesh
                    outbound of this service's data plane): a service-to-service call for mesh policies
Configuration comes from the environment only, with libpq's names for the database (what roles/service
sets for a service that declares ``database``): PGHOST, PGPORT, PGDATABASE, PGUSER, PGPASSWORD,
PGSSLMODE (disable, allow, prefer, require, verify-ca, verify-full; default prefer), PGSSLROOTCERT,
PGCONNECT_TIMEOUT; and for HTTP: PORT or SERVICE_PORT (default 8080), SERVICE_ADDRESS (default
127.0.0.1), SERVICE_NAME (default core-api), SERVICE_INSTANCE (default 0), AI_SERVICE_URL (unset: /classify
answers 501).
"""

import json
import logging
import os
import re
import signal
import ssl
import sys
import threading
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pg8000.native

from core_api import __version__

LOG = logging.getLogger("core_api")
MAX_BODY = 64 * 1024
ITEM_PATH = re.compile(r"^/items/([0-9]{1,18})$")
SCHEMA = (
    "CREATE TABLE IF NOT EXISTS items ("
    " id BIGSERIAL PRIMARY KEY,"
    " name TEXT NOT NULL CHECK (length(name) BETWEEN 1 AND 200),"
    " created_at TIMESTAMPTZ NOT NULL DEFAULT now())"
)


class Settings:
    """What the service reads from its environment."""

    def __init__(self, env=None):
        env = os.environ if env is None else env
        self.name = env.get("SERVICE_NAME") or "core-api"
        self.instance = env.get("SERVICE_INSTANCE") or "0"
        self.address = env.get("SERVICE_ADDRESS") or "127.0.0.1"
        self.port = int(env.get("PORT") or env.get("SERVICE_PORT") or 8080)
        self.db_host = env.get("PGHOST") or "127.0.0.1"
        self.db_port = int(env.get("PGPORT") or 5432)
        self.db_name = env.get("PGDATABASE") or "core_api"
        self.db_user = env.get("PGUSER") or "core_api"
        self.db_password = env.get("PGPASSWORD") or None
        self.sslmode = env.get("PGSSLMODE") or "prefer"
        self.sslrootcert = env.get("PGSSLROOTCERT") or None
        self.connect_timeout = float(env.get("PGCONNECT_TIMEOUT") or 5)
        self.ai_service_url = (env.get("AI_SERVICE_URL") or "").rstrip("/")
        if self.sslmode not in ("disable", "allow", "prefer", "require", "verify-ca", "verify-full"):
            raise ValueError("PGSSLMODE %r is not one of libpq's modes" % self.sslmode)


def ssl_context(settings):
    """pg8000's ssl_context for PGSSLMODE, as libpq reads it: False never uses TLS, None tries TLS and
    falls back to plain (allow, prefer), a context insists on TLS (verifying the server for verify-*)."""
    if settings.sslmode == "disable":
        return False
    if settings.sslmode in ("allow", "prefer"):
        return None
    if settings.sslmode in ("verify-ca", "verify-full"):
        context = ssl.create_default_context(cafile=settings.sslrootcert)
        context.check_hostname = settings.sslmode == "verify-full"
        return context
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


class Database:
    """One short connection per request: simple, and it survives database restarts and failovers."""

    def __init__(self, settings):
        self.settings = settings
        self.schema_ready = False
        self.lock = threading.Lock()

    def connect(self):
        s = self.settings
        args = dict(user=s.db_user, host=s.db_host, port=s.db_port, database=s.db_name,
                    password=s.db_password, timeout=s.connect_timeout, application_name=s.name)
        return pg8000.native.Connection(ssl_context=ssl_context(s), **args)

    def run(self, statement, **params):
        conn = self.connect()
        try:
            if not self.schema_ready:
                with self.lock:
                    self.create_schema(conn)
            rows = conn.run(statement, **params)
            columns = [c["name"] for c in conn.columns or []]
            return [dict(zip(columns, row)) for row in rows or []]
        finally:
            conn.close()

    def create_schema(self, conn):
        try:
            conn.run(SCHEMA)
        except pg8000.native.DatabaseError:
            # Another instance created it at the same moment (CREATE ... IF NOT EXISTS is not atomic).
            if not conn.run("SELECT to_regclass('items') IS NOT NULL")[0][0]:
                raise
        self.schema_ready = True

    def ensure_schema(self):
        self.run("SELECT 1 AS ok")


def item_json(row):
    return {"id": row["id"], "name": row["name"], "created_at": row["created_at"].isoformat()}


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "core-api/" + __version__

    def log_message(self, format, *args):  # pylint: disable=redefined-builtin
        LOG.info("%s %s", self.address_string(), format % args)

    def reply(self, status, body):
        data = (json.dumps(body, sort_keys=True) + "\n").encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def database_error(self, exc):
        LOG.warning("database error: %s", exc)
        self.reply(503, {"error": "database unavailable"})

    def do_GET(self):  # pylint: disable=invalid-name
        app = self.server.app
        path, _sep, query = self.path.partition("?")
        if path == "/":
            self.reply(200, {"service": app.settings.name, "instance": app.settings.instance,
                             "version": __version__})
        elif path == "/health":
            try:
                app.db.run("SELECT 1 AS ok")
            except Exception as exc:  # pylint: disable=broad-except
                # The cause goes to the log only: the answer may leave through the gateway.
                LOG.warning("health: database unavailable: %s", exc)
                self.reply(503, {"status": "unavailable", "database": "unavailable"})
                return
            self.reply(200, {"status": "ok", "database": "ok"})
        elif path == "/items":
            limit = 100
            match = re.search(r"(?:^|&)limit=([0-9]{1,4})(?:&|$)", query)
            if match:
                limit = max(1, min(1000, int(match.group(1))))
            try:
                rows = app.db.run("SELECT id, name, created_at FROM items ORDER BY id DESC LIMIT :limit",
                                  limit=limit)
            except Exception as exc:  # pylint: disable=broad-except
                self.database_error(exc)
                return
            self.reply(200, {"items": [item_json(r) for r in rows]})
        elif ITEM_PATH.match(path):
            try:
                rows = app.db.run("SELECT id, name, created_at FROM items WHERE id = :id",
                                  id=int(ITEM_PATH.match(path).group(1)))
            except Exception as exc:  # pylint: disable=broad-except
                self.database_error(exc)
                return
            if rows:
                self.reply(200, item_json(rows[0]))
            else:
                self.reply(404, {"error": "no such item"})
        else:
            self.reply(404, {"error": "not found"})

    do_HEAD = do_GET

    def read_json(self):
        """(True, the request's JSON body), or (False, None) after replying 400/413."""
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            length = -1
        if length < 0 or length > MAX_BODY:
            self.reply(413 if length > MAX_BODY else 400, {"error": "bad Content-Length"})
            self.close_connection = True
            return False, None
        try:
            return True, json.loads(self.rfile.read(length).decode("utf-8") or "null")
        except (UnicodeDecodeError, ValueError):
            self.reply(400, {"error": "body is not JSON"})
            return False, None

    def classify(self):
        url = self.server.app.settings.ai_service_url
        ok, body = self.read_json()
        if not ok:
            return
        if not url:
            self.reply(501, {"error": "AI_SERVICE_URL is not set"})
            return
        request = urllib.request.Request(url + "/predict", data=json.dumps(body).encode("utf-8"), method="POST",
                                         headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                self.reply(200, {"via": self.server.app.settings.name, "ai_service": json.loads(response.read())})
        except urllib.error.HTTPError as err:
            self.reply(502, {"error": "ai service answered %d" % err.code})
        except (OSError, ValueError) as exc:
            self.reply(502, {"error": "ai service unreachable: %s" % exc})

    def do_POST(self):  # pylint: disable=invalid-name
        path = self.path.partition("?")[0]
        if path == "/classify":
            self.classify()
            return
        if path != "/items":
            self.reply(404, {"error": "not found"})
            return
        ok, body = self.read_json()
        if not ok:
            return
        name = body.get("name") if isinstance(body, dict) else None
        if not isinstance(name, str) or not 1 <= len(name.strip()) <= 200:
            self.reply(400, {"error": "give {\"name\": \"...\"} with 1 to 200 characters"})
            return
        try:
            rows = self.server.app.db.run(
                "INSERT INTO items (name) VALUES (:name) RETURNING id, name, created_at", name=name.strip())
        except Exception as exc:  # pylint: disable=broad-except
            self.database_error(exc)
            return
        self.reply(201, item_json(rows[0]))


class App:
    def __init__(self, settings):
        self.settings = settings
        self.db = Database(settings)
        self.server = ThreadingHTTPServer((settings.address, settings.port), Handler)
        self.server.daemon_threads = True
        self.server.app = self

    @property
    def port(self):
        return self.server.server_address[1]

    def start_schema(self):
        """Create the table now if the database answers; otherwise the first request that reaches it will."""
        try:
            self.db.ensure_schema()
            LOG.info("table items ready in database %s on %s:%s", self.settings.db_name, self.settings.db_host,
                     self.settings.db_port)
        except Exception as exc:  # pylint: disable=broad-except
            LOG.warning("database not reachable yet (%s); /health answers 503 until it is", exc)

    def serve(self):
        self.server.serve_forever()

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


def main(argv=None):
    del argv
    logging.basicConfig(level=os.environ.get("LOG_LEVEL", "INFO").upper(), stream=sys.stdout,
                        format="%(levelname)s %(name)s %(message)s")
    try:
        app = App(Settings())
    except (ValueError, OSError) as exc:
        LOG.error("cannot start: %s", exc)
        return 1
    app.start_schema()
    signal.signal(signal.SIGTERM, lambda signum, frame: threading.Thread(target=app.server.shutdown).start())
    LOG.info("%s %s instance %s listening on %s:%d", app.settings.name, __version__, app.settings.instance,
             app.settings.address, app.port)
    try:
        app.serve()
    except KeyboardInterrupt:
        pass
    app.server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
