"""Fixtures for CLI tests: the fake API, a home directory with a saved login, `kapal`."""

from __future__ import annotations

from pathlib import Path

import pytest
from tests.unit.cli.cli_fakeapi import EMAIL, TOKEN, FakeApi, Kapal


@pytest.fixture
def fake() -> FakeApi:
    return FakeApi()


@pytest.fixture
def home(tmp_path: Path) -> Path:
    path = tmp_path / "home"
    path.mkdir()
    return path


@pytest.fixture
def netrc_path(home: Path) -> Path:
    path = home / ".netrc"
    path.write_text(f"machine localhost\n  login {EMAIL}\n  password {TOKEN}\n")
    path.chmod(0o600)
    return path


@pytest.fixture
def kapal(fake: FakeApi, home: Path, netrc_path: Path) -> Kapal:
    return Kapal(fake, home, netrc_path)
