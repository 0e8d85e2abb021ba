"""Finding the Pythons on offer: python3.N in the searched directories and the configured one,
each real interpreter once, only those the build user can run, with the version they report.

Stand-in interpreters are shell scripts that print what a Python would."""

from __future__ import annotations

import asyncio
import os
import pwd
from pathlib import Path

from kapal.build.python.interpreters import available, candidates, runnable
from kapal.build.python.versions import Interpreter
from kapal.system_users import RunAs

ENV = {"PATH": "/usr/bin:/bin"}


def fake_python(path: Path, version: str, mode: int = 0o755) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    numbers = version.split("rc")[0]
    path.write_text(f"#!/bin/sh\necho {numbers} {version}\n")
    path.chmod(mode)
    return path


def nobody() -> RunAs:
    entry = pwd.getpwnam("nobody")
    return RunAs("nobody", entry.pw_uid, entry.pw_gid)


def test_candidates_are_python3_n_once_each_configured_first(tmp_path: Path) -> None:
    local, usr = tmp_path / "local", tmp_path / "usr"
    fake_python(usr / "python3.11", "3.11.2")
    fake_python(local / "python3.13", "3.13.1")
    for name in ("python3", "python3.11-config", "python3.12m", "python", "python3.x"):
        fake_python(usr / name, "3.11.2")
    (usr / "python3.12").symlink_to(usr / "python3.11")  # the same interpreter twice
    found = candidates(str(usr / "python3"), [local, usr, tmp_path / "missing"])
    assert found == [usr / "python3", local / "python3.13", usr / "python3.11"]
    assert candidates(str(usr / "python3.11"), [usr]) == [usr / "python3.11"]


def test_only_what_the_build_user_can_run_is_offered(open_dir: Path) -> None:
    tmp_path = open_dir  # pytest's own is 0700: nobody could not reach anything in it
    shared = fake_python(tmp_path / "bin" / "python3.12", "3.12.4")
    private = fake_python(tmp_path / "bin" / "python3.13", "3.13.1", mode=0o750)
    hidden = fake_python(tmp_path / "root" / "python3.11", "3.11.2")
    (tmp_path / "root").chmod(0o700)  # like /root
    assert runnable([shared, private, hidden], nobody()) == [shared]
    assert runnable([tmp_path / "bin"], None) == []


def test_versions_are_asked_and_broken_interpreters_left_out(tmp_path: Path) -> None:
    bin_dir = tmp_path / "bin"
    fake_python(bin_dir / "python3.12", "3.12.4")
    fake_python(bin_dir / "python3.14", "3.14.0rc1")
    (bin_dir / "python3.9").write_text("#!/bin/sh\nexit 1\n")
    (bin_dir / "python3.9").chmod(0o755)
    (bin_dir / "python3.10").write_text("#!/bin/sh\necho 'not a version'\n")
    (bin_dir / "python3.10").chmod(0o755)
    found = asyncio.run(available(str(tmp_path / "nowhere"), ENV, None, [bin_dir]))
    assert sorted(found, key=lambda i: i.path) == [
        Interpreter(str(bin_dir / "python3.12"), (3, 12, 4), "3.12.4"),
        Interpreter(str(bin_dir / "python3.14"), (3, 14, 0), "3.14.0rc1"),
    ]


def test_the_machines_python_is_found() -> None:
    found = asyncio.run(available("/usr/bin/python3", ENV, None))
    assert found[0].path == "/usr/bin/python3"
    assert os.path.realpath("/usr/bin/python3") not in [i.path for i in found]
