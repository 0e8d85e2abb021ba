"""The router's error model: Heroku's H codes, and which one a route's state calls for."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from kapal.router.routes import AppRoute


@dataclass(frozen=True, slots=True)
class RouterError:
    code: str  # H14; empty for errors that are not an app's (no such app)
    desc: str
    status: int
    page: str  # file stem under router/pages; empty for no body
    level: str = "error"  # the log line's at=
    cause: str = ""


NO_SUCH_APP: Final = RouterError("", "No such app", 404, "no-such-app")
H10: Final = RouterError("H10", "App crashed", 503, "application-error")
H12: Final = RouterError("H12", "Request timeout", 503, "application-error")
H13: Final = RouterError("H13", "Connection closed without response", 503, "application-error")
H14: Final = RouterError("H14", "No web processes running", 503, "application-error")
H15: Final = RouterError("H15", "Idle connection", 503, "application-error")
H17: Final = RouterError("H17", "Poorly formatted HTTP response", 503, "application-error")
H18: Final = RouterError("H18", "Server Request Interrupted", 503, "application-error")
H19: Final = RouterError("H19", "Backend connection timeout", 503, "application-error")
H20: Final = RouterError("H20", "App boot timeout", 503, "application-error")
H21: Final = RouterError("H21", "Backend connection refused", 503, "application-error")
H25: Final = RouterError("H25", "HTTP restriction: oversized header", 502, "application-error")
H27: Final = RouterError("H27", "Client Request Interrupted", 499, "", level="warning")
# Heroku logs H28 as a 499; the client, still connected, is told 408 Request Timeout.
H28: Final = RouterError("H28", "Client Connection Idle", 408, "", level="warning")
H80: Final = RouterError("H80", "Maintenance mode", 503, "maintenance", level="info")
H81: Final = RouterError("H81", "Blank app", 503, "blank-app", level="info")
H82: Final = RouterError("H82", "Eco dyno quota exhausted", 503, "application-error", level="info")
H99: Final = RouterError("H99", "Platform error", 503, "application-error")
BAD_REQUEST: Final = RouterError("H26", "Request Error", 400, "bad-request", cause="bad request")
BAD_CHUNK: Final = RouterError("H26", "Request Error", 400, "bad-request", cause="bad chunk")
LINE_TOO_LONG: Final = RouterError(
    "H26", "Request Error", 400, "bad-request", cause="request line too long"
)
HEADER_TOO_LARGE: Final = RouterError(
    "H26", "Request Error", 431, "bad-request", cause="bad header"
)
BAD_EXPECT: Final = RouterError(
    "H26", "Request Error", 417, "bad-request", cause="unsupported expect header value"
)
BAD_METHOD: Final = RouterError(
    "H26", "Request Error", 405, "bad-request", cause="unsupported method"
)


class Verdict:
    """What to do with a request for an app that has no error to report."""

    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return f"Verdict({self.name})"


PROXY: Final = Verdict("proxy")
WAIT: Final = Verdict("wait")  # web dynos are being started: hold the request
WAKE: Final = Verdict("wake")  # eco web dynos asleep: hold the request and wake them


def decide(route: AppRoute) -> RouterError | Verdict:
    """Proxy, wait for a booting dyno, or fail with the H code the app's state calls for."""
    if route.maintenance:
        return H80
    if not route.deployed:
        return H81
    if route.web_quantity <= 0:
        return H14
    if route.eco_exhausted:
        return H82
    if route.up:
        return PROXY
    if route.idle and not route.starting:
        return WAKE
    # No dyno rows yet means the agent has not caught up with the formation: they are coming.
    if route.starting or not route.crashed:
        return WAIT
    return H10
