# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The declarative planner: parse decK's format, match, order, dump (facts: kong.md section 6)."""
from __future__ import annotations

import pytest

from ansible_collections.aic.gateway.plugins.module_utils._kong import Engine
from ansible_collections.aic.gateway.plugins.module_utils._kong_state import (
    ConfigError, apply_plan, dump, make_plan, parse_config,
)

PLUGIN_SCHEMA = {"fields": [
    {"protocols": {"type": "set", "default": ["grpc", "grpcs", "http", "https"]}},
    {"config": {"type": "record", "fields": [{"minute": {"type": "number"}},
                                             {"policy": {"type": "string", "default": "local"}}]}},
]}


class Schemas(object):
    def plugin(self, name):
        return PLUGIN_SCHEMA


class Recorder(object):
    """A client that knows no entity by name and records writes."""

    check_mode = False

    def __init__(self):
        self.writes = []

    def get(self, path):
        return None

    def write(self, method, path, body=None, record_body=None):
        self.writes.append((method, path, body))


def engine():
    eng = Engine(None)
    eng.schemas = Schemas()
    return eng


def kong_service(sid, name, **extra):
    svc = {"id": sid, "name": name, "retries": 5, "protocol": "http", "host": "h", "port": 80, "path": None,
           "connect_timeout": 60000, "write_timeout": 60000, "read_timeout": 60000, "tags": None,
           "client_certificate": None, "tls_verify": None, "tls_verify_depth": None, "ca_certificates": None,
           "enabled": True, "created_at": 1, "updated_at": 1}
    svc.update(extra)
    return svc


def kong_route(rid, name, sid, **extra):
    route = {"id": rid, "name": name, "protocols": ["http", "https"], "methods": None, "hosts": None,
             "paths": ["/" + name], "headers": None, "snis": None, "sources": None, "destinations": None,
             "https_redirect_status_code": 426, "regex_priority": 0, "strip_path": True, "path_handling": "v0",
             "preserve_host": False, "request_buffering": True, "response_buffering": True, "tags": None,
             "service": {"id": sid}, "created_at": 1, "updated_at": 1}
    route.update(extra)
    return route


def plan_for(config, state, mode="apply", select_tags=()):
    client = Recorder()
    plan = make_plan(engine(), client, parse_config(config), state, mode, list(select_tags), want_diff=True)
    return plan, client


@pytest.mark.parametrize("config,message", [
    ({"services": []}, "_format_version must be"),
    ({"_format_version": "3.0", "vaults": []}, "unsupported top-level sections: vaults"),
    ({"_format_version": "3.0", "services": {"name": "a"}}, "services must be a list"),
    ({"_format_version": "3.0", "services": [{"host": "h"}]}, "services[0]: a service needs a name"),
    ({"_format_version": "3.0", "services": [{"name": "a", "host": "h"}, {"name": "a", "host": "i"}]},
     "services[0] and services[1] are the same service"),
    ({"_format_version": "3.0", "services": [{"name": "a", "url": "nope"}]}, "is not an absolute URL"),
    ({"_format_version": "3.0", "routes": [{"name": "r", "paths": ["/"], "service": 5}]},
     "must be a name or an id"),
])
def test_bad_configurations_are_refused_before_any_request(config, message):
    with pytest.raises(ConfigError) as err:
        parse_config(config)
    assert message in str(err.value)


def test_a_reference_to_a_service_kong_does_not_have_is_refused():
    config = {"_format_version": "3.0", "routes": [{"name": "r", "paths": ["/"], "service": "ghost"}]}
    with pytest.raises(ConfigError) as err:
        plan_for(config, {"routes": []})
    assert "service 'ghost' is neither in the configuration nor in Kong" in str(err.value)


def test_creates_go_parents_first_with_the_ids_chosen_up_front():
    config = {"_format_version": "3.0", "services": [{"name": "a", "url": "http://h", "routes": [
        {"name": "r", "paths": ["/r"], "plugins": [{"name": "rate-limiting", "config": {"minute": 5}}]}]}]}
    plan, client = plan_for(config, {"services": [], "routes": [], "plugins": []})
    assert [(c.action, c.kind) for c in plan.changes] == [("create", "services"), ("create", "routes"),
                                                          ("create", "plugins")]
    apply_plan(client, plan, parallelism=1)
    (m1, p1, b1), (m2, p2, b2), (m3, p3, b3) = client.writes
    assert m1 == m2 == m3 == "PUT"
    assert b2["service"] == {"id": p1.rsplit("/", 1)[1]}
    assert b3["route"] == {"id": p2.rsplit("/", 1)[1]}
    assert b3["config"] == {"minute": 5, "policy": "local"}


def test_an_unchanged_configuration_plans_nothing():
    route = {"name": "r", "paths": ["/r"]}
    config = {"_format_version": "3.0", "services": [{"name": "a", "host": "h", "routes": [route]}]}
    plan, unused = plan_for(config, {"services": [kong_service("s1", "a")], "routes": [kong_route("r1", "r", "s1")]})
    assert plan.changes == [] and plan.unchanged == 2


def test_a_removed_field_reverts_to_the_default_and_only_that_field_is_patched():
    config = {"_format_version": "3.0", "services": [{"name": "a", "host": "h"}]}
    plan, unused = plan_for(config, {"services": [kong_service("s1", "a", retries=9)]})
    (change,) = plan.changes
    assert (change.action, change.method, change.path, change.body) == ("update", "PATCH", "/services/s1",
                                                                        {"retries": 5})


def test_sync_deletes_what_is_absent_children_first_and_apply_does_not():
    state = {"services": [kong_service("s1", "a"), kong_service("s2", "gone")],
             "routes": [kong_route("r1", "old", "s2")]}
    config = {"_format_version": "3.0", "services": [{"name": "a", "host": "h", "routes": []}]}
    plan, unused = plan_for(config, state, mode="apply")
    assert plan.changes == []
    plan, client = plan_for(config, state, mode="sync")
    assert sorted((c.action, c.kind) for c in plan.changes) == [("delete", "routes"), ("delete", "services")]
    apply_plan(client, plan, parallelism=1)
    assert [w[1] for w in client.writes] == ["/routes/r1", "/services/s2"]


def test_a_consumer_rename_with_the_same_custom_id_is_an_update_in_place():
    """kong.md 6: decK creates before it deletes, so renames hit 409; here the rename keeps the id."""
    state = {"consumers": [{"id": "c1", "username": "alice", "custom_id": "42", "tags": None}],
             "acls": [{"id": "a1", "group": "admins", "tags": None, "consumer": {"id": "c1"}}]}
    config = {"_format_version": "3.0", "consumers": [{"username": "alice2", "custom_id": "42",
                                                       "acls": [{"group": "admins"}]}]}
    plan, unused = plan_for(config, state, mode="sync")
    assert [(c.action, c.kind, c.path, c.body) for c in plan.changes] == [
        ("update", "consumers", "/consumers/c1", {"username": "alice2"})]


def test_select_tags_are_stamped_on_what_is_written():
    plan, unused = plan_for({"_format_version": "3.0", "consumers": [{"username": "bob", "tags": ["x"]}]},
                            {"consumers": []}, select_tags=["team-a"])
    assert plan.changes[0].body["tags"] == ["team-a", "x"]


def test_a_dump_fed_back_plans_nothing():
    state = {"services": [kong_service("s1", "a", tags=["t"])],
             "routes": [kong_route("r1", "r", "s1", tags=["t"]),
                        kong_route("r2", "loose", None, service=None, tags=["t"])],
             "plugins": [{"id": "p1", "name": "rate-limiting", "instance_name": None, "service": {"id": "s1"},
                          "route": None, "consumer": None, "config": {"minute": 5, "policy": "local"},
                          "protocols": ["grpc", "grpcs", "http", "https"], "enabled": True, "tags": ["t"]}],
             "consumers": [{"id": "c1", "username": "bob", "custom_id": None, "tags": ["t"]}],
             "keyauth_credentials": [{"id": "k1", "key": "sekrit", "ttl": None, "tags": ["t"],
                                      "consumer": {"id": "c1"}}]}
    config = dump(state, ["t"])
    assert config["services"][0]["routes"][0]["name"] == "r"
    assert config["services"][0]["plugins"][0]["config"] == {"minute": 5, "policy": "local"}
    assert config["consumers"][0]["keyauth_credentials"] == [{"key": "sekrit", "tags": ["t"]}]
    plan, unused = plan_for(config, state, mode="sync", select_tags=["t"])
    assert plan.changes == [] and plan.unchanged == 6


def pem(body):
    return "-----BEGIN CERTIFICATE-----\n%s\n-----END CERTIFICATE-----" % body


def test_a_certificate_that_gives_up_an_sni_is_written_before_the_one_that_takes_it():
    """Kong's snis.name is unique: moving an SNI must not try to hold it twice at any moment."""
    state = {"certificates": [
        {"id": "c1", "cert": pem("AAAA"), "key": "k1", "cert_alt": None, "key_alt": None, "tags": None,
         "snis": ["x.example", "y.example"]},
        {"id": "c2", "cert": pem("BBBB"), "key": "k2", "cert_alt": None, "key_alt": None, "tags": None,
         "snis": ["z.example"]}]}
    config = {"_format_version": "3.0", "certificates": [
        {"cert": pem("BBBB"), "key": "k2", "snis": [{"name": "z.example"}, {"name": "y.example"}]},
        {"cert": pem("AAAA"), "key": "k1", "snis": [{"name": "x.example"}]}]}
    plan, client = plan_for(config, state, mode="sync")
    assert sorted(c.path for c in plan.changes) == ["/certificates/c1", "/certificates/c2"]
    apply_plan(client, plan, parallelism=1)
    assert [(w[1], w[2]) for w in client.writes] == [("/certificates/c1", {"snis": ["x.example"]}),
                                                     ("/certificates/c2", {"snis": ["y.example", "z.example"]})]


def test_a_credential_whose_consumer_is_renamed_moves_without_a_unique_conflict():
    state = {"consumers": [{"id": "c1", "username": "bob", "custom_id": None, "tags": None}],
             "keyauth_credentials": [{"id": "k1", "key": "bob-key", "ttl": None, "tags": None,
                                      "consumer": {"id": "c1"}}]}
    config = {"_format_version": "3.0", "consumers": [{"username": "bobby",
                                                       "keyauth_credentials": [{"key": "bob-key"}]}]}
    plan, client = plan_for(config, state, mode="sync")
    assert [(c.action, c.kind) for c in plan.changes] == [("create", "consumers"),
                                                          ("replace", "keyauth_credentials"),
                                                          ("delete", "consumers")]
    apply_plan(client, plan, parallelism=1)
    new_id = client.writes[0][1].rsplit("/", 1)[1]
    assert [(m, p) for m, p, b in client.writes] == [
        ("PUT", "/consumers/%s" % new_id),
        ("DELETE", "/consumers/c1/key-auth/k1"),          # the key is free again before it is created
        ("PUT", "/consumers/%s/key-auth/k1" % new_id),
        ("DELETE", "/consumers/c1"),
    ]
