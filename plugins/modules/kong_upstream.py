#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) aic.gateway contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: kong_upstream
short_description: Manage a Kong Gateway upstream (load-balancing pool)
version_added: 0.1.0
author: aic.gateway maintainers (@aic-gateway)
description:
  - Creates, updates or deletes one upstream through the Kong Admin API, found by its name.
  - A service sends traffic to the upstream when its C(host) is the upstream's name. Add the pool's
    members with M(aic.gateway.kong_target).
  - Only the options a task sets are managed; the others keep their current value (new upstreams get
    Kong's defaults).
  - Writes are C(PUT) to a new id (create), C(PATCH) of the changed fields (update) and C(DELETE).
    In check mode the module reads but does not write, and reports the requests it would make.
extends_documentation_fragment:
  - aic.gateway.kong
  - aic.gateway.kong.entity
options:
  name:
    description: Upstream name, a host name that services use as their C(host).
    type: str
    required: true
  state:
    description:
      - Whether the upstream exists.
      - Deleting an upstream also deletes its targets.
    type: str
    choices: [present, absent]
    default: present
  algorithm:
    description: Load-balancing algorithm (Kong's default is V(round-robin)).
    type: str
    choices: [round-robin, consistent-hashing, least-connections, latency]
  hash_on:
    description: What V(consistent-hashing) hashes on (Kong's default is V(none)).
    type: str
    choices: [none, consumer, ip, header, cookie, path, query_arg, uri_capture]
  hash_fallback:
    description: What to hash on when O(hash_on) gives no value (Kong's default is V(none)).
    type: str
    choices: [none, consumer, ip, header, cookie, path, query_arg, uri_capture]
  hash_on_header:
    description: Header name, with O(hash_on=header).
    type: str
  hash_fallback_header:
    description: Header name, with O(hash_fallback=header).
    type: str
  hash_on_cookie:
    description: Cookie name, with O(hash_on=cookie) or O(hash_fallback=cookie).
    type: str
  hash_on_cookie_path:
    description: Path of the cookie Kong sets (Kong's default is V(/)).
    type: str
  hash_on_query_arg:
    description: Query argument name, with O(hash_on=query_arg).
    type: str
  hash_fallback_query_arg:
    description: Query argument name, with O(hash_fallback=query_arg).
    type: str
  hash_on_uri_capture:
    description: Name of a path capture group, with O(hash_on=uri_capture).
    type: str
  hash_fallback_uri_capture:
    description: Name of a path capture group, with O(hash_fallback=uri_capture).
    type: str
  slots:
    description: Number of slots in the load balancer (Kong's default is 10000).
    type: int
  healthchecks:
    description:
      - Active and passive health checks, in Kong's C(healthchecks) format (keys C(active), C(passive),
        C(threshold)).
      - The value is merged over Kong's default record, so only the settings that differ from the defaults
        need to be given; settings left out go back to Kong's defaults (not to their current value).
    type: dict
  host_header:
    description: C(Host) header sent to the targets.
    type: str
  client_certificate:
    description: Id of a Kong certificate presented to the targets.
    type: str
  use_srv_name:
    description: Use the name from an SRV record as the TLS server name (Kong's default is V(false)).
    type: bool
  tags:
    description: Tags on the upstream (order does not matter).
    type: list
    elements: str
seealso:
  - module: aic.gateway.kong_target
  - module: aic.gateway.kong_service
"""

EXAMPLES = r"""
- name: Configure Kong from the admin host
  module_defaults:
    group/aic.gateway.kong:
      admin_url: http://127.0.0.1:8001
  block:
    - name: A pool with active health checks
      aic.gateway.kong_upstream:
        name: core-api.upstream
        algorithm: least-connections
        healthchecks:
          active:
            http_path: /healthz
            healthy:
              interval: 5
              successes: 2
            unhealthy:
              interval: 5
              http_failures: 3
        tags: [platform]

    - name: Sticky sessions by cookie
      aic.gateway.kong_upstream:
        name: web.upstream
        algorithm: consistent-hashing
        hash_on: cookie
        hash_on_cookie: SESSION
"""

RETURN = r"""
upstream:
  description: The upstream as Kong stores it after the task (in check mode, as it would be); null when absent.
  returned: always
  type: dict
  sample: {"id": "6c1e2a3b-7d4f-4e5a-9b8c-1d2e3f4a5b6c", "name": "core-api.upstream",
           "algorithm": "least-connections", "hash_on": "none", "slots": 10000, "healthchecks": {"threshold": 0}}
changed_fields:
  description: Top-level fields an update changed (or would change).
  returned: when the upstream existed and O(state=present)
  type: list
  elements: str
  sample: [healthchecks]
requests:
  description: Every Admin API request made, or in check mode the writes that would be made.
  returned: always
  type: list
  elements: dict
  sample: [{"method": "GET", "path": "/upstreams/core-api.upstream", "status": 200},
           {"method": "PATCH", "path": "/upstreams/6c1e2a3b-7d4f-4e5a-9b8c-1d2e3f4a5b6c", "status": 200,
            "body": {"algorithm": "least-connections"}}]
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.aic.gateway.plugins.module_utils._kong import (
    EntityRunner, entity_module_spec, given,
)

HASH = ["none", "consumer", "ip", "header", "cookie", "path", "query_arg", "uri_capture"]
FIELDS = ("name", "algorithm", "hash_on", "hash_fallback", "hash_on_header", "hash_fallback_header",
          "hash_on_cookie", "hash_on_cookie_path", "hash_on_query_arg", "hash_fallback_query_arg",
          "hash_on_uri_capture", "hash_fallback_uri_capture", "slots", "healthchecks", "host_header",
          "use_srv_name", "tags")


def main():
    module = AnsibleModule(
        argument_spec=entity_module_spec(
            name=dict(type="str", required=True),
            algorithm=dict(type="str", choices=["round-robin", "consistent-hashing", "least-connections",
                                                "latency"]),
            hash_on=dict(type="str", choices=HASH),
            hash_fallback=dict(type="str", choices=HASH),
            hash_on_header=dict(type="str"),
            hash_fallback_header=dict(type="str"),
            hash_on_cookie=dict(type="str"),
            hash_on_cookie_path=dict(type="str"),
            hash_on_query_arg=dict(type="str"),
            hash_fallback_query_arg=dict(type="str"),
            hash_on_uri_capture=dict(type="str"),
            hash_fallback_uri_capture=dict(type="str"),
            slots=dict(type="int"),
            healthchecks=dict(type="dict"),
            host_header=dict(type="str"),
            client_certificate=dict(type="str"),
            use_srv_name=dict(type="bool"),
            tags=dict(type="list", elements="str"),
        ),
        supports_check_mode=True,
    )
    params = module.params
    runner = EntityRunner(module, "upstreams")
    desired = given(params, FIELDS, ids=("client_certificate",))
    runner.finish(lambda: runner.run(runner.by_key(params["name"]), desired))


if __name__ == "__main__":
    main()
