"""The long-running Kong node of the stand-in package (test double, NOT Kong).

Installed as ``/usr/local/openresty/nginx/sbin/nginx`` so that the real unit
(kong.md §1 "systemd unit") works unchanged:

    ExecStart=/usr/local/openresty/nginx/sbin/nginx -p /usr/local/kong -c nginx.conf
    ExecReload=/usr/local/openresty/nginx/sbin/nginx -p /usr/local/kong -c nginx.conf -s reload
    ExecStop=/bin/kill -s QUIT $MAINPID

It reads ``<prefix>/.kong_env`` written by ``kong prepare`` (kong.md §1
"`.kong_env` (resolved config of the running node)") and ``daemon on|off;`` from
``<prefix>/nginx.conf`` (the unit sets ``Environment=KONG_NGINX_DAEMON=off``,
which ``kong prepare`` renders into nginx.conf), writes ``pids/nginx.pid``
(kong.md §1 "`pids/nginx.pid`") and serves:

* the Admin API (api.py) on the plain-HTTP ``admin_listen`` entries;
* the Status API (kong.md §4 "Status API") on ``status_listen``;
* the proxy (proxy.py) on the plain-HTTP ``proxy_listen`` entries.

``ssl`` listeners are not opened (no TLS in the stand-in).
Signals as nginx: TERM/INT fast stop, QUIT graceful stop, HUP reload,
USR1 reopen logs (no-op).
"""

import json
import os
import re
import signal
import socket
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
if HERE not in sys.path:
    sys.path.insert(0, HERE)

import conf as C  # noqa: E402
import version as V  # noqa: E402

SIGNALS = {"stop": signal.SIGTERM, "quit": signal.SIGQUIT, "reload": signal.SIGHUP,
           "reopen": signal.SIGUSR1}


# nginx error_log levels, most verbose first; kong.md §2 "`log_level=notice`"
LEVELS = ("debug", "info", "notice", "warn", "error", "crit", "alert", "emerg")
LOG_LEVEL = ["notice"]      # set from log_level at start and on reload


def log(prefix, level, msg):
    line = "%s [%s] %d#0: %s\n" % (time.strftime("%Y/%m/%d %H:%M:%S"), level, os.getpid(), msg)
    current = LOG_LEVEL[0] if LOG_LEVEL[0] in LEVELS else "notice"
    if level in LEVELS and LEVELS.index(level) < LEVELS.index(current):
        return line
    try:
        os.makedirs(os.path.join(prefix, "logs"), exist_ok=True)
        with open(os.path.join(prefix, "logs", "error.log"), "a", encoding="utf-8") as fh:
            fh.write(line)
    except OSError:
        pass
    return line


def pid_path(prefix):
    return os.path.join(prefix, "pids", "nginx.pid")


def read_pid(prefix):
    try:
        with open(pid_path(prefix), encoding="ascii") as fh:
            return int(fh.read().strip())
    except (OSError, ValueError):
        return None


def pid_alive(pid):
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:   # a zombie is not running
        with open("/proc/%d/stat" % pid, encoding="ascii") as fh:
            return fh.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return True


def parse_args(argv):
    prefix, conf_file, sig = None, "conf/nginx.conf", None
    i = 0
    while i < len(argv):
        arg = argv[i]
        if arg == "-p":
            prefix = argv[i + 1]
            i += 2
        elif arg == "-c":
            conf_file = argv[i + 1]
            i += 2
        elif arg == "-s":
            sig = argv[i + 1]
            i += 2
        elif arg == "-V" or arg == "-v":
            print("nginx version: openresty/1.25.3.2 (kong stand-in %s)" % V.VERSION,
                  file=sys.stderr)
            sys.exit(0)
        else:
            i += 1
    return prefix or "/usr/local/kong/", conf_file, sig


def signal_master(prefix, sig):
    path = pid_path(prefix)
    pid = read_pid(prefix)
    if pid is None:
        sys.stderr.write('nginx: [error] open() "%s" failed (2: No such file or directory)\n'
                         % path)
        return 1
    try:
        os.kill(pid, SIGNALS[sig])
    except ProcessLookupError:
        sys.stderr.write('nginx: [error] kill(%d, %d) failed (3: No such process)\n'
                         % (pid, SIGNALS[sig]))
        return 1
    return 0


class Node:
    """State shared by the listeners of one node."""

    def __init__(self, prefix, conf):
        self.prefix = prefix
        self.conf = conf
        self.version = V.VERSION
        self.draining = False
        self.requests = 0
        self.connections = 0
        self.counter_lock = threading.Lock()
        self.stopping = threading.Event()
        self.graceful = False
        self.servers = []
        self.listeners = {}       # (kind, host, port) -> server (reload diffs these)
        self.reload_lock = threading.Lock()
        self.store = None
        self.api = None
        self.config_loaded = False
        self.config_hash = None
        self.cluster = None       # clustering.ControlPlane / DataPlane in hybrid mode
        self.proxy_metrics = {}
        self.inflight = 0
        self.conns = set()        # open client connections (admin_api.Handler)
        self.idle = threading.Condition(self.counter_lock)

    def log(self, level, msg):
        log(self.prefix, level, msg)

    def request_started(self):
        with self.counter_lock:
            self.inflight += 1

    def request_finished(self):
        with self.counter_lock:
            self.inflight -= 1
            if self.inflight <= 0:
                self.idle.notify_all()

    def connection_opened(self, handler):
        with self.counter_lock:
            self.conns.add(handler)

    def connection_closed(self, handler):
        with self.counter_lock:
            self.conns.discard(handler)

    def close_idle_connections(self):
        """Graceful stop: nginx closes idle keep-alive connections at once."""
        with self.counter_lock:
            idle = [h for h in self.conns if not h.busy]
        for handler in idle:
            try:
                handler.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def wait_idle(self, timeout):
        """Graceful stop: wait until no request is being served."""
        deadline = time.time() + timeout
        with self.counter_lock:
            while self.inflight > 0 and time.time() < deadline:
                self.idle.wait(max(0.01, deadline - time.time()))
            return self.inflight <= 0

    def count(self):
        with self.counter_lock:
            self.requests += 1

    # ------------------------------------------------------------- store
    def open_store(self):
        """DB mode: PostgreSQL + migration state check; DB-less: memory store
        loaded from ``declarative_config``."""
        if self.conf["database"] == "off":
            from store import MemoryStore
            self.store = MemoryStore()
            return
        import psycopg2
        import migrations as M
        import store_pg
        try:
            conn = store_pg.connect(self.conf)
        except psycopg2.Error as exc:
            raise RuntimeError("[PostgreSQL error] failed to retrieve PostgreSQL "
                               "server_version_num: %s" % str(exc).strip()) from exc
        state = M.Migrator(conn, self.version, self.conf["pg_database"]).state()
        # kong.md §1 "nginx's init phase runs `migrations_utils.check_state()`, so
        # startup fails if the DB needs bootstrap or has *new* (not yet run)
        # migrations. *Pending* migrations ... only log warnings."
        if state.get("needs_bootstrap"):
            raise RuntimeError("Database needs bootstrapping or is older than Kong 1.0.\n\n"
                               "To start a new installation from scratch, run "
                               "'kong migrations bootstrap'.")
        if state.get("new_migrations"):
            raise RuntimeError("New migrations available; run 'kong migrations up' to proceed")
        if state.get("pending_migrations"):
            log(self.prefix, "warn", "Database has pending migrations; run "
                                     "'kong migrations finish' when ready")
        self.store = store_pg.PgStore(self.conf, conn=conn)

    def load_declarative(self):
        """kong.md §2 "`declarative_config=` (NONE; a file path used when
        `database=off`), `declarative_config_string=`": loaded at start and on
        reload (then cached in dbless.lmdb, see dbless.py).  Returns True when
        a config was loaded."""
        path = self.conf.get("declarative_config")
        text = self.conf.get("declarative_config_string")
        if self.conf["database"] != "off" or not (path or text):
            return False
        import declarative as D
        import dbless
        data = D.load_file(path) if path else D.loads(text)
        dbless.apply(self, data)
        return True

    def load_initial_config(self):
        """DB-less start.  Traditional: `declarative_config` when set, else the
        cache of a previous `POST /config` (reuse of the cache by a traditional
        node is UNCONFIRMED).  Data plane: kong.md §7 "the DP keeps serving its
        cached config (`<prefix>/dbless.lmdb`) ... after restarts" and
        "`declarative_config` on a DP is used as a fallback when no cache
        exists"."""
        if self.conf["database"] != "off":
            return
        import dbless
        if self.conf.get("role") != "data_plane" and self.load_declarative():
            return
        data, _digest = dbless.read_cache(self.prefix, self.conf)
        if data is not None:
            try:
                dbless.apply(self, data, persist=False)
                self.log("notice", "loaded the cached declarative config from %s"
                         % dbless.cache_path(self.prefix, self.conf))
                return
            except Exception as exc:  # pylint: disable=broad-except
                self.log("error", "ignoring the config cache: %s" % exc)
        if self.conf.get("role") == "data_plane":
            self.load_declarative()

    def db_reachable(self):
        ping = getattr(self.store, "ping", None)
        return True if ping is None else ping()


def listener_specs(conf, role):
    """(kind, host, port) of the plain-HTTP listeners the node serves."""
    specs = []
    # UNCONFIRMED (from memory of kong/templates/nginx_kong.lua: the Admin API
    # server block is rendered only for role traditional or control_plane):
    # a data plane serves no Admin API
    if role != "data_plane":
        specs += [("admin", e["host"], e["port"]) for e in C.parse_listen(
            conf.get("admin_listen")) if not e["ssl"]]
    if conf.get("status_listen"):
        specs += [("status", e["host"], e["port"]) for e in C.parse_listen(
            conf["status_listen"]) if not e["ssl"]]
    if role != "control_plane":
        specs += [("proxy", e["host"], e["port"]) for e in C.parse_listen(
            conf.get("proxy_listen")) if not e["ssl"]]
    return specs


def open_listener(node, spec):
    import admin_api
    import proxy
    import status_api
    kind, host, port = spec
    if kind == "admin":
        return admin_api.make_server(host, port, node.version, api=node.api, node=node)
    if kind == "status":
        return status_api.make_server(host, port, node)
    return proxy.make_server(host, port, node)


def reload(node, role):
    """HUP (`nginx -s reload`, `kong reload`): re-read ``<prefix>/.kong_env``
    (rewritten by `kong prepare`) and apply what the stand-in can: log_level,
    plugins (read per request), headers and other per-request settings,
    declarative_config (DB-less traditional nodes; an invalid file keeps the old
    config), and added/removed plain-HTTP admin/status/proxy listeners (nginx
    opens/closes listening sockets on reload).  Not re-applied: role, database,
    pg_*, cluster_* (need a restart in the stand-in)."""
    prefix = node.prefix
    with node.reload_lock:
        try:
            new = C.read_env_file(prefix)
            keep = {k: node.conf.get(k) for k in ("role", "database", "prefix")}
            new.update(keep)
            for key in [k for k in node.conf if k not in new]:
                del node.conf[key]
            node.conf.update(new)     # same dict object as the Admin API's conf
            log(prefix, "notice", "signal 1 (SIGHUP) received, reconfiguring")
            LOG_LEVEL[0] = node.conf.get("log_level") or "notice"
            wanted = listener_specs(node.conf, role)
            for spec in [s for s in node.listeners if s not in wanted]:
                server = node.listeners.pop(spec)
                node.servers = [(k, s) for k, s in node.servers if s is not server]
                server.shutdown()
                server.server_close()
                log(prefix, "notice", "closed %s listener %s:%d" % spec)
            for spec in [s for s in wanted if s not in node.listeners]:
                try:
                    server = open_listener(node, spec)
                except OSError as exc:
                    log(prefix, "emerg", "bind() to %s:%d failed (%s)" % (spec[1], spec[2], exc))
                    continue
                node.listeners[spec] = server
                node.servers.append((spec[0], server))
                threading.Thread(target=server.serve_forever, args=(0.1,), daemon=True).start()
                log(prefix, "notice", "opened %s listener %s:%d" % spec)
            if role != "data_plane":
                node.load_declarative()
        except Exception as exc:  # pylint: disable=broad-except
            log(prefix, "error", "reload failed: %s" % exc)


def _nginx_daemon(prefix, conf_file):
    path = conf_file if os.path.isabs(conf_file) else os.path.join(prefix, conf_file)
    try:
        with open(path, encoding="utf-8") as fh:
            text = fh.read()
    except OSError:
        sys.stderr.write('nginx: [emerg] open() "%s" failed (2: No such file or directory)\n'
                         % path)
        sys.exit(1)
    m = re.search(r"^\s*daemon\s+(on|off)\s*;", text, re.M)
    return not m or m.group(1) == "on"


def main(argv=None):
    # pylint: disable=too-many-locals,too-many-statements
    argv = sys.argv[1:] if argv is None else argv
    prefix, conf_file, sig = parse_args(argv)
    if sig:
        if sig not in SIGNALS:
            sys.stderr.write('nginx: [error] invalid option: "-s %s"\n' % sig)
            return 1
        return signal_master(prefix, sig)
    daemon = _nginx_daemon(prefix, conf_file)
    try:
        conf = C.read_env_file(prefix)
    except OSError:
        sys.stderr.write("nginx: [emerg] %s/.kong_env not found: run 'kong prepare'\n" % prefix)
        return 1

    from api import AdminAPI

    node = Node(prefix, conf)
    try:
        node.open_store()
        node.api = AdminAPI(store=node.store, kong_version=node.version, conf=conf, node=node)
        role = conf.get("role") or "traditional"
        if role in ("control_plane", "data_plane"):
            import clustering
            node.api.node_id = clustering.node_id(prefix)
            # kong.md §7: both roles need cluster_cert / cluster_cert_key
            node.cluster = (clustering.ControlPlane if role == "control_plane"
                            else clustering.DataPlane)(node)
        node.load_initial_config()
    except Exception as exc:  # pylint: disable=broad-except
        line = log(prefix, "error", "init_by_lua error: %s" % exc)
        sys.stderr.write("nginx: [error] " + line.split("] ", 1)[-1])
        return 1

    # bind before daemonising, as nginx does, so port conflicts fail the start
    LOG_LEVEL[0] = conf.get("log_level") or "notice"
    try:
        for spec in listener_specs(conf, role):
            node.listeners[spec] = open_listener(node, spec)
            node.servers.append((spec[0], node.listeners[spec]))
        if role == "control_plane":
            # kong.md §7 "8005 = `cluster_listen` (CP, mTLS)"
            node.servers.extend(("cluster", s) for s in node.cluster.make_servers())
    except OSError as exc:
        line = log(prefix, "emerg", "bind() failed (%s)" % exc)
        sys.stderr.write("nginx: [emerg] " + line.split("] ", 1)[-1])
        return 1

    if daemon:
        sys.stdout.flush()
        sys.stderr.flush()
        if os.fork() > 0:
            # _exit: a normal exit would close the child's PostgreSQL session
            # (libpq sends Terminate on the shared socket)
            os._exit(0)  # pylint: disable=protected-access
        os.setsid()
        if os.fork() > 0:
            os._exit(0)  # pylint: disable=protected-access
        devnull = os.open(os.devnull, os.O_RDWR)
        for fd in (0, 1, 2):
            os.dup2(devnull, fd)

    os.makedirs(os.path.join(prefix, "pids"), exist_ok=True)
    with open(pid_path(prefix), "w", encoding="ascii") as fh:
        fh.write("%d\n" % os.getpid())

    def on_stop(signum, _frame):
        node.graceful = signum == signal.SIGQUIT
        node.stopping.set()

    def on_reload(_signum, _frame):
        threading.Thread(target=reload, args=(node, role), daemon=True).start()

    signal.signal(signal.SIGTERM, on_stop)
    signal.signal(signal.SIGINT, on_stop)
    signal.signal(signal.SIGQUIT, on_stop)
    signal.signal(signal.SIGHUP, on_reload)
    signal.signal(signal.SIGUSR1, lambda *_: None)

    for _kind, server in node.servers:
        threading.Thread(target=server.serve_forever, args=(0.1,), daemon=True).start()
    if role == "data_plane":
        node.cluster.start()      # after daemonising: threads do not survive fork()
    log(prefix, "notice", "kong stand-in %s started: %s" % (node.version, json.dumps(
        ["%s %s:%d" % (k, *s.server_address[:2]) for k, s in node.servers])))
    while not node.stopping.wait(0.5):
        pass
    with node.reload_lock:
        servers = [server for _kind, server in node.servers]
    stoppers = [threading.Thread(target=server.shutdown) for server in servers]
    for thread in stoppers:      # stop accepting (in parallel: each waits a poll)
        thread.start()
    for thread in stoppers:
        thread.join()
    for server in servers:
        server.server_close()     # close the listening sockets
    if node.graceful:
        node.close_idle_connections()
        # nginx QUIT: stop listening, finish the requests being served, exit.
        # Bounded by nginx_main_worker_shutdown_timeout when set (else 10 s in
        # the stand-in; nginx waits without limit by default).
        timeout = float(re.sub(r"[^0-9.]", "", str(conf.get(
            "nginx_main_worker_shutdown_timeout") or "10")) or 10)
        if not node.wait_idle(timeout):
            log(prefix, "warn", "graceful stop: %d request(s) still running after %ss"
                % (node.inflight, timeout))
    try:
        if read_pid(prefix) == os.getpid():
            os.unlink(pid_path(prefix))
    except OSError:
        pass
    log(prefix, "notice", "exiting (%s)" % ("graceful" if node.graceful else "fast"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
