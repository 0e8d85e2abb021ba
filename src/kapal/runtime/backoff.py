"""How long a crashed formation dyno waits before its next restart."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Backoff:
    """First crash: restart at once; then `first`, doubling, at most `cap` seconds (Heroku:
    "exponentially increasing cool-off periods", up to 20 minutes). A dyno that stayed up for
    `stable_after` seconds starts counting afresh, so a crash a day never reaches the cap."""

    first: float = 10.0
    factor: float = 2.0
    cap: float = 20 * 60.0
    stable_after: float = 20 * 60.0

    def delay(self, crashes: int) -> float:
        """Seconds to wait after the `crashes`-th consecutive crash (1 = the first)."""
        if crashes <= 1:
            return 0.0
        # Bounded exponent: the cap is reached long before the float would overflow.
        return float(min(self.cap, self.first * self.factor ** min(crashes - 2, 64)))

    def crashes_after_exit(self, previous: int, up_for: float | None) -> int:
        """The consecutive crash count once a dyno that was up for `up_for` seconds exits."""
        if up_for is not None and up_for >= self.stable_after:
            return 1
        return previous + 1
