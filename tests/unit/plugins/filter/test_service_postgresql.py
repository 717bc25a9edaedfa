# -*- coding: utf-8 -*-
from __future__ import annotations

import pytest

from ansible.errors import AnsibleFilterError
from ansible_collections.aic.gateway.plugins.filter.pg_hba_lines import pg_hba_lines
from ansible_collections.aic.gateway.plugins.filter.service_postgresql import service_postgresql


def service(name, database=None, port=8080):
    entry = {"name": name, "artifact": {"type": "binary", "path": "/tmp/x", "version": "1"},
             "command": "{release}/x", "port": port}
    if database:
        entry["database"] = database
    return entry


CORE_DB = {"name": "core_api", "user": "core_api", "password": "pw-core"}
BILLING_DB = {"name": "billing", "user": "billing", "password": "pw-billing"}
HOSTVARS = {
    "app1": {"ansible_facts": {"default_ipv4": {"address": "10.0.40.11"}},
             "service_definitions": [service("core-api", CORE_DB), service("web", port=9000)]},
    "app2": {"ansible_host": "10.0.40.12",
             "service_definitions": [service("core-api", CORE_DB), service("billing", BILLING_DB, port=8200)]},
    "app3": {"ansible_host": "app3.example.internal"},
}


def test_users_databases_and_hba_from_all_service_hosts():
    result = service_postgresql(HOSTVARS, ["app1", "app2", "app3"])
    assert result["users"] == [{"name": "billing", "password": "pw-billing"}, {"name": "core_api", "password": "pw-core"}]
    assert result["databases"] == [{"name": "billing", "owner": "billing"}, {"name": "core_api", "owner": "core_api"}]
    assert result["hba"] == [
        {"type": "host", "databases": ["billing"], "users": ["billing"], "sources": ["10.0.40.12/32"],
         "comment": "service billing"},
        {"type": "host", "databases": ["core_api"], "users": ["core_api"], "sources": ["10.0.40.11/32", "10.0.40.12/32"],
         "comment": "service core-api"},
    ]


def test_the_hba_entries_are_accepted_by_the_postgresql_role():
    lines = pg_hba_lines(service_postgresql(HOSTVARS, ["app1", "app2"])["hba"], tls=True)
    assert "hostssl  core_api  core_api  10.0.40.11/32  scram-sha-256" in lines


def test_declared_sources_win():
    hostvars = {"app3": {"service_definitions": [service("core-api", dict(CORE_DB, sources=["10.1.0.0/16"]))]}}
    assert service_postgresql(hostvars, ["app3"])["hba"][0]["sources"] == ["10.1.0.0/16"]


def test_unknown_address_is_refused():
    hostvars = {"app3": {"ansible_host": "app3.example.internal", "service_definitions": [service("core-api", CORE_DB)]}}
    with pytest.raises(AnsibleFilterError, match="gather facts on app3"):
        service_postgresql(hostvars, ["app3"])


def test_conflicts_between_hosts_are_refused():
    hostvars = dict(HOSTVARS, app3={"ansible_host": "10.0.0.3", "service_definitions": [
        service("core-api", dict(CORE_DB, password="other"))]})
    with pytest.raises(AnsibleFilterError, match="core_api has two different passwords .core-api on app1 and core-api on app3"):
        service_postgresql(hostvars, ["app1", "app3"])
    hostvars["app3"]["service_definitions"] = [service("other", {"name": "core_api", "user": "other", "password": "x"})]
    with pytest.raises(AnsibleFilterError, match="database core_api has two owners"):
        service_postgresql(hostvars, ["app1", "app3"])


def test_no_hosts_nothing_needed():
    assert service_postgresql({}, []) == {"users": [], "databases": [], "hba": []}
    assert service_postgresql(HOSTVARS, ["app3"]) == {"users": [], "databases": [], "hba": []}


def test_bad_input():
    with pytest.raises(AnsibleFilterError, match="list of host names"):
        service_postgresql(HOSTVARS, "app1")
    with pytest.raises(AnsibleFilterError, match="not a host of this inventory"):
        service_postgresql(HOSTVARS, ["nope"])
