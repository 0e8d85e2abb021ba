"""The mount system calls a sandbox is set up with, for the child between fork and exec (as
root, in a mount namespace of its own). Python 3.11 has no os.unshare and no mount: libc's, by
ctypes. Each call raises OSError with the path it failed on."""

from __future__ import annotations

import ctypes
import os
from pathlib import Path

CLONE_NEWNS = 0x00020000
CLONE_NEWUTS = 0x04000000
CLONE_NEWIPC = 0x08000000

MS_RDONLY = 1
MS_NOSUID = 2
MS_NODEV = 4
MS_NOEXEC = 8
MS_REMOUNT = 32
MS_BIND = 4096
MS_REC = 16384
MS_PRIVATE = 1 << 18

MNT_DETACH = 2
PR_SET_NO_NEW_PRIVS = 38
# pivot_root has no libc wrapper in Debian 12's glibc: the system call, by number.
_PIVOT_ROOT = {"x86_64": 155, "aarch64": 41}

_libc = ctypes.CDLL(None, use_errno=True)
# Declared here, in the parent, so the child between fork and exec only calls them.
_libc.unshare.argtypes = [ctypes.c_int]
_libc.mount.argtypes = [
    ctypes.c_char_p,
    ctypes.c_char_p,
    ctypes.c_char_p,
    ctypes.c_ulong,
    ctypes.c_char_p,
]
_libc.umount2.argtypes = [ctypes.c_char_p, ctypes.c_int]
_libc.prctl.argtypes = [
    ctypes.c_int,
    ctypes.c_ulong,
    ctypes.c_ulong,
    ctypes.c_ulong,
    ctypes.c_ulong,
]
_libc.syscall.argtypes = [ctypes.c_long, ctypes.c_char_p, ctypes.c_char_p]


def _check(result: int, what: str) -> None:
    if result != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, f"{what}: {os.strerror(errno)}")


def unshare(flags: int) -> None:
    _check(_libc.unshare(flags), "unshare")


def mount(source: str | None, target: Path, fstype: str | None, flags: int, data: str = "") -> None:
    _check(
        _libc.mount(
            source.encode() if source is not None else None,
            str(target).encode(),
            fstype.encode() if fstype is not None else None,
            flags,
            data.encode() if data else None,
        ),
        f"mount {target}",
    )


def private_namespace() -> None:
    """A mount namespace of our own whose mounts never propagate back to the machine."""
    unshare(CLONE_NEWNS)
    mount(None, Path("/"), None, MS_REC | MS_PRIVATE)


def tmpfs(target: Path, size: int, mode: int = 0o711) -> None:
    mount("tmpfs", target, "tmpfs", MS_NOSUID | MS_NODEV, f"size={size},mode={mode:o}")


def bind(source: Path, target: Path, *, writable: bool = False, devices: bool = False) -> None:
    """A bind mount, never setuid, device files only where asked (/dev's nodes)."""
    mount(str(source), target, None, MS_BIND | MS_REC)
    flags = MS_REMOUNT | MS_BIND | MS_NOSUID | (0 if devices else MS_NODEV)
    mount(None, target, None, flags | (0 if writable else MS_RDONLY))


def proc(target: Path, hidepid: int) -> None:
    mount("proc", target, "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, f"hidepid={hidepid}")


def remount_read_only(target: Path) -> None:
    """The mount at `target` itself read-only (what is mounted below keeps its flags)."""
    mount(None, target, None, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV)


def pivot_root(root: Path) -> None:
    """Make `root` (a mount point) the root of this mount namespace and drop the old one."""
    number = _PIVOT_ROOT.get(os.uname().machine)
    if number is None:
        raise OSError(f"pivot_root: unknown system call number on {os.uname().machine}")
    os.chdir(root)
    _check(_libc.syscall(number, b".", b"."), "pivot_root")
    _check(_libc.umount2(b".", MNT_DETACH), "umount the old root")
    os.chdir("/")


def no_new_privileges() -> None:
    """Nothing this process executes may gain privileges (setuid, file capabilities)."""
    _check(_libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), "prctl(NO_NEW_PRIVS)")


def overlay(lower: Path, upper: Path, work: Path, target: Path) -> None:
    for path in (lower, upper, work):
        if any(c in str(path) for c in ",:\\"):
            raise OSError(f"overlay cannot take the path {path}: it holds ',', ':' or '\\'")
    options = f"lowerdir={lower},upperdir={upper},workdir={work}"
    mount("overlay", target, "overlay", MS_NOSUID | MS_NODEV, options)
