"""Where dynos run, as the reconcile loop sees it.

The loop reads the whole desired state from the store on every pass and hands it to a
DynoBackend; the backend starts and stops dynos to match, and reports what runs as rows that
the loop writes to the store, where `kapal ps` reads them and the router finds the up web
dynos' ports. The local backend is `kapal.runtime.supervisor.Supervisor` (processes on this
machine, in jails, through a Driver). Another backend (Kubernetes pods, say) implements the
same calls and passes the same conformance tests (tests/integration/runtime/
test_runtime_backend_conformance.py); services, the API and the store do not change. The router
reaches a dyno at 127.0.0.1:<row port>; a backend whose dynos live elsewhere would add a host
to the row.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Protocol

from kapal.runtime.dyno import IO, Dyno
from kapal.runtime.state import Desired, DynoRow, OneOffSpec


class Stopping(Protocol):
    async def wait_done(self) -> None:
        """Return once nothing of the dyno runs any more."""
        ...


class DynoBackend(Protocol):
    # Set by the loop: called when a dyno's state changes (its row is worth writing now).
    on_change: Callable[[], None]

    async def run(self) -> None:
        """Own the dynos until cancelled (after `begin_shutdown` has stopped them)."""
        ...

    def converge(self, desired: Desired, now: float) -> None:
        """Start and stop dynos so that what runs moves toward `desired`: every app's current
        release in its formation (sizes, quantities, restart requests), the release phases
        to run, the detached one-offs to start. Returns at once; never waits for a dyno."""
        ...

    def rows(self) -> list[DynoRow]:
        """One row per formation dyno (the one serving, during a replacement) and per running
        release phase: what the store shows and the router routes to."""
        ...

    def unrouted(self) -> None:
        """The rows were written: web dynos they no longer list may now be stopped."""
        ...

    async def adopt(self, row: DynoRow) -> None:
        """A dyno an earlier agent run left running, as its row recorded it: a formation dyno
        serves until a new one replaces it; anything else is stopped."""
        ...

    async def attach(self, spec: OneOffSpec, make_io: Callable[[Dyno], IO]) -> None:
        """Run an attached one-off dyno in the calling task, its input and output through
        `make_io(dyno)`; returns when it has ended."""
        ...

    def begin_shutdown(self) -> Sequence[Stopping]:
        """Start no more dynos and stop every running one (SIGTERM, grace, SIGKILL)."""
        ...

    async def housekeep(self) -> None:
        """Tidy what no dyno needs any more (locally: unpacked slugs); run beside the passes,
        as it may take seconds."""
        ...
