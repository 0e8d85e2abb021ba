"""One run of `git http-backend` as a CGI: the request body in, its response streamed out.

The body is fed completely before the response starts: Starlette reads the request for a
disconnect while it streams, and git only answers a push after it has the whole pack anyway.
The response is relayed chunk by chunk, so the pre-receive hook's build output reaches the
pusher as it is printed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
from collections.abc import AsyncIterable, AsyncIterator, Mapping

from kapal.git.cgi import CgiHead, split_head
from kapal.git.repos import git_binary

log = logging.getLogger(__name__)

CHUNK = 65536
HEAD_TIMEOUT = 120.0

# Reaping tasks outlive a cancelled response; they are kept here until they are done.
_reaping: set[asyncio.Task[None]] = set()


class BackendError(Exception):
    pass


class GitBackend:
    def __init__(self, proc: asyncio.subprocess.Process, timeout: float) -> None:
        self.proc = proc
        self.deadline = asyncio.get_running_loop().time() + timeout
        self._rest = b""
        self._stderr = asyncio.create_task(self._log_stderr(), name="git http-backend stderr")

    @classmethod
    async def start(cls, env: Mapping[str, str], timeout: float) -> GitBackend:
        proc = await asyncio.create_subprocess_exec(
            git_binary(),
            "http-backend",
            env=dict(env),
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            start_new_session=True,  # the hook and the build client die with it
        )
        return cls(proc, timeout)

    async def exchange(self, body: AsyncIterable[bytes]) -> CgiHead:
        """Feed the whole request body and read the response head."""
        try:
            async with asyncio.TaskGroup() as group:
                group.create_task(self._feed(body))
                head = group.create_task(self._read_head())
        except BaseExceptionGroup as failed:
            await self.close()
            raise failed.exceptions[0] from None
        except BaseException:
            await self.close()
            raise
        return head.result()

    async def relay(self) -> AsyncIterator[bytes]:
        """The response body as git writes it; the process is stopped when this ends."""
        assert self.proc.stdout is not None
        loop = asyncio.get_running_loop()
        try:
            if self._rest:
                yield self._rest
            while True:
                remaining = self.deadline - loop.time()
                if remaining <= 0:
                    log.warning("git http-backend ran out of time; stopping it")
                    return
                try:
                    chunk = await asyncio.wait_for(self.proc.stdout.read(CHUNK), remaining)
                except TimeoutError:
                    continue
                if not chunk:
                    return
                yield chunk
        finally:
            await self.close()

    async def close(self) -> None:
        if self.proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
        # Shielded: a disconnecting client cancels us, yet the child must still be reaped.
        task = asyncio.ensure_future(self._reap())
        _reaping.add(task)
        task.add_done_callback(_reaping.discard)
        await asyncio.shield(task)

    async def _reap(self) -> None:
        await self.proc.wait()
        await self._stderr

    async def _feed(self, body: AsyncIterable[bytes]) -> None:
        stdin = self.proc.stdin
        assert stdin is not None
        try:
            async for chunk in body:
                if stdin.is_closing():
                    return  # git stopped reading; its response says why
                stdin.write(chunk)
                await stdin.drain()
        except (BrokenPipeError, ConnectionResetError):
            pass  # the same, noticed while writing
        finally:
            stdin.close()

    async def _read_head(self) -> CgiHead:
        assert self.proc.stdout is not None
        data = b""
        async with asyncio.timeout(HEAD_TIMEOUT):
            while True:
                chunk = await self.proc.stdout.read(CHUNK)
                if not chunk:
                    raise BackendError("git http-backend ended without a response")
                data += chunk
                parsed = split_head(data)
                if parsed is not None:
                    head, self._rest = parsed
                    return head

    async def _log_stderr(self) -> None:
        assert self.proc.stderr is not None
        async for line in self.proc.stderr:
            log.warning("git http-backend: %s", line.decode("utf-8", "replace").rstrip())
