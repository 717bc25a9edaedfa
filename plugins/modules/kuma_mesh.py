#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) aic.gateway contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: kuma_mesh
short_description: Manage a Kuma Mesh and its built-in CA mTLS
version_added: 0.1.0
author: aic.gateway maintainers (@aic-gateway)
description:
  - Creates, updates or deletes one C(Mesh) through the kuma-cp HTTP API.
  - Only the options a task sets are managed; the Mesh's other fields keep their current value (a new Mesh
    gets Kuma's defaults). The comparison ignores fields Kuma adds (timestamps, computed labels, defaults).
  - O(mtls) is typed; C(networking), C(routing), C(meshServices), C(skipCreatingInitialPolicies) and labels
    pass through as given.
  - Refuses, before any write, to change the enabled CA backend while mTLS is on, with Kuma's own reason
    ("Changing CA when mTLS is enabled is forbidden. Disable mTLS first and then change the CA").
  - Guards against the mTLS default-deny trap - once mTLS is on, Kuma denies all traffic that no
    MeshTrafficPermission allows, and it creates none by itself. A task that turns mTLS on fails, before any
    write, when the mesh holds no MeshTrafficPermission, unless O(allow_mtls_without_permissions=true).
extends_documentation_fragment:
  - aic.gateway.kuma
  - aic.gateway.kuma.write
options:
  name:
    description: Mesh name (an RFC 1035 label of at most 63 characters).
    type: str
    required: true
  state:
    description: Whether the Mesh exists. Kuma refuses to delete a Mesh that still has Dataplanes.
    type: str
    choices: [present, absent]
    default: present
  mtls:
    description:
      - Mutual TLS with one CA backend. When set, the Mesh's C(mtls) becomes exactly this one backend.
    type: dict
    suboptions:
      enabled:
        description: Whether mTLS is on (C(enabledBackend) set to O(mtls.backend)), or only the backend is defined.
        type: bool
        default: true
      backend:
        description: Name of the CA backend.
        type: str
        default: ca-1
      type:
        description: V(builtin) (Kuma generates the CA) or V(provided) (your CA, from secrets in O(mtls.conf)).
        type: str
        choices: [builtin, provided]
        default: builtin
      mode:
        description: V(STRICT) accepts only mTLS traffic; V(PERMISSIVE) also plaintext (for a migration only).
        type: str
        choices: [STRICT, PERMISSIVE]
      dp_cert_rotation:
        description: Lifetime of the data plane certificates, a Go duration such as V(24h) (C(dpCert.rotation.expiration)).
        type: str
      ca_cert:
        description: The built-in CA certificate (C(conf.caCert)).
        type: dict
        suboptions:
          rsa_bits:
            description: RSA key size of the CA (C(RSAbits)).
            type: int
          expiration:
            description: CA lifetime, for example V(10y).
            type: str
      conf:
        description:
          - "Other backend C(conf) keys, as Kuma names them; for V(provided), for example
            V({cert: {secret: ca-cert}, key: {secret: ca-key}})."
        type: dict
  networking:
    description: "The Mesh's C(networking), for example V({outbound: {passthrough: false}})."
    type: dict
  routing:
    description: "The Mesh's C(routing), for example V({zoneEgress: true})."
    type: dict
  mesh_services:
    description: "The Mesh's C(meshServices), for example V({mode: Exclusive})."
    type: dict
  skip_creating_initial_policies:
    description:
      - Default policies Kuma must not create with the Mesh (V(['*']) for none). Only used when the Mesh is created.
    type: list
    elements: str
  labels:
    description: User labels of the Mesh.
    type: dict
  allow_mtls_without_permissions:
    description:
      - Turn mTLS on even though the mesh holds no MeshTrafficPermission, which makes Kuma deny all
        traffic between its data planes.
    type: bool
    default: false
seealso:
  - module: aic.gateway.kuma_resource
notes:
  - To change the CA, run the module with O(mtls.enabled=false), then with the new O(mtls.backend).
  - To enable mTLS on a new mesh, create it without O(mtls) (or with O(mtls.enabled=false)), apply a
    MeshTrafficPermission with M(aic.gateway.kuma_resource), then enable mTLS.
"""

EXAMPLES = r"""
- name: Mesh with mTLS, in the safe order
  module_defaults:
    group/aic.gateway.kuma:
      api_url: http://127.0.0.1:5681
  block:
    - name: The mesh, mTLS off
      aic.gateway.kuma_mesh:
        name: default
        mesh_services: {mode: Exclusive}

    - name: Allow traffic inside the mesh
      aic.gateway.kuma_resource:
        type: MeshTrafficPermission
        name: allow-all
        mesh: default
        spec:
          from:
            - targetRef: {kind: Mesh}
              default: {action: Allow}

    - name: Turn mTLS on with the built-in CA
      aic.gateway.kuma_mesh:
        name: default
        mtls:
          backend: ca-1
          mode: STRICT
          dp_cert_rotation: 24h
          ca_cert: {rsa_bits: 2048, expiration: 10y}
"""

RETURN = r"""
mesh:
  description: The Mesh as Kuma stores it after the task (in check mode, as it would be); null when absent.
  returned: always
  type: dict
  sample: {"type": "Mesh", "name": "default", "mtls": {"enabledBackend": "ca-1",
           "backends": [{"name": "ca-1", "type": "builtin", "mode": "STRICT"}]}}
changed_fields:
  description: Top-level fields that differ from Kuma's Mesh.
  returned: when the Mesh existed and O(state=present)
  type: list
  elements: str
  sample: [mtls]
mtls_enabled:
  description: Whether mTLS is on after the task (in check mode, would be).
  returned: when O(state=present)
  type: bool
requests:
  description: Every API request made (method, path, status); in check mode the writes show status V(check_mode).
  returned: always
  type: list
  elements: dict
"""

import copy

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.aic.gateway.plugins.module_utils._kuma import (
    COMPUTED_LABELS, CONNECTION_EXCLUSIVE, KumaError, SERVER_FIELDS, contains, differences, module_spec, run, view,
)

CA_CHANGE = ("Changing CA when mTLS is enabled is forbidden. Disable mTLS first and then change the CA")
PASSTHROUGH = (("networking", "networking"), ("routing", "routing"), ("mesh_services", "meshServices"),
               ("skip_creating_initial_policies", "skipCreatingInitialPolicies"), ("labels", "labels"))


def mtls_body(option):
    """Kuma's `mtls` from the typed option."""
    backend = {"name": option["backend"], "type": option["type"]}
    if option.get("mode"):
        backend["mode"] = option["mode"]
    if option.get("dp_cert_rotation"):
        backend["dpCert"] = {"rotation": {"expiration": option["dp_cert_rotation"]}}
    conf = copy.deepcopy(option.get("conf") or {})
    ca_cert = dict((k, v) for k, v in ((option.get("ca_cert") or {}).items()) if v is not None)
    if ca_cert:
        conf["caCert"] = {}
        if "rsa_bits" in ca_cert:
            conf["caCert"]["RSAbits"] = ca_cert["rsa_bits"]
        if "expiration" in ca_cert:
            conf["caCert"]["expiration"] = ca_cert["expiration"]
    if conf:
        backend["conf"] = conf
    body = {"backends": [backend]}
    if option["enabled"]:
        body["enabledBackend"] = option["backend"]
    return body


def enabled_backend(mesh):
    return ((mesh or {}).get("mtls") or {}).get("enabledBackend") or None


def converge(params, client):
    name = params["name"]
    path = "/meshes/%s" % name
    actual = client.get(path)
    result = dict(changed=False, requests=client.requests)
    if params["state"] == "absent":
        if actual is not None:
            client.write("DELETE", path)
            result["changed"] = True
        result["diff"] = dict(before=view(actual), after={})
        result["mesh"] = None
        return result

    desired = {}
    for option, field in PASSTHROUGH:
        if params[option] is not None:
            desired[field] = copy.deepcopy(params[option])
    if params["mtls"] is not None:
        desired["mtls"] = mtls_body(params["mtls"])
    current_ca = enabled_backend(actual)
    wanted_ca = enabled_backend(desired) if "mtls" in desired else current_ca

    if current_ca and wanted_ca and current_ca != wanted_ca:
        raise KumaError("Mesh %s: refusing to switch mTLS from CA backend %r to %r: Kuma answers \"%s\"."
                        % (name, current_ca, wanted_ca, CA_CHANGE))
    if wanted_ca and not current_ca and not params["allow_mtls_without_permissions"]:
        permissions = 0
        if actual is not None:
            payload = client.call("GET", "/meshes/%s/meshtrafficpermissions?size=1" % name)[1] or {}
            permissions = payload.get("total", len(payload.get("items") or []))
        if not permissions:
            raise KumaError(
                "Mesh %s: refusing to turn mTLS on: the mesh holds no MeshTrafficPermission%s. Once mTLS is on, "
                "Kuma denies all traffic that no MeshTrafficPermission allows (and creates none by itself), so "
                "every service in the mesh would stop talking. Apply a MeshTrafficPermission first (for example "
                "allow-all with aic.gateway.kuma_resource), or set allow_mtls_without_permissions=true."
                % (name, " (it does not exist yet)" if actual is None else ""))

    result["mtls_enabled"] = bool(wanted_ca)
    if actual is not None:
        same = contains(desired, actual) and (enabled_backend(actual) == wanted_ca)
        if same:
            result["changed_fields"] = []
            result["diff"] = dict(before=view(actual), after=view(actual))
            result["mesh"] = actual
            return result
        changed = set(p.split(".")[0] for p in differences(desired, actual))
        if enabled_backend(actual) != wanted_ca:
            changed.add("mtls")
        result["changed_fields"] = sorted(changed)

    body = {"type": "Mesh", "name": name}
    for key, value in (actual or {}).items():
        if key not in SERVER_FIELDS and key not in ("type", "name"):
            body[key] = copy.deepcopy(value)
    if "labels" in body:
        body["labels"] = dict((k, v) for k, v in body["labels"].items() if k not in COMPUTED_LABELS)
    body.update(desired)
    if not body.get("labels"):
        body.pop("labels", None)
    client.write("PUT", path, body)
    result["changed"] = True
    result["created"] = actual is None
    after = body if client.check_mode else client.get(path)
    result["diff"] = dict(before=view(actual), after=view(after))
    result["mesh"] = after
    return result


def main():
    module = AnsibleModule(
        argument_spec=module_spec(
            name=dict(type="str", required=True),
            state=dict(type="str", default="present", choices=["present", "absent"]),
            mtls=dict(type="dict", options=dict(
                enabled=dict(type="bool", default=True),
                backend=dict(type="str", default="ca-1"),
                type=dict(type="str", default="builtin", choices=["builtin", "provided"]),
                mode=dict(type="str", choices=["STRICT", "PERMISSIVE"]),
                dp_cert_rotation=dict(type="str"),
                ca_cert=dict(type="dict", options=dict(
                    rsa_bits=dict(type="int"),
                    expiration=dict(type="str"),
                )),
                conf=dict(type="dict"),
            )),
            networking=dict(type="dict"),
            routing=dict(type="dict"),
            mesh_services=dict(type="dict"),
            skip_creating_initial_policies=dict(type="list", elements="str"),
            labels=dict(type="dict"),
            allow_mtls_without_permissions=dict(type="bool", default=False),
        ),
        mutually_exclusive=CONNECTION_EXCLUSIVE,
        supports_check_mode=True,
    )
    run(module, lambda client: converge(module.params, client))


if __name__ == "__main__":
    main()
