"""`envoy`, `coredns` and `kumactl` stand-ins of the Kuma tarball (test doubles, NOT those programs).

* envoy: only `--version` (and `--help`); kuma-dp does the proxying itself.  Format of Envoy's output:
  `envoy  version: <commit>/<version>/Clean/RELEASE/BoringSSL` (UNCONFIRMED beyond that shape).
* coredns: only `-version` (`CoreDNS-<ver>` / `linux/amd64, go..., <commit>`; version UNCONFIRMED).
* kumactl: `version [--client]`; `install transparent-proxy` / `uninstall transparent-proxy` with the flags of
  kuma.md §3 "Transparent proxy".  The stand-in does NOT program iptables: it writes the rule set it would
  install to a state file (KUMA_STANDIN_TP_STATE, default /run/kuma-standin/transparent-proxy.json), prints it,
  and `uninstall` removes that file.
"""

import argparse
import json
import os
import sys
import urllib.request

import buildinfo

COREDNS_VERSION = "1.11.4"   # UNCONFIRMED (kuma.md does not give the bundled CoreDNS version)
STATE_FILE = "/run/kuma-standin/transparent-proxy.json"


def envoy_main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    if "--version" in argv:
        print("\nenvoy  version: %s/%s/Clean/RELEASE/BoringSSL\n"
              % (buildinfo.ENVOY_COMMIT, buildinfo.envoy_version()))
        return 0
    sys.stderr.write("envoy stand-in: only --version is implemented (kuma-dp proxies traffic itself)\n")
    return 1


def coredns_main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    if "-version" in argv or "--version" in argv:
        print("CoreDNS-%s\nlinux/amd64, go1.23, standin" % COREDNS_VERSION)
        return 0
    sys.stderr.write("coredns stand-in: only -version is implemented\n")
    return 1


def tp_rules(args):
    """The rule set `kumactl install transparent-proxy` would install (stand-in summary, not iptables-save)."""
    excluded_in = [p for p in (args.exclude_inbound_ports or "").split(",") if p]
    return {
        "kumaDpUser": args.kuma_dp_user or args.kuma_dp_uid or "5678",
        "redirectInbound": args.redirect_inbound,
        "redirectInboundPort": args.redirect_inbound_port,
        "redirectOutboundPort": args.redirect_outbound_port,
        "redirectDns": args.redirect_dns or args.redirect_all_dns_traffic,
        "redirectAllDnsTraffic": args.redirect_all_dns_traffic,
        "redirectDnsPort": args.redirect_dns_port,
        "excludeInboundPorts": excluded_in,
        "excludeOutboundPorts": [p for p in (args.exclude_outbound_ports or "").split(",") if p],
        "excludeInboundIps": [p for p in (args.exclude_inbound_ips or "").split(",") if p],
        "excludeOutboundIps": [p for p in (args.exclude_outbound_ips or "").split(",") if p],
        "ipFamilyMode": args.ip_family_mode,
        "storeFirewalld": args.store_firewalld,
        "iptables": [
            "-t nat -N KUMA_MESH_INBOUND",
            "-t nat -N KUMA_MESH_OUTBOUND",
            "-t nat -A PREROUTING -p tcp -j KUMA_MESH_INBOUND" if args.redirect_inbound else None,
            "-t nat -A OUTPUT -p tcp -j KUMA_MESH_OUTBOUND",
            "-t nat -A KUMA_MESH_OUTBOUND -m owner --uid-owner %s -j RETURN"
            % (args.kuma_dp_user or args.kuma_dp_uid or "5678"),
            "-t nat -A KUMA_MESH_OUTBOUND -p tcp -j REDIRECT --to-ports %d" % args.redirect_outbound_port,
        ],
    }


def kumactl_main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    top = argparse.ArgumentParser(prog="kumactl")
    sub = top.add_subparsers(dest="command")
    ver = sub.add_parser("version")
    ver.add_argument("--client", action="store_true")
    ver.add_argument("-a", "--detailed", action="store_true")
    ver.add_argument("--api-url", "--cp-address", dest="api_url", default="http://localhost:5681")
    for verb in ("install", "uninstall"):
        parent = sub.add_parser(verb)
        what = parent.add_subparsers(dest="what")
        tp = what.add_parser("transparent-proxy")
        tp.add_argument("--dry-run", action="store_true")
        tp.add_argument("--verbose", action="store_true")
        if verb == "install":
            tp.add_argument("--kuma-dp-user", default="")
            tp.add_argument("--kuma-dp-uid", default="")
            tp.add_argument("--redirect-inbound", default="true")
            tp.add_argument("--redirect-inbound-port", type=int, default=15006)
            tp.add_argument("--redirect-outbound-port", type=int, default=15001)
            tp.add_argument("--redirect-dns", action="store_true")
            tp.add_argument("--redirect-all-dns-traffic", action="store_true")
            tp.add_argument("--redirect-dns-port", type=int, default=15053)
            tp.add_argument("--exclude-inbound-ports", default="")
            tp.add_argument("--exclude-outbound-ports", default="")
            tp.add_argument("--exclude-inbound-ips", default="")
            tp.add_argument("--exclude-outbound-ips", default="")
            tp.add_argument("--ip-family-mode", default="dualstack", choices=("dualstack", "ipv4"))
            tp.add_argument("--store-firewalld", action="store_true")
            tp.add_argument("--wait", default="5")
            tp.add_argument("--max-retries", default="5")
            tp.add_argument("--config", "--config-file", dest="config", default="")
    args = top.parse_args(argv)
    if args.command == "version":
        if args.detailed:
            print(buildinfo.detailed())
        else:
            print("Client: Kuma %s" % buildinfo.version())
        if not args.client:
            try:
                with urllib.request.urlopen(args.api_url.rstrip("/") + "/", timeout=5) as response:
                    index = json.load(response)
                print("Server: %s %s" % (index.get("product", "Kuma"), index.get("version")))
            except (OSError, ValueError) as exc:
                sys.stderr.write("Unable to connect to control plane: %s\n" % exc)
        return 0
    if args.command in ("install", "uninstall") and getattr(args, "what", None) == "transparent-proxy":
        # kuma.md §3 "Run as root"; §7.11 "non-root gives the confusing "Couldn't load match 'owner'"" -- the
        # stand-in refuses plainly instead.
        if os.geteuid() != 0 and not args.dry_run:
            sys.stderr.write("Error: transparent proxy must be installed as root (the stand-in refuses; real "
                             "iptables fails with \"Couldn't load match 'owner'\")\n")
            return 1
        path = os.environ.get("KUMA_STANDIN_TP_STATE", STATE_FILE)
        if args.command == "install":
            args.redirect_inbound = str(args.redirect_inbound).lower() not in ("false", "0")
            rules = tp_rules(args)
            rules["iptables"] = [r for r in rules["iptables"] if r]
            text = json.dumps(rules, indent=2, sort_keys=True)
            print(text)
            if not args.dry_run:
                os.makedirs(os.path.dirname(path), exist_ok=True)
                with open(path, "w", encoding="utf-8") as handle:
                    handle.write(text + "\n")
                print("# stand-in: iptables NOT programmed; rule set recorded in %s" % path)
            return 0
        if os.path.exists(path):
            if not args.dry_run:
                os.unlink(path)
            print("transparent proxy cleanup: stand-in rule set %s removed" % path)
        else:
            print("transparent proxy cleanup: nothing installed")
        return 0
    top.print_help(sys.stderr)
    return 1
