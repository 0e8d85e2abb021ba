"""The postdeploy script: a one-off dyno in the new release, attached through the agent's
rendezvous like `kapal run`, its output relayed line by line and the exit status the agent
reports kept."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from dataclasses import dataclass

from kapal.build.output import decode_line, split_lines
from kapal.client.rendezvous import ExitStatusFilter
from kapal.domain.rendezvous import EOT, secret_line
from kapal.services.context import Context
from kapal.services.dynos import run_one_off
from kapal.store.models import User

CONNECT_TIMEOUT = 10.0
CHUNK = 65536


@dataclass(frozen=True)
class Outcome:
    """How the script ended: its exit status, or why there is none."""

    status: int | None
    problem: str = ""

    @property
    def succeeded(self) -> bool:
        return self.status == 0

    def describe(self) -> str:
        """For the build output."""
        if self.succeeded:
            return "Postdeploy script succeeded."
        why = self.problem or f"it exited with status {self.status}."
        return f"Postdeploy script failed: {why} The deploy stays; the script does not run again."


def rendezvous_host(bind: str) -> str:
    """Where this machine reaches the agent's rendezvous."""
    return "127.0.0.1" if bind in ("", "0.0.0.0") else "::1" if bind == "::" else bind  # noqa: S104


async def run_postdeploy(
    ctx: Context,
    user: User,
    app_id: str,
    command: str,
    emit: Callable[[str], None],
    *,
    size: str | None = None,
    timeout: float,
) -> Outcome:
    """Run `command` once in the app's current release; `emit` gets each line it prints."""
    dyno, secret = await asyncio.to_thread(
        run_one_off, ctx, user, app_id, command, attach=True, size=size
    )
    assert secret is not None
    host, port = rendezvous_host(ctx.settings.bind), ctx.settings.rendezvous_port
    try:
        async with asyncio.timeout(CONNECT_TIMEOUT):
            reader, writer = await asyncio.open_connection(host, port)
    except (OSError, TimeoutError) as exc:
        return Outcome(None, f"Kapal's agent is not reachable at {host}:{port} ({exc}).")
    try:
        writer.write(secret_line(secret, exit_status=True))
        await writer.drain()
        async with asyncio.timeout(CONNECT_TIMEOUT):
            greeting = await reader.readline()
        if not greeting.endswith(b"\n"):
            return Outcome(None, f"{dyno.name} did not start.")
        writer.write(EOT)  # nothing on stdin: the script must not wait for input
        await writer.drain()
        exit_status = ExitStatusFilter()
        pending = b""
        try:
            async with asyncio.timeout(timeout):
                while chunk := await reader.read(CHUNK):
                    lines, pending = split_lines(pending, exit_status.feed(chunk))
                    for line in lines:
                        emit(line)
        except TimeoutError:
            # Closing the connection hangs the dyno up, as leaving `kapal run` does.
            return Outcome(None, f"It did not finish within {timeout:g} seconds and was stopped.")
        rest = pending + exit_status.finish()
        if rest:
            emit(decode_line(rest))
    except OSError as exc:
        return Outcome(None, f"The connection to {dyno.name} broke ({exc}).")
    finally:
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()
    if exit_status.status is None:
        return Outcome(None, f"{dyno.name} ended without reporting an exit status.")
    return Outcome(exit_status.status)
