# -*- coding: utf-8 -*-
# Copyright (c) aic.gateway contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Text rendering and file writing shared by kong_export and kuma_export (private to this collection).

The same data always renders to the same bytes (keys sorted, block style, lists indented, multi-line text such
as PEM as literal blocks), and a file is only rewritten when its bytes change, so an export into version
control shows exactly what changed.
"""

from __future__ import annotations

import json
import os
import tempfile

from ansible.module_utils.common.text.converters import to_bytes

try:
    import yaml
    HAS_YAML = True
    PARSE_ERRORS = (ValueError, yaml.YAMLError)
except ImportError:  # pragma: no cover - ansible-core depends on PyYAML
    yaml = None
    HAS_YAML = False
    PARSE_ERRORS = (ValueError,)


if HAS_YAML:
    class StableDumper(yaml.SafeDumper):  # pylint: disable=too-many-ancestors
        """Block style with indented lists, multi-line strings as literal blocks."""

        def increase_indent(self, flow=False, indentless=False):
            return super(StableDumper, self).increase_indent(flow, False)

    def _represent_str(dumper, value):
        if "\n" in value:
            return dumper.represent_scalar("tag:yaml.org,2002:str", value, style="|")
        return dumper.represent_scalar("tag:yaml.org,2002:str", value)

    StableDumper.add_representer(str, _represent_str)


def render(data, fmt="yaml", header=""):
    """``data`` as text in ``fmt`` (yaml or json); the same data always gives the same bytes."""
    if fmt == "json":
        return json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
    return header + yaml.dump(data, Dumper=StableDumper, default_flow_style=False, sort_keys=True,
                              allow_unicode=True, width=100)


def parse(text, fmt="yaml"):
    """An earlier export read back (None when it is not one)."""
    try:
        return json.loads(text) if fmt == "json" else yaml.safe_load(text)
    except PARSE_ERRORS:
        return None


def read_text(path):
    """The file's text, or None when it does not exist."""
    if not os.path.exists(path):
        return None
    with open(path, "rb") as handle:
        return handle.read().decode("utf-8", errors="replace")


def write_if_changed(module, path, content, mode):
    """Write ``content`` to ``path`` (atomically, through a temporary file beside it) when its bytes differ,
    and give it ``mode``; nothing in check mode. Returns (changed, the earlier text or None)."""
    directory = os.path.dirname(os.path.abspath(path))
    before = read_text(path)
    changed = before != content
    if changed and not module.check_mode:
        fd, tmp = tempfile.mkstemp(dir=directory, prefix=".%s." % os.path.basename(path))
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(to_bytes(content))
            module.atomic_move(tmp, os.path.abspath(path))
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
    if os.path.exists(path):
        args = module.load_file_common_arguments(dict(path=path, mode=mode))
        changed = module.set_fs_attributes_if_different(args, changed)
    return changed, before
