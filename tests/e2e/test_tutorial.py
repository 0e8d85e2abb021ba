"""Heroku's "Getting Started with Python", step by step, against a running Kapal:
the real CLI, real `git push` over HTTP, real dynos behind the real router."""

from __future__ import annotations

import contextlib
import re
import socket
import threading
import time

import httpx
import pytest

from tests.e2e.kapal_server import KapalServer, User, new_user, wait_for

pytestmark = pytest.mark.e2e


def status_of(user: User, app: str, path: str = "/") -> httpx.Response:
    return user.get(app, path)


@pytest.fixture(scope="module")
def alice(kapal_server: KapalServer) -> User:
    user = new_user(kapal_server, "alice")
    out = user.kapal("signup", "--email", "alice@example.com", input="correct horse 1\n")
    assert "alice@example.com" in out.stdout
    netrc = (user.home / ".netrc").read_text()
    assert "machine localhost" in netrc
    assert oct((user.home / ".netrc").stat().st_mode & 0o777) == "0o600"
    return user


def test_flask_tutorial(alice: User) -> None:
    repo = alice.checkout("flask-hello")
    assert alice.kapal("whoami").stdout.strip() == "alice@example.com"

    created = alice.kapal("create", "hello-flask", cwd=repo)
    # Heroku's CLI prints status lines on stderr and data on stdout; Kapal's does too.
    assert "Creating app... done, ⬢ hello-flask" in created.stderr
    port = alice.server.ports["router"]
    assert f"http://hello-flask.localhost:{port}/ | {alice.server.api_url}/hello-flask.git" in (
        created.stdout
    )
    assert alice.git("remote", "get-url", "kapal", cwd=repo).stdout.strip() == (
        f"{alice.server.api_url}/hello-flask.git"
    )

    started = time.monotonic()
    push = alice.git("push", "kapal", "main", cwd=repo)
    for expected in (
        "remote: -----> Python app detected",
        "remote: -----> Installing dependencies with uv",
        "remote: -----> Discovering process types",
        "Procfile declares types -> web",
        "remote: -----> Compressing...",
        "remote: -----> Launching...",
        "Released v3",
        f"http://hello-flask.localhost:{port}/ deployed to Kapal",
    ):
        assert expected in push.stderr, push.stderr

    page = wait_for(lambda: (r := status_of(alice, "hello-flask")).status_code == 200 and r)
    answered = time.monotonic() - started
    print(f"\ngit push to first 200 from the Flask app: {answered:.1f}s")
    assert "Hello from Kapal" in page.text
    headers = status_of(alice, "hello-flask", "/headers").json()
    lowered = {k.lower(): v for k, v in headers.items()}
    assert lowered["x-forwarded-for"] == "127.0.0.1"
    assert lowered["x-forwarded-proto"] == "http"
    assert len(lowered["x-request-id"]) >= 20
    assert lowered["x-request-start"].isdigit()

    ps = alice.kapal("ps", "-a", "hello-flask")
    assert re.search(r"=== web \(Eco\): .*\(1\)", ps.stdout), ps.stdout
    assert re.search(r"web\.1: up \d{4}/\d\d/\d\d \d\d:\d\d:\d\d \+0000 \(~ \d+s ago\)", ps.stdout)

    logs = wait_for(
        lambda: (
            (out := alice.kapal("logs", "-n", "200", cwd=repo).stdout)
            and "kapal[router]: at=info method=GET" in out
            and out
        )
    )
    assert re.search(
        r"^\S+\+00:00 app\[api\]: Release v3 created by user alice@example.com", logs, re.M
    )
    assert "kapal[web.1]: State changed from starting to up" in logs
    assert "kapal[web.1]: Starting process with command" in logs
    assert re.search(
        r'kapal\[router\]: at=info method=GET path="/" host=hello-flask\.localhost', logs
    )
    assert "dyno=web.1" in logs and "status=200" in logs
    assert "app[web.1]:" in logs  # gunicorn's own output

    # Scale to zero: the router answers with the application error page and H14.
    scaled = alice.kapal("ps:scale", "web=0", cwd=repo)
    assert "now running web at 0:Eco" in scaled.stderr
    down = wait_for(lambda: (r := status_of(alice, "hello-flask")).status_code == 503 and r)
    assert "kapal logs --tail" in down.text
    wait_for(
        lambda: 'code=H14 desc="No web processes running"' in alice.kapal("logs", cwd=repo).stdout
    )
    alice.kapal("ps:scale", "web=1", cwd=repo)
    wait_for(lambda: status_of(alice, "hello-flask").status_code == 200)

    # Config vars: a new release, the dynos restart with the value.
    set_ = alice.kapal("config:set", "GREETING=Selamat datang", cwd=repo)
    assert re.search(r"Setting GREETING and restarting ⬢ hello-flask\.\.\. done, v4", set_.stderr)
    wait_for(lambda: status_of(alice, "hello-flask", "/greeting").text == "Selamat datang")
    assert alice.kapal("config:get", "GREETING", cwd=repo).stdout.strip() == "Selamat datang"
    assert "GREETING: Selamat datang" in alice.kapal("config", cwd=repo).stdout

    releases = alice.kapal("releases", cwd=repo).stdout
    assert re.search(r"v4\s+Set GREETING config vars\s+alice@example.com", releases)
    assert re.search(r"v3\s+Deploy [0-9a-f]{8}", releases)
    assert re.search(r"v1\s+Initial release", releases)

    # Rollback to v3: a new release v5 with v3's slug and config (no GREETING).
    rolled = alice.kapal("releases:rollback", "v3", cwd=repo)
    assert "to v3... done, v5" in rolled.stderr
    wait_for(lambda: status_of(alice, "hello-flask", "/greeting").text == "(no greeting)")

    # A failing push is rejected and the ref does not move.
    before = alice.git("ls-remote", "kapal", "refs/heads/main", cwd=repo).stdout
    (repo / "Procfile").write_text("web gunicorn app:app\n")
    alice.git("commit", "-qam", "break the Procfile", cwd=repo)
    failed = alice.git("push", "kapal", "main", cwd=repo, check=False)
    assert failed.returncode != 0
    assert "Procfile line 1" in failed.stderr
    assert "pre-receive hook declined" in failed.stderr
    assert alice.git("ls-remote", "kapal", "refs/heads/main", cwd=repo).stdout == before
    assert "v6" not in alice.kapal("releases", cwd=repo).stdout
    assert status_of(alice, "hello-flask").status_code == 200

    # Pushing another branch is refused with a hint.
    other = alice.git("push", "kapal", "main:feature", cwd=repo, check=False)
    assert other.returncode != 0 and "main" in other.stderr

    # A new dyno size (Heroku's ps:type) and ps:stop: each time a new web.1 takes over.
    resized = alice.kapal("ps:type", "web=standard-2x", cwd=repo)
    assert "Scaling dynos on ⬢ hello-flask... done" in resized.stderr
    assert re.search(r"^ web\s+Standard-2X\s+1$", resized.stdout, re.M), resized.stdout
    wait_for(
        lambda: re.search(
            r"=== web \(Standard-2X\): .*\(1\)\n\nweb\.1: up", alice.kapal("ps", cwd=repo).stdout
        )
    )
    assert status_of(alice, "hello-flask").status_code == 200
    stopped = alice.kapal("ps:stop", "web.1", cwd=repo)
    assert "Stopping dyno web.1 on ⬢ hello-flask... done" in stopped.stderr

    def restarted_after_stop() -> bool:
        logs = alice.kapal("logs", "-n", "300", cwd=repo).stdout
        stop = logs.find("app[api]: Stop web.1 by user alice@example.com")
        return stop >= 0 and "kapal[web.1]: Restarting" in logs[stop:]

    wait_for(restarted_after_stop)
    wait_for(lambda: status_of(alice, "hello-flask").status_code == 200)


class SyslogReceiver:
    """A TCP syslog server on 127.0.0.1 that keeps the octet-counted frames it receives."""

    def __init__(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.frames: list[str] = []
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        with contextlib.suppress(OSError):
            while True:
                conn, _ = self.listener.accept()
                threading.Thread(target=self._read, args=(conn,), daemon=True).start()

    def _read(self, conn: socket.socket) -> None:
        buffer = b""
        with conn:
            while data := conn.recv(65536):
                buffer += data
                while b" " in buffer:
                    length, rest = buffer.split(b" ", 1)
                    if len(rest) < int(length):
                        break
                    self.frames.append(rest[: int(length)].decode())
                    buffer = rest[int(length) :]

    def close(self) -> None:
        self.listener.close()


def test_logs_are_kept_searched_and_drained(alice: User) -> None:
    """After the tutorial: the app's history can be searched, and a syslog drain gets its
    lines named by the drain's token."""
    repo = alice.home / "flask-hello"
    searched = alice.kapal("logs", "--grep", "state CHANGED", "--since", "1h", cwd=repo).stdout
    lines = searched.splitlines()
    assert lines and all("State changed" in line for line in lines), searched
    assert "kapal[web.1]: State changed from starting to up" in searched

    receiver = SyslogReceiver()
    try:
        url = f"syslog://127.0.0.1:{receiver.port}"
        added = alice.kapal("drains:add", url, cwd=repo)
        assert f"Successfully added drain {url}" in added.stdout
        token = re.search(r"d\.[0-9a-f-]{36}", added.stdout)
        assert token, added.stdout
        assert f"{url} ({token[0]})" in alice.kapal("drains", cwd=repo).stdout

        def drained() -> list[str]:
            status_of(alice, "hello-flask", "/?drained=1")
            return [f for f in receiver.frames if 'path="/?drained=1"' in f]

        frame = wait_for(drained, timeout=30)[0]
        # RFC 5424: <PRI>1 TIMESTAMP HOSTNAME(token) APP-NAME(source) PROCID(dyno) MSGID MSG
        assert re.match(rf"<\d+>1 \S+\+00:00 {token[0]} kapal router - at=info ", frame), frame
        removed = alice.kapal("drains:remove", url, cwd=repo)
        assert f"Successfully removed drain {url}" in removed.stdout
        assert "has no drains" in alice.kapal("drains", cwd=repo).stdout
    finally:
        receiver.close()
