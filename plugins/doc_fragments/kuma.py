# -*- coding: utf-8 -*-
# Copyright (c) aic.gateway contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations


class ModuleDocFragment(object):
    # Connection options shared by every Kuma module (plugins/module_utils/_kuma.py reads them).
    DOCUMENTATION = r"""
options:
  api_url:
    description:
      - Base URL of the kuma-cp HTTP API (port 5681 for HTTP, 5682 for HTTPS).
      - Set it once for a play with C(module_defaults) and the action group C(group/aic.gateway.kuma).
    type: str
    default: http://127.0.0.1:5681
    aliases: [kuma_api_url]
  token:
    description:
      - A Kuma user token (for example the admin user token), sent in the C(Authorization) header as C(Bearer <token>).
      - Without O(token) or O(token_file), requests are anonymous; kuma-cp treats a direct loopback client
        as admin by default (C(KUMA_API_SERVER_AUTHN_LOCALHOST_IS_ADMIN)).
      - Mutually exclusive with O(token_file).
    type: str
  token_file:
    description:
      - Path, on the host where the module runs, of a file holding the user token (for example the admin
        user token that the kuma_cp role writes on the control plane host). Surrounding whitespace is ignored.
      - Mutually exclusive with O(token).
    type: path
  headers:
    description: Extra HTTP headers sent with every request.
    type: dict
    default: {}
  validate_certs:
    description: Verify the API's TLS certificate (HTTPS on port 5682).
    type: bool
    default: true
  ca_path:
    description: PEM file with the CA certificates that sign the API's certificate (for example C(~/.kuma/kuma-cp.crt)).
    type: path
  client_cert:
    description: PEM client certificate (for C(apiServer.authn.type=adminClientCerts)).
    type: path
  client_key:
    description: PEM private key of O(client_cert).
    type: path
  timeout:
    description: Seconds to wait for each HTTP request.
    type: int
    default: 30
  retries:
    description:
      - How many times a request is retried after a connection error, HTTP 503 or HTTP 429, with exponential
        backoff (0.5 s, 1 s, 2 s, ...). Writes are PUT upserts and DELETEs, so a retry never duplicates anything.
    type: int
    default: 3
notes:
  - Written against the kuma-cp 2.14 HTTP API of a standalone or zone control plane in universal mode
    (2.9 and later answer the same way for what these modules use).
"""

    # Modules that read, compare and write: `extends_documentation_fragment: [aic.gateway.kuma, aic.gateway.kuma.write]`.
    WRITE = r"""
attributes:
  check_mode:
    description: Reads, compares and reports the writes it would make, without making them.
    support: full
  diff_mode:
    description: Shows the resource before and after, without server-added fields, with secrets masked.
    support: full
"""
