"""Work the API does in the background, a pass every so often: in a daemon thread of its own
(a pass stuck on an unreachable server must not keep the API from exiting), whose failures
are logged and retried at the next pass."""

from __future__ import annotations

import logging
import threading

from kapal.domain.errors import KapalError

log = logging.getLogger(__name__)


class Periodic:
    """Subclasses define `name` and `run_pass`; `start` runs a pass at once, then one every
    `interval` seconds, until `stop`."""

    name = "periodic"

    def __init__(self, interval: float) -> None:
        self._interval = interval
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def run_pass(self) -> object:
        raise NotImplementedError

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name=self.name, daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.run_pass()
            except KapalError as exc:  # a server down or not set up: said, without a trace
                log.warning("%s: %s", self.name, exc.message)
            except Exception:
                log.exception("%s failed; retrying in %.0f s", self.name, self._interval)
            self._stop.wait(self._interval)
