"""kong.conf loading for the Kong 3.9 stand-in package (test double, NOT Kong).

Defaults, parsing and validation of the subset of kong.conf keys the stand-in
uses or that a role is likely to template.  Facts are cited as
kong.md §N "<quote>" (/work/shared/reference/kong.md).

* Format: ``key = value`` lines, ``#`` starts a comment (kong.md §2
  "Booleans accept `on/off/true/false`; lists are comma-separated").
* Precedence: kong.md §2 "Precedence: CLI-internal args > env > file > defaults"
  with env overrides ``KONG_<UPPERCASE KEY>``.
* kong.md §2 "**Unknown keys are silently dropped** (an intersection with the
  defaults), so typos are not caught by `kong check`".
* Lookup without ``-c``: kong.md §1 "`/etc/kong/kong.conf`, then `/etc/kong.conf`.
  If neither exists, built-in defaults are used."
"""

import os
import re

NONE = None   # Kong's "NONE" default (key present, no value)

# (key, default as the string kong.conf.default shows, type)
# Types: str, bool, int, num, list, enum:<a|b>, listen.  Values: kong.md §2
# unless marked "(UNCONFIRMED, from memory of kong_defaults.lua)".
DEFAULTS = [
    # -- General (kong.md §2 "General")
    ("prefix", "/usr/local/kong/", "str"),
    ("log_level", "notice", "enum:debug|info|notice|warn|error|crit|alert|emerg"),
    ("proxy_access_log", "logs/access.log", "str"),
    ("proxy_error_log", "logs/error.log", "str"),
    ("proxy_stream_access_log", "logs/access.log basic", "str"),   # UNCONFIRMED
    ("proxy_stream_error_log", "logs/error.log", "str"),           # UNCONFIRMED
    ("admin_access_log", "logs/admin_access.log", "str"),
    ("admin_error_log", "logs/error.log", "str"),
    ("status_access_log", "off", "str"),
    ("status_error_log", "logs/status_error.log", "str"),
    ("plugins", "bundled", "list"),
    ("vaults", "bundled", "list"),
    ("anonymous_reports", "on", "bool"),
    # -- Listeners (kong.md §2 "Listeners" table)
    ("proxy_listen", "0.0.0.0:8000 reuseport backlog=16384, "
                     "0.0.0.0:8443 http2 ssl reuseport backlog=16384", "listen"),
    ("stream_listen", "off", "listen"),
    ("admin_listen", "127.0.0.1:8001 reuseport backlog=16384, "
                     "127.0.0.1:8444 http2 ssl reuseport backlog=16384", "listen"),
    ("admin_gui_listen", "0.0.0.0:8002, 0.0.0.0:8445 ssl", "listen"),
    ("admin_gui_url", "", "str"),
    ("admin_gui_path", "/", "str"),
    ("status_listen", "127.0.0.1:8007 reuseport backlog=16384", "listen"),
    ("cluster_listen", "0.0.0.0:8005", "listen"),
    # -- Datastore (kong.md §2 "Datastore")
    ("database", "postgres", "enum:postgres|off"),
    ("pg_host", "127.0.0.1", "str"),
    ("pg_port", "5432", "int"),
    ("pg_timeout", "5000", "int"),
    ("pg_user", "kong", "str"),
    ("pg_password", NONE, "str"),
    ("pg_database", "kong", "str"),
    ("pg_schema", NONE, "str"),
    ("pg_ssl", "off", "bool"),
    ("pg_ssl_verify", "off", "bool"),
    ("pg_max_concurrent_queries", "0", "int"),
    ("pg_semaphore_timeout", "60000", "int"),
    ("pg_keepalive_timeout", NONE, "int"),
    ("pg_pool_size", NONE, "int"),
    ("pg_backlog", NONE, "int"),
    ("pg_ro_host", NONE, "str"),
    ("pg_ro_port", NONE, "int"),
    ("pg_ro_timeout", NONE, "int"),
    ("pg_ro_user", NONE, "str"),
    ("pg_ro_password", NONE, "str"),
    ("pg_ro_database", NONE, "str"),
    ("pg_ro_schema", NONE, "str"),
    ("pg_ro_ssl", NONE, "bool"),
    ("pg_ro_ssl_verify", NONE, "bool"),
    ("declarative_config", NONE, "str"),
    ("declarative_config_string", NONE, "str"),
    ("lmdb_environment_path", "dbless.lmdb", "str"),
    ("lmdb_map_size", "2048m", "str"),
    ("mem_cache_size", "128m", "str"),
    ("db_update_frequency", "5", "num"),
    ("db_update_propagation", "0", "num"),
    ("db_cache_ttl", "0", "num"),
    # -- Hybrid (kong.md §2 "Hybrid")
    ("role", "traditional", "enum:traditional|control_plane|data_plane"),
    ("cluster_mtls", "shared", "enum:shared|pki"),
    ("cluster_cert", NONE, "str"),
    ("cluster_cert_key", NONE, "str"),
    ("cluster_ca_cert", NONE, "str"),
    ("cluster_server_name", NONE, "str"),
    ("cluster_control_plane", "127.0.0.1:8005", "str"),
    ("cluster_data_plane_purge_delay", "1209600", "int"),
    ("cluster_ocsp", "off", "enum:on|off|optional"),
    ("cluster_max_payload", "16777216", "int"),
    ("cluster_use_proxy", "off", "bool"),
    ("cluster_dp_labels", NONE, "list"),
    ("cluster_rpc", "off", "bool"),
    ("cluster_incremental_sync", "off", "bool"),
    # -- Proxy behaviour (kong.md §2 "Proxy behaviour")
    ("headers", "server_tokens, latency_tokens, X-Kong-Request-Id", "list"),
    ("headers_upstream", "X-Kong-Request-Id", "list"),
    ("trusted_ips", NONE, "list"),
    ("real_ip_header", "X-Real-IP", "str"),
    ("real_ip_recursive", "off", "bool"),
    ("router_flavor", "traditional_compatible",
     "enum:traditional|traditional_compatible|expressions"),
    ("lua_ssl_trusted_certificate", "system", "list"),
    ("lua_ssl_verify_depth", "1", "int"),
    # -- Nginx (kong.md §2 "Nginx")
    ("nginx_worker_processes", "auto", "str"),
    ("nginx_daemon", "on", "bool"),
    ("nginx_user", "kong kong", "str"),
    ("nginx_admin_client_max_body_size", "10m", "str"),
    ("nginx_http_client_max_body_size", "0", "str"),
    ("ssl_protocols", "TLSv1.2 TLSv1.3", "str"),
    ("ssl_cipher_suite", "intermediate", "enum:modern|intermediate|old|fips|custom"),
    ("ssl_cert", NONE, "list"),
    ("ssl_cert_key", NONE, "list"),
    ("admin_ssl_cert", NONE, "list"),
    ("admin_ssl_cert_key", NONE, "list"),
    ("status_ssl_cert", NONE, "list"),
    ("status_ssl_cert_key", NONE, "list"),
    # -- Misc (kong.md §2 "Misc")
    ("dns_order", "LAST,SRV,A,CNAME", "list"),
    ("new_dns_client", "off", "bool"),
    ("untrusted_lua", "sandbox", "enum:on|off|sandbox"),
    ("wasm", "off", "bool"),
    ("request_debug", "on", "bool"),
    ("tracing_instrumentations", "off", "list"),
]

DEFAULT_MAP = {k: v for k, v, _type in DEFAULTS}
TYPES = {k: t for k, _default, t in DEFAULTS}
DEFAULT_PATHS = ("/etc/kong/kong.conf", "/etc/kong.conf")   # kong.md §1 lookup
# kong.md §2 "Dynamic Nginx injection prefixes work as env vars too"
DYNAMIC_PREFIXES = ("nginx_main_", "nginx_events_", "nginx_http_", "nginx_upstream_",
                    "nginx_proxy_", "nginx_location_", "nginx_status_", "nginx_admin_",
                    "nginx_stream_", "nginx_supstream_", "nginx_sproxy_", "pluginserver_",
                    "vault_")
# kong.md §2 "Sensitive keys are masked in `GET /` `configuration`"
SENSITIVE = ("pg_password", "pg_ro_password", "proxy_server", "declarative_config_string",
             "cluster_cert_key")
BOOL_TRUE = ("on", "true")
BOOL_FALSE = ("off", "false")


class ConfError(Exception):
    """Configuration errors; ``errors`` is the list Kong would print."""

    def __init__(self, errors, path=None):
        super().__init__("; ".join(errors))
        self.errors = errors
        self.path = path


def parse_text(text):
    """kong.conf: ``key = value``; ``#`` comments (``\\#`` keeps a literal #)."""
    out = {}
    for raw in text.splitlines():
        line = re.sub(r"(?<!\\)#.*$", "", raw).replace("\\#", "#").strip()
        if not line or "=" not in line:
            continue
        key, value = line.split("=", 1)
        out[key.strip()] = value.strip()
    return out


def find_conf(path=None):
    if path:
        return path
    for candidate in DEFAULT_PATHS:
        if os.path.isfile(candidate):
            return candidate
    return None


def load(path=None, env=None, overrides=None, prefix=None):
    """Return (conf dict of strings/None, conf_path).  Raises ConfError."""
    env = os.environ if env is None else env
    conf_path = find_conf(path)
    from_file = {}
    if conf_path:
        try:
            with open(conf_path, encoding="utf-8") as fh:
                from_file = parse_text(fh.read())
        except OSError as exc:
            raise ConfError(["no file at: %s" % conf_path], conf_path) from exc
    conf = dict(DEFAULT_MAP)
    for key, value in from_file.items():
        if key in conf or key.startswith(DYNAMIC_PREFIXES):
            conf[key] = value
        # kong.md §2 "Unknown keys are silently dropped"
    for name, value in env.items():
        if name.startswith("KONG_"):
            key = name[5:].lower()
            if key in conf or key.startswith(DYNAMIC_PREFIXES):
                conf[key] = value
    for key, value in (overrides or {}).items():
        conf[key] = value
    if prefix:
        conf["prefix"] = prefix
    # Kong resolves the prefix to an absolute path without the trailing slash
    conf["prefix"] = os.path.abspath(conf["prefix"])
    for key, value in list(conf.items()):
        if value == "":
            conf[key] = NONE if DEFAULT_MAP.get(key, "x") is NONE else value
    errors = validate(conf)
    if errors:
        raise ConfError(errors, conf_path)
    return conf, conf_path


def as_bool(value):
    return str(value).lower() in BOOL_TRUE


def as_list(value):
    if value is None:
        return []
    return [v.strip() for v in str(value).split(",") if v.strip()]


def parse_listen(value):
    """Return [{host, port, ssl, http2, ...}] (kong.md §2 listener suffixes)."""
    out = []
    for item in as_list(value):
        if item == "off":
            return []
        words = item.split()
        addr = words[0]
        host, _sep, port = addr.rpartition(":")
        out.append({"host": host.strip("[]"), "port": int(port),
                    "ssl": "ssl" in words[1:], "http2": "http2" in words[1:],
                    "listener": "%s:%s%s" % (host, port, " ssl" if "ssl" in words[1:] else "")})
    return out


LISTEN_FLAGS = ("ssl", "http2", "proxy_protocol", "deferred", "bind", "reuseport",
                "ipv6only=on", "ipv6only=off", "so_keepalive=on", "so_keepalive=off")


def _check_listen(key, value, errors):
    if value is None:
        return
    for item in as_list(value):
        if item == "off":
            continue
        words = item.split()
        m = re.match(r"^(\[[0-9a-fA-F:]+\]|[^:\s]+):(\d+)$", words[0])
        bad = [w for w in words[1:] if w not in LISTEN_FLAGS and
               not re.match(r"^(backlog=\d+|so_keepalive=\S+)$", w)]
        if not m or int(m.group(2)) > 65535 or bad:
            # UNCONFIRMED message, from memory of kong/conf_loader/listeners.lua
            errors.append("%s must be of form: [off] | <ip>:<port> [ssl] [http2] "
                          "[proxy_protocol] [deferred] [bind] [reuseport] [backlog=%%d] "
                          "[ipv6only=on] [ipv6only=off] [so_keepalive=on] "
                          "[so_keepalive=off] [so_keepalive=%%w:%%w:%%d], [... next entry ...]"
                          % key)
            return


def validate(conf):
    """Type and cross-key checks.  Messages are UNCONFIRMED renderings of
    kong/conf_loader/parse.lua ("%s is not a boolean", "%s has an invalid value")."""
    errors = []
    for key, typ in TYPES.items():
        value = conf.get(key)
        if value is None:
            continue
        sval = str(value).strip()
        if typ == "bool" and sval.lower() not in BOOL_TRUE + BOOL_FALSE:
            errors.append("%s is not a boolean: '%s'" % (key, sval))
        elif typ == "int" and not re.match(r"^-?\d+$", sval):
            errors.append("%s is not a number: '%s'" % (key, sval))
        elif typ == "num" and not re.match(r"^-?\d+(\.\d+)?$", sval):
            errors.append("%s is not a number: '%s'" % (key, sval))
        elif typ.startswith("enum:"):
            allowed = typ[5:].split("|")
            if key == "database" and sval == "cassandra":
                # kong.md §2 "`cassandra` is rejected ("not supported in versions 3.4 and above")"
                errors.append("Cassandra as a datastore for Kong is not supported in "
                              "versions 3.4 and above. Please use Postgres.")
            elif sval not in allowed:
                errors.append("%s has an invalid value: '%s' (%s)"
                              % (key, sval, ", ".join(allowed)))
        elif typ == "listen":
            _check_listen(key, sval, errors)
    if errors:
        return errors
    if int(conf["pg_port"]) > 65535 or int(conf["pg_port"]) < 0:
        errors.append("pg_port must be between 0 and 65535")
    if int(conf["cluster_data_plane_purge_delay"]) < 60:
        # kong.md §2 "`cluster_data_plane_purge_delay=1209600` (14 days, minimum 60)"
        errors.append("cluster_data_plane_purge_delay must be 60 or greater")
    role = conf["role"]
    if role == "data_plane":
        if conf["database"] != "off":
            # kong.md §7 DP "`database=off` ("only in-memory storage can be used when
            # role = data_plane")"
            errors.append("only in-memory storage can be used when role = \"data_plane\"\n"
                          "Hint: set database = off in your kong.conf")
        if not parse_listen(conf["proxy_listen"]):
            # kong.md §7 "`proxy_listen` must not be off"
            errors.append("proxy_listen must be specified when role = \"data_plane\"")
    if role == "control_plane":
        if conf["database"] == "off":
            # kong.md §7 "Config validation fails when `database=off`" on a CP
            errors.append("in-memory storage can not be used when role = \"control_plane\"")
        if as_bool(conf["cluster_use_proxy"]):
            errors.append("cluster_use_proxy can not be used when role = \"control_plane\"")
        if conf.get("cluster_dp_labels"):
            errors.append("cluster_dp_labels can not be used when role = \"control_plane\"")
        if not parse_listen(conf["cluster_listen"]):
            errors.append("cluster_listen must be specified when role = \"control_plane\"")
    if role in ("control_plane", "data_plane"):
        # kong.md §7 "CP: ... `cluster_cert`, `cluster_cert_key`"
        for key in ("cluster_cert", "cluster_cert_key"):
            if not conf.get(key):
                errors.append("%s must be specified when role = \"%s\"" % (key, role))
        if conf["cluster_mtls"] == "pki" and not conf.get("cluster_ca_cert"):
            # kong.md §7 "`cluster_mtls=pki` requires `cluster_ca_cert`"
            errors.append("cluster_ca_cert must be specified when cluster_mtls = \"pki\"")
    if conf["database"] == "off" and conf.get("declarative_config") and \
            not os.path.isfile(conf["declarative_config"]):
        errors.append("declarative_config path not found: %s" % conf["declarative_config"])
    return errors


def env_file_text(conf):
    """`.kong_env` (kong.md §1 "`.kong_env` (resolved config of the running node)")."""
    lines = []
    for key in sorted(conf):
        value = conf[key]
        if value is None:
            continue
        lines.append("%s = %s" % (key, str(value).replace("#", "\\#")))
    return "\n".join(lines) + "\n"


def read_env_file(prefix):
    with open(os.path.join(prefix, ".kong_env"), encoding="utf-8") as fh:
        conf = dict(DEFAULT_MAP)
        conf.update(parse_text(fh.read()))
        return conf


def conf_default_text():
    """Body of /etc/kong/kong.conf.default: every key commented out with its
    default, as the real file does (kong.md §1 "`/etc/kong/kong.conf.default`
    (type `config`). **There is no `kong.conf`; you create it.**")."""
    out = ["# -----------------------",
           "# Kong configuration file",
           "# -----------------------",
           "#",
           "# STAND-IN (tests only, NOT Kong): key names and defaults of Kong 3.9",
           "# (kong.md §2).  Every line is commented out: the defaults are built in.",
           "#",
           "# Environment variables KONG_<UPPERCASE KEY> override this file.",
           ""]
    for key, default, _type in DEFAULTS:
        out.append("#%s = %s" % (key, "" if default is None else default))
    return "\n".join(out) + "\n"


def masked(conf):
    out = {}
    for key, value in conf.items():
        if value is not None and (key in SENSITIVE or key.endswith("ssl_cert_key")):
            value = "******"
        out[key] = value
    return out
