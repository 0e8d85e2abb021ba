"""Source tarballs: received from an upload, then unpacked into a fresh build directory."""

from __future__ import annotations

import os
import tarfile
import tempfile
from collections.abc import AsyncIterable
from pathlib import Path
from typing import BinaryIO

from kapal import tarballs
from kapal.build.output import human_size
from kapal.build.process import BuildFailed
from kapal.domain.archive import (
    ArchiveRefused,
    ArchiveTooLarge,
    MemberGuard,
    require_utf8_names,
)


class SourceTooLarge(Exception):
    def __init__(self, limit: int) -> None:
        super().__init__(f"Source is larger than the limit of {human_size(limit)}.")


def _open_temp(directory: Path) -> tuple[BinaryIO, Path]:
    directory.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(dir=directory, prefix=".upload-")
    return os.fdopen(fd, "wb"), Path(name)


async def receive(target: Path, chunks: AsyncIterable[bytes], max_bytes: int) -> int:
    """Write an upload to target (atomically: all of it or nothing); its size."""
    file, temp = _open_temp(target.parent)
    size = 0
    try:
        with file:
            async for chunk in chunks:
                size += len(chunk)
                if size > max_bytes:
                    raise SourceTooLarge(max_bytes)
                file.write(chunk)
        temp.replace(target)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
    return size


def extract(tarball: Path, dest: Path, max_bytes: int) -> None:
    """Unpack a source tarball into dest; one top-level directory is taken as the app root.

    At most `max_bytes` unpacked (a small archive can unpack to terabytes); links may not lead
    out of the app; devices, pipes and names that are not UTF-8 are refused (see
    kapal.domain.archive)."""
    dest.mkdir(parents=True, exist_ok=True)
    guard = MemberGuard(max_bytes)

    def check(member: tarfile.TarInfo) -> None:
        require_utf8_names(member)
        guard.check(member)

    try:
        with tarfile.open(tarball, mode="r:*") as tar:
            tarballs.extract(tar, dest, check)
    except ArchiveTooLarge:
        raise BuildFailed(
            f"The source is larger than {human_size(max_bytes)} when unpacked: refusing to "
            "unpack it further."
        ) from None
    except ArchiveRefused as exc:
        raise BuildFailed(f"Refusing to unpack the source: {exc}.") from None
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise BuildFailed(f"Could not unpack the source: {exc}") from None
    entries = list(dest.iterdir())
    if len(entries) == 1 and entries[0].is_dir() and not entries[0].is_symlink():
        if guard.links_reach_root:
            raise BuildFailed(
                "Refusing to unpack the source: a link in it leads out of its top directory."
            )
        # Moved aside first: it may hold an entry with its own name.
        only = entries[0].rename(dest / ".kapal-source-root")
        for child in list(only.iterdir()):
            child.rename(dest / child.name)
        only.rmdir()
