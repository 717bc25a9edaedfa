# -*- coding: utf-8 -*-
# Copyright (c) aic.gateway contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
name: mesh_default_policies
short_description: Give every declared Kuma mesh the policies it does not declare itself
version_added: 0.1.0
author: aic.gateway maintainers (@aic-gateway)
description:
  - Returns a copy of O(_input) (the C(kuma_cp_meshes) list) where each mesh's C(policies) gets every policy of
    O(defaults) whose C(type) the mesh does not already declare (in any state).
  - A mesh that declares its own MeshMetric keeps it, and gets no default MeshMetric; declaring one with
    C(state=absent) turns the default off for that mesh.
  - Used by the kuma_cp role to point every mesh's metrics at Prometheus and its traces at Zipkin when the
    inventory has those hosts.
options:
  _input:
    description: The meshes, each a dict with C(name) and optional C(policies).
    type: list
    elements: dict
    required: true
  defaults:
    description: Policies (dicts with C(type), C(name) and C(spec)) to add where the type is missing.
    type: list
    elements: dict
    required: true
"""

EXAMPLES = r"""
- name: Meshes with the platform's metrics and tracing policies
  ansible.builtin.debug:
    msg: "{{ kuma_cp_meshes | aic.gateway.mesh_default_policies(defaults) }}"
  vars:
    defaults:
      - {type: MeshMetric, name: aic-gateway-metrics, spec: {targetRef: {kind: Mesh}}}
"""

RETURN = r"""
_value:
  description: The meshes, each with its policies followed by the added defaults.
  type: list
  elements: dict
"""

import copy
from collections.abc import Mapping, Sequence

from ansible.errors import AnsibleFilterError


def mesh_default_policies(meshes, defaults):
    """Append to each mesh the default policies whose type it does not declare."""
    if isinstance(meshes, (str, bytes)) or not isinstance(meshes, Sequence):
        raise AnsibleFilterError("mesh_default_policies expects a list of meshes, got %s" % type(meshes).__name__)
    if isinstance(defaults, (str, bytes)) or not isinstance(defaults, Sequence):
        raise AnsibleFilterError("mesh_default_policies expects a list of policies, got %s"
                                 % type(defaults).__name__)
    for policy in defaults:
        if not isinstance(policy, Mapping) or not policy.get("type") or not policy.get("name"):
            raise AnsibleFilterError("each default policy needs a type and a name: %r" % (policy,))
    out = []
    for mesh in meshes:
        if not isinstance(mesh, Mapping):
            raise AnsibleFilterError("each mesh must be a dict, got %r" % (mesh,))
        own = list(mesh.get("policies") or [])
        declared = {p.get("type") for p in own if isinstance(p, Mapping)}
        added = [copy.deepcopy(dict(p)) for p in defaults if p["type"] not in declared]
        result = dict(mesh)
        if own or added:
            result["policies"] = own + added
        out.append(result)
    return out


class FilterModule(object):
    def filters(self):
        return {"mesh_default_policies": mesh_default_policies}
