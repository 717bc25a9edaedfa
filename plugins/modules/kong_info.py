#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) aic.gateway contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: kong_info
short_description: Kong node information, status, and a dump of its entities in decK's format
version_added: 0.1.0
author: aic.gateway maintainers (@aic-gateway)
description:
  - Reads C(GET /) (version, edition, plugins available and in use, configuration with secrets masked by
    Kong) and C(GET /status) (connections, memory, database reachability).
  - With O(dump=true), also reads the entities and returns them as a declarative configuration in
    decK's format, nested the way decK nests them, without ids or timestamps and sorted for stable
    diffs. Fed back to M(aic.gateway.kong_sync) it changes nothing.
  - basic-auth passwords (Kong keeps only a hash) and oauth2 secrets stored hashed are left out of the dump.
extends_documentation_fragment:
  - aic.gateway.kong
options:
  dump:
    description: Also return the entities as a declarative configuration in RV(config).
    type: bool
    default: false
  select_tags:
    description:
      - Dump only entities carrying all these tags; the dump records them in C(_info.select_tags).
    type: list
    elements: str
  kinds:
    description: Entity kinds to dump. Default is every supported kind.
    type: list
    elements: str
    choices: [services, routes, consumers, plugins, upstreams, targets, certificates, ca_certificates,
              keyauth_credentials, basicauth_credentials, jwt_secrets, hmacauth_credentials, oauth2_credentials, acls]
seealso:
  - module: aic.gateway.kong_sync
attributes:
  check_mode:
    description: Only reads; runs the same in check mode.
    support: full
  diff_mode:
    description: Changes nothing, so there is no diff.
    support: none
"""

EXAMPLES = r"""
- name: What Kong runs
  aic.gateway.kong_info:
    admin_url: http://127.0.0.1:8001
  register: kong

- name: Fail early on an unsupported version
  ansible.builtin.assert:
    that: kong.version is version('3.4', '>=')

- name: Export the platform's gateway configuration for version control
  aic.gateway.kong_info:
    dump: true
    select_tags: [platform]
  register: kong_export

- name: Write it
  ansible.builtin.copy:
    content: "{{ kong_export.config | to_nice_yaml(indent=2, sort_keys=true) }}"
    dest: exports/kong.yml
    mode: "0640"
  delegate_to: localhost
"""

RETURN = r"""
version:
  description: Kong's version.
  returned: always
  type: str
  sample: 3.9.3
edition:
  description: C(community) or C(enterprise).
  returned: always
  type: str
info:
  description: Kong's answer to C(GET /).
  returned: always
  type: dict
status:
  description: Kong's answer to C(GET /status).
  returned: always
  type: dict
config:
  description: The entities as a decK-format declarative configuration.
  returned: when O(dump=true)
  type: dict
  sample: {"_format_version": "3.0", "services": [{"name": "core-api", "host": "core-api.service.mesh",
           "port": 8080, "protocol": "http", "routes": [{"name": "core-api-v1", "paths": ["/api/v1"]}]}]}
counts:
  description: How many entities of each kind were dumped.
  returned: when O(dump=true)
  type: dict
  sample: {"services": 12, "routes": 40, "plugins": 9}
requests:
  description: Every Admin API request made.
  returned: always
  type: list
  elements: dict
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.aic.gateway.plugins.module_utils._kong import (
    ALL_KINDS, KongClient, KongError, kong_argument_spec,
)
from ansible_collections.aic.gateway.plugins.module_utils._kong_state import dump, read_state


def main():
    spec = kong_argument_spec()
    spec.update(
        dump=dict(type="bool", default=False),
        select_tags=dict(type="list", elements="str"),
        kinds=dict(type="list", elements="str", choices=list(ALL_KINDS)),
    )
    module = AnsibleModule(argument_spec=spec, supports_check_mode=True)
    params = module.params
    client = KongClient(params)
    result = dict(changed=False)
    try:
        info = client.info()
        status = client.call("GET", "/status")[1] or {}
        result.update(version=info.get("version"), edition=info.get("edition"), info=info, status=status)
        if params["dump"]:
            select_tags = sorted(params["select_tags"] or [])
            state = read_state(client, params["kinds"] or ALL_KINDS, select_tags)
            result["config"] = dump(state, select_tags)
            result["counts"] = {kind: len(items) for kind, items in state.items()}
    except KongError as exc:
        module.fail_json(requests=client.requests, **exc.to_result())
    result["requests"] = client.requests
    module.exit_json(**result)


if __name__ == "__main__":
    main()
