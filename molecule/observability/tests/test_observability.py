"""The observability scenario as an operator sees it: everything the inventory declares is scraped and up,
an alert fires when an exporter stops, Grafana shows the platform's data sources and dashboards, and a
request through Kong leaves a trace in Zipkin. Prometheus and the exporters are the real Debian packages;
Kong, Kuma, Grafana and Zipkin are the stand-ins (tests/standins)."""

import json
import time
import urllib.parse

import testinfra

GRAFANA_AUTH = "admin:obs-grafana-1"


def host(name):
    return testinfra.get_host("podman://" + name)


MON = host("obs-mon")
KONG = host("obs-kong")


def get_json(node, url, extra=""):
    answer = node.run("curl -sf -m 10 %s '%s'" % (extra, url))
    assert answer.rc == 0, "%s: %s" % (url, answer.stderr)
    return json.loads(answer.stdout)


def prometheus(path):
    return get_json(MON, "http://127.0.0.1:9090" + path)


def query(promql):
    return prometheus("/api/v1/query?query=" + urllib.parse.quote(promql))["data"]["result"]


def eventually(check, timeout=120, interval=3):
    """Polls until check() returns a truthy value; returns the last value (the assertion is the caller's)."""
    deadline = time.monotonic() + timeout
    value = check()
    while not value and time.monotonic() < deadline:
        time.sleep(interval)
        value = check()
    return value


def targets():
    return prometheus("/api/v1/targets?state=active")["data"]["activeTargets"]


def test_every_target_the_inventory_declares_is_up():
    expected_jobs = {"prometheus", "node", "kong", "kuma_cp", "kuma_dataplanes", "postgres_exporter", "zipkin",
                     "grafana"}

    def all_up():
        found = targets()
        jobs = {t["labels"]["job"] for t in found}
        return found if expected_jobs <= jobs and all(t["health"] == "up" for t in found) else None

    eventually(all_up)
    found = targets()
    down = ["%s %s: %s" % (t["labels"]["job"], t["scrapeUrl"], t["lastError"]) for t in found if t["health"] != "up"]
    assert not down, down
    assert expected_jobs <= {t["labels"]["job"] for t in found}
    # node_exporter on every host of the inventory
    nodes = {t["labels"]["instance"].split(":")[0] for t in found if t["labels"]["job"] == "node"}
    assert nodes == {"obs-data", "obs-kong", "obs-mon"}


def test_mesh_data_planes_are_scraped_on_the_meshmetric_port():
    # Debian's Prometheus is built without kuma_sd_configs (its promtool refuses the field), so the role fell
    # back to file_sd targets from the inventory: the kuma_dp hosts on the MeshMetric port the role gave the mesh.
    config = MON.file("/etc/prometheus/prometheus.yml").content_string
    assert "kuma_sd_configs" not in config and "file_sd/kuma_dataplanes.json" in config
    dataplanes = [t for t in targets() if t["labels"]["job"] == "kuma_dataplanes"]
    assert [t["labels"]["instance"] for t in dataplanes] == ["obs-kong:5670"]
    # Kong's delegated gateway proxy serves Envoy's statistics there (tests/standins/kuma, MeshMetric backend)
    assert eventually(lambda: query('envoy_server_live{job="kuma_dataplanes"} == 1'))


def test_requests_through_kong_are_counted_and_traced():
    for attempt in range(5):
        answer = KONG.run("curl -s -o /dev/null -w '%{http_code}' http://127.0.0.1:8000/echo/hello.txt")
        assert answer.stdout == "200", "request %d" % attempt
    # Kong's prometheus plugin (status code metrics) as Prometheus scraped it from the Status API
    counted = eventually(lambda: query('sum(kong_http_requests_total{service="echo",code="200"}) >= 5'))
    assert counted, query("kong_http_requests_total")
    # Kong's zipkin plugin sent the spans to Zipkin on the monitoring host
    traces = eventually(lambda: get_json(MON, "http://127.0.0.1:9411/api/v2/traces?serviceName=kong&limit=50"))
    assert traces, get_json(MON, "http://127.0.0.1:9411/api/v2/services")
    paths = {span.get("tags", {}).get("http.path") for trace in traces for span in trace}
    assert "/echo/hello.txt" in paths, traces[:2]


def test_backup_freshness_reaches_prometheus_through_the_textfile_collector():
    fresh = eventually(lambda: query('time() - aic_pgbackrest_last_good_backup_timestamp_seconds < 3600'))
    assert fresh, query("aic_pgbackrest_last_good_backup_timestamp_seconds")
    assert query("pg_up == 1"), query("pg_up")


def test_alert_fires_when_an_exporter_stops_and_clears_when_it_is_back():
    data = host("obs-data")
    data.run("systemctl stop prometheus-postgres-exporter")
    try:
        def firing():
            alerts = prometheus("/api/v1/alerts")["data"]["alerts"]
            return [a for a in alerts if a["state"] == "firing" and a["labels"].get("job") == "postgres_exporter"]

        fired = eventually(firing, timeout=180)
        assert fired, prometheus("/api/v1/alerts")
        assert fired[0]["labels"]["alertname"] == "TargetDown"
    finally:
        data.run("systemctl start prometheus-postgres-exporter")
    assert eventually(lambda: query('up{job="postgres_exporter"} == 1'))


def test_grafana_shows_the_platform_data_sources_and_dashboards():
    assert get_json(MON, "http://127.0.0.1:3000/api/health")["database"] == "ok"
    sources = {d["uid"]: d for d in get_json(MON, "http://127.0.0.1:3000/api/datasources", "-u " + GRAFANA_AUTH)}
    assert sources["prometheus"]["type"] == "prometheus" and sources["prometheus"]["url"] == "http://obs-mon:9090"
    assert sources["zipkin"]["type"] == "zipkin" and sources["zipkin"]["url"] == "http://obs-mon:9411"
    titles = {d["title"] for d in get_json(MON, "http://127.0.0.1:3000/api/search?type=dash-db", "-u " + GRAFANA_AUTH)}
    assert len(titles) >= 4, titles


# DB-less Kong on Debian 13 (the kuma scenario's Kong node is DB-less on Debian 12).
def status_of(node, url, extra=""):
    return node.run("curl -s -o /dev/null -w '%%{http_code}' %s %s" % (extra, url)).stdout


def test_db_less_node_serves_the_declared_routes_and_nothing_else():
    assert status_of(KONG, "http://127.0.0.1:8007/status/ready") == "200"
    assert KONG.check_output("curl -sf http://127.0.0.1:8000/echo/hello.txt").strip() == "hello from obs-kong"
    # The route side_effect.yml added is gone again: the file is what the inventory says.
    assert status_of(KONG, "http://127.0.0.1:8000/extra/hello.txt") == "404"


def test_db_less_key_auth_protects_its_route():
    assert status_of(KONG, "http://127.0.0.1:8000/private/hello.txt") == "401"
    assert "hello from" in KONG.check_output("curl -sf -H 'apikey: alice-key-1' http://127.0.0.1:8000/private/hello.txt")


def test_db_less_admin_api_refuses_writes():
    answer = KONG.run("curl -s -w '\\n%{http_code}' -X POST http://127.0.0.1:8001/services -d name=x")
    body, status = answer.stdout.rsplit("\n", 1)
    assert status == "405"
    assert json.loads(body)["code"] == 12


def test_db_less_declarative_file_holds_the_platform_plugins_and_is_not_world_readable():
    declared = KONG.file("/etc/kong/kong.yml")
    assert declared.group == "kong" and declared.mode == 0o640
    assert KONG.run("KONG_DATABASE=off kong config parse /etc/kong/kong.yml").rc == 0
    assert "declarative_config = /etc/kong/kong.yml" in KONG.file("/etc/kong/kong.conf").content_string
    content = declared.content_string
    assert "name: prometheus" in content and "http_endpoint: http://obs-mon:9411/api/v2/spans" in content
