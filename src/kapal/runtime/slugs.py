"""Slugs unpacked for running: once per release, at dynos_dir/<app_id>/v<version>/.

Extraction goes to a temporary directory that is renamed into place, so a directory that
exists is always complete. Directories no release in use needs any more are removed.

When dynos run as an unprivileged user (`owner`), an unpacked release is given to it, as the
app may write to its HOME (Heroku's /app is writable); the directories above are root's,
traversable (0711) but not listable.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import os
import secrets
import shutil
import stat
import tarfile
import time
from collections.abc import Collection
from pathlib import Path
from typing import BinaryIO

from kapal import tarballs
from kapal.domain.archive import ArchiveRefused, MemberGuard
from kapal.system_users import RunAs

logger = logging.getLogger(__name__)

Key = tuple[str, int]  # (app_id, release version)
# A build's tree no release took (its release phase failed, a newer push won) goes after this.
BUILT_KEPT = 3600.0
_CHUNK = 1 << 20


class SlugError(Exception):
    """The slug cannot be used; the message is shown in the app's log."""


class _HashingReader:
    """A file object that hashes what tarfile reads, so the slug is read only once."""

    def __init__(self, raw: BinaryIO) -> None:
        self.raw = raw
        self.digest = hashlib.sha256()

    def read(self, size: int = -1) -> bytes:
        data = self.raw.read(size)
        self.digest.update(data)
        return data

    def finish(self) -> str:
        while self.read(_CHUNK):
            pass
        return self.digest.hexdigest()


def _open_way(dynos_dir: Path, app_dir: Path, owner: RunAs) -> None:
    """Let the owner reach its releases, and fail clearly if something above keeps it out."""
    for directory in (dynos_dir, app_dir):
        directory.mkdir(parents=True, exist_ok=True)
        directory.chmod(0o711)
    blocked = owner.unreachable(app_dir)
    if blocked is not None:
        logger.error("user %s cannot reach %s: `chmod o+x %s`", owner.name, app_dir, blocked)
        raise SlugError(
            f"Error R99 (Platform error) -> {blocked} is not traversable by user "
            f"{owner.name}, which runs the dynos"
        )


def _extract(slug: Path, expected: str, target: Path, owner: RunAs | None = None) -> None:
    tmp = target.parent / f".{target.name}.tmp-{secrets.token_hex(4)}"
    tmp.mkdir(parents=True)
    try:
        with slug.open("rb") as raw:
            reader = _HashingReader(raw)
            # The build's user made the files: nothing unpacked through a link, no devices;
            # absolute symlinks stay (.venv/bin/python -> the system Python).
            guard = MemberGuard(links_out=True)
            with tarfile.open(fileobj=reader, mode="r|gz") as tar:  # type: ignore[call-overload]
                tarballs.extract_concurrently(tar, tmp, guard.check, _unpack_workers())
            actual = reader.finish()
        if actual != expected:
            raise SlugError(
                "Error R17 (Checksum error) -> Checksum does not match expected value. "
                f"Expected: SHA256:{expected} Actual: SHA256:{actual}"
            )
        if owner is not None:
            owner.hand_over(tmp)
        os.rename(tmp, target)
    except (OSError, tarfile.TarError, ArchiveRefused) as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        raise SlugError(f"Error R99 (Platform error) -> Failed to unpack the slug: {exc}") from exc
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _unpack_workers() -> int:
    """Threads creating a slug's files: creating files is kernel work, one core each."""
    return min(4, len(os.sched_getaffinity(0)))


def _prepare(slug: Path, expected: str, target: Path, dynos_dir: Path, owner: RunAs | None) -> bool:
    """Unpack unless done before; whether it unpacked. Blocking: run it in a thread."""
    try:
        if owner is not None:
            _open_way(dynos_dir, target.parent, owner)
        if target.is_dir():
            if owner is not None and not owner.owns(target):
                owner.hand_over(target)  # unpacked before dynos ran as the owner
            return False
    except OSError as exc:
        raise SlugError(f"Error R99 (Platform error) -> Failed to prepare the slug: {exc}") from exc
    if _adopt_built(target.parent / built_name(expected), target, owner):
        return True
    if not slug.is_file():
        raise SlugError(f"Error R99 (Platform error) -> Slug SHA256:{expected} is missing")
    _extract(slug, expected, target, owner)
    return True


def built_name(hexdigest: str) -> str:
    """The name, in an app's directory here, of the tree its build packed into the slug with
    this digest, left by the build so that the slug's first release need not unpack it."""
    return f".built-{hexdigest.lower()}"


def _adopt_built(built: Path, target: Path, owner: RunAs | None) -> bool:
    """Take the build's own tree as the release's (renamed: same file system, no copy), held
    to what unpacking the archive allows: only directories, files and links, no setuid or
    setgid bits, everything the owner's (the build left root's files in it too)."""
    try:
        if built.is_symlink() or not built.is_dir():
            return False
        problem = _sanitise(built, owner)
        if problem is not None:
            logger.warning("not using the built tree %s (%s): unpacking instead", built, problem)
            shutil.rmtree(built, ignore_errors=True)
            return False
        os.rename(built, target)
    except OSError as exc:
        logger.warning("cannot use the built tree %s, unpacking instead: %s", built, exc)
        return False
    return True


def _sanitise(tree: Path, owner: RunAs | None) -> str | None:
    """In one walk of `tree` (links not followed): clear setuid/setgid bits and give every
    entry to `owner`; what makes the tree unusable, if anything (a device, fifo or socket:
    the archive refuses them)."""
    for root, dirs, files in os.walk(tree):
        for name in (*dirs, *files):
            path = os.path.join(root, name)
            st = os.lstat(path)
            if not stat.S_ISLNK(st.st_mode):
                if not (stat.S_ISREG(st.st_mode) or stat.S_ISDIR(st.st_mode)):
                    return f"{path} is a special file"
                if st.st_mode & (stat.S_ISUID | stat.S_ISGID):
                    os.chmod(path, stat.S_IMODE(st.st_mode) & ~(stat.S_ISUID | stat.S_ISGID))
            if owner is not None and (st.st_uid, st.st_gid) != (owner.uid, owner.gid):
                os.lchown(path, owner.uid, owner.gid)
    if owner is not None:
        os.lchown(tree, owner.uid, owner.gid)
    return None


class SlugCache:
    def __init__(self, slugs_dir: Path, dynos_dir: Path, owner: RunAs | None = None) -> None:
        self.slugs_dir = slugs_dir
        self.dynos_dir = dynos_dir
        self.owner = owner
        self._locks: dict[Key, asyncio.Lock] = {}

    def path(self, app_id: str, version: int) -> Path:
        return self.dynos_dir / app_id / f"v{version}"

    async def ensure(
        self, app_id: str, version: int, checksum: str, uid: int | None = None
    ) -> Path:
        """The unpacked slug of a release, extracting it first if needed; with an owner, its
        files belong to the app's own `uid` (or the owner, for an app without one)."""
        algorithm, _, hexdigest = checksum.partition(":")
        if algorithm != "SHA256" or len(hexdigest) != 64 or not hexdigest.isalnum():
            raise SlugError(f"Error R99 (Platform error) -> Unknown slug checksum {checksum!r}")
        target = self.path(app_id, version)
        lock = self._locks.setdefault((app_id, version), asyncio.Lock())
        owner = self.owner.as_uid(uid) if self.owner is not None and uid else self.owner
        async with lock:
            if owner is not None or not target.is_dir():
                hexdigest = hexdigest.lower()
                slug = self.slugs_dir / f"{hexdigest}.tar.gz"
                if await asyncio.to_thread(
                    _prepare, slug, hexdigest, target, self.dynos_dir, owner
                ):
                    logger.info("unpacked slug of %s v%d", app_id, version)
        return target

    async def prune(self, in_use: Collection[Key]) -> None:
        """Remove unpacked releases not in `in_use` (and leftovers of interrupted runs)."""
        trash = []
        with contextlib.suppress(FileNotFoundError), os.scandir(self.dynos_dir) as app_dirs:
            for app_dir in list(app_dirs):
                if app_dir.is_dir(follow_symlinks=False):
                    trash += self._unused(Path(app_dir.path), in_use)
        if trash:
            await asyncio.to_thread(_remove, trash)

    def _unused(self, app_dir: Path, in_use: Collection[Key]) -> list[Path]:
        unused = []
        with os.scandir(app_dir) as entries:
            listing = list(entries)
        for entry in listing:
            name = entry.name
            if name.startswith(".trash-") or (
                name.startswith(".built-") and _older(entry, BUILT_KEPT)
            ):
                unused.append(Path(entry.path))
                continue
            version = name.lstrip(".").removeprefix("v").split(".", 1)[0]
            if not version.isdigit():
                continue
            key = (app_dir.name, int(version))
            lock = self._locks.get(key)
            if key in in_use or (lock is not None and lock.locked()):
                continue
            # Renamed now, on the loop, so ensure() never returns a directory being deleted.
            doomed = app_dir / f".trash-{name.lstrip('.')}-{secrets.token_hex(4)}"
            os.rename(entry.path, doomed)
            self._locks.pop(key, None)
            unused.append(doomed)
        return unused


def _older(entry: os.DirEntry[str], seconds: float) -> bool:
    """By its change time, which the build cannot set (it could set the modification time)."""
    try:
        return entry.stat(follow_symlinks=False).st_ctime < time.time() - seconds
    except OSError:
        return False


def _remove(paths: list[Path]) -> None:
    apps = {path.parent for path in paths}
    for path in paths:
        shutil.rmtree(path, ignore_errors=True)
    for app_dir in apps:
        # Only if empty: an extraction may have started in it meanwhile.
        with contextlib.suppress(OSError):
            app_dir.rmdir()
