"""pg:backups calls: /apps/{app}/pg-backups, pg-restores and pg-backup-schedules."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TypedDict, cast
from urllib.parse import quote

import httpx

from kapal.client.http import KapalClient
from kapal.client.types import Ref

CHUNK = 1024 * 1024


class BackupAddon(TypedDict):
    id: str | None  # None once the add-on is destroyed
    name: str


class Backup(TypedDict):
    id: str
    name: str  # b003
    num: int
    kind: str  # capture, scheduled, restore
    status: str  # running, succeeded, failed
    app: Ref
    addon: BackupAddon
    size_bytes: int | None
    database_bytes: int | None
    error: str | None
    created_at: str
    finished_at: str | None


class Restored(TypedDict):
    backup: Backup
    addon: BackupAddon
    safety_copy: Backup


class BackupSchedule(TypedDict):
    addon: BackupAddon
    attachments: list[str]
    hour: int
    timezone: str
    at: str  # 02:00 UTC
    last_run_at: str | None
    next_run_at: str
    created_at: str


def _seg(value: str) -> str:
    return quote(value, safe="")


def _backups(app: str) -> str:
    return f"/apps/{_seg(app)}/pg-backups"


def backups(client: KapalClient, app: str) -> list[Backup]:
    """Newest first."""
    return cast(list[Backup], client.request("GET", _backups(app)).json())


def backup(client: KapalClient, app: str, name: str) -> Backup:
    return cast(Backup, client.request("GET", f"{_backups(app)}/{_seg(name)}").json())


def capture(client: KapalClient, app: str, database: str | None) -> Backup:
    """Start a capture; the answer is the backup, `running`."""
    body = {"database": database} if database else {}
    return cast(Backup, client.request("POST", _backups(app), json_body=body).json())


def delete(client: KapalClient, app: str, name: str) -> Backup:
    return cast(Backup, client.request("DELETE", f"{_backups(app)}/{_seg(name)}").json())


@contextmanager
def download(client: KapalClient, app: str, name: str) -> Iterator[Iterator[bytes]]:
    """The dump's bytes as they arrive, never all in memory."""
    with client.stream("GET", f"{_backups(app)}/{_seg(name)}/download") as response:
        yield response.iter_bytes(CHUNK)


def restore(client: KapalClient, app: str, backup: str | None, database: str | None) -> Restored:
    """Waits as long as the restore takes (no read timeout)."""
    body = {"backup": backup, "database": database}
    path = f"/apps/{_seg(app)}/pg-restores"
    with client.stream("POST", path, json_body=body, timeout=httpx.Timeout(30.0, read=None)) as r:
        return cast(Restored, json.loads(r.read()))


def schedules(client: KapalClient, app: str) -> list[BackupSchedule]:
    path = f"/apps/{_seg(app)}/pg-backup-schedules"
    return cast(list[BackupSchedule], client.request("GET", path).json())


def schedule(client: KapalClient, app: str, database: str, at: str) -> BackupSchedule:
    path = f"/apps/{_seg(app)}/pg-backup-schedules/{_seg(database)}"
    return cast(BackupSchedule, client.request("PUT", path, json_body={"at": at}).json())


def unschedule(client: KapalClient, app: str, database: str) -> BackupSchedule:
    path = f"/apps/{_seg(app)}/pg-backup-schedules/{_seg(database)}"
    return cast(BackupSchedule, client.request("DELETE", path).json())
