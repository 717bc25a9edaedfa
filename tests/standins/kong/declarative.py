"""Declarative config (decK/Kong format) for the Kong 3.9 stand-in (NOT Kong).

kong.md §3 "File format: `_format_version` must be one of `"1.1" "2.1" "3.0"`.
`_transform` defaults to true ... `_comment` and `_ignore` are allowed."
Import = upsert by primary key in dependency order, never deleting
(kong.md §3 "Upserts every entity by primary key in topological order, and
**never deletes** entities missing from the file").  Entities without ``id``
get a deterministic UUIDv5 (kong.md §3 "IDs of entities without `id` are
deterministic UUIDv5 from their endpoint/cache keys, so repeated imports are
stable"); the namespace and key strings are the stand-in's own.
Validation goes through the same schemas as the Admin API stand-in.
"""

import json
import uuid

import schemas as S
from api import AdminAPI, ApiError
from store import MemoryStore

FORMAT_VERSIONS = ("1.1", "2.1", "3.0")
META_KEYS = ("_format_version", "_transform", "_comment", "_ignore", "_info", "_workspace")
NAMESPACE = uuid.UUID("fd02801f-0957-517a-ae3e-5b1f7d5c3f4a")   # stand-in's own

# top-level key -> entity name (Kong uses the DAO names as keys)
ORDER = ["certificates", "ca_certificates", "snis", "services", "routes", "consumers",
         "keyauth_credentials", "basicauth_credentials", "jwt_secrets",
         "hmacauth_credentials", "oauth2_credentials", "acls", "upstreams", "targets",
         "plugins"]
# parent entity -> {nested key: (child entity, foreign field)}
NESTED = {
    "services": {"routes": ("routes", "service"), "plugins": ("plugins", "service")},
    "routes": {"plugins": ("plugins", "route")},
    "consumers": {"plugins": ("plugins", "consumer"),
                  "keyauth_credentials": ("keyauth_credentials", "consumer"),
                  "basicauth_credentials": ("basicauth_credentials", "consumer"),
                  "jwt_secrets": ("jwt_secrets", "consumer"),
                  "hmacauth_credentials": ("hmacauth_credentials", "consumer"),
                  "oauth2_credentials": ("oauth2_credentials", "consumer"),
                  "acls": ("acls", "consumer")},
    "upstreams": {"targets": ("targets", "upstream")},
    "certificates": {"snis": ("snis", "certificate")},
}


class DeclarativeError(Exception):
    pass


def load_file(path):
    with open(path, encoding="utf-8") as fh:
        text = fh.read()
    return loads(text)


def loads(text):
    try:
        import yaml  # python3-yaml (a package dependency)
        data = yaml.safe_load(text)
    except ImportError:
        data = json.loads(text)
    except Exception as exc:  # yaml.YAMLError
        raise DeclarativeError("failed parsing declarative configuration: %s" % exc) from exc
    if not isinstance(data, dict):
        raise DeclarativeError("failed parsing declarative configuration: expected an object")
    return data


def dumps(data):
    try:
        import yaml
        return yaml.safe_dump(data, sort_keys=False, default_flow_style=False)
    except ImportError:
        return json.dumps(data, indent=2) + "\n"


def _stable_id(kind, entity):
    ent = S.ENTITIES[kind]
    if ent.endpoint_key and entity.get(ent.endpoint_key) is not None and kind != "targets":
        key = str(entity[ent.endpoint_key])
    else:
        parts = []
        for fname in ("name", "service", "route", "consumer", "upstream", "target", "group",
                      "certificate", "cert"):
            value = entity.get(fname)
            if isinstance(value, dict):
                value = value.get("id") or json.dumps(value, sort_keys=True)
            parts.append("%s=%s" % (fname, value))
        key = "|".join(parts)
    return str(uuid.uuid5(NAMESPACE, "%s:%s" % (kind, key)))


def _ref(api, kind, value):
    """A foreign value in a file: an id, a name, or {"id"|"name": ...}."""
    if value is None or isinstance(value, dict) and "id" in value:
        return value
    ref = S.ENTITIES[kind]
    if isinstance(value, dict):
        value = value.get(ref.endpoint_key) if ref.endpoint_key else None
    if isinstance(value, str) and S.is_uuid(value):
        return {"id": value}
    found = api.store.find_by_unique(kind, ref.endpoint_key, value) if ref.endpoint_key else None
    if found is None:
        raise ApiError(400, {"message": "%s '%s' not found" % (ref.name, value)})
    return {"id": found["id"]}


def flatten(data):
    """[(kind, entity_dict, parent_ref)] in import order, nested entities included."""
    version = data.get("_format_version")
    if version is None:
        raise DeclarativeError("_format_version: required field missing")
    if str(version) not in FORMAT_VERSIONS:
        # kong.md §3 "`_format_version` must be one of `"1.1" "2.1" "3.0"`"
        raise DeclarativeError("_format_version: expected one of: %s" % ", ".join(FORMAT_VERSIONS))
    unknown = [k for k in data if k not in META_KEYS and k not in ORDER]
    if unknown:
        raise DeclarativeError("%s: unknown field" % unknown[0])
    buckets = {k: [] for k in ORDER}

    def walk(kind, items, parent=None):
        if not isinstance(items, list):
            raise DeclarativeError("%s: expected an array" % kind)
        for item in items:
            if kind == "snis" and isinstance(item, str):
                item = {"name": item}
            if not isinstance(item, dict):
                raise DeclarativeError("%s: expected a record" % kind)
            item = dict(item)
            nested = {}
            for key, (child, field) in NESTED.get(kind, {}).items():
                if key in item and not (kind == "certificates" and key == "snis"
                                        and all(isinstance(s, str) for s in item[key])):
                    nested[key] = (child, field, item.pop(key))
            if parent is not None:
                item[parent[0]] = parent[1]
            buckets[kind].append(item)
            for key, (child, field, children) in nested.items():
                walk(child, children, (field, {"__parent": (kind, item)}))

    for kind in ORDER:
        if kind in data and data[kind] is not None:
            walk(kind, data[kind])
    out = []
    for kind in ORDER:
        for item in buckets[kind]:
            out.append((kind, item))
    return out


def import_into(api, data):
    """Upsert every entity of ``data`` through ``api`` (an AdminAPI).  Returns
    counts per kind.  Raises DeclarativeError with Kong-ish text on failure."""
    counts = {}
    with api.store.transaction():
        for index, (kind, item) in enumerate(flatten(data)):
            ent = S.ENTITIES[kind]
            body = dict(item)
            try:
                for fname in ent.foreign_fields():
                    value = body.get(fname)
                    if isinstance(value, dict) and "__parent" in value:
                        pkind, pitem = value["__parent"]
                        body[fname] = {"id": pitem["id"]}
                    elif value is not None:
                        body[fname] = _ref(api, S.ENTITIES[kind].field_map[fname]["reference"],
                                           value)
                for drop in ("created_at", "updated_at"):
                    body.pop(drop, None)
                if not body.get("id"):
                    body["id"] = _stable_id(kind, body)
                item["id"] = body["id"]
                existing = api.store.get(kind, body["id"])
                body_no_id = dict(body)
                if existing is not None:
                    body_no_id.pop("id")
                data_ = api._build(ent, body_no_id if existing else body, existing)  # pylint: disable=protected-access
                api._write(ent, data_, existing)  # pylint: disable=protected-access
            except ApiError as exc:
                raise DeclarativeError("in '%s' entry %d: %s" % (
                    kind, index + 1, json.dumps(exc.body.get("fields") or exc.body.get("message")
                                                if isinstance(exc.body, dict) else exc.body,
                                                sort_keys=True))) from exc
            counts[kind] = counts.get(kind, 0) + 1
    return counts


def parse(data, kong_version="3.9.3"):
    """Validate into a throwaway in-memory stand-in (kong.md §3 "`parse <file>`
    checks syntax and schema")."""
    api = AdminAPI(store=MemoryStore(), kong_version=kong_version)
    return import_into(api, data)


def export(store):
    """Flat export of every entity (kong.md §3 "`db_export [file]`")."""
    out = {"_format_version": "3.0", "_transform": False}
    for kind in ORDER:
        items = store.iter_all(kind)
        if not items:
            continue
        rows = []
        for item in items:
            row = {k: v for k, v in item.items() if not k.startswith("__")}
            for fname in S.ENTITIES[kind].foreign_fields():
                if isinstance(row.get(fname), dict):
                    row[fname] = row[fname]["id"]
            rows.append(row)
        out[kind] = rows
    return out
