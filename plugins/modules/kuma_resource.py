#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) aic.gateway contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: kuma_resource
short_description: Manage any Kuma resource (policies, Dataplanes, Secrets, Meshes, ...)
version_added: 0.1.0
author: aic.gateway maintainers (@aic-gateway)
description:
  - Creates, updates or deletes one resource through the kuma-cp HTTP API, as C(kumactl apply) and
    C(kumactl delete) would.
  - The resource is given either whole in O(definition) (what a C(kumactl apply) YAML file holds) or in parts
    with O(type), O(name), O(mesh), O(labels) and O(spec).
  - The type's path, scope (global or mesh-scoped) and read-only flag come from the API's C(GET /_resources),
    read once per task; an unknown type fails with the list of the types this control plane knows.
  - The resource is compared with what Kuma stores as "desired contained in actual" - fields Kuma adds
    (timestamps, C(kri), C(snis), C(status), computed C(kuma.io/*) labels, schema defaults) are not drift.
    Lists compare element by element. When something differs, the whole resource is written with C(PUT)
    (an upsert; fields it does not hold take Kuma's defaults, as with C(kumactl apply)).
  - New-style types (C(MeshTrafficPermission), C(MeshTimeout), C(MeshService), C(HostnameGenerator), ...) nest
    their spec under C(spec). Proto-based (legacy) types keep it at the top level - C(Mesh), C(Dataplane),
    C(Secret), C(GlobalSecret), C(Zone), C(ZoneIngress), C(ZoneEgress), C(MeshGateway), C(MeshGatewayRoute),
    C(ExternalService), C(ProxyTemplate) and the old policies (C(TrafficPermission), C(TrafficRoute),
    C(Retry), C(Timeout), ...). With O(spec), the module puts the keys where the type needs them.
  - The C(data) of a C(Secret) or C(GlobalSecret) is masked in the diff and in the result.
extends_documentation_fragment:
  - aic.gateway.kuma
  - aic.gateway.kuma.write
options:
  definition:
    description:
      - The whole resource, for example loaded with C(lookup('file', ...) | from_yaml).
      - Holds C(type), C(name), C(mesh) (mesh-scoped types only), optional C(labels), and C(spec) (new-style
        types) or the spec fields at the top level (legacy types). Server fields such as C(creationTime) are ignored.
      - Mutually exclusive with O(type), O(name), O(mesh), O(labels) and O(spec).
    type: dict
  type:
    description: Resource type as Kuma names it, for example V(MeshTrafficPermission) or V(Dataplane).
    type: str
  name:
    description: Resource name.
    type: str
  mesh:
    description:
      - Mesh of a mesh-scoped resource. Required for mesh-scoped types and refused for global types
        (V(Mesh), V(GlobalSecret), V(Zone), ...), before any write.
    type: str
  labels:
    description: User labels. Labels Kuma computes (C(kuma.io/mesh), C(kuma.io/origin), ...) need not be given.
    type: dict
  spec:
    description:
      - "The resource's spec. For new-style types it is sent as C(spec); for legacy types its keys are sent
        at the top level (for a Secret, V({data: <base64>}))."
      - Required with O(state=present) unless O(definition) is used; V({}) is allowed.
    type: dict
  state:
    description: Whether the resource exists.
    type: str
    choices: [present, absent]
    default: present
seealso:
  - module: aic.gateway.kuma_mesh
  - module: aic.gateway.kuma_info
notes:
  - A task never removes fields or labels it does not mention unless it writes; when it writes, the resource
    becomes exactly what the task holds (plus Kuma's defaults and computed labels).
  - Read-only types (for example Dataplanes on a global control plane, or any type when
    C(apiServer.readOnly) is set) are refused before any write.
"""

EXAMPLES = r"""
- name: Mesh policies from the admin host
  module_defaults:
    group/aic.gateway.kuma:
      api_url: http://127.0.0.1:5681
  block:
    - name: Allow all traffic in the mesh (apply before enabling mTLS)
      aic.gateway.kuma_resource:
        type: MeshTrafficPermission
        name: allow-all
        mesh: default
        spec:
          from:
            - targetRef: {kind: Mesh}
              default: {action: Allow}

    - name: A policy from a kumactl-style file
      aic.gateway.kuma_resource:
        definition: "{{ lookup('ansible.builtin.file', 'policies/timeout.yaml') | from_yaml }}"

    - name: A mesh-scoped secret (data is base64)
      aic.gateway.kuma_resource:
        type: Secret
        name: backend-db-password
        mesh: default
        spec:
          data: "{{ backend_db_password | b64encode }}"
      no_log: true

    - name: Remove a policy
      aic.gateway.kuma_resource:
        type: MeshRetry
        name: mesh-retry-all-default
        mesh: default
        state: absent
"""

RETURN = r"""
resource:
  description:
    - The resource as Kuma stores it after the task (in check mode, as the task would write it), secret
      C(data) masked; null when absent.
  returned: always
  type: dict
  sample: {"type": "MeshTrafficPermission", "mesh": "default", "name": "allow-all",
           "labels": {"kuma.io/mesh": "default", "kuma.io/origin": "zone"},
           "spec": {"from": [{"targetRef": {"kind": "Mesh"}, "default": {"action": "Allow"}}]}}
created:
  description: Whether the resource was (or in check mode would be) created.
  returned: when the resource was written
  type: bool
changed_fields:
  description: Top-level fields of the task that differ from Kuma's resource (only for an existing resource).
  returned: when O(state=present) and the resource existed
  type: list
  elements: str
  sample: [spec]
kuma_warnings:
  description: Warnings Kuma returned in the body of the C(PUT) (for example deprecations); also shown as task warnings.
  returned: when Kuma sent some
  type: list
  elements: str
requests:
  description: Every API request made (method, path, status); in check mode the writes show status V(check_mode).
  returned: always
  type: list
  elements: dict
  sample: [{"method": "GET", "path": "/_resources", "status": 200},
           {"method": "GET", "path": "/meshes/default/meshtrafficpermissions/allow-all", "status": 404},
           {"method": "PUT", "path": "/meshes/default/meshtrafficpermissions/allow-all", "status": 201}]
"""

import copy

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.aic.gateway.plugins.module_utils._kuma import (
    CONNECTION_EXCLUSIVE, KumaError, SERVER_FIELDS, build_resource, check_scope, comparable, contains,
    mask_secret, module_spec, planned, run, upsert, view,
)


def desired_resource(params):
    """The resource the task describes, and its type, name and mesh."""
    if params["definition"] is not None:
        body = dict((k, copy.deepcopy(v)) for k, v in params["definition"].items() if k not in SERVER_FIELDS)
        for key in ("type", "name"):
            if not isinstance(body.get(key), str) or not body.get(key):
                raise KumaError("definition has no %s" % key)
        if body.get("mesh") is not None and not isinstance(body["mesh"], str):
            raise KumaError("definition's mesh must be a string")
        return body, body["type"], body["name"], body.get("mesh")
    if not params["type"] or not params["name"]:
        raise KumaError("type and name are required when definition is not used")
    if params["state"] == "present" and params["spec"] is None:
        raise KumaError("spec is required with state=present when definition is not used")
    body = build_resource(params["type"], params["name"], params["mesh"], params["labels"], params["spec"] or {})
    return body, params["type"], params["name"], params["mesh"]


def converge(params, client):
    desired, type_name, name, mesh = desired_resource(params)
    check_scope(type_name, mesh)                      # well-known types: before any request
    info = client.resource_type(type_name)
    check_scope(type_name, mesh, info.get("scope"))   # any other type: before any write
    path = client.resource_path(type_name, name, mesh)
    actual = client.get(path)
    result = dict(changed=False, requests=client.requests)
    if params["state"] == "absent":
        if actual is not None:
            if info.get("readOnly"):
                raise KumaError("%s is read-only on this control plane: %s %s cannot be deleted here"
                                % (type_name, type_name, name))
            client.write("DELETE", path)
            result["changed"] = True
        result["diff"] = dict(before=view(actual), after={})
        result["resource"] = None
        return result
    if info.get("readOnly") and (actual is None or not contains(comparable(desired), actual)):
        raise KumaError("%s is read-only on this control plane (GET /_resources says readOnly): "
                        "%s %s cannot be written here" % (type_name, type_name, name))
    after = actual
    if upsert(client, path, desired, actual, result):
        after = planned(desired, actual) if client.check_mode else client.get(path)
    result["diff"] = dict(before=view(actual), after=view(after))
    result["resource"] = mask_secret(after)
    return result


def main():
    module = AnsibleModule(
        argument_spec=module_spec(
            definition=dict(type="dict"),
            type=dict(type="str"),
            name=dict(type="str"),
            mesh=dict(type="str"),
            labels=dict(type="dict"),
            spec=dict(type="dict"),
            state=dict(type="str", default="present", choices=["present", "absent"]),
        ),
        mutually_exclusive=CONNECTION_EXCLUSIVE + [("definition", "type"), ("definition", "name"),
                                                   ("definition", "mesh"), ("definition", "labels"),
                                                   ("definition", "spec")],
        required_one_of=[("definition", "type")],
        supports_check_mode=True,
    )
    run(module, lambda client: converge(module.params, client))


if __name__ == "__main__":
    main()
