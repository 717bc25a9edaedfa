"""Backup and restore times of aic.gateway.postgresql_backup on a ~1 GB database (pgbench scale 70).

    python3 benchmarks/postgresql_backup/run.py [--scale 70] [--debian 12|13] [--option KEY=VALUE ...] [--keep]

Boots one systemd container from the test image, applies aic.gateway.postgresql and
aic.gateway.postgresql_backup with their defaults (timers off), loads pgbench data and times:
a full pgBackRest backup, an incremental one after changing ~1% of the rows (one contiguous key
range), a restore of the latest backup into an empty directory until the copy accepts writes, and
pg_dump -Fc / pg_restore of the same database. Prints a table. Nothing here is a pass/fail test.
"""

import argparse
import json
import os
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
NAME = "aic-bench-pg"


def sh(argv, **kw):
    return subprocess.run(argv, check=True, text=True, **kw)


def inside(script, user="postgres"):
    argv = ["podman", "exec", NAME, "runuser", "-u", user, "--", "bash", "-ec", script]
    return sh(argv, capture_output=True).stdout.strip()


def timed(label, script, user="postgres"):
    start = time.monotonic()
    inside(script, user)
    seconds = time.monotonic() - start
    print("  %-58s %8.1f s" % (label, seconds), flush=True)
    return seconds


def size(path):
    return int(inside("du -sb %s | cut -f1" % path, "root"))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n", maxsplit=1)[0])
    parser.add_argument("--scale", type=int, default=70)
    parser.add_argument("--debian", default="12")
    parser.add_argument("--option", action="append", default=[], metavar="KEY=VALUE",
                        help="extra pgBackRest [global] option (postgresql_backup_options), e.g. repo1-block=y")
    parser.add_argument("--keep", action="store_true", help="leave the container running")
    args = parser.parse_args()

    subprocess.run(["podman", "rm", "-f", "-t", "5", NAME], capture_output=True, check=False)
    sh(["podman", "run", "-d", "--name", NAME, "--hostname", NAME, "--systemd=always",
        "--ulimit", "nofile=4096:4096", "--ulimit", "nproc=4096:4096",
        "localhost/aic-gateway/debian:%s" % args.debian, "/sbin/init"], capture_output=True)
    for dummy in range(60):
        state = subprocess.run(["podman", "exec", NAME, "systemctl", "is-system-running"],
                               capture_output=True, text=True, check=False).stdout.strip()
        if state in ("running", "degraded"):
            break
        time.sleep(1)
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=os.path.join(ROOT, ".build", "collections"))
    print("applying the roles ...", flush=True)
    sh([os.path.join(ROOT, ".venv", "bin", "ansible-playbook"), "-i", NAME + ",", "-c", "containers.podman.podman",
        "-e", json.dumps({"postgresql_backup_options": dict(o.split("=", 1) for o in args.option)}),
        os.path.join(ROOT, "benchmarks", "postgresql_backup", "site.yml")], env=env, capture_output=True)
    conf = json.loads(inside("cat /etc/aic-gateway/pg-backup.json", "root"))
    pgbin = conf["bin_directory"]
    stanza = conf["stanza"]
    rows = {}
    print("PostgreSQL %s, pgBackRest %s, %s CPU(s), process-max %s, compress-type %s, options %s" % (
        inside("%s/postgres --version | awk '{print $3}'" % pgbin), inside("pgbackrest version | awk '{print $2}'"),
        inside("nproc"), inside("grep ^process-max /etc/pgbackrest/pgbackrest.conf | cut -d= -f2", "root"),
        inside("grep ^compress-type /etc/pgbackrest/pgbackrest.conf | cut -d= -f2", "root"),
        " ".join(args.option) or "(role defaults)"), flush=True)

    rows["load"] = timed("pgbench -i -s %d (load)" % args.scale,
                         "createdb bench && %s/pgbench -i -q -s %d bench" % (pgbin, args.scale))
    dbsize = int(inside("psql -XAtc \"SELECT pg_database_size('bench')\""))
    accounts = args.scale * 100000
    rows["full"] = timed("pgBackRest full backup", "pgbackrest --stanza=%s --type=full backup" % stanza)
    repo_full = size("/var/lib/pgbackrest/backup")
    rows["change"] = timed("change 1%% of the rows (%d accounts, one key range)" % (accounts // 100),
                           "psql -XAqc \"UPDATE pgbench_accounts SET abalance = abalance + 1 WHERE aid <= %d\" bench"
                           % (accounts // 100))
    rows["incr"] = timed("pgBackRest incremental backup after the change",
                         "pgbackrest --stanza=%s --type=incr backup" % stanza)
    repo_incr = size("/var/lib/pgbackrest/backup") - repo_full
    inside("pgbackrest --stanza=%s check" % stanza)
    rows["restore"] = timed(
        "pgBackRest restore of the latest into an empty directory",
        "pgbackrest --stanza=%s --pg1-path=/var/lib/postgresql/bench-restore --archive-mode=off restore" % stanza)
    inside("/usr/local/sbin/aic-pg-backup scratch-config /var/lib/postgresql/bench-restore %d" % (conf["port"] + 1))
    rows["recover"] = timed(
        "start the restored copy, replay WAL, promote (ready for writes)",
        "%s/pg_ctl -D /var/lib/postgresql/bench-restore -o '-c config_file=/var/lib/postgresql/bench-restore/aic-scratch.conf'"
        " -l /tmp/bench-restore.log -w -t 3600 start >/dev/null && "
        "until [ \"$(psql -p %d -XAtc 'SELECT pg_is_in_recovery()')\" = f ]; do sleep 0.2; done" % (pgbin, conf["port"] + 1))
    restored = inside("psql -p %d -XAtc 'SELECT count(*) FROM pgbench_accounts' bench" % (conf["port"] + 1))
    inside("%s/pg_ctl -D /var/lib/postgresql/bench-restore -m fast stop >/dev/null" % pgbin)
    rows["dump"] = timed("pg_dump -Fc", "pg_dump -Fc -f /var/lib/postgresql/bench.dump bench")
    dump_size = size("/var/lib/postgresql/bench.dump")
    rows["pg_restore"] = timed("pg_restore -j 2 into a new database",
                               "createdb bench2 && pg_restore -j 2 -d bench2 /var/lib/postgresql/bench.dump")

    mib = 1024 * 1024
    print()
    print("| step | seconds | data |")
    print("|---|---:|---|")
    print("| database (pgbench scale %d) | | %.0f MiB, %d accounts |" % (args.scale, dbsize / mib, accounts))
    print("| pgBackRest full backup | %.1f | repository +%.0f MiB |" % (rows["full"], repo_full / mib))
    print("| pgBackRest incremental after 1%% change | %.1f | repository +%.0f MiB |" % (rows["incr"], repo_incr / mib))
    print("| pgBackRest restore (files) | %.1f | |" % rows["restore"])
    print("| restored copy ready for writes (WAL replay) | %.1f | %s accounts back |" % (rows["recover"], restored))
    print("| pg_dump -Fc | %.1f | %.0f MiB |" % (rows["dump"], dump_size / mib))
    print("| pg_restore -j 2 | %.1f | |" % rows["pg_restore"])
    if not args.keep:
        subprocess.run(["podman", "rm", "-f", "-t", "5", NAME], capture_output=True, check=False)
    return 0 if restored == str(accounts) else 1


if __name__ == "__main__":
    sys.exit(main())
