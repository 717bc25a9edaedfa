"""Routing and handlers for the Kong 3.9 Admin API stand-in (DB mode).

HTTP-agnostic: ``AdminAPI.handle(method, path, query, headers, body)`` returns
``(status, json_body_or_None)``.  Facts are cited as kong.md §N "<quote>".
"""

import base64
import binascii
import copy
import hashlib
import json
import os
import re
import socket
import subprocess
import threading
import time
import urllib.parse

import schemas as S
from store import InvalidOffset, MemoryStore, UniqueViolation

NOT_FOUND = {"message": "Not found"}          # kong.md §4 "404 {"message":"Not found"}"
DEFAULT_SIZE = 100                            # kong.md §4 "`?size=` defaults to **100**"
MAX_SIZE = 1000                               # kong.md §4 "maximum **1000**"
# POST /schemas/.../validate writes nothing: counted as VALIDATE, apart from the writes.
STAT_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE", "VALIDATE")


class RawBody:
    """A non-JSON response body (Prometheus text)."""

    def __init__(self, data, content_type):
        self.data = data
        self.content_type = content_type


class ApiError(Exception):
    def __init__(self, status, body):
        super().__init__(status)
        self.status = status
        self.body = body


def schema_violation(errs):
    # kong.md §4 "Schema violation: {"code":2,"name":"schema violation",...}"
    return ApiError(400, {"code": 2, "name": "schema violation",
                          "message": S.schema_violation_message(errs), "fields": errs})


def _lua(value):
    """Lua-ish rendering used in Kong's unique/foreign violation messages."""
    if value is None:
        return "null"
    if isinstance(value, dict):
        return "{" + ",".join("%s=%s" % (k, _lua(value[k])) for k in sorted(value)) + "}"
    if isinstance(value, str):
        return '"%s"' % value
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def unique_violation(fields):
    # kong.md §4 "Unique violation: {"code":5,...,"message":"UNIQUE violation detected on '{...}'"
    return ApiError(409, {"code": 5, "name": "unique constraint violation",
                          "message": "UNIQUE violation detected on '%s'" % _lua(fields),
                          "fields": fields})


def random_string():
    # kong.md §4 drift traps "Auto-generated values"; 32 hex chars
    return os.urandom(16).hex()


def now_s():
    return int(time.time())


def now_ms():
    # auto_timestamp_ms: seconds with millisecond precision (ngx.now())
    return round(time.time(), 3)


def normalize_target(target):
    """kong.md §4 "`target` port defaults to **8000** when omitted"."""
    if not isinstance(target, str) or not target:
        return target
    if target.startswith("["):
        return target if "]:" in target else target + ":8000"
    if target.count(":") > 1:               # bare IPv6
        return "[%s]:8000" % target
    return target if ":" in target else target + ":8000"


def _deep_merge(base, patch):
    """kong.md §4 "PATCH merges nested non-abstract `record` fields ... arrays are replaced"."""
    out = dict(base)
    for key, value in patch.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict) and "id" not in value:
            out[key] = _deep_merge(out[key], value)
        else:
            out[key] = value
    return out


def _openssl(args, data):
    try:
        proc = subprocess.run(["openssl"] + args, input=data, capture_output=True,
                              timeout=10, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    return proc


class AdminAPI:
    def __init__(self, store=None, kong_version="3.9.3", admin_listen="127.0.0.1:8001",
                 conf=None, node=None):
        self.store = store or MemoryStore()
        self.kong_version = kong_version
        self.admin_listen = admin_listen
        self.conf = conf      # resolved kong.conf of a package node (node.py), or None
        self.node = node      # node.Node when run by the package, or None
        self.node_id = S.new_id()
        self.hostname = socket.gethostname()
        self._stats_lock = threading.Lock()
        self.stats = dict.fromkeys(STAT_METHODS, 0)
        for ent in S.ENTITIES.values():
            self.store.configure(ent.name, unique=ent.unique, foreign=ent.foreign_fields())
        # reverse foreign-key map: referenced kind -> [(entity, field, on_delete)]
        self.refs = {}
        for ent in S.ENTITIES.values():
            for fname, fdef in ent.fields:
                if fdef["type"] == "foreign":
                    self.refs.setdefault(fdef["reference"], []).append(
                        (ent, fname, fdef.get("on_delete")))

    # ------------------------------------------------------------------ entry
    def handle(self, method, path, query, headers, body):
        segs = [urllib.parse.unquote(s) for s in path.split("/") if s != ""]
        if segs[:1] != ["__standin"]:
            key = "VALIDATE" if segs[:1] == ["schemas"] and segs[-1:] == ["validate"] else method
            with self._stats_lock:
                if key in self.stats:
                    self.stats[key] += 1
        try:
            return self._route(method, segs, path, query, headers, body)
        except ApiError as exc:
            return exc.status, exc.body

    @staticmethod
    def _parse_body(headers, body):
        ctype = (headers.get("Content-Type") or "").lower()
        if not body:
            return {}
        if "application/x-www-form-urlencoded" in ctype:
            return _form_to_dict(body.decode("utf-8", "replace"))
        if "multipart/form-data" in ctype:
            raise ApiError(415, {"message": "multipart bodies are not supported by the stand-in"})
        try:
            data = json.loads(body)
        except (ValueError, UnicodeDecodeError) as exc:
            # kong.md §4 "Bad JSON | 400 {"message":"Cannot parse JSON body"}"
            raise ApiError(400, {"message": "Cannot parse JSON body"}) from exc
        if not isinstance(data, dict):
            raise ApiError(400, {"message": "Cannot parse JSON body"})
        return data

    # ---------------------------------------------------------------- routing
    def _route(self, method, segs, path, query, headers, body):
        # pylint: disable=too-many-return-statements,too-many-branches
        n = len(segs)

        def get_body():
            return self._parse_body(headers, body)

        if n == 0:
            self._allow(method, "GET")
            return 200, self.root_info()
        head = segs[0]
        if head == "__standin":
            return self._standin(method, segs[1:])
        if head == "status" and n == 1:
            self._allow(method, "GET")
            return 200, self.status_info()
        if head == "metrics" and n == 1 and self.node is not None:
            # kong.md §5 prometheus "Metrics are served at `/metrics` on **both**
            # the Admin API and the Status API"
            import metrics  # pylint: disable=import-outside-toplevel
            self._allow(method, "GET")
            if not metrics.prometheus_loaded(self.node.conf):
                return 404, dict(NOT_FOUND)
            return 200, RawBody(metrics.render(self.node).encode(),
                                "text/plain; charset=UTF-8")
        if head == "config" and n == 1:
            import dbless  # pylint: disable=import-outside-toplevel
            return dbless.config_endpoint(self, method, query, headers, body)
        if head == "clustering" and self.node is not None and \
                hasattr(getattr(self.node, "cluster", None), "admin"):
            return self.node.cluster.admin(method, segs[1:], query)
        if head == "endpoints" and n == 1:
            self._allow(method, "GET")
            return 200, {"data": sorted(self.endpoint_list()), "next": None}
        if head == "schemas":
            return self._schemas(method, segs[1:], get_body)
        if head == "tags":
            self._allow(method, "GET")
            return self._tags(segs[1:], query, path)
        if head == "plugins" and n == 2 and segs[1] == "enabled":
            self._allow(method, "GET")
            # kong.md §4 table "plugins ... `/plugins/enabled`"
            return 200, {"enabled_plugins": sorted(S.PLUGINS)}
        if head == "plugins" and n == 3 and segs[1] == "schema":
            self._allow(method, "GET")
            return self._plugin_schema(segs[2])
        if head == "targets":
            # Kong kong/api/routes/targets.lua: "/targets", "/targets/:targets"
            # are deactivated ("use /upstream/{upstream}/targets instead")
            return 404, dict(NOT_FOUND)
        ent = S.BY_PATH.get(head)
        if ent is None:
            return 404, dict(NOT_FOUND)
        if self.dbless() and method in ("POST", "PUT", "PATCH", "DELETE"):
            self._refuse_dbless_write(method, ent, segs)
        if n == 1:
            return self._collection(method, ent, query, path, get_body)
        if n == 2:
            return self._entity(method, ent, segs[1], get_body)
        return self._nested(method, ent, segs, query, path, get_body)

    def dbless(self):
        """database=off (DB-less node or data plane) on a package node."""
        return self.conf is not None and self.conf.get("database") == "off"

    @staticmethod
    def _refuse_dbless_write(method, ent, segs):
        """kong.md §4 "Writes in DB-less mode | **405** code 12"; see dbless.py."""
        import dbless  # pylint: disable=import-outside-toplevel
        n = len(segs)
        kind = ent.name
        if n >= 3:
            sub = segs[2]
            child = S.ENTITIES.get(sub) if sub in ("routes", "plugins", "targets", "snis") \
                else S.BY_NESTED.get(sub) if ent.name == "consumers" else None
            if child is None:
                return
            kind, n = child.name, n - 2
        if n == 1 and method == "POST":
            raise dbless.refuse_write(kind, "create")
        if n == 2 and method in ("PUT", "PATCH", "DELETE"):
            raise dbless.refuse_write(kind, {"PUT": "upsert", "PATCH": "update",
                                             "DELETE": "delete"}[method])

    @staticmethod
    def _allow(method, *allowed):
        if method not in allowed:
            raise ApiError(405, {"message": "Method not allowed"})

    # ---------------------------------------------------------- test extension
    def _standin(self, method, rest):
        """NOT part of Kong: request counters and reset for benchmarks/tests."""
        if rest == ["stats"] and method == "GET":
            with self._stats_lock:
                return 200, dict(self.stats)
        if rest == ["reset-stats"] and method == "POST":
            with self._stats_lock:
                self.stats = dict.fromkeys(STAT_METHODS, 0)
                return 200, dict(self.stats)
        if rest == ["reset"] and method == "POST":
            self.store.reset()
            return 200, {"message": "reset"}
        return 404, dict(NOT_FOUND)

    # ------------------------------------------------------------ info routes
    def plugins_in_use(self):
        names = set()
        for plugin in self.store.iter_all("plugins"):
            names.add(plugin["name"])
        return sorted(names)

    def root_info(self):
        """kong.md §4 "`GET /` returns `{tagline, version, edition ...}`"."""
        host, port = self.admin_listen.rpartition(":")[::2]
        info = {
            "tagline": "Welcome to kong",
            "version": self.kong_version,
            "edition": "community",
            "hostname": self.hostname,
            "node_id": self.node_id,
            "timers": {"running": 0, "pending": 7},
            "plugins": {
                "available_on_server": {
                    name: {"version": self.kong_version, "priority": p.priority}
                    for name, p in sorted(S.PLUGINS.items())},
                "enabled_in_cluster": self.plugins_in_use(),
            },
            "lua_version": "LuaJIT 2.1.0-20231117",
            "configuration": {
                "database": "postgres",
                "role": "traditional",
                "router_flavor": "traditional_compatible",
                "admin_listen": ["%s:%s" % (host, port)],
                "proxy_listen": ["0.0.0.0:8000", "0.0.0.0:8443 ssl"],
                "status_listen": ["127.0.0.1:8007"],
                "plugins": ["bundled"],
                "loaded_plugins": {name: True for name in sorted(S.PLUGINS)},
                "pg_host": "127.0.0.1", "pg_port": 5432, "pg_user": "kong",
                "pg_password": "******", "pg_database": "kong",
                "prefix": "/usr/local/kong",
                "nginx_worker_processes": "auto",
            },
            "pids": {"master": os.getpid(), "workers": [os.getpid()]},
        }
        if self.conf is not None:
            info["configuration"] = self.configuration()
        return info

    def configuration(self):
        """`GET /` configuration of a package node: the resolved kong.conf, lists
        split, sensitive keys masked (kong.md §2 "Sensitive keys are masked in
        `GET /` `configuration`")."""
        import conf as C  # pylint: disable=import-outside-toplevel
        out = {}
        for key, value in C.masked(self.conf).items():
            typ = C.TYPES.get(key)
            if value is None:
                out[key] = None
            elif typ == "bool":
                out[key] = C.as_bool(value)
            elif typ in ("int", "num") and value != "******":
                out[key] = float(value) if "." in str(value) else int(value)
            elif typ == "list":
                out[key] = C.as_list(value)
            elif typ == "listen":
                out[key] = [e.strip() for e in C.as_list(value)]
            else:
                out[key] = value
        out["loaded_plugins"] = {name: True for name in sorted(S.PLUGINS)}
        return out

    def status_info(self):
        """kong.md §4 "`GET /status` returns `{memory{...}, server{...}, database{reachable}}`"."""
        with self._stats_lock:
            total = sum(self.stats.values())
        return {
            "memory": {
                "workers_lua_vms": [{"http_allocated_gc": "40.00 MiB", "pid": os.getpid()}],
                "lua_shared_dicts": {
                    "kong": {"allocated_slabs": "0.04 MiB", "capacity": "5.00 MiB"},
                    "kong_db_cache": {"allocated_slabs": "0.80 MiB", "capacity": "128.00 MiB"},
                },
            },
            "server": {
                "connections_active": 1, "connections_reading": 0,
                "connections_writing": 1, "connections_waiting": 0,
                "connections_accepted": total, "connections_handled": total,
                "total_requests": total,
            },
            "database": {"reachable": self.node.db_reachable() if self.node else True},
        }

    def endpoint_list(self):
        out = ["/", "/status", "/plugins/enabled", "/tags", "/tags/{tags}", "/schemas/{name}",
               "/schemas/plugins/{name}"]
        for ent in S.ENTITIES.values():
            out.append("/%s" % ent.path)
            out.append("/%s/{%s}" % (ent.path, ent.name))
        return out

    # ---------------------------------------------------------------- schemas
    def _plugin_schema(self, name):
        plugin = S.PLUGINS.get(name)
        if plugin is None:
            return 404, {"message": "No plugin named '%s'" % name}
        fields = [f for f in S.plugin_entity_fields(plugin)
                  if f[0] in ("consumer", "protocols", "config")]
        # kong.md §4 "`GET /schemas/plugins/{name}`: defaults and field types";
        # shorthand fields are not listed among `fields`
        return 200, {"fields": S.fields_json(fields)}

    def _schemas(self, method, rest, get_body):
        if rest == ["plugins", "validate"]:
            self._allow(method, "POST")
            self._build_plugin(get_body(), None, validate_only=True)
            return 200, {"message": "schema validation successful"}
        if len(rest) == 2 and rest[0] == "plugins":
            self._allow(method, "GET")
            return self._plugin_schema(rest[1])
        if len(rest) == 2 and rest[1] == "validate":
            self._allow(method, "POST")
            ent = S.ENTITIES.get(rest[0])
            if ent is None:
                return 404, {"message": "No entity named '%s'" % rest[0]}
            if ent.name == "plugins":
                self._build_plugin(get_body(), None, validate_only=True)
            else:
                self._build(ent, get_body(), None, validate_only=True)
            return 200, {"message": "schema validation successful"}
        if len(rest) == 1:
            self._allow(method, "GET")
            ent = S.ENTITIES.get(rest[0])
            if ent is None:
                return 404, {"message": "No entity named '%s'" % rest[0]}
            out = {"name": ent.name, "primary_key": ["id"],
                   "fields": S.fields_json(ent.fields)}
            if ent.endpoint_key:
                out["endpoint_key"] = ent.endpoint_key
            return 200, out
        return 404, dict(NOT_FOUND)

    # ----------------------------------------------------------------- paging
    @staticmethod
    def _page_args(query):
        size = DEFAULT_SIZE
        if "size" in query:
            raw = query["size"]
            try:
                size = int(raw)
                if not 1 <= size <= MAX_SIZE:
                    raise ValueError(raw)
            except ValueError as exc:
                # kong.md §4 "size must be an integer between 1 and 1000"
                raise ApiError(400, {"code": 9, "name": "invalid size",
                                     "message": "size must be an integer between 1 and 1000",
                                     }) from exc
        return size, query.get("offset") or None

    @staticmethod
    def _tags_args(query):
        """kong.md §4 "`?tags=a,b` is AND; `?tags=a/b` is OR. Mixing the two is a 400"."""
        raw = query.get("tags")
        if raw is None:
            return None, "and"
        bad = ApiError(400, {"code": 11, "name": "invalid options",
                             "message": "invalid option (tags: invalid filter syntax)",
                             "fields": {"tags": "invalid filter syntax"}})
        if "," in raw and "/" in raw:
            raise bad
        mode = "or" if "/" in raw else "and"
        tags = raw.split("/" if mode == "or" else ",")
        if any(t == "" or S._tag_validator(t) for t in tags):  # pylint: disable=protected-access
            raise bad
        if len(tags) > 5:
            raise ApiError(400, {"code": 11, "name": "invalid options",
                                 "message": "invalid option (tags: cannot query more than 5 tags)",
                                 "fields": {"tags": "cannot query more than 5 tags"}})
        return tags, mode

    def _page(self, ent, query, path, foreign=None, predicate=None, nested=False):
        size, offset = self._page_args(query)
        tags, mode = (None, "and") if nested else self._tags_args(query)
        try:
            items, nxt = self.store.list(ent.name, tags=tags, tags_mode=mode, foreign=foreign,
                                         offset=offset, size=size, predicate=predicate)
        except InvalidOffset as exc:
            # kong.md §4 error table "7 | invalid offset | 400"
            raise ApiError(400, {"code": 7, "name": "invalid offset",
                                 "message": "'%s' is not a valid offset: bad base64 encoding"
                                 % offset}) from exc
        data = [self.render(ent, e) for e in items]
        if nxt is None:
            # kong.md §4 "`next` is a relative path, or `null` on the last page"
            return 200, {"data": data, "next": None}
        nxt_q = urllib.parse.quote(nxt, safe="")
        if nested:
            # kong.md §4 "on **nested** collections `next` omits `size` and `tags`"
            link = "%s?offset=%s" % (path, nxt_q)
        else:
            link = "/%s?offset=%s&size=%d" % (ent.path, nxt_q, size)
            if query.get("tags") is not None:
                link += "&tags=" + urllib.parse.quote(query["tags"], safe=",/")
        return 200, {"data": data, "offset": nxt, "next": link}

    # ------------------------------------------------------------------- tags
    def _tags(self, rest, query, path):
        """kong.md §4 table "tags | /tags, /tags/{tag} | read-only index"."""
        size, offset = self._page_args(query)
        start = 0
        if offset:
            try:
                start = int(base64.urlsafe_b64decode(offset + "=" * (-len(offset) % 4)))
            except (ValueError, binascii.Error) as exc:
                raise ApiError(400, {"code": 7, "name": "invalid offset",
                                     "message": "'%s' is not a valid offset: bad base64 encoding"
                                     % offset}) from exc
        want = rest[0] if rest else None
        rows = []
        for ent in S.ENTITIES.values():
            if "tags" not in ent.field_map:
                continue
            for entity in self.store.iter_all(ent.name):
                for tag in entity.get("tags") or ():
                    if want is None or tag == want:
                        rows.append({"entity_name": ent.name, "entity_id": entity["id"],
                                     "tag": tag})
        page = rows[start:start + size]
        if start + size >= len(rows):
            return 200, {"data": page, "next": None}
        token = base64.urlsafe_b64encode(str(start + size).encode()).decode().rstrip("=")
        return 200, {"data": page, "offset": token,
                     "next": "%s?offset=%s&size=%d" % (path, token, size)}

    # -------------------------------------------------------------- rendering
    def render(self, ent, entity):
        if ent.name == "plugins":
            plugin = S.PLUGINS.get(entity.get("name"))
            if plugin and plugin.shorthands and isinstance(entity.get("config"), dict):
                # kong.md §4 "Drift traps": "rate-limiting returns both
                # `config.redis.host` and the legacy `config.redis_host`"
                config = dict(entity["config"])
                for short, (rec, sub) in plugin.shorthands.items():
                    config[short] = (config.get(rec) or {}).get(sub)
                entity = dict(entity, config=config)
        elif ent.name == "certificates":
            # kong.md §4 table "GET /certificates/{id or sni} includes `snis` list"
            names = sorted(s["name"] for s in (
                self.store.get("snis", sid) for sid in
                self.store.referencing("snis", "certificate", entity["id"])) if s)
            entity = dict(entity, snis=names)
        return entity

    # --------------------------------------------------------------- lookups
    def find(self, ent, key, parent=None):
        """Entity by id or endpoint_key (kong.md §4 "entity `/X/{id|endpoint_key}`")."""
        store = self.store
        found = None
        if ent.name == "targets":
            found = store.get("targets", key) if S.is_uuid(key) else None
            if found is None and parent is not None:
                found = store.find_by_unique("targets", ("upstream", "target"),
                                             ({"id": parent["id"]}, normalize_target(key)))
            if found and parent is not None and found["upstream"]["id"] != parent["id"]:
                found = None
            return found
        if S.is_uuid(key):
            found = store.get(ent.name, key)
        if found is None:
            if ent.name == "certificates":
                # kong.md §4 "certificates | none (UUID), **or any of its SNI names**"
                sni = store.find_by_unique("snis", "name", key)
                found = store.get("certificates", sni["certificate"]["id"]) if sni else None
            elif ent.name == "acls" and parent is not None:
                found = store.find_by_unique("acls", ("consumer", "group"),
                                             ({"id": parent["id"]}, key))
            elif ent.endpoint_key:
                found = store.find_by_unique(ent.name, ent.endpoint_key, key)
        if found is not None and parent is not None and ent.cascade_parent:
            ref = found.get(ent.cascade_parent) or {}
            if ref.get("id") != parent["id"]:
                return None
        return found

    def must_find(self, ent, key, parent=None):
        found = self.find(ent, key, parent)
        if found is None:
            raise ApiError(404, dict(NOT_FOUND))
        return found

    # ----------------------------------------------------------- collection
    def _collection(self, method, ent, query, path, get_body):
        self._allow(method, "GET", "POST")
        if method == "GET":
            if ent.name == "consumers" and "custom_id" in query:
                # kong.md §4 table "`GET /consumers?custom_id=X` filter"
                found = self.store.find_by_unique("consumers", "custom_id", query["custom_id"])
                return 200, {"data": [found] if found else [], "next": None}
            return self._page(ent, query, path)
        return 201, self.create(ent, get_body())

    def _entity(self, method, ent, key, get_body, parent=None, forced=None):
        self._allow(method, "GET", "PUT", "PATCH", "DELETE")
        if method == "GET":
            return 200, self.render(ent, self.must_find(ent, key, parent))
        if method == "DELETE":
            found = self.find(ent, key, parent)
            if found is not None:
                self.delete(ent, found)
            # kong.md §4 "DELETE | **204 even if the entity does not exist**"
            return 204, None
        body = get_body()
        if method == "PATCH":
            with self.store.transaction():
                found = self.must_find(ent, key, parent)
                return 200, self.patch(ent, found, body, forced or {})
        return 200, self.upsert(ent, key, body, parent, forced or {})

    def _nested(self, method, ent, segs, query, path, get_body):
        # pylint: disable=too-many-return-statements,too-many-branches
        parent = self.must_find(ent, segs[1])
        sub = segs[2]
        n = len(segs)
        if ent.name == "routes" and sub == "service" and n == 3:
            self._allow(method, "GET")
            if not parent.get("service"):
                return 404, dict(NOT_FOUND)
            svc = self.store.get("services", parent["service"]["id"])
            if svc is None:
                return 404, dict(NOT_FOUND)
            return 200, svc
        child, field = None, None
        if ent.name == "services" and sub in ("routes", "plugins"):
            child, field = S.ENTITIES[sub], "service"
        elif ent.name == "routes" and sub == "plugins":
            child, field = S.ENTITIES["plugins"], "route"
        elif ent.name == "consumers" and sub == "plugins":
            child, field = S.ENTITIES["plugins"], "consumer"
        elif ent.name == "consumers" and sub in S.BY_NESTED:
            child, field = S.BY_NESTED[sub], "consumer"
        elif ent.name == "upstreams" and sub == "targets":
            child, field = S.ENTITIES["targets"], "upstream"
        elif ent.name == "certificates" and sub == "snis":
            child, field = S.ENTITIES["snis"], "certificate"
        if child is None or n > 4:
            return 404, dict(NOT_FOUND)
        forced = {field: {"id": parent["id"]}}
        if n == 3 or (child.name == "targets" and segs[3] == "all" and n == 4):
            self._allow(method, "GET", "POST")
            if method == "GET":
                # kong.md §4 "Tag filters are ignored on foreign-key (nested) endpoints"
                return self._page(child, query, path.rstrip("/"),
                                  foreign=(field, parent["id"]), nested=True)
            body = get_body()
            body.update(forced)
            return 201, self.create(child, body)
        if child.name not in ("targets",) and child.cascade_parent != "consumer":
            return 404, dict(NOT_FOUND)
        return self._entity(method, child, segs[3], get_body, parent=parent, forced=forced)

    # ------------------------------------------------------------ write path
    def _preprocess(self, ent, body):
        body = copy.deepcopy(body)
        if ent.name == "services" and "url" in body:
            # kong.md §4 "The `url` shorthand is write-only and never returned"
            url = body.pop("url")
            if url is not None:
                body.update(_split_url(url))
        if ent.cascade_parent == "consumer":
            body.pop("ttl", None)  # key-auth `ttl` option (not stored; UNCONFIRMED)
        if ent.name == "targets" and isinstance(body.get("target"), str):
            body["target"] = normalize_target(body["target"])
        return body

    def _resolve_foreign(self, ent, data):
        """Accept {"name": ...}-style references by resolving the endpoint key."""
        for fname, fdef in ent.fields:
            value = data.get(fname)
            if fdef["type"] == "foreign" and isinstance(value, dict) and "id" not in value:
                ref = S.ENTITIES[fdef["reference"]]
                if ref.endpoint_key and ref.endpoint_key in value and len(value) == 1:
                    found = self.store.find_by_unique(ref.name, ref.endpoint_key,
                                                      value[ref.endpoint_key])
                    if found is None:
                        raise ApiError(400, {
                            "code": 4, "name": "foreign key violation",
                            "message": "the foreign key '%s' does not reference an existing "
                                       "'%s' entity." % (_lua(value), ref.name),
                            "fields": {fname: value}})
                    data[fname] = {"id": found["id"]}

    def _check_foreign(self, ent, entity):
        """kong.md §4 "Foreign key, invalid reference" (code 4)."""
        for fname, fdef in ent.fields:
            value = entity.get(fname)
            if fdef["type"] == "foreign" and isinstance(value, dict) and value.get("id"):
                if self.store.get(fdef["reference"], value["id"]) is None:
                    raise ApiError(400, {
                        "code": 4, "name": "foreign key violation",
                        "message": "the foreign key '%s' does not reference an existing "
                                   "'%s' entity." % (_lua({"id": value["id"]}), fdef["reference"]),
                        "fields": {fname: {"id": value["id"]}}})

    def _auto(self, ent, entity, existing):
        now = now_ms() if ent.name == "targets" else now_s()
        entity["created_at"] = existing["created_at"] if existing else now
        if "updated_at" in ent.field_map:
            entity["updated_at"] = now
        for fname, fdef in ent.fields:
            if fdef.get("auto") and fname not in ("id", "created_at", "updated_at") \
                    and entity.get(fname) is None:
                entity[fname] = random_string()

    def _validate(self, ent, entity, fields=None):
        fields = fields or ent.fields
        errs = S.validate_fields(fields, entity)
        if not errs and ent.checks:
            errs = ent.checks(entity)
        if errs:
            raise schema_violation(errs)

    def _build(self, ent, body, existing, validate_only=False, merge=False):
        """Return the full entity to store (create, replace or merged patch)."""
        if ent.name == "plugins":
            return self._build_plugin(body, existing, validate_only, merge)
        body = self._preprocess(ent, body)
        snis = body.pop("snis", None) if ent.name == "certificates" else None
        if not validate_only:
            self._resolve_foreign(ent, body)
        if merge:
            data = _deep_merge(existing, body)
        else:
            data = S.fill_defaults(ent.fields, body)
            if existing:
                data["id"] = existing["id"]
        if not data.get("id"):
            data["id"] = S.new_id()
        S.normalize_sets(ent.fields, data)
        if not validate_only:
            self._auto(ent, data, existing)
        elif data.get("created_at") is None:
            data["created_at"] = 0
        self._validate(ent, data)
        if ent.name == "certificates":
            self._check_pem(data)
            data["__snis"] = snis
        elif ent.name == "ca_certificates":
            data["cert_digest"] = self._check_ca(data["cert"])
        if ent.name == "basicauth_credentials" and not validate_only and \
                (not merge or "password" in body):
            # kong.md §4 table "password stored as SHA1(password+consumer_id)";
            # Kong kong/plugins/basic-auth/crypto.lua: sha1(password .. consumer_id) hex
            data["password"] = hashlib.sha1(
                (data["password"] + data["consumer"]["id"]).encode()).hexdigest()
        if ent.name == "oauth2_credentials" and data.get("hash_secret") and \
                not str(data.get("client_secret", "")).startswith("$pbkdf2") and \
                (not merge or "client_secret" in body or "hash_secret" in body):
            data["client_secret"] = _pbkdf2(data["client_secret"])
        return data

    def _build_plugin(self, body, existing, validate_only=False, merge=False):
        ent = S.ENTITIES["plugins"]
        body = copy.deepcopy(body)
        name = body.get("name", existing["name"] if existing else None)
        plugin = S.PLUGINS.get(name) if isinstance(name, str) else None
        if name is None:
            raise schema_violation({"name": S.REQUIRED})
        if plugin is None:
            # kong.md §4 brief: "plugin 'x' not enabled; add it to the 'plugins'
            # configuration property" (Kong kong/db/schema/plugin_loader.lua)
            raise schema_violation({"name": "plugin '%s' not enabled; add it to the "
                                            "'plugins' configuration property" % name})
        if isinstance(body.get("config"), dict):
            config = body["config"]
            for short, (rec, sub) in plugin.shorthands.items():
                if short in config:
                    value = config.pop(short)
                    target = config.setdefault(rec, {})
                    if isinstance(target, dict) and sub not in target:
                        target[sub] = value
        if not validate_only:
            self._resolve_foreign(ent, body)
        fields = S.plugin_entity_fields(plugin)
        if merge:
            data = _deep_merge(existing, body)
            if name != existing["name"] or not isinstance(data.get("config"), dict):
                data["config"] = S.fill_defaults(
                    dict(fields)["config"]["fields"],
                    body.get("config") if isinstance(body.get("config"), dict) else {})
        else:
            if body.get("config") is None:
                body["config"] = {}
            data = S.fill_defaults(fields, body)
            if existing:
                data["id"] = existing["id"]
        if not data.get("id"):
            data["id"] = S.new_id()
        S.normalize_sets(fields, data)
        if plugin.name == "oauth2" and isinstance(data.get("config"), dict) and \
                data["config"].get("provision_key") is None:
            # kong.md §5 oauth2 "`provision_key` (auto-generated, unique)"
            data["config"]["provision_key"] = random_string()
        if not validate_only:
            self._auto(ent, data, existing)
        else:
            data.setdefault("created_at", 0)
            data["created_at"] = data["created_at"] or 0
        errs = S.validate_fields(fields, data)
        if not errs and plugin.checks:
            ent_errs, cfg_errs = plugin.checks(data["config"])
            if cfg_errs:
                errs["config"] = cfg_errs
            if ent_errs:
                errs["@entity"] = ent_errs
        if errs:
            raise schema_violation(errs)
        return data

    def _check_pem(self, data):
        """kong.md §4 certificates: `cert`/`key` PEM (pair-match via openssl)."""
        errs = {}
        for cfield, kfield in (("cert", "key"), ("cert_alt", "key_alt")):
            cert, key = data.get(cfield), data.get(kfield)
            if cert is None:
                continue
            if "-----BEGIN CERTIFICATE-----" not in cert:
                errs[cfield] = "invalid certificate: x509.new: asn1/tasn_dec.c:309:error"
            if not re.search(r"-----BEGIN [A-Z ]*PRIVATE KEY-----", key or ""):
                errs[kfield] = "invalid key: pkey.new:load_key: failed loading key"
            if cfield not in errs and kfield not in errs:
                cpub = _openssl(["x509", "-noout", "-pubkey"], cert.encode())
                kpub = _openssl(["pkey", "-pubout"], key.encode())
                if cpub is not None and kpub is not None:
                    if cpub.returncode != 0:
                        errs[cfield] = "invalid certificate: x509.new: unable to load"
                    elif kpub.returncode != 0:
                        errs[kfield] = "invalid key: pkey.new:load_key: failed loading key"
                    elif cpub.stdout.strip() != kpub.stdout.strip():
                        errs.setdefault("@entity", []).append(
                            "certificate does not match key" if cfield == "cert"
                            else "alternative certificate does not match key")
        if errs:
            raise schema_violation(errs)

    @staticmethod
    def _check_ca(cert):
        """kong.md §4 table "ca_certificates ... must be CA and not expired; `cert_digest` computed"."""
        if "-----BEGIN CERTIFICATE-----" not in cert:
            raise schema_violation({"cert": "invalid certificate: x509.new: asn1/tasn_dec.c:309:error"})
        if cert.count("-----BEGIN CERTIFICATE-----") > 1:
            raise schema_violation({"cert": "please submit only one certificate at a time"})
        der = _openssl(["x509", "-outform", "DER"], cert.encode())
        if der is None:   # openssl unavailable: best effort digest over the PEM body
            body = "".join(l for l in cert.splitlines() if l and "-----" not in l)
            try:
                return hashlib.sha256(base64.b64decode(body)).hexdigest()
            except (ValueError, binascii.Error) as exc:
                raise schema_violation({"cert": "invalid certificate"}) from exc
        if der.returncode != 0:
            raise schema_violation({"cert": "invalid certificate: x509.new: unable to load"})
        text = _openssl(["x509", "-noout", "-text"], cert.encode())
        if not re.search(r"CA:TRUE", text.stdout.decode("utf-8", "replace")):
            raise schema_violation({"@entity": [
                'certificate does not appear to be a CA because it is missing the "CA" '
                "basic constraint"]})
        end = _openssl(["x509", "-noout", "-checkend", "0"], cert.encode())
        if end.returncode != 0:
            raise schema_violation({"@entity": ['certificate expired, "Not After" time is in the past']})
        return hashlib.sha256(der.stdout).hexdigest()

    def _unique_error(self, ent, exc, data):
        if ent.name == "targets":
            raise unique_violation({"target": data["target"]})
        fields = {f: data.get(f) for f in exc.fields}
        raise unique_violation(fields)

    def _sni_conflicts(self, snis, cert_id):
        if snis is None:
            return
        if not isinstance(snis, list) or not all(isinstance(s, str) for s in snis):
            raise schema_violation({"snis": "expected an array"})
        seen = set()
        for name in snis:
            if name in seen:
                raise schema_violation({"snis": "duplicate SNI in request: %s" % name})
            seen.add(name)
            other = self.store.find_by_unique("snis", "name", name)
            if other and other["certificate"]["id"] != cert_id:
                raise schema_violation({"snis": "%s already associated with existing "
                                                "certificate '%s'" % (name, other["certificate"]["id"])})

    def _write(self, ent, data, existing):
        """Insert or update under the store transaction."""
        snis = data.pop("__snis", None)
        self._check_foreign(ent, data)
        if ent.name == "certificates":
            self._sni_conflicts(snis, data["id"])
        try:
            if existing:
                saved = self.store.update(ent.name, existing["id"], data)
            else:
                saved = self.store.insert(ent.name, data)
        except UniqueViolation as exc:
            self._unique_error(ent, exc, data)
        if ent.name == "certificates" and snis is not None:
            # kong.md §4 "`snis` given in the body create/replace the SNI entities"
            for sid in self.store.referencing("snis", "certificate", saved["id"]):
                sni = self.store.get("snis", sid)
                if sni and sni["name"] not in snis:
                    self.store.delete("snis", sid)
            for name in snis:
                if not self.store.find_by_unique("snis", "name", name):
                    self.store.insert("snis", S.fill_defaults(S.ENTITIES["snis"].fields, {
                        "id": S.new_id(), "name": name, "created_at": now_s(),
                        "updated_at": now_s(), "certificate": {"id": saved["id"]}}))
        return self.render(ent, saved)

    def create(self, ent, body):
        with self.store.transaction():
            data = self._build(ent, body, None)
            if self.store.get(ent.name, data["id"]) is not None:
                raise ApiError(400, {"code": 3, "name": "primary key violation",
                                     "message": "primary key violation on key '%s'"
                                     % _lua({"id": data["id"]}), "fields": {"id": data["id"]}})
            return self._write(ent, data, None)

    def upsert(self, ent, key, body, parent, forced):
        """kong.md §4 "PUT ... upsert, 200 for both create and update"; full replacement."""
        body = dict(body)
        body.update(forced)
        with self.store.transaction():
            existing = self.find(ent, key, parent)
            if S.is_uuid(key) and (existing is None or existing["id"] == key):
                body["id"] = key
            elif ent.name == "certificates":
                # kong.md §4 "PUT /certificates/{sni} creates with that SNI"
                snis = body.get("snis") or []
                if key not in snis:
                    body["snis"] = list(snis) + [key]
            elif ent.name == "acls":
                body["group"] = key
            elif ent.endpoint_key:
                # kong.md §4 "PUT with a non-UUID key calls `upsert_by_<endpoint_key>`"
                body[ent.endpoint_key] = key
            else:
                raise schema_violation({"id": "expected a valid UUID"})
            if existing is not None:
                body.pop("id", None)
            data = self._build(ent, body, existing)
            return self._write(ent, data, existing)

    def patch(self, ent, existing, body, forced):
        body = dict(body)
        body.update(forced)
        body.pop("id", None)
        data = self._build(ent, body, existing, merge=True)
        data["id"] = existing["id"]
        return self._write(ent, data, existing)

    def delete(self, ent, entity):
        with self.store.transaction():
            if self.store.get(ent.name, entity["id"]) is None:
                return
            # restrict first (kong.md §4 "Foreign key, delete restricted")
            for child, field, on_delete in self.refs.get(ent.name, ()):
                if on_delete != "cascade" and self.store.referencing(child.name, field,
                                                                     entity["id"]):
                    raise ApiError(400, {
                        "code": 4, "name": "foreign key violation",
                        "message": "an existing '%s' entity references this '%s' entity"
                                   % (child.name, ent.name),
                        "fields": {"@referenced_by": child.name}})
            self._cascade_delete(ent, entity["id"])

    def _cascade_delete(self, ent, entity_id):
        for child, field, on_delete in self.refs.get(ent.name, ()):
            if on_delete == "cascade":
                for cid in self.store.referencing(child.name, field, entity_id):
                    self._cascade_delete(child, cid)
        self.store.delete(ent.name, entity_id)


def _split_url(url):
    """Kong services.lua `url` shorthand: protocol/host/port/path."""
    if not isinstance(url, str):
        raise schema_violation({"url": "expected a string"})
    parsed = urllib.parse.urlsplit(url)
    try:
        port = parsed.port
    except ValueError as exc:
        raise schema_violation({"port": "expected an integer"}) from exc
    protocol = parsed.scheme or ("https" if port == 443 else "http")
    if port is None:
        port = 443 if protocol == "https" else 80
    return {"protocol": protocol, "host": parsed.hostname,
            "port": port, "path": parsed.path or None}


def _pbkdf2(secret):
    """oauth2 hash_secret (kong.md §4 "Hashed secrets": oauth2 `client_secret`)."""
    salt = os.urandom(16)
    digest = hashlib.pbkdf2_hmac("sha512", secret.encode(), salt, 10000, 32)

    def b64(raw):
        return base64.b64encode(raw).decode().rstrip("=")

    return "$pbkdf2-sha512$i=10000,l=32$%s$%s" % (b64(salt), b64(digest))


def _coerce(value):
    low = value.lower()
    if low in ("true", "false"):
        return low == "true"
    if re.fullmatch(r"-?\d+", value):
        return int(value)
    if re.fullmatch(r"-?\d+\.\d+", value):
        return float(value)
    return value


def _form_to_dict(text):
    """kong.md §4 "Bodies may be JSON, form-urlencoded or multipart" (form subset)."""
    out = {}
    for key, value in urllib.parse.parse_qsl(text, keep_blank_values=True):
        is_array = key.endswith("[]")
        key = key[:-2] if is_array else key
        parts = key.split(".")
        node = out
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        leaf = parts[-1]
        val = _coerce(value)
        if is_array or leaf in ("tags", "hosts", "paths", "methods", "protocols", "snis"):
            node.setdefault(leaf, []).append(val if not isinstance(val, (int, float)) or
                                             leaf != "tags" else value)
        else:
            node[leaf] = val
    return out
