"""Kapal's own MariaDB: mariadb-install-db and mariadbd from the installed packages on a free
port, an add-on provisioned on it, restarts, and no process left behind. One server for the
module's tests (initialising one takes about a second)."""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import stat
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pymysql
import pytest
from bench.kapal_up import leftover_processes
from tests.conftest import free_port

from kapal.addons.errors import ClusterError
from kapal.addons.mysql import MysqlProvisioner, database_name
from kapal.addons.mysql_server import ManagedMariaDB
from kapal.settings import Settings

pytestmark = pytest.mark.timeout(120)

ACCESS_DENIED = 1045
NO_SUCH_USER = 1698


@pytest.fixture(scope="module")
def root() -> Iterator[Path]:
    """Other users may pass through (as root, MariaDB runs as kapal-mysql)."""
    path = Path(tempfile.mkdtemp(prefix="kapal-mysql-"))
    path.chmod(0o711)
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="module")
def server(root: Path) -> Iterator[ManagedMariaDB]:
    managed = ManagedMariaDB(Settings(data_dir=root / "data", mysql_port=free_port()))
    if not managed.installed():
        pytest.fail(f"MariaDB is not installed ({managed.mariadbd}, {managed.install_db})")
    managed.ensure_running()
    yield managed
    managed.stop()
    assert leftover_processes(root) == []


def connect(url: str) -> pymysql.connections.Connection:
    parts = urlsplit(url)
    return pymysql.connect(
        host=parts.hostname,
        port=parts.port or 3306,
        user=unquote(parts.username or ""),
        password=unquote(parts.password or ""),
        database=unquote(parts.path.lstrip("/")) or None,
        connect_timeout=5,
        autocommit=True,
    )


def query(url: str, sql: str) -> list[tuple[object, ...]]:
    with connect(url) as conn, conn.cursor() as cur:
        cur.execute(sql)
        return list(cur.fetchall())


def test_an_addon_on_it_keeps_its_data_across_a_restart(server: ManagedMariaDB, root: Path) -> None:
    server.ensure_running()
    provisioner = MysqlProvisioner(server.admin_url())
    url = provisioner.provision("mysql-managed-1", "mini")["URL"]
    ident = database_name("mysql-managed-1")
    assert url.startswith(f"mysql://{ident}:")
    assert url.endswith(f"@127.0.0.1:{server.port}/{ident}")
    query(url, "CREATE TABLE visits (n INT)")
    query(url, "INSERT INTO visits VALUES (42)")

    pid = server.pid()
    assert pid is not None
    server.stop()
    assert not server.is_running()
    assert leftover_processes(root) == []
    server.stop()  # idempotent: already stopped

    server.ensure_running()  # initialised already: only started
    assert server.pid() != pid
    assert query(url, "SELECT n FROM visits") == [(42,)]
    provisioner.deprovision("mysql-managed-1")
    assert query(server.admin_url(), f"SHOW DATABASES LIKE '{ident}'") == []


def test_it_listens_on_127_0_0_1_with_small_buffers_and_private_files(
    server: ManagedMariaDB,
) -> None:
    server.ensure_running()
    row = query(
        server.admin_url(),
        "SELECT @@bind_address, @@port, @@skip_networking, @@skip_name_resolve, "
        "@@socket, @@innodb_buffer_pool_size, CURRENT_USER()",
    )
    assert row == [
        ("127.0.0.1", server.port, 0, 1, str(server.socket), 64 * 2**20, "kapal_admin@127.0.0.1")
    ]
    secret = server.password_file.stat()
    assert stat.S_IMODE(secret.st_mode) == 0o600
    assert secret.st_uid == os.geteuid()
    assert stat.S_IMODE(server.root.stat().st_mode) == 0o700
    pid = server.pid()
    assert pid is not None
    process_uid = os.stat(f"/proc/{pid}").st_uid
    if os.geteuid() == 0:
        assert process_uid == pwd.getpwnam("kapal-mysql").pw_uid  # never root
        assert server.data_dir.stat().st_uid == process_uid
    else:
        assert process_uid == os.geteuid()


def test_root_logs_in_over_the_socket_only(server: ManagedMariaDB) -> None:
    server.ensure_running()
    for password in ("", "guess"):
        with pytest.raises(pymysql.err.OperationalError) as refused:
            pymysql.connect(
                host="127.0.0.1", port=server.port, user="root", password=password
            ).close()
        assert refused.value.args[0] in (ACCESS_DENIED, NO_SUCH_USER)
    assert shutil.which("mariadb"), "the mariadb client (mariadb-client) must be installed"
    me = pwd.getpwuid(os.geteuid()).pw_name  # root, or the user Kapal runs as
    argv = ["mariadb", "--no-defaults", f"--socket={server.socket}", f"--user={me}", "-N"]
    done = subprocess.run(
        [*argv, "-e", "SELECT CURRENT_USER()"],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
        env={"PATH": os.environ["PATH"], "LC_ALL": "C.UTF-8"},
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"{me}@localhost"


def test_a_running_server_is_reused(server: ManagedMariaDB, root: Path) -> None:
    server.ensure_running()
    pid = server.pid()
    again = ManagedMariaDB(Settings(data_dir=root / "data", mysql_port=server.port))
    again.ensure_running()  # as a `kapal up` after one that was killed would
    assert again.pid() == pid
    assert sorted(leftover_processes(root)) == [pid]


def test_a_taken_port_fails_with_the_error_log_and_leaves_nothing(tmp_root: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        managed = ManagedMariaDB(Settings(data_dir=tmp_root / "data", mysql_port=port))
        with pytest.raises(ClusterError) as failed:
            managed.ensure_running(timeout=30)
    message = str(failed.value)
    assert f"before it accepted connections on 127.0.0.1:{port}" in message
    assert "error.log:" in message
    assert "Address already in use" in message
    assert managed.password_file.read_text().strip() not in message
    assert leftover_processes(tmp_root) == []


def test_a_half_made_data_directory_is_made_again(tmp_root: Path) -> None:
    managed = ManagedMariaDB(Settings(data_dir=tmp_root / "data", mysql_port=free_port()))
    leftover = managed.root / "data.init"
    leftover.mkdir(parents=True)
    (leftover / "junk").write_text("from a crash")
    try:
        managed.ensure_running()
        assert not leftover.exists()
        assert query(managed.admin_url(), "SELECT 1") == [(1,)]
    finally:
        managed.stop()
    assert leftover_processes(tmp_root) == []


def test_a_lost_admin_password_is_reported(tmp_root: Path) -> None:
    managed = ManagedMariaDB(Settings(data_dir=tmp_root / "data", mysql_port=free_port()))
    managed.initialise()
    managed.password_file.unlink()
    with pytest.raises(ClusterError, match="admin password file"):
        managed.ensure_running()
    assert not managed.is_running()


@pytest.fixture
def tmp_root() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="kapal-mysql-"))
    path.chmod(0o711)
    yield path
    shutil.rmtree(path, ignore_errors=True)
