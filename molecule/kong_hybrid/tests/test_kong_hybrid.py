"""The kong_hybrid scenario: a control plane with PostgreSQL and a data plane, seen as a user would."""

import json

import testinfra

CP = testinfra.get_host("podman://khy-cp")
DP = testinfra.get_host("podman://khy-dp")


def test_the_data_plane_serves_what_was_configured_on_the_control_plane():
    # The routes were written through the CP's Admin API only (converge.yml); the DP got them from the CP.
    assert DP.check_output("curl -sf http://127.0.0.1:8000/echo/hello.txt").strip() == "hello from khy-cp"
    assert DP.run("curl -s -o /dev/null -w '%{http_code}' http://127.0.0.1:8000/private/hello.txt").stdout == "401"
    assert "hello from" in DP.check_output("curl -sf -H 'apikey: alice-key-1' http://127.0.0.1:8000/private/hello.txt")


def test_the_control_plane_lists_the_data_plane():
    listed = json.loads(CP.check_output("curl -sf http://127.0.0.1:8001/clustering/data-planes"))["data"]
    assert [dp["hostname"] for dp in listed] == ["khy-dp"]
    assert listed[0]["version"] == "3.9.3"


def test_one_cluster_certificate_shared_and_its_key_protected():
    assert CP.file("/etc/kong/cluster.crt").content_string == DP.file("/etc/kong/cluster.crt").content_string
    for host in (CP, DP):
        key = host.file("/etc/kong/cluster.key")
        assert key.user == "root" and key.group == "kong" and key.mode == 0o640
    assert CP.file("/etc/kong/cluster.key").content_string == DP.file("/etc/kong/cluster.key").content_string


def test_roles_and_listeners():
    cp_conf = CP.file("/etc/kong/kong.conf").content_string
    dp_conf = DP.file("/etc/kong/kong.conf").content_string
    assert "role = control_plane" in cp_conf and "database = postgres" in cp_conf
    assert "role = data_plane" in dp_conf and "database = off" in dp_conf
    assert "cluster_control_plane = khy-cp:8005" in dp_conf
    # A data plane has no Admin API; the control plane proxies nothing.
    assert DP.run("curl -s -m 3 http://127.0.0.1:8001/").rc != 0
    assert CP.run("curl -s -m 3 http://127.0.0.1:8000/").rc != 0


def test_both_are_ready():
    for host in (CP, DP):
        assert host.run("curl -s -o /dev/null -w '%{http_code}' http://127.0.0.1:8007/status/ready").stdout == "200"
