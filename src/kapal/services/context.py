"""What every use-case needs: settings, the store, the log hub and the wake-up hints."""

from __future__ import annotations

import time
from dataclasses import dataclass

from kapal.domain.logline import LogLine
from kapal.logs.sender import LogSender
from kapal.settings import Settings
from kapal.store.db import Store
from kapal.store.notify import notify


@dataclass
class Context:
    settings: Settings
    store: Store
    log: LogSender

    @classmethod
    def create(cls, settings: Settings) -> Context:
        return cls(settings, Store.open(settings.database_url), LogSender(settings.log_socket))

    def close(self) -> None:
        self.log.close()
        self.store.engine.dispose()

    def wake(self) -> None:
        """Tell the agent and the router that desired state changed."""
        notify(self.settings.agent_wake_socket, self.settings.router_wake_socket)

    def event(self, app_id: str, message: str) -> None:
        """An `app[api]` line in the app's log stream."""
        self.log.send(LogLine(app_id, "app", "api", message, time.time()))
