# -*- coding: utf-8 -*-
from __future__ import annotations

import pytest

from ansible.errors import AnsibleFilterError
from ansible_collections.aic.gateway.plugins.filter.mesh_default_policies import mesh_default_policies

METRIC = {"type": "MeshMetric", "name": "aic-gateway-metrics",
          "spec": {"default": {"backends": [{"type": "Prometheus", "prometheus": {"port": 5670}}]}}}
TRACE = {"type": "MeshTrace", "name": "aic-gateway-traces", "spec": {"default": {"backends": [{"type": "Zipkin"}]}}}


def test_every_mesh_gets_the_defaults_after_its_own_policies():
    meshes = [{"name": "default", "policies": [{"type": "MeshRetry", "name": "r", "spec": {}}]},
              {"name": "payments"}]
    result = mesh_default_policies(meshes, [METRIC, TRACE])
    assert [p["name"] for p in result[0]["policies"]] == ["r", "aic-gateway-metrics", "aic-gateway-traces"]
    assert [p["name"] for p in result[1]["policies"]] == ["aic-gateway-metrics", "aic-gateway-traces"]


def test_a_mesh_that_declares_the_type_keeps_its_own_even_when_absent():
    own = {"type": "MeshMetric", "name": "custom", "spec": {}}
    off = {"type": "MeshTrace", "name": "old", "state": "absent"}
    result = mesh_default_policies([{"name": "default", "policies": [own, off]}], [METRIC, TRACE])
    assert result[0]["policies"] == [own, off]


def test_input_is_not_modified_and_defaults_are_copies():
    meshes = [{"name": "a"}, {"name": "b"}]
    result = mesh_default_policies(meshes, [METRIC])
    assert meshes == [{"name": "a"}, {"name": "b"}]
    result[0]["policies"][0]["spec"]["default"]["backends"][0]["prometheus"]["port"] = 1
    assert result[1]["policies"][0]["spec"]["default"]["backends"][0]["prometheus"]["port"] == 5670


def test_no_defaults_leaves_meshes_as_declared():
    assert mesh_default_policies([{"name": "a"}], []) == [{"name": "a"}]


@pytest.mark.parametrize("meshes, defaults", [("default", []), ([{"name": "a"}], [{"name": "x"}]), (["a"], [])])
def test_bad_input_is_refused(meshes, defaults):
    with pytest.raises(AnsibleFilterError):
        mesh_default_policies(meshes, defaults)
