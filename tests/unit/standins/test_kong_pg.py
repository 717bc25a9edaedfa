"""The stand-in `kong` package in DB mode on a real, throwaway PostgreSQL cluster.

The fixture runs initdb + pg_ctl as the ``postgres`` user under /tmp on a free port
and removes the cluster afterwards.  Skipped unless run as root with Debian's
``postgresql`` (initdb) and ``python3-psycopg2`` installed.
Each test docstring cites the kong.md fact it checks (/work/shared/reference/kong.md).
"""

import glob
import json
import os
import pwd
import shutil
import subprocess
import tempfile
import threading

import pytest

from .kong_helpers import PYTHON, Echo, free_port, http, kong, listen_keys, node_ports, request, wait_for
from .test_kong_cli import DECLARATIVE


def _initdb():
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    return found[-1] if found else None


def _have_psycopg2():
    return subprocess.run([PYTHON, "-c", "import psycopg2"], capture_output=True,
                          check=False).returncode == 0


def _have_postgres_user():
    try:
        pwd.getpwnam("postgres")
        return True
    except KeyError:
        return False


pytestmark = pytest.mark.skipif(
    os.geteuid() != 0 or _initdb() is None or not _have_psycopg2()
    or not _have_postgres_user(),
    reason="needs root, Debian's postgresql (initdb), postgres user and python3-psycopg2")


class Cluster:
    def __init__(self):
        self.bindir = os.path.dirname(_initdb())
        self.dir = tempfile.mkdtemp(prefix="kong-standin-pg-", dir="/tmp")
        self.data = os.path.join(self.dir, "data")
        self.port = free_port()
        shutil.chown(self.dir, "postgres", "postgres")
        self.as_pg([os.path.join(self.bindir, "initdb"), "-D", self.data, "-A", "trust",
                    "-U", "postgres", "--no-sync"])
        self.start()
        self.seq = 0

    def as_pg(self, cmd, check=True):
        return subprocess.run(["runuser", "-u", "postgres", "--"] + cmd, capture_output=True,
                              text=True, check=check, cwd=self.dir)

    def start(self):
        self.as_pg([os.path.join(self.bindir, "pg_ctl"), "-D", self.data, "-l",
                    os.path.join(self.dir, "log"), "-w", "-o",
                    "-p %d -k %s -c listen_addresses=127.0.0.1 -c fsync=off"
                    % (self.port, self.dir), "start"])

    def stop(self):
        self.as_pg([os.path.join(self.bindir, "pg_ctl"), "-D", self.data, "-m", "immediate",
                    "-w", "stop"], check=False)

    def sql(self, statement, db="postgres"):
        return self.as_pg(["psql", "-h", self.dir, "-p", str(self.port), "-U", "postgres",
                           "-d", db, "-v", "ON_ERROR_STOP=1", "-qAtc", statement])

    def new_database(self):
        """A fresh `kong_N` database owned by a password-authenticated `kong` role
        (kong.md §2 "`pg_user=kong`, `pg_password=` (NONE), `pg_database=kong`")."""
        self.seq += 1
        name = "kong_%d" % self.seq
        if self.seq == 1:
            self.sql("CREATE ROLE kong LOGIN PASSWORD 'kongpass'")
        self.sql("CREATE DATABASE %s OWNER kong" % name)
        return {"KONG_DATABASE": "postgres", "KONG_PG_HOST": "127.0.0.1",
                "KONG_PG_PORT": str(self.port), "KONG_PG_USER": "kong",
                "KONG_PG_PASSWORD": "kongpass", "KONG_PG_DATABASE": name}

    def destroy(self):
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture(scope="module")
def cluster():
    pg = Cluster()
    yield pg
    pg.destroy()


@pytest.fixture()
def db(cluster):
    return cluster.new_database()


def v(version, env):
    return dict(env, KONG_STANDIN_VERSION=version)


def start_node(tmp_path, env, name="node"):
    ports = node_ports()
    prefix = str(tmp_path / name)
    env = dict(env, **{"KONG_" + k.upper(): val for k, val in listen_keys(ports).items()})
    proc = kong("start", "-p", prefix, env=env)
    return proc, prefix, ports, env


def test_fresh_database_needs_bootstrap(db, tmp_path):
    """kong.md §3 `migrations list` exit "**3** | DB needs bootstrap ("Database needs
    bootstrapping or is older than Kong 1.0")"; `status` "keys `needs_bootstrap` (bool)";
    kong.md §1 "startup fails if the DB needs bootstrap"."""
    proc = kong("migrations", "list", env=db)
    assert proc.returncode == 3, proc.stderr
    assert "Database needs bootstrapping or is older than Kong 1.0" in proc.stdout
    status = kong("migrations", "status", env=db)
    assert status.returncode == 0 and json.loads(status.stdout) == {"needs_bootstrap": True}
    started, prefix, _ports, _env = start_node(tmp_path, db)
    assert started.returncode == 1
    assert "needs bootstrapping" in started.stderr
    assert kong("health", "-p", prefix).returncode == 1


def test_bootstrap_is_idempotent(db):
    """kong.md §3 "`bootstrap`: on a fresh DB runs all migrations (up + teardown). On an
    already bootstrapped DB prints "Database already bootstrapped" and exits **0**"; `list`
    exit "0 | up to date"; `up` ""Database is already up-to-date" exits 0"; `finish` ""No
    pending migrations to finish" exits 0"."""
    first = kong("migrations", "bootstrap", env=db)
    assert first.returncode == 0, first.stderr
    assert "Database is up-to-date" in first.stdout
    second = kong("migrations", "bootstrap", env=db)
    assert (second.returncode, second.stdout.strip()) == (0, "Database already bootstrapped")
    assert kong("migrations", "list", env=db).returncode == 0
    up = kong("migrations", "up", env=db)
    assert (up.returncode, up.stdout.strip()) == (0, "Database is already up-to-date")
    fin = kong("migrations", "finish", env=db)
    assert (fin.returncode, fin.stdout.strip()) == (0, "No pending migrations to finish")
    state = json.loads(kong("migrations", "status", env=db).stdout)
    assert state["needs_bootstrap"] is False
    assert "new_migrations" not in state and "pending_migrations" not in state
    core = [g for g in state["executed_migrations"] if g["subsystem"] == "core"][0]
    assert core["migrations"][0] == "000_base"


def test_upgrade_392_to_393(db, tmp_path):
    """Package upgrade path with kong.md §3 exit codes: "**5** | new migrations available
    (run `up`)", "**4** | pending migrations (`up` done, `finish` needed)", "0 | up to
    date"; "`up` ... Errors "Database has pending migrations; run 'kong migrations finish'"
    if pending migrations exist"; kong.md §1 "startup fails if the DB ... has *new* (not yet
    run) migrations. *Pending* migrations (after `up`, before `finish`) only log warnings".
    (3.9.3's extra migration is the stand-in's, see migrations.py.)"""
    assert kong("migrations", "bootstrap", env=v("3.9.2", db)).returncode == 0
    assert kong("migrations", "list", env=v("3.9.2", db)).returncode == 0
    new = kong("migrations", "list", env=v("3.9.3", db))
    assert new.returncode == 5, new.stdout + new.stderr
    assert "025_392_to_393_standin" in new.stdout
    state = json.loads(kong("migrations", "status", env=v("3.9.3", db)).stdout)
    assert state["new_migrations"] == [{"subsystem": "core",
                                        "namespace": "kong.db.migrations.core",
                                        "migrations": ["025_392_to_393_standin"]}]
    started, _prefix, _ports, _env = start_node(tmp_path, v("3.9.3", db), "refused")
    assert started.returncode == 1 and "New migrations available" in started.stderr
    up = kong("migrations", "up", env=v("3.9.3", db))
    assert up.returncode == 0, up.stderr
    assert kong("migrations", "list", env=v("3.9.3", db)).returncode == 4
    again = kong("migrations", "up", env=v("3.9.3", db))
    assert again.returncode == 1
    assert "Database has pending migrations; run 'kong migrations finish'" in again.stderr
    started, prefix, ports, _env = start_node(tmp_path, v("3.9.3", db), "pending")
    try:
        assert started.returncode == 0, started.stderr
        status, body, _headers = http("GET", "http://127.0.0.1:%d/" % ports["admin"])
        assert json.loads(body)["version"] == "3.9.3"
        log = open(os.path.join(prefix, "logs", "error.log"), encoding="utf-8").read()
        assert "pending migrations" in log
    finally:
        kong("stop", "-p", prefix)
    fin = kong("migrations", "finish", env=v("3.9.3", db))
    assert fin.returncode == 0, fin.stderr
    assert kong("migrations", "list", env=v("3.9.3", db)).returncode == 0
    assert kong("migrations", "finish", env=v("3.9.3", db)).stdout.strip() == \
        "No pending migrations to finish"


def test_concurrent_bootstrap_is_safe(db):
    """kong.md §3 "Another node holding the lock gives "aborted: another node is performing
    database changes". *DERIVED:* ... the exit code is 0 (the same for `bootstrap` and
    `finish`)": four nodes bootstrapping at once all exit 0 and the schema is bootstrapped
    exactly once."""
    results = []

    def run():
        results.append(kong("migrations", "bootstrap", env=db))

    threads = [threading.Thread(target=run) for _i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert [r.returncode for r in results] == [0, 0, 0, 0], [r.stderr for r in results]
    booted = [r for r in results if "Bootstrapping database" in r.stdout]
    assert len(booted) == 1
    others = [r.stdout.strip() for r in results if r not in booted]
    assert all(o in ("Database already bootstrapped",
                     "aborted: another node is performing database changes") for o in others)
    assert kong("migrations", "list", env=db).returncode == 0


def test_reset(db):
    """kong.md §3 "`reset`: without a tty it requires `--yes` ("not a tty" otherwise,
    exit 1). Exits 1 with "nothing to reset" if already reset"; `bootstrap` "`--force`
    resets first"."""
    assert kong("migrations", "bootstrap", env=db).returncode == 0
    no_tty = kong("migrations", "reset", env=db)
    assert no_tty.returncode == 1 and "not a tty" in no_tty.stderr
    assert kong("migrations", "reset", "--yes", env=db).returncode == 0
    assert kong("migrations", "list", env=db).returncode == 3
    again = kong("migrations", "reset", "--yes", env=db)
    assert again.returncode == 1 and "nothing to reset" in again.stderr
    assert kong("migrations", "bootstrap", env=db).returncode == 0
    forced = kong("migrations", "bootstrap", "--force", env=db)
    assert forced.returncode == 0 and "Bootstrapping database" in forced.stdout


def test_unreachable_database_exit_1(tmp_path):
    """kong.md §3 `migrations list` exit "1 | error, e.g. DB unreachable"."""
    env = {"KONG_DATABASE": "postgres", "KONG_PG_HOST": "127.0.0.1",
           "KONG_PG_PORT": str(free_port()), "KONG_PG_TIMEOUT": "1000"}
    proc = kong("migrations", "list", env=env)
    assert proc.returncode == 1 and "[PostgreSQL error]" in proc.stderr


def test_two_nodes_share_the_database(db, tmp_path):
    """kong.md §2 "`db_update_frequency=5`: in traditional mode other nodes pick up changes
    within about 5 s" (the stand-in has no cache: at once); kong.md §4 unique violation 409
    "code":5; pagination "`?size=`", "`next`"; kong.md §4 "`/status/ready` returns 200"."""
    assert kong("migrations", "bootstrap", env=db).returncode == 0
    one, prefix1, ports1, _env = start_node(tmp_path, db, "n1")
    two, prefix2, ports2, _env = start_node(tmp_path, db, "n2")
    try:
        assert one.returncode == 0 and two.returncode == 0, one.stderr + two.stderr
        a = "http://127.0.0.1:%d" % ports1["admin"]
        b = "http://127.0.0.1:%d" % ports2["admin"]
        for i in range(5):
            status, body, _headers = http("POST", a + "/services",
                                          {"name": "s%d" % i, "url": "http://up%d:80/x" % i,
                                           "tags": ["t%d" % (i % 2)]})
            assert status == 201, body
        status, body, _headers = http("GET", b + "/services/s3")
        assert status == 200 and json.loads(body)["host"] == "up3"
        status, body, _headers = http("POST", b + "/services", {"name": "s1", "host": "x"})
        assert status == 409 and json.loads(body)["code"] == 5
        status, body, _headers = http("GET", b + "/services?size=2")
        page = json.loads(body)
        assert [s["name"] for s in page["data"]] == ["s0", "s1"] and page["next"]
        status, body, _headers = http("GET", b + page["next"])
        assert [s["name"] for s in json.loads(body)["data"]] == ["s2", "s3"]
        status, body, _headers = http("GET", b + "/services?tags=t1")
        assert [s["name"] for s in json.loads(body)["data"]] == ["s1", "s3"]
        status, body, _headers = http("POST", a + "/services/s0/routes", {"paths": ["/r"],
                                                                          "name": "r0"})
        assert status == 201
        status, body, _headers = http("DELETE", b + "/services/s0")
        assert status == 400 and json.loads(body)["code"] == 4
        status, body, _headers = http("GET", "http://127.0.0.1:%d/status/ready" % ports2["status"])
        assert (status, json.loads(body)) == (200, {"message": "ready"})
        status, body, _headers = http("GET", "http://127.0.0.1:%d/status" % ports1["status"])
        assert json.loads(body)["database"] == {"reachable": True}
    finally:
        kong("stop", "-p", prefix1)
        kong("stop", "-p", prefix2)


def test_db_import_export_roundtrip(db, tmp_path):
    """kong.md §3 "`db_import <file>` ... Upserts every entity by primary key in topological
    order, and **never deletes** entities missing from the file"; "IDs of entities without
    `id` are deterministic UUIDv5 ..., so repeated imports are stable"; "`db_export [file]`
    writes `./kong.yml` by default"."""
    assert kong("migrations", "bootstrap", env=db).returncode == 0
    decl = tmp_path / "kong.yml"
    decl.write_text(DECLARATIVE)
    first = kong("config", "db_import", str(decl), env=db)
    assert first.returncode == 0, first.stderr
    (tmp_path / "cwd").mkdir()
    export1 = kong("config", "db_export", env=db, cwd=str(tmp_path / "cwd"))
    assert export1.returncode == 0, export1.stderr
    assert (tmp_path / "cwd" / "kong.yml").exists()
    out1 = tmp_path / "one.yml"
    assert kong("config", "db_export", str(out1), env=db).returncode == 0
    assert kong("config", "db_import", str(decl), env=db).returncode == 0
    out2 = tmp_path / "two.yml"
    assert kong("config", "db_export", str(out2), env=db).returncode == 0
    import yaml   # pylint: disable=import-outside-toplevel
    one, two = yaml.safe_load(out1.read_text()), yaml.safe_load(out2.read_text())
    assert one["_format_version"] == "3.0"
    ids = {k: sorted(e["id"] for e in one[k]) for k in one if not k.startswith("_")}
    assert ids == {k: sorted(e["id"] for e in two[k]) for k in two if not k.startswith("_")}
    assert [s["name"] for s in one["services"]] == ["echo"]
    assert one["keyauth_credentials"][0]["key"] == "alice-key"
    assert {p["name"] for p in one["plugins"]} == {"key-auth", "prometheus"}
    partial = tmp_path / "partial.yml"
    partial.write_text('_format_version: "3.0"\nconsumers:\n  - username: bob\n')
    assert kong("config", "db_import", str(partial), env=db).returncode == 0
    out3 = tmp_path / "three.yml"
    assert kong("config", "db_export", str(out3), env=db).returncode == 0
    three = yaml.safe_load(out3.read_text())
    assert sorted(c["username"] for c in three["consumers"]) == ["alice", "bob"]
    assert [s["name"] for s in three["services"]] == ["echo"]


def test_database_down_not_ready(cluster, db, tmp_path):
    """kong.md §4 "`/status/ready` ... 503 `{"message":<reason>}` ... Reasons: "failed to
    connect to database""; kong.md §5 `kong_datastore_reachable`."""
    assert kong("migrations", "bootstrap", env=db).returncode == 0
    started, prefix, ports, _env = start_node(tmp_path, db)
    assert started.returncode == 0, started.stderr
    try:
        url = "http://127.0.0.1:%d" % ports["status"]
        assert http("GET", url + "/status/ready")[0] == 200
        cluster.stop()
        try:
            status, body, _headers = http("GET", url + "/status/ready")
            assert (status, json.loads(body)) == (503, {"message":
                                                        "failed to connect to database"})
            assert "kong_datastore_reachable 0" in http("GET", url + "/metrics")[1]
        finally:
            cluster.start()
        assert wait_for(lambda: http("GET", url + "/status/ready")[0] == 200, 15)
    finally:
        kong("stop", "-p", prefix)


def test_oauth2_token_from_one_node_works_on_the_other(db, tmp_path):
    """Kong keeps oauth2 tokens in its database (kong/plugins/oauth2/access.lua `generate_token`:
    `kong.db.oauth2_tokens:insert`), so a token one node issued is accepted by every node of the
    cluster; the stand-in keeps them in the shared store too."""
    assert kong("migrations", "bootstrap", env=db).returncode == 0
    backend = Echo()
    one, prefix1, ports1, _env = start_node(tmp_path, db, "n1")
    two, prefix2, ports2, _env = start_node(tmp_path, db, "n2")
    try:
        assert one.returncode == 0 and two.returncode == 0, one.stderr + two.stderr
        admin = "http://127.0.0.1:%d" % ports1["admin"]
        for method, path, body in (
                ("POST", "/services", {"name": "app", "url": backend.url}),
                ("POST", "/services/app/routes", {"name": "app", "paths": ["/app"]}),
                ("POST", "/services/app/plugins", {"name": "oauth2", "config": {
                    "enable_client_credentials": True, "accept_http_if_already_terminated": True}}),
                ("POST", "/consumers", {"username": "partner"}),
                ("POST", "/consumers/partner/oauth2",
                 {"name": "partner", "client_id": "partner-app", "client_secret": "partner-secret"})):
            status, answer, _headers = http(method, admin + path, body)
            assert status == 201, answer
        status, answer, _headers = request(
            "POST", "http://127.0.0.1:%d/app/oauth2/token" % ports1["proxy"],
            {"Content-Type": "application/x-www-form-urlencoded", "X-Forwarded-Proto": "https"},
            "grant_type=client_credentials&client_id=partner-app&client_secret=partner-secret")
        assert status == 200, answer
        bearer = {"Authorization": "Bearer " + answer["access_token"]}
        status, answer, _headers = request("GET", "http://127.0.0.1:%d/app/x" % ports2["proxy"], bearer)
        assert status == 200 and answer["headers"]["X-Consumer-Username"] == "partner"
    finally:
        kong("stop", "-p", prefix1)
        kong("stop", "-p", prefix2)
        backend.close()
