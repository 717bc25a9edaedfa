"""examples/core_api against a real, throwaway PostgreSQL cluster.

The fixture runs Debian's initdb + pg_ctl as the ``postgres`` user under /tmp on a free port, with TLS
on (a self-signed certificate from openssl, as roles/service connects with PGSSLMODE=require) and
scram-sha-256 passwords over TCP, and removes the cluster afterwards. Skipped unless run as root with
Debian's ``postgresql`` (initdb), the ``postgres`` user, openssl and pg8000 (requirements-dev.txt)
present: scripts/host-setup installs the first three.
"""

import glob
import json
import os
import pwd
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import urllib.error
import urllib.request

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
sys.path.insert(0, os.path.join(ROOT, "examples", "core_api", "src"))


def _initdb():
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    return found[-1] if found else None


def _missing():
    if os.geteuid() != 0:
        return "needs root (runs PostgreSQL as the postgres user)"
    if _initdb() is None:
        return "needs Debian's postgresql server (initdb; scripts/host-setup installs it)"
    try:
        pwd.getpwnam("postgres")
    except KeyError:
        return "needs the postgres user (Debian's postgresql package)"
    if shutil.which("openssl") is None:
        return "needs openssl for the server certificate"
    try:
        import pg8000  # noqa: F401  pylint: disable=import-outside-toplevel,unused-import
    except ImportError:
        return "needs pg8000 (requirements-dev.txt)"
    return None


pytestmark = pytest.mark.skipif(_missing() is not None, reason=str(_missing()))

PASSWORD = "core-api-test-pass"


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Cluster:
    def __init__(self):
        self.bindir = os.path.dirname(_initdb())
        self.dir = tempfile.mkdtemp(prefix="core-api-pg-", dir="/tmp")
        self.data = os.path.join(self.dir, "data")
        self.port = free_port()
        shutil.chown(self.dir, "postgres", "postgres")
        self.as_pg([os.path.join(self.bindir, "initdb"), "-D", self.data, "-U", "postgres", "--no-sync",
                    "--auth-local=trust", "--auth-host=scram-sha-256"])
        self.as_pg(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj",
                    "/CN=localhost", "-keyout", os.path.join(self.data, "server.key"),
                    "-out", os.path.join(self.data, "server.crt")])
        os.chmod(os.path.join(self.data, "server.key"), 0o600)
        self.as_pg([os.path.join(self.bindir, "pg_ctl"), "-D", self.data, "-l", os.path.join(self.dir, "log"),
                    "-w", "-o", "-p %d -k %s -c listen_addresses=127.0.0.1 -c fsync=off -c ssl=on -c log_connections=on"
                    % (self.port, self.dir), "start"])
        self.sql("CREATE ROLE core_api LOGIN PASSWORD '%s'" % PASSWORD)
        self.sql("CREATE DATABASE core_api OWNER core_api")

    def as_pg(self, cmd):
        return subprocess.run(["runuser", "-u", "postgres", "--"] + cmd, capture_output=True, text=True,
                              check=True, cwd=self.dir)

    def sql(self, statement, db="postgres"):
        return self.as_pg(["psql", "-h", self.dir, "-p", str(self.port), "-U", "postgres", "-d", db,
                           "-v", "ON_ERROR_STOP=1", "-qAtc", statement]).stdout.strip()

    def destroy(self):
        subprocess.run(["runuser", "-u", "postgres", "--", os.path.join(self.bindir, "pg_ctl"), "-D", self.data,
                        "-m", "immediate", "-w", "stop"], capture_output=True, check=False)
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture(scope="module")
def cluster():
    pg = Cluster()
    yield pg
    pg.destroy()


def env_for(cluster, **extra):
    env = {"PGHOST": "127.0.0.1", "PGPORT": str(cluster.port), "PGDATABASE": "core_api", "PGUSER": "core_api",
           "PGPASSWORD": PASSWORD, "PGSSLMODE": "require", "SERVICE_PORT": "0", "SERVICE_INSTANCE": "1"}
    env.update(extra)
    return env


@pytest.fixture()
def running(cluster):
    """Start one app in a thread; yields a function that returns (status, JSON body)."""
    started = []

    def start(**extra):
        from core_api.app import App, Settings  # pylint: disable=import-outside-toplevel
        app = App(Settings(env_for(cluster, **extra)))
        app.start_schema()
        threading.Thread(target=app.serve, daemon=True).start()
        started.append(app)

        def call(method, path, body=None):
            data = None if body is None else (body if isinstance(body, bytes) else json.dumps(body).encode())
            request = urllib.request.Request("http://127.0.0.1:%d%s" % (app.port, path), data=data, method=method,
                                             headers={"Content-Type": "application/json"})
            try:
                with urllib.request.urlopen(request, timeout=10) as response:
                    return response.status, json.loads(response.read())
            except urllib.error.HTTPError as err:
                return err.code, json.loads(err.read())
        return call

    yield start
    for app in started:
        app.stop()


def test_root_names_service_instance_and_version(running):
    call = running(SERVICE_NAME="core-api")
    from core_api import __version__  # pylint: disable=import-outside-toplevel
    assert call("GET", "/") == (200, {"service": "core-api", "instance": "1", "version": __version__})


def test_start_creates_the_table_and_health_checks_the_database(cluster, running):
    call = running()
    assert cluster.sql("SELECT tableowner FROM pg_tables WHERE tablename = 'items'", db="core_api") == "core_api"
    assert call("GET", "/health") == (200, {"status": "ok", "database": "ok"})


def test_connection_uses_tls_when_required(cluster, running):
    """PGSSLMODE=require (what roles/service sets) connects over TLS; disable does not."""
    for mode in ("require", "disable"):
        call = running(PGSSLMODE=mode, SERVICE_NAME="tls-" + mode)
        assert call("GET", "/health")[0] == 200
    with open(os.path.join(cluster.dir, "log"), encoding="utf-8") as handle:
        authorized = [line for line in handle if "connection authorized: user=core_api" in line]
    assert any("application_name=tls-require SSL enabled" in line for line in authorized)
    assert not any("application_name=tls-disable SSL enabled" in line for line in authorized)
    assert any("application_name=tls-disable" in line for line in authorized)


def test_items_are_stored_in_postgresql(cluster, running):
    call = running()
    status, item = call("POST", "/items", {"name": "  first item  "})
    assert status == 201 and item["name"] == "first item" and isinstance(item["id"], int)
    assert call("GET", "/items/%d" % item["id"]) == (200, item)
    status, listing = call("GET", "/items?limit=5")
    assert status == 200 and listing["items"][0] == item
    assert cluster.sql("SELECT name FROM items WHERE id = %d" % item["id"], db="core_api") == "first item"


def test_second_instance_sees_the_same_rows(running):
    first, second = running(SERVICE_INSTANCE="0"), running(SERVICE_INSTANCE="1", PGSSLMODE="disable")
    status, item = first("POST", "/items", {"name": "shared"})
    assert status == 201
    assert second("GET", "/items/%d" % item["id"]) == (200, item)


@pytest.mark.parametrize("body", [{"name": ""}, {"name": "x" * 201}, {"other": 1}, [1, 2], b"not json"])
def test_bad_items_are_refused(running, body):
    call = running()
    status, answer = call("POST", "/items", body)
    assert status == 400 and "error" in answer


def test_unknown_paths_and_items_are_404(running):
    call = running()
    assert call("GET", "/nothing")[0] == 404
    assert call("GET", "/items/999999999")[0] == 404
    assert call("POST", "/elsewhere", {"name": "x"})[0] == 404


def test_wrong_password_makes_health_503(running):
    call = running(PGPASSWORD="wrong")
    status, answer = call("GET", "/health")
    assert status == 503 and answer["status"] == "unavailable"
    assert call("GET", "/items")[0] == 503


def test_settings_refuse_unknown_sslmode():
    from core_api.app import Settings  # pylint: disable=import-outside-toplevel
    with pytest.raises(ValueError):
        Settings({"PGSSLMODE": "sometimes"})


def test_classify_forwards_to_the_ai_service(running):
    """POST /classify is core-api's call to another service (through the mesh outbound in the lab)."""
    from http.server import BaseHTTPRequestHandler, HTTPServer  # pylint: disable=import-outside-toplevel
    seen = []

    class Fake(BaseHTTPRequestHandler):
        def do_POST(self):  # pylint: disable=invalid-name
            seen.append((self.path, json.loads(self.rfile.read(int(self.headers["Content-Length"])))))
            data = b'{"class": "setosa"}'
            self.send_response(200)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args):  # pylint: disable=arguments-differ
            pass

    fake = HTTPServer(("127.0.0.1", 0), Fake)
    threading.Thread(target=fake.serve_forever, daemon=True).start()
    try:
        call = running(AI_SERVICE_URL="http://127.0.0.1:%d/" % fake.server_address[1], SERVICE_NAME="core-api")
        assert call("POST", "/classify", {"features": [1, 2, 3, 4]}) == (
            200, {"via": "core-api", "ai_service": {"class": "setosa"}})
        assert seen == [("/predict", {"features": [1, 2, 3, 4]})]
    finally:
        fake.shutdown()
        fake.server_close()
    assert running()("POST", "/classify", {"features": [1]})[0] == 501
