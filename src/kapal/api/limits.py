"""A cap on JSON request bodies: no API call needs more than a megabyte of JSON, so a
larger one is refused before anything buffers or parses it. (Uploads — git pushes and
source tarballs — are not JSON and have their own limits.)"""

from __future__ import annotations

import json
from collections.abc import Sequence

from starlette.types import ASGIApp, Message, Receive, Scope, Send

MAX_JSON_BYTES = 1024 * 1024


class BodyTooLarge(Exception):
    pass


class JsonBodyLimit:
    def __init__(self, app: ASGIApp, limit: int = MAX_JSON_BYTES) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not _is_json(scope):
            await self.app(scope, receive, send)
            return
        length = _header(scope, b"content-length")
        if length is not None and (not length.isdigit() or int(length) > self.limit):
            await _refuse(send, self.limit)
            return
        seen = 0
        started = False

        async def counted() -> Message:
            nonlocal seen
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > self.limit:
                raise BodyTooLarge
            return message

        async def tracked(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counted, tracked)
        except BodyTooLarge:
            if not started:
                await _refuse(send, self.limit)


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope["headers"]:
        if key == name:
            return str(value.decode("latin-1"))
    return None


def _is_json(scope: Scope) -> bool:
    return "json" in (_header(scope, b"content-type") or "").lower()


async def _refuse(send: Send, limit: int) -> None:
    await send_error(send, 413, "bad_request", f"Request body is larger than {limit} bytes.")


async def send_error(
    send: Send, status: int, id_: str, message: str, headers: Sequence[tuple[bytes, bytes]] = ()
) -> None:
    """A Platform API error (`{"id", "message"}`) sent from ASGI middleware."""
    body = json.dumps({"id": id_, "message": message}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                *headers,
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
