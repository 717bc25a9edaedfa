#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) aic.gateway contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: kong_service
short_description: Manage a Kong Gateway service
version_added: 0.1.0
author: aic.gateway maintainers (@aic-gateway)
description:
  - Creates, updates or deletes one service through the Kong Admin API, found by its name.
  - Only the options a task sets are managed; the others keep their current value (new services get
    Kong's defaults).
  - The O(url) shorthand is split into protocol, host, port and path before comparing, because Kong
    never returns it.
  - Writes are C(PUT) to a new id (create), C(PATCH) of the changed fields (update) and C(DELETE).
    In check mode the module reads but does not write, and reports the requests it would make.
extends_documentation_fragment:
  - aic.gateway.kong
  - aic.gateway.kong.entity
options:
  name:
    description: Service name (Kong's endpoint key for services).
    type: str
    required: true
  state:
    description: Whether the service exists.
    type: str
    choices: [present, absent]
    default: present
  url:
    description:
      - Shorthand for O(protocol), O(host), O(port) and O(path), for example V(http://api.internal:8080/v1).
      - Mutually exclusive with those four options.
    type: str
  protocol:
    description: Protocol Kong uses to reach the upstream.
    type: str
    choices: [http, https, grpc, grpcs, tcp, tls, tls_passthrough, udp, ws, wss]
  host:
    description: Upstream host, or the name of a Kong upstream. Required when creating without O(url).
    type: str
  port:
    description: Upstream port (Kong's default is 80).
    type: int
  path:
    description: Path prefix of requests to the upstream.
    type: str
  retries:
    description: Retries on proxy failures (Kong's default is 5).
    type: int
  connect_timeout:
    description: Milliseconds to establish a connection (Kong's default is 60000).
    type: int
  write_timeout:
    description: Milliseconds between two writes to the upstream (Kong's default is 60000).
    type: int
  read_timeout:
    description: Milliseconds between two reads from the upstream (Kong's default is 60000).
    type: int
  enabled:
    description: Whether the service and its routes serve traffic.
    type: bool
  tls_verify:
    description: Verify the upstream's TLS certificate.
    type: bool
  tls_verify_depth:
    description: Maximum depth of the upstream's certificate chain.
    type: int
  ca_certificates:
    description: Ids of Kong CA certificates that verify the upstream (order does not matter).
    type: list
    elements: str
  client_certificate:
    description: Id of a Kong certificate presented to the upstream.
    type: str
  tags:
    description: Tags on the service (order does not matter).
    type: list
    elements: str
seealso:
  - module: aic.gateway.kong_route
  - module: aic.gateway.kong_sync
notes:
  - Deleting a service that routes still use fails with Kong's foreign key error; delete the routes first.
"""

EXAMPLES = r"""
- name: Configure Kong from the admin host
  module_defaults:
    group/aic.gateway.kong:
      admin_url: http://127.0.0.1:8001
  block:
    - name: The core API behind Kong
      aic.gateway.kong_service:
        name: core-api
        url: http://core-api.service.mesh:8080
        read_timeout: 10000
        tags: [platform]

    - name: Retire the old service
      aic.gateway.kong_service:
        name: legacy-api
        state: absent
"""

RETURN = r"""
service:
  description: The service as Kong stores it after the task (in check mode, as it would be); null when absent.
  returned: always
  type: dict
  sample: {"id": "4e3ad2e4-0bc4-4638-8e34-c84a417ba39b", "name": "core-api", "protocol": "http",
           "host": "core-api.service.mesh", "port": 8080, "path": null, "retries": 5, "enabled": true}
changed_fields:
  description: Top-level fields an update changed (or would change).
  returned: when the service existed and O(state=present)
  type: list
  elements: str
  sample: [read_timeout]
requests:
  description: Every Admin API request made, or in check mode the writes that would be made.
  returned: always
  type: list
  elements: dict
  sample: [{"method": "GET", "path": "/services/core-api", "status": 200},
           {"method": "PATCH", "path": "/services/4e3ad2e4-0bc4-4638-8e34-c84a417ba39b", "status": 200,
            "body": {"read_timeout": 10000}}]
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.aic.gateway.plugins.module_utils._kong import (
    EntityRunner, entity_module_spec, given,
)

FIELDS = ("name", "protocol", "host", "port", "path", "retries", "connect_timeout", "write_timeout",
          "read_timeout", "enabled", "tls_verify", "tls_verify_depth", "ca_certificates", "tags")


def main():
    module = AnsibleModule(
        argument_spec=entity_module_spec(
            name=dict(type="str", required=True),
            url=dict(type="str"),
            protocol=dict(type="str", choices=["http", "https", "grpc", "grpcs", "tcp", "tls", "tls_passthrough",
                                               "udp", "ws", "wss"]),
            host=dict(type="str"),
            port=dict(type="int"),
            path=dict(type="str"),
            retries=dict(type="int"),
            connect_timeout=dict(type="int"),
            write_timeout=dict(type="int"),
            read_timeout=dict(type="int"),
            enabled=dict(type="bool"),
            tls_verify=dict(type="bool"),
            tls_verify_depth=dict(type="int"),
            ca_certificates=dict(type="list", elements="str"),
            client_certificate=dict(type="str"),
            tags=dict(type="list", elements="str"),
        ),
        mutually_exclusive=[("url", "protocol"), ("url", "host"), ("url", "port"), ("url", "path")],
        supports_check_mode=True,
    )
    params = module.params
    runner = EntityRunner(module, "services")
    desired = given(params, FIELDS + ("url",), ids=("client_certificate",))
    runner.finish(lambda: runner.run(runner.by_key(params["name"]), desired, create_requires=("url", "host")))


if __name__ == "__main__":
    main()
