# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import annotations

import pytest

from ansible.errors import AnsibleFilterError
from ansible_collections.aic.gateway.plugins.filter.checksum_for import checksum_for

A = "a" * 64
B = "B" * 64


def test_sha256sum_text_and_binary_markers():
    content = "%s  demo-1.0.0.linux-amd64.tar.gz\n%s *demo-1.0.0.linux-arm64.tar.gz\n" % (A, B)
    assert checksum_for(content, "demo-1.0.0.linux-amd64.tar.gz") == A
    assert checksum_for(content, "demo-1.0.0.linux-arm64.tar.gz") == "b" * 64


def test_names_with_directories_and_dot_slash():
    content = "%s  ./dist/kuma.tar.gz\n%s  ./other.tar.gz\n" % (A, B)
    assert checksum_for(content, "kuma.tar.gz") == A
    assert checksum_for(content, "other.tar.gz") == "b" * 64


def test_single_hash_file():
    assert checksum_for("%s\n" % A.upper(), "anything.jar") == A


def test_comments_and_blank_lines_are_skipped():
    assert checksum_for("# generated\n\n%s  x.deb\n" % A, "x.deb") == A


def test_missing_name_lists_what_is_there():
    with pytest.raises(AnsibleFilterError) as err:
        checksum_for("%s  demo-1.0.0.tar.gz\n" % A, "demo-1.0.1.tar.gz")
    assert "no sha256 for 'demo-1.0.1.tar.gz'" in str(err.value)
    assert "demo-1.0.0.tar.gz" in str(err.value)


def test_an_html_page_is_not_a_checksums_file():
    with pytest.raises(AnsibleFilterError, match="HTML error page"):
        checksum_for("<html><body>404</body></html>", "x.tar.gz")


def test_a_prefix_of_a_name_does_not_match():
    with pytest.raises(AnsibleFilterError):
        checksum_for("%s  demo.tar.gz.asc\n" % A, "demo.tar.gz")
