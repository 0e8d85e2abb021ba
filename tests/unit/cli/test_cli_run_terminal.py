"""`kapal run bash` typed at a real terminal: the CLI runs in a pseudo-terminal of its own,
against an HTTP stand-in for the API and a TCP stand-in for the agent's rendezvous. Keys go
out as typed (raw mode: no line editing, Ctrl-C does not stop the CLI), resizes go in-band,
the dyno's status is the CLI's, and the terminal is as it was afterwards."""

from __future__ import annotations

import fcntl
import json
import os
import select
import socket
import subprocess
import sys
import termios
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from kapal.domain.rendezvous import resize_sequence, status_trailer
from kapal.runtime.terminal import set_size

SECRET = "0637d93403a649db99b5e6a1d10dfe27"


class Agent:
    """The rendezvous stand-in: greets one client, records what it sends, answers when told."""

    def __init__(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.listener.settimeout(30)
        self.received = bytearray()
        self.secret_line = b""
        self.conn: socket.socket | None = None
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    @property
    def port(self) -> int:
        return int(self.listener.getsockname()[1])

    def _serve(self) -> None:
        conn, _ = self.listener.accept()
        self.conn = conn
        self.secret_line = conn.recv(1024)
        conn.sendall(b"rendezvous\r\n")
        while chunk := conn.recv(1024):
            self.received.extend(chunk)

    def wait_for(self, data: bytes) -> None:
        deadline = time.monotonic() + 20
        while data not in self.received:
            assert time.monotonic() < deadline, f"no {data!r} in {bytes(self.received)!r}"
            time.sleep(0.01)

    def end(self, output: bytes, status: int) -> None:
        assert self.conn is not None
        self.conn.sendall(output + status_trailer(status))
        self.conn.shutdown(socket.SHUT_WR)  # the agent closes once the client has gone

    def close(self) -> None:
        self.listener.close()
        if self.conn is not None:
            self.conn.close()


@pytest.fixture
def agent() -> Iterator[Agent]:
    server = Agent()
    yield server
    server.close()


@pytest.fixture
def api(agent: Agent) -> Iterator[tuple[str, list[Any]]]:
    """The API stand-in: POST /apps/demo/dynos answers with the agent's attach URL."""
    bodies: list[Any] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            assert self.path == "/apps/demo/dynos"
            bodies.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            url = f"rendezvous://127.0.0.1:{agent.port}/{SECRET}"
            reply = json.dumps({"name": "run.1234", "size": "Eco", "attach_url": url}).encode()
            self.send_response(201)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(reply)))
            self.end_headers()
            self.wfile.write(reply)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", bodies
    server.shutdown()
    server.server_close()


def controlling_terminal() -> Callable[[], None]:
    """The child's preexec: its stdin (the pty) becomes its controlling terminal, so that a
    resize of the pty signals it (start_new_session made it a session leader first)."""
    return lambda: fcntl.ioctl(0, termios.TIOCSCTTY, 0)


def read_all(master: int, quiet: float = 0.3) -> bytes:
    output = b""
    while select.select([master], [], [], quiet)[0]:
        try:
            chunk = os.read(master, 65536)
        except OSError:
            break
        if not chunk:
            break
        output += chunk
    return output


def test_run_bash_from_a_terminal(tmp_path: Path, agent: Agent, api: tuple[str, list[Any]]) -> None:
    url, bodies = api
    master, slave = os.openpty()
    set_size(master, (30, 100))
    before = termios.tcgetattr(slave)
    env = {
        "PATH": os.environ["PATH"],
        "HOME": str(tmp_path),
        "KAPAL_API_URL": url,
        "KAPAL_API_KEY": "token",
        "TERM": "xterm-test",
    }
    cli = subprocess.Popen(
        [sys.executable, "-m", "kapal.entrypoints.cli", "run", "-a", "demo", "bash"],
        stdin=slave,
        stdout=slave,
        stderr=slave,
        env=env,
        start_new_session=True,
        preexec_fn=controlling_terminal(),
    )
    try:
        agent.wait_for(resize_sequence((30, 100)))  # sent as the session starts
        assert agent.secret_line == f"{SECRET} exit-status\r\n".encode()
        assert bodies == [
            {
                "command": "bash",
                "attach": True,
                "tty": True,
                "env": {"TERM": "xterm-test", "COLUMNS": "100", "LINES": "30"},
            }
        ]

        os.write(master, b"ab")  # raw: each key goes at once, no Enter needed
        agent.wait_for(b"ab")
        os.write(master, b"\x03")  # Ctrl-C is for the dyno
        agent.wait_for(b"ab\x03")
        time.sleep(0.2)
        assert cli.poll() is None

        set_size(master, (40, 120))  # the terminal is resized: SIGWINCH to the CLI
        agent.wait_for(resize_sequence((40, 120)))

        agent.end(b"remote output\r\n", 7)
        assert cli.wait(timeout=20) == 7
        output = read_all(master)
    finally:
        if cli.poll() is None:
            cli.kill()
            cli.wait()
    assert b"Running bash on \xe2\xac\xa2 demo... up, run.1234 (Eco)" in output
    assert output.endswith(b"remote output\r\n")
    assert termios.tcgetattr(slave) == before  # raw mode is undone
    os.close(slave)
    os.close(master)
