"""Fixtures for the runtime integration tests (helpers live in harness.py)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.integration.runtime.harness import World, add_demo_app

from kapal.store.db import Store


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    store = Store.open(f"sqlite:///{tmp_path}/k.db")
    app_id, user_id = add_demo_app(store)
    yield World(tmp_path, store, app_id, user_id)
    store.engine.dispose()
