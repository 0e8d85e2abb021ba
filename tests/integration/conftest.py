"""Fixtures shared by integration tests of several components."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.conftest import free_port

from kapal.addons.errors import ClusterError
from kapal.addons.postgres_cluster import ManagedCluster
from kapal.settings import Settings


@pytest.fixture(scope="session")
def admin_url() -> Iterator[str]:
    """A PostgreSQL superuser URL standing in for an operator's external server.

    By default a throwaway Kapal-managed cluster: provisioning revokes CONNECT from PUBLIC on
    every database of the server it runs on, which must not happen to the machine's shared
    server. KAPAL_TEST_POSTGRES_ADMIN_URL points the tests at another (disposable) server.
    """
    url = os.environ.get("KAPAL_TEST_POSTGRES_ADMIN_URL")
    if url:
        yield url
        return
    root = Path(tempfile.mkdtemp(prefix="kapal-pg-external-", dir="/tmp"))
    root.chmod(0o711)
    cluster = ManagedCluster(Settings(data_dir=root, postgres_port=free_port()))
    try:
        cluster.ensure_running()
    except ClusterError as exc:
        shutil.rmtree(root, ignore_errors=True)
        pytest.fail(f"the add-on tests need PostgreSQL's server binaries: {exc}")
    try:
        yield cluster.admin_url()
    finally:
        cluster.stop()
        shutil.rmtree(root, ignore_errors=True)
