#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) aic.gateway contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: kong_target
short_description: Manage a target (pool member) of a Kong Gateway upstream
version_added: 0.1.0
author: aic.gateway maintainers (@aic-gateway)
description:
  - Creates, updates or deletes one target of an upstream through the Kong Admin API, found by its
    address under the upstream (C(/upstreams/{upstream}/targets/{target})).
  - A target without a port means port 8000, as in Kong; V(10.0.0.5) and V(10.0.0.5:8000) are the same
    target.
  - Writes are C(PUT) to a new id (create), C(PATCH) of the changed fields (update) and C(DELETE).
    In check mode the module reads but does not write, and reports the requests it would make.
extends_documentation_fragment:
  - aic.gateway.kong
  - aic.gateway.kong.entity
options:
  upstream:
    description: Name or id of the upstream. It must exist with O(state=present).
    type: str
    required: true
  target:
    description: Address of the member, C(host[:port]) (IPv6 as C([addr]:port)); the port defaults to 8000.
    type: str
    required: true
  state:
    description: Whether the target exists.
    type: str
    choices: [present, absent]
    default: present
  weight:
    description: Share of the traffic, 0 to 65535; 0 takes the target out of rotation (Kong's default is 100).
    type: int
  tags:
    description: Tags on the target (order does not matter).
    type: list
    elements: str
seealso:
  - module: aic.gateway.kong_upstream
"""

EXAMPLES = r"""
- name: Configure Kong from the admin host
  module_defaults:
    group/aic.gateway.kong:
      admin_url: http://127.0.0.1:8001
  block:
    - name: Members of the core API pool
      aic.gateway.kong_target:
        upstream: core-api.upstream
        target: "{{ item }}:8080"
        weight: 100
      loop: [10.0.1.11, 10.0.1.12]

    - name: Drain a member
      aic.gateway.kong_target:
        upstream: core-api.upstream
        target: 10.0.1.12:8080
        weight: 0

    - name: Remove a member
      aic.gateway.kong_target:
        upstream: core-api.upstream
        target: 10.0.1.12:8080
        state: absent
"""

RETURN = r"""
target:
  description: The target as Kong stores it after the task (in check mode, as it would be); null when absent.
  returned: always
  type: dict
  sample: {"id": "9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d", "target": "10.0.1.11:8080", "weight": 100,
           "tags": null, "upstream": {"id": "6c1e2a3b-7d4f-4e5a-9b8c-1d2e3f4a5b6c"},
           "created_at": 1735689600.123}
changed_fields:
  description: Top-level fields an update changed (or would change).
  returned: when the target existed and O(state=present)
  type: list
  elements: str
  sample: [weight]
requests:
  description: Every Admin API request made, or in check mode the writes that would be made.
  returned: always
  type: list
  elements: dict
  sample: [{"method": "GET", "path": "/upstreams/core-api.upstream", "status": 200},
           {"method": "GET", "path": "/upstreams/6c1e2a3b-7d4f-4e5a-9b8c-1d2e3f4a5b6c/targets/10.0.1.12%3A8080",
            "status": 200},
           {"method": "PATCH",
            "path": "/upstreams/6c1e2a3b-7d4f-4e5a-9b8c-1d2e3f4a5b6c/targets/9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d",
            "status": 200, "body": {"weight": 0}}]
"""

from urllib.parse import quote

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.aic.gateway.plugins.module_utils._kong import (
    KINDS, EntityRunner, entity_module_spec, given, normalize_target,
)

FIELDS = ("target", "weight", "tags")


def main():
    module = AnsibleModule(
        argument_spec=entity_module_spec(
            upstream=dict(type="str", required=True),
            target=dict(type="str", required=True),
            weight=dict(type="int"),
            tags=dict(type="list", elements="str"),
        ),
        supports_check_mode=True,
    )
    params = module.params
    runner = EntityRunner(module, "targets")
    desired = given(params, FIELDS)
    target = normalize_target(params["target"])

    def converge():
        upstream_id = runner.resolve("upstreams", params["upstream"], required=params["state"] == "present")
        actual = None
        if upstream_id is not None:
            actual = runner.client.get("/upstreams/%s/targets/%s" % (upstream_id, quote(target, safe="")))
        return runner.run(
            lambda: actual, desired,
            foreign={"upstream": {"id": upstream_id}} if upstream_id else None,
            write_path=lambda i: KINDS["targets"].entity_path(i, upstream_id),
            refs={"upstream": params["upstream"]},
        )

    runner.finish(converge)


if __name__ == "__main__":
    main()
