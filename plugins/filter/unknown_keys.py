# -*- coding: utf-8 -*-
# Copyright (c) aic.gateway contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
name: unknown_keys
short_description: The dotted paths of a settings dict that a reference dict does not have
version_added: 0.1.0
author: aic.gateway maintainers
description:
  - Walks O(_input) and returns every key path (C(a.b.c)) that is not in O(reference).
  - Where the reference holds a mapping, the walk goes down; where it holds anything else (a value, a
    list, null) or an empty mapping, whatever the settings put there is accepted.
  - Used to check a program's settings against the defaults file its release ships, so a misspelt key
    fails before the program would silently ignore it.
options:
  _input:
    description: The settings to check.
    type: dict
    required: true
  reference:
    description: The settings the program knows, for example its parsed defaults file.
    type: dict
    required: true
"""

EXAMPLES = r"""
- name: Check kuma-cp settings against the tarball's defaults
  ansible.builtin.assert:
    that: settings | aic.gateway.unknown_keys(defaults) | length == 0
  vars:
    settings: {dpServer: {auth: {enableReloadableTokens: true}}}
    defaults: {dpServer: {authn: {enableReloadableTokens: false}}}
# fails: ['dpServer.auth']
"""

RETURN = r"""
_value:
  description: Dotted key paths not in the reference, sorted.
  type: list
  elements: str
"""

from collections.abc import Mapping

from ansible.errors import AnsibleFilterError


def _walk(settings, reference, prefix, found):
    for key, value in settings.items():
        path = "%s%s" % (prefix, key)
        if key not in reference:
            found.append(path)
            continue
        known = reference[key]
        if isinstance(value, Mapping) and isinstance(known, Mapping) and known:
            _walk(value, known, path + ".", found)


def unknown_keys(settings, reference):
    """Dotted paths of ``settings`` missing from ``reference``."""
    if not isinstance(settings, Mapping) or not isinstance(reference, Mapping):
        raise AnsibleFilterError("unknown_keys expects two mappings, got %s and %s"
                                 % (type(settings).__name__, type(reference).__name__))
    found = []
    _walk(settings, reference, "", found)
    return sorted(found)


class FilterModule(object):
    def filters(self):
        return {"unknown_keys": unknown_keys}
