"""MeshTrafficPermission evaluation of the kuma-dp stand-in (inbound side; test double, NOT Kuma).

kuma.md §5: "Once it is enabled, **all traffic is denied unless a MeshTrafficPermission allows it**";
"Without mTLS, MTP has no effect"; actions `Allow|Deny|AllowWithShadowDeny` (kuma.md §4 MTP example).
kuma.md §4 "General rules": top-level `targetRef.kind` Mesh, Dataplane (`labels`, optional `sectionName`),
MeshSubset (`tags`), MeshService; `from[]` entries have `targetRef` + `default`; `rules[]` is the 2.10+
inbound form.

Stand-in choices (UNCONFIRMED, see README): the most specific match wins -- policies are ordered by the
specificity of their top-level targetRef (Mesh < MeshSubset < MeshService < Dataplane), then of the `from`
targetRef (Mesh < MeshSubset < MeshService < MeshServiceSubset), then by name; the last matching entry decides.
`rules[].default` takes lists `allow`, `deny`, `allowWithShadowDeny` of matches
`{spiffeID: {type: Exact|Prefix, value}}`; a matching `deny` beats `allow`.
"""

TOP_RANK = {"Mesh": 0, "MeshSubset": 1, "MeshService": 2, "Dataplane": 3}
FROM_RANK = {"Mesh": 0, "MeshSubset": 1, "MeshService": 2, "MeshServiceSubset": 3}


def _tags_match(wanted, have):
    """``have`` maps tag -> set of values."""
    return all(value in have.get(key, ()) for key, value in (wanted or {}).items())


def _top_matches(ref, dataplane, inbound):
    kind = (ref or {}).get("kind", "Mesh")
    tags = {k: {v} for k, v in (inbound.get("tags") or {}).items()}
    if kind == "Mesh":
        return True
    if kind == "MeshSubset":
        return _tags_match(ref.get("tags"), tags)
    if kind == "MeshService":
        return (inbound.get("tags") or {}).get("kuma.io/service") == ref.get("name")
    if kind == "Dataplane":
        labels = dataplane.get("labels") or {}
        if not all(labels.get(k) == v for k, v in (ref.get("labels") or {}).items()):
            return False
        if ref.get("name") and ref["name"] != dataplane.get("name"):
            return False
        section = ref.get("sectionName")
        return not section or section in (str(inbound.get("port")), inbound.get("name"))
    return False


def _from_matches(ref, source):
    kind = (ref or {}).get("kind")
    if kind == "Mesh":
        return True
    if kind == "MeshSubset":
        return _tags_match(ref.get("tags"), source["tags"])
    if kind == "MeshService":
        return ref.get("name") in source["tags"].get("kuma.io/service", ())
    if kind == "MeshServiceSubset":
        return (ref.get("name") in source["tags"].get("kuma.io/service", ())
                and _tags_match(ref.get("tags"), source["tags"]))
    return False


def _spiffe_match(match, spiffe_ids):
    sid = (match or {}).get("spiffeID") or {}
    value = sid.get("value") or ""
    if sid.get("type", "Exact") == "Prefix":
        return any(s.startswith(value) for s in spiffe_ids)
    return value in spiffe_ids


def decide(policies, dataplane, inbound, source):
    """'Allow' or 'Deny' for a source {tags: {tag: set}, spiffe: [ids]} reaching ``inbound`` of ``dataplane``.
    AllowWithShadowDeny allows (the shadow deny is only logged by Envoy)."""
    ordered = sorted(policies, key=lambda p: (TOP_RANK.get((p.get("targetRef") or {}).get("kind", "Mesh"), 0),
                                              p.get("name", "")))
    verdict = None
    for policy in ordered:
        if not _top_matches(policy.get("targetRef"), dataplane, inbound):
            continue
        entries = sorted(policy.get("from") or [],
                         key=lambda e: FROM_RANK.get((e.get("targetRef") or {}).get("kind"), 0))
        for entry in entries:
            if _from_matches(entry.get("targetRef"), source):
                verdict = (entry.get("default") or {}).get("action")
        for rule in policy.get("rules") or []:
            default = rule.get("default") or {}
            if any(_spiffe_match(m, source["spiffe"]) for m in default.get("deny") or []):
                verdict = "Deny"
            elif any(_spiffe_match(m, source["spiffe"]) for m in
                     (default.get("allow") or []) + (default.get("allowWithShadowDeny") or [])):
                verdict = "Allow"
    if verdict in ("Allow", "AllowWithShadowDeny"):
        return "Allow"
    return "Deny"
