"""Unpacking without tarfile's filters (absent before Python 3.11.4) sanitises the same way."""

from __future__ import annotations

import io
import os
import stat
import tarfile
from pathlib import Path

import pytest

from kapal import tarballs


def archive(*members: tuple[tarfile.TarInfo, bytes]) -> tarfile.TarFile:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for info, data in members:
            tar.addfile(info, io.BytesIO(data) if info.isreg() else None)
    buffer.seek(0)
    return tarfile.open(fileobj=buffer, mode="r")


def test_modes_and_owners_are_sanitised(tmp_path: Path) -> None:
    setuid = tarfile.TarInfo("bin/tool")
    setuid.mode, setuid.size, setuid.uid, setuid.uname = 0o4777, 2, 4242, "nobody"
    folder = tarfile.TarInfo("bin")
    folder.type, folder.mode = tarfile.DIRTYPE, 0o1777
    with archive((folder, b""), (setuid, b"hi")) as tar:
        tarballs.extract(tar, tmp_path, lambda member: None)
    tool = (tmp_path / "bin" / "tool").stat()
    assert stat.S_IMODE(tool.st_mode) == 0o755
    assert (tool.st_uid, tool.st_gid) == (os.geteuid(), os.getegid())
    assert stat.S_IMODE((tmp_path / "bin").stat().st_mode) == 0o755


def test_the_check_sees_every_member_first(tmp_path: Path) -> None:
    info = tarfile.TarInfo("evil")
    info.size = 1

    def refuse(member: tarfile.TarInfo) -> None:
        raise ValueError(f"refused {member.name}")

    with archive((info, b"x")) as tar, pytest.raises(ValueError, match="refused evil"):
        tarballs.extract(tar, tmp_path, refuse)
    assert not (tmp_path / "evil").exists()
