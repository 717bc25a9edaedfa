"""Integration tests: real ansible-playbook runs of the modules against the stand-in APIs.

    scripts/integration [NAME ...]      # default: every tests/integration/kong/*.yml

Starts the Kong Admin API stand-in (tests/standins/kong/admin_api.py) on a free loopback port, runs each
playbook with `-e kong_admin_url=...` against a wiped stand-in, and prints one row per playbook. A
playbook passes when ansible-playbook exits 0: the playbooks assert what a user would notice.
"""

import glob
import os
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests", "standins", "kong"))

import admin_api  # noqa: E402  pylint: disable=wrong-import-position


def main(names):
    playbooks = sorted(glob.glob(os.path.join(ROOT, "tests", "integration", "kong", "*.yml")))
    if names:
        playbooks = [p for p in playbooks if os.path.basename(p)[:-4] in names]
        if not playbooks:
            sys.exit("no integration playbook named %s" % " ".join(names))
    os.makedirs(os.path.join(ROOT, ".build"), exist_ok=True)
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=os.path.join(ROOT, ".build", "collections"),
               ANSIBLE_CONFIG=os.path.join(ROOT, "ansible.cfg"), ANSIBLE_FORCE_COLOR="0")
    rows = []
    with open(os.path.join(ROOT, ".build", "kong-standin.log"), "w", encoding="utf-8") as log:
        proc, url = admin_api.spawn(stderr=log)
        try:
            for playbook in playbooks:
                admin_api.control(url, "reset")
                name = os.path.basename(playbook)[:-4]
                print("##### integration: %s against the Kong stand-in at %s" % (name, url), flush=True)
                start = time.time()
                code = subprocess.call(["ansible-playbook", "-i", "localhost,", "-c", "local", playbook,
                                        "-e", "kong_admin_url=%s" % url, "-e", "ansible_python_interpreter=%s"
                                        % sys.executable], cwd=ROOT, env=env)
                rows.append((name, "passed" if code == 0 else "FAILED", time.time() - start))
        finally:
            proc.terminate()
            proc.wait(timeout=10)
    print("\nIntegration tests (Kong stand-in)")
    for name, status, seconds in rows:
        print("%-28s %-7s %6.1fs" % (name, status, seconds))
    failed = [r for r in rows if r[1] != "passed"]
    print("integration: %d passed, %d failed" % (len(rows) - len(failed), len(failed)))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
