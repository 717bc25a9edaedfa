"""Fail when a role's meta/argument_specs.yml and defaults/main.yml drift apart.

Every key in defaults/main.yml must be an option of the `main` entry point, every option of `main`
must have a default (or be required, or be documented as derived), and where the default is a plain
value the documented default must equal it.
"""

import glob
import os
import sys

import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def is_templated(value):
    return isinstance(value, str) and "{{" in value


def check_role(role_dir):
    problems = []
    name = os.path.basename(role_dir)
    defaults_path = os.path.join(role_dir, "defaults", "main.yml")
    specs_path = os.path.join(role_dir, "meta", "argument_specs.yml")
    if not os.path.exists(specs_path):
        return ["%s: no meta/argument_specs.yml" % name]
    with open(specs_path, encoding="utf-8") as handle:
        specs = (yaml.safe_load(handle) or {}).get("argument_specs", {})
    if "main" not in specs:
        return ["%s: argument_specs has no main entry point" % name]
    defaults = {}
    if os.path.exists(defaults_path):
        with open(defaults_path, encoding="utf-8") as handle:
            defaults = yaml.safe_load(handle) or {}
    options = specs["main"].get("options", {}) or {}
    for key in sorted(set(defaults) - set(options)):
        problems.append("%s: default %s is not in argument_specs main.options" % (name, key))
    for key in sorted(set(options) - set(defaults)):
        if not options[key].get("required"):
            problems.append("%s: option %s has no default in defaults/main.yml and is not required" % (name, key))
    for key in sorted(set(options) & set(defaults)):
        value, spec = defaults[key], options[key]
        if is_templated(value) or "default" not in spec:
            continue
        if spec["default"] != value:
            problems.append("%s: %s defaults to %r but argument_specs says %r" % (name, key, value, spec["default"]))
    for entry, spec in specs.items():
        for key, option in (spec.get("options") or {}).items():
            if "description" not in option:
                problems.append("%s: %s.%s has no description" % (name, entry, key))
    return problems


def main():
    problems = []
    roles = sorted(glob.glob(os.path.join(ROOT, "roles", "*")))
    for role_dir in roles:
        problems.extend(check_role(role_dir))
    for problem in problems:
        print(problem)
    print("argument specs: %d role(s) checked, %d problem(s)" % (len(roles), len(problems)))
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
