"""The storage quota of Postgres add-ons: a database over its plan's storage has its writes
refused (INSERT, UPDATE, CREATE, as Heroku does) until it is back under, and the apps it is
attached to are told in their log streams, as `app[kapal-postgres]` lines.

Where it runs: a thread of the API process (StorageQuotaChecker), started and stopped by its
entry point next to the backup scheduler. The API is the process that holds the admin URL
and already talks to the add-on servers; the agent and the router must not, and `kapal up`
is only one way to run the processes, so a check there would be missing from the others.

Level-triggered: each pass re-reads every provisioned Postgres add-on and its database's size
and state from the server (the state is kept in the server's catalog, see
kapal.addons.postgres_quota), so a pass that fails, or an API that restarts, loses nothing.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum

from sqlalchemy import select

from kapal.addons.catalog import POSTGRESQL, Plan, find_service
from kapal.addons.errors import ProvisionError
from kapal.addons.postgres_quota import PostgresQuota, StorageState
from kapal.domain.logline import LogLine
from kapal.services.context import Context
from kapal.services.periodic import Periodic
from kapal.services.pg import MB, admin_server, data_size
from kapal.store.models import Addon, Attachment

log = logging.getLogger(__name__)

LOG_SOURCE = ("app", "kapal-postgres")  # Heroku's Postgres lines come as app[heroku-postgres]
INTERVAL = 60.0

Limit = Callable[[Plan], int]  # bytes a plan may store; tests give tiny ones


def plan_limit(plan: Plan) -> int:
    return plan.storage_mb * MB


class Action(Enum):
    REFUSE = "refuse"  # over the quota: refuse writes, and say so
    ENFORCE = "enforce"  # still over: take away again what the owner may have granted back
    ALLOW = "allow"  # back under: allow writes, and say so


def decide(state: StorageState, limit: int) -> Action | None:
    over = limit > 0 and state.size > limit
    if over:
        return Action.ENFORCE if state.writes_refused else Action.REFUSE
    return Action.ALLOW if state.writes_refused else None


@dataclass(frozen=True)
class QuotaChange:
    addon: str
    refused: bool  # True: writes refused now; False: allowed again
    size: int
    limit: int


def check_storage(ctx: Context, *, limit: Limit = plan_limit) -> list[QuotaChange]:
    """One pass over every provisioned Postgres add-on; returns what changed."""
    with ctx.store.snapshot() as s:
        addons = [
            a
            for a in s.scalars(select(Addon).where(Addon.state == "provisioned"))
            if find_service(a.service) is POSTGRESQL
        ]
        apps = {
            a.id: [
                a.app_id,
                *s.scalars(select(Attachment.app_id).where(Attachment.addon_id == a.id)),
            ]
            for a in addons
        }
    if not addons:
        return []
    quota = PostgresQuota(admin_server(ctx))
    states = quota.states([a.name for a in addons])
    changes = []
    for addon in addons:
        plan = POSTGRESQL.plan(addon.plan)
        state = states.get(addon.name)  # None: its database is being made or dropped
        if plan is None or state is None:
            continue
        allowed = limit(plan)
        action = decide(state, allowed)
        try:
            if action in (Action.REFUSE, Action.ENFORCE):
                quota.refuse_writes(addon.name)
            elif action is Action.ALLOW:
                quota.allow_writes(addon.name)
        except ProvisionError as exc:
            log.warning("storage quota of %s: %s", addon.name, exc.message)
            continue
        if action in (Action.REFUSE, Action.ALLOW):
            change = QuotaChange(addon.name, action is Action.REFUSE, state.size, allowed)
            changes.append(change)
            for app_id in dict.fromkeys(apps[addon.id]):
                ctx.log.send(LogLine(app_id, *LOG_SOURCE, message(change), time.time()))
    return changes


def message(change: QuotaChange) -> str:
    size = data_size(change.size, change.limit)
    if change.refused:
        return (
            f"{change.addon} is over its plan's storage ({size}): INSERT, UPDATE and CREATE "
            "are refused until it is back under. Delete data (DELETE, TRUNCATE), then run "
            "VACUUM FULL to give the space back."
        )
    return f"{change.addon} is back under its plan's storage ({size}): writes are allowed again."


class StorageQuotaChecker(Periodic):
    """Runs `check_storage` every `interval` seconds in a thread of its own."""

    name = "pg-storage-quota"

    def __init__(
        self, ctx: Context, *, interval: float = INTERVAL, limit: Limit = plan_limit
    ) -> None:
        super().__init__(interval)
        self._ctx = ctx
        self._limit = limit

    def run_pass(self) -> list[QuotaChange]:
        return check_storage(self._ctx, limit=self._limit)
