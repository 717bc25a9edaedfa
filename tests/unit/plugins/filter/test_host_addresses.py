# -*- coding: utf-8 -*-
from __future__ import annotations

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.aic.gateway.plugins.filter.host_addresses import host_addresses

HOSTVARS = {
    "kong1": {"ansible_host": "10.0.20.11"},
    "kong2": {"ansible_host": "kong2.example.internal", "ansible_facts": {"default_ipv4": {"address": "10.0.20.12"}}},
    "db6": {"ansible_host": "fd00::11"},
    "lab3": {"ansible_default_ipv4": {"address": "10.89.0.7"}},
    "nofacts": {"ansible_host": "nofacts.example.internal"},
}


def test_ip_ansible_host_wins_and_names_fall_back_to_facts():
    assert host_addresses(HOSTVARS, ["kong1", "kong2", "lab3"]) == ["10.0.20.11/32", "10.0.20.12/32", "10.89.0.7/32"]


def test_ipv6_gets_a_host_prefix_and_duplicates_go():
    assert host_addresses(HOSTVARS, ["db6", "db6", "kong1"]) == ["fd00::11/128", "10.0.20.11/32"]


def test_a_single_name_is_accepted():
    assert host_addresses(HOSTVARS, "kong1") == ["10.0.20.11/32"]


def test_a_host_without_an_address_fails_instead_of_opening_the_firewall():
    with pytest.raises(AnsibleFilterError, match="no address for 'nofacts'"):
        host_addresses(HOSTVARS, ["kong1", "nofacts"])


def test_an_unknown_host_fails():
    with pytest.raises(AnsibleFilterError, match="'ghost' is not an inventory host"):
        host_addresses(HOSTVARS, ["ghost"])
