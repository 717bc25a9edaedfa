"""playbooks/site.yml on the local lab: first run, second run, then the services scaled out to more hosts.

    make venv images && .venv/bin/python benchmarks/site_lab/run.py [--hosts 7] [--service-hosts 2] [--debian 12]

Rows: the first run on new lab hosts (everything installed), a second run (nothing to change), a run after
the lab gained service hosts (the new ones deployed, the mesh and the edge updated), and a second run at that
size. Each row is the wall time of one `ansible-playbook -i inventories/lab playbooks/site.yml`, with the
play recap's totals. Nothing passes or fails on a time; the script fails only when a run fails. It starts
with `scripts/lab down`: the lab's hosts are recreated.
"""

import argparse
import os
import re
import subprocess
import sys
import time

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
RECAP = re.compile(r"^(\S+)\s+:\s+ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)", re.M)


def lab(*args):
    subprocess.run([sys.executable, os.path.join(ROOT, "scripts", "lab.py")] + list(args), cwd=ROOT, check=True)


def site(label, log_dir):
    log = os.path.join(log_dir, re.sub(r"[^a-z0-9]+", "-", label.lower()).strip("-") + ".log")
    env = dict(os.environ, ANSIBLE_FORCE_COLOR="0", NO_COLOR="1")
    env["PATH"] = os.path.join(ROOT, ".venv", "bin") + os.pathsep + env.get("PATH", "")
    start = time.monotonic()
    with open(log, "w", encoding="utf-8") as handle:
        proc = subprocess.run(["ansible-playbook", "-i", "inventories/lab", "playbooks/site.yml"], cwd=ROOT, env=env,
                              stdout=handle, stderr=subprocess.STDOUT, check=False)
    took = time.monotonic() - start
    with open(log, encoding="utf-8") as handle:
        recap = RECAP.findall(handle.read())
    if proc.returncode != 0:
        sys.exit("benchmark: %s failed (rc %d), see %s" % (label, proc.returncode, log))
    return {"run": label, "hosts": len(recap), "seconds": took,
            "tasks": sum(int(row[1]) for row in recap), "changed": sum(int(row[2]) for row in recap), "log": log}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--hosts", type=int, default=7)
    parser.add_argument("--service-hosts", type=int, default=2, help="service hosts after scaling out (default 2)")
    parser.add_argument("--debian", choices=["12", "13"], default="12")
    args = parser.parse_args()
    log_dir = os.path.join(ROOT, ".build", "benchmarks", "site_lab")
    os.makedirs(log_dir, exist_ok=True)

    rows = []
    lab("down")
    lab("up", "--hosts", str(args.hosts), "--debian", args.debian, "--service-hosts", "1")
    rows.append(site("first run, 1 service host", log_dir))
    rows.append(site("second run, 1 service host", log_dir))
    lab("up", "--hosts", str(args.hosts), "--debian", args.debian, "--service-hosts", str(args.service_hosts))
    rows.append(site("scale-out run, %d service hosts" % args.service_hosts, log_dir))
    rows.append(site("second run, %d service hosts" % args.service_hosts, log_dir))

    print("\n## site.yml on the lab (%s, Debian %s, %d CPUs)\n" % (time.strftime("%Y-%m-%d"), args.debian,
                                                                   os.cpu_count()))
    print("| run | hosts | wall s | tasks (ok) | changed |")
    print("|---|---:|---:|---:|---:|")
    for row in rows:
        print("| %s | %d | %.0f | %d | %d |" % (row["run"], row["hosts"], row["seconds"], row["tasks"], row["changed"]))
    print("\nLogs: %s" % log_dir)


if __name__ == "__main__":
    main()
