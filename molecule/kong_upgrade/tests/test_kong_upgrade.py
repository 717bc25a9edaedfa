"""The rolling upgrade 3.9.2 -> 3.9.3 under load (side_effect.yml), seen as a user would."""

import json

import pytest
import testinfra

NODES = ["kup-node1", "kup-node2"]
LB = testinfra.get_host("podman://kup-lb")


def node(name):
    return testinfra.get_host("podman://" + name)


def test_no_request_failed_during_the_upgrade():
    load = json.loads(LB.file("/var/tmp/loadgen.json").content_string)
    print("rolling upgrade: %(sent)d requests sent through HAProxy in %(seconds)s s, %(failed)d failed %(errors)s" % load)
    assert not load["running"]
    assert load["sent"] > 100
    assert load["failed"] == 0, load["errors"]


@pytest.mark.parametrize("name", NODES)
def test_every_node_runs_the_new_version_and_is_ready(name):
    host = node(name)
    assert host.check_output("kong version").strip() == "3.9.3"
    assert host.check_output("dpkg-query -W -f='${Version} ${Status}' kong").startswith("3.9.3 hold ")
    assert host.run("curl -s -o /dev/null -w '%{http_code}' http://127.0.0.1:8007/status/ready").stdout == "200"


def test_migrations_up_and_finish_ran_once_in_order():
    logs = {name: node(name).run("journalctl -t aic-kong-migrate --no-pager -o cat").stdout for name in NODES}
    ups = [n for n, text in logs.items() if "migrations up ran" in text]
    finishes = [n for n, text in logs.items() if "migrations finish ran" in text]
    assert len(ups) == 1 and len(finishes) == 1, logs
    listed = node(NODES[0]).run("set -a; . /etc/default/kong; kong migrations list -c /etc/kong/kong.conf")
    assert listed.rc == 0, listed.stdout + listed.stderr


def test_haproxy_has_both_nodes_up_again():
    stat = LB.check_output("echo 'show stat' | socat stdio /run/haproxy/admin.sock")
    status = {f[1]: f[17] for f in (line.split(",") for line in stat.splitlines()) if len(f) > 17 and f[1] in NODES}
    assert status == {n: "UP" for n in NODES}, status
