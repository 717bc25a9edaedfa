"""STAND-IN `grafana` command (tests only, NOT Grafana).

    grafana server [--config F] [--homepath H] [--pidfile P] [--packaging deb] [cfg:default.x.y=v ...]
    grafana cli [--homepath H] [--config F] [--pluginsDir D] [--configOverrides 'cfg:... cfg:...']
                admin reset-admin-password (PASSWORD | --password-from-stdin)
    grafana --version | -v

argv[0] ending in `grafana-server` / `grafana-cli` acts as `grafana server` / `grafana cli`
(the deb's /usr/sbin wrappers exec `$GRAFANA_HOME/bin/grafana server|cli`).
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import server as S  # noqa: E402  pylint: disable=wrong-import-position

VALUE_FLAGS = ("config", "homepath", "pidfile", "packaging", "pluginsDir", "configOverrides")


def parse(args):
    """Go-style flags (`--flag=v`, `--flag v`, `-flag v`) and bare cfg: overrides."""
    flags, overrides, rest = {}, [], []
    index = 0
    while index < len(args):
        arg = args[index]
        name = arg.lstrip("-")
        if arg.startswith("-") and name.split("=", 1)[0] in VALUE_FLAGS:
            if "=" in name:
                key, value = name.split("=", 1)
            else:
                key = name
                index += 1
                if index >= len(args):
                    raise SystemExit("flag needs an argument: -%s" % key)
                value = args[index]
            flags[key] = value
        elif arg.startswith("cfg:"):
            overrides.append(arg)
        else:
            rest.append(arg)
        index += 1
    overrides = flags.get("configOverrides", "").replace("'", "").split() + overrides
    return flags, overrides, rest


def config_from(flags, overrides):
    homepath = flags.get("homepath") or os.environ.get("GRAFANA_HOME") or os.getcwd()
    config = flags.get("config")
    if not config:
        candidate = os.path.join(homepath, "conf", "custom.ini")
        config = candidate if os.path.exists(candidate) else None
    return S.load_config(config, homepath, overrides)


def cmd_server(args):
    flags, overrides, _rest = parse(args)
    try:
        cfg = config_from(flags, overrides)
    except S.ConfigError as exc:
        sys.stderr.write("Error: \u2717 %s\n" % exc)
        return 1
    return S.serve(cfg, flags.get("pidfile"))


def cmd_cli(args):
    flags, overrides, rest = parse(args)
    if rest[:2] != ["admin", "reset-admin-password"]:
        sys.stderr.write("stand-in: only `grafana cli admin reset-admin-password` is"
                         " implemented (got %s)\n" % " ".join(rest))
        return 2
    words = rest[2:]
    if words == ["--password-from-stdin"]:
        password = sys.stdin.readline().rstrip("\n")
    elif len(words) == 1:
        password = words[0]
    else:
        sys.stderr.write("Error: \u2717 New password is too short\n")
        return 1
    if not password:
        sys.stderr.write("Error: \u2717 New password is too short\n")
        return 1
    try:
        cfg = config_from(flags, overrides)
        S.reset_admin_password(cfg, password)
    except (S.ConfigError, OSError) as exc:
        sys.stderr.write("Error: \u2717 %s\n" % exc)
        return 1
    sys.stdout.write("\nAdmin password changed successfully \u2714\n\n")
    return 0


def main(argv):
    prog = os.path.basename(argv[0])
    args = argv[1:]
    if prog.endswith("grafana-server"):
        args = ["server"] + args
    elif prog.endswith("grafana-cli"):
        args = ["cli"] + args
    if not args or args[0] in ("-h", "--help", "help"):
        sys.stdout.write(__doc__)
        return 0
    if args[0] in ("-v", "--version", "-V"):
        sys.stdout.write("grafana version %s\n" % S.version())
        return 0
    if args[0] == "server":
        return cmd_server(args[1:])
    if args[0] == "cli":
        return cmd_cli(args[1:])
    sys.stderr.write("stand-in grafana: unknown command %r\n" % args[0])
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
