"""DB-less configuration of the Kong 3.9 stand-in node (test double, NOT Kong).

* ``POST /config`` / ``GET /config`` (kong.md §4 "DB-less `/config`").
* Write refusal on entity endpoints (Kong spec/02-integration/04-admin_api/
  15-off_spec.lua: 405 code 12 "cannot create 'routes' entities when not
  using a database" on POST, "cannot create or update 'routes' entities when
  not using a database" on PUT; the PATCH/DELETE texts are UNCONFIRMED).
* The config cache ``<prefix>/<lmdb_environment_path>`` (kong.md §2
  "`lmdb_environment_path=dbless.lmdb`"): in the stand-in a *directory*
  holding ``standin-config.json`` = ``{"hash": md5, "config": <declarative
  config>}`` (real Kong: an LMDB environment).  Written on every successful
  load so that the config survives restarts (kong.md §7 "DP config cache").

A load validates into a fresh MemoryStore and then swaps it in, so proxied
requests never see a half-loaded config.
"""

import hashlib
import json
import os
import urllib.parse

import declarative as D
from api import AdminAPI, ApiError
from store import MemoryStore

CACHE_FILE = "standin-config.json"
ONLY_DBLESS = {"message": "this endpoint is only available when Kong is configured to not "
                          "use a database"}        # kong.md §4 "DB-less `/config`"
# kong.md §4 "Writes in DB-less mode | **405** code 12 "cannot create 'routes'
# entities when not using a database""
WRITE_TEXT = {"create": "cannot create '%s' entities when not using a database",
              "upsert": "cannot create or update '%s' entities when not using a database",
              "update": "cannot update '%s' entities when not using a database",    # UNCONFIRMED
              "delete": "cannot delete '%s' entities when not using a database"}    # UNCONFIRMED


def refuse_write(kind, op):
    return ApiError(405, {"code": 12, "name": "operation unsupported",
                          "message": WRITE_TEXT[op] % kind})


def config_hash(data):
    """md5 of the canonical JSON (real Kong hashes its own serialisation, so the
    values differ from Kong's; only equality is meaningful)."""
    return hashlib.md5(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest()


def has_entities(data):
    return any(isinstance(v, list) and v for k, v in data.items() if not k.startswith("_"))


def build_store(data, kong_version):
    """Validate ``data`` into a new MemoryStore; raises D.DeclarativeError."""
    api = AdminAPI(store=MemoryStore(), kong_version=kong_version)
    try:
        D.import_into(api, data)
    except ApiError as exc:
        raise D.DeclarativeError(json.dumps(exc.body)) from exc
    return api.store


def cache_path(prefix, conf):
    env = conf.get("lmdb_environment_path") or "dbless.lmdb"
    if not os.path.isabs(env):
        env = os.path.join(prefix, env)
    return os.path.join(env, CACHE_FILE)


def write_cache(prefix, conf, data, digest):
    path = cache_path(prefix, conf)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as fh:
        json.dump({"hash": digest, "config": data}, fh)
    os.replace(tmp, path)


def read_cache(prefix, conf):
    try:
        with open(cache_path(prefix, conf), encoding="utf-8") as fh:
            cached = json.load(fh)
        return cached["config"], cached["hash"]
    except (OSError, ValueError, KeyError, TypeError):
        return None, None


def apply(node, data, persist=True):
    """Validate and swap in ``data`` on ``node``; returns the new hash."""
    store = build_store(data, node.version)
    digest = config_hash(data)
    node.store = store
    if node.api is not None:
        node.api.store = store
    node.config_hash = digest
    node.config_loaded = has_entities(data)
    if persist:
        try:
            write_cache(node.prefix, node.conf, data, digest)
        except OSError as exc:
            node.log("error", "could not write the config cache: %s" % exc)
    return digest


def parse_post(headers, body):
    """kong.md §4 "`POST /config` takes the declarative config as JSON with
    `_format_version`, as a `config` form/JSON field (a YAML/JSON string), or as
    a raw body"."""
    ctype = (headers.get("Content-Type") or "").lower()
    text = body.decode("utf-8", "replace") if isinstance(body, bytes) else body
    if "application/x-www-form-urlencoded" in ctype:
        form = dict(urllib.parse.parse_qsl(text, keep_blank_values=True))
        if "config" not in form:
            raise D.DeclarativeError("expected a declarative configuration")
        return D.loads(form["config"])
    if "json" in ctype:
        try:
            data = json.loads(text)
        except ValueError as exc:
            raise ApiError(400, {"message": "Cannot parse JSON body"}) from exc
        if isinstance(data, dict) and "_format_version" not in data and \
                isinstance(data.get("config"), str):
            return D.loads(data["config"])
        if not isinstance(data, dict):
            raise D.DeclarativeError("expected a table as input")
        return data
    return D.loads(text)


def config_endpoint(api, method, query, headers, body):
    """``/config`` on the Admin API (kong.md §4 "DB-less `/config`
    [K kong/api/routes/config.lua]")."""
    node = api.node
    if not api.dbless():
        return 400, dict(ONLY_DBLESS)
    if method == "GET":
        # kong.md §4 "`GET /config` returns `{"config":"<yaml>"}`"
        return 200, {"config": D.dumps(D.export(api.store))}
    if method != "POST":
        return 405, {"message": "Method not allowed"}
    if node is not None and node.conf.get("role") == "data_plane":
        # UNCONFIRMED: a DP takes its config from the control plane only
        return 400, {"message": "this endpoint is not available on a data plane node"}
    try:
        data = parse_post(headers, body)
        D.flatten(data)   # format checks first
    except D.DeclarativeError as exc:
        return 400, _declarative_error(str(exc))
    digest = config_hash(data)
    check = str(query.get("check_hash", "")).lower() in ("1", "true", "on", "yes")
    current = getattr(node, "config_hash", None) if node is not None else None
    if check and digest == current:
        # kong.md §4 "`?check_hash=1` returns **304** if the config is unchanged"
        return 304, None
    try:
        if node is not None:
            apply(node, data)
        else:
            api.store = build_store(data, api.kong_version)
    except D.DeclarativeError as exc:
        return 400, _declarative_error(str(exc))
    if node is not None:
        node.log("notice", "declarative config loaded from /config (hash %s)" % digest)
    # kong.md §4 "Success is 201 with the entities"; shape {kind: {id: entity}}
    # is UNCONFIRMED
    out = {}
    for kind in D.ORDER:
        rows = api.store.iter_all(kind)
        if rows:
            out[kind] = {row["id"]: row for row in rows}
    return 201, out


def _declarative_error(text):
    # kong.md §4 error table "14 | invalid declarative configuration"; the
    # message/fields rendering is UNCONFIRMED
    return {"code": 14, "name": "invalid declarative configuration",
            "message": "declarative config is invalid: %s" % text,
            "fields": {"error": text}}
