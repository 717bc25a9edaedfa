"""What an operator of the monitoring would see: exporters and servers on both install paths, every declared
target up, an alert firing when an exporter stops, bad input refused, reloads instead of restarts."""

import json
import re
import time

import testinfra

HOSTS = ["prometheus-debian12", "prometheus-debian13"]
ARCHIVE_HOST = "prometheus-debian13"


def _me(host):
    return host.check_output("hostname")


def _other(host):
    return [h for h in HOSTS if h != _me(host)][0]


def _get(host, path):
    return json.loads(host.check_output("curl -fsS --max-time 5 'http://127.0.0.1:9090%s'" % path))


def _node_service(name):
    return "node_exporter" if name == ARCHIVE_HOST else "prometheus-node-exporter"


def _poll(check, limit=180):
    """Poll until check() returns a true value; the limit only keeps a broken setup from hanging the run."""
    deadline = time.time() + limit
    while True:
        value = check()
        if value or time.time() > deadline:
            return value
        time.sleep(2)


def test_install_path_per_host(host):
    if _me(host) == ARCHIVE_HOST:
        assert not host.package("prometheus").is_installed
        assert not host.package("prometheus-node-exporter").is_installed
        assert host.file("/usr/local/bin/prometheus").linked_to == "/opt/prometheus/prometheus-2.42.0.linux-amd64/prometheus"
        assert host.file("/usr/local/bin/node_exporter").linked_to == "/opt/node_exporter/node_exporter-1.5.0.linux-amd64/node_exporter"
        assert host.service("node_exporter").is_running and host.service("node_exporter").is_enabled
        assert host.user("node_exporter").shell == "/usr/sbin/nologin"
    else:
        assert host.package("prometheus").is_installed
        assert host.package("prometheus-node-exporter").is_installed
        assert host.service("prometheus-node-exporter").is_running
    assert host.service("prometheus").is_running and host.service("prometheus").is_enabled


def test_services_run_hardened_as_their_own_users(host):
    unit = host.check_output("systemctl show prometheus -p NoNewPrivileges -p ProtectSystem -p User -p ReadWritePaths")
    assert "NoNewPrivileges=yes" in unit and "ProtectSystem=strict" in unit and "User=prometheus" in unit
    assert "/var/lib/prometheus/metrics2" in unit
    node = host.check_output("systemctl show %s -p ProtectSystem -p User" % _node_service(_me(host)))
    assert "ProtectSystem=strict" in node
    assert "User=root" not in node


def test_node_exporter_reads_the_backup_textfile_directory(host):
    # aic.gateway.postgresql_backup writes its freshness metrics into this directory.
    path = "/var/lib/prometheus/node-exporter/aic_molecule_test.prom"
    host.check_output("printf 'aic_molecule_test_metric 42\\n' > %s.tmp && mv %s.tmp %s" % (path, path, path))
    try:
        metrics = host.check_output("curl -fsS --max-time 5 http://127.0.0.1:9100/metrics")
        assert "\naic_molecule_test_metric 42\n" in metrics
    finally:
        host.check_output("rm -f %s" % path)


def test_every_declared_target_is_up(host):
    targets = _get(host, "/api/v1/targets")["data"]["activeTargets"]
    found = {(t["labels"]["job"], t["labels"]["instance"]): t for t in targets}
    expected = {("prometheus", "%s:9090" % h) for h in HOSTS} | {("node", "%s:9100" % h) for h in HOSTS}
    assert set(found) == expected
    down = {key: (t["health"], t["lastError"]) for key, t in found.items() if t["health"] != "up"}
    assert not down


def test_retention_is_set_the_way_the_version_expects(host):
    version = re.search(r"version (\d+)\.(\d+)\.(\d+)", host.check_output("prometheus --version 2>&1")).groups()
    # The command line of the running server (its flags API prints 7d as "1w").
    cmdline = host.check_output("tr '\\0' ' ' < /proc/$(systemctl show -p MainPID --value prometheus)/cmdline")
    config = host.file("/etc/prometheus/prometheus.yml").content_string
    if tuple(int(v) for v in version) < (3, 8, 0):
        assert "--storage.tsdb.retention.time=7d" in cmdline.split()
        assert "--storage.tsdb.retention.size=1GB" in cmdline.split()
        assert _get(host, "/api/v1/status/flags")["data"]["storage.tsdb.retention.time"] in ("7d", "1w")
        assert "retention" not in config
    else:
        assert "retention:" in config and "time: 7d" in config and "size: 1GB" in config
        assert "--storage.tsdb.retention" not in cmdline


def test_bad_rule_and_bad_config_were_refused_and_nothing_changed(host):
    for name, message in (("rule", "promtool refused the alert rules"), ("config", "promtool refused the configuration")):
        evidence = json.loads(host.file("/var/tmp/aic-prometheus-refused-%s.json" % name).content_string)
        assert not evidence["accepted"]
        assert message in evidence["message"]
        assert evidence["before"] == evidence["after"]
    # What is live is what converge wrote, and promtool accepts it.
    assert "Broken" not in host.file("/etc/prometheus/rules/aic-gateway.rules.yml").content_string
    assert "broken" not in host.file("/etc/prometheus/prometheus.yml").content_string
    host.check_output("promtool check config /etc/prometheus/prometheus.yml")


def test_a_new_target_came_by_reload_without_restart(host):
    evidence = json.loads(host.file("/var/tmp/aic-prometheus-reload.json").content_string)
    assert evidence["pid_before"] == evidence["pid_after"] and evidence["pid_before"] != "0"
    assert "http://%s:9100/metrics" % _other(host) in evidence["targets"]
    # The job was added by the side effect and removed again: the converged configuration is live.
    pools = {t["scrapePool"] for t in _get(host, "/api/v1/targets")["data"]["activeTargets"]}
    assert "extra_node" not in pools


def test_target_down_alert_fires_when_a_node_exporter_stops(host):
    other = _other(host)
    peer = testinfra.get_host("podman://" + other)
    instance = "%s:9100" % other

    def firing():
        alerts = _get(host, "/api/v1/alerts")["data"]["alerts"]
        return [a for a in alerts if a["labels"].get("alertname") == "TargetDown" and a["labels"].get("job") == "node"
                and a["labels"].get("instance") == instance and a["state"] == "firing"]

    def node_up():
        targets = _get(host, "/api/v1/targets")["data"]["activeTargets"]
        return [t for t in targets if t["labels"]["instance"] == instance and t["labels"]["job"] == "node"
                and t["health"] == "up"]

    # Start from no alert: a scrape that timed out on a busy machine (4 s timeout here) can leave one firing for a
    # moment. Only the node job counts: the side effect's extra_node job scraped the same exporter.
    assert _poll(lambda: not firing()), "TargetDown for %s fires before the exporter is stopped" % instance
    peer.check_output("systemctl stop %s" % _node_service(other))
    try:
        fired = _poll(firing)
    finally:
        peer.check_output("systemctl start %s" % _node_service(other))
    assert fired, "TargetDown for %s never fired" % instance
    assert fired[0]["labels"]["job"] == "node" and fired[0]["labels"]["severity"] == "critical"
    assert _poll(node_up), "%s did not come back up" % instance
