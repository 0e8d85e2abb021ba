"""Platform events in an app's log, as Heroku shows them: `app[api]: Release v3 created by ...`."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Protocol

from kapal.domain.logline import LogLine


class LineSink(Protocol):
    def send(self, line: LogLine) -> None: ...


def api_event(
    sink: LineSink, app_id: str, message: str, clock: Callable[[], float] = time.time
) -> None:
    """Write one `app[api]` line (e.g. "Deploy 409cdef5 by user x@y") to the app's log."""
    sink.send(LogLine(app_id, "app", "api", message, clock()))
