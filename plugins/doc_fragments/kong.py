# -*- coding: utf-8 -*-
# Copyright (c) aic.gateway contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations


class ModuleDocFragment(object):
    # Connection options shared by every Kong module (plugins/module_utils/_kong.py reads them).
    DOCUMENTATION = r"""
options:
  admin_url:
    description:
      - Base URL of the Kong Admin API.
      - Set it once for a play with C(module_defaults) and the action group C(group/aic.gateway.kong).
    type: str
    default: http://127.0.0.1:8001
    aliases: [kong_admin_url]
  admin_token:
    description:
      - Value of the C(Kong-Admin-Token) header, for Kong Enterprise with RBAC.
      - Kong OSS has no Admin API authentication; keep its Admin API on loopback or behind a firewall.
    type: str
  admin_headers:
    description: Extra HTTP headers sent with every Admin API request.
    type: dict
    default: {}
  workspace:
    description:
      - Kong Enterprise workspace. Requests go to C(<admin_url>/<workspace>/...).
    type: str
  validate_certs:
    description: Verify the Admin API's TLS certificate.
    type: bool
    default: true
  ca_path:
    description: PEM file with the CA certificates that sign the Admin API's certificate.
    type: path
  client_cert:
    description: PEM client certificate for mutual TLS with the Admin API.
    type: path
  client_key:
    description: PEM private key of O(client_cert).
    type: path
  timeout:
    description: Seconds to wait for each HTTP request.
    type: int
    default: 30
  admin_retries:
    description:
      - How many times a request is retried after a connection error, HTTP 429 or a 5xx answer,
        with exponential backoff (0.5 s, 1 s, 2 s, ...). Every write the modules make is idempotent
        (PUT to a known id, PATCH, DELETE), so a retry never creates a duplicate.
    type: int
    default: 3
notes:
  - Tested against Kong Gateway OSS 3.9 Admin API semantics (DB mode). Writes to a DB-less node fail with
    Kong's own C(operation unsupported) error; use the declarative C(/config) endpoint there.
"""

    # Per-entity modules: `extends_documentation_fragment: [aic.gateway.kong, aic.gateway.kong.entity]`.
    ENTITY = r"""
attributes:
  check_mode:
    description: Reads, compares and reports the writes it would make, without making them.
    support: full
  diff_mode:
    description: Shows the entity before and after, with secrets masked and ids and timestamps left out.
    support: full
"""
