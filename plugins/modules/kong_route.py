#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) aic.gateway contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: kong_route
short_description: Manage a Kong Gateway route
version_added: 0.1.0
author: aic.gateway maintainers (@aic-gateway)
description:
  - Creates, updates or deletes one route through the Kong Admin API, found by its name.
  - Only the options a task sets are managed; the others keep their current value (new routes get
    Kong's defaults).
  - O(protocols), O(methods), O(snis), O(sources), O(destinations) and O(tags) are sets, compared without
    regard to order; O(hosts) and O(paths) are ordered lists, as in Kong.
  - Writes are C(PUT) to a new id (create), C(PATCH) of the changed fields (update) and C(DELETE).
    In check mode the module reads but does not write, and reports the requests it would make.
extends_documentation_fragment:
  - aic.gateway.kong
  - aic.gateway.kong.entity
options:
  name:
    description: Route name (Kong's endpoint key for routes).
    type: str
    required: true
  state:
    description: Whether the route exists.
    type: str
    choices: [present, absent]
    default: present
  service:
    description:
      - Name or id of the service the route forwards to. It must exist (create it first with
        M(aic.gateway.kong_service)).
      - Ignored with O(state=absent).
    type: str
  protocols:
    description: Protocols the route accepts (Kong's default is V(http) and V(https)).
    type: list
    elements: str
    choices: [http, https, grpc, grpcs, tcp, tls, tls_passthrough, udp, ws, wss]
  methods:
    description: HTTP methods the route matches, for example V(GET).
    type: list
    elements: str
  hosts:
    description: Host names the route matches; wildcards such as V(*.example.com) are allowed.
    type: list
    elements: str
  paths:
    description: Path prefixes (or regular expressions starting with V(~)) the route matches.
    type: list
    elements: str
  headers:
    description:
      - Request headers the route matches, as a mapping of header name to a list of values.
      - A single string value is taken as a one-element list.
    type: dict
  snis:
    description: TLS server names the route matches (for V(https), V(grpcs), V(tls) protocols).
    type: list
    elements: str
  sources:
    description: Source addresses the route matches (stream routes).
    type: list
    elements: dict
    suboptions:
      ip:
        description: Source IP address or CIDR range.
        type: str
      port:
        description: Source port.
        type: int
  destinations:
    description: Destination addresses the route matches (stream routes).
    type: list
    elements: dict
    suboptions:
      ip:
        description: Destination IP address or CIDR range.
        type: str
      port:
        description: Destination port.
        type: int
  strip_path:
    description: Strip the matched path prefix before proxying (Kong's default is V(true)).
    type: bool
  preserve_host:
    description: Pass the client's C(Host) header to the upstream (Kong's default is V(false)).
    type: bool
  regex_priority:
    description: Priority among regex paths; higher is evaluated first (Kong's default is 0).
    type: int
  path_handling:
    description: How the service path and the request path are joined (Kong's default is V(v0)).
    type: str
    choices: [v0, v1]
  https_redirect_status_code:
    description: Status code of the redirect sent when an HTTP request reaches an HTTPS-only route
      (Kong's default is 426).
    type: int
    choices: [426, 301, 302, 307, 308]
  request_buffering:
    description: Buffer the request body before proxying (Kong's default is V(true)).
    type: bool
  response_buffering:
    description: Buffer the response body before sending it to the client (Kong's default is V(true)).
    type: bool
  tags:
    description: Tags on the route (order does not matter).
    type: list
    elements: str
seealso:
  - module: aic.gateway.kong_service
  - module: aic.gateway.kong_plugin
  - module: aic.gateway.kong_sync
notes:
  - Creating a route needs at least one matching rule (O(methods), O(hosts), O(paths), O(headers), O(snis),
    O(sources) or O(destinations)); the module checks this before any write. Kong checks the exact rule
    for the route's protocols and its schema error is reported as is.
"""

EXAMPLES = r"""
- name: Configure Kong from the admin host
  module_defaults:
    group/aic.gateway.kong:
      admin_url: http://127.0.0.1:8001
  block:
    - name: Public entry point of the core API
      aic.gateway.kong_route:
        name: core-api-public
        service: core-api
        hosts: [api.example.com]
        paths: [/v1]
        methods: [GET, POST]
        protocols: [https]
        strip_path: false
        tags: [platform]

    - name: Only requests carrying the canary header
      aic.gateway.kong_route:
        name: core-api-canary
        service: core-api-canary
        paths: [/v1]
        headers:
          x-canary: ["true"]

    - name: Retire the old route
      aic.gateway.kong_route:
        name: legacy-route
        state: absent
"""

RETURN = r"""
route:
  description: The route as Kong stores it after the task (in check mode, as it would be); null when absent.
  returned: always
  type: dict
  sample: {"id": "a4e0e2b2-8f3c-4b86-9a0e-2f1a4c8b9d11", "name": "core-api-public", "protocols": ["https"],
           "hosts": ["api.example.com"], "paths": ["/v1"], "methods": ["GET", "POST"], "strip_path": false,
           "preserve_host": false, "service": {"id": "4e3ad2e4-0bc4-4638-8e34-c84a417ba39b"}}
changed_fields:
  description: Top-level fields an update changed (or would change).
  returned: when the route existed and O(state=present)
  type: list
  elements: str
  sample: [paths]
requests:
  description: Every Admin API request made, or in check mode the writes that would be made.
  returned: always
  type: list
  elements: dict
  sample: [{"method": "GET", "path": "/routes/core-api-public", "status": 200},
           {"method": "PATCH", "path": "/routes/a4e0e2b2-8f3c-4b86-9a0e-2f1a4c8b9d11", "status": 200,
            "body": {"paths": ["/v1"]}}]
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.aic.gateway.plugins.module_utils._kong import (
    EntityRunner, entity_module_spec, given,
)

FIELDS = ("name", "protocols", "methods", "hosts", "paths", "headers", "snis", "sources", "destinations",
          "strip_path", "preserve_host", "regex_priority", "path_handling", "https_redirect_status_code",
          "request_buffering", "response_buffering", "tags")
MATCHERS = ("methods", "hosts", "paths", "headers", "snis", "sources", "destinations")
ADDRESS = dict(ip=dict(type="str"), port=dict(type="int"))


def main():
    module = AnsibleModule(
        argument_spec=entity_module_spec(
            name=dict(type="str", required=True),
            service=dict(type="str"),
            protocols=dict(type="list", elements="str",
                           choices=["http", "https", "grpc", "grpcs", "tcp", "tls", "tls_passthrough", "udp",
                                    "ws", "wss"]),
            methods=dict(type="list", elements="str"),
            hosts=dict(type="list", elements="str"),
            paths=dict(type="list", elements="str"),
            headers=dict(type="dict"),
            snis=dict(type="list", elements="str"),
            sources=dict(type="list", elements="dict", options=ADDRESS),
            destinations=dict(type="list", elements="dict", options=ADDRESS),
            strip_path=dict(type="bool"),
            preserve_host=dict(type="bool"),
            regex_priority=dict(type="int"),
            path_handling=dict(type="str", choices=["v0", "v1"]),
            https_redirect_status_code=dict(type="int", choices=[426, 301, 302, 307, 308]),
            request_buffering=dict(type="bool"),
            response_buffering=dict(type="bool"),
            tags=dict(type="list", elements="str"),
        ),
        supports_check_mode=True,
    )
    params = module.params
    runner = EntityRunner(module, "routes")
    desired = given(params, FIELDS)
    if "headers" in desired:
        # Kong stores headers as {name: [values]}; accept a bare string as a one-value list.
        desired["headers"] = dict((k, v if isinstance(v, list) else [v]) for k, v in desired["headers"].items())

    def converge():
        actual = runner.by_key(params["name"])()
        foreign, refs = {}, None
        if params["state"] == "present" and params["service"] is not None:
            service_id = runner.resolve("services", params["service"])
            foreign["service"] = {"id": service_id}
            if actual is None or (actual.get("service") or {}).get("id") == service_id:
                refs = {"service": params["service"]}  # show the service by the name the task used
        return runner.run(lambda: actual, desired, foreign=foreign, refs=refs, create_requires=MATCHERS)

    runner.finish(converge)


if __name__ == "__main__":
    main()
