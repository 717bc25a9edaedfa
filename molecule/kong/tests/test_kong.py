"""The kong scenario: PostgreSQL, two Kong nodes (stand-in package) and HAProxy, seen as a user would."""

import json

import pytest
import testinfra

NODES = ["kong-node1", "kong-node2"]


def node(name):
    return testinfra.get_host("podman://" + name)


LB = testinfra.get_host("podman://kong-lb")


@pytest.mark.parametrize("name", NODES)
def test_kong_runs_the_pinned_held_version_under_systemd(name):
    host = node(name)
    assert host.check_output("kong version").strip() == "3.9.2"
    assert host.service("kong").is_running and host.service("kong").is_enabled
    assert host.check_output("dpkg-query -W -f='${Status}' kong").startswith("hold ")


@pytest.mark.parametrize("name", NODES)
def test_kong_conf_is_not_world_readable_and_holds_no_secret(name):
    host = node(name)
    conf = host.file("/etc/kong/kong.conf")
    assert conf.user == "root" and conf.group == "kong" and conf.mode == 0o640
    assert "kong-secret-1" not in conf.content_string
    env = host.file("/etc/default/kong")
    assert env.user == "root" and env.mode == 0o600
    assert "KONG_PG_PASSWORD" in env.content_string


@pytest.mark.parametrize("name", NODES)
def test_each_node_is_ready_on_its_status_api(name):
    ready = node(name).run("curl -s -o /dev/null -w '%{http_code}' http://127.0.0.1:8007/status/ready")
    assert ready.stdout == "200"


def test_migrations_ran_once_for_the_cluster():
    ran = [name for name in NODES
           if "bootstrap ran" in node(name).run("journalctl -t aic-kong-migrate --no-pager").stdout]
    assert len(ran) == 1, ran
    listed = node(NODES[1]).run("set -a; . /etc/default/kong; kong migrations list -c /etc/kong/kong.conf")
    assert listed.rc == 0, listed.stdout + listed.stderr


def test_admin_api_answers_on_loopback_only():
    assert node("kong-node1").run("curl -sf http://127.0.0.1:8001/").rc == 0
    # From another container: nothing listens on the node's address for the Admin API.
    other = node("kong-node2").run("curl -s -m 5 -o /dev/null -w '%{http_code}' http://kong-node1:8001/")
    assert other.stdout == "000", other.stdout


def test_requests_through_haproxy_reach_the_backend_over_both_nodes():
    for _i in range(6):
        body = LB.check_output("curl -sf http://127.0.0.1/echo/hello.txt")
        assert body.strip() == "hello from kong-pg"
    # HAProxy's runtime API counts sessions per server: both Kong nodes served some.
    stat = LB.check_output("echo 'show stat' | socat stdio /run/haproxy/admin.sock")
    served = {line.split(",")[1]: int(line.split(",")[7]) for line in stat.splitlines()
              if line.split(",")[1] in NODES}
    assert all(served.get(n, 0) > 0 for n in NODES), served


def test_a_route_with_key_auth_needs_the_key():
    assert LB.run("curl -s -o /dev/null -w '%{http_code}' http://127.0.0.1/private/hello.txt").stdout == "401"
    ok = LB.run("curl -s -H 'apikey: alice-key-1' http://127.0.0.1/private/hello.txt")
    assert ok.stdout.strip() == "hello from kong-pg"


def test_the_second_node_serves_what_the_first_one_configured():
    body = node("kong-node2").check_output("curl -sf http://127.0.0.1:8000/echo/hello.txt")
    assert body.strip() == "hello from kong-pg"
    info = json.loads(node("kong-node2").check_output("curl -sf http://127.0.0.1:8001/services/echo"))
    assert info["host"] == "kong-pg"
