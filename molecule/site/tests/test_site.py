"""The whole stack as a client, an operator and an attacker see it after `playbooks/site.yml`.

Requests go to HAProxy on site-ops from site-client (an outside host that is no admin source), through Kong,
Kong's delegated Kuma data plane, the service's data plane, to the service and back. Kong, Kuma, Grafana and
Zipkin are the stand-ins (tests/standins); PostgreSQL, HAProxy, Prometheus, the exporters, Python and Node
services are real.
"""

import base64
import hashlib
import hmac
import json
import os
import re
import time
import urllib.parse

import pytest
import testinfra

SCENARIO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def host(name):
    return testinfra.get_host("podman://" + name)


CLIENT = host("site-client")
OPS = host("site-ops")
DB = host("site-db")
APP = host("site-app")
KONG1 = host("site-kong1")
KONG2 = host("site-kong2")
GATEWAY = "http://site-ops"


def eventually(check, timeout=120, interval=3):
    """Polls until check() returns a truthy value; returns the last value (the assertion is the caller's)."""
    deadline = time.monotonic() + timeout
    value = check()
    while not value and time.monotonic() < deadline:
        time.sleep(interval)
        value = check()
    return value


def call(node, url, *args):
    """(status, body) of one request made on `node` with curl; args are extra curl arguments."""
    quoted = " ".join("'%s'" % a.replace("'", "'\\''") for a in args)
    answer = node.run("curl -s -m 15 -w '\\n%%{http_code}' %s '%s'" % (quoted, url))
    body, _sep, status = answer.stdout.rpartition("\n")
    return int(status or 0), body


def get_json(node, url, *args):
    status, body = call(node, url, *args)
    assert status == 200, "%s: %s %s" % (url, status, body[:300])
    return json.loads(body)


# ------------------------------------------------------------------ the inventory's data, as the tests use it
def scenario_vars():
    """group_vars of this scenario's molecule.yml (what the user's inventory would hold)."""
    import yaml  # molecule's own dependency

    with open(os.path.join(SCENARIO, "molecule.yml"), encoding="utf-8") as handle:
        return yaml.safe_load(handle)["provisioner"]["inventory"]["group_vars"]


VARS = scenario_vars()
SECRETS = {k: v for k, v in VARS["all"].items() if k.startswith("vault_")}
ALICE = ("apikey", SECRETS["vault_alice_api_key"])
BOB = ("apikey", SECRETS["vault_bob_api_key"])
LIMITED = ("apikey", SECRETS["vault_limited_api_key"])


def through_gateway(path, credential=None, *args, node=CLIENT):
    extra = list(args)
    if credential:
        extra += ["-H", "%s: %s" % credential]
    return call(node, GATEWAY + path, *extra)


# ------------------------------------------------------------------ request flow
def test_a_valid_key_reaches_core_api_through_kong_and_the_mesh_and_its_database():
    status, body = through_gateway("/core/items", ALICE, "-X", "POST", "-H", "Content-Type: application/json",
                                   "-d", '{"name": "site-test-item"}')
    assert status in (200, 201), body
    created = json.loads(body)
    status, body = through_gateway("/core/items", ALICE)
    assert status == 200, body
    assert created["id"] in {item["id"] for item in json.loads(body)["items"]}
    # the row is in core-api's own database on site-db
    rows = DB.check_output("runuser -u postgres -- psql -tA -d core_api -c \"SELECT name FROM items WHERE id = %d\""
                           % int(created["id"]))
    assert rows.strip() == "site-test-item"


def test_a_valid_key_reaches_the_ai_service():
    status, body = through_gateway("/ai/predict", ALICE, "-X", "POST", "-H", "Content-Type: application/json",
                                   "-d", '{"features": [5.1, 3.5, 1.4, 0.2]}')
    assert status == 200, body
    assert json.loads(body)["class"] == "setosa"


def test_a_valid_key_reaches_ghost():
    status, body = through_gateway("/blog/", ALICE)
    assert status == 200, body[:500]
    assert re.search(r'<meta name="generator" content="Ghost', body), body[:500]


def test_services_listen_on_loopback_only_so_the_mesh_is_the_only_way_in():
    listening = APP.check_output("ss -Hltn")
    for port in (8080, 8081, 8090, 2368):
        sockets = [line.split()[3] for line in listening.splitlines() if line.split()[3].endswith(":%d" % port)]
        assert sockets, "nothing listens on %d:\n%s" % (port, listening)
        assert all(s.startswith("127.0.0.1:") for s in sockets), sockets
    # and the client cannot reach a service's port on the app host directly
    status = call(CLIENT, "http://site-app:8080/health", "--connect-timeout", "3")[0]
    assert status == 0


# ------------------------------------------------------------------ refusals, each with Kong's status
def test_no_key_is_refused_with_401():
    status, body = through_gateway("/core/items")
    assert status == 401, body
    assert json.loads(body)["message"] == "No API key found in request"


def test_a_wrong_key_is_refused_with_401():
    status, body = through_gateway("/core/items", ("apikey", "not-a-key-of-anyone"))
    assert status == 401, body
    assert json.loads(body)["message"] == "Unauthorized"


def test_a_consumer_outside_the_routes_acl_group_is_refused_with_403():
    assert through_gateway("/blog/", BOB)[0] == 200  # bob is a blog reader ...
    status, body = through_gateway("/core/items", BOB)  # ... but not in core-users
    assert status == 403, body
    assert json.loads(body)["message"] == "You cannot consume this service"


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def hs256_token(key, secret, exp):
    header = b64url(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    payload = b64url(json.dumps({"iss": key, "exp": exp}).encode())
    signature = hmac.new(secret.encode(), ("%s.%s" % (header, payload)).encode(), hashlib.sha256).digest()
    return "%s.%s.%s" % (header, payload, b64url(signature))


def test_jwt_hs256_is_accepted_and_an_expired_one_refused_with_401():
    secret = SECRETS["vault_partner_jwt_secret"]
    valid = hs256_token("partner-hs", secret, int(time.time()) + 300)
    assert through_gateway("/core-jwt/items", None, "-H", "Authorization: Bearer " + valid)[0] == 200
    expired = hs256_token("partner-hs", secret, int(time.time()) - 60)
    status, body = through_gateway("/core-jwt/items", None, "-H", "Authorization: Bearer " + expired)
    assert status == 401, body
    assert json.loads(body) == {"exp": "token expired"}


def test_jwt_rs256_signed_with_the_partners_private_key_is_accepted():
    key_file = os.path.join(os.environ["MOLECULE_EPHEMERAL_DIRECTORY"], "partner-rs256.key")
    header = b64url(json.dumps({"alg": "RS256", "typ": "JWT"}).encode())
    payload = b64url(json.dumps({"iss": "partner-rs", "exp": int(time.time()) + 300}).encode())
    signing_input = "%s.%s" % (header, payload)
    import subprocess

    signature = subprocess.run(["openssl", "dgst", "-sha256", "-sign", key_file], input=signing_input.encode(),
                               capture_output=True, check=True).stdout
    token = "%s.%s" % (signing_input, b64url(signature))
    status, body = through_gateway("/core-jwt/items", None, "-H", "Authorization: Bearer " + token)
    assert status == 200, body
    tampered = token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB")
    assert through_gateway("/core-jwt/items", None, "-H", "Authorization: Bearer " + tampered)[0] == 401


def test_oauth2_client_credentials_token_opens_the_route():
    https = ("-H", "X-Forwarded-Proto: https")  # TLS ends in front of Kong (accept_http_if_already_terminated)
    status, body = through_gateway("/core-oauth/oauth2/token", None, *https, "-X", "POST",
                                   "--data-urlencode", "grant_type=client_credentials",
                                   "--data-urlencode", "client_id=partner-app",
                                   "--data-urlencode", "client_secret=" + SECRETS["vault_partner_client_secret"])
    assert status == 200, body
    token = json.loads(body)["access_token"]
    assert through_gateway("/core-oauth/items", None, *https, "-H", "Authorization: Bearer " + token)[0] == 200
    assert through_gateway("/core-oauth/items", None, *https, "-H", "Authorization: Bearer nope")[0] == 401


def test_a_caller_over_its_rate_limit_is_refused_with_429():
    statuses = [through_gateway("/core/items", LIMITED)[0] for _attempt in range(8)]
    assert statuses[0] == 200, statuses
    assert 429 in statuses, statuses
    status, body = through_gateway("/core/items", LIMITED)
    assert status == 429 and json.loads(body)["message"] == "API rate limit exceeded", body
    # alice, in the same ACL group but without that limit, is not affected
    assert through_gateway("/core/items", ALICE)[0] == 200


def test_the_mesh_refuses_a_service_that_the_callees_allow_from_does_not_name():
    # ai-service declares an outbound to core-api, but core-api allows only kong (MeshTrafficPermission)
    status, body = call(APP, "http://127.0.0.1:33102/health")
    assert status == 403, body
    # core-api may call ai-service (its allow_from names core-api), and Kong may call core-api
    assert call(APP, "http://127.0.0.1:33101/health")[0] == 200
    assert through_gateway("/core/items", ALICE)[0] == 200


# ------------------------------------------------------------------ admin interfaces
ADMIN_PORTS = [("site-kong1", 8001, "Kong Admin API"), ("site-kong2", 8001, "Kong Admin API"),
               ("site-db", 5681, "Kuma API"), ("site-db", 5432, "PostgreSQL"), ("site-ops", 3000, "Grafana")]


@pytest.mark.parametrize("target,port,what", ADMIN_PORTS)
def test_admin_ports_are_unreachable_from_a_non_admin_host(target, port, what):
    answer = CLIENT.run("timeout 5 bash -c 'exec 3<>/dev/tcp/%s/%d' && echo open || echo closed" % (target, port))
    assert answer.stdout.strip().endswith("closed"), "%s on %s:%d is reachable from site-client" % (what, target, port)


def test_grafanas_admin_api_answers_the_admin_host_only():
    password = SECRETS["vault_grafana_admin_password"]
    status = call(OPS, "http://site-ops:3000/api/admin/settings", "-u", "admin:" + password)[0]
    assert status == 200
    assert call(CLIENT, "http://site-ops:3000/api/admin/settings", "-u", "admin:" + password,
                "--connect-timeout", "3")[0] == 0


def test_kongs_admin_route_on_the_proxy_is_ip_restricted():
    status, body = through_gateway("/kong-admin/status", ALICE)
    assert status == 403, body
    # the status is Kong's; the message's wording differs between Kong 3.x revisions (UNCONFIRMED for 3.9.3)
    assert "not allowed" in json.loads(body)["message"], body
    status, body = call(OPS, GATEWAY + "/kong-admin/status", "-H", "apikey: " + SECRETS["vault_ops_api_key"])
    assert status == 200, body


# ------------------------------------------------------------------ one Kong node stopped under load
def test_writes_keep_succeeding_and_stay_consistent_when_a_kong_node_stops_under_load():
    CLIENT.run("systemctl stop loadgen-site 2>/dev/null; rm -f /var/tmp/site-load.json")
    started = CLIENT.run(
        "systemd-run --unit=loadgen-site python3 /usr/local/lib/loadgen.py --workers 2 --url %s/core/items "
        "--header 'apikey: %s' --post-json '{\"name\": \"load-{n}\"}' --expect '\"id\"' --out /var/tmp/site-load.json"
        % (GATEWAY, ALICE[1]))
    assert started.rc == 0, started.stderr

    def sent():
        report = CLIENT.run("cat /var/tmp/site-load.json")
        return json.loads(report.stdout)["sent"] if report.rc == 0 else 0

    try:
        assert eventually(lambda: sent() > 20, timeout=60)
        KONG1.run("systemctl stop kong")
        before = sent()
        assert eventually(lambda: sent() > before + 50, timeout=90), "no progress with one Kong node stopped"
        KONG1.run("systemctl start kong")
        assert eventually(lambda: call(KONG1, "http://127.0.0.1:8007/status/ready")[0] == 200, timeout=90)
        time.sleep(5)
    finally:
        KONG1.run("systemctl start kong")
        CLIENT.run("systemctl stop loadgen-site")
    report = json.loads(CLIENT.check_output("cat /var/tmp/site-load.json"))
    assert report["sent"] > 70 and report["failed"] == 0, report
    # every write the clients were told succeeded is in core-api's database, exactly once
    stored = DB.check_output(
        "runuser -u postgres -- psql -tA -d core_api -c \"SELECT name FROM items WHERE name LIKE 'load-%'\"").split()
    acknowledged = ["load-%d" % n for n in report["acknowledged"]]
    assert len(acknowledged) == report["sent"]
    assert sorted(stored) == sorted(acknowledged), (len(stored), len(acknowledged))


# ------------------------------------------------------------------ secrets
def test_no_secret_from_the_inventory_appears_in_the_ansible_log():
    log_file = os.path.join(os.environ["MOLECULE_EPHEMERAL_DIRECTORY"], "ansible.log")
    with open(log_file, encoding="utf-8", errors="replace") as handle:
        log = handle.read()
    assert "PLAY RECAP" in log and "site-app" in log, "the log does not hold the site runs"
    leaked = sorted(name for name, value in SECRETS.items() if str(value) in log)
    assert not leaked, "secret values found in %s: %s" % (log_file, leaked)


# ------------------------------------------------------------------ observability of the whole flow
def prometheus(path):
    return get_json(OPS, "http://127.0.0.1:9090" + path)


def query(promql):
    return prometheus("/api/v1/query?query=" + urllib.parse.quote(promql))["data"]["result"]


def test_every_target_the_inventory_declares_is_up():
    def all_up():
        found = prometheus("/api/v1/targets?state=active")["data"]["activeTargets"]
        return found if found and all(t["health"] == "up" for t in found) else None

    eventually(all_up)
    found = prometheus("/api/v1/targets?state=active")["data"]["activeTargets"]
    down = ["%s %s: %s" % (t["labels"]["job"], t["scrapeUrl"], t["lastError"]) for t in found if t["health"] != "up"]
    assert not down, down
    jobs = {t["labels"]["job"] for t in found}
    assert {"prometheus", "node", "kong", "haproxy", "kuma_cp", "kuma_dataplanes", "postgres_exporter", "zipkin",
            "grafana"} <= jobs, jobs
    nodes = {t["labels"]["instance"].split(":")[0] for t in found if t["labels"]["job"] == "node"}
    assert nodes == {"site-db", "site-kong1", "site-kong2", "site-app", "site-ops", "site-client"}
    # the services' data planes, found from the inventory
    dataplanes = {t["labels"]["instance"].split(":")[0] for t in found if t["labels"]["job"] == "kuma_dataplanes"}
    assert dataplanes == {"site-kong1", "site-kong2", "site-app"}, dataplanes


def test_requests_through_the_gateway_are_counted_and_traced():
    for _attempt in range(5):
        assert through_gateway("/ai/", ALICE)[0] == 200
    counted = eventually(lambda: query('sum(kong_http_requests_total{service="ai-service",code="200"}) >= 5'))
    assert counted, query("kong_http_requests_total")
    traces = eventually(lambda: get_json(OPS, "http://127.0.0.1:9411/api/v2/traces?serviceName=kong&limit=100"))
    paths = {span.get("tags", {}).get("http.path") for trace in traces for span in trace}
    assert "/ai/" in paths, sorted(p for p in paths if p)[:20]


def test_grafana_shows_the_platform_data_sources_and_dashboards():
    auth = "admin:" + SECRETS["vault_grafana_admin_password"]
    sources = {d["uid"]: d for d in get_json(OPS, "http://127.0.0.1:3000/api/datasources", "-u", auth)}
    assert sources["prometheus"]["url"] == "http://site-ops:9090"
    assert sources["zipkin"]["url"] == "http://site-ops:9411"
    titles = {d["title"] for d in get_json(OPS, "http://127.0.0.1:3000/api/search?type=dash-db", "-u", auth)}
    assert len(titles) >= 4, titles


def test_the_smoke_checks_of_the_site_run_passed():
    report = json.loads(open(os.path.join(os.environ["MOLECULE_EPHEMERAL_DIRECTORY"], "smoke.json"),
                             encoding="utf-8").read())
    checks = {c["check"]: c for c in report["checks"]}
    assert all(c["ok"] for c in checks.values()), [c for c in checks.values() if not c["ok"]]
    assert {"core-api via gateway, with key", "ai-service via gateway, with key", "ghost via gateway, with key",
            "core-api via gateway, no key"} <= set(checks), sorted(checks)


def test_backup_freshness_reaches_prometheus_through_the_textfile_collector():
    fresh = eventually(lambda: query('time() - aic_pgbackrest_last_good_backup_timestamp_seconds < 3600'))
    assert fresh, query("aic_pgbackrest_last_good_backup_timestamp_seconds")
    assert query("pg_up == 1"), query("pg_up")


def test_alert_fires_when_an_exporter_stops_and_clears_when_it_is_back():
    DB.run("systemctl stop prometheus-postgres-exporter")
    try:
        def firing():
            alerts = prometheus("/api/v1/alerts")["data"]["alerts"]
            return [a for a in alerts if a["state"] == "firing" and a["labels"].get("job") == "postgres_exporter"]

        fired = eventually(firing, timeout=180)
        assert fired, prometheus("/api/v1/alerts")
        assert fired[0]["labels"]["alertname"] == "TargetDown"
    finally:
        DB.run("systemctl start prometheus-postgres-exporter")
    assert eventually(lambda: query('up{job="postgres_exporter"} == 1'))
