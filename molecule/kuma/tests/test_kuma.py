"""The kuma scenario as a user sees it: requests through Kong cross the mesh, permissions decide who may
call whom, tokens decide which proxy may join. Kuma here is the stand-in tarball (tests/standins/kuma)."""

import json

import testinfra

KUMA_BIN = "/opt/kuma/kuma-2.14.3/bin"


def host(name):
    return testinfra.get_host("podman://" + name)


def status_and_body(node, url, extra=""):
    answer = node.run("curl -s -m 10 %s -w '\\n%%{http_code}' %s" % (extra, url))
    body, _sep, status = answer.stdout.rpartition("\n")
    return status, body


def test_request_through_kong_reaches_core_over_the_mesh():
    # Kong's service points at its proxy's outbound 127.0.0.1:33033 (kuma.md §6), which reaches core's
    # inbound over mTLS, which hands it to the service on 127.0.0.1:9000.
    status, body = status_and_body(host("kuma-kong"), "http://127.0.0.1:8000/core/hello.txt")
    assert (status, body.strip()) == ("200", "hello from kuma-core")


def test_permission_decides_which_caller_gets_through():
    # No MeshTrafficPermission lets Kong call billing, so its proxy refuses (kuma.md §5: with mTLS on,
    # what no permission allows is denied) and Kong passes the 403 on.
    status, body = status_and_body(host("kuma-kong"), "http://127.0.0.1:8000/billing/hello.txt")
    assert status == "403", body
    assert "RBAC" in body
    # billing calling core through its own outbound: core only allows kong.
    status, body = status_and_body(host("kuma-billing"), "http://127.0.0.1:33033/hello.txt")
    assert status == "403", body


def test_plaintext_to_an_inbound_is_refused_under_strict_mtls():
    # Going around the proxies to core's inbound port without the mesh's certificate gets nothing.
    status, _body = status_and_body(host("kuma-billing"), "http://kuma-core:20001/hello.txt")
    assert status != "200"


def test_control_plane_lists_every_proxy_online():
    overview = json.loads(host("kuma-cp").check_output(
        "curl -sf http://127.0.0.1:5681/meshes/default/dataplanes/_overview"))
    online = {}
    for item in overview["items"]:
        subscriptions = item["dataplaneInsight"].get("subscriptions") or [{}]
        online[item["name"]] = bool(subscriptions[-1].get("connectTime")) and not subscriptions[-1].get("disconnectTime")
    assert online == {"core-1": True, "billing-1": True, "kong-1": True}
    kong = [i for i in overview["items"] if i["name"] == "kong-1"][0]
    assert kong["dataplane"]["networking"]["gateway"]["type"] == "DELEGATED"


def test_declared_policies_are_in_the_control_plane_and_mtls_is_strict():
    cp = host("kuma-cp")
    mesh = json.loads(cp.check_output("curl -sf http://127.0.0.1:5681/meshes/default"))
    assert mesh["mtls"]["enabledBackend"] == "ca-1"
    assert mesh["mtls"]["backends"][0]["mode"] == "STRICT"
    for path in ("meshtrafficpermissions/core-from-kong", "meshtimeouts/core-timeouts", "meshretries/core-retries"):
        assert cp.run("curl -sf -o /dev/null http://127.0.0.1:5681/meshes/default/" + path).rc == 0, path


def write_dataplane(node, name, token):
    node.run("mkdir -p /tmp/intruder && printf '%%s' '%s' > /tmp/intruder/token" % token)
    node.run("printf 'type: Dataplane\\nmesh: default\\nname: %s\\nnetworking:\\n  address: 127.0.0.1\\n"
             "  inbound:\\n    - port: 20099\\n      servicePort: 9000\\n      tags: {kuma.io/service: billing}\\n'"
             " > /tmp/intruder/dp.yaml" % name)


def run_dataplane(node):
    # kuma.md §2/§3: the token is checked when the proxy's configuration stream opens; a refused proxy keeps
    # running (its Envoy keeps retrying) but is never ready and never listed, so it is stopped after 15 s.
    return node.run(
        "cd /tmp/intruder && KUMA_READINESS_PORT=9960 timeout 10 %s/kuma-dp run --cp-address=https://kuma-cp:5678 "
        "--ca-cert-file=/etc/kuma/kuma-cp-ca.pem --dataplane-file=/tmp/intruder/dp.yaml "
        "--dataplane-token-file=/tmp/intruder/token" % KUMA_BIN)


def listed_dataplanes():
    return [item["name"] for item in json.loads(host("kuma-cp").check_output(
        "curl -sf http://127.0.0.1:5681/meshes/default/dataplanes"))["items"]]


def test_a_proxy_with_a_wrong_token_is_rejected():
    node = host("kuma-billing")
    write_dataplane(node, "intruder", "not-a-token")
    run = run_dataplane(node)
    assert run.rc == 124, run.stdout + run.stderr          # still retrying when stopped
    assert "authentication failed" in run.stderr, run.stderr
    assert "intruder" not in listed_dataplanes()


def test_a_token_bound_to_another_dataplane_is_rejected():
    # billing-1's own, valid token: bound to its name (kuma.md §3 "Token binding").
    node = host("kuma-billing")
    token = node.check_output("cat /etc/kuma/tokens/billing-1.token")
    write_dataplane(node, "intruder", token)
    run = run_dataplane(node)
    assert run.rc == 124, run.stdout + run.stderr
    assert "authentication failed" in run.stderr, run.stderr
    assert "intruder" not in listed_dataplanes()
    # The proxy whose token it is was not disturbed.
    assert host("kuma-billing").run("curl -sf http://127.0.0.1:9902/ready").rc == 0


def test_tokens_and_secrets_are_private():
    billing = host("kuma-billing")
    token = billing.file("/etc/kuma/tokens/billing-1.token")
    assert (token.user, token.mode) == ("kuma-dp", 0o600)
    cp = host("kuma-cp")
    assert (cp.file("/etc/kuma/admin-token").user, cp.file("/etc/kuma/admin-token").mode) == ("root", 0o600)
    env = cp.file("/etc/kuma/kuma-cp.env")
    assert env.mode == 0o600 and "kuma-secret-1" in env.content_string
    assert "kuma-secret-1" not in cp.file("/etc/kuma/kuma-cp.yaml").content_string


def test_store_is_postgres_on_the_declared_port_and_migrated():
    cp = host("kuma-cp")
    conf = cp.file("/etc/kuma/kuma-cp.yaml").content_string
    assert "type: postgres" in conf and "port: 5432" in conf
    tables = cp.check_output("runuser -u postgres -- psql -d kuma -Atc \"select count(*) from schema_migration\"")
    assert int(tables) >= 1


def test_api_listens_on_loopback_only_and_the_dp_server_is_reachable():
    kong = host("kuma-kong")
    assert kong.run("curl -s -m 5 -o /dev/null http://kuma-cp:5681/").rc != 0
    assert kong.run("curl -s -m 5 -o /dev/null --cacert /etc/kuma/kuma-cp-ca.pem https://kuma-cp:5678/").rc == 0


def test_each_proxy_runs_as_its_own_hardened_instance():
    core = host("kuma-core")
    unit = core.service("kuma-dp@core-1")
    assert unit.is_running and unit.is_enabled
    assert core.check_output("systemctl show -p User --value kuma-dp@core-1") == "kuma-dp"
    assert core.check_output("systemctl show -p NoNewPrivileges --value kuma-dp@core-1") == "yes"
    dataplane = core.file("/etc/kuma/dataplanes/core-1.yaml").content_string
    assert "{{" not in dataplane and "address:" in dataplane
    assert core.run("curl -sf http://127.0.0.1:9902/ready").rc == 0


# DB-less Kong on Debian 13 (the site scenario's Kong nodes run with a database). side_effect.yml loaded an
# extra route into the running node without a restart, went back to the inventory's file, and had an
# invalid file refused.
def test_db_less_node_serves_the_declared_routes_and_nothing_else():
    kong = host("kuma-kong")
    assert status_and_body(kong, "http://127.0.0.1:8007/status/ready")[0] == "200"
    # the route the side effect added is gone again: the file is what the inventory says
    assert status_and_body(kong, "http://127.0.0.1:8000/extra/hello.txt")[0] == "404"


def test_db_less_key_auth_protects_its_route():
    kong = host("kuma-kong")
    assert status_and_body(kong, "http://127.0.0.1:8000/private/hello.txt")[0] == "401"
    status, body = status_and_body(kong, "http://127.0.0.1:8000/private/hello.txt", "-H 'apikey: alice-key-1'")
    assert (status, body.strip()) == ("200", "hello from kuma-core")


def test_db_less_admin_api_refuses_writes():
    answer = host("kuma-kong").run("curl -s -w '\\n%{http_code}' -X POST http://127.0.0.1:8001/services -d name=x")
    body, status = answer.stdout.rsplit("\n", 1)
    assert status == "405"
    assert json.loads(body)["code"] == 12


def test_db_less_declarative_file_keeps_the_platform_plugins_and_is_not_world_readable():
    kong = host("kuma-kong")
    declared = kong.file("/etc/kong/kong.yml")
    assert declared.group == "kong" and declared.mode == 0o640
    assert kong.run("KONG_DATABASE=off kong config parse /etc/kong/kong.yml").rc == 0
    assert "declarative_config = /etc/kong/kong.yml" in kong.file("/etc/kong/kong.conf").content_string
    # after the side effect's two reloads the merged platform plugin is still there (issue 7's finding 2)
    assert "name: prometheus" in declared.content_string
