"""pg:backups, pure: backup names (b003, APP::b003) and daily schedules (`02:00 Europe/Berlin`)
with the moments they fall due."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from kapal.domain.errors import InvalidParams

# Heroku's letters: b manual backups, a scheduled ("automatic") ones, r the copy taken
# just before a restore overwrites a database.
PREFIXES = {"capture": "b", "scheduled": "a", "restore": "r"}
KINDS = {prefix: kind for kind, prefix in PREFIXES.items()}
_REF = re.compile(r"^(?:(?P<app>[a-z][a-z0-9-]*)::)?(?P<prefix>[abr])(?P<number>[0-9]{1,9})$")
_AT = re.compile(r"^(?P<hour>[0-9]{1,2}):00(?:\s+(?P<zone>\S+))?$")
# The abbreviations Heroku's CLI accepts in `--at`, as the zones it means.
ZONE_ABBREVIATIONS = {
    "UTC": "UTC",
    "Z": "UTC",
    "GMT": "Europe/London",
    "BST": "Europe/London",
    "CET": "Europe/Paris",
    "CEST": "Europe/Paris",
    "EST": "America/New_York",
    "EDT": "America/New_York",
    "CST": "America/Chicago",
    "CDT": "America/Chicago",
    "MST": "America/Boise",
    "MDT": "America/Boise",
    "PST": "America/Los_Angeles",
    "PDT": "America/Los_Angeles",
}
# A daily backup runs during its hour; one missed because the API was down is not caught
# up later in the day (it would come at an hour the user did not choose).
WINDOW = timedelta(hours=1)


def backup_name(kind: str, number: int) -> str:
    """capture 3 -> `b003`."""
    return f"{PREFIXES[kind]}{number:03d}"


@dataclass(frozen=True)
class BackupRef:
    """`b003` (app None: the app in use) or `other-app::b003`."""

    app: str | None
    kind: str
    number: int

    @property
    def name(self) -> str:
        return backup_name(self.kind, self.number)


def is_backup_ref(text: str) -> bool:
    return _REF.match(text.strip()) is not None


def parse_backup_ref(text: str) -> BackupRef:
    match = _REF.match(text.strip())
    if match is None or int(match["number"]) == 0:
        raise InvalidParams(
            f"{text!r} is not a backup: use its name, as `kapal pg:backups` lists it "
            "(b003, a001, r002), or APP::b003 for another app's."
        )
    return BackupRef(match["app"], KINDS[match["prefix"]], int(match["number"]))


@dataclass(frozen=True)
class Schedule:
    """A daily backup at `hour`:00 in `timezone` (an IANA name)."""

    hour: int
    timezone: str

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @property
    def at(self) -> str:
        """`02:00 Europe/Berlin`, as `--at` takes it."""
        return f"{self.hour:02d}:00 {self.timezone}"


def parse_at(text: str) -> Schedule:
    """`--at '02:00 UTC'`, `'2:00 Europe/Berlin'`, `'02:00 PST'`; no zone means UTC."""
    match = _AT.match(text.strip())
    if match is None or int(match["hour"]) > 23:
        raise InvalidParams(
            f"Invalid schedule {text!r}: use HOUR:00 TIMEZONE, for example "
            "'02:00 UTC' or '02:00 Europe/Berlin'."
        )
    zone = match["zone"] or "UTC"
    zone = ZONE_ABBREVIATIONS.get(zone.upper(), zone)
    try:
        ZoneInfo(zone)
    except (ZoneInfoNotFoundError, ValueError):
        raise InvalidParams(
            f"Unknown time zone {zone!r}: use a name such as UTC, Europe/Berlin or "
            "America/Los_Angeles."
        ) from None
    return Schedule(int(match["hour"]), zone)


def last_due(schedule: Schedule, now: datetime) -> datetime:
    """The latest moment at or before `now` when the backup was due (UTC).

    On the day clocks skip the hour, it is due an hour later by the wall clock; on the day
    they repeat it, at its first occurrence (PEP 495's fold=0 for both)."""
    zone = schedule.zone
    local = now.astimezone(zone)
    for days in range(3):
        day = local.date() - timedelta(days=days)
        due = datetime(day.year, day.month, day.day, schedule.hour, tzinfo=zone)
        if due.astimezone(UTC) <= now:
            return due.astimezone(UTC)
    raise AssertionError("a daily time is due at least once in three days")  # pragma: no cover


def next_due(schedule: Schedule, now: datetime) -> datetime:
    """The first moment after `now` when the backup is due (UTC)."""
    zone = schedule.zone
    local = now.astimezone(zone)
    for days in range(3):
        day = local.date() + timedelta(days=days)
        due = datetime(day.year, day.month, day.day, schedule.hour, tzinfo=zone)
        if due.astimezone(UTC) > now:
            return due.astimezone(UTC)
    raise AssertionError("a daily time is due at least once in three days")  # pragma: no cover


def is_due(schedule: Schedule, now: datetime, last_run_at: datetime | None) -> bool:
    """Due now: within the hour after its time, and not yet run since that time."""
    due = last_due(schedule, now)
    return now - due < WINDOW and (last_run_at is None or last_run_at < due)
