# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import annotations

import pytest

from ansible.errors import AnsibleFilterError
from ansible_collections.aic.gateway.plugins.filter.nft_allow_rules import nft_allow_rules


def test_open_to_everyone_when_no_sources():
    assert nft_allow_rules([{"port": 8000, "comment": "proxy"}], "kong") == [
        'tcp dport 8000 accept comment "kong: proxy"'
    ]


def test_sources_split_by_address_family_and_host_bits_are_normalised():
    rules = nft_allow_rules([{"port": "8001", "sources": ["10.1.2.3/8", "192.0.2.7", "fd00::1/64"], "comment": "admin"}], "kong")
    assert rules == [
        'ip saddr { 10.0.0.0/8, 192.0.2.7/32 } tcp dport 8001 accept comment "kong: admin"',
        'ip6 saddr { fd00::/64 } tcp dport 8001 accept comment "kong: admin"',
    ]


def test_udp_and_ranges_and_default_comment():
    assert nft_allow_rules([{"port": "60000-61000", "proto": "UDP"}], "mosh") == [
        'udp dport 60000-61000 accept comment "mosh: port 60000-61000/udp"'
    ]


def test_a_single_source_string_is_accepted():
    assert nft_allow_rules([{"port": 22, "sources": "198.51.100.0/24"}], "common")[0].startswith("ip saddr { 198.51.100.0/24 }")


def test_empty_or_missing_rules_open_nothing():
    assert nft_allow_rules([], "x") == []
    assert nft_allow_rules(None, "x") == []


@pytest.mark.parametrize(
    "rule, message",
    [
        ({"port": 0}, "outside 1-65535"),
        ({"port": 70000}, "outside 1-65535"),
        ({"port": "http"}, "not a number"),
        ({"port": "9000-8000"}, "runs backwards"),
        ({"port": 80, "proto": "sctp"}, "not tcp or udp"),
        ({"port": 80, "sources": ["10.0.0.0/33"]}, "not an IP address"),
        ({"port": 80, "sources": ["example.com"]}, "not an IP address"),
        ({"port": 80, "sources": {"a": 1}}, "must be a list"),
        ({"port": 80, "comment": 'say "hi"'}, "may not contain quotes"),
        ({"port": 80, "source": ["10.0.0.0/8"]}, "unknown key(s) source"),
        ({"proto": "tcp"}, "has no port"),
        ("8080", "must be a dict"),
    ],
)
def test_bad_rules_fail_with_owner_and_position(rule, message):
    with pytest.raises(AnsibleFilterError) as err:
        nft_allow_rules([{"port": 22}, rule], "kong")
    assert "firewall rule 2 of 'kong'" in str(err.value)
    assert message in str(err.value)


def test_bad_owner_and_non_list_fail():
    with pytest.raises(AnsibleFilterError, match="owner"):
        nft_allow_rules([], "bad owner")
    with pytest.raises(AnsibleFilterError, match="must be a list"):
        nft_allow_rules({"port": 80}, "kong")
