# -*- coding: utf-8 -*-
from __future__ import annotations

import os
import sys

import pytest

from ansible.errors import AnsibleFilterError
from ansible_collections.aic.gateway.plugins.filter.service_mesh_policies import (
    policy_name, service_mesh_policies,
)

# The Kuma stand-in's MeshTrafficPermission evaluation (tests/standins/kuma/mtp.py), to show what the
# generated policies do on a data plane.
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "..", "standins", "kuma"))
import mtp  # noqa: E402  pylint: disable=wrong-import-position,import-error

CORE = {"name": "core-api", "port": 8080, "mesh": {"protocol": "http", "inbound_port": 20001, "allow_from": ["kong"]}}
AI = {"name": "ai-service", "mesh": {"service": "ai", "allow_from": ["core-api", "kong", "core-api"]}}
GHOST = {"name": "ghost", "mesh": {"inbound_port": 20002}}


def hostvars(**hosts):
    return {host: {"service_definitions": defs} for host, defs in hosts.items()}


def test_one_policy_per_service_with_allow_from_sorted_and_deduplicated():
    result = service_mesh_policies(hostvars(svc1=[CORE, GHOST], svc2=[AI]), ["svc1", "svc2"])
    assert [p["name"] for p in result] == ["allow-to-ai", "allow-to-core-api"]
    ai = result[0]
    assert ai["type"] == "MeshTrafficPermission"
    assert ai["labels"] == {"aic.gateway/source": "service-definitions"}
    assert ai["spec"]["targetRef"] == {"kind": "MeshService", "name": "ai"}   # mesh.service wins over name
    assert ai["spec"]["from"] == [
        {"targetRef": {"kind": "Mesh"}, "default": {"action": "Deny"}},
        {"targetRef": {"kind": "MeshSubset", "tags": {"kuma.io/service": "core-api"}}, "default": {"action": "Allow"}},
        {"targetRef": {"kind": "MeshSubset", "tags": {"kuma.io/service": "kong"}}, "default": {"action": "Allow"}},
    ]


def test_same_service_on_several_hosts_gives_one_policy_and_hosts_outside_the_list_are_ignored():
    hv = hostvars(a=[CORE], b=[CORE], c=[AI])
    assert [p["name"] for p in service_mesh_policies(hv, ["a", "b"])] == ["allow-to-core-api"]
    assert service_mesh_policies(hv, []) == []
    assert service_mesh_policies({"x": {}}, ["x", "not-in-hostvars"]) == []


def test_output_is_stable_whatever_the_host_order():
    hv = hostvars(a=[CORE], b=[AI])
    assert service_mesh_policies(hv, ["a", "b"]) == service_mesh_policies(hv, ["b", "a"])


def test_empty_allow_from_denies_everyone_and_absent_allow_from_writes_nothing():
    closed = {"name": "vault", "mesh": {"allow_from": []}}
    result = service_mesh_policies(hostvars(a=[closed, GHOST]), ["a"])
    assert len(result) == 1
    assert result[0]["spec"]["from"] == [{"targetRef": {"kind": "Mesh"}, "default": {"action": "Deny"}}]


def test_conflicting_declarations_are_refused_not_merged():
    other = {"name": "core-api", "mesh": {"allow_from": ["kong", "ghost"]}}
    with pytest.raises(AnsibleFilterError, match="widen access"):
        service_mesh_policies(hostvars(a=[CORE], b=[other]), ["a", "b"])


def test_names_are_valid_kuma_names():
    assert policy_name("Core_API") == "allow-to-core-api"
    assert policy_name("backend_kuma-demo_svc_3001") == "allow-to-backend-kuma-demo-svc-3001"
    assert len(policy_name("x" * 400)) <= 253


def test_two_services_with_the_same_policy_name_are_refused():
    a = {"name": "a_b", "mesh": {"allow_from": ["kong"]}}
    b = {"name": "a-b", "mesh": {"allow_from": ["kong"]}}
    with pytest.raises(AnsibleFilterError, match="same policy name"):
        service_mesh_policies(hostvars(h=[a, b]), ["h"])


def test_merged_into_the_declared_mesh_where_the_inventory_policy_of_the_same_name_wins():
    own = {"type": "MeshTrafficPermission", "name": "allow-to-core-api",
           "spec": {"from": [{"targetRef": {"kind": "Mesh"}, "default": {"action": "Allow"}}]}}
    timeout = {"type": "MeshTimeout", "name": "defaults", "spec": {}}
    meshes = [{"name": "default", "mtls": {"enabled": True}, "policies": [own, timeout]}, {"name": "other"}]
    result = service_mesh_policies(hostvars(a=[CORE, AI]), ["a"], mesh="default", meshes=meshes)
    assert [p["name"] for p in result[0]["policies"]] == ["allow-to-core-api", "defaults", "allow-to-ai"]
    assert result[0]["policies"][0] is not None and result[0]["policies"][0]["spec"] == own["spec"]
    assert result[0]["mtls"] == {"enabled": True}
    assert result[1] == {"name": "other"}
    assert meshes[0]["policies"] == [own, timeout]       # input untouched


def test_a_mesh_not_declared_is_added_even_without_policies():
    result = service_mesh_policies(hostvars(a=[CORE]), ["a"], mesh="payments", meshes=[{"name": "default"}])
    assert result == [{"name": "default"},
                      {"name": "payments", "policies": service_mesh_policies(hostvars(a=[CORE]), ["a"])}]
    assert service_mesh_policies(hostvars(a=[GHOST]), ["a"], meshes=[]) == [{"name": "default"}]


@pytest.mark.parametrize("definitions", [
    [{"name": "x", "mesh": {"allow_from": "kong"}}],
    [{"name": "x", "mesh": {"allow_from": [""]}}],
    [{"name": "x", "mesh": {"allow_from": [{"service": "kong"}]}}],
    [{"mesh": {"allow_from": ["kong"]}}],
    ["core-api"],
    "core-api",
])
def test_bad_definitions_are_refused(definitions):
    with pytest.raises(AnsibleFilterError):
        service_mesh_policies({"h": {"service_definitions": definitions}}, ["h"])


@pytest.mark.parametrize("args", [("hostvars", ["h"]), ({}, "h"), ({}, ["h"], "")])
def test_bad_arguments_are_refused(args):
    with pytest.raises(AnsibleFilterError):
        service_mesh_policies(*args)


def _verdict(policies, caller, target="core-api"):
    inbound = {"port": 20001, "tags": {"kuma.io/service": target}}
    source = {"tags": {"kuma.io/service": {caller}}, "spiffe": ["spiffe://default/%s" % caller]}
    return mtp.decide([dict(p["spec"], name=p["name"]) for p in policies], {"name": target + "-1"}, inbound, source)


def test_on_the_stand_in_data_plane_only_the_listed_callers_pass_even_beside_an_allow_all():
    """kuma.md section 5: with mTLS on, traffic no MeshTrafficPermission allows is denied; the stand-in's
    evaluation (tests/standins/kuma/mtp.py) lets the more specific target and source win, so the generated
    Mesh-Deny entry closes the service to callers outside allow_from even beside a mesh-wide allow-all."""
    policies = service_mesh_policies(hostvars(a=[CORE]), ["a"])
    allow_all = {"type": "MeshTrafficPermission", "name": "allow-all",
                 "spec": {"from": [{"targetRef": {"kind": "Mesh"}, "default": {"action": "Allow"}}]}}
    assert _verdict(policies, "kong") == "Allow"
    assert _verdict(policies, "ghost") == "Deny"
    assert _verdict(policies + [allow_all], "ghost") == "Deny"
    assert _verdict(policies + [allow_all], "kong") == "Allow"
    assert _verdict(policies + [allow_all], "ghost", target="other") == "Allow"   # other services untouched
