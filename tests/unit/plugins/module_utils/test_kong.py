# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The Kong client and comparison engine, without a server (facts: ../shared/reference/kong.md)."""
from __future__ import annotations

import io
import json

import pytest

from ansible.module_utils.six.moves.urllib.error import HTTPError, URLError
from ansible_collections.aic.gateway.plugins.module_utils import _kong
from ansible_collections.aic.gateway.plugins.module_utils._kong import (
    Engine, KongClient, KongError, basic_auth_hash, contains, fill_record, normalize_target, split_url,
)

PARAMS = dict(admin_url="http://kong:8001/", admin_token=None, admin_headers={}, workspace=None, validate_certs=True,
              ca_path=None, client_cert=None, client_key=None, timeout=5, admin_retries=3)


class Answer(object):
    def __init__(self, status, body):
        self.status = status
        self.body = body

    def getcode(self):
        return self.status

    def read(self):
        return json.dumps(self.body).encode() if self.body is not None else b""


class FakeKong(object):
    """Scripted answers per (method, path); records what was asked."""

    def __init__(self, script):
        self.script = {k: list(v) for k, v in script.items()}
        self.calls = []

    def __call__(self, method, url, data=None, headers=None, **kwargs):
        path = url.split("kong:8001", 1)[1]
        self.calls.append((method, path, json.loads(data) if data else None, headers))
        answers = self.script[(method, path)]
        status, body = answers.pop(0) if len(answers) > 1 else answers[0]
        if status == "refused":
            raise URLError("[Errno 111] Connection refused")
        if status >= 400:
            raise HTTPError(url, status, "error", {}, io.BytesIO(json.dumps(body).encode()))
        return Answer(status, body)


def client(script, check_mode=False, **overrides):
    params = dict(PARAMS, **overrides)
    fake = FakeKong(script)
    sleeps = []
    return KongClient(params, check_mode=check_mode, sleep=sleeps.append, opener=fake), fake, sleeps


def test_pagination_follows_relative_next_and_keeps_size_on_nested_lists():
    """kong.md 4 'Pagination': next is a relative path; on nested collections it omits size."""
    c, fake, unused = client({
        ("GET", "/upstreams/u1/targets?size=1000"): [(200, {"data": [{"id": 1}], "next": "/upstreams/u1/targets?offset=abc"})],
        ("GET", "/upstreams/u1/targets?offset=abc&size=1000"): [(200, {"data": [{"id": 2}], "next": None})],
    })
    assert [t["id"] for t in c.list("/upstreams/u1/targets")] == [1, 2]
    assert c.counts == {"read": 2, "write": 0, "validate": 0}


def test_tags_filter_is_an_and_of_the_select_tags():
    """kong.md 4: ?tags=a,b is AND."""
    c, fake, unused = client({("GET", "/services?size=1000&tags=a%2Cb"): [(200, {"data": [], "next": None})]})
    assert c.list("/services", tags=["a", "b"]) == []


def test_retries_with_backoff_on_connection_errors_429_and_5xx():
    c, fake, sleeps = client({("GET", "/"): [("refused", None), (429, {"message": "slow down"}),
                                             (503, {"message": "busy"}), (200, {"version": "3.9.3"})]})
    assert c.info()["version"] == "3.9.3"
    assert sleeps == [0.5, 1.0, 2.0]
    assert len(fake.calls) == 4


def test_gives_up_after_the_retries_and_says_where():
    c, fake, sleeps = client({("GET", "/"): [("refused", None)]}, admin_retries=1)
    with pytest.raises(KongError) as err:
        c.info()
    assert "unreachable" in str(err.value) and "http://kong:8001" in str(err.value)
    assert len(fake.calls) == 2


def test_failure_quotes_kongs_error_body():
    """kong.md 4 'Error body': {code, name, message, fields}."""
    body = {"code": 5, "name": "unique constraint violation",
            "message": "UNIQUE violation detected on '{name=\"a\"}'", "fields": {"name": "a"}}
    c, fake, unused = client({("PUT", "/services/x"): [(409, body)]})
    with pytest.raises(KongError) as err:
        c.write("PUT", "/services/x", {"name": "a"})
    assert "answered 409" in str(err.value) and "UNIQUE violation detected" in str(err.value)
    assert err.value.body == body


def test_no_retry_on_4xx():
    c, fake, sleeps = client({("PATCH", "/routes/r"): [(400, {"message": "schema violation (paths: x)"})]})
    with pytest.raises(KongError):
        c.write("PATCH", "/routes/r", {})
    assert sleeps == [] and len(fake.calls) == 1


def test_check_mode_records_writes_without_sending_them():
    c, fake, unused = client({}, check_mode=True)
    assert c.write("DELETE", "/services/x") is None
    assert fake.calls == []
    assert c.requests == [{"method": "DELETE", "path": "/services/x", "status": "check_mode"}]


def test_token_workspace_and_headers():
    c, fake, unused = client({("GET", "/team-a/"): [(200, {"version": "3.9.3"})]}, admin_token="s3cret",
                             workspace="team-a", admin_headers={"X-Trace": "1"})
    c.info()
    headers = fake.calls[0][3]
    assert headers["Kong-Admin-Token"] == "s3cret" and headers["X-Trace"] == "1"


def test_get_returns_none_on_404():
    c, fake, unused = client({("GET", "/services/nope"): [(404, {"message": "Not found"})]})
    assert c.get("/services/nope") is None


@pytest.mark.parametrize("url,expected", [
    ("http://api.internal", dict(protocol="http", host="api.internal", port=80, path=None)),
    ("https://api.internal/v1", dict(protocol="https", host="api.internal", port=443, path="/v1")),
    ("grpc://10.0.0.5:9000", dict(protocol="grpc", host="10.0.0.5", port=9000, path=None)),
])
def test_url_shorthand_is_split(url, expected):
    """kong.md 4: url is write-only; port 443 when created via https."""
    assert split_url(url) == expected


def test_url_must_be_absolute():
    with pytest.raises(ValueError):
        split_url("api.internal:80")


@pytest.mark.parametrize("given,expected", [("a.internal", "a.internal:8000"), ("a.internal:81", "a.internal:81"),
                                            ("::1", "[::1]:8000"), ("[::1]:90", "[::1]:90")])
def test_target_port_defaults_to_8000(given, expected):
    """kong.md 4 table: target port defaults to 8000 when omitted."""
    assert normalize_target(given) == expected


def test_contains_ignores_order_of_sets_and_nulls_vs_empty():
    assert contains({"tags": ["b", "a"], "methods": None}, {"tags": ["a", "b"], "methods": []}, {"tags"})
    assert not contains({"paths": ["/b", "/a"]}, {"paths": ["/a", "/b"]}, {"tags"})  # arrays keep order
    assert contains({"x": 1}, {"x": 1, "redis_host": "echoed"})  # fields only in Kong's answer are ignored
    assert not contains({"enabled": True}, {"enabled": 1})
    assert not contains({"config": {"minute": 5}}, {"config": {"minute": 6}})


SCHEMA = {"fields": [
    {"name": {"type": "string", "required": True}},
    {"protocols": {"type": "set", "default": ["grpc", "grpcs", "http", "https"]}},
    {"config": {"type": "record", "fields": [
        {"minute": {"type": "number"}},
        {"policy": {"type": "string", "default": "local"}},
        {"methods": {"type": "set", "elements": {"type": "string"}}},
        {"redis": {"type": "record", "fields": [
            {"host": {"type": "string"}},
            {"port": {"type": "integer", "default": 6379}}]}},
    ]}},
]}


def test_fill_record_fills_nested_defaults_from_kongs_schema():
    config = fill_record(_kong.schema_field(SCHEMA, "config"), {"minute": 5})
    assert config == {"minute": 5, "policy": "local", "methods": None, "redis": {"host": None, "port": 6379}}


def test_fill_record_leaves_generated_fields_to_kong():
    """oauth2's provision_key (auto): not given, not filled, so Kong's generated value is kept (no drift)."""
    spec = {"type": "record", "fields": [{"provision_key": {"type": "string", "auto": True, "required": True}},
                                         {"token_expiration": {"type": "number", "default": 7200}}]}
    assert fill_record(spec, {}) == {"token_expiration": 7200}
    assert fill_record(spec, {"provision_key": "mine"}) == {"provision_key": "mine", "token_expiration": 7200}
    assert contains(fill_record(spec, {}), {"provision_key": "generated", "token_expiration": 7200})


class Schemas(object):
    def __init__(self):
        self.asked = []

    def plugin(self, name):
        self.asked.append(name)
        return SCHEMA


def engine(update_secrets="always"):
    eng = Engine(None, update_secrets=update_secrets)
    eng.schemas = Schemas()
    return eng


def test_a_removed_plugin_setting_reverts_to_its_default():
    eng = engine()
    config = {"minute": 5, "policy": "redis", "methods": ["GET", "POST"], "redis": {"host": "r", "port": 6379},
              "redis_host": "r"}
    actual = {"name": "rate-limiting", "protocols": ["http", "https", "grpc", "grpcs"], "enabled": True,
              "instance_name": None, "tags": None, "config": config}
    same_config = {"minute": 5, "policy": "redis", "methods": ["POST", "GET"], "redis": {"host": "r"}}
    same = eng.fill("plugins", {"name": "rate-limiting", "config": same_config})
    assert eng.changed_fields("plugins", same, actual) == []
    dropped_config = {"minute": 5, "methods": ["GET", "POST"], "redis": {"host": "r"}}
    dropped = eng.fill("plugins", {"name": "rate-limiting", "config": dropped_config})
    assert eng.changed_fields("plugins", dropped, actual) == ["config"]


def test_service_defaults_make_a_minimal_service_match_kongs_answer():
    """kong.md 4 'Defaults returned after create' for services."""
    eng = engine()
    actual = {"id": "x", "created_at": 1, "updated_at": 2, "name": "a", "retries": 5, "protocol": "http",
              "host": "h", "port": 80, "path": None, "connect_timeout": 60000, "write_timeout": 60000,
              "read_timeout": 60000, "tags": None, "client_certificate": None, "tls_verify": None,
              "tls_verify_depth": None, "ca_certificates": None, "enabled": True}
    assert eng.changed_fields("services", eng.fill("services", {"name": "a", "url": "http://h"}), actual) == []
    assert eng.changed_fields("services", eng.fill("services", {"name": "a", "host": "h", "retries": 1}),
                              actual) == ["retries"]


def test_basic_auth_password_is_compared_through_kongs_sha1():
    """kong.md 4 table: password stored as SHA1(password+consumer_id)."""
    actual = {"username": "u", "password": basic_auth_hash("pw", "c1"), "consumer": {"id": "c1"}}
    eng = engine()
    assert eng.changed_fields("basicauth_credentials", {"username": "u", "password": "pw"}, actual) == []
    assert eng.changed_fields("basicauth_credentials", {"username": "u", "password": "new"}, actual) == ["password"]
    assert engine("on_create").changed_fields("basicauth_credentials", {"username": "u", "password": "new"},
                                              actual) == []


def test_generated_secrets_are_kept_when_not_given():
    actual = {"key": "k", "secret": "generated", "algorithm": "HS256", "rsa_public_key": None, "tags": None}
    eng = engine()
    assert eng.changed_fields("jwt_secrets", eng.fill("jwt_secrets", {"key": "k"}), actual) == []
    assert eng.changed_fields("jwt_secrets", eng.fill("jwt_secrets", {"key": "k", "secret": "mine"}),
                              actual) == ["secret"]


def test_views_mask_secrets_and_drop_ids_and_timestamps():
    view = engine().view("keyauth_credentials", {"id": "1", "created_at": 3, "key": "abc", "tags": ["t"]},
                         {"consumer": "alice"})
    assert view == {"key": "********", "tags": ["t"], "consumer": "alice"}


def test_pem_whitespace_is_not_a_change():
    pem = "-----BEGIN CERTIFICATE-----\nMIIB\nAAAA\n-----END CERTIFICATE-----"
    actual = {"cert": pem + "\n", "tags": None}
    eng = engine()
    assert eng.changed_fields("ca_certificates", {"cert": "  " + pem.replace("\n", "\r\n") + "\n\n"}, actual) == []
    assert eng.changed_fields("ca_certificates", {"cert": pem.replace("AAAA", "BBBB")}, actual) == ["cert"]
