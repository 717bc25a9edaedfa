"""The zipkin scenario as a user sees it: spans sent to Zipkin can be found again, the server runs as the
role configured it, and the port is open to the declared network. Zipkin here is the stand-in jar
(tests/standins/zipkin, NOT Zipkin)."""

import json
import os
import subprocess
import time

import pytest
import testinfra

HOSTS = ["zipkin-debian12", "zipkin-debian13"]
JAVA_PACKAGE = {"zipkin-debian12": "openjdk-17-jre-headless", "zipkin-debian13": "openjdk-21-jre-headless"}


def node(name):
    return testinfra.get_host("podman://" + name)


def status_and_body(host, url, extra=""):
    answer = host.run("curl -s -m 10 %s -w '\\n%%{http_code}' '%s'" % (extra, url))
    body, _sep, status = answer.stdout.rpartition("\n")
    return status, body


def span(trace_id, service, name):
    now_us = int(time.time() * 1000000)
    return {
        "traceId": trace_id, "id": trace_id[-16:], "name": name, "kind": "SERVER",
        "timestamp": now_us - 5000, "duration": 4000,
        "localEndpoint": {"serviceName": service, "ipv4": "10.0.0.1", "port": 8080},
        "tags": {"http.method": "GET", "http.path": "/orders"},
    }


@pytest.mark.parametrize("name", HOSTS)
def test_health_is_up(name):
    status, body = status_and_body(node(name), "http://127.0.0.1:9411/health")
    assert status == "200", body
    assert json.loads(body)["status"] == "UP"


@pytest.mark.parametrize("name", HOSTS)
def test_a_posted_span_is_found_by_service_and_in_its_trace(name):
    host = node(name)
    trace_id = "%016x" % (int(time.time() * 1000) + HOSTS.index(name))
    service = "checkout-" + name
    payload = json.dumps([span(trace_id, service, "get /orders")])
    status, body = status_and_body(host, "http://127.0.0.1:9411/api/v2/spans",
                                   "-X POST -H 'Content-Type: application/json' --data-binary '%s'" % payload)
    assert status == "202", body

    status, body = status_and_body(host, "http://127.0.0.1:9411/api/v2/services")
    assert status == "200", body
    assert service in json.loads(body)

    status, body = status_and_body(host, "http://127.0.0.1:9411/api/v2/traces?serviceName=%s&limit=10" % service)
    assert status == "200", body
    traces = json.loads(body)
    assert [[s["id"] for s in t] for t in traces] == [[trace_id]]
    assert traces[0][0]["traceId"] == trace_id
    assert traces[0][0]["tags"]["http.path"] == "/orders"


def test_the_other_host_sends_and_queries_through_the_firewall():
    sender, receiver = node(HOSTS[1]), HOSTS[0]
    trace_id = "%016x" % (int(time.time() * 1000) + 7)
    payload = json.dumps([span(trace_id, "from-peer", "peer call")])
    status, body = status_and_body(sender, "http://%s:9411/api/v2/spans" % receiver,
                                   "-X POST -H 'Content-Type: application/json' --data-binary '%s'" % payload)
    assert status == "202", body
    status, body = status_and_body(sender, "http://%s:9411/api/v2/trace/%s" % (receiver, trace_id))
    assert status == "200", body
    assert json.loads(body)[0]["name"] == "peer call"
    # The rule comes from the role (through aic.gateway.common), not from an open firewall.
    ruleset = node(receiver).check_output("nft list ruleset")
    assert "tcp dport 9411" in ruleset


@pytest.mark.parametrize("name", HOSTS)
def test_prometheus_metrics_count_received_spans(name):
    status, body = status_and_body(node(name), "http://127.0.0.1:9411/prometheus")
    assert status == "200", body
    counts = [line for line in body.splitlines() if line.startswith("zipkin_collector_spans_total")]
    assert counts, body[:500]
    assert float(counts[0].split()[-1]) >= 1


@pytest.mark.parametrize("name", HOSTS)
def test_server_runs_as_zipkin_with_the_heap_flags_on_the_release_java(name):
    host = node(name)
    pid = host.check_output("systemctl show -p MainPID --value zipkin")
    assert pid != "0"
    user = host.check_output("ps -o user= -p %s" % pid)
    assert user == "zipkin"
    args = host.file("/proc/%s/cmdline" % pid).content.split(b"\0")
    assert b"-Xms64m" in args and b"-Xmx64m" in args, args
    assert args[-2:] == [b"/opt/zipkin/zipkin-server-3.6.1-exec.jar", b""], args
    assert host.package(JAVA_PACKAGE[name]).is_installed
    # The unit runs /usr/bin/java, which is the release's runtime (Java 17 on Debian 12, 21 on Debian 13).
    assert args[0] == b"/usr/bin/java", args
    java = host.check_output("readlink -f /usr/bin/java")
    assert java.startswith("/usr/lib/jvm/java-%s-" % JAVA_PACKAGE[name].split("-")[1]), java


@pytest.mark.parametrize("name", HOSTS)
def test_settings_file_is_root_only_and_has_the_settings(name):
    env = node(name).file("/etc/zipkin/zipkin.env")
    assert (env.user, env.group, env.mode) == ("root", "root", 0o600)
    lines = set(env.content_string.splitlines())
    assert {'QUERY_PORT="9411"', 'STORAGE_TYPE="mem"', 'MEM_MAX_SPANS="10000"', 'QUERY_LOOKBACK="86400000"'} <= lines


@pytest.mark.parametrize("name", HOSTS)
def test_unit_is_hardened_and_treats_sigterm_as_a_clean_stop(name):
    shown = node(name).check_output(
        "systemctl show zipkin -p User -p NoNewPrivileges -p ProtectSystem -p ProtectHome -p ReadWritePaths "
        "-p Restart -p SuccessExitStatus -p LimitNOFILE")
    props = dict(line.split("=", 1) for line in shown.splitlines())
    assert props["User"] == "zipkin"
    assert props["NoNewPrivileges"] == "yes"
    assert props["ProtectSystem"] == "strict"
    assert props["ProtectHome"] == "yes"
    assert props["ReadWritePaths"] == "/var/lib/zipkin"
    assert props["Restart"] == "on-failure"
    assert "143" in props["SuccessExitStatus"]
    assert props["LimitNOFILE"] == "4096"


def test_a_stop_is_clean_and_the_server_comes_back():
    # Runs after the span tests: it stops the server on one host. A JVM stopped by SIGTERM exits 143, which the unit
    # counts as success (SuccessExitStatus=143), so a stop is not a failure and Restart=on-failure stays quiet.
    host = node(HOSTS[0])
    host.check_output("systemctl stop zipkin")
    shown = host.check_output("systemctl show zipkin -p Result -p ExecMainStatus -p ActiveState")
    props = dict(line.split("=", 1) for line in shown.splitlines())
    assert props == {"Result": "success", "ExecMainStatus": "143", "ActiveState": "inactive"}
    host.check_output("systemctl start zipkin")
    up = host.run("for i in $(seq 60); do curl -sf http://127.0.0.1:9411/health && exit 0; sleep 1; done; exit 1")
    assert up.rc == 0, up.stdout


def test_storage_password_never_shows_in_a_diff():
    # A check-mode run with Elasticsearch storage and its password: the env file would change (so its task
    # ran and had something to show), but neither the password nor the file's content is printed.
    secret = "zk-es-s3cret-4711"
    extra = json.dumps({"zipkin_storage_type": "elasticsearch",
                        "zipkin_storage_env": {"ES_HOSTS": "http://es1:9200", "ES_USERNAME": "zipkin",
                                               "ES_PASSWORD": secret}})
    inventory = os.path.dirname(os.environ["MOLECULE_INVENTORY_FILE"])
    playbook = os.path.join(os.environ["MOLECULE_SCENARIO_DIRECTORY"], "converge.yml")
    run = subprocess.run(["ansible-playbook", "--check", "--diff", "-i", inventory, "--limit", HOSTS[0],
                          "-e", extra, playbook], capture_output=True, text=True, env=os.environ.copy(), check=False)
    output = run.stdout + run.stderr
    assert run.returncode == 0, output[-4000:]
    env_task = output.split("Write the environment file", 1)[-1].split("TASK [", 1)[0]
    assert "changed: [%s]" % HOSTS[0] in env_task, output[-4000:]
    assert secret not in output
    assert "ES_HOSTS" not in output
