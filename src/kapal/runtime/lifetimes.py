"""How long a dyno lives: formation dynos are cycled once a day, one-off dynos end after their
time to live."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Lifetimes:
    """Heroku cycles each formation dyno every 24 hours plus up to 216 random minutes (15 %),
    so an app's dynos cycle at different times; a restart or a release starts the period
    afresh (the new dynos get new times). Release-phase dynos have their own time limit.
    A duration of 0 means never."""

    cycle: float = 24 * 3600.0  # seconds
    jitter: float = 0.15  # at most this fraction of `cycle` is added, picked per dyno
    run_ttl: float = 24 * 3600.0  # seconds a one-off dyno may run

    def expires_at(self, kind: str, started_at: float, chance: float) -> float | None:
        """When a dyno of `kind` started at `started_at` is cycled (formation) or ended
        (one-off); `chance`, in [0, 1), picks its share of the jitter."""
        if kind == "formation" and self.cycle > 0:
            return started_at + self.cycle * (1 + self.jitter * chance)
        if kind == "run" and self.run_ttl > 0:
            return started_at + self.run_ttl
        return None
