"""Build the stand-in Kuma release tarball(s) (tests only, NOT Kuma).

    build-tarball OUTDIR VERSION [VERSION...]

Writes OUTDIR/kuma/<ver>/kuma-<ver>-linux-amd64.tar.gz (the mirror layout `<mirror>/<name>/<version>/<file>`
of roles/_artifact) and `kuma-<ver>-linux-amd64.tar.gz.sha256` in sha256sum format beside it.

Layout (kuma.md §1 "Tarball contents", 2.14): single top folder `kuma-<ver>/` with `bin/kumactl`, `bin/kuma-cp`,
`bin/kuma-dp`, `bin/envoy`, `bin/coredns` (≤2.14), `conf/kuma-cp.defaults.yaml`, `LICENSE`, `NOTICE`, `README`,
and for 2.14+ `dashboards/` and `UPGRADE.md`; "owner root:0, mtime 0. Executables are mode 555, text files 444".

Each binary is a Python zipapp (the `python3 -m zipapp` format: `#!/usr/bin/python3` line + zip with
`__main__.py`), written here with fixed timestamps and sorted entries so the same input gives the same sha256.
"""

import gzip
import hashlib
import io
import os
import sys
import tarfile
import zipfile

import yaml

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.path.dirname(HERE)
MODULES = ["api.py", "buildinfo.py", "config.py", "cp_api.py", "dp_server.py", "kuma_cp.py", "kuma_dp.py", "mads.py",
           "mtp.py", "pki.py", "resources.py", "store.py", "store_pg.py", "tokens.py", "tools.py"]
ENTRY = {
    "kuma-cp": "import sys\nimport kuma_cp\nsys.exit(kuma_cp.main())\n",
    "kuma-dp": "import sys\nimport kuma_dp\nsys.exit(kuma_dp.main())\n",
    "kumactl": "import sys\nimport tools\nsys.exit(tools.kumactl_main())\n",
    "envoy": "import sys\nimport tools\nsys.exit(tools.envoy_main())\n",
    "coredns": "import sys\nimport tools\nsys.exit(tools.coredns_main())\n",
}
FIXED = (1980, 1, 1, 0, 0, 0)


def zipapp(name, version):
    buf = io.BytesIO()
    buf.write(b"#!/usr/bin/python3\n")
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as archive:
        files = {"__main__.py": ENTRY[name].encode(),
                 "standin_build.py": ("VERSION = %r\n" % version).encode()}
        for module in MODULES:
            with open(os.path.join(SRC, module), "rb") as handle:
                files[module] = handle.read()
        for path in sorted(files):
            info = zipfile.ZipInfo(path, date_time=FIXED)
            info.external_attr = 0o644 << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, files[path])
    return buf.getvalue()


def defaults_yaml():
    sys.path.insert(0, SRC)
    import config  # pylint: disable=import-outside-toplevel
    return ("# kuma-cp defaults (stand-in subset of K@v2.14.3 pkg/config/app/kuma-cp/kuma-cp.defaults.yaml)\n"
            + yaml.safe_dump(config.DEFAULTS, sort_keys=True)).encode()


def text_files(version):
    readme = ("Kuma %s (STAND-IN for tests, NOT Kuma)\n\nbin/kuma-cp, bin/kuma-dp, bin/kumactl, bin/envoy and "
              "bin/coredns are Python zipapps.\nHost needs: python3, python3-yaml, openssl; python3-psycopg2 for "
              "the postgres store.\nThe default configuration is conf/kuma-cp.defaults.yaml.\n" % version)
    return {
        "LICENSE": b"Apache License 2.0 (stand-in placeholder; Kuma is Apache-2.0 licensed)\n",
        "NOTICE": b"Stand-in build of the aic.gateway tests; contains no Kuma code.\n",
        "README": readme.encode(),
        "UPGRADE.md": b"# UPGRADE\n\nStand-in placeholder for Kuma's UPGRADE.md (kuma.md \xc2\xa71: 2.14+ ships it).\n",
        "conf/kuma-cp.defaults.yaml": defaults_yaml(),
        "dashboards/README.md": b"Stand-in placeholder: the real 2.14 tarball ships Grafana dashboards here.\n",
    }


def add(tar, path, data=None, mode=0o444, directory=False):
    info = tarfile.TarInfo(path)
    info.uid = info.gid = 0
    info.uname = info.gname = "root"
    info.mtime = 0
    if directory:
        info.type = tarfile.DIRTYPE
        info.mode = 0o755
        tar.addfile(info)
        return
    info.mode = mode
    info.size = len(data)
    tar.addfile(info, io.BytesIO(data))


def build(outdir, version):
    top = "kuma-%s" % version
    target = os.path.join(outdir, "kuma", version)
    os.makedirs(target, exist_ok=True)
    name = "kuma-%s-linux-amd64.tar.gz" % version
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.GNU_FORMAT) as tar:
        add(tar, top, directory=True)
        add(tar, top + "/bin", directory=True)
        for binary in sorted(ENTRY):
            add(tar, "%s/bin/%s" % (top, binary), zipapp(binary, version), mode=0o555)
        texts = text_files(version)
        for directory in ("conf", "dashboards"):
            add(tar, "%s/%s" % (top, directory), directory=True)
        for path in sorted(texts):
            add(tar, "%s/%s" % (top, path), texts[path])
    packed = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=packed, mtime=0) as gz:
        gz.write(raw.getvalue())
    data = packed.getvalue()
    with open(os.path.join(target, name), "wb") as handle:
        handle.write(data)
    with open(os.path.join(target, name + ".sha256"), "w", encoding="ascii") as handle:
        handle.write("%s  %s\n" % (hashlib.sha256(data).hexdigest(), name))
    return os.path.join(target, name)


def main(argv):
    if len(argv) < 2:
        sys.stderr.write("usage: build-tarball OUTDIR VERSION [VERSION...]\n")
        return 2
    for version in argv[1:]:
        if not version.replace(".", "").isdigit() or version.count(".") != 2:
            sys.stderr.write("build-tarball: invalid version: %s\n" % version)
            return 2
        print(build(argv[0], version))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
