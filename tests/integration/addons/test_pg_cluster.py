"""Kapal's own cluster: initdb and start from the installed binaries, provision, stop."""

from __future__ import annotations

import os
import re
import stat
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from psycopg.conninfo import make_conninfo
from tests.conftest import free_port

from kapal.addons.errors import ClusterError
from kapal.addons.postgres import PostgresProvisioner
from kapal.addons.postgres_cluster import ManagedCluster, find_bin_dir
from kapal.settings import Settings

pytestmark = pytest.mark.timeout(240)


@pytest.fixture
def data_dir(open_dir: Path) -> Path:
    """The unprivileged PostgreSQL user must reach its directory."""
    return open_dir


@pytest.fixture
def cluster(data_dir: Path) -> Iterator[ManagedCluster]:
    try:
        find_bin_dir()
    except ClusterError as exc:
        pytest.fail(str(exc))
    managed = ManagedCluster(Settings(data_dir=data_dir, postgres_port=free_port()))
    yield managed
    managed.stop()


def test_cluster_lifecycle_and_an_addon_on_it(cluster: ManagedCluster) -> None:
    assert not cluster.is_running()
    cluster.ensure_running()
    cluster.ensure_running()  # idempotent: already running
    assert cluster.is_running()

    secret = cluster.password_file.stat()
    assert stat.S_IMODE(secret.st_mode) == 0o600
    assert secret.st_uid == os.geteuid()
    assert stat.S_IMODE(cluster.data_dir.stat().st_mode) == 0o700
    if os.geteuid() == 0:
        assert cluster.data_dir.stat().st_uid != 0  # PostgreSQL never runs as root

    admin = cluster.admin_url()
    with psycopg.connect(admin) as conn:
        settings: dict[str, str] = dict(
            conn.execute(
                "SELECT name, setting FROM pg_settings WHERE name IN "
                "('listen_addresses', 'port', 'password_encryption', 'unix_socket_directories')"
            ).fetchall()
        )
    assert settings == {
        "listen_addresses": "127.0.0.1",
        "port": str(cluster.port),
        "password_encryption": "scram-sha-256",
        "unix_socket_directories": str(cluster.socket_dir),
    }
    with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
        psycopg.connect(make_conninfo(admin, password="wrong"), connect_timeout=5).close()

    provisioner = PostgresProvisioner(admin)
    url = provisioner.provision("cluster-test", "essential-0")["URL"]
    assert f"@localhost:{cluster.port}/" in url
    with psycopg.connect(url) as conn:  # scram-sha-256 against our verifier
        conn.execute("CREATE TABLE t (x int)")
        conn.execute("INSERT INTO t VALUES (1)")
    with pytest.raises(psycopg.OperationalError, match="permission denied for database"):
        psycopg.connect(make_conninfo(url, dbname="postgres"), connect_timeout=5).close()
    provisioner.deprovision("cluster-test")

    cluster.stop()
    assert not cluster.is_running()
    cluster.stop()  # idempotent: already stopped

    cluster.ensure_running()  # a restart keeps the cluster and its password
    with psycopg.connect(cluster.admin_url()) as conn:
        assert conn.execute("SELECT 1").fetchone() == (1,)


def test_a_half_made_cluster_is_made_again(cluster: ManagedCluster) -> None:
    cluster.root.mkdir(parents=True)
    leftover = cluster.root / "data.initdb"
    leftover.mkdir()
    (leftover / "junk").write_text("from a crash")
    cluster.ensure_running()
    assert not leftover.exists()
    assert (cluster.data_dir / "PG_VERSION").exists()


def test_a_lost_admin_password_is_reported(cluster: ManagedCluster) -> None:
    cluster.initialise()
    cluster.password_file.unlink()
    with pytest.raises(ClusterError, match="admin password file"):
        cluster.ensure_running()


@pytest.mark.skipif(os.geteuid() != 0, reason="only root runs PostgreSQL as another user")
def test_a_closed_parent_directory_is_reported(data_dir: Path) -> None:
    closed = data_dir / "closed"
    closed.mkdir(mode=0o700)
    settings = Settings(data_dir=closed / "kapal", postgres_port=free_port())
    expected = re.escape(str(closed)) + ".* is not traversable by user kapal-postgres"
    with pytest.raises(ClusterError, match=expected):
        ManagedCluster(settings).initialise()
