"""What Prometheus, and a DBA checking privileges, would see of the exporter."""

import testinfra

HOSTS = ["aic-molecule-debian12", "aic-molecule-debian13"]


def _sql(host, query):
    return host.check_output("psql -XAtq -U postgres -c \"%s\"" % query)


def test_exporter_runs_and_reaches_the_database(host):
    assert host.service("prometheus-postgres-exporter").is_running
    metrics = host.check_output("curl -fsS http://127.0.0.1:9187/metrics")
    assert "\npg_up 1\n" in "\n" + metrics + "\n"
    assert "pg_stat_database_xact_commit" in metrics


def test_monitoring_role_is_least_privilege(host):
    assert _sql(host, "SELECT rolsuper, rolcreaterole, rolcreatedb FROM pg_roles WHERE rolname = 'prometheus'") == "f|f|f"
    groups = _sql(host, "SELECT string_agg(b.rolname, ',' ORDER BY b.rolname) FROM pg_auth_members m "
                        "JOIN pg_roles b ON b.oid = m.roleid JOIN pg_roles r ON r.oid = m.member WHERE r.rolname = 'prometheus'")
    assert groups == "pg_monitor"
    assert _sql(host, "SELECT rolpassword IS NULL FROM pg_authid WHERE rolname = 'prometheus'") == "t"


def test_no_password_in_the_exporter_configuration(host):
    env = host.file("/etc/aic-gateway/postgres_exporter.env")
    assert env.mode == 0o600
    settings = [line for line in env.content_string.splitlines() if line and not line.startswith("#")]
    dsn = [line for line in settings if line.startswith("DATA_SOURCE_NAME=")][0]
    assert "user=prometheus" in dsn
    assert "password" not in dsn.lower() and "@" not in dsn
    assert not [line for line in settings if "PASS" in line.upper()]


def test_a_scraper_on_the_declared_network_gets_metrics(host):
    me = host.check_output("hostname")
    peer = testinfra.get_host("podman://" + [h for h in HOSTS if h != me][0])
    run = peer.run("curl -fsS --max-time 5 http://%s:9187/metrics" % me)
    assert run.rc == 0, run.stderr
    assert "pg_up 1" in run.stdout


def test_service_runs_hardened(host):
    unit = host.check_output("systemctl show prometheus-postgres-exporter -p NoNewPrivileges -p ProtectSystem -p User")
    assert "NoNewPrivileges=yes" in unit
    assert "ProtectSystem=strict" in unit
    assert "User=prometheus" in unit
