"""Unpacking a tar archive member by member, after kapal.domain.archive has checked each one.

The same code on every Python: Debian 12's Python 3.11.2 predates tarfile's extraction
filters (3.11.4), so what they would do to a member is done here, and the filters are only
told to trust the already-sanitised member where they exist (to keep newer Pythons quiet).
"""

from __future__ import annotations

import copy
import os
import tarfile
from collections.abc import Callable
from pathlib import Path

HAS_FILTERS = hasattr(tarfile, "data_filter")

# Called with each member before it is unpacked; raises to refuse the archive.
Check = Callable[[tarfile.TarInfo], None]


def sanitised(member: tarfile.TarInfo) -> tarfile.TarInfo:
    """No setuid, setgid or sticky bits, no write for group and others, the owner can always
    read and write its files, and no ownership taken from the archive (root unpacks it)."""
    safe = copy.copy(member)
    if member.isreg() or member.islnk():
        safe.mode = (member.mode & 0o755) | 0o600
    elif member.isdir():
        safe.mode = (member.mode & 0o755) | 0o700
    safe.uid, safe.gid = os.geteuid(), os.getegid()
    safe.uname = safe.gname = ""
    return safe


def extract(tar: tarfile.TarFile, dest: Path, check: Check) -> None:
    """Unpack every member into dest, each checked first; works on streams (`r|gz`) too."""
    for member in tar:
        check(member)
        safe = sanitised(member)
        if HAS_FILTERS:
            tar.extract(safe, dest, filter="fully_trusted")
        else:
            tar.extract(safe, dest)
