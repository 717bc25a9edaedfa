"""Reload (HUP) and graceful stop (QUIT) of the stand-in node (node.py)."""

import http.client
import os
import signal
import subprocess
import threading
import time

from .kong_helpers import (PYTHON, STANDIN, Echo, free_port, kong, listen_keys, node_ports,
                           request, wait_for, write_conf)

DECL = """\
_format_version: "3.0"
services:
  - name: svc
    url: %s
    routes:
      - name: %s
        paths: [/%s]
        plugins:
          - name: key-auth
consumers:
  - username: alice
    keyauth_credentials: [{key: ka}]
"""


def error_log(prefix):
    with open(os.path.join(prefix, "logs", "error.log"), encoding="utf-8") as fh:
        return fh.read()


def test_reload_rereads_kong_env(tmp_path):
    """kong.md §3 "`kong reload [-c] [-p] [--nginx-conf]`: re-prepares the prefix and
    sends HUP"; kong.md §1 "`.kong_env` (resolved config of the running node)": after
    the reload the node serves the new `declarative_config`, the new `plugins` list
    (kong.md §2 "`plugins=bundled` ... Loading a plugin does not enable it"), the new
    `proxy_listen` (old port closed) and `log_level`; same pid."""
    backend = Echo()
    ports = node_ports()
    decl_a, decl_b = tmp_path / "a.yml", tmp_path / "b.yml"
    decl_a.write_text(DECL % (backend.url, "ra", "a"))
    decl_b.write_text(DECL % (backend.url, "rb", "b"))
    keys = dict(listen_keys(ports), database="off", declarative_config=str(decl_a))
    conf = write_conf(tmp_path / "kong.conf", **keys)
    prefix = str(tmp_path / "prefix")
    assert kong("start", "-c", conf, "-p", prefix).returncode == 0
    try:
        pid = open(os.path.join(prefix, "pids", "nginx.pid"), encoding="ascii").read()
        proxy = "http://127.0.0.1:%d" % ports["proxy"]
        assert request("GET", proxy + "/a")[0] == 401
        assert request("GET", proxy + "/a", {"apikey": "ka"})[0] == 200
        new_proxy = free_port()
        write_conf(tmp_path / "kong.conf", **{
            **keys, "declarative_config": str(decl_b), "plugins": "prometheus", "log_level": "error",
            "proxy_listen": "127.0.0.1:%d" % new_proxy})
        proc = kong("reload", "-c", conf, "-p", prefix)
        assert proc.returncode == 0, proc.stderr
        proxy2 = "http://127.0.0.1:%d" % new_proxy
        assert wait_for(lambda: _get(proxy2 + "/b") == 200, 10), error_log(prefix)
        assert request("GET", proxy2 + "/a")[0] == 404
        assert not wait_for(lambda: _get(proxy + "/b") is not None, 0.5)   # old port closed
        assert open(os.path.join(prefix, "pids", "nginx.pid"), encoding="ascii").read() == pid
        assert "signal 1 (SIGHUP) received" in error_log(prefix)
        # log_level=error: a further reload's notice is not written
        time.sleep(0.3)
        before = error_log(prefix).count("signal 1 (SIGHUP)")
        assert kong("reload", "-c", conf, "-p", prefix).returncode == 0
        time.sleep(0.5)
        assert error_log(prefix).count("signal 1 (SIGHUP)") == before
        # an invalid declarative file keeps the running config
        decl_b.write_text("_format_version: '3.0'\nservices: [{name: x}]\n")
        assert kong("reload", "-c", conf, "-p", prefix).returncode == 0
        assert wait_for(lambda: "reload failed" in error_log(prefix), 5)
        assert request("GET", proxy2 + "/b")[0] == 200
    finally:
        kong("stop", "-p", prefix)
        backend.close()


def _get(url):
    try:
        return request("GET", url, timeout=2)[0]
    except OSError:
        return None


def test_quit_finishes_in_flight_requests(tmp_path):
    """kong.md §1 unit "ExecStop=/bin/kill -s QUIT $MAINPID"; kong.md §3 "`kong quit`:
    SIGQUIT (graceful)": requests being proxied when QUIT arrives complete with their
    upstream answer; the listeners close at once; the process then exits 0."""
    backend = Echo(delay=1.5)
    ports = node_ports()
    decl = tmp_path / "kong.yml"
    decl.write_text("""\
_format_version: "3.0"
services:
  - {name: slow, url: "%s", routes: [{name: r, paths: [/slow]}]}
""" % backend.url)
    conf = write_conf(tmp_path / "kong.conf", database="off", declarative_config=str(decl),
                      **listen_keys(ports))
    prefix = str(tmp_path / "prefix")
    env = {"KONG_NGINX_DAEMON": "off"}
    assert kong("prepare", "-c", conf, "-p", prefix, env=env).returncode == 0
    main = subprocess.Popen([PYTHON, os.path.join(STANDIN, "node.py"), "-p", prefix,
                             "-c", "nginx.conf"])
    results = []
    try:
        assert wait_for(lambda: _get("http://127.0.0.1:%d/status/ready"
                                     % ports["status"]) == 200, 10)
        url = "http://127.0.0.1:%d/slow" % ports["proxy"]
        # an idle keep-alive client connection (nginx closes those on QUIT)
        idle = http.client.HTTPConnection("127.0.0.1", ports["status"], timeout=5)
        idle.request("GET", "/status")
        assert idle.getresponse().read()
        threads = [threading.Thread(target=lambda: results.append(request("GET", url)[0]))
                   for _i in range(5)]
        for thread in threads:
            thread.start()
        assert wait_for(lambda: len(backend.requests) == 5, 5)
        os.kill(main.pid, signal.SIGQUIT)
        time.sleep(0.3)
        assert _get(url) is None                      # no longer accepting
        assert main.poll() is None                    # still finishing
        assert idle.sock.recv(1) == b""               # idle keep-alive closed at once
        for thread in threads:
            thread.join(10)
        assert results == [200] * 5
        assert main.wait(10) == 0
        assert "exiting (graceful)" in open(os.path.join(prefix, "logs", "error.log"),
                                            encoding="utf-8").read()
    finally:
        if main.poll() is None:
            main.kill()
        backend.close()


def test_term_is_fast(tmp_path):
    """kong.md §3 "`kong stop [-p]`: SIGTERM" (fast stop: does not wait for
    in-flight requests)."""
    backend = Echo(delay=5)
    ports = node_ports()
    decl = tmp_path / "kong.yml"
    decl.write_text("""\
_format_version: "3.0"
services:
  - {name: slow, url: "%s", routes: [{name: r, paths: [/slow]}]}
""" % backend.url)
    conf = write_conf(tmp_path / "kong.conf", database="off", declarative_config=str(decl),
                      **listen_keys(ports))
    prefix = str(tmp_path / "prefix")
    assert kong("start", "-c", conf, "-p", prefix).returncode == 0
    url = "http://127.0.0.1:%d/slow" % ports["proxy"]
    thread = threading.Thread(target=lambda: _get(url), daemon=True)
    thread.start()
    assert wait_for(lambda: len(backend.requests) == 1, 5)
    started = time.time()
    assert kong("stop", "-p", prefix).returncode == 0
    assert time.time() - started < 4
    backend.close()
