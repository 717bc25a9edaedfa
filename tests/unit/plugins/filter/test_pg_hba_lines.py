# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import annotations

import pytest

from ansible.errors import AnsibleFilterError
from ansible_collections.aic.gateway.plugins.filter.pg_hba_lines import pg_hba_lines


def test_host_becomes_hostssl_with_tls_and_sources_are_normalised():
    lines = pg_hba_lines([{"databases": "kong", "users": ["kong"], "sources": ["10.0.20.7/24", "fd00::1"], "comment": "kong"}], tls=True)
    assert lines == [
        "# kong",
        "hostssl  kong  kong  10.0.20.0/24  scram-sha-256",
        "hostssl  kong  kong  fd00::1/128  scram-sha-256",
    ]


def test_without_tls_host_stays_host():
    assert pg_hba_lines([{"type": "host", "databases": "all", "users": "all", "sources": "127.0.0.1"}]) == [
        "host  all  all  127.0.0.1/32  scram-sha-256"
    ]


def test_local_peer_and_several_names():
    assert pg_hba_lines([{"type": "local", "databases": ["a", "b"], "users": ["+admins"]}]) == ["local  a,b  +admins  peer"]


@pytest.mark.parametrize(
    "entry, message",
    [
        ({"databases": "kong", "users": "kong", "sources": ["10.0.0.0/8"], "method": "md5"}, "method 'md5' is not allowed"),
        ({"databases": "kong", "users": "kong", "sources": ["10.0.0.0/8"], "method": "trust"}, "method 'trust' is not allowed"),
        ({"type": "hostnossl", "databases": "kong", "users": "kong", "sources": ["10.0.0.0/8"]}, "type 'hostnossl'"),
        ({"databases": "kong", "users": "kong"}, "needs sources"),
        ({"databases": "kong", "users": "kong", "sources": ["db.example.com"]}, "not an IP address"),
        ({"databases": [], "users": "kong", "sources": ["10.0.0.0/8"]}, "databases is empty"),
        ({"databases": "kong; drop", "users": "kong", "sources": ["10.0.0.0/8"]}, "not a valid PostgreSQL name"),
        ({"type": "local", "databases": "all", "users": "all", "sources": ["10.0.0.0/8"]}, "takes no sources"),
        ({"databases": "all", "users": "all", "source": ["10.0.0.0/8"]}, "unknown key(s) source"),
        ("host all all 0.0.0.0/0 trust", "must be a dict"),
    ],
)
def test_bad_entries_are_refused_with_position(entry, message):
    with pytest.raises(AnsibleFilterError) as err:
        pg_hba_lines([{"type": "local", "databases": "all", "users": "postgres"}, entry], tls=True)
    assert "pg_hba entry 2" in str(err.value)
    assert message in str(err.value)
