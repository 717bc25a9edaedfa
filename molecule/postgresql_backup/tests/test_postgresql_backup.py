"""What an operator of a backed-up PostgreSQL host sees after the scenario's backups, restores and drill."""

import json
import time

import pytest

HOSTS = ["aic-molecule-debian12", "aic-molecule-debian13"]
JOBS = ["full", "diff", "incr", "verify", "dump"]


def _info(host):
    out = host.check_output("runuser -u postgres -- pgbackrest --stanza=main --output=json info")
    return json.loads(out)[0]


def _sql(host, query, database="postgres"):
    return host.check_output("runuser -u postgres -- psql -XAtq -d %s -c \"%s\"" % (database, query))


def _metrics(host, name):
    samples = {}
    for line in host.file("/var/lib/prometheus/node-exporter/%s" % name).content_string.splitlines():
        if line and not line.startswith("#"):
            key, value = line.rsplit(" ", 1)
            samples[key] = float(value)
    return samples


@pytest.mark.parametrize("setting,value", [("archive_mode", "on"), ("archive_timeout", "10s"),
                                           ("archive_command", "pgbackrest --stanza=main archive-push %p")])
def test_wal_is_archived_through_pgbackrest(host, setting, value):
    assert _sql(host, "SHOW %s" % setting) == value


def test_archiver_has_no_failures_since_the_restore(host):
    failed, archived = _sql(host, "SELECT failed_count, archived_count FROM pg_stat_archiver").split("|")
    assert int(failed) == 0 and int(archived) > 0


def test_repository_holds_full_and_incremental_backups_and_is_ok(host):
    info = _info(host)
    kinds = [backup["type"] for backup in info["backup"]]
    assert info["status"]["code"] == 0
    assert "full" in kinds and "incr" in kinds
    assert not any(backup["error"] for backup in info["backup"])


def test_retention_keeps_at_most_the_configured_fulls_plus_the_new_one(host):
    fulls = [b for b in _info(host)["backup"] if b["type"] == "full"]
    assert 1 <= len(fulls) <= 2


def test_configuration_is_readable_by_postgres_only_and_checked(host):
    conf = host.file("/etc/pgbackrest/pgbackrest.conf")
    assert (conf.user, conf.group, conf.mode) == ("root", "postgres", 0o640)
    assert conf.contains("^repo1-retention-full=2$")
    assert host.run("/usr/local/sbin/aic-pgbackrest-config-check /etc/pgbackrest/pgbackrest.conf").rc == 0


def test_block_incremental_is_on_where_pgbackrest_has_it(host):
    version = tuple(int(part) for part in host.check_output("pgbackrest version").split()[-1].split(".")[:2])
    conf = host.file("/etc/pgbackrest/pgbackrest.conf")
    assert conf.contains("^repo1-block=y$") == (version >= (2, 46))


@pytest.mark.parametrize("job", JOBS)
def test_every_job_has_an_enabled_persistent_timer(host, job):
    timer = host.service("aic-pg-backup-%s.timer" % job)
    assert timer.is_enabled and timer.is_running
    unit = host.file("/etc/systemd/system/aic-pg-backup-%s.timer" % job)
    assert unit.contains("^Persistent=true$")
    assert host.check_output("systemctl show -p NextElapseUSecRealtime --value aic-pg-backup-%s.timer" % job) != ""


def test_jobs_run_as_postgres_in_a_read_only_system(host):
    props = host.check_output("systemctl show -p User -p ProtectSystem -p NoNewPrivileges aic-pg-backup@full.service")
    assert "User=postgres" in props and "ProtectSystem=strict" in props and "NoNewPrivileges=yes" in props


@pytest.mark.parametrize("database", ["appdb", "postgres", "globals"])
def test_logical_dumps_exist_and_are_private(host, database):
    listing = host.check_output("ls -1 /var/backups/postgresql/dumps/%s" % database).split()
    assert listing and all(name.endswith(".dump") for name in listing)
    newest = host.file("/var/backups/postgresql/dumps/%s/%s" % (database, sorted(listing)[-1]))
    assert newest.user == "postgres" and newest.mode == 0o600 and newest.size > 0


def test_dump_restores_with_pg_restore(host):
    newest = sorted(host.check_output("ls -1 /var/backups/postgresql/dumps/appdb").split())[-1]
    listing = host.check_output("runuser -u postgres -- pg_restore --list /var/backups/postgresql/dumps/appdb/%s" % newest)
    assert "TABLE DATA public ledger" in listing


def test_freshness_metric_is_the_newest_good_backup(host):
    samples = _metrics(host, "aic_pg_backup.prom")
    newest = max(int(b["timestamp"]["stop"]) for b in _info(host)["backup"])
    assert samples['aic_pgbackrest_last_good_backup_timestamp_seconds{stanza="main"}'] == newest
    assert samples['aic_pgbackrest_status{stanza="main"}'] == 0
    assert time.time() - newest < 3600


@pytest.mark.parametrize("job", ["full", "incr", "dump", "verify"])
def test_each_job_reports_its_last_success(host, job):
    samples = _metrics(host, "aic_pg_backup_job_%s.prom" % job)
    label = '{job="%s",stanza="main"}' % job
    assert samples["aic_pg_backup_job_last_success" + label] == 1
    assert samples["aic_pg_backup_job_last_success_timestamp_seconds" + label] > time.time() - 3600


def test_a_failed_drill_is_reported_and_the_last_passing_one_kept(host):
    # The scenario's last drill was made to fail (bad input); the one before it passed.
    samples = _metrics(host, "aic_pg_backup_job_drill.prom")
    label = '{job="drill",stanza="main"}'
    assert samples["aic_pg_backup_job_last_success" + label] == 0
    passed = samples["aic_pg_backup_job_last_success_timestamp_seconds" + label]
    assert time.time() - 3600 < passed < samples["aic_pg_backup_job_last_run_timestamp_seconds" + label]


def test_restored_cluster_serves_the_restored_rows(host):
    assert int(_sql(host, "SELECT count(*) FROM ledger", "appdb")) == 1650
