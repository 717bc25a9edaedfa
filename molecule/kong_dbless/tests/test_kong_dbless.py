"""The kong_dbless scenario: two DB-less Kong nodes with one declarative file, seen as a user would."""

import json

import pytest
import testinfra

NODES = ["kdl-debian12", "kdl-debian13"]


def node(name):
    return testinfra.get_host("podman://" + name)


@pytest.mark.parametrize("name", NODES)
def test_node_is_ready_and_serves_the_declared_routes(name):
    host = node(name)
    assert host.run("curl -s -o /dev/null -w '%{http_code}' http://127.0.0.1:8007/status/ready").stdout == "200"
    assert host.check_output("curl -sf http://127.0.0.1:8000/echo/hello.txt").strip() == "hello from kdl-debian12"
    # The route added by side_effect.yml is gone again: the file is what the inventory says.
    assert host.run("curl -s -o /dev/null -w '%{http_code}' http://127.0.0.1:8000/extra/hello.txt").stdout == "404"


@pytest.mark.parametrize("name", NODES)
def test_declared_key_auth_protects_its_route(name):
    host = node(name)
    assert host.run("curl -s -o /dev/null -w '%{http_code}' http://127.0.0.1:8000/private/hello.txt").stdout == "401"
    assert "hello from" in host.check_output("curl -sf -H 'apikey: alice-key-1' http://127.0.0.1:8000/private/hello.txt")


@pytest.mark.parametrize("name", NODES)
def test_admin_api_refuses_writes_without_a_database(name):
    answer = node(name).run("curl -s -w '\\n%{http_code}' -X POST http://127.0.0.1:8001/services -d name=x")
    body, status = answer.stdout.rsplit("\n", 1)
    assert status == "405"
    assert json.loads(body)["code"] == 12


@pytest.mark.parametrize("name", NODES)
def test_declarative_file_is_parsed_and_not_world_readable(name):
    host = node(name)
    declared = host.file("/etc/kong/kong.yml")
    assert declared.group == "kong" and declared.mode == 0o640
    assert host.run("KONG_DATABASE=off kong config parse /etc/kong/kong.yml").rc == 0
    assert "declarative_config = /etc/kong/kong.yml" in host.file("/etc/kong/kong.conf").content_string
