"""Status API of the Kong 3.9 stand-in node (test double, NOT Kong).

kong.md §4 "Status API (status_listen, default 127.0.0.1:8007)":
"Routes: `/status` (same as the Admin API), `/status/ready`, ... and plugin
status routes such as Prometheus `/metrics`."
"""

import json
import os
import sys
import urllib.parse

HERE = os.path.dirname(os.path.abspath(__file__))
if HERE not in sys.path:
    sys.path.insert(0, HERE)

import admin_api  # noqa: E402
import metrics  # noqa: E402
from api import NOT_FOUND, RawBody  # noqa: E402


class StatusAPI:
    def __init__(self, node):
        self.node = node

    def ready(self):
        """kong.md §4 "`/status/ready` returns 200 `{"message":"ready"}`, or 503
        `{"message":<reason>}`"."""
        node = self.node
        if node.draining:
            # kong.md §4 "and "draining" (after `kong drain` or `POST /status/ready
            # status=draining`, which returns 204)"
            return 503, {"message": "draining"}
        if node.conf.get("database") == "off":
            # kong.md §4 "In DB-less or DP mode, "no configuration available (empty
            # configuration present)" also gives 503. **A DB-less node with no config
            # is never "ready".**"
            if not node.config_loaded:
                return 503, {"message": "no configuration available (empty configuration "
                                        "present)"}
            return 200, {"message": "ready"}
        if not node.db_reachable():
            # kong.md §4 "Reasons: "failed to connect to database""
            return 503, {"message": "failed to connect to database"}
        return 200, {"message": "ready"}

    def handle(self, method, path, query, headers, body):
        self.node.count()
        segs = [s for s in path.split("/") if s]
        if segs == ["status"]:
            if method != "GET":
                return 405, {"message": "Method not allowed"}
            return 200, self.node.api.status_info()
        if segs == ["status", "ready"]:
            if method == "POST":
                data = {}
                ctype = (headers.get("Content-Type") or "").lower()
                if body:
                    try:
                        data = json.loads(body) if "json" in ctype else dict(
                            urllib.parse.parse_qsl(body.decode()))
                    except ValueError:
                        return 400, {"message": "Cannot parse JSON body"}
                if data.get("status") == "draining":
                    self.node.draining = True
                    return 204, None
                return 400, {"message": "invalid status"}   # UNCONFIRMED text
            if method != "GET":
                return 405, {"message": "Method not allowed"}
            return self.ready()
        if segs == ["metrics"] and method == "GET":
            if not metrics.prometheus_loaded(self.node.conf):
                return 404, dict(NOT_FOUND)
            return 200, RawBody(metrics.render(self.node).encode(),
                                "text/plain; charset=UTF-8")
        return 404, dict(NOT_FOUND)


def make_server(host, port, node):
    return admin_api.make_server(host, port, node.version, api=StatusAPI(node), node=node)
