"""The MeshTrafficPermissions that aic.gateway.service_mesh_policies derives from a service's `mesh.allow_from`,
applied to the Kuma stand-in (real kuma-cp / kuma-dp stand-in processes on loopback, real TCP forwarding).

kuma.md §5: with mTLS on, "all traffic is denied unless a MeshTrafficPermission allows it"; a denied HTTP
request gets Envoy's RBAC answer, 403 "RBAC: access denied" (tests/standins/kuma/README.md, kuma_dp.py).
kuma.md §4: `from[].targetRef` `MeshSubset` with `tags: {kuma.io/service: <caller>}`; the top-level
`targetRef` `MeshService` names the `kuma.io/service` value on universal.
"""

import pytest

from ansible_collections.aic.gateway.plugins.filter.service_mesh_policies import service_mesh_policies

from .kuma_runtime_helpers import ControlPlane, Dataplane, EchoServer, dataplane_yaml, free_port, get_via, wait_for

MTLS_MESH = {"type": "Mesh", "name": "default",
             "mtls": {"enabledBackend": "ca-1", "backends": [{"name": "ca-1", "type": "builtin"}]}}
ALLOW_ALL = {"type": "MeshTrafficPermission", "mesh": "default", "name": "allow-all",
             "spec": {"from": [{"targetRef": {"kind": "Mesh"}, "default": {"action": "Allow"}}]}}


def apply(cp, policy):
    body = {"type": policy["type"], "mesh": "default", "name": policy["name"], "labels": policy.get("labels", {}),
            "spec": policy["spec"]}
    cp.put("/meshes/default/meshtrafficpermissions/" + policy["name"], body)


@pytest.fixture()
def callers(tmp_path):
    """backend-1 (service `backend`, http inbound -> echo) and two delegated gateways with an outbound to it:
    `kong` (listed in backend's allow_from) and `ghost` (not listed)."""
    cp = ControlPlane(tmp_path).start()
    echo = EchoServer("backend")
    inbound, via_kong, via_ghost = free_port(), free_port(), free_port()
    proxies = [
        Dataplane(tmp_path, cp, "backend", dataplane_yaml("backend-1", inbound=[(inbound, echo.port, "backend", "http")]),
                  cp.token(tags={"kuma.io/service": ["backend"]})),
        Dataplane(tmp_path, cp, "kong", dataplane_yaml("kong-1", gateway="kong", outbound=[(via_kong, "backend")]),
                  cp.token(name="kong-1")),
        Dataplane(tmp_path, cp, "ghost", dataplane_yaml("ghost-1", gateway="ghost", outbound=[(via_ghost, "backend")]),
                  cp.token(name="ghost-1")),
    ]
    for proxy in proxies:
        proxy.wait_ready()
    yield {"cp": cp, "kong": via_kong, "ghost": via_ghost}
    for proxy in reversed(proxies):
        proxy.stop()
    echo.close()
    cp.stop()


def test_a_caller_outside_allow_from_is_refused_with_the_rbac_403(callers):
    cp = callers["cp"]
    definitions = {"svc-1": {"service_definitions": [{"name": "backend", "mesh": {"allow_from": ["kong"]}}]}}
    policies = service_mesh_policies(definitions, ["svc-1"])
    assert [p["name"] for p in policies] == ["allow-to-backend"]
    # Before mTLS both callers get through (kuma.md §5 "Without mTLS, MTP has no effect").
    wait_for(lambda: get_via(callers["kong"])[0] == 200 and get_via(callers["ghost"])[0] == 200)
    # The order playbooks/mesh.yml keeps: permissions first (with a mesh-wide allow-all beside them), then mTLS.
    apply(cp, ALLOW_ALL)
    apply(cp, policies[0])
    cp.put("/meshes/default", MTLS_MESH)
    # Generous timeouts: the data planes pick the change up by polling, slower on a loaded machine.
    wait_for(lambda: get_via(callers["kong"]) == (200, "backend /"), timeout=30)
    wait_for(lambda: get_via(callers["ghost"]) == (403, "RBAC: access denied"), timeout=30)
    assert wait_for(lambda: get_via(callers["kong"]) == (200, "backend /"), timeout=30)
