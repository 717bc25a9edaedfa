#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) aic.gateway contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: kuma_info
short_description: Read a Kuma control plane - version, resources, data planes online
version_added: 0.1.0
author: aic.gateway maintainers (@aic-gateway)
description:
  - Reads the control plane's index (C(GET /) - product, version, hostname), the resources of the asked
    O(types) (all pages), and with O(dataplanes=true) every Dataplane with whether it is online.
  - A Dataplane is online when the last subscription of its insight
    (C(/meshes/{mesh}/dataplanes/_overview)) has a connect time and no disconnect time.
  - Secrets' C(data) is masked.
extends_documentation_fragment:
  - aic.gateway.kuma
options:
  types:
    description: Resource types to list, as Kuma names them (for example V(Mesh), V(MeshTrafficPermission)).
    type: list
    elements: str
    default: []
  mesh:
    description: Only resources and Dataplanes of this mesh (mesh-scoped types); without it, every mesh.
    type: str
  dataplanes:
    description: List the Dataplanes with their online state.
    type: bool
    default: false
attributes:
  check_mode:
    description: Only reads; runs the same in check mode.
    support: full
  diff_mode:
    description: Changes nothing, so there is no diff.
    support: none
seealso:
  - module: aic.gateway.kuma_resource
"""

EXAMPLES = r"""
- name: Wait until the backend's data plane is online
  aic.gateway.kuma_info:
    api_url: http://127.0.0.1:5681
    mesh: default
    dataplanes: true
  register: kuma
  until: kuma.dataplanes | selectattr('name', 'eq', 'backend-01') | selectattr('online') | list | length == 1
  retries: 30
  delay: 2

- name: Policies of a mesh
  aic.gateway.kuma_info:
    mesh: default
    types: [MeshTrafficPermission, MeshTimeout]
  register: policies
"""

RETURN = r"""
control_plane:
  description: The control plane's answer to C(GET /).
  returned: always
  type: dict
  sample: {"product": "Kuma", "version": "2.14.3", "hostname": "cp-1", "instanceId": "cp-1-6a3f",
           "clusterId": "7e2b6a55-2f55-4f2a-9c8e-1f3b8d3ad4a1"}
version:
  description: Kuma's version.
  returned: always
  type: str
  sample: 2.14.3
resources:
  description: For each type of O(types), its resources (secrets' C(data) masked).
  returned: always
  type: dict
  sample: {"MeshTrafficPermission": [{"type": "MeshTrafficPermission", "mesh": "default", "name": "allow-all",
           "spec": {}}]}
dataplanes:
  description: One entry per Dataplane.
  returned: when O(dataplanes=true)
  type: list
  elements: dict
  sample: [{"mesh": "default", "name": "backend-01", "online": true, "address": "10.0.0.5",
            "services": ["backend"], "gateway": null, "connect_time": "2026-01-01T10:00:00Z",
            "disconnect_time": null, "labels": {"kuma.io/mesh": "default"}}]
requests:
  description: Every API request made (method, path, status).
  returned: always
  type: list
  elements: dict
"""

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.six.moves.urllib.parse import quote

from ansible_collections.aic.gateway.plugins.module_utils._kuma import (
    CONNECTION_EXCLUSIVE, dataplane_summary, mask_secret, module_spec, run,
)


def converge(params, client):
    index = client.index()
    result = dict(changed=False, requests=client.requests, control_plane=index,
                  version=index.get("version"), resources={})
    mesh = params["mesh"]
    for type_name in params["types"]:
        info = client.resource_type(type_name)
        if info.get("scope") == "Mesh" and mesh:
            path = "/meshes/%s/%s" % (quote(mesh, safe=""), info["path"])
        else:
            path = "/" + info["path"]
        result["resources"][type_name] = [mask_secret(item) for item in client.list(path)]
    if params["dataplanes"]:
        meshes = [mesh] if mesh else [m["name"] for m in client.list("/meshes")]
        dataplanes = []
        for name in meshes:
            for overview in client.list("/meshes/%s/dataplanes/_overview" % quote(name, safe="")):
                dataplanes.append(dataplane_summary(overview))
        result["dataplanes"] = dataplanes
    return result


def main():
    module = AnsibleModule(
        argument_spec=module_spec(
            types=dict(type="list", elements="str", default=[]),
            mesh=dict(type="str"),
            dataplanes=dict(type="bool", default=False),
        ),
        mutually_exclusive=CONNECTION_EXCLUSIVE,
        supports_check_mode=True,
    )
    run(module, lambda client: converge(module.params, client))


if __name__ == "__main__":
    main()
