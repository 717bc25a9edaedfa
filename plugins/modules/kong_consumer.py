#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) aic.gateway contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: kong_consumer
short_description: Manage a Kong Gateway consumer
version_added: 0.1.0
author: aic.gateway maintainers (@aic-gateway)
description:
  - Creates, updates or deletes one consumer through the Kong Admin API.
  - The consumer is found by O(username) (Kong's endpoint key); when no consumer has that username, or no
    O(username) is given, it is found by O(custom_id) (C(GET /consumers?custom_id=...)). So setting a new
    O(custom_id) on a consumer found by username is an update, and so is giving a new O(username) to a
    consumer found by its custom id (a rename that keeps the id, the credentials and the plugins).
  - Only the options a task sets are managed; the others keep their current value.
  - Writes are C(PUT) to a new id (create), C(PATCH) of the changed fields (update) and C(DELETE).
    In check mode the module reads but does not write, and reports the requests it would make.
extends_documentation_fragment:
  - aic.gateway.kong
  - aic.gateway.kong.entity
options:
  username:
    description: Unique user name of the consumer. At least one of O(username) and O(custom_id) is required.
    type: str
  custom_id:
    description: Unique id of the consumer in another system (for example a customer number).
    type: str
  state:
    description:
      - Whether the consumer exists.
      - Deleting a consumer also deletes its credentials and its consumer-scoped plugins.
    type: str
    choices: [present, absent]
    default: present
  tags:
    description: Tags on the consumer (order does not matter).
    type: list
    elements: str
seealso:
  - module: aic.gateway.kong_consumer_credential
  - module: aic.gateway.kong_sync
"""

EXAMPLES = r"""
- name: Configure Kong from the admin host
  module_defaults:
    group/aic.gateway.kong:
      admin_url: http://127.0.0.1:8001
  block:
    - name: A partner application
      aic.gateway.kong_consumer:
        username: partner-acme
        custom_id: CUST-0042
        tags: [partners]

    - name: Remove a consumer known only by its customer number
      aic.gateway.kong_consumer:
        custom_id: CUST-0007
        state: absent
"""

RETURN = r"""
consumer:
  description: The consumer as Kong stores it after the task (in check mode, as it would be); null when absent.
  returned: always
  type: dict
  sample: {"id": "0f6c8a7e-5b1d-4c1e-9a57-3d2b7f1e6c20", "username": "partner-acme", "custom_id": "CUST-0042",
           "tags": ["partners"], "created_at": 1735689600, "updated_at": 1735689600}
changed_fields:
  description: Top-level fields an update changed (or would change).
  returned: when the consumer existed and O(state=present)
  type: list
  elements: str
  sample: [custom_id]
requests:
  description: Every Admin API request made, or in check mode the writes that would be made.
  returned: always
  type: list
  elements: dict
  sample: [{"method": "GET", "path": "/consumers/partner-acme", "status": 200},
           {"method": "PATCH", "path": "/consumers/0f6c8a7e-5b1d-4c1e-9a57-3d2b7f1e6c20", "status": 200,
            "body": {"custom_id": "CUST-0042"}}]
"""

from urllib.parse import quote, urlencode

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.aic.gateway.plugins.module_utils._kong import (
    EntityRunner, entity_module_spec, given,
)

FIELDS = ("username", "custom_id", "tags")


def lookup(client, username, custom_id):
    """By username, then by custom_id (kong.md section 4: `GET /consumers?custom_id=X`)."""
    if username is not None:
        found = client.get("/consumers/%s" % quote(username, safe=""))
        if found is not None:
            return found
    if custom_id is not None:
        payload = client.get("/consumers?%s" % urlencode({"custom_id": custom_id})) or {}
        # The filter is an exact match on a unique field: at most one consumer.
        for consumer in payload.get("data") or []:
            if consumer.get("custom_id") == custom_id:
                return consumer
    return None


def main():
    module = AnsibleModule(
        argument_spec=entity_module_spec(
            username=dict(type="str"),
            custom_id=dict(type="str"),
            tags=dict(type="list", elements="str"),
        ),
        required_one_of=[("username", "custom_id")],
        supports_check_mode=True,
    )
    params = module.params
    runner = EntityRunner(module, "consumers")
    desired = given(params, FIELDS)
    runner.finish(lambda: runner.run(lambda: lookup(runner.client, params["username"], params["custom_id"]), desired))


if __name__ == "__main__":
    main()
