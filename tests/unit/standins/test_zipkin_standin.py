"""The Zipkin stand-in exec jar (tests/standins/zipkin): built with the machine's JDK, run with `java -jar`."""

import hashlib
import json
import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request

import pytest

STANDIN = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", "standins", "zipkin"))
VERSION = "3.6.1"

pytestmark = pytest.mark.skipif(
    not (shutil.which("javac") and shutil.which("jar") and shutil.which("java")),
    reason="no JDK (javac/jar/java): scripts/host-setup installs openjdk-17-jdk-headless")


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def http(method, url, body=None, timeout=5):
    data = None if body is None else (body if isinstance(body, bytes) else json.dumps(body).encode())
    request = urllib.request.Request(url, data=data, method=method, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, response.read().decode(), response.headers
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode(), exc.headers


@pytest.fixture(scope="module")
def jar(tmp_path_factory):
    out = tmp_path_factory.mktemp("mirror")
    subprocess.run([os.path.join(STANDIN, "build-jar"), str(out), VERSION], check=True, capture_output=True, timeout=120)
    return out / "zipkin" / VERSION / ("zipkin-server-%s-exec.jar" % VERSION)


def start(jar, env=None):
    port = free_port()
    proc_env = {k: v for k, v in os.environ.items() if k not in ("STORAGE_TYPE", "MEM_MAX_SPANS", "QUERY_PORT")}
    proc_env.update({"QUERY_PORT": str(port)}, **(env or {}))
    proc = subprocess.Popen(["java", "-jar", str(jar)], env=proc_env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True)
    base = "http://127.0.0.1:%d" % port
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        try:
            if http("GET", base + "/health")[0] == 200:
                return proc, base
        except OSError:
            pass
        if proc.poll() is not None:
            raise AssertionError("stand-in exited: " + proc.stdout.read())
        time.sleep(0.1)
    proc.kill()
    raise AssertionError("stand-in did not answer /health")


@pytest.fixture(scope="module")
def server(jar):
    proc, base = start(jar)
    yield base
    proc.send_signal(signal.SIGTERM)
    out = proc.communicate(timeout=10)[0]
    assert "stopped" in out


def span(trace_id, span_id, service, name, parent=None, remote=None, age_s=0):
    s = {"traceId": trace_id, "id": span_id, "name": name, "kind": "SERVER",
         "timestamp": int((time.time() - age_s) * 1_000_000), "duration": 1500,
         "localEndpoint": {"serviceName": service, "ipv4": "127.0.0.1"}, "tags": {"http.method": "GET"}}
    if parent:
        s["parentId"] = parent
    if remote:
        s["remoteEndpoint"] = {"serviceName": remote}
    return s


def test_build_layout_and_checksum(jar):
    assert jar.is_file()
    line = (jar.parent / (jar.name + ".sha256")).read_text().split()
    assert line[1] == jar.name
    assert line[0] == hashlib.sha256(jar.read_bytes()).hexdigest()


def test_health_info_and_prometheus(server):
    status, body, headers = http("GET", server + "/health")
    assert status == 200 and headers["Content-Type"].startswith("application/json")
    assert json.loads(body) == {"status": "UP", "zipkin": {"status": "UP", "details": {"InMemoryStorage{}": {"status": "UP"}}}}
    assert json.loads(http("GET", server + "/info")[1])["zipkin"]["version"] == VERSION
    assert http("GET", server + "/actuator/prometheus")[0] == 200
    assert "zipkin_collector_spans_total{transport=\"http\",}" in http("GET", server + "/prometheus")[1]


def test_post_and_query(server):
    spans = [span("86154a4ba6e91385", "86154a4ba6e91385", "Kong", "GET /orders"),
             span("86154a4ba6e91385", "4d1e00c0db9010db", "orders", "get /orders", parent="86154a4ba6e91385",
                  remote="postgres")]
    assert http("POST", server + "/api/v2/spans", spans)[0] == 202
    old = [span("0000000000000abc", "0000000000000abc", "kong", "get /old", age_s=3 * 86400)]
    assert http("POST", server + "/api/v2/spans", old)[0] == 202

    services = json.loads(http("GET", server + "/api/v2/services")[1])
    assert {"kong", "orders"} <= set(services)
    assert json.loads(http("GET", server + "/api/v2/spans?serviceName=kong")[1]) == ["get /old", "get /orders"]
    assert json.loads(http("GET", server + "/api/v2/remoteServices?serviceName=orders")[1]) == ["postgres"]

    traces = json.loads(http("GET", server + "/api/v2/traces?serviceName=kong&limit=10")[1])
    assert [t[0]["traceId"] for t in traces] == ["86154a4ba6e91385"]  # the 3-day-old trace is outside the 24 h lookback
    assert len(traces[0]) == 2
    assert json.loads(http("GET", server + "/api/v2/traces?serviceName=nobody")[1]) == []

    status, body = http("GET", server + "/api/v2/trace/86154A4BA6E91385")[:2]
    assert status == 200 and {s["id"] for s in json.loads(body)} == {"86154a4ba6e91385", "4d1e00c0db9010db"}
    status, body = http("GET", server + "/api/v2/trace/ffffffffffffffff")[:2]
    assert status == 404 and body == "ffffffffffffffff not found"
    assert "zipkin_collector_spans_total{transport=\"http\",} 3.0" in http("GET", server + "/prometheus")[1]


def test_bad_body_is_400(server):
    assert http("POST", server + "/api/v2/spans", {"not": "a list"})[0] == 400
    assert http("POST", server + "/api/v2/spans", [{"id": "1"}])[0] == 400


def test_mem_max_spans_evicts_oldest_traces(jar):
    proc, base = start(jar, {"MEM_MAX_SPANS": "2"})
    try:
        for i in (1, 2, 3):
            assert http("POST", base + "/api/v2/spans", [span("%016x" % i, "%016x" % i, "svc", "op")])[0] == 202
        assert http("GET", base + "/api/v2/trace/%016x" % 1)[0] == 404
        assert http("GET", base + "/api/v2/trace/%016x" % 3)[0] == 200
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=10)


def test_unsupported_storage_type_fails_at_start(jar):
    env = dict(os.environ, STORAGE_TYPE="elasticsearch", QUERY_PORT=str(free_port()))
    result = subprocess.run(["java", "-jar", str(jar)], env=env, capture_output=True, text=True, timeout=30, check=False)
    assert result.returncode == 1
    assert "STORAGE_TYPE=elasticsearch is not implemented by the stand-in" in result.stderr
