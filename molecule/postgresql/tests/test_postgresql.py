"""PostgreSQL as a client on the other test host and an operator on this one would see it."""

import pytest
import testinfra

HOSTS = ["aic-molecule-debian12", "aic-molecule-debian13"]
MAJOR = {"aic-molecule-debian12": "15", "aic-molecule-debian13": "17"}


def _peer(host):
    me = host.check_output("hostname")
    return testinfra.get_host("podman://" + [h for h in HOSTS if h != me][0]), me


def _sql(host, query):
    return host.check_output("psql -XAtq -U postgres -c %s" % _quote(query))


def _quote(text):
    return "'" + text.replace("'", "'\\''") + "'"


def _remote(client, server, user, password, sslmode, query="SELECT 1"):
    return client.run(
        "PGPASSWORD=%s PGCONNECT_TIMEOUT=5 psql -XAtq %s -c %s"
        % (_quote(password), _quote("host=%s dbname=appdb user=%s sslmode=%s" % (server, user, sslmode)), _quote(query))
    )


def test_the_distribution_major_runs_with_checksums_and_tls(host):
    me = host.check_output("hostname")
    assert _sql(host, "SHOW server_version").startswith(MAJOR[me] + ".")
    assert _sql(host, "SHOW ssl") == "on"
    assert _sql(host, "SHOW data_checksums") == "on"
    assert _sql(host, "SHOW log_connections") == "on"


def test_private_key_is_readable_by_postgres_only(host):
    me = host.check_output("hostname")
    key = host.file("/etc/postgresql/%s/main/tls/server.key" % MAJOR[me])
    assert key.user == "postgres"
    assert key.mode == 0o600


def test_password_is_stored_as_scram(host):
    assert _sql(host, "SELECT rolpassword LIKE 'SCRAM-SHA-256$%' FROM pg_authid WHERE rolname = 'app'") == "t"


def test_remote_client_connects_with_scram_over_tls(host):
    peer, me = _peer(host)
    run = _remote(peer, me, "app", "app-secret-1", "require", "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
    assert run.rc == 0, run.stderr
    assert run.stdout.strip() == "t"


def test_remote_client_without_tls_is_refused(host):
    peer, me = _peer(host)
    run = _remote(peer, me, "app", "app-secret-1", "disable")
    assert run.rc != 0
    assert "no pg_hba.conf entry" in run.stderr


def test_role_without_a_pg_hba_entry_is_refused(host):
    peer, me = _peer(host)
    run = _remote(peer, me, "intruder", "intruder-secret-1", "require")
    assert run.rc != 0
    assert "no pg_hba.conf entry" in run.stderr
    assert 'user "intruder"' in run.stderr


@pytest.mark.parametrize("password", ["wrong", ""])
def test_wrong_password_is_refused(host, password):
    peer, me = _peer(host)
    run = _remote(peer, me, "app", password, "require")
    assert run.rc != 0
    assert "authentication failed" in run.stderr or "no password supplied" in run.stderr


def test_database_is_owned_by_its_consumer(host):
    assert _sql(host, "SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = 'appdb'") == "app"


def test_port_is_open_only_through_the_declared_rule(host):
    table = host.check_output("nft list table inet aic_gateway")
    assert 'tcp dport 5432 accept comment "postgresql: postgresql"' in table
