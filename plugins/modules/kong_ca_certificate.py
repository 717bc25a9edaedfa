#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) aic.gateway contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: kong_ca_certificate
short_description: Manage a Kong Gateway CA certificate
version_added: 0.1.0
author: aic.gateway maintainers (@aic-gateway)
description:
  - Creates, updates or deletes one trusted CA certificate through the Kong Admin API. Services
    (C(ca_certificates)) and plugins such as mtls-auth refer to it by id.
  - Kong CA certificates have no name. The certificate is found by O(id) when given, else by its digest
    (the SHA-256 of the certificate, Kong's C(cert_digest)), so the same PEM is never added twice.
  - Writes are C(PUT) to a new id (or to O(id)) to create, C(PATCH) of the changed fields to update, and
    C(DELETE). In check mode the module reads but does not write, and reports the requests it would make.
extends_documentation_fragment:
  - aic.gateway.kong
  - aic.gateway.kong.entity
options:
  id:
    description:
      - Id of the CA certificate. When given, the certificate is found (or created) with this id, and a
        different O(cert) replaces the stored one.
    type: str
  cert:
    description:
      - One PEM CA certificate. Kong accepts only CA certificates that have not expired.
      - Required to create, and with O(state=absent) when O(id) is not given.
    type: str
  state:
    description: Whether the CA certificate exists.
    type: str
    choices: [present, absent]
    default: present
  tags:
    description: Tags on the CA certificate (order does not matter).
    type: list
    elements: str
seealso:
  - module: aic.gateway.kong_certificate
  - module: aic.gateway.kong_service
"""

EXAMPLES = r"""
- name: Configure Kong from the admin host
  module_defaults:
    group/aic.gateway.kong:
      admin_url: http://127.0.0.1:8001
  block:
    - name: Trust the internal CA for upstream TLS
      aic.gateway.kong_ca_certificate:
        cert: "{{ lookup('ansible.builtin.file', 'pki/internal-ca.pem') }}"
        tags: [internal-pki]
      register: internal_ca

    - name: Verify the core API's certificate with it
      aic.gateway.kong_service:
        name: core-api
        url: https://core-api.service.mesh:8443
        tls_verify: true
        ca_certificates: ["{{ internal_ca.ca_certificate.id }}"]
"""

RETURN = r"""
ca_certificate:
  description: The CA certificate as Kong stores it after the task (in check mode, as it would be); null when
    absent.
  returned: always
  type: dict
  sample: {"id": "1a2b3c4d-5e6f-4a7b-8c9d-0e1f2a3b4c5d", "cert": "-----BEGIN CERTIFICATE-----\n...",
           "cert_digest": "2b4f...e9", "tags": ["internal-pki"]}
changed_fields:
  description: Top-level fields an update changed (or would change).
  returned: when the CA certificate existed and O(state=present)
  type: list
  elements: str
  sample: [tags]
requests:
  description: Every Admin API request made, or in check mode the writes that would be made.
  returned: always
  type: list
  elements: dict
  sample: [{"method": "GET", "path": "/ca_certificates?size=1000", "status": 200},
           {"method": "PUT", "path": "/ca_certificates/1a2b3c4d-5e6f-4a7b-8c9d-0e1f2a3b4c5d", "status": 200,
            "body": {"cert": "-----BEGIN CERTIFICATE-----\n...", "cert_digest": "2b4f...e9"}}]
"""

from urllib.parse import quote

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.aic.gateway.plugins.module_utils._kong import (
    EntityRunner, cert_digest, entity_module_spec, given, is_uuid,
)

FIELDS = ("cert", "tags")


def lookup(client, params):
    """By id; else by the digest of the certificate."""
    if params["id"] is not None:
        return client.get("/ca_certificates/%s" % quote(params["id"], safe=""))
    digest = cert_digest(params["cert"])
    for ca in client.list("/ca_certificates"):
        if ca.get("cert_digest") == digest:
            return ca
    return None


def main():
    module = AnsibleModule(
        argument_spec=entity_module_spec(
            id=dict(type="str"),
            cert=dict(type="str"),
            tags=dict(type="list", elements="str"),
        ),
        required_one_of=[("id", "cert")],
        supports_check_mode=True,
    )
    params = module.params
    runner = EntityRunner(module, "ca_certificates")
    if params["id"] is not None and not is_uuid(params["id"]):
        module.fail_json(msg="id must be a UUID, got %r" % params["id"])
    desired = given(params, FIELDS)

    def converge():
        actual = lookup(runner.client, params)
        result = runner.run(lambda: actual, desired, create_requires=("cert",),
                            create_path=lambda new: "/ca_certificates/%s" % (params["id"] or new))
        if params["id"] is not None and module.check_mode and actual is None and result.get("ca_certificate"):
            result["ca_certificate"]["id"] = params["id"]  # the id the create would use
        return result

    runner.finish(converge)


if __name__ == "__main__":
    main()
