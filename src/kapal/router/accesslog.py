"""One Heroku-style router log line per request, sent to the app's log stream."""

from __future__ import annotations

from typing import Protocol

from kapal.domain.logline import LogLine
from kapal.router.codes import RouterError


class LogSink(Protocol):
    """Where router lines go (kapal.logs.sender.LogSender in production); must not block."""

    def send(self, line: LogLine) -> None: ...


def _quoted(text: str) -> str:
    # Values come from the client; a quote must not end the field early.
    return text.replace('"', "%22") if '"' in text else text


def format_message(
    error: RouterError | None,
    method: str,
    path: str,
    host: str,
    request_id: str,
    fwd: str,
    dyno: str,
    connect_ms: int | None,
    service_ms: int | None,
    status: int,
    nbytes: int,
    protocol: str = "http",
) -> str:
    """`at=info method=GET path="/" host=... status=200 bytes=12 protocol=http`."""
    if error is None:
        at = "at=info"
    elif error.cause:
        at = f'at={error.level} code={error.code} desc="{error.desc}" cause="{error.cause}"'
    else:
        at = f'at={error.level} code={error.code} desc="{error.desc}"'
    connect = "" if connect_ms is None else f"{connect_ms}ms"
    service = "" if service_ms is None else f"{service_ms}ms"
    return (
        f'{at} method={method} path="{_quoted(path)}" host={host} request_id={request_id}'
        f' fwd="{_quoted(fwd)}" dyno={dyno} connect={connect} service={service}'
        f" status={status} bytes={nbytes} protocol={protocol}"
    )


def router_line(app_id: str, message: str, time: float) -> LogLine:
    return LogLine(app_id=app_id, source="kapal", dyno="router", message=message, time=time)
