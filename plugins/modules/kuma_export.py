#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) aic.gateway contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: kuma_export
short_description: Export Kuma's meshes, policies and data planes, one YAML file per resource
version_added: 0.1.0
author: aic.gateway maintainers (@aic-gateway)
description:
  - Reads the meshes, every resource of the writable mesh-scoped types the control plane knows (C(GET /_resources)),
    the Dataplanes, and the writable global types, and returns one YAML document per resource in a stable layout
    C(<mesh>/<Type>/<name>.yaml) (the Mesh itself in C(<mesh>/Mesh/<mesh>.yaml), global resources in
    C(_global/<Type>/<name>.yaml)), keys sorted.
  - Each document is the resource as C(kumactl apply) and M(aic.gateway.kuma_resource) take it (C(type), C(name),
    C(mesh), user labels, the spec), without what the server adds (C(creationTime), C(modificationTime),
    C(kri), C(status), computed labels; kuma.md section 4 "Server-added content").
  - Secrets (C(Secret), C(GlobalSecret)) hold the mesh CA's private key and the token signing keys; they are left
    out unless O(include_secrets=true). Insight and zone types are never exported.
  - With O(dest) it writes the files under that directory on the host that runs the module, rewriting only those
    whose bytes change, and deletes the C(*.yaml) files of this layout that no longer match a resource (and the
    directories left empty); other files there are left alone.
extends_documentation_fragment:
  - aic.gateway.kuma
options:
  dest:
    description: Directory to write the files to (created when missing). Without it the module only reads.
    type: path
  meshes:
    description: Export only these meshes (and their resources). Default is every mesh.
    type: list
    elements: str
  types:
    description:
      - Resource types to export besides C(Mesh). Default is every writable type except secrets, zones and
        insights (and C(Dataplane) when O(dataplanes=false)).
    type: list
    elements: str
  dataplanes:
    description: Also export the Dataplanes (by default discovered types include them).
    type: bool
    default: true
  include_secrets:
    description: Also export C(Secret) and C(GlobalSecret) with their data (files get mode 0600).
    type: bool
    default: false
seealso:
  - module: aic.gateway.kong_export
  - module: aic.gateway.kuma_resource
  - module: aic.gateway.kuma_info
attributes:
  check_mode:
    description: Reads Kuma and compares with O(dest); writes and deletes nothing.
    support: full
  diff_mode:
    description: One before/after pair per file written or deleted (secret data masked).
    support: full
"""

EXAMPLES = r"""
- name: Kuma's resources
  aic.gateway.kuma_export:
    api_url: http://127.0.0.1:5681
    token_file: /etc/kuma/admin-token
  register: kuma_export

- name: Write them on the controller, one file per resource
  ansible.builtin.copy:
    content: "{{ item.value }}"
    dest: "{{ config_export_dir }}/kuma/{{ item.key }}"
    mode: "0644"
  loop: "{{ kuma_export.files | dict2items }}"
  delegate_to: localhost

- name: Or straight into a directory where the module runs
  aic.gateway.kuma_export:
    dest: /var/backups/kuma
    meshes: [default]
"""

RETURN = r"""
files:
  description: The export, relative path to YAML text.
  returned: always
  type: dict
  sample: {"default/Mesh/default.yaml": "mesh: ...", "default/MeshTrafficPermission/allow-to-core-api.yaml": "..."}
counts:
  description: How many resources of each type were exported.
  returned: always
  type: dict
  sample: {"Mesh": 1, "MeshTrafficPermission": 3, "Dataplane": 4}
written:
  description: Relative paths written (or that would be, in check mode).
  returned: when O(dest) is set
  type: list
  elements: str
removed:
  description: Relative paths deleted because no resource matches them any more.
  returned: when O(dest) is set
  type: list
  elements: str
version:
  description: Kuma's version.
  returned: always
  type: str
requests:
  description: Every API request made.
  returned: always
  type: list
  elements: dict
"""

import os

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.six.moves.urllib.parse import quote

from ansible_collections.aic.gateway.plugins.module_utils._export import (
    HAS_YAML, parse, read_text, render, write_if_changed,
)
from ansible_collections.aic.gateway.plugins.module_utils._kuma import (
    COMPUTED_LABELS, CONNECTION_EXCLUSIVE, SECRET_TYPES, SERVER_FIELDS, KumaClient, KumaError, mask_secret,
    module_spec,
)

GLOBAL_DIR = "_global"
NEVER = frozenset(("Zone", "ZoneIngress", "ZoneEgress"))


def exported_types(types, params):
    """(mesh-scoped, global) type names to export, each sorted, from the control plane's type list."""
    wanted = set(params["types"] or [])
    mesh_scoped, global_scoped = [], []
    for name, info in sorted(types.items()):
        if name == "Mesh" or name in NEVER or name.endswith("Insight") or info.get("readOnly"):
            continue
        if name in SECRET_TYPES and not params["include_secrets"]:
            continue
        if name == "Dataplane" and not params["dataplanes"]:
            continue
        if params["types"] and name not in wanted and not (name == "Dataplane" and params["dataplanes"]):
            continue
        (mesh_scoped if info.get("scope") == "Mesh" else global_scoped).append(name)
    unknown = sorted(wanted - set(types))
    if unknown:
        raise KumaError("Kuma does not know the resource type(s) %s; known types: %s"
                        % (", ".join(unknown), ", ".join(sorted(types))))
    return mesh_scoped, global_scoped


def clean(resource):
    """The resource as it is applied: no server fields, only user labels."""
    out = {}
    for key, value in resource.items():
        if key in SERVER_FIELDS:
            continue
        if key == "labels":
            value = dict((k, v) for k, v in (value or {}).items() if k not in COMPUTED_LABELS)
            if not value:
                continue
        out[key] = value
    return out


def relative_path(resource):
    directory = resource.get("mesh") or GLOBAL_DIR
    if resource["type"] == "Mesh":
        directory = resource["name"]
    return "%s/%s/%s.yaml" % (directory, resource["type"], resource["name"])


def collect(client, params):
    """{relative path: resource} for everything exported, and the counts per type."""
    mesh_scoped, global_scoped = exported_types(client.types(), params)
    meshes = client.list("/meshes")
    if params["meshes"]:
        missing = sorted(set(params["meshes"]) - set(m["name"] for m in meshes))
        if missing:
            raise KumaError("no mesh named %s on this control plane" % ", ".join(missing))
        meshes = [m for m in meshes if m["name"] in params["meshes"]]
    found = {}
    for mesh in meshes:
        found[relative_path(mesh)] = clean(mesh)
        for type_name in mesh_scoped:
            path = "/meshes/%s/%s" % (quote(mesh["name"], safe=""), client.resource_type(type_name)["path"])
            for item in client.list(path):
                found[relative_path(item)] = clean(item)
    for type_name in global_scoped:
        for item in client.list("/" + client.resource_type(type_name)["path"]):
            found[relative_path(item)] = clean(item)
    counts = {}
    for resource in found.values():
        counts[resource["type"]] = counts.get(resource["type"], 0) + 1
    return found, counts


def _layout_files(dest):
    """Relative paths of the files of this layout under ``dest`` (<dir>/<Type>/<name>.yaml)."""
    out = []
    for root, _dirs, names in os.walk(dest):
        rel = os.path.relpath(root, dest)
        if rel.count(os.sep) != 1 or rel.startswith("."):
            continue
        out.extend("%s/%s" % (rel.replace(os.sep, "/"), n) for n in names if n.endswith(".yaml"))
    return sorted(out)


def _masked(text):
    data = parse(text) if text else None
    if isinstance(data, dict):
        return render(mask_secret(data))
    return text or ""


def write_tree(module, dest, files, mode):
    written, removed, diffs = [], [], []
    if not os.path.isdir(dest) and not module.check_mode:
        os.makedirs(dest, 0o755)
    for rel in sorted(files):
        path = os.path.join(dest, rel)
        if not module.check_mode and not os.path.isdir(os.path.dirname(path)):
            os.makedirs(os.path.dirname(path), 0o755)
        changed, before = write_if_changed(module, path, files[rel], mode)
        if changed:
            written.append(rel)
            diffs.append(dict(before_header=rel, after_header=rel, before=_masked(before), after=_masked(files[rel])))
    if os.path.isdir(dest):
        for rel in _layout_files(dest):
            if rel in files:
                continue
            path = os.path.join(dest, rel)
            removed.append(rel)
            diffs.append(dict(before_header=rel, after_header="(deleted)", before=_masked(read_text(path)), after=""))
            if not module.check_mode:
                os.unlink(path)
        if not module.check_mode:
            for rel in sorted(set(os.path.dirname(r) for r in removed), key=len, reverse=True):
                for directory in (os.path.join(dest, rel), os.path.dirname(os.path.join(dest, rel))):
                    if directory != dest and os.path.isdir(directory) and not os.listdir(directory):
                        os.rmdir(directory)
    return written, removed, diffs


def main():
    module = AnsibleModule(
        argument_spec=module_spec(
            dest=dict(type="path"),
            meshes=dict(type="list", elements="str"),
            types=dict(type="list", elements="str"),
            dataplanes=dict(type="bool", default=True),
            include_secrets=dict(type="bool", default=False),
        ),
        mutually_exclusive=CONNECTION_EXCLUSIVE,
        supports_check_mode=True,
    )
    params = module.params
    if not HAS_YAML:
        module.fail_json(msg="kuma_export needs PyYAML on the host that runs the module")
    client = None
    try:
        client = KumaClient(params)
        index = client.index()
        found, counts = collect(client, params)
    except (KumaError, ValueError) as exc:
        requests = client.requests if client is not None else []
        if isinstance(exc, KumaError):
            module.fail_json(requests=requests, **exc.to_result())
        module.fail_json(msg=str(exc), requests=requests)
    files = dict((rel, render(resource)) for rel, resource in sorted(found.items()))
    result = dict(changed=False, files=files, counts=counts, version=index.get("version"), requests=client.requests)
    if params["dest"]:
        mode = "0600" if params["include_secrets"] else "0644"
        written, removed, diffs = write_tree(module, params["dest"], files, mode)
        result.update(changed=bool(written or removed), written=written, removed=removed)
        if module._diff:
            result["diff"] = diffs
    module.exit_json(**result)


if __name__ == "__main__":
    main()
