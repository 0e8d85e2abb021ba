from __future__ import annotations

import os
import tarfile
from pathlib import Path

import pytest

from kapal.build.process import BuildFailed
from kapal.build.slugs import SlugStore, slug_path


def make_app(root: Path, body: str = "print('hi')\n") -> Path:
    (root / "pkg").mkdir(parents=True)
    (root / "Procfile").write_text("web: python app.py\n")
    (root / "app.py").write_text(body)
    (root / "pkg" / "b.py").write_text("")
    (root / "pkg" / "a.py").write_text("")
    (root / "bin").symlink_to("pkg")
    script = root / "run.sh"
    script.write_text("#!/bin/sh\n")
    script.chmod(0o755)
    return root


def test_same_content_is_stored_once(tmp_path: Path) -> None:
    store = SlugStore(tmp_path / "slugs", max_bytes=10_000_000)
    first = store.pack(make_app(tmp_path / "one"))
    second = store.pack(make_app(tmp_path / "two"))
    assert first.checksum == second.checksum
    assert first.checksum.startswith("SHA256:") and len(first.checksum) == 7 + 64
    assert first.path == slug_path(tmp_path / "slugs", first.checksum)
    assert sorted(p.name for p in (tmp_path / "slugs").iterdir()) == [first.path.name]
    assert first.size == first.path.stat().st_size


def test_different_content_gives_a_different_slug(tmp_path: Path) -> None:
    store = SlugStore(tmp_path / "slugs", max_bytes=10_000_000)
    first = store.pack(make_app(tmp_path / "one"))
    second = store.pack(make_app(tmp_path / "two", body="print('bye')\n"))
    assert first.checksum != second.checksum
    assert len(list((tmp_path / "slugs").iterdir())) == 2


def test_members_are_relative_sorted_and_ownerless(tmp_path: Path) -> None:
    app = make_app(tmp_path / "app")
    if os.geteuid() == 0:
        os.chown(app / "app.py", 1234, 1234)
    stored = SlugStore(tmp_path / "slugs", max_bytes=10_000_000).pack(app)
    with tarfile.open(stored.path) as tar:
        members = tar.getmembers()
    names = [m.name for m in members]
    assert names == ["Procfile", "app.py", "bin", "pkg", "pkg/a.py", "pkg/b.py", "run.sh"]
    by_name = {m.name: m for m in members}
    assert by_name["bin"].issym() and by_name["bin"].linkname == "pkg"
    assert by_name["run.sh"].mode & 0o111
    assert all(m.uid == 0 and m.gid == 0 and m.uname == "" for m in members)
    assert {m.mtime for m in members} == {315532800}


def test_a_slug_over_the_limit_is_refused_and_leaves_nothing(tmp_path: Path) -> None:
    app = tmp_path / "app"
    app.mkdir()
    (app / "big.bin").write_bytes(os.urandom(200_000))  # random data does not compress
    store = SlugStore(tmp_path / "slugs", max_bytes=100_000)
    with pytest.raises(BuildFailed, match=r"too large \(max is 98K\)"):
        store.pack(app)
    assert list((tmp_path / "slugs").iterdir()) == []


def test_slug_path_only_takes_sha256_checksums(tmp_path: Path) -> None:
    digest = "ab" * 32
    assert slug_path(tmp_path, f"SHA256:{digest}") == tmp_path / f"{digest}.tar.gz"
    for bad in ("SHA256:../../etc/passwd", f"MD5:{digest}", digest, f"SHA256:{digest.upper()}"):
        with pytest.raises(ValueError):
            slug_path(tmp_path, bad)
