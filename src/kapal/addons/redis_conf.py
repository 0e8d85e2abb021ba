"""One kapal-redis server's redis.conf: what Kapal writes, and the values it reads back."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

# Heroku's default, so a full instance says so instead of silently losing keys.
DEFAULT_POLICY = "noeviction"
# Redis's eight policies, described as Heroku's CLI describes them.
POLICIES: dict[str, str] = {
    "noeviction": "returns errors when memory limit is reached",
    "allkeys-lfu": "removes less frequently used keys first",
    "volatile-lfu": "removes less frequently used keys first that have an expiry set",
    "allkeys-lru": "removes less recently used keys first",
    "volatile-lru": "removes less recently used keys first that have an expiry set",
    "allkeys-random": "evicts random keys",
    "volatile-random": "evicts random keys but only those that have an expiry set",
    "volatile-ttl": "only evicts keys with an expiry set and a short TTL",
}

ADMIN_USER = "kapal"
# The app's user (`default`, which AUTH <password> logs in as) may do everything with its
# data but not change the server: no CONFIG (the plan's maxmemory and maxclients are
# Kapal's to set), no SHUTDOWN, SAVE, REPLICAOF, ACL, MODULE, DEBUG, MONITOR (the admin
# category), and no MIGRATE (it connects out). Harmless admin commands apps and their
# dashboards use (CLIENT, SLOWLOG, LATENCY, LASTSAVE, ROLE) are given back.
APP_RULES = "~* &* +@all -@admin -migrate +client +slowlog +latency +lastsave +role"
ADMIN_RULES = "~* &* +@all"
_SECRET = re.compile(r"^[0-9a-f]{32,128}$")


@dataclass(frozen=True)
class ServerConf:
    """Everything Kapal decides about one server; the rest of redis.conf follows from it."""

    port: int
    password: str  # the app's, in REDIS_URL
    admin_password: str  # Kapal's own user, for PING, INFO and CONFIG SET
    memory_mb: int
    maxclients: int
    persistent: bool  # an append-only file; without it nothing is ever written to disk
    policy: str = DEFAULT_POLICY


def quoted(text: str) -> str:
    """A redis.conf string (double quotes, backslash escapes)."""
    escaped = text.replace("\\", "\\\\").replace('"', '\\"')
    return '"' + escaped.replace("\n", "\\n").replace("\r", "\\r") + '"'


def render(conf: ServerConf, directory: Path) -> str:
    """The whole redis.conf for a server whose files live in `directory`."""
    for secret in (conf.password, conf.admin_password):
        if not _SECRET.match(secret):
            raise ValueError("Redis passwords must be 32 to 128 hex digits")
    if conf.policy not in POLICIES:
        raise ValueError(f"unknown maxmemory policy {conf.policy!r}")
    persistence = (
        ["appendonly yes", "appendfsync everysec"] if conf.persistent else ["appendonly no"]
    )
    lines = [
        "# Written by Kapal; changes here are lost when it writes the file again.",
        "bind 127.0.0.1",
        "protected-mode yes",
        f"port {conf.port}",
        "daemonize yes",
        f"pidfile {quoted(str(directory / 'redis.pid'))}",
        f"logfile {quoted(str(directory / 'redis.log'))}",
        "loglevel notice",
        "always-show-logo no",
        f"dir {quoted(str(directory))}",
        'save ""',
        *persistence,
        f"maxmemory {conf.memory_mb}mb",
        f"maxmemory-policy {conf.policy}",
        f"maxclients {conf.maxclients}",
        "enable-debug-command no",
        "enable-module-command no",
        "enable-protected-configs no",
        f"user default on >{conf.password} {APP_RULES}",
        f"user {ADMIN_USER} on >{conf.admin_password} {ADMIN_RULES}",
    ]
    return "\n".join(lines) + "\n"


def parse(text: str) -> ServerConf:
    """The values of a redis.conf `render` wrote; ValueError when one is missing."""
    values: dict[str, str] = {}
    users: dict[str, str] = {}
    for line in text.splitlines():
        words = line.split()
        if len(words) >= 2 and not words[0].startswith("#"):
            if words[0] == "user" and len(words) >= 4 and words[3].startswith(">"):
                users[words[1]] = words[3][1:]
            else:
                values[words[0]] = words[1]
    missing = [
        key for key in ("port", "maxmemory", "maxclients", "appendonly") if key not in values
    ]
    missing += [f"user {user}" for user in ("default", ADMIN_USER) if user not in users]
    if missing:
        raise ValueError(f"redis.conf has no {missing[0]} line")
    return ServerConf(
        port=int(values["port"]),
        password=users["default"],
        admin_password=users[ADMIN_USER],
        memory_mb=int(values["maxmemory"].removesuffix("mb")),
        maxclients=int(values["maxclients"]),
        persistent=values["appendonly"] == "yes",
        policy=values.get("maxmemory-policy", DEFAULT_POLICY),
    )
