"""Helpers for tests against real kapal-redis servers: log in with a REDIS_URL, read a server's
settings as Kapal's admin user, find its process."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

from kapal.addons.redis import RedisProvisioner
from kapal.addons.redis_conf import ADMIN_USER, ServerConf, parse
from kapal.addons.resp import Reply, RespConnection


def connect(url: str, *, auth: bool = True) -> RespConnection:
    """A connection to the server of a redis:// URL, logged in with its password."""
    parts = urlsplit(url)
    assert parts.hostname == "localhost"
    assert parts.port is not None
    conn = RespConnection("127.0.0.1", parts.port, timeout=5)
    if auth:
        assert conn.call("AUTH", parts.password or "") == "OK"
    return conn


def conf_of(provisioner: RedisProvisioner, name: str) -> ServerConf:
    return parse((provisioner.root / name / "redis.conf").read_text())


def admin_call(provisioner: RedisProvisioner, name: str, *args: str) -> Reply:
    conf = conf_of(provisioner, name)
    with RespConnection("127.0.0.1", conf.port, timeout=5) as conn:
        conn.call("AUTH", ADMIN_USER, conf.admin_password)
        return conn.call(*args)


def config_get(provisioner: RedisProvisioner, name: str, key: str) -> str:
    reply = admin_call(provisioner, name, "CONFIG", "GET", key)
    assert isinstance(reply, list) and len(reply) == 2, reply
    value = reply[1]
    assert isinstance(value, bytes)
    return value.decode()


def server_pid(provisioner: RedisProvisioner, name: str) -> int:
    return int((provisioner.root / name / "redis.pid").read_text())


def alive(pid: int) -> bool:
    """Running, not a zombie waiting for init to reap it."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def process_uid(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("Uid:"):
            return int(line.split()[1])
    raise AssertionError(f"no Uid line for {pid}")
