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
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
STANDIN = os.path.join(ROOT, "tests", "standins", "kong", "admin_api.py")


def start_standin(log):
    proc = subprocess.Popen([sys.executable, STANDIN, "--listen", "127.0.0.1:0"], stdout=subprocess.PIPE,
                            stderr=log, text=True)
    line = proc.stdout.readline()
    if "listening on" not in line:
        proc.kill()
        sys.exit("the Kong stand-in did not start: %r (see %s)" % (line, log.name))
    return proc, line.rsplit(" ", 1)[1].strip()


def reset(url):
    request = urllib.request.Request(url + "/__standin/reset", method="POST", data=b"")
    with urllib.request.urlopen(request, timeout=10):
        pass


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
        proc, url = start_standin(log)
        try:
            for playbook in playbooks:
                reset(url)
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
