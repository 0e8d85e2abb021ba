"""One-off dynos against a running Kapal: `kapal run bash` typed at a real terminal, exit
statuses, `--env`, `--no-tty`, and `run:detached` output in the log stream."""

from __future__ import annotations

import fcntl
import os
import re
import select
import subprocess
import termios
import time

import pytest

from tests.e2e.kapal_server import KAPAL, KapalServer, new_user
from tests.e2e.test_tutorial import wait_for

pytestmark = pytest.mark.e2e


def typed(master: int, text: bytes, expect: bytes, seen: bytearray) -> None:
    """Type `text` at the terminal, then read until the screen shows `expect` (a regex)."""
    os.write(master, text)
    deadline = time.monotonic() + 60
    while not re.search(expect, seen):
        assert time.monotonic() < deadline, f"no {expect!r} in {bytes(seen)!r}"
        if select.select([master], [], [], 0.5)[0]:
            seen.extend(os.read(master, 65536))


def test_one_off_dynos(kapal_server: KapalServer) -> None:
    olga = new_user(kapal_server, "olga")
    olga.kapal("signup", "--email", "olga@example.com", input="correct horse 1\n")
    repo = olga.checkout("flask-hello", "run-demo")
    olga.kapal("create", "run-demo", cwd=repo)
    olga.git("push", "kapal", "main", cwd=repo)

    # The status comes from the dyno even when the command ends its shell.
    assert olga.kapal("run", "exit 5", cwd=repo, check=False).returncode == 5
    piped = olga.kapal("run", "--no-tty", "-e", "A=1;B=2", "echo $A$B; tty", cwd=repo, check=False)
    assert (piped.returncode, piped.stdout) == (1, "12\nnot a tty\n"), piped.stderr

    detached = olga.kapal("run:detached", "echo detached-$((6 * 7))", cwd=repo)
    name = re.search(r"done, (run\.\d+)", detached.stderr)
    assert name is not None, detached.stderr
    assert f"--dyno {name[1]}" in detached.stdout
    wait_for(lambda: "detached-42" in olga.kapal("logs", "--dyno", name[1], cwd=repo).stdout)

    # `kapal run bash` at a terminal: the CLI in a pseudo-terminal of its own.
    master, slave = os.openpty()
    fcntl.ioctl(master, termios.TIOCSWINSZ, b"\x1e\x00\x64\x00\x00\x00\x00\x00")  # 30 x 100
    cli = subprocess.Popen(
        [KAPAL, "run", "bash"],
        cwd=repo,
        env={**olga.env, "TERM": "xterm"},
        stdin=slave,
        stdout=slave,
        stderr=slave,
        start_new_session=True,
        preexec_fn=lambda: fcntl.ioctl(0, termios.TIOCSCTTY, 0),
    )
    seen = bytearray()
    try:
        typed(master, b"", rb"(?s)up, run\.\d+.*[$#] ", seen)  # what is typed before, bash drops
        typed(master, b"PS1='dy''no$ '\r", rb"dyno\$ ", seen)
        typed(
            master,
            b"test -t 0 && echo term-$((1 + 1)); stty size\r",
            rb"term-2\r\n30 100\r\n",
            seen,
        )
        fcntl.ioctl(master, termios.TIOCSWINSZ, b"\x28\x00\x78\x00\x00\x00\x00\x00")  # 40 x 120
        typed(master, b"stty size\r", rb"\r40 120\r\n", seen)
        typed(master, b"sleep 100\r", rb"sleep 100\r\n", seen)
        time.sleep(1)  # sleep is the terminal's foreground process by now
        typed(master, b"\x03", rb"\^C", seen)
        typed(master, b"echo back-$((40 + 2))\r", rb"back-42\r\n", seen)
        os.write(master, b"exit 3\r")
        assert cli.wait(timeout=60) == 3, bytes(seen)
    finally:
        if cli.poll() is None:
            cli.kill()
            cli.wait()
        os.close(slave)
        os.close(master)
