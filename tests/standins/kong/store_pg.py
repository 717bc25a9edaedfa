"""PostgreSQL-backed ``Store`` for the Kong 3.9 stand-in (test double, NOT Kong).

Implements the ``store.Store`` interface on one table
``standin_entities(seq, kind, id, data jsonb)`` created by the stand-in
``000_base`` migration (migrations.py), so a node started before
``kong migrations bootstrap`` fails like Kong does (kong.md §1 "startup fails
if the DB needs bootstrap or has *new* (not yet run) migrations").

Entities keep the exact dict form MemoryStore keeps (explicit nulls, foreign
keys as ``{"id": ...}``), so api.py behaves identically on both stores.
Several nodes may share the database: compound write sequences run in a
transaction that holds ``pg_advisory_xact_lock`` (serialised cluster-wide),
and every read goes to the database (no cache; Kong's ``db_update_frequency``
propagation delay, kong.md §2 "other nodes pick up changes within about 5 s",
is therefore zero here).
"""

import json
import threading
from contextlib import contextmanager

import psycopg2

from store import MemoryStore, Store, UniqueViolation

WRITE_LOCK = 0x6B6F6E68


def connect(conf):
    """psycopg2 connection from kong.conf ``pg_*`` keys (kong.md §2 "Datastore")."""
    kwargs = {
        "host": conf.get("pg_host") or "127.0.0.1",
        "port": int(conf.get("pg_port") or 5432),
        "user": conf.get("pg_user") or "kong",
        "dbname": conf.get("pg_database") or "kong",
        "connect_timeout": max(1, int(int(conf.get("pg_timeout") or 5000) / 1000)),
        "application_name": "kong-standin",
    }
    if conf.get("pg_password"):
        kwargs["password"] = conf["pg_password"]
    if str(conf.get("pg_ssl", "off")).lower() in ("on", "true"):
        # kong.md §2 "`pg_ssl=off`. It is only a hint: if the server has no TLS,
        # the connection is plain."
        kwargs["sslmode"] = "prefer"
    else:
        kwargs["sslmode"] = "disable"
    conn = psycopg2.connect(**kwargs)
    conn.autocommit = True
    if conf.get("pg_schema"):
        with conn.cursor() as cur:
            cur.execute("SET search_path TO %s" % psycopg2.extensions.quote_ident(
                conf["pg_schema"], conn))
    return conn


def _cond(field, value):
    """SQL condition + params matching MemoryStore's _index_value semantics."""
    if isinstance(value, dict):
        return "data->%s->>'id' = %s", [field, value.get("id")]
    if value is None:
        return "coalesce(data->%s, 'null'::jsonb) = 'null'::jsonb", [field]
    return "data->%s = %s::jsonb", [field, json.dumps(value)]


class PgStore(Store):
    def __init__(self, conf=None, conn=None):
        self.conf = conf or {}
        self.lock = threading.RLock()
        self._config = {}
        self._depth = 0
        self.conn = conn or connect(self.conf)

    # ---------------------------------------------------------------- infra
    def _execute(self, sql, params=(), fetch="all"):
        with self.lock:
            try:
                with self.conn.cursor() as cur:
                    cur.execute(sql, params)
                    if fetch == "all":
                        return cur.fetchall()
                    if fetch == "one":
                        return cur.fetchone()
                    return cur.rowcount
            except (psycopg2.OperationalError, psycopg2.InterfaceError):
                if self._depth == 0 and self.conn.closed:
                    self.conn = connect(self.conf)
                raise

    def ping(self):
        """True when the database answers (kong.md §4 Status API reason
        "failed to connect to database")."""
        try:
            with self.lock:
                if self.conn.closed:
                    self.conn = connect(self.conf)
                self._execute("SELECT 1", fetch="one")
            return True
        except psycopg2.Error:
            return False

    def configure(self, kind, unique=(), foreign=()):
        self._config[kind] = {"unique": [tuple(u) for u in unique], "foreign": list(foreign)}

    @contextmanager
    def transaction(self):
        with self.lock:
            if self._depth == 0:
                self._execute("BEGIN", fetch=None)
                self._execute("SELECT pg_advisory_xact_lock(%s)", (WRITE_LOCK,), fetch="one")
            self._depth += 1
            ok = False
            try:
                yield self
                ok = True
            finally:
                self._depth -= 1
                if self._depth == 0:
                    self._execute("COMMIT" if ok else "ROLLBACK", fetch=None)

    def reset(self):
        self._execute("DELETE FROM standin_entities", fetch=None)

    # ---------------------------------------------------------------- helpers
    def _check_unique(self, kind, entity, skip_id=None):
        for fields in self._config.get(kind, {}).get("unique", ()):
            values = [entity.get(f) for f in fields]
            if len(fields) == 1 and values[0] is None:
                continue
            found = self._find_id(kind, fields, values)
            if found is not None and found != skip_id:
                raise UniqueViolation(kind, fields, found)

    def _find_id(self, kind, fields, values):
        conds, params = ["kind = %s"], [kind]
        for field, value in zip(fields, values):
            cond, cparams = _cond(field, value)
            conds.append(cond)
            params.extend(cparams)
        row = self._execute("SELECT id FROM standin_entities WHERE %s ORDER BY seq LIMIT 1"
                            % " AND ".join(conds), params, fetch="one")
        return row[0] if row else None

    # ---------------------------------------------------------------- CRUD
    def insert(self, kind, entity):
        with self.transaction():
            if self.get(kind, entity["id"]) is not None:
                raise UniqueViolation(kind, ("id",), entity["id"])
            self._check_unique(kind, entity)
            self._execute("INSERT INTO standin_entities (kind, id, data) VALUES (%s, %s, %s)",
                          (kind, entity["id"], json.dumps(entity)), fetch=None)
        return json.loads(json.dumps(entity))

    def get(self, kind, entity_id):
        if entity_id is None:
            return None
        row = self._execute("SELECT data FROM standin_entities WHERE kind = %s AND id = %s",
                            (kind, str(entity_id)), fetch="one")
        return row[0] if row else None

    def update(self, kind, entity_id, entity):
        entity = dict(entity)
        entity["id"] = entity_id
        with self.transaction():
            self._check_unique(kind, entity, skip_id=entity_id)
            self._execute("UPDATE standin_entities SET data = %s WHERE kind = %s AND id = %s",
                          (json.dumps(entity), kind, entity_id), fetch=None)
        return json.loads(json.dumps(entity))

    def delete(self, kind, entity_id):
        return self._execute("DELETE FROM standin_entities WHERE kind = %s AND id = %s",
                             (kind, entity_id), fetch=None) > 0

    def find_by_unique(self, kind, fields, values):
        if isinstance(fields, str):
            fields, values = (fields,), (values,)
        found = self._find_id(kind, fields, values)
        return self.get(kind, found) if found is not None else None

    def referencing(self, kind, field, ref_id):
        rows = self._execute("SELECT id FROM standin_entities WHERE kind = %s AND "
                             "data->%s->>'id' = %s ORDER BY seq", (kind, field, ref_id))
        return [r[0] for r in rows]

    def iter_all(self, kind):
        rows = self._execute("SELECT data FROM standin_entities WHERE kind = %s ORDER BY seq",
                             (kind,))
        return [r[0] for r in rows]

    def count(self, kind):
        return self._execute("SELECT count(*) FROM standin_entities WHERE kind = %s",
                             (kind,), fetch="one")[0]

    # ---------------------------------------------------------------- paging
    encode_offset = staticmethod(MemoryStore.encode_offset)
    decode_offset = staticmethod(MemoryStore.decode_offset)

    def list(self, kind, tags=None, tags_mode="and", foreign=None,
             offset=None, size=100, predicate=None):
        start_seq = self.decode_offset(offset) if offset else 0
        conds, params = ["kind = %s", "seq >= %s"], [kind, start_seq]
        if foreign is not None:
            conds.append("data->%s->>'id' = %s")
            params.extend(foreign)
        if tags:
            # kong.md §4 "Pagination and tags": `,` = AND, `/` = OR
            conds.append("data->'tags' %s %%s" % ("?|" if tags_mode == "or" else "?&"))
            params.append(list(tags))
        sql = ("SELECT seq, data FROM standin_entities WHERE %s ORDER BY seq LIMIT %%s"
               % " AND ".join(conds))
        out, next_token = [], None
        batch = size + 1
        while True:
            rows = self._execute(sql, params + [batch])
            for seq, data in rows:
                if predicate is not None and not predicate(data):
                    continue
                if len(out) == size:
                    return out, self.encode_offset(seq)
                out.append(data)
            if len(rows) < batch:
                return out, next_token
            params[1] = rows[-1][0] + 1
            batch = max(batch, 500)
