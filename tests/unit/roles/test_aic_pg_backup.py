"""The backup job runner the postgresql_backup role installs (roles/postgresql_backup/files/aic-pg-backup.py)."""

from __future__ import annotations

import importlib.util
import json
import os

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
SCRIPT = os.path.join(HERE, "..", "..", "..", "roles", "postgresql_backup", "files", "aic-pg-backup.py")
SPEC = importlib.util.spec_from_file_location("aic_pg_backup", SCRIPT)
backup = importlib.util.module_from_spec(SPEC)
SPEC.loader.exec_module(backup)

# `pgbackrest --stanza=main --output=json info` from pgBackRest 2.45 (Debian 12), trimmed to what is read.
INFO = json.loads("""[{"name": "main", "status": {"code": 0, "message": "ok"}, "backup": [
  {"label": "20261126-174011F", "type": "full", "error": false,
   "timestamp": {"start": 1795714811, "stop": 1795714814}, "info": {"repository": {"delta": 2816237}}},
  {"label": "20261126-174011F_20261126-180000I", "type": "incr", "error": false,
   "timestamp": {"start": 1795716000, "stop": 1795716003}, "info": {"repository": {"delta": 1000}}},
  {"label": "20261126-174011F_20261126-190000I", "type": "incr", "error": true,
   "timestamp": {"start": 1795719600, "stop": 1795719609}, "info": {"repository": {"delta": 2000}}}]}]""")


def samples(metrics):
    return {(name, tuple(sorted(labels.items()))): value for name, dummy, points in metrics for labels, value in points}


def test_freshness_is_the_newest_backup_without_errors():
    got = samples(backup.pgbackrest_metrics(INFO, "main"))
    assert got[("aic_pgbackrest_last_good_backup_timestamp_seconds", (("stanza", "main"),))] == 1795716003
    assert got[("aic_pgbackrest_last_backup_timestamp_seconds", (("stanza", "main"), ("type", "incr")))] == 1795719609
    assert got[("aic_pgbackrest_backups", (("stanza", "main"), ("type", "incr")))] == 2
    assert got[("aic_pgbackrest_status", (("stanza", "main"),))] == 0


def test_a_stanza_missing_from_the_repository_reports_no_good_backup():
    got = samples(backup.pgbackrest_metrics(INFO, "other"))
    assert got[("aic_pgbackrest_last_good_backup_timestamp_seconds", (("stanza", "other"),))] == 0
    assert got[("aic_pgbackrest_status", (("stanza", "other"),))] == 1


def test_textfile_format_has_help_type_and_escaped_labels():
    text = backup.render([("m", "Help text.", [({"a": 'x"y', "b": "z"}, 3)]), ("n", "Other.", [({}, 1)])])
    assert text == '# HELP m Help text.\n# TYPE m gauge\nm{a="x\\"y",b="z"} 3\n# HELP n Other.\n# TYPE n gauge\nn 1\n'


def test_dumps_expire_oldest_first_and_only_complete_dumps_of_that_database(tmp_path):
    names = ["app-20261120T023000Z.dump", "app-20261121T023000Z.dump", "app-20261122T023000Z.dump",
             "app-20261123T023000Z.dump.partial", "app-x-20261101T023000Z.dump", "notes.txt"]
    for name in names:
        (tmp_path / name).write_text("x")
    found = backup.dumps_of(str(tmp_path), "app")
    assert [os.path.basename(p) for p in found] == names[:3]
    removed = backup.expire(found, 2)
    assert [os.path.basename(p) for p in removed] == [names[0]]
    assert sorted(os.listdir(tmp_path)) == sorted(names[1:])


def test_dump_metrics_read_the_newest_dump_per_database(tmp_path):
    (tmp_path / "app").mkdir()
    (tmp_path / "app" / "app-20261120T023000Z.dump").write_text("old")
    (tmp_path / "app" / "app-20261121T023000Z.dump").write_text("newest")
    got = samples(backup.dump_metrics(str(tmp_path)))
    assert got[("aic_pg_dump_last_timestamp_seconds", (("database", "app"),))] == 1795228200  # 2026-11-21 02:30:00 UTC
    assert got[("aic_pg_dump_last_size_bytes", (("database", "app"),))] == 6
    assert got[("aic_pg_dump_files", (("database", "app"),))] == 2


def test_a_failed_job_keeps_its_last_success_time(tmp_path, monkeypatch):
    conf = {"stanza": "main", "textfile_directory": str(tmp_path), "dump_directory": str(tmp_path / "none"),
            "pgbackrest": "pgbackrest"}
    monkeypatch.setattr(backup, "run", lambda argv, capture=True: json.dumps(INFO))
    monkeypatch.setattr(backup.time, "time", lambda: 1000)
    backup.cmd_metrics(conf, "full", "success")
    monkeypatch.setattr(backup.time, "time", lambda: 2000)
    backup.cmd_metrics(conf, "full", "exit-code")
    text = (tmp_path / "aic_pg_backup_job_full.prom").read_text()
    assert 'aic_pg_backup_job_last_success{job="full",stanza="main"} 0' in text
    assert 'aic_pg_backup_job_last_success_timestamp_seconds{job="full",stanza="main"} 1000' in text
    assert 'aic_pg_backup_job_last_run_timestamp_seconds{job="full",stanza="main"} 2000' in text
    assert [n for n in os.listdir(tmp_path) if n.endswith(".tmp")] == []


CONTROLDATA = """pg_control version number:            1300
wal_level setting:                    replica
max_connections setting:              200
max_worker_processes setting:         8
max_wal_senders setting:              10
max_prepared_xacts setting:           0
max_locks_per_xact setting:           64
"""


def test_scratch_instance_keeps_the_settings_recovery_requires():
    settings = backup.scratch_settings("/d", 5433, "/var/run/postgresql", backup.control_settings(CONTROLDATA))
    assert settings["max_connections"] == "200"
    assert settings["max_prepared_transactions"] == "0"
    assert settings["max_locks_per_transaction"] == "64"
    assert settings["archive_mode"] == "off" and settings["listen_addresses"] == "''"
    assert settings["port"] == "5433"


@pytest.mark.parametrize("job", ["full", "diff", "incr", "verify", "dump"])
def test_a_standby_skips_every_job(job, monkeypatch, capsys):
    calls = []
    monkeypatch.setattr(backup, "run", lambda argv, capture=True: calls.append(argv) or "t\n")
    backup.cmd_run({"bin_directory": "/b", "socket_directory": "/s", "port": 5432}, job)
    assert len(calls) == 1 and "pg_is_in_recovery" in calls[0][-1]
    assert "standby" in capsys.readouterr().out


@pytest.mark.parametrize("job,expected", [("full", ["--type=full", "backup"]), ("incr", ["--type=incr", "backup"]),
                                          ("verify", ["verify"])])
def test_a_primary_runs_pgbackrest_for_the_job(job, expected, tmp_path, monkeypatch):
    calls = []
    monkeypatch.setattr(backup, "run", lambda argv, capture=True: calls.append(argv) or "f\n")
    conf = {"bin_directory": "/b", "socket_directory": "/s", "port": 5432, "pgbackrest": "pgbackrest",
            "stanza": "main", "lock_file": str(tmp_path / "jobs.lock")}
    backup.cmd_run(conf, job)
    assert calls[1][:2] == ["pgbackrest", "--stanza=main"]
    assert [arg for arg in calls[1] if arg in expected] == expected
