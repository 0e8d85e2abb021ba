"""Build subprocesses: what a short query may print, and what it may leave behind."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from pathlib import Path

import pytest

from kapal.build.output import BuildOutput
from kapal.build.process import BuildFailed, query, run_step

ENV = {"PATH": "/usr/bin:/bin"}


def test_a_query_that_prints_too_much_is_stopped() -> None:
    with pytest.raises(BuildFailed, match="printed more than 1 KB"):
        asyncio.run(query(["sh", "-c", "yes | head -c 2000000"], env=ENV, limit=1024))


def test_what_a_query_started_in_the_background_is_killed_with_it() -> None:
    status, stdout, _ = asyncio.run(
        query(["sh", "-c", "sleep 300 >/dev/null 2>&1 & echo $!"], env=ENV)
    )
    assert status == 0
    pid = int(stdout)
    deadline = time.monotonic() + 10
    while alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not alive(pid)


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def test_a_daemon_that_holds_the_output_does_not_hold_the_step(tmp_path: Path) -> None:
    """A step that leaves a process in a session of its own, still holding the step's
    output: the step ends soon after its main process (the build cgroup stops the daemon)."""
    pidfile = tmp_path / "daemon.pid"
    script = f"setsid sh -c 'echo $$ > {pidfile}; exec sleep 60' & echo started"
    out = BuildOutput(tmp_path / "build.log")
    try:
        status = asyncio.run(
            asyncio.wait_for(run_step(["sh", "-c", script], cwd=tmp_path, env=ENV, out=out), 30)
        )
    finally:
        out.close()
        deadline = time.monotonic() + 5
        while not pidfile.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        if pidfile.exists():
            os.kill(int(pidfile.read_text()), signal.SIGKILL)
    assert status == 0
    assert (tmp_path / "build.log").read_text() == "       started\n"


@pytest.mark.parametrize("loop", ["asyncio", "uvloop"])
def test_the_output_pipes_are_closed_on_either_loop(loop: str) -> None:
    """The pipes' read ends are closed by the loop's transports: through the file object on
    asyncio's loop, by libuv on uvloop's (whose second close, of the file object, must not
    close the number again: see _spawned)."""

    def run() -> tuple[int, str, str]:
        if loop == "uvloop":
            uvloop = pytest.importorskip("uvloop")
            return uvloop.run(query(["echo", "hi"], env=ENV))
        return asyncio.run(query(["echo", "hi"], env=ENV))

    run()  # the loop's own lasting descriptors (libuv's signal pipe) are made once
    before = set(os.listdir("/proc/self/fd"))
    assert run()[:2] == (0, "hi\n")
    assert set(os.listdir("/proc/self/fd")) <= before
