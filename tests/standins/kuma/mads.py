"""Monitoring Assignment Discovery (MADS v1) of the kuma-cp stand-in (test double, NOT Kuma).

What Prometheus' `kuma_sd_configs` asks and reads, from prometheus/prometheus `discovery/xds/client.go` and
`discovery/xds/kuma.go`:
- `POST <server>/v3/discovery:monitoringassignments?fetch-timeout=...` with a JSON `DiscoveryRequest`
  (`versionInfo`, `responseNonce`, `typeUrl`, `node.id`), `Content-Type: application/json`;
- `304 Not Modified` means "no change since versionInfo"; `200` carries a JSON `DiscoveryResponse` whose
  `resources` are `Any` messages of type `type.googleapis.com/kuma.observability.v1.MonitoringAssignment`
  (`mesh`, `service`, `labels`, `targets[{name, scheme, address, metricsPath, labels}]`);
  Prometheus turns each target into `__address__`, `__scheme__`, `__metrics_path__`, `instance` = name and
  `__meta_kuma_{mesh,service,dataplane,label_*}`.
- kuma.md §2 "Key config": the server listens on `monitoringAssignmentServer.port` (5676).
Which data planes are assigned: those of a mesh with a MeshMetric whose backend is `Prometheus`, at the data
plane's address and the backend's `port`/`path` (kuma.md §6 example `prometheus: {port: 5670, path: /metrics}`;
the 2.10+ universal default path is `/metrics/prometheus`, kuma.md §6 "2.10 unified universal defaults").
Simplification (stand-in): a MeshMetric applies to the whole mesh (its targetRef is not evaluated), and the
request is answered at once instead of being held open for `fetch-timeout`.
"""

import hashlib
import json

TYPE_URL = "type.googleapis.com/kuma.observability.v1.MonitoringAssignment"
PATH = "/v3/discovery:monitoringassignments"
DEFAULT_PORT = 5670
DEFAULT_PATH = "/metrics/prometheus"


def prometheus_backend(meshmetrics):
    """The first Prometheus backend of a mesh's MeshMetric policies (sorted by name), or None."""
    for policy in sorted(meshmetrics, key=lambda p: p.get("name", "")):
        default = (policy.get("spec") or {}).get("default") or {}
        for backend in default.get("backends") or []:
            if str(backend.get("type", "")).lower() == "prometheus":
                conf = backend.get("prometheus") or {}
                return {"port": int(conf.get("port") or DEFAULT_PORT), "path": conf.get("path") or DEFAULT_PATH}
    return None


def service_of(dataplane):
    """kuma.io/service of the first inbound, or of the gateway."""
    net = dataplane.get("networking") or {}
    for inbound in net.get("inbound") or []:
        service = (inbound.get("tags") or {}).get("kuma.io/service")
        if service:
            return service
    return ((net.get("gateway") or {}).get("tags") or {}).get("kuma.io/service", "")


def assignments(store):
    """One MonitoringAssignment per data plane of every mesh that has a Prometheus MeshMetric backend."""
    out = []
    for mesh in sorted(m["name"] for m in store.list("Mesh")):
        backend = prometheus_backend(store.list("MeshMetric", mesh))
        if backend is None:
            continue
        for dataplane in sorted(store.list("Dataplane", mesh), key=lambda d: d["name"]):
            net = dataplane.get("networking") or {}
            address = net.get("advertisedAddress") or net.get("address")
            if not address:
                continue
            service = service_of(dataplane)
            tags = {}
            for inbound in net.get("inbound") or []:
                tags.update(inbound.get("tags") or {})
            tags.update((net.get("gateway") or {}).get("tags") or {})
            out.append({"@type": TYPE_URL, "mesh": mesh, "service": service, "labels": {},
                        "targets": [{"name": dataplane["name"], "scheme": "http",
                                     "address": "%s:%d" % (address, backend["port"]),
                                     "metricsPath": backend["path"], "labels": tags}]})
    return out


def discovery(store, body):
    """Answer one DiscoveryRequest: (status, body bytes)."""
    try:
        request = json.loads(body or b"{}")
    except ValueError:
        return 400, b'{"message": "request body is not JSON"}'
    if request.get("typeUrl") not in (None, "", TYPE_URL):
        return 400, json.dumps({"message": "unsupported typeUrl %s" % request.get("typeUrl")}).encode()
    resources = assignments(store)
    version = hashlib.sha256(json.dumps(resources, sort_keys=True).encode()).hexdigest()[:16]
    if request.get("versionInfo") == version:
        return 304, b""
    answer = {"versionInfo": version, "resources": resources, "typeUrl": TYPE_URL, "nonce": version}
    return 200, json.dumps(answer).encode()
