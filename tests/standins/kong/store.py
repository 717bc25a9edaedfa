"""Storage layer for the Kong Admin API stand-in.

Only this module knows how entities are kept.  The HTTP layer (api.py) talks
to a ``Store`` through the small interface below, so a later PostgreSQL-backed
store can replace ``MemoryStore`` without touching request handling.

Entities are plain dicts in their *output* form (explicit nulls, foreign keys as
``{"id": ...}``).  Each kind has:

* an insertion-ordered primary map (id -> entity) plus a sequence list used for
  O(log n + page) offset lookups (kong.md §4 "`?offset=` is an opaque token");
* unique indexes (single field or composite) -> id;
* foreign indexes (field, referenced id) -> ordered set of ids, used for nested
  collections, cascades and restrict checks.
"""

import base64
import binascii
import bisect
import copy
import json
import threading
from contextlib import contextmanager


class StoreError(Exception):
    """Base class for store errors."""


class UniqueViolation(StoreError):
    """A unique constraint (single or composite) would be violated."""

    def __init__(self, kind, fields, existing_id):
        super().__init__("unique violation on %s %s" % (kind, fields))
        self.kind = kind
        self.fields = fields
        self.existing_id = existing_id


class InvalidOffset(StoreError):
    """The opaque offset token could not be decoded."""


def _ref_id(value):
    """Foreign values are stored as {"id": ...}; indexes use the bare id."""
    if isinstance(value, dict):
        return value.get("id")
    return value


def _index_value(value):
    if isinstance(value, dict):
        return ("@id", value.get("id"))
    if isinstance(value, list):
        return tuple(value)
    return value


class Store:
    """Abstract storage interface.

    ``configure`` receives, per kind, the unique constraints (tuples of field
    names) and the foreign-key fields, so that implementations can index them.
    """

    def configure(self, kind, unique=(), foreign=()):
        raise NotImplementedError

    @contextmanager
    def transaction(self):
        """Serialise a compound read-check-write sequence."""
        raise NotImplementedError
        yield  # pragma: no cover  # pylint: disable=unreachable

    def insert(self, kind, entity):
        raise NotImplementedError

    def get(self, kind, entity_id):
        raise NotImplementedError

    def update(self, kind, entity_id, entity):
        raise NotImplementedError

    def delete(self, kind, entity_id):
        raise NotImplementedError

    def find_by_unique(self, kind, fields, values):
        raise NotImplementedError

    def referencing(self, kind, field, ref_id):
        raise NotImplementedError

    def list(self, kind, tags=None, tags_mode="and", foreign=None,
             offset=None, size=100, predicate=None):
        raise NotImplementedError

    def iter_all(self, kind):
        raise NotImplementedError

    def count(self, kind):
        raise NotImplementedError

    def reset(self):
        raise NotImplementedError


class MemoryStore(Store):
    """Thread-safe in-memory store (one re-entrant lock)."""

    def __init__(self):
        self.lock = threading.RLock()
        self._config = {}
        self.reset()

    # -- configuration ----------------------------------------------------
    def configure(self, kind, unique=(), foreign=()):
        with self.lock:
            self._config[kind] = {
                "unique": [tuple(u) for u in unique],
                "foreign": list(foreign),
            }
            self._init_kind(kind)

    def _init_kind(self, kind):
        cfg = self._config[kind]
        self._data[kind] = {}
        self._seqs[kind] = []
        self._ids[kind] = []
        self._pos[kind] = {}
        self._dead[kind] = 0
        self._uniq[kind] = {u: {} for u in cfg["unique"]}
        self._fidx[kind] = {f: {} for f in cfg["foreign"]}

    def reset(self):
        with self.lock:
            self._data = {}
            self._seqs = {}
            self._ids = {}
            self._pos = {}
            self._dead = {}
            self._uniq = {}
            self._fidx = {}
            self._next_seq = 1
            for kind in self._config:
                self._init_kind(kind)

    @contextmanager
    def transaction(self):
        with self.lock:
            yield self

    # -- helpers ------------------------------------------------------------
    @staticmethod
    def _ukey(entity, fields):
        return tuple(_index_value(entity.get(f)) for f in fields)

    def _check_unique(self, kind, entity, skip_id=None):
        for fields, index in self._uniq[kind].items():
            key = self._ukey(entity, fields)
            if len(fields) == 1 and key[0] is None:
                continue
            other = index.get(key)
            if other is not None and other != skip_id:
                raise UniqueViolation(kind, fields, other)

    def _index(self, kind, entity):
        eid = entity["id"]
        for fields, index in self._uniq[kind].items():
            key = self._ukey(entity, fields)
            if len(fields) == 1 and key[0] is None:
                continue
            index[key] = eid
        for field, index in self._fidx[kind].items():
            ref = _ref_id(entity.get(field))
            if ref is not None:
                index.setdefault(ref, {})[eid] = None

    def _unindex(self, kind, entity):
        eid = entity["id"]
        for fields, index in self._uniq[kind].items():
            key = self._ukey(entity, fields)
            if index.get(key) == eid:
                del index[key]
        for field, index in self._fidx[kind].items():
            ref = _ref_id(entity.get(field))
            if ref is not None and ref in index:
                index[ref].pop(eid, None)
                if not index[ref]:
                    del index[ref]

    # -- CRUD ------------------------------------------------------------------
    def insert(self, kind, entity):
        with self.lock:
            if entity["id"] in self._data[kind]:
                raise UniqueViolation(kind, ("id",), entity["id"])
            self._check_unique(kind, entity)
            entity = copy.deepcopy(entity)
            self._data[kind][entity["id"]] = entity
            seq = self._next_seq
            self._next_seq += 1
            self._pos[kind][entity["id"]] = len(self._ids[kind])
            self._seqs[kind].append(seq)
            self._ids[kind].append(entity["id"])
            self._index(kind, entity)
            return copy.deepcopy(entity)

    def get(self, kind, entity_id):
        with self.lock:
            entity = self._data[kind].get(entity_id)
            return copy.deepcopy(entity) if entity is not None else None

    def update(self, kind, entity_id, entity):
        with self.lock:
            old = self._data[kind][entity_id]
            self._check_unique(kind, entity, skip_id=entity_id)
            self._unindex(kind, old)
            entity = copy.deepcopy(entity)
            entity["id"] = entity_id
            self._data[kind][entity_id] = entity
            self._index(kind, entity)
            return copy.deepcopy(entity)

    def delete(self, kind, entity_id):
        with self.lock:
            entity = self._data[kind].pop(entity_id, None)
            if entity is None:
                return False
            self._unindex(kind, entity)
            pos = self._pos[kind].pop(entity_id)
            self._ids[kind][pos] = None
            self._dead[kind] += 1
            if self._dead[kind] > 64 and self._dead[kind] * 2 > len(self._ids[kind]):
                self._compact(kind)
            return True

    def _compact(self, kind):
        seqs, ids = [], []
        for seq, eid in zip(self._seqs[kind], self._ids[kind]):
            if eid is not None:
                seqs.append(seq)
                ids.append(eid)
        self._seqs[kind] = seqs
        self._ids[kind] = ids
        self._pos[kind] = {eid: i for i, eid in enumerate(ids)}
        self._dead[kind] = 0

    def find_by_unique(self, kind, fields, values):
        if isinstance(fields, str):
            fields, values = (fields,), (values,)
        with self.lock:
            key = tuple(_index_value(v) for v in values)
            eid = self._uniq[kind].get(tuple(fields), {}).get(key)
            return self.get(kind, eid) if eid is not None else None

    def referencing(self, kind, field, ref_id):
        with self.lock:
            return list(self._fidx[kind].get(field, {}).get(ref_id, {}))

    def iter_all(self, kind):
        with self.lock:
            return [copy.deepcopy(e) for e in self._data[kind].values()]

    def count(self, kind):
        with self.lock:
            return len(self._data[kind])

    # -- paging ----------------------------------------------------------------
    @staticmethod
    def encode_offset(seq):
        raw = json.dumps([seq]).encode()
        return base64.urlsafe_b64encode(raw).decode().rstrip("=")

    @staticmethod
    def decode_offset(token):
        try:
            padded = token + "=" * (-len(token) % 4)
            value = json.loads(base64.urlsafe_b64decode(padded.encode()))
            seq = value[0]
            if not isinstance(seq, int):
                raise ValueError("bad offset")
            return seq
        except (ValueError, TypeError, IndexError, KeyError,
                binascii.Error, UnicodeError) as exc:
            raise InvalidOffset(token) from exc

    @staticmethod
    def _tags_match(entity, tags, mode):
        etags = entity.get("tags") or ()
        if mode == "or":
            return any(t in etags for t in tags)
        return all(t in etags for t in tags)

    def list(self, kind, tags=None, tags_mode="and", foreign=None,
             offset=None, size=100, predicate=None):
        """Return (entities, next_offset_token_or_None).

        ``foreign`` is ``(field, referenced_id)``.  Work per page is bounded by
        the number of candidate rows scanned (O(n) worst case with filters,
        O(log n + size) without).
        """
        start_seq = self.decode_offset(offset) if offset else 0
        with self.lock:
            data = self._data[kind]
            if foreign is not None:
                field, ref = foreign
                cand = self._fidx[kind].get(field, {}).get(ref, {})
                seqs, ids = self._seqs[kind], self._pos[kind]

                def source():
                    rows = sorted((seqs[ids[eid]], eid) for eid in cand)
                    for seq, eid in rows:
                        if seq >= start_seq:
                            yield seq, eid
            else:
                seqs, idl = self._seqs[kind], self._ids[kind]
                first = bisect.bisect_left(seqs, start_seq)

                def source():
                    for i in range(first, len(seqs)):
                        if idl[i] is not None:
                            yield seqs[i], idl[i]

            out = []
            next_token = None
            for seq, eid in source():
                entity = data[eid]
                if tags and not self._tags_match(entity, tags, tags_mode):
                    continue
                if predicate is not None and not predicate(entity):
                    continue
                if len(out) == size:
                    next_token = self.encode_offset(seq)
                    break
                # shallow copy: callers only replace top-level keys
                out.append(dict(entity))
            return out, next_token
