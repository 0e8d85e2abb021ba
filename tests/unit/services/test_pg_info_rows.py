"""What pg:info shows, how sizes are written, and what the storage quota decides: pure."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kapal.addons.postgres_database import DatabaseInfo
from kapal.addons.postgres_quota import StorageState
from kapal.services.pg import DatabaseReport, PgDatabase, data_size, format_bytes, info_rows
from kapal.services.pg_quota import Action, QuotaChange, decide, message
from kapal.store.models import Addon, App

CREATED = datetime(2026, 11, 26, 13, 39, tzinfo=UTC)
DEMO = App(id="a1", name="demo")


def report(info: DatabaseInfo | None, owner: App = DEMO) -> DatabaseReport:
    addon = Addon(
        name="postgresql-pink-1",
        service="kapal-postgresql",
        plan="essential-0",
        state="provisioned",
        created_at=CREATED,
    )
    return DatabaseReport(PgDatabase(addon, DEMO, owner, ("DATABASE_URL",)), info)


def figures(**changes: object) -> DatabaseInfo:
    values: dict[str, object] = {
        "version": "16.4",
        "size": 8_283_750,
        "connections": 3,
        "connection_limit": 20,
        "writes_refused": False,
        "tables": 5,
    }
    values.update(changes)
    return DatabaseInfo(**values)  # type: ignore[arg-type]


def test_an_available_database() -> None:
    assert info_rows(report(figures())) == [
        ("Plan", "essential-0"),
        ("Status", "Available"),
        ("Connections", "3/20"),
        ("PG Version", "16.4"),
        ("Created", "2026-11-26 13:39 UTC"),
        ("Data Size", "7.9 MB / 1 GB (0.77%)"),
        ("Tables", "5"),
        ("Add-on", "postgresql-pink-1"),
    ]


def test_over_quota_unlimited_connections_and_another_owner() -> None:
    rows = dict(
        info_rows(report(figures(writes_refused=True, connection_limit=-1), App(id="o", name="x")))
    )
    assert rows["Status"] == "Over storage quota: writes refused"
    assert rows["Connections"] == "3"
    assert rows["Billing App"] == "x"


def test_an_unreachable_server_shows_what_the_store_knows() -> None:
    assert info_rows(report(None)) == [
        ("Plan", "essential-0"),
        ("Status", "Unavailable"),
        ("Created", "2026-11-26 13:39 UTC"),
        ("Add-on", "postgresql-pink-1"),
    ]


@pytest.mark.parametrize(
    ("size", "text"),
    [
        (0, "0 bytes"),
        (1023, "1023 bytes"),
        (1024, "1 kB"),
        (1536, "1.5 kB"),
        (8_283_750, "7.9 MB"),
        (1 << 30, "1 GB"),
        (64 << 30, "64 GB"),
        (3 << 40, "3 TB"),
        (5 << 50, "5120 TB"),
    ],
)
def test_format_bytes(size: int, text: str) -> None:
    assert format_bytes(size) == text


def test_data_size_with_and_without_a_limit() -> None:
    assert data_size(1 << 29, 1 << 30) == "512 MB / 1 GB (50.00%)"
    assert data_size(1 << 29, 0) == "512 MB"


@given(st.integers(min_value=0, max_value=1 << 60))
def test_format_bytes_is_a_short_number_and_a_unit(size: int) -> None:
    number, unit = format_bytes(size).split(" ")
    assert unit in ("bytes", "kB", "MB", "GB", "TB")
    assert float(number) >= 0 and (unit == "TB" or float(number) < 1024)


@pytest.mark.parametrize(
    ("size", "refused", "limit", "action"),
    [
        (10, False, 100, None),
        (100, False, 100, None),  # at the limit is still under it
        (101, False, 100, Action.REFUSE),
        (101, True, 100, Action.ENFORCE),
        (100, True, 100, Action.ALLOW),
        (10**12, False, 0, None),  # no limit
        (10**12, True, 0, Action.ALLOW),
    ],
)
def test_decide(size: int, refused: bool, limit: int, action: Action | None) -> None:
    assert decide(StorageState(size, refused), limit) is action


def test_messages_say_what_happened_and_what_to_do() -> None:
    over = message(QuotaChange("postgresql-pink-1", True, 3 << 29, 1 << 30))
    assert over.startswith("postgresql-pink-1 is over its plan's storage (1.5 GB / 1 GB (150.00%))")
    assert "VACUUM FULL" in over
    under = message(QuotaChange("postgresql-pink-1", False, 1 << 29, 1 << 30))
    assert under.endswith("writes are allowed again.")


def test_a_database_still_being_made_says_so() -> None:
    made = report(None)
    made.database.addon.state = "provisioning"
    assert ("Status", "Provisioning") in info_rows(made)
