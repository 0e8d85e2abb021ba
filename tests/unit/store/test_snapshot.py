"""Snapshots: read-only transactions that neither wait for a writer nor see its later commits."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from sqlalchemy import text

from kapal.store.db import ReadOnlySnapshot, Store
from kapal.store.models import User


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    store = Store.open(f"sqlite:///{tmp_path}/state.db")
    with store.session() as s:
        s.execute(text("CREATE TABLE marks (n INTEGER)"))
        s.execute(text("INSERT INTO marks VALUES (1)"))
    yield store
    store.engine.dispose()


def other_writer(tmp_path: Path) -> sqlite3.Connection:
    """Another process's connection (the API's), in autocommit mode so BEGIN is explicit."""
    return sqlite3.connect(tmp_path / "state.db", isolation_level=None, timeout=0)


def count(store: Store) -> int:
    with store.snapshot() as s:
        return int(s.execute(text("SELECT count(*) FROM marks")).scalar_one())


def test_a_snapshot_reads_while_a_writer_holds_the_lock(store: Store, tmp_path: Path) -> None:
    writer = other_writer(tmp_path)
    writer.execute("BEGIN IMMEDIATE")
    writer.execute("INSERT INTO marks VALUES (2)")
    pool = ThreadPoolExecutor(1)
    try:
        # In a thread: a read waiting for the write lock fails on the result's deadline
        # rather than hanging the test (the writer lets go in `finally`).
        seen = pool.submit(count, store).result(timeout=10)
    finally:
        writer.execute("COMMIT")
        writer.close()
        pool.shutdown()
    assert seen == 1  # the writer's insert was not committed yet
    assert count(store) == 2


def test_a_snapshot_does_not_see_commits_made_after_its_first_read(
    store: Store, tmp_path: Path
) -> None:
    writer = other_writer(tmp_path)
    try:
        with store.snapshot() as s:
            before = s.execute(text("SELECT count(*) FROM marks")).scalar_one()
            writer.execute("INSERT INTO marks VALUES (2)")  # committed at once
            after = s.execute(text("SELECT count(*) FROM marks")).scalar_one()
    finally:
        writer.close()
    assert before == after == 1
    assert count(store) == 2


def test_writing_in_a_snapshot_is_refused(store: Store) -> None:
    with pytest.raises(ReadOnlySnapshot), store.snapshot() as s:
        s.add(User(email="someone@example.com", password_hash="x"))
    with store.snapshot() as s:
        assert s.execute(text("SELECT count(*) FROM users")).scalar_one() == 0
