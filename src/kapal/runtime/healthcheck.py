"""Startup checks of web dynos (app.json `healthchecks`): read from the unpacked slug, and one
probe (GET a path on the dyno's $PORT) at a time. The dyno decides what failures mean."""

from __future__ import annotations

import asyncio
import contextlib
import os
import stat
from pathlib import Path

from kapal.domain.appjson import MAX_BYTES, AppJsonError, Healthcheck, parse_healthchecks
from kapal.runtime.slugs import SlugError

MAX_BODY = 1 << 20  # bytes of a check's answer searched for its `content`


def read_healthchecks(root: Path, process_type: str) -> tuple[Healthcheck, ...]:
    """The startup checks app.json at the slug's root names for `process_type` (none without
    an app.json); SlugError, with a message for the app's log, if they cannot be used."""
    try:
        # The slug is the app's: never follow its links or block on a FIFO as the agent.
        fd = os.open(root / "app.json", os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except FileNotFoundError:
        return ()
    except OSError as exc:
        raise SlugError(f"app.json cannot be read: {exc.strerror}") from None
    with os.fdopen(fd, "rb") as file:
        if not stat.S_ISREG(os.fstat(file.fileno()).st_mode):
            raise SlugError("app.json is not a regular file")
        data = file.read(MAX_BYTES + 1)
    try:
        return tuple(parse_healthchecks(data).get(process_type, ()))
    except AppJsonError as exc:
        raise SlugError(exc.message) from None


async def probe(port: int, check: Healthcheck, timeout: float, host: str = "127.0.0.1") -> str:
    """GET `check.path` on host:port within `timeout` seconds: "" when it answered 2xx (with
    `check.content` in the answer), else what went wrong, for the dyno's log."""
    request = (
        f"GET {check.path} HTTP/1.1\r\nHost: localhost:{port}\r\n"
        "User-Agent: Kapal-Healthcheck\r\nAccept: */*\r\nConnection: close\r\n\r\n"
    ).encode()
    try:
        async with asyncio.timeout(timeout):
            reader, writer = await asyncio.open_connection(host, port, limit=MAX_BODY)
            try:
                writer.write(request)
                await writer.drain()
                return await _verdict(reader, check)
            finally:
                writer.close()
                with contextlib.suppress(OSError):
                    await writer.wait_closed()
    except TimeoutError:
        return f"GET {check.path} got no answer within {timeout:g} seconds"
    except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError) as exc:
        return f"GET {check.path} failed: {exc.__class__.__name__}"


async def _verdict(reader: asyncio.StreamReader, check: Healthcheck) -> str:
    line = await reader.readline()
    parts = line.split(None, 2)
    if len(parts) < 2 or not parts[0].startswith(b"HTTP/") or not parts[1].isdigit():
        return f"GET {check.path} answered no HTTP response"
    status = int(parts[1])
    if not 200 <= status < 300:
        return f"GET {check.path} answered {status}"
    if check.content:
        answer = await reader.read(MAX_BODY)
        while len(answer) < MAX_BODY and (more := await reader.read(MAX_BODY - len(answer))):
            answer += more
        if check.content.encode() not in answer:
            return f"GET {check.path} answered {status} without {check.content!r}"
    return ""
