"""The add-on services Kapal offers, their plans, and parsing `service[:plan]`."""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from kapal.addons.naming import config_var
from kapal.domain.errors import InvalidParams


@dataclass(frozen=True)
class Plan:
    """What a plan allows; 0 where a limit does not apply to the service."""

    name: str
    connection_limit: int
    storage_mb: int = 0  # Postgres and MySQL: the database's size
    memory_mb: int = 0  # Redis: maxmemory
    persistent: bool = True  # Redis: append-only file (the smallest plan keeps nothing)
    description: str = ""  # a partner's own words (Kapal's plans are described by their limits)


@dataclass(frozen=True)
class Service:
    name: str
    human_name: str
    slug: str  # the first word of generated add-on names: postgresql-silent-12345
    plans: tuple[Plan, ...]
    default_plan: str
    aliases: tuple[str, ...] = ()
    # The first attachment's name (DATABASE -> DATABASE_URL); later ones are
    # <SERVICE>_<COLOR>, as Heroku names extra databases HEROKU_POSTGRESQL_<COLOR>.
    primary_attachment: str = "DATABASE"
    # A third-party provider's, registered by an operator and reached through Heroku's
    # Add-on Partner API (kapal.addons.partner); its add-ons' config holds every var it set.
    partner: bool = False

    @property
    def id(self) -> str:
        return str(uuid.uuid5(uuid.NAMESPACE_URL, f"kapal:addon-service:{self.name}"))

    def plan(self, name: str) -> Plan | None:
        return next((p for p in self.plans if p.name == name), None)

    def attachment_config(self, attachment: str, config: Mapping[str, str]) -> dict[str, str]:
        """The config vars an attachment named `attachment` gives its app: <ATTACHMENT>_URL
        for Kapal's own services (whose config also keeps private entries); for a partner's,
        <ATTACHMENT>_<NAME> for each var the provider set, stored without its prefix
        (ACME_URL as URL), so the first attachment ACME gets the provider's own names."""
        if self.partner:
            return {f"{attachment}_{name}": value for name, value in config.items()}
        return {config_var(attachment): config["URL"]}

    def attachment_vars(self, attachment: str, config: Mapping[str, str]) -> list[str]:
        """The names of attachment_config (Kapal's own are known before provisioning)."""
        if self.partner:
            return [f"{attachment}_{name}" for name in config]
        return [config_var(attachment)]


POSTGRESQL = Service(
    name="kapal-postgresql",
    human_name="Kapal Postgres",
    slug="postgresql",
    plans=(
        Plan("essential-0", connection_limit=20, storage_mb=1024),
        Plan("essential-1", connection_limit=40, storage_mb=10 * 1024),
        Plan("standard-0", connection_limit=120, storage_mb=64 * 1024),
    ),
    default_plan="essential-0",
    # Heroku's own name works too, so tutorials and the Heroku CLI (whose pg:* commands
    # insist on `heroku-postgresql:<plan>`) work unchanged.
    aliases=("heroku-postgresql",),
)

REDIS = Service(
    name="kapal-redis",
    human_name="Kapal Redis",
    slug="redis",
    plans=(
        Plan("mini", connection_limit=20, memory_mb=25, persistent=False),
        Plan("premium-0", connection_limit=40, memory_mb=50),
        Plan("premium-1", connection_limit=80, memory_mb=100),
        Plan("premium-2", connection_limit=200, memory_mb=250),
    ),
    default_plan="mini",
    aliases=("heroku-redis",),
    primary_attachment="REDIS",
)

MYSQL = Service(
    name="kapal-mysql",
    human_name="Kapal MySQL",
    slug="mysql",
    plans=(
        Plan("mini", connection_limit=10, storage_mb=1024),
        Plan("standard-0", connection_limit=60, storage_mb=10 * 1024),
    ),
    default_plan="mini",
    primary_attachment="MYSQL",
)

RABBITMQ = Service(
    name="kapal-rabbitmq",
    human_name="Kapal RabbitMQ",
    slug="rabbitmq",
    plans=(
        Plan("lemur", connection_limit=20),
        Plan("tiger", connection_limit=100),
    ),
    default_plan="lemur",
    primary_attachment="AMQP",
)

SERVICES: tuple[Service, ...] = (POSTGRESQL, REDIS, MYSQL, RABBITMQ)


def plan_description(plan: Plan) -> str:
    """`20 connections, 1 GB storage` or `20 clients, 25 MB memory, not persisted`."""
    if plan.description or not plan.connection_limit:
        return plan.description
    parts = [f"{plan.connection_limit} connections"]
    if plan.storage_mb:
        parts.append(f"{_size(plan.storage_mb)} storage")
    if plan.memory_mb:
        parts.append(f"{_size(plan.memory_mb)} memory")
        parts.append("persisted (AOF)" if plan.persistent else "not persisted")
    return ", ".join(parts)


def _size(mb: int) -> str:
    return f"{mb // 1024} GB" if mb >= 1024 and mb % 1024 == 0 else f"{mb} MB"


@dataclass(frozen=True)
class PlanChoice:
    """A parsed `service[:plan]`; `requested` is the service name as the user typed it."""

    service: Service
    requested: str
    plan: Plan

    @property
    def plan_name(self) -> str:
        """`kapal-postgresql:essential-0`, in the name the user chose."""
        return f"{self.requested}:{self.plan.name}"


def find_service(name: str, partners: Sequence[Service] = ()) -> Service | None:
    """A built-in service by name or alias, else one of `partners` (registered providers)."""
    return next((s for s in (*SERVICES, *partners) if name == s.name or name in s.aliases), None)


def known_plans(partners: Sequence[Service] = ()) -> list[str]:
    return [f"{s.name}:{p.name}" for s in (*SERVICES, *partners) for p in s.plans]


def parse_plan(spec: str, partners: Sequence[Service] = ()) -> PlanChoice:
    """`kapal-postgresql`, `kapal-postgresql:standard-0` or `heroku-postgresql:essential-0`;
    `partners`: the registered providers' services, which may be chosen too."""
    text = spec.strip()
    service_name, _, plan_name = text.partition(":")
    service = find_service(service_name, partners)
    if service is None:
        services = ", ".join(s.name for s in (*SERVICES, *partners))
        raise InvalidParams(f"Couldn't find add-on service {service_name!r}. Known: {services}.")
    plan = service.plan(plan_name or service.default_plan)
    if plan is None:
        raise InvalidParams(
            f"Couldn't find plan {plan_name!r} of {service.name}. "
            f"Known plans: {', '.join(known_plans(partners))}."
        )
    return PlanChoice(service, service_name, plan)


def choice_of(service_name: str, plan_name: str, partners: Sequence[Service] = ()) -> PlanChoice:
    """The choice an existing add-on row records (service as typed, short plan name)."""
    return parse_plan(f"{service_name}:{plan_name}", partners)
