"""`kong` CLI of the Kong 3.9 stand-in package (test double, NOT Kong).

Installed as /usr/local/bin/kong (kong.md §1 "`/usr/local/bin/kong` (CLI, a
`resty` script)").  Verbs, flags and exit codes per kong.md §3 "CLI":
"Commands: `start stop quit restart reload health check prepare migrations
version config hybrid vault drain roar`"; "Any error exits with **1**
(`pl.lapp.quit`), with "Error: …" on stderr".  Messages that kong.md does not
quote are UNCONFIRMED (from memory of kong/cmd/*.lua).
"""

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
if HERE not in sys.path:
    sys.path.insert(0, HERE)

import conf as C  # noqa: E402
import node as N  # noqa: E402
import version as V  # noqa: E402

# kong.md §1 "`/usr/local/openresty/` (nginx binary at `/usr/local/openresty/nginx/sbin/nginx`)"
NGINX_BIN = "/usr/local/openresty/nginx/sbin/nginx"
COMMANDS = ("start", "stop", "quit", "restart", "reload", "health", "check", "prepare",
            "migrations", "version", "config", "hybrid", "vault", "drain", "roar")
# flags that take a value (lapp style); everything else starting with - is boolean
VALUE_FLAGS = {"-c": "conf", "--conf": "conf", "-p": "prefix", "--prefix": "prefix",
               "--nginx-conf": "nginx_conf", "--db-timeout": "db_timeout",
               "--lock-timeout": "lock_timeout", "-t": "timeout", "--timeout": "timeout",
               "-w": "wait", "--wait": "wait", "-d": "days", "--days": "days",
               "--nginx-conf-flags": "nginx_conf_flags"}
BOOL_FLAGS = {"-y": "yes", "--yes": "yes", "-q": "quiet", "--quiet": "quiet",
              "-f": "force", "--force": "force", "-a": "all", "--all": "all",
              "--run-migrations": "run_migrations", "--v": "v", "--vv": "vv"}


class Quit(Exception):
    """pl.lapp.quit: message to stderr, exit code."""

    def __init__(self, message=None, code=1):
        super().__init__(message)
        self.message = message
        self.code = code


def parse(argv):
    opts, pos = {}, []
    i = 0
    while i < len(argv):
        arg = argv[i]
        if "=" in arg and arg.split("=", 1)[0] in VALUE_FLAGS:
            key, value = arg.split("=", 1)
            opts[VALUE_FLAGS[key]] = value
        elif arg in VALUE_FLAGS:
            if i + 1 >= len(argv):
                raise Quit("Error: option %s requires an argument" % arg)
            opts[VALUE_FLAGS[arg]] = argv[i + 1]
            i += 1
        elif arg in BOOL_FLAGS:
            opts[BOOL_FLAGS[arg]] = True
        elif arg.startswith("-") and arg != "-":
            raise Quit("Error: unrecognized parameter: %s" % arg)
        else:
            pos.append(arg)
        i += 1
    return opts, pos


def out(msg):
    print(msg, flush=True)


def err(msg):
    sys.stderr.write("Error: %s\n" % msg)
    sys.stderr.flush()


def load_conf(opts, prefix=None):
    try:
        conf, path = C.load(opts.get("conf"), prefix=prefix or opts.get("prefix"))
    except C.ConfError as exc:
        for line in exc.errors:
            err(line)
        raise Quit(None) from exc
    return conf, path


def prefix_of(opts):
    if opts.get("prefix"):
        return opts["prefix"]
    return os.environ.get("KONG_PREFIX") or C.DEFAULT_MAP["prefix"]


def nginx_cmd():
    """The nginx stand-in: the packaged path, or node.py from a source tree."""
    override = os.environ.get("KONG_STANDIN_NGINX")
    if override:
        return [override]
    if os.path.exists(NGINX_BIN):
        return [NGINX_BIN]
    return [sys.executable, os.path.join(HERE, "node.py")]


# ------------------------------------------------------------------ prepare
NGINX_CONF = """# STAND-IN (tests only, NOT Kong): rendered by `kong prepare`
pid pids/nginx.pid;
error_log {error_log} {log_level};
daemon {daemon};
worker_processes {workers};
# user {user};
include 'nginx-kong.conf';
"""


def prepare(conf, prefix):
    """kong.md §3 "`kong prepare [-c] [-p] [--nginx-conf]`: renders the prefix only;
    no DB access"; kong.md §1 runtime files under the prefix."""
    try:
        for sub in ("", "pids", "logs"):
            os.makedirs(os.path.join(prefix, sub), exist_ok=True)
        conf = dict(conf)
        conf["prefix"] = prefix
        with open(os.path.join(prefix, ".kong_env"), "w", encoding="utf-8") as fh:
            fh.write(C.env_file_text(conf))
        os.chmod(os.path.join(prefix, ".kong_env"), 0o600)
        error_log = conf["proxy_error_log"]
        with open(os.path.join(prefix, "nginx.conf"), "w", encoding="utf-8") as fh:
            fh.write(NGINX_CONF.format(
                error_log=error_log, log_level=conf["log_level"],
                daemon="on" if C.as_bool(conf["nginx_daemon"]) else "off",
                workers=conf["nginx_worker_processes"], user=conf["nginx_user"]))
        with open(os.path.join(prefix, "nginx-kong.conf"), "w", encoding="utf-8") as fh:
            fh.write("# STAND-IN: listeners served by the node process\n")
            for key in ("proxy_listen", "admin_listen", "status_listen"):
                fh.write("# %s = %s\n" % (key, conf.get(key)))
        for name in ("access.log", "error.log", "admin_access.log"):
            path = os.path.join(prefix, "logs", name)
            if not os.path.exists(path):
                open(path, "a", encoding="utf-8").close()   # pylint: disable=consider-using-with
    except OSError as exc:
        raise Quit("Error: could not prepare Kong prefix at %s: %s" % (prefix, exc)) from exc
    return conf


def cmd_prepare(opts, _pos):
    conf, _path = load_conf(opts)
    prepare(conf, conf["prefix"])
    return 0


# ------------------------------------------------------------------ lifecycle
def running_pid(prefix):
    pid = N.read_pid(prefix)
    return pid if N.pid_alive(pid) else None


def _migration_check(conf, opts):
    """kong.md §3 start "Runs the migration state check: it fails on needs-bootstrap
    or new migrations unless `--run-migrations` (which runs `up` only)"."""
    if conf["database"] == "off":
        return
    import migrations as M
    conn = db_connect(conf)
    mig = M.Migrator(conn, V.VERSION, conf["pg_database"], out=out)
    state = mig.state()
    if state.get("needs_bootstrap") or state.get("new_migrations"):
        if not opts.get("run_migrations"):
            if state.get("needs_bootstrap"):
                raise Quit("Error: Database needs bootstrapping or is older than Kong 1.0."
                           "\n\nTo start a new installation from scratch, run "
                           "'kong migrations bootstrap'.\n\nTo migrate from a version "
                           "older than 1.0, migrated to Kong 1.5.0 first. \nIf you still "
                           "have 'apis' entities, you can convert them to Routes and "
                           "Services\nusing the 'kong migrations migrate-apis' command in "
                           "Kong 1.5.0.\n")
            raise Quit("Error: New migrations available; run 'kong migrations up' to proceed")
        if mig.locked(opts.get("lock_timeout", 60)):
            try:
                mig.run_up(with_teardown=bool(state.get("needs_bootstrap")))
            finally:
                mig.unlock()
    conn.close()


def cmd_start(opts, _pos):
    conf, _path = load_conf(opts)
    prefix = conf["prefix"]
    if running_pid(prefix):
        # kong.md §3 "Errors "Kong is already running in <prefix>" if the pid is alive"
        raise Quit("Error: Kong is already running in %s" % prefix)
    conf = prepare(conf, prefix)
    _migration_check(conf, opts)
    proc = subprocess.run(nginx_cmd() + ["-p", prefix, "-c", "nginx.conf"], check=False)
    if proc.returncode != 0:
        raise Quit("Error: failed to start nginx (exit %d); see %s/logs/error.log"
                   % (proc.returncode, prefix))
    deadline = time.time() + 10
    while time.time() < deadline and not running_pid(prefix):
        time.sleep(0.05)
    if not running_pid(prefix):
        raise Quit("Error: nginx did not write %s" % N.pid_path(prefix))
    out("Kong started")
    return 0


def _wait_dead(pid, timeout):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if not N.pid_alive(pid):
            return True
        time.sleep(0.05)
    return not N.pid_alive(pid)


def cmd_stop(opts, _pos):
    prefix = prefix_of(opts)
    pid = running_pid(prefix)
    if not pid:
        # kong.md §3 "`kong stop [-p]`: SIGTERM. Errors "nginx not running in prefix" (exit 1)"
        raise Quit("Error: nginx not running in prefix: %s" % prefix)
    os.kill(pid, signal.SIGTERM)
    _wait_dead(pid, 10)
    out("Kong stopped")
    return 0


def cmd_quit(opts, _pos):
    """kong.md §3 "`kong quit [-p] [-t 10] [-w 0]`: SIGQUIT (graceful), then SIGTERM
    after the timeout"."""
    prefix = prefix_of(opts)
    pid = running_pid(prefix)
    if not pid:
        raise Quit("Error: nginx not running in prefix: %s" % prefix)
    time.sleep(float(opts.get("wait", 0)))
    os.kill(pid, signal.SIGQUIT)
    if not _wait_dead(pid, float(opts.get("timeout", 10))):
        os.kill(pid, signal.SIGTERM)
        _wait_dead(pid, 5)
    out("Kong stopped (gracefully)")
    return 0


def cmd_restart(opts, pos):
    """kong.md §3 "`kong restart`: stop then start; takes the same flags as start"."""
    conf, _path = load_conf(opts)
    pid = running_pid(conf["prefix"])
    if pid:
        os.kill(pid, signal.SIGTERM)
        _wait_dead(pid, 10)
    return cmd_start(opts, pos)


def cmd_reload(opts, _pos):
    """kong.md §3 "`kong reload [-c] [-p] [--nginx-conf]`: re-prepares the prefix and
    sends HUP"."""
    conf, _path = load_conf(opts)
    prefix = conf["prefix"]
    pid = running_pid(prefix)
    if not pid:
        raise Quit("Error: nginx not running in prefix: %s" % prefix)
    prepare(conf, prefix)
    os.kill(pid, signal.SIGHUP)
    out("Kong reloaded")
    return 0


def cmd_health(opts, _pos):
    """kong.md §3 "`kong health [-p]`: reads `<prefix>/.kong_env` and checks that the
    nginx pid is alive. Exit 0 prints "Kong is healthy at <prefix>"; otherwise "Kong
    is not running at …" (exit 1)"."""
    prefix = prefix_of(opts)
    if not os.path.exists(os.path.join(prefix, ".kong_env")):
        raise Quit("Error: Kong is not running at %s" % prefix)
    conf = C.read_env_file(prefix)
    prefix = conf.get("prefix") or prefix
    if not running_pid(prefix):
        out("nginx.......not running")
        raise Quit("Error: Kong is not running at %s" % prefix)
    out("nginx.......running\n")
    out("Kong is healthy at %s" % prefix)
    return 0


def cmd_check(opts, pos):
    """kong.md §3 "`kong check <conf>` (default `/etc/kong/kong.conf`): prints
    "configuration at X is valid" with exit 0, or the errors with exit 1"."""
    path = pos[0] if pos else (opts.get("conf") or "/etc/kong/kong.conf")
    if not os.path.isfile(path):
        raise Quit("Error: no file at: %s" % path)
    opts = dict(opts, conf=path)
    load_conf(opts)
    out("configuration at %s is valid" % path)
    return 0


def cmd_version(opts, _pos):
    """kong.md §3 "`kong version`: prints the bare version, e.g. `3.9.3`; `-a` prints
    the deps" (the -a lines are UNCONFIRMED)."""
    if opts.get("all"):
        out("Kong: %s\nngx_lua: 10026\nnginx: 1025003\nLua: LuaJIT 2.1.0-20231117" % V.VERSION)
    else:
        out(V.VERSION)
    return 0


def cmd_drain(opts, _pos):
    """kong.md §3 "`kong drain` (new in 3.9.0): makes `/status/ready` return 503
    "draining""; kong.md §4 "`POST /status/ready status=draining`, which returns 204"."""
    prefix = prefix_of(opts)
    if not running_pid(prefix):
        raise Quit("Error: Kong is not running at %s" % prefix)
    conf = C.read_env_file(prefix)
    listeners = [e for e in C.parse_listen(conf.get("status_listen")) if not e["ssl"]]
    if not listeners:
        raise Quit("Error: No status listeners found in configuration.")   # UNCONFIRMED
    entry = listeners[0]
    host = "127.0.0.1" if entry["host"] in ("0.0.0.0", "") else entry["host"]
    req = urllib.request.Request("http://%s:%d/status/ready" % (host, entry["port"]),
                                 data=json.dumps({"status": "draining"}).encode(),
                                 method="POST", headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=5) as resp:
            if resp.status != 204:
                raise Quit("Error: failed to set draining status: HTTP %d" % resp.status)
    except (urllib.error.URLError, OSError) as exc:
        raise Quit("Error: failed to set draining status: %s" % exc) from exc
    out("Kong's status successfully changed to 'draining'")   # UNCONFIRMED text
    return 0


# ------------------------------------------------------------------ migrations
def db_connect(conf):
    import psycopg2
    import store_pg
    try:
        return store_pg.connect(conf)
    except psycopg2.Error as exc:
        # kong.md §3 exit 1 "error, e.g. DB unreachable"
        raise Quit("Error: [PostgreSQL error] failed to retrieve PostgreSQL "
                   "server_version_num: %s" % str(exc).strip().splitlines()[0]) from exc


def _print_groups(title, groups):
    out(title)
    width = max(len(g["subsystem"]) for g in groups)
    for g in groups:
        out("%s: %s" % (g["subsystem"].rjust(width), ", ".join(g["migrations"])))


def cmd_migrations(opts, pos):
    """kong.md §3 "**Migrations**: `bootstrap | up | finish | list | reset | status`"."""
    # pylint: disable=too-many-branches,too-many-return-statements,too-many-statements
    import migrations as M
    sub = pos[0] if pos else None
    if sub not in ("bootstrap", "up", "finish", "list", "reset", "status"):
        raise Quit("Error: unknown migrations command: %s" % sub)
    conf, _path = load_conf(opts)
    if conf["database"] == "off":
        raise Quit("Error: cannot run migrations when database = off")   # UNCONFIRMED text
    conn = db_connect(conf)
    quiet = opts.get("quiet")
    mig = M.Migrator(conn, V.VERSION, conf["pg_database"],
                     out=(lambda _m: None) if quiet else out)
    state = mig.state()
    lock_timeout = float(opts.get("lock_timeout", 60))

    def with_lock(work):
        if not mig.locked(lock_timeout):
            # kong.md §3 "Another node holding the lock gives "aborted: another node is
            # performing database changes". *DERIVED:* ... the exit code is 0"
            out("aborted: another node is performing database changes")
            return 0
        try:
            return work()
        finally:
            mig.unlock()

    if sub == "status":
        out(json.dumps(state, indent=2))
        return 0
    if sub == "list":
        if state.get("needs_bootstrap"):
            out("Database needs bootstrapping or is older than Kong 1.0")
            out("\nTo start a new installation from scratch, run 'kong migrations "
                "bootstrap'.")
            return 3
        if state.get("executed_migrations"):
            _print_groups("Executed migrations:", state["executed_migrations"])
        if state.get("pending_migrations"):
            _print_groups("\nPending migrations:", state["pending_migrations"])
        if state.get("new_migrations"):
            _print_groups("\nNew migrations available:", state["new_migrations"])
        # kong.md §3 table: 4 pending ("also when pending and new exist together"),
        # 5 new, 0 up to date
        if state.get("pending_migrations"):
            out("\nRun 'kong migrations finish' when ready")
            return 4
        if state.get("new_migrations"):
            out("\nRun 'kong migrations up' to proceed")
            return 5
        return 0
    if sub == "bootstrap":
        if opts.get("force"):
            # kong.md §3 "`--force` resets first"
            mig.reset()
            state = mig.state()
        if not state.get("needs_bootstrap"):
            # kong.md §3 "On an already bootstrapped DB prints "Database already
            # bootstrapped" and exits **0**"
            out("Database already bootstrapped")
            return 0

        def boot():
            if not mig.state().get("needs_bootstrap"):
                out("Database already bootstrapped")
                return 0
            out("Bootstrapping database...")
            n = mig.run_up(with_teardown=True)
            out("%d migrations processed\n%d executed" % (n, n))
            out("Database is up-to-date")
            return 0
        return with_lock(boot)
    if sub == "up":
        if state.get("needs_bootstrap"):
            raise Quit("Error: Cannot run migrations: database needs bootstrapping; "
                       "run 'kong migrations bootstrap'")
        if state.get("pending_migrations") and not opts.get("force"):
            # kong.md §3 "Errors "Database has pending migrations; run 'kong migrations
            # finish'" if pending migrations exist (unless `-f`)"
            raise Quit("Error: Database has pending migrations; run 'kong migrations "
                       "finish'")
        if not state.get("new_migrations"):
            # kong.md §3 ""Database is already up-to-date" exits 0"
            out("Database is already up-to-date")
            return 0

        def run():
            n = mig.run_up(with_teardown=False)
            if n == 0:
                out("Database is already up-to-date")
                return 0
            after = mig.state()
            pend = sum(len(g["migrations"]) for g in after.get("pending_migrations", []))
            out("%d migration%s processed\n%d executed" % (n, "" if n == 1 else "s",
                                                           n - pend))
            if pend:
                out("%d pending" % pend)
                out("Database has pending migrations; run 'kong migrations finish' when "
                    "ready")
            return 0
        return with_lock(run)
    if sub == "finish":
        if state.get("needs_bootstrap"):
            raise Quit("Error: Cannot run migrations: database needs bootstrapping; "
                       "run 'kong migrations bootstrap'")
        if not state.get("pending_migrations"):
            # kong.md §3 ""No pending migrations to finish" exits 0"
            out("No pending migrations to finish")
            return 0

        def fin():
            n = mig.run_finish()
            if n == 0:
                out("No pending migrations to finish")
                return 0
            out("%d migration%s processed\n%d executed" % (n, "" if n == 1 else "s", n))
            out("Database is up-to-date")
            return 0
        return with_lock(fin)
    # reset: kong.md §3 "without a tty it requires `--yes` ("not a tty" otherwise,
    # exit 1). Exits 1 with "nothing to reset" if already reset"
    if not opts.get("yes"):
        if not sys.stdin.isatty():
            raise Quit("Error: not a tty")
        answer = input("Are you sure? This operation is irreversible. [Y/n] ")
        if answer.strip().lower() not in ("y", "yes", ""):
            out("cancelled")
            return 0
    if state.get("needs_bootstrap") and not mig.has_meta():
        raise Quit("Error: nothing to reset")
    mig.reset()
    out("Database successfully reset")
    return 0


# ------------------------------------------------------------------ config
def cmd_config(opts, pos):
    """kong.md §3 "**Declarative config** (`kong config`)": init, db_import,
    db_export, parse."""
    # pylint: disable=too-many-return-statements
    import declarative as D
    sub = pos[0] if pos else None
    if sub == "init":
        path = pos[1] if len(pos) > 1 else "kong.yml"
        if os.path.exists(path):
            # kong.md §3 "`init [file]` writes `./kong.yml`; it refuses to overwrite"
            raise Quit("Error: %s already exists in the current directory.\nWill not "
                       "overwrite it." % path)
        with open(path, "w", encoding="utf-8") as fh:
            fh.write('# a very minimal declarative config file\n_format_version: "3.0"\n'
                     '_transform: true\n')
        out("Successfully written %s" % path)
        return 0
    if sub not in ("parse", "db_import", "db_export"):
        raise Quit("Error: unknown config command: %s" % sub)
    conf, _path = load_conf(opts)
    if sub == "db_export":
        if conf["database"] == "off":
            raise Quit("Error: 'kong config db_export' only works with a database.")
        path = pos[1] if len(pos) > 1 else "kong.yml"
        if os.path.exists(path) and not opts.get("yes"):
            raise Quit("Error: %s already exists. Will not overwrite it." % path)
        store = _pg_store(conf)
        with open(path, "w", encoding="utf-8") as fh:
            fh.write(D.dumps(D.export(store)))
        out("Successfully exported configuration to %s" % path)   # UNCONFIRMED text
        return 0
    if len(pos) < 2:
        raise Quit("Error: expected a declarative configuration file; see `kong config "
                   "--help`")
    path = pos[1]
    try:
        data = D.load_file(path)
        if sub == "parse":
            # kong.md §3 "`parse <file>` checks syntax and schema"
            D.parse(data, V.VERSION)
            out("parse successful")
            return 0
        if conf["database"] == "off":
            # kong.md §3 "`db_import <file>`: requires a DB and errors when
            # `database=off` ("reload … using the /config endpoint")"
            raise Quit("Error: 'kong config db_import' only works with a database.\n"
                       "When using database=off, reload your declarative configuration\n"
                       "using the /config endpoint.")
        D.parse(data, V.VERSION)
        out("parse successful, beginning import")
        from api import AdminAPI
        api = AdminAPI(store=_pg_store(conf), kong_version=V.VERSION)
        D.import_into(api, data)
        out("import successful")
        return 0
    except OSError as exc:
        raise Quit("Error: Failed reading file '%s': %s" % (path, exc)) from exc
    except D.DeclarativeError as exc:
        raise Quit("Error: Failed parsing:\n%s" % exc) from exc


def _pg_store(conf):
    import migrations as M
    import store_pg
    conn = db_connect(conf)
    if M.Migrator(conn, V.VERSION).state().get("needs_bootstrap"):
        raise Quit("Error: Database needs bootstrapping or is older than Kong 1.0.\n\n"
                   "To start a new installation from scratch, run 'kong migrations "
                   "bootstrap'.")
    return store_pg.PgStore(conf, conn=conn)


# ------------------------------------------------------------------ hybrid
def cmd_hybrid(opts, pos):
    """kong.md §3 "`kong hybrid gen_cert [cert key] [-d days]` writes `./cluster.crt`
    and `./cluster.key`. Key is EC secp384r1, self-signed, `CN=kong_clustering`,
    valid 1095 days (3 y). Files get chmod 644 and 600, and it refuses to overwrite."""
    if not pos or pos[0] != "gen_cert":
        raise Quit("Error: unknown hybrid command: %s" % (pos[0] if pos else ""))
    cert = pos[1] if len(pos) > 1 else "cluster.crt"
    key = pos[2] if len(pos) > 2 else "cluster.key"
    days = int(opts.get("days", 1095))
    for path in (cert, key):
        if os.path.exists(path):
            raise Quit("Error: %s already exists.\nWill not overwrite it." % path)
    proc = subprocess.run(
        ["openssl", "req", "-new", "-x509", "-nodes", "-newkey", "ec",
         "-pkeyopt", "ec_paramgen_curve:secp384r1", "-keyout", key, "-out", cert,
         "-days", str(days), "-subj", "/CN=kong_clustering"],
        capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise Quit("Error: could not generate certificate: %s" % proc.stderr.strip())
    os.chmod(cert, 0o644)
    os.chmod(key, 0o600)
    out("Successfully generated certificate/key pairs, they have been written to: "
        "'%s' and '%s'." % (cert, key))
    return 0


def cmd_vault(_opts, _pos):
    raise Quit("Error: 'kong vault' is not reproduced by the stand-in")


def cmd_roar(_opts, _pos):
    out("Kong, Monolith destroyer.")
    return 0


HANDLERS = {
    "start": cmd_start, "stop": cmd_stop, "quit": cmd_quit, "restart": cmd_restart,
    "reload": cmd_reload, "health": cmd_health, "check": cmd_check, "prepare": cmd_prepare,
    "migrations": cmd_migrations, "version": cmd_version, "config": cmd_config,
    "hybrid": cmd_hybrid, "vault": cmd_vault, "drain": cmd_drain, "roar": cmd_roar,
}

USAGE = """Usage: kong COMMAND [OPTIONS]

The available commands are:
 %s

Options:
 --v              verbose
 --vv             debug
""" % "\n ".join(COMMANDS)


def main(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    argv = [a for a in argv if a not in ("--v", "--vv")]
    if not argv or argv[0] in ("-h", "--help", "help"):
        sys.stdout.write(USAGE)
        return 0 if argv else 1
    cmd = argv[0]
    if cmd not in HANDLERS:
        sys.stderr.write("No such command: %s\n\n%s" % (cmd, USAGE))
        return 1
    try:
        opts, pos = parse(argv[1:])
        return HANDLERS[cmd](opts, pos)
    except Quit as exc:
        if exc.message:
            sys.stderr.write(exc.message.rstrip("\n") + "\n")
        return exc.code
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
