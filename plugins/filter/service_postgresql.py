# -*- coding: utf-8 -*-
# Copyright (c) aic.gateway contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
name: service_postgresql
short_description: The PostgreSQL users, databases and pg_hba entries the backend services need
version_added: 0.1.0
author: aic.gateway maintainers
description:
  - Reads C(service_definitions) of every given host and turns each C(database) entry into what the role
    aic.gateway.postgresql creates, in its own formats - C(postgresql_users), C(postgresql_databases)
    (owned by the service's user) and C(postgresql_hba) entries that let the user in from the hosts that run
    the service.
  - A database or user declared on several hosts (a service on two hosts) appears once; the same user with two
    different passwords, or the same database with two owners, fails naming both hosts.
  - The hosts a pg_hba entry allows are C(database.sources) when given, else each host's default IPv4 address
    from its facts, else its C(ansible_host) when that is an IP address; a host with none of them fails.
  - Like the other filters that read several hosts, it takes C(hostvars) as its input and the host names as
    its argument.
extends_documentation_fragment:
  - aic.gateway.service_hosts
"""

EXAMPLES = r"""
# group_vars/postgresql: the services' databases next to Kong's and Kuma's.
postgresql_users: "{{ [{'name': 'kong', 'password': vault_kong_db_password}] + __services_db.users }}"
postgresql_databases: "{{ [{'name': 'kong', 'owner': 'kong'}] + __services_db.databases }}"
postgresql_hba: "{{ [] + __services_db.hba }}"
__services_db: "{{ hostvars | aic.gateway.service_postgresql(groups['services'] | default([])) }}"
"""

RETURN = r"""
_value:
  description: C(users) (C(name), C(password)), C(databases) (C(name), C(owner)) and C(hba) (C(type) host,
    C(databases), C(users), C(sources), C(comment)), each sorted by name.
  type: dict
"""

import ipaddress
from ansible.errors import AnsibleFilterError

from ansible_collections.aic.gateway.plugins.filter.service_definitions import service_definitions


def _is_ip(value):
    try:
        ipaddress.ip_address(str(value))
    except ValueError:
        return False
    return True


def _host_address(host, variables):
    facts = variables.get("ansible_facts") or {}
    address = (facts.get("default_ipv4") or {}).get("address")
    if address:
        return address
    if _is_ip(variables.get("ansible_host", "")):
        return str(variables["ansible_host"])
    return None


def service_postgresql(hostvars, hosts):
    """postgresql_users, postgresql_databases and postgresql_hba entries for the services' databases."""
    if hosts is None:
        hosts = []
    if isinstance(hosts, str) or not isinstance(hosts, (list, tuple)):
        raise AnsibleFilterError("service_postgresql: the input must be a list of host names, got %r" % (hosts,))
    users = {}
    databases = {}
    hba = {}
    for host in hosts:
        variables = hostvars[host] if host in hostvars else None
        if variables is None:
            raise AnsibleFilterError("service_postgresql: %s is not a host of this inventory" % host)
        for service in service_definitions(variables.get("service_definitions") or []):
            database = service["database"]
            if not database:
                continue
            where = "%s on %s" % (service["name"], host)
            user = users.setdefault(database["user"], {"name": database["user"], "password": database["password"], "where": where})
            if user["password"] != database["password"]:
                raise AnsibleFilterError("service_postgresql: database user %s has two different passwords (%s and %s)"
                                         % (database["user"], user["where"], where))
            owned = databases.setdefault(database["name"], {"name": database["name"], "owner": database["user"], "where": where})
            if owned["owner"] != database["user"]:
                raise AnsibleFilterError("service_postgresql: database %s has two owners, %s (%s) and %s (%s)"
                                         % (database["name"], owned["owner"], owned["where"], database["user"], where))
            sources = database["sources"]
            if not sources:
                address = _host_address(host, variables)
                if not address:
                    raise AnsibleFilterError(
                        "service_postgresql: %s needs database %s, but the address it connects from is not known: gather "
                        "facts on %s first (site.yml's first play does), give it an IP address as ansible_host, or set "
                        "database.sources" % (where, database["name"], host))
                sources = ["%s/%d" % (address, 32 if ipaddress.ip_address(address).version == 4 else 128)]
            entry = hba.setdefault((database["name"], database["user"]), {
                "type": "host", "databases": [database["name"]], "users": [database["user"]], "sources": [],
                "comment": "service %s" % service["name"]})
            for source in sources:
                if source not in entry["sources"]:
                    entry["sources"].append(source)
    return {
        "users": [{"name": users[key]["name"], "password": users[key]["password"]} for key in sorted(users)],
        "databases": [{"name": databases[key]["name"], "owner": databases[key]["owner"]} for key in sorted(databases)],
        "hba": [hba[key] for key in sorted(hba)],
    }


class FilterModule(object):
    def filters(self):
        return {"service_postgresql": service_postgresql}
