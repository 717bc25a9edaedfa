"""Shared by every scenario: a check-mode run of the converge playbook on converged hosts changes nothing."""

import os
import re
import subprocess

RECAP = re.compile(r"^(?P<host>\S+)\s+:\s+ok=\d+\s+changed=(?P<changed>\d+)\s+unreachable=(?P<unreachable>\d+)\s+failed=(?P<failed>\d+)")


def _converge_playbook():
    own = os.path.join(os.environ["MOLECULE_SCENARIO_DIRECTORY"], "converge.yml")
    if os.path.exists(own):
        return own
    return os.path.join(os.environ["MOLECULE_PROJECT_DIRECTORY"], "molecule", "_shared", "converge.yml")


def test_check_mode_on_converged_hosts_reports_no_change():
    inventory = os.path.dirname(os.environ["MOLECULE_INVENTORY_FILE"])
    cmd = ["ansible-playbook", "--check", "--diff", "-i", inventory, _converge_playbook()]
    run = subprocess.run(cmd, capture_output=True, text=True, env=os.environ.copy(), check=False)
    output = run.stdout + run.stderr
    recap = [m.groupdict() for m in map(RECAP.match, run.stdout.splitlines()) if m]
    assert run.returncode == 0, output[-4000:]
    assert recap, "no PLAY RECAP in the check-mode run:\n" + output[-4000:]
    changed = [r for r in recap if r["changed"] != "0" or r["failed"] != "0" or r["unreachable"] != "0"]
    assert not changed, "check mode reported changes or failures:\n" + output[-6000:]
