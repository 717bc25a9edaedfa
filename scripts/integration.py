"""Integration tests: real ansible-playbook runs of the modules against the stand-in APIs.

    scripts/integration [NAME ...]      # default: every tests/integration/{kong,kuma}/*.yml

Starts the Kong Admin API stand-in (tests/standins/kong/admin_api.py, with its proxy on the same store) and
the kuma-cp HTTP API stand-in (tests/standins/kuma/cp_api.py) on free loopback ports, runs each playbook with
`-e kong_admin_url=...`, `-e kong_proxy_url=...` and `-e kuma_api_url=...` against a wiped stand-in (the one of the playbook's directory is reset), and
prints one table. A playbook passes when ansible-playbook exits 0: the playbooks assert what a user would
notice.
"""

import glob
import os
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _load(directory, module):
    """Import a stand-in's entry module from its own directory. Both stand-ins have an `api` module, so the
    modules one of them brings are dropped from sys.modules before the next is loaded (only spawn() and
    control() are used here, which need nothing else)."""
    before = set(sys.modules)
    sys.path.insert(0, os.path.join(ROOT, "tests", "standins", directory))
    try:
        loaded = __import__(module)
    finally:
        sys.path.pop(0)
    for name in set(sys.modules) - before:
        if name != module:
            del sys.modules[name]
    return loaded


admin_api = _load("kong", "admin_api")
cp_api = _load("kuma", "cp_api")

SUITES = ("kong", "kuma")


def main(names):
    playbooks = []
    for suite in SUITES:
        playbooks += [(suite, p) for p in sorted(glob.glob(os.path.join(ROOT, "tests", "integration", suite, "*.yml")))]
    if names:
        playbooks = [(s, p) for s, p in playbooks if os.path.basename(p)[:-4] in names]
        if not playbooks:
            sys.exit("no integration playbook named %s" % " ".join(names))
    os.makedirs(os.path.join(ROOT, ".build"), exist_ok=True)
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=os.path.join(ROOT, ".build", "collections"),
               ANSIBLE_CONFIG=os.path.join(ROOT, "ansible.cfg"), ANSIBLE_FORCE_COLOR="0")
    rows = []
    with open(os.path.join(ROOT, ".build", "kong-standin.log"), "w", encoding="utf-8") as kong_log, \
            open(os.path.join(ROOT, ".build", "kuma-standin.log"), "w", encoding="utf-8") as kuma_log:
        kong_proc, kong_url, kong_proxy_url = admin_api.spawn(stderr=kong_log, proxy=True)
        try:
            kuma_proc, kuma_url, _diag_url = cp_api.spawn(stderr=kuma_log)
        except Exception:
            kong_proc.terminate()
            raise
        urls = {"kong": kong_url, "kuma": kuma_url}
        try:
            for suite, playbook in playbooks:
                if suite == "kong":
                    admin_api.control(kong_url, "reset")
                else:
                    cp_api.control(kuma_url, "reset")
                name = os.path.basename(playbook)[:-4]
                print("##### integration: %s against the %s stand-in at %s" % (name, suite.capitalize(), urls[suite]),
                      flush=True)
                start = time.time()
                code = subprocess.call(["ansible-playbook", "-i", "localhost,", "-c", "local", playbook,
                                        "-e", "kong_admin_url=%s" % kong_url, "-e", "kong_proxy_url=%s" % kong_proxy_url,
                                        "-e", "kuma_api_url=%s" % kuma_url,
                                        "-e", "ansible_python_interpreter=%s" % sys.executable], cwd=ROOT, env=env)
                rows.append((suite, name, "passed" if code == 0 else "FAILED", time.time() - start))
        finally:
            for proc in (kong_proc, kuma_proc):
                proc.terminate()
                proc.wait(timeout=10)
    print("\nIntegration tests (Kong and Kuma stand-ins)")
    for suite, name, status, seconds in rows:
        print("%-5s %-28s %-7s %6.1fs" % (suite, name, status, seconds))
    failed = [r for r in rows if r[2] != "passed"]
    print("integration: %d passed, %d failed" % (len(rows) - len(failed), len(failed)))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
