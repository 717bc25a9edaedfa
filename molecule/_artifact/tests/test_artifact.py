"""What the _artifact role leaves on hosts and on the controller, and how often it downloaded."""

import hashlib
import os

import pytest

TEST_DIR = os.path.join(os.environ.get("MOLECULE_EPHEMERAL_DIRECTORY", "/nonexistent"), "artifact-test")


def _requests(path, local=None):
    """Requests for path in the mirror's access log (client, method, path, status)."""
    with open(os.path.join(TEST_DIR, "access.log"), encoding="utf-8") as handle:
        lines = [line.split() for line in handle if line.strip()]
    return [
        line for line in lines
        if line[1] == "GET" and line[2] == path and (local is None or (line[0] == "127.0.0.1") == local)
    ]


def _sha256(path):
    with open(path, "rb") as handle:
        return hashlib.sha256(handle.read()).hexdigest()


def test_upstream_archive_placed_unchanged(host):
    placed = host.file("/var/cache/aic-gateway/artifacts/demo/1.0.0/demo-1.0.0.tar.gz")
    assert placed.is_file
    assert placed.mode == 0o644
    assert placed.sha256sum == _sha256(os.path.join(TEST_DIR, "www/upstream/releases/v1.0.0/demo-1.0.0.tar.gz"))


def test_mirrored_archive_unpacked_and_runs(host):
    assert host.check_output("/opt/demo/bin/demo") == "demo 1.1.0"


def test_controller_file_placed_with_mode(host):
    notes = host.file("/etc/demo/notes.txt")
    assert notes.mode == 0o640
    assert notes.content_string.strip() == "notes shipped from the controller"


def test_target_download_unpacked_and_runs(host):
    assert host.file("/var/tmp/demo-target/demo-1.1.0.tar.gz").is_file
    assert host.check_output("/opt/demo-target/bin/demo") == "demo 1.1.0"


@pytest.mark.parametrize("path", ["demo/1.0.0/demo-1.0.0.tar.gz", "demo/1.1.0/demo-1.1.0.tar.gz", "demo/1.1.0/SHA256SUMS"])
def test_controller_cache_holds_the_downloads(path):
    assert os.path.isfile(os.path.join(TEST_DIR, "cache", path))


def test_a_download_with_the_wrong_checksum_is_not_kept_in_the_cache():
    assert len(_requests("/corrupt/demo-1.0.0.tar.gz")) >= 1
    assert not os.path.exists(os.path.join(TEST_DIR, "cache", "demo-corrupt", "1.0.0", "demo-1.0.0.tar.gz"))


def test_many_hosts_and_runs_download_once_through_the_controller():
    # Two hosts, converge and the idempotence run: one download each through the cache.
    assert len(_requests("/upstream/releases/v1.0.0/demo-1.0.0.tar.gz")) == 1
    assert len(_requests("/mirror/demo/1.1.0/demo-1.1.0.tar.gz", local=True)) == 1
    assert len(_requests("/mirror/demo/1.1.0/SHA256SUMS", local=True)) == 1


def test_target_mode_downloads_once_per_host():
    from_hosts = _requests("/mirror/demo/1.1.0/demo-1.1.0.tar.gz", local=False)
    assert len(from_hosts) == 2
    assert len({line[0] for line in from_hosts}) == 2
