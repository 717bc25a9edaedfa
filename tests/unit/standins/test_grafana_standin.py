"""The Grafana stand-in (tests/standins/grafana): server, CLI and package.

Facts are cited from /work/shared/reference/observability-postgresql.md §3 and
grafana/grafana paths (see tests/standins/grafana/README.md).
"""

import base64
import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(
    __file__)))))
STANDIN = os.path.join(ROOT, "tests", "standins", "grafana")
PACKAGE = os.path.join(STANDIN, "package")
CLI = os.path.join(STANDIN, "cli.py")


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def get(url, auth=None):
    request = urllib.request.Request(url)
    if auth:
        token = base64.b64encode(("%s:%s" % auth).encode()).decode()
        request.add_header("Authorization", "Basic " + token)
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            body = response.read().decode()
            return response.status, body
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def write_ini(path, port, data, password):
    path.write_text(
        "[server]\nhttp_addr = 127.0.0.1\nhttp_port = %d\n"
        "[security]\nadmin_user = admin\nadmin_password = %s\n"
        "[paths]\ndata = %s\nlogs = %s\nprovisioning = %s\n"
        "[database]\ntype = sqlite3\n"
        % (port, password, data / "data", data / "log", data / "provisioning"))


@pytest.fixture(name="site")
def site_fixture(tmp_path):
    prov = tmp_path / "provisioning"
    (prov / "datasources").mkdir(parents=True)
    (prov / "dashboards").mkdir()
    (prov / "datasources" / "aic.yml").write_text(
        "apiVersion: 1\n"
        "datasources:\n"
        "  - name: Prometheus\n    type: prometheus\n    uid: prometheus\n"
        "    access: proxy\n    url: http://localhost:9090\n    isDefault: true\n"
        "    jsonData: {httpMethod: POST, timeInterval: 15s}\n"
        "  - name: Zipkin\n    type: zipkin\n    url: ${ZIPKIN_URL}\n"
        "    jsonData: {nodeGraph: {enabled: true}}\n")
    boards = tmp_path / "dashboards"
    (boards / "Kong").mkdir(parents=True)
    (boards / "Kong" / "kong.json").write_text(json.dumps(
        {"uid": "aic-kong", "title": "Kong traffic and latency", "tags": ["kong"]}))
    (boards / "hosts.json").write_text(json.dumps({"uid": "aic-hosts", "title": "Hosts"}))
    (prov / "dashboards" / "aic.yml").write_text(
        "apiVersion: 1\nproviders:\n  - name: aic\n    orgId: 1\n    type: file\n"
        "    disableDeletion: true\n    updateIntervalSeconds: 10\n"
        "    options:\n      path: %s\n      foldersFromFilesStructure: true\n" % boards)
    ini = tmp_path / "grafana.ini"
    return tmp_path, ini


def start(tmp_path, ini, password="first-pw"):
    port = free_port()
    write_ini(ini, port, tmp_path, password)
    env = dict(os.environ, ZIPKIN_URL="http://zipkin.test:9411")
    proc = subprocess.Popen([sys.executable, CLI, "server", "--config=%s" % ini,
                             "--homepath", str(tmp_path)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    base = "http://127.0.0.1:%d" % port
    deadline = time.time() + 10
    while time.time() < deadline:
        try:
            if get(base + "/api/health")[0] == 200:
                return proc, base
        except OSError:
            pass
        if proc.poll() is not None:
            raise AssertionError(proc.stderr.read().decode())
        time.sleep(0.05)
    proc.kill()
    raise AssertionError("grafana stand-in did not start")


def stop(proc):
    proc.terminate()
    proc.wait(timeout=5)
    proc.stdout.close()
    proc.stderr.close()


def test_health_api_without_auth(site):
    """§3.2: `GET /api/health` → `{"commit":"...","database":"ok","version":"..."}` (no auth)."""
    proc, base = start(*site)
    try:
        status, body = get(base + "/api/health")
        assert status == 200
        data = json.loads(body)
        assert data["database"] == "ok"
        assert set(data) == {"commit", "database", "version"}
    finally:
        stop(proc)


def test_provisioned_datasources_and_dashboards(site):
    """§3.4: datasources file (`apiVersion: 1`, `datasources:`, `${VAR}` interpolation) and a
    file dashboard provider with `options.path` and `foldersFromFilesStructure`."""
    proc, base = start(*site)
    auth = ("admin", "first-pw")
    try:
        status, body = get(base + "/api/datasources", auth)
        assert status == 200
        sources = {d["name"]: d for d in json.loads(body)}
        assert set(sources) == {"Prometheus", "Zipkin"}
        assert sources["Prometheus"]["isDefault"] is True
        assert sources["Prometheus"]["jsonData"]["timeInterval"] == "15s"
        assert sources["Zipkin"]["url"] == "http://zipkin.test:9411"
        status, body = get(base + "/api/datasources/name/Zipkin", auth)
        assert status == 200 and json.loads(body)["type"] == "zipkin"
        assert get(base + "/api/datasources/name/Nope", auth)[0] == 404

        status, body = get(base + "/api/search?type=dash-db", auth)
        hits = {h["uid"]: h for h in json.loads(body)}
        assert set(hits) == {"aic-kong", "aic-hosts"}
        assert hits["aic-kong"]["folderTitle"] == "Kong"
        assert all(h["type"] == "dash-db" for h in hits.values())
        status, body = get(base + "/api/dashboards/uid/aic-kong", auth)
        data = json.loads(body)
        assert data["dashboard"]["title"] == "Kong traffic and latency"
        assert data["meta"]["provisioned"] is True
        assert get(base + "/api/dashboards/uid/missing", auth)[0] == 404

        status, body = get(base + "/metrics")
        assert status == 200 and "grafana_build_info{" in body
        assert "grafana_stat_totals_dashboard 2" in body
    finally:
        stop(proc)


def post(url, auth=None):
    request = urllib.request.Request(url, data=b"", method="POST")
    if auth:
        token = base64.b64encode(("%s:%s" % auth).encode()).decode()
        request.add_header("Authorization", "Basic " + token)
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def test_provisioning_reload_api(site):
    """pkg/api/admin_provisioning.go: `POST /api/admin/provisioning/{datasources,dashboards}/reload`
    re-reads the provisioning files while running (basic auth, Grafana admin); a file that
    fails to load answers 500 and keeps what was loaded."""
    tmp_path = site[0]
    proc, base = start(*site)
    auth = ("admin", "first-pw")
    try:
        assert post(base + "/api/admin/provisioning/datasources/reload")[0] == 401
        assert post(base + "/api/admin/provisioning/datasources/reload", ("admin", "nope"))[0] == 401
        (tmp_path / "provisioning" / "datasources" / "aic.yml").write_text(
            "apiVersion: 1\ndatasources:\n  - name: Prom2\n    type: prometheus\n"
            "    url: http://prom2:9090\n")
        (tmp_path / "dashboards" / "hosts.json").unlink()
        names = {d["name"] for d in json.loads(get(base + "/api/datasources", auth)[1])}
        assert names == {"Prometheus", "Zipkin"}
        status, body = post(base + "/api/admin/provisioning/datasources/reload", auth)
        assert status == 200 and json.loads(body) == {"message": "Datasources config reloaded"}
        names = {d["name"] for d in json.loads(get(base + "/api/datasources", auth)[1])}
        assert names == {"Prom2"}
        uids = {h["uid"] for h in json.loads(get(base + "/api/search?type=dash-db", auth)[1])}
        assert uids == {"aic-kong", "aic-hosts"}
        status, body = post(base + "/api/admin/provisioning/dashboards/reload", auth)
        assert status == 200 and json.loads(body) == {"message": "Dashboards config reloaded"}
        uids = {h["uid"] for h in json.loads(get(base + "/api/search?type=dash-db", auth)[1])}
        assert uids == {"aic-kong"}
        (tmp_path / "provisioning" / "datasources" / "aic.yml").write_text("datasources: [\n")
        assert post(base + "/api/admin/provisioning/datasources/reload", auth)[0] == 500
        names = {d["name"] for d in json.loads(get(base + "/api/datasources", auth)[1])}
        assert names == {"Prom2"}
    finally:
        stop(proc)


def test_basic_auth(site):
    """Basic auth: no credentials or a wrong password → 401 (messageId
    `password-auth.failed` for a wrong password); the right one → 200 on /api/user."""
    proc, base = start(*site)
    try:
        assert get(base + "/api/user")[0] == 401
        status, body = get(base + "/api/user", ("admin", "wrong"))
        assert status == 401
        assert json.loads(body)["messageId"] == "password-auth.failed"
        status, body = get(base + "/api/user", ("admin", "first-pw"))
        assert status == 200
        assert json.loads(body)["login"] == "admin"
    finally:
        stop(proc)


def test_admin_settings_for_the_server_admin_with_secrets_redacted(site):
    """pkg/api/admin.go AdminGetSettings behind reqGrafanaAdmin: 401 without credentials, 200 with every
    section for the admin; pkg/setting/setting.go RedactedValue shows keys like admin_password as
    RedactedPassword ("*********")."""
    proc, base = start(*site)
    try:
        assert get(base + "/api/admin/settings")[0] == 401
        status, body = get(base + "/api/admin/settings", ("admin", "first-pw"))
        assert status == 200
        settings = json.loads(body)
        assert settings["security"]["admin_user"] == "admin"
        assert settings["security"]["admin_password"] == "*********"
        assert settings["server"]["http_addr"] == "127.0.0.1"
        assert "first-pw" not in body
    finally:
        stop(proc)


def test_admin_password_set_on_first_start_only_and_reset_by_cli(site):
    """§3.3: `admin_password` "Set once on first-run"; changing the ini later does NOT change
    the existing admin; `grafana cli admin reset-admin-password <pw>` does."""
    tmp_path, ini = site
    proc, base = start(tmp_path, ini, "first-pw")
    stop(proc)
    proc, base = start(tmp_path, ini, "second-pw")
    try:
        assert get(base + "/api/user", ("admin", "second-pw"))[0] == 401
        assert get(base + "/api/user", ("admin", "first-pw"))[0] == 200
        out = subprocess.run([sys.executable, CLI, "cli", "--homepath", str(tmp_path),
                              "--config", str(ini), "admin", "reset-admin-password",
                              "third-pw"], capture_output=True, text=True, check=True)
        assert "Admin password changed successfully" in out.stdout
        assert get(base + "/api/user", ("admin", "third-pw"))[0] == 200
        assert get(base + "/api/user", ("admin", "first-pw"))[0] == 401
    finally:
        stop(proc)


def test_bad_provisioning_file_stops_start(site):
    """Two default data sources in one org are refused at start (provisioning error)."""
    tmp_path, ini = site
    (tmp_path / "provisioning" / "datasources" / "two.yml").write_text(
        "apiVersion: 1\ndatasources:\n  - {name: Other, type: prometheus, isDefault: true}\n")
    write_ini(ini, free_port(), tmp_path, "pw")
    proc = subprocess.run([sys.executable, CLI, "server", "--config", str(ini)],
                          capture_output=True, text=True, timeout=10, check=False)
    assert proc.returncode == 1
    assert "Only one datasource per organization can be marked as default" in proc.stderr


def test_version_and_wrapper_names(tmp_path):
    """Grafana ≥10: `grafana-server`/`grafana-cli` are `grafana server`/`grafana cli`."""
    out = subprocess.run([sys.executable, CLI, "--version"], capture_output=True, text=True,
                         check=True)
    assert out.stdout.startswith("grafana version ")
    link = tmp_path / "grafana-cli"
    shutil.copy(CLI, link)
    shutil.copy(os.path.join(STANDIN, "server.py"), tmp_path / "server.py")
    out = subprocess.run([sys.executable, str(link), "admin", "nope"], capture_output=True,
                         text=True, check=False)
    assert out.returncode == 2 and "reset-admin-password" in out.stderr


@pytest.mark.skipif(shutil.which("dpkg-deb") is None, reason="needs dpkg-deb")
def test_package_layout(tmp_path):
    """§3.2 layout: `/etc/grafana/grafana.ini`, home `/usr/share/grafana`, env file
    `/etc/default/grafana-server`, unit `grafana-server.service` (User/Group grafana,
    EnvironmentFile); upstream's wrappers in /usr/sbin exec `$GRAFANA_HOME/bin/grafana`."""
    deb = subprocess.run([os.path.join(PACKAGE, "build-deb"), str(tmp_path), "12.0.2"],
                         capture_output=True, text=True, check=True).stdout.strip()
    assert os.path.basename(deb) == "grafana_12.0.2_amd64.deb"
    listing = subprocess.run(["dpkg-deb", "-c", deb], capture_output=True, text=True,
                             check=True).stdout
    paths = {line.split()[5].lstrip(".") for line in listing.splitlines()}
    for path in ("/usr/share/grafana/bin/grafana", "/usr/sbin/grafana-server",
                 "/usr/sbin/grafana-cli", "/etc/grafana/grafana.ini",
                 "/etc/default/grafana-server", "/lib/systemd/system/grafana-server.service",
                 "/usr/share/grafana/conf/sample.ini",
                 "/usr/share/grafana/conf/provisioning/datasources/sample.yaml"):
        assert path in paths
    fields = subprocess.run(["dpkg-deb", "-f", deb, "Package", "Depends"],
                            capture_output=True, text=True, check=True).stdout
    assert "Package: grafana" in fields and "python3-yaml" in fields
    root = tmp_path / "root"
    subprocess.run(["dpkg-deb", "-R", deb, str(root)], check=True)
    unit = (root / "lib/systemd/system/grafana-server.service").read_text()
    assert "User=grafana" in unit and "EnvironmentFile=/etc/default/grafana-server" in unit
    assert "adduser --system" in (root / "DEBIAN/postinst").read_text()
    out = subprocess.run([sys.executable, str(root / "usr/share/grafana/standin/cli.py"),
                          "--version"], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "grafana version 12.0.2"


@pytest.mark.skipif(not all(shutil.which(t) for t in ("dpkg-deb", "dpkg-scanpackages", "gpg")),
                    reason="needs dpkg-deb, dpkg-scanpackages and gpg")
def test_signed_repository(tmp_path):
    """§3.1: `deb [signed-by=…] https://apt.grafana.com stable main`, key `gpg-full.key`."""
    out = tmp_path / "repo"
    subprocess.run([os.path.join(PACKAGE, "build-repo"), str(out), "12.0.2"],
                   capture_output=True, text=True, check=True)
    assert (out / "gpg-full.key").read_text().startswith("-----BEGIN PGP PUBLIC KEY BLOCK")
    assert (out / "pool/main/g/grafana/grafana_12.0.2_amd64.deb").exists()
    packages = (out / "dists/stable/main/binary-amd64/Packages").read_text()
    assert "Package: grafana" in packages
    assert (out / "dists/stable/InRelease").read_text().startswith("-----BEGIN PGP SIGNED")
