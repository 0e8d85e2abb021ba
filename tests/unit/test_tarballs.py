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


def member(name: str, kind: bytes = tarfile.REGTYPE, **attrs: object) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.mode, info.mtime = kind, 0o644, 315532800
    for key, value in attrs.items():
        setattr(info, key, value)
    return info


def mixed_archive() -> list[tuple[tarfile.TarInfo, bytes]]:
    """Every kind of member a slug holds, in the order tar writes them, and some it may not."""
    big = os.urandom(tarballs.SMALL_FILE + 1)  # written as it is read, not by a worker
    members = [
        (member("./", tarfile.DIRTYPE, mode=0o755), b""),
        (member("./app", tarfile.DIRTYPE, mode=0o750), b""),
        (member("./app/run", mode=0o4755, size=3), b"run"),
        (member("./app/empty", size=0), b""),
        (member("./app/big.so", mode=0o755, size=len(big)), big),
        (member("./deep/er/file.txt", size=2, mtime=1_000_000_000), b"hi"),  # no dir member
        (member("./app/same", tarfile.LNKTYPE, linkname="./app/run"), b""),
        (member("./app/python", tarfile.SYMTYPE, linkname="/usr/bin/python3"), b""),
    ]
    members += [(member(f"./many/{i:04d}.py", size=3), b"x=%d" % (i % 10)) for i in range(300)]
    return members


def tree(root: Path) -> dict[str, tuple[object, ...]]:
    """Everything extract() promises about each path: kind, mode, owner, mtime, content."""
    found: dict[str, tuple[object, ...]] = {}
    for path in sorted(root.rglob("*")):
        st = path.lstat()
        if stat.S_ISLNK(st.st_mode):
            found[str(path.relative_to(root))] = ("link", os.readlink(path))
        elif stat.S_ISDIR(st.st_mode):
            found[str(path.relative_to(root))] = ("dir", stat.S_IMODE(st.st_mode), st.st_uid)
        else:
            found[str(path.relative_to(root))] = (
                "file",
                stat.S_IMODE(st.st_mode),
                st.st_uid,
                st.st_gid,
                st.st_mtime,
                st.st_nlink,
                path.read_bytes(),
            )
    return found


@pytest.mark.parametrize("workers", [1, 3])
def test_concurrent_extraction_unpacks_what_extract_does(tmp_path: Path, workers: int) -> None:
    members = mixed_archive()
    one, other = tmp_path / "one", tmp_path / "other"
    one.mkdir()
    other.mkdir()
    checked: list[str] = []
    seen: list[str] = []
    with archive(*members) as tar:
        tarballs.extract(tar, one, lambda m: checked.append(m.name))
    with archive(*members) as tar:
        tarballs.extract_concurrently(tar, other, lambda m: seen.append(m.name), workers)
    assert seen == checked  # every member checked, in order
    assert len(seen) == len(members)
    assert tree(other) == tree(one)
    assert len(tree(one)) == 310
    assert one.stat().st_mode == other.stat().st_mode  # `./` is the root itself
    assert (other / "app" / "run").stat().st_ino == (other / "app" / "same").stat().st_ino


def test_concurrent_extraction_stops_at_a_refused_member(tmp_path: Path) -> None:
    members = mixed_archive()

    def refuse_deep(member: tarfile.TarInfo) -> None:
        if member.name.startswith("./deep"):
            raise ValueError(f"refused {member.name}")

    with archive(*members) as tar, pytest.raises(ValueError, match=r"refused \./deep/er"):
        tarballs.extract_concurrently(tar, tmp_path, refuse_deep, 3)
    assert (tmp_path / "app" / "run").read_bytes() == b"run"  # written before it
    assert not (tmp_path / "deep").exists()
    assert not (tmp_path / "many").exists()


def test_concurrent_extraction_never_writes_over_a_file(tmp_path: Path) -> None:
    (tmp_path / "app").mkdir()
    (tmp_path / "app" / "run").write_bytes(b"mine")
    with archive(*mixed_archive()) as tar, pytest.raises(FileExistsError):
        tarballs.extract_concurrently(tar, tmp_path, lambda member: None, 3)
    assert (tmp_path / "app" / "run").read_bytes() == b"mine"
