#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) aic.gateway contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: kong_plugin
short_description: Manage a Kong Gateway plugin instance, global or scoped to a service, route or consumer
version_added: 0.1.0
author: aic.gateway maintainers (@aic-gateway)
description:
  - Creates, updates or deletes one plugin instance through the Kong Admin API.
  - The instance is found by O(instance_name) when set, otherwise by its name and scope (the
    O(service), O(route) and O(consumer) it applies to; none of them means a global plugin). Kong allows
    one instance per name and scope.
  - O(config) is compared as a whole after filling the plugin's defaults from Kong's own schema
    (C(GET /schemas/plugins/{name})), so leaving out a setting means its default, and deprecated
    shorthand fields Kong echoes back (for example rate-limiting's C(redis_host)) never show as a change.
    Set-typed settings compare regardless of order.
  - When O(config) is not set, an existing instance keeps its configuration.
  - With O(instance_name), changing the scope moves the instance (its id is kept).
extends_documentation_fragment:
  - aic.gateway.kong
  - aic.gateway.kong.entity
options:
  name:
    description: Plugin name, for example V(rate-limiting), V(key-auth), V(prometheus).
    type: str
    required: true
  instance_name:
    description: Unique name of this instance. When set, the instance is found by it.
    type: str
  state:
    description: Whether the instance exists.
    type: str
    choices: [present, absent]
    default: present
  service:
    description: Name or id of the service the instance applies to.
    type: str
  route:
    description: Name or id of the route the instance applies to.
    type: str
  consumer:
    description: Username or id of the consumer the instance applies to.
    type: str
  config:
    description: The plugin's configuration. Settings left out take the plugin's defaults.
    type: dict
  protocols:
    description: Protocols the instance runs on (defaults come from the plugin's schema).
    type: list
    elements: str
  enabled:
    description: Whether the instance runs.
    type: bool
  tags:
    description: Tags on the instance (order does not matter).
    type: list
    elements: str
seealso:
  - module: aic.gateway.kong_sync
"""

EXAMPLES = r"""
- name: Gateway plugins
  module_defaults:
    group/aic.gateway.kong:
      admin_url: http://127.0.0.1:8001
  block:
    - name: Prometheus metrics for every service
      aic.gateway.kong_plugin:
        name: prometheus
        config:
          status_code_metrics: true
          latency_metrics: true

    - name: Rate limit the core API
      aic.gateway.kong_plugin:
        name: rate-limiting
        service: core-api
        config:
          minute: 600
          policy: local

    - name: Key authentication on one route
      aic.gateway.kong_plugin:
        name: key-auth
        route: core-api-v1
        config:
          key_names: [apikey]
          hide_credentials: true

    - name: Remove the global rate limit
      aic.gateway.kong_plugin:
        name: rate-limiting
        state: absent
"""

RETURN = r"""
plugin:
  description: The plugin instance as Kong stores it after the task (in check mode, as it would be); null when absent.
  returned: always
  type: dict
  sample: {"id": "a1c4b0f6-6a53-4d6c-9f2e-0e4f7d9c3b21", "name": "rate-limiting", "service": {"id": "4e3a..."},
           "route": null, "consumer": null, "config": {"minute": 600, "policy": "local"}, "enabled": true}
changed_fields:
  description: Top-level fields an update changed (or would change), for example C(config).
  returned: when the instance existed and O(state=present)
  type: list
  elements: str
requests:
  description: Every Admin API request made, or in check mode the writes that would be made.
  returned: always
  type: list
  elements: dict
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.aic.gateway.plugins.module_utils._kong import (
    EntityRunner, entity_module_spec, given,
)

FIELDS = ("name", "instance_name", "config", "protocols", "enabled", "tags")
SCOPES = (("service", "services", "/services/%s/plugins"), ("route", "routes", "/routes/%s/plugins"),
          ("consumer", "consumers", "/consumers/%s/plugins"))


def main():
    module = AnsibleModule(
        argument_spec=entity_module_spec(
            name=dict(type="str", required=True),
            instance_name=dict(type="str"),
            service=dict(type="str"),
            route=dict(type="str"),
            consumer=dict(type="str"),
            config=dict(type="dict"),
            protocols=dict(type="list", elements="str"),
            enabled=dict(type="bool"),
            tags=dict(type="list", elements="str"),
        ),
        supports_check_mode=True,
    )
    params = module.params
    runner = EntityRunner(module, "plugins")
    client = runner.client

    def converge():
        required = params["state"] == "present"
        foreign = {}
        refs = {}
        for field, kind, _path in SCOPES:
            ref_id = runner.resolve(kind, params[field], required=required)
            if params[field] is not None and ref_id is None:
                # the scope is gone, so is any instance scoped to it
                module.exit_json(changed=False, plugin=None, requests=client.requests,
                                 diff=dict(before={}, after={}))
            foreign[field] = {"id": ref_id} if ref_id else None
            if params[field]:
                refs[field] = params[field]

        def lookup():
            if params["instance_name"]:
                return runner.by_key(params["instance_name"])()
            listing = "/plugins"
            for field, _kind, path in reversed(SCOPES):
                if foreign[field]:
                    listing = path % foreign[field]["id"]
                    break
            for plugin in client.list(listing):
                if plugin["name"] != params["name"]:
                    continue
                if all((plugin.get(f) or {}).get("id") == (foreign[f] or {}).get("id") for f, _k, _p in SCOPES):
                    return plugin
            return None

        def checked_lookup():
            found = lookup()
            if found is not None and found["name"] != params["name"]:
                raise ValueError("instance_name %r belongs to a %r plugin, not %r"
                                 % (params["instance_name"], found["name"], params["name"]))
            return found

        return runner.run(checked_lookup, given(params, FIELDS), foreign=foreign, refs=refs)

    runner.finish(converge)


if __name__ == "__main__":
    main()
