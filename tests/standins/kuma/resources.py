"""Resource types, validation, defaulting and computed fields of the kuma-cp stand-in.

Test double, NOT Kuma.  Facts are cited as ``kuma.md §N "<quote>"``
(/work/shared/reference/kuma.md).  Violation texts not quoted there are
UNCONFIRMED (they only need to be 400s with a field list for the modules).
"""

import base64
import binascii
import re

# ------------------------------------------------------------------ types
# kuma.md §4 "Paths": plural names; "Legacy plurals are `ws.name + "s"`".
NEW_POLICIES = {
    # plural: (Type, hasToTargetRef, hasFromTargetRef) -- to/from flags UNCONFIRMED
    "meshtrafficpermissions": ("MeshTrafficPermission", False, True),
    "meshtimeouts": ("MeshTimeout", True, True),
    "meshretries": ("MeshRetry", True, False),
    "meshcircuitbreakers": ("MeshCircuitBreaker", True, True),
    "meshratelimits": ("MeshRateLimit", False, True),
    "meshhealthchecks": ("MeshHealthCheck", True, False),
    "meshtraces": ("MeshTrace", False, False),
    "meshmetrics": ("MeshMetric", False, False),
    "meshaccesslogs": ("MeshAccessLog", True, True),
    "meshhttproutes": ("MeshHTTPRoute", True, False),
    "meshtcproutes": ("MeshTCPRoute", True, False),
    "meshloadbalancingstrategies": ("MeshLoadBalancingStrategy", True, False),
    "meshfaultinjections": ("MeshFaultInjection", True, True),
    "meshpassthroughs": ("MeshPassthrough", False, False),
    "meshproxypatches": ("MeshProxyPatch", False, False),
    "meshtlses": ("MeshTLS", True, True),
}
NEW_MESH_SCOPED = {  # new-style (spec nested) but not policies
    "meshservices": "MeshService",
    "meshexternalservices": "MeshExternalService",
    "meshmultizoneservices": "MeshMultiZoneService",
    "meshidentities": "MeshIdentity",
    "meshtrusts": "MeshTrust",
}
LEGACY_MESH_SCOPED = {
    "dataplanes": "Dataplane",
    "secrets": "Secret",
    "meshgateways": "MeshGateway",
    "meshgatewayroutes": "MeshGatewayRoute",
    "external-services": "ExternalService",
    "proxytemplates": "ProxyTemplate",
}
LEGACY_POLICIES = {
    "traffic-permissions": "TrafficPermission",
    "traffic-routes": "TrafficRoute",
    "retries": "Retry",
    "timeouts": "Timeout",
    "health-checks": "HealthCheck",
    "circuit-breakers": "CircuitBreaker",
    "rate-limits": "RateLimit",
    "fault-injections": "FaultInjection",
    "traffic-logs": "TrafficLog",
    "traffic-traces": "TrafficTrace",
    "virtual-outbounds": "VirtualOutbound",
}
# kuma.md §4 "Global resources"
GLOBAL = {
    "meshes": ("Mesh", False),
    "global-secrets": ("GlobalSecret", False),
    "zones": ("Zone", False),
    "zoneingresses": ("ZoneIngress", False),
    "zoneegresses": ("ZoneEgress", False),
    "hostnamegenerators": ("HostnameGenerator", True),
}
# kuma.md §2 "Only `Secret` and `GlobalSecret` (`ws.admin_only`) ... are restricted."
ADMIN_ONLY = {"Secret", "GlobalSecret"}
# kuma.md §4 "`kri_mtp_default___mtp-1_`", "`kri_dp_…`"; other short names UNCONFIRMED, so no kri
KRI_SHORT = {"MeshTrafficPermission": "mtp", "Dataplane": "dp"}


class ResourceType:
    """One row of GET /_resources plus what the handlers need."""

    def __init__(self, name, path, scope, new_style, policy=None):
        self.name = name
        self.path = path
        self.scope = scope                # "Global" | "Mesh"
        self.new_style = new_style        # spec nested under "spec" (kuma.md §4 "GET response shapes")
        self.policy = policy              # None or (hasTo, hasFrom, isTargetRef)
        self.admin_only = name in ADMIN_ONLY

    @property
    def mesh_scoped(self):
        return self.scope == "Mesh"

    def describe(self, read_only=False):
        """kuma.md §4 "`GET /_resources`": name, scope, readOnly, path, singular/plural display names,
        includeInFederation, policy{...}.  Display names are derived (UNCONFIRMED wording);
        shortName is left out (UNCONFIRMED values)."""
        words = re.sub(r"(?<=[a-z])(?=[A-Z])", " ", self.name)
        out = {"name": self.name, "scope": self.scope, "readOnly": read_only, "path": self.path,
               "singularDisplayName": words, "pluralDisplayName": words + "s",
               "includeInFederation": self.scope == "Mesh" and self.name not in ("Dataplane",)}
        if self.policy is not None:
            out["policy"] = {"hasToTargetRef": self.policy[0], "hasFromTargetRef": self.policy[1],
                             "isTargetRef": self.policy[2]}
        return out


def _registry():
    types = {}
    for plural, (name, has_to, has_from) in NEW_POLICIES.items():
        types[plural] = ResourceType(name, plural, "Mesh", True, (has_to, has_from, True))
    for plural, name in NEW_MESH_SCOPED.items():
        types[plural] = ResourceType(name, plural, "Mesh", True)
    for plural, name in LEGACY_MESH_SCOPED.items():
        types[plural] = ResourceType(name, plural, "Mesh", False)
    for plural, name in LEGACY_POLICIES.items():
        types[plural] = ResourceType(name, plural, "Mesh", False, (False, False, False))
    for plural, (name, new_style) in GLOBAL.items():
        types[plural] = ResourceType(name, plural, "Global", new_style)
    return types


TYPES = _registry()
BY_NAME = {t.name: t for t in TYPES.values()}
META_FIELDS = ("type", "mesh", "name", "creationTime", "modificationTime", "labels", "kri", "snis", "status")


# ------------------------------------------------------------------ validation
class Violations(Exception):
    """400 "Resource is not valid" with invalid_parameters / causes."""

    def __init__(self, items):
        super().__init__("; ".join("%s: %s" % item for item in items))
        self.items = list(items)


RFC1123 = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
RFC1035 = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
TARGET_KINDS = ("Mesh", "MeshSubset", "MeshService", "MeshServiceSubset", "MeshGateway", "MeshHTTPRoute",
                "Dataplane", "MeshExternalService", "MeshMultiZoneService")


def check_name(rtype, name):
    """kuma.md §5 "Since 2.10, names must be RFC-1123 subdomains ... Mesh names over 63 characters
    are rejected".  Reason texts UNCONFIRMED."""
    bad = []
    if not name:
        bad.append(("name", "cannot be empty"))
    elif len(name) > 253 or not RFC1123.match(name):
        bad.append(("name", "invalid name: must be a valid RFC 1123 subdomain"))
    elif rtype.name == "Mesh" and (len(name) > 63 or not RFC1035.match(name)):
        bad.append(("name", "invalid name: must be a valid RFC 1035 label of at most 63 characters"))
    return bad


def _is_base64(value):
    try:
        base64.b64decode(value, validate=True)
        return True
    except (binascii.Error, TypeError, ValueError):
        return False


def validate_mesh(body, current=None):
    """Mesh rules.  The CA-change rule and its text are kuma.md §5 "Changing `mtls.enabledBackend`
    while mTLS is on is rejected: "Changing CA when mTLS is enabled is forbidden. Disable mTLS first
    and then change the CA" (`mesh_validator.go`)"; the field name and other texts are UNCONFIRMED."""
    bad = []
    mtls = body.get("mtls") or {}
    if not isinstance(mtls, dict):
        return [("mtls", "must be an object")]
    backends = mtls.get("backends") or []
    names = []
    for index, backend in enumerate(backends):
        where = "mtls.backends[%d]" % index
        if not isinstance(backend, dict):
            bad.append((where, "must be an object"))
            continue
        if not backend.get("name"):
            bad.append((where + ".name", "cannot be empty"))
        elif backend["name"] in names:
            bad.append((where + ".name", "\"%s\" name is already used for another backend" % backend["name"]))
        names.append(backend.get("name"))
        if backend.get("type") not in ("builtin", "provided"):
            bad.append((where + ".type", "unknown backend type. Available backends: \"builtin\", \"provided\""))
        if backend.get("mode", "STRICT") not in ("STRICT", "PERMISSIVE"):
            bad.append((where + ".mode", "must be one of STRICT, PERMISSIVE"))
    enabled = mtls.get("enabledBackend") or ""
    if enabled and enabled not in names:
        bad.append(("mtls.enabledBackend", "has to be set to one of the backends in the mesh"))
    old_enabled = ((current or {}).get("mtls") or {}).get("enabledBackend") or ""
    if old_enabled and enabled and old_enabled != enabled:
        bad.append(("mtls.enabledBackend",
                    "Changing CA when mTLS is enabled is forbidden. Disable mTLS first and then change the CA"))
    services = (body.get("meshServices") or {}).get("mode")
    if services is not None and services not in ("Disabled", "Everywhere", "ReachableBackends", "Exclusive"):
        bad.append(("meshServices.mode", "must be one of Disabled, Everywhere, ReachableBackends, Exclusive"))
    return bad


def validate_dataplane(body):
    """kuma.md §3 "Dataplane resource (universal)" validation rules; texts UNCONFIRMED."""
    bad = []
    net = body.get("networking")
    if not isinstance(net, dict):
        return [("networking", "must be defined")]
    address = net.get("address")
    if not address:
        bad.append(("networking.address", "address can't be empty"))
    elif address in ("0.0.0.0", "::"):
        bad.append(("networking.address", "must not be 0.0.0.0 or ::"))
    inbound = net.get("inbound") or []
    gateway = net.get("gateway")
    if gateway:
        if inbound:
            bad.append(("networking.inbound", "inbound cannot be defined for gateways"))
        tags = gateway.get("tags") or {}
        if not tags.get("kuma.io/service"):
            bad.append(("networking.gateway.tags[\"kuma.io/service\"]", "tag has to exist"))
        if tags.get("kuma.io/protocol", "tcp") != "tcp":
            bad.append(("networking.gateway.tags[\"kuma.io/protocol\"]", "other values than TCP are not allowed"))
        if gateway.get("type", "DELEGATED") == "BUILTIN" and net.get("outbound"):
            bad.append(("networking.outbound", "outbound cannot be defined for builtin gateways"))
    elif not inbound:
        bad.append(("networking", "has to contain at least one inbound interface or gateway"))
    ports = []
    for index, item in enumerate(inbound):
        where = "networking.inbound[%d]" % index
        if not isinstance(item.get("port"), int) or not 0 < item["port"] < 65536:
            bad.append((where + ".port", "port must be in the range [1, 65535]"))
        if not (item.get("tags") or {}).get("kuma.io/service"):
            bad.append((where + ".tags[\"kuma.io/service\"]", "tag has to exist"))
        ports.append(item.get("port"))
    for index, item in enumerate(net.get("outbound") or []):
        where = "networking.outbound[%d]" % index
        if item.get("backendRef") and item.get("tags"):
            bad.append((where, "both backendRef and tags cannot be defined"))
        ports.append(item.get("port"))
    admin = (net.get("admin") or {}).get("port")
    if admin and admin in ports:
        bad.append(("networking.admin.port", "must differ from inbound and outbound ports"))
    return bad


def validate_secret(body):
    """Secret / GlobalSecret: `data` is base64 (kuma.md §4 "`data`:\"<base64>\""); texts UNCONFIRMED."""
    data = body.get("data")
    if not data:
        return [("data", "cannot be empty")]
    if not isinstance(data, str) or not _is_base64(data):
        return [("data", "must be base64 encoded")]
    return []


def _check_ref(ref, where, bad):
    if not isinstance(ref, dict) or ref.get("kind") not in TARGET_KINDS:
        bad.append((where + ".kind", "value is not supported"))


def validate_new_style(rtype, body):
    """New-style resources carry `spec` (kuma.md §4 "New policies ... nest the spec").
    Only the targetRef kinds (kuma.md §4 "General rules") are checked; the OpenAPI schema
    validation of the real CP is not reproduced."""
    spec = body.get("spec")
    if not isinstance(spec, dict):
        return [("spec", "must be defined")]
    if rtype.policy is None:
        return []
    bad = []
    if "targetRef" in spec:
        _check_ref(spec["targetRef"], "spec.targetRef", bad)
    for direction in ("to", "from", "rules"):
        entries = spec.get(direction)
        if entries is None:
            continue
        if not isinstance(entries, list):
            bad.append(("spec.%s" % direction, "must be a list"))
            continue
        for index, entry in enumerate(entries):
            if direction != "rules":
                _check_ref((entry or {}).get("targetRef"), "spec.%s[%d].targetRef" % (direction, index), bad)
            if not isinstance((entry or {}).get("default"), dict):
                bad.append(("spec.%s[%d].default" % (direction, index), "must be defined"))
    if rtype.name == "MeshTrafficPermission":
        for index, entry in enumerate(spec.get("from") or []):
            action = ((entry or {}).get("default") or {}).get("action")
            if action not in ("Allow", "Deny", "AllowWithShadowDeny"):
                bad.append(("spec.from[%d].default.action" % index, "value is not supported"))
    return bad


def validate(rtype, body, current=None):
    bad = check_name(rtype, body.get("name"))
    if rtype.name == "Mesh":
        bad += validate_mesh(body, current)
    elif rtype.name == "Dataplane":
        bad += validate_dataplane(body)
    elif rtype.name in ("Secret", "GlobalSecret"):
        bad += validate_secret(body)
    elif rtype.new_style:
        bad += validate_new_style(rtype, body)
    if "labels" in body and not (isinstance(body["labels"], dict)
                                 and all(isinstance(v, str) for v in body["labels"].values())):
        bad.append(("labels", "must be a map of strings"))
    if bad:
        raise Violations(bad)


# ------------------------------------------------------------------ defaulting
def default_mesh(body):
    """kuma.md §4 "Mesh `metrics` prometheus backends get defaults: `port 5670`, `path /metrics`,
    `tags kuma.io/service: dataplane-metrics`, `tls.mode`" (`tls.mode` value UNCONFIRMED: activeMTLSBackend)."""
    for backend in ((body.get("metrics") or {}).get("backends") or []):
        if backend.get("type") == "prometheus":
            conf = backend.setdefault("conf", {})
            conf.setdefault("port", 5670)
            conf.setdefault("path", "/metrics")
            conf.setdefault("tags", {"kuma.io/service": "dataplane-metrics"})
            conf.setdefault("tls", {"mode": "activeMTLSBackend"})


def default_new_style(rtype, body):
    """kuma.md §4 "GET therefore returns fields you did not send (e.g. MeshTrace zipkin `apiVersion`,
    `traceId128bit`, `sharedSpanContext`)"; §4 "2.10 unified universal defaults: MeshTrace
    `apiVersion: httpJson`, `sharedSpanContext: true`; MeshMetric `path: /metrics/prometheus`".
    `traceId128bit: false` and MeshMetric `port: 5670` are UNCONFIRMED."""
    spec = body.get("spec") or {}
    if rtype.name == "MeshTrace":
        for backend in ((spec.get("default") or {}).get("backends") or []):
            zipkin = backend.get("zipkin")
            if isinstance(zipkin, dict):
                zipkin.setdefault("apiVersion", "httpJson")
                zipkin.setdefault("traceId128bit", False)
                zipkin.setdefault("sharedSpanContext", True)
    elif rtype.name == "MeshMetric":
        for backend in ((spec.get("default") or {}).get("backends") or []):
            prom = backend.get("prometheus")
            if isinstance(prom, dict):
                prom.setdefault("port", 5670)
                prom.setdefault("path", "/metrics/prometheus")


def apply_defaults(rtype, body):
    if rtype.name == "Mesh":
        default_mesh(body)
    elif rtype.new_style:
        default_new_style(rtype, body)


def computed_labels(rtype, body, zone):
    """kuma.md §4 "Computed labels. On a zone CP these are `kuma.io/mesh`, `kuma.io/origin: zone`,
    `kuma.io/zone: <zone>` and `kuma.io/env: universal` (on zone-creatable types), plus
    `kuma.io/proxy-type` on Dataplanes".  Which types get them on a non-federated CP, and the
    proxy-type values (`sidecar`, `gateway`), are UNCONFIRMED: here every mesh-scoped type gets them."""
    labels = {}
    if not rtype.mesh_scoped:
        return labels
    labels["kuma.io/mesh"] = body["mesh"]
    labels["kuma.io/origin"] = "zone"
    labels["kuma.io/zone"] = zone
    labels["kuma.io/env"] = "universal"
    if rtype.name == "Dataplane":
        gateway = (body.get("networking") or {}).get("gateway")
        labels["kuma.io/proxy-type"] = "gateway" if gateway else "sidecar"
    return labels


def kri(rtype, body):
    """kuma.md §4 "`kri` appears in 2.13+" (`kri_mtp_default___mtp-1_`): kri_<short>_<mesh>_<zone>_<ns>_<name>_<section>;
    the zone segment is empty in the quoted example (standalone)."""
    short = KRI_SHORT.get(rtype.name)
    if short is None:
        return None
    return "kri_%s_%s___%s_" % (short, body.get("mesh", ""), body["name"])


def spec_of(rtype, resource):
    """What a client sent, without server fields (legacy types: top-level spec fields)."""
    if rtype.new_style:
        return {"spec": resource.get("spec")}
    return {k: v for k, v in resource.items() if k not in META_FIELDS}


# ------------------------------------------------------------------ mesh defaults
def mesh_default_policies(mesh):
    """kuma.md §2 "Defaults created with each Mesh (universal)": MeshTimeouts `mesh-timeout-all-<mesh>`
    and `mesh-gateways-timeout-all-<mesh>`, MeshCircuitBreaker `mesh-circuit-breaker-all-<mesh>`,
    MeshRetry `mesh-retry-all-<mesh>`.  Spec values follow kumahq/kuma pkg/defaults/mesh/*.go on master
    (values in 2.14.3 UNCONFIRMED; the inbound `rules` halves of the timeouts are left out)."""
    mesh_ref = {"kind": "Mesh"}
    return [
        ("MeshTimeout", "mesh-timeout-all-%s" % mesh, {
            "targetRef": {"kind": "Mesh", "proxyTypes": ["Sidecar"]},
            "to": [{"targetRef": mesh_ref, "default": {
                "connectionTimeout": "5s", "idleTimeout": "1h0m0s",
                "http": {"requestTimeout": "15s", "streamIdleTimeout": "30m0s"}}}]}),
        ("MeshTimeout", "mesh-gateways-timeout-all-%s" % mesh, {
            "targetRef": {"kind": "Mesh", "proxyTypes": ["Gateway"]},
            "to": [{"targetRef": mesh_ref, "default": {
                "idleTimeout": "1h0m0s", "http": {"streamIdleTimeout": "5s"}}}]}),
        ("MeshCircuitBreaker", "mesh-circuit-breaker-all-%s" % mesh, {
            "targetRef": mesh_ref,
            "to": [{"targetRef": mesh_ref, "default": {"connectionLimits": {
                "maxConnections": 1024, "maxPendingRequests": 1024, "maxRequests": 1024, "maxRetries": 3}}}]}),
        ("MeshRetry", "mesh-retry-all-%s" % mesh, {
            "targetRef": mesh_ref,
            "to": [{"targetRef": mesh_ref, "default": {
                "tcp": {"maxConnectAttempt": 5},
                "http": {"numRetries": 5, "perTryTimeout": "16s",
                         "backOff": {"baseInterval": "25ms", "maxInterval": "250ms"}},
                "grpc": {"numRetries": 5, "perTryTimeout": "16s",
                         "backOff": {"baseInterval": "25ms", "maxInterval": "250ms"}}}}]}),
    ]
