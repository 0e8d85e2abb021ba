"""Kapal's own MariaDB without starting it: its my.cnf, its admin account's SQL, and where
kapal-mysql add-ons are provisioned."""

from pathlib import Path

import pytest

from kapal.addons.catalog import MYSQL
from kapal.addons.errors import ClusterError, ProvisionError
from kapal.addons.mysql import MysqlProvisioner, native_hash
from kapal.addons.mysql_server import ManagedMariaDB, admin_sql, admin_url, server_conf
from kapal.addons.provider import provisioner_for
from kapal.settings import Settings


def test_the_conf_keeps_everything_in_its_directory_on_127_0_0_1() -> None:
    lines = server_conf(Path("/k/mysql"), 13306).splitlines()
    assert lines[0] == "[mariadbd]"
    for line in (
        "datadir = /k/mysql/data",
        "socket = /k/mysql/mysqld.sock",
        "pid-file = /k/mysql/mysqld.pid",
        "log-error = /k/mysql/error.log",
        "bind-address = 127.0.0.1",
        "port = 13306",
        "skip-networking = 0",
        "skip-name-resolve",
        "innodb_buffer_pool_size = 64M",
    ):
        assert line in lines


def test_the_admin_account_gets_only_a_password_hash() -> None:
    password_hash = native_hash("s3cret")
    sql = admin_sql(password_hash)
    assert f"'kapal_admin'@'127.0.0.1' IDENTIFIED BY PASSWORD '{password_hash}'" in sql
    assert "WITH GRANT OPTION" in sql
    assert "s3cret" not in sql
    with pytest.raises(ValueError, match="not a mysql_native_password hash"):
        admin_sql("s3cret'; DROP DATABASE mysql; --")


def test_places_follow_settings(tmp_path: Path) -> None:
    server = ManagedMariaDB(Settings(data_dir=tmp_path, mysql_port=13999))
    assert server.data_dir == tmp_path / "mysql" / "data"
    assert server.socket == tmp_path / "mysql" / "mysqld.sock"
    assert server.password_file == tmp_path / "secrets" / "mysql-admin"
    assert server.port == 13999


def test_a_given_server_wins_over_ours(tmp_path: Path) -> None:
    given = "mysql://root:pw@db.internal:3306"
    assert admin_url(Settings(data_dir=tmp_path, mysql_admin_url=given)) == given


def test_ours_is_used_once_it_has_an_admin_password(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, mysql_port=13999)
    settings.secrets_dir.mkdir()
    (settings.secrets_dir / "mysql-admin").write_text("p/w+\n")
    assert admin_url(settings) == "mysql://kapal_admin:p%2Fw%2B@127.0.0.1:13999"
    provisioner = provisioner_for(settings, MYSQL)
    assert isinstance(provisioner, MysqlProvisioner)
    assert (provisioner.public_host, provisioner.public_port) == ("127.0.0.1", 13999)


def test_without_either_creating_an_addon_says_what_to_do(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path)
    with pytest.raises(ClusterError, match="has not been set up"):
        admin_url(settings)
    with pytest.raises(ProvisionError) as failed:
        provisioner_for(settings, MYSQL)
    assert "apt-get install mariadb-server-core" in failed.value.message
    assert "KAPAL_MYSQL_ADMIN_URL" in failed.value.message


def test_missing_binaries_say_what_to_install(open_dir: Path) -> None:
    server = ManagedMariaDB(Settings(data_dir=open_dir / "data"), mariadbd=open_dir / "no-mariadbd")
    assert not server.installed()
    with pytest.raises(ClusterError, match="apt-get install mariadb-server-core"):
        server.ensure_running()
    assert not server.password_file.exists()
