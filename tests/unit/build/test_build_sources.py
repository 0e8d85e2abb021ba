"""Unpacking a pushed source as root: size limits (decompression bombs), links that would lead
out of the app, devices, and members written through links, however the archive orders them."""

from __future__ import annotations

import io
import re
import tarfile
from pathlib import Path

import pytest

from kapal.build.process import BuildFailed
from kapal.build.sources import extract
from kapal.domain.archive import ArchiveRefused, MemberGuard

Member = tuple[str, str, str]  # (kind, name, data or link target)


def member(kind: str, name: str, data: str = "") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.mode = 0o644
    if kind == "file":
        info.size = len(data.encode())
    elif kind == "dir":
        info.type, info.mode = tarfile.DIRTYPE, 0o755
    elif kind == "symlink":
        info.type, info.linkname = tarfile.SYMTYPE, data
    elif kind == "hardlink":
        info.type, info.linkname = tarfile.LNKTYPE, data
    elif kind == "chr":
        info.type, info.devmajor, info.devminor = tarfile.CHRTYPE, 1, 3
    elif kind == "fifo":
        info.type = tarfile.FIFOTYPE
    return info


def tarball(tmp_path: Path, members: list[Member]) -> Path:
    path = tmp_path / "source.tar.gz"
    with tarfile.open(path, "w:gz") as tar:
        for kind, name, data in members:
            info = member(kind, name, data)
            tar.addfile(info, io.BytesIO(data.encode()) if kind == "file" else None)
    return path


def unpack(tmp_path: Path, members: list[Member], max_bytes: int = 10_000_000) -> Path:
    dest = tmp_path / "build"
    extract(tarball(tmp_path, members), dest, max_bytes)
    return dest


def refusal(tmp_path: Path, members: list[Member], max_bytes: int = 10_000_000) -> str:
    with pytest.raises(BuildFailed) as failed:
        unpack(tmp_path, members, max_bytes)
    return failed.value.message


def test_a_decompression_bomb_stops_at_the_limit(tmp_path: Path) -> None:
    path = tmp_path / "bomb.tar.gz"
    with tarfile.open(path, "w:gz") as tar:
        for n in range(4):  # 4 MB of zeros, a few kB compressed
            info = tarfile.TarInfo(f"zeros{n}")
            info.size = 1024 * 1024
            tar.addfile(info, io.BytesIO(bytes(info.size)))
    assert path.stat().st_size < 64 * 1024
    dest = tmp_path / "build"
    with pytest.raises(BuildFailed) as failed:
        extract(path, dest, 2 * 1024 * 1024 + 4096)
    assert failed.value.message == (
        "The source is larger than 2.0M when unpacked: refusing to unpack it further."
    )
    # Refused before it was written: never more than the limit on disk.
    assert sum(p.stat().st_size for p in dest.iterdir()) <= 2 * 1024 * 1024


def test_many_empty_files_count_too(tmp_path: Path) -> None:
    members = [("file", f"f{n}", "") for n in range(300)]
    assert "larger than" in refusal(tmp_path, members, max_bytes=100 * 512)


@pytest.mark.parametrize(
    ("members", "reason"),
    [
        ([("symlink", "passwd", "/etc/passwd")], "'passwd' is a link to an absolute path"),
        ([("symlink", "up", "../../etc")], "'up' is a link to outside the directory"),
        ([("dir", "a", ""), ("symlink", "a/up", "../..")], "'a/up' is a link to outside"),
        ([("hardlink", "passwd", "/etc/passwd")], "'passwd' is a hard link to '/etc/passwd'"),
        ([("hardlink", "h", "../x")], "'h' is a hard link to '../x', not a file before it"),
        ([("chr", "null", "")], "'null' is a special file"),
        ([("fifo", "pipe", "")], "'pipe' is a special file"),
        ([("file", "../x", "x")], "'../x' is outside the directory"),
        ([("file", "/etc/x", "x")], "'/etc/x' is outside the directory"),
        ([("file", "a/../../x", "x")], "'a/../../x' is outside the directory"),
        # Written through a link, even one that stays inside.
        ([("dir", "d", ""), ("symlink", "l", "d"), ("file", "l/x", "x")], "'l/x' is under 'l'"),
        # A link replaced, or replacing.
        ([("symlink", "l", "x"), ("file", "l", "x")], "'l' replaces an earlier member"),
        ([("file", "f", "x"), ("symlink", "f", "g")], "'f' replaces an earlier member"),
        ([("dir", "d", ""), ("symlink", "d", "e")], "'d' replaces an earlier member"),
        # A link that is safe now but would lead out once a later member makes x a link to ".".
        ([("symlink", "l", "x/.."), ("symlink", "x", ".")], "'l' is a link through 'x'"),
        # A chain of links, each one inside on its own.
        (
            [("dir", "a", ""), ("symlink", "a/self", "."), ("symlink", "out", "a/self/../..")],
            "'out' is a link to outside",
        ),
    ],
)
def test_unsafe_members_are_refused(tmp_path: Path, members: list[Member], reason: str) -> None:
    message = refusal(tmp_path, members)
    assert message.startswith("Refusing to unpack the source: "), message
    assert reason in message
    assert not (tmp_path / "x").exists() and not (tmp_path / "etc").exists()


def test_a_link_leaving_the_single_top_directory_is_refused(tmp_path: Path) -> None:
    # Inside while app/ is there; outside once app/ is taken as the app root.
    members = [("dir", "app", ""), ("file", "app/y", "y"), ("symlink", "app/x", "../app/y")]
    message = refusal(tmp_path, members)
    assert message == (
        "Refusing to unpack the source: a link in it leads out of its top directory."
    )


def test_links_inside_the_app_are_kept(tmp_path: Path) -> None:
    dest = unpack(
        tmp_path,
        [
            ("dir", "app", ""),
            ("dir", "app/assets", ""),
            ("file", "app/assets/site.css", "body {}"),
            ("symlink", "app/static", "assets"),
            ("dir", "app/sub", ""),
            ("symlink", "app/sub/css", "../assets/site.css"),
            ("hardlink", "app/copy.css", "app/assets/site.css"),
        ],
    )
    assert (dest / "static" / "site.css").read_text() == "body {}"
    assert (dest / "sub" / "css").read_text() == "body {}"
    assert (dest / "copy.css").read_text() == "body {}"


def test_the_guard_follows_links_through_links() -> None:
    guard = MemberGuard()
    for kind, name, data in [("dir", "a", ""), ("dir", "a/b", ""), ("symlink", "up", "a/b")]:
        guard.check(member(kind, name, data))
    guard.check(member("symlink", "ok", "up/../.."))  # a/b/../.. is the root: still inside
    with pytest.raises(ArchiveRefused, match="'bad' is a link to outside"):
        guard.check(member("symlink", "bad", "up/../../.."))
    loop = MemberGuard()
    loop.check(member("symlink", "p", "q"))
    loop.check(member("symlink", "q", "p"))
    with pytest.raises(ArchiveRefused, match="too many links"):
        loop.check(member("symlink", "r", "p/x"))


def test_links_out_are_allowed_for_slugs_but_nothing_goes_through_them() -> None:
    guard = MemberGuard(links_out=True)
    guard.check(member("dir", ".venv/bin", ""))
    guard.check(member("symlink", ".venv/bin/python", "/usr/bin/python3"))
    guard.check(member("symlink", "etc", "/etc"))
    with pytest.raises(ArchiveRefused, match=re.escape("'etc/cron.d/x' is under 'etc'")):
        guard.check(member("file", "etc/cron.d/x", "x"))
    with pytest.raises(ArchiveRefused, match="special file"):
        guard.check(member("chr", "null"))
