"""The stand-in `kong` Debian package (tests/standins/kong/package/build-deb).

Each test docstring cites the kong.md fact it checks
(/work/shared/reference/kong.md).
"""

import os
import shutil
import subprocess
import sys

import pytest

from .kong_helpers import (PACKAGE, PYTHON, STANDIN, http, kong, listen_keys, node_ports,
                           wait_for, write_conf)

sys.path.insert(0, STANDIN)
import conf as C  # noqa: E402  pylint: disable=wrong-import-position,import-error

pytestmark = pytest.mark.skipif(shutil.which("dpkg-deb") is None, reason="needs dpkg-deb")
VERSIONS = ("3.9.2", "3.9.3")


@pytest.fixture(scope="module")
def debs(tmp_path_factory):
    out = tmp_path_factory.mktemp("debs")
    paths = {}
    for version in VERSIONS:
        proc = subprocess.run([os.path.join(PACKAGE, "build-deb"), version, str(out)],
                              capture_output=True, text=True, check=True)
        paths[version] = proc.stdout.strip()
    return paths


@pytest.fixture(scope="module")
def extracted(debs, tmp_path_factory):
    roots = {}
    for version, deb in debs.items():
        root = tmp_path_factory.mktemp("root-" + version)
        subprocess.run(["dpkg-deb", "-x", deb, str(root)], check=True)
        roots[version] = root
    return roots


def field(deb, name):
    return subprocess.run(["dpkg-deb", "-f", deb, name], capture_output=True, text=True,
                          check=True).stdout.strip()


def contents(deb):
    out = subprocess.run(["dpkg-deb", "-c", deb], capture_output=True, text=True,
                         check=True).stdout
    return {line.split()[5].lstrip(".") for line in out.splitlines()}


@pytest.mark.parametrize("version", VERSIONS)
def test_deb_name_and_control(debs, version):
    """kong.md §1 "Direct .deb URL: `…/kong_<ver>/kong_<ver>_<arch>.deb`" and
    "`kong` is the OSS package ... replaces and conflicts with
    `kong-community-edition` and `kong-enterprise-edition-fips`"."""
    deb = debs[version]
    assert os.path.basename(deb) == "kong_%s_amd64.deb" % version
    assert field(deb, "Package") == "kong"
    assert field(deb, "Version") == version
    assert field(deb, "Architecture") == "amd64"
    assert "kong-community-edition" in field(deb, "Conflicts")
    assert "kong-enterprise-edition-fips" in field(deb, "Replaces")
    depends = field(deb, "Depends")
    for dep in ("python3", "python3-psycopg2", "python3-yaml", "openssl"):
        assert dep in depends


def test_installed_layout(debs):
    """kong.md §1 "Installed layout": `/usr/local/bin/kong` and `/usr/local/bin/kong-health`,
    `/usr/local/kong/` with `include/`, nginx at `/usr/local/openresty/nginx/sbin/nginx`,
    `/etc/kong/kong.conf.default`, `/etc/kong/kong.logrotate`,
    `/lib/systemd/system/kong.service`; "**There is no `kong.conf`; you create it.**"."""
    files = contents(debs["3.9.3"])
    for path in ("/usr/local/bin/kong", "/usr/local/bin/kong-health", "/usr/local/kong/",
                 "/usr/local/kong/include/", "/usr/local/openresty/nginx/sbin/nginx",
                 "/etc/kong/kong.conf.default", "/etc/kong/kong.logrotate",
                 "/lib/systemd/system/kong.service",
                 "/usr/local/share/kong-standin/cli.py",
                 "/usr/local/share/kong-standin/VERSION"):
        assert path in files, path
    assert "/etc/kong/kong.conf" not in files


def test_conffiles(extracted, tmp_path, debs):
    """kong.md §1 "`/etc/kong/kong.conf.default` (type `config`)" and
    "`/etc/kong/kong.logrotate` (`config|noreplace`; daily, rotate 14, `su kong kong`,
    USR1 to `/usr/local/kong/pids/nginx.pid`)"."""
    subprocess.run(["dpkg-deb", "-e", debs["3.9.3"], str(tmp_path / "ctl")], check=True)
    conffiles = (tmp_path / "ctl" / "conffiles").read_text().split()
    assert conffiles == ["/etc/kong/kong.conf.default", "/etc/kong/kong.logrotate"]
    rotate = (extracted["3.9.3"] / "etc/kong/kong.logrotate").read_text()
    for needle in ("daily", "rotate 14", "su kong kong", "USR1",
                   "/usr/local/kong/pids/nginx.pid"):
        assert needle in rotate


def test_systemd_unit_is_the_real_one(extracted):
    """kong.md §1 "systemd unit (identical in 3.4.2, 3.9.3 and master)": every directive
    it quotes, verbatim."""
    unit = (extracted["3.9.3"] / "lib/systemd/system/kong.service").read_text()
    lines = [line.strip() for line in unit.splitlines()]
    for directive in (
            "User=root",
            "ExecStartPre=/usr/local/bin/kong prepare -p /usr/local/kong",
            "ExecStart=/usr/local/openresty/nginx/sbin/nginx -p /usr/local/kong -c nginx.conf",
            "ExecReload=/usr/local/bin/kong prepare -p /usr/local/kong",
            "ExecReload=/usr/local/openresty/nginx/sbin/nginx -p /usr/local/kong -c "
            "nginx.conf -s reload",
            "ExecStop=/bin/kill -s QUIT $MAINPID",
            "PrivateTmp=true",
            "Environment=KONG_NGINX_DAEMON=off",
            "LimitNOFILE=infinity",
            "WantedBy=multi-user.target"):
        assert directive in lines, directive


def test_postinst_creates_user_and_does_not_start(tmp_path, debs):
    """kong.md §1 "Post-install script": "Creates group `kong` and user `kong` (shell
    `/bin/sh`). Runs `chown -R kong:kong` plus `chmod -R g=u` ... Does **not** enable or
    start the service."."""
    subprocess.run(["dpkg-deb", "-e", debs["3.9.3"], str(tmp_path / "ctl")], check=True)
    script = (tmp_path / "ctl" / "postinst").read_text()
    assert "groupadd kong" in script
    assert "useradd -g kong -s /bin/sh" in script
    assert "chown -R kong:kong" in script and "chmod -R g=u" in script
    for path in ("/etc/kong", "/usr/local/kong", "/usr/local/openresty", "/usr/local/bin/kong"):
        assert path in script
    assert "systemctl" not in script
    assert os.access(tmp_path / "ctl" / "postinst", os.X_OK)


@pytest.mark.parametrize("version", VERSIONS)
def test_packaged_kong_version(extracted, version):
    """kong.md §3 "`kong version`: prints the bare version, e.g. `3.9.3`": the packaged
    CLI reports the version the package was built with."""
    cli = str(extracted[version] / "usr/local/share/kong-standin/cli.py")
    proc = kong("version", cli=cli)
    assert proc.returncode == 0
    assert proc.stdout == version + "\n"


def test_packaged_conf_default_lists_kong_keys(extracted):
    """kong.md §2 keys and defaults (3.9.3) are in /etc/kong/kong.conf.default, each
    commented out (kong.md §1 "There is no `kong.conf`; you create it.")."""
    text = (extracted["3.9.3"] / "etc/kong/kong.conf.default").read_text()
    assert text == C.conf_default_text()
    assert text == open(os.path.join(PACKAGE, "kong.conf.default"), encoding="utf-8").read()
    for line in ("#prefix = /usr/local/kong/", "#log_level = notice", "#database = postgres",
                 "#pg_host = 127.0.0.1", "#pg_port = 5432", "#pg_user = kong",
                 "#pg_database = kong", "#pg_password = ",
                 "#status_listen = 127.0.0.1:8007 reuseport backlog=16384",
                 "#proxy_listen = 0.0.0.0:8000 reuseport backlog=16384, 0.0.0.0:8443 http2 "
                 "ssl reuseport backlog=16384",
                 "#admin_listen = 127.0.0.1:8001 reuseport backlog=16384, 127.0.0.1:8444 "
                 "http2 ssl reuseport backlog=16384",
                 "#cluster_listen = 0.0.0.0:8005", "#role = traditional",
                 "#cluster_mtls = shared", "#cluster_control_plane = 127.0.0.1:8005",
                 "#cluster_data_plane_purge_delay = 1209600", "#nginx_daemon = on",
                 "#nginx_user = kong kong", "#router_flavor = traditional_compatible",
                 "#lua_ssl_trusted_certificate = system", "#db_update_frequency = 5",
                 "#mem_cache_size = 128m", "#lmdb_map_size = 2048m", "#plugins = bundled"):
        assert line in text.splitlines(), line
    assert not any(line and not line.startswith("#") for line in text.splitlines())


@pytest.mark.parametrize("version", VERSIONS)
def test_packaged_node_reports_version_on_admin_root(extracted, tmp_path, version):
    """kong.md §4 "`GET /` returns `{tagline, version, edition ...}`": the packaged node
    (nginx stand-in started as the unit does, kong.md §1 ExecStartPre/ExecStart) reports the
    package version."""
    share = extracted[version] / "usr/local/share/kong-standin"
    ports = node_ports()
    conf = write_conf(tmp_path / "kong.conf", database="off", **listen_keys(ports))
    prefix = str(tmp_path / "prefix")
    env = {"KONG_NGINX_DAEMON": "off"}
    assert kong("prepare", "-c", conf, "-p", prefix, env=env,
                cli=str(share / "cli.py")).returncode == 0
    proc = subprocess.Popen([PYTHON, str(share / "node.py"), "-p", prefix, "-c", "nginx.conf"])
    try:
        assert wait_for(lambda: os.path.exists(os.path.join(prefix, "pids", "nginx.pid")))
        assert wait_for(lambda: _up(ports["admin"]))
        status, body, headers = http("GET", "http://127.0.0.1:%d/" % ports["admin"])
        assert status == 200
        assert '"version": "%s"' % version in body
        assert headers["Server"] == "kong/%s" % version
    finally:
        proc.terminate()
        proc.wait(10)


def _up(port):
    try:
        return http("GET", "http://127.0.0.1:%d/status" % port)[0] == 200
    except OSError:
        return False
