from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from kapal.services.auth import signup
from kapal.services.context import Context
from kapal.settings import Settings
from kapal.store.models import User


@pytest.fixture
def ctx(tmp_path: Path) -> Iterator[Context]:
    settings = Settings(data_dir=tmp_path, database_url=f"sqlite:///{tmp_path}/state/k.db")
    context = Context.create(settings)
    yield context
    context.close()


@pytest.fixture
def user(ctx: Context) -> User:
    return signup(ctx, "owner@example.com", "password123")[0]
