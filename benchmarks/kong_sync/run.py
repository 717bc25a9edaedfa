"""kong_sync against a loop of per-entity module tasks, at 1,000 and 10,000 entities.

    python3 benchmarks/kong_sync/run.py [--sizes 1000,10000] [--loop-size 1000] [--parallelism 10]

Starts the Kong Admin API stand-in (tests/standins/kong/admin_api.py) on loopback and, for each size,
generates a configuration of services, routes, rate-limiting plugins on the routes, consumers and
their key-auth credentials (one fifth each), then times real `ansible-playbook` runs of:

  * kong_sync: initial apply, no-op re-run, and a change of 1% of the entities (spread over the kinds);
  * at --loop-size only: the usual Ansible way, a loop of kong_service, kong_route, kong_plugin,
    kong_consumer and kong_consumer_credential tasks over every entity, making the same 1% change.

Reads, schema validations (kong_sync checks every entity it will write before the first write) and
writes are counted by the stand-in (its test-only /__standin/stats endpoint). Prints a table.
Nothing here is a pass/fail test.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(ROOT, "tests", "standins", "kong"))

import admin_api  # noqa: E402  pylint: disable=wrong-import-position


def generate(size, changed=False):
    """decK-format configuration with `size` entities; `changed` alters 1% of them (size/500 per kind)."""
    per_kind = size // 5
    step = max(1, per_kind // max(1, size // 500))
    flip = set(range(0, per_kind, step)[: max(1, size // 500)]) if changed else set()
    services, consumers = [], []
    for i in range(per_kind):
        services.append({
            "name": "svc-%05d" % i,
            "url": "http://backend-%05d.internal:%d" % (i, 8081 if i in flip else 8080),
            "tags": ["bench"],
            "routes": [{
                "name": "route-%05d" % i,
                "paths": ["/svc-%05d%s" % (i, "-v2" if i in flip else "")],
                "tags": ["bench"],
                "plugins": [{"name": "rate-limiting", "config": {"minute": 120 if i in flip else 60,
                                                                 "policy": "local"}, "tags": ["bench"]}],
            }],
        })
        consumers.append({
            "username": "user-%05d" % i,
            "custom_id": "cid-%05d%s" % (i, "-b" if i in flip else ""),
            "tags": ["bench"],
            "keyauth_credentials": [{"key": "key-%05d-0123456789abcdef" % i,
                                     "tags": ["bench", "rotated"] if i in flip else ["bench"]}],
        })
    return {"_format_version": "3.0", "services": services, "consumers": consumers}, 5 * len(flip)


class Standin(object):
    """The stand-in in its own process, with its request counters."""

    def __init__(self):
        self.log = open(os.path.join(tempfile.gettempdir(), "aic-kong-bench-standin.log"), "w", encoding="utf-8")
        self.proc, self.url = admin_api.spawn(stderr=self.log)

    def post(self, action):
        admin_api.control(self.url, action)

    def stats(self):
        counts = admin_api.control(self.url, "stats")
        writes = sum(counts.get(m, 0) for m in ("POST", "PUT", "PATCH", "DELETE"))
        return counts.get("GET", 0), counts.get("VALIDATE", 0), writes

    def stop(self):
        self.proc.terminate()
        self.proc.wait(timeout=10)


def playbook(standin, book, extra):
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=os.path.join(ROOT, ".build", "collections"),
               ANSIBLE_CONFIG=os.path.join(ROOT, "ansible.cfg"))
    argv = ["ansible-playbook", "-i", "localhost,", "-c", "local", os.path.join(HERE, book),
            "-e", "kong_admin_url=%s" % standin.url, "-e", "ansible_python_interpreter=%s" % sys.executable]
    for key, value in extra.items():
        argv += ["-e", "%s=%s" % (key, value)]
    standin.post("reset-stats")
    start = time.time()
    proc = subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True, check=False)
    seconds = time.time() - start
    if proc.returncode != 0:
        sys.stderr.write(proc.stdout[-4000:] + proc.stderr[-2000:])
        sys.exit("%s failed" % book)
    reads, checks, writes = standin.stats()
    return seconds, reads, checks, writes


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000,10000")
    parser.add_argument("--loop-size", type=int, default=1000)
    parser.add_argument("--parallelism", type=int, default=10)
    args = parser.parse_args()
    work = tempfile.mkdtemp(prefix="aic-kong-bench-")
    standin = Standin()
    rows = []
    try:
        for size in [int(s) for s in args.sizes.split(",")]:
            standin.post("reset")
            base = generate(size)[0]
            change, changed = generate(size, changed=True)
            files = {}
            for name, config in (("base", base), ("change", change)):
                files[name] = os.path.join(work, "%s-%d.json" % (name, size))
                with open(files[name], "w", encoding="utf-8") as handle:
                    json.dump(config, handle)
            sync = dict(parallelism=args.parallelism)
            for label, src, expect in (("kong_sync initial apply", "base", size),
                                       ("kong_sync no-op re-run", "base", 0),
                                       ("kong_sync 1% change", "change", changed)):
                seconds, reads, checks, writes = playbook(standin, "sync.yml", dict(sync, src=files[src]))
                rows.append((label, size, seconds, reads, checks, writes, expect))
            if size == args.loop_size:
                # the loop reverts the 1% change: same number of changed entities, the usual Ansible way
                seconds, reads, checks, writes = playbook(standin, "loop.yml", dict(src=files["base"]))
                rows.append(("loop of per-entity tasks, 1% change", size, seconds, reads, checks, writes, changed))
                seconds, reads, checks, writes = playbook(standin, "sync.yml", dict(sync, src=files["base"]))
                rows.append(("kong_sync no-op after the loop", size, seconds, reads, checks, writes, 0))
    finally:
        standin.stop()
    print()
    print("kong_sync benchmark against the Kong stand-in (parallelism %d, %s)"
          % (args.parallelism, time.strftime("%Y-%m-%d")))
    header = ("run", "entities", "wall s", "GETs", "validates", "writes", "expected")
    print("%-38s %9s %9s %7s %9s %7s %9s" % header)
    for label, size, seconds, reads, checks, writes, expect in rows:
        print("%-38s %9d %9.1f %7d %9d %7d %9d" % (label, size, seconds, reads, checks, writes, expect))
    loop = [r for r in rows if r[0].startswith("loop")]
    noop = [r for r in rows if r[0] == "kong_sync no-op re-run"]
    if loop:
        for row in noop:
            print("no-op kong_sync at %d entities is %.0fx faster than the loop at %d"
                  % (row[1], loop[0][2] / row[2], loop[0][1]))


if __name__ == "__main__":
    main()
