"""The unprivileged user dynos and builds run as: who may reach what, handing files over, and
what a child started as that user gets (uid, no groups, umask, rlimits)."""

from __future__ import annotations

import os
import pwd
import subprocess
from pathlib import Path

import pytest

from kapal.system_users import RunAs, unprivileged

root_only = pytest.mark.skipif(
    os.geteuid() != 0, reason="only root can start processes as, or give files to, another user"
)


@pytest.fixture
def nobody() -> RunAs:
    entry = pwd.getpwnam("nobody")
    return RunAs("nobody", entry.pw_uid, entry.pw_gid, nofile=512, nproc=777)


def test_unreachable_names_the_first_closed_directory(nobody: RunAs, open_dir: Path) -> None:
    deep = open_dir / "a" / "b" / "c"
    deep.mkdir(parents=True)
    for path in (open_dir / "a", open_dir / "a" / "b", deep):
        path.chmod(0o711)
    assert nobody.unreachable(deep) is None
    assert nobody.unreachable(deep / "not-yet") is None
    (open_dir / "a" / "b").chmod(0o700)
    assert nobody.unreachable(deep) == open_dir / "a" / "b"
    assert nobody.unreachable(open_dir / "a") is None
    (open_dir / "a" / "b").chmod(0o701)  # execute is enough; reading is not needed
    assert nobody.unreachable(deep) is None


def test_may_execute_follows_links_like_exec(nobody: RunAs, open_dir: Path) -> None:
    assert nobody.may_execute(Path("/usr/bin/python3"))
    tool = open_dir / "tool"
    tool.write_text("#!/bin/sh\n")
    tool.chmod(0o700)
    assert not nobody.may_execute(tool)
    tool.chmod(0o755)
    assert nobody.may_execute(tool)
    (open_dir / "link").symlink_to(tool)
    assert nobody.may_execute(open_dir / "link")
    assert not nobody.may_execute(open_dir / "missing")


def test_without_root_there_is_nothing_to_drop() -> None:
    if os.geteuid() == 0:
        assert unprivileged("nobody") == RunAs(
            "nobody", pwd.getpwnam("nobody").pw_uid, pwd.getpwnam("nobody").pw_gid
        )
    else:
        assert unprivileged() is None


@root_only
def test_hand_over_gives_everything_but_link_targets(nobody: RunAs, open_dir: Path) -> None:
    secret = open_dir / "secret"
    secret.write_text("root's")
    secret.chmod(0o600)
    tree = open_dir / "tree"
    (tree / "sub").mkdir(parents=True)
    (tree / "sub" / "file").write_text("x")
    (tree / "link").symlink_to(secret)
    (tree / "dirlink").symlink_to(open_dir)
    nobody.hand_over(tree)
    for path in (tree, tree / "sub", tree / "sub" / "file", tree / "link", tree / "dirlink"):
        assert path.lstat().st_uid == nobody.uid, path
    assert nobody.owns(tree)
    assert secret.stat().st_uid == 0  # the link was given, not what it points at
    assert open_dir.stat().st_uid == 0


@root_only
def test_a_child_runs_as_the_user_with_no_groups_and_limits(nobody: RunAs) -> None:
    script = "id -u; id -g; id -G; umask; cat /proc/self/limits /proc/self/status"
    result = subprocess.run(
        ["/bin/sh", "-c", script],
        env={"PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
        **nobody.spawn_options(0o027),
    )
    lines = result.stdout.splitlines()
    assert lines[:4] == [
        str(nobody.uid),
        str(nobody.gid),
        str(nobody.gid),  # root's supplementary groups are gone
        "0027",
    ]
    limits = {line[:26].strip(): line[26:].split()[:2] for line in lines if line.startswith("Max")}
    assert limits["Max open files"] == ["512", "512"]
    assert limits["Max processes"] == ["777", "777"]
    effective = next(line for line in lines if line.startswith("CapEff:"))
    assert effective.split()[1] == "0000000000000000"


def test_hand_over_refuses_a_link_as_its_top(tmp_path: Path) -> None:
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "elsewhere")
    me = RunAs("me", os.getuid(), os.getgid())
    with pytest.raises(OSError, match="it is a link"):
        me.hand_over(tmp_path / "link")
