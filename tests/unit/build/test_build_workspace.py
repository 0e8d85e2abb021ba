"""The build's workspace: what the platform writes into a directory the build's user owned,
and the clear failures when that user cannot reach its directories or programs."""

from __future__ import annotations

import asyncio
import os
import pwd
import stat
from pathlib import Path

import pytest

from kapal.build.buildpack import CompileDirs
from kapal.build.output import BuildOutput
from kapal.build.process import BuildFailed
from kapal.build.python import PythonBuildpack
from kapal.build.workspace import hand_over, place_file
from kapal.system_users import RunAs


def nobody() -> RunAs:
    entry = pwd.getpwnam("nobody")
    return RunAs("nobody", entry.pw_uid, entry.pw_gid)


def test_place_file_writes_with_fixed_modes(tmp_path: Path) -> None:
    old = os.umask(0o077)
    try:
        place_file(tmp_path, ".profile.d", "python.sh", "export X=1\n")
    finally:
        os.umask(old)
    assert (tmp_path / ".profile.d" / "python.sh").read_text() == "export X=1\n"
    assert stat.S_IMODE((tmp_path / ".profile.d").stat().st_mode) == 0o755
    assert stat.S_IMODE((tmp_path / ".profile.d" / "python.sh").stat().st_mode) == 0o644


def test_place_file_replaces_a_planted_link_instead_of_following_it(tmp_path: Path) -> None:
    victim = tmp_path / "victim"
    victim.write_text("keep me\n")
    build = tmp_path / "build"
    (build / ".profile.d").mkdir(parents=True)
    (build / ".profile.d" / "python.sh").symlink_to(victim)
    (build / ".profile.d" / "app.sh").write_text("the app's own\n")
    place_file(build, ".profile.d", "python.sh", "export X=1\n")
    assert victim.read_text() == "keep me\n"
    written = build / ".profile.d" / "python.sh"
    assert not written.is_symlink() and written.read_text() == "export X=1\n"
    assert (build / ".profile.d" / "app.sh").read_text() == "the app's own\n"


def test_place_file_never_goes_through_a_linked_directory(tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    build = tmp_path / "build"
    build.mkdir()
    (build / ".profile.d").symlink_to(elsewhere)
    with pytest.raises(BuildFailed, match=r"^\.profile\.d in the app is not a directory\.$"):
        place_file(build, ".profile.d", "python.sh", "x")
    assert list(elsewhere.iterdir()) == []
    (build / ".profile.d").unlink()
    (build / ".profile.d" / "python.sh").mkdir(parents=True)
    with pytest.raises(BuildFailed, match=r"python\.sh in the app is a directory"):
        place_file(build, ".profile.d", "python.sh", "x")


def test_a_build_user_kept_out_fails_clearly(tmp_path: Path) -> None:
    # pytest's temporary directories are 0700: nobody cannot pass.
    with pytest.raises(BuildFailed, match="cannot be reached by user nobody"):
        hand_over(nobody(), tmp_path / "build", tmp_path / "cache")


def test_a_program_the_build_user_cannot_run_fails_clearly(tmp_path: Path) -> None:
    uv = tmp_path / "uv"
    uv.write_text("#!/bin/sh\n")
    uv.chmod(0o700)
    buildpack = PythonBuildpack("/usr/bin/python3", str(uv), build_user=nobody)
    dirs = CompileDirs(tmp_path / "build", tmp_path / "cache")
    dirs.build_dir.mkdir()
    (dirs.build_dir / "requirements.txt").write_text("")
    out = BuildOutput(tmp_path / "build.log")
    with pytest.raises(BuildFailed) as failed:
        asyncio.run(buildpack.compile(dirs, out))
    out.close()
    assert failed.value.message == f"{uv} cannot be run by user nobody."
