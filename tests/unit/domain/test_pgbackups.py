"""Backup names and daily schedules across time zones and daylight saving changes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kapal.domain.errors import InvalidParams
from kapal.domain.pgbackups import (
    BackupRef,
    Schedule,
    backup_name,
    is_backup_ref,
    is_due,
    last_due,
    next_due,
    parse_at,
    parse_backup_ref,
)

BERLIN = Schedule(2, "Europe/Berlin")


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)  # type: ignore[misc]


def test_backup_names() -> None:
    assert backup_name("capture", 3) == "b003"
    assert backup_name("scheduled", 12) == "a012"
    assert backup_name("restore", 1234) == "r1234"


@pytest.mark.parametrize(
    ("text", "ref"),
    [
        ("b003", BackupRef(None, "capture", 3)),
        ("b3", BackupRef(None, "capture", 3)),
        (" a001 ", BackupRef(None, "scheduled", 1)),
        ("r2", BackupRef(None, "restore", 2)),
        ("my-app::b010", BackupRef("my-app", "capture", 10)),
    ],
)
def test_backup_refs(text: str, ref: BackupRef) -> None:
    assert is_backup_ref(text)
    assert parse_backup_ref(text) == ref


@pytest.mark.parametrize("text", ["", "b", "x001", "b000", "DATABASE", "B001", "::b001", "a::"])
def test_not_backup_refs(text: str) -> None:
    with pytest.raises(InvalidParams, match="is not a backup"):
        parse_backup_ref(text)


def test_database_names_are_not_backup_refs() -> None:
    assert not is_backup_ref("DATABASE")
    assert not is_backup_ref("postgresql-flat-12345")
    assert not is_backup_ref("HEROKU_POSTGRESQL_RED_URL")


@pytest.mark.parametrize(
    ("text", "hour", "zone"),
    [
        ("02:00 UTC", 2, "UTC"),
        ("2:00", 2, "UTC"),
        ("23:00 Europe/Berlin", 23, "Europe/Berlin"),
        ("00:00   America/Los_Angeles", 0, "America/Los_Angeles"),
        ("02:00 PST", 2, "America/Los_Angeles"),
        ("02:00 cet", 2, "Europe/Paris"),
        ("02:00 Z", 2, "UTC"),
    ],
)
def test_parse_at(text: str, hour: int, zone: str) -> None:
    assert parse_at(text) == Schedule(hour, zone)


@pytest.mark.parametrize("text", ["02:30 UTC", "24:00 UTC", "2am", "02:00 UTC extra", ""])
def test_parse_at_refuses_what_is_not_an_hour(text: str) -> None:
    with pytest.raises(InvalidParams, match="HOUR:00 TIMEZONE"):
        parse_at(text)


@pytest.mark.parametrize("zone", ["Mars/Olympus", "../../etc/passwd", "Europe/"])
def test_parse_at_refuses_unknown_zones(zone: str) -> None:
    with pytest.raises(InvalidParams, match="Unknown time zone"):
        parse_at(f"02:00 {zone}")


def test_schedule_at_is_what_parse_at_takes() -> None:
    assert BERLIN.at == "02:00 Europe/Berlin"
    assert parse_at(BERLIN.at) == BERLIN


def test_due_times_in_winter_and_summer() -> None:
    # 02:00 in Berlin is 01:00 UTC in winter (CET) and 00:00 UTC in summer (CEST).
    assert last_due(BERLIN, utc(2026, 11, 27, 12, 0)) == utc(2026, 11, 27, 1, 0)
    assert next_due(BERLIN, utc(2026, 11, 27, 12, 0)) == utc(2026, 11, 28, 1, 0)
    assert last_due(BERLIN, utc(2026, 7, 1, 0, 30)) == utc(2026, 7, 1, 0, 0)
    assert last_due(BERLIN, utc(2026, 7, 1, 0, 0)) == utc(2026, 7, 1, 0, 0)
    assert last_due(BERLIN, utc(2026, 6, 30, 23, 59)) == utc(2026, 6, 30, 0, 0)


def test_the_skipped_hour_runs_an_hour_later_and_the_repeated_one_once() -> None:
    # 2026-03-29: Berlin's clocks jump from 02:00 to 03:00, so 02:00 is 03:00 CEST (01:00 UTC).
    assert last_due(BERLIN, utc(2026, 3, 29, 12, 0)) == utc(2026, 3, 29, 1, 0)
    # 2026-10-25: 02:00-03:00 happens twice; the first one (02:00 CEST, 00:00 UTC) counts.
    assert last_due(BERLIN, utc(2026, 10, 25, 12, 0)) == utc(2026, 10, 25, 0, 0)


def test_is_due_within_the_hour_and_once() -> None:
    at = utc(2026, 11, 27, 1, 0)
    assert not is_due(BERLIN, at - timedelta(seconds=1), None)
    assert is_due(BERLIN, at, None)
    assert is_due(BERLIN, at + timedelta(minutes=59), None)
    assert not is_due(BERLIN, at + timedelta(hours=1), None)  # missed: not caught up later
    assert not is_due(BERLIN, at + timedelta(minutes=10), at + timedelta(minutes=1))
    assert is_due(BERLIN, at + timedelta(minutes=10), at - timedelta(days=1))


def test_a_clock_ticking_through_a_year_runs_it_once_a_day() -> None:
    """Every 10 minutes for a year in Berlin, DST changes included: one run per day."""
    now, last, runs = utc(2026, 1, 1), None, []
    while now < utc(2027, 1, 1):
        if is_due(BERLIN, now, last):
            last = now
            runs.append(now)
        now += timedelta(minutes=10)
    assert len(runs) == 365
    assert len({r.astimezone(BERLIN.zone).date() for r in runs}) == 365
    assert {r.astimezone(BERLIN.zone).hour for r in runs} == {2, 3}  # 3: the skipped hour


ZONES = ["UTC", "Europe/Berlin", "America/Los_Angeles", "Australia/Lord_Howe", "Asia/Kolkata"]


@given(
    hour=st.integers(0, 23),
    zone=st.sampled_from(ZONES),
    now=st.datetimes(datetime(2000, 1, 1), datetime(2100, 1, 1), timezones=st.just(UTC)),
)
def test_due_times_bracket_now(hour: int, zone: str, now: datetime) -> None:
    schedule = Schedule(hour, zone)
    before, after = last_due(schedule, now), next_due(schedule, now)
    assert before <= now < after
    assert timedelta(hours=22) <= after - before <= timedelta(hours=26)
    assert parse_at(schedule.at) == schedule
