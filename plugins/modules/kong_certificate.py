#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) aic.gateway contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: kong_certificate
short_description: Manage a Kong Gateway TLS certificate and its SNIs
version_added: 0.1.0
author: aic.gateway maintainers (@aic-gateway)
description:
  - Creates, updates or deletes one certificate (with its private key and server names) through the Kong
    Admin API.
  - 'Kong certificates have no name, so the certificate is found in this order: by O(id) when given; else
    as the certificate that holds any of the O(snis) (Kong looks certificates up by SNI name); else as the
    certificate whose PEM text equals O(cert).'
  - So a rotation (a new O(cert) and O(key) for the same O(snis)) updates the certificate in place; its id,
    and the services and upstreams that use it, stay.
  - Only the options a task sets are managed; the others keep their current value.
  - The private keys (O(key), O(key_alt)) never appear in the output or the diff.
  - Writes are C(PUT) to a new id (or to O(id)) to create, C(PATCH) of the changed fields to update, and
    C(DELETE). In check mode the module reads but does not write, and reports the requests it would make.
extends_documentation_fragment:
  - aic.gateway.kong
  - aic.gateway.kong.entity
options:
  id:
    description: Id of the certificate. When given, the certificate is found (or created) with this id.
    type: str
  state:
    description:
      - Whether the certificate exists.
      - O(state=absent) needs O(id), O(snis) or O(cert) to find the certificate. Deleting it also deletes
        its SNIs.
    type: str
    choices: [present, absent]
    default: present
  cert:
    description: PEM certificate, followed by its intermediate certificates. Required to create.
    type: str
  key:
    description: PEM private key of O(cert). Required to create.
    type: str
  cert_alt:
    description: Alternative PEM certificate of another key type (for example ECDSA next to RSA).
    type: str
  key_alt:
    description: PEM private key of O(cert_alt).
    type: str
  snis:
    description:
      - Server names served with this certificate (order does not matter). Wildcards such as
        V(*.example.com) are allowed.
      - The list replaces the certificate's SNIs. A name that another certificate holds makes Kong answer
        with a conflict.
    type: list
    elements: str
  tags:
    description: Tags on the certificate (order does not matter).
    type: list
    elements: str
seealso:
  - module: aic.gateway.kong_ca_certificate
  - module: aic.gateway.kong_route
"""

EXAMPLES = r"""
- name: Configure Kong from the admin host
  module_defaults:
    group/aic.gateway.kong:
      admin_url: http://127.0.0.1:8001
  block:
    - name: Certificate of the public API (a renewed file updates it in place)
      aic.gateway.kong_certificate:
        cert: "{{ lookup('ansible.builtin.file', 'certs/api.example.com.fullchain.pem') }}"
        key: "{{ lookup('ansible.builtin.file', 'certs/api.example.com.key') }}"
        snis: [api.example.com, www.api.example.com]
        tags: [public]

    - name: Remove the certificate of a retired host name
      aic.gateway.kong_certificate:
        snis: [old.example.com]
        state: absent
"""

RETURN = r"""
certificate:
  description:
    - The certificate as Kong stores it after the task (in check mode, as it would be); null when absent.
    - C(key) and C(key_alt) are masked as C(********).
  returned: always
  type: dict
  sample: {"id": "3f2e1d0c-9b8a-4765-8432-10fedcba9876", "cert": "-----BEGIN CERTIFICATE-----\n...",
           "key": "********", "cert_alt": null, "key_alt": null,
           "snis": ["api.example.com", "www.api.example.com"], "tags": ["public"]}
changed_fields:
  description: Top-level fields an update changed (or would change).
  returned: when the certificate existed and O(state=present)
  type: list
  elements: str
  sample: [cert, key]
requests:
  description: Every Admin API request made, or in check mode the writes that would be made. Private keys
    in request bodies are masked.
  returned: always
  type: list
  elements: dict
  sample: [{"method": "GET", "path": "/certificates/api.example.com", "status": 200},
           {"method": "PATCH", "path": "/certificates/3f2e1d0c-9b8a-4765-8432-10fedcba9876", "status": 200,
            "body": {"cert": "-----BEGIN CERTIFICATE-----\n...", "key": "********"}}]
"""

from urllib.parse import quote

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.aic.gateway.plugins.module_utils._kong import (
    EntityRunner, entity_module_spec, given, is_uuid, masked,
)

FIELDS = ("cert", "key", "cert_alt", "key_alt", "snis", "tags")


def lookup(client, params):
    """By id; else by any of the SNIs (all must point at one certificate); else by the PEM text."""
    if params["id"] is not None:
        return client.get("/certificates/%s" % quote(params["id"], safe=""))
    holders = {}
    for sni in params["snis"] or []:
        found = client.get("/certificates/%s" % quote(sni, safe=""))
        if found is not None:
            holders.setdefault(found["id"], (found, []))[1].append(sni)
    if len(holders) > 1:
        raise ValueError("the snis belong to %d different certificates (%s); set id to choose the one to "
                         "update, after removing the names from the others"
                         % (len(holders), "; ".join("%s: %s" % (i, ", ".join(n)) for i, (c, n) in holders.items())))
    if holders:
        return list(holders.values())[0][0]
    if params["cert"] is not None:
        wanted = params["cert"].strip()
        for cert in client.list("/certificates"):
            if (cert.get("cert") or "").strip() == wanted:
                return cert
    return None


def main():
    module = AnsibleModule(
        argument_spec=entity_module_spec(
            id=dict(type="str"),
            cert=dict(type="str"),
            key=dict(type="str", no_log=True),
            cert_alt=dict(type="str"),
            key_alt=dict(type="str", no_log=True),
            snis=dict(type="list", elements="str"),
            tags=dict(type="list", elements="str"),
        ),
        required_if=[("state", "absent", ("id", "snis", "cert"), True)],
        required_together=[("cert_alt", "key_alt")],
        supports_check_mode=True,
    )
    params = module.params
    runner = EntityRunner(module, "certificates")
    if params["id"] is not None and not is_uuid(params["id"]):
        module.fail_json(msg="id must be a UUID, got %r" % params["id"])
    desired = given(params, FIELDS)

    def converge():
        actual = lookup(runner.client, params)
        if actual is None and params["state"] == "present" and (params["cert"] is None or params["key"] is None):
            raise ValueError("the certificate does not exist yet: set cert and key to create it")
        result = runner.run(lambda: actual, desired,
                            create_path=lambda new: "/certificates/%s" % (params["id"] or new))
        # Kong returns the private keys; they never leave the module.
        result["certificate"] = masked("certificates", result.get("certificate"))
        if params["id"] is not None and result.get("certificate") and module.check_mode and actual is None:
            result["certificate"]["id"] = params["id"]
        return result

    runner.finish(converge)


if __name__ == "__main__":
    main()
