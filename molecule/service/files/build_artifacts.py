"""Build the scenario's test artifacts of aic-echo (files/aic_echo) without any network or build tool:

    python3 build_artifacts.py OUT VERSION...

For each version: OUT/aic_echo-<v>-py3-none-any.whl (a wheel with the console script `aic-echo`),
OUT/www/echo-bin/<v>/aic-echo-<v>.pyz (an executable zipapp: the `binary` type) with its .sha256, and
OUT/aic-echo-<v>.tar.gz (bin/aic-echo inside a top directory: the `archive` type), each with a .sha256.
"""

import base64
import hashlib
import io
import os
import sys
import tarfile
import zipfile

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE = open(os.path.join(HERE, "aic_echo", "__init__.py"), encoding="utf-8").read()
STAMP = (2024, 1, 1, 0, 0, 0)


def sha_file(path):
    digest = hashlib.sha256(open(path, "rb").read()).hexdigest()
    with open(path + ".sha256", "w", encoding="utf-8") as handle:
        handle.write("%s  %s\n" % (digest, os.path.basename(path)))


def wheel(out, version):
    dist = "aic_echo-%s.dist-info" % version
    files = {
        "aic_echo/__init__.py": SOURCE.replace("@VERSION@", version).encode(),
        dist + "/METADATA": ("Metadata-Version: 2.1\nName: aic-echo\nVersion: %s\nSummary: test fixture\n" % version).encode(),
        dist + "/WHEEL": b"Wheel-Version: 1.0\nGenerator: build-artifacts\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
        dist + "/entry_points.txt": b"[console_scripts]\naic-echo = aic_echo:main\n",
    }
    record = []
    for name, data in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        record.append("%s,sha256=%s,%d" % (name, digest, len(data)))
    record.append(dist + "/RECORD,,")
    files[dist + "/RECORD"] = ("\n".join(record) + "\n").encode()
    path = os.path.join(out, "aic_echo-%s-py3-none-any.whl" % version)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in files.items():
            archive.writestr(zipfile.ZipInfo(name, STAMP), data)
    sha_file(path)


def pyz(out, version):
    directory = os.path.join(out, "www", "echo-bin", version)
    os.makedirs(directory, exist_ok=True)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(zipfile.ZipInfo("aic_echo/__init__.py", STAMP), SOURCE.replace("@VERSION@", version))
        archive.writestr(zipfile.ZipInfo("__main__.py", STAMP), "import aic_echo\naic_echo.main()\n")
    path = os.path.join(directory, "aic-echo-%s.pyz" % version)
    with open(path, "wb") as handle:
        handle.write(b"#!/usr/bin/python3\n" + buffer.getvalue())
    os.chmod(path, 0o755)
    sha_file(path)
    return path


def tarball(out, version, program):
    path = os.path.join(out, "aic-echo-%s.tar.gz" % version)
    with tarfile.open(path, "w:gz") as archive:
        info = archive.gettarinfo(program, "aic-echo-%s/bin/aic-echo" % version)
        info.mtime, info.uid, info.gid, info.uname, info.gname = 1704067200, 0, 0, "root", "root"
        with open(program, "rb") as handle:
            archive.addfile(info, handle)
    sha_file(path)


def main():
    out, versions = sys.argv[1], sys.argv[2:]
    os.makedirs(out, exist_ok=True)
    for version in versions:
        wheel(out, version)
        tarball(out, version, pyz(out, version))


if __name__ == "__main__":
    main()
