"""Schema migrations of the Kong 3.9 stand-in package (test double, NOT Kong).

The *state model* is Kong's (kong.md §3 "Migrations"): a ``schema_meta`` table
with, per subsystem, ``executed`` and ``pending`` migration names; migrations
known to the code but in neither list are *new*.  ``up`` runs phase 1 of new
migrations (those with a teardown become *pending*), ``finish`` runs the
teardowns, ``bootstrap`` runs both on a fresh database.

STAND-IN ONLY (not Kong): the migration *names* of the 3.9.2 list are from
memory of kong/db/migrations/core/init.lua (UNCONFIRMED), and 3.9.3 adds
``025_392_to_393_standin`` (with a teardown) so that a package upgrade
3.9.2 -> 3.9.3 can be exercised: real 3.9.3 is an nginx CVE patch release
(kong.md §0 "3.9.2 and 3.9.3 are nginx CVE patch releases") with no new migration.

Concurrency: every write runs under a PostgreSQL session advisory lock
(kong.md §3 "Another node holding the lock gives "aborted: another node is
performing database changes"").  Kong itself uses its ``locks`` table
(cluster_mutex); the advisory lock is the stand-in's equivalent.
"""

import contextlib
import json
import time

LOCK_KEY = 0x6B6F6E67          # "kong"
STANDIN_UPGRADE = "025_392_to_393_standin"

BASE_TABLE_SQL = """
CREATE TABLE IF NOT EXISTS standin_entities (
    seq   BIGSERIAL UNIQUE,
    kind  TEXT NOT NULL,
    id    TEXT NOT NULL,
    data  JSONB NOT NULL,
    PRIMARY KEY (kind, id)
);
CREATE INDEX IF NOT EXISTS standin_entities_kind_seq ON standin_entities (kind, seq);
"""

# kong/db/migrations/core/init.lua (3.9.x) names, UNCONFIRMED (from memory)
CORE_392 = [
    "000_base", "003_100_to_110", "004_110_to_120", "005_120_to_130", "006_130_to_140",
    "007_140_to_150", "008_150_to_200", "009_200_to_210", "010_210_to_211",
    "011_212_to_213", "012_213_to_220", "013_220_to_230", "014_230_to_260",
    "015_260_to_270", "016_270_to_280", "017_300_to_310", "018_310_to_320",
    "019_320_to_330", "020_330_to_340", "021_340_to_350", "022_350_to_360",
    "023_360_to_370", "024_380_to_390",
]
# plugin subsystems with their own migrations (a representative subset)
PLUGIN_392 = {
    "acl": ["000_base_acl", "002_130_to_140", "003_200_to_210", "004_212_to_213"],
    "key-auth": ["000_base_key_auth", "002_130_to_140", "003_200_to_210", "004_320_to_330"],
    "rate-limiting": ["000_base_rate_limiting", "003_10_to_112", "004_200_to_210",
                      "005_320_to_330", "006_350_to_360"],
}


def version_tuple(version):
    parts = []
    for piece in str(version).split("."):
        digits = "".join(ch for ch in piece if ch.isdigit())
        parts.append(int(digits or 0))
    return tuple(parts)


class Migration:
    def __init__(self, name, up=None, teardown=None):
        self.name = name
        self.up = up                # SQL or None
        self.teardown = teardown    # SQL or None -> executed right after up


def known(kong_version):
    """[(subsystem, [Migration])] that this package version ships."""
    core = [Migration(n, up=BASE_TABLE_SQL if n == "000_base" else None) for n in CORE_392]
    if version_tuple(kong_version) >= (3, 9, 3):
        core.append(Migration(
            STANDIN_UPGRADE,
            up="CREATE TABLE IF NOT EXISTS standin_upgrade_393 (note TEXT);",
            teardown="INSERT INTO standin_upgrade_393 (note) VALUES ('finished');"))
    out = [("core", core)]
    for sub, names in PLUGIN_392.items():
        out.append((sub, [Migration(n) for n in names]))
    return out


class MigrationError(Exception):
    pass


class Migrator:
    """Runs on a psycopg2 connection in autocommit mode."""

    def __init__(self, conn, kong_version, database="kong", out=print):
        self.conn = conn
        self.kong_version = kong_version
        self.database = database
        self.out = out

    # ------------------------------------------------------------ state
    @contextlib.contextmanager
    def _transaction(self):
        """One transaction for a migration run: all of it, or nothing."""
        with self._cur() as cur:
            cur.execute("BEGIN")
            try:
                yield cur
                cur.execute("COMMIT")
            except Exception:
                cur.execute("ROLLBACK")
                raise

    def _cur(self):
        return self.conn.cursor()

    def has_meta(self):
        with self._cur() as cur:
            cur.execute("SELECT to_regclass('schema_meta') IS NOT NULL")
            return cur.fetchone()[0]

    def _rows(self):
        with self._cur() as cur:
            cur.execute("SELECT subsystem, executed, pending FROM schema_meta "
                        "WHERE key = 'schema_meta'")
            return {sub: (list(ex or []), list(pe or [])) for sub, ex, pe in cur.fetchall()}

    def state(self):
        """kong.md §3 "`status`: JSON dump of the schema state with keys
        `needs_bootstrap` (bool) and `executed_migrations`, `pending_migrations`,
        `new_migrations`, `missing_migrations`"."""
        if not self.has_meta():
            return {"needs_bootstrap": True}
        rows = self._rows()
        if not rows:
            return {"needs_bootstrap": True}
        executed, pending, new, missing = [], [], [], []
        known_names = {}
        for sub, migs in known(self.kong_version):
            names = [m.name for m in migs]
            known_names[sub] = names
            ex, pe = rows.get(sub, ([], []))
            for bucket, values in ((executed, [n for n in names if n in ex]),
                                   (pending, [n for n in names if n in pe]),
                                   (new, [n for n in names if n not in ex and n not in pe])):
                if values:
                    bucket.append({"subsystem": sub, "namespace": "kong.db.migrations.%s" % sub
                                   if sub == "core" else "kong.plugins.%s.migrations" % sub,
                                   "migrations": values})
        for sub, (ex, pe) in rows.items():
            gone = [n for n in ex + pe if n not in known_names.get(sub, [])]
            if gone:
                missing.append({"subsystem": sub, "migrations": gone})
        state = {"needs_bootstrap": False}
        for key, value in (("executed_migrations", executed), ("pending_migrations", pending),
                           ("new_migrations", new), ("missing_migrations", missing)):
            if value:
                state[key] = value
        return state

    # ------------------------------------------------------------ locking
    def locked(self, lock_timeout=60):
        """Context manager-ish: returns True if we got the lock, False if another
        node held it (we then wait for it to be released, as Kong's cluster mutex
        does, up to ``lock_timeout`` seconds)."""
        with self._cur() as cur:
            cur.execute("SELECT pg_try_advisory_lock(%s)", (LOCK_KEY,))
            if cur.fetchone()[0]:
                return True
            deadline = time.time() + float(lock_timeout)
            while time.time() < deadline:
                time.sleep(0.1)
                cur.execute("SELECT pg_try_advisory_lock(%s)", (LOCK_KEY,))
                if cur.fetchone()[0]:
                    cur.execute("SELECT pg_advisory_unlock(%s)", (LOCK_KEY,))
                    break
            return False

    def unlock(self):
        with self._cur() as cur:
            cur.execute("SELECT pg_advisory_unlock(%s)", (LOCK_KEY,))

    # ------------------------------------------------------------ writes
    def _save(self, cur, sub, executed, pending):
        cur.execute(
            "INSERT INTO schema_meta (key, subsystem, last_executed, executed, pending) "
            "VALUES ('schema_meta', %s, %s, %s, %s) ON CONFLICT (key, subsystem) DO UPDATE "
            "SET last_executed = EXCLUDED.last_executed, executed = EXCLUDED.executed, "
            "pending = EXCLUDED.pending",
            (sub, (executed or [None])[-1], executed, pending))

    def _ensure_meta(self, cur):
        # Kong's schema_meta columns (UNCONFIRMED: from memory of kong/db/strategies/postgres)
        cur.execute("CREATE TABLE IF NOT EXISTS schema_meta (key TEXT, subsystem TEXT, "
                    "last_executed TEXT, executed TEXT[], pending TEXT[], "
                    "PRIMARY KEY (key, subsystem))")

    def run_up(self, with_teardown):
        """Run new migrations; returns the number executed."""
        count = 0
        rows = self._rows() if self.has_meta() else {}
        with self._transaction() as cur:
            self._ensure_meta(cur)
            for sub, migs in known(self.kong_version):
                ex, pe = rows.get(sub, ([], []))
                todo = [m for m in migs if m.name not in ex and m.name not in pe]
                if not todo:
                    continue
                self.out("migrating %s on database '%s'..." % (sub, self.database))
                for mig in todo:
                    if mig.up:
                        cur.execute(mig.up)
                    if mig.teardown and not with_teardown:
                        pe.append(mig.name)
                        self.out("%s migrated up to: %s (pending)" % (sub, mig.name))
                    else:
                        if mig.teardown:
                            cur.execute(mig.teardown)
                        ex.append(mig.name)
                        self.out("%s migrated up to: %s (executed)" % (sub, mig.name))
                    count += 1
                self._save(cur, sub, ex, pe)
        return count

    def run_finish(self):
        count = 0
        rows = self._rows()
        with self._transaction() as cur:
            for sub, migs in known(self.kong_version):
                ex, pe = rows.get(sub, ([], []))
                todo = [m for m in migs if m.name in pe]
                if not todo:
                    continue
                self.out("migrating %s on database '%s'..." % (sub, self.database))
                for mig in todo:
                    if mig.teardown:
                        cur.execute(mig.teardown)
                    pe.remove(mig.name)
                    ex.append(mig.name)
                    self.out("%s migrated up to: %s (executed)" % (sub, mig.name))
                    count += 1
                self._save(cur, sub, ex, pe)
        return count

    def reset(self):
        """Drop everything the stand-in created (Kong drops the schema)."""
        with self._cur() as cur:
            cur.execute("DROP TABLE IF EXISTS schema_meta, standin_entities, "
                        "standin_upgrade_393 CASCADE")


def state_json(state):
    return json.dumps(state, indent=2)
