"""PostgreSQL ``Store`` of the kuma-cp runtime stand-in (test double, NOT Kuma).

kuma.md §2 "Postgres and migrations": "The DB schema must be migrated before `kuma-cp run`; otherwise startup
fails with: `database is not migrated. Run "kuma-cp migrate up" to update database to the newest schema`";
"Migration state is stored in table `schema_migration`"; `migrate up` prints "DB has been migrated for Kuma
<ver>" / "DB has already been migrated for Kuma <ver>".

Stand-in schema: ``schema_migration(version bigint, dirty boolean)`` (golang-migrate's layout; Kuma's exact
columns UNCONFIRMED) and one table ``standin_resources(type, mesh, name, data jsonb)``.  Each stand-in version
knows the migrations introduced up to it (``MIGRATIONS``), so a newer stand-in's ``migrate up`` really migrates
a database an older one created.  Resources keep the exact dict form MemoryStore keeps.
"""

import json
import threading
from contextlib import contextmanager

import psycopg2

from store import AlreadyExists, NotFound, Store

WRITE_LOCK = 0x6B756D61  # "kuma"

# (schema version, first stand-in Kuma version that knows it, statements)
MIGRATIONS = [
    (1, (2, 14, 0), [
        "CREATE TABLE IF NOT EXISTS standin_resources (type text NOT NULL, mesh text NOT NULL, "
        "name text NOT NULL, data jsonb NOT NULL, PRIMARY KEY (type, mesh, name))",
    ]),
    (2, (2, 14, 3), [
        "ALTER TABLE standin_resources ADD COLUMN IF NOT EXISTS updated_at timestamptz NOT NULL DEFAULT now()",
    ]),
]


class MigrationError(Exception):
    """The database is not usable by this version (message is what kuma-cp prints)."""


def version_tuple(version):
    out = []
    for part in str(version).split("-", maxsplit=1)[0].split("."):
        out.append(int(part) if part.isdigit() else 0)
    return tuple((out + [0, 0, 0])[:3])


def known_migrations(kuma_version):
    return [m for m in MIGRATIONS if m[1] <= version_tuple(kuma_version)]


def target_version(kuma_version):
    known = known_migrations(kuma_version)
    return known[-1][0] if known else 0


def connect(pg):
    """psycopg2 connection from ``store.postgres`` (kuma.md §2 "Key config"); tls.mode disable|verifyNone|
    verifyCa|verifyFull mapped to libpq sslmode disable|require|verify-ca|verify-full."""
    sslmode = {"disable": "disable", "verifyNone": "require", "verifyCa": "verify-ca",
               "verifyFull": "verify-full"}[pg["tls"]["mode"]]
    kwargs = {"host": pg["host"], "port": int(pg["port"]), "user": pg["user"], "dbname": pg["dbName"],
              "password": pg["password"], "sslmode": sslmode, "connect_timeout": 5,
              "application_name": "kuma-cp-standin"}
    for key, libpq in (("caPath", "sslrootcert"), ("certPath", "sslcert"), ("keyPath", "sslkey")):
        if pg["tls"].get(key):
            kwargs[libpq] = pg["tls"][key]
    conn = psycopg2.connect(**kwargs)
    conn.autocommit = True
    return conn


def current_version(conn):
    with conn.cursor() as cur:
        cur.execute("SELECT to_regclass('schema_migration')")
        if cur.fetchone()[0] is None:
            return 0
        cur.execute("SELECT version, dirty FROM schema_migration LIMIT 1")
        row = cur.fetchone()
    return row[0] if row else 0


def migrate_up(conn, kuma_version):
    """Apply the known migrations not yet applied; returns True when something changed."""
    target = target_version(kuma_version)
    with conn.cursor() as cur:
        cur.execute("SELECT pg_advisory_lock(%s)", (WRITE_LOCK,))
        try:
            cur.execute("CREATE TABLE IF NOT EXISTS schema_migration (version bigint NOT NULL PRIMARY KEY, "
                        "dirty boolean NOT NULL)")
            current = current_version(conn)
            if current >= target:
                return False
            conn.autocommit = False
            try:
                for number, _since, statements in known_migrations(kuma_version):
                    if number <= current:
                        continue
                    for statement in statements:
                        cur.execute(statement)
                cur.execute("DELETE FROM schema_migration")
                cur.execute("INSERT INTO schema_migration (version, dirty) VALUES (%s, false)", (target,))
                conn.commit()
            except Exception:
                conn.rollback()
                raise
            finally:
                conn.autocommit = True
            return True
        finally:
            cur.execute("SELECT pg_advisory_unlock(%s)", (WRITE_LOCK,))


def check_migrated(conn, kuma_version, tolerate_newer=False):
    """kuma.md §2 `run` refuses an unmigrated DB; a DB newer than this CP is refused unless
    `store.postgres.tolerateNewerDBVersions` (kuma.md §2, 2.14 only; that refusal's text is UNCONFIRMED)."""
    current, target = current_version(conn), target_version(kuma_version)
    if current < target:
        raise MigrationError('database is not migrated. Run "kuma-cp migrate up" to update database to the '
                             'newest schema')
    if current > target and not tolerate_newer:
        raise MigrationError("DB is migrated to newer version than Kuma DB version %d. Upgrade the control plane "
                             "or set KUMA_STORE_POSTGRES_TOLERATE_NEWER_DB_VERSIONS=true" % target)


class PgStore(Store):
    """The Store interface on ``standin_resources``; one connection per CP process, serialised by a lock;
    compound sequences hold a transaction-scoped advisory lock so several CPs can share the database."""

    def __init__(self, conn):
        self.conn = conn
        self.lock = threading.RLock()
        self._depth = 0

    def _run(self, sql, params=(), fetch=None):
        with self.lock:
            with self.conn.cursor() as cur:
                cur.execute(sql, params)
                if fetch == "one":
                    return cur.fetchone()
                if fetch == "all":
                    return cur.fetchall()
                return cur.rowcount

    @contextmanager
    def transaction(self):
        with self.lock:
            outer = self._depth == 0
            if outer:
                self.conn.autocommit = False
                self._run("SELECT pg_advisory_xact_lock(%s)", (WRITE_LOCK,))
            self._depth += 1
            try:
                yield self
            except BaseException:
                self._depth -= 1
                if outer:
                    self.conn.rollback()
                    self.conn.autocommit = True
                raise
            self._depth -= 1
            if outer:
                self.conn.commit()
                self.conn.autocommit = True

    def get(self, rtype, mesh, name):
        row = self._run("SELECT data FROM standin_resources WHERE type=%s AND mesh=%s AND name=%s",
                        (rtype, mesh or "", name), fetch="one")
        if row is None:
            raise NotFound("%s %s/%s" % (rtype, mesh, name))
        return row[0]

    def create(self, resource):
        key = (resource["type"], resource.get("mesh", ""), resource["name"])
        with self.transaction():
            if self._run("SELECT 1 FROM standin_resources WHERE type=%s AND mesh=%s AND name=%s", key, fetch="one"):
                raise AlreadyExists("%s %s/%s" % key)
            self._run("INSERT INTO standin_resources (type, mesh, name, data) VALUES (%s, %s, %s, %s)",
                      key + (json.dumps(resource),))

    def update(self, resource):
        key = (resource["type"], resource.get("mesh", ""), resource["name"])
        count = self._run("UPDATE standin_resources SET data=%s WHERE type=%s AND mesh=%s AND name=%s",
                          (json.dumps(resource),) + key)
        if not count:
            raise NotFound("%s %s/%s" % key)

    def delete(self, rtype, mesh, name):
        if not self._run("DELETE FROM standin_resources WHERE type=%s AND mesh=%s AND name=%s",
                         (rtype, mesh or "", name)):
            raise NotFound("%s %s/%s" % (rtype, mesh, name))

    def list(self, rtype, mesh=None):
        if mesh is None:
            rows = self._run("SELECT data FROM standin_resources WHERE type=%s ORDER BY mesh, name", (rtype,), "all")
        else:
            rows = self._run("SELECT data FROM standin_resources WHERE type=%s AND mesh=%s ORDER BY name",
                             (rtype, mesh), "all")
        return [row[0] for row in rows]

    def delete_mesh_scoped(self, mesh):
        self._run("DELETE FROM standin_resources WHERE mesh=%s", (mesh,))

    def reset(self):
        self._run("DELETE FROM standin_resources")
