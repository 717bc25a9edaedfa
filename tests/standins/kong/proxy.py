"""Proxy listener of the Kong 3.9 stand-in node (test double, NOT Kong).

Minimal traditional router: a route matches when every *set* field of
``methods``, ``hosts`` (exact, no wildcards) and ``paths`` (prefix; regex paths
``~...`` are ignored) matches; the longest matching path wins.  ``strip_path``
removes the matched prefix; the request goes to the service
``protocol://host:port`` + ``path``, or, when the service host names an upstream,
to its targets in weighted round-robin.  No plugins run.
Behaviour and messages are UNCONFIRMED (from memory of kong/router and
kong/runloop), not from kong.md.
"""

import itertools
import math
import threading
import urllib.error
import urllib.parse
import urllib.request

import admin_api
from api import RawBody

NO_ROUTE = {"message": "no Route matched with those values"}
HOP = ("connection", "keep-alive", "transfer-encoding", "content-length", "host")


class Proxy:
    def __init__(self, node):
        self.node = node
        self._rr = {}
        self._lock = threading.Lock()

    def match(self, method, path, host):
        best, best_len = None, -1
        for route in self.node.store.iter_all("routes"):
            if not route.get("service"):
                continue
            if route.get("methods") and method not in route["methods"]:
                continue
            if route.get("hosts") and host not in route["hosts"]:
                continue
            plen = 0
            if route.get("paths"):
                hits = [p for p in route["paths"] if not p.startswith("~")
                        and path.startswith(p)]
                if not hits:
                    continue
                plen = max(len(p) for p in hits)
                matched = max(hits, key=len)
            else:
                matched = ""
            if plen > best_len:
                best, best_len = (route, matched), plen
        return best

    def _target(self, upstream):
        targets = [t for t in self.node.store.referencing("targets", "upstream",
                                                          upstream["id"])]
        weighted = []
        for tid in targets:
            target = self.node.store.get("targets", tid)
            if target and target.get("weight", 100) > 0:
                weighted.append((target["target"], int(target["weight"])))
        step = 0
        for _, weight in weighted:
            step = math.gcd(step, weight)
        # interleaved weighted round-robin: weights reduced by their gcd
        entries = []
        for i in range(max([w // step for _, w in weighted] or [0])):
            entries.extend(t for t, w in weighted if i < w // step)
        if not entries:
            return None
        with self._lock:
            key = (upstream["id"], tuple(entries))
            cycle = self._rr.get(key)
            if cycle is None:
                cycle = self._rr[key] = itertools.cycle(entries)
            return next(cycle)

    def handle(self, method, path, query, headers, body):
        self.node.count()
        host = (headers.get("Host") or "").split(":")[0]
        found = self.match(method, path, host)
        if found is None:
            return 404, dict(NO_ROUTE)
        route, matched = found
        service = self.node.store.get("services", route["service"]["id"])
        if service is None:
            return 404, dict(NO_ROUTE)
        rest = path[len(matched):] if route.get("strip_path", True) and matched else path
        base = service.get("path") or ""
        if rest and not rest.startswith("/"):
            rest = "/" + rest
        upstream_path = (base.rstrip("/") + rest) if base else (rest or "/")
        upstream_path = upstream_path or "/"
        address = "%s:%s" % (service["host"], service["port"])
        upstream = self.node.store.find_by_unique("upstreams", "name", service["host"])
        if upstream is not None:
            address = self._target(upstream)
            if address is None:
                return 503, {"message": "failure to get a peer from the ring-balancer"}
        url = "%s://%s%s" % (service.get("protocol") or "http", address, upstream_path)
        if query:
            url += "?" + urllib.parse.urlencode(query)
        fwd = {k: v for k, v in headers.items() if k.lower() not in HOP}
        if not route.get("preserve_host"):
            fwd["Host"] = service["host"]
        req = urllib.request.Request(url, data=body or None, method=method, headers=fwd)
        timeout = (service.get("read_timeout") or 60000) / 1000.0
        try:
            with urllib.request.urlopen(req, timeout=timeout) as resp:
                return resp.status, RawBody(resp.read(), resp.headers.get(
                    "Content-Type", "application/octet-stream"))
        except urllib.error.HTTPError as exc:
            return exc.code, RawBody(exc.read(), exc.headers.get(
                "Content-Type", "application/octet-stream"))
        except (urllib.error.URLError, OSError):
            return 502, {"message": "An invalid response was received from the upstream "
                                    "server"}


def make_server(host, port, node):
    return admin_api.make_server(host, port, node.version, api=Proxy(node), node=node)
