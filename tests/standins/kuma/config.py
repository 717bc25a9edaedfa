"""kuma-cp configuration of the runtime stand-in (test double, NOT Kuma).

kuma.md §2 "Config precedence: env vars (`KUMA_*`) override YAML. The YAML file should hold only
overrides."; defaults and env names from kuma.md §2 "Key config".  Only the keys below are modelled;
like real kuma-cp, unknown YAML keys are ignored without a message: kumahq/kuma `pkg/config/loader.go`
`func Load(file string, cfg Config) error { return NewLoader(cfg).WithEnvVarsLoading("").WithValidation()
.LoadFile(file) }` (no `WithStrictParsing()`, so `yaml.Unmarshal`, not `yaml.UnmarshalStrict`), called by
`app/kuma-cp/cmd/run.go` `config.Load(args.configPath, &cfg)`.
"""

import copy
import os

import yaml

import tokens as T

# kuma.md §2 "Key config" (defaults of K@v2.14.3 kuma-cp.defaults.yaml)
DEFAULTS = {
    "environment": "universal",
    "mode": "zone",
    "store": {
        "type": "memory",
        "unsafeDelete": False,
        "postgres": {
            "host": "127.0.0.1",
            "port": 15432,                 # kuma.md §2 "non-standard default port; always set it"
            "user": "kuma",
            "password": "kuma",
            "dbName": "kuma",
            "maxOpenConnections": 50,
            "driverName": "pgx",
            "tolerateNewerDBVersions": False,
            "tls": {"mode": "disable", "caPath": "", "certPath": "", "keyPath": "", "disableSSLSNI": False},
        },
    },
    "general": {"workDir": "", "tlsCertFile": "", "tlsKeyFile": ""},
    "apiServer": {
        "http": {"interface": "0.0.0.0", "port": 5681, "enabled": True},
        "https": {"interface": "0.0.0.0", "port": 5682, "enabled": True},
        "readOnly": False,
        "authn": {"type": "tokens", "localhostIsAdmin": True,
                  "tokens": {"bootstrapAdminToken": True, "enableIssuer": True}},
    },
    "dpServer": {
        "port": 5678,
        "authn": {"dpProxy": {"type": ""}, "enableReloadableTokens": False},
    },
    "diagnostics": {"serverPort": 5680},
    # kuma.md §2 "Key config": monitoringAssignmentServer.port 5676, "MADS for Prometheus `kuma_sd_configs`"
    "monitoringAssignmentServer": {"port": 5676},
    "multizone": {"zone": {"name": "default", "globalAddress": ""}},
    "defaults": {"skipMeshCreation": False, "createMeshRoutingResources": False},
    "metrics": {"dataplane": {"idleTimeout": "5m"}},
    "runtime": {"universal": {"dataplaneCleanupAge": "72h"}},
}

# env name -> (path, kind); kuma.md §2 "Key config" ENV column
ENV = {
    "KUMA_ENVIRONMENT": ("environment", str),
    "KUMA_MODE": ("mode", str),
    "KUMA_STORE_TYPE": ("store.type", str),
    "KUMA_STORE_UNSAFE_DELETE": ("store.unsafeDelete", bool),
    "KUMA_STORE_POSTGRES_HOST": ("store.postgres.host", str),
    "KUMA_STORE_POSTGRES_PORT": ("store.postgres.port", int),
    "KUMA_STORE_POSTGRES_USER": ("store.postgres.user", str),
    "KUMA_STORE_POSTGRES_PASSWORD": ("store.postgres.password", str),
    "KUMA_STORE_POSTGRES_DB_NAME": ("store.postgres.dbName", str),
    "KUMA_STORE_POSTGRES_MAX_OPEN_CONNECTIONS": ("store.postgres.maxOpenConnections", int),
    "KUMA_STORE_POSTGRES_DRIVER_NAME": ("store.postgres.driverName", str),
    "KUMA_STORE_POSTGRES_TOLERATE_NEWER_DB_VERSIONS": ("store.postgres.tolerateNewerDBVersions", bool),
    "KUMA_STORE_POSTGRES_TLS_MODE": ("store.postgres.tls.mode", str),
    # kuma.md §2: "the real var is `KUMA_STORE_POSTGRES_TLS_CA_PATH`"
    "KUMA_STORE_POSTGRES_TLS_CA_PATH": ("store.postgres.tls.caPath", str),
    "KUMA_STORE_POSTGRES_TLS_CERT_PATH": ("store.postgres.tls.certPath", str),
    "KUMA_STORE_POSTGRES_TLS_KEY_PATH": ("store.postgres.tls.keyPath", str),
    "KUMA_STORE_POSTGRES_TLS_DISABLE_SSLSNI": ("store.postgres.tls.disableSSLSNI", bool),
    "KUMA_GENERAL_WORK_DIR": ("general.workDir", str),
    "KUMA_GENERAL_TLS_CERT_FILE": ("general.tlsCertFile", str),
    "KUMA_GENERAL_TLS_KEY_FILE": ("general.tlsKeyFile", str),
    "KUMA_API_SERVER_HTTP_INTERFACE": ("apiServer.http.interface", str),
    "KUMA_API_SERVER_HTTP_PORT": ("apiServer.http.port", int),
    "KUMA_API_SERVER_HTTP_ENABLED": ("apiServer.http.enabled", bool),
    "KUMA_API_SERVER_HTTPS_PORT": ("apiServer.https.port", int),
    "KUMA_API_SERVER_HTTPS_ENABLED": ("apiServer.https.enabled", bool),
    "KUMA_API_SERVER_READ_ONLY": ("apiServer.readOnly", bool),
    "KUMA_API_SERVER_AUTHN_TYPE": ("apiServer.authn.type", str),
    "KUMA_API_SERVER_AUTHN_LOCALHOST_IS_ADMIN": ("apiServer.authn.localhostIsAdmin", bool),
    "KUMA_API_SERVER_AUTHN_TOKENS_BOOTSTRAP_ADMIN_TOKEN": ("apiServer.authn.tokens.bootstrapAdminToken", bool),
    "KUMA_API_SERVER_AUTHN_TOKENS_ENABLE_ISSUER": ("apiServer.authn.tokens.enableIssuer", bool),
    "KUMA_DP_SERVER_PORT": ("dpServer.port", int),
    "KUMA_DP_SERVER_AUTHN_DP_PROXY_TYPE": ("dpServer.authn.dpProxy.type", str),
    "KUMA_DP_SERVER_AUTHN_ENABLE_RELOADABLE_TOKENS": ("dpServer.authn.enableReloadableTokens", bool),
    "KUMA_DIAGNOSTICS_SERVER_PORT": ("diagnostics.serverPort", int),
    "KUMA_MONITORING_ASSIGNMENT_SERVER_PORT": ("monitoringAssignmentServer.port", int),
    "KUMA_MULTIZONE_ZONE_NAME": ("multizone.zone.name", str),
    "KUMA_MULTIZONE_ZONE_GLOBAL_ADDRESS": ("multizone.zone.globalAddress", str),
    "KUMA_DEFAULTS_SKIP_MESH_CREATION": ("defaults.skipMeshCreation", bool),
    "KUMA_DEFAULTS_CREATE_MESH_ROUTING_RESOURCES": ("defaults.createMeshRoutingResources", bool),
    "KUMA_METRICS_DATAPLANE_IDLE_TIMEOUT": ("metrics.dataplane.idleTimeout", str),
    "KUMA_RUNTIME_UNIVERSAL_DATAPLANE_CLEANUP_AGE": ("runtime.universal.dataplaneCleanupAge", str),
}


class ConfigError(Exception):
    """The configuration cannot be used (message says why)."""


def _merge(base, override):
    """Overlay ``override`` onto ``base`` for the keys base knows (unknown keys are dropped)."""
    for key, value in (override or {}).items():
        if key not in base:
            continue
        if isinstance(base[key], dict) and isinstance(value, dict):
            _merge(base[key], value)
        elif not isinstance(base[key], dict):
            base[key] = value


def _set(cfg, path, value):
    node = cfg
    parts = path.split(".")
    for part in parts[:-1]:
        node = node[part]
    node[parts[-1]] = value


def get(cfg, path):
    node = cfg
    for part in path.split("."):
        node = node[part]
    return node


def _convert(name, raw, kind):
    if kind is bool:
        lowered = raw.strip().lower()
        if lowered in ("1", "t", "true"):
            return True
        if lowered in ("0", "f", "false", ""):
            return False
        raise ConfigError("processing environment variables failed: envconfig.Process: assigning %s: "
                          "invalid value %r for bool" % (name, raw))
    if kind is int:
        try:
            return int(raw)
        except ValueError:
            raise ConfigError("processing environment variables failed: envconfig.Process: assigning %s: "
                              "invalid value %r for int" % (name, raw)) from None
    return raw


def load(path=None, environ=None):
    """Defaults <- YAML file <- KUMA_* env (kuma.md §2).  Raises ConfigError."""
    environ = os.environ if environ is None else environ
    cfg = copy.deepcopy(DEFAULTS)
    if path:
        # loader.go: "unable to access configuration file '%s', please check if the file exists and has the
        # correct permissions"
        if not os.path.exists(path):
            raise ConfigError("unable to access configuration file '%s', please check if the file exists and "
                              "has the correct permissions" % path)
        try:
            with open(path, encoding="utf-8") as handle:
                data = yaml.safe_load(handle) or {}
        except (OSError, yaml.YAMLError) as exc:
            raise ConfigError("parsing configuration from file '%s' failed: unable to parse configuration: %s"
                              % (path, exc)) from None
        if not isinstance(data, dict):
            raise ConfigError("parsing configuration from file '%s' failed: unable to parse configuration" % path)
        _merge(cfg, data)
    for name, (key, kind) in ENV.items():
        if name in environ:
            _set(cfg, key, _convert(name, environ[name], kind))
    validate(cfg)
    return cfg


def validate(cfg):
    """A few checks of the real Validate(); texts UNCONFIRMED except where quoted."""
    if cfg["environment"] not in ("universal", "kubernetes"):
        raise ConfigError("configuration validation failed: Environment should be either universal or kubernetes")
    if cfg["environment"] == "kubernetes":
        raise ConfigError("the stand-in only implements environment universal")
    if cfg["mode"] not in ("standalone", "zone", "global"):
        raise ConfigError("configuration validation failed: mode should be either global, zone or standalone")
    if cfg["store"]["type"] not in ("memory", "postgres"):
        raise ConfigError("configuration validation failed: Store: Type should be either memory or postgres "
                          "(kubernetes is k8s only)")
    if cfg["store"]["postgres"]["tls"]["mode"] not in ("disable", "verifyNone", "verifyCa", "verifyFull"):
        raise ConfigError("configuration validation failed: Store: Postgres: TLS: invalid mode")
    for path in ("metrics.dataplane.idleTimeout", "runtime.universal.dataplaneCleanupAge"):
        try:
            T.parse_duration(str(get(cfg, path)))
        except ValueError:
            raise ConfigError("configuration validation failed: %s: invalid duration %r" % (path, get(cfg, path))) from None
    if bool(cfg["general"]["tlsCertFile"]) != bool(cfg["general"]["tlsKeyFile"]):
        raise ConfigError("configuration validation failed: General: both TLSCertFile and TLSKeyFile have to be "
                          "specified")


def work_dir(cfg):
    """kuma.md §2 "Work dir: `general.workDir` / `KUMA_GENERAL_WORK_DIR`, default `$HOME/.kuma`"."""
    return cfg["general"]["workDir"] or os.path.join(os.path.expanduser("~"), ".kuma")


def dp_auth_type(cfg):
    """kuma.md §2 `dpServer.authn.dpProxy.type` "" -> `dpToken` on universal; `none` is possible."""
    return cfg["dpServer"]["authn"]["dpProxy"]["type"] or "dpToken"
