"""What `redis:info` shows for a kapal-redis add-on, from its row and its server's INFO."""

from __future__ import annotations

from datetime import UTC, datetime

from kapal.services.redis import RedisDatabase, count_keys, info_rows
from kapal.store.models import Addon, App

CREATED = datetime(2026, 11, 26, 13, 39, tzinfo=UTC)


def db(plan: str, info: dict[str, str] | None, policy: str = "noeviction") -> RedisDatabase:
    addon = Addon(name="redis-a-1", service="kapal-redis", plan=plan, created_at=CREATED)
    return RedisDatabase(addon, App(name="demo"), ("REDIS_URL",), policy, info)


def test_a_running_server() -> None:
    info = {
        "redis_version": "7.0.15",
        "used_memory_human": "1.02M",
        "maxmemory_human": "50.00M",
        "connected_clients": "3",
        "db0": "keys=5,expires=1,avg_ttl=0",
        "db2": "keys=2,expires=0,avg_ttl=0",
    }
    assert info_rows(db("premium-0", info, "allkeys-lru")) == [
        ("Plan", "premium-0"),
        ("Status", "available"),
        ("Created", "2026-11-26 13:39 UTC"),
        ("Version", "7.0.15"),
        ("Maxmemory", "allkeys-lru"),
        ("Maxclients", "40"),
        ("Persistence", "AOF"),
        ("Memory", "1.02M used of 50.00M"),
        ("Clients", "3"),
        ("Keys", "7"),
    ]


def test_a_server_that_does_not_answer() -> None:
    assert info_rows(db("mini", None)) == [
        ("Plan", "mini"),
        ("Status", "unavailable"),
        ("Created", "2026-11-26 13:39 UTC"),
        ("Maxmemory", "noeviction"),
        ("Maxclients", "20"),
        ("Persistence", "none"),
    ]


def test_count_keys_ignores_other_fields() -> None:
    assert count_keys({"db0": "keys=4,expires=0", "dbsize": "9", "db": "keys=1"}) == 4
    assert count_keys({}) == 0
