"""kapal-redis add-ons' own use-cases: their server's state (`redis:info`), the key eviction
policy (`redis:maxmemory`), and which servers `kapal up` keeps running."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import or_, select

from kapal.addons.catalog import REDIS, find_service
from kapal.addons.redis import RedisProvisioner
from kapal.domain.errors import Conflict, Forbidden, NotFound
from kapal.services.access import find_app
from kapal.services.context import Context
from kapal.store.db import Store
from kapal.store.models import Addon, App, Attachment, User

NOT_FOUND = "Couldn't find that Redis add-on."


@dataclass(frozen=True)
class RedisDatabase:
    """A kapal-redis add-on and what its server says (None: it does not answer)."""

    addon: Addon
    app: App
    config_vars: tuple[str, ...]
    policy: str
    info: dict[str, str] | None

    @property
    def plan(self) -> str:
        return self.addon.plan

    @property
    def persistent(self) -> bool:
        plan = REDIS.plan(self.addon.plan)
        return plan is not None and plan.persistent

    @property
    def maxclients(self) -> int:
        plan = REDIS.plan(self.addon.plan)
        return plan.connection_limit if plan else 0


def redis_database(ctx: Context, user: User, ident: str) -> RedisDatabase:
    """The add-on (by name or id) and its server's INFO, if the user may see it."""
    addon, app, config_vars = _find(ctx, user, ident)
    provisioner = RedisProvisioner(ctx.settings)
    return RedisDatabase(
        addon,
        app,
        config_vars,
        provisioner.policy(addon.name),
        provisioner.info(addon.name),
    )


def maxmemory_policy(ctx: Context, user: User, ident: str) -> str:
    addon, _, _ = _find(ctx, user, ident)
    return RedisProvisioner(ctx.settings).policy(addon.name)


def set_maxmemory_policy(ctx: Context, user: User, ident: str, policy: str) -> str:
    """Set the key eviction policy, now and for every later start of the server."""
    addon, _, _ = _find(ctx, user, ident)
    RedisProvisioner(ctx.settings).set_policy(addon.name, policy)
    return policy


def provisioned_redis_addons(store: Store) -> list[str]:
    """Names of the kapal-redis add-ons whose servers should be running."""
    with store.snapshot() as s:
        rows = s.execute(select(Addon.name, Addon.service).where(Addon.state == "provisioned"))
        return [name for name, service in rows if find_service(service) is REDIS]


def info_rows(db: RedisDatabase) -> list[tuple[str, str]]:
    """What `redis:info` shows, in Heroku's words where Heroku has them."""
    created = db.addon.created_at.strftime("%Y-%m-%d %H:%M UTC")
    rows = [
        ("Plan", db.plan),
        ("Status", "available" if db.info is not None else "unavailable"),
        ("Created", created),
    ]
    info = db.info or {}
    if "redis_version" in info:
        rows.append(("Version", info["redis_version"]))
    rows += [
        ("Maxmemory", db.policy),  # Heroku's name for the eviction policy
        ("Maxclients", str(db.maxclients)),
        ("Persistence", "AOF" if db.persistent else "none"),
    ]
    if db.info is not None:
        used = info.get("used_memory_human", "?")
        rows += [
            ("Memory", f"{used} used of {info.get('maxmemory_human', '?')}"),
            ("Clients", info.get("connected_clients", "?")),
            ("Keys", str(count_keys(info))),
        ]
    return rows


def count_keys(info: dict[str, str]) -> int:
    """The keys of every database, from INFO's `db0:keys=3,expires=0,avg_ttl=0` lines."""
    total = 0
    for key, value in info.items():
        if key.startswith("db") and key[2:].isdigit():
            fields = dict(part.partition("=")[::2] for part in value.split(","))
            total += int(fields.get("keys", "0") or 0)
    return total


def _find(ctx: Context, user: User, ident: str) -> tuple[Addon, App, tuple[str, ...]]:
    with ctx.store.session() as s:
        addon = s.scalar(select(Addon).where(or_(Addon.name == ident, Addon.id == ident)))
        if addon is None or find_service(addon.service) is not REDIS:
            raise NotFound(NOT_FOUND)
        try:
            app = find_app(s, user, addon.app_id)
        except Forbidden:
            raise NotFound(NOT_FOUND) from None  # another user's add-on: not even its name
        if addon.state != "provisioned":
            raise Conflict(f"{addon.name} is {addon.state}; try again when it is provisioned.")
        names = s.scalars(
            select(Attachment.name)
            .where(Attachment.addon_id == addon.id)
            .order_by(Attachment.created_at)
        )
        return addon, app, tuple(f"{name}_URL" for name in names)
