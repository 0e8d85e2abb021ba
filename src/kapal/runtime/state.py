"""What the agent reads (desired state) and writes (observed dynos), as plain data.

The runtime never imports the store: an adapter in the agent's entry point implements
`StateStore` over the database, and tests can implement it over a dict.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from kapal.domain.logline import LogLine

KINDS = ("formation", "release", "run")


@dataclass(frozen=True, slots=True)
class ReleaseSpec:
    """What a dyno of one release runs: the slug, the config vars and the process types."""

    app_id: str
    version: int
    slug_checksum: str | None  # "SHA256:<hex>"; None for a release without a slug
    config: Mapping[str, str] = field(default_factory=dict)
    process_types: Mapping[str, str] = field(default_factory=dict)
    uid: int | None = None  # the app's own uid, when the agent can run dynos as it


@dataclass(frozen=True, slots=True)
class FormationSpec:
    type: str
    quantity: int
    size: str = "eco"
    restarted_at: float = 0.0  # dynos of this type started before it are replaced


@dataclass(frozen=True, slots=True)
class DesiredApp:
    app_id: str
    release: ReleaseSpec | None  # the current release: newest succeeded
    formation: tuple[FormationSpec, ...] = ()
    # dyno name -> the `restart_at` of its row: replace a dyno started before it, once passed.
    restart_requests: Mapping[str, float] = field(default_factory=dict)
    # Eco dynos (kapal.domain.eco): when the router last had a request for the app (None:
    # never), and whether its owner's eco dyno hours of this month are used up.
    last_request_at: float | None = None
    eco_exhausted: bool = False


@dataclass(frozen=True, slots=True)
class PendingRelease:
    """A release whose release phase has to run before it can go live."""

    release: ReleaseSpec
    command: str


@dataclass(frozen=True, slots=True)
class OneOffSpec:
    """A `run` row the API inserted: started by the agent (attach=False) or by a client
    presenting the rendezvous secret (attach=True)."""

    app_id: str
    name: str
    command: str
    release: ReleaseSpec | None
    size: str = "eco"
    attach: bool = False
    state: str = "starting"
    restart_at: float | None = None  # the API asks to stop a one-off by setting it


@dataclass(frozen=True, slots=True)
class Desired:
    apps: Mapping[str, DesiredApp] = field(default_factory=dict)
    pending: tuple[PendingRelease, ...] = ()
    one_offs: tuple[OneOffSpec, ...] = ()


@dataclass(frozen=True, slots=True)
class DynoRow:
    """A `dynos` row the agent owns (formation and release-phase dynos)."""

    app_id: str
    name: str
    type: str
    command: str
    size: str
    release_version: int
    state: str  # starting | up | crashed | idle (an eco dyno asleep)
    port: int | None
    pid: int | None
    started_at: float
    retry_at: float | None = None  # crashed: when the next restart is due


@dataclass(frozen=True, slots=True)
class MemoryReading:
    """One dyno's memory use, sampled (kapal.runtime.dyno: R14 / R15)."""

    app_id: str
    dyno: str
    used: int  # bytes
    quota: int  # bytes: its size's memory


class StateStore(Protocol):
    """The agent's view of the store. Methods block; the runtime calls them off the loop,
    one at a time, in the order it issues them."""

    def read(self) -> Desired: ...

    def write_dynos(self, rows: Sequence[DynoRow]) -> None:
        """Make the agent-owned rows (every type but `run`) exactly these."""
        ...

    def leftover_dynos(self, now: float) -> list[DynoRow]:
        """At agent start: the dynos an earlier agent run started that may still run, as their
        rows recorded them. Rows of formation dynos stay, each asked to restart at `now` (so
        it serves until replaced); the other rows (release phases, one-offs) are removed.
        Rows of eco dynos asleep (`idle`) stay and are returned as they are."""
        ...

    def finish_release(self, app_id: str, version: int, succeeded: bool, output: str) -> None: ...

    def claim_attach(self, attach_hash: str) -> OneOffSpec | None:
        """The waiting attach=True one-off with this secret hash, marked as taken."""
        ...

    def one_off_started(self, app_id: str, name: str, pid: int | None) -> None: ...

    def one_off_finished(self, app_id: str, name: str) -> None: ...

    def expire_unattached(self, created_before: float) -> list[tuple[str, str]]:
        """Remove attach=True one-offs nobody attached to; return their (app_id, name)."""
        ...


class LogSink(Protocol):
    """Where dyno output and platform lines go: the agent's log hub."""

    def append(self, line: LogLine) -> object: ...
