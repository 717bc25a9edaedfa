"""Version of the Kong stand-in package (test double, NOT Kong).

``build-deb VERSION`` writes a ``VERSION`` file next to this module in the
package (/usr/local/share/kong-standin/VERSION).  From a source checkout the
version is ``$KONG_STANDIN_VERSION`` or 3.9.3 (kong.md §0 "Kong/kong has tags up
to 3.9.3").  It is what ``kong version`` prints (kong.md §3 "`kong version`:
prints the bare version, e.g. `3.9.3`") and ``GET /`` returns as ``version``.
"""

import os

DEFAULT = "3.9.3"


def _read():
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "VERSION")
    try:
        with open(path, encoding="ascii") as fh:
            value = fh.read().strip()
            if value:
                return value
    except OSError:
        pass
    return os.environ.get("KONG_STANDIN_VERSION") or DEFAULT


VERSION = _read()
