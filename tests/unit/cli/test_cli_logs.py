from __future__ import annotations

from datetime import UTC, datetime

import httpx
from tests.unit.cli.cli_fakeapi import FakeApi, Kapal, assert_token, body

from kapal.cli.logs import since_time

SESSION_PATH = "/sessions/s3cr3t"
LINES = [
    "2026-11-26T13:39:22.000000+00:00 app[api]: Release v3 created by user user@example.com",
    "2026-11-26T13:39:23.000000+00:00 kapal[web.1]: State changed from starting to up",
    "2026-11-26T13:39:24.000000+00:00 app[web.1]: Listening at: http://0.0.0.0:5000",
]


def session(fake: FakeApi, stream: httpx.Response | None = None) -> None:
    url = f"http://localhost:5001{SESSION_PATH}"
    fake.on("POST", "/apps/demo/log-sessions", {"id": "l1", "logplex_url": url}, status=201)
    answer = stream or httpx.Response(
        200, text="".join(f"{line}\n" for line in LINES), headers={"content-type": "text/plain"}
    )
    fake.on("GET", SESSION_PATH, handler=lambda _: answer)


def test_logs_prints_the_stream(kapal: Kapal, fake: FakeApi) -> None:
    session(fake)
    result = kapal("logs", "-a", "demo")
    assert result.exit_code == 0, result.output
    assert result.stdout == "".join(f"{line}\n" for line in LINES)
    create = fake.one("POST", "/apps/demo/log-sessions")
    assert_token(create)
    assert body(create) == {"lines": 100, "tail": False}
    stream = fake.one("GET", SESSION_PATH)
    assert stream.url.host == "localhost" and stream.url.port == 5001
    assert "authorization" not in stream.headers  # the URL is its own credential


def test_logs_options_become_the_session(kapal: Kapal, fake: FakeApi) -> None:
    session(fake)
    kapal("logs", "-a", "demo", "-n", "5", "--tail", "-d", "web.1", "-s", "app")
    assert body(fake.requests[0]) == {"lines": 5, "tail": True, "dyno": "web.1", "source": "app"}
    kapal("logs", "-a", "demo", "-p", "worker", "-s", "kapal")
    assert body(fake.requests[2]) == {
        "lines": 100,
        "tail": False,
        "dyno": "worker",
        "source": "kapal",
    }


def test_logs_rejects_an_unknown_source(kapal: Kapal, fake: FakeApi) -> None:
    result = kapal("logs", "-a", "demo", "-s", "router")
    assert result.exit_code == 2
    assert fake.requests == []


def test_logs_reads_server_sent_events(kapal: Kapal, fake: FakeApi) -> None:
    events = "".join(f"id: {i}\ndata: {line}\n\n" for i, line in enumerate(LINES))
    sse = httpx.Response(200, text=events, headers={"content-type": "text/event-stream"})
    session(fake, sse)
    assert kapal("logs", "-a", "demo").stdout == "".join(f"{line}\n" for line in LINES)


def test_logs_colour_only_on_a_terminal(kapal: Kapal, fake: FakeApi) -> None:
    session(fake)
    coloured = kapal("logs", "-a", "demo", stdout_tty=True).stdout
    assert "\x1b[" in coloured
    assert "Listening at: http://0.0.0.0:5000" in coloured
    assert "\x1b[" not in kapal("logs", "-a", "demo", "--no-color", stdout_tty=True).stdout
    assert "\x1b[" not in kapal("logs", "-a", "demo").stdout


def test_ctrl_c_ends_quietly(kapal: Kapal, fake: FakeApi) -> None:
    session(fake)

    def interrupted(_: httpx.Request) -> httpx.Response:
        raise KeyboardInterrupt

    fake.on("GET", SESSION_PATH, handler=interrupted)
    result = kapal("logs", "-a", "demo", "--tail")
    assert (result.exit_code, result.output) == (0, "")


def test_expired_session(kapal: Kapal, fake: FakeApi) -> None:
    session(fake, httpx.Response(404, json={"id": "not_found", "message": "Log session expired."}))
    result = kapal("logs", "-a", "demo")
    assert result.exit_code == 1
    assert result.stderr == " ▸    Log session expired.\n"


def test_grep_and_since_become_the_session(kapal: Kapal, fake: FakeApi) -> None:
    session(fake)
    result = kapal("logs", "-a", "demo", "--grep", "H12", "--since", "2026-11-27T08:00:00Z")
    assert result.exit_code == 0, result.output
    assert body(fake.requests[0]) == {
        "lines": 100,
        "tail": False,
        "grep": "H12",
        "since": "2026-11-27T08:00:00+00:00",
    }


def test_since_takes_a_time_ago() -> None:
    now = datetime(2026, 11, 27, 10, 0, tzinfo=UTC)
    assert since_time("2h", now) == "2026-11-27T08:00:00+00:00"
    assert since_time(" 30M ", now) == "2026-11-27T09:30:00+00:00"
    assert since_time("7d", now) == "2026-11-20T10:00:00+00:00"
    assert since_time("2026-11-27T09:00:00", now) == "2026-11-27T09:00:00+00:00"
    assert since_time("2026-11-27T11:00:00+02:00", now) == "2026-11-27T09:00:00+00:00"


def test_since_refuses_what_is_not_a_time(kapal: Kapal, fake: FakeApi) -> None:
    result = kapal("logs", "-a", "demo", "--since", "yesterday")
    assert result.exit_code == 1
    assert "--since takes a time ago" in result.output
    assert fake.requests == []
