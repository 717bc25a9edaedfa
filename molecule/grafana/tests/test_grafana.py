"""The grafana scenario as a user sees it: Grafana (the stand-in package, tests/standins/grafana, NOT
Grafana) answers on port 3000 with the inventory's admin password, the platform's data sources and
dashboards; a changed password was really applied by the side effect; files keep the package's modes."""

import json

import pytest
import testinfra

HOSTS = ["grafana-deb12", "grafana-deb13"]
PASSWORD = "molecule-Admin-1"
DASHBOARDS = {"aic-kong": "Kong traffic and latency", "aic-mesh": "Mesh traffic",
              "aic-postgresql": "PostgreSQL and backups", "aic-hosts": "Hosts"}


def host(name):
    return testinfra.get_host("podman://" + name)


def api(node, path, user="admin", password=PASSWORD):
    """(HTTP status, body) of a GET on the local Grafana with basic auth."""
    answer = node.run("curl -s -m 10 -u %s:%s -w '\\n%%{http_code}' http://127.0.0.1:3000%s"
                      % (user, password, path))
    body, _sep, status = answer.stdout.rpartition("\n")
    return int(status), body


@pytest.mark.parametrize("name", HOSTS)
def test_health_reports_the_database_ok(name):
    node = host(name)
    answer = node.run("curl -s -m 10 http://127.0.0.1:3000/api/health")
    assert json.loads(answer.stdout)["database"] == "ok"
    assert node.service("grafana-server").is_running
    assert node.service("grafana-server").is_enabled


@pytest.mark.parametrize("name", HOSTS)
def test_datasources_point_at_the_inventory_hosts(name):
    # No `prometheus` group in the scenario: Prometheus is the first `monitoring` host; Zipkin the first `zipkin` host.
    status, body = api(host(name), "/api/datasources")
    assert status == 200, body
    sources = {d["name"]: d for d in json.loads(body)}
    assert set(sources) == {"Prometheus", "Zipkin"}
    assert (sources["Prometheus"]["uid"], sources["Prometheus"]["type"]) == ("prometheus", "prometheus")
    assert sources["Prometheus"]["url"] == "http://grafana-deb12:9090"
    assert sources["Prometheus"]["isDefault"] is True
    assert (sources["Zipkin"]["uid"], sources["Zipkin"]["type"]) == ("zipkin", "zipkin")
    assert sources["Zipkin"]["url"] == "http://grafana-deb13:9411"


@pytest.mark.parametrize("name", HOSTS)
def test_platform_dashboards_are_listed(name):
    status, body = api(host(name), "/api/search?type=dash-db")
    assert status == 200, body
    hits = {h["uid"]: h for h in json.loads(body)}
    assert {uid: hits[uid]["title"] for uid in DASHBOARDS if uid in hits} == DASHBOARDS
    assert set(hits) == set(DASHBOARDS)  # the side effect's extra dashboard was pruned
    assert {h["folderTitle"] for h in hits.values()} == {"AIC Gateway"}
    status, body = api(host(name), "/api/dashboards/uid/aic-kong")
    panels = json.loads(body)["dashboard"]["panels"]
    sources = {p["datasource"]["uid"] for p in panels if "datasource" in p}
    assert sources == {"prometheus"}


@pytest.mark.parametrize("name", HOSTS)
def test_admin_password_from_the_inventory_works_and_others_do_not(name):
    node = host(name)
    status, body = api(node, "/api/user")
    assert status == 200, body
    assert json.loads(body)["login"] == "admin"
    assert api(node, "/api/user", password="admin")[0] == 401


def test_changed_password_was_applied_to_the_existing_installation():
    node = host("grafana-deb12")
    seen = json.loads(node.file("/var/tmp/grafana-side-effect.json").content_string)
    # The role run with grafana_admin_password changed: the old one refused, the new one accepted.
    assert (int(seen["old_password_after_change"]), int(seen["new_password_after_change"])) == (401, 200)
    # Set back to the inventory's: the changed one is refused again.
    assert int(seen["changed_password_after_restore"]) == 401


def test_extra_dashboard_came_and_went_without_restart():
    seen = json.loads(host("grafana-deb12").file("/var/tmp/grafana-side-effect.json").content_string)
    assert "molecule-extra" in seen["uids_with_extra"]
    # Provisioning changes go through the reload API: the same process served it.
    assert seen["pid_before_extra"] == seen["pid_after_extra"] != "0"
    assert "molecule-extra" not in seen["uids_without_extra"]
    assert seen["extra_file_left"] in (False, "False")


@pytest.mark.parametrize("name", HOSTS)
@pytest.mark.parametrize("path", [
    "/etc/grafana/grafana.ini",
    "/etc/grafana/provisioning/datasources/aic-gateway.yaml",
    "/etc/grafana/provisioning/dashboards/aic-gateway.yaml",
    "/var/lib/grafana/dashboards/aic-gateway/aic-kong.json",
])
def test_files_are_root_grafana_0640(name, path):
    found = host(name).file(path)
    assert (found.user, found.group, found.mode) == ("root", "grafana", 0o640)


@pytest.mark.parametrize("name", HOSTS)
def test_secrets_are_not_readable_by_other_users(name):
    node = host(name)
    assert node.run("su -s /bin/sh nobody -c 'cat /etc/grafana/grafana.ini'").rc != 0
    ini = node.file("/etc/grafana/grafana.ini").content_string
    assert "secret_key = molecule-secret-key-0123456789" in ini
    # grafana_ini merged over the role's settings
    assert "root_url = http://localhost:3000/grafana-molecule/" in ini
    assert "http_port = 3000" in ini


def test_repository_is_apt_grafana_com_style_with_the_ascii_key():
    node = host("grafana-deb12")
    key = node.file("/etc/apt/keyrings/grafana.asc")
    assert key.content_string.startswith("-----BEGIN PGP PUBLIC KEY BLOCK-----")
    sources = node.file("/etc/apt/sources.list.d/grafana.sources").content_string
    assert "Suites: stable" in sources and "Components: main" in sources
    assert "Signed-By: /etc/apt/keyrings/grafana.asc" in sources
    assert node.package("grafana").version == "12.0.2"


def test_package_file_install_on_debian_13():
    node = host("grafana-deb13")
    assert node.package("grafana").version == "12.0.2"
    assert not node.file("/etc/apt/sources.list.d/grafana.sources").exists


@pytest.mark.parametrize("name", HOSTS)
def test_unit_is_the_packages_with_a_hardening_drop_in(name):
    node = host(name)
    show = node.run("systemctl show grafana-server -p User -p DropInPaths -p ProtectSystem -p LimitNOFILE").stdout
    assert "User=grafana" in show
    assert "/etc/systemd/system/grafana-server.service.d/aic-gateway.conf" in show
    assert "ProtectSystem=strict" in show
    assert "LimitNOFILE=4096" in show


def test_port_3000_is_reachable_from_the_other_host():
    answer = host("grafana-deb13").run("curl -s -m 10 http://grafana-deb12:3000/api/health")
    assert json.loads(answer.stdout)["database"] == "ok"


def test_rotated_repository_key_reaches_the_host():
    # The side effect re-signed the repository with a new key; the role fetched it and apt still works.
    seen = json.loads(host("grafana-deb12").file("/var/tmp/grafana-key-rotation.json").content_string)
    assert seen["key_before"] != seen["key_after"]
    assert seen["key_after"].strip() == seen["served_key"].strip()
    assert int(seen["apt_update_rc"]) == 0, seen["apt_update_output"]
    assert "NO_PUBKEY" not in seen["apt_update_output"] and "EXPKEYSIG" not in seen["apt_update_output"]
