# -*- coding: utf-8 -*-
# Copyright (c) aic.gateway contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations


class ModuleDocFragment(object):
    # The input of the filters that read every service host's service_definitions from hostvars
    # (service_gateway, service_kong_outbounds, service_mesh_policies, service_postgresql).
    DOCUMENTATION = r"""
options:
  _input:
    description: The C(hostvars) magic variable.
    type: dict
    required: true
  hosts:
    description: The hosts whose C(service_definitions) are read, usually C(groups['services']).
    type: list
    elements: str
    required: true
"""
