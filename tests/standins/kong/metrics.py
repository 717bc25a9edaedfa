"""Prometheus exposition of the Kong 3.9 stand-in node (test double, NOT Kong).

kong.md §5 prometheus: "Metric prefix `kong_`"; "the node-level metrics below
are filled at scrape time whenever the plugin is loaded (`plugins=bundled`).
Per-request metrics need an enabled plugin instance"; "Always exported:
`kong_nginx_connections_total{node_id,subsystem,state}`, `kong_nginx_requests_total`,
`kong_nginx_timers`, `kong_datastore_reachable`, `kong_node_info{node_id,version}`,
`kong_memory_workers_lua_vms_bytes`, `kong_memory_lua_shared_dict_bytes`,
`kong_memory_lua_shared_dict_total_bytes`."
Gated: "`kong_http_requests_total{service,route,code,source,workspace,consumer}`
(status_code_metrics)".
Label sets other than those quoted, HELP texts and the shared dict names are
UNCONFIRMED (from memory of kong/plugins/prometheus/exporter.lua).
"""

import os

import conf as C


def prometheus_loaded(conf):
    plugins = C.as_list(conf.get("plugins"))
    return "bundled" in plugins or "prometheus" in plugins


def _labels(**kw):
    return "{" + ",".join('%s="%s"' % (k, str(v).replace('"', '\\"'))
                          for k, v in kw.items()) + "}"


def render(node):
    nid = node.api.node_id if node.api else ""
    out = []

    def metric(name, mtype, help_text, samples):
        out.append("# HELP %s %s" % (name, help_text))
        out.append("# TYPE %s %s" % (name, mtype))
        for labels, value in samples:
            out.append("%s%s %s" % (name, labels, value))

    reachable = 1 if node.db_reachable() else 0
    metric("kong_datastore_reachable", "gauge",
           "Datastore reachable from Kong, 0 is unreachable", [("", reachable)])
    metric("kong_memory_lua_shared_dict_bytes", "gauge",
           "Allocated slabs in bytes in a shared_dict",
           [(_labels(node_id=nid, shared_dict=d, kong_subsystem="http"), 40960)
            for d in ("kong", "kong_db_cache", "prometheus_metrics")])
    metric("kong_memory_lua_shared_dict_total_bytes", "gauge",
           "Total capacity in bytes of a shared_dict",
           [(_labels(node_id=nid, shared_dict=d, kong_subsystem="http"), size)
            for d, size in (("kong", 5242880), ("kong_db_cache", 134217728),
                            ("prometheus_metrics", 5242880))])
    metric("kong_memory_workers_lua_vms_bytes", "gauge",
           "Allocated bytes in worker Lua VM",
           [(_labels(node_id=nid, pid=os.getpid(), kong_subsystem="http"), 41943040)])
    metric("kong_nginx_connections_total", "gauge", "Number of connections by subsystem",
           [(_labels(node_id=nid, subsystem="http", state=s), node.requests if s in (
               "accepted", "handled", "total") else (1 if s in ("active", "writing") else 0))
            for s in ("accepted", "active", "handled", "reading", "total", "waiting",
                      "writing")])
    metric("kong_nginx_requests_total", "gauge", "Number of requests total",
           [(_labels(node_id=nid, subsystem="http"), node.requests)])
    metric("kong_nginx_timers", "gauge", "Number of nginx timers",
           [(_labels(state="running"), 0), (_labels(state="pending"), 7)])
    metric("kong_node_info", "gauge", "Kong Node metadata information",
           [(_labels(node_id=nid, version=node.version), 1)])
    if node.proxy_metrics:
        samples = []
        for key, value in sorted(node.proxy_metrics.items()):
            service, route, code, source, consumer = key   # see plugins.prometheus_log
            samples.append((_labels(service=service, route=route, code=code,
                                    source=source, workspace="default",
                                    consumer=consumer), value))
        metric("kong_http_requests_total", "counter",
               "HTTP status codes per consumer/service/route in Kong", samples)
    return "\n".join(out) + "\n"
