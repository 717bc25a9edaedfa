"""The platform dashboards of the grafana role (roles/grafana/files/dashboards/*.json).

Every query must use a data source the role provisions, by uid, and only metric names listed below with
the source that documents them, so a typo in a metric name fails here instead of showing an empty panel.
"""

from __future__ import annotations

import glob
import json
import os
import re

import pytest
import yaml

HERE = os.path.dirname(os.path.abspath(__file__))
ROLE = os.path.join(HERE, "..", "..", "..", "roles", "grafana")
BOARDS = sorted(glob.glob(os.path.join(ROLE, "files", "dashboards", "*.json")))
BACKUP_SCRIPT = os.path.join(HERE, "..", "..", "..", "roles", "postgresql_backup", "files", "aic-pg-backup.py")

KONG = "kong.md §5 (prometheus plugin, Kong 3.9: kong/plugins/prometheus/exporter.lua)"
ENVOY = ("Envoy cluster manager and HTTP connection manager statistics, as the Kuma data plane's MeshMetric "
         "Prometheus backend exposes them (kuma.md MeshMetric; obs §3.5 Kuma dashboards [S70])")
PGEXP = "obs §2.2 [S13] postgres_exporter (pg_up; collector pg_stat_database)"
BACKUP = "roles/postgresql_backup/files/aic-pg-backup.py (node_exporter textfile metrics, obs §6.6)"
NODE = "obs §2.1 [S11] node_exporter default collectors (cpu, loadavg, meminfo, filesystem, netdev)"
PROM = "obs §1.4 [S5] Prometheus target health: the synthetic `up` series per target"

# name -> (type, source). Histograms are used through their _bucket / _sum / _count series.
ALLOWED = {
    "kong_http_requests_total": ("counter", KONG),
    "kong_request_latency_ms": ("histogram", KONG),
    "kong_kong_latency_ms": ("histogram", KONG),
    "kong_upstream_latency_ms": ("histogram", KONG),
    "kong_bandwidth_bytes": ("counter", KONG),
    "kong_datastore_reachable": ("gauge", KONG),
    "kong_nginx_connections_total": ("gauge", KONG),
    "kong_upstream_target_health": ("gauge", KONG),
    "kong_memory_workers_lua_vms_bytes": ("gauge", KONG),
    "envoy_cluster_upstream_rq_total": ("counter", ENVOY),
    "envoy_cluster_upstream_rq_xx": ("counter", ENVOY),
    "envoy_cluster_upstream_rq_time": ("histogram", ENVOY),
    "envoy_cluster_upstream_cx_active": ("gauge", ENVOY),
    "envoy_cluster_upstream_cx_connect_fail": ("counter", ENVOY),
    "envoy_cluster_upstream_rq_retry": ("counter", ENVOY),
    "envoy_cluster_upstream_rq_timeout": ("counter", ENVOY),
    "envoy_http_downstream_rq_total": ("counter", ENVOY),
    "envoy_http_downstream_rq_xx": ("counter", ENVOY),
    "pg_up": ("gauge", PGEXP),
    "pg_stat_database_numbackends": ("gauge", PGEXP),
    "pg_stat_database_xact_commit": ("counter", PGEXP),
    "pg_stat_database_xact_rollback": ("counter", PGEXP),
    "pg_stat_database_blks_hit": ("counter", PGEXP),
    "pg_stat_database_blks_read": ("counter", PGEXP),
    "pg_stat_database_deadlocks": ("counter", PGEXP),
    "pg_stat_database_temp_files": ("counter", PGEXP),
    "aic_pgbackrest_status": ("gauge", BACKUP),
    "aic_pgbackrest_last_good_backup_timestamp_seconds": ("gauge", BACKUP),
    "aic_pgbackrest_last_backup_timestamp_seconds": ("gauge", BACKUP),
    "aic_pg_dump_last_timestamp_seconds": ("gauge", BACKUP),
    "aic_pg_backup_job_last_success": ("gauge", BACKUP),
    "aic_pg_backup_job_last_success_timestamp_seconds": ("gauge", BACKUP),
    "aic_pg_backup_metrics_timestamp_seconds": ("gauge", BACKUP),
    "node_cpu_seconds_total": ("counter", NODE),
    "node_load1": ("gauge", NODE),
    "node_memory_MemAvailable_bytes": ("gauge", NODE),
    "node_memory_MemTotal_bytes": ("gauge", NODE),
    "node_filesystem_avail_bytes": ("gauge", NODE),
    "node_filesystem_size_bytes": ("gauge", NODE),
    "node_network_receive_bytes_total": ("counter", NODE),
    "node_network_transmit_bytes_total": ("counter", NODE),
    "up": ("gauge", PROM),
}

KEYWORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "bool", "offset", "and", "or",
            "unless", "inf", "nan"}


def metric_names(expr):
    """Metric names in a PromQL expression (or a label_values() variable query)."""
    text = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)         # string literals (regexes, label values)
    text = re.sub(r"\{[^}]*\}", "", text)                    # label matchers
    text = re.sub(r"\[[^\]]*\]", "", text)                   # range selectors
    text = re.sub(r"\$\{?\w+\}?", "", text)                  # dashboard variables
    text = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", "", text)
    text = re.sub(r"^\s*label_values\(\s*([A-Za-z_:][\w:]*)\s*,.*$", r"\1", text)
    names = set()
    for match in re.finditer(r"[A-Za-z_:][\w:]*", text):
        word = match.group(0)
        following = text[match.end():].lstrip()
        if following.startswith("(") or word.lower() in KEYWORDS:
            continue  # a function or an operator keyword
        if re.match(r"^\d", word):
            continue
        names.add(word)
    return names


def unknown_metrics(names):
    bad = set()
    for name in names:
        if name in ALLOWED:
            continue
        base = re.sub(r"_(bucket|sum|count)$", "", name)
        if base != name and ALLOWED.get(base, ("",))[0] == "histogram":
            continue
        bad.add(name)
    return bad


def panels_of(board):
    for panel in board.get("panels", []):
        yield panel
        yield from panel.get("panels", [])


def queries_of(board):
    """(where, datasource, expression) of every panel target and template variable."""
    for panel in panels_of(board):
        for target in panel.get("targets", []):
            yield ("panel %r" % panel.get("title"), target.get("datasource") or panel.get("datasource"),
                   target.get("expr", ""))
    for variable in board.get("templating", {}).get("list", []):
        if variable.get("type") == "query":
            query = variable.get("query")
            yield ("variable %r" % variable.get("name"), variable.get("datasource"),
                   query.get("query", "") if isinstance(query, dict) else query)


def provisioned_uids():
    with open(os.path.join(ROLE, "vars", "main.yml"), encoding="utf-8") as handle:
        data = yaml.safe_load(handle)
    return {item["uid"]: item["type"] for item in data["__grafana_builtin_datasources"]}


def load(path):
    with open(path, encoding="utf-8") as handle:
        text = handle.read()
    return text, json.loads(text)


def test_the_platform_dashboards_are_there():
    names = {os.path.basename(p) for p in BOARDS}
    assert names == {"aic-kong.json", "aic-mesh.json", "aic-postgresql.json", "aic-hosts.json"}


@pytest.mark.parametrize("path", BOARDS, ids=os.path.basename)
def test_dashboard_is_raw_json_for_file_provisioning(path):
    """obs §3.4 pitfall: "export for sharing" JSON (__inputs, ${DS_...}) is not resolved by file provisioning."""
    text, board = load(path)
    assert "__inputs" not in board and "__requires" not in board
    assert "${DS_" not in text and "$DS_" not in text
    assert board["uid"] == os.path.basename(path)[:-len(".json")]
    assert board["title"] and "id" not in board
    ids = [p["id"] for p in panels_of(board)]
    assert len(ids) == len(set(ids))


@pytest.mark.parametrize("path", BOARDS, ids=os.path.basename)
def test_every_query_uses_a_provisioned_data_source(path):
    uids = provisioned_uids()
    board = load(path)[1]
    queries = list(queries_of(board))
    assert queries
    for where, source, expr in queries:
        assert isinstance(source, dict), "%s: data source must be {type, uid}, got %r" % (where, source)
        assert source.get("uid") in uids, "%s: data source uid %r is not provisioned" % (where, source)
        assert source.get("type") == uids[source["uid"]], where
        assert expr.strip(), "%s: empty query" % where


@pytest.mark.parametrize("path", BOARDS, ids=os.path.basename)
def test_every_metric_name_is_a_known_one(path):
    board = load(path)[1]
    for where, dummy, expr in queries_of(board):
        names = metric_names(expr)
        assert names, "%s: no metric in %r" % (where, expr)
        assert not unknown_metrics(names), "%s: unknown metric names %s in %r" % (where, unknown_metrics(names), expr)


def test_every_allowed_metric_is_used():
    used = set()
    for path in BOARDS:
        for dummy, dummy2, expr in queries_of(load(path)[1]):
            used |= {re.sub(r"_(bucket|sum|count)$", "", n) if n not in ALLOWED else n for n in metric_names(expr)}
    assert set(ALLOWED) - used == set()


def test_backup_metric_names_are_the_ones_the_backup_role_writes():
    with open(BACKUP_SCRIPT, encoding="utf-8") as handle:
        source = handle.read()
    written = set(re.findall(r'"(aic_[a-z_]+)"', source))
    assert {n for n, (dummy, src) in ALLOWED.items() if src == BACKUP} <= written


@pytest.mark.parametrize("expr, names", [
    ('sum by (service) (rate(kong_http_requests_total{service=~"$service",code=~"5.."}[$__rate_interval]))',
     {"kong_http_requests_total"}),
    ("histogram_quantile(0.95, sum by (le) (rate(kong_request_latency_ms_bucket[5m])))", {"kong_request_latency_ms_bucket"}),
    ('time() - max by (stanza) (aic_pgbackrest_last_good_backup_timestamp_seconds > 0)',
     {"aic_pgbackrest_last_good_backup_timestamp_seconds"}),
    ("node_memory_MemAvailable_bytes / on (instance) node_memory_MemTotal_bytes", {"node_memory_MemAvailable_bytes",
                                                                                   "node_memory_MemTotal_bytes"}),
    ("label_values(envoy_cluster_upstream_rq_total, envoy_cluster_name)", {"envoy_cluster_upstream_rq_total"}),
])
def test_metric_names_are_read_from_queries(expr, names):
    assert metric_names(expr) == names


@pytest.mark.parametrize("expr", [
    "sum(rate(kong_http_request_total[5m]))",                       # typo: request, not requests
    "histogram_quantile(0.9, rate(kong_latency_ms_bucket[5m]))",    # Kong 2.x name
    "rate(kong_http_requests_total_bucket[5m])",                    # not a histogram
    "pg_stat_database_xact_commits",
])
def test_a_misspelt_metric_is_caught(expr):
    assert unknown_metrics(metric_names(expr))
