# -*- coding: utf-8 -*-
from __future__ import annotations

import pytest

from ansible.errors import AnsibleFilterError
from ansible_collections.aic.gateway.plugins.filter.unknown_keys import unknown_keys

DEFAULTS = {
    "store": {"type": "memory", "postgres": {"host": "127.0.0.1", "port": 15432, "tls": {"mode": "disable"}}},
    "dpServer": {"port": 5678, "authn": {"enableReloadableTokens": False}},
    "access": {"static": {}},
    "runtime": None,
    "apiServer": {"corsAllowedDomains": []},
}


def test_known_settings_pass():
    assert unknown_keys({"store": {"type": "postgres", "postgres": {"port": 5432, "tls": {"mode": "verifyFull"}}}},
                        DEFAULTS) == []


def test_misspelt_key_from_the_docs_is_reported_with_its_path():
    # kuma.md §7.4: the docs say dpServer.auth.enableReloadableTokens; the real key is dpServer.authn....
    assert unknown_keys({"dpServer": {"auth": {"enableReloadableTokens": True}}}, DEFAULTS) == ["dpServer.auth"]


def test_every_unknown_path_is_reported_sorted():
    assert unknown_keys({"zzz": 1, "store": {"postgress": {}, "type": "postgres"}}, DEFAULTS) == \
        ["store.postgress", "zzz"]


def test_open_sections_accept_anything_below():
    # An empty mapping, null or a list in the defaults accepts whatever is put there.
    assert unknown_keys({"access": {"static": {"adminResources": {"users": ["a"]}}},
                         "runtime": {"universal": {"dataplaneCleanupAge": "1h"}},
                         "apiServer": {"corsAllowedDomains": [".*"]}}, DEFAULTS) == []


def test_non_mappings_are_refused():
    with pytest.raises(AnsibleFilterError, match="two mappings"):
        unknown_keys(["store"], DEFAULTS)
