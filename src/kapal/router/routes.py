"""The route table: a full snapshot of every app's routing state, replaced whole, never patched."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import NamedTuple, Protocol


class UpDyno(NamedTuple):
    name: str  # web.1
    port: int  # on 127.0.0.1


@dataclass(frozen=True, slots=True)
class AppRoute:
    app_id: str
    name: str
    maintenance: bool = False
    deployed: bool = True  # a succeeded release with a slug exists
    web_quantity: int = 0  # formation quantity for the web process type
    up: tuple[UpDyno, ...] = ()
    crashed: int = 0
    starting: int = 0


@dataclass(frozen=True, slots=True)
class RouteTable:
    apps: Mapping[str, AppRoute] = field(default_factory=dict)  # by app name

    @classmethod
    def of(cls, *routes: AppRoute) -> RouteTable:
        return cls({route.name: route for route in routes})


class RouteSource(Protocol):
    """Returns a fresh snapshot; may block (it is called in a worker thread)."""

    def __call__(self) -> RouteTable: ...


class HostIndex:
    """Finds an app's route from a Host header value: `NAME.<apps_domain>[:port]`."""

    __slots__ = ("_by_host", "table")

    def __init__(self, table: RouteTable, apps_domain: str) -> None:
        self.table = table
        suffix = "." + apps_domain.lower().strip(".")
        self._by_host: dict[bytes, AppRoute] = {
            (name.lower() + suffix).encode(): route for name, route in table.apps.items()
        }

    def lookup(self, host: bytes) -> AppRoute | None:
        name = host.split(b":", 1)[0].lower()
        route = self._by_host.get(name)
        if route is None and name.endswith(b"."):
            route = self._by_host.get(name[:-1])
        return route

    def by_name(self, name: str) -> AppRoute | None:
        return self.table.apps.get(name)
