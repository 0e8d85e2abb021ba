"""Slugs: the built app as a gzipped tarball, stored once under its SHA-256.

A slug's members are relative to the app root (`Procfile`, `.venv/bin/python`, ...), sorted by
name, with owner, group and mtime cleared, so the same build output gives the same bytes and so
the same file. It is found again as `<slugs_dir>/<hex>.tar.gz` from its checksum
`SHA256:<hex>`.

GNU tar writes the archive (three times faster than tarfile over a virtualenv's thousands of
small files); Python compresses, hashes and enforces the size limit on the way to disk.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import re
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from kapal.build.output import human_size
from kapal.build.process import BuildFailed

_CHECKSUM = re.compile(r"SHA256:([0-9a-f]{64})")
COMPRESS_LEVEL = 2  # slugs are built on every push; speed matters more than the last few %
# One fixed time for every member (1980-01-01, which zip files can still hold): a build's
# fresh files (pyvenv.cfg, scripts) would otherwise make every slug unique.
SLUG_MTIME = 315532800
PACK_TIMEOUT = 15 * 60.0
CHUNK = 1 << 20


@dataclass(frozen=True)
class StoredSlug:
    checksum: str  # "SHA256:<hex>"
    size: int
    path: Path


def slug_path(slugs_dir: Path, checksum: str) -> Path:
    """Where the slug with this checksum lives."""
    match = _CHECKSUM.fullmatch(checksum)
    if match is None:
        raise ValueError(f"not a slug checksum: {checksum!r}")
    return slugs_dir / f"{match[1]}.tar.gz"


def tar_command(build_dir: Path) -> list[str]:
    """GNU tar writing build_dir's contents to stdout, reproducibly."""
    names = sorted(os.listdir(build_dir))
    return [
        shutil.which("tar", path="/usr/bin:/bin") or "tar",
        "--create",
        "--file=-",
        "--format=gnu",
        "--sort=name",
        "--owner=0",
        "--group=0",
        "--numeric-owner",
        f"--mtime=@{SLUG_MTIME}",
        f"--directory={build_dir}",
        *(["--", *names] if names else ["--files-from=/dev/null"]),
    ]


class _Counting:
    """A write-only file that hashes, counts and refuses to grow past a limit."""

    def __init__(self, target: BinaryIO, limit: int) -> None:
        self.target = target
        self.limit = limit
        self.size = 0
        self.sha256 = hashlib.sha256()

    def write(self, data: bytes) -> int:
        self.size += len(data)
        if self.size > self.limit:
            raise BuildFailed(f"Compiled slug size is too large (max is {human_size(self.limit)}).")
        self.sha256.update(data)
        return self.target.write(data)

    def flush(self) -> None:
        self.target.flush()


class SlugStore:
    """Content-addressed slug files in one directory."""

    def __init__(self, slugs_dir: Path, max_bytes: int) -> None:
        self.slugs_dir = slugs_dir
        self.max_bytes = max_bytes

    def pack(self, build_dir: Path) -> StoredSlug:
        """Compress build_dir into the store (blocking: run it in a thread)."""
        self.slugs_dir.mkdir(parents=True, exist_ok=True)
        fd, temp_name = tempfile.mkstemp(dir=self.slugs_dir, prefix=".packing-", suffix=".tar.gz")
        temp = Path(temp_name)
        try:
            with os.fdopen(fd, "wb") as raw:
                counted = _Counting(raw, self.max_bytes)
                with gzip.GzipFile(
                    filename="", mode="wb", compresslevel=COMPRESS_LEVEL, fileobj=counted, mtime=0
                ) as gz:
                    _run_tar(build_dir, gz)
            checksum = f"SHA256:{counted.sha256.hexdigest()}"
            final = slug_path(self.slugs_dir, checksum)
            if final.exists():
                temp.unlink()  # the same slug is already stored
            else:
                temp.chmod(0o644)
                temp.replace(final)
            return StoredSlug(checksum, counted.size, final)
        except BaseException:
            temp.unlink(missing_ok=True)
            raise


def _run_tar(build_dir: Path, sink: gzip.GzipFile) -> None:
    deadline = time.monotonic() + PACK_TIMEOUT
    # A file, not a pipe, for tar's complaints: a full pipe would stall the archive.
    with tempfile.TemporaryFile() as errors:
        proc = subprocess.Popen(
            tar_command(build_dir),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=errors,
            env={"PATH": "/usr/bin:/bin", "LANG": "C"},
        )
        assert proc.stdout is not None
        try:
            while chunk := proc.stdout.read(CHUNK):
                sink.write(chunk)
                if time.monotonic() > deadline:
                    raise BuildFailed("Compressing the slug took too long.")
            if proc.wait(timeout=60) != 0:
                errors.seek(0)
                said = errors.read().decode("utf-8", "replace").strip().splitlines()
                raise BuildFailed(
                    f"Could not compress the slug: {said[-1] if said else 'tar failed'}"
                )
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            proc.stdout.close()
