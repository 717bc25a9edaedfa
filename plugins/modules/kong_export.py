#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) aic.gateway contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: kong_export
short_description: Export Kong's whole configuration in kong_sync's format, for version control and recovery
version_added: 0.1.0
author: aic.gateway maintainers (@aic-gateway)
description:
  - Reads every entity through the Admin API (one paged read per kind) and returns it as a declarative
    configuration in decK's format, the input of M(aic.gateway.kong_sync), in a stable order (sections and keys
    sorted, entities by name, ties by their own fields, never by id), without ids or timestamps. Fed back to
    M(aic.gateway.kong_sync) it recreates the same configuration, and a second export of an unchanged Kong gives
    the same bytes.
  - Uses the same reader and dump as M(aic.gateway.kong_info) with O(aic.gateway.kong_info#module:dump=true);
    this module adds the text rendering, the file and the redaction. M(aic.gateway.kong_info) stays an
    information module that never writes.
  - With O(dest) it writes the text to that file on the host that runs the module, only when the content
    differs (atomically, with O(mode)); in check mode it only says whether it would.
  - With O(redact_secrets=true), credential secrets (key-auth keys, JWT and HMAC secrets, OAuth2 client
    secrets), certificate keys and plugin settings named like a password, secret or token are replaced by
    C(********). Such an export documents the configuration but cannot restore those secrets.
extends_documentation_fragment:
  - aic.gateway.kong
options:
  dest:
    description:
      - File to write the export to, on the host that runs the module. Its directory must exist.
      - Without it the module only reads and returns RV(config) and RV(content).
    type: path
  mode:
    description: File mode of O(dest); the export holds credentials unless O(redact_secrets=true).
    type: raw
    default: "0600"
  format:
    description: V(yaml) (block style, keys sorted, multi-line text such as certificates as literal blocks) or V(json).
    type: str
    choices: [yaml, json]
    default: yaml
  select_tags:
    description: Export only entities carrying all these tags; the export records them in C(_info.select_tags).
    type: list
    elements: str
  kinds:
    description: Entity kinds to export. Default is every kind M(aic.gateway.kong_sync) supports.
    type: list
    elements: str
    choices: [services, routes, consumers, plugins, upstreams, targets, certificates, ca_certificates,
              keyauth_credentials, basicauth_credentials, jwt_secrets, hmacauth_credentials, oauth2_credentials, acls]
  redact_secrets:
    description: Replace secrets by C(********) (see the description).
    type: bool
    default: false
seealso:
  - module: aic.gateway.kong_sync
  - module: aic.gateway.kong_info
  - module: aic.gateway.kuma_export
notes:
  - basic-auth passwords and OAuth2 secrets stored hashed cannot be read back from Kong; the export leaves them
    out, and re-creating such a credential needs its secret from elsewhere (the inventory's vault).
attributes:
  check_mode:
    description: Reads Kong and compares with O(dest); writes nothing.
    support: full
  diff_mode:
    description: The old and new text of O(dest), with secrets masked in both.
    support: full
"""

EXAMPLES = r"""
- name: Kong's configuration into version control (on the controller)
  aic.gateway.kong_export:
    admin_url: http://127.0.0.1:8001
  register: kong_export

- name: Write it on the controller
  ansible.builtin.copy:
    content: "{{ kong_export.content }}"
    dest: "{{ config_export_dir }}/kong/kong.yml"
    mode: "0600"
  delegate_to: localhost

- name: An export without secrets, written where the module runs
  aic.gateway.kong_export:
    dest: /var/backups/kong/kong-redacted.yml
    redact_secrets: true
    mode: "0640"

- name: Re-apply an export to an empty Kong
  aic.gateway.kong_sync:
    src: [/var/backups/kong/kong.yml]
"""

RETURN = r"""
config:
  description: The configuration in kong_sync's format (secrets replaced when O(redact_secrets=true)).
  returned: always
  type: dict
  sample: {"_format_version": "3.0", "services": [{"name": "core-api", "host": "127.0.0.1", "port": 33033,
           "protocol": "http", "routes": [{"name": "core-api", "paths": ["/core"]}]}]}
content:
  description: The same as text in O(format), exactly what O(dest) holds.
  returned: always
  type: str
counts:
  description: How many entities of each kind were exported.
  returned: always
  type: dict
  sample: {"services": 3, "routes": 4, "plugins": 7, "consumers": 2, "keyauth_credentials": 2}
redacted:
  description: How many values were replaced by C(********).
  returned: always
  type: int
  sample: 0
dest:
  description: The file written (or that would be written).
  returned: when O(dest) is set
  type: str
requests:
  description: Every Admin API request made.
  returned: always
  type: list
  elements: dict
"""

import copy
import os
import re

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.aic.gateway.plugins.module_utils._export import (
    HAS_YAML, parse, render, write_if_changed,
)
from ansible_collections.aic.gateway.plugins.module_utils._kong import (
    ALL_KINDS, KINDS, MASK, KongClient, KongError, kong_argument_spec,
)
from ansible_collections.aic.gateway.plugins.module_utils._kong_state import dump, read_state

HEADER = "# Kong configuration exported by aic.gateway.kong_export, in aic.gateway.kong_sync's format.\n"
# Plugin settings that hold a secret, by name (redis.password, client_secret, session_secret, ...).
SECRET_SETTING = re.compile(r"(^|_)(password|passwd|secret|token)$")


def _redact_config(value):
    """Plugin configuration with the values of secret-named settings masked; (new value, count)."""
    count = 0
    if isinstance(value, dict):
        out = {}
        for key, item in value.items():
            if SECRET_SETTING.search(str(key)) and item not in (None, "", [], {}):
                out[key] = MASK
                count += 1
            else:
                out[key], inner = _redact_config(item)
                count += inner
        return out, count
    if isinstance(value, list):
        out = []
        for item in value:
            new, inner = _redact_config(item)
            out.append(new)
            count += inner
        return out, count
    return value, 0


def redact(config):
    """A copy of the exported configuration with every secret masked, and how many were."""
    config = copy.deepcopy(config)
    count = 0

    def walk(kind, entries):
        nonlocal count
        for entry in entries or []:
            for field in KINDS[kind].secrets:
                if entry.get(field) not in (None, ""):
                    entry[field] = MASK
                    count += 1
            if kind == "plugins" and "config" in entry:
                entry["config"], inner = _redact_config(entry["config"])
                count += inner
            for child in list(entry):
                if child in KINDS and isinstance(entry[child], list):
                    walk(child, entry[child])

    for section, entries in config.items():
        if section in KINDS and isinstance(entries, list):
            walk(section, entries)
    return config, count


def masked_text(text, fmt):
    """An earlier export as shown in --diff: re-rendered with its secrets masked (never shown in clear)."""
    if not text:
        return ""
    data = parse(text, fmt)
    if not isinstance(data, dict):
        return "(%d bytes that are not an export)\n" % len(text)
    return render(redact(data)[0], fmt, HEADER)


def main():
    spec = kong_argument_spec()
    spec.update(
        dest=dict(type="path"),
        mode=dict(type="raw", default="0600"),
        format=dict(type="str", default="yaml", choices=["yaml", "json"]),
        select_tags=dict(type="list", elements="str"),
        kinds=dict(type="list", elements="str", choices=list(ALL_KINDS)),
        redact_secrets=dict(type="bool", default=False),
    )
    module = AnsibleModule(argument_spec=spec, supports_check_mode=True)
    params = module.params
    if params["format"] == "yaml" and not HAS_YAML:
        module.fail_json(msg="format yaml needs PyYAML on the host that runs the module; use format json")
    client = KongClient(params)
    try:
        select_tags = sorted(params["select_tags"] or [])
        state = read_state(client, params["kinds"] or ALL_KINDS, select_tags)
        config = dump(state, select_tags)
    except KongError as exc:
        module.fail_json(requests=client.requests, **exc.to_result())
    redacted = 0
    if params["redact_secrets"]:
        config, redacted = redact(config)
    content = render(config, params["format"], HEADER)
    result = dict(changed=False, config=config, content=content, redacted=redacted,
                  counts={kind: len(items) for kind, items in sorted(state.items())}, requests=client.requests)
    if params["dest"]:
        dest = params["dest"]
        if not os.path.isdir(os.path.dirname(os.path.abspath(dest))):
            module.fail_json(msg="dest %s: its directory does not exist" % dest, requests=client.requests)
        changed, before = write_if_changed(module, dest, content, params["mode"])
        result.update(changed=changed, dest=dest)
        if module._diff:
            result["diff"] = dict(before=masked_text(before, params["format"]),
                                  after=render(redact(config)[0], params["format"], HEADER),
                                  before_header=dest, after_header=dest)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
