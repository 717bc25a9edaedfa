"""The stand-in `kong` CLI and node without a database (tests/standins/kong/cli.py).

Each test docstring cites the kong.md fact it checks
(/work/shared/reference/kong.md).
"""

import json
import os
import signal
import stat
import subprocess

import pytest

from .kong_helpers import (PYTHON, STANDIN, http, kong, listen_keys, node_ports, wait_for,
                           write_conf)

DECLARATIVE = """\
_format_version: "3.0"
services:
  - name: echo
    url: http://127.0.0.1:9/
    routes:
      - name: echo-route
        paths: [/echo]
        plugins:
          - name: key-auth
consumers:
  - username: alice
    keyauth_credentials:
      - key: alice-key
    acls:
      - group: admins
plugins:
  - name: prometheus
    config:
      status_code_metrics: true
upstreams:
  - name: up1
    targets:
      - target: 127.0.0.1:9
"""


def test_version_bare_and_all():
    """kong.md §3 "`kong version`: prints the bare version, e.g. `3.9.3`; `-a` prints the
    deps"."""
    proc = kong("version", env={"KONG_STANDIN_VERSION": "3.9.3"})
    assert (proc.returncode, proc.stdout) == (0, "3.9.3\n")
    proc = kong("version", "-a")
    assert proc.returncode == 0
    assert proc.stdout.splitlines()[0] == "Kong: 3.9.3"


def test_check_valid_and_unknown_keys_ignored(tmp_path):
    """kong.md §3 "`kong check <conf>` ... prints "configuration at X is valid" with exit 0";
    kong.md §2 "**Unknown keys are silently dropped** ... so typos are not caught by
    `kong check`"."""
    conf = write_conf(tmp_path / "kong.conf", database="off", lgo_level="debug",
                      cluster_telemetry_listen="0.0.0.0:8006")
    proc = kong("check", conf)
    assert proc.returncode == 0
    assert proc.stdout == "configuration at %s is valid\n" % conf


@pytest.mark.parametrize("keys,needle", [
    ({"database": "mongo"}, "database has an invalid value"),
    ({"database": "cassandra"}, "not supported in versions 3.4 and above"),
    ({"pg_ssl": "maybe"}, "pg_ssl is not a boolean"),
    ({"pg_port": "x"}, "pg_port is not a number"),
    ({"role": "data_plane", "database": "postgres"},
     "only in-memory storage can be used when role = \"data_plane\""),
    ({"role": "control_plane", "database": "off"}, "can not be used when role"),
    ({"role": "control_plane"}, "cluster_cert must be specified"),
    ({"cluster_data_plane_purge_delay": "10"}, "cluster_data_plane_purge_delay"),
    ({"admin_listen": "nowhere"}, "admin_listen must be of form"),
])
def test_check_invalid_values_exit_1(tmp_path, keys, needle):
    """kong.md §3 "`kong check` ... or the errors with exit 1"; "Any error exits with **1**
    (`pl.lapp.quit`), with "Error: …" on stderr"; kong.md §2 "`database=postgres`. Accepts
    `postgres|off`; `cassandra` is rejected ("not supported in versions 3.4 and above")";
    "Booleans accept `on/off/true/false`"; "`cluster_data_plane_purge_delay=1209600`
    (14 days, minimum 60)"; kong.md §7 DP "`database=off` ("only in-memory storage can be
    used when role = data_plane")", CP "Config validation fails when `database=off`" and
    requires `cluster_cert`, `cluster_cert_key`."""
    conf = write_conf(tmp_path / "kong.conf", **keys)
    proc = kong("check", conf)
    assert proc.returncode == 1
    assert proc.stderr.startswith("Error: ")
    assert needle in proc.stderr


def test_check_env_override(tmp_path):
    """kong.md §2 "`KONG_<UPPERCASE KEY>` overrides the file. Precedence: ... env > file >
    defaults"."""
    conf = write_conf(tmp_path / "kong.conf", database="off")
    proc = kong("check", conf, env={"KONG_DATABASE": "nope"})
    assert proc.returncode == 1 and "database has an invalid value: 'nope'" in proc.stderr


def test_check_missing_file():
    """kong.md §3 "Any error exits with **1**"."""
    proc = kong("check", "/nonexistent/kong.conf")
    assert proc.returncode == 1 and "Error:" in proc.stderr


def test_prepare_renders_prefix(tmp_path):
    """kong.md §1 runtime files under the prefix: "`nginx.conf`, `nginx-kong.conf`,
    `.kong_env` (resolved config of the running node)", "`pids/nginx.pid`, `logs/...`";
    kong.md §3 "`kong prepare`: renders the prefix only; no DB access" (the default
    `database=postgres` with no server still prepares); the unit's
    `Environment=KONG_NGINX_DAEMON=off` (kong.md §1) is rendered into nginx.conf."""
    prefix = tmp_path / "p"
    conf = write_conf(tmp_path / "kong.conf", pg_port="1", pg_password="s3cret")
    proc = kong("prepare", "-c", conf, "-p", str(prefix), env={"KONG_NGINX_DAEMON": "off"})
    assert proc.returncode == 0, proc.stderr
    for rel in ("nginx.conf", "nginx-kong.conf", ".kong_env", "logs/error.log", "pids"):
        assert (prefix / rel).exists(), rel
    env = (prefix / ".kong_env").read_text()
    assert "pg_port = 1\n" in env and "nginx_daemon = off\n" in env
    assert "prefix = %s\n" % prefix in env
    assert "daemon off;" in (prefix / "nginx.conf").read_text()


def test_hybrid_gen_cert(tmp_path):
    """kong.md §3 "`kong hybrid gen_cert [cert key] [-d days]` writes `./cluster.crt` and
    `./cluster.key`. Key is EC secp384r1, self-signed, `CN=kong_clustering`, valid 1095 days
    (3 y). Files get chmod 644 and 600, and it refuses to overwrite."""
    proc = kong("hybrid", "gen_cert", cwd=str(tmp_path))
    assert proc.returncode == 0, proc.stderr
    crt, key = tmp_path / "cluster.crt", tmp_path / "cluster.key"
    assert stat.S_IMODE(crt.stat().st_mode) == 0o644
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    text = subprocess.run(["openssl", "x509", "-in", str(crt), "-noout", "-text"],
                          capture_output=True, text=True, check=True).stdout
    assert "CN = kong_clustering" in text
    assert "secp384r1" in text or "P-384" in text
    dates = subprocess.run(["openssl", "x509", "-in", str(crt), "-noout", "-startdate",
                            "-enddate"], capture_output=True, text=True, check=True).stdout
    assert subprocess.run(["openssl", "x509", "-in", str(crt), "-noout", "-checkend",
                           str(1094 * 86400)], capture_output=True, check=False).returncode == 0
    assert subprocess.run(["openssl", "x509", "-in", str(crt), "-noout", "-checkend",
                           str(1096 * 86400)], capture_output=True,
                          check=False).returncode == 1, dates
    before = crt.read_bytes()
    again = kong("hybrid", "gen_cert", cwd=str(tmp_path))
    assert again.returncode == 1 and "already exists" in again.stderr
    assert crt.read_bytes() == before
    custom = kong("hybrid", "gen_cert", "dp.crt", "dp.key", "-d", "30", cwd=str(tmp_path))
    assert custom.returncode == 0 and (tmp_path / "dp.key").exists()


def test_config_parse(tmp_path):
    """kong.md §3 "`parse <file>` checks syntax and schema ... run it with
    `KONG_DATABASE=off`"; "`_format_version` must be one of `"1.1" "2.1" "3.0"`"."""
    good = tmp_path / "kong.yml"
    good.write_text(DECLARATIVE)
    proc = kong("config", "parse", str(good), env={"KONG_DATABASE": "off"})
    assert proc.returncode == 0, proc.stderr
    assert "parse successful" in proc.stdout
    for version in ("1.1", "2.1"):
        other = tmp_path / ("v%s.yml" % version)
        other.write_text(DECLARATIVE.replace('"3.0"', '"%s"' % version))
        assert kong("config", "parse", str(other),
                    env={"KONG_DATABASE": "off"}).returncode == 0
    bad_version = tmp_path / "badv.yml"
    bad_version.write_text(DECLARATIVE.replace('"3.0"', '"4.0"'))
    proc = kong("config", "parse", str(bad_version), env={"KONG_DATABASE": "off"})
    assert proc.returncode == 1 and "_format_version" in proc.stderr
    bad_schema = tmp_path / "bads.yml"
    bad_schema.write_text(DECLARATIVE.replace("url: http://127.0.0.1:9/",
                                              "host: x\n    port: 99999"))
    proc = kong("config", "parse", str(bad_schema), env={"KONG_DATABASE": "off"})
    assert proc.returncode == 1 and "port" in proc.stderr
    unknown_plugin = tmp_path / "badp.yml"
    unknown_plugin.write_text(DECLARATIVE.replace("name: prometheus", "name: nope"))
    proc = kong("config", "parse", str(unknown_plugin), env={"KONG_DATABASE": "off"})
    assert proc.returncode == 1 and "plugin 'nope' not enabled" in proc.stderr


def test_config_db_import_refuses_dbless(tmp_path):
    """kong.md §3 "`db_import <file>`: requires a DB and errors when `database=off`
    ("reload … using the /config endpoint")"."""
    good = tmp_path / "kong.yml"
    good.write_text(DECLARATIVE)
    proc = kong("config", "db_import", str(good), env={"KONG_DATABASE": "off"})
    assert proc.returncode == 1 and "/config endpoint" in proc.stderr


def test_config_init_refuses_overwrite(tmp_path):
    """kong.md §3 "`init [file]` writes `./kong.yml`; it refuses to overwrite"."""
    assert kong("config", "init", cwd=str(tmp_path)).returncode == 0
    assert "_format_version" in (tmp_path / "kong.yml").read_text()
    assert kong("config", "init", cwd=str(tmp_path)).returncode == 1


@pytest.fixture()
def dbless(tmp_path):
    """A DB-less node started with `kong start` (daemon on, kong.md §2 `nginx_daemon=on`)."""
    ports = node_ports()
    decl = tmp_path / "kong.yml"
    decl.write_text(DECLARATIVE)
    conf = write_conf(tmp_path / "kong.conf", database="off", declarative_config=str(decl),
                      **listen_keys(ports))
    prefix = str(tmp_path / "prefix")
    proc = kong("start", "-c", conf, "-p", prefix)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "Kong started"
    yield {"conf": conf, "prefix": prefix, "ports": ports}
    kong("stop", "-p", prefix)


def test_lifecycle_start_health_stop(dbless):
    """kong.md §3 "`kong health [-p]`: ... Exit 0 prints "Kong is healthy at <prefix>";
    otherwise "Kong is not running at …" (exit 1)"; "`kong start` ... Errors "Kong is
    already running in <prefix>" if the pid is alive"; "`kong stop [-p]`: SIGTERM. Errors
    "nginx not running in prefix" (exit 1) when not running"; kong.md §1 "`pids/nginx.pid`"."""
    prefix = dbless["prefix"]
    health = kong("health", "-p", prefix)
    assert health.returncode == 0
    assert "Kong is healthy at %s" % prefix in health.stdout
    pid = int(open(os.path.join(prefix, "pids", "nginx.pid"), encoding="ascii").read())
    os.kill(pid, 0)
    again = kong("start", "-c", dbless["conf"], "-p", prefix)
    assert again.returncode == 1
    assert "Kong is already running in %s" % prefix in again.stderr
    stop = kong("stop", "-p", prefix)
    assert stop.returncode == 0
    assert wait_for(lambda: not os.path.exists("/proc/%d" % pid) or
                    open("/proc/%d/stat" % pid).read().split(")")[1].split()[0] == "Z")
    health = kong("health", "-p", prefix)
    assert health.returncode == 1 and "Kong is not running at %s" % prefix in health.stderr
    stop = kong("stop", "-p", prefix)
    assert stop.returncode == 1 and "nginx not running in prefix" in stop.stderr


def test_dbless_ready_with_config_and_root(dbless):
    """kong.md §4 "`/status/ready` returns 200 `{"message":"ready"}`"; `GET /` version and
    configuration with sensitive keys masked (kong.md §2 "Sensitive keys are masked in
    `GET /` `configuration`"); DB-less entities come from `declarative_config`
    (kong.md §2 "`declarative_config=` (NONE; a file path used when `database=off`)")."""
    ports = dbless["ports"]
    status, body, _headers = http("GET", "http://127.0.0.1:%d/status/ready" % ports["status"])
    assert (status, json.loads(body)) == (200, {"message": "ready"})
    status, body, _headers = http("GET", "http://127.0.0.1:%d/" % ports["admin"])
    root = json.loads(body)
    assert root["version"] == "3.9.3"
    assert root["configuration"]["database"] == "off"
    assert root["configuration"]["prefix"] == dbless["prefix"]
    status, body, _headers = http("GET", "http://127.0.0.1:%d/services/echo" % ports["admin"])
    assert status == 200 and json.loads(body)["host"] == "127.0.0.1"
    status, body, _headers = http("GET", "http://127.0.0.1:%d/consumers/alice/key-auth"
                                  % ports["admin"])
    assert json.loads(body)["data"][0]["key"] == "alice-key"


def test_dbless_without_config_is_not_ready(tmp_path):
    """kong.md §4 "In DB-less or DP mode, "no configuration available (empty configuration
    present)" also gives 503. **A DB-less node with no config is never "ready".**"."""
    ports = node_ports()
    conf = write_conf(tmp_path / "kong.conf", database="off", **listen_keys(ports))
    prefix = str(tmp_path / "prefix")
    assert kong("start", "-c", conf, "-p", prefix).returncode == 0
    try:
        status, body, _headers = http("GET", "http://127.0.0.1:%d/status/ready" % ports["status"])
        assert status == 503
        assert json.loads(body) == {
            "message": "no configuration available (empty configuration present)"}
    finally:
        kong("stop", "-p", prefix)


def test_drain(dbless):
    """kong.md §3 "`kong drain` (new in 3.9.0): makes `/status/ready` return 503
    "draining""; kong.md §4 "`POST /status/ready status=draining`, which returns 204"."""
    ports = dbless["ports"]
    proc = kong("drain", "-p", dbless["prefix"])
    assert proc.returncode == 0, proc.stderr
    status, body, _headers = http("GET", "http://127.0.0.1:%d/status/ready" % ports["status"])
    assert (status, json.loads(body)) == (503, {"message": "draining"})


def test_status_and_metrics(dbless):
    """kong.md §4 Status API "Routes: `/status` (same as the Admin API) ... Prometheus
    `/metrics`"; kong.md §5 prometheus "Always exported: `kong_nginx_connections_total
    {node_id,subsystem,state}`, `kong_nginx_requests_total`, `kong_nginx_timers`,
    `kong_datastore_reachable`, `kong_node_info{node_id,version}`,
    `kong_memory_workers_lua_vms_bytes`, `kong_memory_lua_shared_dict_bytes`,
    `kong_memory_lua_shared_dict_total_bytes`" and "Metrics are served at `/metrics` on
    **both** the Admin API and the Status API"."""
    ports = dbless["ports"]
    status, body, _headers = http("GET", "http://127.0.0.1:%d/status" % ports["status"])
    assert status == 200 and json.loads(body)["database"] == {"reachable": True}
    for port in (ports["status"], ports["admin"]):
        status, text, headers = http("GET", "http://127.0.0.1:%d/metrics" % port)
        assert status == 200 and headers["Content-Type"].startswith("text/plain")
        names = {line.split("{")[0].split(" ")[0] for line in text.splitlines()
                 if line and not line.startswith("#")}
        for name in ("kong_nginx_connections_total", "kong_nginx_requests_total",
                     "kong_nginx_timers", "kong_datastore_reachable", "kong_node_info",
                     "kong_memory_workers_lua_vms_bytes", "kong_memory_lua_shared_dict_bytes",
                     "kong_memory_lua_shared_dict_total_bytes"):
            assert name in names, name
        assert 'version="3.9.3"' in text
        assert "kong_datastore_reachable 1" in text


def test_reload_and_quit(dbless):
    """kong.md §3 "`kong reload`: re-prepares the prefix and sends HUP"; "`kong quit [-p]
    [-t 10] [-w 0]`: SIGQUIT (graceful)"."""
    prefix = dbless["prefix"]
    pid = int(open(os.path.join(prefix, "pids", "nginx.pid"), encoding="ascii").read())
    proc = kong("reload", "-c", dbless["conf"], "-p", prefix)
    assert proc.returncode == 0, proc.stderr
    assert kong("health", "-p", prefix).returncode == 0
    assert int(open(os.path.join(prefix, "pids", "nginx.pid"), encoding="ascii").read()) == pid
    quit_ = kong("quit", "-p", prefix)
    assert quit_.returncode == 0
    assert kong("health", "-p", prefix).returncode == 1


def test_unit_foreground_reload_and_stop(tmp_path):
    """The unit as kong.md §1 quotes it: "ExecStartPre=/usr/local/bin/kong prepare -p
    /usr/local/kong", "ExecStart=/usr/local/openresty/nginx/sbin/nginx -p /usr/local/kong -c
    nginx.conf" with "Environment=KONG_NGINX_DAEMON=off" (foreground), "ExecReload=... -s
    reload", "ExecStop=/bin/kill -s QUIT $MAINPID"; `kong health` sees the pid."""
    ports = node_ports()
    decl = tmp_path / "kong.yml"
    decl.write_text(DECLARATIVE)
    conf = write_conf(tmp_path / "kong.conf", database="off", declarative_config=str(decl),
                      **listen_keys(ports))
    prefix = str(tmp_path / "prefix")
    env = {"KONG_NGINX_DAEMON": "off"}
    assert kong("prepare", "-c", conf, "-p", prefix, env=env).returncode == 0
    nginx = [PYTHON, os.path.join(STANDIN, "node.py"), "-p", prefix, "-c", "nginx.conf"]
    main = subprocess.Popen(nginx)
    try:
        pidfile = os.path.join(prefix, "pids", "nginx.pid")
        assert wait_for(lambda: os.path.exists(pidfile))
        assert int(open(pidfile, encoding="ascii").read()) == main.pid   # $MAINPID
        assert kong("health", "-p", prefix).returncode == 0
        assert subprocess.run(nginx + ["-s", "reload"], check=False).returncode == 0
        assert main.poll() is None
        status, _body, _headers = http("GET", "http://127.0.0.1:%d/status/ready" % ports["status"])
        assert status == 200
        os.kill(main.pid, signal.SIGQUIT)
        assert main.wait(10) == 0
        assert not os.path.exists(pidfile)
    finally:
        if main.poll() is None:
            main.kill()
    proc = subprocess.run(nginx + ["-s", "reload"], capture_output=True, text=True,
                          check=False)
    assert proc.returncode == 1 and "nginx.pid" in proc.stderr


def test_proxy_paths_strip_path_and_upstream(tmp_path):
    """Proxy placeholder routing (UNCONFIRMED behaviour, see proxy.py): route by path
    prefix with `strip_path`, forward to the service or round-robin over an upstream's
    targets; unmatched requests 404."""
    import http.server as httpserver  # pylint: disable=import-outside-toplevel
    import threading  # pylint: disable=import-outside-toplevel

    seen = []

    class Echo(httpserver.BaseHTTPRequestHandler):
        def do_GET(self):  # pylint: disable=invalid-name
            seen.append((self.server.server_address[1], self.path))
            data = json.dumps({"path": self.path}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *_args):
            pass

    backends = [httpserver.ThreadingHTTPServer(("127.0.0.1", 0), Echo) for _i in range(2)]
    for backend in backends:
        threading.Thread(target=backend.serve_forever, daemon=True).start()
    p1, p2 = (b.server_address[1] for b in backends)
    decl = tmp_path / "kong.yml"
    decl.write_text("""\
_format_version: "3.0"
services:
  - name: direct
    url: http://127.0.0.1:%d/base
    routes:
      - name: r1
        paths: [/svc]
  - name: balanced
    host: pool
    routes:
      - name: r2
        paths: [/lb]
        strip_path: false
upstreams:
  - name: pool
    targets:
      - target: 127.0.0.1:%d
      - target: 127.0.0.1:%d
""" % (p1, p1, p2))
    ports = node_ports()
    conf = write_conf(tmp_path / "kong.conf", database="off", declarative_config=str(decl),
                      **listen_keys(ports))
    prefix = str(tmp_path / "prefix")
    assert kong("start", "-c", conf, "-p", prefix).returncode == 0
    try:
        base = "http://127.0.0.1:%d" % ports["proxy"]
        status, body, _headers = http("GET", base + "/svc/a/b?x=1")
        assert status == 200 and json.loads(body)["path"] == "/base/a/b?x=1"
        for _i in range(4):
            status, body, _headers = http("GET", base + "/lb/z")
            assert status == 200 and json.loads(body)["path"] == "/lb/z"
        assert {port for port, path in seen if path == "/lb/z"} == {p1, p2}
        status, body, _headers = http("GET", base + "/nothing")
        assert status == 404 and json.loads(body) == {"message":
                                                      "no Route matched with those values"}
    finally:
        kong("stop", "-p", prefix)
        for backend in backends:
            backend.shutdown()
