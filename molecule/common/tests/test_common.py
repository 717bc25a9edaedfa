"""What a user of the common role would check on a converged host."""

import pytest
import testinfra

HOSTS = ["aic-molecule-debian12", "aic-molecule-debian13"]


def _peer_of(host):
    me = host.check_output("hostname")
    return testinfra.get_host("podman://" + [h for h in HOSTS if h != me][0]), me


def _connects(from_host, target, port):
    probe = (
        "import socket,sys\n"
        "s=socket.socket(); s.settimeout(3)\n"
        "sys.exit(s.connect_ex((sys.argv[1], int(sys.argv[2]))))\n"
    )
    return from_host.run("python3 -c '%s' %s %s" % (probe, target, port)).rc == 0


@pytest.mark.parametrize("package", ["nftables", "chrony", "acl", "curl"])
def test_base_packages_installed(host, package):
    assert host.package(package).is_installed


def test_chrony_configured_with_the_pool(host):
    lines = host.file("/etc/chrony/chrony.conf").content_string.splitlines()
    assert "pool 2.debian.pool.ntp.org iburst" in lines
    assert "makestep 1 3" in lines


def test_sysctl_file_merges_site_values_and_drops_nulls(host):
    lines = [line.replace(" ", "") for line in host.file("/etc/sysctl.d/60-aic-gateway.conf").content_string.splitlines()]
    assert "net.core.somaxconn=4096" in lines
    assert "vm.swappiness=5" in lines
    assert not [line for line in lines if "netdev_max_backlog" in line]


def test_etc_hosts_lists_every_inventory_host_and_extras(host):
    hosts = host.file("/etc/hosts").content_string
    assert "# BEGIN aic.gateway hosts" in hosts
    for name in HOSTS:
        assert " %s" % name in hosts
    assert "192.0.2.10 db.lab.example db" in hosts


def test_firewall_loaded_with_default_deny(host):
    assert host.service("nftables").is_enabled
    table = host.check_output("nft list table inet aic_gateway")
    assert "hook input priority filter; policy drop;" in table
    assert 'tcp dport 22 accept comment "common: ssh"' in table
    assert 'tcp dport 8083 accept comment "demo_service: demo api"' in table
    assert 'udp dport 5353 accept comment "demo_service: demo discovery"' in table


def test_declared_ports_open_and_undeclared_ports_closed_from_a_peer(host):
    peer, me = _peer_of(host)
    assert _connects(peer, me, 8080), "8080 is declared open to all"
    assert _connects(peer, me, 8082), "8082 is open to the scenario network"
    assert _connects(peer, me, 8083), "8083 was opened by a later role through the firewall entry point"
    assert not _connects(peer, me, 8081), "8081 is open only to 192.0.2.0/24"
    assert not _connects(peer, me, 9090), "9090 was never declared"


def test_listener_itself_is_up(host):
    # The closed ports above are closed by the firewall, not because nothing listens.
    assert _connects(host, "127.0.0.1", 9090)
    assert _connects(host, "127.0.0.1", 8081)


def test_stopping_the_firewall_keeps_other_tools_tables(host):
    with host.sudo():
        host.check_output("nft add table inet othertool")
        try:
            host.check_output("systemctl restart nftables")
            tables = host.check_output("nft list tables")
            assert "table inet othertool" in tables
            assert "table inet aic_gateway" in tables
        finally:
            host.run("nft delete table inet othertool")
