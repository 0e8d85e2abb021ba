"""redis.conf as Kapal writes and reads it back."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kapal.addons.redis_conf import APP_RULES, POLICIES, ServerConf, parse, quoted, render

SECRET = "ab" * 32
ADMIN = "cd" * 32
MINI = ServerConf(16500, SECRET, ADMIN, memory_mb=25, maxclients=20, persistent=False)


def test_mini_keeps_nothing_on_disk_and_has_its_limits() -> None:
    lines = render(MINI, Path("/data/addons/redis/redis-a-1")).splitlines()
    for line in (
        "bind 127.0.0.1",
        "protected-mode yes",
        "port 16500",
        "daemonize yes",
        'dir "/data/addons/redis/redis-a-1"',
        'pidfile "/data/addons/redis/redis-a-1/redis.pid"',
        'save ""',
        "appendonly no",
        "maxmemory 25mb",
        "maxmemory-policy noeviction",
        "maxclients 20",
        "enable-debug-command no",
        "enable-module-command no",
        f"user default on >{SECRET} {APP_RULES}",
        f"user kapal on >{ADMIN} ~* &* +@all",
    ):
        assert line in lines
    assert "requirepass" not in "\n".join(lines)  # the ACL users replace it


def test_persistent_plans_append_every_second() -> None:
    text = render(ServerConf(1, SECRET, ADMIN, 50, 40, persistent=True), Path("/d"))
    assert "appendonly yes\nappendfsync everysec\n" in text


@given(
    port=st.integers(1, 65535),
    memory=st.integers(1, 10_000),
    clients=st.integers(1, 10_000),
    persistent=st.booleans(),
    policy=st.sampled_from(sorted(POLICIES)),
    secrets=st.tuples(*[st.text("0123456789abcdef", min_size=32, max_size=128)] * 2),
)
def test_parse_reads_back_what_render_wrote(
    port: int, memory: int, clients: int, persistent: bool, policy: str, secrets: tuple[str, str]
) -> None:
    conf = ServerConf(port, *secrets, memory, clients, persistent, policy)
    assert parse(render(conf, Path('/a dir/with "quotes"'))) == conf


def test_parse_refuses_half_a_file() -> None:
    text = render(MINI, Path("/d"))
    with pytest.raises(ValueError, match="no maxclients line"):
        parse(text.split("maxclients")[0])


@pytest.mark.parametrize(
    "conf",
    [
        ServerConf(1, "short", ADMIN, 25, 20, False),
        ServerConf(1, SECRET, SECRET + " ~* +@all", 25, 20, False),
        ServerConf(1, SECRET, ADMIN, 25, 20, False, policy="sometimes"),
    ],
)
def test_render_refuses_what_would_change_the_file_meaning(conf: ServerConf) -> None:
    with pytest.raises(ValueError):
        render(conf, Path("/d"))


def test_quoted_escapes_what_redis_would_read_differently() -> None:
    assert quoted('a "b" \\c\nd') == '"a \\"b\\" \\\\c\\nd"'


def test_the_eight_policies_of_redis() -> None:
    assert sorted(POLICIES) == sorted(
        [
            "noeviction",
            "allkeys-lru",
            "allkeys-lfu",
            "allkeys-random",
            "volatile-lru",
            "volatile-lfu",
            "volatile-random",
            "volatile-ttl",
        ]
    )
