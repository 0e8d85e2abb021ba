"""`pg:*` calls: Kapal's /apps/{app}/pg-databases routes."""

from __future__ import annotations

from typing import TypedDict, cast
from urllib.parse import quote

from kapal.client.http import KapalClient
from kapal.client.types import Ref


class InfoRow(TypedDict):
    name: str
    values: list[str]


class DatabaseRef(TypedDict):
    id: str
    name: str


class PgDatabase(TypedDict):
    addon: DatabaseRef
    app: Ref
    config_vars: list[str]  # DATABASE_URL first


class PgDatabaseInfo(PgDatabase):
    status: str  # available, over_storage_quota, unavailable
    info: list[InfoRow]


class PgSession(TypedDict):
    pid: int
    state: str
    query_start: str | None
    running_for: float | None  # seconds
    waiting: bool
    query: str


class ReleaseRef(TypedDict):
    app: Ref
    version: int


class Rotation(PgDatabase):
    releases: list[ReleaseRef]


class Previous(TypedDict):
    name: str
    config_var: str


class PromoteRelease(TypedDict):
    id: str
    version: int


class Promotion(PgDatabase):
    release: PromoteRelease
    previous: Previous | None


def _path(app: str, database: str | None = None) -> str:
    path = f"/apps/{quote(app, safe='')}/pg-databases"
    return path if database is None else f"{path}/{quote(database, safe='')}"


def pg_databases(client: KapalClient, app: str) -> list[PgDatabaseInfo]:
    return cast(list[PgDatabaseInfo], client.request("GET", _path(app)).json())


def pg_database(client: KapalClient, app: str, database: str) -> PgDatabaseInfo:
    return cast(PgDatabaseInfo, client.request("GET", _path(app, database)).json())


def pg_sessions(
    client: KapalClient, app: str, database: str, *, include_idle: bool = False
) -> list[PgSession]:
    query = "?all=true" if include_idle else ""
    path = f"{_path(app, database)}/sessions{query}"
    return cast(list[PgSession], client.request("GET", path).json())


def pg_kill(client: KapalClient, app: str, database: str, pid: int, *, force: bool) -> None:
    body = {"pid": pid, "force": force}
    client.request("POST", f"{_path(app, database)}/actions/kill", json_body=body)


def pg_rotate_credentials(client: KapalClient, app: str, database: str) -> Rotation:
    path = f"{_path(app, database)}/actions/rotate-credentials"
    return cast(Rotation, client.request("POST", path).json())


def pg_reset(client: KapalClient, app: str, database: str) -> PgDatabase:
    path = f"{_path(app, database)}/actions/reset"
    return cast(PgDatabase, client.request("POST", path).json())


def pg_promote(client: KapalClient, app: str, database: str) -> Promotion:
    path = f"{_path(app, database)}/actions/promote"
    return cast(Promotion, client.request("POST", path).json())
