"""The build's workspace when an unprivileged user runs the build steps: the build directory
and the app's cache are given to that user, and what the platform writes there afterwards is
written without following anything the user's code may have left in place (links)."""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import stat
from pathlib import Path

from kapal.build.process import BuildFailed
from kapal.system_users import RunAs

log = logging.getLogger(__name__)


def hand_over(run_as: RunAs, build_dir: Path, cache_dir: Path) -> None:
    """Give the build directory and the cache to `run_as` (blocking: run it in a thread)."""
    for path in (build_dir, cache_dir):
        blocked = run_as.unreachable(path.parent)  # the directory itself is handed over
        if blocked is not None:
            log.error("user %s cannot reach %s: `chmod o+x %s`", run_as.name, path, blocked)
            raise BuildFailed(
                f"The build directory cannot be reached by user {run_as.name}, "
                "which runs the build (see Kapal's log)."
            )
    # Each is walked once: hand_over works bottom-up, so a top directory owned by the user
    # means all of it is. The build directory is root's when freshly unpacked (a second
    # buildpack finds it handed over); a cache from before this user existed is root's.
    for path in (build_dir, cache_dir):
        if not run_as.owns(path):
            run_as.hand_over(path)


def read_app_file(root: Path, name: str, limit: int = 1024 * 1024) -> bytes | None:
    """The contents of the regular file `name` in `root` (the app), None if there is none.
    Read by the platform after the build user had the directory: a link, a pipe or a file
    over `limit` bytes is refused rather than followed, waited on or held in memory."""
    dir_fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
    try:
        try:
            fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK, dir_fd=dir_fd)
        except FileNotFoundError:
            return None
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                raise BuildFailed(f"{name} in the app is a link; make it a file.") from None
            raise
    finally:
        os.close(dir_fd)
    with os.fdopen(fd, "rb") as file:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise BuildFailed(f"{name} in the app is not a file.")
        data = file.read(limit + 1)
    if len(data) > limit:
        raise BuildFailed(f"{name} in the app is larger than {limit // 1024} KB.")
    return data


def place_file(root: Path, directory: str, name: str, text: str) -> None:
    """Write root/directory/name (mode 0644), creating `directory` (0755) if needed, replacing
    whatever stands at `name`, and never following a link on the way."""
    flags = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW
    root_fd = os.open(root, flags)
    try:
        created = False
        with contextlib.suppress(FileExistsError):
            os.mkdir(directory, 0o755, dir_fd=root_fd)
            created = True
        try:
            dir_fd = os.open(directory, flags, dir_fd=root_fd)
        except OSError as exc:
            if exc.errno in (errno.ENOTDIR, errno.ELOOP):
                raise BuildFailed(f"{directory} in the app is not a directory.") from None
            raise
    finally:
        os.close(root_fd)
    try:
        if created:
            os.fchmod(dir_fd, 0o755)  # whatever the platform's umask
        try:
            os.unlink(name, dir_fd=dir_fd)
        except FileNotFoundError:
            pass
        except IsADirectoryError:
            raise BuildFailed(f"{directory}/{name} in the app is a directory.") from None
        fd = os.open(
            name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644, dir_fd=dir_fd
        )
        with os.fdopen(fd, "w", encoding="utf-8") as file:
            os.fchmod(fd, 0o644)
            file.write(text)
    finally:
        os.close(dir_fd)
