# -*- coding: utf-8 -*-
# Copyright (c) aic.gateway contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
name: prometheus_scrape_configs
short_description: Prometheus scrape configurations generated from the inventory groups
version_added: 0.1.0
author: aic.gateway maintainers (@aic-gateway)
description:
  - Turns a table of jobs (the prometheus role's C(prometheus_inventory_jobs)) into Prometheus
    C(scrape_configs). A job is included only when one of its groups has hosts.
  - A host's address is its C(prometheus_target_address), or its inventory name. Its port comes from the
    host variable named by the job's C(port_var) (an address such as C(0.0.0.0:8007), C(:9100), or a
    number), or the job's C(port).
  - Jobs with C(discovery=kuma) scrape the Kuma data planes, either through Kuma's MADS server on the first
    host of C(mads_groups) (O(kuma_discovery=mads)) or from a file_sd file of the data plane hosts and their
    metrics ports (O(kuma_discovery=file); the file's content comes from the filter C(prometheus_file_sd_targets)).
options:
  _input:
    description: The C(groups) magic variable.
    type: dict
    required: true
  hostvars:
    description: The C(hostvars) magic variable.
    type: dict
    required: true
  jobs:
    description:
      - Jobs, each with C(name), C(groups) (list), and optional C(port_var), C(port), C(path) (C(/metrics)),
        C(scheme), C(labels) (dict, added to every target), C(scrape) (dict merged into the scrape config,
        for example C(scrape_interval)) and C(discovery) (C(static) or C(kuma)).
      - Kuma jobs also take C(mads_groups), C(mads_port_var), C(mads_port) (5676), C(ports_var) (a host
        variable holding a list of ports), C(ports) (C([5670])) and C(dataplanes_var) (C(kuma_dp_dataplanes)).
      - With file discovery, a host without its own C(ports_var) gets C(ports) only when its C(dataplanes_var) is a
        non-empty list, since a host in the group that runs no data plane has no metrics to scrape.
    type: list
    elements: dict
    required: true
  kuma_discovery:
    description: How Kuma jobs find the data planes.
    type: str
    choices: [mads, file]
    default: mads
  file_sd_dir:
    description: Directory of the file_sd files (absolute).
    type: str
    default: /etc/prometheus/file_sd
"""

EXAMPLES = r"""
- name: Write prometheus.yml
  ansible.builtin.copy:
    dest: /etc/prometheus/prometheus.yml
    content: "{{ {'scrape_configs': groups | aic.gateway.prometheus_scrape_configs(hostvars, prometheus_inventory_jobs)} | to_nice_yaml }}"
    mode: "0644"
"""

RETURN = r"""
_value:
  description: Scrape configurations in the order of the jobs table.
  type: list
  elements: dict
"""

import re

from ansible.errors import AnsibleFilterError

KUMA_RELABEL = [
    {"source_labels": ["__meta_kuma_mesh"], "target_label": "mesh"},
    {"source_labels": ["__meta_kuma_service"], "target_label": "service"},
    {"source_labels": ["__meta_kuma_dataplane"], "target_label": "dataplane"},
]


def port_of(value, where):
    """The port of an address like '0.0.0.0:8007', ':9100', '[::]:9090 ssl, 0.0.0.0:8443' or a number."""
    if isinstance(value, bool):
        raise AnsibleFilterError("prometheus_scrape_configs: %s: %r is not a port or address" % (where, value))
    if isinstance(value, int):
        port = value
    else:
        first = str(value).split(",", maxsplit=1)[0].strip().split()
        match = re.search(r"(?:^|:)(\d+)$", first[0]) if first else None
        if not match:
            raise AnsibleFilterError("prometheus_scrape_configs: %s: no port in %r" % (where, value))
        port = int(match.group(1))
    if not 0 < port < 65536:
        raise AnsibleFilterError("prometheus_scrape_configs: %s: port %d out of range" % (where, port))
    return port


def address_of(hostvars, host):
    return str((hostvars.get(host) or {}).get("prometheus_target_address") or host)


def hostport(address, port):
    return "[%s]:%d" % (address, port) if ":" in address else "%s:%d" % (address, port)


def hosts_of(groups, names):
    seen = []
    for name in names:
        for host in groups.get(name) or []:
            if host not in seen:
                seen.append(host)
    return seen


def check_job(job):
    if not isinstance(job, dict) or not job.get("name"):
        raise AnsibleFilterError("prometheus_scrape_configs: every job needs a name, got %r" % (job,))
    if not isinstance(job.get("groups"), list) or not job["groups"]:
        raise AnsibleFilterError("prometheus_scrape_configs: job %s: groups must be a non-empty list" % job["name"])
    if job.get("discovery", "static") not in ("static", "kuma"):
        raise AnsibleFilterError("prometheus_scrape_configs: job %s: discovery must be static or kuma" % job["name"])
    if "port_var" not in job and "port" not in job and job.get("discovery", "static") == "static":
        raise AnsibleFilterError("prometheus_scrape_configs: job %s: give port_var or port" % job["name"])


def host_port(job, hostvars, host):
    var = job.get("port_var")
    value = (hostvars.get(host) or {}).get(var) if var else None
    if value is None or value == "":
        value = job.get("port")
    if value is None:
        raise AnsibleFilterError("prometheus_scrape_configs: job %s: host %s has no %s and the job no port"
                                 % (job["name"], host, var))
    return port_of(value, "job %s, host %s" % (job["name"], host))


def kuma_file_targets(job, hostvars, hosts):
    entries = []
    for host in hosts:
        own = hostvars.get(host) or {}
        ports = own.get(job.get("ports_var") or "kuma_dp_metrics_ports")
        if ports is None:
            # kuma_dp's default is no data plane: such a host serves no data plane metrics, unless one of its
            # backend services declares `mesh` (kuma_dp adds their Dataplanes, aic.gateway.service_dataplanes).
            meshed = any(isinstance(item, dict) and item.get("mesh") for item in own.get("service_definitions") or [])
            ports = job.get("ports", [5670]) if own.get(job.get("dataplanes_var") or "kuma_dp_dataplanes") or meshed else []
        if not isinstance(ports, list):
            raise AnsibleFilterError("prometheus_scrape_configs: job %s, host %s: metrics ports must be a list"
                                     % (job["name"], host))
        targets = [hostport(address_of(hostvars, host), port_of(port, "job %s, host %s" % (job["name"], host)))
                   for port in ports]
        if targets:
            entries.append({"targets": targets, "labels": dict(job.get("labels") or {}, host=host)})
    return entries


def base_config(job):
    config = {"job_name": job["name"], "metrics_path": job.get("path", "/metrics")}
    if job.get("scheme"):
        config["scheme"] = job["scheme"]
    return config


def prometheus_scrape_configs(groups, hostvars, jobs, kuma_discovery="mads", file_sd_dir="/etc/prometheus/file_sd"):
    if kuma_discovery not in ("mads", "file"):
        raise AnsibleFilterError("prometheus_scrape_configs: kuma_discovery must be mads or file, got %r" % kuma_discovery)
    if not str(file_sd_dir).startswith("/"):
        raise AnsibleFilterError("prometheus_scrape_configs: file_sd_dir must be absolute, got %r" % file_sd_dir)
    groups = groups or {}
    hostvars = hostvars or {}
    configs, names = [], set()
    for job in jobs or []:
        check_job(job)
        if job["name"] in names:
            raise AnsibleFilterError("prometheus_scrape_configs: job %s is declared twice" % job["name"])
        names.add(job["name"])
        hosts = hosts_of(groups, job["groups"])
        if not hosts:
            continue
        config = base_config(job)
        if job.get("discovery", "static") == "kuma":
            if kuma_discovery == "mads":
                servers = hosts_of(groups, job.get("mads_groups") or ["kuma_cp"])
                if not servers:
                    continue
                server = servers[0]
                port = port_of((hostvars.get(server) or {}).get(job.get("mads_port_var") or "kuma_cp_mads_port")
                               or job.get("mads_port", 5676), "job %s, MADS server %s" % (job["name"], server))
                config["kuma_sd_configs"] = [{"server": "http://" + hostport(address_of(hostvars, server), port)}]
                config["relabel_configs"] = [dict(rule) for rule in KUMA_RELABEL]
                if job.get("labels"):
                    config["relabel_configs"] += [{"target_label": key, "replacement": str(value)}
                                                  for key, value in sorted(job["labels"].items())]
            else:
                config["file_sd_configs"] = [{"files": ["%s/%s.json" % (str(file_sd_dir).rstrip("/"), job["name"])]}]
        else:
            targets = []
            for host in hosts:
                target = hostport(address_of(hostvars, host), host_port(job, hostvars, host))
                if target not in targets:
                    targets.append(target)
            static = {"targets": targets}
            if job.get("labels"):
                static["labels"] = dict(job["labels"])
            config["static_configs"] = [static]
        config.update(job.get("scrape") or {})
        configs.append(config)
    return configs


def prometheus_file_sd_targets(groups, hostvars, jobs, kuma_discovery="mads"):
    """{job name: file_sd entries} for the Kuma jobs that use a file (kuma_discovery=file)."""
    files = {}
    if kuma_discovery != "file":
        return files
    for job in jobs or []:
        check_job(job)
        if job.get("discovery", "static") != "kuma":
            continue
        hosts = hosts_of(groups or {}, job["groups"])
        if hosts:
            files[job["name"]] = kuma_file_targets(job, hostvars or {}, hosts)
    return files


class FilterModule(object):
    def filters(self):
        return {"prometheus_scrape_configs": prometheus_scrape_configs}
