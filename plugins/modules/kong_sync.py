#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) aic.gateway contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: kong_sync
short_description: Make Kong's configuration match a declarative file in decK's format
version_added: 0.1.0
author: aic.gateway maintainers (@aic-gateway)
description:
  - Reads a declarative configuration in decK's format (C(_format_version "3.0")) from O(config) or from
    files (O(src)) and makes Kong match it through the Admin API, with one paged read per entity kind and
    only the writes that change something.
  - "Supported sections: C(services) (with nested C(routes) and C(plugins)), C(routes) (with a C(service)
    reference), C(consumers) (with nested C(keyauth_credentials), C(basicauth_credentials), C(jwt_secrets),
    C(hmacauth_credentials), C(oauth2_credentials), C(acls) and C(plugins)), C(plugins) (global, or with
    C(service), C(route), C(consumer) references), C(upstreams) (with nested C(targets)), C(certificates)
    (with C(snis)) and C(ca_certificates)."
  - Fields a file leaves out take Kong's defaults (plugin defaults come from Kong's schema), so the
    output of M(aic.gateway.kong_info) with O(aic.gateway.kong_info#module:dump=true), fed back, changes nothing.
  - "O(mode=apply) creates and updates. O(mode=sync) also deletes the entities of the managed kinds that
    carry all O(select_tags) and are not in the file. The managed kinds are the ones the file mentions
    (a section written as an empty list counts), plus O(kinds)."
  - Writes run parents first (services, consumers, upstreams, certificates), then routes, credentials and
    targets, then plugins; deletes run last, children first. Within a step, O(parallelism) writes run at once.
  - A renamed entity is updated in place, never deleted and re-created, when one of its other unique keys
    still matches (a consumer's C(custom_id), a plugin's scope when it has an C(instance_name), a
    certificate's SNIs); so a rename never fails with a unique-constraint conflict and keeps its id.
  - The whole file is checked (format, sections, references, duplicates, plugin names known to Kong) and,
    with O(validate=true), every entity to write is checked by Kong's own schema validation, before the
    first write.
extends_documentation_fragment:
  - aic.gateway.kong
options:
  config:
    description: The declarative configuration, inline. Mutually exclusive with O(src).
    type: dict
  src:
    description:
      - YAML or JSON files with the declarative configuration, on the host that runs the module.
        Several files are merged section by section (lists are concatenated).
    type: list
    elements: path
  mode:
    description:
      - V(apply) creates and updates only. V(sync) also deletes what is managed and absent from the file.
    type: str
    choices: [apply, sync]
    default: apply
  select_tags:
    description:
      - Only entities carrying all these tags are read, compared and deleted; they are added to every
        entity written. Same meaning as decK's C(--select-tag) and the file's C(_info.select_tags)
        (when both are set they must be equal).
    type: list
    elements: str
  kinds:
    description:
      - Entity kinds managed even when the file has none of them, so that O(mode=sync) deletes them.
        V(all) means every supported kind.
    type: list
    elements: str
    choices: [all, services, routes, consumers, plugins, upstreams, targets, certificates, ca_certificates,
              keyauth_credentials, basicauth_credentials, jwt_secrets, hmacauth_credentials, oauth2_credentials, acls]
  parallelism:
    description: How many writes run at the same time within one step.
    type: int
    default: 10
  validate:
    description:
      - Before the first write, have Kong check every entity the run would write against its schema
        (C(POST /schemas/{entity}/validate), which writes nothing; also in check mode). One invalid entity
        fails the run with Kong's messages for all of them, and nothing is written.
      - Set V(false) to skip the extra request per written entity; Kong then refuses an invalid entity on
        write, and the run stops after the step that failed, with the earlier steps applied.
    type: bool
    default: true
  update_secrets:
    description:
      - V(always) makes secrets given in the file (credential keys and secrets, basic-auth passwords,
        certificate keys) match; basic-auth passwords are compared through Kong's SHA1 form.
        V(on_create) only sets them when the entity is created and never compares or rewrites them.
    type: str
    choices: [always, on_create]
    default: always
seealso:
  - module: aic.gateway.kong_info
  - name: decK file format
    description: The declarative format this module reads.
    link: https://developer.konghq.com/deck/
notes:
  - Consumer groups, vaults, keys and key sets are not supported yet; a file with those sections is refused.
  - basic-auth passwords and hashed oauth2 secrets cannot be read back from Kong; a dump leaves them out.
attributes:
  check_mode:
    description: Reads Kong's state and returns the exact plan (every write, in order) without writing.
    support: full
  diff_mode:
    description: One before/after pair per changed entity, with secrets masked.
    support: full
"""

EXAMPLES = r"""
- name: Gateway configuration from version control
  aic.gateway.kong_sync:
    admin_url: http://127.0.0.1:8001
    src:
      - "{{ playbook_dir }}/files/kong/platform.yml"
    mode: sync
    select_tags: [platform]

- name: Inline configuration
  aic.gateway.kong_sync:
    config:
      _format_version: "3.0"
      services:
        - name: core-api
          url: http://core-api.service.mesh:8080
          routes:
            - name: core-api-v1
              paths: [/api/v1]
              plugins:
                - name: key-auth
          plugins:
            - name: rate-limiting
              config: {minute: 600, policy: local}
      consumers:
        - username: mobile-app
          keyauth_credentials:
            - key: "{{ vault_mobile_app_key }}"
      plugins:
        - name: prometheus
          config: {status_code_metrics: true, latency_metrics: true}
  register: kong_plan
  check_mode: true

- name: Show the plan
  ansible.builtin.debug:
    var: kong_plan.summary
"""

RETURN = r"""
summary:
  description: Counts of created, updated and deleted entities by kind, and how many were unchanged.
  returned: always
  type: dict
  sample: {"created": {"routes": 1}, "updated": {"plugins": 2}, "deleted": {}, "unchanged": 412}
changes:
  description: Every change in the order it is applied, with the fields an update touches.
  returned: always
  type: list
  elements: dict
  sample: [{"action": "update", "kind": "plugins", "name": "rate-limiting (service=core-api)",
            "fields": ["config"], "method": "PATCH", "path": "/plugins/a1c4b0f6-6a53-4d6c-9f2e-0e4f7d9c3b21"}]
requests:
  description: Every Admin API request made; in check mode the writes carry C(status=check_mode).
  returned: always
  type: list
  elements: dict
request_counts:
  description:
    - How many reads, schema validations and writes the run made (in check mode, the writes it would make).
  returned: always
  type: dict
  sample: {"read": 6, "validate": 3, "write": 3}
errors:
  description:
    - Entities Kong's schema validation refused (nothing was written), or writes Kong refused (the run
      stops after the step that failed), each with Kong's own error.
  returned: on failure
  type: list
  elements: dict
"""

import json
import os

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.aic.gateway.plugins.module_utils._kong import (
    ALL_KINDS, Engine, KongClient, KongError, kong_argument_spec,
)
from ansible_collections.aic.gateway.plugins.module_utils._kong_state import (
    ConfigError, apply_plan, make_plan, parse_config, read_state, validate_plan,
)

try:
    import yaml
    HAS_YAML = True
except ImportError:  # pragma: no cover - ansible-core depends on PyYAML
    HAS_YAML = False


def load_files(module, paths):
    merged = {}
    for path in paths:
        if not os.path.isfile(path):
            module.fail_json(msg="src %s: no such file" % path)
        with open(path, encoding="utf-8") as handle:
            text = handle.read()
        if path.endswith(".json"):
            try:
                data = json.loads(text)
            except ValueError as exc:
                module.fail_json(msg="src %s is not valid JSON: %s" % (path, exc))
        elif not HAS_YAML:
            module.fail_json(msg="src %s: reading YAML needs PyYAML on the host that runs the module" % path)
        else:
            try:
                data = yaml.safe_load(text)
            except yaml.YAMLError as exc:
                module.fail_json(msg="src %s is not valid YAML: %s" % (path, exc))
        if not isinstance(data, dict):
            module.fail_json(msg="src %s must hold a mapping" % path)
        for key, value in data.items():
            if isinstance(value, list) and isinstance(merged.get(key), list):
                merged[key] = merged[key] + value
            elif key == "_info" and isinstance(merged.get(key), dict) and merged[key] != value:
                module.fail_json(msg="src %s: its _info differs from the other files'" % path)
            else:
                merged[key] = value
    return merged


def main():
    spec = kong_argument_spec()
    spec.update(
        config=dict(type="dict"),
        src=dict(type="list", elements="path"),
        mode=dict(type="str", default="apply", choices=["apply", "sync"]),
        select_tags=dict(type="list", elements="str"),
        kinds=dict(type="list", elements="str", choices=["all"] + list(ALL_KINDS)),
        parallelism=dict(type="int", default=10),
        update_secrets=dict(type="str", default="always", choices=["always", "on_create"]),
        validate=dict(type="bool", default=True),
    )
    module = AnsibleModule(argument_spec=spec, mutually_exclusive=[("config", "src")],
                           required_one_of=[("config", "src")], supports_check_mode=True)
    params = module.params
    if params["parallelism"] < 1:
        module.fail_json(msg="parallelism must be 1 or more")
    config = params["config"] if params["config"] is not None else load_files(module, params["src"])
    client = KongClient(params, check_mode=module.check_mode)
    engine = Engine(client, update_secrets=params["update_secrets"])
    try:
        desired = parse_config(config)
        select_tags = params["select_tags"]
        if select_tags and desired.select_tags and sorted(select_tags) != sorted(desired.select_tags):
            raise ConfigError("select_tags %s differ from the file's _info.select_tags %s"
                              % (select_tags, desired.select_tags))
        select_tags = sorted(select_tags or desired.select_tags)
        for tag in select_tags:
            if not tag or "," in tag or "/" in tag:
                raise ConfigError("select tag %r is not a valid Kong tag (no ',' or '/')" % tag)
        kinds = set(desired.kinds)
        extra = params["kinds"] or []
        kinds |= set(ALL_KINDS) if "all" in extra else set(extra)
        state = read_state(client, kinds, select_tags, parallelism=min(params["parallelism"], 4))
        plan = make_plan(engine, client, desired, state, params["mode"], select_tags, want_diff=module._diff)
    except ConfigError as exc:
        module.fail_json(msg="invalid declarative configuration, nothing was changed: %s" % exc,
                         requests=client.requests)
    except (KongError, ValueError) as exc:
        result = exc.to_result() if isinstance(exc, KongError) else dict(msg=str(exc))
        module.fail_json(requests=client.requests, **result)
    if params["validate"] and plan.changes:
        invalid = validate_plan(client, plan, parallelism=params["parallelism"])
        if invalid:
            first = invalid[0]
            module.fail_json(msg="invalid declarative configuration, nothing was changed: %d of the entities to "
                                 "write fail Kong's schema validation; the first: %s %s: %s"
                                 % (len(invalid), first["kind"], first["name"], first["error"]),
                             errors=invalid, summary=plan.summary(), requests=client.requests,
                             request_counts=dict(client.counts))
    errors = apply_plan(client, plan, parallelism=1 if module.check_mode else params["parallelism"])
    if module.check_mode or not errors:
        changed = bool(plan.changes)
    else:  # a failed run reports changed only if some of its writes went through
        changed = any(r["method"] != "GET" and not r["path"].startswith("/schemas/") and isinstance(r["status"], int)
                      and r["status"] < 400 for r in client.requests)
    result = dict(
        changed=changed,
        summary=plan.summary(),
        changes=[dict(action=c.action, kind=c.kind, name=c.name, fields=c.fields, method=c.method, path=c.path)
                 for c in plan.changes],
        requests=client.requests,
        request_counts=dict(client.counts),
    )
    if module._diff:
        result["diff"] = [dict(before_header="%s %s" % (c.kind, c.name), after_header="%s %s" % (c.kind, c.name),
                               before=c.before, after=c.after) for c in plan.changes]
    if errors:
        first = errors[0]
        module.fail_json(msg="Kong refused %d of the writes; the first: %s %s: %s"
                         % (len(errors), first["kind"], first["name"], first["error"]), errors=errors, **result)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
