from __future__ import annotations

import shutil
from collections.abc import Iterator

import pytest

from tests.e2e.kapal_server import KapalServer, processes_under, start_server


@pytest.fixture(scope="session")
def kapal_server() -> Iterator[KapalServer]:
    """One Kapal for the whole e2e session: started once, stopped (Ctrl-C) at the end."""
    server = start_server()
    yield server
    status = server.stop()
    try:
        assert status == 0, "kapal up did not stop cleanly:\n" + "".join(server.output[-50:])
        assert processes_under(server.root) == [], "Ctrl-C left processes running"
    finally:
        shutil.rmtree(server.root, ignore_errors=True)
