#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) aic.gateway contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: kong_consumer_credential
short_description: Manage a credential or ACL group of a Kong Gateway consumer
version_added: 0.1.0
author: aic.gateway maintainers (@aic-gateway)
description:
  - Creates, updates or deletes one credential of a consumer through the Kong Admin API (a key-auth key,
    basic-auth user, JWT credential, HMAC user, OAuth2 application, or an ACL group membership).
  - All requests go to the consumer's nested paths (C(/consumers/{id}/key-auth/...) and so on).
  - 'How the credential is found, per O(type):'
  - V(key-auth) and V(jwt) - by O(key). Without O(key), the consumer's only credential of that type is
    managed; when it has none, one is created with a key Kong generates; when it has several, the module
    fails and asks for O(key).
  - V(basic-auth) and V(hmac-auth) - by O(username).
  - V(oauth2) - by O(client_id), else by O(name) among the consumer's OAuth2 applications.
  - V(acl) - by O(group).
  - Only the options a task sets are managed; the others keep their current value. Options that do not
    apply to O(type) are refused before any request.
  - Writes are C(PUT) to a new id (create), C(PATCH) of the changed fields (update) and C(DELETE).
    In check mode the module reads but does not write, and reports the requests it would make.
extends_documentation_fragment:
  - aic.gateway.kong
  - aic.gateway.kong.entity
options:
  consumer:
    description: Username or id of the consumer that owns the credential. It must exist.
    type: str
    required: true
  type:
    description: Kind of credential (the name of the Kong plugin that uses it).
    type: str
    required: true
    choices: [key-auth, basic-auth, jwt, hmac-auth, oauth2, acl]
  state:
    description: Whether the credential exists.
    type: str
    choices: [present, absent]
    default: present
  key:
    description:
      - V(key-auth) - the API key; V(jwt) - the C(iss) value the token must carry.
      - Kong generates one when it is not given; the generated value is returned in RV(credential).
    type: str
  ttl:
    description:
      - V(key-auth) only. Seconds until Kong deletes the key.
      - Applies when the key is created; Kong counts it down, so it is not compared afterwards.
    type: int
  username:
    description: V(basic-auth) and V(hmac-auth) - the user name (unique in Kong). Required for both.
    type: str
  password:
    description:
      - V(basic-auth) only. Required to create the credential.
      - Kong stores C(SHA1(password + consumer id)); the module compares in that form, so a changed
        password is detected and an unchanged one is not rewritten.
    type: str
  secret:
    description:
      - V(jwt) - the HMAC secret (HS algorithms); V(hmac-auth) - the shared secret.
      - Kong generates one when it is not given; the generated value is returned in RV(credential).
    type: str
  algorithm:
    description: V(jwt) only. Signing algorithm (Kong's default is V(HS256)).
    type: str
    choices: [HS256, HS384, HS512, RS256, RS384, RS512, ES256, ES384, ES512, PS256, PS384, PS512, EdDSA]
  rsa_public_key:
    description:
      - V(jwt) only. PEM public key that verifies the tokens.
      - Required with every O(algorithm) other than V(HS256), V(HS384) and V(HS512).
    type: str
  name:
    description: V(oauth2) only. Application name; required to create the application.
    type: str
  client_id:
    description: V(oauth2) only. Kong generates one when it is not given.
    type: str
  client_secret:
    description: V(oauth2) only. Kong generates one when it is not given.
    type: str
  redirect_uris:
    description: V(oauth2) only. Redirect URIs of the application.
    type: list
    elements: str
  hash_secret:
    description:
      - V(oauth2) only. Store O(client_secret) hashed (Kong's default is V(false)).
      - A hashed secret cannot be compared, so with O(update_secrets=always) a given O(client_secret) is
        rewritten on every run (the task reports a change).
    type: bool
  client_type:
    description: V(oauth2) only (Kong's default is V(confidential)).
    type: str
    choices: [confidential, public]
  group:
    description: V(acl) only, and required for it. The ACL group the consumer belongs to.
    type: str
  tags:
    description: Tags on the credential (order does not matter).
    type: list
    elements: str
  update_secrets:
    description:
      - V(always) - a secret the task gives (O(password), O(secret), O(client_secret), O(key)) is compared
        with Kong's and rewritten when it differs.
      - V(on_create) - secrets are only sent when the credential is created; an existing credential's
        secrets are never compared or rewritten (use this when the secrets are rotated outside Ansible).
    type: str
    choices: [always, on_create]
    default: always
seealso:
  - module: aic.gateway.kong_consumer
  - module: aic.gateway.kong_plugin
notes:
  - 'Secrets policy: the module options O(key), O(password), O(secret) and O(client_secret) are C(no_log),
    so Ansible masks their values everywhere in its output; in C(--diff) output every secret field shows
    as C(********).'
"""

EXAMPLES = r"""
- name: Credentials of a partner application
  module_defaults:
    group/aic.gateway.kong:
      admin_url: http://127.0.0.1:8001
  block:
    - name: An API key generated by Kong, handed out once
      aic.gateway.kong_consumer_credential:
        consumer: partner-acme
        type: key-auth
      register: acme_key

    - name: Show the generated key
      ansible.builtin.debug:
        msg: "{{ acme_key.credential.key }}"
      when: acme_key is changed

    - name: A basic-auth user with a password from the vault
      aic.gateway.kong_consumer_credential:
        consumer: partner-acme
        type: basic-auth
        username: acme
        password: "{{ vault_acme_password }}"

    - name: A JWT issuer verified with an RSA key; keep a rotated secret as is
      aic.gateway.kong_consumer_credential:
        consumer: partner-acme
        type: jwt
        key: https://idp.acme.example
        algorithm: RS256
        rsa_public_key: "{{ lookup('ansible.builtin.file', 'acme-jwt.pub') }}"
        update_secrets: on_create

    - name: Membership of the partners ACL group
      aic.gateway.kong_consumer_credential:
        consumer: partner-acme
        type: acl
        group: partners

    - name: Revoke an API key
      aic.gateway.kong_consumer_credential:
        consumer: partner-acme
        type: key-auth
        key: "{{ old_key }}"
        state: absent
"""

RETURN = r"""
credential:
  description:
    - The credential as Kong stores it after the task (in check mode, as it would be); null when absent.
    - Keys and secrets that Kong generated (key-auth C(key), jwt C(key)/C(secret), hmac-auth C(secret),
      oauth2 C(client_id)/C(client_secret)) are returned as they are, so that the caller can hand them
      out; treat the registered result as a secret. Values given through the module's own secret options
      are masked by Ansible's C(no_log). A basic-auth C(password) is Kong's SHA1 hash.
  returned: always
  type: dict
  sample: {"id": "b7f1c2d3-4e5f-4a6b-8c7d-9e0f1a2b3c4d", "key": "Xq3v0uTq8Hn2...", "ttl": null, "tags": null,
           "consumer": {"id": "0f6c8a7e-5b1d-4c1e-9a57-3d2b7f1e6c20"}, "created_at": 1735689600}
consumer_id:
  description: Id of the consumer that owns the credential; null when it does not exist (O(state=absent)).
  returned: always
  type: str
  sample: 0f6c8a7e-5b1d-4c1e-9a57-3d2b7f1e6c20
changed_fields:
  description: Top-level fields an update changed (or would change).
  returned: when the credential existed and O(state=present)
  type: list
  elements: str
  sample: [password]
requests:
  description: Every Admin API request made, or in check mode the writes that would be made. Secret
    fields in request bodies are masked.
  returned: always
  type: list
  elements: dict
  sample: [{"method": "GET", "path": "/consumers/partner-acme", "status": 200},
           {"method": "GET", "path": "/consumers/0f6c8a7e-5b1d-4c1e-9a57-3d2b7f1e6c20/basic-auth/acme",
            "status": 200},
           {"method": "PATCH", "path": "/consumers/0f6c8a7e-5b1d-4c1e-9a57-3d2b7f1e6c20/basic-auth/b7f1c2d3-4e5f-4a6b-8c7d-9e0f1a2b3c4d",
            "status": 200, "body": {"password": "********"}}]
"""

from urllib.parse import quote

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.aic.gateway.plugins.module_utils._kong import (
    CREDENTIAL_TYPES, KINDS, EntityRunner, entity_module_spec, given,
)

# The options each credential type takes (its Kong schema fields, less the consumer).
OPTIONS = {
    "key-auth": ("key", "ttl", "tags"),
    "basic-auth": ("username", "password", "tags"),
    "jwt": ("key", "secret", "algorithm", "rsa_public_key", "tags"),
    "hmac-auth": ("username", "secret", "tags"),
    "oauth2": ("name", "client_id", "client_secret", "redirect_uris", "hash_secret", "client_type", "tags"),
    "acl": ("group", "tags"),
}
ALL_OPTIONS = sorted(set(o for opts in OPTIONS.values() for o in opts))
# What must be set whatever the state (the credential is found by it).
REQUIRED = {"basic-auth": ("username",), "hmac-auth": ("username",), "acl": ("group",)}
# What must be set to create the credential.
CREATE_REQUIRED = {"basic-auth": ("password",), "oauth2": ("name",)}
HMAC_ALGORITHMS = ("HS256", "HS384", "HS512")


def validate(params):
    """Messages for options that do not fit the credential type (checked before any request)."""
    ctype = params["type"]
    errors = []
    wrong = [o for o in ALL_OPTIONS if params.get(o) is not None and o not in OPTIONS[ctype]]
    if wrong:
        errors.append("%s do(es) not apply to type=%s (it takes %s)"
                      % (", ".join(wrong), ctype, ", ".join(OPTIONS[ctype])))
    missing = [o for o in REQUIRED.get(ctype, ()) if params.get(o) is None]
    if missing:
        errors.append("type=%s requires %s" % (ctype, ", ".join(missing)))
    if ctype == "jwt" and params["state"] == "present" and params.get("algorithm") not in (None,) + HMAC_ALGORITHMS \
            and params.get("rsa_public_key") is None:
        errors.append("algorithm=%s requires rsa_public_key" % params["algorithm"])
    return errors


class Finder(object):
    """Finds the consumer's credential of one type; may fail with an explanation (ValueError)."""

    def __init__(self, client, kind, consumer_id, params):
        self.client = client
        self.kind = kind
        self.base = "/consumers/%s/%s" % (consumer_id, KINDS[kind].nested)
        self.params = params

    def by_key(self, value):
        return self.client.get("%s/%s" % (self.base, quote(value, safe="")))

    def all(self):
        return self.client.list(self.base)

    def only_one(self, what):
        found = self.all()
        if len(found) > 1:
            raise ValueError("consumer %r has %d %s credentials: set %s to choose one"
                             % (self.params["consumer"], len(found), KINDS[self.kind].label, what))
        return found[0] if found else None

    def find(self):
        ctype, params = self.params["type"], self.params
        if ctype in ("key-auth", "jwt"):
            return self.by_key(params["key"]) if params["key"] is not None else self.only_one("key")
        if ctype in ("basic-auth", "hmac-auth"):
            return self.by_key(params["username"])
        if ctype == "oauth2":
            if params["client_id"] is not None:
                return self.by_key(params["client_id"])
            if params["name"] is None:
                return self.only_one("client_id or name")
            apps = [a for a in self.all() if a.get("name") == params["name"]]
            if len(apps) > 1:
                raise ValueError("consumer %r has %d oauth2 applications named %r: set client_id to choose one"
                                 % (params["consumer"], len(apps), params["name"]))
            return apps[0] if apps else None
        # acl: the consumer's membership of the group
        groups = [a for a in self.all() if a.get("group") == params["group"]]
        return groups[0] if groups else None


def main():
    module = AnsibleModule(
        argument_spec=entity_module_spec(
            consumer=dict(type="str", required=True),
            type=dict(type="str", required=True, choices=sorted(OPTIONS)),
            key=dict(type="str", no_log=True),
            ttl=dict(type="int"),
            username=dict(type="str"),
            password=dict(type="str", no_log=True),
            secret=dict(type="str", no_log=True),
            algorithm=dict(type="str", choices=["HS256", "HS384", "HS512", "RS256", "RS384", "RS512", "ES256",
                                                "ES384", "ES512", "PS256", "PS384", "PS512", "EdDSA"]),
            rsa_public_key=dict(type="str"),
            name=dict(type="str"),
            client_id=dict(type="str"),
            client_secret=dict(type="str", no_log=True),
            redirect_uris=dict(type="list", elements="str"),
            hash_secret=dict(type="bool"),
            client_type=dict(type="str", choices=["confidential", "public"]),
            group=dict(type="str"),
            tags=dict(type="list", elements="str"),
            update_secrets=dict(type="str", default="always", choices=["always", "on_create"], no_log=False),
        ),
        supports_check_mode=True,
    )
    params = module.params
    errors = validate(params)
    if errors:
        module.fail_json(msg="; ".join(errors))
    kind = CREDENTIAL_TYPES[params["type"]]
    runner = EntityRunner(module, kind, update_secrets=params["update_secrets"])
    desired = given(params, OPTIONS[params["type"]])

    def converge():
        consumer_id = runner.resolve("consumers", params["consumer"], required=params["state"] == "present")
        actual = None
        if consumer_id is not None:
            actual = Finder(runner.client, kind, consumer_id, params).find()
        if params["state"] == "present":
            if actual is None:
                missing = [o for o in CREATE_REQUIRED.get(params["type"], ()) if params.get(o) is None]
                if missing:
                    raise ValueError("the %s credential does not exist yet: set %s to create it"
                                     % (params["type"], " and ".join(missing)))
            else:
                desired.pop("ttl", None)  # Kong counts ttl down: it only applies on create
        return runner.run(
            lambda: actual, desired,
            foreign={"consumer": {"id": consumer_id}} if consumer_id else None,
            write_path=lambda i: KINDS[kind].entity_path(i, consumer_id),
            refs={"consumer": params["consumer"]},
            extra={"consumer_id": consumer_id},
        )

    runner.finish(converge)


if __name__ == "__main__":
    main()
