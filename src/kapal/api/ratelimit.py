"""Headers every Platform API response carries, as Heroku's do: `Request-Id` (the first id of
the request's own comma-separated list, as Heroku's CLI sends it, or a new one) and, for
requests made with a token, `RateLimit-Remaining` from a bucket per token that holds Heroku's
4500 requests and refills at 4500 an hour. An empty bucket answers 429 `rate_limit`."""

from __future__ import annotations

import hashlib
import re
import time
import uuid
from collections.abc import Callable

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from kapal.api.limits import send_error

HOURLY = 4500  # Heroku's limit per account
_REQUEST_ID = re.compile(rb"[A-Za-z0-9-]{1,200}")
_MAX_BUCKETS = 10_000  # full buckets are forgotten past this many


class Buckets:
    """Token buckets by key: `take` spends one and says how many are left (-1: none was)."""

    def __init__(self, capacity: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.capacity = capacity
        self.rate = capacity / 3600.0
        self.clock = clock
        self._left: dict[bytes, tuple[float, float]] = {}  # key: (tokens, at)

    def take(self, key: bytes) -> int:
        now = self.clock()
        tokens, at = self._left.get(key, (float(self.capacity), now))
        tokens = min(float(self.capacity), tokens + (now - at) * self.rate)
        if tokens < 1:
            self._left[key] = (tokens, now)
            return -1
        self._left[key] = (tokens - 1, now)
        if len(self._left) > _MAX_BUCKETS:
            self._forget_full(now)
        return int(tokens - 1)

    def _forget_full(self, now: float) -> None:
        full = [
            key
            for key, (tokens, at) in self._left.items()
            if tokens + (now - at) * self.rate >= self.capacity
        ]
        for key in full:
            del self._left[key]


class PlatformHeaders:
    def __init__(self, app: ASGIApp, buckets: Buckets) -> None:
        self.app = app
        self.buckets = buckets

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id, authorization = b"", b""
        for name, value in scope["headers"]:
            if name == b"request-id":
                request_id = value
            elif name == b"authorization":
                authorization = value
        first = request_id.split(b",", 1)[0].strip()
        headers = [(b"request-id", first if _REQUEST_ID.fullmatch(first) else _new_id())]
        if authorization:
            left = self.buckets.take(hashlib.sha256(authorization).digest())
            headers.append((b"ratelimit-remaining", str(max(left, 0)).encode()))
            if left < 0:
                await _refuse(send, headers, self.buckets.capacity)
                return

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *headers]
            await send(message)

        await self.app(scope, receive, with_headers)


def _new_id() -> bytes:
    return str(uuid.uuid4()).encode()


async def _refuse(send: Send, headers: list[tuple[bytes, bytes]], hourly: int) -> None:
    message = (
        f"Your token made too many API requests: wait a few minutes and try again (at most "
        f"{hourly} an hour)."
    )
    await send_error(send, 429, "rate_limit", message, headers)
