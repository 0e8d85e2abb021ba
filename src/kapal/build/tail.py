"""Follow a growing build log until its build has finished."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

CHUNK = 65536


def _read(path: Path, offset: int) -> bytes:
    try:
        with path.open("rb") as file:
            file.seek(offset)
            return file.read(CHUNK)
    except FileNotFoundError:
        return b""


async def follow(
    path: Path, finished: Callable[[], Awaitable[bool]], poll: float = 0.1
) -> AsyncIterator[bytes]:
    """Yield the file's bytes as they are written; stop once finished() is true and all of
    the file has been read. The writer must finish writing before it reports finished."""
    offset = 0
    while True:
        chunk = await asyncio.to_thread(_read, path, offset)
        if chunk:
            offset += len(chunk)
            yield chunk
            continue
        if await finished():
            # Anything written between the empty read and finished() comes out here.
            while rest := await asyncio.to_thread(_read, path, offset):
                offset += len(rest)
                yield rest
            return
        await asyncio.sleep(poll)
