# -*- coding: utf-8 -*-
# Copyright (c) aic.gateway contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Declarative Kong configuration (decK's format): parse, read Kong's state, plan, apply, dump.

Used by kong_sync and kong_info (private to this collection). The comparison itself is the
_kong.Engine every per-entity module uses.

How it differs from decK (../shared/reference/kong.md section 6), on purpose:
  * Deletes run last (no traffic gap), but a rename never hits a 409: entities are matched on their
    other unique keys too (consumer custom_id, plugin scope, certificate SNIs), so a rename is an
    update in place that keeps the id and what hangs off it.
  * Only the kinds the configuration mentions are read (a section written as an empty list counts),
    so a no-op sync of a large configuration costs one paged read per kind. `kinds` adds more.
  * basic-auth passwords are compared through their SHA1 form instead of being ignored.
"""

from __future__ import annotations

import copy
import json
import threading
from concurrent.futures import ThreadPoolExecutor

from ansible.module_utils.six.moves.urllib.parse import quote

from ansible_collections.aic.gateway.plugins.module_utils._kong import (
    ALL_KINDS, CREDENTIAL_KINDS, FOREIGN, IGNORED, KINDS, LEVELS, KongError, cert_digest, is_uuid, new_id,
    normalize_target, split_url,
)

FORMAT_VERSION = "3.0"
TOP_LEVEL = ("services", "routes", "consumers", "plugins", "upstreams", "certificates", "ca_certificates")
META_KEYS = ("_format_version", "_info", "_transform", "_workspace")


class ConfigError(ValueError):
    """The declarative configuration is invalid; nothing was changed."""


class Entity(object):
    """One entity, desired or actual. `refs` maps foreign fields to the identity of the parent."""

    __slots__ = ("kind", "fields", "refs", "id", "ident", "alts", "where", "match", "parent_ids", "raw")

    def __init__(self, kind, fields, refs=None, entity_id=None, where=None):
        self.kind = kind
        self.fields = fields
        self.refs = refs or {}
        self.id = entity_id
        self.ident = None
        self.alts = ()
        self.where = where
        self.match = None
        self.parent_ids = {}
        self.raw = None  # Kong's answer, for an actual entity


# ----------------------------------------------------------------------------------------------------
# Identity
# ----------------------------------------------------------------------------------------------------

def identity(kind, fields, refs):
    """A natural key: the same for the desired entity and Kong's, whatever the ids."""
    f = fields
    if kind in ("services", "routes", "upstreams"):
        return (kind, f.get("name")) if f.get("name") else None
    if kind == "consumers":
        if f.get("username"):
            return (kind, f["username"])
        return (kind, "custom_id", f["custom_id"]) if f.get("custom_id") else None
    if kind == "plugins":
        if f.get("instance_name"):
            return (kind, "instance", f["instance_name"])
        return plugin_scope(f, refs)
    if kind == "targets":
        return (kind, refs.get("upstream"), normalize_target(f.get("target")))
    if kind == "certificates":
        return (kind, cert_digest(f["cert"])) if f.get("cert") else None
    if kind == "ca_certificates":
        digest = f.get("cert_digest") or (cert_digest(f["cert"]) if f.get("cert") else None)
        return (kind, digest) if digest else None
    if kind == "acls":
        return (kind, refs.get("consumer"), f.get("group"))
    key = KINDS[kind].key
    return (kind, f.get(key)) if f.get(key) else None


def plugin_scope(fields, refs):
    return ("plugins", fields.get("name"), refs.get("service"), refs.get("route"), refs.get("consumer"))


def alternates(kind, fields, refs):
    """Other unique keys a rename keeps (Kong's unique constraints besides the endpoint key)."""
    if kind == "consumers" and fields.get("username") and fields.get("custom_id"):
        return ((kind, "custom_id", fields["custom_id"]),)
    if kind == "plugins" and fields.get("instance_name"):
        return (plugin_scope(fields, refs),)
    if kind == "certificates":
        return tuple(("certificates", "sni", name) for name in sni_names(fields.get("snis")))
    return ()


def sni_names(snis):
    names = []
    for item in snis or []:
        names.append(item.get("name") if isinstance(item, dict) else item)
    return sorted(n for n in names if n)


def label(entity):
    """A short human name for messages, --diff headers and the change list."""
    f = entity.fields
    kind = entity.kind
    if kind == "plugins":
        scope = ["%s=%s" % (k, _ref_name(entity.refs.get(k))) for k in ("service", "route", "consumer")
                 if entity.refs.get(k)]
        name = f.get("instance_name") or f.get("name")
        return "%s%s" % (name, " (%s)" % ", ".join(scope) if scope else " (global)")
    if kind == "targets":
        return "%s in %s" % (f.get("target"), _ref_name(entity.refs.get("upstream")))
    if kind == "certificates":
        return "certificate %s" % (",".join(sni_names(f.get("snis"))) or (entity.ident or ("", "?"))[1][:12])
    if kind == "ca_certificates":
        return "ca_certificate %s" % (f.get("cert_digest") or (entity.ident or ("", "?"))[1])[:12]
    if kind in CREDENTIAL_KINDS:
        spec = KINDS[kind]
        ident = f.get("group") if kind == "acls" else f.get(spec.key)
        if ident and spec.key in spec.secrets:
            ident = ident[:4] + "..."
        return "%s %s of %s" % (spec.label, ident, _ref_name(entity.refs.get("consumer")))
    if kind == "consumers":
        return f.get("username") or f.get("custom_id")
    return f.get("name") or entity.id


def _ref_name(ident):
    if not ident:
        return None
    return str(ident[-1])


# ----------------------------------------------------------------------------------------------------
# The declarative configuration
# ----------------------------------------------------------------------------------------------------

class Desired(object):
    def __init__(self):
        self.entities = []
        self.kinds = set()
        self.select_tags = []


def _ref_ident(kind, value, where):
    """A foreign reference written as a name, an id, or {name: ...} / {id: ...}."""
    if value is None:
        return None
    if isinstance(value, dict):
        if value.get("id"):
            value = value["id"]
        else:
            value = value.get(KINDS[kind].key) or value.get("name")
    if not isinstance(value, str) or not value:
        raise ConfigError("%s: the reference to a %s must be a name or an id, got %r" % (where, kind[:-1], value))
    if is_uuid(value):
        return ("id", value)
    return (kind, value)


def parse_config(config):
    """Flatten a decK-format configuration into entities. Raises ConfigError before anything changes."""
    if not isinstance(config, dict):
        raise ConfigError("the configuration must be a mapping with _format_version: \"3.0\"")
    version = config.get("_format_version")
    if str(version) != FORMAT_VERSION:
        raise ConfigError("_format_version must be \"%s\" (decK's format for Kong 3.x), got %r"
                          % (FORMAT_VERSION, version))
    unknown = sorted(set(config) - set(TOP_LEVEL) - set(META_KEYS))
    if unknown:
        raise ConfigError("unsupported top-level sections: %s (supported: %s)"
                          % (", ".join(unknown), ", ".join(TOP_LEVEL)))
    desired = Desired()
    info = config.get("_info") or {}
    desired.select_tags = list(info.get("select_tags") or [])

    def section(parent, name, where):
        value = parent.get(name)
        if value is None:
            if name in parent:
                desired.kinds.add(name)
            return []
        if not isinstance(value, list):
            raise ConfigError("%s.%s must be a list" % (where, name))
        desired.kinds.add(name)
        return value

    def add(kind, raw, where, refs=None, children=()):
        if not isinstance(raw, dict):
            raise ConfigError("%s must be a mapping, got %r" % (where, raw))
        fields = {k: copy.deepcopy(v) for k, v in raw.items() if k not in children and k not in IGNORED}
        entity_id = raw.get("id")
        refs = dict(refs or {})
        for field, parent_kind in FOREIGN.get(kind, {}).items():
            if field in fields:
                value = fields.pop(field)
                if value is not None and field not in refs:
                    refs[field] = _ref_ident(parent_kind, value, where)
        if kind == "services" and fields.get("url"):
            try:
                fields.update(split_url(fields.pop("url")))
            except ValueError as exc:
                raise ConfigError("%s: %s" % (where, exc))
        if kind == "targets":
            fields["target"] = normalize_target(fields.get("target"))
        if kind == "certificates":
            fields["snis"] = sni_names(fields.get("snis")) or None
        if kind == "ca_certificates" and fields.get("cert"):
            try:
                fields["cert_digest"] = cert_digest(fields["cert"])
            except ValueError as exc:
                raise ConfigError("%s: %s" % (where, exc))
        entity = Entity(kind, fields, refs, entity_id, where)
        try:
            entity.ident = identity(kind, fields, refs)
        except ValueError as exc:
            raise ConfigError("%s: %s" % (where, exc))
        if entity.ident is None and not entity_id:
            raise ConfigError("%s: a %s needs %s so it can be found again" % (where, kind[:-1], _needs(kind)))
        entity.alts = alternates(kind, fields, refs)
        desired.entities.append(entity)
        return entity

    for i, raw in enumerate(section(config, "services", "")):
        where = "services[%d]" % i
        svc = add("services", raw, where, children=("routes", "plugins"))
        for j, route_raw in enumerate(section(raw, "routes", where)):
            rwhere = "%s.routes[%d]" % (where, j)
            route = add("routes", route_raw, rwhere, {"service": _self(svc)}, children=("plugins",))
            for k, plugin in enumerate(section(route_raw, "plugins", rwhere)):
                add("plugins", plugin, "%s.plugins[%d]" % (rwhere, k), {"route": _self(route)})
        for j, plugin in enumerate(section(raw, "plugins", where)):
            add("plugins", plugin, "%s.plugins[%d]" % (where, j), {"service": _self(svc)})
    for i, raw in enumerate(section(config, "routes", "")):
        where = "routes[%d]" % i
        route = add("routes", raw, where, children=("plugins",))
        for k, plugin in enumerate(section(raw, "plugins", where)):
            add("plugins", plugin, "%s.plugins[%d]" % (where, k), {"route": _self(route)})
    for i, raw in enumerate(section(config, "consumers", "")):
        where = "consumers[%d]" % i
        consumer = add("consumers", raw, where, children=("plugins",) + CREDENTIAL_KINDS)
        for kind in CREDENTIAL_KINDS:  # decK's credential sections are named after the kinds
            for j, cred in enumerate(section(raw, kind, where)):
                add(kind, cred, "%s.%s[%d]" % (where, kind, j), {"consumer": _self(consumer)})
        for j, plugin in enumerate(section(raw, "plugins", where)):
            add("plugins", plugin, "%s.plugins[%d]" % (where, j), {"consumer": _self(consumer)})
    for i, raw in enumerate(section(config, "plugins", "")):
        add("plugins", raw, "plugins[%d]" % i)
    for i, raw in enumerate(section(config, "upstreams", "")):
        where = "upstreams[%d]" % i
        upstream = add("upstreams", raw, where, children=("targets",))
        for j, target in enumerate(section(raw, "targets", where)):
            add("targets", target, "%s.targets[%d]" % (where, j), {"upstream": _self(upstream)})
    for i, raw in enumerate(section(config, "certificates", "")):
        add("certificates", raw, "certificates[%d]" % i)
    for i, raw in enumerate(section(config, "ca_certificates", "")):
        add("ca_certificates", raw, "ca_certificates[%d]" % i)
    _check_duplicates(desired.entities)
    return desired


def _self(entity):
    return entity.ident or ("id", entity.id)


def _needs(kind):
    return {"services": "a name", "routes": "a name", "upstreams": "a name", "consumers": "a username or custom_id",
            "certificates": "cert", "ca_certificates": "cert", "plugins": "a name",
            "keyauth_credentials": "a key", "jwt_secrets": "a key", "oauth2_credentials": "a client_id",
            "basicauth_credentials": "a username", "hmacauth_credentials": "a username"}.get(kind, "an id")


def _check_duplicates(entities):
    seen = {}
    for entity in entities:
        for key in (entity.ident,) + tuple(entity.alts):
            if key is None:
                continue
            if key in seen:
                raise ConfigError("%s and %s are the same %s (%s)"
                                  % (seen[key].where, entity.where, entity.kind[:-1], label(entity)))
            seen[key] = entity


# ----------------------------------------------------------------------------------------------------
# Kong's state
# ----------------------------------------------------------------------------------------------------

def expand_kinds(kinds):
    """Kinds read for the given sections: targets need their upstreams."""
    kinds = set(kinds)
    if "targets" in kinds:
        kinds.add("upstreams")
    return [k for k in ALL_KINDS if k in kinds]


def read_state(client, kinds, select_tags, parallelism=4):
    """Kong's entities of the given kinds (carrying all select_tags), one paged list per kind."""
    kinds = expand_kinds(kinds)
    top = [k for k in kinds if k != "targets"]
    results = {}

    def fetch(kind):
        return kind, client.list("/" + KINDS[kind].path, tags=select_tags)

    with ThreadPoolExecutor(max_workers=max(1, min(parallelism, len(top) or 1))) as pool:
        for kind, items in pool.map(fetch, top):
            results[kind] = items
    if "targets" in kinds:
        targets = []
        for upstream in results.get("upstreams", []):
            # Tag filters are ignored on nested endpoints (kong.md section 4): filter here.
            for item in client.list("/upstreams/%s/targets" % upstream["id"]):
                if _has_tags(item, select_tags):
                    targets.append(item)
        results["targets"] = targets
    return results


def _has_tags(item, tags):
    return set(tags or ()) <= set(item.get("tags") or ())


def actual_entities(state):
    """Kong's answers as Entities (foreign keys kept as ids in parent_ids until matched)."""
    entities = []
    for kind in ALL_KINDS:
        for item in state.get(kind, []):
            fields = {k: v for k, v in item.items() if k not in IGNORED and k not in FOREIGN.get(kind, {})}
            entity = Entity(kind, fields, entity_id=item["id"])
            entity.parent_ids = {f: (item.get(f) or {}).get("id") for f in FOREIGN.get(kind, {})
                                 if (item.get(f) or {}).get("id")}
            entity.raw = item
            entities.append(entity)
    return entities


# ----------------------------------------------------------------------------------------------------
# Plan
# ----------------------------------------------------------------------------------------------------

class Change(object):
    __slots__ = ("action", "kind", "desired", "actual", "fields", "body", "method", "path", "name", "before",
                 "after", "pre_delete", "full", "first")

    def __init__(self, action, kind, desired=None, actual=None):
        self.action = action
        self.kind = kind
        self.desired = desired
        self.actual = actual
        self.fields = []
        self.body = None
        self.method = None
        self.path = None
        self.name = None
        self.before = None
        self.after = None
        self.pre_delete = None
        self.full = None  # the entity as it will be after the write (what schema validation checks)
        self.first = False  # runs before the other writes of its step (it frees a unique value)


class Plan(object):
    def __init__(self):
        self.changes = []
        self.unchanged = 0

    def summary(self):
        out = {"created": {}, "updated": {}, "deleted": {}}
        for change in self.changes:
            key = {"create": "created", "update": "updated", "delete": "deleted", "replace": "updated"}[change.action]
            out[key][change.kind] = out[key].get(change.kind, 0) + 1
        out["unchanged"] = self.unchanged
        return out


def make_plan(engine, client, desired, state, mode, select_tags, want_diff=False):
    """Match desired with Kong's entities level by level and decide every write."""
    actual = actual_entities(state)
    by_id = {a.id: a for a in actual}
    # identity of an actual parent, as the desired side names it once matched
    canon = {}
    external = {}
    plan = Plan()
    matched_actual = set()
    ids = {}  # desired ident -> id (matched or new)

    def parent_ident(pid):
        if pid in canon:
            return canon[pid]
        return ("id", pid)

    def resolve_ref(entity, field):
        ref = entity.refs.get(field)
        if ref is None:
            return None
        if ref in ids:
            return ids[ref]
        if ref[0] == "id":
            return ref[1]
        if ref not in external:
            kind = FOREIGN[entity.kind][field]
            found = client.get("/%s/%s" % (KINDS[kind].path, quote(str(ref[1]), safe="")))
            if found is None:
                raise ConfigError("%s: %s %r is neither in the configuration nor in Kong"
                                  % (entity.where, kind[:-1], ref[1]))
            external[ref] = found["id"]
        return external[ref]

    desired_by_kind = {}
    for entity in desired.entities:
        desired_by_kind.setdefault(entity.kind, []).append(entity)

    for level in LEVELS:
        for kind in level:
            wanted = desired_by_kind.get(kind, [])
            have = [a for a in actual if a.kind == kind]
            # actual identities, with parents named the way the desired side names them
            index = {}
            alt_index = {}
            for a in have:
                refs = {f: parent_ident(pid) for f, pid in a.parent_ids.items()}
                a.refs = refs
                a.ident = identity(kind, a.fields, refs)
                index.setdefault(a.ident, a)
                for alt in alternates(kind, a.fields, refs):
                    alt_index.setdefault(alt, a)
            for d in wanted:
                match = _find_match(d, by_id, index, alt_index, matched_actual)
                if match is not None:
                    matched_actual.add(match.id)
                    d.match = match
                    canon[match.id] = d.ident or ("id", match.id)
                    ids[d.ident] = match.id
                else:
                    d.id = d.id or new_id()
                    ids[d.ident] = d.id
                if d.ident is None:
                    ids[("id", d.id)] = d.id
            for d in wanted:
                plan_one(engine, plan, d, resolve_ref, select_tags, want_diff)
    if mode == "sync":
        for a in actual:
            if a.id not in matched_actual:
                change = Change("delete", a.kind, actual=a)
                change.method = "DELETE"
                change.path = _write_path(a.kind, a.id, a.parent_ids)
                change.name = label(a)
                if want_diff:
                    change.before = engine.view(a.kind, a.fields, _ref_view(a.refs))
                    change.after = {}
                plan.changes.append(change)
    return plan


def _find_match(d, by_id, index, alt_index, taken):
    """Kong's entity for desired `d`: by id, by identity, then by another unique key (a rename)."""
    if d.id and d.id in by_id and by_id[d.id].kind == d.kind:
        return by_id[d.id]
    candidates = [index.get(d.ident)]
    for key in (d.ident,) + tuple(d.alts):
        candidates += [alt_index.get(key), index.get(key)]
    for candidate in candidates:
        if candidate is not None and candidate.id not in taken:
            return candidate
    return None


def _ref_view(refs):
    return {f: _ref_name(r) for f, r in refs.items() if r}


def _write_path(kind, entity_id, parent_ids):
    spec = KINDS[kind]
    parent = parent_ids.get(spec.parent[0]) if spec.parent else None
    return spec.entity_path(entity_id, parent)


def plan_one(engine, plan, d, resolve_ref, select_tags, want_diff):
    kind = d.kind
    spec = KINDS[kind]
    fields = dict(d.fields)
    if select_tags:
        fields["tags"] = sorted(set(fields.get("tags") or []) | set(select_tags))
    try:
        filled = engine.fill(kind, fields)
    except ValueError as exc:
        raise ConfigError("%s: %s" % (d.where, exc))
    foreign = {}
    for field in FOREIGN.get(kind, {}):
        ref_id = resolve_ref(d, field)
        foreign[field] = {"id": ref_id} if ref_id else None
    a = d.match
    name = label(d)
    refs_view = _ref_view(d.refs)
    if a is None:
        change = Change("create", kind, desired=d)
        body = {k: v for k, v in filled.items() if v is not None or k in fields}
        body = {k: v for k, v in body.items() if not (k in spec.generated and v is None)}
        if kind == "ca_certificates":
            body.pop("cert_digest", None)
        body.update({f: v for f, v in foreign.items() if v})
        change.body = body
        change.full = body
        change.method = "PUT"
        change.path = _write_path(kind, d.id, {f: (v or {}).get("id") for f, v in foreign.items()})
    else:
        raw = a.raw
        changed = engine.changed_fields(kind, filled, raw)
        moved = [f for f, v in foreign.items() if (raw.get(f) or {}).get("id") != (v or {}).get("id")]
        if not changed and not moved:
            plan.unchanged += 1
            return
        parent_field = spec.parent[0] if spec.parent else None
        if parent_field in moved:
            # a credential or target cannot move to another parent: delete it there, create it here
            change = Change("replace", kind, desired=d, actual=a)
            change.pre_delete = _write_path(kind, a.id, a.parent_ids)
            body = {k: v for k, v in filled.items() if v is not None}
            body.update({f: v for f, v in foreign.items() if v})
            change.body = body
            change.full = body
            change.method = "PUT"
            change.path = _write_path(kind, a.id, {f: (v or {}).get("id") for f, v in foreign.items()})
        else:
            change = Change("update", kind, desired=d, actual=a)
            body = {f: filled[f] for f in changed}
            body.update({f: foreign[f] for f in moved})
            change.fields = sorted(changed + moved)
            change.body = body
            # top-level fields are replaced whole (records such as config carry every key), so this is
            # what Kong will hold; deprecated shorthands it echoes are left out
            full = {k: v for k, v in raw.items() if k not in IGNORED}
            full.update(body)
            change.full = full
            # a certificate that gives up SNIs goes first, so another one can take them without a conflict
            change.first = kind == "certificates" and bool(set(raw.get("snis") or []) - set(filled.get("snis") or []))
            change.method = "PATCH"
            change.path = _write_path(kind, a.id, a.parent_ids)
        d.id = a.id
    change.name = name
    if want_diff:
        change.before = engine.view(kind, a.fields, _ref_view(a.refs)) if a is not None else {}
        change.after = engine.view(kind, filled, refs_view, changed=change.fields)
    plan.changes.append(change)


# ----------------------------------------------------------------------------------------------------
# Validate, then apply
# ----------------------------------------------------------------------------------------------------

def validate_plan(client, plan, parallelism=10):
    """Kong's own schema check of every entity the plan writes, before the first write.

    POST /schemas/{entity}/validate and /schemas/plugins/validate write nothing (kong.md section 4), so
    this also runs in check mode. Uniqueness and references are not part of it (Kong checks them on write).
    """
    errors = []
    lock = threading.Lock()

    def check(change):
        path = "/schemas/plugins/validate" if change.kind == "plugins" else "/schemas/%s/validate" % change.kind
        try:
            client.call("POST", path, change.full)
        except KongError as exc:
            with lock:
                errors.append({"kind": change.kind, "name": change.name, "action": change.action,
                               "error": str(exc), "kong_error": exc.body})

    jobs = [c for c in plan.changes if c.action != "delete" and c.full is not None]
    if jobs:
        with ThreadPoolExecutor(max_workers=max(1, min(parallelism, len(jobs)))) as pool:
            list(pool.map(check, jobs))
    return sorted(errors, key=lambda e: (ALL_KINDS.index(e["kind"]), str(e["name"])))


def apply_plan(client, plan, parallelism=10):
    """Writes level by level: parents first for creates and updates, children first for deletes.

    Within a level the writes are independent and run `parallelism` at a time. A failed level stops
    the run before any child of it is written; the failures quote Kong's answers.
    """
    errors = []
    lock = threading.Lock()

    def run(change, method, path, body):
        try:
            client.write(method, path, body, record_body=None)
        except KongError as exc:
            with lock:
                errors.append({"kind": change.kind, "name": change.name, "action": change.action,
                               "error": str(exc), "kong_error": exc.body})

    def run_all(jobs):
        if not jobs:
            return
        if parallelism <= 1 or len(jobs) == 1:
            for job in jobs:
                run(*job)
            return
        with ThreadPoolExecutor(max_workers=parallelism) as pool:
            list(pool.map(lambda job: run(*job), jobs))

    writes = [c for c in plan.changes if c.action != "delete"]
    deletes = [c for c in plan.changes if c.action == "delete"]
    for level in LEVELS:
        batch = [c for c in writes if c.kind in level]
        run_all([(c, "DELETE", c.pre_delete, None) for c in batch if c.pre_delete])
        run_all([(c, c.method, c.path, c.body) for c in batch if c.first])
        if errors:
            return errors
        run_all([(c, c.method, c.path, c.body) for c in batch if not c.first])
        if errors:
            return errors
    for level in reversed(LEVELS):
        run_all([(c, "DELETE", c.path, None) for c in deletes if c.kind in level])
        if errors:
            return errors
    return errors


# ----------------------------------------------------------------------------------------------------
# Dump (kong_info): Kong's state in the same format, fed back to kong_sync it changes nothing
# ----------------------------------------------------------------------------------------------------

def _clean(kind, item, drop=()):
    out = {}
    for key, value in item.items():
        if key in IGNORED or key in FOREIGN.get(kind, {}) or key in drop:
            continue
        if value is None or value == [] or value == {}:
            continue
        out[key] = value
    if kind == "basicauth_credentials":
        out.pop("password", None)  # a SHA1 hash: useless to re-import, never dumped
    if kind == "oauth2_credentials" and item.get("hash_secret"):
        out.pop("client_secret", None)
    if kind == "certificates" and out.get("snis"):
        out["snis"] = [{"name": n} for n in sni_names(out["snis"])]
    if kind == "ca_certificates":
        out.pop("cert_digest", None)
    return out


def _sorted(items, kind):
    # Ties are broken by the entity's own fields, never by its id: the order must survive a re-import
    # into another Kong (new ids) so that two exports of the same configuration are byte for byte equal.
    def key(item):
        spec = KINDS[kind]
        return (str(item.get(spec.key) or item.get("name") or item.get("username") or item.get("custom_id")
                    or item.get("group") or item.get("target") or ""), str(item.get("cert") or ""),
                json.dumps(_clean(kind, item), sort_keys=True, default=str))
    return sorted(items, key=key)


def dump(state, select_tags=None):
    """decK-format configuration, nested where decK nests, sorted for stable diffs."""
    by_id = {}
    for kind, items in state.items():
        for item in items:
            by_id[item["id"]] = (kind, item)

    def ref_name(field, item):
        pid = (item.get(field) or {}).get("id")
        if not pid:
            return None
        parent = by_id.get(pid)
        if parent is None:
            return pid
        pkind, pitem = parent
        return pitem.get(KINDS[pkind].key) or pitem.get("custom_id") or pid

    plugins = state.get("plugins", [])
    nested_plugin_ids = set()

    def plugins_of(field, parent_id):
        out = []
        for p in plugins:
            scope = [f for f in ("service", "route", "consumer") if (p.get(f) or {}).get("id")]
            if scope == [field] and p[field]["id"] == parent_id:
                out.append(_clean("plugins", p))
                nested_plugin_ids.add(p["id"])
        return sorted(out, key=lambda x: (x.get("instance_name") or "", x["name"]))

    config = {"_format_version": FORMAT_VERSION}
    if select_tags:
        config["_info"] = {"select_tags": list(select_tags)}
    routes = state.get("routes")
    routes_by_service = {}
    for route in routes or []:
        sid = (route.get("service") or {}).get("id")
        routes_by_service.setdefault(sid if sid in by_id else None, []).append(route)
    if state.get("services") is not None:
        config["services"] = []
        for svc in _sorted(state["services"], "services"):
            entry = _clean("services", svc)
            if routes is not None:
                entry["routes"] = []
                for route in _sorted(routes_by_service.pop(svc["id"], []), "routes"):
                    rentry = _clean("routes", route)
                    if "plugins" in state:
                        rentry["plugins"] = plugins_of("route", route["id"])
                    entry["routes"].append(rentry)
            if "plugins" in state:
                entry["plugins"] = plugins_of("service", svc["id"])
            config["services"].append(entry)
    if routes is not None:
        rest = [r for rs in routes_by_service.values() for r in rs]
        config["routes"] = []
        for route in _sorted(rest, "routes"):
            rentry = _clean("routes", route)
            if route.get("service"):
                rentry["service"] = ref_name("service", route)
            if "plugins" in state:
                rentry["plugins"] = plugins_of("route", route["id"])
            config["routes"].append(rentry)
    if state.get("consumers") is not None:
        config["consumers"] = []
        for consumer in _sorted(state["consumers"], "consumers"):
            entry = _clean("consumers", consumer)
            for kind in CREDENTIAL_KINDS:
                if kind in state:
                    creds = [c for c in state[kind] if (c.get("consumer") or {}).get("id") == consumer["id"]]
                    entry[kind] = [_clean(kind, c) for c in _sorted(creds, kind)]
            if "plugins" in state:
                entry["plugins"] = plugins_of("consumer", consumer["id"])
            config["consumers"].append(entry)
    if "plugins" in state:
        config["plugins"] = []
        for p in plugins:
            if p["id"] in nested_plugin_ids:
                continue
            entry = _clean("plugins", p)
            for field in ("service", "route", "consumer"):
                if p.get(field):
                    entry[field] = ref_name(field, p)
            config["plugins"].append(entry)
        # By name, then scope by name (not by id, see _sorted), then the rest of the entity.
        config["plugins"].sort(key=lambda x: (x["name"], x.get("instance_name") or "", str(x.get("service") or ""),
                                              str(x.get("route") or ""), str(x.get("consumer") or ""),
                                              json.dumps(x, sort_keys=True, default=str)))
    if state.get("upstreams") is not None:
        config["upstreams"] = []
        for upstream in _sorted(state["upstreams"], "upstreams"):
            entry = _clean("upstreams", upstream)
            if "targets" in state:
                targets = [t for t in state["targets"] if (t.get("upstream") or {}).get("id") == upstream["id"]]
                entry["targets"] = [_clean("targets", t) for t in _sorted(targets, "targets")]
            config["upstreams"].append(entry)
    for kind in ("certificates", "ca_certificates"):
        if state.get(kind) is not None:
            config[kind] = [_clean(kind, c) for c in _sorted(state[kind], kind)]
    return config
