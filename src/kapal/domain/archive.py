"""Rules for unpacking an untrusted tar archive (a pushed source, a slug) as root.

Each member is checked against the members before it, by name alone: the checks never ask the
file system, so what is already unpacked cannot fool them (tarfile's own filters resolve paths
with realpath, which links nested past PATH_MAX defeat: CVE-2025-4517 and relatives).

The rules: names stay inside; no member is written through a link or replaces an earlier
member; hard links point at earlier regular files; no devices or pipes; a size limit counts
each member's header block and data; with `links_out=False`, a symbolic link must resolve
inside, including through other links, now and whatever later members add.
"""

from __future__ import annotations

import tarfile

BLOCK = 512  # a tar header
MAX_HOPS = 40  # links followed while resolving one, like the kernel's limit

Parts = tuple[str, ...]


class ArchiveRefused(ValueError):
    """The archive is not unpacked; the message names the member and why."""


class ArchiveTooLarge(ArchiveRefused):
    pass


class MemberGuard:
    """Checks tarfile members in archive order; one guard per archive."""

    def __init__(self, max_bytes: int | None = None, *, links_out: bool = False) -> None:
        self.max_bytes = max_bytes
        self.links_out = links_out
        self.total = 0
        # Whether a link goes up to the archive's root on its way (`app/x -> ../app/y`): it
        # would lead outside once a single top directory is taken as the root.
        self.links_reach_root = False
        self._links: dict[Parts, str] = {}
        self._files: set[Parts] = set()
        self._dirs: set[Parts] = {()}

    def check(self, member: tarfile.TarInfo) -> None:
        """Raise ArchiveRefused unless `member` may be unpacked after those checked before."""
        self.total += BLOCK + max(member.size, 0)
        if self.max_bytes is not None and self.total > self.max_bytes:
            raise ArchiveTooLarge(f"unpacked, it is larger than {self.max_bytes} bytes")
        name = member.name
        parts = _parts(name)
        if parts is None:
            raise ArchiveRefused(f"{name!r} is outside the directory it is unpacked in")
        for end in range(1, len(parts)):
            above = parts[:end]
            if above in self._links or above in self._files:
                raise ArchiveRefused(f"{name!r} is under {'/'.join(above)!r}, not a directory")
        if member.isdir():
            if parts in self._links or parts in self._files:
                raise ArchiveRefused(f"{name!r} replaces an earlier member")
        elif parts in self._links or parts in self._files or parts in self._dirs:
            raise ArchiveRefused(f"{name!r} replaces an earlier member")
        if member.issym():
            if not self.links_out:
                self._resolve(parts[:-1], member.linkname, name, 0)
            self._links[parts] = member.linkname
        elif member.islnk():
            target = _parts(member.linkname)
            if target is None or target not in self._files:
                raise ArchiveRefused(
                    f"{name!r} is a hard link to {member.linkname!r}, not a file before it"
                )
        elif member.isreg():
            self._files.add(parts)
        elif not member.isdir():
            raise ArchiveRefused(f"{name!r} is a special file (device, pipe...)")
        for end in range(1, len(parts) + (1 if member.isdir() else 0)):
            self._dirs.add(parts[:end])

    def _resolve(self, base: Parts, target: str, name: str, hops: int) -> Parts:
        """Where the link `name` in `base` to `target` leads, refusing any way out."""
        if target.startswith("/"):
            raise ArchiveRefused(f"{name!r} is a link to an absolute path")
        stack = list(base)
        for part in target.split("/"):
            if part in ("", "."):
                continue
            if part == "..":
                # Only out of a known directory: a name not seen yet may become a link later.
                if not stack:
                    raise ArchiveRefused(f"{name!r} is a link to outside the directory")
                if tuple(stack) not in self._dirs:
                    through = "/".join(stack)
                    raise ArchiveRefused(
                        f"{name!r} is a link through {through!r}, not a directory before it"
                    )
                stack.pop()
                self.links_reach_root = self.links_reach_root or not stack
                continue
            stack.append(part)
            link = self._links.get(tuple(stack))
            if link is not None:
                if hops >= MAX_HOPS:
                    raise ArchiveRefused(f"{name!r} is a link through too many links")
                stack = list(self._resolve(tuple(stack[:-1]), link, name, hops + 1))
        return tuple(stack)


def require_utf8_names(member: tarfile.TarInfo) -> None:
    """Refuse a member whose name (or link target) is not UTF-8: such a name reaches an app
    as undecodable bytes (tarfile keeps them as surrogate escapes)."""
    for text in (member.name, member.linkname):
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            raw = text.encode("utf-8", "surrogateescape").decode("ascii", "backslashreplace")
            raise ArchiveRefused(
                f"the file name '{raw}' is not valid UTF-8; rename it (git mv) and push again"
            ) from None


def _parts(name: str) -> Parts | None:
    """The components of a member name (`./a//b/` -> (a, b)); None if it leaves the root."""
    if name.startswith("/"):
        return None
    parts: list[str] = []
    for part in name.split("/"):
        if part in ("", "."):
            continue
        if part == "..":
            return None  # even a/../b: GNU tar refuses such names too
        parts.append(part)
    return tuple(parts)
