"""examples/ghost/aic-ghost-start: the wrapper the Ghost tarball starts with (no Node needed here:
GHOST_NODE points at a stand-in that prints what Ghost would have been started with)."""

import json
import os
import shutil
import subprocess

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
WRAPPER = os.path.join(ROOT, "examples", "ghost", "aic-ghost-start")
FAKE_NODE = """#!/bin/sh
printf '{"args": "%s", "cwd": "%s", "node_env": "%s", "tmpdir": "%s"}' "$*" "$(pwd)" "$NODE_ENV" "${TMPDIR:-}"
"""


def tree(tmp_path):
    release = tmp_path / "release"
    (release / "content" / "themes" / "casper").mkdir(parents=True)
    (release / "content" / "themes" / "casper" / "package.json").write_text("{}")
    (release / "content" / "data").mkdir()
    shutil.copy(WRAPPER, release / "aic-ghost-start")
    node = tmp_path / "node"
    node.write_text(FAKE_NODE)
    node.chmod(0o755)
    return release, str(node)


def start(release, node, content, **env):
    full = {"PATH": "/usr/bin:/bin", "GHOST_NODE": node, "paths__contentPath": str(content)}
    full.update(env)
    run = subprocess.run([str(release / "aic-ghost-start")], env=full, capture_output=True, text=True, check=True)
    return json.loads(run.stdout)


def test_first_start_copies_the_content_skeleton_and_runs_index_js(tmp_path):
    release, node = tree(tmp_path)
    content = tmp_path / "data" / "content"
    seen = start(release, node, content)
    assert seen["args"] == str(release / "index.js")
    assert seen["cwd"] == str(release) and seen["node_env"] == "production"
    assert (content / "themes" / "casper" / "package.json").is_file()
    assert all((content / d).is_dir() for d in ("data", "images", "logs", "settings", "media", "files"))


def test_later_starts_keep_the_content(tmp_path):
    release, node = tree(tmp_path)
    content = tmp_path / "content"
    start(release, node, content)
    (content / "themes" / "casper" / "package.json").write_text('{"edited": true}')
    (content / "data" / "ghost.db").write_text("db")
    start(release, node, content, NODE_ENV="development")
    assert (content / "themes" / "casper" / "package.json").read_text() == '{"edited": true}'
    assert (content / "data" / "ghost.db").read_text() == "db"


def test_unwritable_tmp_moves_tmpdir_into_the_content(tmp_path):
    release, node = tree(tmp_path)
    content = tmp_path / "content"
    readonly = tmp_path / "ro"
    readonly.mkdir(mode=0o555)
    seen = start(release, node, content, TMPDIR=str(readonly))
    if os.geteuid() == 0:
        # root writes anywhere: the directory counts as writable, as /tmp does for root without ProtectSystem.
        assert seen["tmpdir"] == str(readonly)
    else:
        assert seen["tmpdir"] == str(content / ".tmp") and (content / ".tmp").is_dir()


def test_content_path_is_required(tmp_path):
    release, node = tree(tmp_path)
    run = subprocess.run([str(release / "aic-ghost-start")], env={"PATH": "/usr/bin:/bin", "GHOST_NODE": node},
                         capture_output=True, text=True, check=False)
    assert run.returncode != 0 and "paths__contentPath" in run.stderr
