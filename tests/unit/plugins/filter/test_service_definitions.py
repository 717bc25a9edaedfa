# -*- coding: utf-8 -*-
from __future__ import annotations

import copy

import pytest

from ansible.errors import AnsibleFilterError
from ansible_collections.aic.gateway.plugins.filter.service_definitions import service_definitions

WHEEL = "sha256:" + "a" * 64
CORE = {
    "name": "core-api",
    "artifact": {"type": "wheel", "url": "https://example.org/core_api-1.0.0-py3-none-any.whl", "version": "1.0.0",
                 "checksum": WHEEL},
    "command": "{venv}/bin/core-api --port {port} --bind {address}",
    "port": 8080,
    "instances": 2,
    "environment": {"LOG_LEVEL": "info", "WORKERS": 2, "DEBUG": False},
    "secret_environment": {"CORE_API_TOKEN": "s3cret"},
    "health": {"path": "/health"},
    "database": {"name": "core_api", "user": "core_api", "password": "pw"},
    "mesh": {"inbound_port": 20001, "outbound": [{"service": "ai-service", "port": 33101}], "allow_from": ["kong"]},
    "gateway": {"outbound_port": 33033, "routes": [{"name": "core-api", "paths": ["/core"]}]},
}


def one(**changes):
    entry = copy.deepcopy(CORE)
    for key, value in changes.items():
        if value is None:
            entry.pop(key, None)
        else:
            entry[key] = value
    return entry


def test_defaults_are_filled():
    (service,) = service_definitions([CORE])
    assert service["user"] == "aic-core-api"
    assert service["address"] == "127.0.0.1"
    assert service["ports"] == [8080, 8081]
    assert service["health"] == {"path": "/health", "status": 200, "timeout": 60}
    assert service["environment"] == {"LOG_LEVEL": "info", "WORKERS": "2", "DEBUG": "false"}
    assert service["mesh"]["service"] == "core-api" and service["mesh"]["protocol"] == "http"
    assert service["database"]["sources"] == []
    assert service["artifact"]["requirements"] == "requirements.txt"
    assert service["firewall_sources"] == [] and service["read_write_paths"] == []


def test_gateway_and_allow_from_pass_through_unchecked():
    (service,) = service_definitions([CORE])
    assert service["gateway"] == CORE["gateway"]
    assert service["mesh"]["allow_from"] == ["kong"]


def test_minimal_service_and_address_default():
    minimal = {"name": "tool", "artifact": {"type": "binary", "path": "/tmp/tool", "version": "2"},
               "command": "{release}/tool", "port": 9000}
    (service,) = service_definitions([minimal], address="10.0.0.5")
    assert service["instances"] == 1 and service["address"] == "10.0.0.5"
    assert service["health"] is None and service["mesh"] is None and service["database"] is None
    assert "gateway" not in service


def test_empty_or_missing_list():
    assert service_definitions(None) == []
    assert service_definitions([]) == []


@pytest.mark.parametrize("changes, message", [
    ({"name": "Core_API"}, "needs a name"),
    ({"colour": "blue"}, "unknown keys colour"),
    ({"health": {"path": "/health", "interval": 3}}, "unknown keys health.interval"),
    ({"artifact": dict(CORE["artifact"], sha="x")}, "unknown keys artifact.sha"),
    ({"artifact": dict(CORE["artifact"], type="jar")}, "artifact.type must be one of"),
    ({"artifact": {"type": "wheel", "version": "1"}}, "needs exactly one of url or path"),
    ({"artifact": {"type": "wheel", "url": "https://x/a.whl", "version": "1"}}, "needs artifact.checksum"),
    ({"artifact": {"type": "wheel", "path": "/a.whl"}}, "artifact.version is required"),
    ({"artifact": {"type": "wheel", "path": "/a.tar.gz", "version": "1"}}, "needs a .whl file"),
    ({"artifact": {"type": "npm", "name": "ghost", "path": "/g.tgz", "version": "5"}}, "exactly one of url or path"),
    ({"artifact": {"type": "package", "version": "1"}}, "needs name"),
    ({"artifact": dict(CORE["artifact"], checksum="md5:abc")}, "sha256"),
    ({"artifact": None}, "artifact is required"),
    ({"command": None}, "command .* is required"),
    ({"command": "{venv}/bin/x --port {prot}"}, r"unknown placeholders \{prot\}"),
    ({"port": 70000}, "port must be a TCP port"),
    ({"port": "8080"}, "port must be a TCP port"),
    ({"port": 65535}, "port \\+ instances - 1"),
    ({"instances": 0}, "instances must be"),
    ({"health": {"path": "health"}}, "health.path must start with"),
    ({"environment": {"bad-name": 1}}, "not a valid environment variable"),
    ({"environment": {"SERVICE_PORT": 1}}, "set by the role"),
    ({"environment": {"CORE_API_TOKEN": "x"}}, "both environment and secret_environment"),
    ({"environment": {"A": "x\ny"}}, "line break"),
    ({"database": {"name": "core-api", "user": "u", "password": "p"}}, "PostgreSQL name"),
    ({"database": {"name": "core_api", "user": "core_api"}}, "database.password is required"),
    ({"mesh": {"protocol": "http"}}, "mesh.inbound_port must be a TCP port"),
    ({"mesh": {"inbound_port": 20001, "protocol": "udp"}}, "mesh.protocol must be one of"),
    ({"mesh": {"inbound_port": 20001, "outbound": [{"service": "x"}]}}, r"mesh.outbound\[0\] must be"),
    ({"firewall_sources": ["10.0.0.0/8"]}, "listen on 127.0.0.1 only"),
    ({"read_write_paths": ["var/lib/x"]}, "must be absolute"),
])
def test_bad_definitions_are_refused_with_the_reason(changes, message):
    with pytest.raises(AnsibleFilterError, match=message):
        service_definitions([one(**changes)])


def test_duplicate_names_are_refused():
    with pytest.raises(AnsibleFilterError, match="declared twice"):
        service_definitions([CORE, CORE])


@pytest.mark.parametrize("other, message", [
    ({"port": 8081}, r"port 8081 \(instance 0\) is already used by core-api \(instance 1\)"),
    ({"port": 20002}, r"port 20002 \(instance 0\) is already used by core-api \(mesh inbound 1\)"),
    ({"port": 33101}, r"already used by core-api \(mesh outbound to ai-service\)"),
    ({"port": 9000, "mesh": {"inbound_port": 20000}}, r"port 20001 \(mesh inbound 1\) is already used"),
])
def test_port_clashes_on_the_host_are_refused(other, message):
    second = {"name": "other", "artifact": {"type": "binary", "path": "/tmp/o", "version": "1"},
              "command": "{release}/o", "instances": 2}
    second.update(other)
    with pytest.raises(AnsibleFilterError, match=message):
        service_definitions([CORE, second])


@pytest.mark.parametrize("artifact", [
    {"type": "npm", "name": "ghost", "version": "5.130.0"},
    {"type": "npm", "path": "/tmp/app-1.0.0.tgz", "version": "1.0.0"},
    {"type": "package", "name": "nginx"},
    {"type": "source", "url": "https://x/app-1.tar.gz", "checksum_url": "https://x/SHA256SUMS", "version": "1"},
    {"type": "archive", "path": "/tmp/app.tar.gz", "version": "1", "strip_components": 1},
])
def test_each_artifact_type_is_accepted(artifact):
    (service,) = service_definitions([one(artifact=artifact)])
    assert service["artifact"]["type"] == artifact["type"]


def test_the_input_is_not_modified():
    entry = one()
    service_definitions([entry])
    assert entry == CORE
