"""Local lab hosts: systemd containers under podman that stand in for VMs.

    scripts/lab up [--hosts N] [--debian 12|13]   start N hosts, write inventories/lab/
    scripts/lab status                           show the hosts, their addresses and groups
    scripts/lab summary                          what a site run left where (ports, services)
    scripts/lab down                             remove the hosts, the network and the inventory

The hosts share a private podman network (they resolve each other by name) and are reached by
Ansible through the podman connection, so no SSH keys are involved. `up` is safe to run again:
running hosts are kept, missing ones started, surplus ones removed.
"""

import argparse
import json
import os
import resource
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# The collection's report of a host's firewall (plain Python, no Ansible import), shared with playbooks/summary.yml.
sys.path.insert(0, os.path.join(ROOT, "plugins", "filter"))
from nft_open_ports import nft_open_ports  # noqa: E402  pylint: disable=wrong-import-position,import-error
INVENTORY_DIR = os.path.join(ROOT, "inventories", "lab")
NETWORK = "aic-lab"
PREFIX = "aic-lab"
LABEL = "aic.lab=1"
IMAGE = "localhost/aic-gateway/debian:%s"
# Kong cannot be downloaded here: the lab installs the stand-in `kong` package (tests/standins/kong,
# NOT Kong) from a signed apt repository laid out like Kong's, served by tests/mirror/serve.py.
MIRROR_DIR = os.path.join(ROOT, ".build", "lab-mirror")
MIRROR_PORT = 18950
KONG_VERSIONS = ["3.9.2", "3.9.3"]
# Nor can Kuma: the lab fetches the stand-in Kuma tarball (tests/standins/kuma, NOT Kuma) from the same
# mirror, as <mirror>/kuma/<version>/<file> with its .sha256, exactly as the roles fetch the real one.
KUMA_VERSION = "2.14.3"
# Nor can Grafana and Zipkin: a stand-in grafana package in a signed repository laid out like
# apt.grafana.com (at the mirror's root) and a stand-in Zipkin exec jar as <mirror>/zipkin/<version>/<file>.
GRAFANA_VERSION = "12.0.2"
ZIPKIN_VERSION = "3.6.1"
# What the stand-in's Python programs need on the mesh hosts (the real kuma-cp / kuma-dp are static).
# The demo's consumer: its API key is made once per lab (`up`), kept in .build/, never committed.
DEMO_KEY_FILE = os.path.join(ROOT, ".build", "lab-demo-api-key")
DEMO_CONSUMER = "demo"
DEMO_PATHS = ["/core/items", "/ai/", "/blog/"]
SMOKE_REPORT = os.path.join(ROOT, ".build", "lab-smoke.json")
LAB_GRAFANA_PASSWORD = "lab-only-grafana-password"
KUMA_STANDIN_PACKAGES = ["python3-yaml", "python3-psycopg2", "openssl"]

# Where each part of the platform lives. With N hosts, part i goes to host (i mod N) + 1, so one
# host carries everything and seven hosts give each part its own machine (two Kong nodes for HA).
SLOTS = [
    ["postgresql"],
    ["kong"],
    ["kong"],
    ["loadbalancer"],
    ["kuma_cp"],
    ["services"],
    ["monitoring"],
]
# Groups from the architecture that the default layout leaves empty (hybrid Kong, multizone Kuma are opt-in).
EMPTY_GROUPS = ["kong_cp", "kong_dp", "kuma_cp_global"]
# Hosts that run Kuma data plane proxies: Kong (its delegated gateway proxy) and the service hosts.
DERIVED_GROUPS = {"kuma_dp": ["kong", "services"]}


# Each component the lab cannot take from Debian: its upstream host, and what the lab uses when that host is
# unreachable. AIC_LAB_ARTIFACTS=standins|upstream|auto (default auto: upstream where reachable). Kuma and
# Zipkin publish no sha256 file beside the artifact, so upstream for them also needs the pinned digest in
# AIC_LAB_KUMA_SHA256 / AIC_LAB_ZIPKIN_SHA256: the lab then puts the real file on its mirror with that
# digest, and the roles verify the download against it.
UPSTREAM = {
    "kong": ("packages.konghq.com", "Kong's apt repository", None),
    "kuma": ("packages.konghq.com", "Kuma's release tarball", "AIC_LAB_KUMA_SHA256"),
    "grafana": ("apt.grafana.com", "Grafana's apt repository", None),
    "zipkin": ("repo1.maven.org", "Zipkin's jar on Maven Central", "AIC_LAB_ZIPKIN_SHA256"),
}
STANDIN_NOTE = {
    "kong": "tests/standins/kong (NOT Kong): a package in a signed apt repository laid out like Kong's",
    "kuma": "tests/standins/kuma (NOT Kuma): kuma-cp, kuma-dp and envoy programs in Kuma's tarball layout",
    "grafana": "tests/standins/grafana (NOT Grafana): a package in a repository laid out like apt.grafana.com",
    "zipkin": "tests/standins/zipkin (NOT Zipkin): an executable jar with Zipkin's HTTP API",
}


def read_text(path):
    try:
        with open(path, encoding="utf-8") as handle:
            return handle.read().strip()
    except OSError:
        return ""


def demo_api_key():
    """The demo consumer's API key: random, made once per lab, kept outside the repository's tracked files."""
    key = read_text(DEMO_KEY_FILE)
    if not key:
        os.makedirs(os.path.dirname(DEMO_KEY_FILE), exist_ok=True)
        key = "demo-" + secrets.token_hex(12)
        with open(DEMO_KEY_FILE, "w", encoding="utf-8") as handle:
            handle.write(key + "\n")
        os.chmod(DEMO_KEY_FILE, 0o600)
    return key


def reachable(hostname, port=443, timeout=3.0):
    try:
        with socket.create_connection((hostname, port), timeout=timeout):
            return True
    except OSError:
        return False


def artifact_sources():
    """Which components come from upstream and which from the stand-ins, and why (printed on screen)."""
    mode = os.environ.get("AIC_LAB_ARTIFACTS", "auto")
    if mode not in ("auto", "standins", "upstream"):
        sys.exit("lab: AIC_LAB_ARTIFACTS must be auto, standins or upstream, not %r" % mode)
    sources, probed = {}, {}
    for name, (hostname, what, digest_env) in UPSTREAM.items():
        if mode == "standins":
            sources[name] = ("standin", "AIC_LAB_ARTIFACTS=standins")
            continue
        if hostname not in probed:
            probed[hostname] = reachable(hostname)
        if not probed[hostname]:
            if mode == "upstream":
                sys.exit("lab: AIC_LAB_ARTIFACTS=upstream, but %s (%s) is unreachable" % (hostname, what))
            sources[name] = ("standin", "%s is unreachable from here" % hostname)
        elif digest_env and not os.environ.get(digest_env):
            if mode == "upstream":
                sys.exit("lab: %s needs its pinned sha256 in %s" % (what, digest_env))
            sources[name] = ("standin", "%s is reachable, but %s is not set" % (hostname, digest_env))
        else:
            sources[name] = ("upstream", "%s from %s" % (what, hostname))
    return sources


def print_sources(sources):
    print("lab: where Kong, Kuma, Grafana and Zipkin come from:")
    for name in ("kong", "kuma", "grafana", "zipkin"):
        kind, why = sources[name]
        if kind == "upstream":
            print("  %-8s upstream: %s" % (name, why))
        else:
            print("  %-8s STAND-IN: %s (%s)" % (name, STANDIN_NOTE[name], why))


def podman(*args, check=True, capture=True):
    run = subprocess.run(["podman"] + list(args), capture_output=capture, text=True, check=False)
    if check and run.returncode != 0:
        sys.exit("lab: podman %s failed: %s" % (" ".join(args), (run.stderr or run.stdout).strip()))
    return run


def lab_containers():
    out = podman("ps", "-a", "--filter", "label=" + LABEL, "--format", "json").stdout
    return {c["Names"][0]: c for c in json.loads(out or "[]")}


def layout(count, service_hosts=1):
    """Host name -> groups. `service_hosts` above 1 adds that many more hosts of their own to `services` (the
    rest of the layout is unchanged), to scale the services out."""
    extra = max(service_hosts, 1) - 1
    hosts = {"%s%d" % (PREFIX, i + 1): [] for i in range(count + extra)}
    names = list(hosts)
    for index, groups in enumerate(SLOTS):
        for group in groups:
            if group not in hosts[names[index % count]]:
                hosts[names[index % count]].append(group)
    for name in names[count:]:
        hosts[name].append("services")
    return hosts


def wait_booted(names, timeout=90):
    deadline = time.time() + timeout
    pending = set(names)
    while pending and time.time() < deadline:
        for name in sorted(pending):
            state = podman("exec", name, "systemctl", "is-system-running", check=False).stdout.strip()
            if state in ("running", "degraded"):
                pending.discard(name)
        if pending:
            time.sleep(1)
    if pending:
        sys.exit("lab: %s did not finish booting within %ds (see `podman logs NAME`)" % (", ".join(sorted(pending)), timeout))


def fetch_upstream(url, dest, digest):
    """Put a real upstream artifact on the lab mirror with its pinned digest beside it (the role verifies it)."""
    os.makedirs(os.path.dirname(dest), exist_ok=True)
    if not os.path.exists(dest):
        print("lab: downloading %s" % url)
        with urllib.request.urlopen(url, timeout=60) as answer, open(dest + ".part", "wb") as handle:
            shutil.copyfileobj(answer, handle)
        os.rename(dest + ".part", dest)
    with open(dest + ".sha256", "w", encoding="utf-8") as handle:
        handle.write("%s  %s\n" % (digest.split(":")[-1], os.path.basename(dest)))


def mirror_up(sources, release):
    """Build the stand-ins the lab needs (or fetch the real artifacts) and serve them to the lab hosts."""
    www = os.path.join(MIRROR_DIR, "www")
    os.makedirs(www, exist_ok=True)
    if sources["kong"][0] == "standin":
        subprocess.run([os.path.join(ROOT, "tests", "standins", "kong", "package", "build-repo"), www] + KONG_VERSIONS,
                       check=True, stdout=subprocess.DEVNULL)
    kuma_file = os.path.join(www, "kuma", KUMA_VERSION, "kuma-%s-linux-amd64.tar.gz" % KUMA_VERSION)
    if sources["kuma"][0] == "standin":
        subprocess.run([os.path.join(ROOT, "tests", "standins", "kuma", "package", "build-tarball"), www, KUMA_VERSION],
                       check=True, stdout=subprocess.DEVNULL)
    else:
        fetch_upstream("https://packages.konghq.com/public/kuma-binaries-release/raw/names/kuma-linux-amd64/versions/"
                       "%s/kuma-%s-linux-amd64.tar.gz" % (KUMA_VERSION, KUMA_VERSION), kuma_file,
                       os.environ["AIC_LAB_KUMA_SHA256"])
    zipkin_file = os.path.join(www, "zipkin", ZIPKIN_VERSION, "zipkin-server-%s-exec.jar" % ZIPKIN_VERSION)
    if sources["zipkin"][0] == "upstream":
        fetch_upstream("https://repo1.maven.org/maven2/io/zipkin/zipkin-server/%s/zipkin-server-%s-exec.jar"
                       % (ZIPKIN_VERSION, ZIPKIN_VERSION), zipkin_file, os.environ["AIC_LAB_ZIPKIN_SHA256"])
    elif not os.path.exists(zipkin_file + ".sha256"):
        subprocess.run([os.path.join(ROOT, "tests", "standins", "zipkin", "build-jar"), www, ZIPKIN_VERSION],
                       check=True, stdout=subprocess.DEVNULL)
    if sources["grafana"][0] == "standin" and not os.path.exists(os.path.join(www, "gpg-full.key")):
        subprocess.run([os.path.join(ROOT, "tests", "standins", "grafana", "package", "build-repo"), www,
                        GRAFANA_VERSION], check=True, stdout=subprocess.DEVNULL)
    # The example services: wheels, and Ghost prepacked with the native modules for the lab's Node (built in
    # a throwaway container of the lab's image, about ten minutes the first time; cached in .build/examples).
    print("lab: building the example services (examples/build; Ghost takes minutes the first time)")
    subprocess.run([os.path.join(ROOT, "examples", "build"), "--node-image", IMAGE % release],
                   check=True, stdout=subprocess.DEVNULL)
    subprocess.run(["cp", "-a", os.path.join(ROOT, ".build", "examples", "."), www], check=True)
    with open(os.path.join(MIRROR_DIR, "sources.json"), "w", encoding="utf-8") as handle:
        json.dump(sources, handle, indent=1, sort_keys=True)
    pidfile = os.path.join(MIRROR_DIR, "mirror.pid")
    if os.path.exists(pidfile):
        try:
            with open(pidfile, encoding="utf-8") as handle:
                os.kill(int(handle.read().strip()), 0)
            return
        except (OSError, ValueError):
            os.remove(pidfile)
    subprocess.run([sys.executable, os.path.join(ROOT, "tests", "mirror", "serve.py"), "--daemon", "--root", www,
                    "--port", str(MIRROR_PORT), "--lifetime", str(7 * 24 * 3600),
                    "--log", os.path.join(MIRROR_DIR, "access.log"), "--pidfile", pidfile], check=True)


def standin_packages(hosts):
    """The stand-in Kuma programs are Python: give the mesh hosts its interpreter's packages (lab only)."""
    mesh = ["kuma_cp"] + DERIVED_GROUPS["kuma_dp"]
    for name, member_of in sorted(hosts.items()):
        if not set(member_of) & set(mesh):
            continue
        if podman("exec", name, "dpkg", "-s", *KUMA_STANDIN_PACKAGES, check=False).returncode == 0:
            continue
        print("lab: installing %s on %s (the stand-in Kuma's needs)" % (" ".join(KUMA_STANDIN_PACKAGES), name))
        podman("exec", name, "sh", "-c", "apt-get -qq update && DEBIAN_FRONTEND=noninteractive apt-get -qq install -y %s"
               % " ".join(KUMA_STANDIN_PACKAGES))


def mirror_down():
    pidfile = os.path.join(MIRROR_DIR, "mirror.pid")
    if os.path.exists(pidfile):
        try:
            with open(pidfile, encoding="utf-8") as handle:
                os.kill(int(handle.read().strip()), 15)
        except (OSError, ValueError):
            pass
        os.remove(pidfile)


def write_inventory(hosts, release, nofile, sources):
    os.makedirs(os.path.join(INVENTORY_DIR, "group_vars", "all"), exist_ok=True)
    groups = {}
    for name, member_of in hosts.items():
        for group in member_of:
            groups.setdefault(group, []).append(name)
    for group, parts in DERIVED_GROUPS.items():
        groups[group] = sorted({m for part in parts for m in groups.get(part, [])})
    lines = [
        "---",
        "# Generated by scripts/lab up: local lab hosts (podman containers). Do not edit; rerun it.",
        "all:",
        "  children:",
    ]
    for group in [g for slot in SLOTS for g in slot if g in groups] + list(DERIVED_GROUPS) + EMPTY_GROUPS:
        if "    %s:" % group in lines:
            continue
        lines.append("    %s:" % group)
        members = groups.get(group, [])
        if members:
            lines.append("      hosts:")
            lines.extend("        %s:" % m for m in members)
        else:
            lines.append("      hosts: {}")
    with open(os.path.join(INVENTORY_DIR, "hosts.yml"), "w", encoding="utf-8") as handle:
        handle.write("\n".join(lines) + "\n")
    text = (
        "---\n"
        "# Generated by scripts/lab up.\n"
        "# `podman`: containers.podman's connection; with the repository's ansible.cfg, the pipelining one\n"
        "# from molecule/_shared/connection_plugins (one nsenter, as root, or podman exec per task).\n"
        "ansible_connection: podman\n"
        "ansible_python_interpreter: /usr/bin/python3\n"
        "aic_gateway_lab: true\n"
        "aic_gateway_lab_debian: \"%s\"\n"
        "# Kong: the stand-in package from the lab mirror (scripts/lab), lab-only database password.\n"
        "kong_repo_url: http://host.containers.internal:%d/gateway-39\n"
        "kong_repo_key_url: http://host.containers.internal:%d/gateway-39/gpg.key\n"
        "kong_pg_password: lab-only-kong-password\n"
        "# The open-files limit the lab containers were given (a unit cannot raise it).\n"
        "kong_limit_nofile: %d\n"
        "loadbalancer_limit_nofile: %d\n"
        "kong_proxy_firewall_sources: [10.0.0.0/8]\n"
        "kong_status_firewall_sources: [10.0.0.0/8]\n"
        "postgresql_listen_addresses: [\"*\"]\n"
        "postgresql_firewall_sources: [10.0.0.0/8]\n"
        "# Kuma: the stand-in tarball from the lab mirror (the controller downloads it once), a lab-only\n"
        "# database password, and one mesh with mTLS on; Kong joins it as a delegated gateway.\n"
        "aic_gateway_artifact_mirror: http://127.0.0.1:%d\n"
        "kuma_cp_pg_password: lab-only-kuma-password\n"
        "kuma_cp_pg_tls_mode: verifyNone\n"
        "kuma_cp_limit_nofile: %d\n"
        "kuma_dp_limit_nofile: %d\n"
        "kuma_cp_dp_firewall_sources: [10.0.0.0/8]\n"
        "kuma_cp_diagnostics_firewall_sources: [10.0.0.0/8]\n"
        "kuma_dp_firewall_sources: [10.0.0.0/8]\n"
        "# Meshes: mTLS on; who may call whom comes from each service's mesh.allow_from (playbooks/mesh.yml).\n"
        "kuma_cp_meshes:\n"
        "  - name: default\n"
        "    mtls: {enabled: true, backend: ca-1, type: builtin, mode: STRICT}\n"
        "# Observability: Grafana from the stand-in repository on the lab mirror (lab-only password),\n"
        "# Zipkin's stand-in jar from the mirror; Prometheus on the monitoring host scrapes every host.\n"
        "grafana_repo_url: http://host.containers.internal:%d\n"
        "grafana_repo_key_url: http://host.containers.internal:%d/gpg-full.key\n"
        "grafana_admin_password: lab-only-grafana-password\n"
        "grafana_secret_key: lab-only-grafana-secret-key\n"
        "grafana_limit_nofile: %d\n"
        "zipkin_limit_nofile: %d\n"
        "zipkin_java_heap: 256m\n"
        "grafana_firewall_sources: [10.0.0.0/8]\n"
        "prometheus_firewall_sources: [10.0.0.0/8]\n"
        "zipkin_firewall_sources: [10.0.0.0/8]\n"
        "node_exporter_firewall_sources: [10.0.0.0/8]\n"
        "postgres_exporter_firewall_sources: [10.0.0.0/8]\n"
        "loadbalancer_metrics_sources: [10.0.0.0/8]\n"
        "kuma_cp_mads_firewall_sources: [10.0.0.0/8]\n"
        "kuma_dp_metrics_firewall_sources: [10.0.0.0/8]\n"
        "# Lab-only secrets (documented values that protect nothing outside the lab).\n"
        % (release, MIRROR_PORT, MIRROR_PORT, nofile, nofile, MIRROR_PORT, nofile, nofile, MIRROR_PORT, MIRROR_PORT, nofile, nofile)
    )
    text += "".join("%s: %s\n" % item for item in sorted(LAB_SECRETS.items()))
    text += "# The smoke checks (playbooks/smoke.yml) call each service with the demo consumer's key.\n"
    text += "smoke_api_key: \"{{ hostvars[groups['kong'][0]].kong_gateway.consumers[0]['keys'][0] }}\"\n"
    text += "smoke_report_file: %s\n" % SMOKE_REPORT
    # A component taken from upstream keeps the role's own repository (no stand-in repository lines).
    for name, prefix in (("kong", "kong_repo"), ("grafana", "grafana_repo")):
        if sources[name][0] == "upstream":
            text = "".join(line for line in text.splitlines(True) if not line.startswith(prefix))
    with open(os.path.join(INVENTORY_DIR, "group_vars", "all", "lab.yml"), "w", encoding="utf-8") as handle:
        handle.write(text)
    write_platform_vars(groups, release)


# Lab-only secrets: fixed, documented values that protect nothing outside the lab.
LAB_SECRETS = {
    "vault_kong_db_password": "lab-only-kong-password",
    "vault_kuma_db_password": "lab-only-kuma-password",
    "vault_core_api_db_password": "lab-only-core-api-password",
}


def example_services(release):
    """The example services' definitions (examples/<name>/service.yml), as the lab deploys them."""
    # ansible's dependency, in the venv
    import yaml  # pylint: disable=import-outside-toplevel

    definitions, extra = [], {}
    for name in ("core_api", "ai_service", "ghost"):
        with open(os.path.join(ROOT, "examples", name, "service.yml"), encoding="utf-8") as handle:
            data = yaml.safe_load(handle)
        definitions.extend(data.pop("service_definitions"))
        extra.update(data)
    extra["ghost_node_major"] = "18" if release == "12" else "20"
    return definitions, extra


def write_group_vars(group, header, data):
    os.makedirs(os.path.join(INVENTORY_DIR, "group_vars", group), exist_ok=True)
    with open(os.path.join(INVENTORY_DIR, "group_vars", group, "lab.yml"), "w", encoding="utf-8") as handle:
        handle.write("---\n# Generated by scripts/lab up. %s\n" % header)
        for key, value in data.items():
            handle.write("%s: %s\n" % (key, json.dumps(value)))


def write_platform_vars(groups, release):
    """The platform's data for the lab: the example services, their databases, the edge's demo consumer."""
    definitions, extra = example_services(release)
    gateway = "http://%s" % (groups.get("loadbalancer") or groups.get("kong") or ["localhost"])[0]
    extra["ghost_public_url"] = gateway + "/blog/"
    write_group_vars("services", "The example services (examples/*/service.yml) on the services host.",
                     dict(extra, service_definitions=definitions, common_packages=["nodejs"],
                          examples_wheelhouse_url="http://host.containers.internal:%d/wheelhouse/" % MIRROR_PORT))
    write_group_vars("postgresql", "Kong's and Kuma's databases, and the services' (aic.gateway.service_postgresql).", {
        "lab_service_databases": "{{ hostvars | aic.gateway.service_postgresql(groups['services']) }}",
        "postgresql_users": "{{ [{'name': 'kong', 'password': vault_kong_db_password}, {'name': 'kuma', "
                            "'password': vault_kuma_db_password}] + lab_service_databases.users }}",
        "postgresql_databases": "{{ [{'name': 'kong', 'owner': 'kong'}, {'name': 'kuma', 'owner': 'kuma'}] "
                                "+ lab_service_databases.databases }}",
        "postgresql_hba": "{{ [{'type': 'host', 'databases': ['kong'], 'users': ['kong'], 'sources': ['10.0.0.0/8'], "
                          "'comment': 'kong nodes'}, {'type': 'host', 'databases': ['kuma'], 'users': ['kuma'], "
                          "'sources': ['10.0.0.0/8'], 'comment': 'kuma control plane'}] + lab_service_databases.hba }}",
    })
    key = demo_api_key()
    write_group_vars("kong", "Kong's data plane outbounds from the services; the demo consumer and its API key.", {
        "kuma_dp_dataplanes": [{"name": "kong-{{ inventory_hostname }}", "networking": {
            "gateway": {"type": "DELEGATED", "tags": {"kuma.io/service": "kong"}},
            "outbound": "{{ hostvars | aic.gateway.service_kong_outbounds(groups['services']) }}"}}],
        "kong_conf": {"trusted_ips": ["10.0.0.0/8"], "real_ip_header": "X-Forwarded-For"},
        "kong_gateway": {"consumers": [{"username": DEMO_CONSUMER, "groups": ["core-users", "ai-users", "blog-readers"],
                                        "keys": [key], "rate_limit": {"minute": 600, "policy": "local"}}]},
    })


def cmd_up(args):
    image = IMAGE % args.debian
    if podman("image", "exists", image, check=False).returncode != 0:
        sys.exit("lab: image %s is missing; run `scripts/images build %s` (or `make images`)" % (image, args.debian))
    if podman("network", "exists", NETWORK, check=False).returncode != 0:
        podman("network", "create", "--label", LABEL, NETWORK)
    wanted = layout(args.hosts, args.service_hosts)
    existing = lab_containers()
    for name in sorted(set(existing) - set(wanted)):
        print("lab: removing surplus host %s" % name)
        podman("rm", "-f", "-t", "5", name)
    # Gateways want many open files; a container cannot get more than this process's hard limit.
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    nofile = 65536 if hard == resource.RLIM_INFINITY else min(65536, hard)
    started = []
    for name in wanted:
        current = existing.get(name)
        if current and current.get("Image") not in (image, image.replace("localhost/", "")):
            print("lab: %s runs %s, recreating it from %s" % (name, current.get("Image"), image))
            podman("rm", "-f", "-t", "5", name)
            current = None
        if current and current.get("State") == "running":
            continue
        if current and podman("start", name, check=False).returncode != 0:
            print("lab: %s does not start again, recreating it" % name)
            podman("rm", "-f", "-t", "5", name)
            current = None
        if not current:
            podman(
                "run", "-d", "--name", name, "--hostname", name, "--network", NETWORK,
                "--label", LABEL, "--systemd=always", "--cap-add", "NET_ADMIN",
                "--ulimit", "nofile=%d:%d" % (nofile, nofile), "--ulimit", "nproc=4096:4096",
                image, "/sbin/init",
            )
        started.append(name)
    wait_booted(wanted)
    standin_packages(wanted)
    sources = artifact_sources()
    print_sources(sources)
    mirror_up(sources, args.debian)
    write_inventory(wanted, args.debian, nofile, sources)
    print("lab: %d host(s) up (%s started now), Debian %s; inventory in %s"
          % (len(wanted), len(started), args.debian, os.path.relpath(INVENTORY_DIR, os.getcwd())))
    cmd_status(args)


def cmd_status(_args):
    containers = lab_containers()
    if not containers:
        print("lab: no lab hosts (run `scripts/lab up`)")
        return
    groups = {}
    for group, members in lab_groups().items():
        for member in members:
            groups.setdefault(member, []).append(group)
    print("%-12s %-9s %-16s %-10s %s" % ("HOST", "STATE", "ADDRESS", "IMAGE", "GROUPS"))
    for name in sorted(containers):
        info = json.loads(podman("inspect", name).stdout)[0]
        address = ((info.get("NetworkSettings", {}).get("Networks") or {}).get(NETWORK) or {}).get("IPAddress") or "-"
        print("%-12s %-9s %-16s %-10s %s" % (
            name, info["State"]["Status"], address, info["ImageName"].rsplit("/", 1)[-1],
            ", ".join(groups.get(name, [])) or "-"))


def host_address(name):
    info = json.loads(podman("inspect", name).stdout)[0]
    networks = info.get("NetworkSettings", {}).get("Networks", {}) or {}
    return (networks.get(NETWORK) or {}).get("IPAddress") or name


def lab_groups():
    groups = {}
    hosts_file = os.path.join(INVENTORY_DIR, "hosts.yml")
    if os.path.exists(hosts_file):
        group = None
        with open(hosts_file, encoding="utf-8") as handle:
            for line in handle:
                if line.startswith("    ") and not line.startswith("     ") and line.strip().endswith(":"):
                    group = line.strip()[:-1]
                elif line.startswith("        ") and group:
                    groups.setdefault(group, []).append(line.strip()[:-1])
    return groups


def read_json(path, default):
    try:
        with open(path, encoding="utf-8") as handle:
            return json.load(handle)
    except (OSError, ValueError):
        return default


def cmd_summary(args):
    cmd_status(args)
    print("\nWhat runs on each host (aic.gateway firewall ports and services):")
    for name in sorted(lab_containers()):
        chain = podman("exec", name, "nft", "list", "chain", "inet", "aic_gateway", "allowed", check=False).stdout
        opened = nft_open_ports(chain)  # the collection's filter, as playbooks/summary.yml uses it
        print("  %s: open: %s" % (name, ", ".join(opened) or "ssh only"))
    groups = lab_groups()
    smoke = read_json(SMOKE_REPORT, {})
    key = read_text(DEMO_KEY_FILE)
    print("\nTry it (from this machine; the lab network is reachable from here):")
    if groups.get("loadbalancer"):
        gateway = "http://%s" % host_address(groups["loadbalancer"][0])
    elif groups.get("kong"):
        gateway = "http://%s:8000" % host_address(groups["kong"][0])
    else:
        gateway = None
    if gateway:
        print("  gateway        %s" % gateway)
        if key:
            print("  API key        %s   (consumer %s)" % (key, DEMO_CONSUMER))
            for path in DEMO_PATHS:
                print("    curl -H 'apikey: %s' %s%s" % (key, gateway, path))
    for group, label, port, path in (("monitoring", "Prometheus", 9090, "/targets"), ("monitoring", "Grafana", 3000, "/"),
                                     ("monitoring", "Zipkin", 9411, "/zipkin/")):
        if groups.get(group):
            print("  %-14s http://%s:%d%s" % (label, host_address(groups[group][0]), port, path))
    if groups.get("monitoring"):
        print("  Grafana login  admin / %s" % LAB_GRAFANA_PASSWORD)
    checks = smoke.get("checks") or []
    if checks:
        passed = [c for c in checks if c.get("ok")]
        print("\nSmoke checks (playbooks/smoke.yml): %d of %d passed" % (len(passed), len(checks)))
        for check in checks:
            print("  %-6s want %-4s got %-4s %s" % (
                "ok" if check.get("ok") else "FAILED", check.get("want"), check.get("got"), check.get("check")))
    sources = read_json(os.path.join(MIRROR_DIR, "sources.json"), {})
    if sources:
        print_sources({k: tuple(v) for k, v in sources.items()})
    print("\nReach a host: podman exec -it %s1 bash    Run a play: ansible-playbook -i inventories/lab playbooks/site.yml" % PREFIX)


def cmd_down(_args):
    for name in sorted(lab_containers()):
        podman("rm", "-f", "-t", "5", name)
        print("lab: removed %s" % name)
    if podman("network", "exists", NETWORK, check=False).returncode == 0:
        podman("network", "rm", NETWORK, check=False)
    mirror_down()
    for path in (os.path.join(INVENTORY_DIR, "hosts.yml"), os.path.join(INVENTORY_DIR, "group_vars", "all", "lab.yml"),
                 DEMO_KEY_FILE, SMOKE_REPORT):
        if os.path.exists(path):
            os.remove(path)
    print("lab: down")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    up = sub.add_parser("up", help="start the lab hosts and write the inventory")
    up.add_argument("--hosts", type=int, default=int(os.environ.get("LAB_HOSTS", "7")),
                    help="number of hosts, 1 to 12 (default 7: one per part of the platform)")
    up.add_argument("--debian", choices=["12", "13"], default=os.environ.get("LAB_DEBIAN", "12"))
    up.add_argument("--service-hosts", type=int, default=int(os.environ.get("LAB_SERVICE_HOSTS", "1")),
                    help="hosts that run the example services (default 1; more are added as extra hosts)")
    sub.add_parser("status", help="list the lab hosts")
    sub.add_parser("summary", help="list the hosts and what runs on them")
    sub.add_parser("down", help="remove the lab hosts")
    args = parser.parse_args()
    if args.command == "up" and not 1 <= args.hosts <= 12:
        parser.error("--hosts must be between 1 and 12")
    if args.command == "up" and not 1 <= args.service_hosts <= 4:
        parser.error("--service-hosts must be between 1 and 4")
    {"up": cmd_up, "status": cmd_status, "summary": cmd_summary, "down": cmd_down}[args.command](args)


if __name__ == "__main__":
    main()
