"""Unpacking slugs once per release, and removing unpacked releases no longer used."""

from __future__ import annotations

import asyncio
import hashlib
import io
import os
import pwd
import stat
import tarfile
from pathlib import Path

import pytest

from kapal.runtime.slugs import SlugCache, SlugError, built_name
from kapal.system_users import RunAs


def make_slug(
    slugs_dir: Path, files: dict[str, str], symlinks: dict[str, str] | None = None
) -> str:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for name, text in files.items():
            data = text.encode()
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(data), 0o755
            tar.addfile(info, io.BytesIO(data))
        for name, target in (symlinks or {}).items():
            info = tarfile.TarInfo(name)
            info.type, info.linkname = tarfile.SYMTYPE, target
            tar.addfile(info)
    data = buffer.getvalue()
    digest = hashlib.sha256(data).hexdigest()
    slugs_dir.mkdir(parents=True, exist_ok=True)
    (slugs_dir / f"{digest}.tar.gz").write_bytes(data)
    return f"SHA256:{digest}"


def test_unpacks_once_per_release(tmp_path: Path) -> None:
    cache = SlugCache(tmp_path / "slugs", tmp_path / "dynos")
    checksum = make_slug(
        cache.slugs_dir,
        {"./app.py": "print(1)\n", "./.profile.d/x.sh": "true\n"},
        {"./.venv/bin/python": "/usr/bin/python3"},
    )

    async def scenario() -> tuple[Path, Path, Path]:
        # Three dynos of one release starting together share one extraction.
        return tuple(  # type: ignore[return-value]
            await asyncio.gather(*(cache.ensure("app1", 4, checksum) for _ in range(3)))
        )

    first, second, third = asyncio.run(scenario())
    assert first == second == third == tmp_path / "dynos" / "app1" / "v4"
    assert (first / "app.py").read_text() == "print(1)\n"
    assert os.access(first / ".profile.d" / "x.sh", os.X_OK)
    # The uv virtualenv's interpreter link points at the system Python: kept as it is.
    assert os.readlink(first / ".venv" / "bin" / "python") == "/usr/bin/python3"
    assert sorted(p.name for p in first.parent.iterdir()) == ["v4"]  # no temporary left
    (first / "marker").write_text("")
    asyncio.run(cache.ensure("app1", 4, checksum))
    assert (first / "marker").exists()  # not unpacked again


def test_checksum_mismatch_is_an_r17(tmp_path: Path) -> None:
    cache = SlugCache(tmp_path / "slugs", tmp_path / "dynos")
    checksum = make_slug(cache.slugs_dir, {"app.py": "x"})
    path = cache.slugs_dir / f"{checksum.removeprefix('SHA256:')}.tar.gz"
    other = make_slug(tmp_path / "other", {"app.py": "y"})
    path.write_bytes((tmp_path / "other" / f"{other.removeprefix('SHA256:')}.tar.gz").read_bytes())
    with pytest.raises(SlugError, match="R17"):
        asyncio.run(cache.ensure("app1", 1, checksum))
    assert list((tmp_path / "dynos" / "app1").iterdir()) == []


def test_missing_slug_and_unsafe_members(tmp_path: Path) -> None:
    cache = SlugCache(tmp_path / "slugs", tmp_path / "dynos")
    with pytest.raises(SlugError, match="missing"):
        asyncio.run(cache.ensure("app1", 1, "SHA256:" + "0" * 64))
    with pytest.raises(SlugError, match="checksum"):
        asyncio.run(cache.ensure("app1", 1, "MD5:abc"))
    evil = make_slug(cache.slugs_dir, {"../outside.txt": "x"})
    with pytest.raises(SlugError, match="unpack"):
        asyncio.run(cache.ensure("app1", 2, evil))
    assert not (tmp_path / "dynos" / "outside.txt").exists()


def test_prune_keeps_releases_in_use(tmp_path: Path) -> None:
    cache = SlugCache(tmp_path / "slugs", tmp_path / "dynos")
    checksum = make_slug(cache.slugs_dir, {"app.py": "x"})

    async def scenario() -> None:
        for version in (1, 2):
            await cache.ensure("app1", version, checksum)
        await cache.ensure("app2", 1, checksum)
        leftover = cache.dynos_dir / "app1" / ".v3.tmp-dead"  # an interrupted extraction
        leftover.mkdir()
        await cache.prune({("app1", 2)})

    asyncio.run(scenario())
    assert [p.name for p in (cache.dynos_dir / "app1").iterdir()] == ["v2"]
    assert not (cache.dynos_dir / "app2").exists()


def test_nothing_is_unpacked_through_a_link(tmp_path: Path) -> None:
    """The build's user made the slug's files: a link to / with a file under it would put
    that file anywhere on the machine when root unpacks it."""
    cache = SlugCache(tmp_path / "slugs", tmp_path / "dynos")
    target = tmp_path / "victim"
    target.mkdir()
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        link = tarfile.TarInfo("escape")
        link.type, link.linkname = tarfile.SYMTYPE, str(target)
        tar.addfile(link)
        file = tarfile.TarInfo("escape/planted")
        file.size = 1
        tar.addfile(file, io.BytesIO(b"x"))
    data = buffer.getvalue()
    digest = hashlib.sha256(data).hexdigest()
    cache.slugs_dir.mkdir()
    (cache.slugs_dir / f"{digest}.tar.gz").write_bytes(data)
    with pytest.raises(SlugError, match="'escape/planted' is under 'escape'"):
        asyncio.run(cache.ensure("app1", 1, f"SHA256:{digest}"))
    assert list(target.iterdir()) == []
    assert list((tmp_path / "dynos" / "app1").iterdir()) == []


root_only = pytest.mark.skipif(os.geteuid() != 0, reason="only root can give files to a user")


@root_only
def test_an_owner_gets_its_release_and_a_way_to_it(open_dir: Path) -> None:
    entry = pwd.getpwnam("nobody")
    owner = RunAs("nobody", entry.pw_uid, entry.pw_gid)
    dynos = open_dir / "dynos"
    dynos.mkdir(mode=0o700)
    plain = SlugCache(open_dir / "slugs", dynos)
    checksum = make_slug(plain.slugs_dir, {"app.py": "x"}, {".venv/bin/python": "/usr/bin/python3"})
    before = asyncio.run(plain.ensure("app1", 1, checksum))  # unpacked by an older agent
    assert before.stat().st_uid == 0

    cache = SlugCache(open_dir / "slugs", dynos, owner)
    first = asyncio.run(cache.ensure("app1", 1, checksum))
    second = asyncio.run(cache.ensure("app1", 2, checksum))
    for home in (first, second):
        for path in (home, home / "app.py", home / ".venv" / "bin" / "python"):
            assert path.lstat().st_uid == owner.uid, path
    for path in (dynos, dynos / "app1"):
        assert path.stat().st_uid == 0
        assert stat.S_IMODE(path.stat().st_mode) == 0o711
    assert owner.unreachable(second) is None


@root_only
def test_an_owner_kept_out_by_a_parent_is_an_r99(open_dir: Path) -> None:
    entry = pwd.getpwnam("nobody")
    owner = RunAs("nobody", entry.pw_uid, entry.pw_gid)
    closed = open_dir / "closed"
    closed.mkdir(mode=0o700)
    cache = SlugCache(open_dir / "slugs", closed / "dynos", owner)
    checksum = make_slug(cache.slugs_dir, {"app.py": "x"})
    with pytest.raises(SlugError, match=f"R99.*{closed} is not traversable by user nobody"):
        asyncio.run(cache.ensure("app1", 1, checksum))


def test_first_release_takes_the_builds_own_tree_and_stale_ones_go(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The build leaves the tree it packed as .built-<digest>: the slug's first release is
    that tree, renamed (setuid bits cleared); the next release of the same slug unpacks the
    archive. Trees no release took go after a while, whatever time the build set on them."""
    cache = SlugCache(tmp_path / "slugs", tmp_path / "dynos")
    checksum = make_slug(cache.slugs_dir, {"./app.py": "from the archive\n"})
    built = cache.dynos_dir / "app1" / built_name(checksum.removeprefix("SHA256:"))
    built.mkdir(parents=True)
    (built / "app.py").write_text("from the build\n")
    (built / "tool").write_text("")
    (built / "tool").chmod(0o4755)

    first = asyncio.run(cache.ensure("app1", 5, checksum))
    assert (first / "app.py").read_text() == "from the build\n"
    assert stat.S_IMODE((first / "tool").stat().st_mode) == 0o755
    assert not built.exists()
    second = asyncio.run(cache.ensure("app1", 6, checksum))
    assert (second / "app.py").read_text() == "from the archive\n"

    kept = cache.dynos_dir / "app1" / ".built-01"
    kept.mkdir()
    asyncio.run(cache.prune({("app1", 5), ("app1", 6)}))
    assert kept.exists()
    os.utime(kept, (4102444800, 4102444800))  # the year 2100: does not keep it
    monkeypatch.setattr("kapal.runtime.slugs.BUILT_KEPT", -1.0)
    asyncio.run(cache.prune({("app1", 5), ("app1", 6)}))
    assert not kept.exists()


def test_a_built_tree_with_a_special_file_is_not_taken(tmp_path: Path) -> None:
    cache = SlugCache(tmp_path / "slugs", tmp_path / "dynos")
    checksum = make_slug(cache.slugs_dir, {"./app.py": "from the archive\n"})
    built = cache.dynos_dir / "app1" / built_name(checksum.removeprefix("SHA256:"))
    built.mkdir(parents=True)
    os.mkfifo(built / "pipe")
    release = asyncio.run(cache.ensure("app1", 3, checksum))
    assert (release / "app.py").read_text() == "from the archive\n"
    assert not (release / "pipe").exists() and not built.exists()


@pytest.mark.skipif(os.geteuid() != 0, reason="only root can give files to the dynos' user")
def test_a_built_tree_is_given_to_the_apps_uid(open_dir: Path) -> None:
    """The build leaves some of root's files in its tree (.profile.d/python.sh): taken as a
    release, all of it is the app's."""
    uid = 1_299_990_201
    cache = SlugCache(open_dir / "slugs", open_dir / "dynos", RunAs.system())
    checksum = make_slug(cache.slugs_dir, {"./app.py": "x"})
    built = cache.dynos_dir / "app1" / built_name(checksum.removeprefix("SHA256:"))
    (built / ".profile.d").mkdir(parents=True)
    (built / ".profile.d" / "python.sh").write_text("true\n")
    (built / ".venv").symlink_to("/usr")
    release = asyncio.run(cache.ensure("app1", 3, checksum, uid))
    owners = {p.lstat().st_uid for p in [release, *release.rglob("*")]}
    assert owners == {uid}
