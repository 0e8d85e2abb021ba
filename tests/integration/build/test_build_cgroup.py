"""A build's memory cgroup on this machine's real cgroup hierarchy (needs root and a memory
controller, as the platform does to cap builds)."""

from __future__ import annotations

import os
import subprocess
import time
import uuid
from dataclasses import replace
from pathlib import Path

import pytest

from kapal.build.cgroup import BuildCgroup
from kapal.system_users import RunAs

ALLOCATE = "import time\nblocks = []\nwhile True:\n    blocks.append(bytearray(8 << 20))\n"


@pytest.fixture
def cgroup() -> BuildCgroup:
    if os.geteuid() != 0:
        pytest.skip("only root makes cgroups")
    made = BuildCgroup.create(f"test-{uuid.uuid4().hex[:8]}", 64 * 1024**2)
    if made is None:
        pytest.skip("no memory cgroup can be made here")
    return made


def test_a_process_over_the_cap_is_killed_and_counted(cgroup: BuildCgroup) -> None:
    user = replace(RunAs.system(), enter=cgroup.join)
    try:
        assert not cgroup.oom_killed()
        result = subprocess.run(
            ["/usr/bin/python3", "-c", ALLOCATE], timeout=60, **user.spawn_options(0o022)
        )
        assert result.returncode == -9  # SIGKILL from the OOM killer
        assert cgroup.oom_killed()
    finally:
        cgroup.remove()
    assert not cgroup.path.exists()


def test_removing_it_stops_what_a_build_left_running(cgroup: BuildCgroup) -> None:
    user = replace(RunAs.system(), enter=cgroup.join)
    # A daemon: its own session, so the build step's process-group kill would miss it.
    subprocess.run(
        ["/usr/bin/setsid", "-f", "/bin/sleep", "300"], check=True, **user.spawn_options(0o022)
    )
    deadline = time.monotonic() + 5
    while not cgroup.procs.read_text().split() and time.monotonic() < deadline:
        time.sleep(0.05)
    (pid,) = [int(p) for p in cgroup.procs.read_text().split()]
    cgroup.remove()
    assert not cgroup.path.exists()
    assert gone(pid)


def gone(pid: int) -> bool:
    """No such process, or only its exit status is left (a zombie)."""
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except FileNotFoundError:
            return True
        if state == "Z":
            return True
        time.sleep(0.05)
    return False
