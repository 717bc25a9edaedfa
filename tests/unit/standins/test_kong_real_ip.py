"""The Kong stand-in's client address behind a load balancer: trusted_ips / real_ip_header / real_ip_recursive
(kong.md §3, nginx's realip module), which ip-restriction and rate limits by IP rely on."""

import sys

from .kong_helpers import STANDIN

if STANDIN not in sys.path:
    sys.path.insert(0, STANDIN)

import proxy  # noqa: E402  pylint: disable=wrong-import-position,import-error


class FakeNode:
    def __init__(self, conf):
        self.conf = conf


def real_ip(conf, client, headers):
    return proxy.Proxy.real_ip(type("P", (), {"node": FakeNode(conf)})(), client, headers)


XFF = {"X-Forwarded-For": "198.51.100.7, 10.0.5.11"}


def test_without_trusted_ips_the_peer_is_the_client():
    assert real_ip({}, "10.0.5.11", XFF) == "10.0.5.11"


def test_from_a_trusted_peer_the_last_forwarded_address_is_the_client():
    conf = {"trusted_ips": "10.0.5.0/24", "real_ip_header": "X-Forwarded-For"}
    assert real_ip(conf, "10.0.5.12", {"x-forwarded-for": "203.0.113.9, 198.51.100.7"}) == "198.51.100.7"


def test_an_untrusted_peer_cannot_claim_another_address():
    conf = {"trusted_ips": "10.0.5.0/24", "real_ip_header": "X-Forwarded-For"}
    assert real_ip(conf, "192.0.2.1", XFF) == "192.0.2.1"


def test_the_default_header_is_x_real_ip():
    conf = {"trusted_ips": "10.0.5.0/24"}
    assert real_ip(conf, "10.0.5.12", XFF) == "10.0.5.12"
    assert real_ip(conf, "10.0.5.12", {"X-Real-IP": "198.51.100.8"}) == "198.51.100.8"


def test_recursive_skips_trusted_addresses_from_the_right():
    conf = {"trusted_ips": "10.0.5.0/24", "real_ip_header": "X-Forwarded-For", "real_ip_recursive": "on"}
    assert real_ip(conf, "10.0.5.12", {"X-Forwarded-For": "198.51.100.7, 10.0.5.11"}) == "198.51.100.7"
