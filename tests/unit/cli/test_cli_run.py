"""`kapal run` against a real TCP rendezvous on 127.0.0.1, standing in for the agent."""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import click
import httpx
import pytest
from tests.unit.cli.cli_fakeapi import FakeApi, Kapal, assert_token, body

from kapal.cli.attach import Interrupts
from kapal.cli.run import build_command, parse_env

SECRET = "0637d93403a649db99b5e6a1d10dfe27"
MARK = "\uffff kapal-command-exit-status: ".encode()
Script = Callable[[socket.socket, bytes], None]


@dataclass
class Rendezvous:
    """Accepts one client, checks the secret, greets, then runs `script(conn, stdin)`."""

    script: Script
    listener: socket.socket = field(default_factory=socket.socket)
    received: bytearray = field(default_factory=bytearray)
    secret_line: bytes = b""

    def start(self) -> None:
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(1)
        self.listener.settimeout(60)  # a test that never connects must not hang stop()
        self.thread = threading.Thread(target=self._serve)
        self.thread.start()

    @property
    def port(self) -> int:
        return int(self.listener.getsockname()[1])

    def _serve(self) -> None:
        try:
            conn, _ = self.listener.accept()
        except TimeoutError:
            return
        with conn:
            reader = conn.makefile("rb")
            self.secret_line = reader.readline()
            conn.sendall(b"rendezvous\r\n")
            # The client's input ends with EOT; read it all before answering, as the agent does.
            while b"\x04" not in self.received:
                chunk = reader.read1(1024)
                if not chunk:
                    break
                self.received.extend(chunk)
            self.script(conn, bytes(self.received))

    def stop(self) -> None:
        self.thread.join()
        self.listener.close()


@pytest.fixture
def rendezvous() -> Iterator[Callable[[Script], Rendezvous]]:
    started: list[Rendezvous] = []

    def start(script: Script) -> Rendezvous:
        server = Rendezvous(script)
        server.start()
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


def one_off(fake: FakeApi, port: int | None, attach: bool = True) -> None:
    def create(request: httpx.Request) -> httpx.Response:
        url = f"rendezvous://127.0.0.1:{port}/{SECRET}" if attach else None
        dyno = {"id": "d", "name": "run.1234", "type": "run", "size": "Eco", "attach_url": url}
        return httpx.Response(201, json={**dyno, "state": "starting", "command": "x"})

    fake.on("POST", "/apps/demo/dynos", handler=create)


def test_build_command() -> None:
    assert build_command(("rake test",)) == "rake test"
    assert build_command(("echo", "hello world", "it's")) == "echo 'hello world' 'it'\"'\"'s'"


def test_run_streams_and_exits_with_the_status(
    kapal: Kapal, fake: FakeApi, rendezvous: Callable[[Script], Rendezvous]
) -> None:
    def dyno(conn: socket.socket, stdin: bytes) -> None:
        conn.sendall(b"you said: " + stdin.rstrip(b"\x04"))
        conn.sendall(MARK + b"3\n")

    server = rendezvous(dyno)
    one_off(fake, server.port)
    result = kapal("run", "-a", "demo", "--", "cat", "-n", input="hello\n")
    assert result.exit_code == 3, result.output
    assert result.stderr == "Running cat -n on ⬢ demo... up, run.1234 (Eco)\n"
    assert result.stdout == "you said: hello\n"
    assert server.secret_line == f"{SECRET} exit-status\r\n".encode()
    request = fake.one("POST", "/apps/demo/dynos")
    assert_token(request)
    # Input is not a terminal here: no TTY, as with Heroku's CLI.
    assert body(request) == {"command": "cat -n", "attach": True, "tty": False}


def test_options_after_the_command_belong_to_it(
    kapal: Kapal, fake: FakeApi, rendezvous: Callable[[Script], Rendezvous]
) -> None:
    server = rendezvous(lambda conn, _: conn.sendall(b"ok\n" + MARK + b"0\n"))
    one_off(fake, server.port)
    result = kapal("run", "-a", "demo", "-s", "basic", "ls", "-a", "--help", input="")
    assert result.exit_code == 0, result.output
    assert result.stdout == "ok\n"
    sent = body(fake.one("POST", "/apps/demo/dynos"))
    assert sent["command"] == "ls -a --help"
    assert sent["size"] == "basic"


def test_missing_exit_status_is_a_failure(
    kapal: Kapal, fake: FakeApi, rendezvous: Callable[[Script], Rendezvous]
) -> None:
    server = rendezvous(lambda conn, _: conn.sendall(b"killed\n"))
    one_off(fake, server.port)
    result = kapal("run", "-a", "demo", "sleep 100", input="")
    assert result.exit_code == 1
    assert result.stdout == "killed\n"
    assert "run.1234 ended without reporting an exit status" in result.stderr


def test_rendezvous_refused(kapal: Kapal, fake: FakeApi) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # bound, never listening: connections are refused
        one_off(fake, port)
        result = kapal("run", "-a", "demo", "bash", input="")
    assert result.exit_code == 1
    assert result.stderr.startswith("Running bash on ⬢ demo... !\n ▸    Could not connect to ")


def test_no_attach_url(kapal: Kapal, fake: FakeApi) -> None:
    one_off(fake, None, attach=False)
    result = kapal("run", "-a", "demo", "bash", input="")
    assert result.exit_code == 1
    assert "returned no attach URL for run.1234" in result.stderr


def test_run_detached(kapal: Kapal, fake: FakeApi) -> None:
    one_off(fake, None, attach=False)
    result = kapal("run:detached", "-a", "demo", "python", "manage.py", "migrate")
    assert result.exit_code == 0, result.output
    assert result.stderr == "Running python manage.py migrate on ⬢ demo... done, run.1234 (Eco)\n"
    assert result.stdout == ("Run kapal logs --app demo --dyno run.1234 to view the output.\n")
    assert body(fake.one("POST", "/apps/demo/dynos")) == {
        "command": "python manage.py migrate",
        "attach": False,
    }


def test_run_needs_a_command(kapal: Kapal, fake: FakeApi) -> None:
    assert kapal("run", "-a", "demo").exit_code == 2
    assert fake.requests == []


def test_parse_env_takes_heroku_syntax() -> None:
    assert parse_env(("A=1;B = two words", "C=x=y", "D=;")) == {
        "A": "1",
        "B": "two words",
        "C": "x=y",
        "D": "",
    }
    with pytest.raises(click.BadParameter, match="expected KEY=value, got 'oops'"):
        parse_env(("A=1;oops",))


def test_run_options_env_no_tty_exit_code(
    kapal: Kapal, fake: FakeApi, rendezvous: Callable[[Script], Rendezvous]
) -> None:
    server = rendezvous(lambda conn, _: conn.sendall(MARK + b"0\n"))
    one_off(fake, server.port)
    args = ("run", "-a", "demo", "--no-tty", "-x", "-e", "A=1;B=2", "--env", "C=3", "env")
    result = kapal(*args, input="")
    assert result.exit_code == 0, result.output
    assert body(fake.one("POST", "/apps/demo/dynos")) == {
        "command": "env",
        "attach": True,
        "tty": False,
        "env": {"A": "1", "B": "2", "C": "3"},
    }


def test_bad_env_is_refused_before_anything_is_run(kapal: Kapal, fake: FakeApi) -> None:
    result = kapal("run", "-a", "demo", "-e", "nothing", "env", input="")
    assert result.exit_code == 2
    assert "expected KEY=value" in result.stderr
    assert fake.requests == []


def test_four_quick_interrupts_leave_the_dyno() -> None:
    now = [0.0]
    interrupts = Interrupts(clock=lambda: now[0])
    assert not interrupts.typed(b"\x03\x03\x03")
    now[0] = 1.5  # too slow: those no longer count
    assert not interrupts.typed(b"\x03ls\x03")
    now[0] = 1.9
    assert not interrupts.typed(b"x")
    assert interrupts.typed(b"\x03\x03")
