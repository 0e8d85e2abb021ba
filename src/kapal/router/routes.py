"""The route table: a full snapshot of every app's routing state, replaced whole, never patched."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import NamedTuple, Protocol


class UpDyno(NamedTuple):
    name: str  # web.1
    port: int  # on 127.0.0.1


class Certificate(NamedTuple):
    """An SNI endpoint's certificate as of one change (a new version is loaded anew)."""

    endpoint_id: str
    version: str


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
    idle: int = 0  # eco web dynos asleep: a request wakes them
    eco_exhausted: bool = False  # an eco app whose owner used up this month's eco dyno hours
    # The app's own pages (config vars ERROR_PAGE_URL, MAINTENANCE_PAGE_URL), shown in place
    # of the router's application error and maintenance pages; "": the router's.
    error_page_url: str = ""
    maintenance_page_url: str = ""


@dataclass(frozen=True, slots=True)
class RouteTable:
    apps: Mapping[str, AppRoute] = field(default_factory=dict)  # by app name
    # Custom domains: hostname (`www.example.com`, `*.example.com`) -> app name.
    domains: Mapping[str, str] = field(default_factory=dict)
    # The certificate HTTPS serves for a custom domain: hostname -> certificate.
    certificates: Mapping[str, Certificate] = field(default_factory=dict)

    @classmethod
    def of(
        cls,
        *routes: AppRoute,
        domains: Mapping[str, str] | None = None,
        certificates: Mapping[str, Certificate] | None = None,
    ) -> RouteTable:
        return cls({route.name: route for route in routes}, domains or {}, certificates or {})


class RouteSource(Protocol):
    """Returns a fresh snapshot; may block (it is called in a worker thread)."""

    def __call__(self) -> RouteTable: ...


class HostIndex:
    """Finds an app's route from a Host header value: `NAME.<apps_domain>[:port]`, or a custom
    domain, exactly or by a wildcard domain (`*.example.com`, one label deep)."""

    __slots__ = ("_by_host", "_wildcards", "table")

    def __init__(self, table: RouteTable, apps_domain: str) -> None:
        self.table = table
        suffix = "." + apps_domain.lower().strip(".")
        self._by_host: dict[bytes, AppRoute] = {
            (name.lower() + suffix).encode(): route for name, route in table.apps.items()
        }
        self._wildcards: dict[bytes, AppRoute] = {}  # by the parent of `*.`
        for hostname, app_name in table.domains.items():
            route = table.apps.get(app_name)
            if route is None:
                continue
            if hostname.startswith("*."):
                self._wildcards[hostname[2:].encode()] = route
            else:
                self._by_host.setdefault(hostname.encode(), route)

    def lookup(self, host: bytes) -> AppRoute | None:
        name = host.split(b":", 1)[0].lower()
        route = self._by_host.get(name)
        if route is None:
            if name.endswith(b"."):
                name = name[:-1]
                route = self._by_host.get(name)
            if route is None and self._wildcards:
                route = self._wildcards.get(name.partition(b".")[2])
        return route

    def by_name(self, name: str) -> AppRoute | None:
        return self.table.apps.get(name)
