# Copyright (c) aic.gateway contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Backup jobs of aic.gateway.postgresql_backup, run by systemd units and by the playbooks.

Installed as /usr/local/lib/aic-gateway/aic-pg-backup.py and run through /usr/local/sbin/aic-pg-backup.

  run JOB                 one job, on the primary only (nothing to do on a standby):
                            full, diff, incr  pgBackRest backup (pgBackRest jobs wait for each other)
                            verify            pgbackrest verify
                            dump              pg_dump -Fc per database + pg_dumpall --globals-only,
                                              keeping the newest dump_keep of each
  metrics [--job JOB]     node_exporter textfile metrics; with --job, also that job's result
                          (from $SERVICE_RESULT, as systemd's ExecStopPost= sets it)
  scratch-config DIR PORT write a configuration that starts a restored data directory as a
                          throw-away instance (unix socket only, no archiving)

Settings come from a JSON file (--config, default /etc/aic-gateway/pg-backup.json).
"""

from __future__ import annotations

import argparse
import calendar
import fcntl
import json
import os
import re
import subprocess
import sys
import tempfile
import time

DEFAULT_CONFIG = "/etc/aic-gateway/pg-backup.json"
DUMP_NAME = re.compile(r"^(?P<db>.+)-(?P<stamp>\d{8}T\d{6}Z)\.dump$")
# pg_controldata names of the settings a recovering server may not set lower than its origin.
CONTROL_SETTINGS = {
    "max_connections setting": "max_connections",
    "max_worker_processes setting": "max_worker_processes",
    "max_wal_senders setting": "max_wal_senders",
    "max_prepared_xacts setting": "max_prepared_transactions",
    "max_locks_per_xact setting": "max_locks_per_transaction",
}


class JobError(Exception):
    pass


def log(message):
    sys.stdout.write(message + "\n")
    sys.stdout.flush()


def run(argv, capture=True):
    proc = subprocess.run(argv, stdout=subprocess.PIPE if capture else None,
                          stderr=subprocess.PIPE if capture else None, universal_newlines=True, check=False)
    if proc.returncode != 0:
        detail = (proc.stderr or proc.stdout or "").strip() if capture else ""
        raise JobError("%s failed (exit %d)%s" % (" ".join(argv[:3]), proc.returncode, ": " + detail if detail else ""))
    return proc.stdout if capture else ""


def psql(conf, sql, database="postgres"):
    return run([os.path.join(conf["bin_directory"], "psql"), "-X", "-A", "-t", "-q",
                "-h", conf["socket_directory"], "-p", str(conf["port"]), "-d", database, "-c", sql]).strip()


def is_primary(conf):
    return psql(conf, "SELECT pg_is_in_recovery()") == "f"


class Lock(object):
    """An exclusive lock that waits, so a full and an incremental started together run one after the other."""

    def __init__(self, path):
        self.path = path
        self.handle = None

    def __enter__(self):
        self.handle = open(self.path, "a")
        fcntl.flock(self.handle, fcntl.LOCK_EX)
        return self

    def __exit__(self, *exc):
        fcntl.flock(self.handle, fcntl.LOCK_UN)
        self.handle.close()


def pgbackrest(conf, *args):
    return [conf["pgbackrest"], "--stanza=" + conf["stanza"]] + list(args)


def cmd_backup(conf, backup_type):
    with Lock(conf["lock_file"]):
        log("pgBackRest %s backup of stanza %s" % (backup_type, conf["stanza"]))
        run(pgbackrest(conf, "--type=" + backup_type, "--log-level-console=info", "backup"), capture=False)


def cmd_verify(conf):
    with Lock(conf["lock_file"]):
        run(pgbackrest(conf, "--log-level-console=info", "verify"), capture=False)


def dump_databases(conf):
    if conf.get("dump_databases"):
        return list(conf["dump_databases"])
    names = psql(conf, "SELECT datname FROM pg_database WHERE datallowconn AND NOT datistemplate ORDER BY 1")
    return [name for name in names.splitlines() if name]


def dumps_of(directory, database):
    """Complete dumps of one database, oldest first."""
    if not os.path.isdir(directory):
        return []
    found = []
    for name in os.listdir(directory):
        match = DUMP_NAME.match(name)
        if match and match.group("db") == database:
            found.append(os.path.join(directory, name))
    return sorted(found)


def expire(paths, keep):
    """Remove all but the newest `keep` paths (already sorted oldest first); return what was removed."""
    doomed = paths[:-keep] if keep > 0 else []
    for path in doomed:
        os.remove(path)
    return doomed


def cmd_dump(conf):
    base = conf["dump_directory"]
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    failures = []
    with Lock(conf["lock_file"] + ".dump"):
        for database in dump_databases(conf) + ["globals"]:
            directory = os.path.join(base, database)
            os.makedirs(directory, mode=0o700, exist_ok=True)
            final = os.path.join(directory, "%s-%s.dump" % (database, stamp))
            partial = final + ".partial"
            if database == "globals":
                argv = [os.path.join(conf["bin_directory"], "pg_dumpall"), "--globals-only", "-f", partial]
            else:
                argv = [os.path.join(conf["bin_directory"], "pg_dump"), "-Fc", "-d", database, "-f", partial]
            argv += ["-h", conf["socket_directory"], "-p", str(conf["port"])]
            try:
                run(argv)
                os.chmod(partial, 0o600)
                os.rename(partial, final)
            except (JobError, OSError) as exc:
                failures.append("%s: %s" % (database, exc))
                if os.path.exists(partial):
                    os.remove(partial)
                continue
            removed = expire(dumps_of(directory, database), int(conf["dump_keep"]))
            log("dumped %s to %s (%d bytes)%s" % (database, final, os.path.getsize(final),
                                                  "; expired %d older" % len(removed) if removed else ""))
    if failures:
        raise JobError("dump failed for " + "; ".join(failures))


def cmd_run(conf, job):
    """One job; on a standby nothing, so the same timers can run on every server of a cluster."""
    if not is_primary(conf):
        log("this server is a standby: the %s job runs on the primary only; nothing to do" % job)
    elif job in ("full", "diff", "incr"):
        cmd_backup(conf, job)
    elif job == "verify":
        cmd_verify(conf)
    else:
        cmd_dump(conf)


def escape_label(value):
    return str(value).replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def render(metrics):
    """metrics: list of (name, help, [(labels dict, value)]) -> Prometheus text format."""
    lines = []
    for name, text, samples in metrics:
        lines.append("# HELP %s %s" % (name, text))
        lines.append("# TYPE %s gauge" % name)
        for labels, value in samples:
            label_text = ",".join('%s="%s"' % (key, escape_label(labels[key])) for key in sorted(labels))
            lines.append("%s%s %s" % (name, "{%s}" % label_text if label_text else "", value))
    return "\n".join(lines) + "\n"


def pgbackrest_metrics(info, stanza):
    """Metrics from `pgbackrest info --output=json` for one stanza."""
    entry = next((item for item in info if item.get("name") == stanza), None)
    status = entry["status"]["code"] if entry else 1
    backups = entry.get("backup", []) if entry else []
    last, count, size = {}, {}, {}
    good = 0
    for backup in backups:
        kind, stop = backup["type"], int(backup["timestamp"]["stop"])
        count[kind] = count.get(kind, 0) + 1
        if stop >= last.get(kind, 0):
            last[kind] = stop
            size[kind] = backup.get("info", {}).get("repository", {}).get("delta", 0)
        if not backup.get("error"):
            good = max(good, stop)
    label = {"stanza": stanza}
    return [
        ("aic_pgbackrest_status", "pgBackRest stanza status code (0 ok, 1 missing stanza path, 2 no valid backups, ...).",
         [(label, status)]),
        ("aic_pgbackrest_last_good_backup_timestamp_seconds",
         "Completion time of the newest backup without errors, of any type (0: none).", [(label, good)]),
        ("aic_pgbackrest_last_backup_timestamp_seconds", "Completion time of the newest backup of each type.",
         [(dict(label, type=kind), last[kind]) for kind in sorted(last)]),
        ("aic_pgbackrest_backups", "Backups in the repository, by type.",
         [(dict(label, type=kind), count[kind]) for kind in sorted(count)]),
        ("aic_pgbackrest_last_backup_repository_bytes", "Bytes the newest backup of each type added to the repository.",
         [(dict(label, type=kind), size[kind]) for kind in sorted(size)]),
    ]


def dump_metrics(base):
    last, size, files = [], [], []
    if os.path.isdir(base):
        for database in sorted(os.listdir(base)):
            found = dumps_of(os.path.join(base, database), database)
            if not found:
                continue
            stamp = DUMP_NAME.match(os.path.basename(found[-1])).group("stamp")
            when = calendar.timegm(time.strptime(stamp, "%Y%m%dT%H%M%SZ"))
            label = {"database": database}
            last.append((label, when))
            size.append((label, os.path.getsize(found[-1])))
            files.append((label, len(found)))
    return [
        ("aic_pg_dump_last_timestamp_seconds", "Time of the newest complete pg_dump of each database.", last),
        ("aic_pg_dump_last_size_bytes", "Size of the newest complete pg_dump of each database.", size),
        ("aic_pg_dump_files", "Complete dumps kept for each database.", files),
    ]


def previous_value(path, name):
    try:
        with open(path) as handle:
            for line in handle:
                if line.startswith(name + "{") or line.startswith(name + " "):
                    return line.rsplit(" ", 1)[1].strip()
    except OSError:
        pass
    return "0"


def write_textfile(directory, name, text):
    os.makedirs(directory, exist_ok=True)
    handle, tmp = tempfile.mkstemp(dir=directory, prefix="." + name, suffix=".tmp")
    with os.fdopen(handle, "w") as out:
        out.write(text)
    os.chmod(tmp, 0o644)
    os.rename(tmp, os.path.join(directory, name))


def as_postgres(argv):
    if os.geteuid() == 0:
        return ["runuser", "-u", "postgres", "--"] + argv
    return argv


def cmd_metrics(conf, job=None, result=None):
    directory = conf["textfile_directory"]
    now = int(time.time())
    if job:
        path = os.path.join(directory, "aic_pg_backup_job_%s.prom" % job)
        success = result == "success"
        last_success = now if success else previous_value(path, "aic_pg_backup_job_last_success_timestamp_seconds")
        label = {"job": job, "stanza": conf["stanza"]}
        write_textfile(directory, os.path.basename(path), render([
            ("aic_pg_backup_job_last_run_timestamp_seconds", "When the backup job last finished.", [(label, now)]),
            ("aic_pg_backup_job_last_success", "Whether the last run of the backup job succeeded.", [(label, int(success))]),
            ("aic_pg_backup_job_last_success_timestamp_seconds", "When the backup job last succeeded (0: never).",
             [(label, last_success)]),
        ]))
    try:
        info = json.loads(run(as_postgres(pgbackrest(conf, "--output=json", "info"))) or "[]")
    except (JobError, ValueError) as exc:
        log("pgbackrest info failed, reporting the stanza as unknown: %s" % exc)
        info = []
    metrics = pgbackrest_metrics(info, conf["stanza"]) + dump_metrics(conf["dump_directory"])
    metrics.append(("aic_pg_backup_metrics_timestamp_seconds", "When these metrics were written.", [({}, now)]))
    write_textfile(directory, "aic_pg_backup.prom", render(metrics))


def control_settings(text):
    """Settings from pg_controldata output that a recovering copy must match or exceed."""
    found = {}
    for line in text.splitlines():
        key, dummy, value = line.partition(":")
        if key.strip() in CONTROL_SETTINGS and value.strip():
            found[CONTROL_SETTINGS[key.strip()]] = value.strip()
    return found


def scratch_settings(data_dir, port, socket_dir, control):
    settings = {
        "port": str(port),
        "listen_addresses": "''",
        "unix_socket_directories": "'%s'" % socket_dir,
        "hba_file": "'%s/aic-scratch-hba.conf'" % data_dir,
        "ident_file": "'%s/aic-scratch-ident.conf'" % data_dir,
        "archive_mode": "off",
        "shared_buffers": "128MB",
        "log_destination": "stderr",
        "logging_collector": "off",
    }
    settings.update(control)
    return settings


def cmd_scratch_config(conf, data_dir, port):
    control = control_settings(run([os.path.join(conf["bin_directory"], "pg_controldata"), data_dir]))
    settings = scratch_settings(data_dir, port, conf["socket_directory"], control)
    with open(os.path.join(data_dir, "aic-scratch.conf"), "w") as out:
        out.write("# Throw-away instance of a restored backup (aic.gateway): unix socket only, no archiving.\n")
        for key in sorted(settings):
            out.write("%s = %s\n" % (key, settings[key]))
    with open(os.path.join(data_dir, "aic-scratch-hba.conf"), "w") as out:
        out.write("local all postgres peer map=aic_scratch\n")
    with open(os.path.join(data_dir, "aic-scratch-ident.conf"), "w") as out:
        # root administers it as postgres, as the cluster's own pg_ident map allows.
        out.write("aic_scratch postgres postgres\naic_scratch root postgres\n")
    log(os.path.join(data_dir, "aic-scratch.conf"))


def main(argv=None):
    parser = argparse.ArgumentParser(prog="aic-pg-backup", description=__doc__.split("\n", maxsplit=1)[0])
    parser.add_argument("--config", default=DEFAULT_CONFIG)
    sub = parser.add_subparsers(dest="command")
    sub.required = True
    job = sub.add_parser("run")
    job.add_argument("job", choices=["full", "diff", "incr", "verify", "dump"])
    metrics = sub.add_parser("metrics")
    metrics.add_argument("--job")
    scratch = sub.add_parser("scratch-config")
    scratch.add_argument("data_dir")
    scratch.add_argument("port", type=int)
    args = parser.parse_args(argv)
    with open(args.config) as handle:
        conf = json.load(handle)
    try:
        if args.command == "run":
            cmd_run(conf, args.job)
        elif args.command == "metrics":
            cmd_metrics(conf, args.job, os.environ.get("SERVICE_RESULT", "success"))
        elif args.command == "scratch-config":
            cmd_scratch_config(conf, args.data_dir, args.port)
    except JobError as exc:
        sys.stderr.write("aic-pg-backup %s: %s\n" % (args.command, exc))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
