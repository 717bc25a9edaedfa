"""Storage layer of the kuma-cp stand-in (test double, NOT Kuma).

Only this module knows how resources are kept.  The HTTP layer (api.py) talks
to a ``Store`` through the small interface below, so a PostgreSQL-backed store
(kuma.md §2 "Postgres and migrations") can replace ``MemoryStore`` later
without touching request handling.

A resource is a plain dict in its *output* form (what GET returns: ``type``,
``mesh`` for mesh-scoped types, ``name``, ``creationTime``, ``modificationTime``,
``labels`` and the spec), keyed by ``(type, mesh, name)``; global-scoped
resources use ``mesh = ""``.

Lists are ordered by ``(mesh, name)`` (order UNCONFIRMED; Kuma's memory store
order was not checked) and paged with an offset that is the index of the next
item as a decimal string (kuma.md §4 "`offset` is an opaque string").
"""

import copy
import threading
from contextlib import contextmanager


class StoreError(Exception):
    """Base class for store errors."""


class NotFound(StoreError):
    """The resource does not exist."""


class AlreadyExists(StoreError):
    """create() of a resource that exists."""


class Store:
    """Abstract storage interface (one implementation: MemoryStore)."""

    @contextmanager
    def transaction(self):
        """Serialise a compound read-check-write sequence."""
        raise NotImplementedError
        yield  # pragma: no cover  # pylint: disable=unreachable

    def get(self, rtype, mesh, name):
        """The resource (a copy) or raise NotFound."""
        raise NotImplementedError

    def create(self, resource):
        raise NotImplementedError

    def update(self, resource):
        raise NotImplementedError

    def delete(self, rtype, mesh, name):
        """Remove it or raise NotFound."""
        raise NotImplementedError

    def list(self, rtype, mesh=None):
        """All resources of ``rtype`` (copies), in ``mesh`` or, with None, in every mesh."""
        raise NotImplementedError

    def delete_mesh_scoped(self, mesh):
        """Remove every mesh-scoped resource of ``mesh`` (owner-reference cascade)."""
        raise NotImplementedError

    def reset(self):
        raise NotImplementedError


class MemoryStore(Store):
    """Everything in one dict behind one re-entrant lock (KUMA_STORE_TYPE=memory:
    kuma.md §2 "Memory loses all state and allows only one CP instance")."""

    def __init__(self):
        self._lock = threading.RLock()
        self._items = {}

    @contextmanager
    def transaction(self):
        with self._lock:
            yield self

    @staticmethod
    def _key(resource):
        return (resource["type"], resource.get("mesh", ""), resource["name"])

    def get(self, rtype, mesh, name):
        with self._lock:
            try:
                return copy.deepcopy(self._items[(rtype, mesh or "", name)])
            except KeyError:
                raise NotFound("%s %s/%s" % (rtype, mesh, name)) from None

    def create(self, resource):
        key = self._key(resource)
        with self._lock:
            if key in self._items:
                raise AlreadyExists("%s %s/%s" % key)
            self._items[key] = copy.deepcopy(resource)

    def update(self, resource):
        key = self._key(resource)
        with self._lock:
            if key not in self._items:
                raise NotFound("%s %s/%s" % key)
            self._items[key] = copy.deepcopy(resource)

    def delete(self, rtype, mesh, name):
        with self._lock:
            try:
                del self._items[(rtype, mesh or "", name)]
            except KeyError:
                raise NotFound("%s %s/%s" % (rtype, mesh, name)) from None

    def list(self, rtype, mesh=None):
        with self._lock:
            found = [value for (kind, in_mesh, name), value in self._items.items()
                     if kind == rtype and (mesh is None or in_mesh == mesh)]
            return copy.deepcopy(sorted(found, key=lambda r: (r.get("mesh", ""), r["name"])))

    def delete_mesh_scoped(self, mesh):
        with self._lock:
            for key in [k for k in self._items if k[1] == mesh]:
                del self._items[key]

    def reset(self):
        with self._lock:
            self._items.clear()
