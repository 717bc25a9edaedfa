"""Helpers for the Kuma runtime stand-in tests (tests/standins/kuma: kuma_cp.py, kuma_dp.py, tools.py)."""

import json
import os
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.request

STANDIN = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", "standins", "kuma"))
# The tarball's zipapps run on Debian's interpreter (/usr/bin/python3 with python3-yaml), so do the sources here.
PYTHON = "/usr/bin/python3" if os.path.exists("/usr/bin/python3") else "python3"


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def clean_env(extra=None):
    env = {k: v for k, v in os.environ.items() if not k.startswith("KUMA_")}
    env.update(extra or {})
    return env


def http(method, url, body=None, timeout=5, headers=None):
    data = None if body is None else (body if isinstance(body, bytes) else json.dumps(body).encode())
    all_headers = dict({"Content-Type": "application/json"}, **(headers or {}))
    request = urllib.request.Request(url, data=data, method=method, headers=all_headers)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def wait_for(check, timeout=15.0, interval=0.1):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            last = check()
            if last:
                return last
        except (OSError, urllib.error.URLError) as exc:
            last = exc
        time.sleep(interval)
    raise AssertionError("timed out waiting; last result %r" % (last,))


class ControlPlane:
    """A `kuma-cp run` process on free loopback ports."""

    def __init__(self, tmp_path, env=None, cmd=None):
        self.ports = {"api": free_port(), "diag": free_port(), "dp": free_port(), "mads": free_port()}
        self.work = str(tmp_path / "cp-work")
        self.env = clean_env({"KUMA_GENERAL_WORK_DIR": self.work,
                              "KUMA_API_SERVER_HTTP_INTERFACE": "127.0.0.1",
                              "KUMA_API_SERVER_HTTP_PORT": str(self.ports["api"]),
                              "KUMA_DIAGNOSTICS_SERVER_PORT": str(self.ports["diag"]),
                              "KUMA_DP_SERVER_PORT": str(self.ports["dp"]),
                              "KUMA_MONITORING_ASSIGNMENT_SERVER_PORT": str(self.ports["mads"])})
        self.env.update(env or {})
        self.cmd = cmd or [PYTHON, os.path.join(STANDIN, "kuma_cp.py")]
        self.log = open(str(tmp_path / "cp.log"), "w+", encoding="utf-8")  # pylint: disable=consider-using-with
        self.proc = None

    def start(self, wait=True):
        self.proc = subprocess.Popen(self.cmd + ["run"], env=self.env, stdout=self.log,  # pylint: disable=consider-using-with
                                     stderr=subprocess.STDOUT)
        if wait:
            wait_for(lambda: self.proc.poll() is not None or http("GET", self.diag + "/ready")[0] == 200)
            assert self.proc.poll() is None, self.output()
        return self

    def output(self):
        if not self.log.closed:
            self.log.flush()
        with open(self.log.name, encoding="utf-8") as handle:
            return handle.read()

    @property
    def api(self):
        return "http://127.0.0.1:%d" % self.ports["api"]

    @property
    def diag(self):
        return "http://127.0.0.1:%d" % self.ports["diag"]

    @property
    def mads(self):
        return "http://127.0.0.1:%d/v3/discovery:monitoringassignments" % self.ports["mads"]

    @property
    def dp_url(self):
        return "https://127.0.0.1:%d" % self.ports["dp"]

    @property
    def ca_file(self):
        return os.path.join(self.work, "kuma-cp.crt")

    def token(self, name="", mesh="default", tags=None):
        status, text = http("POST", self.api + "/tokens/dataplane",
                            {"name": name, "mesh": mesh, "tags": tags or {}})
        assert status == 200, text
        return text

    def put(self, path, body):
        status, text = http("PUT", self.api + path, body)
        assert status in (200, 201), text

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()


def envoy_wrapper(tmp_path, version=None):
    """An `envoy` executable for kuma-dp: the tools.py stand-in (or a fake printing another version)."""
    path = tmp_path / "envoy-bin" / "envoy"
    path.parent.mkdir(exist_ok=True)
    if version:
        path.write_text("#!/bin/sh\necho 'envoy  version: abc123/%s/Clean/RELEASE/BoringSSL'\n" % version)
    else:
        path.write_text("#!/bin/sh\nexec %s -c 'import sys; sys.path.insert(0, \"%s\"); import tools; "
                        "sys.exit(tools.envoy_main())' \"$@\"\n" % (PYTHON, STANDIN))
    path.chmod(0o755)
    return str(path)


class Dataplane:
    """A `kuma-dp run` process."""

    def __init__(self, tmp_path, cp, name, dataplane, token, extra=(), env=None, envoy=None, cmd=None):
        self.readiness = free_port()
        self.dir = tmp_path / ("dp-" + name)
        self.dir.mkdir(exist_ok=True)
        (self.dir / "dp.yaml").write_text(dataplane)
        (self.dir / "token").write_text(token)
        self.env = clean_env({"KUMA_READINESS_PORT": str(self.readiness),
                              "KUMA_CONTROL_PLANE_RETRY_BACKOFF": "200ms",
                              "KUMA_CONTROL_PLANE_RETRY_MAX_DURATION": "5s"})
        self.env.update(env or {})
        self.args = (cmd or [PYTHON, os.path.join(STANDIN, "kuma_dp.py")]) + [
            "run", "--cp-address", cp.dp_url, "--ca-cert-file", cp.ca_file,
            "--dataplane-token-file", str(self.dir / "token"), "--dataplane-file", str(self.dir / "dp.yaml"),
            "--binary-path", envoy or envoy_wrapper(tmp_path)] + list(extra)
        self.log = open(str(self.dir / "dp.log"), "w+", encoding="utf-8")  # pylint: disable=consider-using-with
        self.proc = subprocess.Popen(self.args, env=self.env, stdout=self.log,  # pylint: disable=consider-using-with
                                     stderr=subprocess.STDOUT)

    def ready(self):
        return http("GET", "http://127.0.0.1:%d/ready" % self.readiness, timeout=1)

    def wait_ready(self):
        wait_for(lambda: self.proc.poll() is not None or self.ready()[0] == 200)
        assert self.proc.poll() is None, self.output()

    def output(self):
        if not self.log.closed:
            self.log.flush()
        with open(self.log.name, encoding="utf-8") as handle:
            return handle.read()

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()


class EchoServer:
    """A tiny HTTP service answering "<name> <path>" on 127.0.0.1:<free port>."""

    def __init__(self, name):
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer  # pylint: disable=import-outside-toplevel

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format, *args):  # pylint: disable=redefined-builtin
                return

            def do_GET(self):  # pylint: disable=invalid-name
                body = ("%s %s" % (name, self.path)).encode()
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def dataplane_yaml(name, address="127.0.0.1", inbound=None, outbound=None, gateway=None, mesh="default"):
    lines = ["type: Dataplane", "mesh: %s" % mesh, "name: %s" % name, "networking:", "  address: %s" % address]
    if gateway:
        lines += ["  gateway:", "    type: DELEGATED", "    tags:", "      kuma.io/service: %s" % gateway]
    if inbound:
        lines.append("  inbound:")
        for port, service_port, service, protocol in inbound:
            lines += ["    - port: %d" % port, "      servicePort: %d" % service_port, "      tags:",
                      "        kuma.io/service: %s" % service, "        kuma.io/protocol: %s" % protocol]
    if outbound:
        lines.append("  outbound:")
        for port, service in outbound:
            lines += ["    - port: %d" % port, "      tags:", "        kuma.io/service: %s" % service]
    return "\n".join(lines) + "\n"


def get_via(port, path="/", timeout=3):
    return http("GET", "http://127.0.0.1:%d%s" % (port, path), timeout=timeout)
