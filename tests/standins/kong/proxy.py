"""Proxy listener of the Kong 3.9 stand-in node (test double, NOT Kong).

Minimal traditional router: a route matches when every *set* field of
``methods``, ``hosts`` (exact, no wildcards) and ``paths`` (prefix; regex paths
``~...`` are ignored) matches; the longest matching path wins.  ``strip_path``
removes the matched prefix; the request goes to the service
``protocol://host:port`` + ``path``, or, when the service host names an upstream,
to its targets in weighted round-robin.  Plugins run through plugins.py
(access phase before forwarding, log phase after the response).
Behaviour and messages are UNCONFIRMED (from memory of kong/router and
kong/runloop), not from kong.md.
"""

import http.client
import ipaddress
import itertools
import math
import socket
import ssl
import threading
import time
import urllib.parse

import admin_api
import conf as C
import plugins as P
from api import RawBody

NO_ROUTE = {"message": "no Route matched with those values"}
HOP = ("connection", "keep-alive", "transfer-encoding", "content-length", "host")


def _in_networks(address, networks):
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    for network in networks:
        try:
            if ip in ipaddress.ip_network(str(network), strict=False):
                return True
        except ValueError:
            continue
    return False


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
        targets = list(self.node.store.referencing("targets", "upstream", upstream["id"]))
        weighted = []
        for tid in targets:
            target = self.node.store.get("targets", tid)
            if target and target.get("weight", 100) > 0:
                weighted.append((target["target"], int(target["weight"])))
        step = 0
        for _address, weight in weighted:
            step = math.gcd(step, weight)
        # interleaved weighted round-robin: weights reduced by their gcd
        entries = []
        for i in range(max([w // step for _address, w in weighted] or [0])):
            entries.extend(t for t, w in weighted if i < w // step)
        if not entries:
            return None
        with self._lock:
            key = (upstream["id"], tuple(entries))
            cycle = self._rr.get(key)
            if cycle is None:
                cycle = self._rr[key] = itertools.cycle(entries)
            return next(cycle)

    wants_client = True     # admin_api.Handler passes the client address

    def real_ip(self, client, headers):
        """The client address Kong's plugins see. kong.md §3 (kong.conf): "`trusted_ips=` (NONE). Accepts
        CIDRs ... It also sets nginx `set_real_ip_from`", "`real_ip_header=X-Real-IP` ..., `real_ip_recursive=off`".
        nginx's realip module: from a trusted peer, the address is taken from that header; with recursion off,
        from its last element (the one the trusted proxy appended)."""
        trusted = C.as_list(self.node.conf.get("trusted_ips"))
        if not trusted or not _in_networks(client, trusted):
            return client
        wanted = (self.node.conf.get("real_ip_header") or "X-Real-IP").lower()
        value = next((v for k, v in headers.items() if k.lower() == wanted), "")
        candidates = [part.strip() for part in value.split(",") if part.strip()]
        if not candidates:
            return client
        if str(self.node.conf.get("real_ip_recursive", "off")).lower() in ("on", "true"):
            for candidate in reversed(candidates):
                if not _in_networks(candidate, trusted):
                    return candidate
            return candidates[0]
        return candidates[-1]

    def handle(self, method, path, query, headers, body, client="127.0.0.1"):
        # pylint: disable=too-many-locals
        self.node.count()
        peer, client = client, self.real_ip(client, headers)
        host = (headers.get("Host") or "").split(":")[0]
        found = self.match(method, path, host)
        if found is None:
            # the router answers before any access handler; global plugins still
            # log (prometheus counts the 404 with empty service/route; from memory
            # of kong/runloop/handler.lua, UNCONFIRMED)
            ctx = P.Ctx(self.node, method, path, query, dict(headers), body, client, None, None, peer)
            ctx.status = 404
            ctx.collected = P.global_loggers(ctx)
            P.log(ctx)
            return 404, dict(NO_ROUTE), {}
        route, matched = found
        service = self.node.store.get("services", route["service"]["id"])
        if service is None:
            return 404, dict(NO_ROUTE), {}
        fwd = {k: v for k, v in headers.items() if k.lower() not in HOP}
        ctx = P.Ctx(self.node, method, path, query, fwd, body, client, route, service, peer)
        try:
            P.access(ctx)
        except P.Exit as exc:
            ctx.status = exc.status
            P.log(ctx)
            out = dict(ctx.response_headers)
            out.update(exc.headers)
            return exc.status, exc.body, out
        status, payload, upstream_headers = self._forward(ctx, route, service, matched)
        ctx.status = status
        P.log(ctx)
        out = dict(upstream_headers)
        out.update(ctx.response_headers)
        return status, payload, out

    def _forward(self, ctx, route, service, matched):
        path = ctx.path
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
                return 503, {"message": "failure to get a peer from the ring-balancer"}, {}
        target = upstream_path
        if ctx.query:
            target += "?" + urllib.parse.urlencode(ctx.query)
        fwd = dict(ctx.headers)
        if not route.get("preserve_host"):
            ctx.clear_header("Host")
            fwd = dict(ctx.headers)
            fwd["Host"] = service["host"]
        timeout = (service.get("read_timeout") or 60000) / 1000.0
        host, _sep, port = address.rpartition(":")
        host = host.strip("[]")
        # http.client keeps header names as given (urllib would re-case them)
        # and never follows redirects, as a proxy must not
        try:
            ip_addr = resolve(host, int(port))
        except OSError as exc:
            # The error log line Kong writes when a name does not resolve (UNCONFIRMED wording).
            self.node.log("error", "%s could not be resolved (%s)" % (host, exc))
            return 503, {"message": "name resolution failed"}, {}
        if (service.get("protocol") or "http") == "https":
            conn = http.client.HTTPSConnection(ip_addr, int(port), timeout=timeout,
                                               context=ssl._create_unverified_context())  # pylint: disable=protected-access
        else:
            conn = http.client.HTTPConnection(ip_addr, int(port), timeout=timeout)
        try:
            conn.putrequest(ctx.method, target, skip_host=True, skip_accept_encoding=True)
            for name, value in fwd.items():
                conn.putheader(name, value)
            data = ctx.body or b""
            if data or ctx.method in ("POST", "PUT", "PATCH"):
                conn.putheader("Content-Length", str(len(data)))
            conn.endheaders(data or None)
            resp = conn.getresponse()
            payload = resp.read()
            ctx.source = "service"
            return resp.status, RawBody(payload, resp.headers.get(
                "Content-Type", "application/octet-stream")), _pass(resp.headers)
        except (OSError, http.client.HTTPException) as exc:
            # As nginx does, the cause goes to the error log ("... while connecting to upstream").
            self.node.log("error", "%s while proxying to upstream %s:%s (%s)"
                          % (type(exc).__name__, host, port, exc))
            return 502, {"message": "An invalid response was received from the upstream "
                                    "server"}, {}
        finally:
            conn.close()


# Kong resolves upstream host names through its own DNS client and caches the answers; when a
# lookup fails it keeps serving the stale answer (kong.conf `dns_stale_ttl`, default 3600 s in
# Kong 3.9, UNCONFIRMED here). The stand-in caches each name for DNS_TTL seconds the same way, so
# a slow or failing resolver does not fail proxied requests.
DNS_TTL = 30.0
DNS_STALE_TTL = 3600.0
_DNS = {}
_DNS_LOCK = threading.Lock()


def resolve(host, port):
    now = time.time()
    with _DNS_LOCK:
        cached = _DNS.get((host, port))
    if cached and now - cached[1] < DNS_TTL:
        return cached[0]
    try:
        address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][4][0]
    except OSError:
        if cached and now - cached[1] < DNS_STALE_TTL:
            return cached[0]
        raise
    with _DNS_LOCK:
        _DNS[(host, port)] = (address, now)
    return address


def _pass(headers):
    """Upstream response headers passed to the client (hop-by-hop and the ones
    the stand-in's HTTP layer sets itself are dropped)."""
    out = {}
    for name, value in headers.items():
        if name.lower() in HOP + ("content-type", "server", "date", "connection"):
            continue
        out[name] = value
    return out


def make_server(host, port, node):
    return admin_api.make_server(host, port, node.version, api=Proxy(node), node=node)
