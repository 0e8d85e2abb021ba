"""The running time of eco dynos, measured where they run: from the start of a dyno's
lifecycle to its end, split by app and month (UTC), taken from time to time for the store
(the account's eco dyno hours, kapal.domain.eco)."""

from __future__ import annotations

from collections.abc import Mapping

from kapal.domain.eco import split_by_month

Usage = dict[tuple[str, str], float]  # (app id, month) -> seconds


class EcoMeter:
    def __init__(self) -> None:
        self._running: dict[int, tuple[str, float]] = {}  # dyno id -> (app id, counted until)
        self._used: Usage = {}

    def started(self, dyno_id: int, app_id: str, at: float) -> None:
        self._running[dyno_id] = (app_id, at)

    def stopped(self, dyno_id: int, at: float) -> None:
        found = self._running.pop(dyno_id, None)
        if found is not None:
            self._count(found[0], found[1], at)

    def take(self, now: float) -> Usage:
        """What ran since the last take (running dynos up to `now`), and start afresh."""
        for dyno_id, (app_id, since) in list(self._running.items()):
            self._count(app_id, since, now)
            self._running[dyno_id] = (app_id, max(since, now))
        used, self._used = self._used, {}
        return used

    def give_back(self, used: Mapping[tuple[str, str], float]) -> None:
        """Usage taken but not stored (the store failed): counted again at the next take."""
        for key, seconds in used.items():
            self._used[key] = self._used.get(key, 0.0) + seconds

    def _count(self, app_id: str, since: float, until: float) -> None:
        for month, seconds in split_by_month(since, until).items():
            key = (app_id, month)
            self._used[key] = self._used.get(key, 0.0) + seconds
