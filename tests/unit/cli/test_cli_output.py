from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

from tests.unit.cli.cli_fakeapi import NOW, release_json

from kapal.cli.config import shell_lines
from kapal.cli.output import (
    ago,
    columns,
    format_time,
    hexagon,
    key_values,
    key_values_of,
    within,
)
from kapal.cli.ps import format_ps, formation_summary
from kapal.cli.releases import format_releases


def dyno(name: str, command: str = "gunicorn app:app", size: str = "Eco", **extra: str) -> dict:
    return {
        "id": name,
        "name": name,
        "type": name.split(".")[0],
        "state": "up",
        "command": command,
        "size": size,
        "created_at": "2026-11-26T13:39:00Z",
        "updated_at": "2026-11-26T13:39:22Z",
        **extra,
    }


def test_hexagon() -> None:
    assert hexagon("demo") == "⬢ demo"


def test_time_and_age() -> None:
    assert format_time("2026-11-26T13:39:22Z", UTC) == "2026/11/26 13:39:22 +0000"
    assert format_time("2026-11-26T13:39:22+00:00", timezone(timedelta(hours=-4))) == (
        "2026/11/26 09:39:22 -0400"
    )
    assert format_time("2026-11-26T13:39:22", UTC) == "2026/11/26 13:39:22 +0000"
    now = datetime(2026, 11, 26, 13, 39, 28, tzinfo=UTC)
    assert ago("2026-11-26T13:39:22Z", now) == "~ 6s ago"
    assert ago("2026-11-26T13:33:00Z", now) == "~ 6m ago"
    assert ago("2026-11-26T10:00:00Z", now) == "~ 3h ago"
    assert ago("2026-11-20T13:00:00Z", now) == "~ 6d ago"
    assert ago("2026-11-26T13:40:00Z", now) == "~ 0s ago"  # clock skew never goes negative


def test_time_until() -> None:
    now = datetime(2026, 11, 26, 13, 39, 28, tzinfo=UTC)
    assert within("2026-11-26T13:39:37Z", now) == "in 9s"
    assert within("2026-11-26T13:59:28Z", now) == "in 20m"
    assert within("2026-11-27T15:00:00Z", now) == "in 1d"
    assert within("2026-11-26T13:39:28Z", now) == "now"
    assert within("2026-11-26T13:00:00Z", now) == "now"


def test_key_values_align_after_the_longest_key() -> None:
    lines = key_values_of({"TIMES": "2", "PAPERTRAIL_API_TOKEN": "w9En"})
    assert lines == ["PAPERTRAIL_API_TOKEN: w9En", "TIMES:                2"]
    assert key_values([]) == []


def test_columns() -> None:
    assert columns([["v10", "a", "x"], ["v9", "longer", "y"]]) == [
        "v10  a       x",
        "v9   longer  y",
    ]


def test_ps_format_single_group() -> None:
    assert format_ps([dyno("web.1")], NOW, UTC) == [
        "=== web (Eco): gunicorn app:app (1)",
        "",
        "web.1: up 2026/11/26 13:39:22 +0000 (~ 6s ago)",
    ]


def test_ps_format_one_off_first_then_groups_sorted_numerically() -> None:
    dynos = [
        dyno("worker.1", command="python worker.py"),
        dyno("web.10"),
        dyno("web.2", state="crashed"),
        dyno("run.4821", command="bash", size="Basic"),
    ]
    assert format_ps(dynos, NOW, UTC) == [
        "=== run: one-off processes (1)",
        "",
        "run.4821 (Basic): up 2026/11/26 13:39:22 +0000 (~ 6s ago): bash",
        "",
        "=== web (Eco): gunicorn app:app (2)",
        "",
        "web.2: crashed 2026/11/26 13:39:22 +0000 (~ 6s ago)",
        "web.10: up 2026/11/26 13:39:22 +0000 (~ 6s ago)",
        "",
        "=== worker (Eco): python worker.py (1)",
        "",
        "worker.1: up 2026/11/26 13:39:22 +0000 (~ 6s ago)",
    ]


def test_formation_summary_sorted_by_type() -> None:
    rows = [
        {"id": "2", "type": "worker", "quantity": 0, "size": "Eco", "command": "w"},
        {"id": "1", "type": "web", "quantity": 1, "size": "Eco", "command": "g"},
    ]
    assert formation_summary(rows) == "web=1:Eco worker=0:Eco"


def test_releases_format_aligned_newest_first_with_release_phase() -> None:
    releases = [
        release_json(4, "Set FOO config vars"),
        release_json(5, "Deploy abc12345", status="pending"),
        release_json(6, "Deploy def67890", status="failed", user=None),
    ]
    when = "2026/11/26 13:39:22 +0000"
    assert format_releases(releases, UTC) == [
        f"v6  Deploy def67890 release command failed                       {when}",
        f"v5  Deploy abc12345 release command executing  user@example.com  {when}",
        f"v4  Set FOO config vars                        user@example.com  {when}",
    ]


def test_shell_lines_quote_when_needed() -> None:
    config = {"B": "hello world", "A": "1", "C": "x=y", "D": "it's"}
    assert shell_lines(config) == ["A=1", "B='hello world'", "C=x=y", "D='it'\"'\"'s'"]
