# -*- coding: utf-8 -*-
# Copyright (c) aic.gateway contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
name: checksum_for
short_description: Find a file's sha256 in the text of a checksums file
version_added: 0.1.0
author: aic.gateway maintainers
description:
  - Reads the output format of C(sha256sum) (C(<hash>  <name>) or C(<hash> *<name>), one file a line,
    names possibly with a leading C(./) or a directory) as release pages publish it, or a file that
    holds a single hash (C(<file>.sha256)).
  - Fails with a message that lists the names the file does have when the wanted name is missing, so a
    wrong file name or version is obvious.
options:
  _input:
    description: The checksums file's content.
    type: str
    required: true
  filename:
    description: The artifact's file name to look up.
    type: str
    required: true
"""

EXAMPLES = r"""
- name: Look up the checksum of a release tarball
  ansible.builtin.set_fact:
    expected_sha256: >-
      {{ lookup('ansible.builtin.file', 'sha256sums.txt')
         | aic.gateway.checksum_for('prometheus-3.1.0.linux-amd64.tar.gz') }}
"""

RETURN = r"""
_value:
  description: The sha256 as 64 lower-case hex digits.
  type: str
"""

import re

from ansible.errors import AnsibleFilterError
from ansible.module_utils.common.text.converters import to_text

_LINE = re.compile(r"^(?P<hash>[0-9A-Fa-f]{64})(?:\s+\*?(?P<name>.+))?$")


def checksum_for(content, filename):
    """Return the sha256 listed for filename in a sha256sum-style file."""
    filename = to_text(filename).strip()
    names = []
    single = []
    for raw in to_text(content).splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        match = _LINE.match(line)
        if not match:
            continue
        name = (match.group("name") or "").strip()
        if not name:
            single.append(match.group("hash").lower())
            continue
        names.append(name)
        if name == filename or name.lstrip("./") == filename or name.rsplit("/", 1)[-1] == filename:
            return match.group("hash").lower()
    if len(single) == 1 and not names:
        return single[0]
    if not names and not single:
        raise AnsibleFilterError("the checksums file has no sha256 lines (is it an HTML error page?)")
    raise AnsibleFilterError(
        "the checksums file lists no sha256 for '%s'; it lists: %s" % (filename, ", ".join(names[:20]) or "bare hashes only")
    )


class FilterModule(object):
    """aic.gateway artifact filters."""

    def filters(self):
        return {"checksum_for": checksum_for}
