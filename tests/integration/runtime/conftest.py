"""Fixtures for the runtime integration tests (helpers live in harness.py)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.integration.runtime.harness import World

from kapal.store.db import Store
from kapal.store.models import App, User


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    store = Store.open(f"sqlite:///{tmp_path}/k.db")
    with store.session() as s:
        user = User(email="dev@example.com", password_hash="x")
        s.add(user)
        s.flush()
        app = App(name="demo", owner_id=user.id)
        s.add(app)
        s.flush()
        app_id, user_id = app.id, user.id
    yield World(tmp_path, store, app_id, user_id)
    store.engine.dispose()
