"""Helpers shared by every test layer."""

from __future__ import annotations

import shutil
import socket
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

# This machine is shared and its speed varies: no test may fail for being slow, Hypothesis's
# own timing checks included.
settings.register_profile("kapal", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("kapal")


def free_port() -> int:
    """A port that was free a moment ago on 127.0.0.1."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def open_dir() -> Iterator[Path]:
    """A temporary directory other users may pass through (0711): as root, dynos and builds
    run as kapal-dyno and PostgreSQL as kapal-postgres, and pytest's own tmp_path is 0700."""
    path = Path(tempfile.mkdtemp(prefix="kapal-test-"))
    path.chmod(0o711)
    yield path
    shutil.rmtree(path, ignore_errors=True)
