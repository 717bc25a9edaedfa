# -*- coding: utf-8 -*-
# Copyright (c) aic.gateway contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
name: prometheus_file_sd_targets
short_description: file_sd targets of the Kuma data plane hosts, from the inventory
version_added: 0.1.0
author: aic.gateway maintainers (@aic-gateway)
description:
  - For the jobs of a table (the prometheus role's C(prometheus_inventory_jobs)) with C(discovery=kuma), when
    O(kuma_discovery=file), a dict of job name to the list of file_sd entries (C(targets), C(labels)), one
    entry per host of the job's groups, with the ports of the host variable named by the job's C(ports_var)
    (default C(kuma_dp_metrics_ports)) or the job's C(ports) (C([5670])).
  - The filter C(prometheus_scrape_configs) points those jobs at C(<file_sd_dir>/<job>.json).
  - Empty when O(kuma_discovery=mads).
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
    description: The jobs table (see the filter C(prometheus_scrape_configs)).
    type: list
    elements: dict
    required: true
  kuma_discovery:
    description: How Kuma jobs find the data planes.
    type: str
    choices: [mads, file]
    default: mads
"""

EXAMPLES = r"""
- name: Write the file_sd files
  ansible.builtin.copy:
    dest: "/etc/prometheus/file_sd/{{ item.key }}.json"
    content: "{{ item.value | to_nice_json }}"
    mode: "0644"
  loop: "{{ groups | aic.gateway.prometheus_file_sd_targets(hostvars, prometheus_inventory_jobs, 'file') | dict2items }}"
"""

RETURN = r"""
_value:
  description: Job name to file_sd entries.
  type: dict
"""

from ansible_collections.aic.gateway.plugins.filter.prometheus_scrape_configs import prometheus_file_sd_targets


class FilterModule(object):
    def filters(self):
        return {"prometheus_file_sd_targets": prometheus_file_sd_targets}
