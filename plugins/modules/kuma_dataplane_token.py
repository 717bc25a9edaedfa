#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) aic.gateway contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: kuma_dataplane_token
short_description: Issue a Kuma data plane proxy token, and keep it while it still fits
version_added: 0.1.0
author: aic.gateway maintainers (@aic-gateway)
description:
  - Issues a data plane token with C(POST /tokens/dataplane) (an admin operation of kuma-cp); the answer is a
    raw JWT that kuma-dp reads from C(--dataplane-token-file).
  - Kuma never stores tokens, so idempotence comes from the token the task already has - O(current_token),
    or the content of O(dest). Its claims are decoded B(without verifying the signature) and the token is
    kept (C(changed=false)) when its mesh, name, tags and type are the ones asked for and it does not expire
    within O(renew_before). Otherwise a new token is issued (and written to O(dest)).
  - The token is never shown in a diff or in the result unless O(return_token=true); the diff shows its claims.
  - In check mode nothing is issued or written.
extends_documentation_fragment:
  - aic.gateway.kuma
options:
  mesh:
    description: Mesh the token is for.
    type: str
    required: true
  name:
    description: Binds the token to the Dataplane of this name. Without it, any Dataplane of the mesh (and tags) may use it.
    type: str
  tags:
    description:
      - "Binds the token to these tags - a map of tag to the list of allowed values, for example
        V({kuma.io/service: [backend, backend-admin]}). A plain string value is a list of one."
      - A Dataplane using the token must carry only C(kuma.io/service) values from the list.
    type: dict
  type:
    description: Proxy type of the token.
    type: str
    choices: [dataplane, ingress, egress]
    default: dataplane
  valid_for:
    description:
      - Lifetime of a new token, as a Go duration such as V(720h). Kuma's default is 10 years.
      - Changing it does not renew a token that still fits; use O(force) for that.
    type: str
  renew_before:
    description:
      - Issue a new token when the current one expires within this time - a Go duration (V(72h)), or seconds.
      - Default - one third of the current token's lifetime (C(exp - iat)), or V(24h) when the token does not say
        when it was issued.
    type: str
  current_token:
    description: The token the task already has (for example from a vault), checked before O(dest).
    type: str
  dest:
    description:
      - File, on the host where the module runs, that holds the token; read to decide whether to keep it, and
        written (mode 0600, atomically) when a new token is issued. Its directory must exist.
    type: path
  return_token:
    description:
      - Return the token in the result as RV(token). The task must then use C(no_log=true), or the token lands in
        the logs.
    type: bool
    default: false
  force:
    description: Issue a new token even if the current one fits (rotation, or a signing key that changed).
    type: bool
    default: false
attributes:
  check_mode:
    description: Decides whether a token would be issued, issues nothing and writes nothing.
    support: full
  diff_mode:
    description: Shows the claims of the current token and of the new one, never the token.
    support: full
seealso:
  - module: aic.gateway.kuma_mesh
notes:
  - The module cannot tell whether an existing token's signature is still valid (for example after a restart
    of a control plane with the memory store, which generates new signing keys); use O(force=true) then.
  - Real Kuma tokens are RS256 JWTs with claims C(Name), C(Mesh), C(Tags), C(Type), C(jti), C(iat), C(nbf)
    and C(exp) (kumahq/kuma C(pkg/tokens/builtin/issuer/token.go)).
"""

EXAMPLES = r"""
- name: Token of the backend's data plane, kept on the data plane host
  aic.gateway.kuma_dataplane_token:
    api_url: http://127.0.0.1:5681
    token_file: /etc/kuma/admin-user-token
    mesh: default
    name: backend-01
    tags:
      kuma.io/service: backend
    valid_for: 8760h
    dest: /etc/kuma/backend-01.token

- name: A token for another host, passed on in a variable
  aic.gateway.kuma_dataplane_token:
    mesh: default
    name: kong-01
    tags: {kuma.io/service: [kong]}
    current_token: "{{ kong_dp_token | default(omit) }}"
    return_token: true
  register: kong_token
  no_log: true
"""

RETURN = r"""
token:
  description: The token (issued or kept).
  returned: when O(return_token=true) and not in check mode with a token to issue
  type: str
claims:
  description: Claims of the token after the task (in check mode, of the token that would be issued, without C(jti)).
  returned: always
  type: dict
  sample: {"Name": "backend-01", "Mesh": "default", "Tags": {"kuma.io/service": ["backend"]},
           "Type": "dataplane", "exp": 1924992000, "iat": 1767225600}
reason:
  description: Why a token was issued (V(no current token), the claims that differ, V(expired), V(force)), or V(kept).
  returned: always
  type: str
dest:
  description: O(dest), when given.
  returned: when O(dest) is set
  type: str
requests:
  description: Every API request made; in check mode a token to issue shows status V(check_mode).
  returned: always
  type: list
  elements: dict
"""

import os
import time

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.aic.gateway.plugins.module_utils._kuma import (
    CONNECTION_EXCLUSIVE, KumaError, decode_jwt, module_spec, normalize_tags, parse_duration, public_claims, run,
    token_mismatch, write_private_file,
)

DEFAULT_RENEW = 24 * 3600


def read_dest(path):
    if not path or not os.path.exists(path):
        return None
    try:
        with open(path, "r") as handle:
            return handle.read().strip() or None
    except (IOError, OSError) as exc:
        raise KumaError("dest %s cannot be read: %s" % (path, exc))


def renew_window(params, claims):
    if params["renew_before"] is not None:
        return parse_duration(params["renew_before"])
    exp, iat = claims.get("exp"), claims.get("iat")
    if isinstance(exp, (int, float)) and isinstance(iat, (int, float)) and exp > iat:
        return (exp - iat) / 3.0
    return DEFAULT_RENEW


def converge(module, client):
    params = module.params
    tags = normalize_tags(params["tags"])
    if params["valid_for"] is not None:
        parse_duration(params["valid_for"])
    if params["renew_before"] is not None:
        parse_duration(params["renew_before"])
    file_token = read_dest(params["dest"])
    current = params["current_token"] or file_token
    result = dict(changed=False, requests=client.requests)
    if params["dest"]:
        result["dest"] = params["dest"]
    claims = None
    reason = "no current token"
    if current:
        try:
            claims = decode_jwt(current)[1]
            reason = token_mismatch(claims, params["mesh"], params["name"], tags, params["type"],
                                    renew_window(params, claims))
        except ValueError as exc:
            reason = "current token unreadable (%s)" % exc
        if params["force"]:
            reason = "force"
    before = public_claims(claims) if claims else {}
    if reason is None:
        result["reason"] = "kept"
        result["claims"] = before
        if params["dest"] and file_token != current:
            if not module.check_mode:
                write_private_file(params["dest"], current + "\n")
            result["changed"] = True
        elif params["dest"] and not module.check_mode:
            result["changed"] = _fix_mode(params["dest"])
        result["diff"] = dict(before=before, after=before)
        if params["return_token"]:
            result["token"] = current
        return result

    body = {"mesh": params["mesh"], "type": params["type"]}
    if params["name"]:
        body["name"] = params["name"]
    if tags:
        body["tags"] = tags
    if params["valid_for"]:
        body["validFor"] = params["valid_for"]
    result["changed"] = True
    result["reason"] = reason
    if module.check_mode:
        client.write("POST", "/tokens/dataplane", body)
        now = int(time.time())
        valid = parse_duration(params["valid_for"]) if params["valid_for"] else 10 * 365 * 24 * 3600
        after = {"Name": params["name"] or "", "Mesh": params["mesh"], "Tags": tags, "Type": params["type"],
                 "iat": now, "exp": now + int(valid)}
    else:
        token = client.call("POST", "/tokens/dataplane", body)[1]
        if not isinstance(token, str) or not token.strip():
            raise KumaError("POST /tokens/dataplane answered no token (%r)" % (token,))
        token = token.strip()
        try:
            after = public_claims(decode_jwt(token)[1])
        except ValueError as exc:
            raise KumaError("POST /tokens/dataplane answered something that is not a JWT: %s" % exc)
        if params["dest"]:
            write_private_file(params["dest"], token + "\n")
        if params["return_token"]:
            result["token"] = token
    result["claims"] = after
    result["diff"] = dict(before=before, after=after)
    return result


def _fix_mode(path):
    if os.stat(path).st_mode & 0o777 != 0o600:
        os.chmod(path, 0o600)
        return True
    return False


def main():
    module = AnsibleModule(
        argument_spec=module_spec(
            mesh=dict(type="str", required=True),
            name=dict(type="str"),
            tags=dict(type="dict"),
            type=dict(type="str", default="dataplane", choices=["dataplane", "ingress", "egress"]),
            valid_for=dict(type="str"),
            renew_before=dict(type="str"),
            current_token=dict(type="str", no_log=True),
            dest=dict(type="path"),
            return_token=dict(type="bool", default=False),
            force=dict(type="bool", default=False),
        ),
        mutually_exclusive=CONNECTION_EXCLUSIVE,
        supports_check_mode=True,
    )
    for value in (module.params["tags"] or {}).values():
        if not isinstance(value, (str, list)):
            module.fail_json(msg="tags: each value must be a string or a list of strings, got %r" % (value,))
    run(module, lambda client: converge(module, client))


if __name__ == "__main__":
    main()
