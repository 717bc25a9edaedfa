"""What a client, Prometheus and an operator draining a Kong node see of the load balancer.

The backends kong-a and kong-b are test backends on each host (prepare.yml), not Kong.
"""

import json
import time

import pytest
import testinfra

HOSTS = ["lb-debian12", "lb-debian13"]


def _answers(host, count=10, url="http://127.0.0.1/"):
    return sorted({host.check_output("curl -s --max-time 5 %s" % url) for _i in range(count)})


def _server_status(host, name):
    stat = host.check_output("echo 'show stat -1 4 -1' | socat stdio /run/haproxy/admin.sock")
    row = [line.split(",") for line in stat.splitlines() if line.startswith("kong,%s," % name)][0]
    return row[17]


def _wait_status(host, name, wanted, timeout=15):
    deadline = time.time() + timeout
    status = None
    while time.time() < deadline:
        status = _server_status(host, name)
        if status.startswith(wanted):
            return status
        time.sleep(0.25)
    raise AssertionError("%s is %s, not %s after %d s" % (name, status, wanted, timeout))


@pytest.fixture
def seen(host):
    return json.loads(host.file("/var/lib/test-backend/side_effect.json").content_string)


def test_haproxy_runs_the_rendered_configuration(host):
    assert host.service("haproxy").is_running
    assert host.service("haproxy").is_enabled
    host.run_expect([0], "haproxy -c -f /etc/haproxy/haproxy.cfg")
    config = host.file("/etc/haproxy/haproxy.cfg").content_string
    assert "stats socket /run/haproxy/admin.sock mode 660 level admin" in config
    assert "http-check send meth GET uri /status/ready" in config
    assert "retry-on conn-failure empty-response response-timeout" in config
    assert "option redispatch" in config


def test_requests_reach_both_backends(host):
    _wait_status(host, "kong-a", "UP")
    _wait_status(host, "kong-b", "UP")
    assert _answers(host) == ["kong-a", "kong-b"]


def test_requests_from_another_host_reach_both_backends(host):
    me = host.check_output("hostname")
    peer = testinfra.get_host("podman://" + [h for h in HOSTS if h != me][0])
    answers = {peer.check_output("curl -s --max-time 5 http://%s/" % me) for _i in range(10)}
    assert answers == {"kong-a", "kong-b"}


def test_a_backend_that_is_not_ready_is_taken_out_and_comes_back(host):
    flag = "/var/lib/test-backend/kong-b.draining"
    try:
        host.check_output("touch %s" % flag)
        _wait_status(host, "kong-b", "DOWN")
        assert _answers(host) == ["kong-a"]
    finally:
        host.check_output("rm -f %s" % flag)
    _wait_status(host, "kong-b", "UP")
    assert _answers(host) == ["kong-a", "kong-b"]


def test_server_state_reports_change_only_when_the_state_changed(seen):
    assert seen["ready_at_start_changed_kong-a"] is False
    assert seen["ready_at_start_changed_kong-b"] is False
    assert seen["maint_b_changed"] is True
    assert seen["drain_a_changed"] is True
    assert seen["drain_a_again_changed"] is False
    assert seen["ready_b_changed"] is True


def test_server_state_in_check_mode_changes_nothing(seen):
    assert seen["answered_after_check_mode_drain"] == ["kong-a", "kong-b"]


def test_drain_waits_for_the_running_request_and_takes_the_server_out(seen):
    # The slow request (3 s) was on kong-a when the drain began; the drain waited for it to end.
    assert seen["slow_request_answered_by"] == "kong-a"
    assert seen["drain_waited_seconds"] >= 1.5
    assert seen["answered_while_a_drained"] == ["kong-b"]


def test_a_drained_server_stays_drained_across_a_reload(seen):
    assert seen["answered_after_reload_while_a_drained"] == ["kong-b"]


def test_ready_from_a_delegated_play_puts_the_server_back(seen):
    assert seen["answered_after_ready"] == ["kong-a", "kong-b"]


def test_an_invalid_configuration_is_refused_and_the_live_one_kept(host, seen):
    assert seen["refused_accepted"] is False
    assert "refused by 'haproxy -c'" in seen["refused_message"]
    assert "no-such-keyword" in seen["refused_message"]
    assert seen["config_unchanged"] is True
    assert "no-such-keyword" not in host.file("/etc/haproxy/haproxy.cfg").content_string
    assert seen["answered_after_refusal"] == ["kong-a", "kong-b"]


def test_a_maxconn_beyond_the_open_files_limit_is_refused_before_anything_changes(host, seen):
    """haproxy -c accepts such a configuration and the start then fails: the preflight must refuse it."""
    assert seen["maxconn_accepted"] is False
    assert "loadbalancer_maxconn 4000 needs at least 8256 open files" in seen["maxconn_message"]
    assert "maxconn 4000" not in host.file("/etc/haproxy/haproxy.cfg").content_string
    assert seen["config_unchanged"] is True
    assert seen["answered_after_refusal"] == ["kong-a", "kong-b"]


def test_metrics_endpoint_serves_haproxy_metrics(host):
    metrics = host.check_output("curl -fsS http://127.0.0.1:8405/metrics")
    assert "haproxy_process_" in metrics
    assert 'haproxy_server_status{proxy="kong",server="kong-a"' in metrics
    assert 'haproxy_backend_active_servers{proxy="kong"}' in metrics


def test_stats_page_when_enabled(host):
    assert "kong-a" in host.check_output("curl -fsS 'http://127.0.0.1:8405/stats;csv'")


def test_service_limits_and_hardening(host):
    unit = host.check_output("systemctl show haproxy -p LimitNOFILE -p NoNewPrivileges -p ProtectSystem")
    assert "LimitNOFILE=4096" in unit
    assert "NoNewPrivileges=yes" in unit
    assert "ProtectSystem=strict" in unit


def test_keepalived_holds_the_virtual_ip_where_enabled(host):
    if host.check_output("hostname") != "lb-debian12":
        assert not host.package("keepalived").is_installed
        return
    config = host.file("/etc/keepalived/keepalived.conf")
    assert config.mode == 0o600
    host.run_expect([0], "keepalived -t -f /etc/keepalived/keepalived.conf")
    assert host.service("keepalived").is_running
    deadline = time.time() + 15
    while "192.0.2.10" not in host.check_output("ip -4 -o addr show") and time.time() < deadline:
        time.sleep(0.5)
    assert "192.0.2.10" in host.check_output("ip -4 -o addr show")
