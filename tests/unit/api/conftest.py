"""The API's ASGI app on a fresh SQLite store, for the API tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from kapal.api.app import create_api
from kapal.services.context import Context
from kapal.settings import Settings


@pytest.fixture
def ctx(tmp_path: Path) -> Iterator[Context]:
    settings = Settings(data_dir=tmp_path, database_url=f"sqlite:///{tmp_path}/k.db")
    context = Context.create(settings)
    yield context
    context.close()


@pytest.fixture
def client(ctx: Context) -> Iterator[TestClient]:
    with TestClient(create_api(ctx)) as test_client:
        yield test_client
