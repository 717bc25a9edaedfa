"""Version of the Kuma runtime stand-in binaries (test double, NOT Kuma).

The tarball build (package/build_tarball.py) bakes the version into a module ``standin_build`` inside each
zipapp; from a source checkout the version is ``KUMA_STANDIN_VERSION`` or api.VERSION (2.14.3).
"""

import os

from api import VERSION as DEFAULT_VERSION

try:  # present only inside the zipapps of the tarball
    import standin_build  # pylint: disable=import-error
    BAKED = standin_build.VERSION
except ImportError:
    BAKED = None

# kuma.md §0 "Bundled Envoy (source: `K@<tag>:mk/dev.mk` line 11)": 2.9.19 and 2.11.18 ship Envoy 1.35.12;
# 2.14.3 ships Envoy 1.38.2.  Other lines (and other 2.14 patches) are assumed to ship the same Envoy as
# their line's listed patch (UNCONFIRMED).
ENVOY_BY_LINE = {(2, 9): "1.35.12", (2, 11): "1.35.12", (2, 14): "1.38.2"}
ENVOY_COMMIT = "5ba5f9ea2f9fed8e1fdd6e1ae8fc1a0c9cf77b9b"  # stand-in value, not Envoy's


def version():
    return BAKED or os.environ.get("KUMA_STANDIN_VERSION") or DEFAULT_VERSION


def envoy_version(kuma_version=None):
    parts = (kuma_version or version()).split(".")
    try:
        line = (int(parts[0]), int(parts[1]))
    except (ValueError, IndexError):
        line = (2, 14)
    return ENVOY_BY_LINE.get(line, ENVOY_BY_LINE[(2, 14)])


def detailed(kuma_version=None):
    """kumahq/kuma `pkg/version/version.go` FormatDetailedProductInfo(): "Product:       %s", "Version:       %s",
    "Git Tag:       %s", "Git Commit:    %s", "Build Date:    %s"."""
    ver = kuma_version or version()
    return "\n".join(["Product:       Kuma", "Version:       %s" % ver, "Git Tag:       %s" % ver,
                      "Git Commit:    standin", "Build Date:    1970-01-01T00:00:00Z"])
