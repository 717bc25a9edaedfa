# -*- coding: utf-8 -*-
# Copyright (c) aic.gateway contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
name: service_mesh_policies
short_description: MeshTrafficPermissions from the services' C(mesh.allow_from), merged with the declared meshes
version_added: 0.1.0
author: aic.gateway maintainers (@aic-gateway)
description:
  - Reads C(service_definitions) of every host in O(hosts) and turns each service's C(mesh.allow_from) (the
    C(kuma.io/service) names allowed to call it) into one MeshTrafficPermission named C(allow-to-<service>).
  - "The policy targets the service (C(targetRef) C(MeshService) C(<service>), the C(kuma.io/service) value on
    universal, kuma.md section 4) and lists one C(from) entry per caller (C(MeshSubset) with tag
    C(kuma.io/service=<caller>), action C(Allow)) after a C(Mesh) entry with action C(Deny): only the listed
    callers reach the service, even when a mesh-wide allow-all exists (the more specific target and source win)."
  - A service without C(allow_from) gets no policy (the mesh's own policies decide); C(allow_from) written as an
    empty list denies every caller.
  - The same service declared on several hosts must list the same callers; different lists are refused rather
    than merged, because a merge would widen access silently.
  - With O(meshes) (the C(kuma_cp_meshes) list) the result is that list with the generated policies added to the
    mesh O(mesh) (the mesh is added, with no other setting, when it is not declared); a policy the mesh declares itself with the same
    type and name wins over the generated one.
  - Every generated policy carries the label C(aic.gateway/source=service-definitions), so policies left over
    from a service that no longer declares C(allow_from) can be found and removed (playbooks/mesh.yml does).
extends_documentation_fragment:
  - aic.gateway.service_hosts
options:
  mesh:
    description: Mesh the policies are written to.
    type: str
    default: default
  meshes:
    description:
      - The declared meshes (C(kuma_cp_meshes)). When given, the result is the meshes with the policies merged
        in; without it, the list of generated policies.
    type: list
    elements: dict
"""

EXAMPLES = r"""
- name: The policies the services ask for
  ansible.builtin.debug:
    msg: "{{ hostvars | aic.gateway.service_mesh_policies(groups['services'] | default([])) }}"

- name: The declared meshes with those policies merged in (what playbooks/mesh.yml applies)
  ansible.builtin.set_fact:
    mesh_plan: >-
      {{ hostvars | aic.gateway.service_mesh_policies(groups['services'] | default([]), mesh='default',
                                                      meshes=kuma_cp_meshes | default([])) }}
"""

RETURN = r"""
_value:
  description:
    - Without O(meshes), the generated policies (dicts with C(type), C(name), C(labels) and C(spec)), sorted by
      name; with O(meshes), the meshes list with them merged into mesh O(mesh).
  type: list
  elements: dict
"""

import copy
import re
from collections.abc import Mapping, Sequence

from ansible.errors import AnsibleFilterError

SERVICE_TAG = "kuma.io/service"
SOURCE_LABEL = "aic.gateway/source"
SOURCE_VALUE = "service-definitions"
# Kuma resource names on universal: DNS-1123-like, at most 253 characters (kuma.md section 3 validation).
_INVALID = re.compile(r"[^a-z0-9.-]+")


def policy_name(service):
    """Stable resource name for the policy guarding ``service``."""
    name = _INVALID.sub("-", "allow-to-%s" % service.lower()).strip("-.")
    return name[:253].rstrip("-.")


def _callers(value, where):
    if isinstance(value, (str, bytes)) or not isinstance(value, Sequence):
        raise AnsibleFilterError("%s: mesh.allow_from must be a list of kuma.io/service names, got %r" % (where, value))
    out = []
    for caller in value:
        if not isinstance(caller, str) or not caller.strip():
            raise AnsibleFilterError("%s: mesh.allow_from holds %r, not a kuma.io/service name" % (where, caller))
        if caller not in out:
            out.append(caller)
    return sorted(out)


def make_policy(service, callers):
    """The MeshTrafficPermission letting ``callers`` (and nobody else) reach ``service``."""
    sources = [{"targetRef": {"kind": "Mesh"}, "default": {"action": "Deny"}}]
    sources += [{"targetRef": {"kind": "MeshSubset", "tags": {SERVICE_TAG: caller}}, "default": {"action": "Allow"}}
                for caller in callers]
    return {
        "type": "MeshTrafficPermission",
        "name": policy_name(service),
        "labels": {SOURCE_LABEL: SOURCE_VALUE},
        "spec": {"targetRef": {"kind": "MeshService", "name": service}, "from": sources},
    }


def generated_policies(hostvars, hosts):
    """{service: sorted callers} from every host's service_definitions, refusing conflicting declarations."""
    wanted = {}
    origin = {}
    for host in hosts:
        definitions = (hostvars.get(host) or {}).get("service_definitions") or []
        if isinstance(definitions, (str, bytes)) or not isinstance(definitions, Sequence):
            raise AnsibleFilterError("%s: service_definitions must be a list" % host)
        for definition in definitions:
            if not isinstance(definition, Mapping):
                raise AnsibleFilterError("%s: each service definition must be a dict, got %r" % (host, definition))
            mesh = definition.get("mesh")
            if not isinstance(mesh, Mapping) or "allow_from" not in mesh or mesh.get("allow_from") is None:
                continue
            service = mesh.get("service") or definition.get("name")
            if not isinstance(service, str) or not service:
                raise AnsibleFilterError("%s: a service definition with mesh.allow_from needs a name" % host)
            where = "%s: service %s" % (host, service)
            callers = _callers(mesh["allow_from"], where)
            if service in wanted and wanted[service] != callers:
                raise AnsibleFilterError(
                    "service %s allows calls from %s on %s but from %s on %s; declare the same mesh.allow_from "
                    "everywhere (different lists are not merged: that would widen access)"
                    % (service, wanted[service], origin[service], callers, host))
            wanted[service] = callers
            origin.setdefault(service, host)
    names = {}
    for service in wanted:
        name = policy_name(service)
        if name in names:
            raise AnsibleFilterError("services %s and %s give the same policy name %s"
                                     % (names[name], service, name))
        names[name] = service
    return [make_policy(service, wanted[service]) for service in sorted(wanted, key=policy_name)]


def merge(meshes, mesh, policies):
    """``meshes`` with ``policies`` added to mesh ``mesh``; the mesh's own policy of the same type and name wins."""
    if isinstance(meshes, (str, bytes)) or not isinstance(meshes, Sequence):
        raise AnsibleFilterError("service_mesh_policies: meshes must be a list, got %s" % type(meshes).__name__)
    out = []
    found = False
    for entry in meshes:
        if not isinstance(entry, Mapping):
            raise AnsibleFilterError("each mesh must be a dict, got %r" % (entry,))
        entry = dict(entry)
        if entry.get("name") == mesh:
            found = True
            own = list(entry.get("policies") or [])
            declared = {(p.get("type"), p.get("name")) for p in own if isinstance(p, Mapping)}
            added = [copy.deepcopy(p) for p in policies if (p["type"], p["name"]) not in declared]
            if own or added:
                entry["policies"] = own + added
        out.append(entry)
    if not found:
        # Added even without policies, so that generated ones left over in it can be pruned.
        added = {"name": mesh}
        if policies:
            added["policies"] = copy.deepcopy(policies)
        out.append(added)
    return out


def service_mesh_policies(hostvars, hosts, mesh="default", meshes=None):
    if not isinstance(hostvars, Mapping):
        raise AnsibleFilterError("service_mesh_policies expects hostvars, got %s" % type(hostvars).__name__)
    if isinstance(hosts, (str, bytes)) or not isinstance(hosts, Sequence):
        raise AnsibleFilterError("service_mesh_policies: hosts must be a list of host names")
    if not isinstance(mesh, str) or not mesh:
        raise AnsibleFilterError("service_mesh_policies: mesh must be a mesh name")
    policies = generated_policies(hostvars, hosts)
    if meshes is None:
        return policies
    return merge(meshes, mesh, policies)


class FilterModule(object):
    def filters(self):
        return {"service_mesh_policies": service_mesh_policies}
