"""STAND-IN for the Grafana OSS server (tests only, NOT Grafana).

Reads grafana.ini, the datasource and dashboard provisioning files, keeps the admin
user in a real SQLite file `<paths.data>/grafana.db` (created on FIRST start only,
like Grafana: later ini changes do not change the password), and answers the few
HTTP API calls the aic.gateway roles and tests use.  Facts are cited in README.md.
"""

import base64
import configparser
import hashlib
import hmac
import json
import os
import re
import sqlite3
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit, unquote

import yaml

HERE = os.path.dirname(os.path.abspath(__file__))
COMMIT = "standin0"

# Subset of upstream conf/defaults.ini (README "grafana.ini").
DEFAULTS = {
    "paths": {"data": "data", "logs": "data/log", "plugins": "data/plugins",
              "provisioning": "conf/provisioning"},
    "server": {"protocol": "http", "http_addr": "", "http_port": "3000"},
    "database": {"type": "sqlite3", "path": "grafana.db"},
    "security": {"admin_user": "admin", "admin_password": "admin",
                 "admin_email": "admin@localhost"},
}


class ConfigError(Exception):
    """A setting or provisioning file the stand-in (or Grafana) refuses."""


def version():
    path = os.path.join(HERE, "VERSION")
    if os.path.exists(path):
        with open(path, encoding="utf-8") as handle:
            return handle.read().strip()
    return os.environ.get("GRAFANA_STANDIN_VERSION", "12.0.0")


def load_config(config_file=None, homepath=None, overrides=(), environ=None):
    """Layering as upstream: defaults < grafana.ini < GF_<SECTION>_<KEY> env <
    cfg:default.<section>.<key>=value overrides (upstream applies command-line
    overrides as defaults then ini, UNCONFIRMED order for conflicting values)."""
    environ = os.environ if environ is None else environ
    homepath = homepath or os.getcwd()
    cfg = {s: dict(v) for s, v in DEFAULTS.items()}
    for item in overrides:
        m = re.match(r"^cfg:(?:default\.)?([A-Za-z0-9_.]+)\.([A-Za-z0-9_]+)=(.*)$", item)
        if m:
            cfg.setdefault(m.group(1), {})[m.group(2)] = m.group(3)
    if config_file:
        parser = configparser.RawConfigParser(inline_comment_prefixes=(";", "#"),
                                              strict=False)
        try:
            with open(config_file, encoding="utf-8") as handle:
                parser.read_file(handle)
        except (OSError, configparser.Error) as exc:
            raise ConfigError("failed to parse %s: %s" % (config_file, exc)) from exc
        for section in parser.sections():
            for key, value in parser.items(section):
                cfg.setdefault(section, {})[key] = value.strip().strip('"')
    for name, value in environ.items():
        m = re.match(r"^GF_([A-Z0-9]+)_([A-Z0-9_]+)$", name)
        if m:
            cfg.setdefault(m.group(1).lower(), {})[m.group(2).lower()] = value
    for key in ("data", "logs", "plugins", "provisioning"):
        value = cfg["paths"][key]
        if not os.path.isabs(value):
            cfg["paths"][key] = os.path.join(homepath, value)
    if cfg["database"].get("type", "sqlite3") != "sqlite3":
        raise ConfigError("stand-in supports [database] type = sqlite3 only")
    if not os.path.isabs(cfg["database"]["path"]):
        cfg["database"]["path"] = os.path.join(cfg["paths"]["data"], cfg["database"]["path"])
    return cfg


# ---------------------------------------------------------------- admin user (SQLite)

def _hash(password, salt):
    return hashlib.pbkdf2_hmac("sha256", password.encode(), salt.encode(), 10000).hex()


def open_db(cfg):
    path = cfg["database"]["path"]
    os.makedirs(os.path.dirname(path), exist_ok=True)
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE IF NOT EXISTS user (id INTEGER PRIMARY KEY, login TEXT UNIQUE,"
                 " email TEXT, password TEXT, salt TEXT, is_admin INTEGER)")
    return conn


def ensure_admin(cfg):
    """First start only: create the admin from [security]; never update it later."""
    sec = cfg["security"]
    with open_db(cfg) as conn:
        if conn.execute("SELECT count(*) FROM user").fetchone()[0]:
            return False
        salt = os.urandom(8).hex()
        conn.execute("INSERT INTO user (id, login, email, password, salt, is_admin)"
                     " VALUES (1, ?, ?, ?, ?, 1)",
                     (sec["admin_user"], sec.get("admin_email", "admin@localhost"),
                      _hash(sec["admin_password"], salt), salt))
    return True


def reset_admin_password(cfg, password):
    """`grafana cli admin reset-admin-password`: changes user id 1 (the first admin)."""
    ensure_admin(cfg)
    salt = os.urandom(8).hex()
    with open_db(cfg) as conn:
        conn.execute("UPDATE user SET password = ?, salt = ? WHERE id = 1",
                     (_hash(password, salt), salt))


def check_login(cfg, login, password):
    with open_db(cfg) as conn:
        row = conn.execute("SELECT id, login, email, password, salt, is_admin FROM user"
                           " WHERE login = ? OR email = ?", (login, login)).fetchone()
    if row and hmac.compare_digest(row[3], _hash(password, row[4])):
        return {"id": row[0], "login": row[1], "email": row[2], "isGrafanaAdmin": bool(row[5])}
    return None


# ---------------------------------------------------------------- provisioning

def interpolate(value, environ):
    """$VAR / ${VAR} from the environment, $$ for a literal $ (provisioning docs)."""
    if isinstance(value, str):
        def repl(match):
            if match.group(0) == "$$":
                return "$"
            return environ.get(match.group(1) or match.group(2), "")
        return re.sub(r"\$\$|\$\{([A-Za-z0-9_]+)\}|\$([A-Za-z0-9_]+)", repl, value)
    if isinstance(value, list):
        return [interpolate(v, environ) for v in value]
    if isinstance(value, dict):
        return {k: interpolate(v, environ) for k, v in value.items()}
    return value


def _yaml_files(directory):
    if not os.path.isdir(directory):
        return []
    return sorted(os.path.join(directory, n) for n in os.listdir(directory)
                  if n.endswith((".yaml", ".yml")))


def _read_yaml(path, environ):
    try:
        with open(path, encoding="utf-8") as handle:
            data = yaml.safe_load(handle) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError("could not parse provisioning file %s: %s" % (path, exc)) from exc
    if not isinstance(data, dict):
        raise ConfigError("provisioning file %s is not a mapping" % path)
    return interpolate(data, environ)


def load_datasources(prov_dir, environ):
    found = {}
    for path in _yaml_files(os.path.join(prov_dir, "datasources")):
        data = _read_yaml(path, environ)
        for item in data.get("deleteDatasources") or []:
            found.pop(item.get("name"), None)
        for item in data.get("datasources") or []:
            if not item.get("name") or not item.get("type"):
                raise ConfigError("datasource in %s needs name and type" % path)
            found[item["name"]] = item
    defaults = [d for d in found.values() if d.get("isDefault")]
    if len(defaults) > 1:
        raise ConfigError("datasource provisioning error: datasource.yaml config is invalid."
                          " Only one datasource per organization can be marked as default")
    result = []
    for number, item in enumerate(found.values(), start=1):
        uid = item.get("uid") or hashlib.sha1(item["name"].encode()).hexdigest()[:14]
        result.append({
            "id": number, "uid": uid, "orgId": item.get("orgId", 1), "name": item["name"],
            "type": item["type"], "access": item.get("access", "proxy"),
            "url": item.get("url", ""), "user": item.get("user", ""),
            "database": item.get("database", ""), "basicAuth": bool(item.get("basicAuth")),
            "basicAuthUser": item.get("basicAuthUser", ""),
            "withCredentials": bool(item.get("withCredentials")),
            "isDefault": bool(item.get("isDefault")), "jsonData": item.get("jsonData") or {},
            "secureJsonFields": {k: True for k in (item.get("secureJsonData") or {})},
            "version": item.get("version", 1), "readOnly": not item.get("editable", False),
        })
    return result


def _slug(title):
    return re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-")


def load_dashboards(prov_dir, environ):
    dashboards, folders = {}, {}
    for path in _yaml_files(os.path.join(prov_dir, "dashboards")):
        data = _read_yaml(path, environ)
        for prov in data.get("providers") or []:
            if prov.get("type", "file") != "file":
                continue
            root = (prov.get("options") or {}).get("path")
            if not root:
                raise ConfigError("dashboard provider %r in %s has no options.path"
                                  % (prov.get("name"), path))
            by_tree = (prov.get("options") or {}).get("foldersFromFilesStructure")
            for dirpath, _dirs, files in os.walk(root):
                for name in sorted(files):
                    if not name.endswith(".json"):
                        continue
                    full = os.path.join(dirpath, name)
                    try:
                        with open(full, encoding="utf-8") as handle:
                            dash = json.load(handle)
                    except (OSError, ValueError):
                        continue  # upstream logs the error and skips the file
                    folder = prov.get("folder", "")
                    rel = os.path.relpath(dirpath, root)
                    if by_tree and rel != ".":
                        folder = rel.split(os.sep)[0]
                    uid = dash.get("uid") or hashlib.sha1(full.encode()).hexdigest()[:14]
                    folder_uid = ""
                    if folder:
                        folder_uid = prov.get("folderUid") if not by_tree and prov.get(
                            "folderUid") else hashlib.sha1(folder.encode()).hexdigest()[:14]
                        folders[folder_uid] = folder
                    dashboards[uid] = {"dashboard": dash, "folder": folder,
                                       "folderUid": folder_uid,
                                       "external": os.path.relpath(full, root)}
    for number, (uid, entry) in enumerate(sorted(dashboards.items()), start=1):
        entry["dashboard"] = dict(entry["dashboard"], id=number, uid=uid,
                                  version=entry["dashboard"].get("version", 1))
    return dashboards, folders


# ---------------------------------------------------------------- HTTP

class Grafana:
    def __init__(self, cfg, environ=None):
        self.cfg = cfg
        self.environ = os.environ if environ is None else environ
        self.version = version()
        ensure_admin(cfg)
        prov = cfg["paths"]["provisioning"]
        self.datasources = load_datasources(prov, self.environ)
        self.dashboards, self.folders = load_dashboards(prov, self.environ)
        self.requests = 0
        self.lock = threading.Lock()

    def reload(self, what):
        prov = self.cfg["paths"]["provisioning"]
        if what == "datasources":
            found = load_datasources(prov, self.environ)
            with self.lock:
                self.datasources = found
        else:
            dashboards, folders = load_dashboards(prov, self.environ)
            with self.lock:
                self.dashboards, self.folders = dashboards, folders

    def search(self, query):
        kind = query.get("type", [""])[0]
        text = query.get("query", [""])[0].lower()
        hits = []
        if kind in ("", "dash-folder"):
            for uid, title in sorted(self.folders.items()):
                if text in title.lower():
                    hits.append({"id": 1000 + len(hits), "uid": uid, "title": title,
                                 "uri": "db/" + _slug(title), "url": "/dashboards/f/%s/%s"
                                 % (uid, _slug(title)), "slug": "", "type": "dash-folder",
                                 "tags": [], "isStarred": False})
        if kind in ("", "dash-db"):
            for uid, entry in sorted(self.dashboards.items()):
                dash = entry["dashboard"]
                title = dash.get("title", "")
                if text not in title.lower():
                    continue
                hit = {"id": dash["id"], "uid": uid, "title": title,
                       "uri": "db/" + _slug(title), "url": "/d/%s/%s" % (uid, _slug(title)),
                       "slug": "", "type": "dash-db", "tags": dash.get("tags", []),
                       "isStarred": False}
                if entry["folder"]:
                    hit.update(folderUid=entry["folderUid"], folderTitle=entry["folder"],
                               folderUrl="/dashboards/f/%s/%s"
                               % (entry["folderUid"], _slug(entry["folder"])))
                hits.append(hit)
        return hits

    def metrics(self):
        lines = [
            "# HELP grafana_build_info A metric with a constant '1' value labeled by version,"
            " revision, branch, and goversion from which Grafana was built",
            "# TYPE grafana_build_info gauge",
            'grafana_build_info{branch="HEAD",edition="oss",goversion="standin",'
            'revision="%s",version="%s"} 1' % (COMMIT, self.version),
            "# HELP grafana_stat_totals_dashboard total amount of dashboards",
            "# TYPE grafana_stat_totals_dashboard gauge",
            "grafana_stat_totals_dashboard %d" % len(self.dashboards),
            "# HELP grafana_stat_totals_datasource total number of defined datasources,"
            " labeled by pluginId",
            "# TYPE grafana_stat_totals_datasource gauge",
        ]
        types = sorted({d["type"] for d in self.datasources})
        for kind in types:
            lines.append('grafana_stat_totals_datasource{plugin_id="%s"} %d'
                         % (kind, sum(1 for d in self.datasources if d["type"] == kind)))
        lines += ["# HELP grafana_http_request_total stand-in request counter",
                  "# TYPE grafana_http_request_total counter",
                  "grafana_http_request_total %d" % self.requests]
        return "\n".join(lines) + "\n"


# pkg/setting/setting.go `RedactedValue`: a non-empty value whose upper-cased key matches one of these
# patterns is shown as RedactedPassword ("*********") in GET /api/admin/settings (the URL redaction of the
# other values is not reproduced).
REDACTED = "*********"
REDACT_PATTERNS = ["PASSWORD", "SECRET", "PROVIDER_CONFIG", "PRIVATE_KEY", "SECRET_KEY", "CERTIFICATE",
                   "ACCOUNT_KEY", "ENCRYPTION_KEY", "VAULT_TOKEN", "CLIENT_SECRET", "API_DB_PASS", "AUTH_TOKEN$",
                   "API_TOKEN$"]


def redacted_settings(cfg):
    """GET /api/admin/settings (pkg/api/admin.go AdminGetSettings): every section's keys, secrets redacted."""
    return {section: {key: (REDACTED if value and any(re.search(p, key.upper()) for p in REDACT_PATTERNS)
                            else value) for key, value in sorted(keys.items())}
            for section, keys in sorted(cfg.items())}


UNAUTHORIZED = {"message": "Unauthorized", "messageId": "auth.unauthorized",
                "statusCode": 401, "traceID": ""}
BAD_LOGIN = {"message": "Invalid username or password", "messageId": "password-auth.failed",
             "statusCode": 401, "traceID": ""}


class Handler(BaseHTTPRequestHandler):
    server_version = "Grafana"
    sys_version = ""
    protocol_version = "HTTP/1.1"

    def log_message(self, format, *args):  # pylint: disable=redefined-builtin
        log = getattr(self.server, "logfile", None)
        if log:
            with open(log, "a", encoding="utf-8") as handle:
                handle.write("logger=context method=%s path=%s status=%s\n"
                             % (self.command, self.path, args[1] if len(args) > 1 else ""))

    def send(self, status, body, ctype="application/json"):
        data = body.encode() if isinstance(body, str) else json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", ctype if ctype != "application/json"
                         else "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def user(self):
        header = self.headers.get("Authorization", "")
        if not header.lower().startswith("basic "):
            return None, UNAUTHORIZED
        try:
            login, password = base64.b64decode(header[6:]).decode().split(":", 1)
        except (ValueError, UnicodeDecodeError):
            return None, BAD_LOGIN
        found = check_login(self.server.app.cfg, login, password)
        return (found, None) if found else (None, BAD_LOGIN)

    def do_GET(self):  # noqa: N802  pylint: disable=invalid-name
        app = self.server.app
        with app.lock:
            app.requests += 1
        parts = urlsplit(self.path)
        path = parts.path.rstrip("/") or "/"
        if path == "/api/health":
            return self.send(200, {"commit": COMMIT, "database": "ok", "version": app.version})
        if path == "/metrics":
            return self.send(200, app.metrics(), "text/plain; version=0.0.4")
        if not path.startswith("/api/"):
            return self.send(404, {"message": "Not found"})
        user, error = self.user()
        if user is None:
            return self.send(401, error)
        if path == "/api/user":
            return self.send(200, {"id": user["id"], "email": user["email"], "name": "",
                                   "login": user["login"], "orgId": 1,
                                   "isGrafanaAdmin": user["isGrafanaAdmin"]})
        if path == "/api/admin/settings":
            # Grafana server admins only (pkg/api/api.go: reqGrafanaAdmin on the /api/admin routes).
            if not user["isGrafanaAdmin"]:
                return self.send(403, {"message": "Permission denied"})
            return self.send(200, redacted_settings(app.cfg))
        if path == "/api/datasources":
            return self.send(200, app.datasources)
        if path.startswith("/api/datasources/name/"):
            name = unquote(path[len("/api/datasources/name/"):])
            for item in app.datasources:
                if item["name"] == name:
                    return self.send(200, item)
            return self.send(404, {"message": "Data source not found"})
        if path == "/api/search":
            return self.send(200, app.search(parse_qs(parts.query)))
        if path.startswith("/api/dashboards/uid/"):
            entry = app.dashboards.get(unquote(path[len("/api/dashboards/uid/"):]))
            if not entry:
                return self.send(404, {"message": "Dashboard not found"})
            dash = entry["dashboard"]
            slug = _slug(dash.get("title", ""))
            return self.send(200, {"dashboard": dash, "meta": {
                "type": "db", "slug": slug, "url": "/d/%s/%s" % (dash["uid"], slug),
                "provisioned": True, "provisionedExternalId": entry["external"],
                "folderUid": entry["folderUid"], "folderTitle": entry["folder"] or "General",
                "version": dash["version"]}})
        return self.send(404, {"message": "Not found"})

    # Reload of provisioning, as upstream's pkg/api/admin_provisioning.go (swagger routes
    # `POST /admin/provisioning/{dashboards,datasources}/reload`, "Reloads the provisioning config
    # files ... again"; basic auth, Grafana admin; 200 {"message": "Dashboards config reloaded"} as
    # in pkg/api/admin_provisioning_test.go; "Datasources config reloaded" by analogy, UNCONFIRMED;
    # a failing reload answers 500).
    RELOADS = {
        "/api/admin/provisioning/dashboards/reload": ("dashboards", "Dashboards config reloaded"),
        "/api/admin/provisioning/datasources/reload": ("datasources", "Datasources config reloaded"),
    }

    def do_POST(self):  # noqa: N802  pylint: disable=invalid-name
        app = self.server.app
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        path = urlsplit(self.path).path.rstrip("/")
        if path not in self.RELOADS:
            return self.send(404, {"message": "Not found"})
        user, error = self.user()
        if user is None:
            return self.send(401, error)
        if not user["isGrafanaAdmin"]:
            return self.send(403, {"message": "Permission denied"})
        what, message = self.RELOADS[path]
        try:
            app.reload(what)
        except ConfigError as exc:
            return self.send(500, {"message": "Failed to reload %s: %s" % (what, exc)})
        return self.send(200, {"message": message})


def make_server(cfg, environ=None):
    app = Grafana(cfg, environ)
    host = cfg["server"].get("http_addr") or "0.0.0.0"
    server = ThreadingHTTPServer((host, int(cfg["server"]["http_port"])), Handler)
    server.daemon_threads = True
    server.app = app
    logs = cfg["paths"]["logs"]
    os.makedirs(logs, exist_ok=True)
    server.logfile = os.path.join(logs, "grafana.log")
    return server


def serve(cfg, pidfile=None):
    try:
        server = make_server(cfg)
    except (ConfigError, OSError) as exc:
        sys.stderr.write("Error: \u2717 %s\n" % exc)
        return 1
    if pidfile:
        try:
            with open(pidfile, "w", encoding="utf-8") as handle:
                handle.write("%d\n" % os.getpid())
        except OSError as exc:
            sys.stderr.write("Error: \u2717 could not write pidfile %s: %s\n" % (pidfile, exc))
            server.server_close()
            return 1
    with open(server.logfile, "a", encoding="utf-8") as handle:
        handle.write('logger=http.server msg="HTTP Server Listen" address=%s:%d\n'
                     % server.server_address[:2])
    sys.stdout.write("grafana stand-in listening on http://%s:%d\n" % server.server_address[:2])
    sys.stdout.flush()
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0
