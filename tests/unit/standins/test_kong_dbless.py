"""DB-less Admin API of the Kong stand-in node: write refusal, /config, the
dbless.lmdb cache (tests/standins/kong/dbless.py)."""

import json
import os
import sys

import pytest

from .kong_helpers import (STANDIN, Echo, http, kong, listen_keys, node_ports, request,
                           write_conf)

if STANDIN not in sys.path:
    sys.path.insert(0, STANDIN)

import admin_api  # noqa: E402  pylint: disable=wrong-import-position,import-error
import conf as C  # noqa: E402  pylint: disable=wrong-import-position,import-error
import node as N  # noqa: E402  pylint: disable=wrong-import-position,import-error
from api import AdminAPI  # noqa: E402  pylint: disable=wrong-import-position,import-error
from store import MemoryStore  # noqa: E402  pylint: disable=wrong-import-position,import-error

CONFIG = {"_format_version": "3.0",
          "services": [{"name": "svc", "url": "http://127.0.0.1:9/",
                        "routes": [{"name": "r", "paths": ["/r"]}]}],
          "consumers": [{"username": "alice", "keyauth_credentials": [{"key": "k"}]}]}
YAML = """\
_format_version: "3.0"
consumers:
  - username: bobby
"""


@pytest.fixture()
def admin(tmp_path):
    settings = dict(C.DEFAULT_MAP, database="off", prefix=str(tmp_path))
    node = N.Node(str(tmp_path), settings)
    node.open_store()
    node.api = AdminAPI(store=node.store, conf=settings, node=node)
    server = admin_api.make_server("127.0.0.1", 0, api=node.api, node=node)
    import threading  # pylint: disable=import-outside-toplevel
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    base = "http://127.0.0.1:%d" % server.server_address[1]
    yield base, node
    server.shutdown()
    server.server_close()


def post_config(base, body, ctype="application/json", query=""):
    data = json.dumps(body) if not isinstance(body, str) else body
    return request("POST", base + "/config" + query, {"Content-Type": ctype}, data)


def test_writes_refused_when_database_off(admin):
    """kong.md §4 "Writes in DB-less mode | **405** code 12 "cannot create 'routes'
    entities when not using a database""; PUT "cannot create or update 'routes'
    entities when not using a database" (Kong spec 15-off_spec.lua); PATCH/DELETE
    texts UNCONFIRMED; reads still work."""
    base, _node = admin
    assert post_config(base, CONFIG)[0] == 201
    status, body, _headers = request("POST", base + "/routes", {"Content-Type": "application/json"},
                                     json.dumps({"paths": ["/x"]}))
    assert (status, body) == (405, {"code": 12, "name": "operation unsupported",
                                    "message": "cannot create 'routes' entities when not "
                                               "using a database"})
    for method, path, text in [
            ("PUT", "/routes/r", "cannot create or update 'routes' entities"),
            ("PATCH", "/services/svc", "cannot update 'services' entities"),
            ("DELETE", "/consumers/alice", "cannot delete 'consumers' entities"),
            ("POST", "/consumers/alice/key-auth", "cannot create 'keyauth_credentials'"),
            ("DELETE", "/consumers/alice/key-auth/k", "cannot delete 'keyauth_credentials'"),
            ("POST", "/services/svc/routes", "cannot create 'routes' entities")]:
        status, body, _headers = request(method, base + path, {"Content-Type": "application/json"},
                                         "{}")
        assert status == 405 and body["code"] == 12, (method, path, body)
        assert body["message"].startswith(text)
    assert request("GET", base + "/services/svc")[0] == 200
    assert request("GET", base + "/consumers/alice/key-auth")[1]["data"][0]["key"] == "k"
    # validation endpoints write nothing and stay available
    status, _body, _headers = request("POST", base + "/schemas/services/validate",
                                      {"Content-Type": "application/json"}, json.dumps({"host": "x"}))
    assert status == 200


def test_config_post_forms_and_check_hash(admin):
    """kong.md §4 "`POST /config` takes the declarative config as JSON with
    `_format_version`, as a `config` form/JSON field (a YAML/JSON string), or as a raw
    body"; "`?check_hash=1` returns **304** if the config is unchanged"; "Success is
    201"; "`GET /config` returns `{"config":"<yaml>"}`"."""
    base, node = admin
    status, body, _headers = post_config(base, CONFIG)
    assert status == 201 and "svc" in [s["name"] for s in body["services"].values()]
    assert node.config_loaded
    assert post_config(base, CONFIG, query="?check_hash=1")[0] == 304
    assert post_config(base, CONFIG)[0] == 201          # without check_hash: reloaded
    status, body, _headers = request("GET", base + "/config")
    assert status == 200 and "name: svc" in body["config"]
    # a `config` JSON field holding YAML replaces everything
    assert post_config(base, {"config": YAML})[0] == 201
    assert request("GET", base + "/services/svc")[0] == 404
    assert request("GET", base + "/consumers/bobby")[0] == 200
    # form field, raw YAML body
    form = "config=" + __import__("urllib.parse").parse.quote(YAML.replace("bobby", "carl"))
    assert post_config(base, form, "application/x-www-form-urlencoded")[0] == 201
    assert request("GET", base + "/consumers/carl")[0] == 200
    assert post_config(base, YAML.replace("bobby", "dora"), "text/yaml")[0] == 201
    assert request("GET", base + "/consumers/dora")[0] == 200


def test_config_invalid_is_400_and_keeps_the_old_config(admin):
    """kong.md §4 "400 declarative-config error" (code 14 "invalid declarative
    configuration", kong.md §4 error table; message rendering UNCONFIRMED)."""
    base, _node = admin
    assert post_config(base, CONFIG)[0] == 201
    for bad in ({"_format_version": "9.9"}, {"config": "bobby tables"},
                {"_format_version": "3.0", "services": [{"name": "x"}]}):
        status, body, _headers = post_config(base, bad)
        assert status == 400 and body["code"] == 14, (bad, body)
    assert request("GET", base + "/services/svc")[0] == 200


def test_config_endpoint_in_db_mode():
    """kong.md §4 "Only available when `database=off`; otherwise 400 "this endpoint is
    only available when Kong is configured to not use a database""."""
    api = AdminAPI(store=MemoryStore(), conf=dict(C.DEFAULT_MAP, database="postgres"))
    assert api.handle("POST", "/config", {}, {"Content-Type": "application/json"},
                      json.dumps(CONFIG).encode()) == (400, {
                          "message": "this endpoint is only available when Kong is "
                                     "configured to not use a database"})
    assert api.handle("GET", "/config", {}, {}, b"")[0] == 400


def test_config_survives_restart_and_empty_config_not_ready(tmp_path):
    """kong.md §4 "A DB-less node with no config is never "ready"" ("no configuration
    available (empty configuration present)"); the loaded config is cached in
    `<prefix>/dbless.lmdb` (kong.md §2 "`lmdb_environment_path=dbless.lmdb`";
    stand-in file `standin-config.json`) and served again after a restart."""
    backend = Echo()
    ports = node_ports()
    conf = write_conf(tmp_path / "kong.conf", database="off", **listen_keys(ports))
    prefix = str(tmp_path / "prefix")
    admin_url = "http://127.0.0.1:%d" % ports["admin"]
    ready_url = "http://127.0.0.1:%d/status/ready" % ports["status"]
    config = dict(CONFIG, services=[{"name": "svc", "url": backend.url,
                                     "routes": [{"name": "r", "paths": ["/r"]}]}])
    assert kong("start", "-c", conf, "-p", prefix).returncode == 0
    try:
        assert http("GET", ready_url)[0] == 503
        assert post_config(admin_url, {"_format_version": "3.0"})[0] == 201
        status, body, _headers = http("GET", ready_url)
        assert (status, json.loads(body)) == (503, {
            "message": "no configuration available (empty configuration present)"})
        assert post_config(admin_url, config)[0] == 201
        assert http("GET", ready_url)[0] == 200
        assert request("GET", "http://127.0.0.1:%d/r" % ports["proxy"])[0] == 200
        assert os.path.isfile(os.path.join(prefix, "dbless.lmdb", "standin-config.json"))
        assert kong("stop", "-p", prefix).returncode == 0
        assert kong("start", "-c", conf, "-p", prefix).returncode == 0
        assert http("GET", ready_url)[0] == 200
        assert request("GET", "http://127.0.0.1:%d/r" % ports["proxy"])[0] == 200
        assert post_config(admin_url, config, query="?check_hash=1")[0] == 304
    finally:
        kong("stop", "-p", prefix)
        backend.close()
