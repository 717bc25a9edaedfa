"""The service scenario as a user sees it: every instance of every service answers on its own port as its
own user, secrets reach the service but not the unit, the journal or another user, the firewall opens only
what a service declares. aic-echo is the scenario's test fixture (files/aic_echo)."""

import hashlib
import json

import pytest
import testinfra

HOSTS = ["service-debian12", "service-debian13"]
INSTANCES = [("echo", 0, 18080), ("echo", 1, 18081), ("echo-bin", 0, 18090), ("echo-tar", 0, 18100)]
SECRETS = ["molecule-token-4711-secret", "molecule-db-password-0815"]


def node(name):
    return testinfra.get_host("podman://" + name)


def info(host, port, address="127.0.0.1"):
    answer = host.run("curl -s -m 10 -w '\\n%%{http_code}' http://%s:%d/info" % (address, port))
    body, _sep, status = answer.stdout.rpartition("\n")
    assert status == "200", answer.stdout + answer.stderr
    return json.loads(body)


@pytest.mark.parametrize("name", HOSTS)
@pytest.mark.parametrize("service, index, port", INSTANCES)
def test_every_instance_runs_on_its_port_as_its_user(name, service, index, port):
    host = node(name)
    unit = host.service("aic-service-%s@%d" % (service, index))
    assert unit.is_running and unit.is_enabled
    answer = info(host, port)
    assert answer["instance"] == str(index) and answer["port"] == str(port) and answer["version"] == "1.0.0"
    user = host.check_output("stat -c %%U /proc/%d" % answer["pid"]).strip()
    assert user == "aic-" + service
    # The code is root's and not writable by the service; it runs from the current release.
    assert answer["cwd"] == "/opt/aic-services/%s/releases/1.0.0" % service
    assert host.file(answer["cwd"]).user == "root"


@pytest.mark.parametrize("name", HOSTS)
@pytest.mark.parametrize("service", sorted({entry[0] for entry in INSTANCES}))
def test_each_service_writes_its_own_data_directory_and_no_other(name, service):
    """The roots are root's: the first service's directory must not make its parent that service's (found by
    the site scenario, where Ghost, the third service, could not reach its data directory)."""
    host = node(name)
    for root in ("/opt/aic-services", "/var/lib/aic-services", "/etc/aic-services"):
        assert (host.file(root).user, host.file(root).mode) == ("root", 0o755)
    user = "aic-" + service
    probe = host.run("runuser -u %s -- sh -c 'touch /var/lib/aic-services/%s/probe && rm /var/lib/aic-services/%s/probe'"
                     % (user, service, service))
    assert probe.rc == 0, probe.stderr
    others = sorted({entry[0] for entry in INSTANCES} - {service})
    denied = host.run("runuser -u %s -- touch /var/lib/aic-services/%s/probe" % (user, others[0]))
    assert denied.rc != 0


@pytest.mark.parametrize("name", HOSTS)
def test_instances_get_their_own_values_and_the_shared_ones(name):
    host = node(name)
    first, second = info(host, 18080), info(host, 18081)
    assert (first["label"], second["label"]) == ("echo-0-on-18080", "echo-1-on-18081")
    assert first["greeting"] == second["greeting"] == "hello"
    assert first["address"] == "127.0.0.1"
    assert first["pg"] == {"PGHOST": "db.example.internal", "PGPORT": "5432", "PGDATABASE": "echo", "PGUSER": "echo",
                           "PGSSLMODE": "require"}
    digest = hashlib.sha256(b"molecule-token-4711-secret").hexdigest()
    assert first["sha256"]["ECHO_TOKEN"] == second["sha256"]["ECHO_TOKEN"] == digest
    assert first["sha256"]["PGPASSWORD"] == hashlib.sha256(b"molecule-db-password-0815").hexdigest()
    url = "postgresql://echo:molecule-db-password-0815@db.example.internal:5432/echo?sslmode=require"
    assert first["sha256"]["DATABASE_URL"] == hashlib.sha256(url.encode()).hexdigest()


@pytest.mark.parametrize("name", HOSTS)
def test_secrets_only_in_the_root_only_environment_file(name):
    host = node(name)
    env = host.file("/etc/aic-services/echo/service.env")
    assert (env.user, env.group, env.mode) == ("root", "root", 0o600)
    assert host.file("/etc/aic-services/echo").mode == 0o700
    content = host.check_output("cat /etc/aic-services/echo/service.env")
    assert 'ECHO_TOKEN="molecule-token-4711-secret"' in content
    unit = host.check_output("cat /etc/systemd/system/aic-service-echo@.service")
    journal = host.check_output("journalctl --no-pager -o cat -u 'aic-service-*'")
    for secret in SECRETS:
        assert secret not in unit and secret not in journal
    # The unit reads both files and is sandboxed.
    assert "EnvironmentFile=/etc/aic-services/echo/service.env" in unit
    assert "EnvironmentFile=/etc/aic-services/echo/instance-%i.env" in unit
    assert "NoNewPrivileges=yes" in unit and "ProtectSystem=strict" in unit
    assert "ReadWritePaths=/var/lib/aic-services/echo" in unit
    # The service user can read neither file's directory.
    assert host.run("runuser -u aic-echo -- cat /etc/aic-services/echo/service.env").rc != 0


def test_firewall_opens_only_the_declared_service():
    client, server = node(HOSTS[1]), HOSTS[0]
    # echo-bin listens on every address with firewall_sources: reachable from the other host.
    assert info(client, 18090, address=server)["instance"] == "0"
    # echo listens on loopback only (the mesh data plane forwards to it): not reachable.
    assert client.run("curl -s -m 5 http://%s:18080/health" % server).rc != 0
    ruleset = node(server).check_output("nft list ruleset")
    assert "tcp dport 18090" in ruleset and "tcp dport 18080" not in ruleset


@pytest.mark.parametrize("name", HOSTS)
def test_the_third_instance_of_the_side_effect_is_gone(name):
    host = node(name)
    assert not host.service("aic-service-echo@2").is_running
    assert not host.service("aic-service-echo@2").is_enabled
    assert host.run("curl -s -m 5 http://127.0.0.1:18082/health").rc != 0
