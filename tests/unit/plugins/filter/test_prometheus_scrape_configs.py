# -*- coding: utf-8 -*-
from __future__ import annotations

import pytest

from ansible.errors import AnsibleFilterError
from ansible_collections.aic.gateway.plugins.filter.prometheus_scrape_configs import (
    prometheus_file_sd_targets, prometheus_scrape_configs)

JOBS = [
    {"name": "prometheus", "groups": ["prometheus", "monitoring"], "port_var": "prometheus_listen_address", "port": 9090},
    {"name": "node", "groups": ["all"], "port_var": "node_exporter_listen_address", "port": 9100},
    {"name": "kong", "groups": ["kong", "kong_dp"], "port_var": "kong_status_listen", "port": 8007},
    {"name": "kuma_dataplanes", "groups": ["kuma_dp"], "discovery": "kuma", "mads_groups": ["kuma_cp"]},
    {"name": "zipkin", "groups": ["zipkin", "tracing"], "port": 9411, "path": "/prometheus"},
]
GROUPS = {"all": ["mon1", "kong1", "kong2", "cp1", "svc1"], "monitoring": ["mon1"], "kong": ["kong1"],
          "kong_dp": ["kong1", "kong2"], "kuma_cp": ["cp1"], "kuma_dp": ["kong1", "svc1"], "zipkin": []}
HOSTVARS = {
    "mon1": {},
    "kong1": {"kong_status_listen": "0.0.0.0:8100", "prometheus_target_address": "10.0.0.11",
              "kuma_dp_dataplanes": [{"name": "kong-gateway"}]},
    "kong2": {},
    "cp1": {"prometheus_target_address": "10.0.0.20"},
    "svc1": {"kuma_dp_metrics_ports": [5670, 5671], "node_exporter_listen_address": "127.0.0.1:9200"},
}


def by_name(configs):
    return {config["job_name"]: config for config in configs}


def test_jobs_follow_the_groups_that_have_hosts():
    configs = prometheus_scrape_configs(GROUPS, HOSTVARS, JOBS)
    # zipkin: both its groups are empty or absent, so no job (no target that can never be up).
    assert [c["job_name"] for c in configs] == ["prometheus", "node", "kong", "kuma_dataplanes"]
    assert configs[0]["static_configs"] == [{"targets": ["mon1:9090"]}]


def test_addresses_and_ports_come_from_the_hosts_variables():
    jobs = by_name(prometheus_scrape_configs(GROUPS, HOSTVARS, JOBS))
    # kong1 is in kong and kong_dp: listed once, at its own status port and target address.
    assert jobs["kong"]["static_configs"] == [{"targets": ["10.0.0.11:8100", "kong2:8007"]}]
    assert jobs["kong"]["metrics_path"] == "/metrics"
    assert jobs["node"]["static_configs"][0]["targets"] == [
        "mon1:9100", "10.0.0.11:9100", "kong2:9100", "10.0.0.20:9100", "svc1:9200"]


def test_kuma_data_planes_through_mads_on_the_first_control_plane():
    job = by_name(prometheus_scrape_configs(GROUPS, HOSTVARS, JOBS))["kuma_dataplanes"]
    assert job["kuma_sd_configs"] == [{"server": "http://10.0.0.20:5676"}]
    assert "static_configs" not in job and "file_sd_configs" not in job
    # Without a control plane there is no MADS server to ask: no job.
    groups = dict(GROUPS, kuma_cp=[])
    assert "kuma_dataplanes" not in by_name(prometheus_scrape_configs(groups, HOSTVARS, JOBS))


def test_kuma_data_planes_from_a_file():
    job = by_name(prometheus_scrape_configs(GROUPS, HOSTVARS, JOBS, kuma_discovery="file"))["kuma_dataplanes"]
    assert job["file_sd_configs"] == [{"files": ["/etc/prometheus/file_sd/kuma_dataplanes.json"]}]
    files = prometheus_file_sd_targets(GROUPS, HOSTVARS, JOBS, kuma_discovery="file")
    assert files == {"kuma_dataplanes": [
        {"targets": ["10.0.0.11:5670"], "labels": {"host": "kong1"}},
        {"targets": ["svc1:5670", "svc1:5671"], "labels": {"host": "svc1"}}]}
    assert prometheus_file_sd_targets(GROUPS, HOSTVARS, JOBS) == {}


def test_kuma_hosts_without_data_planes_are_not_targets():
    # svc2 is in kuma_dp (say, through a parent group) but declares no data plane: nothing listens on 5670 there,
    # so a target for it would only ever be down. kong3 declares none either (kuma_dp's default is []).
    groups = dict(GROUPS, kuma_dp=["kong1", "svc1", "svc2", "kong3"], all=GROUPS["all"] + ["svc2", "kong3"])
    hostvars = dict(HOSTVARS, svc2={"kuma_dp_dataplanes": []}, kong3={})
    files = prometheus_file_sd_targets(groups, hostvars, JOBS, kuma_discovery="file")
    assert [entry["labels"]["host"] for entry in files["kuma_dataplanes"]] == ["kong1", "svc1"]


def test_service_hosts_with_meshed_services_are_targets():
    # kuma_dp adds a Dataplane for each backend service that declares `mesh` (aic.gateway.service_dataplanes).
    groups = dict(GROUPS, kuma_dp=["svc2", "svc3"], all=GROUPS["all"] + ["svc2", "svc3"])
    hostvars = dict(HOSTVARS, svc2={"service_definitions": [{"name": "api", "mesh": {"inbound_port": 20001}}]},
                    svc3={"service_definitions": [{"name": "batch"}]})
    files = prometheus_file_sd_targets(groups, hostvars, JOBS, kuma_discovery="file")
    assert files["kuma_dataplanes"] == [{"targets": ["svc2:5670"], "labels": {"host": "svc2"}}]


def test_labels_path_and_extra_scrape_settings():
    jobs = [{"name": "zipkin", "groups": ["monitoring"], "port": "9411", "path": "/prometheus",
             "labels": {"tier": "tracing"}, "scrape": {"scrape_interval": "30s"}}]
    assert prometheus_scrape_configs(GROUPS, HOSTVARS, jobs) == [{
        "job_name": "zipkin", "metrics_path": "/prometheus", "scrape_interval": "30s",
        "static_configs": [{"targets": ["mon1:9411"], "labels": {"tier": "tracing"}}]}]


@pytest.mark.parametrize("value, port", [(":9100", 9100), ("0.0.0.0:8007", 8007), ("[::]:9090", 9090),
                                         ("0.0.0.0:8007 ssl, 0.0.0.0:8443 ssl", 8007), (5680, 5680), ("8405", 8405)])
def test_port_forms(value, port):
    jobs = [{"name": "x", "groups": ["monitoring"], "port_var": "p"}]
    config = prometheus_scrape_configs(GROUPS, {"mon1": {"p": value}}, jobs)[0]
    assert config["static_configs"][0]["targets"] == ["mon1:%d" % port]


def test_ipv6_target_address_is_bracketed():
    jobs = [{"name": "x", "groups": ["monitoring"], "port": 1}]
    config = prometheus_scrape_configs(GROUPS, {"mon1": {"prometheus_target_address": "fd00::5"}}, jobs)[0]
    assert config["static_configs"][0]["targets"] == ["[fd00::5]:1"]


@pytest.mark.parametrize("jobs, message", [
    ([{"groups": ["all"], "port": 1}], "needs a name"),
    ([{"name": "a", "groups": [], "port": 1}], "non-empty list"),
    ([{"name": "a", "groups": ["all"]}], "give port_var or port"),
    ([{"name": "a", "groups": ["all"], "port": 1}, {"name": "a", "groups": ["all"], "port": 2}], "declared twice"),
    ([{"name": "a", "groups": ["all"], "port": "none"}], "no port in"),
    ([{"name": "a", "groups": ["all"], "port": 70000}], "out of range"),
    ([{"name": "a", "groups": ["all"], "port": 1, "discovery": "dns"}], "static or kuma"),
])
def test_bad_jobs_are_refused(jobs, message):
    with pytest.raises(AnsibleFilterError, match=message):
        prometheus_scrape_configs(GROUPS, HOSTVARS, jobs)


def test_bad_discovery_mode_is_refused():
    with pytest.raises(AnsibleFilterError, match="mads or file"):
        prometheus_scrape_configs(GROUPS, HOSTVARS, JOBS, kuma_discovery="dns")
