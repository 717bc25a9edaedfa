"""aic.gateway.nft_open_ports: the report of what a host's firewall opens."""

from ansible_collections.aic.gateway.plugins.filter.nft_open_ports import nft_open_ports

# As nft prints it: tab-indented.
CHAIN = (
    "table inet aic_gateway {\n"
    "\tchain allowed {\n"
    "\t\tip saddr { 10.89.0.3-10.89.0.5 } tcp dport 20001 accept comment \"kuma_dp: kuma-dp inbound\"\n"
    "\t\tip saddr { 10.89.0.3-10.89.0.5 } tcp dport 20002 accept comment \"kuma_dp: kuma-dp inbound\"\n"
    "\t\tip saddr 10.89.0.6 tcp dport 80 accept comment \"loadbalancer: loadbalancer frontend\"\n"
    "\t\tip6 saddr fd00::/8 tcp dport 80 accept comment \"loadbalancer: loadbalancer frontend\"\n"
    "\t\ttcp dport { 8000, 8443 } accept comment \"kong: kong proxy\"\n"
    "\t\tudp dport 5000-5010 accept comment \"app: range\"\n"
    "\t\tct state established accept\n"
    "\t}\n"
    "}\n"
)


def test_one_entry_per_comment_with_its_ports_once_sorted():
    assert nft_open_ports(CHAIN) == [
        "app: range :5000-5010",
        "kong: kong proxy :8000,8443",
        "kuma_dp: kuma-dp inbound :20001,20002",
        "loadbalancer: loadbalancer frontend :80",
    ]


def test_a_missing_chain_opens_nothing():
    assert nft_open_ports("") == []
    assert nft_open_ports(None) == []
